"""Device scaling of sharded worlds: env steps/s of one rollout whose worlds are split over 1, 2, 4, ... devices.

    python -m bench --devices 1,2,4,8               # the same as the next line (bench/__main__.py hands it here)
    python -m bench.device_scaling --devices 1,2,4,8 [--worlds 1024] [--steps 200] [--repeats 5] [--rounds 3]
    python -m bench.device_scaling --quick          # tiny sizes: a smoke run (the test)

AvatarPremigration-v0 as in part 1 of `python -m bench` (N = 20 vehicles, M = 10 RSUs, persistence forecast,
episodes of 100 slots with their auto-resets inside the rollout, a fixed random action per world) at a fixed
total world count, the world axis split over a `world_mesh` of D devices (`VecEnv(..., mesh=...)`: one jitted
program, `NamedSharding(mesh, PartitionSpec("worlds"))`). Each device count runs in its own subprocess, because
XLA fixes the number of host devices when JAX starts: XLA_FLAGS=--xla_force_host_platform_device_count=D and
JAX_PLATFORMS=cpu. In each: the reset and the rollout AOT-compiled first (compile time apart), one warm-up run
excluded, the median of `--repeats` runs, each waited for with `block_until_ready`. The device counts run in
turn, `--rounds` times (a subprocess each time), and the median over rounds is reported, so a change in the
machine's load falls on every count. Ratios are against the 1-device run of the same invocation (1 is always
run); the 1-device process also times the rollout without a mesh, in alternation with the 1-device mesh, so
the cost of the sharding constraints themselves shows.

Forced host devices share the machine's cores: on a CPU they only help where XLA leaves cores idle, so this
measures the sharding's overhead there, not a speed-up. On several accelerators the same code runs each shard on
its own chip (not measured here).
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

import vmjax
from bench.common import (
    compile_aot,
    fill_unset,
    format_rate,
    format_times,
    log,
    make_env_rollout,
    markdown_table,
    median,
    print_result,
    result_path,
    run_stamp,
    write_result,
)
from vmjax.core.machine import describe_machine, machine_label
from vmjax.core.sharding import host_devices_environ, is_world_sharded, world_mesh

ENV_ID = "AvatarPremigration-v0"
ENV_CONFIG = {"num_vehicles": 20, "num_rsus": 10, "workload_forecast": "persistence"}  # part 1's world
SCHEMA_VERSION = 1
ROOT = Path(__file__).resolve().parents[1]

FULL = {"devices": [1, 2, 4, 8], "worlds": 1024, "steps": 200, "repeats": 5, "rounds": 3}
QUICK = {"devices": [1, 2], "worlds": 8, "steps": 5, "repeats": 1, "rounds": 1}


# ====================================================================== one device count (in its subprocess)
def compile_rollout(env, worlds: int, steps: int, mesh) -> dict:
    """`steps` steps of `worlds` worlds (`make_env_rollout`) split over `mesh` (None: no mesh), ready to time:
    the reset and the rollout AOT-compiled (their seconds recorded), the rollout's arguments made."""
    reset, run = make_env_rollout(env, worlds, steps, mesh=mesh)
    key = jax.random.key(0)
    reset_exe, reset_compile_s = compile_aot(reset, (key,))
    state, actions = reset_exe(key)
    args = (state, actions, jax.random.key(1))
    run_exe, compile_s = compile_aot(run, args)
    sharded = mesh is not None and all(is_world_sharded(leaf, mesh) for leaf in jax.tree.leaves((state, actions)))
    return {
        "exe": run_exe,
        "args": args,
        "compile_s": compile_s,
        "reset_compile_s": reset_compile_s,
        "sharded": sharded,
    }


def time_alternately(rollouts: list[dict], repeats: int) -> list[tuple[list[float], float]]:
    """([run seconds], summed reward) of each compiled rollout: one warm-up call each (excluded), then `repeats`
    rounds that time each once, in turn (so a change in the machine's load falls on all of them alike), each
    call waited for with `block_until_ready`."""
    totals = [float(jax.block_until_ready(r["exe"](*r["args"]))) for r in rollouts]
    runs: list[list[float]] = [[] for _ in rollouts]
    for _ in range(repeats):
        for r, times in zip(rollouts, runs):
            start = time.perf_counter()
            jax.block_until_ready(r["exe"](*r["args"]))
            times.append(time.perf_counter() - start)
    return list(zip(runs, totals))


