"""vmjax.net: the physics every scenario shares, as pure functions (layer 2 of DESIGN.md)."""

from vmjax.net.ber import contention_bit_error_rate
from vmjax.net.channel import (
    NOISE_MODELS,
    NoiseModel,
    calibrated_gain_coeff,
    link_rate_bps,
    noise_power_from_density_w,
    path_loss_gain,
    rayleigh_power_gain,
    shannon_rate_bps,
    snr,
)
from vmjax.net.geo import (
    EARTH_RADIUS_M,
    disk_exit_time_s,
    distance_with_height_m,
    haversine_central_angle_rad,
    haversine_distance_m,
    latlon_offset_to_xy_m,
    lonlat_to_xy_m,
    pairwise_planar_distance_m,
    planar_distance_m,
    xy_to_latlon_offset_deg,
    xy_to_lonlat,
)
from vmjax.net.latency import (
    backhaul_latency_s,
    compute_latency_s,
    fluid_queue_update,
    hop_migration_latency_s,
    reuse_discounted_bits,
    split_processing_latency_s,
    transfer_latency_s,
)
from vmjax.net.layout import (
    city_rsu_positions,
    corridor_rsu_positions,
    grid_rsu_positions,
    intersection_rsu_positions,
    jittered_grid_rsu_positions,
    rsu_grid_shape,
    rural_rsu_positions,
)
from vmjax.net.topology import (
    grid_manhattan_hops,
    hop_counts,
    knn_adjacency,
    knn_hop_counts,
)
from vmjax.net.units import (
    BITS_PER_MEGABYTE,
    SPEED_OF_LIGHT_MPS,
    bits_to_megabytes,
    dbm_to_watts,
    megabytes_to_bits,
    noise_power_watts,
    watts_to_dbm,
)

__all__ = [name for name in dir() if not name.startswith("_")]
