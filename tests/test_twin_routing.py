"""TwinRouting-v0 (spec 002): every equation against the spec's worked example (§10.2) and hand-computed
values, the dynamic mask, the contract (jit, vmap over worlds and params, determinism, retracing,
gradients), z-score statistics, bad input, and the Greedy / Random baselines."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines.twin_routing import make_greedy_policy, make_random_policy
from vmjax import net
from vmjax.core.stats import RunningMoments
from vmjax.envs import twin_routing as tr

MB = 8e6
R_E = 6_371_393.0
SMALL = dict(num_vehicles=3, num_rsus=6, num_uavs=2, max_steps=6, city_size_m=2000.0)


@pytest.fixture(scope="module")
def env():
    return vmjax.make("TwinRouting-v0", **SMALL)


@pytest.fixture(scope="module")
def params(env):
    return env.default_params


@pytest.fixture(scope="module")
def jitted(env):
    return {
        "reset": jax.jit(chex.assert_max_traces(env.reset, n=1)),
        "step": jax.jit(chex.assert_max_traces(env.step, n=1)),
        "step_env": jax.jit(env.step_env),
        "mask": jax.jit(env.action_mask),
        "context": jax.jit(env.slot_context),
        "observation": jax.jit(env.observation),
    }


# ---------------------------------------------------------------- a hand-built slot (§10.2)
# servers: 0 RSU at (0, 0), 1 RSU at (800, 0), 2 UAV at (400, 300) and 50 m up, 3 satellite
HAND = dict(num_vehicles=2, num_rsus=2, num_uavs=1, max_steps=4, city_size_m=2000.0, parameter_set="literal")


@pytest.fixture(scope="module")
def hand():
    env = vmjax.make("TwinRouting-v0", **HAND)
    literal = env.default_params
    calibrated = literal.replace(**tr.PARAMETER_SETS["calibrated"])
    return {
        "env": env,
        "literal": literal,
        "calibrated": calibrated,
        "latency": jax.jit(env.slot_latency),
        "mask": jax.jit(env._mask),
    }


def hand_ctx(
    distance,
    background_mb=(0, 0, 0, 0),
    queue_mb=(0, 0, 0, 0),
    forecast_mb=None,
    host=(0, 0),
    placed=(True, True),
    active=(True, False),
    present=(True, True, True, True),
):
    forecast_mb = background_mb if forecast_mb is None else forecast_mb
    f = lambda x: jnp.asarray(x, jnp.float32)
    return tr.SlotContext(
        distance_m=f(distance),
        server_xy_m=f([[0.0, 0.0], [800.0, 0.0], [400.0, 300.0], [0.0, 0.0]]),
        server_height_m=f([0.0, 0.0, 50.0, 0.0]),
        present=jnp.asarray(present),
        background_bits=f(background_mb) * MB,
        forecast_bits=f(forecast_mb) * MB,
        queue_bits=f(queue_mb) * MB,
        host=jnp.asarray(host, jnp.int32),
        placed=jnp.asarray(placed),
        active=jnp.asarray(active),
    )


WORKED = [[800.0, 755.73, 900.0, 550e3], [100.0, 100.0, 100.0, 550e3]]


# ---------------------------------------------------------------- equations
def test_haversine_worked_example():
    """§10.2 / §10.3 #1-2: 755.73 m (standard), 1583.80 m (printed), 0 for one point, R_E pi / 180 per degree."""
    d = net.haversine_distance_m(0.0, 0.0, 0.005, 0.006, radius_m=R_E, origin_lat_deg=39.9)
    np.testing.assert_allclose(d, 755.73, atol=0.05)
    printed = net.haversine_distance_m(0.0, 0.0, 0.005, 0.006, radius_m=R_E, variant="printed", origin_lat_deg=39.9)
    np.testing.assert_allclose(printed, 1583.80, atol=0.05)
    np.testing.assert_allclose(
        net.haversine_distance_m(0.0, 0.0, 1.0, 0.0, radius_m=R_E), R_E * math.pi / 180, atol=1.0
    )
    # the env measures metres-from-origin positions on the same sphere: (0.005, 0.006) deg -> metres -> 755.73 m
    config = tr.TwinRoutingConfig(origin_lat_deg=39.9)
    rsu_xy = net.latlon_offset_to_xy_m(0.005, 0.006, 39.9, R_E)
    np.testing.assert_allclose(tr.ground_distance_m(jnp.zeros(2), rsu_xy, R_E, config), 755.73, atol=0.05)
    printed_cfg = tr.TwinRoutingConfig(origin_lat_deg=39.9, haversine_variant="printed")
    np.testing.assert_allclose(tr.ground_distance_m(jnp.zeros(2), rsu_xy, R_E, printed_cfg), 1583.80, atol=0.1)
    assert float(tr.ground_distance_m(rsu_xy, rsu_xy, R_E, config)) == 0.0
    # within the region the haversine and the planar distance agree to < 0.1 %
    planar = tr.ground_distance_m(
        jnp.zeros(2), jnp.array([3000.0, 4000.0]), R_E, tr.TwinRoutingConfig(distance_model="planar")
    )
    np.testing.assert_allclose(
        tr.ground_distance_m(jnp.zeros(2), jnp.array([3000.0, 4000.0]), R_E, config), planar, rtol=1e-3
    )


def test_uav_distance_with_altitude():
    np.testing.assert_allclose(net.distance_with_height_m(755.73, 50.0), 757.38, atol=0.01)
    assert float(net.distance_with_height_m(0.0, 50.0)) == 50.0  # no zero distance in the gain


