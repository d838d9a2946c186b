"""TwinSplit-v1: the requested-load observation and the v1 defaults against hand-computed numbers (the spec's
§2.8 worked setting), v1 with its switches off = v0, jit / vmap determinism, the value-of-information greedy on
a hand-computed slot, the per-slot oracles, and `vmjax train / evaluate --env TwinSplit-v1`."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines import oracles
from baselines import twin_split as heuristics
from vmjax.envs import twin_split as ts
from vmjax.mobility import Trace

WORKED_POS = [[100.0, 0.0], [900.0, 0.0]]  # spec §2.8: veh0 served by RSU0 (0, 0), veh1 by RSU1 (1000, 0)


def worked_state(env_id="TwinSplit-v1", positions=WORKED_POS, util=0.2, **config):
    """The §2.8 setting: D^task = 20 Mbit, f = 1000 cycles/bit, C = 60 GHz, B_bh = 500 Mb/s, u = `util`."""
    v = len(positions)
    env = vmjax.make(env_id, num_vehicles=v, num_rsus=2, max_steps=4, **config)
    trace = jnp.broadcast_to(jnp.asarray(positions, jnp.float32), (5, v, 2))
    params = env.default_params.replace(
        rsu_xy_m=jnp.asarray([[0.0, 0.0], [1000.0, 0.0]]),
        backhaul_bps=jnp.full((2, 2), 500e6),
        trace_bank=Trace.create(trace),
    )
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(
        trace=Trace(positions_m=trace),
        util=jnp.broadcast_to(jnp.asarray(util, jnp.float32), (2,)),
        gpu_scale=jnp.ones(2),
        cycles_per_bit=jnp.full(v, 1000.0),
        draws=ts.SlotDraws(request_bits=jnp.full(v, 2e6), task_bits=jnp.full(v, 20e6), fading=None),
    )
    return env, params, state


def with_bank(env, params, tracks=8, seed=0):
    """`params` with a small random trace bank (T + 1 slots): reset replays it instead of generating mobility."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, env.config.map_size_m, (env.config.max_steps + 1, tracks, 2)).astype(np.float32)
    return params.replace(trace_bank=Trace.create(jnp.asarray(positions)))


# ---------------------------------------------------------------- the requested-load observation
def test_requested_load_hand_computed():
    env, params, state = worked_state()
    ctx = env.slot_context(state, params)
    # slot 1: no texture re-use, each RSU serves one 20 Mbit task at 1000 cycles/bit
    np.testing.assert_allclose(ts.requested_cycles(ctx, params), [2e10, 2e10], rtol=1e-6)
    # available workload of eq. (21): 1 - (0.2 + 2e10 / 2.4e11) = 0.716667
    np.testing.assert_allclose(env.available_workload(state, params), [0.716667, 0.716667], rtol=1e-5)
    obs = env.observation(state, params)
    np.testing.assert_allclose(obs[:, 1:3], 0.716667, rtol=1e-5)
    # slot 2 after both stayed: I = 1, D^L(t-1) = 20 Mbit, mu = 0.5 -> xi = 20 - 10 = 10 Mbit -> 1e10 cycles
    _, nxt, *_ = env.step_env(jax.random.key(1), state, jnp.array([0, 1], jnp.int32), params)
    nxt = nxt.replace(draws=state.draws, util=state.util)
    np.testing.assert_allclose(ts.requested_cycles(env.slot_context(nxt, params), params), [1e10, 1e10], rtol=1e-6)


def test_previous_load_is_v0s_observation():
    env, params, state = worked_state(observed_load="previous")
    # nothing was done before slot 1: only the background u = 0.2 is observed
    np.testing.assert_allclose(env.available_workload(state, params), [0.8, 0.8], rtol=1e-6)


