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

import contextlib
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax.sharding import Mesh

from baselines.evaluate import summarize_episodes
from vmjax import scenarios
from vmjax.agents import checkpoint
from vmjax.agents.trainer import annealed_fields
from vmjax.core import io, registry, validation
from vmjax.core.distributed import barrier, is_main_process, to_host
from vmjax.core.machine import machine_summary
from vmjax.core.sharding import replicate, seed_mesh, shard_seeds, world_mesh
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
    seeds: int = 1  # > 1: a seed group, the training seeds seed, seed + 1, ..., seed + seeds - 1 trained together
    # in one program (vmapped; the seeds, not the worlds, split over --run.num_devices devices), each seed's run
    # folder RUN_DIR/seed-S (a run folder like any other: evaluate, resume or plot it alone)

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
        validation.check_int_at_least("RunConfig", "seeds", self.seeds, 1)


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


def run_devices() -> list:
    """The devices a run trains on: this process's local devices, or every process's in a multi-host run."""
    return list(jax.local_devices() if jax.process_count() == 1 else jax.devices())


def _device_kind() -> str:
    return "local" if jax.process_count() == 1 else "global"


def training_mesh(configs: Configs, devices=None) -> Mesh | None:
    """The mesh a run trains on: the first `run.num_devices` of `devices` (default: this process's local
    devices; 0 = all of them), None for one device (no mesh: the program of a single-device run). A one-line
    SystemExit naming --run.num_devices when there are fewer devices or they do not divide agent.num_envs."""
    run, num_envs = configs["run"], configs["agent"].num_envs
    devices = list(run_devices() if devices is None else devices)
    count = run.num_devices or len(devices)
    if count > len(devices):
        raise SystemExit(
            f"--run.num_devices {count}: only {len(devices)} {_device_kind()} device(s) are available (on a CPU, set "
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

    def __init__(self, run_dir: Path, kind: str, enabled: bool = True):
        self.jsonl = run_dir / "metrics.jsonl" if enabled else None  # disabled: another process writes them
        self.tensorboard = None
        if enabled and kind == "tensorboard":
            try:
                from tensorboardX import SummaryWriter
            except ImportError as error:
                raise SystemExit(
                    "--run.log tensorboard needs tensorboardX: pip install 'vmjax[tensorboard]'"
                ) from error
            self.tensorboard = SummaryWriter(logdir=str(run_dir))

    def write(self, records: list[dict]) -> None:
        if self.jsonl is None:
            return
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


def start_or_resume(configs: Configs, run_dir: Path, resume: bool) -> tuple[dict, bytes]:
    """(progress, state bytes) a training starts from: nothing for a fresh run (which must not overwrite a
    checkpoint), the checkpoint of `run_dir` for a resumed one (whose configs are checked against the saved)."""
    if not resume:
        if (run_dir / CHECKPOINT).exists() or (run_dir / CHECKPOINT_SUMMARY).exists():
            raise SystemExit(
                f"{run_dir} already holds a checkpoint: pass --resume to continue it, or another --run.run_dir"
            )
        return {"iteration": 0, "train_wall_s": 0.0}, b""
    check_resumed_configs(configs, read_saved_config(run_dir))
    if not (run_dir / CHECKPOINT).exists():
        raise SystemExit(
            f"--resume: {run_dir} has no {CHECKPOINT} (the run stopped before its first chunk finished, or the "
            "file was removed); start it afresh without --resume"
        )
    return read_run_checkpoint(run_dir)


def kept_metrics(run_dir: Path, done: int, resume: bool) -> list[dict]:
    """The metrics records of iterations 1..`done` (those of the checkpoint), written back to metrics.jsonl so
    that a resumed run appends after them; a fresh run starts a fresh file."""
    metrics_path = run_dir / "metrics.jsonl"
    try:
        records = read_metrics(metrics_path, done) if resume else []
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if [r["iteration"] for r in records] != list(range(1, done + 1)):
        raise SystemExit(f"{metrics_path} does not hold one record per iteration 1..{done} of the checkpoint")
    if is_main_process():
        io.atomic_write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in records))
    return records


