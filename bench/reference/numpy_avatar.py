"""AvatarPremigration-v0 (spec 003) in plain NumPy: the simulator a researcher would otherwise write.

Two implementations of the same scenario, written without JAX:

- `AvatarPremigrationNumpy`: one world, gymnasium-style (`reset(seed=None, options=None) -> (obs, info)`,
  `step(action) -> (obs, reward, terminated, truncated, info)`); NumPy for the geometry and the trajectory
  generation, a Python loop over vehicles for the latency model. At the time limit it returns
  `truncated=True` and the caller resets.
- `BatchedAvatarPremigrationNumpy`: B worlds stepped together with array operations over [B, N, M],
  auto-resetting finished worlds (the observation an episode ended on is in `info["final_observation"]`).

Both port `vmjax/envs/avatar_premigration.py` for the configuration the benchmarks use: the §7.2 road
corridor, area="urban", no fading, no uplink sharing, no background vehicles, rsu_order="index",
workload_forecast "persistence" or "none" (`ReferenceConfig` raises NotImplementedError naming the field
for anything else). What they compute per slot:

    latency     eqs. (1)-(9): uplink + max(local, migration + remote) + cloud + downlink
    reward      eq. (21): r_v = -T_v (seconds)
    queues      fluid RSU queues clipped at L^max (the excess is absorbed by the cloud)
    observation eq. (19): position / map extent, L(t), L^(t+1), T_v(t-1) / 10 s
    mobility    the corridor case of `vmjax.mobility.generate_trajectories` (AR(1) speed with stops,
                U-turns at the road ends, lane offsets, lateral jitter and GPS noise), run at every reset
                with NumPy's Generator

Random streams differ from vmjax's (NumPy's Generator here), so for an equivalence check every random
quantity can be injected instead of drawn: `reset(options={"draws": EpisodeDraws(...)})` (trajectories,
RSU draws, initial queues, the first slot's tasks) and `step(action, draws=SlotDraws(...))` (the next
slot's tasks); the batched env takes the same objects with a leading world axis, plus `reset_draws` for
the worlds that finish in the step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

MB = 8e6  # bits per (decimal) megabyte
SPEED_OF_LIGHT_MPS = 3e8
_LOG_C_OVER_4PI = math.log(SPEED_OF_LIGHT_MPS / (4.0 * math.pi))


# ====================================================================== configuration and constants
@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """The static configuration of AvatarPremigration-v0 (same fields and defaults as vmjax's
    `AvatarPremigrationConfig`); only the benchmark configuration is implemented."""

    num_vehicles: int = 10
    num_rsus: int = 6
    max_steps: int = 100
    history_slots: int = 12
    num_background_vehicles: int = 0
    layout: str = "corridor"
    area: str = "urban"
    workload_forecast: str = "persistence"
    share_uplink_bandwidth: bool = False
    rayleigh_fading: bool = False
    cloud_truncate: bool = False
    obs_prev_fraction: bool = False
    obs_serving_onehot: bool = False
    rsu_order: str = "index"
    corridor_rsu_spacing_m: float = 415.0
    corridor_width_m: float = 122.0
    grid_core_rsu_share: float = 0.6
    mobility_substeps: int = 4  # no effect on the corridor (no intersections: one move per slot)

    _IMPLEMENTED = {  # class constant (no annotation: not a field)
        "num_background_vehicles": (0,),
        "layout": ("corridor",),
        "area": ("urban",),
        "workload_forecast": ("persistence", "none"),
        "share_uplink_bandwidth": (False,),
        "rayleigh_fading": (False,),
        "cloud_truncate": (False,),
        "obs_prev_fraction": (False,),
        "obs_serving_onehot": (False,),
        "rsu_order": ("index",),
    }

    def __post_init__(self):
        for name in ("num_vehicles", "num_rsus", "max_steps", "history_slots"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"ReferenceConfig.{name} must be an integer >= 1, got {value!r}")
        for name, supported in self._IMPLEMENTED.items():
            value = getattr(self, name)
            if value not in supported:
                raise NotImplementedError(
                    f"ReferenceConfig.{name}={value!r} is not implemented by the NumPy reference "
                    f"(supported: {supported})"
                )
        for name in ("corridor_rsu_spacing_m", "corridor_width_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ReferenceConfig.{name} must be > 0, got {getattr(self, name)!r}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> ReferenceConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; valid fields: {sorted(names)}")
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class MobilityParams:
    """Synthetic-mobility constants (spec 003 §7.2; the fields of vmjax's `MobilityParams`)."""

    speed_ar_coeff: float = 0.8
    mean_speed_core_mps: float = 12.0
    mean_speed_outskirts_mps: float = 16.0
    speed_noise_std_mps: float = 2.0
    max_speed_mps: float = 20.0
    stop_prob: float = 0.05
    stop_min_slots: int = 1
    stop_max_slots: int = 3
    turn_prob: float = 0.5
    lateral_jitter_std_m: float = 1.0
    gps_noise_std_m: float = 3.0
    core_start_prob: float = 0.7


@dataclasses.dataclass(frozen=True)
class ReferenceParams:
    """Every physical constant of spec 003 §7.1 in SI units (the scalar fields of vmjax's `EnvParams`)."""

    rsu_bandwidth_hz_low: float = 200e6
    rsu_bandwidth_hz_high: float = 600e6
    rsu_migration_bps_low: float = 500e6
    rsu_migration_bps_high: float = 900e6
    rsu_gpu_hz_low: float = 10e9
    rsu_gpu_hz_high: float = 30e9
    cloud_gpu_hz_low: float = 50e9
    cloud_gpu_hz_high: float = 100e9
    cloud_uplink_bps: float = 200e6
    max_workload_s: float = 20.0
    initial_load_max_frac: float = 0.3
    coverage_radius_m: float = 300.0
    channel_gain_coeff: float = 4.11
    carrier_hz: float = 2e9
    path_loss_exponent: float = 2.8
    min_distance_m: float = 10.0
    vehicle_tx_power_w: float = 0.2
    rsu_tx_power_w: float = 1.0
    noise_power_w: float = 1e-12
    task_input_bits_low: float = 12 * MB
    task_input_bits_high: float = 20 * MB
    task_bits_low: float = 50 * MB
    task_bits_high: float = 250 * MB
    cycles_per_bit: float = 0.5e9 / MB
    slot_s: float = 10.0
    workload_per_vehicle_cycles: float = 75e9
    background_cycles_per_vehicle: float = 5e9
    stay_min_speed_mps: float = 0.1
    stay_max_s: float = 1e3
    latency_obs_scale_s: float = 10.0
    mobility: MobilityParams = MobilityParams()

    @property
    def mean_max_workload_cycles(self) -> float:
        """Observation scale of L and L^: the expected L^max_m."""
        return self.max_workload_s * 0.5 * (self.rsu_gpu_hz_low + self.rsu_gpu_hz_high)


# ====================================================================== random draws (injectable)
@dataclasses.dataclass
class RsuDraws:
    """Per-episode RSU and cloud draws; arrays may carry a leading world axis [B, ...]."""

    bandwidth_hz: np.ndarray  # [M] B^u_m = B^d_m
    migration_bps: np.ndarray  # [M, M] B_{m,m'} = min(B^mig_m, B^mig_m')
    gpu_hz: np.ndarray  # [M] C_m
    max_workload_cycles: np.ndarray  # [M] L^max_m
    cloud_gpu_hz: np.ndarray  # () C_c


@dataclasses.dataclass
class SlotDraws:
    """The tasks of one slot: [N] (or [B, N])."""

    task_input_bits: np.ndarray
    task_bits: np.ndarray


@dataclasses.dataclass
class EpisodeDraws:
    """Everything an episode draws at reset: trajectories [T, V, 2] (T = history + max_steps + 1, agents
    first), RSU draws, initial queues [M], and the first slot's tasks (leading world axis when batched)."""

    positions_m: np.ndarray
    rsu: RsuDraws
    queue_cycles: np.ndarray
    slot: SlotDraws

    def rows(self, index) -> EpisodeDraws:
        """The worlds `index` of batched draws."""
        take = lambda x: np.asarray(x)[index]  # noqa: E731
        rsu = RsuDraws(*(take(getattr(self.rsu, f.name)) for f in dataclasses.fields(RsuDraws)))
        slot = SlotDraws(take(self.slot.task_input_bits), take(self.slot.task_bits))
        return EpisodeDraws(take(self.positions_m), rsu, take(self.queue_cycles), slot)


def _uniform(rng: np.random.Generator, low, high, shape, dtype):
    return (low + (high - low) * rng.random(shape, dtype=dtype)).astype(dtype, copy=False)


def sample_rsus(
    rng: np.random.Generator, params: ReferenceParams, num_rsus: int, batch=(), dtype=np.float64
) -> RsuDraws:
    """Heterogeneous RSUs and cloud from the §7.1 ranges (resampled at every reset)."""
    shape = tuple(batch) + (num_rsus,)
    bandwidth = _uniform(rng, params.rsu_bandwidth_hz_low, params.rsu_bandwidth_hz_high, shape, dtype)
    migration = _uniform(rng, params.rsu_migration_bps_low, params.rsu_migration_bps_high, shape, dtype)
    gpu = _uniform(rng, params.rsu_gpu_hz_low, params.rsu_gpu_hz_high, shape, dtype)
    cloud = _uniform(rng, params.cloud_gpu_hz_low, params.cloud_gpu_hz_high, tuple(batch), dtype)
    return RsuDraws(
        bandwidth_hz=bandwidth,
        migration_bps=np.minimum(migration[..., :, None], migration[..., None, :]),
        gpu_hz=gpu,
        max_workload_cycles=(params.max_workload_s * gpu).astype(dtype, copy=False),
        cloud_gpu_hz=cloud,
    )


def sample_slot(
    rng: np.random.Generator, params: ReferenceParams, num_vehicles: int, batch=(), dtype=np.float64
) -> SlotDraws:
    """New tasks D^in_v, D_v for every vehicle."""
    shape = tuple(batch) + (num_vehicles,)
    return SlotDraws(
        task_input_bits=_uniform(rng, params.task_input_bits_low, params.task_input_bits_high, shape, dtype),
        task_bits=_uniform(rng, params.task_bits_low, params.task_bits_high, shape, dtype),
    )


# ====================================================================== layout and mobility
@dataclasses.dataclass(frozen=True)
class CorridorRoad:
    """Spec 003 §7.2 map: one bidirectional road along x at y = width / 2, lanes 6 and 16 m right of the
    centre line; the whole map is the urban core."""

    length_m: float
    width_m: float
    lane_offsets_m: tuple[float, ...] = (6.0, 16.0)

    @property
    def road_y_m(self) -> float:
        return self.width_m / 2.0

    @property
    def core_box_m(self) -> tuple[float, float, float, float]:
        return (0.0, 0.0, self.length_m, self.width_m)


def corridor_rsu_positions(num_rsus: int, spacing_m: float, width_m: float) -> np.ndarray:
    """RSUs alternating south / north (y = 0, y = width) at x = (k + 0.5) * spacing, [M, 2]."""
    k = np.arange(num_rsus)
    return np.stack([(k + 0.5) * spacing_m, np.where(k % 2 == 0, 0.0, width_m)], axis=1).astype(np.float32)


def corridor_trajectories(
    rng: np.random.Generator,
    road: CorridorRoad,
    mp: MobilityParams,
    vehicles_shape: tuple[int, ...],
    num_steps: int,
    slot_s: float,
    dtype=np.float64,
) -> np.ndarray:
    """Synthetic corridor trajectories, positions [num_steps, *vehicles_shape, 2] float32.

    The corridor case of vmjax's road-grid mobility: each vehicle starts uniformly along the road (inside
    the core box with `core_start_prob`; here the core is the whole road), in a random direction and lane,
    at a speed near the AR(1) stationary law. Every slot it is observed (road point + lane offset and
    jitter across the road + GPS noise), then its speed takes an AR(1) step or a stop of U{min..max} slots
    starts, and it drives speed * slot_s along the road, U-turning (reflected) at a road end. Without
    intersections the sub-steps of a slot reduce to one move.
    """
    shape = tuple(vehicles_shape)
    xmin, ymin, xmax, ymax = road.core_box_m
    length_m, road_y = road.length_m, road.road_y_m
    # initial state: along-road position, direction, lane, speed (all vehicles on the one road)
    starts_in_core = rng.random(shape, dtype=dtype) < mp.core_start_prob
    low = np.where(starts_in_core, xmin, 0.0)
    high = np.where(starts_in_core, xmax, length_m)
    along = (low + (high - low) * rng.random(shape, dtype=dtype)).astype(dtype)
    in_core = (along >= xmin) & (along <= xmax) & (road_y >= ymin) & (road_y <= ymax)
    a = mp.speed_ar_coeff
    mean_start = np.where(in_core, mp.mean_speed_core_mps, mp.mean_speed_outskirts_mps)
    stationary_std = mp.speed_noise_std_mps / math.sqrt(max(1.0 - a * a, 0.01))
    speed = np.clip(mean_start + stationary_std * rng.standard_normal(shape, dtype=dtype), 0.0, mp.max_speed_mps)
    speed = speed.astype(dtype)
    direction = np.where(rng.random(shape, dtype=dtype) < 0.5, 1.0, -1.0).astype(dtype)
    lane = rng.integers(0, len(road.lane_offsets_m), shape)
    lane_offset = np.asarray(road.lane_offsets_m, dtype)[lane]
    stop_left = np.zeros(shape, np.int64)
    across_std = math.sqrt(mp.lateral_jitter_std_m**2 + mp.gps_noise_std_m**2)
    num_choices = mp.stop_max_slots - mp.stop_min_slots + 1
    stop_p = max(mp.stop_prob, 1e-12)

    positions = np.empty((num_steps,) + shape + (2,), np.float32)
    for k in range(num_steps):
        # observe: heading (direction, 0), right-hand normal (0, -direction)
        noise = rng.standard_normal((2,) + shape, dtype=dtype)
        lateral = lane_offset + across_std * noise[0]
        positions[k, ..., 0] = along + mp.gps_noise_std_m * noise[1] * direction
        positions[k, ..., 1] = road_y - lateral * direction
        # speed: AR(1) towards the core / outskirts mean, or a stop
        in_core = (along >= xmin) & (along <= xmax) & (road_y >= ymin) & (road_y <= ymax)
        mean = np.where(in_core, mp.mean_speed_core_mps, mp.mean_speed_outskirts_mps)
        ar = a * speed + (1.0 - a) * mean + mp.speed_noise_std_mps * rng.standard_normal(shape, dtype=dtype)
        np.clip(ar, 0.0, mp.max_speed_mps, out=ar)
        stop_u = rng.random(shape, dtype=dtype)
        still_stopped = stop_left > 0
        starts_stop = ~still_stopped & (stop_u < mp.stop_prob)
        length = mp.stop_min_slots + np.floor(stop_u / stop_p * num_choices).astype(np.int64)
        length = np.minimum(length, mp.stop_max_slots)
        stop_left = np.where(still_stopped, stop_left - 1, np.where(starts_stop, np.maximum(length - 1, 0), 0))
        speed = np.where(still_stopped | starts_stop, 0.0, ar).astype(dtype, copy=False)
        # move, U-turn at the road ends
        along = along + direction * speed * slot_s
        past_end, before_start = along > length_m, along < 0.0
        along = np.where(past_end, 2.0 * length_m - along, np.where(before_start, -along, along))
        np.clip(along, 0.0, length_m, out=along)
        direction = np.where(past_end | before_start, -direction, direction)
    return positions


# ====================================================================== physics (scalar and array forms)
def path_loss_gain(distance_m, params: ReferenceParams):
    """h = A (c / (4 pi f_c d))^l, evaluated in the log domain (arrays or floats)."""
    log_ratio = _LOG_C_OVER_4PI - math.log(params.carrier_hz) - np.log(distance_m)
    return params.channel_gain_coeff * np.exp(params.path_loss_exponent * log_ratio)


def disk_exit_time_s(position, velocity, centre, radius_m, min_speed_mps, max_time_s):
    """Time until a point moving at constant velocity leaves a disk: arrays [..., 2] -> [...]."""
    rel = position - centre
    a = velocity[..., 0] ** 2 + velocity[..., 1] ** 2
    half_b = rel[..., 0] * velocity[..., 0] + rel[..., 1] * velocity[..., 1]
    c = rel[..., 0] ** 2 + rel[..., 1] ** 2 - radius_m * radius_m
    inside = c <= 0.0
    moving = a >= min_speed_mps * min_speed_mps
    safe_a = np.where(moving, a, 1.0)
    disc = np.where(inside & moving, half_b * half_b - safe_a * c, 1.0)
    tau = np.where(moving, (-half_b + np.sqrt(disc)) / safe_a, max_time_s)
    return np.where(inside, np.clip(tau, 0.0, max_time_s), 0.0)


def fluid_queue_update(queue, arrivals, service, capacity):
    """Q' = min(Q_max, max(0, Q + W - S)); returns (Q', overflow absorbed by the cloud)."""
    unclipped = np.maximum(queue + arrivals - service, 0.0)
    return np.minimum(unclipped, capacity), np.maximum(unclipped - capacity, 0.0)


def parse_action(action: Mapping[str, Any], num_vehicles: int, num_rsus: int):
    """(target int [.., N], fraction [.., N]): NaN alpha -> 0, alpha clipped to [0, 1], target to [0, M-1]."""
    if not isinstance(action, Mapping) or set(action) != {"target", "fraction"}:
        raise ValueError("action must be a dict with keys ['fraction', 'target']")
    target = np.asarray(action["target"])
    fraction = np.asarray(action["fraction"], dtype=np.float64)
    if target.shape[-1:] != (num_vehicles,) or fraction.shape != target.shape:
        raise ValueError(f"action arrays must end in ({num_vehicles},), got {target.shape} and {fraction.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"action['target'] must be integer RSU indices, got dtype {target.dtype}")
    fraction = np.clip(np.nan_to_num(fraction, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.clip(target, 0, num_rsus - 1).astype(np.int64), fraction


INFO_LATENCY_KEYS = ("total_latency_s", "uplink_s", "processing_s", "migration_s", "cloud_s", "downlink_s")


class _Common:
    """Configuration shared by both implementations."""

    def __init__(self, params: ReferenceParams | None, config: Mapping[str, Any]):
        self.config = ReferenceConfig.from_kwargs(config)
        c = self.config
        self.params = ReferenceParams() if params is None else params
        self.num_agents = c.num_vehicles
        self.num_rsus = c.num_rsus
        self.road = CorridorRoad(c.corridor_rsu_spacing_m * c.num_rsus, c.corridor_width_m)
        self.rsu_xy_m = corridor_rsu_positions(c.num_rsus, c.corridor_rsu_spacing_m, c.corridor_width_m)
        self.map_extent_m = np.array([self.road.length_m, self.road.width_m], np.float32)
        self.trajectory_slots = c.history_slots + c.max_steps + 1
        self.with_forecast = c.workload_forecast != "none"
        self.obs_dim = 2 + c.num_rsus + self.with_forecast * c.num_rsus + 1
        self.state_dim = self.num_agents * self.obs_dim + self.num_agents

    def world_state_from_observation(self, obs: np.ndarray) -> np.ndarray:
        """Centralized-critic input [..., N, N * D + N]: all observations plus the agent's one-hot id."""
        n, d = obs.shape[-2:]
        joint = np.broadcast_to(obs.reshape(obs.shape[:-2] + (1, n * d)), obs.shape[:-2] + (n, n * d))
        ids = np.broadcast_to(np.eye(n, dtype=obs.dtype), obs.shape[:-2] + (n, n))
        return np.concatenate([joint, ids], axis=-1)


# ====================================================================== one world, gymnasium-style
class AvatarPremigrationNumpy(_Common):
    """One AvatarPremigration-v0 world, gymnasium-style, with N agents.

    obs float32 [N, obs_dim]; action {"target": int [N], "fraction": float [N]}; reward float32 [N].
    `step` at the time limit returns truncated=True; call `reset` before stepping on.
    """

    def __init__(self, params: ReferenceParams | None = None, seed: int | None = None, **config):
        super().__init__(params, config)
        self.np_random = np.random.default_rng(seed)
        self._t = None

    # ------------------------------------------------------------------ draws
    def sample_episode(self, rng: np.random.Generator) -> EpisodeDraws:
        p = self.params
        positions = corridor_trajectories(
            rng, self.road, p.mobility, (self.num_agents,), self.trajectory_slots, p.slot_s
        )
        rsu = sample_rsus(rng, p, self.num_rsus)
        queue = rng.random(self.num_rsus) * p.initial_load_max_frac * rsu.max_workload_cycles
        return EpisodeDraws(positions, rsu, queue, sample_slot(rng, p, self.num_agents))

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        """Start an episode; `options={"draws": EpisodeDraws}` replays given draws instead of sampling."""
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        draws = (options or {}).get("draws")
        if draws is None:
            draws = self.sample_episode(self.np_random)
        positions = np.asarray(draws.positions_m, np.float32)
        expected = (self.trajectory_slots, self.num_agents, 2)
        if positions.shape[0] != expected[0] or positions.shape[1] < expected[1] or positions.shape[2] != 2:
            raise ValueError(f"draws.positions_m must have shape {expected}, got {positions.shape}")
        self._positions = positions[:, : self.num_agents]
        rsu = draws.rsu
        self._bandwidth = np.asarray(rsu.bandwidth_hz, np.float64).tolist()
        self._migration = np.asarray(rsu.migration_bps, np.float64).tolist()
        self._gpu = np.asarray(rsu.gpu_hz, np.float64)
        self._max_workload = np.asarray(rsu.max_workload_cycles, np.float64)
        self._cloud_gpu = float(rsu.cloud_gpu_hz)
        self._queue = np.array(draws.queue_cycles, np.float64)
        self._set_slot(draws.slot)
        self._prev_latency = np.zeros(self.num_agents)
        self._t = 0
        return self._observation(), {}

    def step(self, action: Mapping[str, Any], draws: SlotDraws | None = None):
        """One slot: (obs, reward [N], terminated, truncated, info). `draws` are the next slot's tasks."""
        if self._t is None or self._t >= self.config.max_steps:
            raise RuntimeError("call reset() before step() (the episode has not started or has ended)")
        p, n, m = self.params, self.num_agents, self.num_rsus
        target, fraction = parse_action(action, n, m)
        target, fraction = target.tolist(), fraction.tolist()

        # start-of-slot geometry
        index = self.config.history_slots + self._t
        position = self._positions[index].astype(np.float64)
        velocity = (position - self._positions[index - 1]) / p.slot_s
        diff = position[:, None, :] - self.rsu_xy_m[None, :, :]
        distance = np.maximum(np.sqrt(diff[..., 0] ** 2 + diff[..., 1] ** 2), p.min_distance_m)
        serving = np.argmin(distance, axis=1)
        stay = disk_exit_time_s(
            position, velocity, self.rsu_xy_m[serving], p.coverage_radius_m, p.stay_min_speed_mps, p.stay_max_s
        ).tolist()
        distance, serving = distance.tolist(), serving.tolist()
        queue, gpu = self._queue.tolist(), self._gpu.tolist()
        bandwidth, migration = self._bandwidth, self._migration
        f, noise = p.cycles_per_bit, p.noise_power_w
        log_const = _LOG_C_OVER_4PI - math.log(p.carrier_hz)

        def gain(d):
            return p.channel_gain_coeff * math.exp(p.path_loss_exponent * (log_const - math.log(d)))

        info = {key: np.zeros(n) for key in INFO_LATENCY_KEYS + ("fraction", "cloud_share")}
        info["premigrated"] = np.zeros(n, bool)
        arrivals = [0.0] * m
        for v in range(n):
            s, tg = serving[v], target[v]
            premigrates = tg != s and fraction[v] > 0.0
            alpha = fraction[v] if premigrates else 0.0
            task_bits, input_bits = self._task_bits[v], self._task_input_bits[v]
            local_bits, remote_bits = (1.0 - alpha) * task_bits, alpha * task_bits
            g_s = gain(distance[v][s])
            uplink_bps = bandwidth[s] * math.log2(1.0 + p.vehicle_tx_power_w * g_s / noise)  # eq. (1)
            downlink_bps = bandwidth[s] * math.log2(1.0 + p.rsu_tx_power_w * g_s / noise)  # eq. (2)
            uplink_s = input_bits / uplink_bps
            local_s = (queue[s] + local_bits * f) / gpu[s]  # eq. (4)
            if premigrates:
                migration_s = remote_bits / migration[s][tg]
                remote_s = (queue[tg] + remote_bits * f) / gpu[tg]  # eq. (5)
                g_t = gain(distance[v][tg])
                remote_down_s = remote_bits / (bandwidth[tg] * math.log2(1.0 + p.rsu_tx_power_w * g_t / noise))
            else:
                migration_s = remote_s = remote_down_s = 0.0
            overrun_s = max(uplink_s + local_s - stay[v], 0.0)  # eq. (6)
            cloud_bits = min(local_bits, overrun_s * gpu[s] / f)
            cloud_s = cloud_bits / p.cloud_uplink_bps + cloud_bits * f / self._cloud_gpu  # eq. (7)
            processing_s = max(local_s, migration_s + remote_s)  # eq. (8)
            downlink_s = (local_bits - cloud_bits) / downlink_bps + remote_down_s + cloud_bits / downlink_bps  # (3)
            total_s = uplink_s + processing_s + cloud_s + downlink_s  # eq. (9)
            arrivals[s] += (local_bits - cloud_bits) * f
            if premigrates:
                arrivals[tg] += remote_bits * f
            terms = (total_s, uplink_s, processing_s, migration_s, cloud_s, downlink_s)
            for key, value in zip(INFO_LATENCY_KEYS, terms):
                info[key][v] = value
            info["premigrated"][v] = premigrates
            info["fraction"][v] = alpha if premigrates else 0.0
            info["cloud_share"][v] = cloud_bits / task_bits

        # transition: queues, next tasks, time
        self._queue, overflow = fluid_queue_update(
            self._queue, np.asarray(arrivals), self._gpu * p.slot_s, self._max_workload
        )
        self._set_slot(sample_slot(self.np_random, p, n) if draws is None else draws)
        self._prev_latency = info["total_latency_s"]
        self._t += 1
        reward = (-info["total_latency_s"]).astype(np.float32)  # eq. (21)
        info.update(
            stay_time_s=np.asarray(stay),
            target=np.asarray(target),
            serving=np.asarray(serving),
            queue_cycles=self._queue.copy(),
            overflow_cycles=float(overflow.sum()),
            workload_violations=int((overflow > 0).sum()),
        )
        truncated = self._t >= self.config.max_steps
        return self._observation(), reward, False, truncated, info

    def action_mask(self) -> np.ndarray:
        """Selectable targets [N, M]: every RSU in the urban area."""
        return np.ones((self.num_agents, self.num_rsus), bool)

    def sample_action(self, rng: np.random.Generator | None = None) -> dict:
        rng = self.np_random if rng is None else rng
        return {"target": rng.integers(0, self.num_rsus, self.num_agents), "fraction": rng.random(self.num_agents)}

    def world_state(self) -> np.ndarray:
        return self.world_state_from_observation(self._observation())

    # ------------------------------------------------------------------ helpers
    def _set_slot(self, slot: SlotDraws):
        self._task_input_bits = np.asarray(slot.task_input_bits, np.float64).tolist()
        self._task_bits = np.asarray(slot.task_bits, np.float64).tolist()

    def _observation(self) -> np.ndarray:
        """eq. (19): [p_v / extent, L(t) / scale, L^(t+1) / scale, T_v(t-1) / 10 s], float32 [N, obs_dim]."""
        p, n = self.params, self.num_agents
        position = self._positions[self.config.history_slots + self._t]
        loads = self._queue / p.mean_max_workload_cycles
        parts = [np.clip(position / self.map_extent_m, 0.0, 1.0), np.broadcast_to(loads, (n, self.num_rsus))]
        if self.with_forecast:  # persistence: L^(t+1) = L(t)
            parts.append(parts[-1])
        parts.append((self._prev_latency / p.latency_obs_scale_s)[:, None])
        return np.concatenate(parts, axis=1).astype(np.float32)


# ====================================================================== B worlds as arrays
class BatchedAvatarPremigrationNumpy(_Common):
    """`num_envs` AvatarPremigration-v0 worlds stepped together with NumPy array operations over [B, N, M].

    obs [B, N, obs_dim]; action {"target": int [B, N], "fraction": float [B, N]}; reward [B, N];
    terminated / truncated [B]. Worlds that finish are reset inside `step` (auto-reset); the observation an
    episode ended on is in `info["final_observation"]`. Arithmetic in `dtype` (float32 by default, as vmjax).
    """

    def __init__(
        self, num_envs: int, params: ReferenceParams | None = None, seed: int | None = None, dtype=np.float32, **config
    ):
        super().__init__(params, config)
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.dtype = np.dtype(dtype)
        self.np_random = np.random.default_rng(seed)
        self._worlds = np.arange(self.num_envs)
        self._rsu_xy = self.rsu_xy_m.astype(self.dtype)
        self._t = None

    def sample_episodes(self, rng: np.random.Generator, num_worlds: int) -> EpisodeDraws:
        p, dt = self.params, self.dtype
        positions = corridor_trajectories(
            rng, self.road, p.mobility, (num_worlds, self.num_agents), self.trajectory_slots, p.slot_s, dt
        )
        rsu = sample_rsus(rng, p, self.num_rsus, (num_worlds,), dt)
        queue = rng.random((num_worlds, self.num_rsus), dtype=dt) * dt.type(p.initial_load_max_frac)
        queue *= rsu.max_workload_cycles
        slot = sample_slot(rng, p, self.num_agents, (num_worlds,), dt)
        return EpisodeDraws(np.moveaxis(positions, 0, 1), rsu, queue, slot)

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, draws: EpisodeDraws | None = None):
        """Reset every world; `draws` (leading world axis) replays given draws instead of sampling."""
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        b, n, m, dt = self.num_envs, self.num_agents, self.num_rsus, self.dtype
        self._positions = np.empty((b, self.trajectory_slots, n, 2), np.float32)
        self._bandwidth = np.empty((b, m), dt)
        self._migration = np.empty((b, m, m), dt)
        self._gpu = np.empty((b, m), dt)
        self._max_workload = np.empty((b, m), dt)
        self._cloud_gpu = np.empty(b, dt)
        self._queue = np.empty((b, m), dt)
        self._task_input_bits = np.empty((b, n), dt)
        self._task_bits = np.empty((b, n), dt)
        self._prev_latency = np.zeros((b, n), dt)
        self._t = np.zeros(b, np.int64)
        self._reset_worlds(self._worlds, draws)
        return self._observation(), {}

    def step(self, action: Mapping[str, Any], draws: SlotDraws | None = None, reset_draws: EpisodeDraws | None = None):
        """One slot in every world: (obs, reward [B, N], terminated [B], truncated [B], info).

        `draws` ([B, N] tasks of the next slot) and `reset_draws` (episodes for the worlds that finish,
        leading world axis over all B worlds; only the finished rows are used) replace sampling.
        """
        if self._t is None:
            raise RuntimeError("call reset() before step()")
        p, dt = self.params, self.dtype
        b, n, m = self.num_envs, self.num_agents, self.num_rsus
        target, fraction = parse_action(action, n, m)
        if target.shape != (b, n):
            raise ValueError(f"action arrays must have shape ({b}, {n}), got {target.shape}")
        fraction = fraction.astype(dt)
        worlds = self._worlds[:, None]

        # start-of-slot geometry [B, N, M]
        index = self.config.history_slots + self._t
        position = self._positions[self._worlds, index].astype(dt, copy=False)
        previous = self._positions[self._worlds, index - 1]
        dx = position[:, :, None, 0] - self._rsu_xy[:, 0]
        dy = position[:, :, None, 1] - self._rsu_xy[:, 1]
        distance = np.sqrt(dx * dx + dy * dy)
        np.maximum(distance, dt.type(p.min_distance_m), out=distance)
        serving = np.argmin(distance, axis=2)
        velocity = (position - previous) / dt.type(p.slot_s)
        stay = disk_exit_time_s(
            position, velocity, self._rsu_xy[serving], p.coverage_radius_m, p.stay_min_speed_mps, p.stay_max_s
        ).astype(dt, copy=False)

        # latency, eqs. (1)-(9), [B, N]
        premigrates = (target != serving) & (fraction > 0.0)
        alpha = np.where(premigrates, fraction, dt.type(0.0))
        d_serving = np.take_along_axis(distance, serving[..., None], 2)[..., 0]
        d_target = np.take_along_axis(distance, target[..., None], 2)[..., 0]
        g_serving, g_target = path_loss_gain(d_serving, p), path_loss_gain(d_target, p)
        bw_serving = np.take_along_axis(self._bandwidth, serving, 1)
        bw_target = np.take_along_axis(self._bandwidth, target, 1)
        gpu_serving = np.take_along_axis(self._gpu, serving, 1)
        gpu_target = np.take_along_axis(self._gpu, target, 1)
        queue_serving = np.take_along_axis(self._queue, serving, 1)
        queue_target = np.take_along_axis(self._queue, target, 1)
        migration_bps = self._migration[worlds, serving, target]
        inv_noise = 1.0 / p.noise_power_w
        uplink_bps = bw_serving * np.log2(1.0 + (p.vehicle_tx_power_w * inv_noise) * g_serving)
        downlink_serving_bps = bw_serving * np.log2(1.0 + (p.rsu_tx_power_w * inv_noise) * g_serving)
        downlink_target_bps = bw_target * np.log2(1.0 + (p.rsu_tx_power_w * inv_noise) * g_target)

        f = p.cycles_per_bit
        task_bits = self._task_bits
        local_bits = (1.0 - alpha) * task_bits
        remote_bits = alpha * task_bits
        uplink_s = self._task_input_bits / uplink_bps  # rates are > 0: no zero-size guard needed
        local_s = (queue_serving + local_bits * f) / gpu_serving
        migration_s = np.where(premigrates, remote_bits / migration_bps, 0.0)
        remote_s = np.where(premigrates, (queue_target + remote_bits * f) / gpu_target, 0.0)
        overrun_s = np.maximum(uplink_s + local_s - stay, 0.0)
        cloud_bits = np.minimum(local_bits, overrun_s * gpu_serving / f)
        cloud_s = cloud_bits / p.cloud_uplink_bps + cloud_bits * f / self._cloud_gpu[:, None]
        processing_s = np.maximum(local_s, migration_s + remote_s)
        downlink_s = (
            (local_bits - cloud_bits) / downlink_serving_bps
            + np.where(premigrates, remote_bits / downlink_target_bps, 0.0)
            + cloud_bits / downlink_serving_bps
        )
        total_s = uplink_s + processing_s + cloud_s + downlink_s

        # transition: arrivals per RSU (scatter-add by bincount), fluid queues
        local_cycles = (local_bits - cloud_bits) * f
        remote_cycles = np.where(premigrates, remote_bits * f, 0.0)
        flat = self._worlds[:, None] * m
        arrivals = np.bincount((flat + serving).ravel(), local_cycles.ravel(), b * m)
        arrivals += np.bincount((flat + target).ravel(), remote_cycles.ravel(), b * m)
        queue, overflow = fluid_queue_update(
            self._queue, arrivals.reshape(b, m).astype(dt), self._gpu * dt.type(p.slot_s), self._max_workload
        )
        self._queue = queue.astype(dt, copy=False)
        if draws is None:
            draws = sample_slot(self.np_random, p, n, (b,), dt)
        self._task_input_bits = np.array(draws.task_input_bits, dt)  # a copy: rows are reset in place
        self._task_bits = np.array(draws.task_bits, dt)
        self._prev_latency = total_s.astype(dt)  # a copy: finished rows are zeroed in place
        self._t = self._t + 1

        truncated = self._t >= self.config.max_steps
        terminated = np.zeros(b, bool)
        obs = self._observation()
        info = {
            "total_latency_s": total_s,
            "uplink_s": uplink_s,
            "processing_s": processing_s,
            "migration_s": migration_s,
            "cloud_s": cloud_s,
            "downlink_s": downlink_s,
            "premigrated": premigrates,
            "fraction": alpha,
            "cloud_share": cloud_bits / task_bits,
            "stay_time_s": stay,
            "target": target,
            "serving": serving,
            "queue_cycles": self._queue.copy(),
            "overflow_cycles": overflow.sum(axis=1),
            "workload_violations": (overflow > 0).sum(axis=1),
            "final_observation": obs,
        }
        if truncated.any():  # auto-reset the finished worlds
            done = np.flatnonzero(truncated)
            self._reset_worlds(done, None if reset_draws is None else reset_draws.rows(done))
            obs = self._observation()
        return obs, (-total_s).astype(np.float32), terminated, truncated, info

    def action_mask(self) -> np.ndarray:
        return np.ones((self.num_envs, self.num_agents, self.num_rsus), bool)

    def sample_action(self, rng: np.random.Generator | None = None) -> dict:
        rng = self.np_random if rng is None else rng
        shape = (self.num_envs, self.num_agents)
        return {"target": rng.integers(0, self.num_rsus, shape), "fraction": rng.random(shape, dtype=np.float32)}

    # ------------------------------------------------------------------ helpers
    def _reset_worlds(self, worlds: np.ndarray, draws: EpisodeDraws | None):
        if draws is None:
            draws = self.sample_episodes(self.np_random, len(worlds))
        self._positions[worlds] = np.asarray(draws.positions_m, np.float32)[:, :, : self.num_agents]
        self._bandwidth[worlds] = draws.rsu.bandwidth_hz
        self._migration[worlds] = draws.rsu.migration_bps
        self._gpu[worlds] = draws.rsu.gpu_hz
        self._max_workload[worlds] = draws.rsu.max_workload_cycles
        self._cloud_gpu[worlds] = draws.rsu.cloud_gpu_hz
        self._queue[worlds] = draws.queue_cycles
        self._task_input_bits[worlds] = draws.slot.task_input_bits
        self._task_bits[worlds] = draws.slot.task_bits
        self._prev_latency[worlds] = 0.0
        self._t[worlds] = 0

    def _observation(self) -> np.ndarray:
        p, b, n, m = self.params, self.num_envs, self.num_agents, self.num_rsus
        position = self._positions[self._worlds, self.config.history_slots + self._t]
        obs = np.empty((b, n, self.obs_dim), np.float32)
        np.clip(position / self.map_extent_m, 0.0, 1.0, out=obs[..., :2])
        obs[..., 2 : 2 + m] = (self._queue / self.dtype.type(p.mean_max_workload_cycles))[:, None, :]
        if self.with_forecast:  # persistence: L^(t+1) = L(t)
            obs[..., 2 + m : 2 + 2 * m] = obs[..., 2 : 2 + m]
        obs[..., -1] = self._prev_latency / self.dtype.type(p.latency_obs_scale_s)
        return obs
