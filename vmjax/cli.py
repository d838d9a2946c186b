"""The `vmjax` command line: train a learner on AvatarPremigration-v0, then compare it with the heuristics.

    vmjax train [--run.run_dir runs/avatar_premigration] [--agent.num_iterations 150] [--env.workload_forecast none]
    vmjax train --run.run_dir runs/avatar_premigration --resume      # continue from the last checkpoint
    vmjax evaluate runs/avatar_premigration [more run folders]       # trained policies vs heuristics

Every config field is a flag `--<section>.<field>`; `vmjax train --help` lists them all with their defaults.
A run folder holds config.json, predictor.msgpack (with the LSTM forecast), metrics.jsonl (one line per
iteration), learning_curve.png, checkpoint.msgpack + checkpoint.json, and after `evaluate` evaluation.json,
evaluation.md and evaluation.png. Training runs in jitted chunks of `run.chunk_iterations` iterations; the
checkpoint and the metrics are written (atomically) after every chunk, so an interrupted run loses at most one
chunk and `--resume` continues from the same iteration with the same random stream.

Layering: this module sits on top of `vmjax`; `evaluate` also imports the sibling package `baselines`
(heuristics), installed with vmjax, at call time.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from vmjax import predict
from vmjax.agents import checkpoint, hybrid_mappo, mappo_ddpg
from vmjax.core import io, registry, validation
from vmjax.envs.avatar_premigration import AvatarPremigrationConfig

ENV_ID = "AvatarPremigration-v0"
ALGORITHMS = {
    "hybrid_mappo": (hybrid_mappo.HybridMappoConfig, hybrid_mappo.make_trainer),
    "mappo_ddpg": (mappo_ddpg.MappoDdpgConfig, mappo_ddpg.make_trainer),
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where a run lives and how it is driven."""

    run_dir: str = "runs/avatar_premigration"  # folder of the run (config, metrics, figures, checkpoint)
    algo: str = "hybrid_mappo"  # "hybrid_mappo" (spec 003 §6) | "mappo_ddpg" (§8 comparison learner)
    seed: int = 0  # training seed: worlds, network initialisation and action sampling
    chunk_iterations: int = 10  # iterations per jitted chunk; progress, metrics and checkpoint after each
    predictor_path: str = ""  # workload_forecast="lstm": a saved predictor to use instead of training one
    predictor_seed: int = 1  # seed of the predictor's simulated training trajectories and initialisation

    def __post_init__(self):
        validation.check_choice("RunConfig", "algo", self.algo, tuple(ALGORITHMS))
        validation.check_int_at_least("RunConfig", "chunk_iterations", self.chunk_iterations, 1)
        validation.check_int_at_least("RunConfig", "seed", self.seed, 0)
        validation.check_int_at_least("RunConfig", "predictor_seed", self.predictor_seed, 0)


# The command line's defaults where they differ from the library's (spec) defaults: a run that finishes in a
# few minutes on 2 CPU cores, and RSUs named by distance (slot 0 = serving RSU), with which the learners
# escape the "alpha -> 0" trap (README, Training). Spec values: 500 iterations at lr 1e-4, RSUs by index, an
# LSTM of 256 cells trained 500 epochs.
CLI_DEFAULTS: dict[str, dict[str, Any]] = {
    "env": {"workload_forecast": "lstm", "rsu_order": "distance"},
    "agent": {"num_iterations": 300, "actor_lr": 3e-4, "critic_lr": 3e-4, "actor_d_lr": 3e-4, "critic_d_lr": 3e-4},
    "predictor": {"hidden_size": 32, "epochs": 15},
}
RESUMABLE_OVERRIDES = {("agent", "num_iterations"), ("run", "chunk_iterations")}


