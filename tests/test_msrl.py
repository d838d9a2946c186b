"""MSRL (spec 004 §6) on a tiny TwinSplit-v0: parameter counts, the entropy switch on scripted sequences
(§11), the TD(lambda) target and counterfactual baseline against NumPy, gradient routing of the split
losses (§6.5), jitted training over seeds, persistence of the switching state, the stateful eval policy."""

import dataclasses
from collections import deque

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import msrl
from vmjax.mobility import Trace

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
TINY = {"num_envs": 2, "num_steps": 10, "num_iterations": 2, "update_epochs": 2, "num_minibatches": 2}
LN4 = float(np.log(4.0))


def _env():
    env = vmjax.make("TwinSplit-v0", num_vehicles=3, num_rsus=4, max_steps=10)
    bank = np.random.default_rng(0).uniform(0.0, 5000.0, (11, 6, 2)).astype(np.float32)  # replayed (fast compile)
    return env, env.default_params.replace(trace_bank=Trace.create(bank))


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating))


# ---------------------------------------------------------------- parameter counts (§6.2, §6.9)
def test_parameter_counts_match_the_spec_for_four_rsus():
    env = vmjax.make("TwinSplit-v0")  # V = 10, E = 4, d = 9
    comp = msrl.make_components(env, msrl.MsrlConfig(num_envs=2, num_steps=4, num_minibatches=2))
    params = jax.eval_shape(comp.init, jax.random.key(0)).params["actor"]
    assert jax.tree.leaves(params)[0].shape[0] == 10  # one actor per agent, stacked (not shared)
    one_agent = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), params)
    counts = msrl.count_parts(one_agent)
    assert counts == {"client_trunk": 224, "client_head": 68, "server_trunk": 1344, "server_head": 68}
    assert counts == msrl.actor_param_counts(9, 4) == comp.policy.counts
    assert counts["server_trunk"] + counts["server_head"] == 1412
    per = msrl.params_per_call(counts)
    assert (per["local"], per["local_edge"], per["split_server"]) == (292, 1636, 1704)


# ---------------------------------------------------------------- switching (§6.3-6.4, §11)
def _script(entropies, rule, window=10, decisions=20, threshold=0.7):
    """Run switch_step on one agent over a scripted entropy sequence (one lax.scan) -> (use_server [n],
    thresholds [n], final state)."""

    def run(hs):
        def body(state, h):
            use, state = msrl.switch_step(state, h, rule)
            return state, (use, state.threshold_nats)

        state = msrl.init_switch_state(jnp.float32(threshold), window, decisions)
        state, (use, thr) = jax.lax.scan(body, state, hs)
        return use, thr, state

    use, thr, state = jax.jit(run)(jnp.asarray(entropies, jnp.float32))
    return np.asarray(use), np.asarray(thr), state


def test_constant_high_entropy_always_uses_the_server_and_raises_the_threshold_by_ch():
    rule = msrl.SwitchRule(0.01, 0.05, LN4, 4)
    use, thr, state = _script([1.3] * 30, rule)
    assert use.all()
    np.testing.assert_allclose(thr, 0.7 + 0.01 * np.arange(1, 31), atol=1e-5)
    assert int(state.server_calls) == 30 and int(state.num_calls) == 30
    # the clip at ln|A|: Thr never passes it
    _, thr_hi, _ = _script([1.385] * 80, msrl.SwitchRule(0.02, 0.05, LN4, 4))
    assert thr_hi.max() <= LN4 + 1e-6


def test_constant_low_entropy_never_uses_the_server():
    use, thr, state = _script([0.3] * 30, msrl.SwitchRule(0.01, 0.05, LN4, 4))
    assert not use.any() and int(state.server_calls) == 0
    np.testing.assert_allclose(thr, 0.7)


def test_alternating_around_the_threshold_engages_the_buffer_mode_after_n_sw_flips():
    rule = msrl.SwitchRule(0.0, 0.05, LN4, 4)  # Ch = 0 keeps Thr at 0.7; W = 1: raw follows H
    use, _, _ = _script([1.0, 0.4] * 10, rule, window=1)
    # raw = 1, 0, 1, 0, ...; flips in the window after call k: k - 1; buffer mode from 4 flips (call 5) on
    np.testing.assert_array_equal(use, [1, 0, 1, 0] + [1] * 16)


def test_modes_force_the_switch():
    for mode, expected in (("local", False), ("local_edge", True)):
        use, _, _ = _script([1.3, 0.3] * 5, msrl.SwitchRule(0.01, 0.05, LN4, 4, mode))
        assert (use == expected).all()


