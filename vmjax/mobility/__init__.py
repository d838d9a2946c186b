"""Where vehicles are: the `Trace` pytree, road grids, synthetic mobility, and trace files.

grid = corridor_road()                       # spec 003 §7.2 map, 2490 m x 122 m
trace = generate_trajectories(key, grid, MobilityParams(), num_vehicles=10, num_steps=112)
trace.position_at(t)                         # [V, 2] metres from the map origin
loops = patrol_loops(rsu_xy_m, num_loops=10)  # UAV patrol loops through RSUs (spec 002 §7.2)
xy, present = uav_positions_m(loops, phase_m, enter_slot, leave_slot, t, 3.7, 30.0, extent_m)
city = jittered_grid_city(seed=0)             # spec 004 §4.8 road graph; shortest_path, snap_to_road
kde = fit_hourly_kde(xy_m, hours)             # spec 004 §4.4 hourly KDEs; sample_hourly_kde(key, kde, h, n)
gps = generate_ground_truth(0, city)          # spec 004 §4.8 "real" taxis; write_tdrive / load_tdrive
model = fit_est_tg(city, gps)                 # spec 004 §4.2-4.4; generate_est_tg(key, model, 512) -> trips;
                                              # generate_chained_bank: §4.9 env bank
banks = build_trace_banks(0)                  # spec 004 §4.9/§7.3: banks.real, banks.generated -> trace_bank
fidelity_report(city, real_xy, real_hours, real_speeds, trips)  # spec 004 §4.10
fcd = read_fcd("run.fcd.xml.gz"); trace = fcd_to_trace(fcd, 30.0)  # SUMO FCD -> Trace (vmjax.mobility.sumo)
net = read_net("run.net.xml")                 # SUMO net -> net.graph, a directed RoadGraph; place_rsus on junctions
bank = load_trace_bank("bank.npz", slot_s=30.0, map_extent_m=(5000, 5000))  # a bank file fitted to an env
"""

from vmjax.mobility.bank_file import (
    BankFile,
    bank_roads_m,
    config_trace_bank,
    draw_bank_window,
    load_trace_bank,
    read_trace_bank,
    save_trace_bank,
)
from vmjax.mobility.banks import TraceBanks, build_trace_banks
from vmjax.mobility.est_tg import (
    ESTTGConfig,
    ESTTGModel,
    GeneratedTrips,
    fit_est_tg,
    generate_chained_bank,
    generate_est_tg,
    generate_naive,
    map_match,
    trips_per_hour,
)
from vmjax.mobility.fidelity import (
    fidelity_report,
    hourly_profile,
    hourly_share,
    js_divergence,
    occupancy_histogram,
    on_road_ratio,
    radial_mean_speeds,
    real_points,
    rush_to_early_trip_ratio,
    segment_speeds,
    trip_points,
    wasserstein_1,
)
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
from vmjax.mobility.sumo import (
    FcdData,
    SumoNet,
    fcd_to_trace,
    geo_origin_lonlat,
    junction_visits,
    net_road_segments,
    pack_tracks,
    place_rsus,
    read_fcd,
    read_net,
)
from vmjax.mobility.synthetic import MobilityParams, generate_trajectories, validate_params
from vmjax.mobility.tdrive import (
    BEIJING_CENTRE_LONLAT,
    GpsPoints,
    GroundTruthConfig,
    clean_gps,
    generate_ground_truth,
    load_tdrive,
    resample_trips,
    write_tdrive,
)
from vmjax.mobility.trace import Trace, check_trace_bank

__all__ = [
    "BankFile",
    "FcdData",
    "SumoNet",
    "draw_bank_window",
    "fcd_to_trace",
    "geo_origin_lonlat",
    "junction_visits",
    "net_road_segments",
    "config_trace_bank",
    "load_trace_bank",
    "pack_tracks",
    "place_rsus",
    "read_fcd",
    "read_net",
    "read_trace_bank",
    "save_trace_bank",
    "bank_roads_m",
    "BEIJING_CENTRE_LONLAT",
    "ESTTGConfig",
    "ESTTGModel",
    "GeneratedTrips",
    "GpsPoints",
    "GroundTruthConfig",
    "HourlyKDE",
    "MobilityParams",
    "RoadGraph",
    "RoadGrid",
    "Trace",
    "check_trace_bank",
    "TraceBanks",
    "build_trace_banks",
    "clean_gps",
    "corridor_road",
    "distance_to_lane_m",
    "distance_to_road_m",
    "fidelity_report",
    "fit_est_tg",
    "fit_hourly_kde",
    "generate_chained_bank",
    "generate_est_tg",
    "generate_ground_truth",
    "generate_naive",
    "generate_trajectories",
    "hourly_profile",
    "hourly_share",
    "intersections_m",
    "jittered_grid_city",
    "js_divergence",
    "kde_log_density",
    "load_tdrive",
    "load_trace_csv",
    "loop_lengths_m",
    "map_match",
    "nearest_boundary_point_m",
    "nearest_node",
    "occupancy_histogram",
    "on_road_ratio",
    "patrol_loops",
    "position_on_loop_m",
    "radial_mean_speeds",
    "real_points",
    "rush_to_early_trip_ratio",
    "segment_speeds",
    "resample_trips",
    "sample_hourly_kde",
    "shortest_path",
    "shortest_path_lengths",
    "snap_to_road",
    "trip_points",
    "trips_per_hour",
    "uav_positions_m",
    "urban_grid",
    "validate_params",
    "wasserstein_1",
    "weight_matrix_m",
    "write_tdrive",
    "write_trace_csv",
]
