"""The `vmjax` command line: flags from the config dataclasses, a tiny train -> resume -> evaluate run."""

import dataclasses
import json

import pytest

from vmjax import cli, predict
from vmjax.agents import HybridMappoConfig
from vmjax.agents.mappo_ddpg import MappoDdpgConfig
from vmjax.envs.avatar_premigration import AvatarPremigrationConfig


def test_help_documents_every_field_of_every_section():
    for algo, cls in (("hybrid_mappo", HybridMappoConfig), ("mappo_ddpg", MappoDdpgConfig)):
        parser = cli.make_parser(algo)
        train = parser._subparsers._group_actions[0].choices["train"]
        text = train.format_help()
        for section, config in (("run", cli.RunConfig), ("env", AvatarPremigrationConfig), ("agent", cls),
                                ("predictor", predict.PredictorConfig)):
            comments = cli.field_comments(config)
            for field in dataclasses.fields(config):
                assert f"--{section}.{field.name}" in text
                assert comments.get(field.name), f"{config.__name__}.{field.name} has no documentation comment"
    assert "discount" in cli.field_comments(HybridMappoConfig)["gamma"]


def test_bad_values_name_the_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--agent.gamma", "abc"])
    assert "--agent.gamma" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="num_minibatches"):
        cli.main(["train", "--agent.num_minibatches", "7", "--agent.num_envs", "3"])
    with pytest.raises(SystemExit, match="workload_forecast"):
        cli.main(["train", "--env.workload_forecast", "crystal_ball"])


TINY = [
    "--env.num_vehicles", "3", "--env.num_rsus", "3", "--env.max_steps", "8",
    "--agent.num_envs", "2", "--agent.num_steps", "8", "--agent.num_iterations", "2", "--agent.update_epochs", "1",
    "--agent.num_minibatches", "2", "--agent.hidden_sizes", "8", "--run.chunk_iterations", "1",
    "--predictor.hidden_size", "4", "--predictor.epochs", "1", "--predictor.num_slots", "60",
]


def test_train_resume_and_evaluate_a_tiny_run(tmp_path):
    run_dir = tmp_path / "run"
    cli.main(["train", "--run.run_dir", str(run_dir), *TINY])
    for name in ("config.json", "metrics.jsonl", "learning_curve.png", "checkpoint.msgpack", "checkpoint.json",
                 "predictor.msgpack", "predictor_metrics.json"):
        assert (run_dir / name).is_file(), name
    records = cli.read_metrics(run_dir / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["episode_total_latency_s"] > 0 for r in records)
    assert json.loads((run_dir / "checkpoint.json").read_text())["iteration"] == 2

    with pytest.raises(SystemExit, match="already holds a checkpoint"):
        cli.main(["train", "--run.run_dir", str(run_dir), *TINY])
    with pytest.raises(SystemExit, match="cannot change"):
        cli.main(["train", "--resume", "--run.run_dir", str(run_dir), "--env.num_rsus", "4"])

    # an interrupted chunk left a metrics line past the checkpoint: resume drops it and continues at 3
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**records[-1], "iteration": 3, "env_steps": -1}) + "\n")
    cli.main(["train", "--resume", "--run.run_dir", str(run_dir), "--agent.num_iterations", "3"])
    records = cli.read_metrics(run_dir / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert records[-1]["env_steps"] == 3 * 2 * 8
    assert json.loads((run_dir / "checkpoint.json").read_text())["iteration"] == 3

    cli.main(["evaluate", str(run_dir), "--episodes", "2", "--seeds", "2"])
    results = json.loads((run_dir / "evaluation.json").read_text())["results"]
    assert set(results) == {"Hybrid-MAPPO", "greedy", "random", "full_premigration", "no_premigration",
                            "nearest_rsu", "least_loaded", "lighter_neighbour"}
    assert all(r["latency_s"] > 0 and len(r["latency_s_seed_means"]) == 2 for r in results.values())
    assert (run_dir / "evaluation.png").is_file() and (run_dir / "evaluation.md").is_file()