def test_channel_calibration_and_rates(hand):
    p = hand["literal"]
    np.testing.assert_allclose(tr.literal_gain_coeff(10.0), 3.0951e9, rtol=1e-4)
    np.testing.assert_allclose(p.channel_gain_coeff, tr.literal_gain_coeff(10.0), rtol=1e-6)
    snr = lambda d: net.snr(1000.0, net.path_loss_gain(d, p.channel_gain_coeff, 3.5e9, 2.0), 10.0)
    np.testing.assert_allclose(snr(1200.0), 10.0, atol=1e-3)
    np.testing.assert_allclose(snr(755.73), 25.213, atol=1e-3)
    np.testing.assert_allclose(snr(600.0) / snr(1200.0), 4.0, rtol=1e-5)  # SNR proportional to D^-2
    rate = net.link_rate_bps(755.73, 300e6, 1000.0, p.noise_power_w, **tr.channel_constants(p))
    np.testing.assert_allclose(rate, 1.4137e9, atol=1e5)
    np.testing.assert_allclose(net.transfer_latency_s(2 * MB, rate), 11.318e-3, atol=1e-5)


def test_computing_latency_with_and_without_overflow(hand):
    p = hand["literal"]
    cul = lambda load_mb, overflow, sat, satellite=True: tr.computing_latency_s(
        load_mb * MB, 2 * MB, 80e9 if sat else 32e9, jnp.array(overflow), jnp.array(sat), p, satellite
    )
    np.testing.assert_allclose(cul(162.0, False, False), 40.5, rtol=1e-6)  # 1000 * 162 MB / 32 GHz
    np.testing.assert_allclose(cul(312.0, True, False), 0.2, rtol=1e-6)  # overflow -> 1000 * 2 MB / 80 GHz
    np.testing.assert_allclose(cul(312.0, True, False, satellite=False), 78.0, rtol=1e-6)  # no satellite: local
    np.testing.assert_allclose(cul(400.0, False, True), 40.0, rtol=1e-6)  # satellite host: 1000 * 400 MB / 80 GHz


def test_worked_example_slot(hand):
    """§10.2: host RSU 0, the vehicle moves its twin to RSU 1 (755.73 m) whose B + Q = 100 MB."""
    env, p = hand["env"], hand["literal"]
    out = hand["latency"](hand_ctx(WORKED, background_mb=(0, 100, 0, 0)), jnp.array([1, 0], jnp.int32), p)
    np.testing.assert_allclose(out["uplink_s"][0], 11.318e-3, atol=1e-5)
    np.testing.assert_allclose(out["downlink_s"][0], 11.318e-3, atol=1e-5)
    np.testing.assert_allclose(out["load_bits"][0] / MB, 162.0, rtol=1e-6)
    np.testing.assert_allclose(out["compute_s"][0], 40.5, rtol=1e-5)
    np.testing.assert_allclose(out["migration_s"][0], 0.3513, atol=1e-4)  # 480 Mbit / 1.3664 Gbit/s over 800 m
    np.testing.assert_allclose(out["total_latency_s"][0], 40.874, atol=1e-3)
    assert bool(out["migrated"][0]) and not bool(out["failure"][0])
    assert float(out["total_latency_s"][1]) == 0.0 and not bool(out["migrated"][1])  # inactive: nothing
    # reward with the illustrative norm stats: -(2 * 1.0874 + 1 * 0.7 + 1 * 0) = -2.8748
    z_t = tr.zscore(out["total_latency_s"][0], 30.0, 10.0)
    z_s = tr.zscore(out["load_bits"][0], 120 * MB, 60 * MB)
    np.testing.assert_allclose(-tr.reward_cost(z_t, z_s, out["failure"][0], out["migrated"][0], p), -2.8748, atol=1e-3)
    # the cache drains kappa = 32 GHz * 30 s / 1000 = 120 MB: Q(t+1) = 162 - 120 = 42 MB
    queue, _ = tr.drain_caches(out["server_loads_bits"], env.server_cpu_hz(p), env.server_cache_bits(p), p)
    np.testing.assert_allclose(queue[1] / MB, 42.0, rtol=1e-5)
    queue, slots = jnp.array([0.0, 300 * MB, 0.0, 0.0]), 0  # no arrivals: empty after ceil(300 / 120) = 3 slots
    while float(queue[1]) > 0:
        queue, slots = tr.drain_caches(queue, env.server_cpu_hz(p), env.server_cache_bits(p), p)[0], slots + 1
    assert slots == 3
    # overflow variant: B + Q = 250 MB -> S' = 312 MB > 300: satellite compute 0.2 s and xi = 1
    over = hand["latency"](hand_ctx(WORKED, background_mb=(0, 250, 0, 0)), jnp.array([1, 0], jnp.int32), p)
    np.testing.assert_allclose(over["compute_s"][0], 0.2, rtol=1e-5)
    assert bool(over["failure"][0]) and bool(over["overloaded"][0]) and not bool(over["out_of_range"][0])
    # ... which the mask would have excluded: S^pre + Q + S^mig = 310 MB > 300 MB
    assert not bool(hand["mask"](hand_ctx(WORKED, background_mb=(0, 250, 0, 0)), p)[0, 1])
    # the satellite: T^up = T^down = 16 Mbit / 100 Mbit/s, migration over R^SAT
    sat = hand["latency"](hand_ctx(WORKED), jnp.array([3, 0], jnp.int32), p)
    np.testing.assert_allclose(sat["uplink_s"][0], 0.16, rtol=1e-6)
    np.testing.assert_allclose(sat["downlink_s"][0], 0.16, rtol=1e-6)
    np.testing.assert_allclose(sat["migration_s"][0], 4.8, rtol=1e-6)
    assert bool(sat["on_satellite"][0]) and not bool(sat["failure"][0])


