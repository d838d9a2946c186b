"""`python -m bench` (bench/harness.py) in --quick mode, in-process: every part runs, the JSON result has the
documented structure, its ratios are the quotients of its measured numbers, and the JSON and the plot are
written where --out says. Tiny sizes; the PyTorch part runs only where PyTorch is installed."""

import importlib.util
import json
import math

import pytest

from bench import harness

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "result.json"
    # the N / M sweep reuses the env table's compiled N=20, M=10 row (one compile fewer), at 4 worlds
    argv = ["--quick", "--worlds", "1", "4", "--repeats", "1", "--scale-vehicles", "20", "--scale-rsus", "10",
            "--out", str(out)]
    assert harness.main(argv) == 0
    return out, json.loads(out.read_text())


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-9)


def test_files_are_written(quick_run):
    out, result = quick_run
    assert out.exists() and out.with_suffix(".png").exists()
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["plot"] == out.with_suffix(".png").name
    assert not list(out.parent.glob(".*.tmp"))  # atomic writes leave no temporary behind


def test_machine_and_options_are_recorded(quick_run):
    _, result = quick_run
    machine = result["machine"]
    for key in ("backend", "device", "cpu", "cpu_cores", "jax"):
        assert machine[key], key
    assert result["quick"] is True and result["options"]["worlds"] == [1, 4]
    assert result["schema_version"] == harness.SCHEMA_VERSION and result["wall_s"] > 0


def test_env_rows_and_ratios_come_from_the_measurements(quick_run):
    _, result = quick_run
    env = result["env"]
    assert (env["num_vehicles"], env["num_rsus"], env["workload_forecast"]) == (20, 10, "persistence")
    assert [row["worlds"] for row in env["rows"]] == [1, 4]
    for row in env["rows"]:
        vm, batched, per_world = row["vmjax"], row["numpy_batched"], row["numpy_per_world"]
        for impl in (vm, batched, per_world):
            assert impl["env_steps_per_s"] > 0
            assert _close(impl["agent_steps_per_s"], 20 * impl["env_steps_per_s"])
        assert vm["compile_s"] > 0 and vm["reset_compile_s"] > 0 and len(vm["runs_s"]) == 1
        assert _close(vm["env_steps_per_s"], row["worlds"] * vm["steps"] / vm["run_s"])
        ratios = row["ratios"]
        assert _close(ratios["vmjax_over_numpy_batched"], vm["env_steps_per_s"] / batched["env_steps_per_s"])
        assert _close(ratios["vmjax_over_numpy_per_world"], vm["env_steps_per_s"] / per_world["env_steps_per_s"])
        for impl in (vm, batched, per_world):
            assert impl["peak_bytes_per_world"] is None or impl["peak_bytes_per_world"] > 0
        assert batched["peak_bytes_per_world"] > 0 and per_world["peak_bytes_per_world"] > 0
    one, four = env["rows"]
    # --quick: whole episodes at 1 world, reset and steps apart above; per-world measured at 1, extrapolated at 4
    assert one["numpy_batched"]["method"] == "episodes" and one["numpy_batched"]["timed_steps"] == 100
    split = four["numpy_batched"]
    assert split["method"] == "split"
    assert _close(split["step_s"], (100 * split["plain_step_s"] + split["reset_s"]) / 100)
    assert _close(split["env_steps_per_s"], 4 / split["step_s"])
    assert one["numpy_per_world"]["measured"] is True and four["numpy_per_world"]["measured"] is False
    assert "extrapolated" in four["numpy_per_world"]["basis"]
    assert env["vmjax_only_rows"] == [] or result["machine"]["backend"] != "cpu"


def test_training_rows(quick_run):
    _, result = quick_run
    train = result["train"]
    assert train["env_config"]["workload_forecast"] == "persistence"
    (row,) = train["rows"]
    vm, torch_row = row["vmjax"], row["torch"]
    assert row["worlds"] == 2 and vm["env_steps_per_iteration"] == 2 * 20
    assert _close(vm["env_steps_per_s"], vm["env_steps_per_iteration"] / vm["iteration_s"])
    if HAS_TORCH:
        assert torch_row["torch_threads"] == 1 and torch_row["warmup_iterations"] == 1
        assert _close(torch_row["env_steps_per_s"], 40 / torch_row["iteration_s"])
        assert _close(row["ratio_vmjax_over_torch"], vm["env_steps_per_s"] / torch_row["env_steps_per_s"])
    else:
        assert "skipped" in torch_row and row["ratio_vmjax_over_torch"] is None


def test_scaling_and_targets(quick_run):
    _, result = quick_run
    scaling = result["scaling"]
    assert scaling["worlds"] == 4
    (vehicles,), (rsus,) = scaling["vehicles"], scaling["rsus"]
    assert (vehicles["num_vehicles"], vehicles["num_rsus"]) == (20, 10) and vehicles["from_env_table"]
    assert (rsus["num_vehicles"], rsus["num_rsus"]) == (20, 10)
    assert _close(vehicles["world_step_s"], vehicles["step_s"] / 4)
    names = [t["name"] for t in result["targets"]]
    assert names[:2] == ["env_vs_numpy_per_world", "env_vs_numpy_batched"] and "gpu_env_steps_per_s" in names
    assert result["targets"][0]["met"] is None  # 4096 worlds were not measured
    train_target = next(t for t in result["targets"] if t["name"] == "train_vs_torch")
    assert train_target["measured"] == result["train"]["rows"][0]["ratio_vmjax_over_torch"]


def test_tables_render(quick_run):
    _, result = quick_run
    text = harness.render_tables(result)
    assert "| worlds | vmjax env steps/s |" in text and "### Targets" in text and "vmjax / per-world" in text


def test_skip_options_and_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        harness.parse_args(["--worlds", "0"])
    opts = harness.parse_args(["--quick", "--worlds", "3", "--skip-torch"])
    assert opts.worlds == [3] and opts.skip_torch and opts.repeats == harness.QUICK["repeats"]
    full = harness.parse_args([])
    assert full.worlds == [1, 64, 1024, 4096, 16384] and full.torch_threads == 1


def test_train_breakdown_separates_rollout_from_epochs(monkeypatch):
    """t(1 epoch) = 1.0 s and t(10 epochs) = 2.8 s: one epoch 0.2 s, rollout + GAE 0.8 s, update 2.0 s."""
    from types import SimpleNamespace

    monkeypatch.setattr(harness, "measure_vmjax_train", lambda env, agent, chunk, repeats: {"iteration_s": 1.0})
    agent = SimpleNamespace(update_epochs=10)
    monkeypatch.setattr(harness.dataclasses, "replace", lambda config, **changes: SimpleNamespace(**changes))
    b = harness.vmjax_train_breakdown(None, agent, {"iteration_s": 2.8}, 1, 1)
    assert _close(b["epoch_s"], 0.2) and _close(b["rollout_gae_s"], 0.8) and _close(b["update_s"], 2.0)
    assert _close(b["update_share"], 2.0 / 2.8)