def test_switch_matches_a_deque_oracle_across_ring_buffer_wraparound():
    w, m, n_sw, ch = 3, 5, 2, 0.01
    rule = msrl.SwitchRule(ch, 0.05, LN4, n_sw)
    entropies = np.random.default_rng(1).uniform(0.3, 1.2, 60).astype(np.float32)
    use, thr, _ = _script(entropies, rule, window=w, decisions=m)
    ent_buf, dec_buf, t = deque(maxlen=w), deque(maxlen=m), np.float32(0.7)
    for k, h in enumerate(entropies):
        ent_buf.append(float(h))
        raw = np.mean(ent_buf) > t
        dec_buf.append(raw)
        flips = sum(a != b for a, b in zip(list(dec_buf)[1:], list(dec_buf)[:-1]))
        expected = raw or flips >= n_sw
        assert use[k] == expected, k
        t = np.float32(np.clip(t + np.float32(ch) * expected, 0.05, LN4))
        np.testing.assert_allclose(thr[k], t, atol=1e-5)
    # old flips leave the window: two flips, then constant-low decisions for M calls
    rule2 = msrl.SwitchRule(0.0, 0.05, LN4, 2)
    seq = [1.0, 0.4, 1.0] + [0.4] * 6
    use2, _, s2 = _script(seq, rule2, window=1, decisions=m)
    # windows: [1] [1,0] [1,0,1]* [1,0,1,0]* [1,0,1,0,0]* [0,1,0,0,0]* [1,0,0,0,0] [0,0,0,0,0] ... (* >= 2 flips)
    np.testing.assert_array_equal(use2, [1, 0, 1, 1, 1, 1, 0, 0, 0])
    assert int(msrl.count_flips(s2.decisions, s2.num_calls)) == 0


# ---------------------------------------------------------------- targets (§6.6)
def test_td_lambda_target_matches_numpy_eq_28():
    rng = np.random.default_rng(2)
    t_len, g, lam = 6, 0.9, 0.8
    r, q = rng.normal(size=t_len).astype(np.float32), rng.normal(size=t_len).astype(np.float32)
    boot = np.float32(5.0)  # Q_bar(s_T+1, a_T+1) of a rollout cut mid-episode
    done = np.array([0, 0, 1, 0, 0, 0], np.float32)  # an episode ends after step 2
    q_next = np.append(q[1:], boot)
    got = msrl.td_lambda_targets(jnp.asarray(r), jnp.asarray(q), jnp.asarray(q_next), jnp.asarray(done), g, lam)
    expected = np.zeros(t_len)
    for t in range(t_len):  # Q_hat_t = Q_t + sum_k (g lam)^(k - t) delta_k up to the episode's (or rollout's) end
        end = 2 if t <= 2 else t_len - 1
        total = 0.0
        for k in range(t, end + 1):
            nxt = 0.0 if done[k] else q_next[k]
            total += (g * lam) ** (k - t) * (r[k] + g * nxt - q[k])
        expected[t] = q[t] + total
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # lambda = 1 within the finished episode: the discounted return, no bootstrap after its last step
    mc = msrl.td_lambda_targets(jnp.asarray(r), jnp.asarray(q), jnp.asarray(q_next), jnp.asarray(done), g, 1.0)
    np.testing.assert_allclose(mc[:3], [r[0] + g * r[1] + g * g * r[2], r[1] + g * r[2], r[2]], rtol=1e-5)


def test_counterfactual_baseline_and_critic_input_hand_example():
    q_hat = jnp.array([10.0, 0.0])
    q_values = jnp.array([[1.0, 2.0, 3.0, 4.0], [0.0, -4.0, 8.0, 0.0]])
    pi_used = jnp.array([[0.25, 0.25, 0.25, 0.25], [0.5, 0.25, 0.25, 0.0]])
    # b = 2.5 and -1 + 2 = 1
    np.testing.assert_allclose(msrl.counterfactual_advantages(q_hat, q_values, pi_used), [7.5, -1.0])
    env, params = _env()
    policy = msrl.make_components(env, msrl.MsrlConfig(**TINY), params).policy
    obs = jnp.arange(3 * 9, dtype=jnp.float32).reshape(3, 9)
    x = np.asarray(policy.critic_input(obs, jnp.array([2, 0, 3])))
    assert x.shape == (3, 27 + 3 + 2 * 4)
    np.testing.assert_array_equal(x[:, :27], np.tile(np.arange(27.0), (3, 1)))  # s(t)
    np.testing.assert_array_equal(x[:, 27:30], np.eye(3))  # agent id
    np.testing.assert_array_equal(x[1, 30:], [0, 0, 1, 0, 0, 0, 0, 1])  # agents 0 and 2, own slot removed
    np.testing.assert_array_equal(x[2, 30:], [0, 0, 1, 0, 1, 0, 0, 0])


