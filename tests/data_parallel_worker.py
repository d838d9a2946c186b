"""The multi-device half of tests/test_data_parallel.py, run in a subprocess with 4 forced host devices (XLA reads
the device count once, when JAX starts). It asserts nothing itself: it prints one JSON line of facts.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu python tests/data_parallel_worker.py DIR

* MAPPO-DDPG on AvatarPremigration-v0 (PPO minibatches and a replay buffer split over the devices): `Trainer.run`
  of 3 iterations on one device and data parallel on 4, from the same initial state.
* Hybrid-MAPPO on AvatarPremigration-v0 through `vmjax train` (`cli.main`, as the console script runs it): a
  2-iteration run on 4 devices, resumed to 3 iterations on 1 and on 2 devices (copies of its run folder), and a
  3-iteration run on 1 device; the checkpoints' parameters are compared. `--run.num_devices` errors.
* A seed group (`--run.seeds 2`) on 2 devices, resumed: each seed's folder against the 1-device run.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

import vmjax
from vmjax import cli, runner
from vmjax.agents import mappo_ddpg
from vmjax.agents.replay import replay_init
from vmjax.agents.trainer import replay_shardings
from vmjax.core.sharding import is_world_sharded, world_mesh

ITERATIONS = 3
TINY_AVATAR = [
    "--env.num_vehicles",
    "3",
    "--env.num_rsus",
    "3",
    "--env.max_steps",
    "8",
    "--env.workload_forecast",
    "persistence",  # no predictor to train
    "--agent.num_envs",
    "4",
    "--agent.num_steps",
    "8",
    "--agent.update_epochs",
    "1",
    "--agent.num_minibatches",
    "2",
    "--agent.hidden_sizes",
    "8",
    "--run.chunk_iterations",
    "1",
]


def differences(a, b) -> dict:
    """Largest absolute difference over the leaves of two pytrees (NaN where both are NaN counts as equal, NaN
    against a number as infinite), and the largest relative to each leaf's scale (its largest |a|)."""
    max_abs = max_rel = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        diff = np.where(np.isnan(x) & np.isnan(y), 0.0, np.nan_to_num(np.abs(x - y), nan=np.inf))
        largest = float(np.max(diff, initial=0.0))
        max_abs = max(max_abs, largest)
        max_rel = max(max_rel, largest / max(float(np.nanmax(np.abs(x), initial=0.0)), 1e-30))
    return {"max_abs": max_abs, "max_rel": max_rel}


def error_of(fn) -> str | None:
    """The message of the error `fn()` raises (a command-line error, a SystemExit, a ValueError), None if none."""
    try:
        fn()
    except cli.CommandError as error:
        return error.message
    except (SystemExit, ValueError) as error:
        return str(error)
    return None


# ---------------------------------------------------------------------- MAPPO-DDPG, Trainer.run on 1 and 4 devices
def mappo_ddpg_one_vs_four() -> dict:
    env = vmjax.make("AvatarPremigration-v0", num_vehicles=3, num_rsus=3, max_steps=8)
    config = mappo_ddpg.MappoDdpgConfig(
        num_envs=4,
        num_steps=8,
        num_iterations=ITERATIONS,
        update_epochs=1,
        num_minibatches=2,
        batch_size=8,
        buffer_size=32,
        hidden_sizes=(8,),
    )
    single = mappo_ddpg.make_trainer(env, config)
    state = jax.jit(single.init)(jax.random.PRNGKey(0))
    one, metrics_one = jax.jit(single.run, static_argnums=1)(state, ITERATIONS)
    sharded = single.on_mesh(world_mesh(4))
    four, metrics_four = jax.jit(sharded.run, static_argnums=1)(sharded.place(state), ITERATIONS)
    return {
        "params": differences(one.params, four.params),
        "target_params": differences(one.target_params, four.target_params),
        "buffer": differences(one.buffer, four.buffer),
        "ddpg_updates": [int(metrics_one["ddpg_updates"].sum()), int(metrics_four["ddpg_updates"].sum())],
        "metrics": differences(metrics_one, metrics_four),
        "obs_sharded": is_world_sharded(four.obs, sharded.mesh),
        "buffer_sharded": all(is_world_sharded(leaf, sharded.mesh) for leaf in jax.tree.leaves(four.buffer.data)),
        "params_replicated": all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(four.params)),
        "indivisible": error_of(lambda: single.on_mesh(world_mesh(3))),
        "odd_capacity_replicated": replay_shardings(
            replay_init(jnp.zeros(2), 30), world_mesh(4)
        ).data.is_fully_replicated,
    }


