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
import datetime
import math
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

import vmjax
from baselines.twin_routing import make_random_policy
from vmjax.core.machine import describe_machine, machine_label
from vmjax.core.io import atomic_write_json

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


def _median(values) -> float:
    return float(statistics.median(values))


def _log(message: str) -> None:
    print(message, flush=True)


# ====================================================================== env, params, rollout
def make_env_and_params(forecast: str, predictor_seed: int = 0, **config):
    """The default TwinRouting-v0 (`config` overrides) with `workload_forecast=forecast` and its params; for
    "predictor", an untrained `init_workload_predictor(key, WorkloadPredictorConfig())` in the params (only
    its cost matters here, not its forecasts). Returns (env, params, predictor description or None)."""
    env = vmjax.make(ENV_ID, **config, workload_forecast=forecast)
    params = env.default_params
    predictor_info = None
    if forecast == "predictor":
        from vmjax import predict

        predictor_config = predict.WorkloadPredictorConfig()
        predictor = predict.init_workload_predictor(
            jax.random.key(predictor_seed), predictor_config
        )
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


def make_policy_rollout(env, num_worlds: int, policy):
    """(reset, run), both jitted: `reset(key, params) -> state` of `num_worlds` worlds, and
    `run(state, key, params, num_steps) -> totals` that steps every world `num_steps` times (a VecEnv with
    auto-reset, the policy vmapped over worlds as `vmjax.core.rollout` does) in one loop. `num_steps` is an
    argument (a `lax.fori_loop` bound), so one executable runs any number of steps. The totals (reward and
    observation sums, episode ends, steps run) keep the observation and every step's work live."""
    vec = vmjax.VecEnv(env, num_worlds)
    act = jax.vmap(policy, in_axes=(0, 0, None))

    def reset(key, params):
        _, state = vec.reset(key, params)
        return state

    def run(state, key, params, num_steps):
        def body(i, carry):
            state, totals = carry
            k_step, k_act = jax.random.split(jax.random.fold_in(key, i))
            actions = act(jax.random.split(k_act, num_worlds), state, params)
            obs, state, reward, terminated, truncated, _ = vec.step(
                k_step, state, actions, params
            )
            done = (
                jnp.logical_or(terminated, truncated)
                .reshape(num_worlds, -1)
                .any(axis=1)
            )
            obs_sum = sum(jnp.sum(leaf) for leaf in jax.tree.leaves(obs))
            totals = {
                "reward_sum": totals["reward_sum"] + jnp.sum(reward),
                "obs_sum": totals["obs_sum"] + obs_sum,
                "episode_ends": totals["episode_ends"] + jnp.sum(done, dtype=jnp.int32),
                "steps": totals["steps"] + 1,
            }
            return state, totals

        zero = {
            "reward_sum": jnp.float32(0.0),
            "obs_sum": jnp.float32(0.0),
            "episode_ends": jnp.int32(0),
            "steps": jnp.int32(0),
        }
        return jax.lax.fori_loop(0, num_steps, body, (state, zero))[1]

    return jax.jit(reset), jax.jit(run)


def _compile(fn, args) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - start


def _timed_runs(
    compiled, args, repeats: int, long_run_s: float = math.inf, long_repeats: int = 1
) -> tuple[list[float], Any]:
    """One warm-up run (excluded), then `repeats` timed runs (min(repeats, `long_repeats`) when the warm-up
    took longer than `long_run_s`), each waited for with `block_until_ready`; returns the run seconds and
    the last run's output."""
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    if time.perf_counter() - start > long_run_s:
        repeats = min(repeats, long_repeats)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - start)
    return runs, out


def _totals(out) -> dict:
    return {
        "reward_sum": float(out["reward_sum"]),
        "obs_sum": float(out["obs_sum"]),
        "episode_ends": int(out["episode_ends"]),
        "steps_run": int(out["steps"]),
    }


