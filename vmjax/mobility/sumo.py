"""SUMO road networks and vehicle traces (issue 23): FCD files into `Trace`s, `.net.xml` files into `RoadGraph`s.

    fcd = read_fcd("run.fcd.xml.gz")                          # streamed; vehicles in order of first appearance
    trace = fcd_to_trace(fcd, slot_s=30.0)                    # [T, V, 2] at slot boundaries, present masks
    tracks, vehicle_of_track = pack_tracks(trace)             # fewer, denser columns for fixed-size envs
    net = read_net("run.net.xml")                             # net.graph: a directed RoadGraph (junctions, edges)
    rsus = place_rsus(net.junction_xy_m, 6, visits=junction_visits(net, trace))  # the 6 busiest junctions

Both readers stream the XML with expat (the parser under `xml.etree.ElementTree.iterparse`), one element at a
time, keeping only the numbers they need: a file of hundreds of MB is never held whole. Using expat directly rather
than iterparse gives the current line for every error, not only for malformed XML: a malformed or truncated
file, a missing or non-numeric attribute, a vehicle twice in one timestep or timesteps whose times do not
increase each raise a ValueError naming the file and the line. Everything here needs only NumPy: the SUMO
binaries (`vmjax.mobility.sumo_build`, `vmjax traces sumo`) are needed only to make new files.

Frames. SUMO's x/y are metres in the net's own projected frame (netgenerate nets start at 0, 0; imported maps are
shifted by the net's `netOffset`), which is the metric frame the envs use. With `origin_lonlat=(lon, lat)`,
`read_fcd` reads the x/y of an FCD file written with sumo's `--fcd-output.geo` as longitude/latitude and projects
them with `vmjax.net.geo.lonlat_to_xy_m` (equirectangular) around that origin; `geo_origin_lonlat(net)` gives the
south-west corner of a geo-referenced net, and a net without geo reference is an error there.
"""

from __future__ import annotations

import dataclasses
import gzip
import heapq
import math
import os
import xml.parsers.expat
from array import array

import numpy as np

from vmjax.mobility.road_graph import RoadGraph
from vmjax.mobility.trace import Trace
from vmjax.net.geo import lonlat_to_xy_m

INSTALL_HINT = "pip install 'vmjax[sumo]'"
"""How to get the SUMO binaries (the `eclipse-sumo` and `sumolib` wheels); named by every missing-SUMO error."""


# ====================================================================== streaming XML
class _Stream:
    """One expat pass over a (possibly gzipped) XML file: `run(start)` calls `start(tag, attrs, line)` per element;
    errors raised there, malformed or truncated XML and corrupt gzip become ValueError naming the file and line."""

    def __init__(self, path, what: str):
        self.path = os.fspath(path)
        self.what = what
        if not os.path.isfile(self.path):
            raise ValueError(f"{self.path}: {what} file not found")

    def run(self, start, end=None) -> None:
        parser = xml.parsers.expat.ParserCreate()
        parser.buffer_text = True
        parser.StartElementHandler = lambda tag, attrs: start(tag, attrs, parser.CurrentLineNumber)
        if end is not None:
            parser.EndElementHandler = lambda tag: end(tag, parser.CurrentLineNumber)
        opener = gzip.open if self.path.endswith(".gz") else open
        try:
            with opener(self.path, "rb") as handle:
                parser.ParseFile(handle)
        except xml.parsers.expat.ExpatError as error:
            message = xml.parsers.expat.ErrorString(error.code)
            hint = " (truncated file?)" if error.code in _TRUNCATION_CODES else ""
            raise ValueError(
                f"{self.path}, line {error.lineno}, column {error.offset + 1}: malformed {self.what} XML "
                f"({message}){hint}"
            ) from None
        except (EOFError, gzip.BadGzipFile, OSError) as error:
            raise ValueError(f"{self.path}: truncated or corrupt {self.what} file ({error})") from None

    def number(self, attrs: dict, name: str, tag: str, line: int, default=None) -> float:
        """A finite float attribute; ValueError naming the file, line, element and attribute otherwise."""
        text = attrs.get(name)
        if text is None and default is not None:
            return default
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            ident = f" id={attrs['id']!r}" if "id" in attrs else ""
            got = "no such attribute" if text is None else repr(text)
            raise ValueError(
                f"{self.path}, line {line}: <{tag}{ident}> needs a finite number in attribute {name!r}, got {got}"
            )
        return value


