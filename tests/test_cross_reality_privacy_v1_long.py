"""`python -m experiments.cross_reality_privacy_v1_long`: `vmjax train` seed groups of CrossRealityPrivacy-v1
learners scored like the study's comparison, one row per budget (a file of its own so that pytest-xdist can run it
beside the study's pipeline test)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from baselines import cross_reality_privacy_study as study
from experiments import cross_reality_privacy_v1_long as long
from vmjax.agents import lhdppo

TINY_ENV = study.TINY_ENV


def test_long_budget_scores_a_vmjax_train_seed_group_once_per_budget(tmp_path, monkeypatch):
    """`long`: a `vmjax train --run.seeds 2` run (here with the env's agent on the connected server) scored like
    the comparison (seed k on held-out set k, its training curves) with the best fixed radius on its env variant,
    one row per budget: a re-run at the same budget loads nothing, a resumed run adds a row; a run on other env
    parameters or of another env is refused."""
    from vmjax import cli, runner

    config_class = lhdppo.ALGORITHMS["ppo_relaxed"]
    sizes = {k: v for k, v in study.TINY_LEARNER.items() if k in config_class.__dataclass_fields__}
    flags = [f"--env.{k}" for k in TINY_ENV] + [f"--agent.{k}" for k in sizes]
    values = [str(v) for v in TINY_ENV.values()] + [
        ",".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in sizes.values()
    ]
    tiny_flags = [token for pair in zip(flags, values) for token in pair]
    run_dir = tmp_path / "ppo_relaxed"
    train = ["train", "--env", "CrossRealityPrivacy-v1", "--algo", "ppo_relaxed", "--run.seeds", "2"]
    variant = ["--env.agent_server", "connected"]
    cli.main([*train, "--run.run_dir", str(run_dir), "--agent.num_iterations", "1", *variant, *tiny_flags])
    out = tmp_path / "out"
    argv = ["--env", "CrossRealityPrivacy-v1", "--tiny", "--seeds", "2", "--eval-episodes", "2"]
    long.main([*argv, "--out", str(out), str(run_dir)])
    config = study.StudyConfig(iterations=1, seeds=2, eval_episodes=2, env_id="CrossRealityPrivacy-v1")
    method, steps = long.run_group_budget(run_dir, config, TINY_ENV)
    assert method.startswith("PPO-relaxed (") and method.endswith(", agent_server=connected)")
    assert steps == sizes["num_envs"] * sizes["num_steps"]
    record = json.loads((out / "long_budget.json").read_text())
    rows = record["results"][method]
    fixed = record["yardsticks"]["agent_server=connected"][study.BEST_FIXED]
    assert len(fixed["utility_seed_means"]) == 2 and math.isfinite(fixed["latency_s"])
    assert f"| {study.BEST_FIXED} (agent_server=connected) |" in study.long_budget_table(record)
    row = rows[str(steps)]
    assert row["iterations"] == 1 and row["seeds"] == [0, 1] and row["vmapped_runs"] == 2
    assert np.asarray(row["curves"]["rollout_utility"]).shape == (2, 1)
    for part in ("untrained", "sampled", "untrained_sampled"):  # iteration 0; actions drawn from the policy
        assert len(row[part]["utility_seed_means"]) == 2 and "trajectory" not in row[part]
    # seed 1's own run folder, scored on held-out set 1 alone, is the group's second per-set mean
    _, env, params, trainer, state = runner.load_run(run_dir / "seed-1")
    alone = study.held_out_rollout(
        env, trainer.make_eval_policy(state.params), params, study.held_out_key(config, 1), 2, study.score_names(env)
    )
    assert row["utility_seed_means"][1] == pytest.approx(float(alone["means"]["utility"]), abs=1e-5)

    def not_again(*_, **__):
        raise AssertionError("a budget already scored was evaluated again")

    monkeypatch.setattr(long, "evaluate_run_group", not_again)
    long.main([*argv, "--out", str(out), str(run_dir)])
    monkeypatch.undo()
    cli.main(["train", "--resume", "--run.run_dir", str(run_dir), "--agent.num_iterations", "2"])
    long.main([*argv, "--out", str(out), str(run_dir)])
    rows = json.loads((out / "long_budget.json").read_text())["results"][method]
    assert sorted(map(int, rows)) == [steps, 2 * steps] and rows[str(steps)] == row
    assert np.asarray(rows[str(2 * steps)]["curves"]["rollout_utility"]).shape == (2, 2)
    with pytest.raises(ValueError, match="env parameters differ"):
        long.evaluate_run_group(run_dir, config, {**TINY_ENV, "num_rsus": TINY_ENV["num_rsus"] + 2})
    with pytest.raises(ValueError, match="not a learner of the study"):
        long.evaluate_run_group(run_dir, dataclasses.replace(config, env_id="CrossRealityPrivacy-v0"), TINY_ENV)
