"""The paper's experiments on AvatarPremigration-v1 with trained runs (on top of the runner, like bench).

    bash experiments/avatar_premigration_v1.sh                      # train: 2 learners x 2 forecasts x 3 seeds
    vmjax evaluate runs/avatar_premigration_v1/* --out docs/results/avatar_premigration_v1/evaluation
    python -m experiments.avatar_premigration_v1 curves runs/avatar_premigration_v1/*
    python -m experiments.avatar_premigration_v1 sweep runs/avatar_premigration_v1/*
    python -m experiments.avatar_premigration_v1 predictor runs/avatar_premigration_v1/hybrid_mappo-lstm-s0
    python -m experiments.avatar_premigration_v1 table                # the method comparison, as markdown

`curves` writes learning_curves.json (the logged episode latency per iteration, by run label); `sweep` adds the
trained policies (and the heuristics, when missing) to sweeps.json, each sweep one compiled vmap over
`EnvParams` (the policies trained at the default ranges, not retrained per point); `predictor` copies the
trajectory LSTM's held-out table (predictor_metrics.json) next to them. Everything goes to
docs/results/avatar_premigration_v1 unless --out says otherwise, atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from baselines import avatar_premigration_study as study
from experiments.curves import convergence_iteration
from vmjax import runner


def learning_curves(run_dirs: list[Path], out: Path) -> dict:
    """The logged mean episode latency per iteration of each run, grouped by run label."""
    curves: dict[str, dict] = {}
    for run_dir in run_dirs:
        configs = runner.configs_from_json(runner.read_saved_config(Path(run_dir)))
        records = runner.read_metrics(Path(run_dir) / "metrics.jsonl")
        curves.setdefault(runner.run_label(configs), {})[Path(run_dir).name] = {
            "iteration": [int(r["iteration"]) for r in records],
            "latency_s": [r.get("episode_total_latency_s") for r in records],
            "wall_s": records[-1]["wall_s"] if records else None,
        }
    data = {"curves": curves}
    study.write_results(out / "learning_curves.json", data)
    return data


def trained_groups(run_dirs: list[Path]) -> list:
    """One sweep group per run: its own env (forecast) and params (predictor), its deterministic policy."""
    groups = []
    for run_dir in run_dirs:
        configs, env, params, trainer, state = runner.load_run(Path(run_dir))
        label = f"{runner.run_label(configs)} [{Path(run_dir).name}]"
        groups.append((str(run_dir), env, params, {label: trainer.make_eval_policy(state)}))
    return groups


def predictor_table(run_dir: Path, out: Path) -> dict:
    """The LSTM's held-out metrics (normalised units and metres) and the constant-velocity reference."""
    metrics = json.loads((Path(run_dir) / "predictor_metrics.json").read_text())
    config = runner.read_saved_config(Path(run_dir))["predictor"]
    data = {
        "run": Path(run_dir).name,
        "predictor_config": config,
        "heldout_lstm": metrics["heldout_lstm"],
        "heldout_constant_velocity": metrics["heldout_constant_velocity"],
        "train_wall_s": metrics["train_wall_s"],
    }
    study.write_results(out / "predictor.json", data)
    return data


def method_table(evaluation: dict) -> str:
    """The method comparison as markdown: a trained learner's runs (labels "<label> [<folder>]") pooled into one
    row, mean over training seeds ± their standard deviation; heuristics ± the spread over held-out seeds."""
    groups: dict[str, list[float]] = {}
    for name, result in evaluation["results"].items():
        groups.setdefault(name.split(" [")[0] if "run_dir" in result else name, []).append(result["latency_s"])
    rows = []
    for name, values in groups.items():
        result = evaluation["results"].get(name)
        if result is not None and "run_dir" not in result:  # a heuristic: one value, spread over held-out seeds
            rows.append((values[0], name, f"{result['latency_s_seed_std']:.2f} over held-out seeds", ""))
        else:
            spread = f"{np.std(values, ddof=1):.2f} over {len(values)} training seeds" if len(values) > 1 else "1 seed"
            rows.append((float(np.mean(values)), name, spread, ", ".join(f"{v:.2f}" for v in values)))
    lines = ["| policy | mean latency (s) | spread | per training seed |", "|---|---|---|---|"]
    lines += [f"| {name} | {mean:.2f} | {spread} | {seeds} |" for mean, name, spread, seeds in sorted(rows)]
    return "\n".join(lines)


def curves_table(data: dict, tail: int = 20) -> str:
    """Per run label: the last `tail` iterations' mean latency and the iteration that reached 90% of the
    improvement, each as mean ± std over training seeds."""
    lines = ["| learner | final training latency (s, last 20 iterations) | iterations to 90% of the improvement |"]
    lines.append("|---|---|---|")
    for label, runs in sorted(data["curves"].items()):
        final = [float(np.nanmean(np.array(r["latency_s"][-tail:], dtype=float))) for r in runs.values()]
        speed = [convergence_iteration(r["latency_s"]) for r in runs.values()]
        spread = lambda v, digits: f" ± {np.std(v, ddof=1):.{digits}f}" if len(v) > 1 else " (1 seed)"
        lines.append(f"| {label} | {np.mean(final):.2f}{spread(final, 2)} | {np.mean(speed):.0f}{spread(speed, 0)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.avatar_premigration_v1", description=__doc__)
    parser.add_argument("command", choices=("curves", "sweep", "predictor", "table"))
    parser.add_argument("run_dirs", nargs="*", type=Path, help="trained AvatarPremigration-v1 run folders")
    parser.add_argument("--episodes", type=int, default=100, help="held-out episodes per sweep point")
    parser.add_argument("--out", type=Path, default=study.OUT)
    args = parser.parse_args(argv)
    if args.command == "table":  # the method comparison of evaluation/evaluation.json, as markdown
        if not (args.out / "evaluation" / "evaluation.json").is_file():
            parser.error(f"no {args.out / 'evaluation' / 'evaluation.json'}: run vmjax evaluate ... --out first")
        print(method_table(json.loads((args.out / "evaluation" / "evaluation.json").read_text())))
        if (args.out / "learning_curves.json").exists():
            print("\n" + curves_table(json.loads((args.out / "learning_curves.json").read_text())))
        return 0
    if not args.run_dirs:
        parser.error(f"{args.command} needs at least one run folder")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "curves":
        learning_curves(args.run_dirs, args.out)
    elif args.command == "sweep":
        study.sweep([study.heuristic_group(), *trained_groups(args.run_dirs)], args.out, args.episodes)
    else:
        predictor_table(args.run_dirs[0], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
