"""The offline reward-design loop (spec 000 §4.5) on a tiny CrossRealityPrivacy-v0: RewardWeights.apply, the
vmapped train-and-score grid (candidates x seeds) against each (candidate, seed) trained alone, identical weights ->
identical scores, the evaluation utility is eq. (17) of its parts with the base params' fixed utility weights (the
eq. 21 weights do not enter it), the generator hook, the argmax, the JSON record, determinism and input errors.
One compilation of the grid (K = 2, S = 2) is shared by every test (module-level jit)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import lhdppo
from vmjax.agents import reward_search as rs
from vmjax.mobility import Trace

TINY = {
    "num_envs": 2,
    "num_steps": 6,
    "num_iterations": 2,
    "update_epochs": 1,
    "num_minibatches": 1,
    "denoising_steps": 1,
    "state_hidden": (8,),
    "trunk_hidden": (8,),
    "time_embed_dim": 4,
    "time_hidden": 4,
    "critic_hidden": (8,),
}
M, N = 2, 3
EVAL = {"eval_envs": 2, "eval_steps": 4, "num_seeds": 2}
A = rs.SPEC_START
B = (2.0, 0.1, 1.5, 0.0, -0.3)


def _env():
    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=M, num_rsus=N, max_steps=5, hop_neighbours=2)
    bank = np.random.default_rng(0).uniform([6000.0, 6000.0], [13000.0, 16000.0], (8, 4, 2)).astype(np.float32)
    return env, env.default_params.replace(trace_bank=Trace.create(bank))


@pytest.fixture(scope="module")
def setup():
    env, params = _env()
    return env, params, lhdppo.LhdppoConfig(**TINY)


@pytest.fixture(scope="module")
def scored(setup):
    env, params, config = setup
    weights = np.array([A, B], np.float32)
    return weights, rs.train_and_score(env, config, params, weights, jax.random.key(0), jax.random.key(9), **EVAL)


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def test_reward_weights_apply_sets_exactly_the_five_fields():
    _, params = _env()
    w = rs.RewardWeights(2.0, 3.0, 4.0, 5.0, -6.0)
    new = w.apply(params)
    for field in dataclasses.fields(params):
        old_v, new_v = getattr(params, field.name), getattr(new, field.name)
        if field.name in rs.WEIGHT_NAMES:
            assert float(new_v) == getattr(w, field.name)
        else:
            assert jax.tree.structure(old_v) == jax.tree.structure(new_v)
            assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(old_v), jax.tree.leaves(new_v)))
    assert rs.WEIGHT_NAMES == rs.RewardWeights._fields
    assert rs.RewardWeights.from_params(new) == w
    np.testing.assert_allclose(rs.RewardWeights.from_array(np.array([A, B])).to_array(), [A, B], rtol=1e-7)
    assert rs.RewardWeights.from_params(params) == rs.RewardWeights.spec_start()  # the env's defaults = §4.3


def test_grid_shapes_and_every_candidate_and_seed_equals_its_run_alone(setup, scored):
    env, params, config = setup
    weights, scores = scored
    for leaf in jax.tree.leaves(scores):
        assert leaf.shape == (2, 2)
    assert all(np.all(np.isfinite(v)) for v in _np(scores.eval).values())
    assert not np.allclose(scores.eval["utility"][0], scores.eval["utility"][1])  # the candidates differ ...
    assert not np.allclose(scores.train["mean_train_reward"][:, 0], scores.train["mean_train_reward"][:, 1])  # seeds

    @jax.jit
    def alone(candidate_params, base_params, key, eval_key):  # no vmap: one plain training, then the evaluation
        trainer = lhdppo.make_trainer(env, config, candidate_params)
        state, metrics = trainer.train(key)
        ev = rs.evaluate_policy(
            env, trainer.make_eval_policy(state), base_params, eval_key, EVAL["eval_envs"], EVAL["eval_steps"]
        )
        return ev, jax.tree.map(lambda x: x[-1], metrics)

    keys = rs.seed_keys(jax.random.key(0), EVAL["num_seeds"])
    for k, w in enumerate(weights):
        for s in range(EVAL["num_seeds"]):
            ev, train = alone(rs.RewardWeights(*w).apply(params), params, keys[s], jax.random.key(9))
            for name in rs.EVAL_METRICS:
                np.testing.assert_allclose(scores.eval[name][k, s], ev[name], rtol=1e-4, atol=1e-5, err_msg=name)
            for name in ("mean_train_reward", "rollout_utility", "value_loss", "entropy_d"):
                np.testing.assert_allclose(scores.train[name][k, s], train[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_same_inputs_same_scores_and_identical_weights_identical_scores(setup, scored):
    env, params, config = setup
    weights, scores = scored
    again = rs.train_and_score(env, config, params, weights, jax.random.key(0), jax.random.key(9), **EVAL)
    jax.tree.map(np.testing.assert_array_equal, _np(again), _np(scores))
    twins = rs.train_and_score(
        env, config, params, rs.RewardWeights.from_array(np.array([B, B])), jax.random.key(0), jax.random.key(9), **EVAL
    )
    jax.tree.map(lambda x: np.testing.assert_array_equal(x[0], x[1]), _np(twins))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x[1], y[1], rtol=1e-5, atol=1e-6), _np(twins), _np(scores))


def test_eval_utility_is_eq17_of_its_parts_with_the_fixed_utility_weights(setup, scored):
    env, params, _ = setup
    _, scores = scored
    ev = _np(scores.eval)
    # eq. (17) per AV, linear, so its mean is the same relation of the means: E - 0.02 L - 0.2 Q
    np.testing.assert_allclose(
        ev["utility"], ev["entropy_bits"] - 0.02 * ev["latency_s"] - 0.2 * ev["qos_loss"], rtol=1e-4, atol=1e-4
    )

    def fixed_policy(key, env_state, env_params):  # a fixed heuristic: nearest-index server 0, constant perturbation
        return {"target": jnp.zeros((M,), jnp.int32), "perturbation": jnp.full((M, 2), 0.5)}

    evaluate = jax.jit(lambda p: rs.evaluate_policy(env, fixed_policy, p, jax.random.key(9), 2, 4))
    under_a = _np(evaluate(rs.RewardWeights(*A).apply(params)))
    under_b = _np(evaluate(rs.RewardWeights(*B).apply(params)))
    for name in rs.EVAL_METRICS:  # the reward weights do not move the score of a fixed policy
        np.testing.assert_array_equal(under_a[name], under_b[name])
    # ... while the utility weights of eq. (17) do (the score really is eq. 17 with the base params' weights)
    other = _np(evaluate(params.replace(w_latency_per_s=0.05)))
    np.testing.assert_allclose(
        other["utility"],
        under_a["entropy_bits"] - 0.05 * under_a["latency_s"] - 0.2 * under_a["qos_loss"],
        rtol=1e-4,
        atol=1e-4,
    )
    assert not np.isclose(other["utility"], under_a["utility"])


def test_generator_hook_history_argmax_and_json_record(setup, tmp_path):
    env, params, config = setup
    rounds = [np.array([B, A], np.float32), np.array([A, (0.5, 2.0, 0.1, 0.3, 0.2)], np.float32)]
    calls = []

    def generator(round_index, history, rng):
        calls.append((round_index, [h.weights.copy() for h in history], history and dict(history[-1].scores)))
        assert isinstance(rng, np.random.Generator)
        return rounds[round_index]

    key, eval_key = jax.random.key(5), jax.random.key(9)
    out = tmp_path / "sub" / "search.json"
    result = rs.search(
        env,
        config,
        params,
        key,
        rounds=2,
        candidates_per_round=2,
        generator=generator,
        eval_key=eval_key,
        output_path=str(out),
        **EVAL,
    )
    assert [c[0] for c in calls] == [0, 1]
    assert calls[0][1] == [] and len(calls[1][1]) == 1
    np.testing.assert_array_equal(calls[1][1][0], rounds[0])  # round 1 saw round 0's weights and scores
    np.testing.assert_array_equal(calls[1][2]["utility"], result.history[0].scores["utility"])
    train_key = jax.random.split(key)[0]
    for r, h in enumerate(result.history):
        assert h.round_index == r
        np.testing.assert_array_equal(h.weights, rounds[r])  # the generator's candidates are the ones trained
        direct = rs.train_and_score(env, config, params, rounds[r], train_key, eval_key, **EVAL)
        np.testing.assert_array_equal(h.per_seed["utility"], direct.eval["utility"])
        np.testing.assert_allclose(h.scores["utility"], np.mean(direct.eval["utility"], axis=1), rtol=1e-6)
        assert h.per_seed["train_mean_train_reward"].shape == (2, 2)
    utilities = np.stack([h.scores["utility"] for h in result.history])
    best_round, best_index = np.unravel_index(np.argmax(utilities), utilities.shape)
    assert (result.best_round, result.best_index) == (best_round, best_index)
    assert result.best_score == pytest.approx(utilities.max())
    np.testing.assert_allclose(result.best_weights, rounds[best_round][best_index], rtol=1e-7)
    record = json.loads(out.read_text())
    assert len(record["rounds"]) == 2 and record["rounds"][1]["weights"] == rounds[1].tolist()
    assert record["rounds"][0]["scores"]["utility"] == result.history[0].scores["utility"].tolist()
    assert [p.name for p in out.parent.iterdir()] == ["search.json"]  # no temporary file left behind
    assert "round 1" in rs.format_round(result.history[1])


def test_default_generator_search_is_deterministic(setup):
    env, params, config = setup
    run = lambda key: rs.search(
        env, config, params, key, rounds=2, candidates_per_round=2, eval_key=jax.random.key(9), **EVAL
    )
    first, second = run(jax.random.key(1)), run(jax.random.key(1))
    assert first.best_weights == second.best_weights and first.best_score == second.best_score
    for h1, h2 in zip(first.history, second.history):
        np.testing.assert_array_equal(h1.weights, h2.weights)
        np.testing.assert_array_equal(h1.scores["utility"], h2.scores["utility"])
    np.testing.assert_allclose(first.history[0].weights[0], A, rtol=1e-7)  # round 0 starts at the §4.3 weights
    assert not np.array_equal(first.history[0].weights, first.history[1].weights)
    other = run(jax.random.key(2))
    assert not np.array_equal(other.history[0].weights, first.history[0].weights)


def test_cross_entropy_generator_rule():
    gen = rs.CrossEntropyGenerator()
    r0 = gen(0, [], np.random.default_rng(0), 64)
    assert r0.shape == (64, 5) and r0.dtype == np.float32
    np.testing.assert_allclose(r0[0], A, rtol=1e-6)
    ratio = r0[1:] / np.asarray(A, np.float32)
    assert np.all(ratio >= 0.1 - 1e-6) and np.all(ratio <= 10.0 + 1e-5)  # log-uniform factors in [0.1, 10]
    np.testing.assert_array_equal(r0, gen(0, [], np.random.default_rng(0), 64))
    # round 1: centred on the elite (top 25% = the single best of 4): samples' log10 mean near its log10
    weights = np.array([A, B, (0.3, 0.3, 0.3, 0.3, 0.3), (3.0, 3.0, 3.0, 3.0, 3.0)], np.float32)
    history = [rs.RoundResult(0, weights, {"utility": np.array([0.1, 0.2, 0.9, 0.0])}, {}, 0.0)]
    r1 = gen(1, history, np.random.default_rng(1), 4000)
    assert np.all(r1 > 0)
    np.testing.assert_allclose(np.mean(np.log10(r1), axis=0), np.log10(0.3), atol=0.03)
    np.testing.assert_allclose(np.std(np.log10(r1), axis=0), 0.5 / np.sqrt(3.0), rtol=0.05)  # the floor at r = 1
    rs.validate_weights(r1)
    with pytest.raises(ValueError, match="elite_fraction"):
        rs.CrossEntropyGenerator(elite_fraction=0.0)
    with pytest.raises(ValueError, match="w2_log_latency"):
        rs.CrossEntropyGenerator(start=(1.0, -1.0, 0.5, 0.1, 0.1))


def test_bad_input_raises_value_error_naming_the_field(setup):
    env, params, config = setup
    k = jax.random.key(0)

    def score(weights, **kw):
        return rs.train_and_score(env, config, params, weights, k, k, **{**EVAL, **kw})

    with pytest.raises(ValueError, match="w3_qos_normalised of candidate 1 must be finite"):
        score(np.array([A, (1.0, 1.0, np.nan, 0.1, 0.1)]))
    with pytest.raises(ValueError, match="w5_angle_per_rad of candidate 0 must be finite"):
        score(rs.RewardWeights(1.0, 1.0, 0.5, 0.1, np.inf))
    with pytest.raises(ValueError, match="w2_log_latency of candidate 0 must be >= 0"):
        score(np.array([(1.0, -1.0, 0.5, 0.1, 0.1)]))
    with pytest.raises(ValueError, match=r"shape \[K, 5\]"):
        score(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"shape \[K, 5\]"):
        score(np.ones(5))
    with pytest.raises(ValueError, match="K >= 1"):
        score(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="eval_envs"):
        score(np.array([A]), eval_envs=0)
    with pytest.raises(ValueError, match="num_seeds"):
        score(np.array([A]), num_seeds=0)
    with pytest.raises(ValueError, match="reward_mode"):
        rs.train_and_score(env, lhdppo.hdppo_config(**TINY), params, np.array([A]), k, k)
    with pytest.raises(ValueError, match="rounds"):
        rs.search(env, config, params, k, rounds=0)
    with pytest.raises(ValueError, match="candidates_per_round"):
        rs.search(env, config, params, k, rounds=1, candidates_per_round=0)
    with pytest.raises(ValueError, match="expected candidates_per_round = 2"):
        rs.search(env, config, params, k, rounds=1, candidates_per_round=2, generator=lambda r, h, g: np.array([A]))
    with pytest.raises(ValueError, match="generator round 0.*w1_entropy of candidate 0 must be finite"):
        rs.search(
            env,
            config,
            params,
            k,
            rounds=1,
            candidates_per_round=1,
            generator=lambda r, h, g: np.array([(np.nan, 1.0, 0.5, 0.1, 0.1)]),
        )
