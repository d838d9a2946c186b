"""TwinRouting-v0: vehicle-twin migration routing over RSUs, patrolling UAVs and one satellite (spec 002).

Every 30 s slot each vehicle (agent) picks the edge server that hosts its digital twin (VT) for the slot:
one of N ground RSUs, U UAVs patrolling closed loops among the RSUs at cruise altitude, or the LEO
satellite, so the sequence of choices is the twin's migration route. The vehicle uploads S_v bits, the host
computes behind its whole cache (FIFO), results come back down; a new host means migrating S^mig bits from
the previous one. An overloaded host hands the computation to the satellite and counts as a service
failure, as does a host out of range. The dynamic mask marks servers out of range, about to overflow, or
absent (UAVs that have not yet entered or have left, padded or switched-off servers) as infeasible.

    observation  eq. (19), §5.2   `observation`    distances to RSUs/UAVs, forecast loads S^o of all M servers
    action       eq. (20), §5.3   `parse_action`   int32 [V]: the hosting server (0..N-1 RSU, N..N+U-1 UAV, M-1 sat.)
    mask         eq. (23), §5.3   `action_mask`    present & in range & no predicted overflow (+ fallback)
    latency      eqs. (1)-(13)    `slot_latency`   uplink + downlink + computing (overflow -> satellite) + migration
    failure      eqs. (14)-(15)   `failure_flag`, `packet_loss_rate`
    reward       eqs. (21)-(22)   `step_env`       -(w_T z_T(T_sum) + w_s z_S(S'_a) + w_d xi), z-scored (§3.3)
    transition   §5.5, §7.3       `step_env`       fluid caches drained kappa_m per slot, new background load,
                                                  vehicles on their trajectories, UAVs on their loops
    info         §3.1, §8.2       `step_env`       per vehicle: latency parts (migration_s, total_latency_s, ...),
                                                  migrated (J), failure (xi) and its causes, packet_loss_rate
                                                  (eq. 15 so far), z-scores; per slot: workload variance (16b)

Greedy and Random (§8.1) are in `baselines/twin_routing.py`; `calibrate_norm_stats` computes the fixed
z-score constants of §3.3 (A) for a config.

Servers are indexed RSUs first, then UAVs, then the satellite (M = N + U + 1; the satellite slot exists
even when `use_satellite=False`, always absent then, so every ablation keeps the action head's size).
Positions are metres east/north of a map origin at latitude `origin_lat_deg`; distances are the haversine
on those positions' spherical coordinates (§2.1, eq. 1') with the UAV altitude added (eq. 2).

Cost (issue 19): the haversine is split into per-point work (`ground_points`: the trigonometry, once per
point) and per-pair work (`points_distance_m`: a few products, a polynomial arcsine); the [V, M] distances and
the UAVs' nearest-RSU search run as loops over vehicles / UAVs (`rows_by_loop`: computed once, vectorised over
the worlds of a batch, where XLA's CPU backend would otherwise copy a fused pair table into each of its
users). `tests/test_twin_routing_speed.py` holds the rollouts of the implementation before that, which this
one reproduces to float32 tolerance.

Bracketed tags in docstrings refer to the spec ([P] paper, [REC] the spec's recommendation, [C] chosen
here where the spec is silent).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax import mobility, net
from vmjax.core import fastrand, spaces, validation
from vmjax.core.env import Environment, is_concrete, traced_once
from vmjax.core.stats import RunningMoments
from vmjax.mobility import patrol

MB = net.BITS_PER_MEGABYTE
NEVER = patrol.NEVER  # a vehicle trip or a UAV stay that lasts past the episode
ALWAYS = patrol.ALWAYS

WorkloadForecast = Literal["none", "persistence", "oracle", "predictor"]
FORECASTS = typing.get_args(WorkloadForecast)


def literal_gain_coeff(snr_ref_db: float) -> float:
    """A of eq. (3) calibrated so that SNR(1200 m) = snr_ref with p = 1000 W, sigma^2 = 10, f = 3.5 GHz (§2.3);
    10 dB gives 3.0951e9."""
    return float(net.calibrated_gain_coeff(10.0 ** (snr_ref_db / 10.0), 10.0, 1000.0, 1200.0, 3.5e9, 2.0))


# ====================================================================== configuration (static)
@dataclasses.dataclass(frozen=True)
class TwinRoutingConfig:
    """Static configuration: sizes and switches that change shapes or code paths (`make` kwargs)."""

    num_vehicles: int = 5  # V agents [P]
    num_rsus: int = 76  # N [REC #30: rural 68 / city 84 / default 76]
    num_uavs: int = 10  # U [P]; 0 removes the UAV slots
    max_steps: int = 120  # T_ep slots of 30 s [REC §7.2]
    layout: Literal["city", "rural"] = "city"  # "city": jittered RSU grid | "rural": RSU clusters along sparse roads
    # [REC §7.2]
    city_size_m: float = 8000.0  # city map side [REC]
    rural_size_m: float = 20000.0  # rural map side [REC]
    layout_seed: int = 0  # RSU placement draw (static layout)
    uav_loop_rsus: int = 4  # RSUs on each UAV patrol loop [REC]
    origin_lat_deg: float = 39.9  # map origin latitude (T-Drive, Beijing) [REC]
    distance_model: Literal["haversine", "planar"] = "haversine"  # "haversine" (eq. 1'-2) | "planar" (Euclidean, §2.1
    # [REC, optional])
    haversine_variant: Literal["standard", "printed"] = "standard"  # "standard" (eq. 1') | "printed" (the paper's eq.
    # 1, §2.1)
    parameter_set: Literal["calibrated", "literal"] = "calibrated"  # "calibrated" (§11, default for learning) |
    # "literal" (§7, Table I)
    snr_ref_db: float = 10.0  # "literal": A calibrated so that SNR(1200 m) = this (§2.3)
    # ablations (§8.2)
    use_uavs: bool = True  # False: no UAVs (#1; the UAV slots stay, always absent)
    use_satellite: bool = True  # False: no satellite (#2; the slot stays, always absent)
    use_mask: bool = True  # False: the mask is presence only (#4)
    workload_forecast: WorkloadForecast = "persistence"  # S^pre in the observation and the mask (#8): "predictor"
    # (DM-MAPPO,
    # `EnvParams.workload_predictor`), "persistence" (last slot's load, the spec's "w/o prediction"),
    # "oracle" (the true load of the slot), "none" (no background estimate: S^o = cached work Q only)
    forecast_units: Literal["bits", "flow"] = "bits"  # what the predictor sees and returns: "bits" (loads) | "flow"
    # (loads / S_v)
    load_history_slots: int = 6  # predictor window T [P]
    num_entering_uavs: int = 0  # #5: UAVs entering from the boundary at random slots (spec: 5 of 11)
    num_exiting_uavs: int = 0  # #5: UAVs flying to the boundary and leaving at random slots (spec: 6 of 11)
    num_late_vehicles: int = 0  # #5: vehicles departing at random later slots (spec: 2 of 7)
    min_trip_slots: int = 0  # > 0: trips last U{min..T_ep} slots, then the vehicle leaves; 0: whole episode
    # recommended choices [REC]
    count_mig_in_load: bool = True  # S^mig adds to the destination's load S'_m (§2.6)
    mask_increment: Literal["spec", "realised"] = "spec"  # overflow test's Delta S: "spec" (S^mig for a new host, else
    # S_v, §5.3)
    # | "realised" (what the vehicle would add: S_v + J S^mig when counted)
    overflow_adds_sat_comm: bool = False  # overflow: add S_v / R^SAT twice (§2.7 option)
    out_of_range_link: Literal["channel", "satellite_relay"] = "channel"  # a host beyond D^max: "channel" (the Friis
    # rate of eqs. 4-5 extrapolated, v0) | "satellite_relay" (up and down through the satellite at R^SAT, v1 [C];
    # without a satellite, `use_satellite=False`, the channel)
    sat_prop_delay: bool = False  # satellite hosts add 2 h_sat / c per slot (§2.5 option)
    rayleigh_fading: bool = False  # |g|^2 ~ Exp(1) per link per slot (§2.3 option)
    ofdma_split: bool = False  # B / k_m among the k_m vehicles on server m (§2.4 option)
    var_include_sat: bool = False  # the workload variance includes the satellite (§3.1)
    reward_form: Literal["shaped", "weighted_sum"] = "shaped"  # "shaped" eq. (22): z_S(S'_a) | "weighted_sum" eq. (21):
    # z_V(Var S')
    reward_load: Literal["realised", "predicted"] = "realised"  # z_S of the realised S'_a | "predicted": the forecast
    # S^o_a (§3.2)
    team_reward: bool = False  # every active agent gets the mean reward of the active agents (§5.4 option)
    norm_mode: Literal["fixed", "running"] = "fixed"  # "fixed": `EnvParams.norm_stats` (§3.3 A) | "running": Welford in
    # the state (B)
    norm_scope: Literal["episode", "persistent"] = "episode"  # "running" statistics reset with the episode |
    # "persistent": kept across resets
    obs_include_host: bool = False  # append the current host one-hot and t / T_ep (§5.2 [REC option])
    obs_include_presence: bool = False  # append the M presence bits (§5.2 [REC, JAX])
    mobility_substeps: int = 4  # sub-steps per slot of the road-grid mobility
    trace_bank: str = ""  # a trace bank .npz (`vmjax traces sumo --out`, or a run's trace_bank.npz) replayed
    # instead of the built-in mobility: resampled to the slot, centred on the map (vmjax.mobility.load_trace_bank);
    # "" = none

    def __post_init__(self):
        owner = "TwinRoutingConfig"
        validation.check_str(owner, "trace_bank", self.trace_bank)
        validation.check_int_at_least(owner, "num_vehicles", self.num_vehicles, 1)
        validation.check_int_at_least(owner, "num_rsus", self.num_rsus, 1)
        validation.check_int_at_least(owner, "num_uavs", self.num_uavs, 0)
        validation.check_int_at_least(owner, "max_steps", self.max_steps, 1)
        validation.check_int_at_least(owner, "layout_seed", self.layout_seed, 0)
        validation.check_int_at_least(owner, "uav_loop_rsus", self.uav_loop_rsus, 1)
        validation.check_int_at_least(owner, "load_history_slots", self.load_history_slots, 1)
        validation.check_int_at_least(owner, "num_entering_uavs", self.num_entering_uavs, 0)
        validation.check_int_at_least(owner, "num_exiting_uavs", self.num_exiting_uavs, 0)
        validation.check_int_at_least(owner, "num_late_vehicles", self.num_late_vehicles, 0)
        validation.check_int_at_least(owner, "min_trip_slots", self.min_trip_slots, 0)
        validation.check_int_at_least(owner, "mobility_substeps", self.mobility_substeps, 1)
        for name in (
            "use_uavs",
            "use_satellite",
            "use_mask",
            "count_mig_in_load",
            "overflow_adds_sat_comm",
            "sat_prop_delay",
            "rayleigh_fading",
            "ofdma_split",
            "var_include_sat",
            "team_reward",
            "obs_include_host",
            "obs_include_presence",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{owner}.{name} must be a bool, got {getattr(self, name)!r}")
        validation.check_literal_fields(self)
        validation.check_bool_fields(self)
        validation.check_positive(owner, "city_size_m", self.city_size_m)
        validation.check_positive(owner, "rural_size_m", self.rural_size_m)
        validation.check_finite(owner, "snr_ref_db", self.snr_ref_db)
        if not -89.0 <= float(self.origin_lat_deg) <= 89.0:
            raise ValueError(f"{owner}.origin_lat_deg must be in [-89, 89], got {self.origin_lat_deg!r}")
        if self.num_entering_uavs + self.num_exiting_uavs > self.num_uavs:
            raise ValueError(
                f"{owner}.num_entering_uavs + num_exiting_uavs must be <= num_uavs={self.num_uavs}, got "
                f"{self.num_entering_uavs} + {self.num_exiting_uavs} (the spec's scenario: num_uavs=11, 5 entering, 6 exiting)"
            )
        if self.num_late_vehicles > self.num_vehicles:
            raise ValueError(
                f"{owner}.num_late_vehicles must be <= num_vehicles={self.num_vehicles}, got {self.num_late_vehicles}"
            )
        if self.min_trip_slots > self.max_steps:
            raise ValueError(f"{owner}.min_trip_slots must be <= max_steps={self.max_steps}, got {self.min_trip_slots}")
        dynamic = self.num_entering_uavs or self.num_exiting_uavs or self.num_late_vehicles
        if dynamic and self.max_steps < 2:
            raise ValueError(
                f"{owner}.max_steps must be >= 2 for late vehicles or entering/exiting UAVs, got {self.max_steps}"
            )


DYNAMIC_ENTRY = dict(num_vehicles=7, num_late_vehicles=2, num_uavs=11, num_entering_uavs=5, num_exiting_uavs=6)
"""The spec's dynamic entry/exit scenario (§8.2 #5): `vmjax.make("TwinRouting-v0", **DYNAMIC_ENTRY)`."""


