"""Trajectory banks for TwinSplit-v0 (spec 004 §4.9, §7.3): "real" and EST-TG-generated, from one seed.

    banks = build_trace_banks(seed=0, num_vehicles=512)      # the §4.8 city, ground truth, EST-TG fit
    params = env.default_params.replace(trace_bank=banks.real)       # "without generated vehicles" (§7.3)
    params = env.default_params.replace(trace_bank=banks.generated)  # "with generated vehicles" (§7.3)

Both banks are `Trace`s [num_slots, num_vehicles, 2] in metres from the map origin, inside [0, map_size_m]^2,
one 30 s slot apart, the format `EnvParams.trace_bank` replays (rows = vehicles, `positions_m[:T + 1]`).

* `real`: the §4.8 synthetic ground-truth taxis, cleaned (§4.2), every trip resampled at the slot (§4.8 "resampled
  to 30 s") and trips chained per bank vehicle (§4.9): the first trip starts in an hour h0 ~ w(h); when a trip
  ends at point X at time of day t, the next one is the ground-truth trip that starts in hour(t) whose first point
  is nearest X (all trips when that hour has fewer than `min_candidates`), until num_slots points exist. The
  ground truth draws each taxi trip's origin anew, so its trips do not chain exactly: the step from X to the next
  trip's first point is a short jump (its length is `real_jump_m`).
* `generated`: `generate_chained_bank` (EST-TG fitted on the same ground truth), start hours h0 ~ w(h).

The city and the ground-truth hotspots are laid out for the spec's 5 km map and scaled to `map_size_m` (speeds are
not scaled). The env draws its own start hour for the background load; the banks mix all hours (§4.9 keeps one
bank per hour; the env holds one bank, so the hour of a bank row is not matched to the env's hour) [C].
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import numpy as np
from scipy.spatial import cKDTree

from vmjax.mobility.est_tg import (
    ESTTGConfig,
    ESTTGModel,
    fit_est_tg,
    generate_chained_bank,
)
from vmjax.mobility.road_graph import RoadGraph, jittered_grid_city
from vmjax.mobility.tdrive import (
    HOURLY_ACTIVITY,
    GpsPoints,
    GroundTruthConfig,
    clean_gps,
    generate_ground_truth,
    resample_trips,
)
from vmjax.mobility.trace import Trace

REFERENCE_MAP_M = 5000.0
"""Side of the spec's synthetic city (§4.8); GroundTruthConfig lengths refer to it."""


class TraceBanks(NamedTuple):
    """The two env banks plus what they were built from (for fidelity checks, §4.10)."""

    real: Trace  # [num_slots, num_vehicles, 2] chained ground-truth trips, "without generated vehicles"
    generated: Trace  # [num_slots, num_vehicles, 2] EST-TG chained bank, "with generated vehicles"
    graph: RoadGraph
    ground_truth: GpsPoints  # raw synthetic taxi GPS (noise, outliers, duplicates)
    model: ESTTGModel
    real_jump_m: np.ndarray  # [J] distance from a trip's last point to the next chained trip's first point


def scaled_ground_truth(config: GroundTruthConfig, scale: float) -> GroundTruthConfig:
    """The ground-truth hotspots, their spread, the speed radius and the GPS noise times `scale` (speeds and times
    unchanged)."""
    return dataclasses.replace(
        config,
        centre_m=tuple(scale * float(v) for v in config.centre_m),
        centre_sigma_m=scale * config.centre_sigma_m,
        periphery_m=tuple(tuple(scale * float(v) for v in p) for p in config.periphery_m),
        periphery_sigma_m=scale * config.periphery_sigma_m,
        speed_radius_m=scale * config.speed_radius_m,
        gps_noise_m=scale * config.gps_noise_m,
    )


def _draw_hours(rng, num: int, hourly_activity) -> np.ndarray:
    w = np.asarray(hourly_activity, np.float64)
    return rng.choice(24, size=num, p=w / w.sum())


