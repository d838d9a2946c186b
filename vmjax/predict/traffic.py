"""Data for the predictors, by simulation or from files (spec 003 §4.3 / §7.2, spec 002 §4.1).

    positions_m = simulate_trajectories(key, grid, mobility_params, slot_s=10.0)   # [T, V, 2] trajectory data
    series = load_traffic_csv("flow.csv")                                         # [T, S] a user's flow CSV
    series = simulate_server_traffic(key, server_xy_m, radius_m=600.0, num_vehicles=300, num_slots=2000)
    series = synthetic_traffic_flow(key, num_series=4, num_slots=2000)           # the §4.1 formula

    trajectories   spec 003 §4.3  `simulate_trajectories`   vehicles of `vmjax.mobility` on a road grid
    traffic CSV    spec 002 §4.1  `load_traffic_csv`        wide (time, one column per series) or long layout
    traffic        spec 002 §4.1  `simulate_server_traffic` vehicles in coverage per slot, daily demand cycle
    synthetic      spec 002 §4.1  `synthetic_traffic_flow`  seasonal flow plus AR(1) noise

Plain arrays and parameters in, arrays out: nothing here knows an env.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vmjax import mobility
from vmjax.core import validation
from vmjax.core.io import parse_finite_float, parse_time_s


# ====================================================================== trajectories, spec 003 §4.3 / §7.2
def simulate_trajectories(
    key,
    grid: mobility.RoadGrid,
    mobility_params: mobility.MobilityParams,
    slot_s: float,
    num_vehicles: int = 10,
    num_slots: int = 8640,
    substeps: int = 4,
) -> jax.Array:
    """Training / held-out positions [num_slots, num_vehicles, 2] (metres) for the trajectory predictor
    (spec 003 §4.3 / §7.2): `vmjax.mobility` vehicles on the road `grid` with `mobility_params`, `slot_s`
    seconds per slot and `substeps` sub-steps per slot. Pass a scenario's own road and mobility so the predictor
    learns the motion the env replays (`vmjax.envs.avatar_premigration.simulate_trajectories` does)."""
    for name, value in (("num_vehicles", num_vehicles), ("num_slots", num_slots), ("substeps", substeps)):
        validation.check_int_at_least("simulate_trajectories", name, value, 1)
    return _simulate(key, grid, mobility_params, slot_s, num_vehicles, num_slots, substeps)


@functools.partial(jax.jit, static_argnames=("grid", "num_vehicles", "num_slots", "substeps"))
def _simulate(key, grid, mobility_params, slot_s, num_vehicles, num_slots, substeps):
    trace = mobility.generate_trajectories(key, grid, mobility_params, num_vehicles, num_slots, slot_s, substeps)
    return trace.positions_m


# ====================================================================== traffic series, spec 002 §4.1
_TIME_NAMES = ("time", "timestamp", "datetime", "date")
_ID_NAMES = ("id", "series", "series_id", "server", "server_id", "station", "station_id", "segment", "segment_id")
_VALUE_NAMES = ("value", "flow", "load", "traffic", "count")


def load_traffic_csv(path, layout: str = "auto", columns: Sequence[str] | None = None, return_labels: bool = False):
    """Read a traffic-flow CSV (e.g. PeMS station flow exported per time) into series [T, S] float32.

    Two layouts (`layout="auto"` tells them apart by the header):
    - "wide": the first column is the time, every further column one series (server / road segment /
      station), its header the series id:  `time,rsu_0,rsu_1,...` then one row per time;
    - "long": exactly three columns named time|timestamp|datetime|date, id|series|server|station|segment
      (optionally with "_id"), and value|flow|load|traffic|count, one row per (time, id).
    Times are seconds (any number) or ISO date-times; rows are sorted by time (no resampling: one row = one
    slot, §4.1 option (i)); every (time, series) pair must have exactly one finite value. `columns` keeps
    only these series, in this order. Returns the series, or (series, times_s [T], ids [S]) with
    `return_labels`. ValueError names the file, the line and the column of malformed input.
    """
    path = os.fspath(path)
    validation.check_choice("load_traffic_csv", "layout", layout, ("auto", "wide", "long"))
    if not os.path.isfile(path):
        raise ValueError(f"{path}: traffic CSV not found")
    with open(path, newline="") as handle:
        rows = [(reader_line, row) for reader_line, row in _numbered_rows(csv.reader(handle))]
    if not rows:
        raise ValueError(f"{path}: empty file, expected a header (time,<series>... or time,id,value)")
    (_, header), data = rows[0], rows[1:]
    header = [name.strip() for name in header]
    lowered = [name.lower() for name in header]
    is_long = len(header) == 3 and lowered[0] in _TIME_NAMES and lowered[1] in _ID_NAMES and lowered[2] in _VALUE_NAMES
    if layout == "long" and not is_long:
        raise ValueError(
            f"{path}, line 1: a long-layout file needs the header time,id,value (accepted names: {_TIME_NAMES}, "
            f"{_ID_NAMES}, {_VALUE_NAMES}), got {header}"
        )
    if len(header) < 2 or any(not name for name in header):
        raise ValueError(
            f"{path}, line 1: the header needs a time column and at least one named series column, got {header}"
        )
    if len(set(header)) != len(header):
        duplicated = sorted({name for name in header if header.count(name) > 1})
        raise ValueError(f"{path}, line 1: duplicate column name(s) {duplicated}")
    if not data:
        raise ValueError(f"{path}: no data rows after the header")
    use_long = is_long if layout == "auto" else layout == "long"
    times, ids, table = (_read_long if use_long else _read_wide)(path, header, data)
    order = np.argsort(times, kind="stable")
    times, table = times[order], table[order]
    if columns is not None:
        columns = [str(c) for c in columns]
        missing = [c for c in columns if c not in ids]
        if missing or not columns:
            raise ValueError(f"{path}: requested series {missing or columns} not in the file; series found: {ids}")
        table = table[:, [ids.index(c) for c in columns]]
        ids = columns
    if table.shape[0] < 2:
        raise ValueError(f"{path}: need at least 2 time rows, got {table.shape[0]}")
    series = table.astype(np.float32)
    return (series, times, list(ids)) if return_labels else series


def _numbered_rows(reader):
    """(line number, row) for every non-blank row."""
    for row in reader:
        if row and any(field.strip() for field in row):
            yield reader.line_num, row


def _read_wide(path, header, data):
    times, values, lines = [], [], []
    for line, row in data:
        where = f"{path}, line {line}"
        if len(row) != len(header):
            raise ValueError(f"{where}: expected {len(header)} fields ({','.join(header)}), got {len(row)}")
        times.append(parse_time_s(row[0], where, header[0]))
        values.append([parse_finite_float(text, where, name) for text, name in zip(row[1:], header[1:])])
        lines.append(line)
    times = np.asarray(times, np.float64)
    _check_unique_times(path, times, lines, header[0])
    return times, header[1:], np.asarray(values, np.float64)


def _check_unique_times(path, times, lines, column):
    order = np.argsort(times, kind="stable")
    repeated = np.flatnonzero(np.diff(times[order]) == 0.0)
    if repeated.size:
        a, b = sorted((lines[order[repeated[0]]], lines[order[repeated[0] + 1]]))
        raise ValueError(f"{path}, lines {a} and {b}, column {column!r}: duplicate time {times[order[repeated[0]]]}")


def _read_long(path, header, data):
    time_column, id_column, value_column = header
    cells: dict[tuple[float, str], tuple[float, int]] = {}
    ids: list[str] = []
    time_text: dict[float, str] = {}  # each time as first written, for messages
    for line, row in data:
        where = f"{path}, line {line}"
        if len(row) != 3:
            raise ValueError(f"{where}: expected 3 fields ({','.join(header)}), got {len(row)}")
        t = parse_time_s(row[0], where, time_column)
        series_id = row[1].strip()
        if not series_id:
            raise ValueError(f"{where}, column {id_column!r}: empty series id")
        value = parse_finite_float(row[2], where, value_column)
        if (t, series_id) in cells:
            raise ValueError(
                f"{where}: duplicate ({time_column}, {id_column}) = ({row[0].strip()}, {series_id}), first on line "
                f"{cells[(t, series_id)][1]}"
            )
        cells[(t, series_id)] = (value, line)
        time_text.setdefault(t, row[0].strip())
        if series_id not in ids:
            ids.append(series_id)
    times = np.asarray(sorted({t for t, _ in cells}), np.float64)
    table = np.empty((times.size, len(ids)), np.float64)
    for i, t in enumerate(times):
        for j, series_id in enumerate(ids):
            if (t, series_id) not in cells:
                raise ValueError(
                    f"{path}: no value for {id_column}={series_id!r} at {time_column}={time_text[t]!r}; every series "
                    "needs a value at every time"
                )
            table[i, j] = cells[(t, series_id)][0]
    return times, ids, table


def simulate_server_traffic(
    key,
    server_xy_m,
    radius_m,
    num_vehicles: int,
    num_slots: int,
    *,
    grid: mobility.RoadGrid | None = None,
    mobility_params: mobility.MobilityParams | None = None,
    slot_s: float = 30.0,
    substeps: int = 4,
    day_slots: int | None = 288,
    min_active_fraction: float = 0.1,
    load_per_vehicle: float = 1.0,
) -> jax.Array:
    """Per-server traffic [num_slots, S] from `vmjax.mobility` trajectories: `load_per_vehicle` x the number
    of active vehicles within `radius_m` (scalar or [S]) of each server `server_xy_m` [S, 2] (metres, map
    frame) in each slot.

    Vehicles drive `grid` (default `mobility.urban_grid()`, 3 km x 3 km) with `mobility_params` (default
    `MobilityParams()`), `slot_s` seconds per slot (spec 002: 30 s). With `day_slots`, demand follows a
    daily cycle: the active fraction a(t) = f + (1 - f) (1 - cos(2 pi t / day_slots)) / 2 rises from
    f = `min_active_fraction` at t = 0 to 1 at half a day, and vehicle v is active while u_v < a(t) (u_v ~
    U(0, 1) drawn once); `day_slots=None` keeps every vehicle active. Default 288 slots per day, one PeMS
    day in the §4.1 time compression (one 5-min sample per slot). Deterministic for a key; jitted once per
    static setting.
    """
    owner = "simulate_server_traffic"
    server_xy_m = np.asarray(server_xy_m, np.float64)
    if server_xy_m.ndim != 2 or server_xy_m.shape[-1] != 2 or server_xy_m.shape[0] < 1:
        raise ValueError(f"{owner}: server_xy_m must have shape [S, 2], got {server_xy_m.shape}")
    validation.check_finite(owner, "server_xy_m", server_xy_m)
    radius_m = np.broadcast_to(np.asarray(radius_m, np.float64), server_xy_m.shape[:1])
    validation.check_positive(owner, "radius_m", radius_m)
    for name, value in (("num_vehicles", num_vehicles), ("num_slots", num_slots), ("substeps", substeps)):
        validation.check_int_at_least(owner, name, value, 1)
    if day_slots is not None:
        validation.check_int_at_least(owner, "day_slots", day_slots, 2)
    validation.check_probability(owner, "min_active_fraction", min_active_fraction)
    validation.check_positive(owner, "slot_s", slot_s)
    validation.check_non_negative(owner, "load_per_vehicle", load_per_vehicle)
    grid = mobility.urban_grid() if grid is None else grid
    mobility_params = mobility.MobilityParams() if mobility_params is None else mobility_params
    return _simulate_traffic(
        key,
        grid,
        mobility_params,
        jnp.asarray(server_xy_m, jnp.float32),
        jnp.asarray(radius_m, jnp.float32),
        jnp.float32(slot_s),
        jnp.float32(min_active_fraction),
        jnp.float32(load_per_vehicle),
        num_vehicles=num_vehicles,
        num_slots=num_slots,
        substeps=substeps,
        day_slots=day_slots,
    )


@functools.partial(jax.jit, static_argnames=("grid", "num_vehicles", "num_slots", "substeps", "day_slots"))
def _simulate_traffic(
    key,
    grid,
    mobility_params,
    server_xy_m,
    radius_m,
    slot_s,
    min_active,
    load_per_vehicle,
    *,
    num_vehicles,
    num_slots,
    substeps,
    day_slots,
):
    k_move, k_active = jax.random.split(key)
    trace = mobility.generate_trajectories(k_move, grid, mobility_params, num_vehicles, num_slots, slot_s, substeps)
    if day_slots is None:
        active = jnp.ones((num_slots, num_vehicles), bool)
    else:
        phase = 2.0 * jnp.pi * jnp.arange(num_slots, dtype=jnp.float32) / day_slots
        fraction = min_active + (1.0 - min_active) * 0.5 * (1.0 - jnp.cos(phase))  # [T]
        active = jax.random.uniform(k_active, (num_vehicles,))[None, :] < fraction[:, None]  # [T, V]

    def count(xs):
        positions_m, present = xs  # [V, 2], [V]
        distance_m = jnp.linalg.norm(positions_m[:, None, :] - server_xy_m[None, :, :], axis=-1)  # [V, S]
        return jnp.sum((distance_m <= radius_m) & present[:, None], axis=0).astype(jnp.float32)

    counts = jax.lax.map(count, (trace.positions_m, active), batch_size=128)  # [T, S]
    return load_per_vehicle * counts


def synthetic_traffic_flow(
    key,
    num_series: int,
    num_slots: int,
    base=1.0,
    day_slots: int = 288,
    ar_coeff: float = 0.8,
    noise_fraction: float = 0.1,
) -> jax.Array:
    """Spec 002 §4.1's offline fallback [REC], [num_slots, num_series] float32:
    c_m(t) = base_m (1 + 0.6 sin(2 pi t / T_day - phi_m) + 0.3 sin(4 pi t / T_day)) + e_m(t), clipped >= 0,
    phi_m ~ U[0, 2 pi) per series, e_m an AR(1) process e(t) = rho e(t-1) + N(0, sigma^2) with rho =
    `ar_coeff` and innovation std sigma = `noise_fraction` * base_m (stationary start). `base` is a scalar
    or [num_series]; T_day = `day_slots` (288: one PeMS day of 5-min samples, one per slot)."""
    owner = "synthetic_traffic_flow"
    for name, value in (("num_series", num_series), ("num_slots", num_slots)):
        validation.check_int_at_least(owner, name, value, 1)
    validation.check_int_at_least(owner, "day_slots", day_slots, 2)
    base = np.broadcast_to(np.asarray(base, np.float64), (num_series,))
    validation.check_non_negative(owner, "base", base)
    if not 0.0 <= ar_coeff < 1.0:
        raise ValueError(f"{owner}.ar_coeff must be in [0, 1), got {ar_coeff!r}")
    validation.check_non_negative(owner, "noise_fraction", noise_fraction)
    return _synthetic_flow(
        key,
        jnp.asarray(base, jnp.float32),
        jnp.float32(ar_coeff),
        jnp.float32(noise_fraction),
        num_series=num_series,
        num_slots=num_slots,
        day_slots=day_slots,
    )


@functools.partial(jax.jit, static_argnames=("num_series", "num_slots", "day_slots"))
def _synthetic_flow(key, base, rho, noise_fraction, *, num_series, num_slots, day_slots):
    k_phase, k_init, k_noise = jax.random.split(key, 3)
    phi = jax.random.uniform(k_phase, (num_series,), maxval=2.0 * jnp.pi)
    angle = 2.0 * jnp.pi * jnp.arange(num_slots, dtype=jnp.float32)[:, None] / day_slots  # [T, 1]
    seasonal = base * (1.0 + 0.6 * jnp.sin(angle - phi) + 0.3 * jnp.sin(2.0 * angle))
    sigma = noise_fraction * base
    e0 = sigma / jnp.sqrt(1.0 - rho**2) * jax.random.normal(k_init, (num_series,))
    innovations = sigma * jax.random.normal(k_noise, (num_slots, num_series))

    def step(e, innovation):
        e = rho * e + innovation
        return e, e

    _, noise = jax.lax.scan(step, e0, innovations[1:])
    noise = jnp.concatenate([e0[None], noise], axis=0)
    return jnp.maximum(seasonal + noise, 0.0)