_TRUNCATION_CODES = {
    xml.parsers.expat.errors.codes[xml.parsers.expat.errors.XML_ERROR_NO_ELEMENTS],
    xml.parsers.expat.errors.codes[xml.parsers.expat.errors.XML_ERROR_UNCLOSED_TOKEN],
    xml.parsers.expat.errors.codes[xml.parsers.expat.errors.XML_ERROR_PARTIAL_CHAR],
}


# ====================================================================== FCD
@dataclasses.dataclass(frozen=True)
class FcdData:
    """Per-vehicle samples of a SUMO FCD file, vehicles in order of first appearance.

    vehicle_ids: SUMO vehicle ids.
    time_s, xy_m, speed_mps, angle_deg: one array per vehicle ([K], [K, 2], [K], [K]), times increasing;
      speed and angle are NaN where the file lacks them; angle is SUMO's (degrees clockwise from north).
    num_timesteps: <timestep> elements read; begin_s / end_s: their first and last time.
    """

    path: str
    vehicle_ids: tuple[str, ...]
    time_s: tuple[np.ndarray, ...]
    xy_m: tuple[np.ndarray, ...]
    speed_mps: tuple[np.ndarray, ...]
    angle_deg: tuple[np.ndarray, ...]
    num_timesteps: int
    begin_s: float
    end_s: float


def read_fcd(path, vehicle_ids=None, origin_lonlat=None, begin_s=None, end_s=None) -> FcdData:
    """Stream a SUMO FCD file (`<fcd-export><timestep time=..><vehicle id x y [speed] [angle]/>`, `.xml` or
    `.xml.gz`; SUMO docs, Simulation/Output/FCDOutput) into per-vehicle arrays.

    - `vehicle_ids`: keep only these vehicles; an id that never appears is a ValueError listing the unknown ones.
    - `origin_lonlat=(lon, lat)`: x/y hold longitude/latitude (sumo `--fcd-output.geo`), projected around it.
    - `begin_s` / `end_s`: keep only timesteps in [begin_s, end_s].
    `<person>` and `<container>` elements are skipped. Timestep times must increase strictly.
    """
    stream = _Stream(path, "FCD")
    keep = None if vehicle_ids is None else {str(v) for v in vehicle_ids}
    if keep is not None and not keep:
        raise ValueError(f"read_fcd: vehicle_ids is empty (file {stream.path})")
    index: dict[str, int] = {}
    columns: list[tuple[array, array, array, array, array]] = []
    state = {"root": None, "time": None, "time_line": 0, "in_window": False, "count": 0, "first": None}
    seen_now: set[str] = set()

    def start(tag, attrs, line):
        if state["root"] is None:
            state["root"] = tag
            if tag != "fcd-export":
                raise ValueError(f"{stream.path}, line {line}: not an FCD file (root <{tag}>, expected <fcd-export>)")
            return
        if tag == "timestep":
            t = stream.number(attrs, "time", tag, line)
            if state["time"] is not None and t <= state["time"]:
                raise ValueError(
                    f"{stream.path}, line {line}: timestep times must increase, got time={t} after "
                    f"time={state['time']} (line {state['time_line']})"
                )
            state.update(time=t, time_line=line, count=state["count"] + 1)
            state["in_window"] = (begin_s is None or t >= begin_s) and (end_s is None or t <= end_s)
            if state["first"] is None:
                state["first"] = t
            seen_now.clear()
        elif tag == "vehicle":
            if state["time"] is None:
                raise ValueError(f"{stream.path}, line {line}: <vehicle> outside a <timestep>")
            vehicle = attrs.get("id")
            if not vehicle:
                raise ValueError(f"{stream.path}, line {line}: <vehicle> without an id")
            if vehicle in seen_now:
                raise ValueError(
                    f"{stream.path}, line {line}: vehicle {vehicle!r} appears twice in the timestep at "
                    f"time={state['time']} (line {state['time_line']})"
                )
            seen_now.add(vehicle)
            if not state["in_window"] or (keep is not None and vehicle not in keep):
                return
            x = stream.number(attrs, "x", tag, line)
            y = stream.number(attrs, "y", tag, line)
            if origin_lonlat is not None and not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
                raise ValueError(
                    f"{stream.path}, line {line}: vehicle {vehicle!r} has x={x}, y={y}, not longitude/latitude "
                    "degrees: lon/lat FCD needs sumo --fcd-output.geo (or read it without origin_lonlat)"
                )
            speed = stream.number(attrs, "speed", tag, line, default=math.nan)
            angle = stream.number(attrs, "angle", tag, line, default=math.nan)
            if vehicle not in index:
                index[vehicle] = len(columns)
                columns.append((array("d"), array("d"), array("d"), array("d"), array("d")))
            for column, value in zip(columns[index[vehicle]], (state["time"], x, y, speed, angle)):
                column.append(value)

    stream.run(start)
    if state["root"] is None:
        raise ValueError(f"{stream.path}: empty FCD file")
    if keep is not None:
        unknown = sorted(keep - set(index))
        if unknown:
            raise ValueError(
                f"{stream.path}: unknown vehicle id(s) {unknown[:10]}{' ...' if len(unknown) > 10 else ''}: not in the "
                f"file{' within the time window' if begin_s is not None or end_s is not None else ''} "
                f"({len(index)} of the requested ids found)"
            )
    if not index:
        raise ValueError(f"{stream.path}: no vehicle samples (in {state['count']} timesteps)")
    ids = tuple(index)
    times, xys, speeds, angles = [], [], [], []
    for vehicle in ids:
        t, x, y, speed, angle = (np.frombuffer(c, np.float64) for c in columns[index[vehicle]])
        xy = np.stack([x, y], axis=-1)
        if origin_lonlat is not None:
            xy = np.stack(lonlat_to_xy_m(x, y, float(origin_lonlat[0]), float(origin_lonlat[1])), axis=-1)
        times.append(t)
        xys.append(xy)
        speeds.append(speed)
        angles.append(angle)
    return FcdData(
        path=stream.path,
        vehicle_ids=ids,
        time_s=tuple(times),
        xy_m=tuple(xys),
        speed_mps=tuple(speeds),
        angle_deg=tuple(angles),
        num_timesteps=state["count"],
        begin_s=float(state["first"]),
        end_s=float(state["time"]),
    )


