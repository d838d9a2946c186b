"""AvatarPremigration-v0 (spec 003): equations, contract (jit, vmap, params vmap, determinism, retracing),
differentiability, and bad input."""

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import vmjax
from vmjax import net
from vmjax.envs import avatar_premigration as ap

MB = 8e6


@pytest.fixture(scope="module")
def env():
    return vmjax.make("AvatarPremigration-v0")


@pytest.fixture(scope="module")
def params(env):
    return env.default_params


def worked_example_context(stay_time_s):
    """Spec 003 §2.7: serving RSU 0 at 100 m, target RSU 1 at 300 m."""
    rsu = ap.RsuState(
        bandwidth_hz=jnp.array([400e6, 400e6]),
        migration_bps=jnp.array([[900e6, 700e6], [700e6, 900e6]]),
        gpu_hz=jnp.array([20e9, 25e9]),
        max_workload_cycles=jnp.array([400e9, 500e9]),
        cloud_gpu_hz=jnp.array(75e9),
    )
    return ap.SlotContext(
        distance_m=jnp.array([[100.0, 300.0]]),
        serving=jnp.array([0]),
        velocity_mps=jnp.zeros((1, 2)),
        stay_time_s=jnp.array([stay_time_s]),
        uplink_share=jnp.ones(1),
        task_input_bits=jnp.array([16 * MB]),
        task_bits=jnp.array([150 * MB]),
        fading=None,
        queue_cycles=jnp.array([100e9, 40e9]),
        rsu=rsu,
    )


# ---------------------------------------------------------------- equations
def test_worked_vector_without_cloud(params):
    lat = ap.slot_latency(worked_example_context(20.0), jnp.array([1]), jnp.array([0.3]), params)
    np.testing.assert_allclose(lat["uplink_s"], 0.098462, rtol=1e-4)
    np.testing.assert_allclose(lat["processing_s"], 7.625, rtol=1e-5)
    np.testing.assert_allclose(lat["migration_s"], 0.514286, rtol=1e-5)
    np.testing.assert_allclose(lat["cloud_bits"], 0.0)
    # T^d = 105 MB * 8 / 2178.1 Mbps + 45 MB * 8 / 627.0 Mbps = 0.38566 + 0.57416
    np.testing.assert_allclose(lat["downlink_s"], 0.9598, rtol=2e-4)
    np.testing.assert_allclose(lat["total_latency_s"], 8.6832, rtol=1e-4)


def test_worked_vector_with_cloud_overflow(params):
    lat = ap.slot_latency(worked_example_context(5.0), jnp.array([1]), jnp.array([0.3]), params)
    # D^cloud = min(105 MB, (0.0985 + 7.625 - 5) s * 20 GHz / 0.5 Gcycles/MB = 108.9 MB) = 105 MB
    np.testing.assert_allclose(lat["cloud_bits"] / MB, 105.0, rtol=1e-5)
    # T^c = 105 MB * 8 / 200 Mbps + 105 MB * 0.5 / 75 GHz = 4.2 + 0.7
    np.testing.assert_allclose(lat["cloud_s"], 4.9, rtol=1e-5)
    np.testing.assert_allclose(lat["downlink_s"], 0.9598, rtol=2e-4)
    np.testing.assert_allclose(lat["total_latency_s"], 13.5832, rtol=1e-4)
    # cloud_truncate caps the local processing at t_stay - T^u = 4.9015 s
    cut = ap.slot_latency(worked_example_context(5.0), jnp.array([1]), jnp.array([0.3]), params, cloud_truncate=True)
    np.testing.assert_allclose(cut["processing_s"], 5.0 - 0.098462, rtol=1e-4)


def test_partial_cloud_share(params):
    # stay 7.5 s: overrun = 0.0985 + 7.625 - 7.5 = 0.2235 s -> 0.2235 * 40 MB/s = 8.94 MB to the cloud
    lat = ap.slot_latency(worked_example_context(7.5), jnp.array([1]), jnp.array([0.3]), params)
    np.testing.assert_allclose(lat["cloud_bits"] / MB, (0.098462 + 7.625 - 7.5) * 40.0, rtol=1e-3)