def write_config(configs: Configs, run_dir: Path) -> None:
    """config.json of a run folder: the configs and the machine (process 0 alone writes it)."""
    if not is_main_process():
        return
    saved = configs_to_json(configs)
    saved["machine"] = machine_summary()
    io.atomic_write_json(run_dir / "config.json", saved)


def chunk_records(metrics: dict, chunk: int, wall_s: float) -> list[dict]:
    """The metrics.jsonl records of a chunk's stacked metrics (host arrays [chunk, ...]), stamped with the
    training wall time so far."""
    records = [json_ready(to_python({k: v[i] for k, v in metrics.items()})) for i in range(chunk)]
    for record in records:
        record["wall_s"] = round(wall_s, 3)
    return records


def save_progress(run_dir: Path, state, info: dict) -> None:
    """The checkpoint of `state` with its progress `info` (iteration, env_steps, train_wall_s), then its
    human-readable summary. The state's shards are gathered from every process (a collective); process 0 alone
    writes."""
    state = to_host(state)
    if not is_main_process():
        return
    checkpoint.save_checkpoint(run_dir / CHECKPOINT, state, **info)
    io.atomic_write_json(run_dir / CHECKPOINT_SUMMARY, {**info, "checkpoint": CHECKPOINT})


def progress_text(scenario, done: int, total: int, steps_per_s: float, last: dict, seconds_per_iteration: float) -> str:
    """The progress line after a chunk: bar, iterations, speed, the last iteration's return and headline metric,
    and the time left."""
    headline = scenario.headline_metric
    return (
        f"{_bar(done, total)} {done}/{total} it  {steps_per_s:,.0f} env steps/s  "
        f"return {_shown(last.get('episode_return'), 1)}  {headline.removeprefix('episode_')} "
        f"{_shown(last.get(headline), 3)}  eta {(total - done) * seconds_per_iteration:.0f} s"
    )


def plot_run_curve(configs: Configs, records: list[dict], run_dir: Path) -> None:
    from vmjax import report

    if not is_main_process():
        return
    run = configs["run"]
    scenario = scenarios.get(run.env)
    report.plot_learning_curve(
        records,
        run_dir / "learning_curve.png",
        f"{run.algo} on {run.env} ({scenario.variant(configs)})",
        metric=scenario.headline_metric,
        metric_label=scenario.headline_label,
    )


def train(configs: Configs, resume: bool = False, log=print, progress: bool = True) -> Path:
    """Run (or continue) a training run; returns the run folder. The folder is locked for the whole run.
    `progress=False` drops the per-chunk progress line on stderr (a notebook keeps it out of its outputs).

    In a multi-host run (`vmjax.core.distributed`) every process calls this with the same configs: the worlds (or
    a seed group's seeds) split over every process's devices, process 0 alone locks the folder, logs and writes,
    and the folder must be one every process sees (a shared disk: the others read the prepared artifacts and,
    on resume, the checkpoint from it)."""
    run_dir = Path(configs["run"].run_dir)
    main = is_main_process()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        log, progress = (lambda *_: None), False
    with RunLock(run_dir) if main else contextlib.nullcontext():
        if configs["run"].seeds > 1:
            return _train_seed_group_locked(configs, run_dir, resume, log, progress)
        return _train_locked(configs, run_dir, resume, log, progress)


def prepare_run(configs: Configs, run_dir: Path, log=print):
    """`build_env_and_params`, process 0 first in a multi-host run: the others then read what it prepared (and
    stop with a clear error when the run folder is not one they see)."""
    if jax.process_count() == 1:
        return build_env_and_params(configs, run_dir, log)
    prepared = build_env_and_params(configs, run_dir, log) if is_main_process() else None
    barrier(f"vmjax: {run_dir} prepared")
    if prepared is None:
        if not (run_dir / "config.json").is_file():
            raise SystemExit(
                f"{run_dir}: process {jax.process_index()} does not see the run folder that process 0 writes; a "
                "multi-host run needs a --run.run_dir on a disk every process shares"
            )
        prepared = build_env_and_params(configs, run_dir, log)
    return prepared


