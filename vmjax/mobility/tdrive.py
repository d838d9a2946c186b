"""T-Drive taxi GPS files and their synthetic stand-in (spec 004 §4.1, §4.2, §4.8).

T-Drive format (§4.1): one text file per taxi, no header, lines `taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude`.
`load_tdrive` reads such files (a user's real T-Drive files unchanged) into flat `GpsPoints` in metres on the
map (equirectangular `vmjax.net.geo.lonlat_to_xy_m`; the map point `origin_xy_m` sits at `origin_lonlat`, by
default the spec's Beijing centre (116.397, 39.908) at the synthetic city's centre (2500, 2500) m).
`generate_ground_truth` is the §4.8 "real" taxi generator that plays T-Drive; `write_tdrive` writes it in
T-Drive's exact format. `clean_gps` is the §4.2 anomaly removal and trip split. NumPy only (plus the road graph).
Timestamps are seconds since 1970-01-01 read as UTC, so hour of day = (time_s // 3600) % 24 in the file's clock.
"""

from __future__ import annotations

import dataclasses
import datetime
import heapq
import io
import os
from pathlib import Path

import numpy as np

from vmjax.core.io import atomic_write_text, parse_finite_float, parse_time_s
from vmjax.mobility.road_graph import RoadGraph
from vmjax.net.geo import lonlat_to_xy_m, xy_to_lonlat

BEIJING_CENTRE_LONLAT = (116.397, 39.908)
"""Spec §4.8: the synthetic city is projected around this point (lon, lat in degrees)."""

HOURLY_ACTIVITY = (
    0.020, 0.015, 0.012, 0.010, 0.010, 0.015, 0.030, 0.050, 0.065, 0.062, 0.055, 0.052,
    0.050, 0.052, 0.053, 0.055, 0.058, 0.062, 0.060, 0.052, 0.045, 0.040, 0.035, 0.027,
)  # fmt: skip
"""Spec §4.8 hourly activity w(h), h = 0..23 (normalised where used)."""


@dataclasses.dataclass(frozen=True)
class GpsPoints:
    """Flat GPS points of many taxis, in file order.

    taxi_id: [P] int64; time_s: [P] float64 seconds since 1970-01-01 (UTC clock); xy_m: [P, 2] float64 metres on
    the map.
    """

    taxi_id: np.ndarray
    time_s: np.ndarray
    xy_m: np.ndarray

    def __post_init__(self):
        n = np.shape(self.taxi_id)[0] if np.ndim(self.taxi_id) == 1 else -1
        if n < 0 or np.shape(self.time_s) != (n,) or np.shape(self.xy_m) != (n, 2):
            raise ValueError(
                f"GpsPoints: need taxi_id [P], time_s [P], xy_m [P, 2], got {np.shape(self.taxi_id)}, "
                f"{np.shape(self.time_s)}, {np.shape(self.xy_m)}"
            )

    def __len__(self) -> int:
        return len(self.taxi_id)

    def hour(self) -> np.ndarray:
        """Hour of day [P] int64."""
        return (np.floor(self.time_s / 3600.0).astype(np.int64)) % 24


# ----------------------------------------------------------------------------------------------- file format
def write_tdrive(
    folder, points: GpsPoints, origin_lonlat=BEIJING_CENTRE_LONLAT, origin_xy_m=(2500.0, 2500.0), decimals: int = 5
) -> list[Path]:
    """Writes one file `<taxi_id>.txt` per taxi in T-Drive's format (§4.1), atomically; returns the paths.

    Coordinates get `decimals` decimals (5 as in T-Drive, ~1 m); times must be whole seconds (the format's
    resolution), else ValueError. Rows keep their order within each taxi.
    """
    folder = Path(folder)
    times = np.asarray(points.time_s, np.float64)
    if not np.all(np.isfinite(times)) or np.any(times != np.round(times)):
        raise ValueError("write_tdrive: time_s must be finite whole seconds (T-Drive has 1 s resolution)")
    xy = np.asarray(points.xy_m, np.float64) - np.asarray(origin_xy_m, np.float64)
    lon, lat = xy_to_lonlat(xy[:, 0], xy[:, 1], float(origin_lonlat[0]), float(origin_lonlat[1]))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for taxi in dict.fromkeys(np.asarray(points.taxi_id).tolist()):
        buffer = io.StringIO()
        for i in np.flatnonzero(points.taxi_id == taxi):
            stamp = datetime.datetime.fromtimestamp(int(times[i]), tz=datetime.UTC)
            buffer.write(f"{taxi},{stamp:%Y-%m-%d %H:%M:%S},{lon[i]:.{decimals}f},{lat[i]:.{decimals}f}\n")
        paths.append(folder / f"{taxi}.txt")
        atomic_write_text(paths[-1], buffer.getvalue())
    return paths


