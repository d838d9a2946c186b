"""Runs: train (or resume) a learner on a scenario into a run folder, load a run back, and evaluate trained runs
against the scenario's heuristics on the same held-out episodes. The command line (`vmjax.cli`), the notebooks
and bench call these functions; every scenario-specific step comes from the scenario registry
(`vmjax.scenarios`).

A run folder holds config.json, metrics.jsonl (one line per iteration; `null` for a metric of an iteration in
which no episode finished), learning_curve.png, checkpoint.msgpack (state, iteration, env steps, training wall
time and the state's sha256 in one atomically written file) and checkpoint.json (a human-readable summary of it,
never read back), run.lock (who trains in the folder: pid, host, start time; locked with flock while a training
runs), what the scenario's preparation keeps (predictor.msgpack and predictor_metrics.json for a learned
forecast, traffic.npy and norm_stats.json for TwinRouting, trace_bank.npz for TwinSplit, each derived artifact
with a `<name>.built.json` sidecar naming the config fingerprint it was built from: reused only when it matches),
TensorBoard event files with `run.log = "tensorboard"`, and after `evaluate` evaluation.json, evaluation.md and
evaluation.png.

Training runs in jitted chunks of `run.chunk_iterations` iterations; after every chunk its metrics lines are
appended (and fsynced), then the checkpoint is written. A resumed run continues from the checkpoint's iteration
with the same random stream; metrics.jsonl is cut back to that iteration (a torn last line is dropped), so an
interrupted run loses at most one chunk and its final state and metrics equal an uninterrupted run's. The folder
resumed is the one given (`--run.run_dir`), wherever it was created. `agent.num_iterations` may grow on resume
only for a config without annealed schedules (their slope is set by the total): such a run refuses the change.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import json
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np
from flax import serialization
from jax.sharding import Mesh

from baselines.evaluate import summarize_episodes
from vmjax import scenarios
from vmjax.agents import checkpoint
from vmjax.agents.trainer import annealed_fields
from vmjax.core import io, registry, validation
from vmjax.core.machine import machine_summary
from vmjax.core.sharding import world_mesh
from vmjax.scenarios.base import Configs, progress_end, progress_line, to_python

MetricsLog = Literal["jsonl", "tensorboard"]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where a run lives and how it is driven."""

    env: str = scenarios.DEFAULT_ENV_ID  # scenario (env id); `vmjax train --help` lists them
    run_dir: str = ""  # folder of the run (config, metrics, figures, checkpoint); "" = runs/<scenario>
    algo: str = ""  # learner; "" = the scenario's first (`vmjax train --env ENV --help` lists the scenario's)
    seed: int = 0  # training seed: worlds, network initialisation and action sampling
    chunk_iterations: int = 10  # iterations per jitted chunk; progress, metrics and checkpoint after each
    predictor_path: str = ""  # a saved predictor to use instead of training one (learned forecast only)
    predictor_seed: int = 1  # seed of the predictor's training data and initialisation
    calibrate_norm: bool = True  # scenarios with reward z-scores (TwinRouting): fit the constants to this run's
    # config (§3.3 A: Greedy and Random with the mask, `norm_episodes` episodes each); False: the library's defaults
    norm_episodes: int = 64  # episodes per policy of that calibration
    log: MetricsLog = "jsonl"  # metrics sinks: "jsonl" (metrics.jsonl) | "tensorboard" (metrics.jsonl and
    # TensorBoard event files in the run folder; needs `pip install 'vmjax[tensorboard]'`)
    num_devices: int = 0  # local devices the training is data parallel over (the worlds split among them,
    # the learner replicated, gradients summed across them); 0 = all local devices. Must divide agent.num_envs;
    # may change on resume. On a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N gives N devices

    def __post_init__(self):
        validation.check_choice("RunConfig", "env", self.env, tuple(scenarios.all_scenarios()))
        scenario = scenarios.get(self.env)
        if not self.algo:
            object.__setattr__(self, "algo", scenario.default_algo)
        if not self.run_dir:
            object.__setattr__(self, "run_dir", scenario.run_dir)
        validation.check_choice("RunConfig", "algo", self.algo, tuple(scenario.learners))
        validation.check_literal_fields(self)
        validation.check_int_at_least("RunConfig", "chunk_iterations", self.chunk_iterations, 1)
        validation.check_int_at_least("RunConfig", "seed", self.seed, 0)
        validation.check_int_at_least("RunConfig", "predictor_seed", self.predictor_seed, 0)
        validation.check_int_at_least("RunConfig", "norm_episodes", self.norm_episodes, 2)
        validation.check_int_at_least("RunConfig", "num_devices", self.num_devices, 0)


