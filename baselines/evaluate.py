"""Evaluate the heuristic policies of AvatarPremigration-v0 on the same held-out episodes and print a table.

    python -m baselines --episodes 100 --seed 0 [--json results.json]

Every policy runs in the same worlds (same reset keys, trajectories and tasks): one jitted `lax.scan`
rollout per policy, vmapped over the episodes.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines.avatar_premigration import POLICIES
from vmjax.core.io import atomic_write_json

EPISODE_METRICS = {
    "latency_s": "total_latency_s",
    "uplink_s": "uplink_s",
    "processing_s": "processing_s",
    "migration_s": "migration_s",
    "cloud_s": "cloud_s",
    "downlink_s": "downlink_s",
    "premigrated": "premigrated",
    "cloud_share": "cloud_share",
    "queue_fill": "queue_fill",
}
FIRST_SEED = 10_000  # the first held-out seed of `vmjax evaluate`


def write_results(path, data: dict) -> None:
    """`data` with the machine, written atomically (the studies' and experiments' JSON)."""
    from vmjax.core import io
    from vmjax.core.machine import machine_summary

    data["machine"] = machine_summary()
    io.atomic_write_json(path, data)


SATURATED_FILL = 0.9  # an RSU queue at or above this share of L^max counts as saturated


def _summarize(reward, info):
    out = {name: jnp.mean(info[key].astype(jnp.float32), axis=-1) for name, key in EPISODE_METRICS.items()}
    out["saturated_rsus"] = jnp.mean((info["queue_fill"] >= SATURATED_FILL).astype(jnp.float32), axis=-1)
    out["workload_violations"] = info["workload_violations"].astype(jnp.float32)
    return out


def policy_episodes(env, policies, num_episodes: int):
    """(key, policy_index, params) -> per-episode metrics [num_episodes] of `policies[index]`, not jitted: the
    policies sit behind one `lax.switch`, so the env and rollout compile once for all of them; each call runs
    exactly one episode per world. `make_policy_evaluator` jits it, the sweeps vmap it over `params`."""

    def run(key, index, params):
        policy = lambda k, state, p: jax.lax.switch(index, policies, k, state, p)
        per_step = vmjax.core.rollout(env, policy, key, params, num_episodes, env.config.max_steps, _summarize)
        episodes = {name: jnp.mean(v, axis=0) for name, v in per_step.items()}
        episodes["workload_violations"] = jnp.sum(per_step["workload_violations"], axis=0)
        return episodes

    return run


def make_policy_evaluator(env, policies, params, num_episodes: int):
    """One jitted function (key, policy_index) -> per-episode metrics [num_episodes] of `policies[index]` in
    `params` (`policy_episodes`)."""
    run = policy_episodes(env, policies, num_episodes)
    return jax.jit(lambda key, index: run(key, index, params))


def summarize_episodes(episodes: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean, standard deviation and 95% confidence half-width over episodes of each metric."""
    out = {}
    for name, values in episodes.items():
        values = np.asarray(values, dtype=np.float64)
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        out[name] = float(values.mean())
        out[f"{name}_std"] = std
        out[f"{name}_ci95"] = 1.96 * std / math.sqrt(values.size)
    return out


def evaluate_heuristics(env, params, key, num_episodes: int, names=None) -> dict[str, dict]:
    """Summaries for every heuristic (or `names`), all on the episodes drawn from `key`."""
    names = list(names or POLICIES)
    evaluator = make_policy_evaluator(env, [POLICIES[name](env) for name in names], params, num_episodes)
    results = {}
    for index, name in enumerate(names):
        start = time.perf_counter()
        episodes = jax.block_until_ready(evaluator(key, index))
        results[name] = summarize_episodes({k: np.asarray(v) for k, v in episodes.items()})
        results[name]["wall_s"] = time.perf_counter() - start  # the first one includes compilation
    return results


def format_table(results: dict[str, dict], num_episodes: int) -> str:
    header = (
        f"{'policy':<18} {'latency s (mean ± std)':>24} {'95% CI':>8} {'uplink':>7} {'process':>8} "
        f"{'migrate':>8} {'cloud':>7} {'downlink':>8} {'pre-mig':>8} {'cloud %':>8} {'viol/ep':>8}"
    )
    lines = [header, "-" * len(header)]
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["latency_s"]):
        lines.append(
            f"{name:<18} {r['latency_s']:>14.3f} ± {r['latency_s_std']:<7.3f} {r['latency_s_ci95']:>8.3f} "
            f"{r['uplink_s']:>7.3f} {r['processing_s']:>8.3f} {r['migration_s']:>8.3f} {r['cloud_s']:>7.3f} "
            f"{r['downlink_s']:>8.3f} {100 * r['premigrated']:>7.1f}% {100 * r['cloud_share']:>7.1f}% "
            f"{r['workload_violations']:>8.2f}"
        )
    lines.append(
        f"mean latency per vehicle and slot (s) over {num_episodes} held-out episodes; std and 95% CI over "
        "episodes; columns after the CI are mean seconds per latency term, share of tasks pre-migrated, share "
        "of task data sent to the cloud, RSU queue clips per episode"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baselines", description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="held-out episodes per policy (default 100, §7.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out episode set")
    parser.add_argument("--num-vehicles", type=int, default=10, help="N agents (spec default 10)")
    parser.add_argument("--num-rsus", type=int, default=6, help="M RSUs (spec default 6)")
    parser.add_argument("--max-steps", type=int, default=100, help="slots per episode (spec default 100)")
    parser.add_argument("--policies", nargs="*", choices=sorted(POLICIES), help="subset of policies")
    parser.add_argument("--json", help="also write the results as JSON to this path (atomically)")
    args = parser.parse_args(argv)
    if args.episodes < 2:
        parser.error("--episodes must be >= 2 (the table reports a spread over episodes)")

    env = vmjax.make(
        "AvatarPremigration-v0", num_vehicles=args.num_vehicles, num_rsus=args.num_rsus, max_steps=args.max_steps
    )
    params = env.default_params
    start = time.perf_counter()
    results = evaluate_heuristics(env, params, jax.random.key(args.seed), args.episodes, args.policies)
    wall = time.perf_counter() - start
    print(f"AvatarPremigration-v0: N={args.num_vehicles} vehicles, M={args.num_rsus} RSUs, {args.max_steps} slots")
    print(format_table(results, args.episodes))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.devices()[0].platform}"
    print(f"wall time {wall:.1f} s including compilation ({machine})")
    if args.json:
        atomic_write_json(args.json, {"config": vars(args), "results": results, "wall_s": wall})
    return 0
