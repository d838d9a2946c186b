"""Synthetic road-grid mobility: spec 003 §7.2 "Synthetic stand-in", generalised from one corridor to a grid.

Each vehicle drives on a road (along x or along y) in a direction (+1 / -1) and a lane. Per slot:

1. speed: AR(1) v_{k+1} = a v_k + (1 - a) v_mean + N(0, std^2), clipped to [0, v_max], with v_mean the core
   or the outskirts mean depending on where the vehicle is; with `stop_prob` it instead starts a stop
   ("traffic light") of U{stop_min..stop_max} slots at speed 0;
2. motion: the slot's distance v * slot_s in `substeps` equal sub-steps; crossing an intersection it turns
   left or right (equally likely) with `turn_prob` and drives the rest of the sub-step on the crossing road,
   else goes straight; at a road end (map boundary) it U-turns: the position is reflected and the direction
   flipped, which moves it to the opposite-direction lanes;
3. emitted position: road point + (lane offset + N(0, jitter^2)) along the right-hand normal + N(0, gps^2 I),
   drawn as one 2-D normal in the road frame (the same distribution).

Everything is one `lax.scan` over slots, vectorised over vehicles, deterministic for a key; each slot draws
its random numbers from its own key. `grid`, `num_vehicles`, `num_steps` and `substeps` are static.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax.core import fastrand, validation
from vmjax.core.env import is_concrete
from vmjax.mobility.roads import RoadGrid
from vmjax.mobility.trace import Trace


@struct.dataclass
class MobilityParams:
    """Mobility constants (spec 003 §7.2 defaults). A pytree: it can sit in an env's EnvParams and be vmapped."""

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


def validate_params(params: MobilityParams) -> None:
    """Python-side range checks when the params are concrete (skipped under tracing); ValueError names the field."""

    if not is_concrete(params):
        return
    owner = "MobilityParams"
    for name in ("speed_ar_coeff", "stop_prob", "turn_prob", "core_start_prob"):
        validation.check_probability(owner, name, getattr(params, name))
    for name in (
        "mean_speed_core_mps",
        "mean_speed_outskirts_mps",
        "speed_noise_std_mps",
        "max_speed_mps",
        "lateral_jitter_std_m",
        "gps_noise_std_m",
    ):
        validation.check_non_negative(owner, name, getattr(params, name))
    if not np.all(np.asarray(params.stop_min_slots) >= 1):
        raise ValueError(f"{owner}.stop_min_slots must be >= 1, got {params.stop_min_slots}")
    validation.check_range(owner, "stop_min_slots", "stop_max_slots", params.stop_min_slots, params.stop_max_slots)


@struct.dataclass
class _Drive:
    """Per-vehicle driving state [V] (road frame, before lane offsets and noise)."""

    vertical: jax.Array  # bool: on a north-south road (moving along y), else on an east-west road (along x)
    road_m: jax.Array  # centre-line coordinate of the current road: x of a vertical road, y of a horizontal one
    along_m: jax.Array  # position along the road: y on a vertical road, x on a horizontal one
    direction: jax.Array  # float32 +1 / -1 along the road axis
    lane: jax.Array  # int32 index into lane_offsets_m
    speed_mps: jax.Array
    stop_slots_left: jax.Array  # int32 slots still to stand after the current one


def _unit_heading(vertical, direction):
    """Unit direction of travel [..., 2]."""
    zero = jnp.zeros_like(direction)
    return jnp.stack([jnp.where(vertical, zero, direction), jnp.where(vertical, direction, zero)], axis=-1)


def _right_normal(heading_xy):
    """Right-hand normal (dy, -dx) of a unit heading (dx, dy)."""
    return jnp.stack([heading_xy[..., 1], -heading_xy[..., 0]], axis=-1)


def _road_point_m(vertical, road_m, along_m):
    """Point on the road centre line [..., 2]."""
    return jnp.stack([jnp.where(vertical, road_m, along_m), jnp.where(vertical, along_m, road_m)], axis=-1)


def _in_box(xy_m, box_m):
    """Whether points [..., 2] lie in the closed box (xmin, ymin, xmax, ymax)."""
    xmin, ymin, xmax, ymax = box_m
    x, y = xy_m[..., 0], xy_m[..., 1]
    return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)