def rollout_row(rollout: dict, runs: list[float], total: float, worlds: int, steps: int, num_agents: int) -> dict:
    run_s = median(runs)
    return {
        "sharded": rollout["sharded"],
        "compile_s": rollout["compile_s"],
        "reset_compile_s": rollout["reset_compile_s"],
        "runs_s": runs,
        "run_s": run_s,
        "env_steps_per_s": worlds * steps / run_s,
        "agent_steps_per_s": worlds * steps * num_agents / run_s,
        "reward_total": total,
    }


def measure_devices(num_devices: int, worlds: int, steps: int, repeats: int) -> dict:
    """The row of one device count, measured in this process (which must see `num_devices` devices). With one
    device, the rollout without a mesh is timed too, in alternation with the 1-device mesh (`unsharded`)."""
    load_before = os.getloadavg()[0]
    env = vmjax.make(ENV_ID, **ENV_CONFIG)
    meshes = [world_mesh(num_devices)] + ([None] if num_devices == 1 else [])
    rollouts = [compile_rollout(env, worlds, steps, mesh) for mesh in meshes]
    rows = [
        rollout_row(r, runs, total, worlds, steps, env.num_agents)
        for r, (runs, total) in zip(rollouts, time_alternately(rollouts, repeats))
    ]
    row = {
        "devices": num_devices,
        "visible_devices": jax.device_count(),
        "worlds": worlds,
        "worlds_per_device": worlds // num_devices,
        "steps": steps,
        "repeats": repeats,
        **rows[0],
        "load_average_1min": [load_before, os.getloadavg()[0]],  # the machine's load before and after (shared)
    }
    if num_devices == 1:
        row["unsharded"] = rows[1]
    return row


def worker_main(opts) -> int:
    """`--worker`: measure one device count and print its row as the last line of standard output (JSON)."""
    print(json.dumps(measure_devices(opts.worker, opts.worlds, opts.steps, opts.repeats)), flush=True)
    return 0


# ====================================================================== the sweep (the parent process)
def run_in_subprocess(num_devices: int, opts) -> dict:
    """One device count's row, measured by `python -m bench.device_scaling --worker` started with
    `num_devices` forced host devices (the worktree's code first on its path)."""
    environ = host_devices_environ(num_devices, os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "bench.device_scaling", "--worker", str(num_devices)]
    command += ["--worlds", str(opts.worlds), "--steps", str(opts.steps), "--repeats", str(opts.repeats)]
    done = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=opts.timeout_s)
    if done.returncode:
        raise RuntimeError(f"the {num_devices}-device run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def combine_rounds(rounds: list[dict]) -> dict:
    """One device count's row from its rounds (one subprocess each): the medians over rounds of env steps/s,
    agent steps/s and compile seconds (of the `unsharded` part too), every round kept under "rounds"."""

    def medians(parts: list[dict]) -> dict:
        keys = ("env_steps_per_s", "agent_steps_per_s", "compile_s", "reset_compile_s")
        return {**parts[0], **{key: median([p[key] for p in parts]) for key in keys}}

    row = medians(rounds)
    row.pop("runs_s", None)
    row.pop("run_s", None)
    row["run_s"] = row["worlds"] * row["steps"] / row["env_steps_per_s"]
    if "unsharded" in rounds[0]:
        row["unsharded"] = medians([r["unsharded"] for r in rounds])
        row["unsharded"].pop("runs_s", None)
    row["rounds"] = rounds
    return row


def add_ratios(rows: list[dict]) -> list[dict]:
    """Each row's env steps/s as a ratio to the 1-device row's of the same round (`vs_1_device_rounds`; rounds
    run the counts one after another, so a round's two numbers saw nearly the same load) and the median of
    those (`vs_1_device`), that per device (`per_device`), and its reward total's relative difference from the
    1-device one (a sum over worlds across devices)."""
    base = next(row for row in rows if row["devices"] == 1)
    for row in rows:
        row["vs_1_device_rounds"] = [
            r["env_steps_per_s"] / b["env_steps_per_s"] for r, b in zip(row["rounds"], base["rounds"])
        ]
        row["vs_1_device"] = median(row["vs_1_device_rounds"])
        row["per_device"] = row["vs_1_device"] / row["devices"]
        row["reward_total_rel_diff"] = abs(row["reward_total"] - base["reward_total"]) / max(
            abs(base["reward_total"]), 1e-30
        )
    unsharded = base.get("unsharded")
    if unsharded:
        base["mesh_over_unsharded"] = base["env_steps_per_s"] / unsharded["env_steps_per_s"]
    return rows


def render_table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"### Device scaling: {result['env_id']}, {result['worlds']} worlds in all, {result['steps']} steps "
        f"({m['cpu']}, {m['cpu_cores']} cores, forced host devices)\n"
    ]
    rows = [
        [
            str(r["devices"]),
            str(r["worlds_per_device"]),
            format_rate(r["env_steps_per_s"]),
            format_times(r["vs_1_device"]),
            f"{min(r['vs_1_device_rounds']):.2f}-{max(r['vs_1_device_rounds']):.2f}",
            f"{r['compile_s']:.1f}",
        ]
        for r in result["rows"]
    ]
    header = ["devices", "worlds per device", "env steps/s", "vs 1 device", "per round", "compile s"]
    lines.append(markdown_table(header, rows))
    lines.append(
        f"\nMedians over {result['rounds']} round(s); vs 1 device: the median of each round's ratio to that round's "
        "1-device run (per round: their range)."
    )
    base = next(r for r in result["rows"] if r["devices"] == 1)
    if "unsharded" in base:
        lines.append(
            f"\nWithout a mesh (same process as the 1-device row): {format_rate(base['unsharded']['env_steps_per_s'])}"
            f" env steps/s; the 1-device mesh runs at {format_times(base['mesh_over_unsharded'])} of that."
        )
    return "\n".join(lines)


