"""What several bench scripts share, defined once: timing, compiled memory, env rollouts, results and formatting.

Timing rules (ANCHORS.md): AOT-compile first and report compile time apart; `block_until_ready`; a warm-up
run excluded; the median of repeated runs.

The dependency goes one way: this module <- the scenario scripts (env_throughput, train_throughput,
twin_routing_throughput, twin_split_throughput, the sanity runs) <- harness <- `python -m bench`. Nothing here
imports another bench script.
"""

from __future__ import annotations

import datetime
import math
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

import vmjax
from baselines import cross_reality_privacy as crp_baselines
from vmjax.core.io import atomic_write_json
from vmjax.core.rollout import rollout
from vmjax.core.sharding import shard_worlds

RESULTS_DIR = Path(__file__).parent / "results"


# ====================================================================== logging, results
def log(message: str) -> None:
    print(message, flush=True)


def median(values) -> float:
    return float(statistics.median(values))


def fill_unset(args, preset: dict) -> None:
    """Every option of `preset` left unset (None) on the command line takes the preset's value."""
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def require_positive(parser, args, names) -> None:
    """`parser.error` unless every option in `names` (an integer or a list of them; an empty list passes) is >= 1."""
    for name in names:
        value = getattr(args, name)
        if min(value if isinstance(value, list) else [value], default=1) < 1:
            parser.error(f"--{name.replace('_', '-')} needs positive integers")


def result_path(stem: str, label: str, out: str | None = None, quick: bool = False) -> Path:
    """`out` if given, else bench/results/<stem>-<machine label>[-quick].json."""
    return Path(out) if out else RESULTS_DIR / f"{stem}-{label}{'-quick' if quick else ''}.json"


def run_stamp(machine: dict, label: str, opts) -> dict:
    """The entries every result file records about its run: when, where, and with which options."""
    return {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "machine_label": label,
        "quick": bool(opts.quick),
        "options": dict(vars(opts)),
    }


def write_result(out: Path, result: dict) -> dict:
    """Write `result` to `out` (atomically) and return it with the path under "paths" (not written)."""
    atomic_write_json(out, result)
    result["paths"] = {"json": str(out)}
    return result


def print_result(result: dict, tables: str) -> int:
    """The end of a script's run: its tables, then where the JSON went; exit status 0."""
    print()
    print(tables)
    print(f"\nwrote {result['paths']['json']} ({result['wall_s']:.0f} s)")
    return 0


# ====================================================================== formatting
def format_rate(x) -> str:
    """A steps/s number: millions with two decimals from 1e6 on, else an integer; "–" for None."""
    if x is None:
        return "–"
    return f"{x / 1e6:,.2f} M" if x >= 1e6 else f"{x:,.0f}"


def format_times(x) -> str:
    """A ratio as "12.3x"; "–" for None."""
    return "–" if x is None else f"{x:,.1f}x"


def format_bytes(x) -> str:
    """Bytes in KiB below 1 MiB, else in MiB; "–" for None."""
    if x is None:
        return "–"
    return f"{x / 1024:,.1f} KiB" if x < 1024**2 else f"{x / 1024**2:,.2f} MiB"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ====================================================================== timing
def compile_aot(fn, args) -> tuple[Any, float]:
    """(compiled executable, compile seconds) of a jitted function of `args`."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - start


def timed_runs(
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


def compile_and_time(fn, args, repeats: int):
    """(compiled executable, compile seconds, [run seconds] of `repeats` timed runs) of a jitted function of
    `args`: AOT-compiled first, one warm-up run excluded, each run waited for with `block_until_ready`."""
    compiled, compile_s = compile_aot(fn, args)
    runs, _ = timed_runs(compiled, args, repeats)
    return compiled, compile_s, runs


def timed_state_runs(compiled, state, repeats: int) -> tuple[list[float], Any]:
    """A compiled `state -> (state, metrics)` (a training iteration or chunk): one warm-up call (excluded),
    then `repeats` timed calls, each continuing from the last state and waited for with `block_until_ready`;
    returns the call seconds and the last state."""
    state, _ = jax.block_until_ready(compiled(state))  # warm-up, excluded
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, _ = jax.block_until_ready(compiled(state))
        runs.append(time.perf_counter() - start)
    return runs, state


def time_trainer(trainer, chunk: int, repeats: int, env_steps_per_iteration: int) -> dict:
    """Seconds per training iteration of any learner's `Trainer` (`init`, `run(state, n)`): a jitted chunk
    of `chunk` iterations, AOT-compiled (compile time apart), one warm-up chunk excluded, median over
    `repeats` chunks, each waited for with `block_until_ready`."""
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    compiled, compile_s = compile_aot(jax.jit(trainer.run, static_argnums=1), (state, chunk))
    runs, state = timed_state_runs(compiled, state, repeats)
    del state, compiled
    iteration_s = median(runs) / chunk
    steps = env_steps_per_iteration
    return {
        "compile_s": compile_s,
        "chunk_iterations": chunk,
        "repeats": repeats,
        "chunk_runs_s": runs,
        "iteration_s": iteration_s,
        "env_steps_per_iteration": steps,
        "env_steps_per_s": steps / iteration_s,
        "agent_steps_per_s": steps * trainer.env.num_agents / iteration_s,
    }


# ====================================================================== memory
def compiled_memory(compiled, num_worlds: int) -> dict | None:
    """Bytes of a compiled XLA executable from `memory_analysis()`: arguments + outputs + temporaries
    (- aliased), and that total per world; None where the backend does not report it."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001  (backends without the analysis raise various errors)
        return None
    if stats is None:
        return None
    parts = {
        name: int(getattr(stats, f"{name}_size_in_bytes", 0) or 0) for name in ("argument", "output", "temp", "alias")
    }
    total = parts["argument"] + parts["output"] + parts["temp"] - parts["alias"]
    return {**{f"{k}_bytes": v for k, v in parts.items()}, "total_bytes": total, "per_world_bytes": total / num_worlds}