def _road_table(grid: RoadGrid):
    """Static per-road arrays: vertical flag, centre coordinate, log of its length inside the core and overall."""
    width_m, height_m = grid.extent_m
    xmin, ymin, xmax, ymax = grid.core_box_m
    vertical = np.array([True] * len(grid.x_roads_m) + [False] * len(grid.y_roads_m))
    coord_m = np.array(grid.x_roads_m + grid.y_roads_m, np.float32)
    in_core = np.where(vertical, (coord_m >= xmin) & (coord_m <= xmax), (coord_m >= ymin) & (coord_m <= ymax))
    core_length_m = np.where(in_core, np.where(vertical, ymax - ymin, xmax - xmin), 0.0)
    length_m = np.where(vertical, height_m, width_m)
    with np.errstate(divide="ignore"):
        return vertical, coord_m, np.log(core_length_m).astype(np.float32), np.log(length_m).astype(np.float32)


def _crossing_table(grid: RoadGrid):
    """Static [2, K] crossing coordinates along a road: row 0 for horizontal roads (the x-roads), row 1 for
    vertical ones (the y-roads); padded with +inf so an empty road list needs no special case."""
    size = max(len(grid.x_roads_m), len(grid.y_roads_m), 1)
    table = np.full((2, size), np.inf, np.float32)
    table[0, : len(grid.x_roads_m)] = grid.x_roads_m
    table[1, : len(grid.y_roads_m)] = grid.y_roads_m
    return table


def _initial_drive(key, grid: RoadGrid, params: MobilityParams, num_vehicles: int) -> _Drive:
    """Vehicles spread uniformly over road length: inside the core box with `core_start_prob`, else anywhere."""
    vertical_r, coord_r, log_core_length_r, log_length_r = _road_table(grid)
    k_core, k_road, k_along, k_dir, k_lane, k_speed = jax.random.split(key, 6)
    starts_in_core = fastrand.bernoulli(k_core, params.core_start_prob, (num_vehicles,))
    log_weights = jnp.where(starts_in_core[:, None], log_core_length_r, log_length_r)
    gumbel = -jnp.log(-jnp.log(fastrand.uniform(k_road, log_weights.shape)))
    road = jnp.argmax(log_weights + gumbel, axis=-1)  # Gumbel-max draw of a road, weighted by length
    vertical = jnp.asarray(vertical_r)[road]
    width_m, height_m = grid.extent_m
    xmin, ymin, xmax, ymax = grid.core_box_m
    low_m = jnp.where(starts_in_core, jnp.where(vertical, ymin, xmin), 0.0)
    high_m = jnp.where(starts_in_core, jnp.where(vertical, ymax, xmax), jnp.where(vertical, height_m, width_m))
    along_m = fastrand.uniform(k_along, (num_vehicles,), low_m, high_m)
    road_m = jnp.asarray(coord_r)[road]
    in_core = _in_box(_road_point_m(vertical, road_m, along_m), grid.core_box_m)
    mean_mps = jnp.where(in_core, params.mean_speed_core_mps, params.mean_speed_outskirts_mps)
    # Start near the AR(1) stationary law: std / sqrt(1 - a^2) (bounded for a -> 1).
    a = jnp.asarray(params.speed_ar_coeff, jnp.float32)
    stationary_std_mps = params.speed_noise_std_mps / jnp.sqrt(jnp.maximum(1.0 - a * a, 0.01))
    speed_mps = mean_mps + stationary_std_mps * fastrand.normal(k_speed, (num_vehicles,))
    return _Drive(
        vertical=vertical,
        road_m=road_m,
        along_m=along_m,
        direction=jnp.where(fastrand.bernoulli(k_dir, 0.5, (num_vehicles,)), 1.0, -1.0).astype(jnp.float32),
        lane=fastrand.randint(k_lane, (num_vehicles,), 0, len(grid.lane_offsets_m)),
        speed_mps=jnp.clip(speed_mps, 0.0, params.max_speed_mps).astype(jnp.float32),
        stop_slots_left=jnp.zeros((num_vehicles,), jnp.int32),
    )


