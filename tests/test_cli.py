"""The `vmjax` command line: flags from the config dataclasses, a tiny train -> resume -> evaluate run."""

import dataclasses
import json

import pytest

from vmjax import cli, predict, runner
from vmjax.agents import HybridMappoConfig
from vmjax.agents.mappo_ddpg import MappoDdpgConfig
from vmjax.envs.avatar_premigration import AvatarPremigrationConfig
from vmjax.envs.twin_routing import NormStats


def test_help_documents_every_field_of_every_section():
    for algo, cls in (("hybrid_mappo", HybridMappoConfig), ("mappo_ddpg", MappoDdpgConfig)):
        parser = cli.make_parser(algo)
        train = parser._subparsers._group_actions[0].choices["train"]
        text = train.format_help()
        for section, config in (
            ("run", runner.RunConfig),
            ("env", AvatarPremigrationConfig),
            ("agent", cls),
            ("predictor", predict.PredictorConfig),
        ):
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
    "--env.num_vehicles",
    "3",
    "--env.num_rsus",
    "3",
    "--env.max_steps",
    "8",
    "--agent.num_envs",
    "2",
    "--agent.num_steps",
    "8",
    "--agent.num_iterations",
    "2",
    "--agent.update_epochs",
    "1",
    "--agent.num_minibatches",
    "2",
    "--agent.hidden_sizes",
    "8",
    "--run.chunk_iterations",
    "1",
    "--predictor.hidden_size",
    "4",
    "--predictor.epochs",
    "1",
    "--predictor.num_slots",
    "60",
]


def test_train_resume_and_evaluate_a_tiny_run(tmp_path):
    run_dir = tmp_path / "run"
    cli.main(["train", "--run.run_dir", str(run_dir), *TINY])
    for name in (
        "config.json",
        "metrics.jsonl",
        "learning_curve.png",
        "checkpoint.msgpack",
        "checkpoint.json",
        "predictor.msgpack",
        "predictor.msgpack.built.json",  # the config fingerprint it was trained from
        "predictor_metrics.json",
    ):
        assert (run_dir / name).is_file(), name
    records = runner.read_metrics(run_dir / "metrics.jsonl")
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
    records = runner.read_metrics(run_dir / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert records[-1]["env_steps"] == 3 * 2 * 8
    assert json.loads((run_dir / "checkpoint.json").read_text())["iteration"] == 3
    assert runner.read_run_checkpoint(run_dir)[0]["iteration"] == 3  # the checkpoint itself says so

    cli.main(["evaluate", str(run_dir), "--episodes", "2", "--seeds", "2"])
    results = json.loads((run_dir / "evaluation.json").read_text())["results"]
    assert set(results) == {
        "Hybrid-MAPPO",
        "greedy_oracle",
        "greedy_observed",
        "random",
        "full_premigration",
        "no_premigration",
        "nearest_rsu",
        "least_loaded",
        "lighter_neighbour",
    }
    assert all(r["latency_s"] > 0 and len(r["latency_s_seed_means"]) == 2 for r in results.values())
    assert (run_dir / "evaluation.png").is_file() and (run_dir / "evaluation.md").is_file()

    # --heuristics: only the named ones beside the run; an unknown name fails before any evaluation
    chosen = tmp_path / "chosen"
    cli.main(
        ["evaluate", str(run_dir), "--episodes", "2", "--seeds", "1", "--heuristics", "random", "--out", str(chosen)]
    )
    assert set(json.loads((chosen / "evaluation.json").read_text())["results"]) == {"Hybrid-MAPPO", "random"}
    with pytest.raises(cli.CommandError, match=r"unknown heuristic\(s\) \['nope'\]: this scenario has \["):
        cli.main(["evaluate", str(run_dir), "--heuristics", "nope", "--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()


TINY_TWIN = [
    "--env",
    "TwinRouting-v0",
    "--env.num_vehicles",
    "2",
    "--env.num_rsus",
    "6",
    "--env.num_uavs",
    "1",
    "--env.max_steps",
    "6",
    "--env.city_size_m",
    "2000",
    "--agent.num_envs",
    "2",
    "--agent.num_steps",
    "6",
    "--agent.num_iterations",
    "2",
    "--agent.hidden_sizes",
    "8",
    "--run.chunk_iterations",
    "1",
    "--run.norm_episodes",
    "2",
]


def test_twin_routing_train_and_evaluate_masac(tmp_path):
    """`vmjax train --env TwinRouting-v0 --algo masac` calibrates the reward statistics for the run's config and
    trains; `vmjax evaluate` compares it with Greedy and Random on latency, migration latency and packet loss.
    (DM-MAPPO with the trained workload predictor runs through the same functions in the twin_routing notebook
    test.)"""
    run_dir = tmp_path / "masac"
    cli.main(
        [
            "train",
            "--algo",
            "masac",
            "--run.run_dir",
            str(run_dir),
            *TINY_TWIN,
            "--env.workload_forecast",
            "persistence",
            "--agent.batch_size",
            "4",
            "--agent.buffer_size",
            "64",
        ]
    )
    for name in ("config.json", "metrics.jsonl", "checkpoint.msgpack", "norm_stats.json", "norm_stats.json.built.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "predictor.msgpack").exists()  # the persistence forecast needs no predictor
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["env"] == "TwinRouting-v0" and saved["run"]["algo"] == "masac"
    records = runner.read_metrics(run_dir / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["episode_total_latency_s"] > 0 and 0 <= r["episode_failure"] <= 1 for r in records)
    stats = json.loads((run_dir / "norm_stats.json").read_text())
    assert stats["latency_std_s"] > 0 and stats != json.loads(
        json.dumps(dataclasses.asdict(NormStats()))
    )  # calibrated, not the library's placeholder

    cli.main(["evaluate", str(run_dir), "--episodes", "2", "--seeds", "2"])
    results = json.loads((run_dir / "evaluation.json").read_text())["results"]
    assert set(results) == {"MASAC w/o pred.", "greedy", "random"}
    for r in results.values():
        assert r["latency_s"] > 0 and 0 <= r["packet_loss"] <= 1 and len(r["packet_loss_seed_means"]) == 2
    assert "packet loss" in (run_dir / "evaluation.md").read_text()


def test_twin_routing_flags_are_checked():
    with pytest.raises(SystemExit, match="--algo must be one of"):
        cli.main(["train", "--env", "TwinRouting-v0", "--algo", "hybrid_mappo"])
    with pytest.raises(SystemExit, match="load_history_slots"):
        cli.main(["train", "--env", "TwinRouting-v0", "--predictor.window", "5"])
    with pytest.raises(SystemExit, match="--env must be one of"):
        cli.main(["train", "--env", "TwinRouting-v9"])
    parser = cli.make_parser("masac")
    text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--traffic.num_slots" in text and "--agent.tau" in text and "--env.use_mask" in text


def test_twin_routing_run_labels_name_the_ablations():
    label = lambda *flags: runner.run_label(
        runner.build_configs(dict(zip(flags[::2], flags[1::2]), **{"run.env": "TwinRouting-v0"}))
    )
    assert label() == "DM-MAPPO"
    assert label("env.use_mask", False) == "DM-MAPPO w/o mask"
    assert label("env.workload_forecast", "persistence", "run.algo", "masac") == "MASAC w/o pred."
    assert label("env.workload_forecast", "oracle", "env.use_mask", False) == "DM-MAPPO (oracle) w/o mask"
    assert runner.run_label(runner.build_configs({"env.workload_forecast": "none"})) == "Hybrid-MAPPO w/o pred."