def _train_locked(configs: Configs, run_dir: Path, resume: bool, log, progress_shown: bool = True) -> Path:
    run = configs["run"]
    scenario = scenarios.get(run.env)
    mesh = training_mesh(configs)  # before any preparation: a wrong device count fails at once
    progress, state_bytes = start_or_resume(configs, run_dir, resume)
    done, wall_before = int(progress["iteration"]), float(progress.get("train_wall_s", 0.0))
    records = kept_metrics(run_dir, done, resume)
    write_config(configs, run_dir)

    env, params = prepare_run(configs, run_dir, log)
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
    sinks = MetricsSinks(run_dir, run.log, enabled=is_main_process())

    total = agent.num_iterations
    steps_per_iteration = agent.num_envs * agent.num_steps
    compiled: dict[int, Any] = {}
    wall = wall_before
    log(
        f"training {run.algo} on {run.env} ({env.num_agents} agents, {configs['env'].num_rsus} RSUs, "
        f"{scenario.variant(configs)}), {agent.num_envs} worlds{_on_devices(mesh)}, {total} iterations "
        f"[{machine_summary()}]"
    )
    while done < total:
        chunk = min(run.chunk_iterations, total - done)
        if chunk not in compiled:
            start = time.perf_counter()
            compiled[chunk] = jax.jit(trainer.run, static_argnums=1).lower(state, chunk).compile()
            log(f"compiled a chunk of {chunk} iterations in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        state, metrics = compiled[chunk](state)
        metrics = to_host(metrics)
        elapsed = time.perf_counter() - start
        wall += elapsed
        new = chunk_records(metrics, chunk, wall)
        sinks.write(new)
        records.extend(new)
        done += chunk
        info = {"iteration": done, "env_steps": done * steps_per_iteration, "train_wall_s": wall}
        save_progress(run_dir, state, info)
        if progress_shown:
            progress_line(
                progress_text(scenario, done, total, chunk * steps_per_iteration / elapsed, new[-1], elapsed / chunk)
            )
    if progress_shown:
        progress_end()
    sinks.close()
    plot_run_curve(configs, records, run_dir)
    log(
        f"done: {done} iterations, {done * steps_per_iteration:,} env steps, {wall:.0f} s of training; "
        f"wrote {run_dir}/metrics.jsonl, learning_curve.png, {CHECKPOINT}"
    )
    return run_dir


# ---------------------------------------------------------------------- seed groups (--run.seeds K)
def seed_member_configs(configs: Configs) -> list[Configs]:
    """The configs of each seed of a seed group: run.seed + k for k < run.seeds, one seed each, in the group
    folder's seed-S subfolder; everything else the group's. Each is what `vmjax train --run.seed S` would run."""
    run = configs["run"]
    members = []
    for k in range(run.seeds):
        seed = run.seed + k
        member = dataclasses.replace(run, seed=seed, seeds=1, run_dir=str(Path(run.run_dir) / f"seed-{seed}"))
        members.append({**configs, "run": member})
    return members


def seed_group_mesh(configs: Configs, devices=None) -> Mesh | None:
    """The mesh a seed group's seeds split over: `run.num_devices` of `devices` (default: this process's local
    devices), which must divide `run.seeds`; with num_devices 0, the most of them that divide it. None on one
    device. A one-line SystemExit naming the flags otherwise."""
    run = configs["run"]
    devices = list(run_devices() if devices is None else devices)
    if run.num_devices > len(devices):
        raise SystemExit(
            f"--run.num_devices {run.num_devices}: only {len(devices)} {_device_kind()} device(s) are available "
            "(on a CPU, set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={run.num_devices} before starting)"
        )
    if run.num_devices and run.seeds % run.num_devices:
        raise SystemExit(
            f"--run.seeds {run.seeds} is not divisible by --run.num_devices {run.num_devices}: a seed group splits "
            "its seeds evenly over the devices"
        )
    count = run.num_devices or max(c for c in range(1, min(len(devices), run.seeds) + 1) if run.seeds % c == 0)
    return None if count == 1 else seed_mesh(count, devices=devices)


def stack_params(params_per_seed: list) -> tuple[Any, int | None]:
    """(params, vmap axis) of a seed group's env params: the one pytree and axis None when every seed's
    preparation gave the same params (the usual case), else the pytrees stacked along a new leading seed axis
    and axis 0 (e.g. TwinRouting's reward statistics, calibrated from each run's seed)."""
    first = params_per_seed[0]
    structure = jax.tree.structure(first)
    same = all(
        jax.tree.structure(p) == structure
        and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(p)))
        for p in params_per_seed[1:]
    )
    if same:
        return first, None
    return jax.tree.map(lambda *leaves: np.stack(leaves), *params_per_seed), 0


