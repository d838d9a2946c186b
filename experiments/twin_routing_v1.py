"""The paper's experiments on TwinRouting-v1 with trained runs (spec 002 §8; on top of the runner, like bench).

    bash experiments/twin_routing_v1.sh                                # train (resumable queue)
    python -m experiments.twin_routing_v1 evaluate runs/twin_routing_v1/*
    python -m experiments.twin_routing_v1 sweep runs/twin_routing_v1/*
    python -m experiments.twin_routing_v1 curves runs/twin_routing_v1/*
    python -m experiments.twin_routing_v1 table                         # the docs' tables, as markdown

`evaluate` groups the finished runs by *setting* (their env and traffic sections apart from the forecast and the
mask: the default world, or an ablation such as `use_uavs=false`) and evaluates, on the 3 x 100 held-out worlds of
`vmjax evaluate` (PRNGKey(10000 + s), the same for every policy):
- every run's deterministic policy under its own env (its forecast, its mask), pooled by run label into mean ± std
  over training seeds;
- Greedy and Random (spec §8.1) with and without the mask, and the calibration's references with it (doing
  nothing, the least-loaded rule, the per-slot oracle), in the same setting, with the forecast of the setting's
  first run with the mask (the learned one when a run has it: the estimate the mask and least-loaded use).
Every row of a setting scores its reward with one set of z-score constants (§3.3 A: those calibrated by the
setting's first run with the mask), so rewards compare within a setting; latency, migration latency, packet loss
and the workload variance do not depend on them. Results go to evaluation.json after every run (atomically); a
run already evaluated at its checkpoint's iteration is skipped, so a killed evaluation resumes. Unfinished runs
are skipped.

`sweep` evaluates a setting's policies (the default one unless --setting) (trained at S^mig = 60 MB, S_v = 2 MB, not retrained) and Greedy
across the migration-size sweep S^mig in {40, ..., 120} MB and the generated-data sweep S_v in {1, ..., 3} MB
(spec §8.2 #6-7), each one compiled `vmap` over `EnvParams` per policy; rewards with one set of constants (as
`evaluate`'s), fixed across the sweep so that they compare between its points and policies. `curves` copies the logged training curves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import twin_routing as heuristics
from baselines import twin_routing_study as calibration
from baselines.evaluate import FIRST_SEED, write_results
from experiments.curves import convergence_iteration
from vmjax import runner
from vmjax.core.machine import machine_summary

OUT = Path("docs/results/twin_routing_v1")
METRICS = (
    "latency_s",
    "migration_s",
    "packet_loss",
    "reward",
    "workload_variance_bits2",
    "failure_rate",
    "migration_share",
    "satellite_share",
)
HEURISTICS = ("greedy", "random")  # spec §8.1, with and without the mask
REFERENCES = ("stay", "least_loaded", "oracle")  # the calibration's references (baselines.twin_routing), with it
LABELS = {
    "greedy": "Greedy",
    "random": "Random",
    "stay": "stay (no migration)",
    "least_loaded": "least loaded",
    "oracle": "per-slot oracle",
}
MB = 8e6
SWEEPS = {
    "migration_bits": ("S^mig (MB)", [40 * MB, 60 * MB, 80 * MB, 100 * MB, 120 * MB]),
    "data_bits": ("S_v (MB per slot)", [1.0 * MB, 1.5 * MB, 2.0 * MB, 2.5 * MB, 3.0 * MB]),
}
PER_RUN = ("workload_forecast", "use_mask")  # env fields that make a run's variant, not its setting


# ---------------------------------------------------------------------------------------------- run folders
def finished(run_dir: Path) -> bool:
    """A run whose checkpoint holds its last iteration."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.json").is_file():
        return False
    saved = runner.read_saved_config(run_dir)
    return json.loads((run_dir / "checkpoint.json").read_text())["iteration"] >= saved["agent"]["num_iterations"]


def in_order(run_dirs: list[Path]) -> list[Path]:
    """Runs with the learned forecast and the mask first (they fix a setting's reward constants and the forecast
    the heuristics' mask tests), then the others; by name within each."""

    def key(run_dir: Path):
        env = runner.read_saved_config(run_dir)["env"]
        return (not (env["workload_forecast"] == "predictor" and env["use_mask"]), run_dir.name)

    return sorted((Path(d) for d in run_dirs), key=key)


def setting_of(configs) -> str:
    """The env and traffic fields that differ from the TwinRouting-v1 scenario's defaults, forecast and mask
    apart ("default" when none): runs of one setting share their world and are compared in one table."""
    defaults = runner.build_configs({"run.env": configs["run"].env})
    diff = []
    for section in ("env", "traffic"):
        mine, base = dataclasses.asdict(configs[section]), dataclasses.asdict(defaults[section])
        diff += [f"{k}={mine[k]}" for k in sorted(mine) if k not in PER_RUN and mine[k] != base[k]]
    return ", ".join(diff) or "default"


