"""Gradient-based network design and the gradient planner (issue 24; `vmjax.design`, docs/design.md).

    python -m experiments.design search [--problem NAME ...] [--seeds 3]   # gradient vs ES vs random, equal env steps
    python -m experiments.design planner                                   # the AvatarPremigration gradient planner
    python -m experiments.design radius_planner                            # CrossRealityPrivacy-v1's radius planner
    python -m experiments.design table                                     # all three as markdown

`search` runs every (problem, method) for the seeds and writes docs/results/design/search.json atomically after
each (problem, method); a finished one is skipped, so a killed run resumes at the next. `planner` does the same
per (base heuristic) in planner.json, `radius_planner` per planner setting in radius_planner.json (its screen of
the gradient's steps and learning rate on training worlds PRNGKey(0) first). Optimisation worlds come from PRNGKey(seed), held-out worlds from
PRNGKey(HELD_OUT_SEED) (the same for every method and seed). Budgets are in `PROBLEMS` / `SEARCH`, scaled to a
2-core CPU shared with other jobs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

import vmjax
from baselines import avatar_premigration as avatar_heuristics
from baselines import cross_reality_privacy as privacy_heuristics
from baselines import twin_routing as routing_heuristics
from baselines import twin_split as split_heuristics
from vmjax import design
from vmjax.core.io import atomic_write_json
from vmjax.core.machine import machine_summary
from vmjax.core.rollout import rollout

OUT = Path("docs/results/design")
HELD_OUT_SEED = 10_000
MACHINE_NOTE = "shared with other jobs: wall times are indicative"


def machine() -> str:
    """The machine this process runs on (`vmjax.core.machine.machine_summary`), for a result file's header."""
    return f"{machine_summary()} ({MACHINE_NOTE})"


def avatar_problem():
    """AvatarPremigration-v1 on the grid layout (dense core, sparse outskirts), greedy oracle, 6 x 20 GHz."""
    env = vmjax.make("AvatarPremigration-v1", layout="grid", max_steps=20)
    return design.avatar_gpu_split(env, avatar_heuristics.make_greedy_policy(env), num_envs=32, num_steps=20)


def routing_problem():
    """TwinRouting-v1, default city (76 RSUs, 10 UAVs on 4-RSU loops), Greedy without exploration, 10 slots."""
    env = vmjax.make("TwinRouting-v1", max_steps=10)
    policy = routing_heuristics.make_greedy_policy(env, explore_prob=0.0)
    return design.twin_routing_uav_anchors(env, policy, num_envs=8, num_steps=10)


def split_problem():
    """TwinSplit-v1 with the QoE reward, the balanced greedy's RSU choices, alpha designed, 20 slots."""
    env = vmjax.make("TwinSplit-v1", max_steps=20, reward="qoe")
    policy = design.int_targets(split_heuristics.make_greedy_balanced(env))
    return design.twin_split_alpha(env, policy, num_envs=32, num_steps=20)


PROBLEMS = {
    "avatar_gpu_split": (avatar_problem, design.SearchConfig(iterations=40, learning_rate=0.1, sigma=0.3)),
    "twin_split_alpha": (split_problem, design.SearchConfig(iterations=30, learning_rate=0.1, sigma=0.3)),
    "twin_routing_uav_anchors": (routing_problem, design.SearchConfig(iterations=30, learning_rate=0.1, sigma=0.3)),
}
HELD_OUT_ENVS = {"avatar_gpu_split": 128, "twin_split_alpha": 128, "twin_routing_uav_anchors": 32}


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def header(command: str) -> dict:
    return {"machine": machine(), "python": platform.python_version(), "command": command}