# ====================================================================== env rollouts
def make_env_rollout(env, num_worlds: int, num_steps: int, observe: bool = False, mesh=None):
    """(reset, run): jitted `key -> (state, actions)` and `(state, actions, key) -> summed reward` that runs
    `num_steps` steps in `num_worlds` worlds with a fixed random action per world. With `observe` the sum also
    takes every step's observation, so the compiler cannot drop it (what a learner pays); without, only the
    reward's share of the step runs (part 1's convention). With a `mesh` (`vmjax.core.sharding.world_mesh`) the
    worlds, their state and their actions are split over its devices (`VecEnv`'s `mesh`); the summed reward is
    then a sum across devices."""
    vec = vmjax.VecEnv(env, num_worlds, mesh=mesh)
    params = env.default_params

    def reset(key):
        k_reset, k_action = jax.random.split(key)
        _, state = vec.reset(k_reset, params)
        return state, shard_worlds(jax.vmap(env.action_space(params).sample)(vec.world_keys(k_action)), mesh)

    def run(state, actions, key):
        def body(carry, k):
            state, total = carry
            obs, state, reward, *_ = vec.step(k, state, actions, params)
            total = total + jnp.sum(reward)
            if observe:
                total = total + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(obs))
            return (state, total), None

        (_, total), _ = jax.lax.scan(body, (state, jnp.float32(0.0)), jax.random.split(key, num_steps))
        return total

    return jax.jit(reset), jax.jit(run)


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
            obs, state, reward, terminated, truncated, _ = vec.step(k_step, state, actions, params)
            done = jnp.logical_or(terminated, truncated).reshape(num_worlds, -1).any(axis=1)
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


def _totals(out) -> dict:
    return {
        "reward_sum": float(out["reward_sum"]),
        "obs_sum": float(out["obs_sum"]),
        "episode_ends": int(out["episode_ends"]),
        "steps_run": int(out["steps"]),
    }


