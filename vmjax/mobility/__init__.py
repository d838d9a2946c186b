"""Where vehicles are: the `Trace` pytree, road grids, synthetic mobility, and trace files.

    grid = corridor_road()                       # spec 003 §7.2 map, 2490 m x 122 m
    trace = generate_trajectories(key, grid, MobilityParams(), num_vehicles=10, num_steps=112)
    trace.position_at(t)                         # [V, 2] metres from the map origin
"""

from vmjax.mobility.io import load_trace_csv, write_trace_csv
from vmjax.mobility.roads import (
    RoadGrid,
    corridor_road,
    distance_to_lane_m,
    distance_to_road_m,
    intersections_m,
    urban_grid,
)
from vmjax.mobility.synthetic import MobilityParams, generate_trajectories, validate_params
from vmjax.mobility.trace import Trace

__all__ = [
    "MobilityParams",
    "RoadGrid",
    "Trace",
    "corridor_road",
    "distance_to_lane_m",
    "distance_to_road_m",
    "generate_trajectories",
    "intersections_m",
    "load_trace_csv",
    "urban_grid",
    "validate_params",
    "write_trace_csv",
]