# ====================================================================== parameters (pytree, vmappable)
@struct.dataclass
class NormStats:
    """Mean and standard deviation of the z-scored reward terms (§3.3 (A): fixed calibration constants, or
    the priors of the running statistics during their warm-up). SI units."""

    latency_mean_s: float = 1.0
    latency_std_s: float = 1.0
    load_mean_bits: float = 100 * MB
    load_std_bits: float = 50 * MB
    variance_mean_bits2: float = (50 * MB) ** 2
    variance_std_bits2: float = (50 * MB) ** 2

    def moments(self) -> tuple[jax.Array, jax.Array]:
        """(mean [3], std [3]) in the order latency, load, variance."""
        mean = jnp.stack(
            [jnp.asarray(v, jnp.float32) for v in (self.latency_mean_s, self.load_mean_bits, self.variance_mean_bits2)]
        )
        std = jnp.stack(
            [jnp.asarray(v, jnp.float32) for v in (self.latency_std_s, self.load_std_bits, self.variance_std_bits2)]
        )
        return mean, std


# §3.3 (A) constants from `calibrate_norm_stats` (Greedy + Random with the mask, default config, 64 episodes
# each, seed 0: `python -m baselines.twin_routing --calibrate`); recompute them for other configs.
DEFAULT_NORM_STATS = {
    "calibrated": NormStats(0.8011, 1.701, 1.297e9, 2.420e9, 7.231e16, 2.827e16),
    "literal": NormStats(31.09, 30.30, 1.297e9, 2.420e9, 7.231e16, 2.827e16),
}


@struct.dataclass
class EnvParams:
    """Every physical constant of spec 002 §7 (SI units: bits, seconds, metres, hertz, watts). The layout
    arrays come from the config (`default_params`); `parameter_set` picks the radio/compute values (§11)."""

    rsu_xy_m: jax.Array  # [N, 2] RSU positions, metres from the map origin
    rsu_present: jax.Array  # [N] bool: padded layouts mark missing RSUs absent (§5.2 [REC, JAX])
    uav_loops_m: jax.Array  # [U, K, 2] patrol loop waypoints (RSU positions) [REC §7.2]
    map_extent_m: jax.Array  # [2] map width, height (UAV entry/exit boundary)
    mobility: mobility.MobilityParams
    norm_stats: NormStats = NormStats()
    trace: mobility.Trace | None = None  # replayed vehicle trajectories [T_ep + 1, V, 2] instead of synthetic
    trace_bank: mobility.Trace | None = None  # [T_bank >= T_ep + 1, >= V, 2]: a window of random tracks from a
    # random start slot per episode (its `valid` gaps are slots without the vehicle); at most one of trace, trace_bank
    workload_predictor: Any = None  # vmjax.predict WorkloadPredictor for workload_forecast="predictor"
    flow_table: jax.Array | None = None  # [T_table, N] vehicles per RSU and slot (a traffic CSV, e.g. the SUMO counts
    # of data/traffic/), replayed from a random row of each episode instead of the synthetic flow (`load_flow_table`)
    # geometry [P] / [REC]
    earth_radius_m: float = 6_371_393.0  # R_E [P]
    uav_altitude_m: float = 50.0  # h_u [P]
    uav_speed_mps: float = 3.7  # v_UAV [P]
    rsu_range_m: float = 1200.0  # D^max RSU [P]
    uav_range_m: float = 1500.0  # D^max UAV [P]
    min_distance_m: float = 1.0  # distances clamped >= 1 m [REC §10.1]
    sat_altitude_m: float = 550e3  # LEO altitude (propagation-delay option only) [P]
    # radio, eqs. (3)-(5), (11)
    carrier_hz: float = 3.5e9  # f [REC]
    channel_gain_coeff: float = 3.0951079e9  # A [REC: SNR(1200 m) = 10 dB, `literal_gain_coeff(10)`]
    path_loss_exponent: float = 2.0  # Friis (eq. 3)
    noise_power_w: float = 10.0  # sigma^2 [P "variance 10", REC linear W]
    vehicle_tx_power_w: float = 1000.0  # p_v [P]
    server_tx_power_w: float = 1000.0  # p_m [REC]
    uplink_bandwidth_hz: float = 300e6  # B^up [P]
    downlink_bandwidth_hz: float = 300e6  # B^down [P]
    migration_bandwidth_hz: float = 300e6  # B^mig [REC]
    sat_rate_bps: float = 100e6  # R^SAT up, down and migration [REC]
    # computing and caches, eq. (9), §7.3
    edge_cpu_hz: float = 32e9  # C_m, RSU and UAV [P]
    sat_cpu_hz: float = 80e9  # C_s [P]
    cycles_per_bit: float = 1000.0  # e_v in the computing latency (9) [P]; 1 in the "calibrated" set (§11)
    drain_cycles_per_bit: float = 1000.0  # e_v in the drain kappa_m = C_m Delta t / e_v (120 MB/slot) [REC]
    edge_cache_bits: float = 300 * MB  # L^max RSU and UAV [P]; the satellite's is unlimited [REC]
    # tasks
    data_bits: float = 2 * MB  # S_v per slot [REC #8]
    migration_bits: float = 60 * MB  # S^mig [P]
    slot_s: float = 30.0  # Delta t [P]
    # background workload B_m(t) = S_v c_m(t), §4.1 synthetic flow [REC]
    flow_mean_vehicles: float = 30.0  # base: mean B = 0.5 kappa_m = 60 MB with S_v = 2 MB [REC §7.2]
    flow_daily_amplitude: float = 0.6
    flow_half_daily_amplitude: float = 0.3
    flow_period_slots: float = 288.0  # one PeMS day of 5-min samples, one sample per slot [REC §4.1 (i)]
    flow_ar_coeff: float = 0.8  # rho
    flow_noise_frac: float = 0.1  # AR innovation std / base
    uav_flow_share: float = 0.5  # a UAV gets 0.5 x its nearest RSU's flow [REC]
    sat_flow_factor: float = 4.0  # kappa_sat: the satellite gets 4 x the mean RSU flow [REC]
    # reward, eq. (22) and §3.1
    w_latency: float = 2.0  # w_T [P]
    w_load: float = 1.0  # w_s [P]
    w_failure: float = 1.0  # w_d [P]
    w_migration: float = 0.0  # w_J, optional migration-count penalty [REC, default off]
    norm_warmup_samples: float = 50.0  # running stats: priors until this many samples [REC §3.3]
    norm_min_std_frac: float = 0.01  # running std floored at this fraction of the prior std [C]
    # observation scaling, §5.2 [REC]
    obs_distance_scale_m: float = 1500.0
    obs_distance_clip: float = 4.0
    absent_distance_m: float = 3000.0  # 2 D^max_UAV for absent servers


PARAMETER_SETS = {
    "literal": {},
    "calibrated": dict(
        channel_gain_coeff=4.11, carrier_hz=915e6, noise_power_w=1e-9, cycles_per_bit=1.0
    ),  # §11: A = 4.11, f = 915 MHz, sigma^2 = 1e-9 W, 1 cycle/bit on the queue; drain stays 120 MB/slot
}
"""The two named parameter sets of spec §11 (differences from the `EnvParams` defaults)."""