def sumo_angle_to_heading_rad(angle_deg):
    """SUMO's angle (degrees clockwise from north, FCDOutput docs) -> heading atan2(dy, dx) in radians (east = 0,
    counter-clockwise), wrapped to (-pi, pi]."""
    heading = np.deg2rad(90.0 - np.asarray(angle_deg, np.float64))
    return np.arctan2(np.sin(heading), np.cos(heading))


def resample_vehicle(time_s, values, slot_times_s):
    """Linear interpolation of one vehicle's samples `values` [K, ...] (times [K], increasing) at `slot_times_s`
    [T]; before its first and after its last sample the nearest sample is held (np.interp)."""
    values = np.asarray(values, np.float64)
    flat = values.reshape(len(time_s), -1)
    out = np.stack([np.interp(slot_times_s, time_s, flat[:, i]) for i in range(flat.shape[1])], axis=-1)
    return out.reshape((len(slot_times_s),) + values.shape[1:])


def fcd_to_trace(fcd: FcdData, slot_s: float, start_s: float | None = None, num_steps: int | None = None) -> Trace:
    """Resample FCD samples onto slot boundaries t_k = start_s + k slot_s, k = 0 .. num_steps - 1 (defaults: the
    file's first timestep, enough slots to reach its last).

    Per vehicle (one column each, FCD order): positions and speeds by linear interpolation between the two samples
    around t_k; the heading is the direction of the interpolated unit vector of SUMO's angle (or of the
    displacement when the file has no angle); `valid` is True where t_k lies within the vehicle's first and last
    sample (it entered at or before t_k and had not left), else the vehicle holds its nearest sample. Speeds
    missing from the file are the displacement per slot.
    """
    if not slot_s > 0:
        raise ValueError(f"fcd_to_trace: slot_s must be > 0, got {slot_s}")
    start_s = fcd.begin_s if start_s is None else float(start_s)
    if num_steps is None:
        num_steps = int(math.floor((fcd.end_s - start_s) / slot_s + 1e-9)) + 1
    if num_steps < 1:
        raise ValueError(f"fcd_to_trace: num_steps must be >= 1, got {num_steps} (start_s={start_s}, {fcd.path})")
    slot_times_s = start_s + float(slot_s) * np.arange(num_steps)
    tolerance_s = 1e-6 * float(slot_s)
    v = len(fcd.vehicle_ids)
    positions = np.empty((num_steps, v, 2))
    speeds = np.empty((num_steps, v))
    headings = np.empty((num_steps, v))
    valid = np.empty((num_steps, v), bool)
    for i, (t, xy, speed, angle) in enumerate(zip(fcd.time_s, fcd.xy_m, fcd.speed_mps, fcd.angle_deg)):
        positions[:, i] = resample_vehicle(t, xy, slot_times_s)
        valid[:, i] = (slot_times_s >= t[0] - tolerance_s) & (slot_times_s <= t[-1] + tolerance_s)
        if np.all(np.isfinite(angle)):
            h = sumo_angle_to_heading_rad(angle)
            unit = resample_vehicle(t, np.stack([np.cos(h), np.sin(h)], axis=-1), slot_times_s)
            headings[:, i] = np.arctan2(unit[:, 1], unit[:, 0])
        else:
            headings[:, i] = _displacement_headings(positions[:, i])
        if np.all(np.isfinite(speed)):
            speeds[:, i] = resample_vehicle(t, speed, slot_times_s)
        else:
            step = np.linalg.norm(np.diff(positions[:, i], axis=0, prepend=positions[:1, i]), axis=-1)
            speeds[:, i] = step / slot_s
    return Trace.create(
        positions_m=positions.astype(np.float32),
        headings_rad=headings.astype(np.float32),
        valid=valid,
        speeds_mps=speeds.astype(np.float32),
    )


