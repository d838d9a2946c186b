"""Where the RSUs stand: the static layouts of the scenarios (specs 000, 002, 003, 004), as NumPy float32
[N, 2] arrays of metres east/north of the map origin. Computed once from the config, then stored in params.

Road maps are passed as plain numbers (extent, road coordinates, intersections, core box), so this module
needs nothing from `vmjax.mobility`.
"""

from __future__ import annotations

import math

import numpy as np


def corridor_rsu_positions(num_rsus: int, spacing_m: float, width_m: float) -> np.ndarray:
    """Spec 003 §7.2 [C]: RSUs alternating south/north (y = 0, y = width) at x = (k + 0.5) * spacing."""
    k = np.arange(num_rsus)
    return np.stack([(k + 0.5) * spacing_m, np.where(k % 2 == 0, 0.0, width_m)], axis=1).astype(np.float32)


def intersection_rsu_positions(intersections_m, core_box_m, num_rsus: int, core_share: float) -> np.ndarray:
    """Spec 003 Fig. 1: dense RSUs at the road intersections [K, 2] inside the urban core box (xmin, ymin, xmax,
    ymax), about `core_share` of them, sparse ones at the outskirts intersections; each set spread evenly."""
    crossings = np.asarray(intersections_m, dtype=np.float64)
    xmin, ymin, xmax, ymax = core_box_m
    x, y = crossings[:, 0], crossings[:, 1]
    in_core = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    core, outskirts = crossings[in_core], crossings[~in_core]
    num_core = min(int(round(num_rsus * core_share)), len(core))
    num_outskirts = num_rsus - num_core
    if num_outskirts > len(outskirts):
        raise ValueError(f"the grid has {len(core) + len(outskirts)} intersections, fewer than num_rsus={num_rsus}")

    def spread(points, count):
        return points[np.linspace(0, len(points) - 1, count).round().astype(int)] if count else points[:0]

    return np.concatenate([spread(core, num_core), spread(outskirts, num_outskirts)]).astype(np.float32)


def rsu_grid_shape(num_rsus: int) -> tuple[int, int]:
    """(rows, cols) with rows the largest divisor of N not above sqrt(N): 4 -> 2 x 2, 9 -> 3 x 3, 6 -> 2 x 3
    (spec 004 §7.2, spec 000 §6.1)."""
    rows = max(r for r in range(1, math.isqrt(num_rsus) + 1) if num_rsus % r == 0)
    return rows, num_rsus // rows


def grid_rsu_positions(num_rsus: int, map_size_m: float) -> np.ndarray:
    """Spec 004 §7.2 [R]: RSU e at the centre of cell e (row-major) of the `rsu_grid_shape` grid over a square
    map: (1.25, 1.25), (3.75, 1.25), ... km for N = 4 on 5 km."""
    rows, cols = rsu_grid_shape(num_rsus)
    r, c = np.divmod(np.arange(num_rsus), cols)
    return np.stack([(c + 0.5) * map_size_m / cols, (r + 0.5) * map_size_m / rows], axis=1).astype(np.float32)


def jittered_grid_rsu_positions(
    num_rsus: int, map_extent_m, core_extent_m, seed: int = 0, jitter: float = 0.25
) -> np.ndarray:
    """Spec 000 §6.1 [R] "jittered grid in an inner urban box": N RSUs on the `rsu_grid_shape` grid over the
    core (width, height) centred in the map (width, height), each moved by up to `jitter` of a cell in x and y;
    deterministic for `seed`."""
    rows, cols = rsu_grid_shape(num_rsus)
    (w, h), (cw, ch) = map_extent_m, core_extent_m
    r, c = np.divmod(np.arange(num_rsus), cols)
    u = np.random.default_rng(seed).uniform(-jitter, jitter, (num_rsus, 2))
    x = (w - cw) / 2 + (c + 0.5 + u[:, 0]) * cw / cols
    y = (h - ch) / 2 + (r + 0.5 + u[:, 1]) * ch / rows
    return np.stack([x, y], axis=1).astype(np.float32)


def city_rsu_positions(num_rsus: int, size_m: float, seed: int, jitter: float = 0.25) -> np.ndarray:
    """Spec 002 §7.2 [REC] city: RSUs on a jittered near-square grid (ceil(sqrt N) columns) over the square map
    (cells spread evenly when the grid has more cells than RSUs; each RSU moved up to `jitter` of a cell in x
    and y); deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    cols = math.ceil(math.sqrt(num_rsus))
    rows = math.ceil(num_rsus / cols)
    cells = np.round(np.linspace(0, rows * cols - 1, num_rsus)).astype(int)
    r, c = np.divmod(cells, cols)
    dx, dy = size_m / cols, size_m / rows
    xy = np.stack([(c + 0.5) * dx, (r + 0.5) * dy], axis=1)
    xy += rng.uniform(-jitter, jitter, xy.shape) * np.array([dx, dy])
    return xy.astype(np.float32)


def rural_rsu_positions(
    extent_m, x_roads_m, y_roads_m, num_rsus: int, seed: int, cluster: int = 4, spacing_m: float = 800.0
) -> np.ndarray:
    """Spec 002 §7.2 [REC] rural: RSUs in clusters of `cluster` along the roads (vertical roads at x =
    `x_roads_m`, horizontal ones at y = `y_roads_m` of a map of `extent_m` = (width, height)), `spacing_m`
    apart, 10 m beside the road, clusters at random road positions, leaving coverage gaps between them;
    deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    width, height = extent_m
    roads = [(True, x) for x in x_roads_m] + [(False, y) for y in y_roads_m]
    points = []
    while len(points) < num_rsus:
        vertical, coord = roads[rng.integers(len(roads))]
        length = height if vertical else width
        centre = rng.uniform(0.0, length)
        for j in range(cluster):
            along = float(np.clip(centre + (j - (cluster - 1) / 2) * spacing_m, 0.0, length))
            points.append((coord + 10.0, along) if vertical else (along, coord + 10.0))
    return np.asarray(points[:num_rsus], np.float32)