def test_migration_latency(hand):
    p, lat = hand["literal"], hand["latency"]
    stay = lat(hand_ctx(WORKED), jnp.array([0, 0], jnp.int32), p)
    assert float(stay["migration_s"][0]) == 0.0 and not bool(stay["migrated"][0])  # J = 0 when staying
    first = lat(hand_ctx(WORKED, placed=(False, False)), jnp.array([1, 0], jnp.int32), p)
    assert float(first["migration_s"][0]) == 0.0 and not bool(first["migrated"][0])  # J^0 = 0: placement is free
    # RSU 0 -> UAV at (400, 300), 50 m up: D^mig = sqrt(500^2 + 50^2)
    to_uav = lat(hand_ctx(WORKED), jnp.array([2, 0], jnp.int32), p)
    d_mig = math.hypot(500.0, 50.0)
    rate = net.link_rate_bps(d_mig, 300e6, 1000.0, p.noise_power_w, **tr.channel_constants(p))
    np.testing.assert_allclose(to_uav["migration_s"][0], 60 * MB / rate, rtol=1e-4)
    np.testing.assert_allclose(
        tr.migration_latency_s(jnp.array([True, False]), 60 * MB, 1.3664e9), [0.3513, 0.0], atol=1e-4
    )


def test_latency_options(hand):
    """OFDMA split (§2.4), overflow adding the satellite link (§2.7), satellite propagation (§2.5), the
    migrated twin not counted in the load (§2.6)."""
    p = hand["literal"]
    both = hand_ctx(WORKED, background_mb=(0, 100, 0, 0), active=(True, True))
    a = jnp.array([1, 1], jnp.int32)
    split = vmjax.make("TwinRouting-v0", **HAND, ofdma_split=True)
    plain, shared = hand["latency"](both, a, p), jax.jit(split.slot_latency)(both, a, p)
    np.testing.assert_allclose(shared["uplink_s"], 2 * plain["uplink_s"], rtol=1e-5)  # B / 2 each
    np.testing.assert_allclose(shared["downlink_s"], 2 * plain["downlink_s"], rtol=1e-5)
    opts = vmjax.make(
        "TwinRouting-v0", **HAND, overflow_adds_sat_comm=True, sat_prop_delay=True, count_mig_in_load=False
    )
    latency = jax.jit(opts.slot_latency)
    over = latency(hand_ctx(WORKED, background_mb=(0, 299, 0, 0)), jnp.array([1, 0], jnp.int32), p)
    np.testing.assert_allclose(over["load_bits"][0] / MB, 301.0, rtol=1e-6)  # 299 + S_v, no S^mig
    assert bool(over["overloaded"][0])
    np.testing.assert_allclose(over["extra_s"][0], 2 * 16e6 / 100e6, rtol=1e-6)
    sat = latency(hand_ctx(WORKED), jnp.array([3, 0], jnp.int32), p)
    np.testing.assert_allclose(sat["extra_s"][0], 2 * 550e3 / 3e8, rtol=1e-6)
    # up + down 0.32 s, migration over R^SAT 4.8 s, compute 1000 * 2 MB / 80 GHz (S^mig not counted), propagation
    np.testing.assert_allclose(sat["total_latency_s"][0], 0.32 + 4.8 + 0.2 + 2 * 550e3 / 3e8, rtol=1e-5)


def test_failure_flag_and_packet_loss():
    """§10.3 #8-9: 1201 m from an RSU fails, 1499 m from a UAV does not; q = [1, 0, 0, 1] -> 50 %."""
    xi = tr.failure_flag(
        jnp.array([1201.0, 1499.0, 1000.0, 5e5]),
        jnp.array([1200.0, 1500.0, 1200.0, jnp.inf]),
        jnp.array([0.0, 0.0, 301 * MB, 1e12]),
        jnp.array([300 * MB, 300 * MB, 300 * MB, jnp.inf]),
        jnp.array([False, False, False, True]),
    )
    np.testing.assert_array_equal(xi, [True, False, True, False])
    np.testing.assert_allclose(tr.packet_loss_rate(jnp.array([[1.0], [0.0], [0.0], [1.0]]), jnp.ones((4, 1))), [0.5])
    # inactive slots do not count: 2 failures over 3 active slots
    q = tr.packet_loss_rate(jnp.array([[1, 1], [0, 1], [1, 0], [1, 0]]), jnp.array([[1, 1], [1, 1], [1, 0], [0, 0]]))
    np.testing.assert_allclose(q, [2 / 3, 1.0])


def test_masked_softmax_example():
    """§10.2: logits (1, 2, 0.5, 0) under K = (1, 0, 1, 1): the masked server gets probability 0."""
    logits = jnp.where(jnp.array([True, False, True, True]), jnp.array([1.0, 2.0, 0.5, 0.0]), -1e9)
    np.testing.assert_allclose(jax.nn.softmax(logits), [0.50648, 0.0, 0.30720, 0.18632], atol=1e-5)


def test_calibration_sanity_both_parameter_sets(hand):
    """§7.3 / §11: at mean background load the nearest in-range RSU beats the satellite, and the calibrated
    set's transmission latency is milliseconds."""
    lit, cal = hand["literal"], hand["calibrated"]
    mean_bg = 0.5 * 120.0  # MB: B = 0.5 kappa
    sat_bg = 4.0 * 30.0 * 2.0  # kappa_sat * mean flow * S_v
    ctx = hand_ctx([[500.0, 900.0, 900.0, 550e3], WORKED[1]], background_mb=(mean_bg, mean_bg, 30.0, sat_bg))
    for p in (lit, cal):
        rsu = hand["latency"](ctx, jnp.array([0, 0], jnp.int32), p)
        sat = hand["latency"](ctx, jnp.array([3, 0], jnp.int32), p)
        assert float(rsu["total_latency_s"][0]) < float(sat["total_latency_s"][0])
    cal_rsu = hand["latency"](ctx, jnp.array([0, 0], jnp.int32), cal)
    assert 1e-4 < float(cal_rsu["uplink_s"][0] + cal_rsu["downlink_s"][0]) < 0.05