def _displacement_headings(positions_m) -> np.ndarray:
    """Heading [T] of the displacement into each slot of one vehicle [T, 2]; the first slot takes the first move."""
    step = np.diff(positions_m, axis=0, prepend=positions_m[:1])
    if len(positions_m) > 1:
        step[0] = positions_m[1] - positions_m[0]
    return np.arctan2(step[:, 1], step[:, 0])


def pack_tracks(trace: Trace, num_tracks: int | None = None) -> tuple[Trace, np.ndarray]:
    """Pack vehicles that come and go into fewer, denser columns ("tracks"): a track carries one vehicle after
    another, as an env's fixed vehicle slot does when one vehicle leaves and the next one enters.

    Interval partitioning (greedy by entry slot, each vehicle to the track freed earliest; minimal: as many tracks
    as vehicles present at once at the busiest slot). A vehicle's presence is its first to last valid slot. Between
    two vehicles a track holds the last one's final position with `valid` False (before its first vehicle: that
    vehicle's first position). `num_tracks` keeps the tracks with the most valid slots (ties: lower index), in
    their order. Returns (tracks [T, K] Trace, vehicle_of_track [T, K] int32: the `trace` column in each slot,
    -1 where none).
    """
    valid = np.ones(trace.positions_m.shape[:2], bool) if trace.valid is None else np.asarray(trace.valid, bool)
    num_steps, num_vehicles = valid.shape
    present = np.flatnonzero(valid.any(axis=0))
    first = valid.argmax(axis=0)
    last = num_steps - 1 - valid[::-1].argmax(axis=0)
    free: list[tuple[int, int]] = []  # (last occupied slot, track)
    assignment = []  # (vehicle, track)
    count = 0
    for vehicle in sorted(present, key=lambda v: (first[v], v)):
        if free and free[0][0] < first[vehicle]:
            _, track = heapq.heappop(free)
        else:
            track, count = count, count + 1
        assignment.append((vehicle, track))
        heapq.heappush(free, (int(last[vehicle]), track))
    vehicle_of_track = np.full((num_steps, count), -1, np.int32)
    for vehicle, track in assignment:
        vehicle_of_track[first[vehicle] : last[vehicle] + 1, track] = vehicle
    if num_tracks is not None:
        if num_tracks < 1:
            raise ValueError(f"pack_tracks: num_tracks must be >= 1, got {num_tracks}")
        busiest = np.argsort(-(vehicle_of_track >= 0).sum(axis=0), kind="stable")[:num_tracks]
        vehicle_of_track = vehicle_of_track[:, np.sort(busiest)]
    source = _held_source(vehicle_of_track)
    occupied = vehicle_of_track >= 0
    speeds = None if trace.speeds_mps is None else np.where(occupied, _take_columns(trace.speeds_mps, source), 0.0)
    tracks = Trace.create(
        positions_m=_take_columns(trace.positions_m, source),
        headings_rad=None if trace.headings_rad is None else _take_columns(trace.headings_rad, source),
        valid=occupied,
        speeds_mps=speeds,
    )
    return tracks, vehicle_of_track