# ---------------------------------------------------------------- the registered v1
def test_v1_defaults_and_v0_unchanged():
    v0, v1 = vmjax.make("TwinSplit-v0"), vmjax.make("TwinSplit-v1")
    assert (v0.config.obs_mode, v0.config.observed_load) == ("faithful", "previous")
    assert (v1.config.obs_mode, v1.config.observed_load) == ("extended", "requested")
    assert v1.name == "TwinSplit-v1" and v0.name == "TwinSplit-v0"
    p0, p1 = v0.default_params, v1.default_params
    assert (p0.util_mean_low, p0.util_mean_high, p0.ber_scale_per_mbit) == (0.2, 0.4, 0.02)
    assert (p1.util_mean_low, p1.util_mean_high, p1.ber_scale_per_mbit) == (0.02, 0.06, 0.002)
    assert p1.gpu_hz_nominal == p0.gpu_hz_nominal and p1.task_bits_low == p0.task_bits_low
    off = vmjax.make("TwinSplit-v1", obs_mode="faithful", observed_load="previous")
    assert dataclasses.asdict(off.config) == dataclasses.asdict(v0.config)


def test_v1_with_v0_settings_steps_like_v0():
    v0 = vmjax.make("TwinSplit-v0", num_vehicles=3, max_steps=4)
    v1 = vmjax.make("TwinSplit-v1", num_vehicles=3, max_steps=4, obs_mode="faithful", observed_load="previous")
    params = with_bank(v0, v0.default_params)
    key = jax.random.key(5)
    obs0, s0 = v0.reset(key, params)
    obs1, s1 = v1.reset(key, params)
    np.testing.assert_array_equal(obs0, obs1)
    action = jnp.array([1, 2, 3], jnp.int32)
    out0, out1 = v0.step(key, s0, action, params), v1.step(key, s1, action, params)
    np.testing.assert_array_equal(out0[0], out1[0])
    np.testing.assert_array_equal(out0[2], out1[2])


def test_v1_jit_vmap_and_determinism():
    env = vmjax.make("TwinSplit-v1", num_vehicles=4, max_steps=5)
    params = with_bank(env, env.default_params)
    keys = jax.random.split(jax.random.key(0), 3)
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    assert obs.shape == (3, 4, env.obs_dim) and env.obs_dim == 3 * 4 + 8
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    action = jnp.ones((3, 4), jnp.int32)
    first, second = step(keys, states, action, params), step(keys, states, action, params)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[2], second[2])
    assert np.all(np.isfinite(first[2]))


# ---------------------------------------------------------------- value of information (hand-computed slot)
def test_greedy_with_and_without_load_information():
    # both vehicles near RSU0; RSU1 carries a background of u = 0.5 -> 1.2e11 cycles.
    # "requested": veh0 sees veh1's 2e10 cycles at RSU0: stay (2e10 + 2e10) / 60e9 = 0.667 s; split: local
    # (2e10 + 1e10) / 60e9 = 0.5 s, remote 10 Mbit / 500 Mb/s + (1.2e11 + 1e10) / 60e9 = 2.187 s -> stay; veh1
    # likewise. "none": no load: stay 0.333 s, split max(0.167, 0.02 + 0.167) = 0.187 s -> both pre-migrate.
    env, params, state = worked_state(positions=[[100.0, 0.0], [200.0, 0.0]], util=jnp.array([0.0, 0.5]))
    requested = heuristics.make_greedy_informed(env, "requested")(jax.random.key(0), state, params)
    np.testing.assert_array_equal(requested["target"], [0, 0])
    np.testing.assert_array_equal(requested["fraction"], [0.0, 0.0])
    none = heuristics.make_greedy_informed(env, "none")(jax.random.key(0), state, params)
    np.testing.assert_array_equal(none["target"], [1, 1])
    np.testing.assert_allclose(none["fraction"], [0.5, 0.5])
    # without the background, veh0 splits (0.5 s < 0.667 s), then veh1 sees 1e10 at each RSU: stay 0.5 s, split
    # max((1e10 + 1e10) / 60e9, 0.02 + (1e10 + 1e10) / 60e9) = 0.353 s -> it splits too
    env, params, state = worked_state(positions=[[100.0, 0.0], [200.0, 0.0]], util=0.0)
    split = heuristics.make_greedy_informed(env, "requested")(jax.random.key(0), state, params)
    np.testing.assert_array_equal(split["target"], [1, 1])
    with pytest.raises(ValueError, match="load_information"):
        heuristics.make_greedy_informed(env, "oracle")