# ---------------------------------------------------------------- the mask
def test_mask_out_of_range_overflow_absent(hand):
    p, mask = hand["literal"], hand["mask"]
    # vehicle 0: RSU 0 out of range (1300 m), RSU 1 in range; vehicle 1 in range of every server
    dist = [[1300.0, 700.0, 1600.0, 550e3], [100.0, 100.0, 100.0, 550e3]]
    both = (True, True)
    k = np.asarray(mask(hand_ctx(dist, active=both), p))
    np.testing.assert_array_equal(k, [[False, True, False, True], [True, True, True, True]])
    # overflow: S^pre + Q = 290 MB at RSU 1; the current host (1) takes S_v = 2 MB, a new host S^mig = 60 MB
    ctx = hand_ctx(dist, background_mb=(290, 290, 0, 0), host=(1, 0), active=both)
    k = np.asarray(mask(ctx, p))
    assert k[0, 1] and k[1, 0] and not k[1, 1]  # the host stays feasible (+2 MB); a move there does not (+60 MB)
    # the forecast, not the true background, is what the mask tests (plus the cached work Q)
    k = np.asarray(
        mask(
            hand_ctx(
                dist, background_mb=(0, 290, 0, 0), forecast_mb=(0, 200, 0, 0), queue_mb=(0, 30, 0, 0), active=both
            ),
            p,
        )
    )
    assert k[1, 1]
    assert not np.asarray(mask(hand_ctx(dist, forecast_mb=(0, 200, 0, 0), queue_mb=(0, 50, 0, 0), active=both), p))[
        1, 1
    ]
    # absent servers (UAV not entered, padded RSU) are masked; the satellite is always selectable when present
    k = np.asarray(mask(hand_ctx(dist, present=(True, True, False, True), active=both), p))
    assert not k[:, 2].any() and k[:, 3].all()
    # an inactive vehicle: only its current host (a no-op), or the fallback when that host is absent
    np.testing.assert_array_equal(mask(hand_ctx(dist, host=(0, 2)), p)[1], [False, False, True, False])
    np.testing.assert_array_equal(
        mask(hand_ctx(dist, host=(0, 2), present=(True, True, False, True)), p)[1], [False, False, False, True]
    )


def test_mask_ablations(hand):
    p = hand["literal"]
    dist = [[1300.0, 1300.0, 1600.0, 550e3], [100.0, 100.0, 100.0, 550e3]]
    full = hand_ctx(dist, background_mb=(0, 0, 300, 0), active=(True, True))
    # use_mask=False: presence only
    off = vmjax.make("TwinRouting-v0", **HAND, use_mask=False)
    k = np.asarray(jax.jit(off._mask)(hand_ctx(dist, present=(True, True, False, True), active=(True, True)), p))
    np.testing.assert_array_equal(k, [[True, True, False, True]] * 2)
    # no satellite: a row with nothing feasible re-opens the nearest present RSU/UAV, and only it
    no_sat = vmjax.make("TwinRouting-v0", **HAND, use_satellite=False)
    k = np.asarray(jax.jit(no_sat._mask)(full.replace(present=jnp.array([True, True, True, False])), p))
    np.testing.assert_array_equal(k[0], [True, False, False, False])  # RSU 0 and 1 tie at 1300 m: the first
    np.testing.assert_array_equal(k[1], [True, True, False, False])  # the UAV is full
    assert k.any(axis=1).all()


def test_masked_servers_are_never_sampled(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(0), params)
    mask = jnp.array(
        [
            [True, False, False, True, False, False, False, False, False],
            [False] * 8 + [True],
            [False, True, True, False, False, True, False, True, False],
        ]
    )
    draws = jax.jit(jax.vmap(lambda k: env.action_space(params).sample(k, mask)))(
        jax.random.split(jax.random.key(1), 10_000)
    )
    draws = np.asarray(draws)
    assert mask[np.arange(3)[None, :], draws].all()
    assert set(np.unique(draws[:, 2])) == {1, 2, 5, 7}
    assert bool(jitted["mask"](state, params).any(axis=1).all())


def test_dynamic_uav_and_late_vehicle(env, params, jitted):
    dynamic = vmjax.make("TwinRouting-v0", **dict(SMALL, num_entering_uavs=1, num_exiting_uavs=1, num_late_vehicles=1))
    _, drawn = jax.jit(dynamic.reset)(jax.random.key(3), params)
    assert 1 <= int(drawn.uav_enter_slot[0]) <= 5 and int(drawn.uav_enter_slot[1]) == tr.ALWAYS
    assert int(drawn.uav_leave_slot[0]) == tr.NEVER and 1 <= int(drawn.uav_leave_slot[1]) <= 5
    assert drawn.depart_slot[:2].tolist() == [0, 0] and 1 <= int(drawn.depart_slot[2]) <= 5
    # entry / exit slots and departures are state: fix them and step the same compiled env
    _, state = jitted["reset"](jax.random.key(3), params)
    state = state.replace(
        uav_enter_slot=jnp.array([3, tr.ALWAYS], jnp.int32),
        uav_leave_slot=jnp.array([tr.NEVER, 2], jnp.int32),
        depart_slot=jnp.array([0, 0, 2], jnp.int32),
        placed=jnp.zeros(3, bool),
        queue_bits=jnp.zeros(9),
        forecast_bits=jnp.zeros(9),
    )
    entering, leaving = 6, 7
    for t in range(6):
        at = state.replace(t=jnp.int32(t))
        ctx = jitted["context"](at, params)
        present = np.asarray(ctx.present)
        assert present[entering] == (t >= 3)
        k, obs = np.asarray(jitted["mask"](at, params)), np.asarray(jitted["observation"](at, params))
        if t < 3:
            assert not k[:, entering].any() and np.allclose(obs[:, entering], 3000.0 / 1500.0)
            assert np.allclose(obs[:, 8 + entering], 0.0)
        if not present[leaving]:  # the leaving UAV heads for the boundary at slot 2 and is gone once there
            assert t >= 2 and not k[:, leaving].any()
        assert bool(np.asarray(ctx.active)[2]) == (t >= 2)
        if t < 2:  # before departure: one selectable no-op action
            assert k[2].sum() == 1
    # the late vehicle: no reward, no load, no latency before slot 2; its first active slot is free (J = 0)
    action = jnp.array([0, 1, 8], jnp.int32)
    for t in range(3):
        _, state, reward, _, _, info = jitted["step_env"](jax.random.key(t), state, action, params)
        assert bool(info["active"][2]) == (t >= 2)
        if t < 2:
            assert float(reward[2]) == 0.0 and float(info["total_latency_s"][2]) == 0.0
    assert not bool(info["migrated"][2]) and int(state.host[2]) == 8


