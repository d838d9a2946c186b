"""A scenario's heuristics on SUMO trace banks against its built-in mobility (issue 23).

    vmjax traces sumo --net grid --vehicles 50 --hours 1 --out grid800.npz
    python -m experiments.sumo_heuristics --env TwinSplit-v0 --bank grid800.npz --episodes 100 --seeds 3 \\
        --out docs/results/sumo_twin_split_v0_heuristics.json

For each mobility (the env's built-in synthetic road-grid mobility, `trace_bank=""`, then each `--bank`, given to
the env as `vmjax.make(env_id, trace_bank=bank)`, i.e. `--env.trace_bank`), every heuristic of the scenario's
evaluation (`vmjax evaluate`'s policies and evaluator) runs on the same `--seeds` sets of `--episodes` held-out
worlds (PRNGKey(first_seed + s)). Reported per policy and mobility: the mean of each of the scenario's seed
metrics over all episodes and the standard deviation of the per-seed means. The JSON (written atomically) holds
the table, the machine, the jax version, the banks' summaries and the command.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

import vmjax
from vmjax import scenarios
from vmjax.core import io
from vmjax.core.machine import describe_machine
from vmjax.mobility import read_trace_bank


def evaluate_heuristics(env_id: str, bank: str, episodes: int, seeds: int, first_seed: int) -> dict:
    """{policy: {metric: mean, metric_seed_std: std of the seed means}} for the scenario's heuristics on the env
    with `trace_bank=bank` ("" = the built-in mobility)."""
    env = vmjax.make(env_id, trace_bank=bank)
    params = env.default_params
    spec = scenarios.get(env_id).evaluation
    names = list(spec.policies)
    evaluator = spec.make_policy_evaluator(env, [spec.policies[n](env) for n in names], params, episodes)
    out = {}
    for index, name in enumerate(names):
        per_seed = []
        for s in range(seeds):
            result = jax.device_get(evaluator(jax.random.PRNGKey(first_seed + s), index))
            per_seed.append({m: float(np.mean(result[m])) for m in spec.seed_metrics})
        out[name] = {}
        for metric in spec.seed_metrics:
            means = np.array([r[metric] for r in per_seed])
            out[name][metric] = float(means.mean())
            out[name][f"{metric}_seed_std"] = float(means.std(ddof=1)) if seeds > 1 else 0.0
    return out


def markdown(results: dict[str, dict], metric: str) -> str:
    """One row per policy (ordered by the first mobility's `metric`), one `metric ± seed std` column per mobility."""
    sources = list(results)
    first = results[sources[0]]
    lines = ["| policy | " + " | ".join(sources) + " |", "|---" * (len(sources) + 1) + "|"]
    for name in sorted(first, key=lambda n: first[n][metric]):
        cells = [f"{results[s][name][metric]:.4f} ± {results[s][name][f'{metric}_seed_std']:.4f}" for s in sources]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--env", default="TwinSplit-v0", help="scenario id")
    parser.add_argument("--bank", action="append", default=[], help="a trace bank (.npz); repeat for several")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results, banks = {}, {}
    for bank in ["", *args.bank]:
        label = "built-in mobility" if not bank else f"SUMO {Path(bank).stem}"
        t0 = time.perf_counter()
        results[label] = evaluate_heuristics(args.env, bank, args.episodes, args.seeds, args.first_seed)
        print(f"{label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if bank:
            meta = read_trace_bank(bank).metadata
            banks[label] = {k: meta.get(k) for k in ("config", "sumo_version", "box_m", "on_road_mean", "tracks")}
            banks[label]["track_occupancy"] = meta.get("track_occupancy")
    metrics = scenarios.get(args.env).evaluation.seed_metrics
    tables = {metric: markdown(results, metric) for metric in metrics}
    for metric, table in tables.items():
        print(f"\n{metric} (mean ± std of {args.seeds} seed means, {args.episodes} episodes each)\n{table}")
    io.atomic_write_json(
        args.out,
        {
            "env": args.env,
            "episodes": args.episodes,
            "seeds": args.seeds,
            "first_seed": args.first_seed,
            "results": results,
            "tables": tables,
            "banks": banks,
            "machine": describe_machine(),
            "jax": jax.__version__,
            "wall_s": round(time.perf_counter() - start, 1),
            "command": "python -m experiments.sumo_heuristics " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