RESUMABLE_OVERRIDES = {
    ("agent", "num_iterations"),
    ("run", "chunk_iterations"),
    ("run", "log"),
    ("run", "num_devices"),
}


# ====================================================================== configs
def sections_of(env_id: str, algo: str) -> dict[str, type]:
    """Section name -> config class of a run of learner `algo` on scenario `env_id`."""
    return scenarios.get(env_id).config_sections(algo, RunConfig)


def build_configs(overrides: dict[str, Any], agent_cls=None) -> Configs:
    """Config dataclasses of every section of the run's scenario (`run.env`) from the scenario's command-line
    defaults and explicit overrides `{"section.field": value}` (errors name the field). `run.algo` alone implies
    its scenario; `agent_cls` is implied by `run.algo` and only checked."""
    run_values = {key.split(".", 1)[1]: v for key, v in overrides.items() if key.startswith("run.")}
    algorithms = scenarios.algorithms()
    if "algo" in run_values and "env" not in run_values and run_values["algo"] in algorithms:
        run_values["env"] = algorithms[run_values["algo"]]
    run = RunConfig(**run_values)
    scenario = scenarios.get(run.env)
    sections = sections_of(run.env, run.algo)
    if agent_cls is not None and agent_cls is not sections["agent"]:
        raise ValueError(f"agent config {agent_cls.__name__} does not belong to --run.algo {run.algo}")
    unknown = {key.split(".", 1)[0] for key in overrides} - set(sections)
    if unknown:
        raise ValueError(f"{run.env} has no config section(s) {sorted(unknown)}; sections: {sorted(sections)}")
    configs = {"run": run}
    for section, cls in sections.items():
        if section == "run":
            continue
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in scenario.defaults.get(section, {}).items() if k in names}
        values.update({key.split(".", 1)[1]: v for key, v in overrides.items() if key.split(".", 1)[0] == section})
        configs[section] = cls(**values)
    scenario.check(configs)
    return configs


def configs_to_json(configs: Configs) -> dict[str, dict]:
    return {section: dataclasses.asdict(config) for section, config in configs.items()}


def configs_from_json(data: dict[str, dict]) -> Configs:
    run = RunConfig(**data["run"])
    out = {}
    for section, cls in sections_of(run.env, run.algo).items():
        values = dict(data[section])
        for field in dataclasses.fields(cls):
            if isinstance(field.default, tuple) and field.name in values:
                values[field.name] = tuple(values[field.name])
        out[section] = cls(**values)
    return out


def resume_configs(run_dir: Path, overrides: dict[str, Any]) -> Configs:
    """The saved config of the run in `run_dir`, with the few overrides a resumed run may change
    (`RESUMABLE_OVERRIDES`); any other override that differs from the saved value is an error. The run folder is
    `run_dir` as given (the saved path may be stale: the folder moved, or was named another way)."""
    saved = read_saved_config(run_dir)
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        if key == "run.run_dir" or (key in ("run.env", "run.algo") and value == saved["run"].get(name, value)):
            continue
        if (section, name) not in RESUMABLE_OVERRIDES:
            raise SystemExit(f"--resume uses the run's saved config; --{key} cannot change")
        saved[section][name] = value
    saved["run"]["run_dir"] = str(run_dir)
    try:
        return configs_from_json(saved)
    except (KeyError, TypeError, ValueError) as error:
        raise SystemExit(f"{run_dir / 'config.json'}: not a config this version can read ({error})") from error


