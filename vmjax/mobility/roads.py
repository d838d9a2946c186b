"""Road grids: straight roads spanning the map, along x (east-west) and along y (north-south).

A `RoadGrid` is static configuration (a frozen, hashable dataclass of tuples), so it can be a static
argument of `jax.jit`. Traffic is right-hand: a vehicle with unit heading (dx, dy) drives on a lane centre
at `road centre + offset * (dy, -dx)`, i.e. offset metres to its right. On the spec 003 §7.2 corridor
(road centre y = 61 m, offsets 6 and 16 m) eastbound lanes are at y = 55 and 45 m, westbound at 67 and 77 m.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np


def _as_float_tuple(name: str, values) -> tuple[float, ...]:
    """Tuple of finite Python floats, or ValueError naming the field."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"RoadGrid.{name} must be a sequence of numbers, got {values!r}") from err
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"RoadGrid.{name} must be finite, got {out}")
    return out


@dataclasses.dataclass(frozen=True)
class RoadGrid:
    """Static road network: full-length straight roads inside a rectangular map with origin (0, 0).

    extent_m:        (width, height) of the map in metres.
    x_roads_m:       x of the vertical (north-south) roads; may be empty.
    y_roads_m:       y of the horizontal (east-west) roads; at least one road overall.
    lane_offsets_m:  right-hand lane centre offsets from a road centre line, e.g. (6.0, 16.0).
    core_box_m:      (xmin, ymin, xmax, ymax) of the dense urban core (slower traffic, more vehicles).
    """

    extent_m: tuple[float, float]
    x_roads_m: tuple[float, ...]
    y_roads_m: tuple[float, ...]
    lane_offsets_m: tuple[float, ...]
    core_box_m: tuple[float, float, float, float]

    def __post_init__(self):
        extent_m = _as_float_tuple("extent_m", self.extent_m)
        if len(extent_m) != 2 or min(extent_m) <= 0.0:
            raise ValueError(f"RoadGrid.extent_m must be (width, height) with both > 0, got {extent_m}")
        lane_offsets_m = _as_float_tuple("lane_offsets_m", self.lane_offsets_m)
        if not lane_offsets_m or min(lane_offsets_m) <= 0.0 or len(set(lane_offsets_m)) != len(lane_offsets_m):
            raise ValueError(
                f"RoadGrid.lane_offsets_m must be a non-empty tuple of distinct offsets > 0, got {lane_offsets_m}"
            )
        max_offset_m = max(lane_offsets_m)
        x_roads_m = tuple(sorted(_as_float_tuple("x_roads_m", self.x_roads_m)))
        y_roads_m = tuple(sorted(_as_float_tuple("y_roads_m", self.y_roads_m)))
        if not x_roads_m and not y_roads_m:
            raise ValueError("RoadGrid.x_roads_m and RoadGrid.y_roads_m are both empty: need at least one road")
        for name, roads_m, size_m in (("x_roads_m", x_roads_m, extent_m[0]), ("y_roads_m", y_roads_m, extent_m[1])):
            if roads_m and (roads_m[0] < max_offset_m or roads_m[-1] > size_m - max_offset_m):
                raise ValueError(
                    f"RoadGrid.{name} must lie in [{max_offset_m}, {size_m - max_offset_m}] so every lane is "
                    f"inside the map, got {roads_m}"
                )
            gaps_m = np.diff(roads_m)
            if gaps_m.size and gaps_m.min() <= 2.0 * max_offset_m:
                raise ValueError(
                    f"RoadGrid.{name} must be more than 2 * max(lane_offsets_m) = {2.0 * max_offset_m} m apart "
                    f"(lanes of neighbouring roads would overlap), got {roads_m}"
                )
        core_box_m = _as_float_tuple("core_box_m", self.core_box_m)
        if len(core_box_m) != 4:
            raise ValueError(f"RoadGrid.core_box_m must be (xmin, ymin, xmax, ymax), got {core_box_m}")
        xmin, ymin, xmax, ymax = core_box_m
        if not (0.0 <= xmin < xmax <= extent_m[0] and 0.0 <= ymin < ymax <= extent_m[1]):
            raise ValueError(
                f"RoadGrid.core_box_m must satisfy 0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height "
                f"for extent_m = {extent_m}, got {core_box_m}"
            )
        if not any(xmin <= x <= xmax for x in x_roads_m) and not any(ymin <= y <= ymax for y in y_roads_m):
            raise ValueError(f"RoadGrid.core_box_m = {core_box_m} contains no road")
        for name, value in (
            ("extent_m", extent_m),
            ("x_roads_m", x_roads_m),
            ("y_roads_m", y_roads_m),
            ("lane_offsets_m", lane_offsets_m),
            ("core_box_m", core_box_m),
        ):
            object.__setattr__(self, name, value)


def corridor_road(length_m: float = 2490.0, width_m: float = 122.0) -> RoadGrid:
    """Spec 003 §7.2 map: one bidirectional two-lane road along x at y = width / 2 (61 m).

    Eastbound lanes at y = 55 and 45 m, westbound at 67 and 77 m; the whole map is the core box.
    """
    return RoadGrid(
        extent_m=(length_m, width_m),
        x_roads_m=(),
        y_roads_m=(width_m / 2.0,),
        lane_offsets_m=(6.0, 16.0),
        core_box_m=(0.0, 0.0, length_m, width_m),
    )


