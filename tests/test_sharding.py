"""Sharded worlds (vmjax.core.sharding): the world axis of VecEnv / rollout split over a device mesh.

The multi-device checks run tests/sharding_worker.py in a subprocess with 4 forced host devices (XLA reads the
device count once, when JAX starts); the rest runs here on this process's one CPU device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from jax.sharding import AxisType, Mesh

import vmjax
from vmjax.core import spaces
from vmjax.core.env import Environment
from vmjax.core.rollout import rollout, uniform_random_policy
from vmjax.core.sharding import (
    check_world_count,
    host_devices_environ,
    is_world_sharded,
    replicate,
    shard_worlds,
    world_mesh,
)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- on this process's device
@struct.dataclass
class WalkState:
    x: jax.Array
    t: jax.Array


class WalkEnv(Environment):
    """One agent; a noisy walk (float state, random keys) that truncates every 3 steps."""

    num_agents = 1

    @property
    def default_params(self):
        return {"scale": jnp.float32(0.5)}

    def reset_env(self, key, params):
        state = WalkState(x=jax.random.normal(key, (1,)), t=jnp.int32(0))
        return state.x[:, None], state

    def step_env(self, key, state, action, params):
        x = state.x + params["scale"] * jax.random.normal(key, (1,)) + action
        state = WalkState(x=x, t=state.t + 1)
        return x[:, None], state, jnp.sin(x), jnp.array(False), state.t >= 3, {"x": x}

    def action_space(self, params=None):
        return spaces.Discrete(2, shape=(1,))


def test_world_mesh_on_this_process():
    mesh = world_mesh()
    assert mesh.axis_names == ("worlds",) and mesh.devices.size == jax.device_count()
    assert world_mesh(1, devices=jax.devices()[:1]).devices.size == 1
    with pytest.raises(ValueError, match="num_devices must be a positive integer"):
        world_mesh(0)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        world_mesh(jax.device_count() + 1)


def test_meshes_without_an_auto_worlds_axis_are_refused():
    devices = np.array(jax.devices()[:1])
    with pytest.raises(ValueError, match="axis named 'worlds'"):
        vmjax.VecEnv(WalkEnv(), 4, mesh=Mesh(devices, ("batch",)))
    with pytest.raises(ValueError, match="AxisType.Auto"):
        vmjax.VecEnv(WalkEnv(), 4, mesh=Mesh(devices, ("worlds",), axis_types=(AxisType.Explicit,)))
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        vmjax.VecEnv(WalkEnv(), 4, mesh=4)


def test_world_counts_and_leaves_without_a_world_axis():
    check_world_count(6, None)  # no mesh: anything goes (indivisible counts: the 4-device tests below)
    check_world_count(6, world_mesh(1))
    with pytest.raises(ValueError, match=r"leaf \['x'\] of shape \(\) has no leading world axis"):
        shard_worlds({"x": jnp.float32(1.0)}, world_mesh(1))


def test_shard_worlds_and_replicate_keep_values():
    mesh = world_mesh(1)
    tree = {"a": np.arange(6.0).reshape(3, 2), "k": jax.random.split(jax.random.key(0), 3)}
    placed = shard_worlds(tree, mesh)
    np.testing.assert_array_equal(placed["a"], tree["a"])
    assert is_world_sharded(placed["a"], mesh) and placed["k"].shape == (3,)
    assert shard_worlds(tree, None) is tree and replicate(tree, None) is tree
    np.testing.assert_array_equal(replicate(tree, mesh)["a"], tree["a"])
    inside = jax.jit(lambda t: shard_worlds(t, mesh))(tree)  # a sharding constraint under jit
    np.testing.assert_array_equal(inside["a"], tree["a"])


def test_a_one_device_mesh_changes_nothing():
    """Bit-for-bit: the rollout and a VecEnv step on a 1-device mesh equal the ones without a mesh."""
    env = WalkEnv()
    params = env.default_params
    policy = uniform_random_policy(env, params)
    runs = [
        jax.jit(lambda k, m=m: rollout(env, policy, k, params, 4, 7, mesh=m))(jax.random.key(1))
        for m in (None, world_mesh(1))
    ]
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])
    vec, vec1 = vmjax.VecEnv(env, 4), vmjax.VecEnv(env, 4, mesh=world_mesh(1))
    (_, s0), (_, s1) = vec.reset(jax.random.key(2)), vec1.reset(jax.random.key(2))
    actions = jnp.ones((4, 1), jnp.int32)
    out0, out1 = vec.step(jax.random.key(3), s0, actions), vec1.step(jax.random.key(3), s1, actions)
    for a, b in zip(jax.tree.leaves(out0), jax.tree.leaves(out1)):
        np.testing.assert_array_equal(a, b)


def test_host_devices_environ_replaces_only_the_device_count():
    env = host_devices_environ(4, {"XLA_FLAGS": "--a=1 --xla_force_host_platform_device_count=2 --b", "X": "y"})
    assert env["XLA_FLAGS"] == "--a=1 --b --xla_force_host_platform_device_count=4"
    assert env["JAX_PLATFORMS"] == "cpu" and env["X"] == "y"
    assert host_devices_environ(8, {})["XLA_FLAGS"] == "--xla_force_host_platform_device_count=8"


# ---------------------------------------------------------------- on 4 forced host devices (a subprocess)
@pytest.fixture(scope="module")
def four_devices():
    """What tests/sharding_worker.py reports, run with 4 host devices (the suite's XLA flags otherwise)."""
    environ = host_devices_environ(4, os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    worker = ROOT / "tests" / "sharding_worker.py"
    done = subprocess.run(
        [sys.executable, str(worker)], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SCENARIOS = ("AvatarPremigration-v0", "TwinRouting-v0")


def test_the_worker_sees_four_devices(four_devices):
    assert four_devices["num_devices"] == 4 and four_devices["mesh_devices"] == 4
    assert "only 4 device(s) are available" in four_devices["too_many_devices"]
    assert four_devices["shard_worlds_placed"]
    assert "of shape (6, 2)" in four_devices["shard_worlds_indivisible"]
    assert set(four_devices["scenarios"]) == set(SCENARIOS)


@pytest.mark.parametrize("env_id", SCENARIOS)
def test_sharded_rollout_equals_the_one_device_rollout(four_devices, env_id):
    """Discrete outputs equal exactly, floats to float32 rounding: each device's program is compiled for its
    shard (2 worlds, not 8) and XLA's CPU code generator may round that shape differently (bit-equal for
    AvatarPremigration-v0 at XLA's default flags, not under this suite's fast-compile flags; TwinRouting-v0's
    reset has a batched matrix product). The worlds never meet: see the collectives test below."""
    result = four_devices["scenarios"][env_id]
    assert result["single_on_one_device"]
    for name, diff in result["outputs"].items():
        assert diff["max_rel"] <= 1e-4, (name, diff)
    for name in ("target", "serving", "premigrated") if env_id.startswith("Avatar") else ("server", "active"):
        assert result["outputs"][name]["equal"], name


@pytest.mark.parametrize("env_id", SCENARIOS)
def test_outputs_are_sharded_over_four_devices(four_devices, env_id):
    result = four_devices["scenarios"][env_id]
    assert all(shape == [8, 8] for shape in result["shapes"].values())  # [steps, worlds]
    assert result["sharded"] and all(result["sharded"].values()), result["sharded"]
    assert result["reset_sharded"]  # VecEnv.reset's obs and state: 2 worlds on each device


@pytest.mark.parametrize("env_id", SCENARIOS)
def test_the_only_communication_is_the_any_world_done_test(four_devices, env_id):
    """The compiled sharded rollout has no collective but boolean all-reduces (VecEnv's `any(done)` /
    `all(done)` of its batch-level reset): no world's numbers cross devices."""
    assert four_devices["scenarios"][env_id]["collectives"] == [["pred", "all-reduce"]]


@pytest.mark.parametrize("env_id", SCENARIOS)
def test_indivisible_world_counts_are_refused(four_devices, env_id):
    result = four_devices["scenarios"][env_id]
    for message in (result["indivisible_vecenv"], result["indivisible_rollout"]):
        assert message and "VecEnv.num_envs=6 is not divisible by 4" in message