# ====================================================================== config <-> flags
def field_comments(cls) -> dict[str, str]:
    """The trailing `# comment` of each field in a config dataclass's source (continuation lines included):
    the single source of the field documentation shown by --help."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    comments, current = {}, None
    for line in lines:
        match = re.match(r"\s+(\w+)\s*:[^=]*=.*?#\s?(.*)$", line)
        if match:
            current = match.group(1)
            comments[current] = match.group(2).strip()
        elif current and re.match(r"\s+#\s?(.*)$", line):
            comments[current] += " " + re.match(r"\s+#\s?(.*)$", line).group(1).strip()
        else:
            current = None if line.strip() else current
    return comments


def _parse_value(kind: type, text: str, flag: str):
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise argparse.ArgumentTypeError(f"{flag} expects true or false, got {text!r}")
        return lowered in ("true", "1", "yes")
    if kind is tuple:
        try:
            return tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{flag} expects comma-separated integers, got {text!r}") from error
    try:
        return kind(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{flag} expects {kind.__name__}, got {text!r}") from error


def add_config_flags(parser: argparse.ArgumentParser, section: str, cls, defaults: dict[str, Any]) -> None:
    """One `--section.field` flag per dataclass field, typed by its default, documented by its comment."""
    group = parser.add_argument_group(f"{section} ({cls.__name__})", (cls.__doc__ or "").strip().splitlines()[0])
    comments = field_comments(cls)
    for field in dataclasses.fields(cls):
        default = defaults.get(field.name, field.default)
        flag = f"--{section}.{field.name}"
        kind = type(default)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        note = " (command-line default; library default %r)" % (field.default,) if field.name in defaults else ""
        group.add_argument(
            flag,
            dest=f"{section}.{field.name}",
            metavar=kind.__name__.upper(),
            type=lambda text, kind=kind, flag=flag: _parse_value(kind, text, flag),
            default=argparse.SUPPRESS,
            help=f"{comments.get(field.name, '')} [default: {shown}]{note}".replace("%", "%%"),
        )


def build_configs(overrides: dict[str, Any], agent_cls) -> dict[str, Any]:
    """Config dataclasses of every section from CLI defaults and explicit overrides (errors name the flag)."""
    sections = {"run": RunConfig, "env": AvatarPremigrationConfig, "agent": agent_cls, "predictor": predict.PredictorConfig}
    configs = {}
    for section, cls in sections.items():
        values = dict(CLI_DEFAULTS.get(section, {}))
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in names}
        values.update({key.split(".", 1)[1]: v for key, v in overrides.items() if key.split(".", 1)[0] == section})
        configs[section] = cls(**values)
    return configs


def configs_to_json(configs: dict[str, Any]) -> dict[str, dict]:
    return {section: dataclasses.asdict(config) for section, config in configs.items()}


def configs_from_json(data: dict[str, dict]) -> dict[str, Any]:
    algo = data["run"]["algo"]
    agent_cls = ALGORITHMS[algo][0]
    sections = {"run": RunConfig, "env": AvatarPremigrationConfig, "agent": agent_cls, "predictor": predict.PredictorConfig}
    out = {}
    for section, cls in sections.items():
        values = dict(data[section])
        for field in dataclasses.fields(cls):
            if isinstance(field.default, tuple) and field.name in values:
                values[field.name] = tuple(values[field.name])
        out[section] = cls(**values)
    return out


def machine_description() -> str:
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", device.platform)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, {kind}"


# ====================================================================== building a run
def build_env_and_params(configs: dict[str, Any], run_dir: Path, log=print):
    """The env of a run and its params; with the LSTM forecast, the predictor is loaded from the run folder,
    from `run.predictor_path`, or trained (and saved) here."""
    env = registry.make(ENV_ID, **dataclasses.asdict(configs["env"]))
    params = env.default_params
    if configs["env"].workload_forecast != "lstm":
        return env, params
    saved = run_dir / "predictor.msgpack"
    source = Path(configs["run"].predictor_path) if configs["run"].predictor_path else saved
    if source.is_file():
        predictor = predict.load_predictor(source)
        log(f"trajectory predictor: loaded {source}")
    else:
        predictor = train_trajectory_predictor(env, configs["predictor"], configs["run"].predictor_seed, run_dir, log)
    if source != saved or not saved.is_file():
        predict.save_predictor(saved, predictor)
    return env, params.replace(predictor=predictor)


def train_trajectory_predictor(env, config, seed: int, run_dir: Path, log=print):
    """§4.3: fit the LSTM on simulated trajectories of the env's road, report held-out error (metres)."""
    k_data, k_test, k_train = jax.random.split(jax.random.PRNGKey(seed), 3)
    positions = predict.simulate_trajectories(k_data, env, config.num_vehicles, config.num_slots)
    heldout = predict.simulate_trajectories(k_test, env, config.num_vehicles, max(1000, config.history_slots + 2))
    log(f"trajectory predictor: training LSTM({config.hidden_size}) for {config.epochs} epochs on "
        f"{config.num_vehicles} x {config.num_slots} slots")

    def progress(epoch, record):
        _progress_line(f"  epoch {epoch + 1}/{config.epochs}  held-out MSE {record['heldout_mse']:.2e}  "
                       f"{record['elapsed_s']:.0f} s")

    predictor, history = predict.train_predictor(k_train, config, positions, box_m=predict.map_box_m(env),
                                                 progress=progress)
    _progress_end()
    lstm = predict.evaluate_predictor(predictor, heldout)
    reference = predict.evaluate_constant_velocity(heldout, config.history_slots, predictor.low_m, predictor.high_m)
    log(f"trajectory predictor: held-out RMSE {lstm['rmse_m']:.1f} m (constant velocity {reference['rmse_m']:.1f} m), "
        f"R2 {lstm['r2']:.3f}, {history['elapsed_s'][-1]:.0f} s")
    io.atomic_write_json(run_dir / "predictor_metrics.json", {
        "heldout_lstm": {k: float(v) for k, v in lstm.items()},
        "heldout_constant_velocity": {k: float(v) for k, v in reference.items()},
        "train_mse": history["train_mse"].tolist(),
        "heldout_mse": history["heldout_mse"].tolist(),
        "train_wall_s": float(history["elapsed_s"][-1]),
    })
    return predictor