# ---------------------------------------------------------------- observation and step vs equations
def test_observation_is_eq_19(env, params, jitted):
    obs, state = jitted["reset"](jax.random.key(1), params)
    n, u, m = 6, 2, 9
    assert obs.shape == (3, 2 * m - 1) and env.obs_dim == 17
    ctx = jitted["context"](state, params)
    np.testing.assert_allclose(
        obs[:, : n + u], np.clip(np.asarray(ctx.distance_m)[:, : n + u] / 1500.0, 0, 4), rtol=1e-6
    )
    expected = (np.asarray(state.forecast_bits) + np.asarray(state.queue_bits)) / (300 * MB)
    np.testing.assert_allclose(obs[:, n + u :], np.broadcast_to(expected, (3, m)), rtol=1e-6)
    np.testing.assert_allclose(state.forecast_bits, state.load_history_bits[-1], rtol=1e-6)  # persistence
    assert bool(env.observation_space(params).contains(obs))
    ws = env.world_state(state, params)
    assert ws.shape == (3, 3 * 17 + 3)
    np.testing.assert_allclose(ws[1, :51], obs.reshape(-1), rtol=1e-6)  # float32 rounding


def test_distances_are_haversine_with_altitude(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(2), params)
    ctx = jitted["context"](state, params)
    pos = np.asarray(state.trace.positions_m[0], np.float64)
    srv = np.asarray(ctx.server_xy_m, np.float64)[:8]
    deg = 180.0 / (math.pi * R_E)
    lat = lambda xy: (xy[..., 1] * deg, xy[..., 0] * deg / math.cos(math.radians(39.9)))
    (la, lo), (lb, lob) = lat(pos[:, None]), lat(srv[None])
    a = (
        np.sin(np.radians(la - lb) / 2) ** 2
        + np.cos(np.radians(39.9 + la)) * np.cos(np.radians(39.9 + lb)) * np.sin(np.radians(lo - lob) / 2) ** 2
    )
    ground = 2 * R_E * np.arcsin(np.sqrt(a))
    height = np.array([0.0] * 6 + [50.0] * 2)
    np.testing.assert_allclose(ctx.distance_m[:, :8], np.maximum(np.hypot(ground, height), 1.0), rtol=1e-4, atol=0.05)


def test_step_matches_the_equations(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(4), params)
    state = state.replace(queue_bits=jnp.linspace(0.0, 250 * MB, 9), placed=jnp.array([True, True, False]))
    action = jnp.array([1, 8, 3], jnp.int32)
    ctx = jitted["context"](state, params)
    _, nxt, reward, term, trunc, info = jitted["step_env"](jax.random.key(5), state, action, params)
    host = np.asarray(state.host)
    migrates = (action != host) & np.array([True, True, False])
    np.testing.assert_array_equal(info["migrated"], migrates)
    loads = np.asarray(ctx.background_bits) + np.asarray(ctx.queue_bits)
    for v in range(3):
        loads[int(action[v])] += 2 * MB + 60 * MB * migrates[v]
    np.testing.assert_allclose(info["load_bits"], loads[np.asarray(action)], rtol=1e-6)
    kappa = np.where(np.arange(9) == 8, 80e9, 32e9) * 30.0 / 1000.0
    cache = np.where(np.arange(9) == 8, np.inf, 300 * MB)
    np.testing.assert_allclose(nxt.queue_bits, np.minimum(np.maximum(loads - kappa, 0.0), cache), rtol=1e-5, atol=1.0)
    ground = np.ones(9, bool)
    ground[8] = False
    np.testing.assert_allclose(info["workload_variance_bits2"], np.var(loads[ground]), rtol=1e-4)
    mean, std = params.norm_stats.moments()
    cost = (
        2.0 * (np.asarray(info["total_latency_s"]) - mean[0]) / std[0]
        + (np.asarray(info["load_bits"]) - mean[1]) / std[1]
        + np.asarray(info["failure"], float)
    )
    np.testing.assert_allclose(reward, -cost, rtol=1e-5)
    np.testing.assert_array_equal(nxt.host, action)
    assert nxt.placed.all() and int(nxt.t) == 1 and not bool(term) and not bool(trunc)
    np.testing.assert_allclose(nxt.load_history_bits[-1], state.background_bits)  # the history rolls
    np.testing.assert_allclose(nxt.load_history_bits[:-1], state.load_history_bits[1:])


def test_invalid_actions_run_on_the_fallback(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(6), params)
    uav = 6
    state = state.replace(uav_enter_slot=state.uav_enter_slot.at[0].set(5))  # UAV 6 absent until slot 5
    _, _, reward, _, _, info = jitted["step_env"](jax.random.key(7), state, jnp.array([-3, 99, uav], jnp.int32), params)
    np.testing.assert_array_equal(info["invalid_action"], [True, True, True])
    np.testing.assert_array_equal(info["server"], [8, 8, 8])  # the satellite
    assert np.isfinite(np.asarray(reward)).all()