def parse_devices(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (argparse type of --devices; also given as separate words)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--devices takes integers like 1,2,4,8, got {text!r}") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.device_scaling",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Unset options take the full run's values (or --quick's).",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (and the test)")
    parser.add_argument("--devices", type=parse_devices, nargs="+", default=None, help="device counts (1,2,4,8)")
    parser.add_argument("--worlds", type=int, default=None, help="total worlds, split over the devices (1024)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed rollout (200)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per round, median reported (5)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds over all device counts, median over rounds reported (3)"
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="limit per device count's subprocess")
    parser.add_argument("--out", help="JSON path (default bench/results/device_scaling-<machine>[-quick].json)")
    parser.add_argument("--worker", type=int, default=None, metavar="D", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    fill_unset(args, QUICK if args.quick else FULL)
    if args.devices and isinstance(args.devices[0], list):
        args.devices = [d for group in args.devices for d in group]
    args.devices = sorted(set(args.devices) | {1})  # the 1-device run is the baseline of every ratio
    for name in ("worlds", "steps", "repeats", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} needs a positive integer")
    if min(args.devices) < 1:
        parser.error("--devices needs positive integers")
    indivisible = [d for d in args.devices if args.worlds % d]
    if indivisible:
        parser.error(f"--worlds {args.worlds} must be divisible by every device count; not by {indivisible}")
    return args


def run(opts) -> dict:
    started = time.perf_counter()
    machine = describe_machine()
    label = machine_label(machine)
    out = result_path("device_scaling", label, opts.out, opts.quick)
    log(f"device scaling of {ENV_ID} ({opts.worlds} worlds, {opts.steps} steps) on {machine['cpu']}; writing {out}")
    result = {
        "benchmark": "device_scaling",
        "schema_version": SCHEMA_VERSION,
        "env_id": ENV_ID,
        "env_config": ENV_CONFIG,
        **run_stamp(machine, label, opts),
        "worlds": opts.worlds,
        "steps": opts.steps,
        "rounds": opts.rounds,
        "devices_kind": "forced host CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count), one "
        "subprocess per count; they share the machine's cores",
        "rows": [],
    }
    rounds: dict[int, list[dict]] = {d: [] for d in opts.devices}
    for index in range(opts.rounds):  # every device count once per round: slow drifts of the load fall on all
        for num_devices in opts.devices:
            row = run_in_subprocess(num_devices, opts)
            rounds[num_devices].append(row)
            log(
                f"  round {index + 1}, {num_devices} device(s): {row['env_steps_per_s']:,.0f} env steps/s, "
                f"compile {row['compile_s']:.1f} s, run {row['run_s'] * 1e3:.1f} ms"
            )
    result["rows"] = add_ratios([combine_rounds(rounds[d]) for d in opts.devices])
    result["wall_s"] = time.perf_counter() - started
    return write_result(out, result)


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.worker is not None:
        return worker_main(opts)
    result = run(opts)
    return print_result(result, render_table(result))


if __name__ == "__main__":
    raise SystemExit(main())
