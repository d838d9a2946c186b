"""The multi-device half of tests/test_sharding.py, run in a subprocess: XLA's host device count is fixed when
JAX starts, so the test starts this script with XLA_FLAGS=--xla_force_host_platform_device_count=4 and checks
what it prints (one JSON line). It asserts nothing itself: it reports facts.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu python tests/sharding_worker.py
"""

from __future__ import annotations

import json
import re

import jax
import numpy as np

import vmjax
from vmjax.core.rollout import rollout, uniform_random_policy
from vmjax.core.sharding import is_world_sharded, shard_worlds, world_mesh

WORLDS, STEPS = 8, 8  # episodes of 5 and 6 slots: auto-resets inside the rollout
SCENARIOS = {
    "AvatarPremigration-v0": dict(num_vehicles=3, num_rsus=3, max_steps=5),
    "TwinRouting-v0": dict(num_vehicles=3, num_rsus=6, num_uavs=2, max_steps=6, city_size_m=2000.0),
}
COLLECTIVE = re.compile(r"= (\w+)\[[^\]]*\] (all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)")


def error_of(fn) -> str | None:
    """The message of the ValueError `fn()` raises, None if it raises none."""
    try:
        fn()
    except ValueError as error:
        return str(error)
    return None


def compare(a: dict, b: dict) -> dict:
    """Per output: bit-equal, largest absolute and relative difference."""
    out = {}
    for name in a:
        x, y = np.asarray(a[name], np.float64), np.asarray(b[name], np.float64)
        diff = np.abs(x - y)
        out[name] = {
            "equal": bool(np.array_equal(np.asarray(a[name]), np.asarray(b[name]))),
            "max_abs": float(diff.max()),
            "max_rel": float((diff / np.maximum(np.abs(x), 1e-30)).max()),
        }
    return out


def scenario(env_id: str, config: dict, mesh) -> dict:
    env = vmjax.make(env_id, **config)
    params = env.default_params
    policy = uniform_random_policy(env, params)

    key = jax.random.key(7)

    def compiled(m):
        return jax.jit(lambda k: rollout(env, policy, k, params, WORLDS, STEPS, mesh=m)).lower(key).compile()

    single = compiled(None)(key)
    sharded_exe = compiled(mesh)
    sharded = sharded_exe(key)
    collectives = COLLECTIVE.findall(sharded_exe.as_text())
    vec = vmjax.VecEnv(env, WORLDS, mesh=mesh)
    obs, state = jax.jit(vec.reset)(key, params)
    return {
        "outputs": compare(single, sharded),
        "shapes": {name: list(value.shape) for name, value in sharded.items()},
        "sharded": {name: is_world_sharded(value, mesh, axis=1) for name, value in sharded.items()},
        "single_on_one_device": all(len(value.sharding.device_set) == 1 for value in single.values()),
        "reset_sharded": all(is_world_sharded(leaf, mesh) for leaf in jax.tree.leaves((obs, state))),
        "collectives": sorted(set(collectives)),
        "indivisible_vecenv": error_of(lambda: vmjax.VecEnv(env, 6, mesh=mesh)),
        "indivisible_rollout": error_of(lambda: rollout(env, policy, key, params, 6, 2, mesh=mesh)),
    }


def main() -> None:
    mesh = world_mesh(4)
    result = {
        "num_devices": jax.device_count(),
        "mesh_devices": int(mesh.devices.size),
        "too_many_devices": error_of(lambda: world_mesh(8)),
        "shard_worlds_indivisible": error_of(lambda: shard_worlds({"x": np.zeros((6, 2))}, mesh)),
        "shard_worlds_placed": is_world_sharded(shard_worlds({"x": np.zeros((8, 2))}, mesh)["x"], mesh),
        "scenarios": {env_id: scenario(env_id, config, mesh) for env_id, config in SCENARIOS.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