def evaluate_policies(env, params, policies: list, episodes: int, seeds: int) -> list[dict[str, list[float]]]:
    """Per policy, {metric: per-held-out-seed means} on the seeds' worlds (PRNGKey(FIRST_SEED + s), as
    `baselines.twin_routing_study.evaluate_policies`, one compiled evaluator)."""
    makers = {str(i): (lambda _env, policy=policy: policy) for i, policy in enumerate(policies)}
    results = calibration.evaluate_policies(env, params, makers, episodes, seeds, metrics=METRICS)
    return [results[str(i)]["seed_means"] for i in range(len(policies))]


def _heuristic_env(configs, use_mask: bool):
    """The run's env with the mask on or off (the same world, forecast and shapes)."""
    return vmjax.make(configs["run"].env, **{**dataclasses.asdict(configs["env"]), "use_mask": use_mask})


def evaluate(run_dirs: list[Path], out: Path, episodes: int = 100, seeds: int = 3, log=print) -> dict:
    path = out / "evaluation.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(episodes_per_seed=episodes, held_out_seeds=seeds, first_seed=FIRST_SEED)
    settings = data.setdefault("settings", {})
    for run_dir in in_order(run_dirs):
        if not finished(run_dir):
            log(f"{run_dir}: not finished, skipped")
            continue
        iteration = json.loads((run_dir / "checkpoint.json").read_text())["iteration"]
        configs, env, params, trainer, state = runner.load_run(run_dir)
        setting = settings.setdefault(setting_of(configs), {"runs": {}, "heuristics": {}})
        evaluated = setting["runs"].get(run_dir.name, {}).get("iteration") == iteration
        if evaluated and setting["heuristics"]:
            continue
        if "norm_stats" not in setting:  # the first run with the mask fixes the setting's reward constants
            if not configs["env"].use_mask:
                log(f"{run_dir}: waits for a run with the mask in its setting")
                continue
            setting["norm_stats"] = dataclasses.asdict(params.norm_stats)
        params = params.replace(norm_stats=type(params.norm_stats)(**setting["norm_stats"]))
        if not evaluated:
            (per_seed,) = evaluate_policies(env, params, [trainer.make_eval_policy(state)], episodes, seeds)
            setting["runs"][run_dir.name] = {
                "label": runner.run_label(configs),
                "seed": configs["run"].seed,
                "iteration": iteration,
                "train_wall_s": json.loads((run_dir / "checkpoint.json").read_text()).get("train_wall_s"),
                "machine": machine_summary(),  # of this evaluation (the file's "machine" is its last writer's)
                "per_held_out_seed": per_seed,
                **{m: float(np.mean(v)) for m, v in per_seed.items()},
            }
            write_results(path, data)
            log(f"{run_dir.name}: latency {setting['runs'][run_dir.name]['latency_s']:.4f} s")
        if configs["env"].use_mask and not setting["heuristics"]:
            setting["heuristics"] = evaluate_heuristics(configs, params, episodes, seeds)
            setting["heuristics_forecast"] = configs["env"].workload_forecast
            write_results(path, data)
            log(f"heuristics of setting {setting_of(configs)} evaluated")
    return data


def evaluate_heuristics(configs, params, episodes: int, seeds: int) -> dict:
    """Greedy and Random with and without the mask, the references with it, in the run's world."""
    makers = {**heuristics.POLICIES, **heuristics.REFERENCES}
    results = {}
    for use_mask in (True, False):
        env = _heuristic_env(configs, use_mask)
        names = HEURISTICS + (REFERENCES if use_mask else ())
        policies = [makers[name](env) for name in names]
        for name, per_seed in zip(names, evaluate_policies(env, params, policies, episodes, seeds)):
            results[f"{LABELS[name]}{'' if use_mask else ' w/o mask'}"] = {
                "per_held_out_seed": per_seed,
                **{m: float(np.mean(v)) for m, v in per_seed.items()},
            }
    return results


def pooled_rows(setting: dict) -> list[dict]:
    """One row per learner label (mean ± std over training seeds) and per heuristic (± over held-out seeds)."""
    rows = []
    by_label: dict[str, list[dict]] = {}
    for run in setting["runs"].values():
        by_label.setdefault(run["label"], []).append(run)
    for label, runs in by_label.items():
        row = {"label": label, "kind": "learner", "training_seeds": len(runs)}
        for m in METRICS:
            values = np.array([r[m] for r in runs])
            row[m] = float(values.mean())
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        rows.append(row)
    for label, result in setting["heuristics"].items():
        row = {"label": label, "kind": "heuristic", "training_seeds": 0}
        for m in METRICS:
            row[m] = result[m]
            row[f"{m}_std"] = float(np.std(result["per_held_out_seed"][m], ddof=1))
        rows.append(row)
    return sorted(rows, key=lambda r: r["latency_s"])


