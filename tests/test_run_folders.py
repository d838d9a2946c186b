"""Run folders (issue 16): nothing lost, nothing mixed, nothing silently wrong. A run killed at each write point
in turn resumes to the same parameters and metrics as an uninterrupted run; damaged, missing or empty checkpoints,
a second trainer of the folder, stale derived artifacts and torn metrics are refused or repaired with a message."""

import json
import os
import shutil
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from vmjax import cli, report, runner, scenarios
from vmjax.agents import checkpoint, ppo
from vmjax.agents.trainer import annealed_fields
from vmjax.core import io
from vmjax.scenarios import base

TINY_RUN = [
    "--env.workload_forecast",
    "none",
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
    "3",
    "--agent.update_epochs",
    "1",
    "--agent.num_minibatches",
    "2",
    "--agent.hidden_sizes",
    "8",
    "--run.chunk_iterations",
    "1",
]


class Killed(BaseException):
    """What a kill looks like to the code between two statements (not an Exception: nothing catches it)."""


def train(run_dir, *extra):
    return cli.main(["train", "--run.run_dir", str(run_dir), *TINY_RUN, *extra])


def resume(run_dir):
    return cli.main(["train", "--resume", "--run.run_dir", str(run_dir)])


def outcome(run_dir):
    """(final state bytes, metrics without wall times) of a run folder."""
    progress, state_bytes = checkpoint.read_checkpoint(run_dir / "checkpoint.msgpack")
    metrics = [{k: v for k, v in r.items() if k != "wall_s"} for r in runner.read_metrics(run_dir / "metrics.jsonl")]
    return progress["iteration"], state_bytes, metrics


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted tiny run of 3 iterations."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    train(run_dir)
    return run_dir