# ---------------------------------------------------------------- the per-slot oracles
@pytest.fixture(scope="module")
def small_v1():
    env = vmjax.make("TwinSplit-v1", num_vehicles=5, max_steps=4)
    params = with_bank(env, env.default_params, seed=1)
    _, state = env.reset(jax.random.key(11), params)
    return env, params, state


def _slot(env, state, params, action):
    ctx = env.slot_context(state, params)
    target, alpha = env.parse_action(action, params)
    return ts.slot_outcome(ctx, target, alpha, params)


def test_oracle_team_never_worse_than_no_premigration(small_v1):
    env, params, state = small_v1
    team = jax.jit(heuristics.make_oracle_policy(env, objective="team"))(jax.random.key(0), state, params)
    stay = heuristics.make_no_premigration(env)(jax.random.key(0), state, params)
    oracle_total = _slot(env, state, params, team)["total_latency_s"].sum()
    stay_total = _slot(env, state, params, stay)["total_latency_s"].sum()
    assert float(oracle_total) <= float(stay_total) + 1e-5


@pytest.mark.parametrize("metric", ["latency", "qoe"])
def test_oracle_best_response_is_a_best_response(small_v1, metric):
    env, params, state = small_v1
    action = jax.jit(heuristics.make_oracle_policy(env, metric=metric, rounds=8))(jax.random.key(0), state, params)
    key = "total_latency_s" if metric == "latency" else "qoe"
    sign = 1.0 if metric == "latency" else -1.0
    own = sign * _slot(env, state, params, action)[key]
    for v in range(env.num_agents):
        for target in range(env.num_rsus):
            deviation = dict(action, target=action["target"].at[v].set(target))
            cost = sign * _slot(env, state, params, deviation)[key][v]
            assert float(own[v]) <= float(cost) + 1e-5, (v, target)


def test_best_response_rounds_on_a_hand_game():
    # two agents, candidates {0, 1}; cost_v = 1 if both pick the same candidate, else 0 (a coordination game):
    # from (0, 0) agent 0 moves to 1, then agent 1 stays at 0 -> (1, 0); the team objective agrees
    cost = lambda a: jnp.where(a[0] == a[1], 1.0, 0.0) * jnp.ones(2)
    start = jnp.zeros(2, jnp.int32)
    for objective in ("own", "team"):
        out = oracles.best_response_rounds(cost, jnp.arange(2), start, 2, 2, objective)
        np.testing.assert_array_equal(out, [1, 0])
    with pytest.raises(ValueError, match="objective"):
        oracles.best_response_rounds(cost, jnp.arange(2), start, 2, 1, "social")


# ---------------------------------------------------------------- the command line
def test_v1_trains_from_the_command_line(tmp_path):
    from vmjax import cli

    run_dir = tmp_path / "v1"
    tiny = "--env.num_vehicles 3 --env.max_steps 4 --trajectories.source synthetic".split()
    tiny += "--agent.num_envs 2 --agent.num_steps 4 --agent.num_iterations 1 --agent.num_minibatches 2".split()
    cli.main(["train", "--env", "TwinSplit-v1", "--run.run_dir", str(run_dir), *tiny])
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["env"] == "TwinSplit-v1" and saved["env"]["observed_load"] == "requested"
    assert (run_dir / "checkpoint.msgpack").exists()
    # `vmjax evaluate` on a v1 run puts the value-of-information rules and the oracles in its table
    from vmjax import scenarios

    policies = scenarios.get("TwinSplit-v1").evaluation.policies
    assert {"no_premigration", "greedy_requested_load", "greedy_none_load", "oracle_latency", "oracle_qoe"} <= set(
        policies
    )