def chain_ground_truth(
    points: GpsPoints,
    trip_id: np.ndarray,
    num_vehicles: int,
    num_slots: int,
    rng,
    hourly_activity=HOURLY_ACTIVITY,
    step_s: float = 30.0,
    min_candidates: int = 8,
    max_trips: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Chains resampled ground-truth trips (`resample_trips` output, `step_s` apart) into tracks (§4.9):
    positions [num_slots, num_vehicles, 2] m and the jumps [J] m between chained trips (see the module doc)."""
    order = np.argsort(trip_id, kind="stable")
    trip_id, xy, time_s = trip_id[order], points.xy_m[order], points.time_s[order]
    first = np.flatnonzero(np.r_[True, trip_id[1:] != trip_id[:-1]])
    last = np.r_[first[1:], len(trip_id)]
    long = last - first >= 2  # trips that move at least one slot
    first, last = first[long], last[long]
    if len(first) == 0:
        raise ValueError("chain_ground_truth: no ground-truth trip spans two slots; generate more taxis or days")
    start_hour = (np.floor(time_s[first] / 3600.0).astype(np.int64)) % 24
    by_hour = []
    for h in range(24):
        rows = np.flatnonzero(start_hour == h)
        if len(rows) < min_candidates:
            rows = np.arange(len(first))
        by_hour.append((rows, cKDTree(xy[first[rows]])))
    out = np.zeros((num_vehicles, num_slots, 2))
    jumps = []
    for v, h0 in enumerate(_draw_hours(rng, num_vehicles, hourly_activity)):
        rows = by_hour[h0][0]
        trip = rows[rng.integers(len(rows))]
        track, day_s = [], (time_s[first[trip]] % 86400.0)
        for _ in range(max_trips):
            segment = xy[first[trip] : last[trip]]
            track.append(segment)
            day_s += step_s * len(segment)
            if sum(len(s) for s in track) >= num_slots:
                break
            rows, tree = by_hour[int(day_s // 3600) % 24]
            jump, k = tree.query(segment[-1])
            trip = rows[k]
            jumps.append(jump)
        track = np.concatenate(track)[:num_slots]
        out[v, : len(track)] = track
        out[v, len(track) :] = track[-1]  # only when max_trips trips do not fill the slots: hold
    return np.swapaxes(out, 0, 1), np.asarray(jumps)


def build_trace_banks(
    seed: int,
    num_vehicles: int = 512,
    num_slots: int = 101,
    map_size_m: float = 5000.0,
    ground_truth: GroundTruthConfig | None = None,
    est_tg: ESTTGConfig | None = None,
    max_trips: int = 16,
) -> TraceBanks:
    """Both env banks from one seed (§4.8, §4.9, §7.3): the jittered-grid city (seed), the ground-truth taxis
    (seed + 1), EST-TG fitted on them, and `num_vehicles` chained tracks of `num_slots` slots (T + 1) each.
    Deterministic for (seed, arguments). `ground_truth` (default `GroundTruthConfig()`, the spec's 200 taxis x 7
    days) lengths refer to the 5 km map and are scaled; `est_tg` defaults to `ESTTGConfig()`."""
    ground_truth = GroundTruthConfig() if ground_truth is None else ground_truth
    est_tg = ESTTGConfig() if est_tg is None else est_tg
    if num_vehicles < 1 or num_slots < 2:
        raise ValueError(
            f"build_trace_banks: need num_vehicles >= 1 and num_slots >= 2, got {num_vehicles}, {num_slots}"
        )
    if not map_size_m > 0:
        raise ValueError(f"build_trace_banks: map_size_m must be > 0, got {map_size_m}")
    scale = map_size_m / REFERENCE_MAP_M
    graph = jittered_grid_city(seed=seed, spacing_m=500.0 * scale, jitter_m=40.0 * scale)
    points = generate_ground_truth(seed + 1, graph, scaled_ground_truth(ground_truth, scale))
    model = fit_est_tg(graph, points, est_tg, seed=seed)
    box_m = (0.0, 0.0, map_size_m, map_size_m)
    clean, trip = clean_gps(points, box_m, est_tg.fit_speed_max_mps, est_tg.max_gap_s)
    resampled, trip = resample_trips(clean, trip, est_tg.step_s)
    rng = np.random.default_rng(seed + 2)
    real_xy, jumps = chain_ground_truth(
        resampled, trip, num_vehicles, num_slots, rng, ground_truth.hourly_activity, est_tg.step_s
    )
    hours = _draw_hours(rng, num_vehicles, ground_truth.hourly_activity)
    generated = generate_chained_bank(jax.random.key(seed), model, hours, num_vehicles, num_slots, est_tg, max_trips)
    clip = lambda xy: np.clip(np.asarray(xy, np.float64), 0.0, map_size_m)
    return TraceBanks(
        real=Trace.create(clip(real_xy)),
        generated=Trace.create(clip(generated.positions_m), valid=generated.valid),
        graph=graph,
        ground_truth=points,
        model=model,
        real_jump_m=jumps,
    )