def _take_columns(values, source: np.ndarray) -> np.ndarray:
    """values[t, source[t, k], ...] for a [T, V, ...] array and column indices [T, K]."""
    values = np.asarray(values)
    index = source.reshape(source.shape + (1,) * (values.ndim - 2))
    return np.take_along_axis(values, index, axis=1)


def _held_source(vehicle_of_track: np.ndarray) -> np.ndarray:
    """The column [T, K] each track copies in each slot: its vehicle; in a gap the vehicle before it (forward
    fill), before its first vehicle that vehicle (backward fill); 0 for a track without any."""
    num_steps = vehicle_of_track.shape[0]
    slot = np.where(vehicle_of_track >= 0, np.arange(num_steps)[:, None], -1)
    forward = np.maximum.accumulate(slot, axis=0)
    backward_slot = np.where(vehicle_of_track >= 0, np.arange(num_steps)[:, None], num_steps)
    backward = np.minimum.accumulate(backward_slot[::-1], axis=0)[::-1]
    pick = np.where(forward >= 0, forward, np.minimum(backward, num_steps - 1))
    source = np.take_along_axis(vehicle_of_track, pick, axis=0)
    return np.maximum(source, 0)


# ====================================================================== net
@dataclasses.dataclass(frozen=True)
class SumoNet:
    """A SUMO network as a directed `RoadGraph` plus what the graph does not hold.

    graph: nodes = the net's non-internal junctions (`junction_ids`), edges = its normal edges (`edge_ids`,
      internal edges skipped), edge length = mean lane length (m).
    edge_speed_mps [M]: the fastest lane's speed limit; edge_lanes [M]: lane count.
    net_offset_m, conv_boundary_m (xmin, ymin, xmax, ymax), orig_boundary (lon/lat for geo-referenced nets),
    proj_parameter ("!" = no geo reference): the net's <location> element.
    """

    path: str
    graph: RoadGraph
    junction_ids: tuple[str, ...]
    edge_ids: tuple[str, ...]
    edge_speed_mps: np.ndarray
    edge_lanes: np.ndarray
    net_offset_m: tuple[float, float]
    conv_boundary_m: tuple[float, float, float, float]
    orig_boundary: tuple[float, float, float, float]
    proj_parameter: str

    @property
    def junction_xy_m(self) -> np.ndarray:
        return np.asarray(self.graph.node_xy_m, np.float64)

    @property
    def has_geo_reference(self) -> bool:
        return self.proj_parameter not in ("", "!")

    @property
    def extent_m(self) -> tuple[float, float]:
        """Width and height of the net's boundary (convBoundary)."""
        xmin, ymin, xmax, ymax = self.conv_boundary_m
        return xmax - xmin, ymax - ymin


def _floats(stream: _Stream, text, count: int, what: str, line: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in (text or "").split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"{stream.path}, line {line}: <location> {what} must be {count} comma-separated numbers, got {text!r}"
        )
    return values


