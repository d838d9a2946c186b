"""The cost of the PettingZoo and Gymnasium adapters (`vmjax.interop`) against the native jitted JAX step.

    python -m bench.interop_overhead                  # AvatarPremigration-v0 at 1 64 1024 worlds
    python -m bench.interop_overhead --quick          # 1 and 64 worlds, short loops (a smoke run)
    python -m bench.interop_overhead --worlds 1 64 --steps 100 --out /some/where.json

Every number is env steps/s (worlds x steps per second), measured in one process on the same env, with a fixed
random action per world so that only the stepping is timed. Native references:

- native loop: the jitted `VecEnv.step` called once per step from Python (a key split per step, as a user's loop
  does), AOT-compiled first; one `block_until_ready` at the end of the loop (JAX dispatches asynchronously);
- native scan: `--steps` steps inside one jitted `lax.scan` (`bench.common.make_env_rollout`, observations kept
  live), what a JAX trainer gets.

Adapters, each stepping with NumPy actions and returning NumPy (so every step waits for the device):

- vector env: `WorldsVectorEnv.step` (one jitted batched step plus Gymnasium's info layout) at every world count;
- PettingZoo: `ParallelEnv.step` with a dict of per-agent actions (1 world; resets when the episode ends);
- gymnasium.Env: `WorldEnv.step` with the joint Dict action (1 world; resets when the episode ends).

Compile time is reported apart (the native AOT compile; for the adapters, their first reset + step, which trace
and compile). A warm-up loop is excluded; the median of `--repeats` timed loops is reported. Ratios are adapter
steps/s over native loop steps/s at the same world count (1.0 = no overhead), and over the native scan.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import vmjax
from bench.common import (
    compile_aot,
    fill_unset,
    format_rate,
    log,
    make_env_rollout,
    markdown_table,
    median,
    print_result,
    require_positive,
    result_path,
    run_stamp,
    timed_runs,
    write_result,
)
from vmjax.core.machine import describe_machine, machine_label, machine_summary

SCHEMA_VERSION = 1
FULL = {"worlds": [1, 64, 1024], "steps": 200, "repeats": 3}
QUICK = {"worlds": [1, 64], "steps": 30, "repeats": 2}


# ====================================================================== native references
def native_actions(env, params, num_worlds: int, key):
    """A fixed random action per world [num_worlds, ...] (JAX)."""
    return jax.vmap(env.action_space(params).sample)(jax.random.split(key, num_worlds))


def time_native_loop(env, params, num_worlds: int, steps: int, repeats: int) -> dict:
    """Env steps/s of the jitted `VecEnv.step` called once per step from Python, and its compile seconds."""
    vec = vmjax.VecEnv(env, num_worlds)
    _, state = jax.jit(vec.reset)(jax.random.key(0), params)
    actions = native_actions(env, params, num_worlds, jax.random.key(1))
    step, compile_s = compile_aot(jax.jit(vec.step), (jax.random.key(2), state, actions, params))
    split = jax.jit(jax.random.split)

    def loop():
        s, key = state, jax.random.key(3)
        for _ in range(steps):
            key, sub = split(key)
            _, s, *_ = step(sub, s, actions, params)
        return jax.block_until_ready(s)

    runs = _timed_python(loop, repeats)
    return {"compile_s": compile_s, "run_s": median(runs), "env_steps_per_s": num_worlds * steps / median(runs)}


def time_native_scan(env, num_worlds: int, steps: int, repeats: int) -> dict:
    """Env steps/s of `steps` steps in one jitted `lax.scan` (observations kept live), and its compile seconds."""
    reset, run = make_env_rollout(env, num_worlds, steps, observe=True)
    state, actions = reset(jax.random.key(0))
    compiled, compile_s = compile_aot(run, (state, actions, jax.random.key(1)))
    runs, _ = timed_runs(compiled, (state, actions, jax.random.key(1)), repeats)
    return {"compile_s": compile_s, "run_s": median(runs), "env_steps_per_s": num_worlds * steps / median(runs)}


# ====================================================================== adapters
def _timed_python(loop, repeats: int) -> list[float]:
    """One warm-up call of `loop` (excluded), then `repeats` timed calls."""
    loop()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop()
        runs.append(time.perf_counter() - start)
    return runs


def time_vector_env(env, params, num_worlds: int, steps: int, repeats: int) -> dict:
    """Env steps/s of `WorldsVectorEnv.step` with fixed NumPy joint actions; first reset + step seconds apart."""
    from vmjax.interop.gym_env import WorldsVectorEnv

    start = time.perf_counter()
    envs = WorldsVectorEnv(env, num_worlds, params=params)
    envs.reset(seed=0)
    actions = {k: np.asarray(v) for k, v in _joint(env, params, num_worlds).items()}
    envs.step(actions)
    first_s = time.perf_counter() - start

    def loop():
        for _ in range(steps):
            envs.step(actions)

    runs = _timed_python(loop, repeats)
    return {"first_call_s": first_s, "run_s": median(runs), "env_steps_per_s": num_worlds * steps / median(runs)}


def _joint(env, params, num_worlds: int) -> dict:
    """The fixed native actions as the adapters' joint Dict ({"action": ...} for a non-Dict action space)."""
    actions = jax.device_get(native_actions(env, params, num_worlds, jax.random.key(1)))
    return actions if isinstance(actions, dict) else {"action": actions}