def test_no_premigration_when_target_is_serving_or_alpha_zero(params):
    ctx = worked_example_context(20.0)
    for target, alpha in [(0, 0.7), (1, 0.0)]:
        lat = ap.slot_latency(ctx, jnp.array([target]), jnp.array([alpha]), params)
        assert not bool(lat["premigrates"][0])
        np.testing.assert_allclose(lat["migration_s"], 0.0)
        # everything local: (100 + 75) Gcycles / 20 GHz = 8.75 s
        np.testing.assert_allclose(lat["processing_s"], 8.75, rtol=1e-5)


def test_step_updates_the_workload_queue_as_section_2_8(env, params):
    obs, state = jax.jit(env.reset)(jax.random.key(3), params)
    action = {"target": jnp.arange(10, dtype=jnp.int32) % 6, "fraction": jnp.linspace(0.0, 1.0, 10)}
    ctx = jax.jit(env.slot_context)(state, params)
    _, next_state, reward, _, _, info = jax.jit(env.step_env)(jax.random.key(4), state, action, params)
    lat = jax.jit(ap.slot_latency)(ctx, action["target"], action["fraction"], params)
    np.testing.assert_allclose(reward, -lat["total_latency_s"], rtol=1e-6)
    f = params.cycles_per_bit
    arrivals = np.zeros(6)
    for v in range(10):
        arrivals[int(ctx.serving[v])] += float((lat["local_bits"][v] - lat["cloud_bits"][v]) * f)
        if bool(lat["premigrates"][v]):
            arrivals[int(action["target"][v])] += float(lat["remote_bits"][v] * f)
    expected = np.minimum(
        np.maximum(np.asarray(state.queue_cycles) + arrivals - np.asarray(state.rsu.gpu_hz) * 10.0, 0.0),
        np.asarray(state.rsu.max_workload_cycles),
    )
    np.testing.assert_allclose(next_state.queue_cycles, expected, rtol=1e-5, atol=1e3)
    np.testing.assert_allclose(next_state.prev_latency_s, lat["total_latency_s"], rtol=1e-6)
    assert int(next_state.t) == 1


def test_serving_rsu_and_stay_time(env, params):
    _, state = jax.jit(env.reset)(jax.random.key(5), params)
    ctx = jax.jit(env.slot_context)(state, params)
    pos = np.asarray(env.vehicle_positions(state))
    rsu = np.asarray(params.rsu_xy_m)
    d = np.linalg.norm(pos[:, None] - rsu[None], axis=-1)
    np.testing.assert_array_equal(ctx.serving, d.argmin(axis=1))
    prev = np.asarray(state.trace.positions_m[env.config.history_slots - 1, :10])
    v = (pos - prev) / 10.0
    for i in range(10):
        c = rsu[d[i].argmin()]
        speed = np.linalg.norm(v[i])
        if d[i].min() > 300.0:
            expected = 0.0
        elif speed < 0.1:
            expected = 1e3
        else:  # walk along the ray until leaving the disk (independent of the closed form)
            taus = np.linspace(0.0, 1e3, 200_001)
            outside = np.linalg.norm(pos[i] + taus[:, None] * v[i] - c, axis=1) > 300.0
            expected = taus[outside.argmax()] if outside.any() else 1e3
        np.testing.assert_allclose(ctx.stay_time_s[i], expected, atol=6e-3)


