"""`python -m bench` (bench/harness.py) in --quick mode, in-process: every part runs, the JSON result has the
documented structure, its ratios are the quotients of its measured numbers, and the JSON and the plot are
written where --out says. Tiny sizes; the PyTorch part runs only where PyTorch is installed.
`python -m bench.twin_routing_throughput --quick` (TwinRouting-v0) likewise at 1 world with the predictor
forecast (the costlier path; two forecasts would double its ~20 s of XLA compiles); the harness's run reuses
that section instead of measuring it again, and the per-forecast bookkeeping is checked on stand-in rows.
`python -m bench.device_scaling --quick` (sharded worlds on 1 and 2 forced host devices, one subprocess each)
likewise, with its ratios and its options."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common, harness
from bench import data_parallel as dp
from bench import device_scaling as scaling
from bench import twin_routing_throughput as twin

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def twin_quick(tmp_path_factory):
    """The TwinRouting-v0 part on its own, --quick at 1 world, the in-rollout predictor: 130 steps (one
    auto-reset)."""
    out = tmp_path_factory.mktemp("twin") / "twin.json"
    argv = ["--quick", "--worlds", "1", "--repeats", "1", "--forecasts", "predictor", "--ratio-worlds", "1"]
    argv += ["--out", str(out)]
    assert twin.main(argv) == 0
    return out, json.loads(out.read_text())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, twin_quick):
    out = tmp_path_factory.mktemp("bench") / "result.json"
    # the N / M sweep reuses the env table's compiled N=20, M=10 row (one compile fewer), at 4 worlds
    argv = [
        "--quick",
        "--worlds",
        "1",
        "4",
        "--repeats",
        "1",
        "--scale-vehicles",
        "20",
        "--scale-rsus",
        "10",
        "--twin-worlds",
        "1",
        "--out",
        str(out),
    ]
    calls = []

    def measured_section(*args, **kwargs):  # the TwinRouting-v0 part, measured once by twin_quick
        calls.append(args)
        return {k: v for k, v in twin_quick[1].items() if k not in ("machine", "options", "created", "wall_s")}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(twin, "bench_twin_routing", measured_section)
        assert harness.main(argv) == 0
    assert len(calls) == 1 and calls[0][:2] == ([1], twin.FORECASTS) and calls[0][4] == 1  # worlds, repeats
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
    assert "### TwinRouting-v0 env throughput" in text and "| predictor | 1 |" in text


def test_skip_options_and_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        harness.parse_args(["--worlds", "0"])
    opts = harness.parse_args(["--quick", "--worlds", "3", "--skip-torch"])
    assert opts.worlds == [3] and opts.skip_torch and opts.repeats == harness.QUICK["repeats"]
    full = harness.parse_args([])
    assert full.worlds == [1, 64, 1024, 4096, 16384] and full.torch_threads == 1
    assert not full.skip_twin_routing and full.twin_worlds == [1, 64, 1024, 4096]
    assert harness.parse_args(["--skip-twin-routing"]).skip_twin_routing
    assert twin.parse_args([]).worlds == [1, 64, 1024, 4096] and twin.parse_args([]).steps == 240
    assert full.twin_ratio_worlds == [1024] and twin.parse_args([]).ratio_worlds == [1024]
    assert twin.parse_args(["--ratio-worlds"]).ratio_worlds == []  # none: the ratio is skipped
    for bad in (["--worlds", "0"], ["--max-rollout-s", "-1"], ["--forecasts", "oracle"], ["--ratio-worlds", "0"]):
        with pytest.raises(SystemExit):
            twin.parse_args(bad)


def test_train_breakdown_separates_rollout_from_epochs(monkeypatch):
    """t(1 epoch) = 1.0 s and t(10 epochs) = 2.8 s: one epoch 0.2 s, rollout + GAE 0.8 s, update 2.0 s."""
    from types import SimpleNamespace

    monkeypatch.setattr(harness, "measure_vmjax_train", lambda env, agent, chunk, repeats: {"iteration_s": 1.0})
    agent = SimpleNamespace(update_epochs=10)
    monkeypatch.setattr(harness.dataclasses, "replace", lambda config, **changes: SimpleNamespace(**changes))
    b = harness.vmjax_train_breakdown(None, agent, {"iteration_s": 2.8}, 1, 1)
    assert _close(b["epoch_s"], 0.2) and _close(b["rollout_gae_s"], 0.8) and _close(b["update_s"], 2.0)
    assert _close(b["update_share"], 2.0 / 2.8)


def _positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_twin_routing_quick_run(twin_quick):
    """The predictor forecast at 1 world: the JSON's structure, positive finite numbers, the steps it counts."""
    out, result = twin_quick
    assert out.exists() and not list(out.parent.glob(".*.tmp"))
    assert result["benchmark"] == "twin_routing_throughput" and result["env_id"] == "TwinRouting-v0"
    assert result["quick"] is True and result["schema_version"] == twin.SCHEMA_VERSION
    assert result["machine"]["backend"] and _positive(result["wall_s"])
    # the default config; the predictor is the untrained default one
    assert (result["num_vehicles"], result["num_rsus"], result["num_uavs"], result["num_servers"]) == (5, 76, 10, 87)
    assert result["env_config"]["use_satellite"] and result["max_steps"] == 120
    predictor = result["predictor"]
    assert predictor["trained"] is False and predictor["num_params"] > 0 and predictor["config"]["window"] == 6
    steps, split_steps = twin.QUICK["steps"], twin.QUICK["split_steps"]
    assert result["forecasts"] == ["predictor"] and result["predictor_cost"] == []
    (row,) = result["rows"]
    assert (row["forecast"], row["worlds"], row["num_vehicles"]) == ("predictor", 1, 5)
    rollout, split = row["rollout"], row["split"]
    assert row["method"] == "rollout" and row["repeats"] == 1 and len(rollout["runs_s"]) == 1
    for key in ("env_steps_per_s", "agent_steps_per_s", "compile_s", "reset_compile_s", "initial_reset_s"):
        assert _positive(row[key]), key
    # steps counted right: env steps = worlds x steps, every step run, the episode of 120 slots ended once
    assert rollout["env_steps"] == 1 * steps and rollout["steps_run"] == steps
    assert rollout["agent_steps"] == 5 * rollout["env_steps"] and rollout["episode_ends"] == 1
    assert _close(rollout["env_steps_per_s"], rollout["env_steps"] / rollout["run_s"])
    assert _close(row["env_steps_per_s"], rollout["env_steps_per_s"])
    assert _close(row["agent_steps_per_s"], 5 * row["env_steps_per_s"])
    assert _close(row["world_step_s"], 1 / row["env_steps_per_s"])
    assert math.isfinite(rollout["reward_sum"]) and _positive(rollout["obs_sum"])
    # the split estimate: steps without an episode end, and the reset, timed apart
    assert split["steps_run"] == split_steps and split["episode_ends"] == 0
    assert _close(split["step_s"], (120 * split["plain_step_s"] + split["reset_s"]) / 120)
    call = split["call_s"] if split["call_subtracted"] else 0.0
    assert _positive(split["call_s"]) and _close(split["plain_step_s"], (split["runs_s"][0] - call) / split_steps)
    assert _positive(split["env_steps_per_s"]) and _close(split["env_steps_per_s"], 1 / split["step_s"])
    assert row["peak_bytes_per_world"] is None or _positive(row["peak_bytes_per_world"])
    assert "| predictor | 1 |" in twin.render_table(result)
    # the world-step ratio to AvatarPremigration-v0 (part 1's env), both timed in this run
    assert result["reference"] == {"env_id": "AvatarPremigration-v0", "config": twin.REFERENCE_CONFIG}
    (ratio,) = result["world_step_ratio"]
    assert ratio["worlds"] == 1 and ratio["repeats"] == 1
    for name, steps in (("twin_routing", twin.QUICK["ratio_steps"]), ("reference", twin.QUICK["reference_steps"])):
        for part in (ratio[name], ratio[name + "_observed"]):
            assert part["steps"] == steps and len(part["runs_s"]) == 1 and _positive(part["compile_s"])
            assert _close(part["world_step_s"], part["run_s"] / steps)
    assert _close(
        ratio["ratio_observed"],
        ratio["twin_routing_observed"]["world_step_s"] / ratio["reference_observed"]["world_step_s"],
    )
    assert _close(ratio["ratio"], ratio["twin_routing"]["world_step_s"] / ratio["reference"]["world_step_s"])
    assert ratio["policy_rollout_ratio"] is None  # no persistence row in this run
    target = result["ratio_target"]
    assert target["required_max"] == 5.0 and target["worlds"] == 1024 and target["met"] is None
    assert "AvatarPremigration-v0 µs per world-step" in twin.render_table(result)