def method_table(data: dict, setting: str = "default") -> str:
    """A setting's rows as markdown: latency, migration latency, packet loss, workload variance and reward."""
    columns = (
        ("latency (ms)", "latency_s", 1e3, 1),
        ("migration latency (ms)", "migration_s", 1e3, 1),
        ("packet loss (%)", "packet_loss", 100.0, 2),
        ("workload variance (MB²)", "workload_variance_bits2", 1 / 64e12, 0),
        ("reward", "reward", 1.0, 3),
    )
    lines = [
        "| policy | " + " | ".join(c[0] for c in columns) + " | on satellite (%) |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for row in pooled_rows(data["settings"][setting]):
        cells = []
        for _, m, scale, digits in columns:
            std = row[f"{m}_std"]
            cells.append(f"{scale * row[m]:.{digits}f}" + ("" if std is None else f" ± {scale * std:.{digits}f}"))
        n = row["training_seeds"]
        seeds = f" ({n} seed{'s' if n != 1 else ''})" if row["kind"] == "learner" else ""
        lines.append(f"| {row['label']}{seeds} | " + " | ".join(cells) + f" | {100 * row['satellite_share']:.1f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- sweeps
def sweep_policy(env, params, policy, episodes: int, seeds: int) -> dict[str, dict[str, list[float]]]:
    """{field: {metric: [point]}}: means over `seeds` x `episodes` held-out worlds at every point of every sweep
    of `SWEEPS` (one field changed at a time, the others at `params`), one compiled vmap over all the points."""
    grid = {field: [] for field in SWEEPS}
    for field, (_, values) in SWEEPS.items():
        for value in values:
            point = {f: float(getattr(params, f)) for f in SWEEPS}
            point[field] = value
            env.validate_params(params.replace(**{f: jnp.float32(v) for f, v in point.items()}))  # traced below
            for f in SWEEPS:
                grid[f].append(point[f])

    def one(point, key):
        return heuristics.evaluate_episodes(env, [policy], params.replace(**point), key, 0, episodes)

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))
    points = {f: jnp.asarray(v, jnp.float32) for f, v in grid.items()}
    per_seed = [jax.device_get(run(points, jax.random.PRNGKey(FIRST_SEED + s))) for s in range(seeds)]
    means = {m: np.mean([r[m].mean(axis=-1) for r in per_seed], axis=0) for m in METRICS}  # [points]
    out, start = {}, 0
    for field, (_, values) in SWEEPS.items():
        out[field] = {m: means[m][start : start + len(values)].tolist() for m in METRICS}
        start += len(values)
    return out


def sweep(
    run_dirs: list[Path], out: Path, episodes: int = 100, seeds: int = 3, setting: str = "default", log=print
) -> dict:
    """`setting`'s finished runs and Greedy (with the mask) across `SWEEPS`; resumable per policy."""
    path = out / "sweeps.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(episodes_per_seed=episodes, held_out_seeds=seeds, setting=setting, values=sweep_points())
    results = data.setdefault("results", {})
    greedy_done, norm = False, None
    for run_dir in in_order(run_dirs):
        if not finished(run_dir):
            continue
        configs, env, params, trainer, state = runner.load_run(run_dir)
        if setting_of(configs) != setting:
            continue
        if norm is None:  # as `evaluate`: the first run with the mask fixes the reward constants
            if not configs["env"].use_mask:
                continue
            norm = params.norm_stats
        params = params.replace(norm_stats=norm)
        iteration = json.loads((run_dir / "checkpoint.json").read_text())["iteration"]
        policies = [(run_dir.name, runner.run_label(configs), trainer.make_eval_policy(state))]
        if not greedy_done and configs["env"].use_mask:
            policies.append(("greedy", "Greedy", heuristics.POLICIES["greedy"](env)))
            greedy_done = True
        for key, label, policy in policies:
            if key in results and results[key].get("iteration") == (iteration if key != "greedy" else None):
                continue  # swept already (Greedy does not depend on the run)
            sweeps = sweep_policy(env, params, policy, episodes, seeds)
            results[key] = {"label": label, "iteration": iteration if key != "greedy" else None, **sweeps}
            write_results(path, data)
            log(f"{key}: swept")
    return data


def sweep_points() -> dict:
    """The sweep points as written to the JSON."""
    return {field: {"axis": axis, "values_bits": values} for field, (axis, values) in SWEEPS.items()}