def test_observation_is_eq_19(env, params):
    obs, state = env.reset(jax.random.key(6), params)
    assert obs.shape == (10, 15) and env.obs_dim == 15
    scale = params.max_workload_s * 20e9
    np.testing.assert_allclose(
        obs[:, :2], np.clip(env.vehicle_positions(state) / np.array([2490.0, 122.0]), 0, 1), rtol=1e-6
    )
    np.testing.assert_allclose(obs[3, 2:8], state.queue_cycles / scale, rtol=1e-6)
    np.testing.assert_allclose(obs[3, 8:14], state.queue_cycles / scale, rtol=1e-6)  # persistence forecast
    np.testing.assert_allclose(obs[:, 14], 0.0)  # T_v(0) = 0
    assert bool(env.observation_space(params).contains(obs))
    no_pred = vmjax.make("AvatarPremigration-v0", workload_forecast="none")
    assert no_pred.reset(jax.random.key(6), no_pred.default_params)[0].shape == (10, 9)
    extras = vmjax.make("AvatarPremigration-v0", obs_prev_fraction=True, obs_serving_onehot=True)
    obs_x, state_x = extras.reset(jax.random.key(6), extras.default_params)
    assert obs_x.shape == (10, 22)
    np.testing.assert_allclose(obs_x[:, -6:].sum(axis=1), 1.0)
    ws = env.world_state(state, params)
    assert ws.shape == (10, 160)
    np.testing.assert_allclose(ws[4, :150], obs.reshape(-1))
    np.testing.assert_allclose(ws[4, 150:], np.eye(10)[4])


def test_coverage_oracle_forecast_is_eq_18():
    env = vmjax.make("AvatarPremigration-v0", workload_forecast="coverage_oracle", num_background_vehicles=5)
    p = env.default_params
    obs, state = jax.jit(env.reset)(jax.random.key(7), p)
    future = np.asarray(state.trace.positions_m[env.config.history_slots + 1])  # p(t+1) of all 15 vehicles
    d = np.linalg.norm(future[:, None] - np.asarray(p.rsu_xy_m)[None], axis=-1)
    expected = 75e9 * (d <= 300.0).sum(axis=0)
    np.testing.assert_allclose(env.forecast(state, p), expected, rtol=1e-6)
    np.testing.assert_allclose(obs[0, 8:14], expected / (20.0 * 20e9), rtol=1e-6)


def test_background_vehicles_add_load():
    kwargs = dict(num_background_vehicles=30)
    env = vmjax.make("AvatarPremigration-v0", **kwargs)
    p = env.default_params
    _, state = jax.jit(env.reset)(jax.random.key(8), p)
    action = {"target": jnp.zeros(10, jnp.int32), "fraction": jnp.zeros(10)}
    step = jax.jit(env.step_env)
    _, with_bg, *_ = step(jax.random.key(9), state, action, p)
    _, without_bg, *_ = step(jax.random.key(9), state, action, p.replace(background_cycles_per_vehicle=0.0))
    bg = np.asarray(state.trace.positions_m[env.config.history_slots, 10:])
    counts = (np.linalg.norm(bg[:, None] - np.asarray(p.rsu_xy_m)[None], axis=-1) <= 300.0).sum(axis=0)
    cap = np.asarray(state.rsu.max_workload_cycles)
    diff = np.asarray(with_bg.queue_cycles) - np.asarray(without_bg.queue_cycles)
    unclipped = (np.asarray(with_bg.queue_cycles) < cap) & (np.asarray(without_bg.queue_cycles) > 0)
    np.testing.assert_allclose(diff[unclipped], 5e9 * counts[unclipped], rtol=1e-4)


def test_shared_uplink_divides_the_rate():
    shared = vmjax.make("AvatarPremigration-v0", share_uplink_bandwidth=True)
    plain = vmjax.make("AvatarPremigration-v0")
    p = plain.default_params
    _, state = plain.reset(jax.random.key(10), p)
    ctx_s, ctx_p = shared.slot_context(state, p), plain.slot_context(state, p)
    lat_s = ap.slot_latency(ctx_s, ctx_s.serving, jnp.zeros(10), p)
    lat_p = ap.slot_latency(ctx_p, ctx_p.serving, jnp.zeros(10), p)
    served = np.bincount(np.asarray(ctx_p.serving), minlength=6)[np.asarray(ctx_p.serving)]
    np.testing.assert_allclose(ctx_s.uplink_share, served)
    # rate = (B / n) log2(1 + snr): the uplink time grows exactly n-fold
    np.testing.assert_allclose(lat_s["uplink_s"], lat_p["uplink_s"] * served, rtol=1e-5)


