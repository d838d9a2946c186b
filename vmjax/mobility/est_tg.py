"""EST-TG trajectory generator (spec 004 §4.3-§4.7) and its naive baseline.

Fit (`fit_est_tg`, NumPy orchestration before tracing): clean and split GPS data into trips (§4.2,
`tdrive.clean_gps`), map-match every point onto the nearest road edge (§4.2 step 4), fit one Gaussian KDE per hour
on the matched points (§4.3-4.4, `fit_hourly_kde`), keep the hourly point shares n_h / sum n, and bin the speeds
of consecutive points by (hour group, cell of a cells x cells grid over the map box) with the hour group's samples
as fallback for bins with fewer than `min_speed_samples` (§4.3).

Generate (`generate_est_tg`, one jitted vmap over trips): N_h trips per hour (§4.4, largest-remainder rounding of
N n_h / sum n so they add up to N); per trip draw entry and exit from the hour's KDE (`num_candidates` pairs,
first pair that is inside the box, snaps to two distinct nodes and is >= min_od_unit apart in normalised
coordinates), route with `shortest_path` (§4.5), time the route by (19) with a speed sampled per node from its
(hour group, cell) bin and clipped (§4.6), interpolate on the global grid t1 + k step_s (20) and project every point
back onto the nearest edge (§4.7). Output: a `Trace` [L, V, 2] (one column per trip, slot k = start + k step_s)
with `valid` True up to and including the first slot at or after arrival (that slot holds the exit node);
a trip with no valid candidate pair (or longer than L slots) is all-invalid (resp. truncated).

`generate_chained_bank` chains such trips per vehicle into episode trajectories for the environment (§4.9), and
`generate_naive` is the comparison baseline of the fidelity tests (uniform points, straight lines).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax.mobility.kde import HourlyKDE, fit_hourly_kde, sample_hourly_kde
from vmjax.mobility.road_graph import (
    RoadGraph,
    nearest_node,
    shortest_path,
    snap_to_road,
)
from vmjax.mobility.tdrive import GpsPoints, clean_gps
from vmjax.mobility.trace import Trace


@dataclasses.dataclass(frozen=True)
class ESTTGConfig:
    """EST-TG choices (spec §4; [R] defaults). Static: hashable, used as a jit static argument."""

    bandwidth: float = 0.05  # KDE bandwidth in normalised coordinates (§4.3)
    speed_cells: int = 10  # speed bins: speed_cells x speed_cells grid over the map box (§4.3)
    speed_hour_groups: tuple = tuple(range(24))  # group id of every hour for the speed bins (§4.3 "hour group")
    min_speed_samples: int = 30  # below this a bin falls back to the hour's global speeds (§4.3)
    max_speed_samples: int = 256  # samples kept per bin (random subset), bounds memory
    fit_speed_min_mps: float = 1.0  # speeds kept for fitting (§4.3)
    fit_speed_max_mps: float = 33.3
    max_gap_s: float = 600.0  # trip split and longest gap used for a speed (§4.2, §4.3)
    speed_min_mps: float = 1.0  # clip of sampled speeds (§4.6)
    speed_max_mps: float = 30.0
    step_s: float = 30.0  # interpolation step Δt (§4.6, eq. 20)
    max_steps: int = 64  # L, slots per generated trip
    min_od_unit: float = 0.1  # minimum entry-exit distance, normalised (§4.4)
    num_candidates: int = 16  # entry/exit pairs tried per trip (rejection sampling, §4.4)
    match_chunk: int = 4096  # points per snap_to_road call while fitting


@struct.dataclass
class ESTTGModel:
    """Fitted EST-TG: the road graph, hourly KDEs and binned speeds.

    hour_share:     [24] float32, n_h / sum n (cleaned points per hour).
    speed_mps:      [G, C*C, K] float32 speed samples per (hour group, cell); fallback bins hold the group's samples.
    speed_count:    [G, C*C] int32 >= 1, valid samples per bin.
    """

    graph: RoadGraph
    kde: HourlyKDE
    hour_share: jax.Array
    speed_mps: jax.Array
    speed_count: jax.Array


@struct.dataclass
class GeneratedTrips:
    """A bank of trips: trace [L, V, 2] metres + valid [L, V]; start_s [V] seconds of day; hour [V] int32."""

    trace: Trace
    start_s: jax.Array
    hour: jax.Array


def _cell(xy_m, box_m, cells: int):
    """Speed-grid cell id of points [..., 2] (clamped to the grid)."""
    u = (xy_m - box_m[:2]) / (box_m[2:] - box_m[:2])
    ij = (
        np.clip(np.floor(u * cells), 0, cells - 1)
        if isinstance(u, np.ndarray)
        else jnp.clip(jnp.floor(u * cells), 0, cells - 1)
    )
    return (ij[..., 1] * cells + ij[..., 0]).astype(np.int32)


def map_match(graph: RoadGraph, xy_m, chunk: int = 4096) -> np.ndarray:
    """Nearest-edge projection of points [P, 2] (spec §4.2 step 4), in chunks of `chunk` points; NumPy out."""
    xy_m = np.asarray(xy_m, np.float32)
    parts = [np.asarray(snap_to_road(graph, xy_m[i : i + chunk])[0]) for i in range(0, len(xy_m), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)


def fit_est_tg(graph: RoadGraph, points: GpsPoints, config: ESTTGConfig = ESTTGConfig(), seed: int = 0) -> ESTTGModel:
    """Fits EST-TG on raw GPS points (spec §4.2-4.4); box = bounding box of the graph's nodes.

    Hours without points get the KDE of all points (they are never sampled: n_h = 0). Speed of a segment =
    Euclidean distance of consecutive cleaned points of one trip / time gap (the points are already projected to
    metres), binned by the hour group and cell of its first point. `seed` picks the kept subset of over-full bins.
    """
    group_of_hour = np.asarray(config.speed_hour_groups, np.int64)
    if group_of_hour.shape != (24,) or group_of_hour.min() < 0:
        raise ValueError(
            f"fit_est_tg: speed_hour_groups must give a group id >= 0 for each of 24 hours, got {config.speed_hour_groups}"
        )
    node_xy = np.asarray(graph.node_xy_m, np.float64)
    box_m = np.concatenate([node_xy.min(0), node_xy.max(0)])
    clean, trip = clean_gps(points, box_m, config.fit_speed_max_mps, config.max_gap_s)
    if len(clean) == 0:
        raise ValueError("fit_est_tg: no points left after cleaning (spec §4.2); check the map origin and box")
    matched = map_match(graph, clean.xy_m, config.match_chunk)
    hours = clean.hour()
    counts = np.bincount(hours, minlength=24)
    empty = np.flatnonzero(counts == 0)
    kde_xy = np.concatenate([matched, np.repeat(matched, len(empty), axis=0)])
    kde_hours = np.concatenate([hours, np.repeat(empty, len(matched))])
    kde = fit_hourly_kde(kde_xy, kde_hours, config.bandwidth, box_m)

    same = trip[1:] == trip[:-1]
    dt = np.diff(clean.time_s)
    speed = np.linalg.norm(np.diff(clean.xy_m, axis=0), axis=-1) / np.where(dt > 0, dt, 1.0)
    ok = same & (dt <= config.max_gap_s) & (speed >= config.fit_speed_min_mps) & (speed <= config.fit_speed_max_mps)
    num_groups = int(group_of_hour.max()) + 1
    speed, s_group = speed[ok], group_of_hour[hours[:-1][ok]]
    s_cell = _cell(clean.xy_m[:-1][ok], box_m, config.speed_cells)
    if len(speed) == 0:
        raise ValueError("fit_est_tg: no usable speed samples (spec §4.3)")
    rng = np.random.default_rng(seed)
    cells, k = config.speed_cells**2, config.max_speed_samples
    table = np.zeros((num_groups, cells, k), np.float32)
    count = np.zeros((num_groups, cells), np.int32)

    def fill(h, c, samples):
        if len(samples) > k:
            samples = rng.choice(samples, k, replace=False)
        table[h, c, : len(samples)] = samples
        count[h, c] = len(samples)

    for g in range(num_groups):
        group_samples = speed[s_group == g]
        if len(group_samples) == 0:
            group_samples = speed  # hour group without any speed: all speeds
        for c in range(cells):
            samples = speed[(s_group == g) & (s_cell == c)]
            fill(g, c, samples if len(samples) >= config.min_speed_samples else group_samples)
    return ESTTGModel(
        graph=graph,
        kde=kde,
        hour_share=jnp.asarray(counts / counts.sum(), jnp.float32),
        speed_mps=jnp.asarray(table),
        speed_count=jnp.asarray(count),
    )


def trips_per_hour(hour_share, num_trips: int) -> np.ndarray:
    """N_h = round(N share_h) (spec §4.4) by largest remainders, so that sum N_h = N. NumPy [24] int64."""
    share = np.asarray(hour_share, np.float64)
    exact = num_trips * share / share.sum()
    n = np.floor(exact).astype(np.int64)
    n[np.argsort(-(exact - n), kind="stable")[: num_trips - n.sum()]] += 1
    return n


def _interpolate(node_xy_m, hop_s, step_s: float, num_steps: int):
    """Eq. (20) on the global grid k step_s: positions [L, 2] along a polyline with hop durations hop_s [N-1]
    (zero for padding), and arrival time (s after the start)."""
    node_t = jnp.concatenate([jnp.zeros(1), jnp.cumsum(hop_s)])
    grid_t = step_s * jnp.arange(num_steps, dtype=jnp.float32)
    j = jnp.clip(jnp.searchsorted(node_t, grid_t, side="right") - 1, 0, node_t.shape[0] - 2)
    span = node_t[j + 1] - node_t[j]
    frac = jnp.where(span > 0, jnp.clip((grid_t - node_t[j]) / jnp.where(span > 0, span, 1.0), 0.0, 1.0), 1.0)
    xy = node_xy_m[j] + frac[:, None] * (node_xy_m[j + 1] - node_xy_m[j])
    return xy, node_t[-1]


def _drive(key, model: ESTTGModel, hour, source, target, config: ESTTGConfig):
    """Route source -> target (§4.5), time it with (hour group, cell) speeds (19), interpolate at step_s (20) and
    snap onto the roads (§4.7): positions [L, 2] m, arrival time s after the start, path node count."""
    graph = model.graph
    nodes, count = shortest_path(graph, source, target)
    xy = graph.node_xy_m[jnp.maximum(nodes, 0)]
    xy = jnp.where((nodes >= 0)[:, None], xy, xy[jnp.maximum(count - 1, 0)])  # pad with the exit node
    hop_m = jnp.linalg.norm(jnp.diff(xy, axis=0), axis=-1)
    cell = _cell(xy[:-1], model.kde.box_m, config.speed_cells)
    group = jnp.asarray(config.speed_hour_groups, jnp.int32)[hour]
    index = jax.random.randint(key, cell.shape, 0, model.speed_count[group, cell])
    speed = jnp.clip(model.speed_mps[group, cell, index], config.speed_min_mps, config.speed_max_mps)
    positions, arrival_s = _interpolate(xy, hop_m / speed, config.step_s, config.max_steps)
    return snap_to_road(graph, positions)[0], arrival_s, count


def _exit_candidates(key, model: ESTTGModel, hour, config: ESTTGConfig):
    """num_candidates KDE draws (§4.4): (normalised coords [C, 2], nearest nodes [C], inside the box [C])."""
    points = sample_hourly_kde(key, model.kde, hour, config.num_candidates)
    unit = model.kde.to_unit(points)
    return unit, nearest_node(model.graph, points), jnp.all((unit >= 0) & (unit <= 1), axis=-1)


def _one_trip(key, hour, model: ESTTGModel, config: ESTTGConfig):
    """One EST-TG trip (§4.4-4.7): positions [L, 2] m, valid [L], start second of day."""
    k_in, k_out, k_drive, k_start = jax.random.split(key, 4)
    u_in, n_in, in_box = _exit_candidates(k_in, model, hour, config)
    u_out, n_out, out_box = _exit_candidates(k_out, model, hour, config)
    ok = in_box & out_box & (n_in != n_out) & (jnp.linalg.norm(u_in - u_out, axis=-1) >= config.min_od_unit)
    pick = jnp.argmax(ok)
    positions, arrival_s, count = _drive(k_drive, model, hour, n_in[pick], n_out[pick], config)
    slot = jnp.arange(config.max_steps)
    valid = ok[pick] & (count >= 2) & (slot * config.step_s < arrival_s + config.step_s)
    start_s = (hour + jax.random.uniform(k_start)) * 3600.0
    return positions, valid, start_s


@functools.partial(jax.jit, static_argnames="config")
def _generate(key, hours, model: ESTTGModel, config: ESTTGConfig):
    keys = jax.random.split(key, hours.shape[0])
    positions, valid, start_s = jax.vmap(_one_trip, (0, 0, None, None))(keys, hours, model, config)
    return jnp.swapaxes(positions, 0, 1), valid.T, start_s


def generate_est_tg(key, model: ESTTGModel, num_trips: int, config: ESTTGConfig = ESTTGConfig()) -> GeneratedTrips:
    """`num_trips` EST-TG trips (spec §4.4-4.7), hours allocated by `trips_per_hour` (trips ordered by hour);
    deterministic for `key`."""
    hours = np.repeat(np.arange(24), trips_per_hour(model.hour_share, num_trips)).astype(np.int32)
    positions, valid, start_s = _generate(key, jnp.asarray(hours), model, config)
    return GeneratedTrips(Trace.create(positions, valid=valid), start_s, jnp.asarray(hours))


@functools.partial(jax.jit, static_argnames=("num_trips", "step_s", "max_steps"))
def generate_naive(key, box_m, num_trips: int, speed_mps, step_s: float = 30.0, max_steps: int = 64) -> GeneratedTrips:
    """Naive baseline (spec §4.10 comparison): uniform hour, uniform entry and exit in box_m = (xmin, ymin, xmax,
    ymax) metres, straight line at constant speed_mps, sampled every step_s (valid until the first slot at or
    after arrival), same output as `generate_est_tg`."""
    box_m = jnp.asarray(box_m, jnp.float32)
    k_hour, k_in, k_out, k_start = jax.random.split(key, 4)
    hours = jax.random.randint(k_hour, (num_trips,), 0, 24)
    entry = jax.random.uniform(k_in, (num_trips, 2), minval=box_m[:2], maxval=box_m[2:])
    exit_ = jax.random.uniform(k_out, (num_trips, 2), minval=box_m[:2], maxval=box_m[2:])
    duration_s = jnp.linalg.norm(exit_ - entry, axis=-1) / speed_mps
    t = step_s * jnp.arange(max_steps, dtype=jnp.float32)[:, None]
    frac = jnp.clip(t / jnp.maximum(duration_s, 1e-6), 0.0, 1.0)[..., None]
    positions = entry + frac * (exit_ - entry)
    valid = t < duration_s + step_s
    start_s = (hours + jax.random.uniform(k_start, (num_trips,))) * 3600.0
    return GeneratedTrips(Trace(positions_m=positions, valid=valid), start_s, hours.astype(jnp.int32))


def _chained(key, hour0, model: ESTTGModel, config: ESTTGConfig, num_slots: int, max_trips: int):
    """One vehicle's chained trajectory (§4.9): positions [num_slots, 2] m, valid [num_slots]."""
    k_first, k_start, k_trips = jax.random.split(key, 3)
    _, first_nodes, first_inside = _exit_candidates(k_first, model, hour0, config)
    offset_s = jax.random.uniform(k_start) * 3600.0  # episode start, uniform within hour0
    last_slot = config.max_steps - 1

    def trip(carry, k):
        node, slots, alive = carry
        hour = (hour0 + jnp.floor((offset_s + slots * config.step_s) / 3600.0).astype(jnp.int32)) % 24
        k_exit, k_drive = jax.random.split(k)
        unit, nodes, inside = _exit_candidates(k_exit, model, hour, config)
        here = model.kde.to_unit(model.graph.node_xy_m[node])
        ok = inside & (nodes != node) & (jnp.linalg.norm(unit - here, axis=-1) >= config.min_od_unit)
        target = nodes[jnp.argmax(ok)]
        positions, arrival_s, count = _drive(k_drive, model, hour, node, target, config)
        found = alive & jnp.any(ok) & (count >= 2)
        new_slots = jnp.ceil(arrival_s / config.step_s).astype(jnp.int32)  # slots after the trip's first one
        complete = new_slots <= last_slot
        new_slots = jnp.where(found, jnp.minimum(new_slots, last_slot), 0)
        carry = (jnp.where(found, target, node), slots + new_slots, alive & (complete | ~found))
        return carry, (positions, new_slots)

    start = (first_nodes[jnp.argmax(first_inside)], jnp.int32(0), jnp.array(True))
    _, (positions, new_slots) = jax.lax.scan(trip, start, jax.random.split(k_trips, max_trips))
    ends = jnp.cumsum(new_slots)  # global slot of every trip's arrival
    slot = jnp.minimum(jnp.arange(num_slots), ends[-1])  # after the last arrival: hold the last position
    r = jnp.clip(jnp.searchsorted(ends, slot, side="left"), 0, max_trips - 1)
    within = jnp.clip(slot - (ends[r] - new_slots[r]), 0, last_slot)
    return positions[r, within], jnp.arange(num_slots) <= ends[-1]


