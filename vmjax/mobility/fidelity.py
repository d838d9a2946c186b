"""Fidelity checks of generated trajectories against "real" ones (spec 004 §4.10). NumPy (+ `snap_to_road`).

* spatial Jensen-Shannon divergence of bins x bins occupancy histograms over the map box (spec: 32 x 32);
* Jensen-Shannon divergence of the hourly point profiles (24 bins);
* on-road ratio: share of points within tolerance_m of a road edge (spec: < 1 m);
* Wasserstein-1 distance between speed distributions (m/s).
JSD uses log base 2, so it lies in [0, 1] (the spec does not fix the base).
"""

from __future__ import annotations

import numpy as np

from vmjax.mobility.est_tg import GeneratedTrips, map_match
from vmjax.mobility.road_graph import RoadGraph
from vmjax.mobility.tdrive import GpsPoints


def js_divergence(p, q) -> float:
    """JSD(p, q) = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2, in bits; inputs are normalised first."""
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    if p.shape != q.shape or np.any(p < 0) or np.any(q < 0) or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError(
            f"js_divergence: need two non-negative histograms of one shape with mass, got {p.shape}, {q.shape}"
        )
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return np.sum(a[nz] * np.log2(a[nz] / m[nz]))

    return float(0.5 * kl(p) + 0.5 * kl(q))


def occupancy_histogram(xy_m, box_m, bins: int = 32) -> np.ndarray:
    """Counts [bins, bins] (index [x bin, y bin]) of points [P, 2] metres inside box_m = (xmin, ymin, xmax, ymax)."""
    xy_m = np.asarray(xy_m, np.float64)
    xmin, ymin, xmax, ymax = (float(v) for v in box_m)
    return np.histogram2d(xy_m[:, 0], xy_m[:, 1], bins=bins, range=[[xmin, xmax], [ymin, ymax]])[0]


def hourly_profile(hours, num_hours: int = 24) -> np.ndarray:
    """Point counts [num_hours] per hour of day."""
    return np.bincount(np.asarray(hours, np.int64) % num_hours, minlength=num_hours).astype(np.float64)


def on_road_ratio(graph: RoadGraph, xy_m, tolerance_m: float = 1.0) -> float:
    """Share of points [P, 2] within tolerance_m of the nearest road edge (spec §4.10: 100% after correction)."""
    xy_m = np.asarray(xy_m, np.float32)
    distance_m = np.linalg.norm(map_match(graph, xy_m) - xy_m, axis=-1)
    return float(np.mean(distance_m <= tolerance_m))


def wasserstein_1(a, b, num_quantiles: int = 1000) -> float:
    """W1 between two 1-D samples, as the mean |quantile difference| on a uniform grid of `num_quantiles` levels."""
    levels = (np.arange(num_quantiles) + 0.5) / num_quantiles
    return float(
        np.mean(np.abs(np.quantile(np.asarray(a, np.float64), levels) - np.quantile(np.asarray(b, np.float64), levels)))
    )


def trip_points(trips: GeneratedTrips, step_s: float = 30.0):
    """Valid points of a trip bank: (xy_m [P, 2], hour of day [P], speed_mps [S] of consecutive valid slots)."""
    xy = np.asarray(trips.trace.positions_m, np.float64)  # [L, V, 2]
    valid = np.asarray(trips.trace.valid, bool)
    time_s = np.asarray(trips.start_s, np.float64)[None, :] + step_s * np.arange(xy.shape[0])[:, None]
    hours = (np.floor(time_s / 3600.0).astype(np.int64)) % 24
    pair = valid[1:] & valid[:-1]
    speed = np.linalg.norm(np.diff(xy, axis=0), axis=-1)[pair] / step_s
    return xy[valid], hours[valid], speed


def real_points(points: GpsPoints, trip_id):
    """Real points as `trip_points` gives generated ones: (xy_m [P, 2], hour [P], speed_mps [S]), the speeds from
    consecutive points of one trip (e.g. after `tdrive.resample_trips`)."""
    trip_id = np.asarray(trip_id)
    same = trip_id[1:] == trip_id[:-1]
    speed = np.linalg.norm(np.diff(points.xy_m, axis=0), axis=-1)[same] / np.diff(points.time_s)[same]
    return points.xy_m, points.hour(), speed


def fidelity_report(
    graph: RoadGraph,
    real_xy_m,
    real_hours,
    real_speed_mps,
    trips: GeneratedTrips,
    step_s: float = 30.0,
    bins: int = 32,
    tolerance_m: float = 1.0,
) -> dict[str, float]:
    """The §4.10 metrics of `trips` against real points: {spatial_jsd, hourly_jsd, speed_w1_mps, on_road_ratio}.

    The box is the bounding box of the graph's nodes; real_speed_mps are speeds of the real data at step_s.
    """
    node_xy = np.asarray(graph.node_xy_m, np.float64)
    box_m = np.concatenate([node_xy.min(0), node_xy.max(0)])
    xy, hours, speed = trip_points(trips, step_s)
    return {
        "spatial_jsd": js_divergence(occupancy_histogram(real_xy_m, box_m, bins), occupancy_histogram(xy, box_m, bins)),
        "hourly_jsd": js_divergence(hourly_profile(real_hours), hourly_profile(hours)),
        "speed_w1_mps": wasserstein_1(real_speed_mps, speed),
        "on_road_ratio": on_road_ratio(graph, xy, tolerance_m),
    }