def test_rayleigh_fading_draws_per_slot():
    env = vmjax.make("AvatarPremigration-v0", rayleigh_fading=True)
    p = env.default_params
    _, state = env.reset(jax.random.key(11), p)
    assert state.draws.fading.shape == (10, 6)
    ctx = env.slot_context(state, p)
    lat = ap.slot_latency(ctx, ctx.serving, jnp.zeros(10), p)
    plain = ap.slot_latency(ctx.replace(fading=None), ctx.serving, jnp.zeros(10), p)
    vehicles = np.arange(10)
    h = net.path_loss_gain(ctx.distance_m[vehicles, ctx.serving], 4.11, 2e9, 2.8)
    g = np.asarray(state.draws.fading)[vehicles, np.asarray(ctx.serving)]
    expected_rate = net.shannon_rate_bps(state.rsu.bandwidth_hz[ctx.serving], 0.2, h * g, 1e-12)
    np.testing.assert_allclose(lat["uplink_s"], ctx.task_input_bits / expected_rate, rtol=1e-5)
    assert not np.allclose(lat["uplink_s"], plain["uplink_s"])


def test_remote_area_mask_is_serving_and_next_ahead():
    env = vmjax.make("AvatarPremigration-v0", area="remote")
    p = env.default_params
    _, state = env.reset(jax.random.key(12), p)
    mask = np.asarray(env.action_mask(state, p))
    ctx = env.slot_context(state, p)
    assert mask.sum(axis=1).tolist() == [2] * 10
    assert mask[np.arange(10), np.asarray(ctx.serving)].all()
    pos, vel = np.asarray(env.vehicle_positions(state)), np.asarray(ctx.velocity_mps)
    for v in range(10):
        nxt = [m for m in np.flatnonzero(mask[v]) if m != int(ctx.serving[v])][0]
        others = [m for m in range(6) if m != int(ctx.serving[v])]
        ahead = [m for m in others if np.dot(np.asarray(p.rsu_xy_m)[m] - pos[v], vel[v]) > 0]
        dist = np.linalg.norm(np.asarray(p.rsu_xy_m) - pos[v], axis=1)
        expected = min(ahead or others, key=lambda m: dist[m])  # nearest ahead, else nearest other
        assert nxt == expected
    # a masked target is executed as "no pre-migration"
    blocked = np.argmin(mask, axis=1).astype(np.int32)
    _, _, _, _, _, info = env.step_env(
        jax.random.key(0), state, {"target": jnp.asarray(blocked), "fraction": jnp.ones(10)}, p
    )
    assert not bool(jnp.any(info["premigrated"]))
    np.testing.assert_array_equal(info["target"], ctx.serving)


def test_distance_rsu_order_is_a_relabelling_of_the_same_world():
    """rsu_order="distance": slot k is the k-th nearest RSU (slot 0 serving) in the observation, the mask
    and the action; the same RSU choice gives the same step as with index order."""
    by_index = vmjax.make("AvatarPremigration-v0", area="remote")
    by_distance = vmjax.make("AvatarPremigration-v0", area="remote", rsu_order="distance")
    p = by_index.default_params
    _, state = by_index.reset(jax.random.key(5), p)  # same state for both: the order is not part of it
    dist = np.linalg.norm(
        np.asarray(by_index.vehicle_positions(state))[:, None] - np.asarray(p.rsu_xy_m)[None], axis=-1
    )
    order = np.argsort(dist, axis=1, kind="stable")
    slots = np.asarray(by_distance.rsu_slots(state, p))
    np.testing.assert_array_equal(slots, order)
    np.testing.assert_array_equal(slots[:, 0], np.asarray(by_index.slot_context(state, p).serving))
    obs_i, obs_d = np.asarray(by_index.observation(state, p)), np.asarray(by_distance.observation(state, p))
    rows = np.arange(10)[:, None]
    np.testing.assert_array_equal(obs_d[:, :2], obs_i[:, :2])
    np.testing.assert_array_equal(obs_d[:, 2:8], obs_i[:, 2:8][rows, order])  # L(t) by distance
    np.testing.assert_array_equal(
        np.asarray(by_distance.action_mask(state, p)), np.asarray(by_index.action_mask(state, p))[rows, order]
    )
    rsu = jnp.asarray(np.random.default_rng(0).integers(0, 6, 10), jnp.int32)
    slot = by_distance.encode_target(state, p, rsu)
    np.testing.assert_array_equal(by_distance.decode_target(state, p, slot), rsu)
    np.testing.assert_array_equal(by_index.encode_target(state, p, rsu), rsu)
    fraction = jnp.linspace(0.0, 1.0, 10)
    _, _, r_i, _, _, info_i = by_index.step_env(jax.random.key(1), state, {"target": rsu, "fraction": fraction}, p)
    _, _, r_d, _, _, info_d = by_distance.step_env(jax.random.key(1), state, {"target": slot, "fraction": fraction}, p)
    np.testing.assert_array_equal(r_d, r_i)
    np.testing.assert_array_equal(info_d["target"], info_i["target"])


