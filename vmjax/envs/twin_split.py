"""TwinSplit-v0: vehicle-twin (VT) task pre-migration with texture re-use and contention BER (spec 004).

Every 30 s slot each vehicle (agent) sends a VT request over the uplink to its serving RSU (the nearest),
which creates a VT task. The agent picks the pre-migration RSU a_v(t): a fraction alpha of the task moves
over the wired RSU-RSU link and is processed there in parallel with the rest at the serving RSU; both
return results over the downlink. Picking the serving RSU means "no pre-migration". Parts that stay on the
same RSU as in the previous slot re-use textures (mu). Vehicles that pre-migrate to the same RSU in the same
slot raise each other's bit error rate.

    observation  eq. (21), §5     `observation`    a_v(t-1), available RSU workloads, eps, phi, chi, T^total
                                                   (all of slot t-1); obs_mode="extended" adds position,
                                                   RSU distances, serving one-hot, D^task (d = 3E + 8)
    action       §5               `parse_action`   int32 [V] RSU (or RSU x alpha level with `alpha_levels`);
                                                   heuristics may pass {"target": int [V], "fraction": [V]} (§8)
    latency      (C1)-(C4), (1)-(11)  `slot_outcome`  uplink + max(local, migration + remote) + downlink
    BER, QoE     eqs. (12)-(15)   `slot_outcome`   eps_v = 1 - exp(-tau sum D^m chi); QoE = -l1 eps - l2 T
    reward       eq. (22)         `step_env`       r_v = -T^total_v (s); reward="qoe" gives QoE (15)
    transition   §2.7, §2.8       `step_env`       AR(1) background utilisation, new tasks, trajectories
                                                   replayed from `EnvParams.trace_bank` (e.g. an EST-TG
                                                   `generate_chained_bank`), synthetic road-grid fallback

Units: bits, seconds, metres, hertz (GPU cycles/s), watts; L in GPU cycles; tau per Mbit (§10-A13).
Bracketed tags in docstrings refer to the spec ([P] paper, [R] spec recommendation, [C] chosen here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax import mobility, net
from vmjax.core import fastrand, spaces, validation
from vmjax.core.env import Environment, traced_once

MBIT = 1e6
HOURLY_ACTIVITY = (  # w(h), spec 004 §4.8 (trough at 3-4 h, peaks at 8 h and 17-18 h)
    0.020,
    0.015,
    0.012,
    0.010,
    0.010,
    0.015,
    0.030,
    0.050,
    0.065,
    0.062,
    0.055,
    0.052,
    0.050,
    0.052,
    0.053,
    0.055,
    0.058,
    0.062,
    0.060,
    0.052,
    0.045,
    0.040,
    0.035,
    0.027,
)


# ====================================================================== configuration (static)
@dataclasses.dataclass(frozen=True)
class TwinSplitConfig:
    """Static configuration: sizes and switches that change shapes or code paths (`make` kwargs)."""

    num_vehicles: int = 10  # V agents [R §7.2]
    num_rsus: int = 4  # E, placed on a rows x cols grid over the map (2 x 2 for 4, 3 x 3 for 9) [R §7.2]
    max_steps: int = 100  # T slots per episode, no early termination [R §5]
    map_size_m: float = 5000.0  # square map side [R §4.8]
    obs_mode: Literal["faithful", "extended"] = "faithful"  # "faithful": eq. (21), d = E + 5 | "extended": d = 3E + 8
    # [R §5]
    reward: Literal["latency", "qoe"] = "latency"  # "latency": r = -T^total, eq. (22) [P] | "qoe": r = QoE, eq. (15)
    # [R]
    alpha_levels: tuple[float, ...] = ()  # () -> alpha = EnvParams.alpha; else joint action E x levels [R §5]
    rayleigh_fading: bool = False  # h multiplied by g ~ Exp(1) per (vehicle, RSU, slot) [R (C2)]
    downlink_power: Literal["vehicle", "rsu"] = "vehicle"  # "vehicle": p_v in (C4) as the paper [P] | "rsu":
    # EnvParams.rsu_tx_power_w
    num_background_vehicles: int = 0  # N_bg load-only generated vehicles, "with generated vehicles" (50) [R §7.3]
    observed_load: Literal["previous", "requested"] = "previous"  # L_E in eq. (21): "previous" the agents' load
    # of slot t-1 [R §10-A6] | "requested" the work requested at each RSU in slot t (every task as if it stays) [C]
    mobility_substeps: int = 4  # sub-steps per slot of the synthetic fallback mobility
    trace_bank: str = ""  # a trace bank .npz (`vmjax traces sumo --out`, or a run's trace_bank.npz) replayed
    # instead of the built-in mobility: resampled to the slot, centred on the map (vmjax.mobility.load_trace_bank);
    # "" = none

    def __post_init__(self):
        owner = "TwinSplitConfig"
        validation.check_str(owner, "trace_bank", self.trace_bank)
        validation.check_int_at_least(owner, "num_vehicles", self.num_vehicles, 1)
        validation.check_int_at_least(owner, "num_rsus", self.num_rsus, 2)
        validation.check_int_at_least(owner, "max_steps", self.max_steps, 1)
        validation.check_int_at_least(owner, "mobility_substeps", self.mobility_substeps, 1)
        validation.check_int_at_least(owner, "num_background_vehicles", self.num_background_vehicles, 0)
        validation.check_positive(owner, "map_size_m", self.map_size_m)
        validation.check_literal_fields(self)
        validation.check_bool_fields(self)
        if not isinstance(self.alpha_levels, tuple) or not all(0.0 < float(a) <= 1.0 for a in self.alpha_levels):
            raise ValueError(f"{owner}.alpha_levels must be a tuple of fractions in (0, 1], got {self.alpha_levels!r}")


@dataclasses.dataclass(frozen=True)
class TwinSplitV1Config(TwinSplitConfig):
    """TwinSplit-v1: v0 with an observation that can say "stay" and sees slot t's requests (the reasons, measured,
    are in docs/twin_split.md, "v0 -> v1"): the extended observation (position, RSU distances, serving RSU, task
    size) and L_E(t) as the work requested at each RSU in slot t (eq. 21 indexes it by t; the serving RSU has the
    requests before the pre-migration decision). The load and BER defaults are in `TwinSplitV1.default_params`."""

    obs_mode: Literal["faithful", "extended"] = "extended"
    observed_load: Literal["previous", "requested"] = "requested"


def grid_backhaul_bps(num_rsus: int, base_bps: float = 500e6) -> np.ndarray:
    """B_{e,e'} = 500 Mb/s / max(Manhattan hops between grid cells, 1) [R §7.2]."""
    hops = net.grid_manhattan_hops(*net.rsu_grid_shape(num_rsus))
    return (base_bps / np.maximum(hops, 1)).astype(np.float32)


# ====================================================================== parameters (pytree, vmappable)
@struct.dataclass
class EnvParams:
    """Every physical constant of spec 004 §7.2 [R defaults] in SI units. Per-episode draws (C_e, f_v, u_e)
    come from the ranges below; set low == high to fix one value."""

    rsu_xy_m: jax.Array  # [E, 2] P_e
    backhaul_bps: jax.Array  # [E, E] B_{e,e'} wired RSU-RSU link rates
    map_extent_m: jax.Array  # [2] map width, height (extended observation scale)
    mobility: mobility.MobilityParams  # synthetic fallback mobility (used when trace_bank is None)
    trace_bank: mobility.Trace | None = None  # [T_bank >= T + 1, N_bank >= V, 2] replayed trajectories (§4.9)
    hourly_activity: jax.Array = struct.field(default_factory=lambda: jnp.asarray(HOURLY_ACTIVITY, jnp.float32))
    # radio (C1)-(C4)
    uplink_bandwidth_hz: float = 20e6  # B^u_e
    downlink_bandwidth_hz: float = 20e6  # B^d_e
    vehicle_tx_power_w: float = 0.2  # p_v (23 dBm)
    rsu_tx_power_w: float = 0.2  # p_rsu, only with downlink_power="rsu"
    noise_density_dbm_per_hz: float = -174.0  # N0; sigma^2 = N0 B (7.96e-14 W at 20 MHz)
    channel_gain_coeff: float = 1.0  # A
    carrier_hz: float = 5.9e9  # f_c
    path_loss_exponent: float = 2.0  # free space (C2)
    rsu_height_m: float = 10.0  # H_rsu, d = sqrt(dx^2 + dy^2 + H^2) >= H [R]
    # computation (4)-(9), §2.7
    gpu_hz_nominal: float = 60e9  # C_nom; C_e = C_nom U[gpu_scale_low, gpu_scale_high] per RSU per episode
    gpu_scale_low: float = 0.8
    gpu_scale_high: float = 1.2
    max_workload_cycles: float = 2.4e11  # L^max_e
    cycles_per_bit_low: float = 800.0  # f_v ~ U[800, 1200] per vehicle per episode
    cycles_per_bit_high: float = 1200.0
    request_bits_low: float = 1 * MBIT  # D^u_v(t) ~ U[1, 3] Mbit
    request_bits_high: float = 3 * MBIT
    task_bits_low: float = 10 * MBIT  # D^task_v(t) ~ U[10, 30] Mbit
    task_bits_high: float = 30 * MBIT
    result_ratio: float = 0.2  # kappa_d: D^d = kappa_d x processed part
    alpha: float = 0.5  # pre-migrated fraction of the RL agents (no alpha_levels)
    texture_reuse: float = 0.5  # mu
    # BER and QoE (12)-(15)
    ber_scale_per_mbit: float = 0.02  # tau, per Mbit of others' pre-migrated data
    qoe_ber_weight: float = 1.0  # lambda_1
    qoe_latency_weight_per_s: float = 1.0  # lambda_2
    violation_penalty: float = 0.0  # eta_viol per RSU over L^max, subtracted from every reward [R §2.7]
    background_cycles_per_vehicle: float = 2e9  # c_bg per generated vehicle whose nearest RSU is e [R §2.7]
    # background utilisation u_e(t), AR(1) §2.7
    util_ar_coeff: float = 0.9  # rho_u
    util_noise_std: float = 0.03  # sigma_u
    util_max: float = 0.6  # u_max
    util_mean_low: float = 0.2  # u-bar_e ~ U[0.2, 0.4]
    util_mean_high: float = 0.4
    util_init_low: float = 0.1  # u_e(1) ~ U[0.1, 0.4]
    util_init_high: float = 0.4
    slot_s: float = 30.0  # Delta t
    latency_obs_scale_s: float = 1.0  # T_norm of the observation


_POSITIVE_FIELDS = (
    "uplink_bandwidth_hz",
    "downlink_bandwidth_hz",
    "vehicle_tx_power_w",
    "rsu_tx_power_w",
    "channel_gain_coeff",
    "carrier_hz",
    "path_loss_exponent",
    "rsu_height_m",
    "gpu_hz_nominal",
    "gpu_scale_low",
    "max_workload_cycles",
    "cycles_per_bit_low",
    "request_bits_low",
    "task_bits_low",
    "slot_s",
    "latency_obs_scale_s",
)
_NON_NEGATIVE_FIELDS = (
    "result_ratio",
    "ber_scale_per_mbit",
    "qoe_ber_weight",
    "qoe_latency_weight_per_s",
    "violation_penalty",
    "util_noise_std",
    "util_max",
    "util_mean_low",
    "util_init_low",
    "background_cycles_per_vehicle",
)
_PROBABILITY_FIELDS = ("alpha", "texture_reuse", "util_ar_coeff")
_RANGES = (
    ("gpu_scale_low", "gpu_scale_high"),
    ("cycles_per_bit_low", "cycles_per_bit_high"),
    ("request_bits_low", "request_bits_high"),
    ("task_bits_low", "task_bits_high"),
    ("util_mean_low", "util_mean_high"),
    ("util_init_low", "util_init_high"),
)


# ====================================================================== state (pytree)
@struct.dataclass
class SlotDraws:
    """The coming slot's random quantities, drawn one slot ahead so observations and heuristics see them."""

    request_bits: jax.Array  # [V] D^u_v(t)
    task_bits: jax.Array  # [V] D^task_v(t)
    fading: jax.Array | None  # [V, E] g ~ Exp(1), or None


@struct.dataclass
class EnvState:
    t: jax.Array  # () slot index, 0-based (the spec's t = 1 is t = 0 here)
    trace: mobility.Trace  # [T + 1, V + N_bg, 2] this episode's trajectories, agents first
    hour0: jax.Array  # () int32 start hour h0 ~ w(h) [R §4.9]
    gpu_scale: jax.Array  # [E] C_e / C_nom
    cycles_per_bit: jax.Array  # [V] f_v
    util_mean: jax.Array  # [E] u-bar_e
    util: jax.Array  # [E] u_e(t)
    draws: SlotDraws
    prev_serving: jax.Array  # [V] e_v(t-1)
    prev_target: jax.Array  # [V] a_v(t-1) (the serving RSU at t = 0)
    prev_local_bits: jax.Array  # [V] D^L_v(t-1)
    prev_premigrated_bits: jax.Array  # [V] D^m_v(t-1)
    prev_agent_cycles: jax.Array  # [E] sum_v c_{v,e}(t-1)
    prev_ber: jax.Array  # [V] eps_v(t-1)
    prev_stable: jax.Array  # [V] phi_v(t-1)
    prev_collision: jax.Array  # [V] chi_v(t-1)
    prev_latency_s: jax.Array  # [V] T^total_v(t-1)


@struct.dataclass
class SlotContext:
    """Everything slot t's latency depends on besides the action (§2.8 steps 1-3)."""

    distance_m: jax.Array  # [V, E] d_{v,e}(t), (C1) with the RSU height
    serving: jax.Array  # [V] e_v(t)
    same_serving: jax.Array  # [V] I_v(t)
    has_previous: jax.Array  # () t > 1 in the spec's numbering
    prev_target: jax.Array  # [V] a_v(t-1)
    prev_local_bits: jax.Array  # [V] D^L_v(t-1)
    prev_premigrated_bits: jax.Array  # [V] D^m_v(t-1)
    request_bits: jax.Array  # [V] D^u_v(t)
    task_bits: jax.Array  # [V] D^task_v(t)
    cycles_per_bit: jax.Array  # [V] f_v
    fading: jax.Array | None  # [V, E] or None
    util: jax.Array  # [E] u_e(t)
    gpu_hz: jax.Array  # [E] C_e
    generated_cycles: jax.Array | float = 0.0  # [E] n_bg,e(t) c_bg, load of the generated vehicles [R §2.7]


# ====================================================================== the slot model
def slot_outcome(ctx: SlotContext, target, alpha, params: EnvParams, downlink_power: str = "vehicle"):
    """Per-vehicle latency parts, BER and QoE of slot t for pre-migration RSUs `target` [V] and fractions
    `alpha` [V] (§2.8 steps 4-13). Picking the serving RSU, or alpha = 0, means no pre-migration [R]."""
    v, e = ctx.distance_m.shape
    vehicles = jnp.arange(v)
    serving = ctx.serving
    premigrated = alpha * ctx.task_bits * (target != serving)  # D^m [R]
    migrates = premigrated > 0.0
    local = ctx.task_bits - premigrated  # eq. (5) D^L
    stable = (target == ctx.prev_target) & ctx.has_previous  # eq. (7) phi
    xi_local = net.reuse_discounted_bits(local, ctx.prev_local_bits, ctx.same_serving, params.texture_reuse)  # eq. (4)
    xi_remote = net.reuse_discounted_bits(premigrated, ctx.prev_premigrated_bits, stable, params.texture_reuse)  # (8)
    f = ctx.cycles_per_bit
    # §2.7: agent load c_{v,e}; the workload v sees is the background plus everyone else's load (eqs. 6, 9)
    onehot_serving = jax.nn.one_hot(serving, e)
    onehot_target = jax.nn.one_hot(target, e) * migrates[:, None]
    agent_cycles = (f * xi_local)[:, None] * onehot_serving + (f * xi_remote)[:, None] * onehot_target  # [V, E]
    total_agent_cycles = jnp.sum(agent_cycles, axis=0)
    background_cycles = ctx.util * params.max_workload_cycles + ctx.generated_cycles
    seen_cycles = background_cycles + total_agent_cycles[None, :] - agent_cycles  # L^(v)_e
    # communication (C1)-(C4), eqs. (1)-(2)
    fading = jnp.ones((v, e)) if ctx.fading is None else ctx.fading
    d_serving, d_target = ctx.distance_m[vehicles, serving], ctx.distance_m[vehicles, target]
    g_serving, g_target = fading[vehicles, serving], fading[vehicles, target]
    down_power = params.vehicle_tx_power_w if downlink_power == "vehicle" else params.rsu_tx_power_w
    # R = B log2(1 + p h / sigma^2), h = g A (c / (4 pi f_c d))^2, sigma^2 = N0 B: (C2)-(C4)
    channel = {
        "gain_coeff": params.channel_gain_coeff,
        "carrier_hz": params.carrier_hz,
        "exponent": params.path_loss_exponent,
    }
    noise_w = lambda bandwidth_hz: net.noise_power_watts(params.noise_density_dbm_per_hz, bandwidth_hz)
    up_b, down_b = params.uplink_bandwidth_hz, params.downlink_bandwidth_hz
    uplink_bps = net.link_rate_bps(
        d_serving, up_b, params.vehicle_tx_power_w, noise_w(up_b), fading=g_serving, **channel
    )
    down_serving_bps = net.link_rate_bps(d_serving, down_b, down_power, noise_w(down_b), fading=g_serving, **channel)
    down_target_bps = net.link_rate_bps(d_target, down_b, down_power, noise_w(down_b), fading=g_target, **channel)
    uplink_s = net.transfer_latency_s(ctx.request_bits, uplink_bps)  # eq. (1)
    downlink_s = net.transfer_latency_s(params.result_ratio * local, down_serving_bps) + jnp.where(  # eq. (2)
        migrates, net.transfer_latency_s(params.result_ratio * premigrated, down_target_bps), 0.0
    )
    # computation: eqs. (3), (6), (9), (10); absent parts take no time [R]
    gpu_serving, gpu_target = ctx.gpu_hz[serving], ctx.gpu_hz[target]
    local_s = jnp.where(
        local > 0, net.compute_latency_s(seen_cycles[vehicles, serving], xi_local * f, gpu_serving), 0.0
    )
    migration_s = jnp.where(migrates, net.transfer_latency_s(premigrated, params.backhaul_bps[serving, target]), 0.0)
    remote_s = jnp.where(migrates, net.compute_latency_s(seen_cycles[vehicles, target], xi_remote * f, gpu_target), 0.0)
    processing_s = net.split_processing_latency_s(local_s, migration_s, remote_s)
    total_s = uplink_s + processing_s + downlink_s  # eq. (11)
    # BER and QoE, eqs. (12)-(15)
    ber = net.contention_bit_error_rate(premigrated / MBIT, target, migrates, params.ber_scale_per_mbit)
    collision = jnp.any(
        (target[:, None] == target[None, :]) & migrates[:, None] & migrates[None, :] & ~jnp.eye(v, dtype=bool), axis=1
    )
    qoe = -params.qoe_ber_weight * ber - params.qoe_latency_weight_per_s * total_s
    return {
        "total_latency_s": total_s,
        "uplink_s": uplink_s,
        "local_processing_s": local_s,
        "migration_s": migration_s,
        "remote_processing_s": remote_s,
        "processing_s": processing_s,
        "downlink_s": downlink_s,
        "uplink_bps": uplink_bps,
        "ber": ber,
        "qoe": qoe,
        "collision": collision,
        "stable": stable,
        "premigrated_bits": premigrated,
        "local_bits": local,
        "migrates": migrates,
        "agent_cycles": total_agent_cycles,
        "seen_cycles": seen_cycles,
        "workload_violation": background_cycles + total_agent_cycles > params.max_workload_cycles,  # (16b,c) log
    }


def requested_cycles(ctx: SlotContext, params: EnvParams) -> jax.Array:
    """The work requested at each RSU in slot t if every vehicle stays: sum over the vehicles it serves of
    f_v xi_{v,e}(t) with D^L = D^task, eq. (4) with texture re-use [E] (cycles)."""
    stay_bits = net.reuse_discounted_bits(ctx.task_bits, ctx.prev_local_bits, ctx.same_serving, params.texture_reuse)
    return jax.ops.segment_sum(ctx.cycles_per_bit * stay_bits, ctx.serving, num_segments=ctx.distance_m.shape[1])


def next_utilisation(key, util, util_mean, hour_weight, params: EnvParams):
    """u_e(t+1) = clip(rho u + (1 - rho) u-bar w(h) / max w + sigma zeta, 0, u_max) (§2.7 [R])."""
    zeta = fastrand.normal(key, util.shape)
    rho = params.util_ar_coeff
    u = rho * util + (1.0 - rho) * util_mean * hour_weight + params.util_noise_std * zeta
    return jnp.clip(u, 0.0, params.util_max)


# ====================================================================== the environment
class TwinSplit(Environment):
    """Spec 004 scenario; `TwinSplit(**config)` or `vmjax.make("TwinSplit-v0", **config)`."""

    params_class = EnvParams
    env_id = "TwinSplit-v0"
    agent_role = "vehicle"
    config_class: type = TwinSplitConfig

    def __init__(self, **config):
        self.config = validation.config_from_kwargs(self.config_class, self.env_id, config)
        c = self.config
        self.num_agents, self.num_rsus = c.num_vehicles, c.num_rsus
        self.num_levels = max(len(c.alpha_levels), 1)
        self.num_actions = c.num_rsus * self.num_levels
        self.num_traced = c.num_vehicles + c.num_background_vehicles
        self.obs_dim = c.num_rsus + 5 if c.obs_mode == "faithful" else 3 * c.num_rsus + 8
        size = c.map_size_m
        self.road_grid = mobility.urban_grid((size, size), (size / 2, size / 2), size / 20, size / 10, (3.0,))
        if c.trace_bank:
            self.default_params  # noqa: B018 - read the bank now: a bad file fails in make(), with the file named

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def default_params(self) -> EnvParams:
        c = self.config
        params = EnvParams(
            rsu_xy_m=jnp.asarray(net.grid_rsu_positions(c.num_rsus, c.map_size_m)),
            backhaul_bps=jnp.asarray(grid_backhaul_bps(c.num_rsus)),
            map_extent_m=jnp.full((2,), c.map_size_m, jnp.float32),
            mobility=mobility.MobilityParams(),
        )
        if not c.trace_bank:
            return params
        bank = mobility.load_trace_bank(
            c.trace_bank,
            float(params.slot_s),
            (c.map_size_m, c.map_size_m),
            c.max_steps + 1,
            self.num_traced,
            owner=f"{type(c).__name__}.trace_bank",
        )
        return params.replace(trace_bank=bank)

    def validate_params(self, params: EnvParams) -> None:
        owner, c = "EnvParams", self.config
        validation.check_fields(
            owner,
            params,
            positive=_POSITIVE_FIELDS,
            non_negative=_NON_NEGATIVE_FIELDS,
            probability=_PROBABILITY_FIELDS,
            ranges=_RANGES,
        )
        validation.check_noise_density(owner, "noise_density_dbm_per_hz", params.noise_density_dbm_per_hz)
        validation.check_shape(owner, "rsu_xy_m", params.rsu_xy_m, (c.num_rsus, 2))
        validation.check_finite(owner, "rsu_xy_m", params.rsu_xy_m)
        validation.check_shape(owner, "backhaul_bps", params.backhaul_bps, (c.num_rsus, c.num_rsus))
        validation.check_positive(owner, "backhaul_bps", params.backhaul_bps)
        validation.check_shape(owner, "map_extent_m", params.map_extent_m, (2,))
        validation.check_positive(owner, "map_extent_m", params.map_extent_m)
        validation.check_shape(owner, "hourly_activity", params.hourly_activity, (24,))
        validation.check_positive(owner, "hourly_activity", params.hourly_activity)
        mobility.validate_params(params.mobility)
        mobility.check_trace_bank(
            owner, params.trace_bank, c.max_steps + 1, self.num_traced, "num_vehicles + num_background_vehicles"
        )

    # ------------------------------------------------------------------ spaces
    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions, shape=(self.num_agents,))

    def observation_space(self, params=None) -> spaces.Box:
        high = np.full((self.num_agents, self.obs_dim), np.inf, np.float32)
        high[:, : self.num_rsus + 4] = 1.0  # a/(E-1), available loads, eps, phi, chi
        if self.config.obs_mode == "extended":
            high[:, self.num_rsus + 5 :] = np.inf
            high[:, self.num_rsus + 5 : self.num_rsus + 7] = 1.0  # position
            high[:, -self.num_rsus - 1 :] = 1.0  # serving one-hot, D^task / D^task_max
        return spaces.Box(0.0, high, (self.num_agents, self.obs_dim))

    def action_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Every RSU (and level) is selectable [V, num_actions]."""
        return jnp.ones((self.num_agents, self.num_actions), bool)

    # ------------------------------------------------------------------ reset
    @traced_once
    def reset_env(self, key, params: EnvParams):
        c, v, e = self.config, self.num_agents, self.num_rsus
        k_traj, k_hour, k_gpu, k_f, k_umean, k_uinit, k_draw = jax.random.split(key, 7)
        if params.trace_bank is None:
            trace = mobility.generate_trajectories(
                k_traj,
                self.road_grid,
                params.mobility,
                self.num_traced,
                c.max_steps + 1,
                params.slot_s,
                c.mobility_substeps,
            )
        else:  # V + N_bg distinct rows of the bank (§4.9)
            bank = params.trace_bank.positions_m
            rows = jnp.argsort(fastrand.uniform(k_traj, (bank.shape[1],)))[: self.num_traced]
            trace = mobility.Trace(positions_m=bank[: c.max_steps + 1, rows])
        trace = mobility.Trace(positions_m=trace.positions_m)
        hour0 = jax.random.categorical(k_hour, jnp.log(params.hourly_activity)).astype(jnp.int32)
        state = EnvState(
            t=jnp.int32(0),
            trace=trace,
            hour0=hour0,
            gpu_scale=fastrand.uniform(k_gpu, (e,), params.gpu_scale_low, params.gpu_scale_high),
            cycles_per_bit=fastrand.uniform(k_f, (v,), params.cycles_per_bit_low, params.cycles_per_bit_high),
            util_mean=fastrand.uniform(k_umean, (e,), params.util_mean_low, params.util_mean_high),
            util=fastrand.uniform(k_uinit, (e,), params.util_init_low, params.util_init_high),
            draws=self.sample_slot_draws(k_draw, params),
            prev_serving=jnp.zeros(v, jnp.int32),
            prev_target=self.serving_rsu(trace.position_at(0)[:v], params),
            prev_local_bits=jnp.zeros(v, jnp.float32),
            prev_premigrated_bits=jnp.zeros(v, jnp.float32),
            prev_agent_cycles=jnp.zeros(e, jnp.float32),
            prev_ber=jnp.zeros(v, jnp.float32),
            prev_stable=jnp.zeros(v, jnp.float32),
            prev_collision=jnp.zeros(v, jnp.float32),
            prev_latency_s=jnp.zeros(v, jnp.float32),
        )
        return self.observation(state, params), state

    def sample_slot_draws(self, key, params: EnvParams) -> SlotDraws:
        """D^u ~ U, D^task ~ U per vehicle and slot [R §7.2] and, when enabled, the fading (§2.8 step 3)."""
        v = self.num_agents
        request = fastrand.uniform(key, (v,), params.request_bits_low, params.request_bits_high, stream=0)
        task = fastrand.uniform(key, (v,), params.task_bits_low, params.task_bits_high, stream=1)
        fading = net.rayleigh_power_gain(key, (v, self.num_rsus), stream=2) if self.config.rayleigh_fading else None
        return SlotDraws(request_bits=request, task_bits=task, fading=fading)

    # ------------------------------------------------------------------ what the agents see
    def distances_m(self, position_m, params: EnvParams):
        """(C1) with the RSU antenna height [R]: d = sqrt(dx^2 + dy^2 + H^2) [V, E]."""
        ground = net.pairwise_planar_distance_m(position_m, params.rsu_xy_m)
        return net.distance_with_height_m(ground, params.rsu_height_m)

    def serving_rsu(self, position_m, params: EnvParams):
        """e_v(t) = argmin_e d_{v,e}(t), ties to the lower index [R §2.1]."""
        return jnp.argmin(self.distances_m(position_m, params), axis=-1).astype(jnp.int32)

    def generated_cycles(self, state: EnvState, params: EnvParams) -> jax.Array:
        """n_bg,e(t) c_bg: c_bg per generated (non-agent) vehicle whose nearest RSU is e [R §2.7], [E]."""
        if not self.config.num_background_vehicles:
            return jnp.zeros(self.num_rsus, jnp.float32)
        nearest = self.serving_rsu(state.trace.position_at(state.t)[self.num_agents :], params)
        return params.background_cycles_per_vehicle * jnp.sum(jax.nn.one_hot(nearest, self.num_rsus), axis=0)

    def slot_context(self, state: EnvState, params: EnvParams) -> SlotContext:
        position = state.trace.position_at(state.t)[: self.num_agents]
        distance = self.distances_m(position, params)
        serving = jnp.argmin(distance, axis=-1).astype(jnp.int32)
        has_previous = state.t > 0
        return SlotContext(
            distance_m=distance,
            serving=serving,
            same_serving=(serving == state.prev_serving) & has_previous,  # I_v(t), I_v(1) = 0 [R]
            has_previous=has_previous,
            prev_target=state.prev_target,
            prev_local_bits=state.prev_local_bits,
            prev_premigrated_bits=state.prev_premigrated_bits,
            request_bits=state.draws.request_bits,
            task_bits=state.draws.task_bits,
            cycles_per_bit=state.cycles_per_bit,
            fading=state.draws.fading,
            util=state.util,
            gpu_hz=params.gpu_hz_nominal * state.gpu_scale,
            generated_cycles=self.generated_cycles(state, params),
        )

    def available_workload(self, state: EnvState, params: EnvParams) -> jax.Array:
        """L_E of eq. (21), the available workload share of every RSU [E]: clip(1 - (u_e(t) L^max + agents' load
        + n_bg,e(t) c_bg) / L^max, 0, 1), the agents' load being sum_v c_{v,e}(t-1) (observed_load="previous")
        or slot t's `requested_cycles` ("requested")."""
        if self.config.observed_load == "previous":
            agent_cycles = state.prev_agent_cycles
        else:
            agent_cycles = requested_cycles(self.slot_context(state, params), params)
        used = agent_cycles + self.generated_cycles(state, params)
        return jnp.clip(1.0 - (state.util + used / params.max_workload_cycles), 0.0, 1.0)

    def observation(self, state: EnvState, params: EnvParams) -> jax.Array:
        """o_v(t), eq. (21) with the slot t-1 values [R §5]: [a_v(t-1)/(E-1), available workload of every RSU
        clip(1 - (u_e(t) L^max + sum_v c_{v,e}(t-1)) / L^max, 0, 1), eps, phi, chi, T^total / T_norm]. With
        generated vehicles their current load n_bg,e(t) c_bg counts as background too [C]. With
        observed_load="requested" the agents' term is slot t's `requested_cycles` instead of c(t-1) [C]."""
        v, e = self.num_agents, self.num_rsus
        available = self.available_workload(state, params)
        parts = [
            (state.prev_target / (e - 1))[:, None],
            jnp.broadcast_to(available, (v, e)),
            state.prev_ber[:, None],
            state.prev_stable[:, None],
            state.prev_collision[:, None],
            (state.prev_latency_s / params.latency_obs_scale_s)[:, None],
        ]
        if self.config.obs_mode == "extended":  # position, distances, serving one-hot, D^task [R §5]
            position = state.trace.position_at(state.t)[:v]
            distance = self.distances_m(position, params)
            parts += [
                jnp.clip(position / params.map_extent_m, 0.0, 1.0),
                distance / jnp.linalg.norm(params.map_extent_m),
                jax.nn.one_hot(jnp.argmin(distance, axis=-1), e),
                (state.draws.task_bits / params.task_bits_high)[:, None],
            ]
        return jnp.concatenate(parts, axis=-1).astype(jnp.float32)

    def world_state(self, state: EnvState, params: EnvParams) -> jax.Array:
        """s(t) = all V observations (§5), plus the agent's one-hot id: [V, V d + V]."""
        return self.world_state_from_observation(self.observation(state, params))

    # ------------------------------------------------------------------ action
    def parse_action(self, action, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """(target RSU [V] int32, alpha [V]) from an int32 [V] action (RSU index, or RSU * levels + level
        with `alpha_levels`), or from {"target": int [V], "fraction": float [V]} for heuristics (§8). Shape
        and dtype errors are ValueErrors at trace time; values are clipped into range inside jit."""
        v = self.num_agents
        if isinstance(action, Mapping):
            if set(action) != {"target", "fraction"}:
                raise ValueError(f"a dict action must have keys ['fraction', 'target'], got {sorted(action)}")
            target, fraction = jnp.asarray(action["target"]), jnp.asarray(action["fraction"])
            if fraction.shape != (v,) or not jnp.issubdtype(fraction.dtype, jnp.floating):
                raise ValueError(
                    f"action['fraction'] must be floating with shape ({v},), got {fraction.dtype} {fraction.shape}"
                )
            alpha = jnp.clip(jnp.where(jnp.isnan(fraction), 0.0, fraction), 0.0, 1.0)
        else:
            target, alpha = jnp.asarray(action), None
        if target.shape != (v,):
            raise ValueError(f"action must have shape ({v},) (one RSU index per vehicle), got {target.shape}")
        if not jnp.issubdtype(target.dtype, jnp.integer):
            raise ValueError(f"action must be integer RSU indices, got dtype {target.dtype}")
        if alpha is None:
            index = jnp.clip(target, 0, self.num_actions - 1)
            target = index // self.num_levels
            levels = self.config.alpha_levels
            alpha = (
                jnp.full((v,), params.alpha)
                if not levels
                else jnp.asarray(levels, jnp.float32)[index % self.num_levels]
            )
        return jnp.clip(target, 0, self.num_rsus - 1).astype(jnp.int32), alpha

    # ------------------------------------------------------------------ transition and reward
    @traced_once
    def step_env(self, key, state: EnvState, action, params: EnvParams):
        c = self.config
        target, alpha = self.parse_action(action, params)
        ctx = self.slot_context(state, params)
        out = slot_outcome(ctx, target, alpha, params, c.downlink_power)
        violations = jnp.sum(out["workload_violation"])
        reward = -out["total_latency_s"] if c.reward == "latency" else out["qoe"]  # eq. (22) / eq. (15)
        reward = reward - params.violation_penalty * violations
        k_util, k_draw = jax.random.split(key)
        hour = (state.hour0 + jnp.floor(state.t * params.slot_s / 3600.0).astype(jnp.int32)) % 24
        weight = params.hourly_activity[hour] / jnp.max(params.hourly_activity)
        next_state = state.replace(
            t=state.t + 1,
            util=next_utilisation(k_util, state.util, state.util_mean, weight, params),
            draws=self.sample_slot_draws(k_draw, params),
            prev_serving=ctx.serving,
            prev_target=target,
            prev_local_bits=out["local_bits"],
            prev_premigrated_bits=out["premigrated_bits"],
            prev_agent_cycles=out["agent_cycles"],
            prev_ber=out["ber"],
            prev_stable=out["stable"].astype(jnp.float32),
            prev_collision=out["collision"].astype(jnp.float32),
            prev_latency_s=out["total_latency_s"],
        )
        truncated = next_state.t >= c.max_steps
        terminated = jnp.array(False)  # finite horizon, no terminal states (§5)
        info = {
            **{
                k: out[k]
                for k in (
                    "total_latency_s",
                    "uplink_s",
                    "local_processing_s",
                    "migration_s",
                    "remote_processing_s",
                    "processing_s",
                    "downlink_s",
                    "ber",
                    "qoe",
                    "premigrated_bits",
                    "migrates",
                    "collision",
                    "stable",
                )
            },
            "target": target,
            "serving": ctx.serving,
            "alpha": alpha,
            "workload_violations": violations,
        }
        return self.observation(next_state, params), next_state, reward, terminated, truncated, info


class TwinSplitV1(TwinSplit):
    """TwinSplit-v1: `TwinSplitV1Config` (extended observation, slot t's requested load) and a world whose load
    is driven by the vehicles' own VT tasks, with a bit-error scale at which pre-migrating can pay (docs/
    twin_split.md, "v0 -> v1"). Every v0 field still applies. `vmjax.make("TwinSplit-v1", **config)`."""

    env_id = "TwinSplit-v1"
    config_class = TwinSplitV1Config

    @property
    def default_params(self) -> EnvParams:
        return super().default_params.replace(**V1_PARAMS)


V1_PARAMS = {
    "util_mean_low": 0.02,  # u-bar_e ~ U[0.02, 0.06]: a background of a few percent of L^max (v0: U[0.2, 0.4])
    "util_mean_high": 0.06,
    "util_init_low": 0.01,  # u_e(1) ~ U[0.01, 0.06] (v0: U[0.1, 0.4])
    "util_init_high": 0.06,
    "util_noise_std": 0.005,  # sigma_u scaled with the mean (v0: 0.03 on a mean of 0.3)
    "ber_scale_per_mbit": 0.002,  # tau: a co-located 10 Mbit part adds ~2% BER (v0: 0.02, ~18%)
}
"""TwinSplit-v1's parameter defaults that differ from v0's (`EnvParams` fields)."""
