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


def hourly_share(hours, num_hours: int = 24) -> np.ndarray:
    """Share of points [num_hours] per hour of day (sums to 1): profiles of differently sized sets compare."""
    counts = hourly_profile(hours, num_hours)
    return counts / max(counts.sum(), 1.0)


def rush_to_early_trip_ratio(trip_hours, rush_hour: int = 8, early_hour: int = 3) -> float:
    """Trips starting in the rush hour (8-9 h) per trip starting early in the morning (3-4 h), spec §4.10 (> 3);
    inf when no trip starts early."""
    hours = np.asarray(trip_hours, np.int64) % 24
    early = int(np.sum(hours == early_hour))
    return float(np.sum(hours == rush_hour) / early) if early else float("inf")


def radial_mean_speeds(xy_m, speed_mps, centre_m, inner_m: float = 1000.0, outer_m: float = 2000.0):
    """(mean speed of segments starting within `inner_m` of `centre_m`, mean of those beyond `outer_m`), spec §4.10:
    slower in the centre than at the periphery (r < 1 km against r > 2 km on the 5 km map)."""
    radius = np.linalg.norm(np.asarray(xy_m, np.float64) - np.asarray(centre_m, np.float64), axis=-1)
    speed = np.asarray(speed_mps, np.float64)
    inner, outer = speed[radius < inner_m], speed[radius > outer_m]
    return (float(inner.mean()) if inner.size else float("nan"), float(outer.mean()) if outer.size else float("nan"))


def segment_speeds(trips: GeneratedTrips, step_s: float = 30.0):
    """(start points [S, 2] metres, speeds [S] m/s) of the consecutive valid slots of a trip bank."""
    xy = np.asarray(trips.trace.positions_m, np.float64)
    valid = np.asarray(trips.trace.valid, bool)
    pair = valid[1:] & valid[:-1]
    return xy[:-1][pair], np.linalg.norm(np.diff(xy, axis=0), axis=-1)[pair] / step_s


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
    return xy[valid], hours[valid], segment_speeds(trips, step_s)[1]


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
    """The §4.10 metrics of `trips` against real points: {spatial_jsd, hourly_jsd, speed_w1_mps, on_road_ratio,
    rush_to_early_trip_ratio (trips starting 8-9 h per trip starting 3-4 h; > 3), centre_speed_mps and
    periphery_speed_mps (mean segment speed within 1 km of the box centre and beyond 2 km; the centre slower)}.

    The box is the bounding box of the graph's nodes; real_speed_mps are speeds of the real data at step_s. The
    radii are the spec's for its 5 km map, scaled with the box's width.
    """
    node_xy = np.asarray(graph.node_xy_m, np.float64)
    box_m = np.concatenate([node_xy.min(0), node_xy.max(0)])
    xy, hours, speed = trip_points(trips, step_s)
    scale = float(box_m[2] - box_m[0]) / 5000.0
    centre, periphery = radial_mean_speeds(
        *segment_speeds(trips, step_s), 0.5 * (box_m[:2] + box_m[2:]), 1000.0 * scale, 2000.0 * scale
    )
    return {
        "spatial_jsd": js_divergence(occupancy_histogram(real_xy_m, box_m, bins), occupancy_histogram(xy, box_m, bins)),
        "hourly_jsd": js_divergence(hourly_profile(real_hours), hourly_profile(hours)),
        "speed_w1_mps": wasserstein_1(real_speed_mps, speed),
        "on_road_ratio": on_road_ratio(graph, xy, tolerance_m),
        "rush_to_early_trip_ratio": rush_to_early_trip_ratio(np.asarray(trips.hour)),
        "centre_speed_mps": centre,
        "periphery_speed_mps": periphery,
    }
