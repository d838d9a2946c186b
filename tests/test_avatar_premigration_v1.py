"""AvatarPremigration-v1 (spec 003 with same-slot contention, relayed results and background load): each new
switch against hand-computed numbers, the registration, and the v1 references (the observation-only greedy and
the per-slot oracles)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines import avatar_premigration as heuristics
from baselines import avatar_premigration_study as study
from vmjax import net
from vmjax.envs import avatar_premigration as ap

MB = 8e6
GCYCLES = 1e9


@pytest.fixture(scope="module")
def params():
    return vmjax.make("AvatarPremigration-v0").default_params


def context(serving, task_mb, gpu_ghz, queue_gcycles, distance_m=None, stay_s=1e3):
    """A slot of len(serving) vehicles and len(gpu_ghz) RSUs: 400 MHz radios, 700 Mbit/s wires, 16 MB inputs."""
    n, m = len(serving), len(gpu_ghz)
    distance = jnp.full((n, m), 100.0) if distance_m is None else jnp.asarray(distance_m, jnp.float32)
    rsu = ap.RsuState(
        bandwidth_hz=jnp.full(m, 400e6),
        migration_bps=jnp.full((m, m), 700e6),
        gpu_hz=jnp.asarray(gpu_ghz, jnp.float32) * 1e9,
        max_workload_cycles=jnp.asarray(gpu_ghz, jnp.float32) * 20e9,
        cloud_gpu_hz=jnp.array(75e9),
    )
    return ap.SlotContext(
        distance_m=distance,
        serving=jnp.asarray(serving, jnp.int32),
        velocity_mps=jnp.zeros((n, 2)),
        stay_time_s=jnp.full(n, stay_s),
        uplink_share=jnp.ones(n),
        task_input_bits=jnp.full(n, 16 * MB),
        task_bits=jnp.asarray(task_mb, jnp.float32) * MB,
        fading=None,
        queue_cycles=jnp.asarray(queue_gcycles, jnp.float32) * GCYCLES,
        rsu=rsu,
    )


def contended(ctx, target, fraction, params, others=None):
    wait = ap.same_slot_wait_cycles(ctx, jnp.asarray(target), jnp.asarray(fraction), params, others)
    return ap.slot_latency(ctx, jnp.asarray(target), jnp.asarray(fraction), params, same_slot_wait=wait), wait


# ---------------------------------------------------------------- processor sharing
def test_processor_sharing_wait_hand_computed():
    # tasks of 30, 60, 90 cycles started together: each waits for min(w_u, w_v) of every other task
    own = jnp.array([30.0, 60.0, 90.0])
    others = ~jnp.eye(3, dtype=bool)
    np.testing.assert_allclose(net.processor_sharing_wait_cycles(own, own, others), [60.0, 90.0, 90.0])
    # completion at (wait + own) / C on a server of 10 cycles/s: 9 s, 15 s, 18 s (= total work / C for the last)
    np.testing.assert_allclose((net.processor_sharing_wait_cycles(own, own, others) + own) / 10.0, [9.0, 15.0, 18.0])


def test_local_parts_share_the_serving_rsu(params):
    # two vehicles at RSU 0 (20 GHz, L = 100 Gcycles), alpha = 0, tasks 150 and 100 MB -> 75 and 50 Gcycles:
    # T^p = (100 + min(75, 50) + 75) / 20 = 11.25 s and (100 + min(50, 75) + 50) / 20 = 10 s (v0: 8.75, 7.5 s)
    ctx = context([0, 0], [150.0, 100.0], [20.0, 25.0], [100.0, 40.0])
    lat, (local_wait, remote_wait) = contended(ctx, [0, 0], [0.0, 0.0], params)
    np.testing.assert_allclose(local_wait / GCYCLES, [50.0, 50.0])
    np.testing.assert_allclose(remote_wait, [0.0, 0.0])
    np.testing.assert_allclose(lat["processing_s"], [11.25, 10.0], rtol=1e-6)
    alone = ap.slot_latency(ctx, jnp.array([0, 0]), jnp.array([0.0, 0.0]), params)
    np.testing.assert_allclose(alone["processing_s"], [8.75, 7.5], rtol=1e-6)


def test_premigrated_part_waits_behind_the_targets_local_tasks(params):
    # vehicle 0 (served by RSU 0) sends 0.3 of 150 MB = 22.5 Gcycles to RSU 1 (25 GHz, L = 40), where vehicle 1
    # keeps its 100 MB = 50 Gcycles: remote T^p = (40 + 50 + 22.5) / 25 = 4.5 s, plus T^m = 45 MB / 700 Mbit/s;
    # vehicle 1's local part is not delayed by the pre-migrated one: (40 + 50) / 25 = 3.6 s
    ctx = context([0, 1], [150.0, 100.0], [20.0, 25.0], [100.0, 40.0])
    lat, (local_wait, remote_wait) = contended(ctx, [1, 1], [0.3, 0.0], params)
    np.testing.assert_allclose(remote_wait / GCYCLES, [50.0, 0.0])
    np.testing.assert_allclose(local_wait, [0.0, 0.0])
    local0 = (100.0 + 0.7 * 75.0) / 20.0  # 7.625 s at the serving RSU
    np.testing.assert_allclose(lat["processing_s"], [max(local0, 45 * 8 / 700 + 4.5), 3.6], rtol=1e-6)


def test_premigrated_parts_share_the_target(params):
    # vehicles served by RSUs 0 and 1 both pre-migrate to RSU 2 (20 GHz, empty): 22.5 and 25 Gcycles;
    # remote T^p = (min(22.5, 25) + 22.5) / 20 = 2.25 s and (22.5 + 25) / 20 = 2.375 s
    ctx = context([0, 1], [150.0, 100.0], [20.0, 20.0, 20.0], [0.0, 0.0, 0.0])
    lat, (_, remote_wait) = contended(ctx, [2, 2], [0.3, 0.5], params)
    np.testing.assert_allclose(remote_wait / GCYCLES, [22.5, 22.5])
    migration = np.array([45.0, 50.0]) * 8 / 700
    np.testing.assert_allclose(lat["migration_s"], migration, rtol=1e-6)
    local = np.array([0.7 * 75.0, 0.5 * 50.0]) / 20.0
    np.testing.assert_allclose(lat["processing_s"], np.maximum(local, migration + [2.25, 2.375]), rtol=1e-6)


def test_unilateral_deviation_against_the_others_actions(params):
    # `others` fixes what the other vehicles do: vehicle 0 deviating to RSU 1 meets vehicle 1's local part there
    ctx = context([0, 1], [150.0, 100.0], [20.0, 25.0], [100.0, 40.0])
    joint = (jnp.array([1, 1]), jnp.array([0.3, 0.0]))
    _, joint_wait = contended(ctx, *joint, params)
    _, same = contended(ctx, *joint, params, others=joint)
    np.testing.assert_allclose(np.stack(joint_wait), np.stack(same))
    # the others pre-migrating everything to RSU 0 leave no local work at RSU 1 and queue behind nobody at RSU 0
    _, (local_wait, remote_wait) = contended(ctx, *joint, params, others=(jnp.array([1, 0]), jnp.array([0.3, 1.0])))
    np.testing.assert_allclose(remote_wait, [0.0, 0.0])
    np.testing.assert_allclose(local_wait, [0.0, 0.0])


def test_without_contention_the_v0_latency_is_unchanged(params):
    ctx = context([0, 0, 1], [150.0, 100.0, 50.0], [20.0, 25.0], [100.0, 40.0])
    target, fraction = jnp.array([1, 0, 1]), jnp.array([0.3, 0.5, 0.2])
    v0 = ap.slot_latency(ctx, target, fraction, params)
    none = ap.slot_latency(ctx, target, fraction, params, False, "direct", None)
    for key in ("total_latency_s", "processing_s", "downlink_s"):
        np.testing.assert_array_equal(v0[key], none[key])


# ---------------------------------------------------------------- relayed downlink
def test_relay_downlink_on_the_worked_vector(params):
    # spec §2.7 with the pre-migrated results relayed: 45 MB over the 700 Mbit/s wire, then the serving RSU's
    # 2178.1 Mbit/s downlink: T^d = 840 / 2178.1 + 360 / 700 + 360 / 2178.1 = 1.06522 s; T_v = 8.6832 - 0.9598 + T^d
    ctx = context([0], [150.0], [20.0, 25.0], [100.0, 40.0], distance_m=[[100.0, 300.0]], stay_s=20.0)
    direct = ap.slot_latency(ctx, jnp.array([1]), jnp.array([0.3]), params)
    relay = ap.slot_latency(ctx, jnp.array([1]), jnp.array([0.3]), params, downlink="relay")
    np.testing.assert_allclose(direct["downlink_s"], 0.9598, rtol=2e-4)
    np.testing.assert_allclose(relay["downlink_s"], 840 / 2178.1 + 360 / 700 + 360 / 2178.1, rtol=2e-4)
    np.testing.assert_allclose(relay["total_latency_s"], 8.6832 - 0.9598 + 1.06522, rtol=2e-4)
    # no pre-migration: both readings return the same results
    np.testing.assert_array_equal(
        ap.slot_latency(ctx, jnp.array([0]), jnp.array([0.3]), params, downlink="relay")["downlink_s"],
        ap.slot_latency(ctx, jnp.array([0]), jnp.array([0.3]), params)["downlink_s"],
    )


def test_unknown_downlink_is_rejected(params):
    ctx = context([0], [150.0], [20.0, 25.0], [100.0, 40.0])
    with pytest.raises(ValueError, match="downlink"):
        ap.slot_latency(ctx, jnp.array([1]), jnp.array([0.3]), params, downlink="wireless")
    with pytest.raises(ValueError, match="contention"):
        vmjax.make("AvatarPremigration-v1", contention="fifo")


# ---------------------------------------------------------------- the forecast with background vehicles
def test_forecast_counts_background_vehicles_at_their_load():
    # eq. (18) on the true next positions: agents at kappa = 75 Gcycles, background vehicles at kappa_bg = 5
    env = vmjax.make("AvatarPremigration-v1", workload_forecast="coverage_oracle", num_background_vehicles=5)
    p = env.default_params
    _, state = jax.jit(env.reset)(jax.random.key(7), p)
    future = np.asarray(state.trace.positions_m[env.config.history_slots + 1])  # p(t+1) of all 15 vehicles
    inside = np.linalg.norm(future[:, None] - np.asarray(p.rsu_xy_m)[None], axis=-1) <= 300.0
    expected = 75e9 * inside[:10].sum(axis=0) + 5e9 * inside[10:].sum(axis=0)
    np.testing.assert_allclose(env.forecast(state, p), expected, rtol=1e-6)


# ---------------------------------------------------------------- the registered v1
def test_v1_defaults_and_v0_unchanged():
    v0, v1 = vmjax.make("AvatarPremigration-v0"), vmjax.make("AvatarPremigration-v1")
    assert (v0.config.contention, v0.config.downlink, v0.config.num_background_vehicles) == ("none", "direct", 0)
    assert (v1.config.contention, v1.config.downlink, v1.config.num_background_vehicles) == (
        "processor_sharing",
        "relay",
        40,
    )
    assert v1.name == "AvatarPremigration-v1" and v0.name == "AvatarPremigration-v0"
    assert v1.obs_dim == v0.obs_dim
    # v1 with the three switches off is v0's config
    off = vmjax.make(
        "AvatarPremigration-v1",
        contention="none",
        downlink="direct",
        num_background_vehicles=0,
        forecast_background_at_kappa_bg=False,
    )
    assert dataclasses.asdict(off.config) == dataclasses.asdict(v0.config)


def test_v1_step_uses_the_contended_latency():
    env = vmjax.make("AvatarPremigration-v1")
    params = env.default_params
    _, state = jax.jit(env.reset)(jax.random.key(3), params)
    ctx = env.slot_context(state, params)
    action = {"target": ctx.serving, "fraction": jnp.zeros(env.num_agents)}
    _, _, reward, _, _, info = jax.jit(env.step)(jax.random.key(4), state, action, params)
    wait = ap.same_slot_wait_cycles(ctx, ctx.serving, jnp.zeros(env.num_agents), params)
    expected = ap.slot_latency(ctx, ctx.serving, jnp.zeros(env.num_agents), params, same_slot_wait=wait)
    np.testing.assert_allclose(-reward, expected["total_latency_s"], rtol=1e-6)
    alone = ap.slot_latency(ctx, ctx.serving, jnp.zeros(env.num_agents), params)
    shared = np.asarray(wait[0]) > 0
    assert shared.any()  # two vehicles share a serving RSU in this world
    assert np.all(np.asarray(expected["processing_s"])[shared] > np.asarray(alone["processing_s"])[shared])
    assert info["queue_fill"].shape == (env.num_rsus,)


def test_v1_jit_vmap_and_determinism():
    env = vmjax.make("AvatarPremigration-v1", num_vehicles=4, num_rsus=3, max_steps=5, num_background_vehicles=6)
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 3)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    action = {"target": jnp.ones((3, 4), jnp.int32), "fraction": jnp.full((3, 4), 0.4)}
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    first = step(keys, states, action, params)
    second = step(keys, states, action, params)
    np.testing.assert_array_equal(first[2], second[2])
    assert np.all(np.isfinite(first[2]))


# ---------------------------------------------------------------- the v1 references
@pytest.fixture(scope="module")
def small_v1():
    env = vmjax.make("AvatarPremigration-v1", num_vehicles=5, num_rsus=4, max_steps=4, num_background_vehicles=4)
    params = env.default_params
    _, state = env.reset(jax.random.key(11), params)
    return env, params, state


def test_greedy_observed_sees_only_the_observation(small_v1):
    # changing what eq. (19) does not observe (task sizes, RSU capacities, bandwidths) leaves its action unchanged
    env, params, state = small_v1
    policy = jax.jit(heuristics.make_greedy_observed_policy(env))
    before = policy(jax.random.key(0), state, params)
    hidden = state.replace(
        draws=state.draws.replace(task_bits=state.draws.task_bits * 1.7),
        rsu=state.rsu.replace(gpu_hz=state.rsu.gpu_hz[::-1], bandwidth_hz=state.rsu.bandwidth_hz * 0.5),
    )
    after = policy(jax.random.key(0), hidden, params)
    np.testing.assert_array_equal(before["target"], after["target"])
    np.testing.assert_array_equal(before["fraction"], after["fraction"])


def test_oracle_team_never_worse_than_no_premigration(small_v1):
    env, params, state = small_v1
    ctx = env.slot_context(state, params)
    team = jax.jit(heuristics.make_oracle_policy(env, objective="team"))(jax.random.key(0), state, params)
    rsu = env.decode_target(state, params, team["target"])
    oracle_total = env.slot_latency(ctx, rsu, team["fraction"], params)["total_latency_s"].sum()
    npm_total = env.slot_latency(ctx, ctx.serving, jnp.zeros(env.num_agents), params)["total_latency_s"].sum()
    assert float(oracle_total) <= float(npm_total) + 1e-4


def test_oracle_best_response_is_a_best_response(small_v1):
    # after the passes, no vehicle can lower its own latency by another grid action (given the others' actions)
    env, params, state = small_v1
    ctx = env.slot_context(state, params)
    action = jax.jit(heuristics.make_oracle_policy(env, rounds=6))(jax.random.key(0), state, params)
    target, fraction = env.decode_target(state, params, action["target"]), action["fraction"]
    own = env.slot_latency(ctx, target, fraction, params)["total_latency_s"]
    targets, fractions = jnp.repeat(jnp.arange(env.num_rsus), 21), jnp.tile(jnp.linspace(0.0, 1.0, 21), env.num_rsus)

    def deviation(v, m, a):
        return env.slot_latency(ctx, target.at[v].set(m), fraction.at[v].set(a), params)["total_latency_s"][v]

    best = jax.vmap(lambda v: jnp.min(jax.vmap(lambda m, a: deviation(v, m, a))(targets, fractions)))(
        jnp.arange(env.num_agents)
    )
    np.testing.assert_array_less(own - 1e-3, best)  # own <= every deviation (with float slack)


def test_oracle_objective_is_checked():
    with pytest.raises(ValueError, match="objective"):
        heuristics.make_oracle_policy(vmjax.make("AvatarPremigration-v1"), objective="social")


# ---------------------------------------------------------------- the sweeps
def test_swept_params_set_every_rsu_to_the_value():
    params = vmjax.make("AvatarPremigration-v1").default_params
    stacked = study.swept_params(params, "rsu_gpu_hz", 1e9, (10.0, 30.0))
    np.testing.assert_allclose(stacked.rsu_gpu_hz_low, [10e9, 30e9])
    np.testing.assert_allclose(stacked.rsu_gpu_hz_high, [10e9, 30e9])
    np.testing.assert_allclose(stacked.cloud_gpu_hz_low, [50e9, 50e9])  # the rest as usual
    sized = study.swept_params(params, "task_bits", MB, (100.0,))
    np.testing.assert_allclose(sized.task_bits_low, [100 * MB])
    np.testing.assert_allclose(sized.workload_per_vehicle_cycles, [50e9])  # kappa = D f = 100 MB * 0.5 Gcycles/MB


def test_a_sweep_point_is_the_evaluation_at_those_params():
    env = vmjax.make("AvatarPremigration-v1", num_vehicles=3, num_rsus=3, max_steps=3, num_background_vehicles=2)
    policies = [heuristics.make_no_premigration_policy(env), heuristics.make_lighter_neighbour_policy(env)]
    stacked = study.swept_params(env.default_params, "rsu_gpu_hz", 1e9, (10.0, 30.0))
    swept = np.asarray(study.make_sweep_evaluator(env, policies, 2)(jax.random.key(0), 1, stacked))
    point = jax.tree_util.tree_map(lambda x: x[1], stacked)
    alone = study.make_sweep_evaluator(env, policies, 2)
    single = jax.tree_util.tree_map(lambda x: x[None], point)
    np.testing.assert_allclose(swept[1], np.asarray(alone(jax.random.key(0), 1, single))[0], rtol=1e-6)
    assert swept[0].mean() > swept[1].mean()  # slower RSUs, longer latency


def test_convergence_iteration_hand_computed():
    from experiments.curves import convergence_iteration

    # 10 iterations at 10 s then 10 at 5 s: the 10-iteration mean first reaches 10 - 0.9 * 5 = 5.5 s at iteration 19
    assert convergence_iteration([10.0] * 10 + [5.0] * 10) == 19
    assert convergence_iteration([10.0] * 10 + [None] + [5.0] * 10) == 20  # iterations without an episode are skipped


def test_v1_trains_and_evaluates_from_the_command_line(tmp_path):
    from vmjax import cli

    run_dir = tmp_path / "v1"
    tiny = "--env.num_vehicles 3 --env.num_rsus 3 --env.max_steps 6 --env.num_background_vehicles 4".split()
    tiny += "--env.workload_forecast none --agent.num_envs 2 --agent.num_steps 6 --agent.num_iterations 1".split()
    cli.main(["train", "--env", "AvatarPremigration-v1", "--run.run_dir", str(run_dir), *tiny])
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["env"] == "AvatarPremigration-v1" and saved["env"]["contention"] == "processor_sharing"
    cli.main(["evaluate", str(run_dir), "--episodes", "2", "--seeds", "1"])
    results = json.loads((run_dir / "evaluation.json").read_text())["results"]
    assert {"Hybrid-MAPPO w/o pred.", "greedy_oracle", "greedy_observed", "oracle_best_response"} <= set(results)
    assert results["oracle_team"]["latency_s"] > 0
