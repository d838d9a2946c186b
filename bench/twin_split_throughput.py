"""Env and MSRL training throughput of TwinSplit-v0 (spec 004).

    python -m bench.twin_split_throughput            # env: 1 64 1024 4096 worlds; MSRL: 32 and 1024 worlds
    python -m bench.twin_split_throughput --quick    # tiny sizes: a smoke run (mostly XLA compiles)
    python -m bench.twin_split_throughput --worlds 64 --train-worlds 32 --modes split --out /some/where.json

TwinSplit-v0 has no NumPy or PyTorch reference: the numbers are absolute. bench/README.md describes what is
timed. The env part reuses the TwinRouting-v0 measurement (`bench.common.measure_policy_rollout`: a
jitted VecEnv loop with auto-resets, compile time apart, warm-up excluded, median of repeats) under a
uniform random policy over the RSUs; the training part times jitted chunks of MSRL iterations
(`bench.common.time_trainer`, the same timing as the Hybrid-MAPPO training benchmark).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax

import vmjax
from bench.common import (
    fill_unset,
    format_rate,
    log,
    measure_policy_rollout,
    print_result,
    require_positive,
    result_path,
    run_stamp,
    time_trainer,
    write_result,
)
from vmjax.agents import msrl
from vmjax.core.io import atomic_write_json
from vmjax.core.machine import describe_machine, machine_label

ENV_ID = "TwinSplit-v0"
MODES = ("split", "local", "local_edge")
SCHEMA_VERSION = 1
POLICY = "uniform random RSU per vehicle per slot (the pre-migration target), alpha = EnvParams.alpha"

FULL = {
    "worlds": [1, 64, 1024, 4096],
    "steps": 200,  # two episodes of 100 slots per world: two auto-resets inside every timed rollout
    "split_steps": 5,
    "repeats": 5,
    "train_worlds": [32, 1024],
    "modes": list(MODES),
    "train_chunk": 2,
    "train_repeats": 3,
}
QUICK = {
    **FULL,
    "worlds": [1, 4],
    "steps": 110,
    "split_steps": 3,
    "repeats": 2,
    "train_worlds": [2],
    "modes": ["split"],
    "train_chunk": 1,
    "train_repeats": 1,
}


def make_uniform_policy(env):
    """policy(key, state, params) -> int32 [V]: a uniformly random RSU for every vehicle."""
    num_actions = env.action_space().n

    def policy(key, state, params):
        return jax.random.randint(key, (env.num_agents,), 0, num_actions)

    return policy


def bench_env(opts, env, params) -> list[dict]:
    rows = []
    for n in opts.worlds:
        row = measure_policy_rollout(
            env,
            params,
            n,
            opts.steps,
            opts.split_steps,
            opts.repeats,
            max_rollout_s=60.0,
            policy=make_uniform_policy(env),
        )
        rows.append(row)
        log(
            f"  TwinSplit env {n:>7} worlds: {row['env_steps_per_s']:>13,.0f} env steps/s ({row['method']}), "
            f"compile {row['compile_s']:.1f} s"
        )
    return rows


def bench_train(opts, env, params, on_row=lambda rows: None) -> list[dict]:
    """Seconds per MSRL iteration (rollout of `num_steps` slots in every world, TD(lambda) targets, the PPO
    epochs) for every mode and world count; an out-of-memory or other failure is recorded, not fatal."""
    rows = []
    for mode in opts.modes:
        for n in opts.train_worlds:
            config = dataclasses.replace(msrl.MsrlConfig(), mode=mode, num_envs=n)
            try:
                trainer = msrl.make_trainer(env, config, params)
                row = time_trainer(trainer, opts.train_chunk, opts.train_repeats, config.num_envs * config.num_steps)
            except Exception as error:  # noqa: BLE001  (recorded in the JSON: e.g. out of memory)
                rows.append({"mode": mode, "worlds": n, "error": f"{type(error).__name__}: {error}"[:500]})
                log(f"  MSRL {mode} {n} worlds failed: {rows[-1]['error']}")
                continue
            rows.append({"mode": mode, "worlds": n, "num_steps": config.num_steps, **row})
            on_row(rows)
            log(
                f"  MSRL {mode:>10} {n:>6} worlds: {row['iteration_s']:.3f} s/iteration, "
                f"{row['env_steps_per_s']:>11,.0f} env steps/s, compile {row['compile_s']:.1f} s"
            )
    return rows


def render_table(result: dict) -> str:
    lines = [
        f"### TwinSplit-v0 env throughput (V={result['num_vehicles']}, E={result['num_rsus']}; {POLICY})\n",
        "| worlds | env steps/s | agent steps/s | ns per world-step | compile s |",
        "|---|---|---|---|---|",
    ]
    for r in result["env"]:
        lines.append(
            f"| {r['worlds']} | {format_rate(r['env_steps_per_s'])} | "
            f"{format_rate(r['agent_steps_per_s'])} | {r['world_step_s'] * 1e9:,.0f} | {r['compile_s']:.1f} |"
        )
    if result["train"]:
        lines += [
            "",
            "### MSRL training throughput (MsrlConfig defaults; mode and worlds varied)\n",
            "| mode | worlds | s / iteration | env steps/s | agent steps/s | compile s |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["train"]:
            if "error" in r:
                lines.append(f"| {r['mode']} | {r['worlds']} | failed: {r['error'][:60]} | | | |")
                continue
            lines.append(
                f"| {r['mode']} | {r['worlds']} | {r['iteration_s']:.3f} | "
                f"{format_rate(r['env_steps_per_s'])} | {format_rate(r['agent_steps_per_s'])} | "
                f"{r['compile_s']:.1f} |"
            )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.twin_split_throughput",
        description=__doc__.splitlines()[0],
        epilog="Unset options take the full run's values (or --quick's).",
    )
    ints = {"type": int, "default": None, "metavar": "N"}
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (and the test)")
    parser.add_argument("--worlds", nargs="+", help=f"env world counts {FULL['worlds']}", **ints)
    parser.add_argument("--steps", help=f"steps per timed env rollout ({FULL['steps']})", **ints)
    parser.add_argument("--split-steps", help=f"steps of the split measurement ({FULL['split_steps']})", **ints)
    parser.add_argument("--repeats", help=f"timed env repeats ({FULL['repeats']})", **ints)
    parser.add_argument(
        "--train-worlds", nargs="*", help=f"MSRL num_envs values {FULL['train_worlds']} (none: skip training)", **ints
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=None, help="MSRL modes (all three)")
    parser.add_argument("--train-chunk", help=f"iterations per timed chunk ({FULL['train_chunk']})", **ints)
    parser.add_argument("--train-repeats", help=f"timed chunks ({FULL['train_repeats']})", **ints)
    parser.add_argument("--out", help="JSON path (default bench/results/twin_split_throughput-<machine>.json)")
    args = parser.parse_args(argv)
    fill_unset(args, QUICK if args.quick else FULL)
    require_positive(
        parser, args, ("worlds", "steps", "split_steps", "repeats", "train_worlds", "train_chunk", "train_repeats")
    )
    return args


def run(opts) -> dict:
    started = time.perf_counter()
    machine = describe_machine()
    label = machine_label(machine)
    out = result_path("twin_split_throughput", label, opts.out, opts.quick)
    log(f"TwinSplit-v0 throughput on {machine['device']} ({machine['backend']}); writing {out}")
    env = vmjax.make(ENV_ID)
    params = env.default_params
    result = {
        "benchmark": "twin_split_throughput",
        "schema_version": SCHEMA_VERSION,
        **run_stamp(machine, label, opts),
        "env_id": ENV_ID,
        "env_config": dataclasses.asdict(env.config),
        "num_vehicles": env.num_agents,
        "num_rsus": env.config.num_rsus,
        "policy": POLICY,
        "trajectories": "synthetic road-grid fallback (EnvParams.trace_bank unset)",
    }
    result["env"] = bench_env(opts, env, params)
    atomic_write_json(out, result)  # the env part survives a failure of the training part
    save_rows = lambda rows: atomic_write_json(out, {**result, "train": rows})  # each row survives a time limit
    result["train"] = bench_train(opts, env, params, save_rows) if opts.train_worlds else []
    result["wall_s"] = time.perf_counter() - started
    return write_result(out, result)


def main(argv=None) -> int:
    result = run(parse_args(argv))
    return print_result(result, render_table(result))


if __name__ == "__main__":
    raise SystemExit(main())