def test_forecast_modes(params):
    hist = jnp.arange(12.0).reshape(6, 2) * MB
    bg = jnp.array([100.0, 7.0]) * MB
    present = jnp.array([True, False])
    env = lambda mode: vmjax.make("TwinRouting-v0", **dict(SMALL, num_rsus=1, num_uavs=0, workload_forecast=mode))
    np.testing.assert_allclose(env("persistence").forecast(hist, bg, present, params), [10 * MB, 0.0])
    np.testing.assert_allclose(env("oracle").forecast(hist, bg, present, params), [100 * MB, 0.0])
    np.testing.assert_allclose(env("none").forecast(hist, bg, present, params), [0.0, 0.0])


def test_predictor_forecast_gets_the_load_history(monkeypatch):
    import vmjax.predict

    seen = {}

    def fake_predict_next_load(predictor, history):
        seen["shape"] = history.shape
        return predictor * history[-1]  # a "predictor" that scales the last slot

    monkeypatch.setattr(vmjax.predict, "predict_next_load", fake_predict_next_load, raising=False)
    env = vmjax.make("TwinRouting-v0", **SMALL, workload_forecast="predictor")
    p = env.default_params
    with pytest.raises(ValueError, match="workload_predictor"):
        env.reset(jax.random.key(0), p)
    p = p.replace(workload_predictor=jnp.float32(2.0))
    _, state = jax.jit(env.reset)(jax.random.key(0), p)
    assert seen["shape"] == (6, 9)  # [load_history_slots, num_servers], oldest first
    np.testing.assert_allclose(state.forecast_bits, 2.0 * state.load_history_bits[-1], rtol=1e-6)
    flow_env = vmjax.make("TwinRouting-v0", **SMALL, workload_forecast="predictor", forecast_units="flow")
    hist = jnp.full((6, 9), 4 * MB)
    np.testing.assert_allclose(flow_env.forecast(hist, hist[0], jnp.ones(9, bool), p), 2.0 * hist[-1], rtol=1e-6)


# ---------------------------------------------------------------- contract
def test_jit_determinism_and_time_limit(env, params, jitted):
    sample = jax.jit(lambda k, m: env.action_space(params).sample(k, m))

    def run(key):
        k_reset, k_run = jax.random.split(key)
        _, state = jitted["reset"](k_reset, params)
        out = []
        for k in jax.random.split(k_run, 8):
            k_act, k_step = jax.random.split(k)
            action = sample(k_act, jitted["mask"](state, params))
            obs, state, reward, _, trunc, info = jitted["step"](k_step, state, action, params)
            out.append((obs, reward, trunc, info["total_latency_s"], info["final_observation"]))
        return [np.stack(x) for x in zip(*out)]

    obs_a, rew_a, trunc_a, lat_a, final_a = run(jax.random.key(0))
    obs_b, rew_b, *_ = run(jax.random.key(0))
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(rew_a, run(jax.random.key(1))[1])
    assert np.flatnonzero(trunc_a).tolist() == [5]
    assert not np.array_equal(final_a[5], obs_a[5])  # auto-reset: the last observation is kept apart
    chex.assert_tree_all_finite((obs_a, rew_a, lat_a))
    assert bool(env.observation_space(params).contains(jnp.asarray(obs_a[6])))


def test_step_and_reset_trace_once(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(0), params)
    _, state = jitted["reset"](jax.random.key(1), params)
    for i in range(3):
        action = env.action_space(params).sample(jax.random.key(i), jitted["mask"](state, params))
        _, state, *_ = jitted["step"](jax.random.key(i), state, action, params)


def test_vmap_over_worlds_matches_single_worlds(env, params, jitted):
    keys = jax.random.split(jax.random.key(0), 3)
    action = jnp.array([[0, 8, 1], [2, 2, 2], [8, 7, 6]], jnp.int32)

    def reset_and_step(key, a):
        _, state = env.reset(key, params)
        return env.step_env(key, state, a, params)

    out_v = jax.jit(jax.vmap(reset_and_step))(keys, action)
    for i in range(3):
        _, state_i = jitted["reset"](keys[i], params)
        out_i = jitted["step_env"](keys[i], state_i, action[i], params)
        np.testing.assert_allclose(out_v[2][i], out_i[2], rtol=1e-5, atol=1e-6)  # z-scored rewards are O(1)
        np.testing.assert_allclose(out_v[0][i], out_i[0], rtol=1e-5)


def test_vmap_over_params_sweeps_the_migration_size(env, params, jitted):
    """§8.2 #6 in one compiled call: a larger S^mig makes every migration slower."""
    sizes = jnp.array([40.0, 80.0, 120.0]) * MB
    swept = jax.vmap(lambda s: params.replace(migration_bits=s))(sizes)
    actions = jnp.array([[0, 1, 2], [3, 4, 5], [0, 1, 2]], jnp.int32)  # everyone migrates twice

    _, start = jitted["reset"](jax.random.key(0), params)

    def migration_time(p, step_env):
        total, state = 0.0, start
        for a in actions:
            _, state, _, _, _, info = step_env(jax.random.key(1), state, a, p)
            total = total + jnp.sum(info["migration_s"])
        return total

    times = jax.jit(jax.vmap(lambda p: migration_time(p, env.step_env)))(swept)
    assert times[0] < times[1] < times[2]
    single = migration_time(params.replace(migration_bits=80 * MB), jitted["step_env"])
    np.testing.assert_allclose(times[1], single, rtol=1e-5)