def test_grid_layout_runs_with_location_dependent_masks():
    env = vmjax.make("AvatarPremigration-v0", layout="grid", area="by_location", num_rsus=12, num_vehicles=20)
    p = env.default_params
    obs, state = jax.jit(env.reset)(jax.random.key(13), p)
    mask = np.asarray(jax.jit(env.action_mask)(state, p))
    pos = np.asarray(env.vehicle_positions(state))
    xmin, ymin, xmax, ymax = env.road_grid.core_box_m
    core = (pos[:, 0] >= xmin) & (pos[:, 0] <= xmax) & (pos[:, 1] >= ymin) & (pos[:, 1] <= ymax)
    assert mask[core].all() and (mask[~core].sum(axis=1) == 2).all()
    rsu = np.asarray(p.rsu_xy_m)
    in_core_rsu = (rsu[:, 0] >= xmin) & (rsu[:, 0] <= xmax) & (rsu[:, 1] >= ymin) & (rsu[:, 1] <= ymax)
    assert in_core_rsu.sum() == round(12 * 0.6)
    action = env.action_space(p).sample(jax.random.key(1))
    _, _, reward, *_ = jax.jit(env.step)(jax.random.key(2), state, action, p)
    assert np.isfinite(reward).all()


# ---------------------------------------------------------------- contract
def random_rollout(env, params, key, num_steps):
    def body(carry, k):
        state = carry
        k_act, k_step = jax.random.split(k)
        action = env.action_space(params).sample(k_act)
        obs, state, reward, term, trunc, info = env.step(k_step, state, action, params)
        return state, (obs, reward, trunc)

    k_reset, k_run = jax.random.split(key)
    _, state = env.reset(k_reset, params)
    return jax.lax.scan(body, state, jax.random.split(k_run, num_steps))[1]


def test_jit_determinism_and_time_limit(env, params):
    run = jax.jit(lambda k: random_rollout(env, params, k, 105))
    obs_a, rew_a, trunc_a = run(jax.random.key(0))
    obs_b, rew_b, trunc_b = run(jax.random.key(0))
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(rew_a, run(jax.random.key(1))[1])
    assert np.flatnonzero(np.asarray(trunc_a)).tolist() == [99]
    chex.assert_tree_all_finite((obs_a, rew_a))
    assert bool(env.observation_space(params).contains(obs_a[100]))


def test_step_traces_once(env, params):
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    reset = jax.jit(chex.assert_max_traces(env.reset, n=1))
    _, state = reset(jax.random.key(0), params)
    _, state = reset(jax.random.key(1), params)
    for i in range(3):
        action = env.action_space(params).sample(jax.random.key(i))
        _, state, *_ = step(jax.random.key(i), state, action, params)


def test_final_observation_at_the_time_limit():
    env = vmjax.make("AvatarPremigration-v0", max_steps=3)
    p = env.default_params
    obs, state = env.reset(jax.random.key(0), p)
    action = {"target": jnp.zeros(10, jnp.int32), "fraction": jnp.zeros(10)}
    for i in range(3):
        obs, state, reward, term, trunc, info = env.step(jax.random.key(i), state, action, p)
    assert bool(trunc) and not bool(term) and int(state.t) == 0
    assert not np.allclose(info["final_observation"][:, 14], 0.0)  # carries T_v(t-1) of the last slot
    np.testing.assert_allclose(obs[:, 14], 0.0)  # the new episode starts at T_v(0) = 0