def read_saved_config(run_dir: Path) -> dict:
    """config.json of a run folder; a one-line SystemExit when it is missing or unreadable."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise SystemExit(f"{run_dir} is not a run folder (no config.json)")
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path} is unreadable ({error})") from error
    if not isinstance(saved, dict) or not isinstance(saved.get("run"), dict):
        raise SystemExit(f"{path} is not a run config")
    return saved


def run_label(configs: Configs) -> str:
    """A run's name in tables: the learner, then how its config departs from the proposed method's."""
    return scenarios.get(configs["run"].env).label(configs)


# ====================================================================== building a run
def build_env_and_params(configs: Configs, run_dir: Path, log=print):
    """The env of a run and its params, after the scenario's preparation (a predictor, reward statistics or a
    trace bank: trained or built here and kept in the run folder, or read back from it)."""
    run = configs["run"]
    env = registry.make(run.env, **dataclasses.asdict(configs["env"]))
    params = scenarios.get(run.env).prepare(env, env.default_params, configs, run_dir, log)
    return env, params


def make_trainer(configs: Configs, env, params):
    run = configs["run"]
    scenario = scenarios.get(run.env)
    return scenario.learners[run.algo].make_trainer(env, configs["agent"], params, log_metrics=scenario.log_metrics)


def training_mesh(configs: Configs, devices=None) -> Mesh | None:
    """The mesh a run trains on: the first `run.num_devices` of `devices` (default: this process's local
    devices; 0 = all of them), None for one device (no mesh: the program of a single-device run). A one-line
    SystemExit naming --run.num_devices when there are fewer devices or they do not divide agent.num_envs."""
    run, num_envs = configs["run"], configs["agent"].num_envs
    devices = list(jax.local_devices() if devices is None else devices)
    count = run.num_devices or len(devices)
    if count > len(devices):
        raise SystemExit(
            f"--run.num_devices {count}: only {len(devices)} local device(s) are available (on a CPU, set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={count} before starting)"
        )
    if num_envs % count:
        which = f"--run.num_devices {count}" if run.num_devices else f"the {count} local devices (--run.num_devices 0)"
        raise SystemExit(
            f"--agent.num_envs {num_envs} is not divisible by {which}: the worlds split evenly over the devices; "
            "choose --run.num_devices to divide it"
        )
    return None if count == 1 else world_mesh(count, devices=devices)


def read_metrics(path: Path, up_to_iteration: int | None = None) -> list[dict]:
    """metrics.jsonl records (optionally only those of finished, checkpointed iterations). A torn last line (a
    kill while it was appended) is dropped; an unreadable line before it is a ValueError naming it."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if not any(rest.strip() for rest in lines[number:]):
                break  # the torn tail of an interrupted append
            raise ValueError(f"{path}: line {number} is not valid JSON ({error})") from error
        if not isinstance(record, dict) or not isinstance(record.get("iteration"), int | float):
            raise ValueError(f"{path}: line {number} is not a metrics record")
        if up_to_iteration is None or record["iteration"] <= up_to_iteration:
            records.append(record)
    return records


def json_ready(value):
    """A metrics value with every non-finite float replaced by None (JSON has no NaN: written as null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


class MetricsSinks:
    """Where a run's per-iteration records go: metrics.jsonl always (resuming reads it back), plus TensorBoard
    event files in the run folder with `run.log = "tensorboard"` (scalars by iteration; null values skipped)."""

    def __init__(self, run_dir: Path, kind: str):
        self.jsonl = run_dir / "metrics.jsonl"
        self.tensorboard = None
        if kind == "tensorboard":
            try:
                from tensorboardX import SummaryWriter
            except ImportError as error:
                raise SystemExit(
                    "--run.log tensorboard needs tensorboardX: pip install 'vmjax[tensorboard]'"
                ) from error
            self.tensorboard = SummaryWriter(logdir=str(run_dir))

    def write(self, records: list[dict]) -> None:
        records = [json_ready(r) for r in records]
        io.append_lines(self.jsonl, [json.dumps(r, allow_nan=False) for r in records])  # before the checkpoint
        if self.tensorboard is not None:
            for record in records:
                for name, value in record.items():
                    if name != "iteration" and value is not None and np.ndim(value) == 0:
                        self.tensorboard.add_scalar(name, value, record["iteration"])
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


class RunLock:
    """An exclusive, non-blocking `flock` on run.lock in the run folder, held while a run trains there; the file
    names the holder (pid, host, start time), and a second training of the folder stops at once naming it."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "run.lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown holder"
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise SystemExit(f"{self.path}: cannot lock the run folder ({error.strerror})") from None
            raise SystemExit(f"{self.path.parent} is being trained by another process ({holder})") from None
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


# ====================================================================== train
CHECKPOINT = "checkpoint.msgpack"
CHECKPOINT_SUMMARY = "checkpoint.json"  # written after the checkpoint for people and notebooks; never read back