def search(names, seeds: int) -> None:
    path = OUT / "search.json"
    results = load(path) or {**header(f"python -m experiments.design search --seeds {seeds}"), "problems": {}}
    for name in names:
        make, config = PROBLEMS[name]
        problem = None
        for method in design.METHODS:
            if method in results["problems"].get(name, {}).get("methods", {}):
                print(f"{name} {method}: done, skipped", flush=True)
                continue
            problem = problem or make()
            start = time.perf_counter()
            runs = design.optimise(
                problem,
                method,
                config,
                [jax.random.PRNGKey(s) for s in range(seeds)],
                jax.random.PRNGKey(HELD_OUT_SEED),
                HELD_OUT_ENVS[name],
            )
            entry = results["problems"].setdefault(name, {})
            entry.update(
                {
                    "problem": problem.name,
                    "budget": {
                        "iterations": config.iterations,
                        "env_steps_per_iteration": problem.env_steps_per_evaluation,
                        "worlds_per_iteration": problem.num_envs,
                        "slots": problem.num_steps,
                        "population": config.population,
                        "learning_rate": config.learning_rate,
                        "es_sigma": config.sigma,
                        "held_out_worlds": HELD_OUT_ENVS[name],
                        "seeds": seeds,
                    },
                    "reference_design": problem.describe(problem.init_raw),
                }
            )
            entry.setdefault("methods", {})[method] = {"runs": runs, "total_s": time.perf_counter() - start}
            atomic_write_json(path, results)
            finals = [r["curve"][-1]["held_out"] for r in runs]
            print(f"{name} {method}: held-out {np.mean(finals):.4f} +- {np.std(finals):.4f}", flush=True)


PLANNER_BASES = {
    "greedy_oracle": avatar_heuristics.make_greedy_policy,
    "least_loaded": avatar_heuristics.make_least_loaded_policy,
}
PLANNER = avatar_heuristics.GRADIENT_PLANNER
PLANNER_EPISODES = {"worlds": 32, "slots": 20, "seeds": 3}


def planner() -> None:
    path = OUT / "planner.json"
    results = load(path) or {
        **header("python -m experiments.design planner"),
        "env": "AvatarPremigration-v1 (default corridor, 10 vehicles, 40 background), max_steps=20",
        "planner": dataclasses.asdict(PLANNER),
        "episodes": PLANNER_EPISODES,
        "bases": {},
    }
    env = vmjax.make("AvatarPremigration-v1", max_steps=PLANNER_EPISODES["slots"])
    params = env.default_params
    for name, make in PLANNER_BASES.items():
        if name in results["bases"]:
            print(f"planner {name}: done, skipped", flush=True)
            continue
        base = make(env)
        policies = {"base": base, "planner": design.make_planner_policy(env, base, PLANNER)}
        entry = {}
        for label, policy in policies.items():
            run = jax.jit(
                lambda k, policy=policy: rollout(
                    env, policy, k, params, PLANNER_EPISODES["worlds"], PLANNER_EPISODES["slots"]
                )["reward"]
            )
            keys = [jax.random.PRNGKey(HELD_OUT_SEED + s) for s in range(PLANNER_EPISODES["seeds"])]
            start = time.perf_counter()
            jax.block_until_ready(run(keys[0]))
            compile_s = time.perf_counter() - start
            latency, wall = [], 0.0
            for k in keys:
                start = time.perf_counter()
                reward = jax.block_until_ready(run(k))
                wall += time.perf_counter() - start
                latency.append(float(-np.mean(np.asarray(reward))))
            decisions = PLANNER_EPISODES["seeds"] * PLANNER_EPISODES["worlds"] * PLANNER_EPISODES["slots"]
            entry[label] = {
                "mean_latency_s_per_seed": latency,
                "mean_latency_s": float(np.mean(latency)),
                "wall_s": wall,
                "ms_per_decision": 1e3 * wall / decisions,
                "first_call_s": compile_s,
            }
            print(
                f"planner {name} {label}: {np.mean(latency):.4f} s, {entry[label]['ms_per_decision']:.3f} ms",
                flush=True,
            )
        entry["gain_s"] = entry["base"]["mean_latency_s"] - entry["planner"]["mean_latency_s"]
        entry["gain_pct"] = 100.0 * entry["gain_s"] / entry["base"]["mean_latency_s"]
        results["bases"][name] = entry
        atomic_write_json(path, results)