def _progress_line(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + text[:150].ljust(150))
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _progress_end() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")
        sys.stderr.flush()


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _to_python(tree) -> dict:
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()) for k, v in tree.items()}


def read_metrics(path: Path, up_to_iteration: int | None = None) -> list[dict]:
    """metrics.jsonl records (optionally only those of finished, checkpointed iterations)."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not valid JSON ({error})") from error
        if up_to_iteration is None or record["iteration"] <= up_to_iteration:
            records.append(record)
    return records


# ====================================================================== train
def train(configs: dict[str, Any], resume: bool = False, log=print) -> Path:
    """Run (or continue) a training run; returns the run folder."""
    run = configs["run"]
    run_dir = Path(run.run_dir)
    ckpt_path, ckpt_info = run_dir / "checkpoint.msgpack", run_dir / "checkpoint.json"
    if not resume and ckpt_path.exists():
        raise SystemExit(f"{run_dir} already holds a checkpoint: pass --resume to continue it, or another "
                         "--run.run_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = configs_to_json(configs)
    saved["machine"] = machine_description()
    io.atomic_write_json(run_dir / "config.json", saved)

    env, params = build_env_and_params(configs, run_dir, log)
    agent = configs["agent"]
    trainer = ALGORITHMS[run.algo][1](env, agent, params)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(run.seed))
    done, wall_before = 0, 0.0
    if resume and ckpt_path.exists():
        state = checkpoint.load_checkpoint(ckpt_path, state)
        info = json.loads(ckpt_info.read_text())
        done, wall_before = int(info["iteration"]), float(info.get("train_wall_s", 0.0))
        log(f"resuming {run_dir} from iteration {done}")
    records = read_metrics(run_dir / "metrics.jsonl", done)
    io.atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    total = agent.num_iterations
    steps_per_iteration = agent.num_envs * agent.num_steps
    compiled: dict[int, Any] = {}
    wall = wall_before
    log(f"training {run.algo} on {ENV_ID} ({env.num_agents} agents, {configs['env'].num_rsus} RSUs, "
        f"forecast={configs['env'].workload_forecast}), {agent.num_envs} worlds, {total} iterations "
        f"[{machine_description()}]")
    while done < total:
        chunk = min(run.chunk_iterations, total - done)
        if chunk not in compiled:
            start = time.perf_counter()
            compiled[chunk] = jax.jit(trainer.run, static_argnums=1).lower(state, chunk).compile()
            log(f"compiled a chunk of {chunk} iterations in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        state, metrics = compiled[chunk](state)
        metrics = jax.device_get(metrics)
        elapsed = time.perf_counter() - start
        wall += elapsed
        new = [_to_python({k: v[i] for k, v in metrics.items()}) for i in range(chunk)]
        for record in new:
            record["wall_s"] = round(wall, 3)
        with open(run_dir / "metrics.jsonl", "a") as f:  # appended first; the checkpoint marks them finished
            f.writelines(json.dumps(r) + "\n" for r in new)
        records.extend(new)
        done += chunk
        checkpoint.save_checkpoint(ckpt_path, state)
        io.atomic_write_json(ckpt_info, {"iteration": done, "env_steps": done * steps_per_iteration,
                                         "train_wall_s": wall})
        last = new[-1]
        _progress_line(
            f"{_bar(done, total)} {done}/{total} it  {chunk * steps_per_iteration / elapsed:,.0f} env steps/s  "
            f"return {last['episode_return']:.1f}  latency {last.get('episode_total_latency_s', float('nan')):.3f} s  "
            f"eta {(total - done) * elapsed / chunk:.0f} s"
        )
    _progress_end()
    from vmjax import report

    report.plot_learning_curve(records, run_dir / "learning_curve.png",
                               f"{run.algo} on {ENV_ID} (forecast={configs['env'].workload_forecast})")
    log(f"done: {done} iterations, {done * steps_per_iteration:,} env steps, {wall:.0f} s of training; "
        f"wrote {run_dir}/metrics.jsonl, learning_curve.png, checkpoint.msgpack")
    return run_dir


# ====================================================================== evaluate
def load_run(run_dir: Path):
    """(configs, env, params, trainer, trainer state) of a finished or interrupted run."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise SystemExit(f"{run_dir} is not a run folder (no config.json)")
    configs = configs_from_json(json.loads(config_path.read_text()))
    env, params = build_env_and_params(configs, run_dir, log=lambda *_: None)
    trainer = ALGORITHMS[configs["run"].algo][1](env, configs["agent"], params)
    template = jax.jit(trainer.init)(jax.random.PRNGKey(configs["run"].seed))
    state = checkpoint.load_checkpoint(run_dir / "checkpoint.msgpack", template)
    return configs, env, params, trainer, state