def time_parallel_env(env, params, steps: int, repeats: int) -> dict:
    """Env steps/s of `ParallelEnv.step` (1 world, per-agent action dicts, a reset when the episode ends)."""
    from vmjax.interop.parallel_env import ParallelEnv

    start = time.perf_counter()
    par = ParallelEnv(env, params=params)
    par.reset(seed=0)
    joint = {k: v[0] for k, v in _joint(env, params, 1).items()}
    per_agent = {agent: _agent_action(par.action_space(agent), joint, i) for i, agent in enumerate(par.possible_agents)}
    par.step({a: per_agent[a] for a in par.agents})
    first_s = time.perf_counter() - start

    def loop():
        for _ in range(steps):
            if not par.agents:
                par.reset()
            par.step({a: per_agent[a] for a in par.agents})

    runs = _timed_python(loop, repeats)
    return {"first_call_s": first_s, "run_s": median(runs), "env_steps_per_s": steps / median(runs)}


def _agent_action(space, joint: dict, index: int):
    """Agent `index`'s part of a joint action, in its per-agent Gymnasium space."""
    import gymnasium

    if isinstance(space, gymnasium.spaces.Dict):
        return {k: np.asarray(joint[k][index]).reshape(space[k].shape) for k in space}
    return np.asarray(joint["action"][index]).reshape(space.shape)


def time_world_env(env, params, steps: int, repeats: int) -> dict:
    """Env steps/s of `WorldEnv.step` (1 world, the joint Dict action, a reset when the episode ends)."""
    from vmjax.interop.gym_env import WorldEnv

    start = time.perf_counter()
    world = WorldEnv(env, params=params)
    world.reset(seed=0)
    action = {k: v[0] for k, v in _joint(env, params, 1).items()}
    world.step(action)
    first_s = time.perf_counter() - start
    done = [False]

    def loop():
        for _ in range(steps):
            if done[0]:
                world.reset()
            _, _, terminated, truncated, _ = world.step(action)
            done[0] = terminated or truncated

    runs = _timed_python(loop, repeats)
    return {"first_call_s": first_s, "run_s": median(runs), "env_steps_per_s": steps / median(runs)}


