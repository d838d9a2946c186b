"""Where vehicles are: the `Trace` pytree, road grids, synthetic mobility, and trace files.

    grid = corridor_road()                       # spec 003 §7.2 map, 2490 m x 122 m
    trace = generate_trajectories(key, grid, MobilityParams(), num_vehicles=10, num_steps=112)
    trace.position_at(t)                         # [V, 2] metres from the map origin
    loops = patrol_loops(rsu_xy_m, num_loops=10)  # UAV patrol loops through RSUs (spec 002 §7.2)
    xy, present = uav_positions_m(loops, phase_m, enter_slot, leave_slot, t, 3.7, 30.0, extent_m)
    city = jittered_grid_city(seed=0)             # spec 004 §4.8 road graph; shortest_path, snap_to_road
    kde = fit_hourly_kde(xy_m, hours)             # spec 004 §4.4 hourly KDEs; sample_hourly_kde(key, kde, h, n)
"""

from vmjax.mobility.io import load_trace_csv, write_trace_csv
from vmjax.mobility.kde import HourlyKDE, fit_hourly_kde, kde_log_density, sample_hourly_kde
from vmjax.mobility.patrol import (
    loop_lengths_m,
    nearest_boundary_point_m,
    patrol_loops,
    position_on_loop_m,
    uav_positions_m,
)
from vmjax.mobility.road_graph import (
    RoadGraph,
    jittered_grid_city,
    nearest_node,
    shortest_path,
    shortest_path_lengths,
    snap_to_road,
    weight_matrix_m,
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
    "HourlyKDE",
    "MobilityParams",
    "RoadGraph",
    "RoadGrid",
    "Trace",
    "corridor_road",
    "distance_to_lane_m",
    "distance_to_road_m",
    "fit_hourly_kde",
    "generate_trajectories",
    "intersections_m",
    "jittered_grid_city",
    "kde_log_density",
    "load_trace_csv",
    "loop_lengths_m",
    "nearest_boundary_point_m",
    "nearest_node",
    "patrol_loops",
    "position_on_loop_m",
    "sample_hourly_kde",
    "shortest_path",
    "shortest_path_lengths",
    "snap_to_road",
    "uav_positions_m",
    "urban_grid",
    "validate_params",
    "weight_matrix_m",
    "write_trace_csv",
]