RADIUS_PLANNERS = {
    "gradient (10 steps)": privacy_heuristics.GRADIENT_RADIUS_PLANNER,
    "gradient (10 steps), horizon 2": privacy_heuristics.RadiusPlannerConfig(steps=10, learning_rate=0.3, horizon=2),
    "gradient (20 steps), radius and angle": privacy_heuristics.RadiusPlannerConfig(
        steps=20, learning_rate=0.1, optimise_angle=True
    ),
    "grid 11": privacy_heuristics.RadiusPlannerConfig(grid=11, steps=0),
    "grid 33": privacy_heuristics.RadiusPlannerConfig(grid=33, steps=0),
    "grid 11 + gradient (5 steps)": privacy_heuristics.RadiusPlannerConfig(grid=11, steps=5, learning_rate=0.03),
    "grid 21 + gradient (5 steps)": privacy_heuristics.RADIUS_PLANNER,
}
"""The radius planners compared (learning rates from the screen); "grid 33", "gradient (10 steps)" and "grid 11 +
gradient (5 steps)" cost about the same model rollouts per decision (33, 32, 28)."""
RADIUS_SCREEN = {"steps": (5, 10, 20), "learning_rate": (0.1, 0.3, 1.0), "worlds": 8, "seed": 0}
RADIUS_EPISODES = {
    "worlds": 32,
    "seeds": 3,
}  # the held-out worlds of docs/results/cross_reality_privacy_v1/comparison.json
RADIUS_METRICS = ("utility", "entropy_bits", "qos_loss", "latency_s", "perturbation_m")


def privacy_rollouts(env, policy, keys, worlds: int) -> dict:
    """`privacy_heuristics.episode_metrics` of `policy` on each key: per-key means, wall time after compiling."""
    run = jax.jit(lambda k: privacy_heuristics.episode_metrics(env, policy, env.default_params, k, worlds))
    start = time.perf_counter()
    jax.block_until_ready(run(keys[0]))
    compile_s = time.perf_counter() - start
    per_key, wall = {name: [] for name in RADIUS_METRICS}, 0.0
    for k in keys:
        start = time.perf_counter()
        out = jax.block_until_ready(run(k))
        wall += time.perf_counter() - start
        for name in RADIUS_METRICS:
            per_key[name].append(float(np.mean(np.asarray(out[name]))))
    decisions = len(keys) * worlds * env.config.max_steps
    return {
        **{name: float(np.mean(v)) for name, v in per_key.items()},
        "utility_per_seed": per_key["utility"],
        "ms_per_decision": 1e3 * wall / decisions,
        "first_call_s": compile_s,
    }


def radius_planner() -> None:
    path = OUT / "radius_planner.json"
    results = load(path) or {
        **header("python -m experiments.design radius_planner"),
        "env": "CrossRealityPrivacy-v1 (defaults), base: the best fixed radius (0.4 r_max, greedy server)",
        "episodes": RADIUS_EPISODES,
        "screen": {"setting": {k: list(v) if isinstance(v, tuple) else v for k, v in RADIUS_SCREEN.items()}},
        "planners": {},
    }
    env = vmjax.make("CrossRealityPrivacy-v1")
    screen_keys = [jax.random.PRNGKey(RADIUS_SCREEN["seed"])]
    for steps in RADIUS_SCREEN["steps"]:
        for lr in RADIUS_SCREEN["learning_rate"]:
            name = f"steps {steps}, learning rate {lr}"
            if name in results["screen"]:
                continue
            config = privacy_heuristics.RadiusPlannerConfig(steps=steps, learning_rate=lr)
            policy = privacy_heuristics.make_radius_planner_stateful(env, config)
            out = privacy_rollouts(env, policy, screen_keys, RADIUS_SCREEN["worlds"])
            results["screen"][name] = out["utility"]
            atomic_write_json(path, results)
            print(f"screen {name}: utility {out['utility']:.4f}", flush=True)
    held_out = [jax.random.fold_in(jax.random.PRNGKey(HELD_OUT_SEED), s) for s in range(RADIUS_EPISODES["seeds"])]
    base = privacy_heuristics.make_fixed_radius_stateful(env, privacy_heuristics.BEST_FIXED_RADIUS_FRACTION_V1)
    policies = {"base (r = 0.4 r_max)": (base, None)}
    policies |= {
        name: (privacy_heuristics.make_radius_planner_stateful(env, c), c) for name, c in RADIUS_PLANNERS.items()
    }
    for name, (policy, config) in policies.items():
        if name in results["planners"]:
            print(f"radius planner {name}: done, skipped", flush=True)
            continue
        entry = privacy_rollouts(env, policy, held_out, RADIUS_EPISODES["worlds"])
        if config is not None:
            entry |= {"config": dataclasses.asdict(config), "model_rollouts": config.model_rollouts_per_decision}
        results["planners"][name] = entry
        atomic_write_json(path, results)
        print(f"radius planner {name}: utility {entry['utility']:.4f}, {entry['ms_per_decision']:.3f} ms", flush=True)