def read_run_checkpoint(run_dir: Path) -> tuple[dict, bytes]:
    """(progress: iteration, env_steps, train_wall_s; state bytes) of the run folder's checkpoint, checksum
    verified; a run folder of the earlier format (bare state + checkpoint.json) reads its progress from
    checkpoint.json (marked "legacy"). A one-line SystemExit naming the file when either is missing, empty or
    damaged."""
    try:
        progress, state_bytes = checkpoint.read_checkpoint(run_dir / CHECKPOINT)
    except checkpoint.CheckpointError as error:
        raise SystemExit(str(error)) from None
    if progress is None:
        summary = run_dir / CHECKPOINT_SUMMARY
        try:
            progress = json.loads(summary.read_text())
            progress = {"iteration": int(progress["iteration"]), **progress, "legacy": True}
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise SystemExit(
                f"{run_dir / CHECKPOINT} is of the earlier format and its {summary.name} is missing or unreadable "
                f"({error.__class__.__name__}: {error}): its iteration is unknown"
            ) from None
    at = _state_iteration(state_bytes)
    if at is not None and at != progress["iteration"]:
        if not progress.get("legacy"):
            raise SystemExit(
                f"{run_dir / CHECKPOINT} is corrupt: its state is at iteration {at}, its record says "
                f"{progress['iteration']}"
            )
        progress["iteration"] = at  # killed between the two files of the earlier format: the state decides
    return progress, state_bytes


def _state_iteration(state_bytes: bytes) -> int | None:
    """The `iteration` field of a saved trainer state (None where it has none or cannot be read here)."""
    try:
        tree = serialization.msgpack_restore(state_bytes)
        return int(np.asarray(tree["iteration"]))
    except Exception:  # no such field, or bytes that restore_state will report on
        return None


def restore_run_state(run_dir: Path, state_bytes: bytes, template):
    try:
        return checkpoint.restore_state(state_bytes, template, f"checkpoint {str(run_dir / CHECKPOINT)!r}")
    except checkpoint.CheckpointError as error:
        raise SystemExit(str(error)) from None


def check_resumed_configs(configs: Configs, saved: dict) -> None:
    """A resumed run's configs against the saved ones: only `RESUMABLE_OVERRIDES` may differ, and the total
    iterations only for a config without annealed schedules (their slope is set by the total)."""
    current = configs_to_json(configs)
    for section, values in current.items():
        for name, value in values.items():
            if (section, name) in RESUMABLE_OVERRIDES or (section, name) == ("run", "run_dir"):
                continue
            if json.loads(json.dumps(value)) != saved.get(section, {}).get(name, value):
                raise SystemExit(f"--resume uses the run's saved config; --{section}.{name} cannot change")
    before = saved.get("agent", {}).get("num_iterations")
    annealed = annealed_fields(configs["agent"])
    if before is not None and before != configs["agent"].num_iterations and annealed:
        raise SystemExit(
            f"--agent.num_iterations cannot change on resume ({before} -> {configs['agent'].num_iterations}): "
            f"this config anneals over the total ({', '.join('agent.' + f for f in annealed)}), so a new total "
            "would re-stretch its schedule; train a new run instead"
        )