def run_label(configs) -> str:
    forecast = configs["env"].workload_forecast
    suffix = "" if forecast != "none" else " w/o pred."
    name = {"hybrid_mappo": "Hybrid-MAPPO", "mappo_ddpg": "MAPPO-DDPG"}[configs["run"].algo]
    return name + (suffix if forecast == "none" else f" ({forecast})" if forecast != "lstm" else "")


def evaluate(run_dirs: list[Path], episodes: int, seeds: int, first_seed: int, out_dir: Path, log=print) -> dict:
    """Trained policies of `run_dirs` and the heuristics on the same held-out episodes: `seeds` sets of
    `episodes` worlds drawn from PRNGKey(first_seed + s), disjoint from the training stream."""
    from baselines.avatar_premigration import POLICIES
    from baselines.evaluate import make_policy_evaluator, summarize_episodes

    from vmjax import report

    runs = [load_run(Path(d)) for d in run_dirs]
    env0, params0 = runs[0][1], runs[0][2]
    for configs, env, *_ in runs[1:]:
        if (env.num_agents, env.num_rsus, env.config.max_steps) != (env0.num_agents, env0.num_rsus, env0.config.max_steps):
            raise SystemExit("evaluate: all runs must share num_vehicles, num_rsus and max_steps")
    groups = [(env0, params0, {name: make(env0) for name, make in POLICIES.items()})]
    labels = [run_label(configs) for configs, *_ in runs]
    run_of_label: dict[str, str] = {}
    for index, (run_dir, (configs, env, params, trainer, state)) in enumerate(zip(run_dirs, runs)):
        label = labels[index]
        if labels.count(label) > 1:  # two runs of the same kind: tell them apart by their folder
            label = f"{label} [{Path(run_dir).name}]"
        groups.append((env, params, {label: trainer.make_eval_policy(state.params)}))
        run_of_label[label] = str(run_dir)
    per_seed: dict[str, list[dict]] = {}
    episodes_all: dict[str, dict[str, list]] = {}
    start = time.perf_counter()
    for env, params, policies in groups:
        names = list(policies)
        evaluator = make_policy_evaluator(env, [policies[n] for n in names], params, episodes)
        for s in range(seeds):
            key = jax.random.PRNGKey(first_seed + s)
            for index, name in enumerate(names):
                result = {k: np.asarray(v) for k, v in jax.device_get(evaluator(key, index)).items()}
                per_seed.setdefault(name, []).append(summarize_episodes(result))
                for k, v in result.items():
                    episodes_all.setdefault(name, {}).setdefault(k, []).append(v)
    results = {}
    for name, seed_summaries in per_seed.items():
        pooled = summarize_episodes({k: np.concatenate(v) for k, v in episodes_all[name].items()})
        seed_means = np.array([s["latency_s"] for s in seed_summaries])
        pooled["latency_s_seed_std"] = float(seed_means.std(ddof=1)) if seeds > 1 else 0.0
        pooled["latency_s_seed_means"] = seed_means.tolist()
        if name in run_of_label:
            pooled["run_dir"] = run_of_label[name]
        results[name] = pooled
    wall = time.perf_counter() - start
    table = format_comparison(results, episodes, seeds)
    log(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(out_dir / "evaluation.json", {
        "runs": [str(d) for d in run_dirs], "episodes_per_seed": episodes, "seeds": seeds,
        "first_seed": first_seed, "results": results, "wall_s": wall, "machine": machine_description(),
    })
    io.atomic_write_text(out_dir / "evaluation.md", table + f"\n\nmachine: {machine_description()}; "
                         f"evaluation wall time {wall:.0f} s\n")
    report.plot_comparison(results, out_dir / "evaluation.png",
                           f"{ENV_ID}: {seeds} x {episodes} held-out episodes")
    log(f"wrote {out_dir}/evaluation.json, evaluation.md, evaluation.png ({wall:.0f} s)")
    return results


def format_comparison(results: dict[str, dict], episodes: int, seeds: int) -> str:
    lines = [
        "| policy | mean latency (s) | std over seeds | std over episodes | migration (s) | processing (s) | "
        "downlink (s) | pre-migrated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["latency_s"]):
        lines.append(
            f"| {name} | {r['latency_s']:.3f} | {r['latency_s_seed_std']:.3f} | {r['latency_s_std']:.3f} | "
            f"{r['migration_s']:.3f} | {r['processing_s']:.3f} | {r['downlink_s']:.3f} | "
            f"{100 * r['premigrated']:.0f}% |"
        )
    lines.append(f"\nmean total latency per vehicle and slot over {seeds} seeds x {episodes} held-out episodes "
                 "(the same worlds for every policy)")
    return "\n".join(lines)


# ====================================================================== entry point
def make_parser(algo: str = "hybrid_mappo") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmjax", description="vmjax: vehicular-metaverse edge-network simulator")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train", help="train a learner (default: Hybrid-MAPPO with the LSTM forecast)",
        description=f"Train on {ENV_ID}. Every config field is a flag; command-line defaults finish in a few "
        "minutes on 2 CPU cores.", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --run.run_dir from its checkpoint (its saved config is used; "
                              "only --agent.num_iterations and --run.chunk_iterations may change)")
    add_config_flags(train_parser, "run", RunConfig, {})
    add_config_flags(train_parser, "env", AvatarPremigrationConfig, CLI_DEFAULTS["env"])
    agent_cls = ALGORITHMS[algo][0]
    add_config_flags(train_parser, "agent", agent_cls, CLI_DEFAULTS["agent"])
    add_config_flags(train_parser, "predictor", predict.PredictorConfig, CLI_DEFAULTS["predictor"])
    eval_parser = commands.add_parser("evaluate", help="compare trained policies with the heuristics",
                                      description=evaluate.__doc__.splitlines()[0])
    eval_parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders to evaluate")
    eval_parser.add_argument("--episodes", type=int, default=100, help="held-out episodes per seed (§7.1: 100)")
    eval_parser.add_argument("--seeds", type=int, default=3, help="independent held-out episode sets")
    eval_parser.add_argument("--first-seed", type=int, default=10_000, help="seed of the first episode set")
    eval_parser.add_argument("--out", type=Path, help="output folder (default: the first run folder)")
    return parser


def _algo_from_argv(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith("--run.algo="):
            return arg.split("=", 1)[1]
        if arg == "--run.algo" and i + 1 < len(argv):
            return argv[i + 1]
    return "hybrid_mappo"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    algo = _algo_from_argv(argv)
    if algo not in ALGORITHMS:
        raise SystemExit(f"--run.algo must be one of {sorted(ALGORITHMS)}, got {algo!r}")
    args = make_parser(algo).parse_args(argv)
    if args.command == "train":
        overrides = {k: v for k, v in vars(args).items() if "." in k}
        try:
            if args.resume:
                run_dir = Path(overrides.get("run.run_dir", RunConfig.run_dir))
                if not (run_dir / "config.json").is_file():
                    raise SystemExit(f"--resume: {run_dir} has no config.json")
                saved = json.loads((run_dir / "config.json").read_text())
                for key, value in overrides.items():
                    section, name = key.split(".", 1)
                    if key == "run.run_dir":
                        continue
                    if (section, name) not in RESUMABLE_OVERRIDES:
                        raise SystemExit(f"--resume uses the run's saved config; --{key} cannot change")
                    saved[section][name] = value
                configs = configs_from_json(saved)
            else:
                configs = build_configs(overrides, ALGORITHMS[algo][0])
        except (ValueError, TypeError) as error:
            raise SystemExit(f"vmjax train: {error}") from error
        train(configs, resume=args.resume)
        return 0
    if args.episodes < 2 or args.seeds < 1:
        raise SystemExit("vmjax evaluate: --episodes must be >= 2 and --seeds >= 1")
    evaluate(args.run_dirs, args.episodes, args.seeds, args.first_seed, args.out or args.run_dirs[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["ALGORITHMS", "CLI_DEFAULTS", "RunConfig", "evaluate", "main", "train"]
