"""What one frame of a world shows, as plain NumPy data: a scenario says *what* to draw (its `Scenario.scene`, in
`vmjax/scenarios/<name>.py`), `vmjax.render` draws any scene with matplotlib. Positions are metres on the map."""

from __future__ import annotations

import dataclasses

import numpy as np

SERVER_KINDS = ("RSU", "UAV", "satellite", "cloud")
LINK_KINDS = ("serving", "target", "report")  # vehicle -> its server; -> the server its work goes to; true -> reported


@dataclasses.dataclass
class Servers:
    """One kind of server: positions [S, 2], load in [0, 1] of its capacity (NaN: none shown), present [S]."""

    kind: str
    xy_m: np.ndarray
    load: np.ndarray
    present: np.ndarray
    coverage_m: float | None = None  # coverage radius drawn around each present server, or None


@dataclasses.dataclass
class Links:
    """Arrows of one kind from points [L, 2] to points [L, 2] (a vehicle to a server, a true to a reported
    position)."""

    kind: str
    from_m: np.ndarray
    to_m: np.ndarray


@dataclasses.dataclass
class Scene:
    """One world at one slot."""

    title: str
    extent_m: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax of the map
    vehicles_xy_m: np.ndarray  # [V, 2]
    vehicles_active: np.ndarray  # [V] bool (an absent vehicle is drawn faint)
    servers: list[Servers]
    links: list[Links] = dataclasses.field(default_factory=list)
    roads_m: np.ndarray | None = None  # [K, 2, 2] road segments
    markers: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # label -> points [P, 2]
    vehicle_marks: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # label -> bool [V] (a ring)
    notes: list[str] = dataclasses.field(default_factory=list)  # the scenario's quantities, one line each

    def __post_init__(self):
        for group in self.servers:
            if group.kind not in SERVER_KINDS:
                raise ValueError(f"Servers.kind must be one of {SERVER_KINDS}, got {group.kind!r}")
        for group in self.links:
            if group.kind not in LINK_KINDS:
                raise ValueError(f"Links.kind must be one of {LINK_KINDS}, got {group.kind!r}")


def road_segments(x_roads_m, y_roads_m, extent_m) -> np.ndarray:
    """[K, 2, 2] segments of a grid of roads: vertical roads at x_roads_m, horizontal at y_roads_m."""
    width, height = float(extent_m[0]), float(extent_m[1])
    vertical = [((x, 0.0), (x, height)) for x in np.asarray(x_roads_m, float)]
    horizontal = [((0.0, y), (width, y)) for y in np.asarray(y_roads_m, float)]
    return np.asarray(vertical + horizontal, np.float64).reshape(-1, 2, 2)


def sky_point(extent_m, fx: float, fy: float) -> np.ndarray:
    """A point at fractions (fx, fy) of the map box, where a server without a ground position (a satellite in the
    sky, the cloud) is drawn."""
    xmin, xmax, ymin, ymax = extent_m
    return np.array([[xmin + fx * (xmax - xmin), ymin + fy * (ymax - ymin)]])


__all__ = ["LINK_KINDS", "SERVER_KINDS", "Links", "Scene", "Servers", "road_segments", "sky_point"]