_POSITIVE_FIELDS = (
    "earth_radius_m",
    "uav_speed_mps",
    "rsu_range_m",
    "uav_range_m",
    "min_distance_m",
    "sat_altitude_m",
    "carrier_hz",
    "channel_gain_coeff",
    "path_loss_exponent",
    "noise_power_w",
    "vehicle_tx_power_w",
    "server_tx_power_w",
    "uplink_bandwidth_hz",
    "downlink_bandwidth_hz",
    "migration_bandwidth_hz",
    "sat_rate_bps",
    "edge_cpu_hz",
    "sat_cpu_hz",
    "cycles_per_bit",
    "drain_cycles_per_bit",
    "edge_cache_bits",
    "data_bits",
    "slot_s",
    "flow_period_slots",
    "obs_distance_scale_m",
    "obs_distance_clip",
    "absent_distance_m",
)
_NON_NEGATIVE_FIELDS = (
    "uav_altitude_m",
    "migration_bits",
    "flow_mean_vehicles",
    "flow_daily_amplitude",
    "flow_half_daily_amplitude",
    "flow_noise_frac",
    "uav_flow_share",
    "sat_flow_factor",
    "w_latency",
    "w_load",
    "w_failure",
    "w_migration",
    "norm_warmup_samples",
)
_NORM_FIELDS = ("latency_std_s", "load_std_bits", "variance_std_bits2")


# ====================================================================== state (pytree)
@struct.dataclass
class EnvState:
    t: jax.Array  # () slot index in the episode
    trace: mobility.Trace  # vehicle positions [T_ep + 1, V, 2] (and `valid` for replayed traces)
    depart_slot: jax.Array  # [V] int32 first active slot
    arrive_slot: jax.Array  # [V] int32 first slot after the trip (NEVER: to the end of the episode)
    uav_phase_m: jax.Array  # [U] patrol start, metres past the first waypoint
    uav_enter_slot: jax.Array  # [U] int32 (ALWAYS: present from the start)
    uav_leave_slot: jax.Array  # [U] int32 (NEVER: stays)
    flow_offset_slots: jax.Array  # () time of day of slot 0, in flow slots
    flow_phase_rad: jax.Array  # [N] per-RSU daily phase phi_m
    flow_noise: jax.Array  # [N] AR(1) flow noise of the current slot
    background_bits: jax.Array  # [M] B_m(t), the true background load of this slot
    load_history_bits: jax.Array  # [W, M] B_m(t - W) .. B_m(t - 1), oldest first (predictor input)
    forecast_bits: jax.Array  # [M] S^pre_m(t) by `workload_forecast` (0 for absent servers)
    queue_bits: jax.Array  # [M] Q_m(t), unfinished work cached from earlier slots
    host: jax.Array  # [V] int32 m_v^{t-1}, the server hosting the twin before this slot's action
    placed: jax.Array  # [V] bool: the twin has been placed (J = 0 on the first active slot)
    failures: jax.Array  # [V] sum of xi over the episode's active slots
    active_slots: jax.Array  # [V] number of active slots so far (eq. 15 denominator)
    norm: RunningMoments | None  # [3] latency, load, variance in prior-standardised units ("running")


@struct.dataclass
class SlotContext:
    """Everything a vehicle faces at the start of slot t, before the agents act (§5.5 steps 1-2)."""

    distance_m: jax.Array  # [V, M] D_{v,m}(t) of eq. (2), >= min_distance_m (satellite column: its altitude)
    server_xy_m: jax.Array  # [M, 2] (satellite row unused)
    server_height_m: jax.Array  # [M] 0 RSU, h_u UAV (satellite unused)
    present: jax.Array  # [M] bool
    background_bits: jax.Array  # [M] B_m(t)
    forecast_bits: jax.Array  # [M] S^pre_m(t)
    queue_bits: jax.Array  # [M] Q_m(t)
    host: jax.Array  # [V] m_v^{t-1}
    placed: jax.Array  # [V] bool
    active: jax.Array  # [V] bool
    server_points: Any = None  # `ground_points` of server_xy_m [M] (None: computed from server_xy_m when needed)


# ====================================================================== the equations
def ground_distance_m(a_xy_m, b_xy_m, earth_radius_m, config: TwinRoutingConfig):
    """R_E eta between points [..., 2] (metres from the map origin, broadcasting), eqs. (1')-(2) on the
    spherical coordinates of the positions (`net.xy_to_latlon_offset_deg`); `distance_model="planar"`:
    the Euclidean distance (§2.1 [REC, optional]); `haversine_variant="printed"`: the paper's eq. (1).
    `ground_points` then `points_distance_m`: the per-point work is done once per point of a broadcast."""
    a = ground_points(a_xy_m, earth_radius_m, config)
    b = ground_points(b_xy_m, earth_radius_m, config)
    return points_distance_m(a, b, earth_radius_m, config)


def ground_points(xy_m, earth_radius_m, config: TwinRoutingConfig):
    """The per-point part of `ground_distance_m` for points [..., 2]: their `net.SpherePoints` [...] (latitude
    and longitude offsets, cosine of the latitude; eq. 1'), or the positions themselves for "planar"."""
    if config.distance_model == "planar":
        return jnp.asarray(xy_m, jnp.float32)
    return net.sphere_points(xy_m, config.origin_lat_deg, earth_radius_m, config.haversine_variant)


def points_distance_m(a, b, earth_radius_m, config: TwinRoutingConfig, exact_zero: bool = True):
    """R_E eta of eqs. (1')-(2) between `ground_points` (broadcasting): the per-pair part of
    `ground_distance_m`. `exact_zero=False`: coincident points may come out ~1e-4 m apart (fine below the
    1 m clamp of the slot's distances; a few operations fewer per pair)."""
    if config.distance_model == "planar":
        return net.planar_distance_m(a, b)
    return net.haversine_points_m(a, b, earth_radius_m, config.haversine_variant, exact_zero)


def points_order_key(a, b, config: TwinRoutingConfig):
    """A quantity that grows with `points_distance_m(a, b)` (broadcasting), for nearest-point searches: the
    haversine a of eq. (1') (eta = 2 arcsin(sqrt(a)) without the arcsine, nor its clip and exact zero), or the
    squared planar distance."""
    if config.distance_model == "planar":
        diff = a - b
        return diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]
    return net.haversine_hav(a, b, config.haversine_variant, ordering_only=True)


def order_factors(points, config: TwinRoutingConfig):
    """(a, b, c, d) of `ground_points` [...]: `points_order_key(p, q)` = (a_p b_q - b_p a_q)^2 + (c_p d_q - d_p c_q)^2
    up to float32 rounding. The haversine a = sin^2(dlat/2) + cos cos sin^2(dlon/2) (eq. 1') with the sines of
    the differences from per-point sines and cosines and sqrt(cos(lat)) folded into the longitude terms (the
    latitude terms for the printed eq. 1); planar: (x, 1, y, 1), the squared distance."""
    if config.distance_model == "planar":
        one = jnp.ones_like(points[..., 0])
        return points[..., 0], one, points[..., 1], one
    w = jnp.sqrt(points.cos_abs_lat)
    if config.haversine_variant == "standard":
        return points.sin_lat, points.cos_lat, w * points.sin_lon, w * points.cos_lon
    return w * points.sin_lat, w * points.cos_lat, points.sin_lon, points.cos_lon


def rows_by_loop(fn, rows):
    """`jax.vmap(fn)(rows)` computed as a loop over the rows: one row per iteration, written in place into a
    table that every user then reads. As one fused expression, XLA's CPU backend copied a pair table such as
    the [V, M] distances into every loop that reads it (the observation, the mask, the nearest-server
    searches), and inside the observation's concatenation evaluated it with a branch per element (~5x
    slower); it fuses nothing across a loop boundary. A `fori_loop` updating the table rather than
    `lax.map` (a scan): under `vmap` the scan's stacked rows would come out row-major and need a transpose.
    Same values as the vmap."""
    count = jax.tree.leaves(rows)[0].shape[0]
    row = lambda i: jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, i, keepdims=False), rows)
    # fn traced once (its Python is the costly part of tracing an env step), then replayed in the loop's body
    row_shape = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), rows)
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(row_shape)
    call = jax_core.jaxpr_as_fun(closed)
    treedef = jax.tree.structure(out_shape)
    table = jax.tree.map(lambda leaf: jnp.zeros((count,) + leaf.shape, leaf.dtype), out_shape)

    def write(i, table):
        out = jax.tree.unflatten(treedef, call(*jax.tree.leaves(row(i))))
        return jax.tree.map(lambda t, r: jax.lax.dynamic_update_index_in_dim(t, r, i, 0), table, out)

    return jax.lax.fori_loop(0, count, write, table)


def first_argmin(x):
    """`jnp.argmin(x, axis=-1)` of a materialised x without NaN (the first index of the minimum), as a minimum
    and a minimum over the indices that reach it: XLA's CPU backend compiles argmin's paired reduction to a
    scalar loop (~5x slower than these two). x must be one stored array (an argument, a loop's output), not an
    expression XLA may fuse into both reductions and round differently in each."""
    n = x.shape[-1]
    lowest = jnp.min(x, axis=-1, keepdims=True)
    return jnp.min(jnp.where(x == lowest, jnp.arange(n, dtype=jnp.int32), n), axis=-1)


def channel_constants(params: EnvParams) -> dict:
    """The path-loss constants of `net.link_rate_bps`: the Friis gain h = A (c / (4 pi f D))^2 of eq. (3); the
    rates of eqs. (4)-(5), (11) use the fixed noise power sigma^2 = `params.noise_power_w`."""
    return {
        "gain_coeff": params.channel_gain_coeff,
        "carrier_hz": params.carrier_hz,
        "exponent": params.path_loss_exponent,
    }


def computing_latency_s(load_bits, data_bits, cpu_hz, overflow, on_satellite, params: EnvParams, satellite: bool):
    """Eq. (9): e_v S'_m / C_m behind the whole cache; on overflow (S'_m > L^max, m not the satellite) the
    twin is computed on the satellite, e_v S_v / C_s, or, without a satellite (§8.2 #2), locally e_v S'_m / C_m.
    A satellite host computes e_v S'_s / C_s (its own background included) [REC]."""
    queue_s = params.cycles_per_bit * load_bits / cpu_hz
    if not satellite:
        return queue_s
    fallback_s = params.cycles_per_bit * data_bits / params.sat_cpu_hz
    return jnp.where(overflow & ~on_satellite, fallback_s, queue_s)


def migration_latency_s(migrates, migration_bits, rate_bps):
    """Eq. (12): T^mig = J S^mig / R^mig (0 without a migration)."""
    return jnp.where(migrates, net.transfer_latency_s(migration_bits, rate_bps), 0.0)