def _tdrive_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such T-Drive file or folder")
    files = sorted(
        path.glob("*.txt"), key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.name)
    )
    if not files:
        raise ValueError(f"{path}: folder holds no *.txt T-Drive files")
    return files


def load_tdrive(path, origin_lonlat=BEIJING_CENTRE_LONLAT, origin_xy_m=(2500.0, 2500.0)) -> GpsPoints:
    """Reads a T-Drive file, or every `*.txt` of a folder (numeric file order), into `GpsPoints` (§4.1).

    Rows are kept as they are (duplicates, outliers: see `clean_gps`); blank lines are skipped. ValueError
    names the file, the line and the field of a malformed row (field count, integer taxi id, date-time,
    finite longitude in [-180, 180] and latitude in [-90, 90]).
    """
    ids, times, lonlat = [], [], []
    for file in _tdrive_files(Path(os.fspath(path))):
        with open(file, encoding="utf-8-sig") as handle:  # a UTF-8 byte-order mark is skipped
            for line_num, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file}, line {line_num}"
                fields = line.strip().split(",")
                if len(fields) != 4:
                    raise ValueError(
                        f"{where}: expected 4 fields taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude, got {len(fields)}"
                    )
                try:
                    ids.append(int(fields[0]))
                except ValueError:
                    raise ValueError(f"{where}, column 'taxi_id': not an integer: {fields[0]!r}") from None
                times.append(parse_time_s(fields[1], where, "time", "date-time"))
                lon = parse_finite_float(fields[2], where, "longitude", "longitude")
                lat = parse_finite_float(fields[3], where, "latitude", "latitude")
                if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                    raise ValueError(f"{where}: longitude {lon} / latitude {lat} out of range")
                lonlat.append((lon, lat))
    if not ids:
        raise ValueError(f"{path}: no data rows")
    lonlat = np.asarray(lonlat, np.float64)
    x_m, y_m = lonlat_to_xy_m(lonlat[:, 0], lonlat[:, 1], float(origin_lonlat[0]), float(origin_lonlat[1]))
    xy_m = np.stack([x_m, y_m], -1) + np.asarray(origin_xy_m, np.float64)
    return GpsPoints(np.asarray(ids, np.int64), np.asarray(times, np.float64), xy_m)


# ------------------------------------------------------------------------------------ §4.2 cleaning, trips
def clean_gps(
    points: GpsPoints, box_m, max_speed_mps: float = 33.3, max_gap_s: float = 600.0, min_trip_points: int = 5
) -> tuple[GpsPoints, np.ndarray]:
    """Anomaly removal and trip split (spec §4.2 steps 2-3) -> (kept points sorted by taxi and time, trip_id [P]).

    Drops exact-zero coordinates (lon = lat = 0 maps far off the box), points outside box_m = (xmin, ymin, xmax,
    ymax) in metres, repeated timestamps of a taxi (the later row), and points reached from the previous kept
    point faster than max_speed_mps. A new trip starts after a gap > max_gap_s; trips with fewer than
    min_trip_points points are dropped. Not done: the spec's "stays within 50 m for > 10 min" split.
    """
    xmin, ymin, xmax, ymax = (float(v) for v in box_m)
    order = np.lexsort((points.time_s, points.taxi_id))
    taxi, time_s, xy = points.taxi_id[order], points.time_s[order], points.xy_m[order]
    inside = (xy[:, 0] >= xmin) & (xy[:, 0] <= xmax) & (xy[:, 1] >= ymin) & (xy[:, 1] <= ymax)
    keep = inside & np.any(xy != 0.0, axis=1)
    taxi, time_s, xy = taxi[keep], time_s[keep], xy[keep]
    kept, trip_ids, trip, last = [], [], -1, None
    for i in range(len(taxi)):
        if last is not None and taxi[i] == taxi[last]:
            dt = time_s[i] - time_s[last]
            if dt <= 0.0 or np.hypot(*(xy[i] - xy[last])) > max_speed_mps * dt:
                continue  # duplicate timestamp or speed spike
            new_trip = dt > max_gap_s
        else:
            new_trip = True
        trip += int(new_trip)
        kept.append(i)
        trip_ids.append(trip)
        last = i
    kept, trip_ids = np.asarray(kept, np.int64), np.asarray(trip_ids, np.int64)
    sizes = np.bincount(trip_ids, minlength=trip + 1) if len(trip_ids) else np.zeros(0, np.int64)
    long_enough = sizes[trip_ids] >= min_trip_points if len(trip_ids) else np.zeros(0, bool)
    kept, trip_ids = kept[long_enough], trip_ids[long_enough]
    _, trip_ids = np.unique(trip_ids, return_inverse=True)
    return GpsPoints(taxi[kept], time_s[kept], xy[kept]), trip_ids.astype(np.int64)


