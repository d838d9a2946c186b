"""Where vehicles are: the `Trace` pytree, road grids, synthetic mobility, and trace files.

    grid = corridor_road()                       # spec 003 §7.2 map, 2490 m x 122 m
    trace = generate_trajectories(key, grid, MobilityParams(), num_vehicles=10, num_steps=112)
    trace.position_at(t)                         # [V, 2] metres from the map origin
    loops = patrol_loops(rsu_xy_m, num_loops=10)  # UAV patrol loops through RSUs (spec 002 §7.2)
    xy, present = uav_positions_m(loops, phase_m, enter_slot, leave_slot, t, 3.7, 30.0, extent_m)
"""

from vmjax.mobility.io import load_trace_csv, write_trace_csv
from vmjax.mobility.patrol import (
    loop_lengths_m,
    nearest_boundary_point_m,
    patrol_loops,
    position_on_loop_m,
    uav_positions_m,
)
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
    "loop_lengths_m",
    "nearest_boundary_point_m",
    "patrol_loops",
    "position_on_loop_m",
    "uav_positions_m",
    "urban_grid",
    "validate_params",
    "write_trace_csv",
]
