"""Env throughput of TwinRouting-v0 under a masked uniform random policy, persistence and predictor forecasts.

    python -m bench.twin_routing_throughput            # the full run: 1 64 1024 4096 worlds, both forecasts
    python -m bench.twin_routing_throughput --quick    # tiny sizes: a smoke run (mostly XLA compiles)
    python -m bench.twin_routing_throughput --worlds 64 --forecasts predictor --out /some/where.json

Also part 6 of `python -m bench` (bench/harness.py; `--skip-twin-routing` leaves it out). bench/README.md
describes what is timed. TwinRouting-v0 has no NumPy reference: the numbers are absolute env steps/s (one
world advanced one slot) and agent steps/s (x the vehicles of a world), compile time apart, and the compiled
rollout's memory per world; and, at `--ratio-worlds` (1024), a TwinRouting-v0 world-step as a ratio to an
AvatarPremigration-v0 one (part 1's env), both timed in this process, in alternation, the way part 1 times
vmjax (fixed random actions), with the target ratio <= 5 (issue 19).

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
    compile_aot,
    fill_unset,
    format_bytes,
    format_rate,
    format_times,
    log,
    make_env_rollout,
    measure_policy_rollout,
    median,
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
SCHEMA_VERSION = 2  # 2: the world-step ratio to AvatarPremigration-v0 (world_step_ratio, ratio_target)
REFERENCE_ID = "AvatarPremigration-v0"
REFERENCE_CONFIG = {"num_vehicles": 20, "num_rsus": 10, "workload_forecast": "persistence"}  # part 1's env
RATIO_TARGET = 5.0  # issue 19: a TwinRouting-v0 world-step <= 5x an AvatarPremigration-v0 one at 1024 worlds
RATIO_TARGET_WORLDS = 1024
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
    "ratio_worlds": [RATIO_TARGET_WORLDS],
    "ratio_steps": 240,  # TwinRouting-v0: two episodes of 120 slots; AvatarPremigration-v0: 200, two of 100
    "reference_steps": 200,
}
QUICK = {
    **FULL,
    "worlds": [1, 4],
    "steps": 130,
    "split_steps": 3,
    "repeats": 2,
    "ratio_worlds": [4],
    "ratio_steps": 130,
    "reference_steps": 110,
}


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


def measure_world_step_ratio(
    worlds: int, steps: int = FULL["ratio_steps"], reference_steps: int = FULL["reference_steps"], repeats: int = 5
) -> dict:
    """A TwinRouting-v0 world-step (the default config) over an AvatarPremigration-v0 one (`REFERENCE_CONFIG`,
    part 1's env), at `worlds` worlds, both timed as part 1 times vmjax: a jitted rollout of `steps` VecEnv steps
    from a reset state with a fixed random action per world, auto-resets inside (two episode ends per world
    in the full run), `bench.common.make_env_rollout`; once summing the reward only (`ratio`, part 1's
    convention: the compiler drops the observation) and once summing the observation too (`ratio_observed`:
    what a learner pays). All four AOT-compiled first, one warm-up run each, then `repeats` timed runs of
    each in alternation (they see the same machine load), medians."""
    programs = {}
    for name, env_id, config, n_steps in (
        ("twin_routing", ENV_ID, {}, steps),
        ("reference", REFERENCE_ID, REFERENCE_CONFIG, reference_steps),
    ):
        env = vmjax.make(env_id, **config)
        for observe in (False, True):
            reset, run = make_env_rollout(env, worlds, n_steps, observe=observe)
            state, actions = reset(jax.random.key(0))
            args = (state, actions, jax.random.key(1))
            compiled, compile_s = compile_aot(run, args)
            jax.block_until_ready(compiled(*args))  # warm-up, excluded
            programs[(name, observe)] = {
                "env_id": env_id,
                "compiled": compiled,
                "args": args,
                "steps": n_steps,
                "compile_s": compile_s,
                "runs_s": [],
            }
    for _ in range(repeats):
        for program in programs.values():
            start = time.perf_counter()
            jax.block_until_ready(program["compiled"](*program["args"]))
            program["runs_s"].append(time.perf_counter() - start)
    out = {"worlds": worlds, "repeats": repeats}
    for (name, observe), program in programs.items():
        run_s = median(program["runs_s"])
        out[name + ("_observed" if observe else "")] = {
            "env_id": program["env_id"],
            "steps": program["steps"],
            "compile_s": program["compile_s"],
            "runs_s": program["runs_s"],
            "run_s": run_s,
            "world_step_s": run_s / (program["steps"] * worlds),
        }
    out["ratio"] = out["twin_routing"]["world_step_s"] / out["reference"]["world_step_s"]
    out["ratio_observed"] = out["twin_routing_observed"]["world_step_s"] / out["reference_observed"]["world_step_s"]
    return out


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
    ratio_worlds=(),
    ratio_steps: int = FULL["ratio_steps"],
    reference_steps: int = FULL["reference_steps"],
    **config,
) -> dict:
    """Every forecast at every world count (`config`: TwinRouting-v0 overrides; none for the benchmark), then
    the world-step ratio to AvatarPremigration-v0 at each of `ratio_worlds` (the default config only)."""
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
    ratios = []
    for n in ratio_worlds:
        ratio = measure_world_step_ratio(n, ratio_steps, reference_steps, repeats)
        policy = by_key.get(("persistence", n))
        ratio["policy_rollout_world_step_s"] = None if policy is None else policy["world_step_s"]
        ratio["policy_rollout_ratio"] = (
            None if policy is None else policy["world_step_s"] / ratio["reference"]["world_step_s"]
        )
        ratios.append(ratio)
        log(
            f"  TwinRouting world-step at {n} worlds: {ratio['twin_routing']['world_step_s'] * 1e6:.2f} us, "
            f"{ratio['ratio']:.2f}x {REFERENCE_ID}'s {ratio['reference']['world_step_s'] * 1e6:.2f} us"
        )
    at_target = next((r for r in ratios if r["worlds"] == RATIO_TARGET_WORLDS), None)
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
        "reference": {"env_id": REFERENCE_ID, "config": REFERENCE_CONFIG},
        "world_step_ratio": ratios,
        "ratio_target": {
            "description": f"{ENV_ID} world-step / {REFERENCE_ID} world-step at {RATIO_TARGET_WORLDS} worlds "
            "(fixed random actions, measured in alternation in one process; the larger of the ratios without and "
            "with the observation)",
            "required_max": RATIO_TARGET,
            "worlds": RATIO_TARGET_WORLDS,
            "measured": None if at_target is None else max(at_target["ratio"], at_target["ratio_observed"]),
            "met": None if at_target is None else max(at_target["ratio"], at_target["ratio_observed"]) <= RATIO_TARGET,
        },
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
            "world_step_ratio": f"{ENV_ID} (default config) and {REFERENCE_ID} {REFERENCE_CONFIG} each timed "
            "as part 1 times vmjax: a jitted rollout of VecEnv steps with a fixed random action per world, "
            f"auto-resets inside ({ratio_steps} and {reference_steps} steps), AOT-compiled, one warm-up run, "
            f"then {repeats} timed runs of each in alternation, medians; world_step_s = run_s / (steps x "
            "worlds); ratio = TwinRouting / AvatarPremigration with the reward summed (the compiler drops the "
            "observation, part 1's convention); ratio_observed: the same with every step's observation summed "
            "too (what a learner pays). policy_rollout_ratio: the persistence row's "
            "world-step (masked random policy, observation summed) over the same AvatarPremigration one",
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
    if section.get("world_step_ratio"):
        ref = section["reference"]["env_id"]
        lines += [
            "",
            f"| worlds | {ENV_ID} µs per world-step | {ref} µs per world-step | ratio | "
            "with the observation: µs | ratio | masked-random-policy rollout µs per world-step | its ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in section["world_step_ratio"]:
            policy, policy_ratio = r["policy_rollout_world_step_s"], r["policy_rollout_ratio"]
            policy_us = "–" if policy is None else f"{policy * 1e6:,.2f}"
            lines.append(
                f"| {r['worlds']} | {r['twin_routing']['world_step_s'] * 1e6:,.2f} | "
                f"{r['reference']['world_step_s'] * 1e6:,.2f} | {r['ratio']:,.2f}x | "
                f"{r['twin_routing_observed']['world_step_s'] * 1e6:,.2f} vs "
                f"{r['reference_observed']['world_step_s'] * 1e6:,.2f} | {r['ratio_observed']:,.2f}x | {policy_us} | "
                f"{format_times(policy_ratio)} |"
            )
        target = section["ratio_target"]
        met = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        lines.append(
            f"\nWorld-steps timed as part 1 times vmjax (fixed random actions, auto-reset), the two envs in "
            f"alternation; target <= {target['required_max']:g}x at {target['worlds']} worlds: {met}."
        )
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
        "--ratio-worlds",
        nargs="*",
        help=f"world counts of the world-step ratio to {REFERENCE_ID} ({FULL['ratio_worlds']}; none: skip)",
        **ints,
    )
    parser.add_argument("--ratio-steps", help=f"{ENV_ID} steps per ratio run ({FULL['ratio_steps']})", **ints)
    parser.add_argument(
        "--reference-steps", help=f"{REFERENCE_ID} steps per ratio run ({FULL['reference_steps']})", **ints
    )
    parser.add_argument(
        "--out",
        help="JSON path (default bench/results/twin_routing_throughput-<machine>.json, -quick with --quick)",
    )
    args = parser.parse_args(argv)
    fill_unset(args, QUICK if args.quick else FULL)
    require_positive(
        parser,
        args,
        ("worlds", "steps", "split_steps", "repeats", "long_repeats", "ratio_worlds", "ratio_steps", "reference_steps"),
    )
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
        opts.ratio_worlds,
        opts.ratio_steps,
        opts.reference_steps,
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