def read_net(path) -> SumoNet:
    """Stream a SUMO `.net.xml` (`.gz` too) into a `SumoNet` (SUMO docs, Networks/SUMO_Road_Networks): junctions
    (`<junction id x y type>`, type "internal" skipped), normal edges (`<edge id from to>` with their `<lane length
    speed>`; `function` internal/crossing/walkingarea skipped; self-loops skipped) and the `<location>`. ValueError
    names the file and line of malformed XML, missing numbers, or an edge to an unknown junction."""
    stream = _Stream(path, "SUMO net")
    junctions: dict[str, tuple[float, float]] = {}
    edges: list[dict] = []
    location: dict = {}
    state = {"root": None, "edge": None}

    def start(tag, attrs, line):
        if state["root"] is None:
            state["root"] = tag
            if tag != "net":
                raise ValueError(f"{stream.path}, line {line}: not a SUMO net (root <{tag}>, expected <net>)")
            return
        if tag == "location":
            location.update(attrs, line=line)
        elif tag == "junction" and attrs.get("type") != "internal":
            junctions[attrs.get("id", "")] = (
                stream.number(attrs, "x", tag, line),
                stream.number(attrs, "y", tag, line),
            )
        elif tag == "edge":
            function = attrs.get("function", "normal")
            state["edge"] = None
            if function == "normal":
                for name in ("from", "to"):
                    if not attrs.get(name):
                        raise ValueError(f"{stream.path}, line {line}: <edge id={attrs.get('id')!r}> has no {name!r}")
                state["edge"] = dict(
                    id=attrs.get("id", ""), src=attrs["from"], dst=attrs["to"], line=line, lengths=[], speeds=[]
                )
                edges.append(state["edge"])
        elif tag == "lane" and state["edge"] is not None:
            state["edge"]["lengths"].append(stream.number(attrs, "length", tag, line))
            state["edge"]["speeds"].append(stream.number(attrs, "speed", tag, line))

    def end(tag, line):
        if tag == "edge":
            state["edge"] = None

    stream.run(start, end)
    if state["root"] is None:
        raise ValueError(f"{stream.path}: empty SUMO net file")
    if not junctions:
        raise ValueError(f"{stream.path}: no junctions")
    junction_ids = tuple(junctions)
    node = {j: i for i, j in enumerate(junction_ids)}
    kept = []
    for edge in edges:
        for name in ("src", "dst"):
            if edge[name] not in node:
                raise ValueError(
                    f"{stream.path}, line {edge['line']}: edge {edge['id']!r} refers to unknown junction {edge[name]!r}"
                )
        if not edge["lengths"]:
            raise ValueError(f"{stream.path}, line {edge['line']}: edge {edge['id']!r} has no <lane>")
        if edge["src"] != edge["dst"]:
            kept.append(edge)
    if not kept:
        raise ValueError(f"{stream.path}: no normal edges between two junctions")
    line = location.get("line", 0)
    net_offset = _floats(stream, location.get("netOffset", "0,0"), 2, "netOffset", line)
    conv = _floats(stream, location.get("convBoundary", "0,0,0,0"), 4, "convBoundary", line)
    orig = _floats(stream, location.get("origBoundary", "0,0,0,0"), 4, "origBoundary", line)
    xy = np.asarray([junctions[j] for j in junction_ids], np.float64)
    pairs = np.asarray([(node[e["src"]], node[e["dst"]]) for e in kept], np.int64)
    lengths = np.asarray([np.mean(e["lengths"]) for e in kept])
    graph = RoadGraph.from_edges(xy, pairs, np.maximum(lengths, 1e-3), directed=True)
    return SumoNet(
        path=stream.path,
        graph=graph,
        junction_ids=junction_ids,
        edge_ids=tuple(e["id"] for e in kept),
        edge_speed_mps=np.asarray([max(e["speeds"]) for e in kept]),
        edge_lanes=np.asarray([len(e["lengths"]) for e in kept], np.int32),
        net_offset_m=net_offset,
        conv_boundary_m=conv,
        orig_boundary=orig,
        proj_parameter=location.get("projParameter", "!"),
    )


def geo_origin_lonlat(net: SumoNet) -> tuple[float, float]:
    """(lon, lat) of a geo-referenced net's south-west corner (its origBoundary's minimum), the origin for
    `read_fcd(..., origin_lonlat=...)`; ValueError naming the file when the net has no geo reference."""
    if not net.has_geo_reference:
        raise ValueError(
            f"{net.path}: the net has no geo reference (<location projParameter={net.proj_parameter!r}>), so "
            "lon/lat positions cannot be given; use SUMO's x/y (the default), or a net imported from OpenStreetMap "
            "(netconvert --osm-files)"
        )
    lon, lat = net.orig_boundary[0], net.orig_boundary[1]
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"{net.path}: origBoundary {net.orig_boundary} is not in lon/lat degrees")
    return lon, lat