def resample_trips(points: GpsPoints, trip_id: np.ndarray, step_s: float = 30.0) -> tuple[GpsPoints, np.ndarray]:
    """Linear interpolation of every trip onto t0 + k step_s, k = 0, 1, ... while <= its last time (§4.8: "real"
    trajectories resampled to 30 s, for the fidelity checks) -> (points, trip_id [P])."""
    out = []
    for trip in np.unique(trip_id):
        rows = np.flatnonzero(trip_id == trip)
        t = points.time_s[rows[0]] + step_s * np.arange(
            int((points.time_s[rows[-1]] - points.time_s[rows[0]]) // step_s) + 1
        )
        xy = np.stack([np.interp(t, points.time_s[rows], points.xy_m[rows, c]) for c in range(2)], -1)
        out.append((np.full(len(t), points.taxi_id[rows[0]]), t, xy, np.full(len(t), trip)))
    taxi, time_s, xy, trips = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return GpsPoints(taxi, time_s, xy), trips


# --------------------------------------------------------------------------------- §4.8 ground-truth taxis
@dataclasses.dataclass(frozen=True)
class GroundTruthConfig:
    """Spec §4.8 "real" taxi generator ([R] choices; defaults = the spec's). Lengths in metres, times in seconds."""

    num_taxis: int = 200
    num_days: int = 7
    start_date: str = "2008-02-02"  # T-Drive's first day
    centre_m: tuple = (2500.0, 2500.0)
    centre_sigma_m: float = 600.0
    centre_weight: float = 0.4
    periphery_m: tuple = ((1200.0, 3800.0), (3900.0, 3600.0), (3500.0, 1000.0))
    periphery_sigma_m: float = 400.0  # each periphery hotspot has weight (1 - centre_weight) / 3
    hourly_activity: tuple = HOURLY_ACTIVITY
    morning_hours: tuple = (6, 10)  # [start, end): origins periphery, destinations centre
    evening_hours: tuple = (16, 20)  # [start, end): the reverse
    route_weight_sigma: float = 0.3  # per-trip LogNormal(0, sigma) factor on every edge weight
    speed_centre_mps: float = 5.0
    speed_periphery_mps: float = 14.0
    speed_radius_m: float = 2500.0
    rush_hours: tuple = (7, 8, 9, 17, 18, 19)
    rush_factor: float = 0.7
    night_hours: tuple = (0, 1, 2, 3, 4, 5)
    night_factor: float = 1.2
    speed_sigma: float = 0.2  # LogNormal(0, sigma) per route node
    speed_min_mps: float = 1.0
    speed_max_mps: float = 30.0
    sample_interval_s: float = 60.0
    sample_jitter_s: float = 5.0
    gps_noise_m: float = 10.0
    outlier_fraction: float = 0.01  # uniform over the node box expanded x2 about its centre
    duplicate_fraction: float = 0.005  # rows repeated with the same timestamp
    idle_min_s: float = 60.0
    idle_max_s: float = 2400.0


def _dijkstra_path(adjacency, weights, source: int, target: int) -> list[int]:
    """Plain heap Dijkstra (independent of EST-TG's JAX Bellman-Ford); node list source..target."""
    dist, prev, heap = {source: 0.0}, {}, [(0.0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == target:
            break
        if d > dist[u]:
            continue
        for v, e in adjacency[u]:
            nd = d + weights[e]
            if nd < dist.get(v, np.inf):
                dist[v], prev[v] = nd, u
                heapq.heappush(heap, (nd, v))
    if target not in dist:
        return []
    path = [target]
    while path[-1] != source:
        path.append(prev[path[-1]])
    return path[::-1]


def generate_ground_truth(seed: int, graph: RoadGraph, config: GroundTruthConfig = GroundTruthConfig()) -> GpsPoints:
    """Synthetic "real" taxi GPS data on `graph` (spec §4.8), NumPy `default_rng(seed)`, whole-second times.

    Each taxi alternates trips and idle gaps U[idle_min_s, idle_max_s] (no GPS points while idle). A trip may
    start at time t with probability w(h(t)) / max w (thinning), so trip starts follow w(h). Origin and
    destination: morning hours periphery -> centre, evening centre -> periphery, else both from the full hotspot
    mixture; each point is redrawn until inside the node box and snapped to its nearest node (distinct nodes).
    Route: Dijkstra on edge lengths x LogNormal(0, route_weight_sigma) per edge and trip. Speed on the hop leaving
    node i: [v_c + (v_p - v_c) min(r_i / speed_radius_m, 1)] g(h) LogNormal(0, speed_sigma), clipped. GPS every
    sample_interval_s +- U[-jitter, jitter], rounded to whole seconds, + N(0, gps_noise_m^2) per axis; then
    outliers and duplicated rows. Taxi ids 1..num_taxis.
    """
    c = config
    rng = np.random.default_rng(seed)
    node_xy = np.asarray(graph.node_xy_m, np.float64)
    edges = np.asarray(graph.edges)
    lengths = np.asarray(graph.edge_length_m, np.float64)
    adjacency = [[] for _ in range(len(node_xy))]
    for e, (a, b) in enumerate(edges):
        adjacency[a].append((int(b), e))
        if not graph.directed:
            adjacency[b].append((int(a), e))
    lo, hi = node_xy.min(0), node_xy.max(0)
    w = np.asarray(c.hourly_activity, np.float64)
    accept = w / w.max()
    centres = np.asarray([c.centre_m, *c.periphery_m], np.float64)
    sigmas = np.asarray([c.centre_sigma_m] + [c.periphery_sigma_m] * len(c.periphery_m))
    full = np.asarray([c.centre_weight] + [(1 - c.centre_weight) / len(c.periphery_m)] * len(c.periphery_m))
    periphery = np.asarray([0.0] + [1.0 / len(c.periphery_m)] * len(c.periphery_m))
    central = np.eye(len(centres))[0]
    speed_factor = np.ones(24)
    speed_factor[list(c.rush_hours)] = c.rush_factor
    speed_factor[list(c.night_hours)] = c.night_factor

    def draw_node(mixture):
        while True:
            k = rng.choice(len(centres), p=mixture)
            p = centres[k] + sigmas[k] * rng.standard_normal(2)
            if np.all(p >= lo) and np.all(p <= hi):
                return int(np.argmin(np.sum((node_xy - p) ** 2, -1)))

    t0 = datetime.datetime.fromisoformat(c.start_date).replace(tzinfo=datetime.UTC).timestamp()
    t_end = t0 + 86400.0 * c.num_days
    ids, times, xys = [], [], []
    for taxi in range(1, c.num_taxis + 1):
        t = t0 + rng.uniform(0.0, 3600.0)
        while t < t_end:
            hour = int(t // 3600) % 24
            if rng.uniform() >= accept[hour]:
                t += rng.uniform(c.idle_min_s, c.idle_max_s)
                continue
            if c.morning_hours[0] <= hour < c.morning_hours[1]:
                mix_o, mix_d = periphery, central
            elif c.evening_hours[0] <= hour < c.evening_hours[1]:
                mix_o, mix_d = central, periphery
            else:
                mix_o = mix_d = full
            source, target = draw_node(mix_o), draw_node(mix_d)
            while target == source:
                target = draw_node(mix_d)
            path = _dijkstra_path(
                adjacency, lengths * rng.lognormal(0.0, c.route_weight_sigma, len(lengths)), source, target
            )
            xy = node_xy[path]
            r_m = np.linalg.norm(xy[:-1] - np.asarray(c.centre_m), axis=-1)
            v = c.speed_centre_mps + (c.speed_periphery_mps - c.speed_centre_mps) * np.minimum(
                r_m / c.speed_radius_m, 1.0
            )
            v = np.clip(
                v * speed_factor[hour] * rng.lognormal(0.0, c.speed_sigma, len(v)), c.speed_min_mps, c.speed_max_mps
            )
            node_t = t + np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=-1) / v)])
            n = int((node_t[-1] - t) // c.sample_interval_s) + 1
            sample_t = t + c.sample_interval_s * np.arange(n) + rng.uniform(-c.sample_jitter_s, c.sample_jitter_s, n)
            sample_t = np.round(np.clip(sample_t, t, node_t[-1]))
            sample_xy = np.stack([np.interp(sample_t, node_t, xy[:, k]) for k in range(2)], -1)
            ids.append(np.full(n, taxi))
            times.append(sample_t)
            xys.append(sample_xy + c.gps_noise_m * rng.standard_normal((n, 2)))
            t = node_t[-1] + rng.uniform(c.idle_min_s, c.idle_max_s)
    ids, times, xys = np.concatenate(ids), np.concatenate(times), np.concatenate(xys)
    outlier = rng.uniform(size=len(ids)) < c.outlier_fraction
    mid, half = (lo + hi) / 2, (hi - lo)  # box expanded x2 about its centre
    xys[outlier] = rng.uniform(mid - half, mid + half, (int(outlier.sum()), 2))
    rows = np.arange(len(ids))
    rows = np.sort(np.concatenate([rows, rows[rng.uniform(size=len(ids)) < c.duplicate_fraction]]), kind="stable")
    return GpsPoints(ids[rows].astype(np.int64), times[rows], xys[rows])