def table() -> str:
    lines = []
    runs = load(OUT / "search.json").get("problems", {})
    if runs:
        lines += [
            "| problem | env steps per run | reference | gradient | ES | random | wall s (grad / ES / random) |",
            "|---|---|---|---|---|---|---|",
        ]
    for name, entry in runs.items():
        methods = entry.get("methods", {})
        cells, walls = [], []
        reference = next(iter(methods.values()))["runs"][0]["curve"][0]["held_out"]
        for method in design.METHODS:
            if method not in methods:
                cells.append("-")
                walls.append("-")
                continue
            finals = [r["curve"][-1]["held_out"] for r in methods[method]["runs"]]
            cells.append(f"{np.mean(finals):.4f} ± {np.std(finals):.4f}")
            walls.append(f"{np.mean([r['curve'][-1]['wall_s'] for r in methods[method]['runs']]):.1f}")
        budget = entry["budget"]
        steps = budget["iterations"] * budget["env_steps_per_iteration"]
        lines.append(f"| {name} | {steps} | {reference:.4f} | " + " | ".join(cells) + f" | {' / '.join(walls)} |")
    plan = load(OUT / "planner.json").get("bases", {})
    if plan:
        lines += ["", "| base | base latency s | planner latency s | gain | ms per decision (base / planner) |"]
        lines.append("|---|---|---|---|---|")
        for name, e in plan.items():
            lines.append(
                f"| {name} | {e['base']['mean_latency_s']:.3f} | {e['planner']['mean_latency_s']:.3f} | "
                f"{e['gain_s']:.3f} s ({e['gain_pct']:.1f}%) | {e['base']['ms_per_decision']:.3f} / "
                f"{e['planner']['ms_per_decision']:.3f} |"
            )
    radius = load(OUT / "radius_planner.json").get("planners", {})
    if radius:
        lines += [
            "",
            "| radius planner | model rollouts per decision | utility (17) | ± seeds | entropy bit | "
            "QoS loss | ms per decision |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, e in radius.items():
            lines.append(
                f"| {name} | {e.get('model_rollouts', 0)} | {e['utility']:.3f} | {np.std(e['utility_per_seed']):.3f} | "
                f"{e['entropy_bits']:.3f} | {e['qos_loss']:.3f} | {e['ms_per_decision']:.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.design", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", help="gradient vs ES vs random search at equal env steps")
    s.add_argument("--problem", nargs="*", choices=sorted(PROBLEMS), default=list(PROBLEMS))
    s.add_argument("--seeds", type=int, default=3)
    sub.add_parser("planner", help="the AvatarPremigration gradient planner against its base heuristics")
    sub.add_parser("radius_planner", help="CrossRealityPrivacy-v1's radius planners against the best fixed radius")
    sub.add_parser("table", help="the results as markdown")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.command == "search":
        search(args.problem, args.seeds)
    elif args.command == "planner":
        planner()
    elif args.command == "radius_planner":
        radius_planner()
    else:
        print(table())


if __name__ == "__main__":
    main()