def test_grad_wrt_continuous_params_matches_finite_differences(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(8), params)
    state = state.replace(placed=jnp.ones(3, bool))
    action = jnp.array([1, 8, 6], jnp.int32)

    def total_reward(x):
        cpu_scale, altitude = x
        p = params.replace(edge_cpu_hz=32e9 * cpu_scale, uav_altitude_m=altitude)
        _, _, reward, *_ = env.step_env(jax.random.key(0), state, action, p)
        return jnp.sum(reward)

    x = jnp.array([1.0, 50.0])
    g = jax.jit(jax.grad(total_reward))(x)
    assert np.isfinite(g).all()
    assert g[0] > 0  # faster edge CPUs, shorter compute, higher reward
    f = jax.jit(total_reward)
    for i, eps in enumerate((1e-2, 1.0)):
        e = jnp.zeros(2).at[i].set(eps)
        fd = (f(x + e) - f(x - e)) / (2 * eps)
        np.testing.assert_allclose(g[i], fd, rtol=2e-2, atol=1e-3)


# ---------------------------------------------------------------- z-score statistics
def test_running_moments_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (20, 5)).astype(np.float32)
    w = rng.random((20, 5)) < 0.7
    moments = RunningMoments.zeros(())
    update = jax.jit(lambda m, x, w: m.update(x, w))
    for xs, ws in zip(x, w):
        moments = update(moments, xs, ws)
    np.testing.assert_allclose(moments.count, w.sum())
    np.testing.assert_allclose(moments.mean, x[w].mean(), rtol=1e-5)
    np.testing.assert_allclose(moments.std, x[w].std(ddof=1), rtol=1e-4)
    unchanged = update(moments, jnp.ones(5), jnp.zeros(5, bool))
    np.testing.assert_allclose(unchanged.mean, moments.mean)


def test_running_norm_stats_live_in_the_state():
    env = vmjax.make("TwinRouting-v0", **SMALL, norm_mode="running", norm_scope="persistent")
    p = env.default_params.replace(norm_warmup_samples=6.0)
    step, reset = jax.jit(env.step_env), jax.jit(env.reset)
    obs, state = reset(jax.random.key(0), p)
    assert state.norm.count.shape == (3,) and float(state.norm.count[0]) == 0.0
    action = jnp.array([0, 1, 8], jnp.int32)
    latencies, loads = [], []
    for i in range(4):
        before = state
        mean, std = env.norm_moments(state, p)
        _, state, reward, _, _, info = step(jax.random.key(i), state, action, p)
        again = step(jax.random.key(i), before, action, p)
        np.testing.assert_array_equal(again[2], reward)  # pure: same state in, same reward out
        np.testing.assert_array_equal(before.norm.count, [3.0 * i, 3.0 * i, 1.0 * i])  # the input is untouched
        z = (np.asarray(info["total_latency_s"]) - mean[0]) / std[0]
        np.testing.assert_allclose(info["z_latency"], z, rtol=1e-4, atol=1e-4)  # stats from before the update
        latencies.append(np.asarray(info["total_latency_s"]))
        loads.append(np.asarray(info["load_bits"]))
        if i < 2:  # warm-up (< 6 samples): the priors of params.norm_stats
            np.testing.assert_allclose(mean, p.norm_stats.moments()[0])
    assert float(state.norm.count[0]) == 12.0
    stats = env.running_norm_stats(state, p)
    np.testing.assert_allclose(stats.latency_mean_s, np.mean(latencies), rtol=1e-4)
    np.testing.assert_allclose(stats.latency_std_s, np.std(latencies, ddof=1), rtol=1e-3)
    np.testing.assert_allclose(stats.load_mean_bits, np.mean(loads), rtol=1e-4)
    # the auto-reset keeps them with norm_scope="persistent", drops them with "episode"
    fresh = (obs, reset(jax.random.key(1), p)[1])
    kept = env.merge_reset(jnp.array(True), fresh, (obs, state))[1]
    np.testing.assert_array_equal(kept.norm.count, state.norm.count)
    assert int(kept.t) == 0
    episode = vmjax.make("TwinRouting-v0", **SMALL, norm_mode="running")
    assert float(episode.merge_reset(jnp.array(True), fresh, (obs, state))[1].norm.count[0]) == 0.0


def test_fixed_norm_stats_are_params(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(9), params)
    action = jnp.array([0, 1, 8], jnp.int32)
    _, _, r1, _, _, info = jitted["step_env"](jax.random.key(0), state, action, params)
    doubled = params.replace(norm_stats=params.norm_stats.replace(latency_std_s=2 * params.norm_stats.latency_std_s))
    _, _, r2, _, _, _ = jitted["step_env"](jax.random.key(0), state, action, doubled)
    np.testing.assert_allclose(r2 - r1, np.asarray(info["z_latency"]), rtol=1e-4, atol=1e-5)  # 2 z / 2 - 2 z


def test_reward_options(params, jitted):
    """Eq. (21) (the workload variance instead of the chosen server's load), the team reward and w_J."""
    env = vmjax.make("TwinRouting-v0", **SMALL, reward_form="weighted_sum", team_reward=True)
    p = params.replace(w_migration=0.5)
    _, state = jitted["reset"](jax.random.key(0), p)  # the same state layout as the default config
    state = state.replace(placed=jnp.ones(3, bool))
    _, _, reward, _, _, info = jax.jit(env.step_env)(jax.random.key(1), state, jnp.array([0, 4, 8], jnp.int32), p)
    mean, std = p.norm_stats.moments()
    z_v = (float(info["workload_variance_bits2"]) - mean[2]) / std[2]
    cost = (
        2 * np.asarray(info["z_latency"])
        + z_v
        + np.asarray(info["failure"], float)
        + 0.5 * np.asarray(info["migrated"], float)
    )
    np.testing.assert_allclose(reward, np.full(3, -cost.mean()), rtol=1e-5)