def failure_flag(distance_m, range_m, load_bits, cache_bits, on_satellite):
    """Eq. (14): xi = 1 when the host is out of range or its cache overflows; never on the satellite."""
    return ((distance_m > range_m) | (load_bits > cache_bits)) & ~on_satellite


def packet_loss_rate(failures, active):
    """Eq. (15) with the [REC #15] denominator: q_v = sum_t xi_v^t / #active slots, over the leading time
    axis ([T, V] -> [V]; a fraction, x 100 for %). 0 for a vehicle never active."""
    failures = jnp.asarray(failures, jnp.float32)
    active = jnp.asarray(active, jnp.float32)
    return jnp.sum(failures * active, axis=0) / jnp.maximum(jnp.sum(active, axis=0), 1.0)


def zscore(x, mean, std):
    """z(x) = (x - mu) / sigma (§3.2); sigma > 0 is checked with the params (and floored for running stats)."""
    return (x - mean) / std


def reward_cost(z_latency, z_balance, failure, migrated, params: EnvParams):
    """The bracket of eqs. (21)-(22): w_T z_T + w_s z_{S or V} + w_d xi (+ w_J J, §3.1 option); r = -cost."""
    return (
        params.w_latency * z_latency
        + params.w_load * z_balance
        + params.w_failure * jnp.asarray(failure, jnp.float32)
        + params.w_migration * jnp.asarray(migrated, jnp.float32)
    )


def drain_caches(loads_bits, cpu_hz, cache_bits, params: EnvParams):
    """§7.3 fluid cache: Q_m(t+1) = min(max(S'_m(t) - kappa_m, 0), L^max_m), kappa_m = C_m Delta t / e_v
    (120 MB per slot at an RSU/UAV, 300 MB at the satellite); returns (Q(t+1), dropped work above L^max)."""
    drain_bits = cpu_hz * params.slot_s / params.drain_cycles_per_bit
    return net.fluid_queue_update(jnp.zeros_like(loads_bits), loads_bits, drain_bits, cache_bits)


def masked_variance(values, weight):
    """Population variance (1/M) sum (S'_i - mu)^2 over the servers with weight 1 (eq. 16b)."""
    weight = weight.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(weight), 1.0)
    mean = jnp.sum(weight * values) / count
    return jnp.sum(weight * (values - mean) ** 2) / count


# ====================================================================== layouts (static NumPy)
def road_grid(layout: str, size_m: float) -> mobility.RoadGrid:
    """City: a dense core (roads every size/16) and outskirts every size/8; rural: a few roads, every size/20
    in a small core and every size/4 outside [C]."""
    if layout == "city":
        return mobility.urban_grid((size_m, size_m), (size_m / 2, size_m / 2), size_m / 16, size_m / 8, (3.0,))
    return mobility.urban_grid((size_m, size_m), (size_m / 5, size_m / 5), size_m / 20, size_m / 4, (3.0,))


# ====================================================================== helpers
def _predict_next_load() -> Callable:
    """`vmjax.predict.predict_next_load`, imported when first needed (the env imports without it)."""
    try:
        from vmjax import predict

        fn = getattr(predict, "predict_next_load", None)
        if fn is None:
            from vmjax.predict import workload

            fn = getattr(workload, "predict_next_load", None)
    except ImportError:
        fn = None
    if fn is None:
        raise RuntimeError(
            'workload_forecast="predictor" needs vmjax.predict.predict_next_load, which is not available'
        )
    return fn


def _server_kinds(num_rsus: int, num_uavs: int):
    m = num_rsus + num_uavs + 1
    index = np.arange(m)
    return index < num_rsus, (index >= num_rsus) & (index < m - 1), index == m - 1