def seed_slice(tree, k: int):
    """Seed k's pytree out of a seed group's stacked one (host arrays)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf)[k], tree)


def _train_seed_group_locked(configs: Configs, run_dir: Path, resume: bool, log, progress_shown: bool) -> Path:
    """`train` of a seed group: `run.seeds` seeds in one jitted program (`jax.vmap` of the trainer over the seed
    axis, that axis split over `seed_group_mesh`). The group folder holds the group's config and stacked
    checkpoint (what `--resume` reads); each seed's subfolder is a complete run folder (config, prepared
    artifacts, metrics, curve, checkpoint) equal to what training that seed alone would write."""
    run, agent = configs["run"], configs["agent"]
    scenario = scenarios.get(run.env)
    mesh = seed_group_mesh(configs)
    progress, state_bytes = start_or_resume(configs, run_dir, resume)
    done, wall = int(progress["iteration"]), float(progress.get("train_wall_s", 0.0))
    write_config(configs, run_dir)
    members = seed_member_configs(configs)
    member_dirs = [Path(m["run"].run_dir) for m in members]
    records = []
    for member, member_dir in zip(members, member_dirs):
        member_dir.mkdir(parents=True, exist_ok=True)
        records.append(kept_metrics(member_dir, done, resume))
        write_config(member, member_dir)

    prepared = [prepare_run(m, d, log) for m, d in zip(members, member_dirs)]  # each seed's own
    env = prepared[0][0]
    params, params_axis = stack_params([p for _, p in prepared])

    def trainer_of(env_params):
        return make_trainer(configs, env, env_params)

    keys = jnp.stack([jax.random.PRNGKey(m["run"].seed) for m in members])
    state = jax.jit(jax.vmap(lambda key, p: trainer_of(p).init(key), in_axes=(0, params_axis)))(keys, params)
    if resume:
        state = restore_run_state(run_dir, state_bytes, state)
        log(f"resuming the seed group {run_dir} from iteration {done}")
    state = shard_seeds(state, mesh)
    params = shard_seeds(params, mesh) if params_axis == 0 else replicate(params, mesh)
    sinks = [MetricsSinks(d, run.log, enabled=is_main_process()) for d in member_dirs]
    if resume:
        for member_dir, k in zip(member_dirs, range(run.seeds)):  # a kill between the group's and a seed's save
            save_progress(member_dir, seed_slice(state, k), {**progress, "iteration": done})

    total = agent.num_iterations
    steps_per_iteration = agent.num_envs * agent.num_steps
    compiled: dict[int, Any] = {}
    headline = scenario.headline_metric
    log(
        f"training {run.algo} on {run.env} ({env.num_agents} agents, {configs['env'].num_rsus} RSUs, "
        f"{scenario.variant(configs)}), seeds {run.seed}..{run.seed + run.seeds - 1} in one program"
        f"{_on_devices(mesh)}, {agent.num_envs} worlds each, {total} iterations [{machine_summary()}]"
    )
    while done < total:
        chunk = min(run.chunk_iterations, total - done)
        if chunk not in compiled:
            start = time.perf_counter()
            run_all = jax.vmap(lambda s, p, n=chunk: trainer_of(p).run(s, n), in_axes=(0, params_axis))
            compiled[chunk] = jax.jit(run_all).lower(state, params).compile()
            log(f"compiled a chunk of {chunk} iterations for {run.seeds} seeds in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        state, metrics = compiled[chunk](state, params)
        state = shard_seeds(state, mesh)  # the layout the chunk was compiled for
        metrics = to_host(metrics)
        elapsed = time.perf_counter() - start
        wall += elapsed
        done += chunk
        info = {"iteration": done, "env_steps": done * steps_per_iteration, "train_wall_s": wall}
        new = [chunk_records(seed_slice(metrics, k), chunk, wall) for k in range(run.seeds)]
        for k, member_dir in enumerate(member_dirs):
            sinks[k].write(new[k])  # every seed's metrics before the group's checkpoint
            records[k].extend(new[k])
        host_state = to_host(state)
        save_progress(run_dir, host_state, info)  # the group's: what --resume reads
        for k, member_dir in enumerate(member_dirs):
            save_progress(member_dir, seed_slice(host_state, k), info)
        if progress_shown:
            mean_last = {name: _seed_mean([r[-1].get(name) for r in new]) for name in ("episode_return", headline)}
            speed = run.seeds * chunk * steps_per_iteration / elapsed
            progress_line(progress_text(scenario, done, total, speed, mean_last, elapsed / chunk) + " (seed mean)")
    if progress_shown:
        progress_end()
    for k, (member, member_dir) in enumerate(zip(members, member_dirs)):
        sinks[k].close()
        plot_run_curve(member, records[k], member_dir)
    log(
        f"done: {done} iterations x {run.seeds} seeds, {done * steps_per_iteration:,} env steps each, {wall:.0f} s "
        f"of training; wrote {run_dir}/seed-*/ (metrics.jsonl, learning_curve.png, {CHECKPOINT}) and the group's "
        f"{CHECKPOINT}"
    )
    return run_dir


def _seed_mean(values: list) -> float | None:
    """The mean over a group's seeds of a progress-line number, over the seeds that have it (None if none)."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(present)) if present else None


