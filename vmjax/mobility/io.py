"""Trace files: CSV with one row per (vehicle, timestamp), e.g. the Shenzhen EV GPS traces (spec 003 §7.2).

Columns: `vehicle_id, timestamp` and either `x_m, y_m` (metres from the map origin) or `longitude, latitude`
(degrees; projected with the equirectangular `lonlat_to_xy_m` around `origin_lonlat`). Timestamps are
seconds (any number) or ISO dates 'YYYY-MM-DD HH:MM:SS' (read as UTC). NumPy and the csv module only.
"""

from __future__ import annotations

import csv
import io
import math
import os

import numpy as np

from vmjax.core.io import atomic_write_text, parse_finite_float, parse_time_s
from vmjax.mobility.trace import Trace
from vmjax.net.geo import lonlat_to_xy_m, xy_to_lonlat


def write_trace_csv(path, trace: Trace, slot_s: float, origin_lonlat=None) -> None:
    """Write `trace` atomically (temp file + os.replace); vehicle ids 0..V-1, timestamp t * slot_s seconds.

    Columns `vehicle_id,timestamp,x_m,y_m`, or `vehicle_id,timestamp,longitude,latitude` when
    `origin_lonlat = (lon, lat)` is given. Slots where `trace.valid` is False are skipped.
    """
    positions_m = np.asarray(trace.positions_m, np.float64)
    num_steps, num_vehicles = positions_m.shape[:2]
    valid = np.ones((num_steps, num_vehicles), bool) if trace.valid is None else np.asarray(trace.valid, bool)
    if origin_lonlat is None:
        header = ["vehicle_id", "timestamp", "x_m", "y_m"]
        columns = positions_m[..., 0], positions_m[..., 1]
    else:
        header = ["vehicle_id", "timestamp", "longitude", "latitude"]
        columns = xy_to_lonlat(
            positions_m[..., 0], positions_m[..., 1], float(origin_lonlat[0]), float(origin_lonlat[1])
        )
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    for v in range(num_vehicles):
        for t in range(num_steps):
            if valid[t, v]:
                writer.writerow(
                    [v, repr(t * float(slot_s)), repr(float(columns[0][t, v])), repr(float(columns[1][t, v]))]
                )
    atomic_write_text(path, buffer.getvalue())