# ---------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained():
    """One jitted, vmapped training over seeds (0, 1, 0) with a visible Ch."""
    env, params = _env()
    config = msrl.MsrlConfig(**TINY, threshold_change_nats=0.02)
    train = jax.jit(jax.vmap(msrl.make_train(env, config, params)), compiler_options=FAST_COMPILE)
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1), jax.random.PRNGKey(0)])
    state, metrics = train(keys)
    return env, params, config, state, metrics


# ---------------------------------------------------------------- gradient routing (§6.5)
@pytest.fixture(scope="module")
def actor_grads(trained):
    """Actor gradients of the MSRL loss on one synthetic batch, keyed (stop_grad_at_split, use_server)."""
    env, params, config, state, _ = trained
    comps = {
        stop: msrl.make_components(env, dataclasses.replace(config, stop_grad_at_split=stop), params)
        for stop in (False, True)
    }
    k = jax.random.split(jax.random.key(1), 3)
    b = 8
    log_p = jnp.full((b, 3), -np.log(4.0))
    batch = msrl.Batch(
        obs=jax.random.uniform(k[0], (b, 3, 9)),
        action=jax.random.randint(k[1], (b, 3), 0, 4),
        use_server=jnp.zeros((b, 3)),
        log_prob_used=log_p,
        log_prob_client=log_p,
        advantage=jax.random.normal(k[2], (b, 3)),
        q_target=jnp.ones((b, 3)),
    )
    cases = [(stop, use) for stop in (False, True) for use in (0, 1)]

    def all_grads(p):
        out = {}
        for stop, use in cases:
            case = batch._replace(use_server=jnp.full((b, 3), float(use)))
            out[(stop, use)] = jax.grad(lambda q, c=comps[stop], x=case: c.loss_fn(q, x)[0])(p)["actor"]["params"]
        return out

    one = jax.tree.map(lambda x: x[0], state.params)
    return jax.jit(all_grads, compiler_options=FAST_COMPILE)(one)


def _zero(tree):
    return all(not np.asarray(x).any() for x in jax.tree.leaves(tree))


def test_client_only_samples_give_the_server_exactly_zero_gradient(actor_grads):
    g = actor_grads[(False, 0)]
    assert _zero(g["server_trunk"]) and _zero(g["server_head"])
    assert not _zero(g["client_trunk"]) and not _zero(g["client_head"])


def test_server_loss_reaches_the_client_trunk_unless_stopped_at_the_split(actor_grads):
    local = actor_grads[(True, 0)]["client_trunk"]
    stopped = actor_grads[(True, 1)]
    assert not _zero(stopped["server_trunk"]) and not _zero(stopped["server_head"])
    for a, b in zip(jax.tree.leaves(local), jax.tree.leaves(stopped["client_trunk"])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)  # only the client loss reaches it
    through = actor_grads[(False, 1)]["client_trunk"]
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(local), jax.tree.leaves(through)))


def test_training_is_finite_deterministic_and_vmaps_over_seeds(trained):
    _, _, config, state, metrics = trained
    for name in (
        "mean_reward",
        "mean_total_latency_s",
        "episode_total_latency_s",
        "server_use_fraction",
        "mean_threshold_nats",
        "params_used_per_agent_step",
        "actor_loss_client",
        "actor_loss_server",
        "critic_loss",
        "mean_ber",
        "param_reduction_pct",
    ):
        assert metrics[name].shape == (3, config.num_iterations), name
        assert np.isfinite(np.asarray(metrics[name])).all(), name
    assert _finite(state.params)
    leaves = [np.asarray(x) for x in jax.tree.leaves((state.params, metrics))]
    assert all(np.array_equal(x[0], x[2]) for x in leaves)  # same key, same run
    assert not all(np.array_equal(x[0], x[1]) for x in jax.tree.leaves(state.params))
    used = np.asarray(metrics["params_used_per_agent_step"])
    frac = np.asarray(metrics["server_use_fraction"])
    np.testing.assert_allclose(used, 292 + frac * 1412, rtol=1e-5)  # §6.9, split mode, E = 4


def test_switching_state_persists_across_episodes_and_iterations(trained):
    _, _, config, state, _ = trained
    sw = state.switch
    assert sw.threshold_nats.shape == (3, config.num_envs, 3)
    calls = config.num_iterations * config.num_steps  # 2 episodes of 10: never reset
    np.testing.assert_array_equal(sw.num_calls, calls)
    assert int(sw.server_calls.max()) > 0
    expected = np.clip(0.7 + 0.02 * np.asarray(sw.server_calls), 0.05, LN4)
    np.testing.assert_allclose(sw.threshold_nats, expected, atol=1e-5)