# ---------------------------------------------------------------- bad input
def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="num_rsus"):
        vmjax.make("TwinRouting-v0", num_rsus=0)
    with pytest.raises(ValueError, match="workload_forecast"):
        vmjax.make("TwinRouting-v0", workload_forecast="lstm")
    with pytest.raises(ValueError, match="use_mask"):
        vmjax.make("TwinRouting-v0", use_mask="no")
    with pytest.raises(ValueError, match="num_entering_uavs"):
        vmjax.make("TwinRouting-v0", num_uavs=10, num_entering_uavs=5, num_exiting_uavs=6)
    with pytest.raises(ValueError, match="num_uav.*valid fields"):
        vmjax.make("TwinRouting-v0", num_uav=3)
    env = vmjax.make("TwinRouting-v0", **tr.DYNAMIC_ENTRY)
    assert env.num_servers == 76 + 11 + 1
    assert vmjax.make("TwinRouting-v0").obs_dim == 2 * (76 + 10 + 1) - 1  # eq. (19): 2M - 1
    assert vmjax.make("TwinRouting-v0", num_rsus=84).obs_dim == 189  # M_max = 95 (§5.2)


def test_bad_params_name_the_field(env, params):
    with pytest.raises(ValueError, match="edge_cpu_hz"):
        env.reset(jax.random.key(0), params.replace(edge_cpu_hz=-1.0))
    with pytest.raises(ValueError, match="noise_power_w"):
        env.validate_params(params.replace(noise_power_w=float("nan")))
    with pytest.raises(ValueError, match="rsu_xy_m"):
        env.validate_params(params.replace(rsu_xy_m=jnp.zeros((5, 2))))
    with pytest.raises(ValueError, match="uav_loops_m"):
        env.validate_params(params.replace(uav_loops_m=jnp.zeros((3, 4, 2))))
    with pytest.raises(ValueError, match="norm_stats.latency_std_s"):
        env.validate_params(params.replace(norm_stats=params.norm_stats.replace(latency_std_s=0.0)))
    with pytest.raises(ValueError, match="flow_ar_coeff"):
        env.validate_params(params.replace(flow_ar_coeff=1.0))
    with pytest.raises(ValueError, match="MobilityParams.stop_prob"):
        env.validate_params(params.replace(mobility=params.mobility.replace(stop_prob=1.5)))
    with pytest.raises(ValueError, match="trace"):
        env.validate_params(params.replace(trace=vmjax.mobility.Trace.create(jnp.zeros((3, 3, 2)))))


def test_bad_actions_name_the_problem(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(0), params)
    step = jax.jit(env.step)  # the errors come at trace time: nothing compiles
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        step(jax.random.key(0), state, jnp.zeros(2, jnp.int32), params)
    with pytest.raises(ValueError, match="integer"):
        step(jax.random.key(0), state, jnp.zeros(3), params)
    with pytest.raises(ValueError, match="dict"):
        step(jax.random.key(0), state, {"server": jnp.zeros(3, jnp.int32)}, params)


# ---------------------------------------------------------------- baselines
def test_baselines_respect_the_mask(env, params, jitted):
    states = [jitted["reset"](jax.random.key(i), params)[1] for i in range(3)]
    states.append(states[0].replace(queue_bits=jnp.linspace(150 * MB, 300 * MB, 9)))  # congested caches
    for make in (make_greedy_policy, make_random_policy):
        policy = jax.jit(jax.vmap(make(env), in_axes=(0, None, None)))
        for state in states:
            mask = np.asarray(jitted["mask"](state, params))
            actions = np.asarray(policy(jax.random.split(jax.random.key(0), 200), state, params))
            assert mask[np.arange(3)[None, :], actions].all()


def test_greedy_picks_the_nearest_feasible_server(env, params, jitted):
    _, state = jitted["reset"](jax.random.key(11), params)
    greedy = jax.jit(make_greedy_policy(env, explore_prob=0.0))
    choice = np.asarray(greedy(jax.random.key(0), state, params))
    ctx, mask = jitted["context"](state, params), np.asarray(jitted["mask"](state, params))
    d = np.where(mask[:, :8], np.asarray(ctx.distance_m)[:, :8], np.inf)
    np.testing.assert_array_equal(choice, d.argmin(axis=1))
    full = state.replace(queue_bits=jnp.full(9, 300 * MB).at[8].set(0.0))  # every RSU/UAV full
    np.testing.assert_array_equal(greedy(jax.random.key(0), full, params), [8, 8, 8])


def test_background_load_series_is_the_episode_background_process():
    """The predictor's training series (§4.3) is the env's own B_m(t): without flow noise it is deterministic
    and equals the background loads an episode from the same reset key goes through; with noise it keeps the
    AR(1) flow's stationary level."""
    env = vmjax.make("TwinRouting-v0", **SMALL, workload_forecast="predictor")
    params = env.default_params.replace(flow_noise_frac=0.0)
    key = jax.random.key(3)
    series = jax.jit(env.background_load_series, static_argnums=2)(key, params, 40)
    assert series.shape == (40, env.num_servers)
    persistence = vmjax.make("TwinRouting-v0", **SMALL)  # the same world with a forecast that needs no predictor
    _, state = jax.jit(persistence.reset_env)(jax.random.split(key)[0], params)
    backgrounds = [state.background_bits]
    step = jax.jit(persistence.step_env)
    for t in range(SMALL["max_steps"] - 1):
        _, state, *_ = step(jax.random.key(t), state, state.host, params)
        backgrounds.append(state.background_bits)
    np.testing.assert_allclose(series[: SMALL["max_steps"]], np.stack(backgrounds), rtol=1e-5)
    noisy = jax.jit(env.background_load_series, static_argnums=2)(key, env.default_params, 2000)
    rsu_mean_flow = float(jnp.mean(noisy[:, : env.num_rsus])) / float(params.data_bits)
    assert abs(rsu_mean_flow - float(params.flow_mean_vehicles)) < 0.1 * float(params.flow_mean_vehicles)
    with pytest.raises(ValueError, match="num_slots"):
        env.background_load_series(key, params, 0)
