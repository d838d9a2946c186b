"""`vmjax train --env CrossRealityPrivacy-v0` (LHDPPO and the §7 PPO baselines, spec 000) and `vmjax evaluate`
against Geo-I and no perturbation on the same held-out worlds."""

import json

import pytest

from vmjax import cli, runner
from vmjax.agents import hgdm, lhdppo

TINY_PRIVACY = [
    "--env",
    "CrossRealityPrivacy-v0",
    "--env.num_vehicles",
    "2",
    "--env.num_rsus",
    "4",
    "--env.hop_neighbours",
    "2",
    "--env.max_steps",
    "6",
    "--agent.num_envs",
    "2",
    "--agent.num_steps",
    "6",
    "--agent.num_iterations",
    "2",
    "--agent.update_epochs",
    "1",
    "--agent.num_minibatches",
    "1",
    "--agent.denoising_steps",
    "2",
    "--agent.state_hidden",
    "16",
    "--agent.trunk_hidden",
    "16",
    "--agent.critic_hidden",
    "16",
    "--agent.mlp_hidden",
    "16",
    "--agent.time_embed_dim",
    "4",
    "--agent.time_hidden",
    "8",
    "--run.chunk_iterations",
    "1",
]


def test_privacy_train_and_evaluate(tmp_path, capsys):
    run_dir = tmp_path / "hppo"
    cli.main(["train", "--run.run_dir", str(run_dir), "--algo", "hppo", *TINY_PRIVACY])
    progress = [line for line in capsys.readouterr().err.splitlines() if " it " in line]
    assert progress and all(" latency_s " in line and "nan" not in line for line in progress)  # its own metric
    for name in ("config.json", "metrics.jsonl", "checkpoint.msgpack", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["algo"] == "hppo" and saved["agent"]["ratio"] == "per_head"
    assert saved["agent"]["reward_mode"] == "manual"  # every learning baseline trains on eq. (20) [R §7]
    records = runner.read_metrics(run_dir / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["rollout_latency_s"] > 0 and r["rollout_entropy_bits"] >= 0 for r in records)

    cli.main(["evaluate", str(run_dir), "--episodes", "2", "--seeds", "2"])
    results = json.loads((run_dir / "evaluation.json").read_text())["results"]
    assert set(results) == {"H-PPO", "geo_i", "no_perturbation", "max_perturbation"}
    for r in results.values():  # eq. (17) on the logged parts, per episode and so on the means
        assert r["utility"] == pytest.approx(r["entropy_bits"] - 0.02 * r["latency_s"] - 0.2 * r["qos_loss"], abs=1e-4)
        assert len(r["utility_seed_means"]) == 2
    assert results["no_perturbation"]["entropy_bits"] == pytest.approx(0.0, abs=1e-6)
    assert results["no_perturbation"]["qos_loss"] == pytest.approx(0.0, abs=1e-3)
    assert results["max_perturbation"]["entropy_bits"] > results["geo_i"]["entropy_bits"]  # r_max vs mean 0.15 r_max
    assert "utility (17)" in (run_dir / "evaluation.md").read_text()


def test_privacy_flags_labels_and_config_classes(capsys):
    label = lambda **o: runner.run_label(runner.build_configs({"run.env": "CrossRealityPrivacy-v0", **o}))
    assert label() == "LHDPPO"
    assert label(**{"run.algo": "ppo_relaxed"}) == "PPO-relaxed"
    assert label(**{"run.algo": "hdppo", "agent.reward_mode": "llm"}) == "HDPPO (reward llm)"
    assert label(**{"run.algo": "hgdm"}) == "HGDM"
    assert isinstance(runner.build_configs({"run.algo": "hgdm"})["agent"], hgdm.HgdmConfig)
    configs = runner.build_configs({"run.algo": "ghppo"})  # --algo alone implies the scenario
    assert configs["run"].env == "CrossRealityPrivacy-v0" and isinstance(configs["agent"], lhdppo.GhppoConfig)
    assert configs["agent"].num_iterations == 100  # the scenario's command-line default
    with pytest.raises(SystemExit, match="discrete_head must be one of"):
        cli.main(["train", "--env", "CrossRealityPrivacy-v0", "--agent.discrete_head", "gumbel"])
    parser = cli.make_parser(algo="hppo")
    text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--agent.ratio" in text and "one clipped ratio per actor" in text  # the subclass's own comment
    assert "--env.rate_link" in text and "--predictor" not in text
    assert "Adam lr of both diffusion actors" in text  # a comment inherited from LhdppoConfig