def _read_rows(path: str, origin_lonlat):
    """Parse the file into per-row arrays: vehicle ids (list of str), times [N] s, xy [N, 2] m, line numbers [N]."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: trace file not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:  # a UTF-8 byte-order mark is skipped
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header with vehicle_id,timestamp,...")
        header = [name.strip() for name in header]
        coordinate_columns = ("longitude", "latitude") if origin_lonlat is not None else ("x_m", "y_m")
        missing = [name for name in ("vehicle_id", "timestamp", *coordinate_columns) if name not in header]
        if missing:
            hint = ""
            if origin_lonlat is None and {"longitude", "latitude"} <= set(header):
                hint = "; the file has longitude,latitude: pass origin_lonlat=(lon, lat) to project them"
            raise ValueError(f"{path}, line 1: missing required column(s) {missing}; columns found: {header}{hint}")
        index = {name: header.index(name) for name in ("vehicle_id", "timestamp", *coordinate_columns)}
        ids, times_s, coords, lines = [], [], [], []
        for row in reader:
            if not row or all(not field.strip() for field in row):
                continue
            where = f"{path}, line {reader.line_num}"
            if len(row) < len(header):
                raise ValueError(f"{where}: expected {len(header)} fields ({','.join(header)}), got {len(row)}")
            vehicle_id = row[index["vehicle_id"]].strip()
            if not vehicle_id:
                raise ValueError(f"{where}, column 'vehicle_id': empty vehicle id")
            ids.append(vehicle_id)
            times_s.append(parse_time_s(row[index["timestamp"]], where, "timestamp", "timestamp"))
            coords.append([parse_finite_float(row[index[c]], where, c, "coordinate") for c in coordinate_columns])
            if origin_lonlat is not None and not (-180.0 <= coords[-1][0] <= 180.0 and -90.0 <= coords[-1][1] <= 90.0):
                raise ValueError(
                    f"{where}: longitude {coords[-1][0]} / latitude {coords[-1][1]} out of range "
                    "(longitude in [-180, 180], latitude in [-90, 90] degrees)"
                )
            lines.append(reader.line_num)
    if not ids:
        raise ValueError(f"{path}: no data rows after the header")
    coords = np.asarray(coords, np.float64)
    if origin_lonlat is not None:
        x_m, y_m = lonlat_to_xy_m(coords[:, 0], coords[:, 1], float(origin_lonlat[0]), float(origin_lonlat[1]))
        coords = np.stack([x_m, y_m], axis=-1)
    return ids, np.asarray(times_s, np.float64), coords, np.asarray(lines)


def _headings_rad(positions_m: np.ndarray) -> np.ndarray:
    """Direction of the displacement into each slot [T, V]; slot 0 uses the first move, standing holds the last."""
    num_steps, num_vehicles = positions_m.shape[:2]
    step_m = np.diff(positions_m, axis=0, prepend=positions_m[:1])
    if num_steps > 1:
        step_m[0] = positions_m[1] - positions_m[0]
    moving = np.linalg.norm(step_m, axis=-1) > 1e-6
    angle = np.arctan2(step_m[..., 1], step_m[..., 0])
    last_move = np.where(moving, np.arange(num_steps)[:, None], -1)
    last_move = np.maximum.accumulate(last_move, axis=0)
    held = np.take_along_axis(angle, np.maximum(last_move, 0), axis=0)
    return np.where(last_move >= 0, held, 0.0)


DEFAULT_MAX_SPAN_S = 3 * 86_400.0
"""`load_trace_csv`'s default limit on the time span of the kept rows (3 days): one wrong year in a timestamp would
otherwise build a trace of ~1e6 slots per year at 30 s slots (gigabytes) without a word."""


def load_trace_csv(
    path,
    slot_s: float,
    origin_lonlat=None,
    box_m=None,
    num_vehicles=None,
    num_steps=None,
    max_span_s: float | None = DEFAULT_MAX_SPAN_S,
) -> Trace:
    """Read a trace CSV into a `Trace` on a common slot grid of `slot_s` seconds.

    - `origin_lonlat=(lon, lat)`: read `longitude,latitude` and project them; else read `x_m,y_m`.
    - `box_m=(xmin, ymin, xmax, ymax)`: keep only rows inside the box (metres from the origin).
    - `num_vehicles`: keep the vehicles with the longest in-box presence (time span of their rows, spec 003
      §7.2 "keep the 10 vehicles with the longest in-box presence"); vehicles keep their file order.
    - slots start at the earliest kept timestamp; `num_steps` defaults to covering the latest one.
    - `max_span_s`: the kept rows may span at most this many seconds (default 3 days; None: no limit), else a
      ValueError names the file and the lines of the earliest and latest timestamps.
    Each vehicle is linearly interpolated onto the slot grid (gaps inside its observed time span, e.g. while it
    was outside the box, are interpolated and stay valid); outside that span it holds the nearest position
    and `valid` is False. Headings follow the displacements. ValueError names the file,
    the line and the column of malformed input.
    """
    path = os.fspath(path)
    if not slot_s > 0:
        raise ValueError(f"load_trace_csv: slot_s must be > 0, got {slot_s}")
    ids, times_s, xy_m, lines = _read_rows(path, origin_lonlat)

    order = list(dict.fromkeys(ids))  # vehicles in order of first appearance
    rows_of = {vehicle: [] for vehicle in order}
    for row, vehicle in enumerate(ids):
        rows_of[vehicle].append(row)
    for vehicle in order:
        rows = np.asarray(rows_of[vehicle])
        sorted_rows = rows[np.argsort(times_s[rows], kind="stable")]
        repeated = np.flatnonzero(np.diff(times_s[sorted_rows]) == 0.0)
        if repeated.size:
            a, b = sorted_rows[repeated[0]], sorted_rows[repeated[0] + 1]
            raise ValueError(
                f"{path}, lines {min(lines[a], lines[b])} and {max(lines[a], lines[b])}, column 'timestamp': "
                f"vehicle {vehicle!r} has duplicate timestamp {times_s[a]}"
            )
        rows_of[vehicle] = sorted_rows

    if box_m is not None:
        xmin, ymin, xmax, ymax = (float(v) for v in box_m)
        inside = (xy_m[:, 0] >= xmin) & (xy_m[:, 0] <= xmax) & (xy_m[:, 1] >= ymin) & (xy_m[:, 1] <= ymax)
        rows_of = {vehicle: rows[inside[rows]] for vehicle, rows in rows_of.items()}
        order = [vehicle for vehicle in order if rows_of[vehicle].size]
        if not order:
            raise ValueError(f"{path}: no rows left after filtering to box_m={tuple(box_m)}")

    if num_vehicles is not None:
        if num_vehicles < 1 or num_vehicles > len(order):
            raise ValueError(
                f"{path}: num_vehicles={num_vehicles} requested but {len(order)} vehicle(s) available"
                + (" after filtering to the box" if box_m is not None else "")
            )
        presence_s = {v: times_s[rows_of[v][-1]] - times_s[rows_of[v][0]] for v in order}
        ranked = sorted(order, key=lambda v: (-presence_s[v], -rows_of[v].size, order.index(v)))
        chosen = set(ranked[:num_vehicles])
        order = [vehicle for vehicle in order if vehicle in chosen]

    first = min((rows_of[v][0] for v in order), key=lambda row: times_s[row])
    last = max((rows_of[v][-1] for v in order), key=lambda row: times_s[row])
    start_s, end_s = times_s[first], times_s[last]
    if max_span_s is not None and end_s - start_s > max_span_s:
        raise ValueError(
            f"{path}, lines {lines[first]} and {lines[last]}, column 'timestamp': the trace spans "
            f"{end_s - start_s:.0f} s ({(end_s - start_s) / 86_400.0:.1f} days) > max_span_s={max_span_s:.0f} s "
            "(a wrong date?); pass a larger max_span_s (or None) to load it anyway"
        )
    if num_steps is None:
        num_steps = int(math.floor((end_s - start_s) / slot_s + 1e-9)) + 1
    elif num_steps < 1:
        raise ValueError(f"load_trace_csv: num_steps must be >= 1, got {num_steps}")
    slot_times_s = start_s + float(slot_s) * np.arange(num_steps)
    tolerance_s = 1e-6 * float(slot_s)

    positions_m = np.empty((num_steps, len(order), 2), np.float64)
    valid = np.empty((num_steps, len(order)), bool)
    for v, vehicle in enumerate(order):
        rows = rows_of[vehicle]
        for c in range(2):
            positions_m[:, v, c] = np.interp(slot_times_s, times_s[rows], xy_m[rows, c])
        valid[:, v] = (slot_times_s >= times_s[rows[0]] - tolerance_s) & (
            slot_times_s <= times_s[rows[-1]] + tolerance_s
        )
    return Trace.create(
        positions_m=positions_m.astype(np.float32),
        headings_rad=_headings_rad(positions_m).astype(np.float32),
        valid=valid,
    )
