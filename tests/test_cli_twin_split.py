"""`vmjax train --env TwinSplit-v0` (MSRL, spec 004) and `vmjax evaluate` against the §8 heuristics."""

import json

import numpy as np
import pytest

from vmjax import cli, runner

TINY_SPLIT = [
    "--env",
    "TwinSplit-v0",
    "--env.num_vehicles",
    "3",
    "--env.max_steps",
    "8",
    "--agent.num_envs",
    "2",
    "--agent.num_steps",
    "8",
    "--agent.num_iterations",
    "2",
    "--run.chunk_iterations",
    "1",
]


def test_twin_split_train_on_a_saved_bank_and_evaluate(tmp_path):
    """A run on a user's trajectory bank (`--trajectories.bank_path`, kept in the run folder for `evaluate`),
    then the comparison with Full Migration (both readings), Random Migration and Greedy on latency, QoE and BER,
    with the server-call share and parameters used of the learned actor (§6.9)."""
    rng = np.random.default_rng(0)
    steps = 9
    positions = np.cumsum(rng.normal(0.0, 100.0, (steps, 6, 2)), axis=0) + 2500.0
    bank = tmp_path / "bank.npz"
    np.savez(bank, positions_m=np.clip(positions, 0.0, 5000.0), valid=np.ones((steps, 6), bool))
    run_dir = tmp_path / "split"
    cli.main(["train", "--run.run_dir", str(run_dir), *TINY_SPLIT, "--trajectories.bank_path", str(bank)])
    for name in ("config.json", "metrics.jsonl", "checkpoint.msgpack", "trace_bank.npz", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["algo"] == "msrl" and saved["agent"]["mode"] == "split"
    records = runner.read_metrics(run_dir / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["episode_total_latency_s"] > 0 and 0 <= r["episode_ber"] <= 1 for r in records)

    cli.main(["evaluate", str(run_dir), "--episodes", "2", "--seeds", "2"])
    results = json.loads((run_dir / "evaluation.json").read_text())["results"]
    assert set(results) == {
        "MSRL (Split)",
        "full_migration",
        "no_premigration",
        "random_migration",
        "greedy_least_loaded",
        "greedy_balanced",
    }
    learned = results["MSRL (Split)"]
    assert 0 <= learned["use_server"] <= 1 and 292 <= learned["params_used"] <= 1704  # E = 4: §6.2 counts
    assert "use_server" not in results["random_migration"]  # heuristics have no actor
    assert results["no_premigration"]["ber"] == 0 and results["no_premigration"]["migration_share"] == 0
    assert all(len(r["latency_s_seed_means"]) == 2 for r in results.values())
    assert "BER" in (run_dir / "evaluation.md").read_text()


def test_twin_split_flags_and_labels(capsys):
    label = lambda **o: runner.run_label(runner.build_configs({"run.env": "TwinSplit-v0", **o}))
    assert label() == "MSRL (Split)"
    assert label(**{"agent.mode": "local_edge"}) == "Local-Edge"
    assert label(**{"agent.mode": "local", "trajectories.source": "generated"}) == "Local-Model (EST-TG trajectories)"
    with pytest.raises(SystemExit, match="source must be one of"):
        cli.main(["train", "--env", "TwinSplit-v0", "--trajectories.source", "tdrive"])
    with pytest.raises(SystemExit):  # no predictor section: TwinSplit-v0 has no learned forecast
        cli.main(["train", "--env", "TwinSplit-v0", "--predictor.epochs", "3"])
    assert "unrecognized arguments: --predictor.epochs" in capsys.readouterr().err
    parser = cli.make_parser(env_id="TwinSplit-v0")
    text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--trajectories.bank_path" in text and "--agent.threshold_change_nats" in text
    assert "--predictor" not in text


def test_a_broken_bank_file_is_named(tmp_path):
    bank = tmp_path / "bank.npz"
    bank.write_text("not a bank")
    with pytest.raises(SystemExit, match="not a trace bank"):
        cli.main(["train", "--run.run_dir", str(tmp_path / "r"), *TINY_SPLIT, "--trajectories.bank_path", str(bank)])