# ====================================================================== the benchmark
def measure(env_id: str, worlds: list[int], steps: int, repeats: int) -> list[dict]:
    """One row per world count: the native references, the vector env, and at 1 world the single-world adapters."""
    env = vmjax.make(env_id)
    params = env.default_params
    rows = []
    for num_worlds in worlds:
        row = {"worlds": num_worlds, "agents_per_world": env.num_agents}
        row["native_loop"] = time_native_loop(env, params, num_worlds, steps, repeats)
        row["native_scan"] = time_native_scan(env, num_worlds, steps, repeats)
        row["vector_env"] = time_vector_env(env, params, num_worlds, steps, repeats)
        if num_worlds == 1:
            row["pettingzoo"] = time_parallel_env(env, params, steps, repeats)
            row["gymnasium_env"] = time_world_env(env, params, steps, repeats)
        native, scan = row["native_loop"]["env_steps_per_s"], row["native_scan"]["env_steps_per_s"]
        for name in ("vector_env", "pettingzoo", "gymnasium_env"):
            if name in row:
                row[name]["ratio_vs_native_loop"] = row[name]["env_steps_per_s"] / native
                row[name]["ratio_vs_native_scan"] = row[name]["env_steps_per_s"] / scan
        log(
            f"{num_worlds:>5} worlds  native loop {format_rate(native)}  scan {format_rate(scan)}  vector env "
            f"{format_rate(row['vector_env']['env_steps_per_s'])} ({row['vector_env']['ratio_vs_native_loop']:.2f}x)"
        )
        rows.append(row)
    return rows


def format_ratio(x: float) -> str:
    """A ratio with 3 significant digits ("0.0123x", "82.1x")."""
    return f"{x:.3g}x"


def format_tables(result: dict) -> str:
    header = ["worlds", "adapter", "env steps/s", "vs native loop", "vs native scan", "first call (s)"]
    lines = []
    for row in result["rows"]:
        for name, label in (
            ("native_scan", "native lax.scan"),
            ("native_loop", "native jitted step loop"),
            ("vector_env", "Gymnasium vector env"),
            ("gymnasium_env", "gymnasium.Env (1 world)"),
            ("pettingzoo", "PettingZoo ParallelEnv"),
        ):
            if name not in row:
                continue
            r = row[name]
            first = r.get("first_call_s", r.get("compile_s"))
            lines.append(
                [
                    str(row["worlds"]),
                    label,
                    format_rate(r["env_steps_per_s"]),
                    format_ratio(r["env_steps_per_s"] / row["native_loop"]["env_steps_per_s"]),
                    format_ratio(r["env_steps_per_s"] / row["native_scan"]["env_steps_per_s"]),
                    f"{first:.1f}",
                ]
            )
    note = (
        f"\n{result['env']} (N={result['rows'][0]['agents_per_world']} agents per world), {result['options']['steps']} "
        f"steps per timed loop, median of {result['options']['repeats']}; {result['machine_summary']}. First call: the "
        "native AOT compile, or the adapter's first reset + step (tracing and compiling included; the single-world "
        "gymnasium.Env reuses the programs the PettingZoo adapter of the same env compiled)."
    )
    return markdown_table(header, lines) + "\n" + note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.interop_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="AvatarPremigration-v0", help="env id (its default config)")
    parser.add_argument("--worlds", type=int, nargs="+", help=f"world counts (default {FULL['worlds']})")
    parser.add_argument("--steps", type=int, help=f"steps per timed loop (default {FULL['steps']})")
    parser.add_argument("--repeats", type=int, help=f"timed loops, median reported (default {FULL['repeats']})")
    parser.add_argument("--quick", action="store_true", help=f"small sizes: {QUICK}")
    parser.add_argument("--out", help="JSON path (default bench/results/interop_overhead-<machine>[-quick].json)")
    args = parser.parse_args(argv)
    fill_unset(args, QUICK if args.quick else FULL)
    require_positive(parser, args, ("worlds", "steps", "repeats"))
    start = time.perf_counter()
    machine = describe_machine()
    label = machine_label(machine)
    log(f"interop overhead on {args.env}: {machine_summary(machine)}")
    rows = measure(args.env, args.worlds, args.steps, args.repeats)
    result = {
        "benchmark": "interop_overhead",
        "schema_version": SCHEMA_VERSION,
        **run_stamp(machine, label, args),
        "machine_summary": machine_summary(machine),
        "env": args.env,
        "rows": rows,
        "wall_s": time.perf_counter() - start,
    }
    result = write_result(result_path("interop_overhead", label, args.out, args.quick), result)
    return print_result(result, format_tables(result))


if __name__ == "__main__":
    raise SystemExit(main())