@functools.partial(jax.jit, static_argnames=("num_vehicles", "num_slots", "config", "max_trips"))
def generate_chained_bank(
    key,
    model: ESTTGModel,
    hour,
    num_vehicles: int,
    num_slots: int = 101,
    config: ESTTGConfig = ESTTGConfig(),
    max_trips: int = 16,
) -> Trace:
    """Bank of chained trajectories for the RL environment (spec §4.9): Trace [num_slots, num_vehicles, 2].

    `hour`: the start hour of every vehicle, a scalar or int [num_vehicles] (e.g. drawn from w(h), §4.9).
    Each vehicle starts at a KDE entry of its hour (snapped to a node), at a time uniform within the hour; each trip's
    exit is the next trip's entry, a new exit is drawn from the KDE of the current hour, and trips (each
    `_drive`n as in `generate_est_tg`, slot step config.step_s) are chained until num_slots positions exist
    (spec: T + 1 = 101). `valid` is False after the last arrival when `max_trips` trips do not fill the slots,
    or after a trip longer than config.max_steps slots (the chain stops there). Slot 0 is the episode start.
    """
    keys = jax.random.split(key, num_vehicles)
    hours = jnp.broadcast_to(jnp.asarray(hour, jnp.int32), (num_vehicles,))
    positions, valid = jax.vmap(_chained, (0, 0, None, None, None, None))(
        keys, hours, model, config, num_slots, max_trips
    )
    return Trace(positions_m=jnp.swapaxes(positions, 0, 1), valid=valid.T)