def test_twin_routing_rows_per_forecast(monkeypatch):
    """bench_twin_routing measures every forecast at every world count, in order, and divides persistence by
    predictor env steps/s at each (stand-in measurements: nothing compiles)."""
    import vmjax

    env = vmjax.make("TwinRouting-v0")
    monkeypatch.setattr(twin, "make_env_and_params", lambda forecast, **config: (env, None, None))
    seen = []

    def measure(env, params, forecast, worlds, steps, split_steps, repeats, max_rollout_s, long_s, long_repeats):
        seen.append((forecast, worlds, repeats, long_s, long_repeats))
        rate = 1000.0 * worlds if forecast == "persistence" else 40.0 * worlds
        return {
            "forecast": forecast,
            "worlds": worlds,
            "env_steps_per_s": rate,
            "agent_steps_per_s": 5 * rate,
            "world_step_s": 1 / rate,
            "compile_s": 1.0,
            "peak_bytes_per_world": None,
            "method": "rollout" if worlds < 64 else "split",
            "split": {"env_steps_per_s": rate},
        }

    monkeypatch.setattr(twin, "measure", measure)
    section = twin.bench_twin_routing([1, 64, 1024], repeats=5, long_run_s=10.0, long_repeats=2)
    assert seen == [(f, n, 5, 10.0, 2) for f in twin.FORECASTS for n in (1, 64, 1024)]
    assert [c["worlds"] for c in section["predictor_cost"]] == [1, 64, 1024]
    assert all(_close(c["slowdown"], 25.0) for c in section["predictor_cost"])
    assert "workload_forecast" not in section["env_config"] and section["num_servers"] == 87
    text = twin.render_table(section)
    assert "| persistence | 1 | 1,000 |" in text and "| predictor | 64 | 2,560 † |" in text and "25.0x" in text


