"""The CrossRealityPrivacy-v1 study's pieces (`baselines.cross_reality_privacy_study`): learning rates held in the
LHDPPO optimizer state (a vmapped grid equals its runs alone), the reward search resumed by round, the attacker
confidence binned by the perturbation distance (by hand), the held-out rollout's trajectory (reports eq. 2 away
from the true positions) and the whole `study` pipeline at a tiny budget, resumed without training again."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines import cross_reality_privacy_study as study
from vmjax.agents import lhdppo
from vmjax.agents import reward_search as rs

TINY_ENV = study.TINY_ENV
TINY = {k: v for k, v in study.TINY_LEARNER.items() if k in lhdppo.LhdppoConfig.__dataclass_fields__}


@pytest.fixture(scope="module")
def tiny():
    env = vmjax.make("CrossRealityPrivacy-v1", **TINY_ENV)
    return env, env.default_params, lhdppo.LhdppoConfig(num_iterations=2, **TINY)


def test_learning_rates_live_in_the_optimizer_state_and_a_vmapped_grid_equals_its_runs(tiny):
    env, params, config = tiny
    trainer = lhdppo.make_trainer(env, config, params)
    state = trainer.init(jax.random.key(0))
    assert {k: float(v) for k, v in lhdppo.learning_rates(state).items()} == pytest.approx(
        {"actor": 1e-4, "critic": 1e-4}
    )
    moved = lhdppo.with_learning_rates(state, 3e-4, 2e-3)
    assert {k: float(v) for k, v in lhdppo.learning_rates(moved).items()} == pytest.approx(
        {"actor": 3e-4, "critic": 2e-3}
    )

    def train_one(key, lr):
        return trainer.run(lhdppo.with_learning_rates(trainer.init(key), lr, lr), config.num_iterations)[0].params

    grid = jax.jit(jax.vmap(train_one, in_axes=(None, 0)))(jax.random.key(1), jnp.asarray([1e-4, 1e-3]))
    # lr = 1e-3 in the grid = a run of a config built with that learning rate
    fast = lhdppo.LhdppoConfig(num_iterations=2, actor_lr=1e-3, critic_lr=1e-3, **TINY)
    alone = jax.jit(lhdppo.make_trainer(env, fast, params).train)(jax.random.key(1))[0].params
    for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x: x[1], grid)), jax.tree.leaves(alone)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert not np.allclose(jax.tree.leaves(grid)[0][0], jax.tree.leaves(grid)[0][1])  # the rates differ


def test_intensity_bins_by_hand():
    distance = jnp.array([[0.0, 9.9, 10.0], [55.0, 119.0, 500.0]])
    confidence = jnp.array([[1.0, 0.8, 0.6], [0.5, 0.2, 0.1]])
    bins = study.intensity_bins(distance, {"attacker_confidence": confidence})
    count, total = np.asarray(bins["count"]), np.asarray(bins["attacker_confidence"])
    assert count.shape == (study.INTENSITY_BINS,)
    np.testing.assert_allclose(count[[0, 1, 5, 11]], [2, 1, 1, 2])  # 500 m lands in the last bin
    np.testing.assert_allclose(total[[0, 1, 5, 11]], [1.8, 0.6, 0.5, 0.3], rtol=1e-6)
    assert count.sum() == 6


def test_held_out_rollout_reports_lie_the_perturbation_away_from_the_true_positions(tiny):
    env, params, _ = tiny
    policy = study.heuristic_policy(env, "best_fixed_radius")
    out = jax.jit(lambda k: study.held_out_rollout(env, policy, params, k, 3, study.V1_SCORES))(jax.random.key(5))
    trajectory = {k: np.asarray(v) for k, v in out["trajectory"].items()}
    t, m = env.config.max_steps, env.num_agents
    assert trajectory["true_m"].shape == trajectory["reported_m"].shape == (t, m, 2)
    gap = np.linalg.norm(trajectory["reported_m"] - trajectory["true_m"], axis=-1)
    # r = 0.4 r_max: 0.4 x 111.2 m north-south, 0.4 x 95.2 m east-west (eq. 2 adds degrees to lon / lat)
    assert np.all(gap > 0.4 * 95.0) and np.all(gap < 0.4 * 111.3)
    assert float(np.asarray(out["bins"]["count"]).sum()) == 3 * t * m
    means = jax.jit(lambda k: study.heuristics.episode_metrics(env, policy, params, k, 3))(jax.random.key(5))
    np.testing.assert_allclose(out["means"]["utility"], np.mean(means["utility"]), rtol=1e-5)
    assert 0.0 < float(out["means"]["attacker_confidence"]) <= 1.0


def test_reward_search_resumes_after_its_finished_rounds(tiny):
    env, params, config = tiny
    kwargs = dict(eval_key=jax.random.key(9), eval_envs=2, eval_steps=3)
    full = rs.search(env, config, params, jax.random.key(1), 2, 1, **kwargs)
    first = rs.RoundResult.from_json(json.loads(json.dumps(full.history[0].to_json())))
    trained = []
    resumed = rs.search(env, config, params, jax.random.key(1), 2, 1, on_round=trained.append, resume=[first], **kwargs)
    assert [r.round_index for r in trained] == [1]  # round 0 was not trained again
    np.testing.assert_array_equal(resumed.history[1].weights, full.history[1].weights)
    np.testing.assert_allclose(resumed.history[1].utility, full.history[1].utility, rtol=1e-5)
    assert resumed.best_score == pytest.approx(full.best_score, rel=1e-5)


def test_study_pipeline_at_a_tiny_budget_and_a_resumed_run_trains_nothing(tmp_path, monkeypatch):
    config = study.StudyConfig(iterations=1, seeds=3, eval_episodes=2, env_id="CrossRealityPrivacy-v1")
    args = dict(
        rounds=1,
        candidates=1,
        grid_seeds=2,
        lr_grid=(1e-4, 1e-3),
        denoising_grid=(5,),
        env_config=TINY_ENV,
        overrides=study.TINY_LEARNER,
        log=lambda *_: None,
        command="test",
    )
    # one learner, two heuristics and two radii suffice here (every compilation costs seconds)
    monkeypatch.setattr(study, "LEARNERS", {"LHDPPO": "lhdppo"})
    monkeypatch.setattr(
        study, "V1_HEURISTICS", {k: study.V1_HEURISTICS[k] for k in ("No perturbation", study.BEST_FIXED)}
    )
    monkeypatch.setattr(study, "CONFIDENCE_FRACTIONS", (0.0, 0.5))
    study.run_study(config, tmp_path, **args)
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    results = comparison["results"]
    assert set(results) == {"LHDPPO", "No perturbation", study.BEST_FIXED}
    assert comparison["command"] == "test" and comparison["machine"]
    for r in results.values():
        assert len(r["utility_seed_means"]) == 3 and math.isfinite(r["adversary_error_m"])
        assert sum(r["intensity"]["count"]) == 3 * 2 * TINY_ENV["max_steps"] * TINY_ENV["num_vehicles"]
    assert np.asarray(results["LHDPPO"]["curves"]["rollout_utility"]).shape == (3, 1)
    assert results["No perturbation"]["perturbation_m"] == pytest.approx(0.0, abs=1e-6)
    lr = json.loads((tmp_path / "sweep_lr.json").read_text())["results"]
    assert set(lr) == {"0.0001", "0.001"} and lr["0.001"]["vmapped_runs"] == 2  # 1 rate x 2 seeds
    # the spec's lr = 1e-4 is the comparison's LHDPPO (its first seeds: the same keys and held-out sets)
    assert lr["0.0001"]["from"] == "comparison.json"
    assert lr["0.0001"]["utility_seed_means"] == results["LHDPPO"]["utility_seed_means"][:2]
    search = json.loads((tmp_path / "reward_search.json").read_text())["results"]
    assert len(search["rounds"]) == 1 and "best_retrained" in search
    assert set(json.loads((tmp_path / "sweep_denoising_steps.json").read_text())["results"]) == {"5"}
    rows = json.loads((tmp_path / "confidence.json").read_text())["rows"]
    assert [row["fraction"] for row in rows] == [0.0, 0.5]
    assert rows[0]["attacker_confidence"] > rows[1]["attacker_confidence"]  # a wider report, a less sure adversary

    def no_training(*_, **__):
        raise AssertionError("a resumed study trained again")

    monkeypatch.setattr(study, "train_and_evaluate", no_training)
    monkeypatch.setattr(study, "train_learning_rate_grid", no_training)
    monkeypatch.setattr(study.reward_search, "train_and_score", no_training)
    study.run_study(config, tmp_path, **args)