# ====================================================================== the environment
class TwinRouting(Environment):
    """Spec 002 scenario; `TwinRouting(**config)` or `vmjax.make("TwinRouting-v0", **config)`."""

    params_class = EnvParams
    env_id = "TwinRouting-v0"
    agent_role = "vehicle"
    config_class: type = TwinRoutingConfig

    def __init__(self, **config):
        self.config = validation.config_from_kwargs(self.config_class, self.env_id, config)
        c = self.config
        self.num_agents = c.num_vehicles
        self.num_rsus = c.num_rsus
        self.num_uavs = c.num_uavs
        self.num_servers = c.num_rsus + c.num_uavs + 1
        self.satellite = self.num_servers - 1
        self.is_rsu, self.is_uav, self.is_sat = _server_kinds(c.num_rsus, c.num_uavs)
        size_m = c.city_size_m if c.layout == "city" else c.rural_size_m
        self.road_grid = road_grid(c.layout, size_m)
        if c.layout == "city":
            self._rsu_xy = net.city_rsu_positions(c.num_rsus, size_m, c.layout_seed)
        else:
            grid = self.road_grid
            self._rsu_xy = net.rural_rsu_positions(
                grid.extent_m, grid.x_roads_m, grid.y_roads_m, c.num_rsus, c.layout_seed
            )
        self._uav_loops = patrol.patrol_loops(self._rsu_xy, c.num_uavs, c.uav_loop_rsus)
        m = self.num_servers
        self.obs_dim = (c.num_rsus + c.num_uavs) + m + c.obs_include_host * (m + 1) + c.obs_include_presence * m
        if c.trace_bank:
            self.default_params  # noqa: B018 - read the bank now: a bad file fails in make(), with the file named

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def default_params(self) -> EnvParams:
        c = self.config
        overrides = dict(PARAMETER_SETS[c.parameter_set])
        if c.parameter_set == "literal":
            overrides["channel_gain_coeff"] = literal_gain_coeff(c.snr_ref_db)
        params = EnvParams(
            rsu_xy_m=jnp.asarray(self._rsu_xy),
            rsu_present=jnp.ones(c.num_rsus, bool),
            uav_loops_m=jnp.asarray(self._uav_loops),
            map_extent_m=jnp.asarray(self.road_grid.extent_m, jnp.float32),
            mobility=mobility.MobilityParams(
                mean_speed_core_mps=10.0, mean_speed_outskirts_mps=12.0, speed_noise_std_mps=1.0, max_speed_mps=14.0
            ),  # 8-14 m/s road traffic [REC §7.2]
            norm_stats=DEFAULT_NORM_STATS[c.parameter_set],
            **overrides,
        )
        return params.replace(trace_bank=self._config_trace_bank(params.slot_s))

    def _config_trace_bank(self, slot_s: float) -> mobility.Trace | None:
        """The bank of `config.trace_bank` fitted to this env (None without one)."""
        c = self.config
        owner = f"{type(c).__name__}.trace_bank"
        return mobility.config_trace_bank(
            c.trace_bank, float(slot_s), self.road_grid.extent_m, c.max_steps + 1, c.num_vehicles, owner
        )

    # ------------------------------------------------------------------ validation
    def validate_params(self, params: EnvParams) -> None:
        owner = "EnvParams"
        self.check_params_class(params)
        for field in _POSITIVE_FIELDS:
            validation.check_positive(owner, field, getattr(params, field))
        for field in _NON_NEGATIVE_FIELDS:
            validation.check_non_negative(owner, field, getattr(params, field))
        validation.check_probability(owner, "flow_ar_coeff", params.flow_ar_coeff)
        validation.check_below(owner, "flow_ar_coeff", params.flow_ar_coeff, 1.0)
        validation.check_probability(owner, "norm_min_std_frac", params.norm_min_std_frac)
        c = self.config
        validation.check_shape(owner, "rsu_xy_m", params.rsu_xy_m, (c.num_rsus, 2))
        validation.check_finite(owner, "rsu_xy_m", params.rsu_xy_m)
        validation.check_shape(owner, "rsu_present", params.rsu_present, (c.num_rsus,))
        if jnp.asarray(params.rsu_present).dtype != jnp.bool_:
            raise ValueError(f"{owner}.rsu_present must have dtype bool, got {jnp.asarray(params.rsu_present).dtype}")
        if not c.use_satellite and is_concrete(params.rsu_present) and not np.any(np.asarray(params.rsu_present)):
            raise ValueError(f"{owner}.rsu_present must mark at least one RSU present when use_satellite=False")
        loops = params.uav_loops_m
        shape = tuple(np.shape(loops))
        if len(shape) != 3 or shape[0] != c.num_uavs or shape[1] < 1 or shape[2] != 2:
            raise ValueError(f"{owner}.uav_loops_m must have shape [num_uavs={c.num_uavs}, K >= 1, 2], got {shape}")
        validation.check_finite(owner, "uav_loops_m", loops)
        validation.check_shape(owner, "map_extent_m", params.map_extent_m, (2,))
        validation.check_positive(owner, "map_extent_m", params.map_extent_m)
        for field in dataclasses.fields(NormStats):
            value = getattr(params.norm_stats, field.name)
            check = validation.check_positive if field.name in _NORM_FIELDS else validation.check_finite
            check(f"{owner}.norm_stats", field.name, value)
        mobility.validate_params(params.mobility)
        if params.trace is not None:
            self._check_trace(params.trace)
        if params.trace is not None and params.trace_bank is not None:
            raise ValueError("EnvParams.trace and EnvParams.trace_bank are both set: replay one of them")
        mobility.check_trace_bank(owner, params.trace_bank, self.config.max_steps + 1, self.config.num_vehicles)
        if params.flow_table is not None:
            self.check_flow_table(params.flow_table)
        self._check_predictor(params)

    def _check_trace(self, trace) -> None:
        c = self.config
        if not isinstance(trace, mobility.Trace):
            raise ValueError(f"EnvParams.trace must be a vmjax.mobility.Trace or None, got {type(trace).__name__}")
        want = (c.max_steps + 1, c.num_vehicles, 2)
        if tuple(trace.positions_m.shape) != want:
            raise ValueError(
                f"EnvParams.trace.positions_m must have shape [max_steps + 1, num_vehicles, 2] = {want}, got {tuple(trace.positions_m.shape)}"
            )

    def check_flow_table(self, table) -> None:
        c = self.config
        shape = tuple(np.shape(table))
        rows = c.max_steps + c.load_history_slots + 1
        if len(shape) != 2 or shape[1] != c.num_rsus or shape[0] < rows:
            raise ValueError(
                f"EnvParams.flow_table must have shape [T_table >= max_steps + load_history_slots + 1 = {rows}, "
                f"num_rsus={c.num_rsus}] (vehicles per RSU and slot), got {shape}"
            )
        validation.check_finite("EnvParams", "flow_table", table)
        validation.check_non_negative("EnvParams", "flow_table", table)

    def _check_predictor(self, params: EnvParams) -> None:
        """workload_forecast="predictor" needs `EnvParams.workload_predictor` (static checks, also at trace time)."""
        c = self.config
        if c.workload_forecast != "predictor":
            return
        if params.workload_predictor is None:
            raise ValueError(
                'EnvParams.workload_predictor is None, but workload_forecast="predictor" needs a trained workload '
                "predictor: params = env.default_params.replace(workload_predictor=...) (vmjax.predict), or choose "
                'workload_forecast="persistence" / "oracle" / "none"'
            )
        window = getattr(params.workload_predictor, "window", None)
        if window is not None and int(window) != c.load_history_slots:
            raise ValueError(
                f"EnvParams.workload_predictor.window={window} differs from the env's load_history_slots="
                f"{c.load_history_slots}: make the env with load_history_slots={window} or train a matching predictor"
            )

    # ------------------------------------------------------------------ spaces
    def action_space(self, params=None) -> spaces.Discrete:
        """The hosting server of every vehicle, int32 [V] in {0..M-1}."""
        return spaces.Discrete(self.num_servers, shape=(self.num_agents,))

    def observation_space(self, params=None) -> spaces.Box:
        ground = self.num_rsus + self.num_uavs
        high = np.full((self.num_agents, self.obs_dim), np.inf, np.float32)
        if params is not None and is_concrete(params):
            high[:, :ground] = float(np.max(np.asarray(params.obs_distance_clip)))
        high[:, ground + self.num_servers :] = 1.0  # host one-hot, t / T_ep, presence bits
        return spaces.Box(0.0, high, (self.num_agents, self.obs_dim))

    # ------------------------------------------------------------------ exogenous processes
    def uav_positions(self, state: EnvState, params: EnvParams, t):
        """UAV positions [U, 2] and presence [U] in slot t (patrol loops, entry and exit flights)."""
        xy, present = mobility.uav_positions_m(
            params.uav_loops_m,
            state.uav_phase_m,
            state.uav_enter_slot,
            state.uav_leave_slot,
            t,
            params.uav_speed_mps,
            params.slot_s,
            params.map_extent_m,
        )
        return xy, present & self.config.use_uavs

    def flow_vehicles(self, offset, phase, noise, t, params: EnvParams):
        """Synthetic traffic flow c_m(t) of the RSUs (§4.1 [REC]): base (1 + 0.6 sin(2 pi t / T_day - phi_m)
        + 0.3 sin(4 pi t / T_day)) + AR(1) noise, clipped >= 0."""
        if params.flow_table is not None:  # replayed counts: row (offset + t) mod T_table
            table = jnp.asarray(params.flow_table, jnp.float32)
            row = jnp.mod(jnp.floor(offset).astype(jnp.int32) + jnp.asarray(t, jnp.int32), table.shape[0])
            return table[row]
        tau = 2.0 * math.pi * (jnp.asarray(t, jnp.float32) + offset) / params.flow_period_slots
        sin = net.sin_poly  # jnp.sin within 1 ulp, ~7x cheaper on XLA's CPU backend
        daily = params.flow_daily_amplitude * sin(tau - phase) + params.flow_half_daily_amplitude * sin(2.0 * tau)
        return jnp.maximum(params.flow_mean_vehicles * (1.0 + daily) + noise, 0.0)

    def next_flow_noise(self, key, noise, params: EnvParams):
        """The AR(1) flow noise of the next slot, n(t + 1) = rho n(t) + sigma eps, sigma = `flow_noise_frac` x
        the mean flow (§4.1 [REC])."""
        eps = fastrand.normal(jax.random.fold_in(key, 7), (self.num_rsus,))
        return params.flow_ar_coeff * noise + params.flow_noise_frac * params.flow_mean_vehicles * eps

    def background_load_series(self, key, params: EnvParams, num_slots: int) -> jax.Array:
        """The true background loads B_m(t) [num_slots, M] (bits) of one world in the slots 0 .. num_slots - 1 after
        a reset from `key`, its flows and UAV patrols running on past the episode's end: the series the workload
        predictor trains on (§4.3), the process its [W, M] history window sees in an episode. Jittable."""
        validation.check_int_at_least("background_load_series", "num_slots", num_slots, 1)
        probe = self
        if self.config.workload_forecast == "predictor":  # the reset's forecast must not need the predictor
            probe = type(self)(**{**dataclasses.asdict(self.config), "workload_forecast": "persistence"})
        k_reset, k_steps = jax.random.split(key)
        _, state = probe.reset_env(k_reset, params)

        def next_slot(noise, inputs):
            t, k = inputs
            noise = self.next_flow_noise(k, noise, params)
            uav_xy, uav_present = self.uav_positions(state, params, t)
            flow = self.flow_vehicles(state.flow_offset_slots, state.flow_phase_rad, noise, t, params)
            return noise, self.background_load(flow, uav_xy, uav_present, params)

        slots = jnp.arange(1, num_slots, dtype=jnp.int32)
        _, rows = jax.lax.scan(next_slot, state.flow_noise, (slots, jax.random.split(k_steps, num_slots - 1)))
        return jnp.concatenate([state.background_bits[None], rows], axis=0)

    def background_load(self, flow, uav_xy, uav_present, params: EnvParams):
        """B_m(t) [M] = S_v c_m(t): RSUs their flow, a UAV `uav_flow_share` x its nearest present RSU's flow, the
        satellite `sat_flow_factor` x the mean RSU flow; 0 for absent servers [REC §4.1, §7.2]."""
        c = self.config
        rsu_present = params.rsu_present
        rsu_flow = jnp.where(rsu_present, flow, 0.0)
        nearest = self.nearest_rsu(uav_xy, params)
        uav_flow = jnp.where(uav_present, params.uav_flow_share * rsu_flow[nearest], 0.0)
        mean_flow = jnp.sum(rsu_flow) / jnp.maximum(jnp.sum(rsu_present), 1)
        sat_flow = params.sat_flow_factor * mean_flow * float(c.use_satellite)
        return params.data_bits * jnp.concatenate([rsu_flow, uav_flow, sat_flow[None]])

    def nearest_rsu(self, xy_m, params: EnvParams) -> jax.Array:
        """The nearest present RSU [P] of each point [P, 2] (eq. 1' distances; ties: the lowest index), ranked by
        the haversine a (`points_order_key`: no arcsine per pair). One point at a time (`rows_by_loop`), the
        RSUs scanned in order within it: each pair's key is computed once, in ~10 operations
        (`order_factors`), and the scan vectorises over the worlds of a batch (a reduction over the RSUs
        compiles to a scalar loop on XLA's CPU backend). A rolled `lax.scan`, not a Python loop: unrolled over
        76 RSUs it was ~3,000 equations of every reset and step to trace and compile, for no faster a step."""
        c = self.config
        rsus = ground_points(params.rsu_xy_m, params.earth_radius_m, c)
        rsu_a, rsu_b, rsu_c, rsu_d = order_factors(rsus, c)
        rsu_a = jnp.where(params.rsu_present, rsu_a, jnp.nan)  # an absent RSU's key is NaN: never smaller
        index = jnp.arange(self.num_rsus, dtype=jnp.int32)

        def nearest(xy):
            a, b, c_, d = order_factors(ground_points(xy, params.earth_radius_m, c), c)

            def scan_rsu(carry, rsu):  # a strictly smaller key wins: argmin's first index on ties
                best, best_index = carry
                n, ra, rb, rc, rd = rsu
                u, v = a * rb - b * ra, c_ * rd - d * rc
                key = u * u + v * v
                better = key < best
                return (jnp.where(better, key, best), jnp.where(better, n, best_index)), None

            start = (jnp.float32(jnp.inf), jnp.int32(0))
            (_, found), _ = jax.lax.scan(scan_rsu, start, (index, rsu_a, rsu_b, rsu_c, rsu_d))
            return found

        return rows_by_loop(nearest, xy_m)

    def forecast(self, history, background, present, params: EnvParams):
        """S^pre_m(t) [M] from the history B(t-W..t-1) [W, M] (oldest first) and the true B(t) [M]."""
        c = self.config
        if c.workload_forecast == "none":
            pre = jnp.zeros_like(background)
        elif c.workload_forecast == "persistence":
            pre = history[-1]
        elif c.workload_forecast == "oracle":
            pre = background
        else:
            self._check_predictor(params)
            scale = params.data_bits if c.forecast_units == "flow" else 1.0
            pre = _predict_next_load()(params.workload_predictor, history / scale) * scale
            pre = jnp.maximum(jnp.where(jnp.isfinite(pre), pre, 0.0), 0.0)
        return jnp.where(present, pre, 0.0)

    def vehicle_active(self, state: EnvState, t) -> jax.Array:
        """[V] bool: the vehicle's trip covers slot t (and a replayed trace marks it valid)."""
        active = (t >= state.depart_slot) & (t < state.arrive_slot)
        return active & state.trace.valid_at(t)

    def agents_present(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[V] bool: the vehicles on their trip in the current slot (`vehicle_active`): a late vehicle is absent
        until it departs, a vehicle whose trip is over is gone."""
        return self.vehicle_active(state, state.t)

    def server_presence(self, uav_present, params: EnvParams) -> jax.Array:
        return jnp.concatenate([params.rsu_present, uav_present, jnp.array([self.config.use_satellite])])

    # ------------------------------------------------------------------ reset
    @traced_once
    def reset_env(self, key, params: EnvParams):
        c = self.config
        n, u, w = self.num_agents, self.num_uavs, c.load_history_slots
        k_traj, k_trip, k_uav, k_flow = jax.random.split(key, 4)
        if params.trace_bank is not None:
            trace = mobility.draw_bank_window(k_traj, params.trace_bank, n, c.max_steps + 1)
        elif params.trace is None:
            trace = mobility.generate_trajectories(
                k_traj, self.road_grid, params.mobility, n, c.max_steps + 1, params.slot_s, c.mobility_substeps
            )
            trace = mobility.Trace(positions_m=trace.positions_m)
        else:
            trace = mobility.Trace(positions_m=params.trace.positions_m, valid=params.trace.valid)
        # trips: the first V - late vehicles depart at slot 0, the others at U{1..T-1} (§8.2 #5)
        late = jnp.arange(n) >= n - c.num_late_vehicles
        depart = jnp.where(late, fastrand.randint(k_trip, (n,), 1, max(c.max_steps, 2)), 0).astype(jnp.int32)
        if c.min_trip_slots > 0:
            trip = fastrand.randint(jax.random.fold_in(k_trip, 1), (n,), c.min_trip_slots, c.max_steps + 1)
            arrive = jnp.where(depart + trip < c.max_steps, depart + trip, NEVER).astype(jnp.int32)
        else:
            arrive = jnp.full((n,), NEVER, jnp.int32)
        # UAVs: random patrol phase; the first `entering` enter at U{1..T-1}, the next `exiting` leave then
        k_phase, k_enter, k_leave = jax.random.split(k_uav, 3)
        loop_m = mobility.loop_lengths_m(params.uav_loops_m)
        phase = fastrand.uniform(k_phase, (u,)) * loop_m
        index = jnp.arange(u)
        entering = index < c.num_entering_uavs
        exiting = (index >= c.num_entering_uavs) & (index < c.num_entering_uavs + c.num_exiting_uavs)
        enter = jnp.where(entering, fastrand.randint(k_enter, (u,), 1, max(c.max_steps, 2)), ALWAYS).astype(jnp.int32)
        leave = jnp.where(exiting, fastrand.randint(k_leave, (u,), 1, max(c.max_steps, 2)), NEVER).astype(jnp.int32)
        # background flow: time of day, per-RSU phase, AR(1) noise from its stationary law, pre-rolled W slots
        k_off, k_phi, k_noise = jax.random.split(k_flow, 3)
        period = params.flow_period_slots if params.flow_table is None else np.shape(params.flow_table)[0]
        offset = fastrand.uniform(k_off, (), 0.0, 1.0) * period
        flow_phase = fastrand.uniform(k_phi, (self.num_rsus,), 0.0, 2.0 * math.pi)
        rho = params.flow_ar_coeff
        sigma = params.flow_noise_frac * params.flow_mean_vehicles
        # n(k) = rho n(k-1) + sigma eps_k for slots k = -W..0, n(-W) stationary: n = L eps with L[k, j] = rho^(k-j)
        eps = fastrand.normal(k_noise, (w + 1, self.num_rsus))
        eps = eps.at[0].multiply(1.0 / jnp.sqrt(1.0 - rho * rho))
        lag = np.arange(w + 1)[:, None] - np.arange(w + 1)[None, :]
        powers = jnp.where(lag >= 0, rho ** jnp.maximum(lag, 0).astype(jnp.float32), 0.0)
        noise_rows = sigma * (powers @ eps)  # [W + 1, N]
        state = EnvState(
            t=jnp.int32(0),
            trace=trace,
            depart_slot=depart,
            arrive_slot=arrive,
            uav_phase_m=phase,
            uav_enter_slot=enter,
            uav_leave_slot=leave,
            flow_offset_slots=offset,
            flow_phase_rad=flow_phase,
            flow_noise=noise_rows[w],
            background_bits=jnp.zeros(self.num_servers, jnp.float32),
            load_history_bits=jnp.zeros((w, self.num_servers), jnp.float32),
            forecast_bits=jnp.zeros(self.num_servers, jnp.float32),
            queue_bits=jnp.zeros(self.num_servers, jnp.float32),  # Q_0 = 0 [REC §7.3]
            host=jnp.zeros(n, jnp.int32),
            placed=jnp.zeros(n, bool),
            failures=jnp.zeros(n, jnp.float32),
            active_slots=jnp.zeros(n, jnp.float32),
            norm=RunningMoments.zeros((3,)) if c.norm_mode == "running" else None,
        )

        def background_at(slot, noise):
            uav_xy, uav_present = self.uav_positions(state, params, slot)
            flow = self.flow_vehicles(offset, flow_phase, noise, slot, params)
            return self.background_load(flow, uav_xy, uav_present, params)

        rows = jax.vmap(background_at)(jnp.arange(-w, 1, dtype=jnp.int32), noise_rows)  # slots -W .. 0
        history, background = rows[:w], rows[w]
        _, uav_present = self.uav_positions(state, params, 0)
        present = self.server_presence(uav_present, params)
        state = state.replace(
            background_bits=background,
            load_history_bits=history,
            forecast_bits=self.forecast(history, background, present, params),
        )
        # initial host: the nearest feasible RSU/UAV, else the satellite [REC §7.2] (J^0 = 0 regardless)
        ctx = self.slot_context(state, params)
        mask = self._mask(ctx, params, inactive_rows=False)
        state = state.replace(host=self.nearest_selectable(ctx, mask))
        return self.observation(state, params), state

    # ------------------------------------------------------------------ what the agents face
    def slot_context(self, state: EnvState, params: EnvParams, t=None) -> SlotContext:
        """Start-of-slot quantities shared by the observation, the mask, the step and state-based policies."""
        c = self.config
        t = state.t if t is None else t
        position = state.trace.position_at(jnp.minimum(t, c.max_steps))
        uav_xy, uav_present = self.uav_positions(state, params, t)
        server_xy = jnp.concatenate([params.rsu_xy_m, uav_xy, jnp.zeros((1, 2), jnp.float32)])
        height = jnp.where(self.is_uav, jnp.asarray(params.uav_altitude_m, jnp.float32), 0.0)
        servers = ground_points(server_xy, params.earth_radius_m, c)  # per server once, then per pair

        def distances(xy):  # one vehicle's D_{v,m} [M], eq. (2): slant distance to UAVs, the satellite's altitude
            point = ground_points(xy, params.earth_radius_m, c)
            ground = points_distance_m(point, servers, params.earth_radius_m, c, exact_zero=False)  # clamped below
            distance = net.distance_with_height_m(ground, height)
            return jnp.where(self.is_sat, params.sat_altitude_m, jnp.maximum(distance, params.min_distance_m))

        distance = rows_by_loop(distances, position)
        return SlotContext(
            distance_m=distance,
            server_xy_m=server_xy,
            server_height_m=height,
            present=self.server_presence(uav_present, params),
            background_bits=state.background_bits,
            forecast_bits=state.forecast_bits,
            queue_bits=state.queue_bits,
            host=state.host,
            placed=state.placed,
            active=self.vehicle_active(state, t),
            server_points=servers,
        )

    def server_range_m(self, params: EnvParams) -> jax.Array:
        """D^max_m [M]: RSU 1200 m, UAV 1500 m, satellite unlimited [REC]."""
        return jnp.where(self.is_rsu, params.rsu_range_m, jnp.where(self.is_uav, params.uav_range_m, jnp.inf))

    def server_cache_bits(self, params: EnvParams) -> jax.Array:
        """L^max_m [M]: 300 MB at RSUs and UAVs, unlimited at the satellite [REC]."""
        return jnp.where(self.is_sat, jnp.inf, params.edge_cache_bits)

    def server_cpu_hz(self, params: EnvParams) -> jax.Array:
        return jnp.where(self.is_sat, params.sat_cpu_hz, params.edge_cpu_hz)

    def estimated_load_bits(self, ctx: SlotContext) -> jax.Array:
        """S^o_m(t) = S^pre_m(t) + Q_m(t) [M]: what the observation shows and the mask tests (§5.2-5.3)."""
        return jnp.where(ctx.present, ctx.forecast_bits + ctx.queue_bits, 0.0)

    def load_increment_bits(self, ctx: SlotContext, params: EnvParams) -> jax.Array:
        """Delta S_{v,m} [V, M] of the overflow test (§5.3): S^mig for a server other than the current host,
        else S_v ("spec"), or what the vehicle would add to S'_m ("realised"); S_v before the first placement."""
        moves = ctx.placed[:, None] & (jnp.arange(self.num_servers)[None, :] != ctx.host[:, None])
        if self.config.mask_increment == "spec":
            return jnp.where(moves, params.migration_bits, params.data_bits)
        extra = params.migration_bits if self.config.count_mig_in_load else 0.0
        return params.data_bits + jnp.where(moves, extra, 0.0)

    def feasibility(self, ctx: SlotContext, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """(in range [V, M], fits the cache [V, M]) of eq. (23); the satellite is both."""
        in_range = ctx.distance_m <= self.server_range_m(params)[None, :]
        fits = (
            self.estimated_load_bits(ctx)[None, :] + self.load_increment_bits(ctx, params)
            <= self.server_cache_bits(params)[None, :]
        )
        return in_range | self.is_sat, fits | self.is_sat

    def _nearest_present(self, ctx: SlotContext) -> jax.Array:
        """The nearest present RSU/UAV of each vehicle [V] (the no-satellite fallback, §8.2 #2)."""
        candidates = ctx.present & ~self.is_sat
        return first_argmin(jnp.where(candidates[None, :], ctx.distance_m, jnp.inf))

    def fallback_server(self, ctx: SlotContext) -> jax.Array:
        """[V]: the satellite when it is available, else the nearest present RSU/UAV: what an invalid action
        (an index outside 0..M-1, an absent server) executes as."""
        if self.config.use_satellite:
            return jnp.full(self.num_agents, self.satellite, jnp.int32)
        return self._nearest_present(ctx)

    def _mask(self, ctx: SlotContext, params: EnvParams, inactive_rows: bool = True) -> jax.Array:
        mask = jnp.broadcast_to(ctx.present, (self.num_agents, self.num_servers))
        if self.config.use_mask:
            in_range, fits = self.feasibility(ctx, params)
            mask = mask & in_range & fits
        empty = ~jnp.any(mask, axis=-1)
        fallback = jax.nn.one_hot(self._nearest_present(ctx), self.num_servers, dtype=bool)
        mask = jnp.where(empty[:, None], fallback, mask)
        if not inactive_rows:
            return mask
        # an inactive vehicle has one selectable action, a no-op the env ignores: its current host, or the
        # fallback server when that host is absent
        host = jax.nn.one_hot(ctx.host, self.num_servers, dtype=bool) & ctx.present[None, :]
        host = jnp.where(
            jnp.any(host, axis=-1, keepdims=True),
            host,
            jax.nn.one_hot(self.fallback_server(ctx), self.num_servers, dtype=bool),
        )
        return jnp.where(ctx.active[:, None], mask, host)

    def action_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """K [V, M] bool, eq. (23): a server is selectable when present and, with `use_mask`, in range
        (D <= D^max) and not predicted to overflow (S^pre + Q + Delta S <= L^max). The satellite is always
        selectable when present. A row with nothing selectable (possible only without the satellite)
        re-opens the nearest present RSU/UAV [REC §8.2 #2], so every row has a True. With use_mask=False the
        mask is presence only (§8.2 #4). The row of an inactive vehicle (not yet departed, trip over) holds
        one True, its current host (the fallback server if that host is absent): a no-op with log-prob 0,
        so a learner's ratio and entropy ignore it."""
        return self._mask(self.slot_context(state, params), params)

    def nearest_selectable(self, ctx: SlotContext, mask) -> jax.Array:
        """Nearest selectable RSU/UAV, else the satellite/fallback [V] (initial host; Greedy's choice)."""
        ground = mask & ~self.is_sat
        best = first_argmin(jnp.where(ground, ctx.distance_m, jnp.inf))
        other = jnp.where(mask[:, self.satellite], self.satellite, jnp.argmax(mask, axis=-1)).astype(jnp.int32)
        return jnp.where(jnp.any(ground, axis=-1), best, other)

    def observation(self, state: EnvState, params: EnvParams) -> jax.Array:
        """o_v(t) = [D_v^o(t), S^o(t)], eq. (19), scaled as §5.2 [REC]: distances to the N + U RSUs/UAVs / 1500 m
        clipped to [0, 4] (absent: 2 D^max_UAV), then the M estimated loads S^pre + Q / L^max (absent: 0),
        shared by all agents; optionally the host one-hot and t / T_ep, and the presence bits. [V, obs_dim]."""
        c = self.config
        ctx = self.slot_context(state, params)
        ground = self.num_rsus + self.num_uavs
        distance = jnp.where(ctx.present[None, :ground], ctx.distance_m[:, :ground], params.absent_distance_m)
        parts = [
            jnp.clip(distance / params.obs_distance_scale_m, 0.0, params.obs_distance_clip),
            jnp.broadcast_to(
                self.estimated_load_bits(ctx) / params.edge_cache_bits, (self.num_agents, self.num_servers)
            ),
        ]
        if c.obs_include_host:
            parts.append(jax.nn.one_hot(state.host, self.num_servers))
            parts.append(jnp.broadcast_to(state.t / c.max_steps, (self.num_agents, 1)))
        if c.obs_include_presence:
            parts.append(jnp.broadcast_to(ctx.present, (self.num_agents, self.num_servers)))
        return jnp.concatenate(parts, axis=-1).astype(jnp.float32)

    def world_state(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Centralized-critic input: all observations plus the agent's one-hot id [V, V obs_dim + V] (the same
        as `world_state_from_observation`, which trainers use)."""
        return self.world_state_from_observation(self.observation(state, params))

    # ------------------------------------------------------------------ action
    def parse_action(self, action) -> jax.Array:
        """Check the shape and dtype (ValueError at trace time): int [V], the hosting server of each vehicle.
        Values are not clipped here: `step_env` executes an index outside {0..M-1} or naming an absent server
        as the fallback server (`fallback_server`) and flags it in info["invalid_action"]; a present server
        that the mask excludes runs as chosen, its range and overload failures counted by eq. (14), and is
        flagged in info["masked_action"]. An inactive vehicle's action is ignored."""
        if isinstance(action, dict):
            raise ValueError(
                f"action must be an int array [num_vehicles={self.num_agents}] of server indices, got a dict"
            )
        action = jnp.asarray(action)
        if action.shape != (self.num_agents,):
            raise ValueError(
                f"action must have shape ({self.num_agents},) (one server index per vehicle), got {action.shape}"
            )
        if not jnp.issubdtype(action.dtype, jnp.integer):
            raise ValueError(f"action must be integer server indices, got dtype {action.dtype}")
        return action.astype(jnp.int32)

    # ------------------------------------------------------------------ the slot
    def server_loads(self, ctx: SlotContext, server, migrates, params: EnvParams) -> jax.Array:
        """S'_m(t) = B_m(t) + Q_m(t) + sum_v g_{v,m} (S_v + J_v S^mig [count_mig_in_load]), eq. (8) / §7.3 [M]."""
        extra = params.migration_bits * migrates.astype(jnp.float32) if self.config.count_mig_in_load else 0.0
        added = jnp.where(ctx.active, params.data_bits + extra, 0.0)
        assigned = jnp.zeros(self.num_servers, jnp.float32).at[server].add(added)
        return jnp.where(ctx.present, ctx.background_bits + ctx.queue_bits, 0.0) + assigned

    def migration_rate_bps(self, ctx: SlotContext, source, target, params: EnvParams) -> jax.Array:
        """R^mig between servers [V], eq. (11): D^mig from the same haversine with the altitude difference as
        the vertical offset, clamped >= 1 m [REC]; R^SAT when either end is the satellite."""
        c, radius = self.config, params.earth_radius_m
        points = ctx.server_points if ctx.server_points is not None else ground_points(ctx.server_xy_m, radius, c)
        pick = lambda index: jax.tree.map(lambda x: x[index], points)
        ground = points_distance_m(pick(source), pick(target), radius, c)
        dz = ctx.server_height_m[source] - ctx.server_height_m[target]
        distance = jnp.maximum(net.distance_with_height_m(ground, dz), params.min_distance_m)
        rate = net.link_rate_bps(
            distance,
            params.migration_bandwidth_hz,
            params.server_tx_power_w,
            params.noise_power_w,
            **channel_constants(params),
        )
        via_sat = jnp.asarray(self.is_sat)[source] | jnp.asarray(self.is_sat)[target]
        return jnp.where(via_sat, params.sat_rate_bps, rate)

    def slot_latency(self, ctx: SlotContext, server, params: EnvParams, fading=None) -> dict:
        """Per-vehicle outcome of hosting on `server` [V] (valid, present servers), eqs. (6)-(14): latency
        parts (s), the migration flag J, the chosen server's load S'_a, failure and its causes, and the loads
        S'_m [M]. Inactive vehicles get zeros and add no load."""
        c = self.config
        v = jnp.arange(self.num_agents)
        on_sat = jnp.asarray(self.is_sat)[server]
        migrates = ctx.active & ctx.placed & (server != ctx.host)  # eq. (10), J^0 = 0
        loads = self.server_loads(ctx, server, migrates, params)
        load = loads[server]
        distance = ctx.distance_m[v, server]
        gain = 1.0 if fading is None else fading[v, server]
        share = 1.0
        if c.ofdma_split:  # B / k_m among the active vehicles on the same server
            share = jnp.maximum(jnp.zeros(self.num_servers).at[server].add(ctx.active.astype(jnp.float32))[server], 1.0)
        channel = {**channel_constants(params), "fading": gain}
        up_bps = net.link_rate_bps(
            distance, params.uplink_bandwidth_hz / share, params.vehicle_tx_power_w, params.noise_power_w, **channel
        )
        down_bps = net.link_rate_bps(
            distance, params.downlink_bandwidth_hz / share, params.server_tx_power_w, params.noise_power_w, **channel
        )
        out_of_range = (distance > self.server_range_m(params)[server]) & ~on_sat
        relay = c.out_of_range_link == "satellite_relay" and c.use_satellite  # no satellite: the channel, as v0
        via_sat = on_sat | (out_of_range & relay)
        up_bps = jnp.where(via_sat, params.sat_rate_bps, up_bps)  # eqs. (6)-(7); v1: out of range -> relayed
        down_bps = jnp.where(via_sat, params.sat_rate_bps, down_bps)
        uplink = net.transfer_latency_s(params.data_bits, up_bps)
        downlink = net.transfer_latency_s(params.data_bits, down_bps)
        cache = self.server_cache_bits(params)[server]
        overflow = (load > cache) & ~on_sat
        compute = computing_latency_s(
            load, params.data_bits, self.server_cpu_hz(params)[server], overflow, on_sat, params, c.use_satellite
        )
        rate_mig = self.migration_rate_bps(ctx, ctx.host, server, params)
        migration = migration_latency_s(migrates, params.migration_bits, rate_mig)
        extra = jnp.zeros(self.num_agents, jnp.float32)
        if c.overflow_adds_sat_comm and c.use_satellite:
            extra = extra + jnp.where(overflow, 2.0 * params.data_bits / params.sat_rate_bps, 0.0)
        if c.sat_prop_delay:
            extra = extra + jnp.where(on_sat, 2.0 * params.sat_altitude_m / net.SPEED_OF_LIGHT_MPS, 0.0)
        total = uplink + downlink + compute + migration + extra  # eq. (13)
        failure = failure_flag(distance, self.server_range_m(params)[server], load, cache, on_sat)  # eq. (14)
        act = ctx.active
        zero = lambda x: jnp.where(act, x, jnp.zeros_like(x))
        return {
            "uplink_s": zero(uplink),
            "downlink_s": zero(downlink),
            "compute_s": zero(compute),
            "migration_s": zero(migration),
            "extra_s": zero(extra),
            "total_latency_s": zero(total),
            "migrated": migrates,
            "failure": failure & act,
            "out_of_range": out_of_range & act,
            "overloaded": overflow & act,
            "on_satellite": on_sat & act,
            "load_bits": zero(load),
            "server_loads_bits": loads,
        }

    def execute(self, ctx: SlotContext, action) -> tuple[jax.Array, jax.Array]:
        """The server each vehicle's twin is hosted on [V] and the invalid-action flag [V]: an index outside
        {0..M-1} or an absent server runs on `fallback_server`; an inactive vehicle keeps its host."""
        in_bounds = (action >= 0) & (action < self.num_servers)
        safe = jnp.clip(action, 0, self.num_servers - 1)
        valid = in_bounds & ctx.present[safe]
        server = jnp.where(valid, safe, self.fallback_server(ctx))
        return jnp.where(ctx.active, server, ctx.host).astype(jnp.int32), ~valid & ctx.active

    def norm_moments(self, state: EnvState, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """(mean [3], std [3]) of latency (s), load (bits), variance (bits^2) used by this slot's z-scores:
        `params.norm_stats` ("fixed", and during the warm-up of "running"), else the running statistics kept
        in the state (before this slot's update: no look-ahead)."""
        prior_mean, prior_std = params.norm_stats.moments()
        if state.norm is None:
            return prior_mean, prior_std
        run = state.norm
        warm = run.count >= params.norm_warmup_samples
        mean = prior_mean + prior_std * run.mean
        std = prior_std * jnp.maximum(run.std, params.norm_min_std_frac)
        return jnp.where(warm, mean, prior_mean), jnp.where(warm, std, prior_std)

    def reward_terms(self, ctx: SlotContext, server, out: dict, loads, mean, std, params: EnvParams) -> dict:
        """The bracket of eq. (22) (or eq. 21 with `reward_form="weighted_sum"`) per vehicle [V] for the outcome
        `out` / `loads` of `slot_latency`, z-scored with (mean [3], std [3]) of `norm_moments`: "cost" (the
        reward is -cost for an active vehicle), its z-scores, the load term and the workload variance (16b)."""
        c = self.config
        ground = ctx.present & (~jnp.asarray(self.is_sat) | c.var_include_sat)
        variance = masked_variance(loads, ground)  # eq. (16b) objective O_V
        load_term = out["load_bits"] if c.reward_load == "realised" else self.estimated_load_bits(ctx)[server]
        z_latency = zscore(out["total_latency_s"], mean[0], std[0])
        z_load = zscore(load_term, mean[1], std[1])
        balance = z_load if c.reward_form == "shaped" else zscore(variance, mean[2], std[2])
        cost = reward_cost(z_latency, balance, out["failure"], out["migrated"], params)
        return {
            "cost": cost,
            "z_latency": z_latency,
            "z_load": z_load,
            "load_term_bits": load_term,
            "variance_bits2": variance,
        }

    @traced_once
    def step_env(self, key, state: EnvState, action, params: EnvParams):
        c = self.config
        action = self.parse_action(action)
        ctx = self.slot_context(state, params)
        mask = self._mask(ctx, params)
        server, invalid = self.execute(ctx, action)
        fading = None
        if c.rayleigh_fading:
            fading = net.rayleigh_power_gain(key, (self.num_agents, self.num_servers), stream=3)
        out = self.slot_latency(ctx, server, params, fading)
        loads = out.pop("server_loads_bits")
        act = ctx.active
        # reward, eqs. (21)-(22), with the statistics from before this slot's update
        mean, std = self.norm_moments(state, params)
        terms = self.reward_terms(ctx, server, out, loads, mean, std, params)
        variance, load_term, z_latency, z_load = (
            terms[k] for k in ("variance_bits2", "load_term_bits", "z_latency", "z_load")
        )
        reward = jnp.where(act, -terms["cost"], 0.0)
        num_active = jnp.sum(act.astype(jnp.float32))
        if c.team_reward:
            reward = jnp.where(act, jnp.sum(reward) / jnp.maximum(num_active, 1.0), 0.0)
        norm = state.norm
        if norm is not None:  # Welford / Chan merge of this slot's samples, in prior-standardised units
            prior_mean, prior_std = params.norm_stats.moments()
            samples = jnp.stack([out["total_latency_s"], load_term, jnp.full(self.num_agents, variance)])
            weight = jnp.stack([act, act, jnp.arange(self.num_agents) == 0]).astype(jnp.float32)
            norm = norm.update((samples - prior_mean[:, None]) / prior_std[:, None], weight)

        # caches drain kappa_m = C_m Delta t / e_v per slot; work above L^max is dropped (§7.3)
        queue, dropped = drain_caches(loads, self.server_cpu_hz(params), self.server_cache_bits(params), params)
        queue = jnp.where(ctx.present, queue, 0.0)

        # next slot: flows, UAV positions, background, history, forecast
        t_next = state.t + 1
        noise = self.next_flow_noise(key, state.flow_noise, params)
        uav_xy, uav_present = self.uav_positions(state, params, t_next)
        flow = self.flow_vehicles(state.flow_offset_slots, state.flow_phase_rad, noise, t_next, params)
        background = self.background_load(flow, uav_xy, uav_present, params)
        history = jnp.concatenate([state.load_history_bits[1:], state.background_bits[None]], axis=0)
        forecast = self.forecast(history, background, self.server_presence(uav_present, params), params)
        failures = state.failures + out["failure"].astype(jnp.float32)
        active_slots = state.active_slots + act.astype(jnp.float32)
        next_state = state.replace(
            t=t_next,
            flow_noise=noise,
            background_bits=background,
            load_history_bits=history,
            forecast_bits=forecast,
            queue_bits=queue,
            host=server,
            placed=state.placed | act,
            failures=failures,
            active_slots=active_slots,
            norm=norm,
        )
        truncated = t_next >= c.max_steps
        terminated = jnp.all(state.arrive_slot <= t_next)  # every trip over (never with whole-episode trips)
        masked = ~mask[jnp.arange(self.num_agents), server] & act
        info = {
            **out,
            "server": server,
            "active": act,
            "invalid_action": invalid,
            "masked_action": masked,
            "z_latency": jnp.where(act, z_latency, 0.0),
            "z_load": jnp.where(act, z_load, 0.0),
            "packet_loss_rate": failures / jnp.maximum(active_slots, 1.0),  # eq. (15) so far in the episode
            "workload_variance_bits2": variance,
            "dropped_bits": jnp.sum(dropped),
            "num_active": num_active,
        }
        return self.observation(next_state, params), next_state, reward, terminated, truncated, info

    def merge_reset(self, done, reset_out, step_out):
        """Auto-reset; with norm_mode="running" and norm_scope="persistent" the running statistics survive the
        reset (they are data of the world, not of the episode)."""
        obs, state = super().merge_reset(done, reset_out, step_out)
        if self.config.norm_mode == "running" and self.config.norm_scope == "persistent":
            state = state.replace(norm=step_out[1].norm)
        return obs, state

    # ------------------------------------------------------------------ evaluation helpers
    def running_norm_stats(self, state: EnvState, params: EnvParams) -> NormStats:
        """The statistics the next z-scores use, as a `NormStats` in SI units."""
        mean, std = self.norm_moments(state, params)
        return NormStats(mean[0], std[0], mean[1], std[1], mean[2], std[2])


# ====================================================================== TwinRouting-v1
@dataclasses.dataclass(frozen=True)
class TwinRoutingV1Config(TwinRoutingConfig):
    """TwinRouting-v1: v0 with infeasible hosts that cost and a mask that tests what the realised load adds (the
    reasons, measured, are in docs/twin_routing.md, "v0 -> v1"): an overflowing twin computed on the satellite
    also pays the satellite's up- and downlink (spec §2.7 option), a host beyond D^max is reached through the
    satellite, and the mask's Delta S is S_v + J S^mig, what eq. (8) adds. The load defaults are in
    `TwinRoutingV1.default_params`."""

    mask_increment: Literal["spec", "realised"] = "realised"
    overflow_adds_sat_comm: bool = True
    out_of_range_link: Literal["channel", "satellite_relay"] = "satellite_relay"


class TwinRoutingV1(TwinRouting):
    """TwinRouting-v1: `TwinRoutingV1Config` and a background load that reaches the caches' capacity at its daily
    peak, with ramps inside an episode and small noise (`V1_PARAMS`). Every v0 field still applies.
    `vmjax.make("TwinRouting-v1", **config)`."""

    env_id = "TwinRouting-v1"
    config_class = TwinRoutingV1Config

    @property
    def default_params(self) -> EnvParams:
        params = super().default_params.replace(**V1_PARAMS)
        if self.config.parameter_set == "calibrated":
            params = params.replace(norm_stats=V1_NORM_STATS)
        return params


# §3.3 (A) constants of the default v1 config (`python -m baselines.twin_routing --calibrate --env TwinRouting-v1`:
# Greedy + Random with the mask, 64 episodes each, seed 0); recompute them for other configs.
V1_NORM_STATS = NormStats(0.8633, 1.773, 1.902e9, 5.195e9, 5.031e17, 5.404e17)

V1_PARAMS: dict = {
    "flow_daily_amplitude": 0.92,  # peak B = 1.1 kappa at a mean of 0.5 kappa (spec §7.2; v0: 0.6, peak 0.9 kappa)
    "flow_half_daily_amplitude": 0.46,  # the half-daily term keeps its ratio to the daily one (v0: 0.3)
    "flow_noise_frac": 0.02,  # AR(1) innovation 2% of the mean flow, small against the daily ramps (v0: 0.1)
}
"""TwinRouting-v1's parameter defaults that differ from v0's (`EnvParams` fields)."""


# ====================================================================== calibration, §3.3 (A)
def calibrate_norm_stats(
    env: TwinRouting, params: EnvParams, policies: Sequence[Callable], key, num_episodes: int = 64
) -> NormStats:
    """Fixed z-score constants (§3.3 (A) [REC]): roll out each `policy(key, state, params)` for
    `num_episodes` episodes and pool mean and std of T^sum and S'_a over the active (episode, slot, vehicle)
    samples and of Var(S') over (episode, slot). Returns a `NormStats` for `params.replace(norm_stats=...)`;
    rerun it when the config changes (every ablation of §8.2)."""
    from vmjax.core.rollout import rollout

    def summarize(reward, info):
        return {k: info[k] for k in ("total_latency_s", "load_bits", "active", "workload_variance_bits2")}

    policies = list(policies)

    @jax.jit
    def run(k, index):  # one compilation for every policy (they sit behind a lax.switch)
        policy = lambda kk, state, p: jax.lax.switch(index, policies, kk, state, p)
        return rollout(env, policy, k, params, num_episodes, env.config.max_steps, summarize)

    samples = {"latency": [], "load": [], "variance": []}
    for i in range(len(policies)):
        out = run(jax.random.fold_in(key, i), i)
        active = np.asarray(out["active"], bool)
        samples["latency"].append(np.asarray(out["total_latency_s"], np.float64)[active])
        samples["load"].append(np.asarray(out["load_bits"], np.float64)[active])
        samples["variance"].append(np.asarray(out["workload_variance_bits2"], np.float64).ravel())
    pooled = {k: np.concatenate(v) for k, v in samples.items()}
    stat = lambda x: (float(np.mean(x)), float(max(np.std(x, ddof=1), 1e-12 * max(abs(np.mean(x)), 1.0))))
    (lm, ls), (sm, ss), (vm, vs) = stat(pooled["latency"]), stat(pooled["load"]), stat(pooled["variance"])
    return NormStats(lm, ls, sm, ss, vm, vs)