def _grid_lines_m(size_m, core_lo_m, core_hi_m, core_spacing_m, outskirts_spacing_m, max_offset_m):
    """Road coordinates on one axis: every core spacing inside [lo, hi], every outskirts spacing outside."""
    num_core_gaps = int(math.floor((core_hi_m - core_lo_m) / core_spacing_m + 1e-9))
    start_m = core_lo_m + 0.5 * ((core_hi_m - core_lo_m) - num_core_gaps * core_spacing_m)
    lines_m = [start_m + i * core_spacing_m for i in range(num_core_gaps + 1)]
    below_m = lines_m[0] - outskirts_spacing_m
    while below_m >= max_offset_m:
        lines_m.append(below_m)
        below_m -= outskirts_spacing_m
    above_m = lines_m[num_core_gaps] + outskirts_spacing_m
    while above_m <= size_m - max_offset_m:
        lines_m.append(above_m)
        above_m += outskirts_spacing_m
    return tuple(sorted(round(v, 6) for v in lines_m))


def urban_grid(
    extent_m: tuple[float, float] = (3000.0, 3000.0),
    core_extent_m: tuple[float, float] = (1200.0, 1200.0),
    core_spacing_m: float = 150.0,
    outskirts_spacing_m: float = 750.0,
    lane_offsets_m: tuple[float, ...] = (3.0,),
) -> RoadGrid:
    """Manhattan grid: a dense core (roads every `core_spacing_m` in a centred core box) and sparse outskirts.

    Outside the core box, roads ("highways") continue every `outskirts_spacing_m` up to the map edges.
    Defaults: 3 km x 3 km map, 1.2 km x 1.2 km core, x and y roads at 150, 900, 1050, ..., 2100, 2850 m.
    """
    width_m, height_m = (float(v) for v in extent_m)
    core_width_m, core_height_m = (float(v) for v in core_extent_m)
    if not (0.0 < core_width_m <= width_m and 0.0 < core_height_m <= height_m):
        raise ValueError(
            f"urban_grid: core_extent_m must be positive and fit in extent_m {extent_m}, got {core_extent_m}"
        )
    if core_spacing_m <= 0.0 or outskirts_spacing_m <= 0.0:
        raise ValueError(
            f"urban_grid: core_spacing_m and outskirts_spacing_m must be > 0, got {core_spacing_m}, {outskirts_spacing_m}"
        )
    max_offset_m = max(lane_offsets_m) if lane_offsets_m else 0.0
    xmin_m, ymin_m = 0.5 * (width_m - core_width_m), 0.5 * (height_m - core_height_m)
    xmax_m, ymax_m = xmin_m + core_width_m, ymin_m + core_height_m
    return RoadGrid(
        extent_m=(width_m, height_m),
        x_roads_m=_grid_lines_m(width_m, xmin_m, xmax_m, core_spacing_m, outskirts_spacing_m, max_offset_m),
        y_roads_m=_grid_lines_m(height_m, ymin_m, ymax_m, core_spacing_m, outskirts_spacing_m, max_offset_m),
        lane_offsets_m=tuple(lane_offsets_m),
        core_box_m=(xmin_m, ymin_m, xmax_m, ymax_m),
    )


def intersections_m(grid: RoadGrid) -> np.ndarray:
    """All crossings of x-roads and y-roads, [K, 2] float32 (K = 0 without vertical or horizontal roads)."""
    xs, ys = np.meshgrid(np.asarray(grid.x_roads_m), np.asarray(grid.y_roads_m), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float32).reshape(-1, 2)


def _distances_to_centre_lines_m(grid: RoadGrid, xy):
    """Distances [..., R] of points [..., 2] to every road centre line (x-roads first, then y-roads)."""
    xy = jnp.asarray(xy, jnp.float32)
    to_x_roads_m = jnp.abs(xy[..., 0:1] - jnp.asarray(grid.x_roads_m, jnp.float32).reshape(-1))
    to_y_roads_m = jnp.abs(xy[..., 1:2] - jnp.asarray(grid.y_roads_m, jnp.float32).reshape(-1))
    return jnp.concatenate([to_x_roads_m, to_y_roads_m], axis=-1)


def distance_to_road_m(grid: RoadGrid, xy):
    """Distance [...] of points [..., 2] to the nearest road centre line."""
    return jnp.min(_distances_to_centre_lines_m(grid, xy), axis=-1)


def distance_to_lane_m(grid: RoadGrid, xy):
    """Distance [...] of points [..., 2] to the nearest lane centre line (either direction of any road).

    Unlike `distance_to_road_m`, this is 0 for a vehicle on its lane even inside an intersection.
    """
    to_roads_m = _distances_to_centre_lines_m(grid, xy)[..., None]
    offsets_m = jnp.asarray(grid.lane_offsets_m, jnp.float32)
    return jnp.min(jnp.abs(to_roads_m - offsets_m), axis=(-2, -1))