def die_at(monkeypatch, module, name, call, when=lambda *a, **k: True, torn=False):
    """Patch `module.name` to raise Killed at its `call`-th call that `when` selects (`torn`: a metrics append
    that writes half of its first line first)."""
    original = getattr(module, name)
    calls = []

    def dying(*args, **kwargs):
        if when(*args, **kwargs):
            calls.append(1)
            if len(calls) == call:
                if torn:
                    with open(args[0], "a") as f:
                        f.write(args[1][0][: len(args[1][0]) // 2])
                raise Killed(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)


def test_a_run_killed_at_every_write_point_resumes_to_the_uninterrupted_result(reference, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    is_file = lambda name: lambda *args, **kwargs: os.path.basename(str(args[0])) == name
    kills = [
        # (patched module, function, n-th selected call, selector, torn, resume?)
        (io, "append_lines", 2, is_file("metrics.jsonl"), True, False),  # torn metrics line of iteration 2
        (io, "atomic_write_text", 1, is_file("metrics.jsonl"), False, True),  # the cut-back of metrics.jsonl
        (io, "atomic_write_json", 1, is_file("config.json"), False, True),  # the config of the resumed run
        (os, "replace", 1, lambda src, dst: os.path.basename(dst) == "checkpoint.msgpack", False, True),
        (io, "atomic_write_json", 1, is_file("checkpoint.json"), False, True),  # between checkpoint and summary
        (runner, "progress_line", 1, lambda *a: True, False, True),  # every file of iteration 3 written
    ]
    for module, name, call, when, torn, resuming in kills:
        with monkeypatch.context() as patch:
            die_at(patch, module, name, call, when, torn)
            with pytest.raises(Killed):
                resume(run_dir) if resuming else train(run_dir)
    assert not list(run_dir.glob(".*.tmp"))  # no temporary file outlives its write
    moved = tmp_path / "moved"
    run_dir.rename(moved)  # the folder moved: resumed under its new name (with a trailing slash)
    cli.main(["train", "--resume", "--run.run_dir", f"{moved}/"])
    assert json.loads((moved / "config.json").read_text())["run"]["run_dir"] == str(moved)
    assert (moved / "learning_curve.png").is_file()
    iteration, state_bytes, metrics = outcome(moved)
    ref_iteration, ref_state_bytes, ref_metrics = outcome(reference)
    assert iteration == ref_iteration == 3
    assert state_bytes == ref_state_bytes
    assert metrics == ref_metrics and [r["iteration"] for r in metrics] == [1, 2, 3]


def refusal(capsys, argv, match):
    """`vmjax argv` stops with status 2 and one `vmjax: error:` line that matches `match`."""
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vmjax: error:") and match in err[0], err


def test_damaged_missing_and_empty_checkpoints_are_refused_in_one_line(reference, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    resume_argv = ["train", "--resume", "--run.run_dir", str(run_dir)]
    ckpt = run_dir / "checkpoint.msgpack"
    good = ckpt.read_bytes()
    metrics_before = (run_dir / "metrics.jsonl").read_bytes()

    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    ckpt.write_bytes(bytes(flipped))
    refusal(capsys, resume_argv, "sha256 does not match")
    ckpt.write_bytes(good[: len(good) // 2])
    refusal(capsys, resume_argv, "corrupt")
    ckpt.write_bytes(b"")
    refusal(capsys, resume_argv, "is empty")
    refusal(capsys, ["evaluate", str(run_dir), "--episodes", "2", "--seeds", "1"], "is empty")
    ckpt.unlink()
    refusal(capsys, resume_argv, "has no checkpoint.msgpack")
    assert (run_dir / "metrics.jsonl").read_bytes() == metrics_before  # nothing restarted, nothing wiped
    refusal(capsys, ["train", "--run.run_dir", str(run_dir), *TINY_RUN], "already holds a checkpoint")

    ckpt.write_bytes(good)
    lines = metrics_before.decode().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join([lines[0], lines[1][:20], lines[2]]) + "\n")
    refusal(capsys, resume_argv, "line 2 is not valid JSON")
    (run_dir / "metrics.jsonl").write_text(lines[0] + "\n")
    refusal(capsys, resume_argv, "one record per iteration 1..3")
    (run_dir / "config.json").write_text("")
    refusal(capsys, resume_argv, "config.json is unreadable")
    refusal(capsys, ["train", "--resume", "--run.run_dir", str(tmp_path / "nowhere")], "not a run folder")


def test_a_checkpoint_of_the_earlier_format_still_reads(reference, tmp_path, capsys):
    """Bare Flax bytes + checkpoint.json; the state decides the iteration when the two disagree (a kill between
    the two files), and a missing or empty checkpoint.json is refused in one line."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    _, state_bytes = checkpoint.read_checkpoint(run_dir / "checkpoint.msgpack")
    (run_dir / "checkpoint.msgpack").write_bytes(state_bytes)
    (run_dir / "checkpoint.json").write_text(json.dumps({"iteration": 2, "env_steps": 32, "train_wall_s": 1.0}))
    progress, got = runner.read_run_checkpoint(run_dir)
    assert got == state_bytes and progress["iteration"] == 3 and progress["legacy"]
    (run_dir / "checkpoint.json").write_text("")
    refusal(capsys, ["train", "--resume", "--run.run_dir", str(run_dir)], "earlier format")
    (run_dir / "checkpoint.json").unlink()
    refusal(capsys, ["train", "--resume", "--run.run_dir", str(run_dir)], "earlier format")


def test_a_second_trainer_of_the_folder_is_refused_naming_the_holder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(run_dir / 'run.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "os.write(fd, f'pid {os.getpid()} on elsewhere, started then'.encode())\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        refusal(capsys, ["train", "--run.run_dir", str(run_dir), *TINY_RUN], f"pid {process.pid} on elsewhere")
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    with runner.RunLock(run_dir):  # in this process: a second open of the lock file is refused as well
        assert f"pid {os.getpid()}" in (run_dir / "run.lock").read_text()
        with pytest.raises(SystemExit, match=f"pid {os.getpid()}"):
            runner.train(runner.build_configs({"run.run_dir": str(run_dir)}))
    assert not (run_dir / "config.json").exists()


def test_stale_derived_artifacts_are_rebuilt_and_matching_ones_reused(tmp_path):
    configs = runner.build_configs({"predictor.hidden_size": 4})
    fingerprint = lambda c: base.config_fingerprint(c, ("env", "predictor"), ("predictor_seed", "predictor_path"))
    same = runner.build_configs({"predictor.hidden_size": 4, "agent.num_iterations": 7, "run.seed": 3})
    other = runner.build_configs({"predictor.hidden_size": 5})
    assert fingerprint(same) == fingerprint(configs) != fingerprint(other)
    path, built, logs = tmp_path / "thing.json", [], []

    def get(configs, source=""):
        value = {"hidden": configs["predictor"].hidden_size}
        load = lambda p: json.loads(p.read_text())
        build = lambda: built.append(value) or value
        return base.cached_artifact(
            path, fingerprint(configs), source, load, io.atomic_write_json, build, logs.append, "x"
        )

    path.write_text('{"hidden": 99}')  # a stale file without a fingerprint: rebuilt
    assert get(configs) == {"hidden": 4} and len(built) == 1 and "rebuilding" in logs[-1]
    assert get(same) == {"hidden": 4} and len(built) == 1  # same fingerprint: reused
    assert get(other) == {"hidden": 5} and len(built) == 2 and "another configuration" in logs[-1]
    path.write_text('{"hidden": 4}')  # edited after it was recorded: rebuilt
    assert get(other) == {"hidden": 5} and len(built) == 3
    user = tmp_path / "user.json"
    user.write_text('{"hidden": 42}')
    assert get(configs, str(user)) == {"hidden": 42} and len(built) == 3  # a user's file is used as given
    assert json.loads(path.read_text()) == {"hidden": 42}


def test_iterations_without_a_finished_episode_log_null(tmp_path):
    shape = (4, 2)
    log = {
        "reward": jnp.ones(shape),
        "returned_episode": jnp.zeros(shape, bool),
        "returned_episode_returns": jnp.full(shape, 3.0),
        "returned_episode_total_latency_s": jnp.full(shape, 2.0),
    }
    none = ppo.episode_metrics(log, ("total_latency_s",))
    assert float(none["episodes"]) == 0 and np.isnan(none["episode_return"])
    assert np.isnan(none["episode_total_latency_s"])
    some = ppo.episode_metrics({**log, "returned_episode": jnp.eye(4, 2, dtype=bool)}, ("total_latency_s",))
    assert float(some["episode_return"]) == 3.0 and float(some["episode_total_latency_s"]) == 2.0
    records = [
        {"iteration": 1, "env_steps": 16, "episode_return": float("nan"), "episode_total_latency_s": float("nan")},
        {"iteration": 2, "env_steps": 32, "episode_return": -1.0, "episode_total_latency_s": 0.5},
    ]
    runner.MetricsSinks(tmp_path, "jsonl").write(records)
    assert '"episode_return": null' in (tmp_path / "metrics.jsonl").read_text()
    read = runner.read_metrics(tmp_path / "metrics.jsonl")
    assert read[0]["episode_return"] is None and read[1]["episode_return"] == -1.0
    report.plot_learning_curve(read, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").is_file()
    assert runner._shown(None, 1) == runner._shown(float("nan"), 1) == "–" and runner._shown(2.0, 1) == "2.0"


def test_each_scenario_names_a_headline_metric_it_logs():
    for scenario in scenarios.all_scenarios().values():
        assert scenario.headline_metric in {f"episode_{m}" for m in scenario.log_metrics}, scenario.env_id
    assert scenarios.get("CrossRealityPrivacy-v0").headline_metric == "episode_latency_s"


def test_a_new_total_is_refused_on_resume_where_schedules_anneal(tmp_path):
    configs = runner.build_configs({"run.run_dir": str(tmp_path), "agent.anneal_lr": True})
    io.atomic_write_json(tmp_path / "config.json", runner.configs_to_json(configs))
    longer = runner.build_configs({"run.run_dir": str(tmp_path), "agent.anneal_lr": True, "agent.num_iterations": 9})
    with pytest.raises(SystemExit, match="agent.anneal_lr"):
        runner.train(longer, resume=True)
    lhdppo = runner.build_configs({"run.env": "CrossRealityPrivacy-v0"})
    assert annealed_fields(lhdppo["agent"]) == ["aux_coef_init/aux_coef_final", "ent_coef_init/ent_coef_final"]
    assert annealed_fields(runner.build_configs({})["agent"]) == []
    assert annealed_fields(runner.build_configs({"run.algo": "mappo_ddpg"})["agent"]) == [
        "noise_sigma_start/noise_sigma_end"
    ]


def test_command_line_errors_abbreviations_and_the_output_folder(reference, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train", "--agent.actor", "0.5"])  # an abbreviation of --agent.actor_lr is not accepted
    assert stopped.value.code == 2 and "unrecognized arguments: --agent.actor" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    # the output folder is checked before the evaluation starts
    refusal(capsys, ["evaluate", str(reference), "--out", str(blocker / "out")], "is not writable")
    refusal(capsys, ["evaluate", str(tmp_path / "none")], "is not a run folder")
    assert not (tmp_path / "none").exists()  # not created as an output folder
    with pytest.raises(SystemExit, match="is not writable"):  # --debug: the error itself, not one line
        cli.main(["--debug", "evaluate", str(reference), "--out", str(blocker / "out")])


def test_written_files_get_the_umask_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        io.atomic_write_text(tmp_path / "a.txt", "x")
        checkpoint.save_checkpoint(tmp_path / "c.msgpack", {"w": np.zeros(2)}, iteration=1)
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
        assert (tmp_path / "c.msgpack").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)
    state, progress = checkpoint.load_checkpoint_with_progress(tmp_path / "c.msgpack", {"w": np.ones(2)})
    assert progress == {"iteration": 1} and np.array_equal(state["w"], np.zeros(2))
    assert serialization.msgpack_restore(checkpoint.read_checkpoint(tmp_path / "c.msgpack")[1])["w"].shape == (2,)


def test_a_later_config_field_at_its_default_keeps_earlier_fingerprints():
    """`trace_bank` came after run folders with predictors existed: at its default ("") it is left out of the
    fingerprint, so those folders' artifacts still match; set, it changes the fingerprint."""
    import dataclasses
    import hashlib
    import json

    from vmjax import runner
    from vmjax.scenarios.base import config_fingerprint

    configs = runner.build_configs({"run.env": "TwinRouting-v1"})
    before = {"env": {k: v for k, v in dataclasses.asdict(configs["env"]).items() if k != "trace_bank"}, "run": {}}
    earlier = hashlib.sha256(json.dumps(before, sort_keys=True, default=list).encode()).hexdigest()
    assert config_fingerprint(configs, ("env",)) == earlier
    with_bank = {**configs, "env": dataclasses.replace(configs["env"], trace_bank="bank.npz")}
    assert config_fingerprint(with_bank, ("env",)) != earlier


def test_a_checkpoint_from_before_an_optional_field_was_added_still_restores():
    """A state field added later with a None value (as `Trace.speeds_mps`) is filled in on restore; a missing
    field that holds an array is still an error naming the checkpoint."""
    import jax.numpy as jnp
    import pytest
    from flax import serialization, struct

    from vmjax.agents import checkpoint

    @struct.dataclass
    class Before:
        positions: jnp.ndarray

    @struct.dataclass
    class After:
        positions: jnp.ndarray
        speeds: jnp.ndarray | None = None

    old = serialization.to_bytes(Before(jnp.arange(3.0)))
    restored = checkpoint.restore_state(old, After(jnp.zeros(3)), "old.msgpack")
    assert restored.speeds is None and restored.positions.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(checkpoint.CheckpointError, match="old.msgpack is corrupt or from a different configuration"):
        checkpoint.restore_state(old, After(jnp.zeros(3), jnp.zeros(3)), "old.msgpack")
