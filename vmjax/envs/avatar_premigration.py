"""AvatarPremigration-v0: hybrid-action avatar task pre-migration between RSUs (spec 003).

Every slot each vehicle (agent) uploads an avatar task input to its serving RSU (the nearest one), which
generates the avatar task. The agent's hybrid action picks a target RSU (discrete; the serving RSU means
"no pre-migration") and the fraction alpha of the task to pre-migrate there over the wired RSU-RSU link
(continuous). The rest waits in the serving RSU's queue; what is unfinished when the vehicle leaves the
coverage disk goes to the cloud; results come back over the downlink.

    observation  eq. (19)  `observation`      position, RSU workloads L(t), forecast L^(t+1), own T(t-1)
    action       eq. (20)  `parse_action`     {"target": int32 [N] RSU (slot, `rsu_slots`), "fraction": float32 [N]}
    latency      eqs. (1)-(9)  `slot_latency` uplink + max(local, migration + remote) + cloud + downlink
    reward       eq. (21)  `step_env`         r_v = -T_v (seconds)
    transition   §2.8      `step_env`         fluid workload queues, new tasks, exogenous mobility
    predictor    §4.3      `simulate_trajectories`, `map_box_m`  the env's mobility and map box as the
                           trajectory predictor's training data and normalisation box (`vmjax.predict`)

Bracketed tags in docstrings refer to the spec ([P] paper, [R] reconstruction, [C] chosen default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax import mobility, net, predict
from vmjax.core import fastrand, spaces, validation
from vmjax.core.env import Environment, materialize, traced_once

MB = net.BITS_PER_MEGABYTE


# ====================================================================== configuration (static)
@dataclasses.dataclass(frozen=True)
class AvatarPremigrationConfig:
    """Static configuration: sizes and switches that change shapes or code paths (`make` kwargs)."""

    num_vehicles: int = 10  # N agents [P]
    num_rsus: int = 6  # M [P]
    max_steps: int = 100  # T_max slots per episode [C]
    history_slots: int = 12  # trajectory pre-roll for the trajectory predictor (§4.4)
    num_background_vehicles: int = 0  # N_bg, load-only vehicles [C]
    layout: Literal["corridor", "grid"] = "corridor"  # "corridor" (§7.2 road corridor) | "grid" (dense urban core,
    # sparse outskirts)
    area: Literal["urban", "remote", "by_location"] = "urban"  # "urban": all RSUs selectable | "remote": {serving,
    # next} | "by_location": core urban
    workload_forecast: Literal["persistence", "coverage_oracle", "lstm", "none"] = "persistence"  # L^(t+1) in obs:
    # "persistence" (= L(t)) | "coverage_oracle" (eq. 18
    # with the true next positions) | "lstm" (eq. 18 with the positions predicted by EnvParams.predictor, §4)
    # | "none" (the "w.o. Prediction" 9-dim observation)
    share_uplink_bandwidth: bool = False  # B^u_m split equally among the vehicles m serves [C option]
    rayleigh_fading: bool = False  # multiply h by Exp(1) per (vehicle, RSU, slot) [C option]
    cloud_truncate: bool = False  # T^p_m capped at the stay time when the cloud takes over [C option]
    contention: Literal["none", "processor_sharing"] = "none"  # same-slot work in the queues of eqs. (4)-(5):
    # "none" (§2.8: start-of-slot L(t) only) | "processor_sharing" (v1, `same_slot_wait_cycles`)
    downlink: Literal["direct", "relay"] = "direct"  # results of the pre-migrated part: "direct" (eq. 3, target
    # RSU -> vehicle over the air) | "relay" (v1: target -> wired link -> serving RSU -> vehicle)
    forecast_background_at_kappa_bg: bool = False  # eq. (18) counts a background vehicle at kappa_bg, the load it
    # brings (§2.8 W^bg), instead of kappa (v1); False: every vehicle at kappa (v0)
    obs_prev_fraction: bool = False  # append the previous alpha to the observation [C option]
    obs_serving_onehot: bool = False  # append a one-hot of the serving RSU [C option]
    rsu_order: Literal["index", "distance"] = "index"  # how agents name RSUs in the observation and action: "index"
    # (RSU m is slot m)
    # | "distance" (slot k is the vehicle's k-th nearest RSU, slot 0 the serving one) [C option]
    corridor_rsu_spacing_m: float = 415.0  # corridor length = spacing * M (2,490 m for M = 6) [C]
    corridor_width_m: float = 122.0  # [R] lat 22.5312-22.5323
    grid_core_rsu_share: float = 0.6  # grid layout: share of RSUs inside the urban core
    mobility_substeps: int = 4  # sub-steps per slot of the road-grid mobility
    trace_bank: str = ""  # a trace bank .npz (`vmjax traces sumo --out`, or a run's trace_bank.npz) replayed
    # instead of the built-in mobility: resampled to the slot, centred on the map (vmjax.mobility.load_trace_bank);
    # "" = none

    def __post_init__(self):
        owner = "AvatarPremigrationConfig"
        validation.check_str(owner, "trace_bank", self.trace_bank)
        validation.check_int_at_least(owner, "num_vehicles", self.num_vehicles, 1)
        validation.check_int_at_least(owner, "num_rsus", self.num_rsus, 1)
        validation.check_int_at_least(owner, "max_steps", self.max_steps, 1)
        validation.check_int_at_least(owner, "history_slots", self.history_slots, 1)
        validation.check_int_at_least(owner, "num_background_vehicles", self.num_background_vehicles, 0)
        validation.check_int_at_least(owner, "mobility_substeps", self.mobility_substeps, 1)
        validation.check_literal_fields(self)
        validation.check_bool_fields(self)
        validation.check_positive(owner, "corridor_rsu_spacing_m", self.corridor_rsu_spacing_m)
        validation.check_positive(owner, "corridor_width_m", self.corridor_width_m)
        validation.check_probability(owner, "grid_core_rsu_share", self.grid_core_rsu_share)
        if self.area != "urban" and self.num_rsus < 2:
            raise ValueError(f"{owner}.num_rsus must be >= 2 for area={self.area!r}, got {self.num_rsus}")


@dataclasses.dataclass(frozen=True)
class AvatarPremigrationV1Config(AvatarPremigrationConfig):
    """AvatarPremigration-v1: v0 with the mechanisms the paper's experiment depends on turned on (the reasons,
    measured, are in docs/avatar_premigration.md, "v0 -> v1"): same-slot contention (paper §III-C: a
    pre-migrated task is "processed after the other avatar tasks in the current RSU"), results relayed over the
    wired network ("via the vehicular network"), and the spec's background-load option (§7.1: 40 vehicles of
    kappa_bg = 5 Gcycles per slot) for hot spots, counted at kappa_bg in the eq. (18) forecast."""

    contention: Literal["none", "processor_sharing"] = "processor_sharing"
    downlink: Literal["direct", "relay"] = "relay"
    num_background_vehicles: int = 40
    forecast_background_at_kappa_bg: bool = True


# ====================================================================== parameters (pytree, vmappable)
@struct.dataclass
class EnvParams:
    """Every physical constant of spec 003 §7.1 (SI units). Ranges are resampled per RSU at every reset;
    set low == high to sweep one value (§10 #23)."""

    rsu_xy_m: jax.Array  # [M, 2] RSU positions
    map_extent_m: jax.Array  # [2] map width, height (observation normalisation)
    mobility: mobility.MobilityParams
    # RSUs and cloud [P ranges]
    rsu_bandwidth_hz_low: float = 200e6  # B^u_m = B^d_m ~ U[200, 600] MHz
    rsu_bandwidth_hz_high: float = 600e6
    rsu_migration_bps_low: float = 500e6  # B^mig_m ~ U[500, 900] Mbps; B_{m,m'} = min(B^mig_m, B^mig_m') [C]
    rsu_migration_bps_high: float = 900e6
    rsu_gpu_hz_low: float = 10e9  # C_m ~ U[10, 30] GHz
    rsu_gpu_hz_high: float = 30e9
    cloud_gpu_hz_low: float = 50e9  # C_c ~ U[50, 100] GHz
    cloud_gpu_hz_high: float = 100e9
    cloud_uplink_bps: float = 200e6  # B^c_m [C]
    max_workload_s: float = 20.0  # L^max_m = 20 s * C_m [C]
    initial_load_max_frac: float = 0.3  # Q_m(0) ~ U[0, 0.3 L^max_m] [C]
    coverage_radius_m: float = 300.0  # R_cov [C]
    # radio (§2.3)
    channel_gain_coeff: float = 4.11  # A_d [P]
    carrier_hz: float = 2e9  # f_c [P]
    path_loss_exponent: float = 2.8  # l [C]
    min_distance_m: float = 10.0  # d >= 10 m [C]
    vehicle_tx_power_w: float = 0.2  # p_v [C]
    rsu_tx_power_w: float = 1.0  # p_m [C]
    noise_power_w: float = 1e-12  # sigma^2, fixed [C]
    # tasks [P]
    task_input_bits_low: float = 12 * MB  # D^in ~ U[12, 20] MB
    task_input_bits_high: float = 20 * MB
    task_bits_low: float = 50 * MB  # D ~ U[50, 250] MB
    task_bits_high: float = 250 * MB
    cycles_per_bit: float = 0.5e9 / MB  # f_v = 0.5 Gcycles/MB
    # dynamics (§2.8) [C]
    slot_s: float = 10.0  # Delta t
    workload_per_vehicle_cycles: float = 75e9  # kappa of eq. (18) = E[D] f
    background_cycles_per_vehicle: float = 5e9  # kappa_bg per background vehicle in coverage per slot
    stay_min_speed_mps: float = 0.1  # below this speed the stay time is `stay_max_s`
    stay_max_s: float = 1e3
    latency_obs_scale_s: float = 10.0  # T_v(t-1) / 10 s in the observation
    # trajectory predictor (§4), used by workload_forecast="lstm"; None otherwise
    predictor: predict.TrajectoryPredictor | None = None
    # replayed trajectories [T_bank >= history_slots + max_steps + 1, >= N + N_bg, 2] instead of the road-grid
    # mobility (a window of random tracks from a random start slot per episode); None: the road-grid mobility
    trace_bank: mobility.Trace | None = None

    @property
    def mean_max_workload_cycles(self):
        """Observation scale for L and L^: the expected L^max_m."""
        return self.max_workload_s * 0.5 * (self.rsu_gpu_hz_low + self.rsu_gpu_hz_high)


_POSITIVE_FIELDS = (
    "rsu_bandwidth_hz_low",
    "rsu_migration_bps_low",
    "rsu_gpu_hz_low",
    "cloud_gpu_hz_low",
    "cloud_uplink_bps",
    "max_workload_s",
    "coverage_radius_m",
    "channel_gain_coeff",
    "carrier_hz",
    "path_loss_exponent",
    "min_distance_m",
    "vehicle_tx_power_w",
    "rsu_tx_power_w",
    "noise_power_w",
    "task_input_bits_low",
    "task_bits_low",
    "cycles_per_bit",
    "slot_s",
    "stay_min_speed_mps",
    "stay_max_s",
    "latency_obs_scale_s",
)
_NON_NEGATIVE_FIELDS = ("workload_per_vehicle_cycles", "background_cycles_per_vehicle")
_RANGES = (
    ("rsu_bandwidth_hz_low", "rsu_bandwidth_hz_high"),
    ("rsu_migration_bps_low", "rsu_migration_bps_high"),
    ("rsu_gpu_hz_low", "rsu_gpu_hz_high"),
    ("cloud_gpu_hz_low", "cloud_gpu_hz_high"),
    ("task_input_bits_low", "task_input_bits_high"),
    ("task_bits_low", "task_bits_high"),
)


# ====================================================================== state (pytree)
@struct.dataclass
class RsuState:
    """Per-episode RSU and cloud draws (§7.1 "resampled at every env reset")."""

    bandwidth_hz: jax.Array  # [M] B^u_m = B^d_m
    migration_bps: jax.Array  # [M, M] B_{m,m'}
    gpu_hz: jax.Array  # [M] C_m
    max_workload_cycles: jax.Array  # [M] L^max_m
    cloud_gpu_hz: jax.Array  # () C_c


@struct.dataclass
class SlotDraws:
    """Random quantities of the coming slot, drawn one slot ahead so a state-based policy (Greedy) sees
    the same task the env will process."""

    task_input_bits: jax.Array  # [N] D^in_v(t)
    task_bits: jax.Array  # [N] D_v(t)
    fading: jax.Array | None  # [N, M] |g|^2 ~ Exp(1), or None without fading


@struct.dataclass
class EnvState:
    t: jax.Array  # () slot index in the episode
    trace: mobility.Trace  # positions [history + T_max + 1, N + N_bg, 2]: exogenous trajectories, agents first
    rsu: RsuState
    queue_cycles: jax.Array  # [M] L_m(t) = Q_m(t)
    draws: SlotDraws
    prev_latency_s: jax.Array  # [N] T_v(t-1), 0 at t = 0
    prev_fraction: jax.Array  # [N] alpha_v(t-1)
    forecast_cycles: jax.Array | None  # [T_max, M] L^(t+1) for "coverage_oracle" and "lstm", else None


@struct.dataclass
class SlotContext:
    """What every vehicle faces in the slot before it acts (start-of-slot quantities, §2.8)."""

    distance_m: jax.Array  # [N, M] d_{v,m}(t), clamped >= min_distance_m
    serving: jax.Array  # [N] m_v(t) = nearest RSU [C]
    velocity_mps: jax.Array  # [N, 2] (p(t) - p(t-1)) / Delta t
    stay_time_s: jax.Array  # [N] t^stay_{v, m_v}
    uplink_share: jax.Array  # [N] number of vehicles sharing B^u of the serving RSU (1 without sharing)
    task_input_bits: jax.Array  # [N]
    task_bits: jax.Array  # [N]
    fading: jax.Array | None  # [N, M], or None
    queue_cycles: jax.Array  # [M]
    rsu: RsuState


# ====================================================================== the latency model, eqs. (1)-(9)
def slot_latency(
    ctx: SlotContext,
    target: jax.Array,
    fraction: jax.Array,
    params: EnvParams,
    cloud_truncate=False,
    downlink: str = "direct",
    same_slot_wait: tuple[jax.Array, jax.Array] | None = None,
):
    """Per-vehicle latency terms [N] for a hybrid action (target RSU, fraction alpha), eqs. (1)-(9).

    Picking the serving RSU, or alpha = 0, means no pre-migration (T^m = T^p_m' = 0) [C].

    `same_slot_wait` = (local, remote) [N] cycles of the same slot's other work ahead of each vehicle's two
    parts, added to L(t) in eqs. (4)-(5) (v1 contention: `same_slot_wait_cycles`); None (v0, §2.8) uses the
    start-of-slot L(t) alone. downlink="relay" (v1) returns the pre-migrated part's results target -> wired
    link -> serving RSU -> vehicle (eq. 3's middle term becomes alpha D / B_{m,m'} + alpha D / R^d_{v,m});
    "direct" is eq. (3).
    """
    rsu, serving = ctx.rsu, ctx.serving
    vehicles = jnp.arange(serving.shape[0])
    premigrates = (target != serving) & (fraction > 0.0)
    alpha = jnp.where(premigrates, fraction, 0.0)
    # Per-vehicle lookups first, behind an optimization barrier: XLA's CPU backend fuses gathers into the
    # arithmetic below and then emits scalar (unvectorized) loops; grouping them here measurably cut the
    # step's time (bench/env_throughput.py). Values and gradients are unchanged.
    at_serving, at_target = materialize(
        (
            {
                "distance_m": ctx.distance_m[vehicles, serving],
                "fading": 1.0 if ctx.fading is None else ctx.fading[vehicles, serving],
                "bandwidth_hz": rsu.bandwidth_hz[serving],
                "gpu_hz": rsu.gpu_hz[serving],
                "queue_cycles": ctx.queue_cycles[serving],
                "migration_bps": rsu.migration_bps[serving, target],
            },
            {
                "distance_m": ctx.distance_m[vehicles, target],
                "fading": 1.0 if ctx.fading is None else ctx.fading[vehicles, target],
                "bandwidth_hz": rsu.bandwidth_hz[target],
                "gpu_hz": rsu.gpu_hz[target],
                "queue_cycles": ctx.queue_cycles[target],
            },
        )
    )

    def rate_bps(at, bandwidth_hz, tx_power_w):  # B log2(1 + p h / sigma^2), h = g A_d (c / (4 pi f_c d))^l (§2.3)
        return net.link_rate_bps(
            at["distance_m"],
            bandwidth_hz,
            tx_power_w,
            params.noise_power_w,
            gain_coeff=params.channel_gain_coeff,
            carrier_hz=params.carrier_hz,
            exponent=params.path_loss_exponent,
            fading=at["fading"],
        )

    uplink_bps = rate_bps(at_serving, at_serving["bandwidth_hz"] / ctx.uplink_share, params.vehicle_tx_power_w)  # (1)
    # eq. (2); cloud results relayed by the serving RSU [C]
    downlink_serving_bps = rate_bps(at_serving, at_serving["bandwidth_hz"], params.rsu_tx_power_w)
    downlink_target_bps = rate_bps(at_target, at_target["bandwidth_hz"], params.rsu_tx_power_w)

    local_bits = (1.0 - alpha) * ctx.task_bits
    remote_bits = alpha * ctx.task_bits  # D^pre = alpha D
    gpu_serving = at_serving["gpu_hz"]
    local_queue, remote_queue = at_serving["queue_cycles"], at_target["queue_cycles"]
    if same_slot_wait is not None:
        local_queue, remote_queue = local_queue + same_slot_wait[0], remote_queue + same_slot_wait[1]
    uplink_s = net.transfer_latency_s(ctx.task_input_bits, uplink_bps)
    local_s = net.compute_latency_s(local_queue, local_bits * params.cycles_per_bit, gpu_serving)  # eq. (4)
    migration_s = jnp.where(  # T^m = alpha D / B_{m,m'}
        premigrates, net.transfer_latency_s(remote_bits, at_serving["migration_bps"]), 0.0
    )
    remote_s = jnp.where(  # eq. (5)
        premigrates,
        net.compute_latency_s(remote_queue, remote_bits * params.cycles_per_bit, at_target["gpu_hz"]),
        0.0,
    )
    # eq. (6): the serving-RSU part still unfinished when the vehicle leaves coverage goes to the cloud
    overrun_s = jnp.maximum(uplink_s + local_s - ctx.stay_time_s, 0.0)
    cloud_bits = jnp.minimum(local_bits, overrun_s * gpu_serving / params.cycles_per_bit)
    cloud_s = net.transfer_latency_s(cloud_bits, params.cloud_uplink_bps) + net.compute_latency_s(  # eq. (7)
        0.0, cloud_bits * params.cycles_per_bit, rsu.cloud_gpu_hz
    )
    if cloud_truncate:  # [C] option: the serving RSU stops working on the task when the vehicle leaves
        local_s = jnp.where(cloud_bits > 0, jnp.minimum(local_s, jnp.maximum(ctx.stay_time_s - uplink_s, 0.0)), local_s)
    processing_s = net.split_processing_latency_s(local_s, migration_s, remote_s)  # eq. (8)
    if downlink == "relay":  # target -> wired B_{m',m} -> serving RSU -> vehicle
        remote_down_s = net.transfer_latency_s(remote_bits, at_serving["migration_bps"]) + net.transfer_latency_s(
            remote_bits, downlink_serving_bps
        )
    elif downlink == "direct":  # eq. (3): target RSU -> vehicle over the air
        remote_down_s = net.transfer_latency_s(remote_bits, downlink_target_bps)
    else:
        raise ValueError(f'downlink must be "direct" or "relay", got {downlink!r}')
    downlink_s = (  # eq. (3)
        net.transfer_latency_s(local_bits - cloud_bits, downlink_serving_bps)
        + jnp.where(premigrates, remote_down_s, 0.0)
        + net.transfer_latency_s(cloud_bits, downlink_serving_bps)
    )
    total_s = uplink_s + processing_s + cloud_s + downlink_s  # eq. (9)
    return {
        "total_latency_s": total_s,
        "uplink_s": uplink_s,
        "processing_s": processing_s,
        "migration_s": migration_s,
        "cloud_s": cloud_s,
        "downlink_s": downlink_s,
        "local_bits": local_bits,
        "remote_bits": remote_bits,
        "cloud_bits": cloud_bits,
        "premigrates": premigrates,
    }


def same_slot_wait_cycles(ctx: SlotContext, target, fraction, params: EnvParams, others=None):
    """Work of the other vehicles' same-slot tasks ahead of vehicle v's two parts (v1 contention) [N], [N].

    Local part at the serving RSU m: processor sharing with the other local parts at m,
        sum_{u != v, m_u = m} min((1 - alpha_u) D_u, (1 - alpha_v) D_v) f.
    Pre-migrated part at the target m': "processed after the other avatar tasks in the current RSU" (paper
    §III-C), so behind every local part at m', then processor sharing with the other parts pre-migrated to m':
        sum_{u != v, m_u = m'} (1 - alpha_u) D_u f + sum_{u != v, m'_u = m'} min(alpha_u D_u, alpha_v D_v) f.
    The others' local parts count in full (their cloud share is not yet known when the slot starts).
    `target` and `fraction` [N] are each vehicle's own action (RSU index); `others` = (target, fraction) [N]
    what each other vehicle u does, default the same joint action. With `others` given, entry v is vehicle v's
    wait when it alone takes its own action: a unilateral deviation, for best responses.
    """
    serving, task_cycles = ctx.serving, ctx.task_bits * params.cycles_per_bit
    premigrates = (target != serving) & (fraction > 0.0)
    alpha = jnp.where(premigrates, fraction, 0.0)
    other_target, other_fraction = (target, fraction) if others is None else others
    other_premigrates = (other_target != serving) & (other_fraction > 0.0)
    other_alpha = jnp.where(other_premigrates, other_fraction, 0.0)
    other_local, other_remote = (1.0 - other_alpha) * task_cycles, other_alpha * task_cycles
    not_self = ~jnp.eye(serving.shape[0], dtype=bool)  # [v, u]
    same_serving = (serving[:, None] == serving[None, :]) & not_self
    local_wait = net.processor_sharing_wait_cycles((1.0 - alpha) * task_cycles, other_local, same_serving)
    served_by_target = (target[:, None] == serving[None, :]) & not_self
    also_premigrated = (target[:, None] == other_target[None, :]) & other_premigrates[None, :] & not_self
    remote_wait = jnp.sum(jnp.where(served_by_target, other_local[None, :], 0.0), axis=-1)
    remote_wait = remote_wait + net.processor_sharing_wait_cycles(alpha * task_cycles, other_remote, also_premigrated)
    return local_wait, jnp.where(premigrates, remote_wait, 0.0)  # no pre-migrated part, nothing to wait for


def workload_arrivals_cycles(ctx: SlotContext, target, latency, params: EnvParams, num_rsus: int):
    """W_m(t): serving-RSU work kept (minus the cloud part) plus pre-migrated work arriving at m (§2.8)."""
    local_cycles = (latency["local_bits"] - latency["cloud_bits"]) * params.cycles_per_bit
    remote_cycles = jnp.where(latency["premigrates"], latency["remote_bits"] * params.cycles_per_bit, 0.0)
    arrivals = jnp.zeros(num_rsus, jnp.float32).at[ctx.serving].add(local_cycles)
    return arrivals.at[target].add(remote_cycles)


def coverage_counts(positions_m, rsu_xy_m, radius_m):
    """Vehicles inside each RSU's coverage disk [..., M] (the region selector of §4.4)."""
    d = net.pairwise_planar_distance_m(positions_m, rsu_xy_m)
    return jnp.sum(d <= radius_m, axis=-2).astype(jnp.float32)


def next_rsu_ahead(position_m, velocity_mps, rsu_xy_m, serving):
    """The nearest RSU other than the serving one in the direction of travel (FPM target and the remote
    area's "next RSU", §8 / §5); the nearest other RSU when none lies ahead. Shapes [N, 2] -> [N]."""
    rel = rsu_xy_m[None, :, :] - position_m[:, None, :]
    dist = net.pairwise_planar_distance_m(position_m, rsu_xy_m)
    ahead = rel[..., 0] * velocity_mps[:, None, 0] + rel[..., 1] * velocity_mps[:, None, 1] > 0.0
    other = jnp.arange(rsu_xy_m.shape[0])[None, :] != serving[:, None]
    best_ahead = jnp.argmin(jnp.where(ahead & other, dist, jnp.inf), axis=-1)
    best_other = jnp.argmin(jnp.where(other, dist, jnp.inf), axis=-1)
    return jnp.where(jnp.any(ahead & other, axis=-1), best_ahead, best_other).astype(jnp.int32)


# ====================================================================== the environment
class AvatarPremigration(Environment):
    """Spec 003 scenario; `AvatarPremigration(**config)` or `vmjax.make("AvatarPremigration-v0", **config)`."""

    params_class = EnvParams
    env_id = "AvatarPremigration-v0"
    agent_role = "vehicle"
    config_class: type = AvatarPremigrationConfig

    def __init__(self, **config):
        self.config = validation.config_from_kwargs(self.config_class, self.env_id, config)
        c = self.config
        self.num_agents = c.num_vehicles
        self.num_rsus = c.num_rsus
        if c.layout == "corridor":
            self.road_grid = mobility.corridor_road(c.corridor_rsu_spacing_m * c.num_rsus, c.corridor_width_m)
            self._rsu_xy = net.corridor_rsu_positions(c.num_rsus, c.corridor_rsu_spacing_m, c.corridor_width_m)
        else:
            self.road_grid = mobility.urban_grid()
            self._rsu_xy = net.intersection_rsu_positions(
                mobility.intersections_m(self.road_grid), self.road_grid.core_box_m, c.num_rsus, c.grid_core_rsu_share
            )
        self.trajectory_slots = c.history_slots + c.max_steps + 1
        self.obs_dim = (
            2
            + c.num_rsus
            + (c.workload_forecast != "none") * c.num_rsus
            + 1
            + int(c.obs_prev_fraction)
            + c.obs_serving_onehot * c.num_rsus
        )
        if c.trace_bank:
            self.default_params  # noqa: B018 - read the bank now: a bad file fails in make(), with the file named

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def default_params(self) -> EnvParams:
        params = EnvParams(
            rsu_xy_m=jnp.asarray(self._rsu_xy),
            map_extent_m=jnp.asarray(self.road_grid.extent_m, jnp.float32),
            mobility=mobility.MobilityParams(),
        )
        return params.replace(trace_bank=self._config_trace_bank(params.slot_s))

    def _config_trace_bank(self, slot_s: float) -> mobility.Trace | None:
        """The bank of `config.trace_bank` fitted to this env (None without one)."""
        c = self.config
        owner = f"{type(c).__name__}.trace_bank"
        return mobility.config_trace_bank(
            c.trace_bank,
            float(slot_s),
            self.road_grid.extent_m,
            self.trajectory_slots,
            c.num_vehicles + c.num_background_vehicles,
            owner,
        )

    def validate_params(self, params: EnvParams) -> None:
        owner = "EnvParams"
        for field in _POSITIVE_FIELDS:
            validation.check_positive(owner, field, getattr(params, field))
        for field in _NON_NEGATIVE_FIELDS:
            validation.check_non_negative(owner, field, getattr(params, field))
        for low, high in _RANGES:
            validation.check_range(owner, low, high, getattr(params, low), getattr(params, high))
        validation.check_probability(owner, "initial_load_max_frac", params.initial_load_max_frac)
        validation.check_shape(owner, "rsu_xy_m", params.rsu_xy_m, (self.num_rsus, 2))
        validation.check_finite(owner, "rsu_xy_m", params.rsu_xy_m)
        validation.check_positive(owner, "map_extent_m", params.map_extent_m)
        mobility.validate_params(params.mobility)
        mobility.check_trace_bank(
            owner,
            params.trace_bank,
            self.trajectory_slots,
            self.config.num_vehicles + self.config.num_background_vehicles,
            "num_vehicles + num_background_vehicles",
        )
        self._check_predictor(params)

    def _check_predictor(self, params: EnvParams) -> None:
        """workload_forecast="lstm" needs a `TrajectoryPredictor` whose window is the env's pre-roll (static
        checks: they also run at trace time)."""
        c = self.config
        if c.workload_forecast != "lstm":
            return
        if params.predictor is None:
            raise ValueError(
                'EnvParams.predictor is None, but workload_forecast="lstm" needs a trained trajectory predictor: '
                "params = env.default_params.replace(predictor=vmjax.predict.load_predictor(path)) (or a "
                "predictor from vmjax.predict.train_predictor)"
            )
        if not isinstance(params.predictor, predict.TrajectoryPredictor):
            raise TypeError(
                f"EnvParams.predictor must be a vmjax.predict.TrajectoryPredictor, got {type(params.predictor).__name__}"
            )
        if params.predictor.history_slots != c.history_slots:
            raise ValueError(
                f"EnvParams.predictor.history_slots={params.predictor.history_slots} differs from the env's "
                f"history_slots={c.history_slots}: train the predictor with PredictorConfig(history_slots="
                f"{c.history_slots}) or make the env with history_slots={params.predictor.history_slots}"
            )

    # ------------------------------------------------------------------ spaces
    def action_space(self, params=None) -> spaces.Dict:
        n = self.num_agents
        return spaces.Dict(
            {"target": spaces.Discrete(self.num_rsus, shape=(n,)), "fraction": spaces.Box(0.0, 1.0, (n,))}
        )

    def observation_space(self, params=None) -> spaces.Box:
        high = np.full((self.num_agents, self.obs_dim), np.inf, np.float32)
        high[:, :2] = 1.0
        return spaces.Box(0.0, high, (self.num_agents, self.obs_dim))

    # ------------------------------------------------------------------ reset
    @traced_once
    def reset_env(self, key, params: EnvParams):
        c = self.config
        k_rsu, k_traj, k_queue, k_draws = jax.random.split(key, 4)
        rsu = self.sample_rsus(k_rsu, params)
        if params.trace_bank is None:
            trace = mobility.generate_trajectories(
                k_traj,
                self.road_grid,
                params.mobility,
                c.num_vehicles + c.num_background_vehicles,
                self.trajectory_slots,
                params.slot_s,
                c.mobility_substeps,
            )
        else:  # a window of the bank; a vehicle between two tracks' vehicles holds its place
            trace = mobility.draw_bank_window(
                k_traj, params.trace_bank, c.num_vehicles + c.num_background_vehicles, self.trajectory_slots
            )
        trace = mobility.Trace(positions_m=trace.positions_m)  # headings are not used: keep them out of the state
        positions = trace.positions_m
        queue = fastrand.uniform(k_queue, (self.num_rsus,)) * params.initial_load_max_frac * rsu.max_workload_cycles
        forecast = None
        if c.workload_forecast == "coverage_oracle":  # eq. (18) with the true p(t+1), all vehicles counted
            future = positions[c.history_slots + 1 : c.history_slots + 1 + c.max_steps]
            forecast = self.forecast_workload_cycles(future, params)
        elif c.workload_forecast == "lstm":  # eq. (18) with p^(t+1) of the LSTM (§4.4), all vehicles counted
            self._check_predictor(params)
            # one batched call: the window of slots t+1 .. t+history (ending at p(t)) predicts p(t+1), t < T_max
            future = predict.predict_trajectory_m(params.predictor, positions[1 : c.history_slots + c.max_steps])
            forecast = self.forecast_workload_cycles(future, params)
        state = EnvState(
            t=jnp.int32(0),
            trace=trace,
            rsu=rsu,
            queue_cycles=queue,
            draws=self.sample_slot_draws(k_draws, params),
            prev_latency_s=jnp.zeros(self.num_agents, jnp.float32),
            prev_fraction=jnp.zeros(self.num_agents, jnp.float32),
            forecast_cycles=forecast,
        )
        return self.observation(state, params), state

    def forecast_workload_cycles(self, future_m, params: EnvParams) -> jax.Array:
        """Eq. (18): L^_m = kappa N^_m from positions [..., N + N_bg, 2] (agents first) -> [..., M]. With
        forecast_background_at_kappa_bg, the background vehicles count at kappa_bg, the load they bring."""
        count = lambda xy: coverage_counts(xy, params.rsu_xy_m, params.coverage_radius_m)
        if not self.config.forecast_background_at_kappa_bg:
            return params.workload_per_vehicle_cycles * count(future_m)
        n = self.num_agents
        agents, background = count(future_m[..., :n, :]), count(future_m[..., n:, :])
        return params.workload_per_vehicle_cycles * agents + params.background_cycles_per_vehicle * background

    def sample_rsus(self, key, params: EnvParams) -> RsuState:
        """Heterogeneous RSUs and cloud, drawn from the §7.1 ranges."""
        m = self.num_rsus
        k_bw, k_mig, k_gpu, k_cloud = jax.random.split(key, 4)
        uniform = lambda k, low, high, shape=(m,): fastrand.uniform(k, shape, low, high)
        migration = uniform(k_mig, params.rsu_migration_bps_low, params.rsu_migration_bps_high)
        gpu = uniform(k_gpu, params.rsu_gpu_hz_low, params.rsu_gpu_hz_high)
        return RsuState(
            bandwidth_hz=uniform(k_bw, params.rsu_bandwidth_hz_low, params.rsu_bandwidth_hz_high),
            migration_bps=jnp.minimum(migration[:, None], migration[None, :]),
            gpu_hz=gpu,
            max_workload_cycles=params.max_workload_s * gpu,
            cloud_gpu_hz=uniform(k_cloud, params.cloud_gpu_hz_low, params.cloud_gpu_hz_high, ()),
        )

    def sample_slot_draws(self, key, params: EnvParams) -> SlotDraws:
        """New tasks every slot [P ranges] and, when enabled, the slot's fading."""
        n = self.num_agents
        # independent streams of one key (no key split: this runs every step)
        task_input = fastrand.uniform(key, (n,), params.task_input_bits_low, params.task_input_bits_high, stream=0)
        task = fastrand.uniform(key, (n,), params.task_bits_low, params.task_bits_high, stream=1)
        fading = net.rayleigh_power_gain(key, (n, self.num_rsus), stream=2) if self.config.rayleigh_fading else None
        return SlotDraws(task_input_bits=task_input, task_bits=task, fading=fading)

    def slot_latency(self, ctx: SlotContext, target, fraction, params: EnvParams, others=None):
        """`slot_latency` with this env's switches (cloud_truncate, contention, downlink); `target` by RSU index.
        `others`: the other vehicles' (target, fraction) for the contention terms (`same_slot_wait_cycles`)."""
        c = self.config
        wait = None
        if c.contention == "processor_sharing":
            wait = same_slot_wait_cycles(ctx, target, fraction, params, others)
        return slot_latency(ctx, target, fraction, params, c.cloud_truncate, c.downlink, wait)

    # ------------------------------------------------------------------ what the agents see
    def slot_context(self, state: EnvState, params: EnvParams) -> SlotContext:
        """Start-of-slot quantities shared by the env step and state-based policies."""
        n = self.num_agents
        index = self.config.history_slots + state.t
        position, previous = state.trace.position_at(index)[:n], state.trace.position_at(index - 1)[:n]
        distance = net.pairwise_planar_distance_m(position, params.rsu_xy_m, params.min_distance_m)
        serving = jnp.argmin(distance, axis=-1).astype(jnp.int32)
        # materialize the lookups, x and y apart, before the arithmetic (see `slot_latency`)
        split_xy = lambda xy: (xy[..., 0], xy[..., 1])
        parts = materialize((split_xy(position), split_xy(previous), split_xy(params.rsu_xy_m[serving])))
        position, previous, serving_xy = (jnp.stack(xy, axis=-1) for xy in parts)
        velocity = (position - previous) / params.slot_s
        stay = net.disk_exit_time_s(
            position, velocity, serving_xy, params.coverage_radius_m, params.stay_min_speed_mps, params.stay_max_s
        )
        if self.config.share_uplink_bandwidth:
            served = jnp.zeros(self.num_rsus, jnp.float32).at[serving].add(1.0)
            share = served[serving]
        else:
            share = jnp.ones(n, jnp.float32)
        return SlotContext(
            distance_m=distance,
            serving=serving,
            velocity_mps=velocity,
            stay_time_s=stay,
            uplink_share=share,
            task_input_bits=state.draws.task_input_bits,
            task_bits=state.draws.task_bits,
            fading=state.draws.fading,
            queue_cycles=state.queue_cycles,
            rsu=state.rsu,
        )

    def vehicle_positions(self, state: EnvState) -> jax.Array:
        """p_v(t) of the agents [N, 2]."""
        return state.trace.position_at(self.config.history_slots + state.t)[: self.num_agents]

    def forecast(self, state: EnvState, params: EnvParams) -> jax.Array:
        """L^(t+1) [M] for the observation (§4.4): precomputed at reset for "coverage_oracle" and "lstm", the
        current L(t) for "persistence"."""
        if self.config.workload_forecast in ("coverage_oracle", "lstm"):
            return state.forecast_cycles[jnp.minimum(state.t, self.config.max_steps - 1)]
        return state.queue_cycles

    def rsu_slots(self, state: EnvState, params: EnvParams) -> jax.Array | None:
        """The RSU each vehicle sees in each of its M observation/action slots [N, M] int32: RSUs by
        increasing distance for rsu_order="distance" (slot 0 = serving RSU, ties to the lower index, as
        `slot_context`'s nearest-RSU rule); None for "index" (slot m is RSU m)."""
        if self.config.rsu_order == "index":
            return None
        distance = net.pairwise_planar_distance_m(self.vehicle_positions(state), params.rsu_xy_m, params.min_distance_m)
        return jnp.argsort(distance, axis=-1, stable=True).astype(jnp.int32)

    def per_rsu_view(self, values: jax.Array, state: EnvState, params: EnvParams) -> jax.Array:
        """Per-RSU `values` ([M], or [N, M] per vehicle) in each vehicle's slot order: [N, M]."""
        values = jnp.broadcast_to(values, (self.num_agents, self.num_rsus))
        slots = self.rsu_slots(state, params)
        return values if slots is None else jnp.take_along_axis(values, slots, axis=1)

    def encode_target(self, state: EnvState, params: EnvParams, rsu: jax.Array) -> jax.Array:
        """The action's `target` [N] that selects RSU index `rsu` [N] (its slot under rsu_order)."""
        slots = self.rsu_slots(state, params)
        if slots is None:
            return rsu.astype(jnp.int32)
        return jnp.argmax(slots == rsu[:, None], axis=1).astype(jnp.int32)

    def decode_target(self, state: EnvState, params: EnvParams, target: jax.Array) -> jax.Array:
        """The RSU index [N] that the action's `target` slot [N] names under rsu_order."""
        slots = self.rsu_slots(state, params)
        if slots is None:
            return target
        return jnp.take_along_axis(slots, target[:, None], axis=1)[:, 0]

    def observation(self, state: EnvState, params: EnvParams) -> jax.Array:
        """o_v(t) = {p_v(t), L(t), L^(t+1), T_v(t-1)}, eq. (19), normalised as §5 [C]: [N, obs_dim]. The
        per-RSU blocks are in the vehicle's slot order (`rsu_slots`)."""
        c = self.config
        scale = params.mean_max_workload_cycles
        parts = [
            jnp.clip(self.vehicle_positions(state) / params.map_extent_m, 0.0, 1.0),
            self.per_rsu_view(state.queue_cycles / scale, state, params),
        ]
        if c.workload_forecast != "none":
            parts.append(self.per_rsu_view(self.forecast(state, params) / scale, state, params))
        parts.append((state.prev_latency_s / params.latency_obs_scale_s)[:, None])
        if c.obs_prev_fraction:
            parts.append(state.prev_fraction[:, None])
        if c.obs_serving_onehot:
            serving = jnp.argmin(
                net.pairwise_planar_distance_m(self.vehicle_positions(state), params.rsu_xy_m), axis=-1
            )
            parts.append(self.per_rsu_view(jax.nn.one_hot(serving, self.num_rsus), state, params))
        return jnp.concatenate(parts, axis=-1).astype(jnp.float32)

    def world_state(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Centralized-critic input: all observations plus the agent's one-hot id [N, N obs_dim + N] (§5)."""
        obs = self.observation(state, params)
        n = self.num_agents
        return jnp.concatenate([jnp.broadcast_to(obs.reshape(-1), (n, n * self.obs_dim)), jnp.eye(n)], axis=-1)

    def rsu_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Selectable target RSUs by RSU index [N, M]: all in urban areas; {serving, next ahead} in remote
        areas (§5)."""
        return self._mask(self.slot_context(state, params), state, params)

    def action_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Selectable action targets [N, M]: `rsu_mask` in the vehicle's slot order (`rsu_slots`)."""
        return self.per_rsu_view(self.rsu_mask(state, params), state, params)

    def _mask(self, ctx: SlotContext, state: EnvState, params: EnvParams) -> jax.Array:
        n, m = self.num_agents, self.num_rsus
        urban = jnp.ones((n, m), bool)
        if self.config.area == "urban":
            return urban
        position = self.vehicle_positions(state)
        ahead = next_rsu_ahead(position, ctx.velocity_mps, params.rsu_xy_m, ctx.serving)
        remote = jax.nn.one_hot(ctx.serving, m, dtype=bool) | jax.nn.one_hot(ahead, m, dtype=bool)
        if self.config.area == "remote":
            return remote
        xmin, ymin, xmax, ymax = self.road_grid.core_box_m
        in_core = (
            (position[:, 0] >= xmin) & (position[:, 0] <= xmax) & (position[:, 1] >= ymin) & (position[:, 1] <= ymax)
        )
        return jnp.where(in_core[:, None], urban, remote)

    # ------------------------------------------------------------------ action
    def parse_action(self, action: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        """Check shapes and dtypes (ValueError naming the field, at trace time) and make the action valid:
        NaN alpha -> 0, alpha clipped to [0, 1], target clipped to [0, M-1]."""
        n = self.num_agents
        if not isinstance(action, Mapping) or set(action) != {"target", "fraction"}:
            got = sorted(action) if isinstance(action, Mapping) else type(action).__name__
            raise ValueError(f"action must be a dict with keys ['fraction', 'target'], got {got}")
        target, fraction = jnp.asarray(action["target"]), jnp.asarray(action["fraction"])
        if target.shape != (n,):
            raise ValueError(f"action['target'] must have shape ({n},) (one RSU index per vehicle), got {target.shape}")
        if not jnp.issubdtype(target.dtype, jnp.integer):
            raise ValueError(f"action['target'] must be integer RSU indices, got dtype {target.dtype}")
        if fraction.shape != (n,):
            raise ValueError(f"action['fraction'] must have shape ({n},) (one alpha per vehicle), got {fraction.shape}")
        if not jnp.issubdtype(fraction.dtype, jnp.floating):
            raise ValueError(f"action['fraction'] must be floating point, got dtype {fraction.dtype}")
        fraction = jnp.clip(jnp.where(jnp.isnan(fraction), 0.0, fraction), 0.0, 1.0)
        target = jnp.clip(target, 0, self.num_rsus - 1).astype(jnp.int32)
        return target, fraction

    # ------------------------------------------------------------------ transition and reward
    @traced_once
    def step_env(self, key, state: EnvState, action, params: EnvParams):
        target, fraction = self.parse_action(action)
        target = self.decode_target(state, params, target)
        ctx = self.slot_context(state, params)
        allowed = jnp.take_along_axis(self._mask(ctx, state, params), target[:, None], axis=1)[:, 0]
        target = jnp.where(allowed, target, ctx.serving)  # a masked target means no pre-migration
        latency = self.slot_latency(ctx, target, fraction, params)
        reward = -latency["total_latency_s"]  # eq. (21)

        arrivals = workload_arrivals_cycles(ctx, target, latency, params, self.num_rsus)
        if self.config.num_background_vehicles:
            background = state.trace.position_at(self.config.history_slots + state.t)[self.num_agents :]
            arrivals = arrivals + params.background_cycles_per_vehicle * coverage_counts(
                background, params.rsu_xy_m, params.coverage_radius_m
            )
        queue, overflow = net.fluid_queue_update(  # §2.8: clip at L^max, excess absorbed by the cloud
            state.queue_cycles, arrivals, state.rsu.gpu_hz * params.slot_s, state.rsu.max_workload_cycles
        )
        applied_fraction = jnp.where(latency["premigrates"], fraction, 0.0)
        next_state = state.replace(
            t=state.t + 1,
            queue_cycles=queue,
            draws=self.sample_slot_draws(key, params),
            prev_latency_s=latency["total_latency_s"],
            prev_fraction=applied_fraction,
        )
        truncated = next_state.t >= self.config.max_steps
        terminated = jnp.array(False)  # no terminal states; bootstrap at the time limit (§5)
        info = {
            **{k: v for k, v in latency.items() if k.endswith("_s")},
            "premigrated": latency["premigrates"],
            "fraction": applied_fraction,
            "cloud_share": latency["cloud_bits"] / ctx.task_bits,
            "stay_time_s": ctx.stay_time_s,
            "target": target,
            "serving": ctx.serving,
            "queue_cycles": queue,
            "queue_fill": queue / state.rsu.max_workload_cycles,  # L_m(t+1) / L^max_m [M]
            "overflow_cycles": jnp.sum(overflow),
            "workload_violations": jnp.sum(overflow > 0),
        }
        return self.observation(next_state, params), next_state, reward, terminated, truncated, info


class AvatarPremigrationV1(AvatarPremigration):
    """AvatarPremigration-v1: `AvatarPremigrationV1Config`'s defaults (contention, relay downlink, background
    load); every v0 field still applies. `vmjax.make("AvatarPremigration-v1", **config)`."""

    env_id = "AvatarPremigration-v1"
    config_class = AvatarPremigrationV1Config


# ====================================================================== trajectory-predictor data (§4.3)
def simulate_trajectories(
    key, env: AvatarPremigration, num_vehicles: int = 10, num_slots: int = 8640, params: EnvParams | None = None
) -> jax.Array:
    """Training / held-out positions [num_slots, num_vehicles, 2] (metres) for the trajectory predictor, drawn
    with the env's own mobility: its `road_grid`, `params.mobility`, `params.slot_s` and
    `config.mobility_substeps` (§7.2), so the predictor learns the motion the env replays
    (`predict.simulate_trajectories` with this env's road and parameters). `params` defaults to
    `env.default_params`."""
    params = env.default_params if params is None else params
    return predict.simulate_trajectories(
        key, env.road_grid, params.mobility, params.slot_s, num_vehicles, num_slots, env.config.mobility_substeps
    )


def map_box_m(env: AvatarPremigration) -> tuple[np.ndarray, np.ndarray]:
    """The env's map box ((0, 0), (width, height)) in metres, a natural normalisation box for
    `predict.train_predictor` (`predict.map_box_m` of the road grid's extent)."""
    return predict.map_box_m(env.road_grid.extent_m)