def test_vmap_over_worlds_matches_single_worlds(env, params):
    keys = jax.random.split(jax.random.key(0), 4)
    obs_v, state_v = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    action = {"target": jnp.ones((4, 10), jnp.int32), "fraction": jnp.full((4, 10), 0.5)}
    out_v = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(keys, state_v, action, params)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    for i in range(4):
        _, state_i = reset(keys[i], params)
        out_i = step(keys[i], state_i, {"target": action["target"][i], "fraction": action["fraction"][i]}, params)
        np.testing.assert_allclose(out_v[2][i], out_i[2], rtol=1e-6)
        np.testing.assert_allclose(out_v[0][i], out_i[0], rtol=1e-6)


def test_vmap_over_params_is_a_gpu_capacity_ablation(env, params):
    """One compiled call sweeps the RSU GPU capacity (§10 #23: every RSU set to the swept value)."""
    capacities = jnp.array([10e9, 20e9, 30e9])
    swept = jax.vmap(lambda c: params.replace(rsu_gpu_hz_low=c, rsu_gpu_hz_high=c))(capacities)
    no_premigration = {"target": jnp.zeros(10, jnp.int32), "fraction": jnp.zeros(10)}

    def mean_latency(p):
        def body(state, k):
            _, state, reward, *_ = env.step(k, state, no_premigration, p)
            return state, reward

        _, state = env.reset(jax.random.key(0), p)
        return -jnp.mean(jax.lax.scan(body, state, jax.random.split(jax.random.key(1), 20))[1])

    latency = jax.jit(jax.vmap(mean_latency))(swept)
    assert latency.shape == (3,)
    assert latency[0] > latency[1] > latency[2]
    single = jax.jit(mean_latency)(params.replace(rsu_gpu_hz_low=20e9, rsu_gpu_hz_high=20e9))
    np.testing.assert_allclose(latency[1], single, rtol=1e-5)


# ---------------------------------------------------------------- differentiability
def test_grad_wrt_fraction_matches_finite_differences(env, params):
    _, state = env.reset(jax.random.key(21), params)
    ctx = env.slot_context(state, params)
    target = (ctx.serving + 1) % 6  # every vehicle pre-migrates to another RSU

    def total_reward(fraction):
        _, _, reward, *_ = env.step_env(jax.random.key(0), state, {"target": target, "fraction": fraction}, params)
        return jnp.sum(reward)

    fraction = jnp.linspace(0.15, 0.85, 10)
    grad = jax.grad(total_reward)(fraction)
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    eps = 1e-3
    for v in range(10):
        e = jnp.zeros(10).at[v].set(eps)
        fd = (total_reward(fraction + e) - total_reward(fraction - e)) / (2 * eps)
        np.testing.assert_allclose(grad[v], fd, rtol=2e-2, atol=2e-2)


def test_grad_wrt_rsu_gpu_capacity_matches_finite_differences(env, params):
    action = {"target": jnp.arange(10, dtype=jnp.int32) % 6, "fraction": jnp.full(10, 0.4)}

    def total_reward(gpu_ghz):
        p = params.replace(rsu_gpu_hz_low=gpu_ghz * 1e9, rsu_gpu_hz_high=gpu_ghz * 1e9 + 10e9)
        _, state = env.reset(jax.random.key(22), p)
        rewards = []
        for i in range(3):
            _, state, reward, *_ = env.step(jax.random.key(i), state, action, p)
            rewards.append(jnp.sum(reward))
        return sum(rewards)

    # the latency is piecewise smooth (max, min, clips): compare where two step sizes agree, i.e. no kink
    g = jax.jit(jax.grad(total_reward))(15.0)
    f = jax.jit(total_reward)
    fd = [(f(15.0 + eps) - f(15.0 - eps)) / (2 * eps) for eps in (0.01, 0.005)]
    np.testing.assert_allclose(fd[0], fd[1], rtol=5e-3)
    assert np.isfinite(g) and g > 0  # more GPU, less latency
    np.testing.assert_allclose(g, fd[0], rtol=1e-2)