def seed_group_runs(run_dir: Path) -> list[Path]:
    """The run folders `run_dir` stands for: its seeds' folders when it is a seed group's folder
    (`--run.seeds` > 1 in its config.json), else `run_dir` itself."""
    saved = read_saved_config(Path(run_dir))
    seeds = int(saved["run"].get("seeds", 1))
    if seeds <= 1:
        return [Path(run_dir)]
    first = int(saved["run"].get("seed", 0))
    return [Path(run_dir) / f"seed-{first + k}" for k in range(seeds)]


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


def evaluate(
    run_dirs: list[Path],
    episodes: int,
    seeds: int,
    first_seed: int,
    out_dir: Path,
    log=print,
    heuristics: Sequence[str] | None = None,
) -> dict:
    """Trained policies of `run_dirs` and the scenario's heuristics (all of its default ones, or the named
    `heuristics`, which may include its optional planners) on the same held-out episodes: `seeds` sets of
    `episodes` worlds drawn from PRNGKey(first_seed + s), disjoint from the training stream."""
    from vmjax import report

    run_dirs = [member for run_dir in run_dirs for member in seed_group_runs(Path(run_dir))]  # a group: its seeds
    # cheap checks first: the run folders, the heuristics' names, the output folder; then the evaluation
    saved = [read_saved_config(Path(run_dir)) for run_dir in run_dirs]
    try:
        selected = scenarios.get(saved[0]["run"].get("env", "")).evaluation.select_policies(heuristics)
    except ValueError as error:
        raise SystemExit(f"evaluate: {error}") from None
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
    groups = [(env0, params0, {name: make(env0) for name, make in selected.items()})]
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
    "seed_group_runs",
    "sections_of",
    "train",
    "training_mesh",
]