def test_twin_routing_long_runs_get_fewer_repeats():
    import jax.numpy as jnp

    calls = []

    def run(x):
        calls.append(x)
        return jnp.asarray(x)

    runs, out = common.timed_runs(run, (3,), 5, long_run_s=0.0, long_repeats=2)  # every warm-up is "long"
    assert len(runs) == 2 and len(calls) == 3 and int(out) == 3
    runs, _ = common.timed_runs(run, (3,), 5, long_run_s=60.0, long_repeats=2)
    assert len(runs) == 5 and len(calls) == 9


def test_harness_includes_the_twin_routing_section(quick_run, twin_quick):
    _, result = quick_run
    assert result["options"]["skip_twin_routing"] is False and result["options"]["twin_worlds"] == [1]
    assert result["options"]["twin_ratio_worlds"] == harness.QUICK["twin_ratio_worlds"]
    assert result["twin_routing"]["rows"] == twin_quick[1]["rows"]
    (target,) = [t for t in result["targets"] if t["name"] == "twin_routing_world_step_vs_avatar"]
    assert target["required"] == 5.0 and target["met"] is None and target["measured"] is None  # 1024 not run


# ---------------------------------------------------------------- device scaling of sharded worlds
@pytest.fixture(scope="module")
def scaling_quick(tmp_path_factory):
    """`python -m bench.device_scaling --quick`: 8 worlds on 1 and on 2 forced host devices, 5 steps."""
    out = tmp_path_factory.mktemp("scaling") / "scaling.json"
    assert scaling.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads(out.read_text())