# ---------------------------------------------------------------------- Hybrid-MAPPO, the command line
def train(run_dir: Path, *flags: str) -> None:
    cli.main(["train", "--run.run_dir", str(run_dir), *TINY_AVATAR, *flags])


def final_params(run_dir: Path):
    """(iterations in metrics.jsonl, the checkpoint's iteration, its params as host arrays)."""
    progress, state_bytes = runner.read_run_checkpoint(run_dir)
    params = serialization.msgpack_restore(state_bytes)["params"]
    records = runner.read_metrics(run_dir / "metrics.jsonl")
    return [r["iteration"] for r in records], progress["iteration"], params


def hybrid_mappo_cli(folder: Path) -> dict:
    errors = {
        "too_many": error_of(lambda: train(folder / "bad", "--agent.num_iterations", "1", "--run.num_devices", "8")),
        "indivisible": error_of(lambda: train(folder / "bad", "--agent.num_iterations", "1", "--run.num_devices", "3")),
    }
    four = folder / "four"
    train(four, "--agent.num_iterations", "2", "--run.num_devices", "4")
    files = sorted(p.name for p in four.iterdir())
    resumed = {}
    for devices in (1, 2):
        copy = folder / f"resumed_on_{devices}"
        shutil.copytree(four, copy)
        resumed[devices] = copy
    for devices, run_dir in resumed.items():
        cli.main(
            ["train", "--resume", "--run.run_dir", str(run_dir), "--agent.num_iterations", "3"]
            + ["--run.num_devices", str(devices)]
        )
    one = folder / "one"
    train(one, "--agent.num_iterations", "3", "--run.num_devices", "1")
    out = {"errors": errors, "files": files}
    iterations, checkpoint_at, reference = final_params(one)
    for name, run_dir in {"one": one, "four": four, "resumed_on_1": resumed[1], "resumed_on_2": resumed[2]}.items():
        iterations, checkpoint_at, params = final_params(run_dir)
        out[name] = {
            "iterations": iterations,
            "checkpoint": checkpoint_at,
            "num_devices_saved": json.loads((run_dir / "config.json").read_text())["run"]["num_devices"],
            "vs_one": differences(reference, params) if checkpoint_at == 3 else None,
        }
    return out


def seed_group_cli(folder: Path) -> dict:
    """`vmjax train --run.seeds 2` on 2 of the 4 devices (the seeds split over them): 2 iterations, resumed to 3;
    its seed-0 folder against the 1-device run `one` of `hybrid_mappo_cli` (same seed, same config)."""
    errors = {
        "indivisible": error_of(
            lambda: train(
                folder / "bad_group", "--agent.num_iterations", "1", "--run.seeds", "3", "--run.num_devices", "2"
            )
        ),
    }
    group = folder / "group"
    train(group, "--agent.num_iterations", "2", "--run.seeds", "2", "--run.num_devices", "2")
    cli.main(["train", "--resume", "--run.run_dir", str(group), "--agent.num_iterations", "3"])
    reference = final_params(folder / "one")[2]
    members = {}
    for seed in (0, 1):
        iterations, checkpoint_at, params = final_params(group / f"seed-{seed}")
        members[seed] = {
            "iterations": iterations,
            "checkpoint": checkpoint_at,
            "vs_one": differences(reference, params),
        }
    progress, state_bytes = runner.read_run_checkpoint(group)
    stacked = serialization.msgpack_restore(state_bytes)["params"]
    seed_1 = final_params(group / "seed-1")[2]
    return {
        "errors": errors,
        "group_files": sorted(p.name for p in group.iterdir()),
        "member_files": sorted(p.name for p in (group / "seed-1").iterdir()),
        "group_checkpoint": progress["iteration"],
        "members": members,
        "group_vs_seed_1": differences(jax.tree.map(lambda leaf: np.asarray(leaf)[1], stacked), seed_1),
        "saved_seeds": json.loads((group / "config.json").read_text())["run"]["seeds"],
        "member_saved_seed": json.loads((group / "seed-1" / "config.json").read_text())["run"]["seed"],
        "evaluated_runs": [str(p.relative_to(folder)) for p in runner.seed_group_runs(group)],
    }


def main() -> None:
    folder = Path(sys.argv[1])
    result = {
        "num_devices": jax.device_count(),
        "folder": str(folder),
        "mappo_ddpg": mappo_ddpg_one_vs_four(),
        "hybrid_mappo_cli": hybrid_mappo_cli(folder),
        "seed_group_cli": seed_group_cli(folder),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