def train(configs: Configs, resume: bool = False, log=print, progress: bool = True) -> Path:
    """Run (or continue) a training run; returns the run folder. The folder is locked for the whole run.
    `progress=False` drops the per-chunk progress line on stderr (a notebook keeps it out of its outputs)."""
    run_dir = Path(configs["run"].run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        return _train_locked(configs, run_dir, resume, log, progress)


def _train_locked(configs: Configs, run_dir: Path, resume: bool, log, progress_shown: bool = True) -> Path:
    run = configs["run"]
    scenario = scenarios.get(run.env)
    ckpt_path = run_dir / CHECKPOINT
    if not resume and (ckpt_path.exists() or (run_dir / CHECKPOINT_SUMMARY).exists()):
        raise SystemExit(
            f"{run_dir} already holds a checkpoint: pass --resume to continue it, or another --run.run_dir"
        )
    progress, state_bytes = {"iteration": 0, "train_wall_s": 0.0}, b""
    mesh = training_mesh(configs)  # before any preparation: a wrong device count fails at once
    if resume:
        check_resumed_configs(configs, read_saved_config(run_dir))
        if not ckpt_path.exists():
            raise SystemExit(
                f"--resume: {run_dir} has no {CHECKPOINT} (the run stopped before its first chunk finished, or the "
                "file was removed); start it afresh without --resume"
            )
        progress, state_bytes = read_run_checkpoint(run_dir)
    done, wall_before = int(progress["iteration"]), float(progress.get("train_wall_s", 0.0))
    metrics_path = run_dir / "metrics.jsonl"
    try:
        records = read_metrics(metrics_path, done) if resume else []  # a fresh run starts a fresh file
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if [r["iteration"] for r in records] != list(range(1, done + 1)):
        raise SystemExit(f"{metrics_path} does not hold one record per iteration 1..{done} of the checkpoint")
    io.atomic_write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in records))
    saved = configs_to_json(configs)
    saved["machine"] = machine_summary()
    io.atomic_write_json(run_dir / "config.json", saved)

    env, params = build_env_and_params(configs, run_dir, log)
    agent = configs["agent"]
    trainer = make_trainer(configs, env, params).on_mesh(mesh)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(run.seed))
    if resume:
        state = restore_run_state(run_dir, state_bytes, state)  # host arrays: any device count restores them
        log(
            f"resuming {run_dir} from iteration {done}"
            + (" (earlier checkpoint format)" if "legacy" in progress else "")
        )
    state = trainer.place(state)  # on the mesh (worlds split, learner replicated); as it is on one device
    sinks = MetricsSinks(run_dir, run.log)

    total = agent.num_iterations
    steps_per_iteration = agent.num_envs * agent.num_steps
    compiled: dict[int, Any] = {}
    wall = wall_before
    variant = scenario.variant(configs)
    headline = scenario.headline_metric
    log(
        f"training {run.algo} on {run.env} ({env.num_agents} agents, {configs['env'].num_rsus} RSUs, {variant}), "
        f"{agent.num_envs} worlds{_on_devices(mesh)}, {total} iterations [{machine_summary()}]"
    )
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
        new = [json_ready(to_python({k: v[i] for k, v in metrics.items()})) for i in range(chunk)]
        for record in new:
            record["wall_s"] = round(wall, 3)
        sinks.write(new)
        records.extend(new)
        done += chunk
        info = {"iteration": done, "env_steps": done * steps_per_iteration, "train_wall_s": wall}
        checkpoint.save_checkpoint(ckpt_path, state, **info)
        io.atomic_write_json(run_dir / CHECKPOINT_SUMMARY, {**info, "checkpoint": CHECKPOINT})
        last = new[-1]
        if progress_shown:
            progress_line(
                f"{_bar(done, total)} {done}/{total} it  {chunk * steps_per_iteration / elapsed:,.0f} env steps/s  "
                f"return {_shown(last.get('episode_return'), 1)}  {headline.removeprefix('episode_')} "
                f"{_shown(last.get(headline), 3)}  eta {(total - done) * elapsed / chunk:.0f} s"
            )
    if progress_shown:
        progress_end()
    sinks.close()
    from vmjax import report

    report.plot_learning_curve(
        records,
        run_dir / "learning_curve.png",
        f"{run.algo} on {run.env} ({variant})",
        metric=headline,
        metric_label=scenario.headline_label,
    )
    log(
        f"done: {done} iterations, {done * steps_per_iteration:,} env steps, {wall:.0f} s of training; "
        f"wrote {run_dir}/metrics.jsonl, learning_curve.png, {CHECKPOINT}"
    )
    return run_dir


def _on_devices(mesh: Mesh | None) -> str:
    """The " split over N devices" of a log line; "" on one device."""
    return "" if mesh is None else f" split over {mesh.devices.size} devices"


def _shown(value, digits: int) -> str:
    """A progress-line number; "–" where the iteration has none (no episode finished)."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# ====================================================================== evaluate
def load_run(run_dir: Path):
    """(configs, env, params, trainer, trainer state) of a finished or interrupted run."""
    run_dir = Path(run_dir)
    saved = read_saved_config(run_dir)
    saved["run"]["run_dir"] = str(run_dir)
    try:
        configs = configs_from_json(saved)
    except (KeyError, TypeError, ValueError) as error:
        raise SystemExit(f"{run_dir / 'config.json'}: not a config this version can read ({error})") from error
    _, state_bytes = read_run_checkpoint(run_dir)
    env, params = build_env_and_params(configs, run_dir, log=lambda *_: None)
    trainer = make_trainer(configs, env, params)
    template = jax.jit(trainer.init)(jax.random.PRNGKey(configs["run"].seed))
    state = restore_run_state(run_dir, state_bytes, template)
    return configs, env, params, trainer, state


def check_writable(folder: Path) -> None:
    """Create `folder` and probe that a file can be written there; a one-line SystemExit otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise SystemExit(f"output folder {folder} is not writable ({error.strerror or error})") from None