def measure_policy_rollout(
    env,
    params,
    worlds: int,
    steps: int,
    split_steps: int,
    repeats: int,
    max_rollout_s: float,
    long_run_s: float = 10.0,
    long_repeats: int = 2,
    *,
    policy,
) -> dict:
    """Env steps/s of `env` at `worlds` worlds under `policy` (per world, `policy(key, state, params)`), the
    measurement of the TwinRouting-v0 and TwinSplit-v0 env benchmarks.

    1. `reset` and `run` (`make_policy_rollout`) are AOT-compiled (compile seconds reported apart); the
       initial batched reset is timed (one warm-up, median of `repeats`). Every timed part runs
       `long_repeats` times instead where its warm-up run took longer than `long_run_s`.
    2. "split": `split_steps` steps from the reset state, none of which ends an episode (checked), one
       warm-up and `repeats` timed runs, less the cost of a call that runs 0 steps (dispatch and output,
       ~1 ms on a CPU: it would swamp a few short steps): the plain step; one steady-state step costs
       (max_steps x step + reset) / max_steps (every world resets once per episode of max_steps slots).
    3. "rollout" (the reported number when it runs): `steps` steps from the reset state with every
       auto-reset inside, one warm-up and `repeats` timed runs; env steps = worlds x steps. Skipped (the
       split number is reported, method "split") when its run is estimated from the split step to take
       longer than `max_rollout_s`.
    """
    max_steps = env.config.max_steps
    if not 0 < split_steps < max_steps:
        raise ValueError(f"split_steps must be in 1..{max_steps - 1} (no episode end), got {split_steps}")
    reset, run = make_policy_rollout(env, worlds, policy)
    key = jax.random.key(0)
    reset_exe, reset_compile_s = compile_aot(reset, (key, params))
    timing = (repeats, long_run_s, long_repeats)
    reset_runs, state = timed_runs(reset_exe, (key, params), *timing)
    run_key = jax.random.key(1)
    run_exe, compile_s = compile_aot(run, (state, run_key, params, jnp.int32(steps)))
    memory = compiled_memory(run_exe, worlds)

    call_runs, _ = timed_runs(run_exe, (state, run_key, params, jnp.int32(0)), *timing)
    split_runs, out = timed_runs(run_exe, (state, run_key, params, jnp.int32(split_steps)), *timing)
    split_totals = _totals(out)
    if split_totals["episode_ends"] or split_totals["steps_run"] != split_steps:
        raise RuntimeError(f"the split run must run {split_steps} steps without an episode end: {split_totals}")
    reset_s, call_s = median(reset_runs), median(call_runs)
    subtracted = median(split_runs) > call_s  # else noise: keep the call in the step
    plain_step_s = (median(split_runs) - call_s * subtracted) / split_steps
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
    rollout_row: dict[str, Any] = {"steps": steps, "estimated_run_s": estimated_s}
    if estimated_s <= max_rollout_s:
        runs, out = timed_runs(run_exe, (state, run_key, params, jnp.int32(steps)), *timing)
        totals = _totals(out)
        if totals["steps_run"] != steps:
            raise RuntimeError(f"the rollout ran {totals['steps_run']} steps, not {steps}")
        run_s = median(runs)
        rollout_row.update(
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
        rollout_row["skipped"] = (
            f"estimated {estimated_s:.0f} s per run (from the split step) > max_rollout_s {max_rollout_s:g} s"
        )
        method, step_s = "split", split_step_s
    del state, run_exe, reset_exe
    env_steps_per_s = worlds / step_s
    return {
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
        "rollout": rollout_row,
        "split": split,
        "memory": memory,
        "peak_bytes_per_world": None if memory is None else memory["per_world_bytes"],
    }


# ====================================================================== CrossRealityPrivacy-v0 sanity runs
SANITY_EVALUATED = ("utility", "reward_llm", "entropy_bits", "latency_s", "qos_loss")


def train_and_report(env, trainer, iterations: int, shown, per_iteration: str):
    """Compile and run `iterations` of `trainer` from key 0 (compile time apart), print the `shown` metrics at a
    few iterations and evaluate the initial and trained policies and the stateless heuristics on the same
    16 x 50 held-out slots (key 123). Shared by the LHDPPO and HGDM sanity runs."""
    params = trainer.env_params
    initial = jax.jit(trainer.init)(jax.random.key(0))
    run = jax.jit(trainer.run, static_argnums=1)
    start = time.time()
    compiled = run.lower(initial, iterations).compile()
    print(f"compile {time.time() - start:.1f}s", flush=True)
    start = time.time()
    final, metrics = compiled(initial)
    jax.block_until_ready(metrics)
    wall = time.time() - start
    print(
        f"{iterations} iterations in {wall:.1f}s ({wall / iterations:.2f}s per iteration, {per_iteration} each)",
        flush=True,
    )
    k = iterations
    for i in sorted({0, 1, k // 4, k // 2, 3 * k // 4, k - 1}):
        print(i, " ".join(f"{name}={float(metrics[name][i]):.4g}" for name in shown), flush=True)

    def evaluate(policy, name):
        out = jax.jit(lambda key: rollout(env, policy, key, params, 16, 50))(jax.random.key(123))
        print(
            f"EVAL {name:28s} " + " ".join(f"{m}={float(jnp.mean(out[m])):.4f}" for m in SANITY_EVALUATED), flush=True
        )

    evaluate(trainer.make_eval_policy(initial), "initial (deterministic)")
    evaluate(trainer.make_eval_policy(initial, deterministic=False), "initial (sampled)")
    evaluate(trainer.make_eval_policy(final), "trained (deterministic)")
    evaluate(trainer.make_eval_policy(final, deterministic=False), "trained (sampled)")
    evaluate(crp_baselines.make_geo_i_policy(env), "Geo-I (stateless greedy)")
    evaluate(crp_baselines.make_no_perturbation_policy(env), "no perturbation + greedy")
