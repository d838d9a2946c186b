"""Trace-bank files: a `Trace` bank in one `.npz`, written by `vmjax traces sumo` and read by every scenario through
its env config's `trace_bank` (`--env.trace_bank bank.npz`, `vmjax.make(env_id, trace_bank="bank.npz")`).

    save_trace_bank("bank.npz", tracks, slot_s=1.0, box_m=(0, 0, 800, 800), metadata={...})
    bank = read_trace_bank("bank.npz")                        # BankFile: trace, slot_s, box_m, metadata
    trace = load_trace_bank("bank.npz", slot_s=30.0, map_extent_m=(5000, 5000), min_steps=101, min_vehicles=10)
    window = draw_bank_window(key, trace, num_vehicles=10, num_steps=101)   # inside jit: rows + a start slot

Arrays: `positions_m` [T, V, 2] (required), `valid` [T, V], `headings_rad` [T, V], `speeds_mps` [T, V],
`vehicle_of_track` [T, V] (which source vehicle a packed track carries in each slot, -1 none), and the scalars
`slot_s`, `start_s` (seconds of day of slot 0), `box_m` [4] (xmin, ymin, xmax, ymax of the map the positions are
in), `roads_m` [K, 2, 2] (the road network's segments in the positions' frame, for the viewer), `metadata` (a JSON
string). A run's `trace_bank.npz` (TwinSplit: `positions_m`, `valid` only) is a bank too:
without `slot_s` it is taken to be at the env's slot, without `box_m` it is used in place.

Fitting a bank to an env (`load_trace_bank`): resampled to the env's slot by linear interpolation (a slot between
two samples of different vehicles of a packed track is not valid), then, when the file has a `box_m`, translated so
that the centre of its box is the centre of the env's map (no scaling: distances and speeds stay SUMO's). A net
smaller than the map covers its centre; one larger spills over its edges (the env's RSUs still serve by
distance).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from io import BytesIO

import jax
import jax.numpy as jnp
import numpy as np

from vmjax.core import fastrand
from vmjax.core.io import atomic_write_bytes
from vmjax.mobility.trace import Trace

BANK_FORMAT = "vmjax-trace-bank-1"


@dataclasses.dataclass(frozen=True)
class BankFile:
    """A trace-bank file as stored: the trace at `slot_s` (None: unknown, an env-slot bank), its map box (None:
    none stored), slot 0's seconds of day, `vehicle_of_track` [T, V] (or None), the metadata dict and the road
    segments [K, 2, 2] (or None)."""

    trace: Trace
    slot_s: float | None
    box_m: tuple[float, float, float, float] | None
    start_s: float
    vehicle_of_track: np.ndarray | None
    metadata: dict
    roads_m: np.ndarray | None = None


def save_trace_bank(
    path,
    trace: Trace,
    slot_s: float,
    box_m=None,
    start_s: float = 0.0,
    vehicle_of_track=None,
    metadata=None,
    roads_m=None,
) -> None:
    """Write a bank file atomically (temp file + os.replace, `vmjax.core.io`)."""
    arrays = {
        "format": np.asarray(BANK_FORMAT),
        "positions_m": np.asarray(trace.positions_m, np.float32),
        "slot_s": np.asarray(float(slot_s)),
        "start_s": np.asarray(float(start_s)),
        "metadata": np.asarray(json.dumps(metadata or {}, sort_keys=True)),
    }
    for name in ("valid", "headings_rad", "speeds_mps"):
        if getattr(trace, name) is not None:
            arrays[name] = np.asarray(getattr(trace, name))
    if box_m is not None:
        arrays["box_m"] = np.asarray(box_m, np.float64)
    if vehicle_of_track is not None:
        arrays["vehicle_of_track"] = np.asarray(vehicle_of_track, np.int32)
    if roads_m is not None:
        arrays["roads_m"] = np.asarray(roads_m, np.float32).reshape(-1, 2, 2)
    buffer = BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_trace_bank(path) -> BankFile:
    """Read a bank file; ValueError naming the file and the array for anything that is not a bank."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: trace bank not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: not a trace bank .npz ({error})") from None
    if "positions_m" not in arrays:
        raise ValueError(f"{path}: not a trace bank (no 'positions_m' array; arrays: {sorted(arrays)})")
    try:
        trace = Trace.create(
            positions_m=arrays["positions_m"],
            headings_rad=arrays.get("headings_rad"),
            valid=arrays.get("valid"),
            speeds_mps=arrays.get("speeds_mps"),
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    slot_s = float(arrays["slot_s"]) if "slot_s" in arrays else None
    if slot_s is not None and not (math.isfinite(slot_s) and slot_s > 0):
        raise ValueError(f"{path}: slot_s must be a finite number > 0, got {slot_s}")
    box_m = None
    if "box_m" in arrays:
        box_m = tuple(float(v) for v in np.asarray(arrays["box_m"]).reshape(-1))
        if len(box_m) != 4 or not all(math.isfinite(v) for v in box_m):
            raise ValueError(f"{path}: box_m must be 4 finite numbers (xmin, ymin, xmax, ymax), got {box_m}")
    vehicle_of_track = arrays.get("vehicle_of_track")
    if vehicle_of_track is not None and vehicle_of_track.shape != trace.positions_m.shape[:2]:
        raise ValueError(f"{path}: vehicle_of_track must have shape {trace.positions_m.shape[:2]}")
    try:
        metadata = json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
    except ValueError as error:
        raise ValueError(f"{path}: metadata is not JSON ({error})") from None
    roads_m = arrays.get("roads_m")
    if roads_m is not None and (roads_m.ndim != 3 or roads_m.shape[1:] != (2, 2) or not np.isfinite(roads_m).all()):
        raise ValueError(f"{path}: roads_m must be finite segments of shape [K, 2, 2], got shape {roads_m.shape}")
    start_s = float(arrays.get("start_s", 0.0))
    return BankFile(trace, slot_s, box_m, start_s, vehicle_of_track, metadata, roads_m)


def resample_bank(bank: BankFile, slot_s: float) -> Trace:
    """The bank's trace at `slot_s` (linear interpolation in time, slot 0 kept): positions and speeds interpolated,
    headings through their unit vectors; valid where both neighbouring samples are valid and (for packed tracks)
    carry the same vehicle. Unchanged when the bank has no slot_s or the same one."""
    if bank.slot_s is None or math.isclose(bank.slot_s, slot_s, rel_tol=1e-9):
        return bank.trace
    trace = bank.trace
    num_steps = trace.positions_m.shape[0]
    count = int(math.floor((num_steps - 1) * bank.slot_s / slot_s + 1e-9)) + 1
    u = np.arange(count) * (slot_s / bank.slot_s)  # fractional source index
    lo = np.minimum(np.floor(u + 1e-9).astype(np.int64), num_steps - 1)
    hi = np.minimum(lo + 1, num_steps - 1)
    w = np.clip(u - lo, 0.0, 1.0)
    mix = lambda a: (
        (1.0 - w).reshape((-1,) + (1,) * (a.ndim - 1)) * a[lo] + w.reshape((-1,) + (1,) * (a.ndim - 1)) * a[hi]
    )
    positions = mix(np.asarray(trace.positions_m, np.float64))
    exact = w < 1e-9  # on a source sample: only its own validity counts
    valid = None
    if trace.valid is not None:
        v = np.asarray(trace.valid, bool)
        valid = v[lo] & (exact[:, None] | v[hi])
        if bank.vehicle_of_track is not None:
            valid &= exact[:, None] | (bank.vehicle_of_track[lo] == bank.vehicle_of_track[hi])
    headings = None
    if trace.headings_rad is not None:
        h = np.asarray(trace.headings_rad, np.float64)
        headings = np.arctan2(mix(np.sin(h)), mix(np.cos(h)))
    speeds = None if trace.speeds_mps is None else mix(np.asarray(trace.speeds_mps, np.float64))
    return Trace.create(positions.astype(np.float32), headings, valid, speeds)


def centring_shift_m(box_m, map_extent_m) -> np.ndarray:
    """The translation [2] (m) that moves the centre of `box_m` (xmin, ymin, xmax, ymax) onto the centre of the map
    [0, W] x [0, H] (`map_extent_m` = (W, H))."""
    xmin, ymin, xmax, ymax = box_m
    return 0.5 * np.asarray(map_extent_m, np.float64) - 0.5 * np.asarray([xmin + xmax, ymin + ymax])


def centre_on_map(trace: Trace, box_m, map_extent_m) -> Trace:
    """`trace` translated so that the centre of `box_m` (xmin, ymin, xmax, ymax) lands on the centre of the map
    [0, W] x [0, H] (`map_extent_m` = (W, H)); no scaling."""
    shift = centring_shift_m(box_m, map_extent_m)
    return trace.replace(positions_m=jnp.asarray(np.asarray(trace.positions_m, np.float64) + shift, jnp.float32))


def bank_roads_m(path, map_extent_m) -> np.ndarray | None:
    """The bank's road segments [K, 2, 2] moved as `load_trace_bank` moves its trace onto a map of `map_extent_m`
    (W, H); None when the bank stores no roads (or no box to centre them by). Cached per (file, modification time)
    like `load_trace_bank`: the viewer asks for every frame."""
    path = os.fspath(path)
    try:
        stat = os.stat(path)
    except OSError:
        raise ValueError(f"{path}: trace bank not found") from None
    roads, box_m = _roads_cached(os.path.realpath(path), (stat.st_mtime_ns, stat.st_size))
    if roads is None or box_m is None:
        return None
    return (roads + centring_shift_m(box_m, map_extent_m)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _roads_cached(path: str, stamp: tuple) -> tuple[np.ndarray | None, tuple | None]:
    bank = read_trace_bank(path)
    return bank.roads_m, bank.box_m


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, stamp: tuple, slot_s: float, map_extent_m: tuple | None) -> tuple[Trace, float | None]:
    bank = read_trace_bank(path)
    trace = resample_bank(bank, slot_s)
    if bank.box_m is not None and map_extent_m is not None:
        trace = centre_on_map(trace, bank.box_m, map_extent_m)
    return trace, bank.slot_s


def config_trace_bank(
    path: str, slot_s: float, map_extent_m, min_steps: int, min_vehicles: int, owner: str
) -> Trace | None:
    """An env config's `trace_bank` field fitted to the env (`load_trace_bank`); None when the field is "" (the
    env's built-in mobility)."""
    if not path:
        return None
    return load_trace_bank(path, slot_s, map_extent_m, min_steps, min_vehicles, owner=owner)


def load_trace_bank(
    path, slot_s: float, map_extent_m=None, min_steps: int = 1, min_vehicles: int = 1, owner: str = "trace_bank"
) -> Trace:
    """A bank file fitted to an env (see the module doc): at the env's `slot_s`, centred on its map, with at least
    `min_steps` slots and `min_vehicles` tracks (ValueError naming `owner`, the file and what to change). Cached
    per (file, modification time, slot, map)."""
    path = os.fspath(path)
    try:
        stat = os.stat(path)
    except OSError:
        raise ValueError(f"{owner}: {path}: trace bank not found") from None
    extent = None if map_extent_m is None else tuple(float(v) for v in map_extent_m)
    trace, bank_slot_s = _load_cached(os.path.realpath(path), (stat.st_mtime_ns, stat.st_size), float(slot_s), extent)
    steps, vehicles = trace.positions_m.shape[:2]
    if steps < min_steps:
        span = f" ({(steps - 1) * slot_s / 3600.0:.2f} h)"
        raise ValueError(
            f"{owner}: {path} has {steps} slots of {slot_s} s{span}, the env needs >= {min_steps}: build a longer "
            f"bank (vmjax traces sumo --hours)"
        )
    if vehicles < min_vehicles:
        raise ValueError(
            f"{owner}: {path} has {vehicles} tracks, the env needs >= {min_vehicles}: build a bank with more "
            "vehicles (vmjax traces sumo --vehicles)"
        )
    return trace


def draw_bank_window(key, bank: Trace, num_vehicles: int, num_steps: int) -> Trace:
    """`num_vehicles` distinct tracks of `bank` (uniformly drawn) over `num_steps` slots from a uniformly drawn
    common start slot (jittable; the bank's shape is static). Keeps `valid` (all True when the bank has none)."""
    k_rows, k_start = jax.random.split(key)
    steps, vehicles = bank.positions_m.shape[:2]
    rows = jnp.argsort(fastrand.uniform(k_rows, (vehicles,)))[:num_vehicles]
    start = fastrand.randint(k_start, (), 0, steps - num_steps + 1)
    window = lambda a: jax.lax.dynamic_slice_in_dim(a[:, rows], start, num_steps, axis=0)
    valid = jnp.ones((num_steps, num_vehicles), bool) if bank.valid is None else window(bank.valid)
    return Trace(positions_m=window(bank.positions_m), valid=valid)


__all__ = [
    "BANK_FORMAT",
    "BankFile",
    "bank_roads_m",
    "centre_on_map",
    "draw_bank_window",
    "load_trace_bank",
    "read_trace_bank",
    "resample_bank",
    "save_trace_bank",
]
