"""Every physics function in vmjax.net against numbers worked out by hand from the specs.

Oracles: spec 003 §2.7 (worked test vector), spec 000 §6.3 (channel table), spec 002 §10.2 (worked example),
spec 004 §2.8 (worked example). Each was recomputed by hand before being used here.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmjax import net

MB = 8e6


# ---------------------------------------------------------------- spec 003 §2.7 (A = 4.11, f_c = 2 GHz, l = 2.8)
def gain_003(d):
    return net.path_loss_gain(d, 4.11, 2e9, 2.8)


def test_gain_spec003_worked_vector():
    # 4.11 * (3e8 / (4 pi 2e9 * 100))^2.8 = 4.11 * (1.19366e-4)^2.8 = 4.2571e-11
    np.testing.assert_allclose(gain_003(100.0), 4.2571e-11, rtol=1e-4)
    np.testing.assert_allclose(gain_003(300.0), 1.9641e-12, rtol=1e-4)


def test_rates_spec003_worked_vector():
    b = 400e6
    # R^u = 400e6 * log2(1 + 0.2 * 4.2571e-11 / 1e-12) = 400e6 * log2(9.514) = 1300.0 Mbps
    np.testing.assert_allclose(net.shannon_rate_bps(b, 0.2, gain_003(100.0), 1e-12) / 1e6, 1300.0, rtol=2e-4)
    np.testing.assert_allclose(net.shannon_rate_bps(b, 1.0, gain_003(100.0), 1e-12) / 1e6, 2178.1, rtol=2e-4)
    np.testing.assert_allclose(net.shannon_rate_bps(b, 1.0, gain_003(300.0), 1e-12) / 1e6, 627.0, rtol=2e-4)


def test_latencies_spec003_worked_vector():
    f = 0.5e9 / MB  # 0.5 Gcycles/MB in cycles/bit
    task_bits = 150 * MB
    # T^u = 16 MB * 8 / 1300 Mbps = 0.09846 s
    np.testing.assert_allclose(net.transfer_latency_s(16 * MB, 1300e6), 0.098462, rtol=1e-4)
    # T^p_m = (100 Gcycles + 0.7 * 150 MB * 0.5 Gcycles/MB) / 20 GHz = 7.625 s
    local = net.compute_latency_s(100e9, 0.7 * task_bits * f, 20e9)
    np.testing.assert_allclose(local, 7.625, rtol=1e-5)
    # T^m = 0.3 * 150 MB * 8 / 700 Mbps = 0.5143 s ; T^p_m' = (40 + 22.5) / 25 = 2.5 s
    mig = net.transfer_latency_s(0.3 * task_bits, 700e6)
    remote = net.compute_latency_s(40e9, 0.3 * task_bits * f, 25e9)
    np.testing.assert_allclose(mig, 0.514286, rtol=1e-5)
    np.testing.assert_allclose(remote, 2.5, rtol=1e-5)
    np.testing.assert_allclose(net.split_processing_latency_s(local, mig, remote), 7.625, rtol=1e-5)
    # when the remote branch is the slower one, it sets the latency
    np.testing.assert_allclose(net.split_processing_latency_s(1.0, 0.5, 2.5), 3.0)


def test_transfer_of_nothing_is_free_even_on_a_dead_link():
    assert float(net.transfer_latency_s(0.0, 0.0)) == 0.0
    g = jax.grad(lambda s: net.transfer_latency_s(s, 0.0))(0.0)
    assert np.isfinite(g)


# ---------------------------------------------------------------- spec 000 §6.3 channel table
@pytest.mark.parametrize(
    "d, h, r_up_mbps, r_down_mbps",
    [(100, 3.802e-10, 65.925, 175.40), (250, 2.923e-11, 30.603, 138.39), (1000, 6.026e-13, 2.033, 82.43)],
)
def test_channel_table_spec000(d, h, r_up_mbps, r_down_mbps):
    gain = net.path_loss_gain(float(d), 4.11, 915e6, 2.8)
    noise = net.noise_power_watts(-174.0, 10e6)  # -104 dBm = 3.981e-14 W
    np.testing.assert_allclose(noise, 3.981e-14, rtol=1e-3)
    np.testing.assert_allclose(gain, h, rtol=1e-3)
    p_av, p_rsu = net.dbm_to_watts(10.0), net.dbm_to_watts(43.0)
    np.testing.assert_allclose(p_rsu, 19.953, rtol=1e-4)
    np.testing.assert_allclose(net.shannon_rate_bps(10e6, p_av, gain, noise) / 1e6, r_up_mbps, rtol=1e-3)
    np.testing.assert_allclose(net.shannon_rate_bps(10e6, p_rsu, gain, noise) / 1e6, r_down_mbps, rtol=1e-3)


def test_upload_latency_spec000():
    # 10 MB over 65.925 Mbps = 1.21 s ; 15 MB over 175.40 Mbps = 0.684 s
    np.testing.assert_allclose(net.transfer_latency_s(10 * MB, 65.925e6), 1.2135, rtol=1e-3)
    np.testing.assert_allclose(net.transfer_latency_s(15 * MB, 175.40e6), 0.6842, rtol=1e-3)


def test_backhaul_and_hop_migration_spec000():
    # eq. 11: (10 MB + 15 MB) / 1 Gbps + 2 * 2 s/hop * 3 hops = 0.2 + 12 = 12.2 s ; 0 when same RSU
    np.testing.assert_allclose(net.backhaul_latency_s(10 * MB, 15 * MB, 1e9, 2.0, 3), 12.2, rtol=1e-6)
    assert float(net.backhaul_latency_s(10 * MB, 15 * MB, 1e9, 2.0, 0)) == 0.0
    # eq. 13: 20 MB / 1 Gbps + 0.02 s/hop * 2 hops = 0.16 + 0.04 = 0.2 s ; 0 when not migrating
    np.testing.assert_allclose(net.hop_migration_latency_s(20 * MB, 1e9, 0.02, 2), 0.2, rtol=1e-6)
    assert float(net.hop_migration_latency_s(20 * MB, 1e9, 0.02, 0)) == 0.0


def test_hop_counts_on_a_line_and_a_grid():
    line = np.stack([np.arange(5) * 100.0, np.zeros(5)], axis=1)
    hops = net.hop_counts(net.knn_adjacency(line, k=1))
    np.testing.assert_array_equal(hops[0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(hops, hops.T)
    two_islands = np.zeros((4, 4), dtype=bool)
    two_islands[0, 1] = two_islands[1, 0] = True
    assert net.hop_counts(two_islands)[0, 3] == -1
    grid = net.grid_manhattan_hops(2, 2)
    np.testing.assert_array_equal(grid[0], [0, 1, 1, 2])
    with pytest.raises(ValueError, match="k must be"):
        net.knn_adjacency(line, k=5)


def test_dbm_round_trip():
    np.testing.assert_allclose(net.dbm_to_watts(30.0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(net.dbm_to_watts(23.0), 0.19953, rtol=1e-4)
    np.testing.assert_allclose(net.watts_to_dbm(net.dbm_to_watts(-90.0)), -90.0, rtol=1e-5)
    np.testing.assert_allclose(net.noise_power_watts(-174.0, 20e6), 7.962e-14, rtol=1e-3)


# ---------------------------------------------------------------- spec 002 §10.2 worked example
def test_haversine_spec002():
    r_e = 6_371_393.0
    # (39.9000, 116.4000) -> (39.9050, 116.4060), given as offsets from the first point (float32-exact)
    d = net.haversine_distance_m(0.0, 0.0, 0.0050, 0.0060, radius_m=r_e, origin_lat_deg=39.9)
    np.testing.assert_allclose(d, 755.73, atol=0.05)
    printed = net.haversine_distance_m(0.0, 0.0, 0.0050, 0.0060, radius_m=r_e, variant="printed", origin_lat_deg=39.9)
    np.testing.assert_allclose(printed, 1583.80, atol=0.05)
    # absolute degrees work too, at float32's ~1 m resolution
    absolute = net.haversine_distance_m(39.9000, 116.4000, 39.9050, 116.4060, radius_m=r_e)
    np.testing.assert_allclose(absolute, 755.73, atol=1.0)
    # one degree along a meridian = R * pi / 180
    np.testing.assert_allclose(net.haversine_distance_m(10.0, 20.0, 11.0, 20.0, radius_m=r_e), 111_201.6, atol=2.0)
    assert float(net.haversine_distance_m(10.0, 20.0, 10.0, 20.0)) == 0.0
    with pytest.raises(ValueError, match="variant"):
        net.haversine_central_angle_rad(0.0, 0.0, 1.0, 1.0, variant="bogus")


def test_uav_slant_distance_spec002():
    np.testing.assert_allclose(net.distance_with_height_m(755.73, 50.0), 757.38, atol=0.01)
    assert float(net.distance_with_height_m(0.0, 50.0)) == 50.0


def test_calibrated_channel_spec002():
    a = net.calibrated_gain_coeff(10.0, 10.0, 1000.0, 1200.0, 3.5e9, exponent=2.0)
    np.testing.assert_allclose(a, 3.0951e9, rtol=1e-4)
    snr_at = lambda d: net.snr(1000.0, net.path_loss_gain(d, a, 3.5e9, 2.0), 10.0)
    np.testing.assert_allclose(snr_at(1200.0), 10.0, rtol=1e-4)
    np.testing.assert_allclose(snr_at(755.73), 25.213, rtol=1e-4)
    rate = net.shannon_rate_bps(300e6, 1000.0, net.path_loss_gain(755.73, a, 3.5e9, 2.0), 10.0)
    np.testing.assert_allclose(rate, 1.4137e9, rtol=1e-4)
    np.testing.assert_allclose(net.transfer_latency_s(2 * MB, rate), 11.318e-3, rtol=1e-3)
    mig_rate = net.shannon_rate_bps(300e6, 1000.0, net.path_loss_gain(800.0, a, 3.5e9, 2.0), 10.0)
    np.testing.assert_allclose(mig_rate, 1.3664e9, rtol=1e-4)
    np.testing.assert_allclose(net.transfer_latency_s(60 * MB, mig_rate), 0.3513, rtol=1e-3)


def test_compute_and_queue_spec002():
    # T^cul = 1000 cycles/bit * 162 MB / 32 GHz = 40.5 s
    np.testing.assert_allclose(net.compute_latency_s(0.0, 1000.0 * 162 * MB, 32e9), 40.5, rtol=1e-6)
    # Q(t+1) = clip(162 - 120, 0, 300) = 42 MB ; an overfull queue reports what was clipped
    q, overflow = net.fluid_queue_update(100.0, 62.0, 120.0, 300.0)
    assert (float(q), float(overflow)) == (42.0, 0.0)
    q, overflow = net.fluid_queue_update(290.0, 200.0, 120.0, 300.0)
    assert (float(q), float(overflow)) == (300.0, 70.0)
    q, _ = net.fluid_queue_update(10.0, 0.0, 120.0, 300.0)
    assert float(q) == 0.0


# ---------------------------------------------------------------- spec 004 §2.8 worked example
def test_spec004_worked_example():
    noise = net.noise_power_watts(-174.0, 20e6)
    rate = lambda d: net.shannon_rate_bps(20e6, 0.2, net.path_loss_gain(d, 1.0, 5.9e9, 2.0), noise)
    d_near = net.distance_with_height_m(100.0, 10.0)
    d_far = net.distance_with_height_m(900.0, 10.0)
    np.testing.assert_allclose(rate(d_near) / 1e6, 239.84, rtol=1e-4)
    np.testing.assert_allclose(rate(d_far) / 1e6, 113.88, rtol=1e-4)
    t_up = net.transfer_latency_s(2e6, rate(d_near))
    background = 0.2 * 2.4e11
    t_local = net.compute_latency_s(background, 10e6 * 1000.0, 60e9)  # 0.96667 s
    t_mig = net.transfer_latency_s(10e6, 500e6)  # 0.02 s
    t_remote = net.compute_latency_s(background + 2e10, 10e6 * 1000.0, 60e9)  # veh1's 2e10 cycles ahead: 1.3 s
    np.testing.assert_allclose([t_local, t_mig, t_remote], [0.966667, 0.02, 1.3], rtol=1e-5)
    t_proc = net.split_processing_latency_s(t_local, t_mig, t_remote)
    t_down = net.transfer_latency_s(0.2 * 10e6, rate(d_near)) + net.transfer_latency_s(0.2 * 10e6, rate(d_far))
    np.testing.assert_allclose(t_down, 0.02590, rtol=1e-3)
    np.testing.assert_allclose(t_up + t_proc + t_down, 1.35424, rtol=1e-4)


def test_contention_ber_spec004():
    # both vehicles pre-migrate 10 Mb to RSU 1 with tau = 0.02 / Mb: eps = 1 - exp(-0.2) = 0.18127
    eps = net.contention_bit_error_rate(jnp.array([10.0, 10.0]), jnp.array([1, 1]), jnp.array([True, True]), 0.02)
    np.testing.assert_allclose(eps, [0.18127, 0.18127], rtol=1e-4)
    # only one migrates, or they go to different RSUs: no error
    alone = net.contention_bit_error_rate(jnp.array([10.0, 0.0]), jnp.array([1, 1]), jnp.array([True, False]), 0.02)
    apart = net.contention_bit_error_rate(jnp.array([10.0, 10.0]), jnp.array([0, 1]), jnp.array([True, True]), 0.02)
    np.testing.assert_allclose(alone, [0.0, 0.0])
    np.testing.assert_allclose(apart, [0.0, 0.0])


# ---------------------------------------------------------------- geometry
def test_planar_distances_and_projection():
    np.testing.assert_allclose(net.planar_distance_m(jnp.array([0.0, 0.0]), jnp.array([3.0, 4.0])), 5.0)
    np.testing.assert_allclose(net.planar_distance_m(jnp.zeros(2), jnp.zeros(2), min_distance_m=10.0), 10.0)
    pair = net.pairwise_planar_distance_m(jnp.array([[0.0, 0.0], [1.0, 0.0]]), jnp.array([[0.0, 3.0]] * 3))
    assert pair.shape == (2, 3)
    np.testing.assert_allclose(pair[1, 0], math.sqrt(10.0), rtol=1e-6)
    # spec 003 §7.2: the study box is ~2,488 m east-west at lat 22.53
    x, y = net.lonlat_to_xy_m(114.0681, 22.5323, 114.0439, 22.5312)
    np.testing.assert_allclose(x, 0.0242 * 111_320 * math.cos(math.radians(22.5312)), rtol=1e-9)
    np.testing.assert_allclose(x, 2488.0, atol=2.0)
    np.testing.assert_allclose(y, 0.0011 * 110_750, rtol=1e-9)
    lon, lat = net.xy_to_lonlat(x, y, 114.0439, 22.5312)
    np.testing.assert_allclose([lon, lat], [114.0681, 22.5323], atol=1e-9)


def test_disk_exit_time():
    # at the centre, moving east at 10 m/s, radius 300 m: 30 s
    np.testing.assert_allclose(
        net.disk_exit_time_s(jnp.array([0.0, 0.0]), jnp.array([10.0, 0.0]), jnp.zeros(2), 300.0), 30.0
    )
    # 100 m west of the centre moving east at 20 m/s: (100 + 300) / 20 = 20 s
    np.testing.assert_allclose(
        net.disk_exit_time_s(jnp.array([-100.0, 0.0]), jnp.array([20.0, 0.0]), jnp.zeros(2), 300.0), 20.0, rtol=1e-6
    )
    # crossing a chord: at (0, 180) moving east at 8 m/s leaves at x = sqrt(300^2 - 180^2) = 240 m -> 30 s
    np.testing.assert_allclose(
        net.disk_exit_time_s(jnp.array([0.0, 180.0]), jnp.array([8.0, 0.0]), jnp.zeros(2), 300.0), 30.0, rtol=1e-6
    )
    # outside: 0 ; standing still: the cap
    assert float(net.disk_exit_time_s(jnp.array([400.0, 0.0]), jnp.array([-1.0, 0.0]), jnp.zeros(2), 300.0)) == 0.0
    assert float(net.disk_exit_time_s(jnp.array([0.0, 0.0]), jnp.array([0.05, 0.0]), jnp.zeros(2), 300.0)) == 1e3
    g = jax.grad(lambda x: net.disk_exit_time_s(jnp.array([x, 0.0]), jnp.array([10.0, 0.0]), jnp.zeros(2), 300.0))(0.0)
    np.testing.assert_allclose(g, -0.1, rtol=1e-5)


# ---------------------------------------------------------------- one link-rate formula for every scenario
def test_free_space_gain_and_link_rate_by_hand():
    # Friis, A = 1, l = 2, f = 2.4 GHz, d = 100 m: (lambda / (4 pi d))^2 = (0.125 / 1256.64)^2 = 9.8946e-9 (80.05 dB)
    np.testing.assert_allclose(net.path_loss_gain(100.0, 1.0, 2.4e9, 2.0), 9.8946e-9, rtol=1e-4)
    # spec 002: A = 3.0951e9 makes h(1200 m) = 0.1 at 3.5 GHz, so SNR = 1000 W * 0.1 / 10 W = 10 and
    # R = 300 MHz * log2(11) = 300e6 * 3.45943 = 1.03783e9 bit/s; a fading power of 2 doubles the SNR: log2(21)
    channel = {"gain_coeff": 3.0951e9, "carrier_hz": 3.5e9, "exponent": 2.0}
    np.testing.assert_allclose(net.link_rate_bps(1200.0, 300e6, 1000.0, 10.0, **channel), 1.03783e9, rtol=1e-4)
    faded = net.link_rate_bps(1200.0, 300e6, 1000.0, 10.0, fading=2.0, **channel)
    np.testing.assert_allclose(faded, 1.31770e9, rtol=1e-4)
    # spec 003 §2.7 vector through the same function: 1300.0 Mbps at 100 m
    rate = net.link_rate_bps(100.0, 400e6, 0.2, 1e-12, gain_coeff=4.11, carrier_hz=2e9, exponent=2.8)
    np.testing.assert_allclose(rate / 1e6, 1300.0, rtol=2e-4)
    # it is shannon_rate_bps of the faded path-loss gain, operation for operation
    d, fading = jnp.array([50.0, 300.0]), jnp.array([0.5, 1.7])
    expected = net.shannon_rate_bps(20e6, 0.3, fading * net.path_loss_gain(d, 4.11, 915e6, 2.8), 1e-13)
    got = net.link_rate_bps(d, 20e6, 0.3, 1e-13, gain_coeff=4.11, carrier_hz=915e6, exponent=2.8, fading=fading)
    np.testing.assert_array_equal(got, expected)


def test_noise_power_from_density():
    # -174 dBm/Hz over 10 MHz: -104 dBm = 3.981e-14 W; "density" reads -174 dBm as a power: 3.981e-21 W
    np.testing.assert_allclose(net.noise_power_from_density_w(-174.0, 10e6), 3.981e-14, rtol=1e-3)
    np.testing.assert_allclose(net.noise_power_from_density_w(-174.0, 10e6, "density"), 3.981e-21, rtol=1e-3)
    assert net.NOISE_MODELS == ("density_x_bandwidth", "density")


# ---------------------------------------------------------------- RSU layouts and the RSU graph
def test_grid_layouts_by_hand():
    assert net.rsu_grid_shape(4) == (2, 2) and net.rsu_grid_shape(6) == (2, 3) and net.rsu_grid_shape(7) == (1, 7)
    # 2 x 2 cells of 2.5 km on a 5 km map: centres at 1.25 and 3.75 km, row-major
    np.testing.assert_array_equal(
        net.grid_rsu_positions(4, 5000.0), [[1250, 1250], [3750, 1250], [1250, 3750], [3750, 3750]]
    )
    # a 4 km x 2 km core centred in a 10 km x 8 km map: origin (3000, 3000), cells 2000 x 1000, no jitter
    xy = net.jittered_grid_rsu_positions(4, (10_000.0, 8000.0), (4000.0, 2000.0), jitter=0.0)
    np.testing.assert_array_equal(xy, [[4000, 3500], [6000, 3500], [4000, 4500], [6000, 4500]])
    jittered = net.jittered_grid_rsu_positions(4, (10_000.0, 8000.0), (4000.0, 2000.0), seed=3)
    assert np.all(np.abs(jittered - xy) <= [0.25 * 2000, 0.25 * 1000])  # at most a quarter cell
    again = net.jittered_grid_rsu_positions(4, (10_000.0, 8000.0), (4000.0, 2000.0), seed=3)
    np.testing.assert_array_equal(jittered, again)
    # city: 5 RSUs on ceil(sqrt 5) = 3 columns x 2 rows of 1000 m x 1500 m; cells round(linspace(0, 5, 5)) = 0 1 2 4 5
    city = net.city_rsu_positions(5, 3000.0, seed=0, jitter=0.0)
    np.testing.assert_array_equal(city, [[500, 750], [1500, 750], [2500, 750], [1500, 2250], [2500, 2250]])


def test_road_layouts_by_hand():
    # corridor: x = (k + 0.5) 415 m, alternating y = 0 / 122 m
    np.testing.assert_allclose(net.corridor_rsu_positions(3, 415.0, 122.0), [[207.5, 0], [622.5, 122], [1037.5, 0]])
    # intersections of a 3 x 3 grid 1 km apart; only (1000, 1000) is in the core: 1 core RSU (round(3 * 0.5) = 2,
    # capped at 1), then 2 of the 8 outskirts intersections spread evenly: the first and the last
    crossings = np.array([(x, y) for y in (0.0, 1000.0, 2000.0) for x in (0.0, 1000.0, 2000.0)])
    xy = net.intersection_rsu_positions(crossings, (500.0, 500.0, 1500.0, 1500.0), 3, 0.5)
    np.testing.assert_array_equal(xy, [[1000, 1000], [0, 0], [2000, 2000]])
    with pytest.raises(ValueError, match="fewer than num_rsus"):
        net.intersection_rsu_positions(crossings, (500.0, 500.0, 1500.0, 1500.0), 10, 0.5)
    # rural: one north-south road at x = 1000 m: RSUs 10 m east of it, clusters of 4 spaced 800 m (clipped to the map)
    rural = net.rural_rsu_positions((2000.0, 5000.0), (1000.0,), (), 4, seed=0)
    np.testing.assert_array_equal(rural[:, 0], 1010.0)
    along = np.sort(rural[:, 1])
    assert np.all((along >= 0.0) & (along <= 5000.0)) and np.all(np.diff(along) <= 800.0 + 1e-3)
    east_west = net.rural_rsu_positions((5000.0, 2000.0), (), (600.0,), 3, seed=1)
    np.testing.assert_array_equal(east_west[:, 1], 610.0)


def test_knn_hop_counts_on_a_line():
    # 4 RSUs 1 km apart joined to their nearest neighbour (ties to the lower index): a path, H = |i - j|
    line = np.stack([np.arange(4) * 1000.0, np.zeros(4)], axis=1)
    hops = net.knn_hop_counts(line, 1)
    assert hops.dtype == np.int32
    np.testing.assert_array_equal(hops, np.abs(np.arange(4)[:, None] - np.arange(4)[None, :]))