# ====================================================================== RSUs on junctions
def net_road_segments(net: SumoNet) -> np.ndarray:
    """The net's normal edges as straight junction-to-junction segments [K, 2, 2] (SUMO x/y metres), a two-way road
    once; curved edges are drawn as their chords (for the viewer, `vmjax.render`)."""
    xy = net.junction_xy_m
    edges = np.asarray(net.graph.edges, np.int64)
    pairs = np.unique(np.sort(edges, axis=1), axis=0) if len(edges) else np.zeros((0, 2), np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.stack([xy[pairs[:, 0]], xy[pairs[:, 1]]], axis=1).astype(np.float32)


def junction_visits(net: SumoNet, trace: Trace, radius_m: float = 50.0) -> np.ndarray:
    """Vehicle-slots [N] spent within `radius_m` of each junction (a vehicle counts for its nearest junction only,
    valid slots only): how busy each junction is."""
    xy = np.asarray(trace.positions_m, np.float64).reshape(-1, 2)
    valid = np.ones(len(xy), bool) if trace.valid is None else np.asarray(trace.valid, bool).reshape(-1)
    xy = xy[valid]
    nodes = net.junction_xy_m
    visits = np.zeros(len(nodes), np.int64)
    for chunk in range(0, len(xy), 65536):
        d2 = np.sum((xy[chunk : chunk + 65536, None, :] - nodes[None]) ** 2, axis=-1)
        nearest = np.argmin(d2, axis=1)
        near = d2[np.arange(len(nearest)), nearest] <= radius_m**2
        visits += np.bincount(nearest[near], minlength=len(nodes))
    return visits


def place_rsus(junction_xy_m, num_rsus: int, visits=None, min_spacing_m: float = 0.0) -> np.ndarray:
    """Indices [num_rsus] of the junctions that get an RSU.

    Candidates are taken busiest first (`visits` [N], e.g. `junction_visits`; ties: lower index) or, without
    visits, by farthest-point order from the junction nearest the centroid (a spread-out layout); a candidate
    closer than `min_spacing_m` to a chosen one is skipped (the spacing rule). ValueError when fewer than
    `num_rsus` junctions satisfy the spacing.
    """
    xy = np.asarray(junction_xy_m, np.float64)
    n = len(xy)
    if not 1 <= num_rsus <= n:
        raise ValueError(f"place_rsus: num_rsus must be in [1, {n}] (the junction count), got {num_rsus}")
    if visits is not None:
        visits = np.asarray(visits)
        if visits.shape != (n,):
            raise ValueError(f"place_rsus: visits must have shape [{n}], got {visits.shape}")
        order = list(np.argsort(-visits, kind="stable"))
    else:
        first = int(np.argmin(np.sum((xy - xy.mean(0)) ** 2, axis=1)))
        order, distance = [first], np.linalg.norm(xy - xy[first], axis=1)
        for _ in range(n - 1):
            nxt = int(np.argmax(distance))
            order.append(nxt)
            distance = np.minimum(distance, np.linalg.norm(xy - xy[nxt], axis=1))
    chosen: list[int] = []
    for candidate in order:
        if all(np.linalg.norm(xy[candidate] - xy[c]) >= min_spacing_m for c in chosen):
            chosen.append(int(candidate))
            if len(chosen) == num_rsus:
                return np.asarray(chosen, np.int64)
    raise ValueError(
        f"place_rsus: only {len(chosen)} of {n} junctions are >= min_spacing_m={min_spacing_m} m apart, "
        f"{num_rsus} requested"
    )


__all__ = [
    "INSTALL_HINT",
    "FcdData",
    "SumoNet",
    "fcd_to_trace",
    "geo_origin_lonlat",
    "junction_visits",
    "pack_tracks",
    "place_rsus",
    "read_fcd",
    "read_net",
    "resample_vehicle",
    "sumo_angle_to_heading_rad",
]
