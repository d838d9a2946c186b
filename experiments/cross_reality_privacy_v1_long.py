"""CrossRealityPrivacy-v1's learners beyond the study's budget (docs/cross_reality_privacy.md, "Longer budgets"):
runs of `vmjax train --run.seeds 3` scored exactly like the study's comparison (baselines.cross_reality_privacy_study:
seed k deterministically on held-out set k, the sets every heuristic meets), plus each run's seeds untrained
(iteration 0) and with sampled actions, one row per learner and budget in OUT/long_budget.json.
experiments/cross_reality_privacy_v1_long.sh trains and scores a queue of them:

    python -m experiments.cross_reality_privacy_v1_long --out docs/results/cross_reality_privacy_v1 \
        runs/crp_v1_long/ppo_relaxed

A budget already scored is skipped without loading the run; a run on other env parameters or another env is
refused (the held-out worlds must be the same for every policy). Runs on an env variant (e.g.
`--env.agent_server connected`) get the best fixed radius on that variant as their yardstick.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from baselines import cross_reality_privacy_study as crps
from vmjax import runner
from vmjax.core import io

ALGO_NAMES = {algo: name for name, algo in crps.LEARNERS.items()}  # `vmjax train --algo` -> the study's method name


def _changed_fields(config, default) -> list[str]:
    """`field=value` for each field of the dataclass `config` that differs from `default`."""
    fields = dataclasses.fields(config)
    return [
        f"{f.name}={getattr(config, f.name)}" for f in fields if getattr(config, f.name) != getattr(default, f.name)
    ]


def env_variant(run_dir: Path, study: crps.StudyConfig, env_config: dict | None = None) -> str:
    """How a `vmjax train` run's env config departs from the study's env (`env_config` on `study.env_id`), e.g.
    "agent_server=connected"; "" for none. Runs of one variant share their heuristic yardsticks."""
    env = runner.configs_from_json(runner.read_saved_config(Path(run_dir)))["env"]
    return ", ".join(_changed_fields(env, crps.make_env(study, env_config).config))


def run_group_budget(run_dir: Path, study: crps.StudyConfig, env_config: dict | None = None) -> tuple[str, int]:
    """(method, env steps per seed) of a `vmjax train` run folder (one run or a seed group), read from its config
    and checkpoints without loading them. The method is the run's label ("PPO-relaxed", "LHDPPO (reward manual)")
    with what departs from the learner's defaults (the budget aside) and from the env's, so unlike runs never share
    a row (`env_variant`). ValueError unless every seed stands at the same iteration."""
    configs = runner.configs_from_json(runner.read_saved_config(Path(run_dir)))
    iterations = {int(runner.read_run_checkpoint(m)[0]["iteration"]) for m in runner.seed_group_runs(Path(run_dir))}
    if len(iterations) != 1:
        raise ValueError(f"{run_dir}: its seeds stand at different iterations {sorted(iterations)}; resume it first")
    agent = configs["agent"]
    default = dataclasses.replace(type(agent)(), num_iterations=agent.num_iterations)
    changed = [c for c in _changed_fields(agent, default) if not c.startswith("reward_mode=")]  # the label has it
    variant = env_variant(run_dir, study, env_config)
    changed += [variant] if variant else []
    label = runner.run_label(configs) + (f" ({', '.join(changed)})" if changed else "")
    return label, iterations.pop() * agent.env_steps_per_iteration


def evaluate_run_group(run_dir: Path, study: crps.StudyConfig, env_config: dict | None = None) -> dict:
    """A learner trained by `vmjax train` (one run, or a seed group of `--run.seeds K`) scored like the comparison:
    its k-th seed with deterministic actions on held-out set k. Adds the run's budget and training time and each
    seed's per-iteration training curves (metrics.jsonl, as the comparison's `curves`). ValueError unless the run
    is a learner of the study on the study's env (`env_config`, default: its defaults), so that the held-out worlds
    are the same for every policy, and every seed stands at the same iteration."""
    method, env_steps = run_group_budget(run_dir, study, env_config)
    members = runner.seed_group_runs(Path(run_dir))
    runs = [runner.load_run(member) for member in members]
    configs, env, params, trainer, _ = runs[0]
    if configs["run"].env != study.env_id or configs["run"].algo not in ALGO_NAMES:
        raise ValueError(
            f"{run_dir}: a {configs['run'].algo!r} run on {configs['run'].env}, not a learner of the study on "
            f"{study.env_id}"
        )
    reference = crps.make_env(study, env_config).default_params
    same = jax.tree.map(lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))), params, reference)
    if not all(jax.tree.leaves(same)):
        raise ValueError(
            f"{run_dir}: its env parameters differ from the study's {study.env_id} (other held-out worlds)"
        )
    progress = [runner.read_run_checkpoint(member)[0] for member in members]
    done = int(progress[0]["iteration"])
    records = [runner.read_metrics(member / "metrics.jsonl", done) for member in members]
    held_out = dataclasses.replace(study, seeds=len(members))
    seeds = [member_configs["run"].seed for member_configs, *_ in runs]
    init = jax.jit(trainer.init)
    untrained = [init(jax.random.PRNGKey(seed)).params for seed in seeds]  # each seed's iteration 0
    trained = [s.params for *_, s in runs]
    scored, at_start = crps.evaluate_param_lists(env, params, trainer, [trained, untrained], held_out)
    sampled = crps.evaluate_param_lists(env, params, trainer, [trained, untrained], held_out, deterministic=False)
    brief = lambda r: {k: v for k, v in r.items() if k not in ("intensity", "trajectory")}
    return {
        **{k: v for k, v in scored.items() if k != "trajectory"},  # the comparison's map has set 0's trajectories
        "untrained": brief(at_start),
        "sampled": brief(sampled[0]),  # the same seeds and sets with the actions drawn from the policy
        "untrained_sampled": brief(sampled[1]),
        "method": method,
        "run": Path(run_dir).name,
        "seeds": seeds,
        "iterations": done,
        "env_steps": env_steps,
        "train_s": float(np.mean([p.get("train_wall_s", np.nan) for p in progress])),
        "vmapped_runs": len(members),
        "curves": {name: [[float(r[name]) for r in rec if name in r] for rec in records] for name in crps.CURVES},
    }


def variant_yardsticks(run_dir: Path, study: crps.StudyConfig, env_config: dict | None = None) -> dict:
    """The best fixed radius on the env of the run in `run_dir` (its config's env, e.g. agent_server=connected),
    on the study's held-out sets: the yardstick of the runs of that env variant."""
    configs = runner.configs_from_json(runner.read_saved_config(Path(run_dir)))
    env = crps.make_env(study, {**(env_config or {}), **dataclasses.asdict(configs["env"])})
    return {
        crps.BEST_FIXED: crps.evaluate_heuristic(env, env.default_params, crps.V1_HEURISTICS[crps.BEST_FIXED], study)
    }


def long_budget(
    study: crps.StudyConfig,
    out_path: Path,
    run_dirs: Sequence[Path],
    env_config: dict | None = None,
    log=print,
    **extra,
) -> dict:
    """`evaluate_run_group` of every run in `run_dirs` into `out_path` (JSON, atomically after each), keyed by
    method and env steps per seed: a run evaluated again after more training adds a row; one already evaluated at
    its current budget is skipped (not loaded). The heuristics' held-out scores are the comparison's (the same
    sets)."""
    record = crps._resume(out_path, crps._header(study, env_config, None, **extra), keys=("study", "env_config"))
    if record["results"]:  # the saved file's: its yardsticks too
        record["yardsticks"] = json.loads(out_path.read_text()).get("yardsticks", {})
    for run_dir in run_dirs:
        method, env_steps = run_group_budget(Path(run_dir), study, env_config)
        if str(env_steps) in record["results"].get(method, {}):
            log(f"{method} at {env_steps:,} env steps per seed: done")
            continue
        result = {**evaluate_run_group(Path(run_dir), study, env_config), "command": extra.get("command", "")}
        record["results"].setdefault(method, {})[str(env_steps)] = result
        variant = env_variant(Path(run_dir), study, env_config)
        if variant and variant not in record.setdefault("yardsticks", {}):  # the default env's: comparison.json
            record["yardsticks"][variant] = variant_yardsticks(Path(run_dir), study, env_config)
            log(
                f"{crps.BEST_FIXED} ({variant}): utility {crps._cell(record['yardsticks'][variant][crps.BEST_FIXED], 'utility', 3)}"
            )
        log(
            f"{method} at {env_steps:,} env steps per seed: utility {crps._cell(result, 'utility', 3)} "
            f"entropy {result['entropy_bits']:.2f} bit latency {result['latency_s']:.1f} s"
        )
        record["machine"] = crps.machine()
        io.atomic_write_json(out_path, record)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="`vmjax train` run folders (seed groups) to score")
    parser.add_argument("--env", default="CrossRealityPrivacy-v1", choices=crps.ENV_IDS)
    parser.add_argument("--seeds", type=int, default=crps.StudyConfig.seeds, help="held-out sets (one per seed)")
    parser.add_argument("--eval-episodes", type=int, default=crps.StudyConfig.eval_episodes)
    parser.add_argument("--tiny", action="store_true", help="the study's tiny env sizes (a pipeline check only)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/cross_reality_privacy_v1"))
    args = parser.parse_intermixed_args(argv)  # run folders may follow the options
    study = crps.StudyConfig(1, args.seeds, args.eval_episodes, env_id=args.env)
    env_config = crps.TINY_ENV if args.tiny else None
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m experiments.cross_reality_privacy_v1_long " + " ".join(sys.argv[1:] if argv is None else argv)
    record = long_budget(study, args.out / "long_budget.json", args.runs, env_config, command=command)
    print(crps.long_budget_table(record, crps.load_result(args.out, "comparison.json")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
