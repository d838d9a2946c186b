"""Environment throughput of AvatarPremigration-v0: env steps/s and agent steps/s at several world counts.

    python -m bench.env_throughput [--worlds 1 64 1024 4096] [--vehicles 20] [--rsus 10]

Method (ANCHORS.md): AOT-compile first and report compile time apart; then time the compiled call with
`block_until_ready`, several repeats, median. The timed rollout is `--steps` steps of a `VecEnv` from a
reset state, auto-resets included (episodes of 100 slots end inside it, as in steady-state training), with
a fixed random action per world so that only the environment is timed. The initial batched reset is timed
on its own. The reference in the same process is the same env stepped with 1 world.
"""

from __future__ import annotations

import argparse

import jax

import vmjax
from bench.common import compile_and_time, make_env_rollout, median, result_path
from vmjax.core.io import atomic_write_json
from vmjax.core.machine import describe_machine, machine_label


def time_compiled(fn, args, repeats: int) -> tuple[float, float]:
    """(compile seconds, median run seconds) of a jitted function of `args`."""
    _, compile_s, runs = compile_and_time(fn, args, repeats)
    return compile_s, median(runs)


def measure(worlds, num_vehicles, num_rsus, num_steps, repeats):
    env = vmjax.make("AvatarPremigration-v0", num_vehicles=num_vehicles, num_rsus=num_rsus)
    rows = []
    for num_worlds in worlds:
        reset, run = make_env_rollout(env, num_worlds, num_steps)
        key = jax.random.key(0)
        reset_compile_s, reset_s = time_compiled(reset, (key,), repeats)
        state, actions = reset(key)
        compile_s, run_s = time_compiled(run, (state, actions, jax.random.key(1)), repeats)
        env_steps = num_worlds * num_steps / run_s
        rows.append(
            {
                "worlds": num_worlds,
                "compile_s": compile_s,
                "run_s": run_s,
                "env_steps_per_s": env_steps,
                "agent_steps_per_s": env_steps * num_vehicles,
                "reset_compile_s": reset_compile_s,
                "reset_s": reset_s,
            }
        )
        print(
            f"{num_worlds:>7} worlds  {env_steps:>14,.0f} env steps/s  {env_steps * num_vehicles:>16,.0f} agent steps/s"
            f"  compile {compile_s:5.1f} s  run {run_s * 1e3:8.2f} ms  (initial reset {reset_s * 1e3:7.2f} ms)",
            flush=True,
        )
    base = rows[0]["env_steps_per_s"]
    for row in rows:
        row["ratio_vs_first"] = row["env_steps_per_s"] / base
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.env_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 64, 1024, 4096], help="world counts")
    parser.add_argument("--vehicles", type=int, default=20, help="N vehicles (agents) per world")
    parser.add_argument("--rsus", type=int, default=10, help="M RSUs per world")
    parser.add_argument("--steps", type=int, default=200, help="steps per timed rollout (episodes are 100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--out", help="JSON path (default bench/results/env_throughput-<machine>.json)")
    args = parser.parse_args(argv)
    machine = describe_machine()
    print(f"AvatarPremigration-v0 env throughput, N={args.vehicles}, M={args.rsus}; {machine}")
    rows = measure(args.worlds, args.vehicles, args.rsus, args.steps, args.repeats)
    print(f"ratio of the largest to the first world count: {rows[-1]['ratio_vs_first']:.1f}x")
    out = result_path("env_throughput", machine_label(machine), args.out)
    atomic_write_json(
        out,
        {
            "benchmark": "env_throughput",
            "env": "AvatarPremigration-v0",
            "config": vars(args),
            "machine": machine,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