def evaluate(run_dirs: list[Path], episodes: int, seeds: int, first_seed: int, out_dir: Path, log=print) -> dict:
    """Trained policies of `run_dirs` and the scenario's heuristics on the same held-out episodes: `seeds` sets of
    `episodes` worlds drawn from PRNGKey(first_seed + s), disjoint from the training stream."""
    from vmjax import report

    for run_dir in run_dirs:  # cheap checks first: run folders, then the output folder, then the evaluation
        read_saved_config(Path(run_dir))
    check_writable(Path(out_dir))
    runs = [load_run(Path(d)) for d in run_dirs]
    (configs0, env0, params0, *_) = runs[0]
    env_id = configs0["run"].env
    spec = scenarios.get(env_id).evaluation

    def shape(configs, env):
        return configs["run"].env, env.num_agents, configs["env"].num_rsus, env.config.max_steps

    for configs, env, *_ in runs[1:]:
        if shape(configs, env) != shape(configs0, env0):
            raise SystemExit("evaluate: all runs must share the scenario, num_vehicles, num_rsus and max_steps")
    groups = [(env0, params0, {name: make(env0) for name, make in spec.policies.items()})]
    labels = [run_label(configs) for configs, *_ in runs]
    run_of_label: dict[str, str] = {}
    for index, (run_dir, (configs, env, params, trainer, state)) in enumerate(zip(run_dirs, runs)):
        label = labels[index]
        if labels.count(label) > 1:  # two runs of the same kind: tell them apart by their folder
            label = f"{label} [{Path(run_dir).name}]"
        groups.append((env, params, {label: trainer.make_eval_policy(state)}))
        run_of_label[label] = str(run_dir)
    per_seed: dict[str, list[dict]] = {}
    episodes_all: dict[str, dict[str, list]] = {}
    start = time.perf_counter()
    for env, params, policies in groups:
        names = list(policies)
        evaluator = spec.make_policy_evaluator(env, [policies[n] for n in names], params, episodes)
        for s in range(seeds):
            key = jax.random.PRNGKey(first_seed + s)
            for index, name in enumerate(names):
                result = {k: np.asarray(v) for k, v in jax.device_get(evaluator(key, index)).items()}
                result = {k: v for k, v in result.items() if not np.all(np.isnan(v))}  # metrics a policy lacks
                per_seed.setdefault(name, []).append(summarize_episodes(result))
                for k, v in result.items():
                    episodes_all.setdefault(name, {}).setdefault(k, []).append(v)
    results = {}
    for name, seed_summaries in per_seed.items():
        pooled = summarize_episodes({k: np.concatenate(v) for k, v in episodes_all[name].items()})
        for metric in spec.seed_metrics:
            seed_means = np.array([s[metric] for s in seed_summaries])
            pooled[f"{metric}_seed_std"] = float(seed_means.std(ddof=1)) if seeds > 1 else 0.0
            pooled[f"{metric}_seed_means"] = seed_means.tolist()
        if name in run_of_label:
            pooled["run_dir"] = run_of_label[name]
        results[name] = pooled
    wall = time.perf_counter() - start
    table = spec.table(results, episodes, seeds)
    log(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_summary()
    io.atomic_write_json(
        out_dir / "evaluation.json",
        {
            "env": env_id,
            "runs": [str(d) for d in run_dirs],
            "episodes_per_seed": episodes,
            "seeds": seeds,
            "first_seed": first_seed,
            "results": results,
            "wall_s": wall,
            "machine": machine,
        },
    )
    io.atomic_write_text(
        out_dir / "evaluation.md", table + f"\n\nmachine: {machine}; evaluation wall time {wall:.0f} s\n"
    )
    report.plot_comparison(
        results, out_dir / "evaluation.png", f"{env_id}: {seeds} x {episodes} held-out episodes", panels=spec.panels
    )
    log(f"wrote {out_dir}/evaluation.json, evaluation.md, evaluation.png ({wall:.0f} s)")
    return results


__all__ = [
    "RESUMABLE_OVERRIDES",
    "MetricsSinks",
    "RunConfig",
    "RunLock",
    "build_configs",
    "build_env_and_params",
    "configs_from_json",
    "configs_to_json",
    "check_writable",
    "evaluate",
    "json_ready",
    "load_run",
    "make_trainer",
    "read_metrics",
    "resume_configs",
    "run_label",
    "sections_of",
    "train",
    "training_mesh",
]
