"""Heuristics and evaluation of TwinSplit-v0 (baselines/twin_split.py, spec 004 §7-§8): targets on a hand-built
state, fraction ranges, jit/vmap, per-episode metrics against a NumPy recomputation, same worlds for every
policy, policy extras, and the C_nom sweep as one vmapped evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines.twin_split import (
    POLICIES,
    gpu_capacity_sweep,
    heuristic_policies,
    make_full_migration,
    make_greedy_balanced,
    make_greedy_least_loaded,
    make_no_premigration,
    make_policy_evaluator,
    make_random_migration,
    rollout_raw,
)
from vmjax.core import rollout
from vmjax.core.rollout import StatefulPolicy
from vmjax.envs.twin_split import TwinSplit
from vmjax.mobility import Trace

# 3 x 3 RSU grid on 5 km: centres at 833, 2500, 4167 m; RSU e = row * 3 + col (x = col, y = row)
POSITIONS = np.asarray([[1000.0, 900.0], [4000.0, 4100.0], [2450.0, 2400.0]], np.float32)
SERVING = [0, 8, 4]
NEAREST_OTHER = [1, 7, 1]
THREE_NEAREST_OTHERS = [{1, 3, 4}, {7, 5, 4}, {1, 3, 5}]


@pytest.fixture(scope="module")
def grid():
    env = TwinSplit(num_vehicles=3, num_rsus=9, max_steps=2)
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(trace=Trace(positions_m=jnp.broadcast_to(POSITIONS, (3, 3, 2))))
    return env, params, state


def test_hand_built_state_geometry(grid):
    _, params, _ = grid
    d = np.linalg.norm(POSITIONS[:, None] - np.asarray(params.rsu_xy_m)[None], axis=-1)
    order = np.argsort(d, axis=1)
    np.testing.assert_array_equal(order[:, 0], SERVING)
    np.testing.assert_array_equal(order[:, 1], NEAREST_OTHER)
    assert [set(o[1:4]) for o in order] == THREE_NEAREST_OTHERS


def test_full_migration_and_no_premigration_targets(grid):
    env, params, state = grid
    full = jax.jit(make_full_migration(env))(jax.random.key(0), state, params)
    np.testing.assert_array_equal(full["target"], NEAREST_OTHER)
    np.testing.assert_array_equal(full["fraction"], 1.0)
    stay = jax.jit(make_no_premigration(env))(jax.random.key(0), state, params)
    np.testing.assert_array_equal(stay["target"], SERVING)
    np.testing.assert_array_equal(stay["fraction"], 0.0)
    # alpha = 1 (outside 16e) passes the env unclipped: the whole task moves, nothing is processed locally (§8.4)
    _, _, _, _, _, info = env.step(jax.random.key(1), state, full, params)
    np.testing.assert_array_equal(info["alpha"], 1.0)
    np.testing.assert_allclose(info["premigrated_bits"], state.draws.task_bits)
    np.testing.assert_array_equal(info["local_processing_s"], 0.0)
    assert (np.asarray(info["remote_processing_s"]) > 0).all() and np.asarray(info["migrates"]).all()
    _, _, _, _, _, info = env.step(jax.random.key(1), state, stay, params)
    np.testing.assert_array_equal(info["premigrated_bits"], 0.0)
    np.testing.assert_array_equal(info["migration_s"], 0.0)
    np.testing.assert_array_equal(info["serving"], SERVING)


def test_random_migration_targets_and_fractions(grid):
    env, params, state = grid
    policy = jax.jit(jax.vmap(make_random_migration(env), in_axes=(0, None, None)))
    actions = jax.device_get(policy(jax.random.split(jax.random.key(2), 3000), state, params))
    target, fraction = actions["target"], actions["fraction"]
    for v in range(3):
        assert set(target[:, v].tolist()) == THREE_NEAREST_OTHERS[v]  # all three, nothing else
        counts = np.bincount(target[:, v], minlength=9)[sorted(THREE_NEAREST_OTHERS[v])]
        assert counts.min() > 900  # ~ uniform (1000 each)
    assert fraction.dtype == np.float32 and fraction.min() >= 0.0 and fraction.max() < 1.0
    assert abs(fraction.mean() - 0.5) < 0.02 and len(np.unique(fraction)) > 8000  # per slot and vehicle
    # with E = 2 there is a single non-serving RSU
    env2 = TwinSplit(num_vehicles=3, num_rsus=2, max_steps=2)
    _, s2 = env2.reset(jax.random.key(0), env2.default_params)
    a2 = make_random_migration(env2)(jax.random.key(0), s2, env2.default_params)
    np.testing.assert_array_equal(a2["target"], 1 - env2.serving_rsu(s2.trace.position_at(0)[:3], env2.default_params))


def test_greedy_least_loaded(grid):
    env, params, state = grid
    util = jnp.full(9, 0.5).at[6].set(0.1).at[2].set(0.05)
    cycles = jnp.zeros(9).at[2].set(0.2 * params.max_workload_cycles)  # RSU 2 is busy with last slot's agents
    busy = state.replace(util=util, prev_agent_cycles=cycles)
    action = jax.jit(make_greedy_least_loaded(env))(jax.random.key(0), busy, params)
    np.testing.assert_array_equal(action["target"], 6)
    np.testing.assert_array_equal(action["fraction"], 0.5)
    obs_available = np.asarray(env.observation(busy, params))[0, 1:10]
    assert np.argmax(obs_available) == 6  # the same L_E the agents observe (eq. 21)
    with pytest.raises(ValueError, match="fraction"):
        make_greedy_least_loaded(env, fraction=1.5)
    with pytest.raises(ValueError, match="num_nearest"):
        make_random_migration(env, num_nearest=0)


def test_greedy_balanced_stays_when_its_rsu_is_empty_and_leaves_loaded_ones(grid):
    """Vehicle 0's serving RSU 0 is empty: staying, (0 + c)/C, beats any split (the other side holds >= 0.3 L^max
    = 7.2e10 cycles > c/2 with c = D^task f_v <= 3.6e10). Vehicles 1 and 2 sit at loaded RSUs (0.6 L^max): each
    pre-migrates half to a less loaded RSU (estimated after the choices of the vehicles before it)."""
    env, params, state = grid
    util = jnp.full(9, 0.6).at[0].set(0.0).at[3].set(0.3).at[6].set(0.3)
    busy = state.replace(util=util, prev_agent_cycles=jnp.zeros(9), gpu_scale=jnp.ones(9))
    action = jax.device_get(jax.jit(make_greedy_balanced(env))(jax.random.key(0), busy, params))
    assert action["target"][0] == 0 and action["fraction"][0] == 0.0
    assert set(action["target"][1:].tolist()) <= {0, 3, 6} and action["target"][1] != 8 and action["target"][2] != 4
    np.testing.assert_array_equal(action["fraction"][1:], 0.5)
    with pytest.raises(ValueError, match="fraction"):
        make_greedy_balanced(env, fraction=-0.1)


def test_heuristics_jit_and_vmap_over_worlds():
    env = TwinSplit(num_vehicles=4, max_steps=3)
    params = env.default_params
    _, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 5), params)
    for name, make in POLICIES.items():
        actions = jax.jit(jax.vmap(make(env), in_axes=(0, 0, None)))(
            jax.random.split(jax.random.key(1), 5), states, params
        )
        assert actions["target"].shape == (5, 4) and actions["target"].dtype == jnp.int32, name
        assert actions["fraction"].shape == (5, 4) and actions["fraction"].dtype == jnp.float32, name
        assert (np.asarray(actions["target"]) >= 0).all() and (np.asarray(actions["target"]) < 4).all(), name
        f = np.asarray(actions["fraction"])
        assert (f >= 0).all() and (f <= 1).all(), name


# ---------------------------------------------------------------------- evaluation
EPISODES, STEPS = 4, 6
KEY = jax.random.key(0)


def counting_policy(num_agents):
    """A stateful policy: action = RSU 0 (int action, alpha from params), state counts the slots, extras
    use_server = 1 on even slots and params_used = 100 + slot."""

    def act(key, count, env_state, params):
        extras = {
            "use_server": jnp.full(num_agents, count % 2 == 0),
            "params_used": jnp.full(num_agents, 100.0 + count),
        }
        return jnp.zeros(num_agents, jnp.int32), count + 1, extras

    return StatefulPolicy(init=lambda key, params: jnp.int32(0), act=act)


@pytest.fixture(scope="module")
def evaluation():
    env = TwinSplit(num_vehicles=3, max_steps=STEPS)
    params = env.default_params
    policies = [*heuristic_policies(env).values(), counting_policy(env.num_agents)]
    return env, params, policies, make_policy_evaluator(env, policies, params, EPISODES)


RAW_KEYS = (
    "total_latency_s",
    "qoe",
    "ber",
    "migration_s",
    "migrates",
    "workload_violations",
    "serving",
    "target",
    "uplink_s",
)


def numpy_metrics(raw):
    mean = lambda x: np.asarray(x, np.float64).mean(axis=(0, 2))
    return {
        "latency_s": mean(raw["total_latency_s"]),
        "qoe": mean(raw["qoe"]),
        "ber": mean(raw["ber"]),
        "migration_s": mean(raw["migration_s"]),
        "migration_share": mean(raw["migrates"]),
        "reward": mean(raw["reward"]),
        "workload_violations": np.asarray(raw["workload_violations"], np.float64).mean(0),
    }


def test_metrics_match_a_numpy_recomputation(evaluation):
    env, params, _, evaluate = evaluation
    keep = lambda reward, info: dict({k: info[k] for k in RAW_KEYS}, reward=reward)
    plain = [make(env) for make in POLICIES.values()]  # the per-world heuristics, through core.rollout

    @jax.jit
    def reference(key, index):
        policy = lambda k, s, p: jax.lax.switch(index, plain, k, s, p)
        return rollout(env, policy, key, params, EPISODES, STEPS, keep)

    for index in range(len(plain)):
        got = jax.device_get(evaluate(KEY, index))
        raw = jax.device_get(reference(KEY, index))
        want = numpy_metrics(raw)
        for name, value in want.items():
            assert got[name].shape == (EPISODES,) and got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-7, err_msg=name)
        assert np.isnan(got["use_server"]).all() and np.isnan(got["params_used"]).all()  # no extras: NaN
        np.testing.assert_allclose(got["reward"], -got["latency_s"], rtol=1e-6)  # eq. (22)
        np.testing.assert_allclose(got["qoe"], -got["ber"] - got["latency_s"], rtol=1e-5)  # eq. (15), means
    assert np.isfinite(got["latency_s"]).all() and (got["ber"] > 0).any()


def test_policy_state_and_extras(evaluation):
    env, params, policies, evaluate = evaluation
    got = jax.device_get(evaluate(KEY, len(policies) - 1))
    np.testing.assert_allclose(got["use_server"], 0.5)  # slots 0, 2, 4 of 6
    np.testing.assert_allclose(got["params_used"], 100.0 + np.mean(np.arange(STEPS)))  # the state advanced
    raw = jax.device_get(jax.jit(lambda k: rollout_raw(env, policies, params, k, len(policies) - 1, EPISODES))(KEY))
    np.testing.assert_array_equal(raw["target"], 0)
    np.testing.assert_allclose(raw["alpha"], params.alpha)  # an int action: alpha from the params
    bad = StatefulPolicy(init=lambda k, p: (), act=lambda k, s, e, p: (jnp.zeros(3, jnp.int32), s, {"oops": 1.0}))
    with pytest.raises(ValueError, match="oops"):
        make_policy_evaluator(env, [bad], params, 2)(KEY, 0)
    with pytest.raises(ValueError, match="StatefulPolicy"):
        make_policy_evaluator(env, ["full_migration"], params, 2)
    plain, wrapped = make_full_migration(env), policies[0]  # a plain policy is wrapped with `stateless`
    got = jax.device_get(make_policy_evaluator(env, [plain], params, EPISODES)(KEY, 0))
    np.testing.assert_array_equal(got["latency_s"], jax.device_get(evaluate(KEY, 0))["latency_s"])
    assert wrapped.init(KEY, params) == ()


def test_same_key_same_worlds(evaluation):
    env, params, policies, evaluate = evaluation
    run = jax.jit(lambda k, i: rollout_raw(env, policies, params, k, i, EPISODES))
    raws = [jax.device_get(run(KEY, i)) for i in range(len(policies))]
    for raw in raws[1:]:  # the same positions and requests for every policy
        np.testing.assert_array_equal(raw["serving"], raws[0]["serving"])
        np.testing.assert_array_equal(raw["uplink_s"], raws[0]["uplink_s"])
    assert not np.array_equal(raws[0]["target"], raws[2]["target"])
    first, again = jax.device_get(evaluate(KEY, 2)), jax.device_get(evaluate(KEY, 2))
    np.testing.assert_array_equal(first["latency_s"], again["latency_s"])
    assert not np.array_equal(first["latency_s"], jax.device_get(evaluate(jax.random.key(1), 2))["latency_s"])


def test_gpu_capacity_sweep_is_one_vmapped_evaluation(evaluation):
    env, params, policies, _ = evaluation
    traces = []
    fixed = policies[1]  # no_premigration

    def counted(key, state, env_state, p):
        traces.append(1)
        return fixed.act(key, state, env_state, p)

    named = {"no_premigration": StatefulPolicy(fixed.init, counted), "random_migration": policies[2]}
    capacities = (40e9, 60e9, 80e9)
    result = gpu_capacity_sweep(env, named, params, capacities, KEY, EPISODES)
    assert len(traces) == 1  # one compilation for every capacity and policy
    assert list(result) == list(named)
    for c in (2,):  # one compilation per capacity: the last one suffices (the vmapped rows are independent)
        single = make_policy_evaluator(
            env, list(named.values()), params.replace(gpu_hz_nominal=capacities[c]), EPISODES
        )
        for index, name in enumerate(named):
            want = jax.device_get(single(KEY, index))
            for metric, value in want.items():
                assert result[name][metric].shape == (3, EPISODES)
                np.testing.assert_allclose(result[name][metric][c], value, rtol=1e-5, atol=1e-7, err_msg=metric)
    latency = result["no_premigration"]["latency_s"]
    assert (np.diff(latency, axis=0) < 0).all()  # more GPU, less latency, episode by episode
    assert (np.diff(result["random_migration"]["latency_s"].mean(1)) < 0).all()
    # homogeneous capacity (§10-A35): C_e = C_nom on every RSU
    homogeneous = params.replace(gpu_scale_low=1.0, gpu_scale_high=1.0)
    flat = gpu_capacity_sweep(env, [policies[1]], homogeneous, (40e9, 80e9), KEY, EPISODES)[0]["latency_s"]
    assert (flat[1] < flat[0]).all() and not np.allclose(flat[0], latency[0])
    with pytest.raises(ValueError, match="capacities_hz"):
        gpu_capacity_sweep(env, named, params, (), KEY, 2)
    with pytest.raises(ValueError, match="gpu_hz_nominal"):
        gpu_capacity_sweep(env, named, params, (60e9, 0.0), KEY, 2)