# ---------------------------------------------------------------- bad input
def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="num_rsus"):
        vmjax.make("AvatarPremigration-v0", num_rsus=0)
    with pytest.raises(ValueError, match="num_vehicles"):
        vmjax.make("AvatarPremigration-v0", num_vehicles=2.5)
    with pytest.raises(ValueError, match="layout"):
        vmjax.make("AvatarPremigration-v0", layout="moon")
    with pytest.raises(ValueError, match="num_vehicle.*valid fields"):
        vmjax.make("AvatarPremigration-v0", num_vehicle=3)


def test_bad_params_name_the_field(env, params):
    with pytest.raises(ValueError, match="rsu_bandwidth_hz_low"):
        env.reset(jax.random.key(0), params.replace(rsu_bandwidth_hz_low=-1.0))
    with pytest.raises(ValueError, match="rsu_gpu_hz_low.*rsu_gpu_hz_high"):
        env.reset(jax.random.key(0), params.replace(rsu_gpu_hz_low=40e9))
    with pytest.raises(ValueError, match="noise_power_w"):
        env.validate_params(params.replace(noise_power_w=float("nan")))
    with pytest.raises(ValueError, match="rsu_xy_m"):
        env.reset(jax.random.key(0), params.replace(rsu_xy_m=jnp.zeros((5, 2))))
    with pytest.raises(ValueError, match="MobilityParams.stop_prob"):
        env.validate_params(params.replace(mobility=params.mobility.replace(stop_prob=1.5)))
    _, state = env.reset(jax.random.key(0), params)
    action = {"target": jnp.zeros(10, jnp.int32), "fraction": jnp.zeros(10)}
    with pytest.raises(ValueError, match="cloud_uplink_bps"):
        env.step(jax.random.key(0), state, action, params.replace(cloud_uplink_bps=0.0))


def test_bad_actions_name_the_field(env, params):
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    with pytest.raises(ValueError, match=r"action\['target'\] must have shape \(10,\)"):
        step(jax.random.key(0), state, {"target": jnp.zeros(9, jnp.int32), "fraction": jnp.zeros(10)}, params)
    with pytest.raises(ValueError, match=r"action\['fraction'\]"):
        step(jax.random.key(0), state, {"target": jnp.zeros(10, jnp.int32), "fraction": jnp.zeros((10, 1))}, params)
    with pytest.raises(ValueError, match="integer"):
        step(jax.random.key(0), state, {"target": jnp.zeros(10), "fraction": jnp.zeros(10)}, params)
    with pytest.raises(ValueError, match="keys"):
        step(jax.random.key(0), state, {"target": jnp.zeros(10, jnp.int32)}, params)


_jit_step = {}


@settings(max_examples=40, deadline=None)
@given(
    fraction=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.just(float("nan"))),
        min_size=10,
        max_size=10,
    ),
    target=st.lists(st.integers(-50, 50), min_size=10, max_size=10),
)
def test_any_action_gives_finite_rewards(fraction, target):
    if "env" not in _jit_step:
        env = vmjax.make("AvatarPremigration-v0")
        params = env.default_params
        _, state = env.reset(jax.random.key(0), params)
        _jit_step.update(env=env, step=jax.jit(env.step), state=state, params=params)
    env, state, params = _jit_step["env"], _jit_step["state"], _jit_step["params"]
    action = {"target": jnp.asarray(target, jnp.int32), "fraction": jnp.asarray(fraction, jnp.float32)}
    obs, _, reward, _, _, info = _jit_step["step"](jax.random.key(1), state, action, params)
    assert np.isfinite(np.asarray(reward)).all() and np.isfinite(np.asarray(obs)).all()
    applied = np.asarray(info["fraction"])
    assert ((applied >= 0) & (applied <= 1)).all()
    assert ((np.asarray(info["target"]) >= 0) & (np.asarray(info["target"]) < 6)).all()