def _next_speed(drive: _Drive, in_core, params: MobilityParams, speed_noise, stop_u) -> _Drive:
    """One slot of the AR(1) speed process with stops (speed 0 while stopped; AR(1) resumes from 0).

    One uniform `stop_u` [V] decides both: u < p starts a stop, and u / p (uniform on [0, 1) given a stop)
    picks its length in U{stop_min..stop_max}.
    """
    a = params.speed_ar_coeff
    mean_mps = jnp.where(in_core, params.mean_speed_core_mps, params.mean_speed_outskirts_mps)
    ar_mps = a * drive.speed_mps + (1.0 - a) * mean_mps + params.speed_noise_std_mps * speed_noise
    ar_mps = jnp.clip(ar_mps, 0.0, params.max_speed_mps)
    still_stopped = drive.stop_slots_left > 0
    starts_stop = ~still_stopped & (stop_u < params.stop_prob)
    num_choices = params.stop_max_slots - params.stop_min_slots + 1
    stop_length_u = stop_u / jnp.maximum(params.stop_prob, 1e-12)
    stop_length = params.stop_min_slots + jnp.floor(stop_length_u * num_choices).astype(jnp.int32)
    stop_length = jnp.minimum(stop_length, params.stop_max_slots)
    stop_slots_left = jnp.where(
        still_stopped, drive.stop_slots_left - 1, jnp.where(starts_stop, jnp.maximum(stop_length - 1, 0), 0)
    )
    speed_mps = jnp.where(still_stopped | starts_stop, 0.0, ar_mps).astype(jnp.float32)
    return drive.replace(speed_mps=speed_mps, stop_slots_left=stop_slots_left.astype(jnp.int32))


def _drive_substep(drive: _Drive, distance_m, turn_u, turn_prob, crossings_m, extent_m) -> _Drive:
    """Advance `distance_m` [V] along the road: maybe turn at the first intersection crossed, U-turn at the map edge.

    `turn_u` [V] ~ U[0, 1) picks: [0, p/2) turn left, [p/2, p) turn right, else straight.
    Only intersections strictly ahead count, so a vehicle that just turned (standing on the old road, which
    crosses its new one) is not offered the same intersection again. `crossings_m` None: no intersections.
    """
    if crossings_m is None:
        return _reflect_at_map_edge(drive.replace(along_m=drive.along_m + drive.direction * distance_m), extent_m)
    candidates_m = jnp.where(drive.vertical[:, None], crossings_m[1][None, :], crossings_m[0][None, :])  # [V, K]
    ahead_m = drive.direction[:, None] * (candidates_m - drive.along_m[:, None])
    reachable = (ahead_m > 0.0) & (ahead_m <= distance_m[:, None])
    # Nearest reachable crossing, exactly one of the road coordinates: direction * min(direction * c).
    signed_m = jnp.min(jnp.where(reachable, drive.direction[:, None] * candidates_m, jnp.inf), axis=-1)
    has_crossing = signed_m < jnp.inf
    crossing_m = jnp.where(has_crossing, drive.direction * signed_m, 0.0)
    to_crossing_m = jnp.where(has_crossing, drive.direction * (crossing_m - drive.along_m), 0.0)

    turns = has_crossing & (turn_u < turn_prob)
    left = turn_u < 0.5 * turn_prob
    # Rotating the heading by +90 deg (left) or -90 deg (right) onto the other axis:
    # along x: left keeps the sign, right flips it; along y: left flips it, right keeps it.
    turned_direction = drive.direction * jnp.where(left, 1.0, -1.0) * jnp.where(drive.vertical, -1.0, 1.0)
    moved = drive.replace(
        vertical=jnp.where(turns, ~drive.vertical, drive.vertical),
        road_m=jnp.where(turns, crossing_m, drive.road_m),
        along_m=jnp.where(
            turns,
            drive.road_m + turned_direction * (distance_m - to_crossing_m),
            drive.along_m + drive.direction * distance_m,
        ),
        direction=jnp.where(turns, turned_direction, drive.direction),
    )
    return _reflect_at_map_edge(moved, extent_m)


def _reflect_at_map_edge(drive: _Drive, extent_m) -> _Drive:
    """U-turn at a road end: reflect `along_m` into [0, road length] and flip the direction."""
    length_m = jnp.where(drive.vertical, extent_m[1], extent_m[0])
    past_end = drive.along_m > length_m
    before_start = drive.along_m < 0.0
    along_m = jnp.where(
        past_end, 2.0 * length_m - drive.along_m, jnp.where(before_start, -drive.along_m, drive.along_m)
    )
    return drive.replace(
        along_m=jnp.clip(along_m, 0.0, length_m).astype(jnp.float32),
        direction=jnp.where(past_end | before_start, -drive.direction, drive.direction).astype(jnp.float32),
    )