def test_update_is_traced_once_and_runs_in_local_mode(trained):
    env, params, config, state, _ = trained
    trainer = msrl.make_trainer(env, dataclasses.replace(config, mode="local"), params)
    update = jax.jit(chex.assert_max_traces(trainer.update, n=1), compiler_options=FAST_COMPILE)
    state = jax.tree.map(lambda x: x[0], state)  # seed 0 of the split run continues in local mode,
    state = state.replace(opt_state=jax.tree.map(jnp.zeros_like, state.opt_state))  # with fresh Adam moments
    server0 = {k: v for k, v in state.params["actor"]["params"].items() if k.startswith("server")}
    thr0 = np.asarray(state.switch.threshold_nats)
    for _ in range(2):
        state, metrics = update(state)
    assert float(metrics["server_use_fraction"]) == 0.0 and float(metrics["params_used_per_agent_step"]) == 292.0
    np.testing.assert_allclose(state.switch.threshold_nats, thr0)  # Ch x 0 server calls
    server1 = {k: v for k, v in state.params["actor"]["params"].items() if k.startswith("server")}
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(server0), jax.tree.leaves(server1)))


def test_eval_policy_is_stateful_and_vmaps_over_worlds(trained):
    env, params, config, state, _ = trained
    one = jax.tree.map(lambda x: x[0], state)
    trainer = msrl.make_trainer(env, config, params)
    policy = trainer.make_eval_policy(one)
    worlds = 2

    def run(key):
        k_reset, k_init, k_act = jax.random.split(key, 3)
        _, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, worlds), params)
        pstate = jax.vmap(policy.init, in_axes=(0, None))(jax.random.split(k_init, worlds), params)
        act = jax.vmap(policy.act, in_axes=(0, 0, 0, None))
        a1, pstate, extras = act(jax.random.split(k_act, worlds), pstate, env_state, params)
        a2, pstate, _ = act(jax.random.split(k_init, worlds), pstate, env_state, params)
        return a1, a2, pstate, extras

    a1, a2, pstate, extras = jax.jit(run, compiler_options=FAST_COMPILE)(jax.random.key(5))
    assert a1.shape == (worlds, 3) and a1.dtype == jnp.int32 and ((a1 >= 0) & (a1 < 4)).all()
    assert a2.shape == a1.shape
    assert extras["use_server"].shape == (worlds, 3) and extras["params_used"].dtype == jnp.float32
    np.testing.assert_allclose(extras["params_used"], 292 + 1412 * np.asarray(extras["use_server"]))
    np.testing.assert_array_equal(pstate.num_calls, 2)
    start = np.asarray(jnp.mean(one.switch.threshold_nats, axis=0))  # trained per-agent Thr
    np.testing.assert_allclose(
        pstate.threshold_nats, np.clip(start + 0.02 * np.asarray(pstate.server_calls), 0.05, LN4), atol=1e-5
    )


def test_bad_config_values_raise_errors_naming_the_field():
    for kwargs, field in (
        ({"mode": "edge"}, "mode"),
        ({"gamma": 1.5}, "gamma"),
        ({"entropy_window": 0}, "entropy_window"),
        ({"num_switches": 0}, "num_switches"),
        ({"client_sizes": ()}, "client_sizes"),
        ({"threshold_max_nats": 0.01}, "threshold_min_nats"),
        ({"clip_eps": 0.0}, "clip_eps"),
        ({"num_envs": 3, "num_steps": 3}, "num_minibatches"),
        ({"ent_coef": -1.0}, "ent_coef"),
        ({"threshold_change_nats": float("nan")}, "threshold_change_nats"),
    ):
        with pytest.raises(ValueError, match=field):
            msrl.MsrlConfig(**kwargs)
    assert msrl.MsrlConfig(threshold_change_nats=-1e-5).threshold_change_nats < 0  # Ch < 0 is an option (§6.3)


def test_threshold_decay_lowers_thr_on_client_calls_and_tracks_the_entropy():
    # constant-low entropy 0.3: no server call, Thr falls by the decay per call: 0.7 - 0.01 k, until it reaches 0.3;
    # then raw flips on and off around it and Thr settles near the entropy
    rule = msrl.SwitchRule(0.01, 0.05, LN4, 100, "split", 0.01)
    use, thr, _ = _script([0.3] * 60, rule, window=1)
    np.testing.assert_allclose(thr[:39], 0.7 - 0.01 * np.arange(1, 40), atol=1e-5)
    assert not use[:40].any() and use[40:].any()
    assert np.all(np.abs(thr[40:] - 0.3) <= 0.011)
    # with decay = 2 Ch the share of server calls at the equilibrium is decay / (Ch + decay) = 2/3
    rule = msrl.SwitchRule(0.01, 0.05, LN4, 100, "split", 0.02)
    entropies = np.random.default_rng(0).uniform(0.2, 1.2, 3000).astype(np.float32)
    use, _, _ = _script(entropies, rule, window=1)
    assert abs(use[1000:].mean() - 2 / 3) < 0.02
    with pytest.raises(ValueError, match="threshold_decay_nats"):
        msrl.MsrlConfig(threshold_decay_nats=-1e-6)
