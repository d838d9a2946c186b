"""The NumPy reference simulators in bench/reference do the same work as AvatarPremigration-v0: fed the
trajectories, RSU draws, initial queues and tasks that the JAX env drew, and the same actions, both give
the JAX env's observations, rewards and latency terms (float32 tolerance), across a filling queue and an
episode end. Their own random draws (trajectories included) run and have the right shapes and laws."""

import dataclasses

import jax
import numpy as np
import pytest

import vmjax
from bench.reference import numpy_avatar as ref
from vmjax import mobility

RTOL, ATOL = 1e-4, 1e-6
LATENCY_KEYS = ("total_latency_s", "uplink_s", "processing_s", "migration_s", "cloud_s", "downlink_s")


def reference_params(params) -> ref.ReferenceParams:
    """The reference's constants from a vmjax EnvParams (same field names)."""
    fields = [f.name for f in dataclasses.fields(ref.ReferenceParams) if f.name != "mobility"]
    scalars = {name: float(getattr(params, name)) for name in fields}
    moving = {f.name: getattr(params.mobility, f.name) for f in dataclasses.fields(ref.MobilityParams)}
    return ref.ReferenceParams(**scalars, mobility=ref.MobilityParams(**moving))


def slot_draws(state) -> ref.SlotDraws:
    return ref.SlotDraws(np.asarray(state.draws.task_input_bits), np.asarray(state.draws.task_bits))


def episode_draws(state) -> ref.EpisodeDraws:
    """What a JAX reset drew, from its EnvState (leading world axis kept if there is one)."""
    r = state.rsu
    drawn = (r.bandwidth_hz, r.migration_bps, r.gpu_hz, r.max_workload_cycles, r.cloud_gpu_hz)
    rsu = ref.RsuDraws(*(np.asarray(x) for x in drawn))
    return ref.EpisodeDraws(np.asarray(state.trace.positions_m), rsu, np.asarray(state.queue_cycles), slot_draws(state))


def random_actions(rng, shape, num_rsus):
    """Targets anywhere (serving RSU included); fractions at the edges 0 and 1, inside, and out of range / NaN."""
    target = rng.integers(0, num_rsus, shape).astype(np.int32)
    kind = rng.integers(0, 5, shape)
    fraction = np.select(
        [kind == 0, kind == 1, kind == 2], [0.0, 1.0, rng.uniform(-0.2, 1.2, shape)], rng.uniform(0.0, 1.0, shape)
    ).astype(np.float32)
    fraction.flat[0] = np.nan  # made 0 by both
    return {"target": target, "fraction": fraction}


