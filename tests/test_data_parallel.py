"""Data-parallel training (`Trainer.on_mesh`, `--run.num_devices`): the worlds split over a device mesh, the
learner replicated, gradients summed across devices.

The multi-device checks run tests/data_parallel_worker.py in a subprocess with 4 forced host devices (as
tests/test_sharding.py does); the rest runs here on this process's one CPU device."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

from vmjax import runner
from vmjax.agents.replay import replay_init
from vmjax.agents.trainer import OffPolicyTrainerState, shard_state, state_shardings
from vmjax.core.sharding import host_devices_environ, sharded_batches, split_batch, world_mesh

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = {"max_abs": 1e-5, "max_rel": 1e-5}  # float32 rounding of sums split over devices, see docs/api.md


# ---------------------------------------------------------------- on this process's device
def off_policy_state(num_envs: int = 4, capacity: int = 8) -> OffPolicyTrainerState:
    params = {"w": jnp.ones((3, 2))}
    return OffPolicyTrainerState(
        params=params,
        target_params=params,
        opt_state={"w": (jnp.zeros((3, 2)), jnp.int32(0))},
        buffer=replay_init({"obs": jnp.zeros((2,))}, capacity),
        env_state={"t": jnp.zeros((num_envs,), jnp.int32)},
        obs=jnp.zeros((num_envs, 3, 2)),
        key=jax.random.PRNGKey(0),
        iteration=jnp.int32(0),
    )


def test_state_shardings_split_the_worlds_and_replicate_the_learner():
    mesh = world_mesh(1)
    shardings = state_shardings(off_policy_state(), mesh)
    worlds, replicated = PartitionSpec("worlds"), PartitionSpec()
    for name in ("env_state", "obs"):
        assert all(s.spec == worlds for s in jax.tree.leaves(getattr(shardings, name))), name
    for name in ("params", "target_params", "opt_state", "key", "iteration"):
        assert all(s.spec == replicated for s in jax.tree.leaves(getattr(shardings, name))), name
    assert shardings.buffer.data["obs"].spec == worlds  # the items split over the devices
    assert shardings.buffer.size.spec == replicated and shardings.buffer.position.spec == replicated
    assert all(isinstance(s, NamedSharding) for s in jax.tree.leaves(shardings))


def test_a_learners_own_per_world_field_is_split_and_a_bad_one_is_named():
    @struct.dataclass
    class WithSwitch:  # a learner's own state (as MSRL's, with its per-world switch)
        params: dict
        switch: jax.Array
        key: jax.Array

    mesh = world_mesh(1)
    state = WithSwitch({"w": jnp.ones(2)}, jnp.zeros((4, 3)), jax.random.PRNGKey(0))
    assert state_shardings(state, mesh).switch.spec == PartitionSpec("worlds")
    with pytest.raises(ValueError, match=r"field switch of shape \(\) has no leading world axis"):
        state_shardings(WithSwitch({}, jnp.float32(0.0), jax.random.PRNGKey(0)), mesh)


def test_shard_state_keeps_values_and_no_mesh_changes_nothing():
    state = off_policy_state()
    assert shard_state(state, None) is state
    placed = shard_state(state, world_mesh(1))
    for got, want in zip(jax.tree.leaves(placed), jax.tree.leaves(state)):
        np.testing.assert_array_equal(got, want)
    inside = jax.jit(lambda s: shard_state(s, world_mesh(1)))(state)  # a sharding constraint under jit
    np.testing.assert_array_equal(inside.obs, state.obs)


def test_split_batch_acts_only_inside_sharded_batches_under_jit():
    x = jnp.arange(8.0).reshape(4, 2)
    assert split_batch(x) is x  # no block: unchanged
    with sharded_batches(world_mesh(1)):
        assert split_batch(x) is x  # outside jit: unchanged
        np.testing.assert_array_equal(jax.jit(lambda y: split_batch(y, axis=1))(x), x)
    with sharded_batches(None):
        assert split_batch(x) is x


def test_training_mesh_checks_the_device_count(tmp_path):
    configs = runner.build_configs({"run.run_dir": str(tmp_path), "agent.num_envs": 4})
    assert runner.training_mesh(configs) is None  # one device here: no mesh, the single-device program
    too_many = runner.build_configs({"run.run_dir": str(tmp_path), "run.num_devices": jax.device_count() + 1})
    with pytest.raises(SystemExit, match="--run.num_devices 2: only 1 local device"):
        runner.training_mesh(too_many)
    with pytest.raises(ValueError, match="num_devices must be"):
        runner.RunConfig(num_devices=-1)


def test_seed_group_pieces(tmp_path):
    """A seed group's members, its device count, its env params (shared when equal, else stacked) and the run
    folders `evaluate` expands it to."""
    configs = runner.build_configs({"run.run_dir": str(tmp_path / "g"), "run.seeds": 3, "run.seed": 5})
    members = runner.seed_member_configs(configs)
    assert [m["run"].seed for m in members] == [5, 6, 7] and all(m["run"].seeds == 1 for m in members)
    assert [Path(m["run"].run_dir).name for m in members] == ["seed-5", "seed-6", "seed-7"]
    assert runner.seed_group_mesh(configs) is None  # one device here
    devices = [jax.devices()[0]] * 4  # stand-ins: only their count matters to the choice
    assert runner.seed_group_mesh(configs, devices=devices[:1]) is None
    with pytest.raises(SystemExit, match="--run.seeds 3 is not divisible by --run.num_devices 2"):
        runner.seed_group_mesh(runner.build_configs({"run.seeds": 3, "run.num_devices": 2}), devices=devices)
    with pytest.raises(ValueError, match="seeds must be"):
        runner.RunConfig(seeds=0)

    same, axis = runner.stack_params([{"a": np.ones(2)}, {"a": np.ones(2)}])
    assert axis is None and same["a"].shape == (2,)
    stacked, axis = runner.stack_params([{"a": np.ones(2)}, {"a": np.zeros(2)}])
    assert axis == 0 and stacked["a"].shape == (2, 2)
    np.testing.assert_array_equal(runner.seed_slice(stacked, 1)["a"], np.zeros(2))

    group = tmp_path / "g"
    group.mkdir()
    (group / "config.json").write_text(json.dumps({"run": {"seeds": 2, "seed": 3}}))
    assert runner.seed_group_runs(group) == [group / "seed-3", group / "seed-4"]
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "config.json").write_text(json.dumps({"run": {"seed": 3}}))
    assert runner.seed_group_runs(tmp_path / "single") == [tmp_path / "single"]


def test_distributed_settings_from_flags_and_environment():
    from vmjax.core import distributed

    assert distributed.distributed_settings(environ={}) is None  # one process
    assert distributed.is_main_process() and distributed.to_host({"x": jnp.ones(2)})["x"].tolist() == [1.0, 1.0]
    flags = distributed.distributed_settings("127.0.0.1:1234", 2, 1, environ={})
    assert flags == {"coordinator_address": "127.0.0.1:1234", "num_processes": 2, "process_id": 1}
    environ = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:99", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert distributed.distributed_settings(environ=environ)["process_id"] == 3
    assert distributed.distributed_settings(process_id=0, environ=environ)["process_id"] == 0  # a flag wins
    for bad, match in [
        (("10.0.0.1", 2, 0), "--coordinator must be HOST:PORT"),
        (("10.0.0.1:1", 2, 2), r"--process-id \(JAX_PROCESS_ID\) must be in 0..1"),
        (("10.0.0.1:1", 0, 0), "needs --num-processes"),
        (("", 2, 0), "need --coordinator"),
    ]:
        with pytest.raises(ValueError, match=match):
            distributed.distributed_settings(*bad, environ={})


# ---------------------------------------------------------------- on 4 forced host devices (a subprocess)
@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """What tests/data_parallel_worker.py reports, run with 4 host devices (the suite's XLA flags otherwise)."""
    environ = host_devices_environ(4, os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    folder = tmp_path_factory.mktemp("data_parallel")
    worker = ROOT / "tests" / "data_parallel_worker.py"
    done = subprocess.run(
        [sys.executable, str(worker), str(folder)], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def within_tolerance(diff: dict) -> bool:
    return diff["max_abs"] <= TOLERANCE["max_abs"] and diff["max_rel"] <= TOLERANCE["max_rel"]


def test_mappo_ddpg_on_four_devices_equals_one_device(four_devices):
    """MAPPO-DDPG on AvatarPremigration-v0 (PPO minibatches and a replay buffer split over the devices), 3
    iterations from the same initial state: parameters, target parameters, buffer and metrics."""
    result = four_devices["mappo_ddpg"]
    assert four_devices["num_devices"] == 4
    assert result["ddpg_updates"][0] == result["ddpg_updates"][1] > 0
    for name in ("params", "target_params", "buffer"):
        assert within_tolerance(result[name]), (name, result[name])
    assert result["metrics"]["max_abs"] <= 1e-5, result["metrics"]  # some (an approximate KL) are ~0: no relative
    assert result["obs_sharded"] and result["buffer_sharded"] and result["params_replicated"]
    assert "num_envs=4 is not divisible by 3" in result["indivisible"]
    assert result["odd_capacity_replicated"]  # 30 items do not split over 4 devices: every device holds them all


def test_vmjax_train_on_four_devices_writes_the_usual_run_folder(four_devices):
    result = four_devices["hybrid_mappo_cli"]
    assert {"config.json", "metrics.jsonl", "learning_curve.png", "checkpoint.msgpack", "checkpoint.json"} <= set(
        result["files"]
    )
    assert result["four"]["iterations"] == [1, 2] and result["four"]["checkpoint"] == 2
    assert result["four"]["num_devices_saved"] == 4
    assert "--run.num_devices 8: only 4 local device(s)" in result["errors"]["too_many"]
    assert "--agent.num_envs 4 is not divisible by --run.num_devices 3" in result["errors"]["indivisible"]


@pytest.mark.parametrize("devices", [1, 2])
def test_a_four_device_checkpoint_resumes_on_other_device_counts(four_devices, devices):
    """Hybrid-MAPPO on AvatarPremigration-v0: 2 iterations on 4 devices resumed to 3 on 1 or 2 devices equal a
    3-iteration run on 1 device within float32 rounding."""
    result = four_devices["hybrid_mappo_cli"]
    assert result["one"]["iterations"] == [1, 2, 3] and result["one"]["checkpoint"] == 3
    resumed = result[f"resumed_on_{devices}"]
    assert resumed["iterations"] == [1, 2, 3] and resumed["checkpoint"] == 3
    assert resumed["num_devices_saved"] == devices  # the resumed run's own count is saved
    assert within_tolerance(resumed["vs_one"]), resumed["vs_one"]


def test_a_seed_group_trains_its_seeds_in_one_program_split_over_devices(four_devices):
    """`--run.seeds 2 --run.num_devices 2`: 2 iterations resumed to 3; seed 0's folder equals the 1-device run of
    seed 0 within float32 rounding, every seed folder is a complete run folder, the group's stacked checkpoint
    holds each seed's state, and `evaluate` of the group folder means its seeds' folders."""
    result = four_devices["seed_group_cli"]
    assert "--run.seeds 3 is not divisible by --run.num_devices 2" in result["errors"]["indivisible"]
    assert {"config.json", "checkpoint.msgpack", "checkpoint.json", "seed-0", "seed-1"} <= set(result["group_files"])
    assert {"config.json", "metrics.jsonl", "learning_curve.png", "checkpoint.msgpack"} <= set(result["member_files"])
    assert result["group_checkpoint"] == 3 and result["saved_seeds"] == 2 and result["member_saved_seed"] == 1
    for seed in (0, 1):
        member = result["members"][str(seed)]
        assert member["iterations"] == [1, 2, 3] and member["checkpoint"] == 3, member
    assert within_tolerance(result["members"]["0"]["vs_one"]), result["members"]["0"]
    assert result["members"]["1"]["vs_one"]["max_abs"] > 1e-3  # another seed: other parameters
    assert result["group_vs_seed_1"]["max_abs"] == 0.0
    assert result["evaluated_runs"] == ["group/seed-0", "group/seed-1"]


# ---------------------------------------------------------------- two processes on localhost (multi-host)
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(four_devices):
    """`vmjax train` as 2 processes of 2 host devices each (tests/multihost_worker.py), coordinator on 127.0.0.1:
    (their outputs, the run folder, the folder of the 1-device reference run)."""
    folder = Path(four_devices["folder"])
    run_dir = folder / "multihost"
    environ = host_devices_environ(2, os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests"), *filter(None, [environ.get("PYTHONPATH")])]
    )
    port = str(free_port())
    worker = str(ROOT / "tests" / "multihost_worker.py")
    processes = [
        subprocess.Popen(
            [sys.executable, worker, str(process_id), port, str(run_dir)],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for process_id in (0, 1)
    ]
    outputs = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        assert process.returncode == 0, stderr[-4000:]
        outputs.append((stdout, stderr))
    return outputs, run_dir, folder / "one"


def test_two_processes_train_one_run_that_process_0_alone_writes(two_processes):
    """Hybrid-MAPPO on AvatarPremigration-v0, 3 iterations, the 4 worlds over 2 processes x 2 devices: the
    checkpoint equals the 1-device run's within float32 rounding; process 0 alone logs and holds the lock."""
    from data_parallel_worker import differences, final_params

    outputs, run_dir, one = two_processes
    facts = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert [f["process_index"] for f in facts] == [0, 1]
    assert all(f["processes"] == 2 and f["devices"] == 4 for f in facts)
    assert "split over 4 devices" in outputs[0][0] and "done: 3 iterations" in outputs[0][0]
    assert "training" not in outputs[1][0] and "done" not in outputs[1][0]  # process 1 logs nothing
    assert {"config.json", "metrics.jsonl", "learning_curve.png", "checkpoint.msgpack"} <= {
        p.name for p in run_dir.iterdir()
    }
    iterations, checkpoint_at, params = final_params(run_dir)
    assert iterations == [1, 2, 3] and checkpoint_at == 3
    assert within_tolerance(differences(final_params(one)[2], params))