def test_device_scaling_quick_run(scaling_quick):
    """The JSON's structure, rows measured in processes that saw their device counts, ratios from its numbers."""
    out, result = scaling_quick
    assert out.exists() and not list(out.parent.glob(".*.tmp"))
    assert result["benchmark"] == "device_scaling" and result["env_id"] == "AvatarPremigration-v0"
    assert result["quick"] is True and result["schema_version"] == scaling.SCHEMA_VERSION
    assert result["machine"]["cpu_cores"] and _positive(result["wall_s"])
    assert (result["worlds"], result["steps"], result["rounds"]) == (8, 5, 1)
    one, two = result["rows"]
    for row, devices in ((one, 1), (two, 2)):
        assert (row["devices"], row["visible_devices"], row["worlds_per_device"]) == (devices, devices, 8 // devices)
        assert row["sharded"] and len(row["rounds"]) == 1 and len(row["rounds"][0]["runs_s"]) == 1
        for key in ("env_steps_per_s", "compile_s", "reset_compile_s", "run_s"):
            assert _positive(row[key]), key
        assert _close(row["env_steps_per_s"], 8 * 5 / row["rounds"][0]["run_s"])
        assert _close(row["agent_steps_per_s"], 20 * row["env_steps_per_s"])
        assert _close(row["vs_1_device"], row["env_steps_per_s"] / one["env_steps_per_s"])
        assert _close(row["per_device"], row["vs_1_device"] / devices)
        assert row["reward_total_rel_diff"] < 1e-5  # the same worlds: one sum over them, split or not
    assert not one["unsharded"]["sharded"] and _positive(one["unsharded"]["env_steps_per_s"])
    assert one["unsharded"]["reward_total"] == one["reward_total"]  # no mesh vs a 1-device mesh: bit-equal
    assert _close(one["mesh_over_unsharded"], one["env_steps_per_s"] / one["unsharded"]["env_steps_per_s"])
    text = scaling.render_table(result)
    assert "| devices | worlds per device |" in text and "| 2 | 4 |" in text and "Without a mesh" in text


def test_device_scaling_options():
    opts = scaling.parse_args(["--devices", "2,4", "--worlds", "8"])
    assert opts.devices == [1, 2, 4] and opts.worlds == 8 and opts.rounds == scaling.FULL["rounds"]
    assert scaling.parse_args(["--devices", "1", "2", "8"]).devices == [1, 2, 8]
    assert scaling.parse_args([]).devices == [1, 2, 4, 8] and scaling.parse_args([]).worlds == 1024
    for bad in (["--devices", "3", "--worlds", "8"], ["--devices", "0"], ["--devices", "x"], ["--rounds", "0"]):
        with pytest.raises(SystemExit):
            scaling.parse_args(bad)


def test_data_parallel_options_and_table():
    """`python -m bench.data_parallel` (its runs: tests/test_data_parallel.py's checks, timed; not run here)."""
    opts = dp.parse_args(["--learners", "masac,msrl", "--devices", "2"])
    assert opts.learners == ["masac", "msrl"] and opts.devices == 2 and opts.iterations == 3
    assert dp.parse_args([]).learners == list(dp.LEARNERS)
    for bad in (["--learners", "ppo"], ["--devices", "1"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            dp.parse_args(bad)
    row = {"learner": "masac", "params": {"max_abs": 5e-8, "max_rel": 2e-6}, "compile_s": {"1": 3.0, "2": 4.0}}
    row["run_s"] = {"1": 0.01, "2": 0.02}
    text = dp.render_table({"options": {"devices": 2}, "rows": [row]})
    assert "| masac | 5.0e-08 | 2.0e-06 | 3.0 / 4.0 | 0.0100 | 0.0200 |" in text


def test_python_m_bench_devices_runs_the_device_scaling():
    """`python -m bench --devices ...` is the device-scaling script (an indivisible world count stops it early)."""
    root = Path(__file__).resolve().parents[1]
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--devices", "1,3", "--worlds", "4"],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "must be divisible by every device count; not by [3]" in done.stderr
    assert "python -m bench.device_scaling" in done.stderr