def generate_trajectories(
    key: jax.Array,
    grid: RoadGrid,
    params: MobilityParams,
    num_vehicles: int,
    num_steps: int,
    slot_s: float = 10.0,
    substeps: int = 4,
) -> Trace:
    """Draw `num_vehicles` synthetic trajectories of `num_steps` slots on `grid` (pure, deterministic per key).

    Jit with `grid`, `num_vehicles`, `num_steps`, `substeps` static, e.g.
    `jax.jit(generate_trajectories, static_argnames=("grid", "num_vehicles", "num_steps", "substeps"))`.
    Returns a `Trace` with positions [T, V, 2], headings [T, V] (direction of travel at the end of the slot;
    slot 0 holds the initial positions) and `valid=None` (every vehicle present in every slot).
    """
    if not isinstance(grid, RoadGrid):
        raise ValueError(f"generate_trajectories: grid must be a RoadGrid, got {type(grid).__name__}")
    for name, value in (("num_vehicles", num_vehicles), ("num_steps", num_steps), ("substeps", substeps)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"generate_trajectories: {name} must be a Python int >= 1, got {value!r}")
    validate_params(params)

    k_init, k_slots = jax.random.split(key)
    has_intersections = bool(grid.x_roads_m) and bool(grid.y_roads_m)
    crossings_m = jnp.asarray(_crossing_table(grid)) if has_intersections else None
    # Without intersections the sub-steps only matter at a road end, where one reflection of the whole
    # slot's distance gives the same position: one move per slot suffices.
    moves_per_slot = substeps if has_intersections else 1
    offsets_m = jnp.asarray(grid.lane_offsets_m, jnp.float32)
    move_s = jnp.asarray(slot_s, jnp.float32) / moves_per_slot
    # Lateral jitter N(0, j^2) along the right-hand normal plus isotropic GPS noise N(0, g^2 I) is, in
    # distribution, N(0, j^2 + g^2) across the road and N(0, g^2) along it: one 2-D draw instead of three.
    across_std_m = jnp.sqrt(params.lateral_jitter_std_m**2 + params.gps_noise_std_m**2)

    def observe(drive: _Drive, lane_offset_m, key):
        """Emitted position [V, 2] and unit heading [V, 2] of one slot: road point + lane + noise."""
        heading_xy = _unit_heading(drive.vertical, drive.direction)
        across, along = fastrand.normal_pair(key, (num_vehicles,))
        lateral_m = lane_offset_m + across_std_m * across
        point_m = _road_point_m(drive.vertical, drive.road_m, drive.along_m)
        position_m = (
            point_m
            + lateral_m[:, None] * _right_normal(heading_xy)
            + (params.gps_noise_std_m * along)[:, None] * heading_xy
        )
        return position_m, heading_xy

    def slot_step(drive: _Drive, keys):
        """Observe this slot, then move to the next; each slot draws from its own keys (no [T, V] noise
        buffers)."""
        k_speed, k_stop, k_turn, k_noise = keys
        observed = observe(drive, lane_offset_m, k_noise)
        in_core = _in_box(_road_point_m(drive.vertical, drive.road_m, drive.along_m), grid.core_box_m)
        drive = _next_speed(
            drive, in_core, params, fastrand.normal(k_speed, (num_vehicles,)), fastrand.uniform(k_stop, (num_vehicles,))
        )
        distance_m = drive.speed_mps * move_s
        # Turn draws only where a turn can happen.
        turn_u = fastrand.uniform(k_turn, (moves_per_slot, num_vehicles)) if has_intersections else None
        for substep in range(moves_per_slot):  # static unroll over sub-steps
            substep_turn_u = None if turn_u is None else turn_u[substep]
            drive = _drive_substep(drive, distance_m, substep_turn_u, params.turn_prob, crossings_m, grid.extent_m)
        return drive, observed

    drive0 = _initial_drive(k_init, grid, params, num_vehicles)
    lane_offset_m = offsets_m[drive0.lane]  # a vehicle keeps its lane index (a U-turn moves it across the road)
    slot_keys = jax.random.split(k_slots, (num_steps, 4))  # all keys in one call, outside the loop
    _, (positions_m, headings_xy) = jax.lax.scan(slot_step, drive0, slot_keys)  # [T, V, 2] each
    headings_rad = jnp.arctan2(headings_xy[..., 1], headings_xy[..., 0])
    return Trace(positions_m=positions_m.astype(jnp.float32), headings_rad=headings_rad.astype(jnp.float32))