def sweep_table(data: dict, field: str, metric: str = "latency_s", scale: float = 1e3) -> str:
    """Per label (mean ± std over training seeds): `metric` at each point of the sweep over `field`."""
    axis, values = SWEEPS[field]
    by_label: dict[str, list[list[float]]] = {}
    for result in data["results"].values():
        by_label.setdefault(result["label"], []).append(result[field][metric])
    lines = ["| policy | " + " | ".join(f"{axis} = {v / MB:g}" for v in values) + " |"]
    lines.append("|---|" + "---|" * len(values))
    for label, runs in sorted(by_label.items()):
        arr = scale * np.array(runs)
        cells = [
            f"{arr[:, i].mean():.1f}" + (f" ± {arr[:, i].std(ddof=1):.1f}" if len(runs) > 1 else "")
            for i in range(len(values))
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- curves
def learning_curves(run_dirs: list[Path], out: Path) -> dict:
    """The logged mean episode latency and failure rate per iteration of each run: {"curves": {setting: {run label:
    {run folder: curves}}}}; unfinished runs are left out, as in `evaluate`. Added to what `out` holds already (a
    run folder given again replaces its entry), so runs trained in different sessions or places add up."""
    path = out / "learning_curves.json"
    curves: dict[str, dict] = json.loads(path.read_text())["curves"] if path.is_file() else {}
    for run_dir in sorted(Path(d) for d in run_dirs):
        if not (run_dir / "metrics.jsonl").is_file() or not finished(run_dir):
            continue
        configs = runner.configs_from_json(runner.read_saved_config(run_dir))
        records = runner.read_metrics(run_dir / "metrics.jsonl")
        by_label = curves.setdefault(setting_of(configs), {})
        by_label.setdefault(runner.run_label(configs), {})[run_dir.name] = {
            "iteration": [int(r["iteration"]) for r in records],
            "latency_s": [r.get("episode_total_latency_s") for r in records],
            "failure": [r.get("episode_failure") for r in records],
            "wall_s": records[-1]["wall_s"] if records else None,
        }
    data = {"curves": curves}
    write_results(path, data)
    return data


def curves_table(data: dict, tail: int = 20) -> str:
    """Per setting and learner (mean ± std over training seeds): the final training latency and the iteration at
    which 90% of the improvement was reached."""
    lines = [
        "| setting | learner | final training latency (ms, last 20 iterations) | iterations to 90% of the improvement |"
    ]
    lines.append("|---|---|---|---|")
    spread = lambda v, d: f" ± {np.std(v, ddof=1):.{d}f}" if len(v) > 1 else " (1 seed)"
    for setting, by_label in data["curves"].items():
        for label, runs in sorted(by_label.items()):
            final = [1e3 * float(np.nanmean(np.array(r["latency_s"][-tail:], dtype=float))) for r in runs.values()]
            speed = [convergence_iteration(r["latency_s"]) for r in runs.values()]
            lines.append(
                f"| {setting} | {label} | {np.mean(final):.1f}{spread(final, 1)} | {np.mean(speed):.0f}{spread(speed, 0)} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.twin_routing_v1", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("evaluate", "sweep", "curves", "table"))
    parser.add_argument("run_dirs", nargs="*", type=Path, help="TwinRouting-v1 run folders")
    parser.add_argument("--episodes", type=int, default=100, help="held-out episodes per seed")
    parser.add_argument("--seeds", type=int, default=3, help="held-out seeds")
    parser.add_argument("--setting", default="default", help="the setting `sweep` sweeps (evaluation.json's keys)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.seeds < 1:
        parser.error("--episodes and --seeds must be >= 1")
    if args.command == "table":
        path = args.out / "evaluation.json"
        if not path.is_file():
            parser.error(f"no {path}: run `evaluate` first")
        data = json.loads(path.read_text())
        for setting in data["settings"]:
            print(f"\n### {setting}\n\n{method_table(data, setting)}")
        if (args.out / "sweeps.json").is_file():
            sweeps = json.loads((args.out / "sweeps.json").read_text())
            for field in SWEEPS:
                print(f"\n### latency (ms) across {SWEEPS[field][0]}\n\n{sweep_table(sweeps, field)}")
                print(f"\nreward:\n\n{sweep_table(sweeps, field, 'reward', 1.0)}")
        if (args.out / "learning_curves.json").is_file():
            print("\n" + curves_table(json.loads((args.out / "learning_curves.json").read_text())))
        return 0
    if not args.run_dirs:
        parser.error(f"{args.command} needs at least one run folder")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "evaluate":
        evaluate(args.run_dirs, args.out, args.episodes, args.seeds)
    elif args.command == "sweep":
        sweep(args.run_dirs, args.out, args.episodes, args.seeds, args.setting)
    else:
        learning_curves(args.run_dirs, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
