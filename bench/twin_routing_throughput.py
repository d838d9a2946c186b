"""Env throughput of TwinRouting-v0 under a masked uniform random policy, persistence and predictor forecasts.

    python -m bench.twin_routing_throughput            # the full run: 1 64 1024 4096 worlds, both forecasts
    python -m bench.twin_routing_throughput --quick    # tiny sizes: a smoke run (mostly XLA compiles)
    python -m bench.twin_routing_throughput --worlds 64 --forecasts predictor --out /some/where.json

Also part 6 of `python -m bench` (bench/harness.py; `--skip-twin-routing` leaves it out). bench/README.md
describes what is timed. TwinRouting-v0 has no NumPy reference: the numbers are absolute env steps/s (one
world advanced one slot) and agent steps/s (x the vehicles of a world), compile time apart, and the compiled
rollout's memory per world.

Timing rules (ANCHORS.md): AOT-compile first and report compile time apart; `block_until_ready`; a warm-up
run excluded; the median of repeated runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import jax

import vmjax
from baselines.twin_routing import make_random_policy
from bench.common import (
    fill_unset,
    format_bytes,
    format_rate,
    log,
    measure_policy_rollout,
    print_result,
    require_positive,
    result_path,
    run_stamp,
    write_result,
)
from vmjax import predict
from vmjax.core.machine import describe_machine, machine_label

ENV_ID = "TwinRouting-v0"
FORECASTS = ("persistence", "predictor")
SCHEMA_VERSION = 1
POLICY = (
    "masked uniform random: baselines.twin_routing.make_random_policy, env.action_mask computed from the "
    "state every step (as a learner would) and a server drawn uniformly among the selectable ones per vehicle"
)

# Settings of the full run and of --quick; an option given on the command line wins over both.
FULL = {
    "worlds": [1, 64, 1024, 4096],
    "forecasts": list(FORECASTS),
    "steps": 240,  # two episodes of 120 slots per world: two auto-resets inside every timed rollout
    "split_steps": 5,
    "repeats": 5,
    "long_run_s": 10.0,  # a warm-up run longer than this: `long_repeats` timed runs follow, not `repeats`
    "long_repeats": 2,
    "max_rollout_s": 60.0,
}
QUICK = {**FULL, "worlds": [1, 4], "steps": 130, "split_steps": 3, "repeats": 2}


# ====================================================================== env, params, rollout
def make_env_and_params(forecast: str, predictor_seed: int = 0, **config):
    """The default TwinRouting-v0 (`config` overrides) with `workload_forecast=forecast` and its params; for
    "predictor", an untrained `init_workload_predictor(key, WorkloadPredictorConfig())` in the params (only
    its cost matters here, not its forecasts). Returns (env, params, predictor description or None)."""
    env = vmjax.make(ENV_ID, **config, workload_forecast=forecast)
    params = env.default_params
    predictor_info = None
    if forecast == "predictor":
        predictor_config = predict.WorkloadPredictorConfig()
        predictor = predict.init_workload_predictor(jax.random.key(predictor_seed), predictor_config)
        params = params.replace(workload_predictor=predictor)
        predictor_info = {
            "trained": False,
            "init": f"vmjax.predict.init_workload_predictor(jax.random.key({predictor_seed}), "
            "WorkloadPredictorConfig())",
            "config": dataclasses.asdict(predictor_config),
            "num_params": predict.count_params(predictor),
            "series_per_world_step": env.num_servers,
        }
    return env, params, predictor_info


def measure(
    env,
    params,
    forecast: str,
    worlds: int,
    steps: int,
    split_steps: int,
    repeats: int,
    max_rollout_s: float,
    long_run_s: float = FULL["long_run_s"],
    long_repeats: int = FULL["long_repeats"],
) -> dict:
    """One row of the section: `bench.common.measure_policy_rollout` of `env` at `worlds` worlds under the
    masked random policy of TwinRouting-v0, labelled with its `forecast`."""
    row = measure_policy_rollout(
        env,
        params,
        worlds,
        steps,
        split_steps,
        repeats,
        max_rollout_s,
        long_run_s,
        long_repeats,
        policy=make_random_policy(env),
    )
    return {"forecast": forecast, **row}


# ====================================================================== the section
def bench_twin_routing(
    worlds,
    forecasts=FORECASTS,
    steps: int = FULL["steps"],
    split_steps: int = FULL["split_steps"],
    repeats: int = FULL["repeats"],
    max_rollout_s: float = FULL["max_rollout_s"],
    long_run_s: float = FULL["long_run_s"],
    long_repeats: int = FULL["long_repeats"],
    **config,
) -> dict:
    """Every forecast at every world count (`config`: TwinRouting-v0 overrides; none for the benchmark)."""
    rows, predictor_info, env = [], None, None
    for forecast in forecasts:
        env, params, info = make_env_and_params(forecast, **config)
        predictor_info = info or predictor_info
        for n in worlds:
            row = measure(
                env,
                params,
                forecast,
                n,
                steps,
                split_steps,
                repeats,
                max_rollout_s,
                long_run_s,
                long_repeats,
            )
            rows.append(row)
            log(
                f"  TwinRouting {forecast:>11} {n:>6} worlds: {row['env_steps_per_s']:>11,.0f} env steps/s "
                f"({row['method']}), {row['agent_steps_per_s']:>12,.0f} agent steps/s; "
                f"compile {row['compile_s']:.1f} s"
            )
    by_key = {(r["forecast"], r["worlds"]): r for r in rows}
    predictor_cost = [
        {
            "worlds": n,
            "persistence_env_steps_per_s": by_key[("persistence", n)]["env_steps_per_s"],
            "predictor_env_steps_per_s": by_key[("predictor", n)]["env_steps_per_s"],
            "slowdown": by_key[("persistence", n)]["env_steps_per_s"] / by_key[("predictor", n)]["env_steps_per_s"],
        }
        for n in worlds
        if ("persistence", n) in by_key and ("predictor", n) in by_key
    ]
    config_out = dataclasses.asdict(env.config)
    config_out.pop("workload_forecast")
    return {
        "env_id": ENV_ID,
        "env_config": config_out,
        "num_vehicles": env.num_agents,
        "num_rsus": env.num_rsus,
        "num_uavs": env.num_uavs,
        "num_servers": env.num_servers,
        "max_steps": env.config.max_steps,
        "forecasts": list(forecasts),
        "policy": POLICY,
        "predictor": predictor_info,
        "rows": rows,
        "predictor_cost": predictor_cost,
        "method": {
            "timed": "a jitted loop of VecEnv steps from a reset state (lax.fori_loop, the step count an "
            "argument: one executable per world count and forecast), the policy vmapped over worlds with its "
            "mask from the state every step, auto-resets inside; the loop sums reward, observation and "
            "episode ends, so the observation is computed every step as a learner needs it. AOT-compiled "
            "first (compile_s, reported apart; the initial batched reset compiled and timed apart too); one "
            f"warm-up run excluded, median of {repeats} runs ({long_repeats} where the warm-up run took "
            f"over {long_run_s:g} s) with block_until_ready",
            "rollout": f"{steps} steps from the reset state (every world ends its {env.config.max_steps}-slot "
            f"episodes inside and auto-resets); env steps = worlds x {steps}; reported when its estimated "
            f"run time is at most {max_rollout_s:g} s",
            "split": f"{split_steps} steps without an episode end less a call of 0 steps (the plain step) and "
            f"the initial batched reset timed apart, combined as ({env.config.max_steps} x step + reset) / "
            f"{env.config.max_steps}; reported (method 'split') where the rollout is skipped",
            "env_steps_per_s": "worlds / seconds per step of all worlds; agent steps/s = env steps/s x vehicles",
            "memory": "memory_analysis() of the compiled loop (arguments incl. the shared params and the "
            "predictor's weights + outputs + temporaries - aliased) / worlds; null where not reported",
        },
    }


# ====================================================================== output
def render_table(section: dict) -> str:
    """The section as markdown tables: every forecast and world count, and the predictor's slowdown."""
    title = (
        f"### TwinRouting-v0 env throughput (V={section['num_vehicles']} vehicles, {section['num_rsus']} RSUs, "
        f"{section['num_uavs']} UAVs, satellite; masked random policy; episodes of {section['max_steps']} "
        "slots with auto-reset)\n"
    )
    header = [
        "forecast",
        "worlds",
        "env steps/s",
        "agent steps/s",
        "split estimate",
        "ns per world-step",
        "compile s",
        "memory per world",
    ]
    lines = [title, "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in section["rows"]:
        mark = "" if r["method"] == "rollout" else " †"
        lines.append(
            f"| {r['forecast']} | {r['worlds']} | {format_rate(r['env_steps_per_s'])}{mark} | "
            f"{format_rate(r['agent_steps_per_s'])} | {format_rate(r['split']['env_steps_per_s'])} | "
            f"{r['world_step_s'] * 1e9:,.0f} | {r['compile_s']:.1f} | {format_bytes(r['peak_bytes_per_world'])} |"
        )
    lines.append(
        "\nenv steps/s: the timed rollout with its auto-resets; † where that rollout would run longer than "
        "max_rollout_s, the split estimate instead (plain steps and the batched reset timed apart, "
        "(T x step + reset) / T), which every row also reports."
    )
    if section["predictor_cost"]:
        lines += ["", "| worlds | persistence / predictor env steps/s |", "|---|---|"]
        lines += [f"| {c['worlds']} | {c['slowdown']:,.1f}x |" for c in section["predictor_cost"]]
    return "\n".join(lines)


# ====================================================================== entry point
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.twin_routing_throughput",
        description=__doc__.splitlines()[0],
        epilog="Unset options take the full run's values (or --quick's).",
    )
    ints = {"type": int, "default": None, "metavar": "N"}
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (and the test)")
    parser.add_argument("--worlds", nargs="+", help=f"world counts {FULL['worlds']}", **ints)
    parser.add_argument(
        "--forecasts",
        nargs="+",
        choices=FORECASTS,
        default=None,
        help="forecasts (both)",
    )
    parser.add_argument(
        "--steps",
        help=f"steps per timed rollout, auto-resets inside ({FULL['steps']})",
        **ints,
    )
    parser.add_argument(
        "--split-steps",
        help=f"steps of the split measurement ({FULL['split_steps']})",
        **ints,
    )
    parser.add_argument("--repeats", help=f"timed repeats, median reported ({FULL['repeats']})", **ints)
    parser.add_argument(
        "--long-run-s",
        type=float,
        default=None,
        metavar="S",
        help=f"a warm-up run longer than this: --long-repeats timed runs ({FULL['long_run_s']:g})",
    )
    parser.add_argument(
        "--long-repeats",
        help=f"timed repeats of runs longer than --long-run-s ({FULL['long_repeats']})",
        **ints,
    )
    parser.add_argument(
        "--max-rollout-s",
        type=float,
        default=None,
        metavar="S",
        help=f"longest estimated rollout run; longer ones report the split method ({FULL['max_rollout_s']:g})",
    )
    parser.add_argument(
        "--out",
        help="JSON path (default bench/results/twin_routing_throughput-<machine>.json, -quick with --quick)",
    )
    args = parser.parse_args(argv)
    fill_unset(args, QUICK if args.quick else FULL)
    require_positive(parser, args, ("worlds", "steps", "split_steps", "repeats", "long_repeats"))
    for name in ("max_rollout_s", "long_run_s"):
        if not math.isfinite(getattr(args, name)) or getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} needs a finite number >= 0")
    return args


def run(opts) -> dict:
    """Measure what `opts` asks for; returns the result dictionary (also written to `opts.out`)."""
    started = time.perf_counter()
    machine = describe_machine()
    label = machine_label(machine)
    out = result_path("twin_routing_throughput", label, opts.out, opts.quick)
    log(f"TwinRouting-v0 env throughput on {machine['device']} ({machine['backend']}); writing {out}")
    section = bench_twin_routing(
        opts.worlds,
        opts.forecasts,
        opts.steps,
        opts.split_steps,
        opts.repeats,
        opts.max_rollout_s,
        opts.long_run_s,
        opts.long_repeats,
    )
    result = {
        "benchmark": "twin_routing_throughput",
        "schema_version": SCHEMA_VERSION,
        **run_stamp(machine, label, opts),
        **section,
        "wall_s": time.perf_counter() - started,
    }
    return write_result(out, result)


def main(argv=None) -> int:
    result = run(parse_args(argv))
    return print_result(result, render_table(result))


if __name__ == "__main__":
    raise SystemExit(main())