def assert_close(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def assert_step_matches(ref_out, jax_out, where):
    obs_r, reward_r, _, truncated_r, info_r = ref_out
    obs_j, reward_j, truncated_j, info_j = jax_out
    assert_close(reward_r, reward_j, f"reward {where}")
    assert np.array_equal(np.asarray(truncated_r), np.asarray(truncated_j)), where
    for key in LATENCY_KEYS + ("stay_time_s", "cloud_share", "fraction"):
        assert_close(info_r[key], info_j[key], f"info[{key!r}] {where}")
    for key in ("serving", "target", "premigrated", "workload_violations"):
        assert np.array_equal(np.asarray(info_r[key]), np.asarray(info_j[key])), f"info[{key!r}] {where}"
    # queue and overflow in cycles (~1e11): relative tolerance on the magnitude of the queue
    scale = float(np.max(np.asarray(info_j["queue_cycles"]))) + 1.0
    np.testing.assert_allclose(info_r["queue_cycles"], info_j["queue_cycles"], rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(info_r["overflow_cycles"], info_j["overflow_cycles"], rtol=RTOL, atol=RTOL * scale)
    assert_close(obs_r, obs_j, f"observation {where}")


def test_config_outside_the_benchmark_is_refused_by_name():
    for field, value in (
        ("layout", "grid"),
        ("area", "remote"),
        ("rayleigh_fading", True),
        ("workload_forecast", "lstm"),
        ("num_background_vehicles", 3),
        ("rsu_order", "distance"),
    ):
        with pytest.raises(NotImplementedError, match=field):
            ref.AvatarPremigrationNumpy(**{field: value})
    with pytest.raises(ValueError, match="unknown"):
        ref.BatchedAvatarPremigrationNumpy(2, vehicles=3)


def test_per_world_reference_matches_jax_env_through_full_queues_and_an_episode_end():
    env = vmjax.make("AvatarPremigration-v0", max_steps=6)
    # small, slow RSUs: queues reach L^max within a few slots (the clipped branch of the queue update)
    params = env.default_params.replace(rsu_gpu_hz_low=4e9, rsu_gpu_hz_high=8e9, max_workload_s=6.0)
    reference = ref.AvatarPremigrationNumpy(params=reference_params(params), max_steps=6)
    np.testing.assert_allclose(reference.rsu_xy_m, params.rsu_xy_m)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    obs_j, state = reset(jax.random.key(0), params)
    obs_r, _ = reference.reset(options={"draws": episode_draws(state)})
    assert_close(obs_r, obs_j, "reset observation")
    rng = np.random.default_rng(0)
    violations, ended = 0, 0
    for t in range(9):
        action = random_actions(rng, (env.num_agents,), env.num_rsus)
        obs_j, state, reward_j, _, truncated_j, info_j = step(jax.random.key(100 + t), state, action, params)
        out = reference.step(action, draws=slot_draws(state))
        assert_step_matches(out, (info_j["final_observation"], reward_j, truncated_j, info_j), f"at step {t}")
        violations += int(info_j["workload_violations"])
        if out[3]:  # time limit: the JAX env reset itself; the per-world reference is reset by the caller
            ended += 1
            obs_r, _ = reference.reset(options={"draws": episode_draws(state)})
            assert_close(obs_r, obs_j, f"observation after the reset at step {t}")
    assert ended == 1 and violations > 0


def test_batched_reference_matches_vmapped_jax_env_with_auto_reset():
    num_worlds, max_steps = 4, 4
    env = vmjax.make("AvatarPremigration-v0", max_steps=max_steps, workload_forecast="none")
    params = env.default_params
    reference = ref.BatchedAvatarPremigrationNumpy(
        num_worlds, params=reference_params(params), max_steps=max_steps, workload_forecast="none"
    )
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs_j, state = reset(jax.random.split(jax.random.key(1), num_worlds), params)
    obs_r, _ = reference.reset(draws=episode_draws(state))
    assert obs_r.shape == (num_worlds, env.num_agents, env.obs_dim) == (4, 10, 9)
    assert_close(obs_r, obs_j, "reset observation")
    rng = np.random.default_rng(1)
    for t in range(max_steps + 2):
        action = random_actions(rng, (num_worlds, env.num_agents), env.num_rsus)
        keys = jax.random.split(jax.random.key(200 + t), num_worlds)
        obs_j, state, reward_j, _, truncated_j, info_j = step(keys, state, action, params)
        out = reference.step(action, draws=slot_draws(state), reset_draws=episode_draws(state))
        final_r = (out[4]["final_observation"],) + out[1:]
        assert_step_matches(final_r, (info_j["final_observation"], reward_j, truncated_j, info_j), f"at step {t}")
        assert_close(out[0], obs_j, f"observation after any auto-reset at step {t}")
        assert bool(np.all(out[3])) == (t == max_steps - 1)


def test_references_run_on_their_own_draws():
    world = ref.AvatarPremigrationNumpy(seed=3, max_steps=5)
    obs, info = world.reset()
    assert obs.shape == (10, 15) and obs.dtype == np.float32 and info == {}
    assert world.world_state().shape == (10, 10 * 15 + 10) and world.action_mask().shape == (10, 6)
    for t in range(5):
        obs, reward, terminated, truncated, info = world.step(world.sample_action())
        assert obs.shape == (10, 15) and reward.shape == (10,) and np.all(np.isfinite(obs)) and np.all(reward < 0)
        assert not terminated and truncated == (t == 4)
    with pytest.raises(RuntimeError, match="reset"):
        world.step(world.sample_action())
    first, _ = world.reset(seed=7)
    again, _ = ref.AvatarPremigrationNumpy(seed=7, max_steps=5).reset()
    np.testing.assert_array_equal(first, again)  # deterministic per seed

    batch = ref.BatchedAvatarPremigrationNumpy(3, seed=4, max_steps=3)
    obs, _ = batch.reset()
    assert obs.shape == (3, 10, 15) and np.all(obs[..., -1] == 0)
    for t in range(7):
        obs, reward, terminated, truncated, info = batch.step(batch.sample_action())
        assert obs.shape == (3, 10, 15) and reward.shape == (3, 10) and truncated.shape == terminated.shape == (3,)
        assert np.all(np.isfinite(obs)) and np.all(reward < 0) and info["final_observation"].shape == (3, 10, 15)
        assert np.all(truncated == (t % 3 == 2))
        if truncated.all():
            assert np.all(obs[..., -1] == 0) and np.all(info["final_observation"][..., -1] > 0)


def test_reference_trajectories_follow_the_jax_mobility_law():
    """Same law as vmjax.mobility.generate_trajectories on the corridor (the streams differ): per-slot speed,
    stops, lanes and U-turns agree in distribution over many vehicles."""
    road_j = mobility.corridor_road(2490.0, 122.0)
    num_vehicles, num_steps = 400, 60
    static = ("grid", "num_vehicles", "num_steps", "substeps")
    generate = jax.jit(mobility.generate_trajectories, static_argnames=static)
    ours = ref.corridor_trajectories(
        np.random.default_rng(0),
        ref.CorridorRoad(2490.0, 122.0),
        ref.MobilityParams(),
        (num_vehicles,),
        num_steps,
        10.0,
    )
    trace = generate(jax.random.key(0), road_j, mobility.MobilityParams(), num_vehicles, num_steps, 10.0)
    theirs = np.asarray(trace.positions_m)

    def stats(positions):
        step_m = np.abs(np.diff(positions[..., 0], axis=0))
        y = positions[..., 1]
        return np.array(
            [
                step_m.mean() / 10.0,  # mean speed (GPS noise included)
                np.mean(step_m < 20.0),  # share of slot steps that are (nearly) stops
                np.mean(y < 61.0),  # share eastbound (lanes south of the centre line)
                np.mean(np.abs(np.abs(y - 61.0) - 6.0) < np.abs(np.abs(y - 61.0) - 16.0)),  # inner lane share
                np.mean(positions[..., 0]) / 2490.0,  # where along the road
            ]
        )

    np.testing.assert_allclose(stats(ours), stats(theirs), rtol=0.08, atol=0.02)
    assert ours.shape == theirs.shape == (num_steps, num_vehicles, 2) and ours.dtype == np.float32
    assert ours[..., 0].min() > -20 and ours[..., 0].max() < 2510  # reflected at the road ends (+ GPS noise)