# ====================================================================== one measurement
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
    policy=None,
) -> dict:
    """Env steps/s of `env` at `worlds` worlds under `policy` (per world, `policy(key, state, params)`;
    default the masked random policy of TwinRouting-v0).

    1. `reset` and `run` are AOT-compiled (compile seconds reported apart); the initial batched reset is
       timed (one warm-up, median of `repeats`). Every timed part runs `long_repeats` times instead where
       its warm-up run took longer than `long_run_s`.
    2. "split": `split_steps` steps from the reset state, none of which ends an episode (checked), one
       warm-up and `repeats` timed runs, less the cost of a call that runs 0 steps (dispatch and output,
       ~1 ms on a CPU: it would swamp a few short steps): the plain step; one steady-state step costs
       (max_steps x step + reset) / max_steps (every world resets once per episode of max_steps slots).
    3. "rollout" (the reported number when it runs): `steps` steps from the reset state with every
       auto-reset inside, one warm-up and `repeats` timed runs; env steps = worlds x steps. Skipped (the
       split number is reported, method "split") when its run is estimated from the split step to take
       longer than `max_rollout_s`.
    """
    from bench.harness import compiled_memory

    max_steps = env.config.max_steps
    if not 0 < split_steps < max_steps:
        raise ValueError(
            f"split_steps must be in 1..{max_steps - 1} (no episode end), got {split_steps}"
        )
    policy = make_random_policy(env) if policy is None else policy
    reset, run = make_policy_rollout(env, worlds, policy)
    key = jax.random.key(0)
    reset_exe, reset_compile_s = _compile(reset, (key, params))
    timing = (repeats, long_run_s, long_repeats)
    reset_runs, state = _timed_runs(reset_exe, (key, params), *timing)
    run_key = jax.random.key(1)
    run_exe, compile_s = _compile(run, (state, run_key, params, jnp.int32(steps)))
    memory = compiled_memory(run_exe, worlds)

    call_runs, _ = _timed_runs(run_exe, (state, run_key, params, jnp.int32(0)), *timing)
    split_runs, out = _timed_runs(
        run_exe, (state, run_key, params, jnp.int32(split_steps)), *timing
    )
    split_totals = _totals(out)
    if split_totals["episode_ends"] or split_totals["steps_run"] != split_steps:
        raise RuntimeError(
            f"the split run must run {split_steps} steps without an episode end: {split_totals}"
        )
    reset_s, call_s = _median(reset_runs), _median(call_runs)
    subtracted = _median(split_runs) > call_s  # else noise: keep the call in the step
    plain_step_s = (_median(split_runs) - call_s * subtracted) / split_steps
    split_step_s = (max_steps * plain_step_s + reset_s) / max_steps
    split = {
        "steps": split_steps,
        "runs_s": split_runs,
        "call_s": call_s,
        "call_runs_s": call_runs,
        "call_subtracted": bool(subtracted),
        "plain_step_s": plain_step_s,
        "reset_s": reset_s,
        "step_s": split_step_s,
        "env_steps_per_s": worlds / split_step_s,
        **split_totals,
    }

    estimated_s = split_step_s * steps
    rollout: dict[str, Any] = {"steps": steps, "estimated_run_s": estimated_s}
    if estimated_s <= max_rollout_s:
        runs, out = _timed_runs(
            run_exe, (state, run_key, params, jnp.int32(steps)), *timing
        )
        totals = _totals(out)
        if totals["steps_run"] != steps:
            raise RuntimeError(
                f"the rollout ran {totals['steps_run']} steps, not {steps}"
            )
        run_s = _median(runs)
        rollout.update(
            env_steps=worlds * steps,
            agent_steps=worlds * steps * env.num_agents,
            runs_s=runs,
            run_s=run_s,
            step_s=run_s / steps,
            env_steps_per_s=worlds * steps / run_s,
            **totals,
        )
        method, step_s = "rollout", run_s / steps
    else:
        rollout["skipped"] = (
            f"estimated {estimated_s:.0f} s per run (from the split step) > max_rollout_s {max_rollout_s:g} s"
        )
        method, step_s = "split", split_step_s
    del state, run_exe, reset_exe
    env_steps_per_s = worlds / step_s
    return {
        "forecast": forecast,
        "worlds": worlds,
        "num_vehicles": env.num_agents,
        "method": method,
        "env_steps_per_s": env_steps_per_s,
        "agent_steps_per_s": env_steps_per_s * env.num_agents,
        "step_s": step_s,
        "world_step_s": step_s / worlds,
        "compile_s": compile_s,
        "reset_compile_s": reset_compile_s,
        "initial_reset_s": reset_s,
        "reset_runs_s": reset_runs,
        "repeats": repeats,
        "long_run_s": long_run_s,
        "long_repeats": long_repeats,
        "rollout": rollout,
        "split": split,
        "memory": memory,
        "peak_bytes_per_world": None if memory is None else memory["per_world_bytes"],
    }


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
            _log(
                f"  TwinRouting {forecast:>11} {n:>6} worlds: {row['env_steps_per_s']:>11,.0f} env steps/s "
                f"({row['method']}), {row['agent_steps_per_s']:>12,.0f} agent steps/s; "
                f"compile {row['compile_s']:.1f} s"
            )
    by_key = {(r["forecast"], r["worlds"]): r for r in rows}
    predictor_cost = [
        {
            "worlds": n,
            "persistence_env_steps_per_s": by_key[("persistence", n)][
                "env_steps_per_s"
            ],
            "predictor_env_steps_per_s": by_key[("predictor", n)]["env_steps_per_s"],
            "slowdown": by_key[("persistence", n)]["env_steps_per_s"]
            / by_key[("predictor", n)]["env_steps_per_s"],
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
def _rate(x) -> str:
    if x is None:
        return "–"
    return f"{x / 1e6:,.2f} M" if x >= 1e6 else f"{x:,.0f}"


def _bytes(x) -> str:
    if x is None:
        return "–"
    return f"{x / 1024:,.1f} KiB" if x < 1024**2 else f"{x / 1024**2:,.2f} MiB"


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
            f"| {r['forecast']} | {r['worlds']} | {_rate(r['env_steps_per_s'])}{mark} | "
            f"{_rate(r['agent_steps_per_s'])} | {_rate(r['split']['env_steps_per_s'])} | "
            f"{r['world_step_s'] * 1e9:,.0f} | {r['compile_s']:.1f} | {_bytes(r['peak_bytes_per_world'])} |"
        )
    lines.append(
        "\nenv steps/s: the timed rollout with its auto-resets; † where that rollout would run longer than "
        "max_rollout_s, the split estimate instead (plain steps and the batched reset timed apart, "
        "(T x step + reset) / T), which every row also reports."
    )
    if section["predictor_cost"]:
        lines += ["", "| worlds | persistence / predictor env steps/s |", "|---|---|"]
        lines += [
            f"| {c['worlds']} | {c['slowdown']:,.1f}x |"
            for c in section["predictor_cost"]
        ]
    return "\n".join(lines)


# ====================================================================== entry point
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.twin_routing_throughput",
        description=__doc__.splitlines()[0],
        epilog="Unset options take the full run's values (or --quick's).",
    )
    ints = {"type": int, "default": None, "metavar": "N"}
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes for a smoke run (and the test)"
    )
    parser.add_argument(
        "--worlds", nargs="+", help=f"world counts {FULL['worlds']}", **ints
    )
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
    parser.add_argument(
        "--repeats", help=f"timed repeats, median reported ({FULL['repeats']})", **ints
    )
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
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in (
        "worlds",
        "steps",
        "split_steps",
        "repeats",
        "long_repeats",
    ):
        value = getattr(args, name)
        if min(value if isinstance(value, list) else [value]) < 1:
            parser.error(f"--{name.replace('_', '-')} needs positive integers")
    for name in ("max_rollout_s", "long_run_s"):
        if not math.isfinite(getattr(args, name)) or getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} needs a finite number >= 0")
    return args


def run(opts) -> dict:
    """Measure what `opts` asks for; returns the result dictionary (also written to `opts.out`)."""
    started = time.perf_counter()
    machine = describe_machine()
    label = machine_label(machine)
    suffix = "-quick" if opts.quick else ""
    out = (
        Path(opts.out)
        if opts.out
        else Path(__file__).parent
        / "results"
        / f"twin_routing_throughput-{label}{suffix}.json"
    )
    _log(
        f"TwinRouting-v0 env throughput on {machine['device']} ({machine['backend']}); writing {out}"
    )
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
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "machine_label": label,
        "quick": bool(opts.quick),
        "options": dict(vars(opts)),
        **section,
        "wall_s": time.perf_counter() - started,
    }
    atomic_write_json(out, result)
    result["paths"] = {"json": str(out)}
    return result


def main(argv=None) -> int:
    result = run(parse_args(argv))
    print()
    print(render_table(result))
    print(f"\nwrote {result['paths']['json']} ({result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
