"""Data-parallel training of every learner: 1 device against D forced host devices (`Trainer.on_mesh`).

    python -m bench.data_parallel [--devices 4] [--iterations 3] [--repeats 3] [--learners hgdm,msrl] [--out PATH]

For each learner on a tiny world of its scenario, in one subprocess with XLA_FLAGS=
--xla_force_host_platform_device_count=D (XLA fixes the host device count when JAX starts): one initial state,
`Trainer.run` of `--iterations` iterations AOT-compiled for one device (no mesh) and for a `world_mesh(D)`
(compile times apart), each run from that state; the parameters after the run compared (the largest absolute
difference and the largest relative to each leaf's scale, max |x| of the leaf), then each program timed (one
warm-up run excluded, the median of `--repeats` runs, each waited for with `block_until_ready`, the 1- and
D-device programs in alternation so a change in the machine's load falls on both).

The differences are float32 rounding: the split computation sums its per-device parts in another order. Forced
host devices share the machine's cores, so on a CPU the times show the sharding's overhead (its collectives), not
a speed-up; on several accelerators the same program runs each share on its own chip (not measured here).
Writes bench/results/data_parallel-<machine>.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from bench.common import markdown_table, median, print_result, result_path, run_stamp, write_result
from vmjax.core.machine import describe_machine, machine_label
from vmjax.core.sharding import host_devices_environ, world_mesh

ROOT = Path(__file__).resolve().parents[1]
LEARNERS = ("hybrid_mappo", "mappo_ddpg", "dm_mappo", "masac", "lhdppo", "hgdm", "msrl")


# ====================================================================== the tiny runs
def _crossreality():
    import vmjax
    from vmjax.mobility import Trace

    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=2, num_rsus=3, max_steps=5, hop_neighbours=2)
    bank = np.random.default_rng(0).uniform([6000.0, 6000.0], [13000.0, 16000.0], (8, 4, 2)).astype(np.float32)
    return env, env.default_params.replace(trace_bank=Trace.create(bank))


def make_trainer(name: str, iterations: int):
    """The learner `name` on a tiny world of its scenario, 4 worlds (divisible by 1, 2 and 4 devices)."""
    import vmjax
    from vmjax.agents import dm_mappo, hgdm, hybrid_mappo, lhdppo, mappo_ddpg, masac, msrl
    from vmjax.mobility import Trace

    run = {"num_envs": 4, "num_iterations": iterations}
    ppo = {"update_epochs": 2, "num_minibatches": 2}
    diffusion = {"denoising_steps": 2, "state_hidden": (16,), "trunk_hidden": (16,), "time_embed_dim": 4}
    diffusion |= {"time_hidden": 8, "critic_hidden": (16,), "num_steps": 6}
    if name in ("hybrid_mappo", "mappo_ddpg"):
        env = vmjax.make("AvatarPremigration-v0", num_vehicles=3, num_rsus=3, max_steps=8)
        if name == "hybrid_mappo":
            config = hybrid_mappo.HybridMappoConfig(**run, **ppo, num_steps=8, hidden_sizes=(16, 16))
            return hybrid_mappo.make_trainer(env, config)
        replay = {"batch_size": 8, "buffer_size": 64}
        config = mappo_ddpg.MappoDdpgConfig(**run, **ppo, **replay, num_steps=8, hidden_sizes=(16, 16))
        return mappo_ddpg.make_trainer(env, config)
    if name in ("dm_mappo", "masac"):
        env = vmjax.make(
            "TwinRouting-v0", num_vehicles=3, num_rsus=8, num_uavs=2, max_steps=8, min_trip_slots=3, num_late_vehicles=1
        )
        if name == "dm_mappo":
            return dm_mappo.make_trainer(env, dm_mappo.DmMappoConfig(**run, **ppo, num_steps=8, hidden_sizes=(16, 16)))
        config = masac.MasacConfig(**run, num_steps=8, hidden_sizes=(16, 16), batch_size=8, buffer_size=64)
        return masac.make_trainer(env, config)
    if name in ("lhdppo", "hgdm"):
        env, params = _crossreality()
        if name == "lhdppo":
            return lhdppo.make_trainer(env, lhdppo.LhdppoConfig(**run, **ppo, **diffusion), params)
        replay = {"buffer_size": 48, "batch_size": 8, "learning_starts": 13}
        config = hgdm.HgdmConfig(**run, **diffusion, **replay, updates_per_iteration=2)
        return hgdm.make_trainer(env, config, params)
    if name == "msrl":
        env = vmjax.make("TwinSplit-v0", num_vehicles=3, num_rsus=4, max_steps=10)
        bank = np.random.default_rng(0).uniform(0.0, 5000.0, (11, 6, 2)).astype(np.float32)
        params = env.default_params.replace(trace_bank=Trace.create(bank))
        return msrl.make_trainer(env, msrl.MsrlConfig(**run, **ppo, num_steps=10), params)
    raise ValueError(f"unknown learner {name!r}; one of {LEARNERS}")


def differences(a, b) -> dict:
    """The largest absolute difference over the leaves of two pytrees and the largest relative to each leaf's
    scale (its largest |a|)."""
    max_abs = max_rel = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        diff = float(np.max(np.abs(x - y), initial=0.0))
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(float(np.max(np.abs(x), initial=0.0)), 1e-30))
    return {"max_abs": max_abs, "max_rel": max_rel}


def measure_learner(name: str, devices: int, iterations: int, repeats: int) -> dict:
    """One learner: the 1- and `devices`-device programs of `iterations` iterations, compiled, compared, timed."""
    single = make_trainer(name, iterations)
    state = jax.block_until_ready(jax.jit(single.init)(jax.random.PRNGKey(0)))
    programs = {}
    for count, trainer in ((1, single), (devices, single.on_mesh(world_mesh(devices)))):
        placed = trainer.place(state)
        start = time.perf_counter()
        compiled = jax.jit(trainer.run, static_argnums=1).lower(placed, iterations).compile()
        programs[count] = {"compiled": compiled, "state": placed, "compile_s": time.perf_counter() - start}
    finals = {count: jax.block_until_ready(p["compiled"](p["state"]))[0] for count, p in programs.items()}
    runs: dict[int, list[float]] = {count: [] for count in programs}
    for _ in range(repeats):  # in alternation, after the warm-up runs above
        for count, p in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(p["compiled"](p["state"]))
            runs[count].append(time.perf_counter() - start)
    return {
        "learner": name,
        "params": differences(finals[1].params, finals[devices].params),
        "compile_s": {str(count): p["compile_s"] for count, p in programs.items()},
        "run_s": {str(count): median(times) for count, times in runs.items()},
        "runs_s": {str(count): times for count, times in runs.items()},
    }


# ====================================================================== driver
def worker_main(opts) -> int:
    rows = [measure_learner(name, opts.devices, opts.iterations, opts.repeats) for name in opts.learners]
    print(json.dumps({"num_devices": jax.device_count(), "rows": rows}))
    return 0


def run_in_subprocess(opts) -> dict:
    environ = host_devices_environ(opts.devices, os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    argv = [sys.executable, "-m", "bench.data_parallel", "--worker", "--devices", str(opts.devices)]
    argv += [
        "--iterations",
        str(opts.iterations),
        "--repeats",
        str(opts.repeats),
        "--learners",
        ",".join(opts.learners),
    ]
    done = subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {opts.devices}-device worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render_table(result: dict) -> str:
    devices = result["options"]["devices"]
    header = ["learner", "max abs diff", "max rel diff", "compile 1 / D (s)", "run 1 dev (s)", f"run {devices} dev (s)"]
    rows = [
        [
            r["learner"],
            f"{r['params']['max_abs']:.1e}",
            f"{r['params']['max_rel']:.1e}",
            f"{r['compile_s']['1']:.1f} / {r['compile_s'][str(devices)]:.1f}",
            f"{r['run_s']['1']:.4f}",
            f"{r['run_s'][str(devices)]:.4f}",
        ]
        for r in result["rows"]
    ]
    return markdown_table(header, rows)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.data_parallel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=4, help="forced host devices of the data-parallel run")
    parser.add_argument("--iterations", type=int, default=3, help="training iterations per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per program (median reported)")
    parser.add_argument("--learners", default=",".join(LEARNERS), help="comma-separated learners")
    parser.add_argument("--out", default=None, help="result JSON (default bench/results/data_parallel-<machine>.json)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    opts.learners = [name for name in opts.learners.split(",") if name]
    unknown = sorted(set(opts.learners) - set(LEARNERS))
    if unknown or opts.devices < 2 or opts.iterations < 1 or opts.repeats < 1:
        parser.error(f"--learners from {LEARNERS} (unknown: {unknown}), --devices >= 2, --iterations, --repeats >= 1")
    opts.quick = False
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.worker:
        return worker_main(opts)
    start = time.perf_counter()
    machine = describe_machine()
    label = machine_label(machine)
    measured = run_in_subprocess(opts)
    options = {k: v for k, v in vars(opts).items() if k != "worker"}
    result = {**run_stamp(machine, label, argparse.Namespace(**options)), **measured}
    result["method"] = __doc__.split("\n\n", 2)[2].strip()
    result["wall_s"] = time.perf_counter() - start
    result = write_result(result_path("data_parallel", label, opts.out), result)
    return print_result(result, render_table(result))


if __name__ == "__main__":
    raise SystemExit(main())
