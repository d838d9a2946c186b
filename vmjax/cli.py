"""The `vmjax` command line: train a learner on a scenario, then compare it with the scenario's heuristics.

    vmjax train [--run.run_dir runs/avatar_premigration] [--agent.num_iterations 150] [--env.workload_forecast none]
    vmjax train --env TwinRouting-v0 --algo dm-mappo [--env.use_mask false]   # spec 002 (DM-MAPPO, MASAC)
    vmjax train --env TwinSplit-v0 [--agent.mode local_edge] [--trajectories.source generated]  # spec 004 (MSRL)
    vmjax train --env CrossRealityPrivacy-v0 [--algo hppo]           # spec 000 (LHDPPO and the §7 learners)
    vmjax train --run.run_dir runs/avatar_premigration --resume      # continue from the last checkpoint
    vmjax evaluate runs/avatar_premigration [more run folders]       # trained policies vs heuristics

Scenarios (`--env`, default AvatarPremigration-v0): AvatarPremigration-v0 (spec 003; --algo hybrid_mappo |
mappo_ddpg), TwinRouting-v0 (spec 002; --algo dm_mappo | masac), TwinSplit-v0 (spec 004; --algo msrl, its
Split / Local-Edge / Local-Model variants by --agent.mode) and CrossRealityPrivacy-v0 (spec 000; --algo lhdppo |
hdppo | ghppo | hppo | ppo_relaxed | hgdm). Every config field is a flag
`--<section>.<field>`; `vmjax train --env E --algo A --help` lists them all with their defaults.
A run folder holds config.json, the predictor (predictor.msgpack, its metrics predictor_metrics.json and, for
TwinRouting-v0, its training series traffic.npy and the run's reward statistics norm_stats.json; for TwinSplit-v0
the trajectory bank trace_bank.npz instead), metrics.jsonl
(one line per iteration), learning_curve.png, checkpoint.msgpack + checkpoint.json, and after `evaluate`
evaluation.json, evaluation.md and evaluation.png. Training runs in jitted chunks of `run.chunk_iterations`
iterations; the checkpoint and the metrics are written (atomically) after every chunk, so an interrupted run
loses at most one chunk and `--resume` continues from the same iteration with the same random stream.

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
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import jax
import numpy as np

from vmjax import predict
from vmjax.agents import checkpoint, dm_mappo, hgdm, hybrid_mappo, lhdppo, mappo_ddpg, masac, msrl
from vmjax.core import io, registry, validation
from vmjax.envs.avatar_premigration import AvatarPremigrationConfig
from vmjax.envs.cross_reality_privacy import CrossRealityPrivacyConfig
from vmjax.envs.twin_routing import NormStats, TwinRoutingConfig
from vmjax.envs.twin_split import TwinSplitConfig


@dataclasses.dataclass(frozen=True)
class TrafficConfig:
    """The workload predictor's training series (TwinRouting-v0, spec 002 §4.1 and §4.3)."""

    num_slots: int = 2000  # slots of the env's own simulated background load per server (288 slots = one day)
    csv_path: str = ""  # a traffic CSV (`vmjax.predict.load_traffic_csv`, one column per server) instead

    def __post_init__(self):
        validation.check_int_at_least("TrafficConfig", "num_slots", self.num_slots, 20)


TRAJECTORY_SOURCES = ("synthetic", "real", "generated")


@dataclasses.dataclass(frozen=True)
class TrajectoryConfig:
    """Where TwinSplit-v0's vehicles drive (spec 004 §4.9, §7.3)."""

    source: str = "real"  # "real": chained ground-truth taxi trips ("without generated vehicles") | "generated":
    # the EST-TG bank fitted on them ("with generated vehicles") | "synthetic": the env's road-grid fallback
    bank_seed: int = 0  # seed of the city, the ground-truth taxis and the EST-TG fit (`build_trace_banks`)
    bank_vehicles: int = 512  # tracks in the bank; each world's vehicles are drawn from them
    bank_path: str = ""  # a saved bank (trace_bank.npz of another run) instead of building one

    def __post_init__(self):
        validation.check_choice("TrajectoryConfig", "source", self.source, TRAJECTORY_SOURCES)
        validation.check_int_at_least("TrajectoryConfig", "bank_seed", self.bank_seed, 0)
        validation.check_int_at_least("TrajectoryConfig", "bank_vehicles", self.bank_vehicles, 1)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What the command line needs to know about one environment."""

    env_id: str
    env_config: type  # the env's config dataclass (section "env")
    algorithms: dict[str, tuple[type, Callable]]  # --run.algo -> (agent config class, make_trainer)
    algo_names: dict[str, str]  # --run.algo -> name in tables
    predictor_config: type | None  # section "predictor" (None: the scenario has no learned forecast)
    learned_forecast: str | None  # the env's workload_forecast value that needs a trained predictor
    run_dir: str  # default run folder
    defaults: dict[str, dict[str, Any]]  # command-line defaults that differ from the library's, per section
    log_metrics: tuple[str, ...]  # info fields logged per finished episode during training
    extra_sections: dict[str, type] = dataclasses.field(default_factory=dict)

    def sections(self, algo: str) -> dict[str, type]:
        predictor = {} if self.predictor_config is None else {"predictor": self.predictor_config}
        return {"run": RunConfig, "env": self.env_config, "agent": self.algorithms[algo][0], **predictor,
                **self.extra_sections}


SCENARIOS: dict[str, Scenario] = {
    # CLI defaults: a run that finishes in a few minutes on 2 CPU cores, and RSUs named by distance (slot 0 =
    # serving RSU), with which the learners escape the "alpha -> 0" trap (README, Training). Spec values: 500
    # iterations at lr 1e-4, RSUs by index, an LSTM of 256 cells trained 500 epochs.
    "AvatarPremigration-v0": Scenario(
        env_id="AvatarPremigration-v0",
        env_config=AvatarPremigrationConfig,
        algorithms={"hybrid_mappo": (hybrid_mappo.HybridMappoConfig, hybrid_mappo.make_trainer),
                    "mappo_ddpg": (mappo_ddpg.MappoDdpgConfig, mappo_ddpg.make_trainer)},
        algo_names={"hybrid_mappo": "Hybrid-MAPPO", "mappo_ddpg": "MAPPO-DDPG"},
        predictor_config=predict.PredictorConfig,
        learned_forecast="lstm",
        run_dir="runs/avatar_premigration",
        defaults={
            "env": {"workload_forecast": "lstm", "rsu_order": "distance"},
            "agent": {"num_iterations": 300, "actor_lr": 3e-4, "critic_lr": 3e-4, "actor_d_lr": 3e-4,
                      "critic_d_lr": 3e-4},
            "predictor": {"hidden_size": 32, "epochs": 15},
        },
        log_metrics=("total_latency_s",),
    ),
    # CLI defaults: the LSTM-Transformer forecast in the loop (DM-MAPPO as proposed) with 16-wide attention
    # heads (spec: 64; 16 makes the in-rollout predictor ~1.5x cheaper on a CPU), 150 iterations (spec: 300).
    "TwinRouting-v0": Scenario(
        env_id="TwinRouting-v0",
        env_config=TwinRoutingConfig,
        algorithms={"dm_mappo": (dm_mappo.DmMappoConfig, dm_mappo.make_trainer),
                    "masac": (masac.MasacConfig, masac.make_trainer)},
        algo_names={"dm_mappo": "DM-MAPPO", "masac": "MASAC"},
        predictor_config=predict.WorkloadPredictorConfig,
        learned_forecast="predictor",
        run_dir="runs/twin_routing",
        defaults={
            "env": {"workload_forecast": "predictor"},
            "agent": {"num_iterations": 150},
            "predictor": {"head_dim": 16, "epochs": 20},
        },
        log_metrics=("total_latency_s", "migration_s", "failure"),
        extra_sections={"traffic": TrafficConfig},
    ),
    # CLI defaults: 16 worlds and 300 iterations (spec: 32 x 1000), a run of a few minutes on 2 CPU cores.
    "TwinSplit-v0": Scenario(
        env_id="TwinSplit-v0",
        env_config=TwinSplitConfig,
        algorithms={"msrl": (msrl.MsrlConfig, msrl.make_trainer)},
        algo_names={"msrl": "MSRL"},
        predictor_config=None,
        learned_forecast=None,
        run_dir="runs/twin_split",
        defaults={"agent": {"num_envs": 16, "num_iterations": 300}},
        log_metrics=("total_latency_s", "qoe", "ber"),
        extra_sections={"trajectories": TrajectoryConfig},
    ),
    # CLI defaults: the spec's §5.5 learner (16 worlds x 128 steps, 10 epochs) for 100 iterations (~2e5 env
    # steps; the paper trains ~5e6), about 5 minutes per run on 2 CPU cores (HGDM: 100 x 800 env steps).
    "CrossRealityPrivacy-v0": Scenario(
        env_id="CrossRealityPrivacy-v0",
        env_config=CrossRealityPrivacyConfig,
        algorithms={**{name: (cls, lhdppo.make_trainer) for name, cls in lhdppo.ALGORITHMS.items()},
                    "hgdm": (hgdm.HgdmConfig, hgdm.make_trainer)},
        algo_names={"lhdppo": "LHDPPO", "hdppo": "HDPPO", "ghppo": "GHPPO", "hppo": "H-PPO",
                    "ppo_relaxed": "PPO-relaxed", "hgdm": "HGDM"},
        predictor_config=None,
        learned_forecast=None,
        run_dir="runs/cross_reality_privacy",
        defaults={"agent": {"num_iterations": 100}},
        log_metrics=lhdppo.LOG_METRICS,
    ),
}
ENV_ID = "AvatarPremigration-v0"  # the default scenario
ALGORITHMS = {name: entry for scenario in SCENARIOS.values() for name, entry in scenario.algorithms.items()}
CLI_DEFAULTS = SCENARIOS[ENV_ID].defaults  # the default scenario's command-line defaults


def scenario_of_algo(algo: str) -> str:
    return next(env_id for env_id, scenario in SCENARIOS.items() if algo in scenario.algorithms)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where a run lives and how it is driven."""

    env: str = ENV_ID  # scenario: "AvatarPremigration-v0" (spec 003) | "TwinRouting-v0" (spec 002) |
    # "TwinSplit-v0" (spec 004) | "CrossRealityPrivacy-v0" (spec 000)
    run_dir: str = ""  # folder of the run (config, metrics, figures, checkpoint); "" = runs/<scenario>
    algo: str = ""  # learner; "" = the scenario's first: hybrid_mappo | mappo_ddpg (AvatarPremigration-v0, spec
    # 003 §6 / §8), dm_mappo | masac (TwinRouting-v0, spec 002 §6 / §8.1), msrl (TwinSplit-v0, spec 004 §6),
    # lhdppo | hdppo | ghppo | hppo | ppo_relaxed | hgdm (CrossRealityPrivacy-v0, spec 000 §5 / §7)
    seed: int = 0  # training seed: worlds, network initialisation and action sampling
    chunk_iterations: int = 10  # iterations per jitted chunk; progress, metrics and checkpoint after each
    predictor_path: str = ""  # a saved predictor to use instead of training one (learned forecast only)
    predictor_seed: int = 1  # seed of the predictor's training data and initialisation
    calibrate_norm: bool = True  # TwinRouting-v0: fit the reward z-score constants to this run's config (§3.3 A:
    # Greedy and Random with the mask, `norm_episodes` episodes each); False: the library's default constants
    norm_episodes: int = 64  # episodes per policy of that calibration

    def __post_init__(self):
        validation.check_choice("RunConfig", "env", self.env, tuple(SCENARIOS))
        scenario = SCENARIOS[self.env]
        if not self.algo:
            object.__setattr__(self, "algo", next(iter(scenario.algorithms)))
        if not self.run_dir:
            object.__setattr__(self, "run_dir", scenario.run_dir)
        validation.check_choice("RunConfig", "algo", self.algo, tuple(scenario.algorithms))
        validation.check_int_at_least("RunConfig", "chunk_iterations", self.chunk_iterations, 1)
        validation.check_int_at_least("RunConfig", "seed", self.seed, 0)
        validation.check_int_at_least("RunConfig", "predictor_seed", self.predictor_seed, 0)
        validation.check_int_at_least("RunConfig", "norm_episodes", self.norm_episodes, 2)


RESUMABLE_OVERRIDES = {("agent", "num_iterations"), ("run", "chunk_iterations")}


# ====================================================================== config <-> flags
def field_comments(cls) -> dict[str, str]:
    """The trailing `# comment` of each field in a config dataclass's source (continuation lines included), a
    subclass's comment over its base's: the single source of the field documentation shown by --help."""
    comments = {}
    for base in reversed(cls.__mro__[:-1]):
        if dataclasses.is_dataclass(base):
            comments.update(_own_field_comments(base))
    return comments


def _own_field_comments(cls) -> dict[str, str]:
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


def build_configs(overrides: dict[str, Any], agent_cls=None) -> dict[str, Any]:
    """Config dataclasses of every section of the run's scenario (`run.env`) from the scenario's command-line
    defaults and explicit overrides `{"section.field": value}` (errors name the flag). `agent_cls` is implied
    by `run.algo` and only checked."""
    run_values = {key.split(".", 1)[1]: v for key, v in overrides.items() if key.startswith("run.")}
    if "algo" in run_values and "env" not in run_values and run_values["algo"] in ALGORITHMS:
        run_values["env"] = scenario_of_algo(run_values["algo"])  # --run.algo dm_mappo implies its scenario
    run = RunConfig(**run_values)
    scenario = SCENARIOS[run.env]
    sections = scenario.sections(run.algo)
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
    check_consistency(configs)
    return configs


def check_consistency(configs: dict[str, Any]) -> None:
    """Cross-section checks that no single config can make."""
    if configs["run"].env == "TwinRouting-v0" and configs["predictor"].window != configs["env"].load_history_slots:
        raise ValueError(f"--predictor.window ({configs['predictor'].window}) must equal --env.load_history_slots "
                         f"({configs['env'].load_history_slots}): the predictor reads the env's load history")


def configs_to_json(configs: dict[str, Any]) -> dict[str, dict]:
    return {section: dataclasses.asdict(config) for section, config in configs.items()}


def configs_from_json(data: dict[str, dict]) -> dict[str, Any]:
    run = RunConfig(**data["run"])
    out = {}
    for section, cls in SCENARIOS[run.env].sections(run.algo).items():
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
    """The env of a run and its params. With the learned forecast the predictor is loaded from the run folder,
    from `run.predictor_path`, or trained (and saved) here; TwinRouting-v0's reward statistics are calibrated
    to the run's config (or read back from the run folder)."""
    run = configs["run"]
    scenario = SCENARIOS[run.env]
    env = registry.make(run.env, **dataclasses.asdict(configs["env"]))
    params = env.default_params
    if scenario.learned_forecast and configs["env"].workload_forecast == scenario.learned_forecast:
        params = _with_predictor(env, params, configs, run_dir, log)
    if run.env == "TwinRouting-v0" and run.calibrate_norm:
        params = params.replace(norm_stats=_norm_stats(env, params, run, run_dir, log))
    if "trajectories" in configs:
        params = _with_trace_bank(params, configs, run_dir, log)
    return env, params


def _with_trace_bank(params, configs, run_dir: Path, log):
    """TwinSplit-v0's trajectory bank (spec 004 §7.3): read back from the run folder (trace_bank.npz), from
    `trajectories.bank_path`, or built by `vmjax.mobility.build_trace_banks` and saved; none for "synthetic"."""
    from vmjax import mobility

    config = configs["trajectories"]
    if config.source == "synthetic":
        return params
    saved = run_dir / "trace_bank.npz"
    source = Path(config.bank_path) if config.bank_path else saved
    if source.is_file():
        try:
            with np.load(source) as data:
                positions_m, valid = data["positions_m"], data["valid"]
        except (OSError, KeyError, ValueError) as error:
            raise SystemExit(f"{source}: not a trace bank ({error})") from error
        log(f"trajectories: loaded {source}")
    else:
        start = time.perf_counter()
        banks = mobility.build_trace_banks(config.bank_seed, config.bank_vehicles,
                                           configs["env"].max_steps + 1, configs["env"].map_size_m)
        trace = banks.real if config.source == "real" else banks.generated
        positions_m = np.asarray(trace.positions_m)
        valid = np.ones(positions_m.shape[:2], bool) if trace.valid is None else np.asarray(trace.valid)
        log(f"trajectories: built the {config.source} bank ({config.bank_vehicles} tracks, seed {config.bank_seed}) "
            f"in {time.perf_counter() - start:.0f} s")
    if source != saved or not saved.is_file():
        buffer = BytesIO()
        np.savez(buffer, positions_m=positions_m, valid=valid)
        io.atomic_write_bytes(saved, buffer.getvalue())
    return params.replace(trace_bank=mobility.Trace.create(positions_m, valid=valid))


def _with_predictor(env, params, configs, run_dir: Path, log):
    run = configs["run"]
    twin = run.env == "TwinRouting-v0"
    load, save = ((predict.load_workload_predictor, predict.save_workload_predictor) if twin
                  else (predict.load_predictor, predict.save_predictor))
    saved = run_dir / "predictor.msgpack"
    source = Path(run.predictor_path) if run.predictor_path else saved
    if source.is_file():
        predictor = load(source)
        log(f"predictor: loaded {source}")
    elif twin:
        predictor = train_workload_predictor(env, params, configs, run_dir, log)
    else:
        predictor = train_trajectory_predictor(env, configs["predictor"], run.predictor_seed, run_dir, log)
    if source != saved or not saved.is_file():
        save(saved, predictor)
    return params.replace(**{"workload_predictor" if twin else "predictor": predictor})


def _norm_stats(env, params, run: RunConfig, run_dir: Path, log) -> NormStats:
    """§3.3 (A): the z-score constants of this config, calibrated once per run folder (norm_stats.json)."""
    path = run_dir / "norm_stats.json"
    if path.is_file():
        return NormStats(**json.loads(path.read_text()))
    from baselines.twin_routing import calibrate

    start = time.perf_counter()
    stats = calibrate(env, params, jax.random.key(run.seed + 7919), run.norm_episodes)
    io.atomic_write_json(path, {f.name: float(getattr(stats, f.name)) for f in dataclasses.fields(NormStats)})
    log(f"reward statistics (§3.3 A) calibrated on {run.norm_episodes} Greedy + Random episodes in "
        f"{time.perf_counter() - start:.0f} s: latency {stats.latency_mean_s:.3f} +- {stats.latency_std_s:.3f} s")
    return stats


def load_traffic_series(env, params, configs) -> tuple[np.ndarray, str]:
    """The predictor's training series [T, S] in the units it forecasts (`env.forecast_units`) and a
    description of its source: the user's CSV, or `traffic.num_slots` slots of the env's background load."""
    traffic = configs["traffic"]
    if traffic.csv_path:
        series = np.asarray(predict.load_traffic_csv(traffic.csv_path), np.float32)
        if series.shape[1] != env.num_servers and configs["predictor"].per_series_scaling:
            raise ValueError(f"--traffic.csv_path has {series.shape[1]} series but the env has {env.num_servers} "
                             "servers: give one column per server, or --predictor.per_series_scaling false")
        return series, f"{traffic.csv_path} ({series.shape[0]} slots x {series.shape[1]} series)"
    key = jax.random.fold_in(jax.random.key(configs["run"].predictor_seed), 1)
    series = np.asarray(jax.jit(env.background_load_series, static_argnums=2)(key, params, traffic.num_slots))
    if configs["env"].forecast_units == "flow":
        series = series / float(params.data_bits)
    return series, f"simulated background load, {traffic.num_slots} slots x {env.num_servers} servers"


def train_workload_predictor(env, params, configs, run_dir: Path, log=print):
    """§4.3: fit the workload predictor (`predictor.kind`, default the LSTM-Transformer) on per-server load
    series, report its test-split error against the persistence forecast; the series is kept in the run folder
    (traffic.npy) for the §4.4 comparison."""
    config = configs["predictor"]
    series, source = load_traffic_series(env, params, configs)
    buffer = BytesIO()
    np.save(buffer, series)
    io.atomic_write_bytes(run_dir / "traffic.npy", buffer.getvalue())
    log(f"workload predictor: training {config.kind} for up to {config.epochs} epochs on {source}")

    def progress(epoch, record):
        _progress_line(f"  epoch {epoch + 1}/{config.epochs}  val MSE {record['val_mse']:.2e}  {record['elapsed_s']:.0f} s")

    key = jax.random.fold_in(jax.random.key(configs["run"].predictor_seed), 2)
    predictor, history = predict.train_workload_predictor(key, config, series, progress=progress)
    _progress_end()
    test = predict.evaluate_workload_predictor(predictor, series, "test")
    reference = predict.evaluate_persistence(series, config, "test")
    log(f"workload predictor: test RMSE {test['rmse']:.4g} (persistence {reference['rmse']:.4g}), R2 {test['r2']:.3f}, "
        f"{history['elapsed_s'][-1]:.0f} s")
    io.atomic_write_json(run_dir / "predictor_metrics.json", {
        "source": source,
        "test": _to_python(test),
        "test_persistence": _to_python(reference),
        "train_mse": np.asarray(history["train_mse"]).tolist(),
        "val_mse": np.asarray(history["val_mse"]).tolist(),
        "train_wall_s": float(history["elapsed_s"][-1]),
    })
    return predictor


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
def make_trainer(configs: dict[str, Any], env, params):
    run = configs["run"]
    make = SCENARIOS[run.env].algorithms[run.algo][1]
    return make(env, configs["agent"], params, log_metrics=SCENARIOS[run.env].log_metrics)


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
    trainer = make_trainer(configs, env, params)
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
    log(f"training {run.algo} on {run.env} ({env.num_agents} agents, {configs['env'].num_rsus} RSUs, "
        f"{_variant(configs)}), {agent.num_envs} worlds, {total} iterations "
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
                               f"{run.algo} on {run.env} ({_variant(configs)})")
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
    trainer = make_trainer(configs, env, params)
    template = jax.jit(trainer.init)(jax.random.PRNGKey(configs["run"].seed))
    state = checkpoint.load_checkpoint(run_dir / "checkpoint.msgpack", template)
    return configs, env, params, trainer, state


def _variant(configs) -> str:
    if configs["run"].env == "CrossRealityPrivacy-v0":
        return f"reward={configs['agent'].reward_mode}"
    if "trajectories" in configs:
        return f"mode={configs['agent'].mode}, trajectories={configs['trajectories'].source}"
    return f"forecast={configs['env'].workload_forecast}"


def run_label(configs) -> str:
    """A run's name in tables: the learner, then how its config departs from the proposed method's."""
    run, env = configs["run"], configs["env"]
    scenario = SCENARIOS[run.env]
    name = scenario.algo_names[run.algo]
    if run.env == "CrossRealityPrivacy-v0":  # spec 000 §7: LHDPPO on eq. (21), the rest on eq. (20)
        default_reward = scenario.algorithms[run.algo][0]().reward_mode
        reward = configs["agent"].reward_mode
        return name + ("" if reward == default_reward else f" (reward {reward})")
    if run.env == "TwinSplit-v0":  # spec 004 §8: Split Model (MSRL), Local-Edge Model, Local-Model
        name = {"split": "MSRL (Split)", "local_edge": "Local-Edge", "local": "Local-Model"}[configs["agent"].mode]
        source = configs["trajectories"].source
        return name + ("" if source == "real" else " (EST-TG trajectories)" if source == "generated" else " (synthetic)")
    forecast = env.workload_forecast
    if run.env == "TwinRouting-v0":  # spec 002: "w/o prediction" = the persistence forecast
        name += "" if forecast == "predictor" else " w/o pred." if forecast == "persistence" else f" ({forecast})"
        return name + ("" if env.use_mask else " w/o mask")
    return name + ("" if forecast == "lstm" else " w/o pred." if forecast == "none" else f" ({forecast})")


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How `evaluate` treats one scenario: its heuristics and evaluator (in `baselines`), the metrics given a
    spread over seeds, the table and the panels of the figure."""

    heuristics: str  # module with POLICIES (name -> make(env) -> policy)
    evaluator: str  # module with make_policy_evaluator(env, policies, params, num_episodes)
    seed_metrics: tuple[str, ...]
    table: Callable[[dict, int, int], str]
    panels: tuple[tuple[str, str, float], ...]  # (metric, y label, scale)


def evaluate(run_dirs: list[Path], episodes: int, seeds: int, first_seed: int, out_dir: Path, log=print) -> dict:
    """Trained policies of `run_dirs` and the heuristics on the same held-out episodes: `seeds` sets of
    `episodes` worlds drawn from PRNGKey(first_seed + s), disjoint from the training stream."""
    import importlib

    from baselines.evaluate import summarize_episodes
    from vmjax import report

    runs = [load_run(Path(d)) for d in run_dirs]
    (configs0, env0, params0, *_) = runs[0]
    env_id = configs0["run"].env
    spec = EVALUATIONS[env_id]
    shape = lambda configs, env: (configs["run"].env, env.num_agents, configs["env"].num_rsus, env.config.max_steps)
    for configs, env, *_ in runs[1:]:
        if shape(configs, env) != shape(configs0, env0):
            raise SystemExit("evaluate: all runs must share the scenario, num_vehicles, num_rsus and max_steps")
    heuristics = importlib.import_module(spec.heuristics).POLICIES
    make_policy_evaluator = importlib.import_module(spec.evaluator).make_policy_evaluator
    groups = [(env0, params0, {name: make(env0) for name, make in heuristics.items()})]
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
        evaluator = make_policy_evaluator(env, [policies[n] for n in names], params, episodes)
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
    io.atomic_write_json(out_dir / "evaluation.json", {
        "env": env_id, "runs": [str(d) for d in run_dirs], "episodes_per_seed": episodes, "seeds": seeds,
        "first_seed": first_seed, "results": results, "wall_s": wall, "machine": machine_description(),
    })
    io.atomic_write_text(out_dir / "evaluation.md", table + f"\n\nmachine: {machine_description()}; "
                         f"evaluation wall time {wall:.0f} s\n")
    report.plot_comparison(results, out_dir / "evaluation.png", f"{env_id}: {seeds} x {episodes} held-out episodes",
                           panels=spec.panels)
    log(f"wrote {out_dir}/evaluation.json, evaluation.md, evaluation.png ({wall:.0f} s)")
    return results


def format_comparison(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """AvatarPremigration-v0's table: latency and its terms."""
    lines = [
        ("| policy | mean latency (s) | std over seeds | std over episodes | migration (s) | processing (s) | "
         "downlink (s) | pre-migrated |"),
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


def format_twin_comparison(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """TwinRouting-v0's table: latency, migration latency and packet loss (eq. 15) with their spread over the
    held-out seeds, then failures, migrations and satellite hosting."""
    lines = [
        ("| policy | latency (s) | ± seeds | migration latency (s) | ± seeds | packet loss (%) | ± seeds | "
         "migrations (%) | on satellite (%) | reward |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["latency_s"]):
        lines.append(
            f"| {name} | {r['latency_s']:.4f} | {r['latency_s_seed_std']:.4f} | {r['migration_s']:.4f} | "
            f"{r['migration_s_seed_std']:.4f} | {100 * r['packet_loss']:.3f} | {100 * r['packet_loss_seed_std']:.3f} | "
            f"{100 * r['migration_share']:.1f} | {100 * r['satellite_share']:.1f} | {r['reward']:.3f} |"
        )
    lines.append(f"\nmeans per active vehicle-slot (packet loss: eq. 15 per vehicle, then over vehicles) over {seeds} "
                 f"seeds x {episodes} held-out episodes (the same worlds for every policy); ± = std of the seed means")
    return "\n".join(lines)


def format_twin_split_comparison(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """TwinSplit-v0's table: latency (eq. 11), QoE (eq. 15) and BER (eq. 12) with their spread over the held-out
    seeds, then migrations, the server-side model's share of actor calls and the parameters used (§6.9)."""
    lines = [
        ("| policy | latency (s) | ± seeds | QoE | ± seeds | BER (%) | ± seeds | pre-migrated (%) | server calls (%) "
         "| params used |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["latency_s"]):
        server = f"{100 * r['use_server']:.1f}" if "use_server" in r else "–"
        params = f"{r['params_used']:.0f}" if "params_used" in r else "–"
        lines.append(
            f"| {name} | {r['latency_s']:.4f} | {r['latency_s_seed_std']:.4f} | {r['qoe']:.4f} | "
            f"{r['qoe_seed_std']:.4f} | {100 * r['ber']:.2f} | {100 * r['ber_seed_std']:.2f} | "
            f"{100 * r['migration_share']:.1f} | {server} | {params} |"
        )
    lines.append(f"\nmeans per vehicle-slot over {seeds} seeds x {episodes} held-out episodes (the same worlds for "
                 "every policy); ± = std of the seed means; server calls and params used: learned actors only (§6.9)")
    return "\n".join(lines)


def format_privacy_comparison(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """CrossRealityPrivacy-v0's table: the utility of eq. (17) and its parts E (eq. 5), L (eq. 15), Q (eq. 16)
    with their spread over the held-out seeds, then the eq. (21) reward, migrations and the perturbation."""
    lines = [
        ("| policy | utility (17) | ± seeds | entropy (bit) | ± seeds | latency (s) | ± seeds | QoS loss | ± seeds | "
         "reward (21) | migrated (%) | perturbation (m) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["utility"]):
        lines.append(
            f"| {name} | {r['utility']:.4f} | {r['utility_seed_std']:.4f} | {r['entropy_bits']:.4f} | "
            f"{r['entropy_bits_seed_std']:.4f} | {r['latency_s']:.2f} | {r['latency_s_seed_std']:.2f} | "
            f"{r['qos_loss']:.4f} | {r['qos_loss_seed_std']:.4f} | {r['reward_llm']:.4f} | "
            f"{100 * r['migrated']:.1f} | {r['perturbation_m']:.1f} |"
        )
    lines.append(f"\nmeans per AV-slot over {seeds} seeds x {episodes} held-out episodes (the same worlds for every "
                 "policy; deterministic learned policies); ± = std of the seed means")
    return "\n".join(lines)


EVALUATIONS = {
    "AvatarPremigration-v0": Evaluation(
        "baselines.avatar_premigration", "baselines.evaluate", ("latency_s",), format_comparison,
        (("latency_s", "mean total latency per vehicle-slot (s)", 1.0),)),
    "TwinRouting-v0": Evaluation(
        "baselines.twin_routing", "baselines.twin_routing", ("latency_s", "migration_s", "packet_loss"),
        format_twin_comparison,
        (("latency_s", "mean latency per vehicle-slot (s)", 1.0), ("migration_s", "migration latency (s)", 1.0),
         ("packet_loss", "packet loss rate (%)", 100.0))),
    "TwinSplit-v0": Evaluation(
        "baselines.twin_split", "baselines.twin_split", ("latency_s", "qoe", "ber"), format_twin_split_comparison,
        (("latency_s", "mean total latency per vehicle-slot (s)", 1.0), ("ber", "bit error rate (%)", 100.0))),
    "CrossRealityPrivacy-v0": Evaluation(
        "baselines.cross_reality_privacy", "baselines.cross_reality_privacy",
        ("utility", "entropy_bits", "latency_s", "qos_loss"), format_privacy_comparison,
        (("utility", "utility, eq. (17), per AV-slot", 1.0), ("entropy_bits", "location entropy (bit)", 1.0),
         ("latency_s", "latency per AV-slot (s)", 1.0))),
}


# ====================================================================== entry point
def make_parser(algo: str = "", env_id: str = "") -> argparse.ArgumentParser:
    """The parser; the train flags are those of the scenario `env_id` (default: the one of `algo`, else
    AvatarPremigration-v0) and the learner `algo` (default: the scenario's first)."""
    env_id = env_id or (scenario_of_algo(algo) if algo in ALGORITHMS else ENV_ID)
    scenario = SCENARIOS[env_id]
    algo = algo or next(iter(scenario.algorithms))
    parser = argparse.ArgumentParser(prog="vmjax", description="vmjax: vehicular-metaverse edge-network simulator")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train", help="train a learner (default: Hybrid-MAPPO on AvatarPremigration-v0 with the LSTM forecast)",
        description=f"Train {algo} on {env_id} (--env {'|'.join(SCENARIOS)}, --algo picks the learner). Every config "
        "field is a flag; command-line defaults finish in a few minutes on 2 CPU cores.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --run.run_dir from its checkpoint (its saved config is used; "
                              "only --agent.num_iterations and --run.chunk_iterations may change)")
    train_parser.add_argument("--env", dest="run.env", default=argparse.SUPPRESS, metavar="ENV_ID",
                              help="the scenario, short for --run.env")
    train_parser.add_argument("--algo", dest="run.algo", default=argparse.SUPPRESS, metavar="ALGO",
                              type=lambda text: text.replace("-", "_"), help="the learner, short for --run.algo")
    for section, cls in scenario.sections(algo).items():
        add_config_flags(train_parser, section, cls, scenario.defaults.get(section, {}))
    eval_parser = commands.add_parser("evaluate", help="compare trained policies with the heuristics",
                                      description=evaluate.__doc__.splitlines()[0])
    eval_parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders to evaluate")
    eval_parser.add_argument("--episodes", type=int, default=100, help="held-out episodes per seed (§7.1: 100)")
    eval_parser.add_argument("--seeds", type=int, default=3, help="independent held-out episode sets")
    eval_parser.add_argument("--first-seed", type=int, default=10_000, help="seed of the first episode set")
    eval_parser.add_argument("--out", type=Path, help="output folder (default: the first run folder)")
    return parser


def _flag_from_argv(argv: list[str], names: tuple[str, ...]) -> str:
    for i, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
    return ""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    algo = _flag_from_argv(argv, ("--run.algo", "--algo")).replace("-", "_")
    env_id = _flag_from_argv(argv, ("--run.env", "--env"))
    if env_id and env_id not in SCENARIOS:
        raise SystemExit(f"--env must be one of {sorted(SCENARIOS)}, got {env_id!r}")
    if algo and algo not in (SCENARIOS[env_id].algorithms if env_id else ALGORITHMS):
        choices = sorted(SCENARIOS[env_id].algorithms if env_id else ALGORITHMS)
        raise SystemExit(f"--algo must be one of {choices}{f' for {env_id}' if env_id else ''}, got {algo!r}")
    args = make_parser(algo, env_id).parse_args(argv)
    if args.command == "train":
        overrides = {k: v for k, v in vars(args).items() if "." in k}
        try:
            if args.resume:
                run_dir = Path(overrides.get("run.run_dir") or RunConfig(env=env_id or ENV_ID, algo=algo).run_dir)
                if not (run_dir / "config.json").is_file():
                    raise SystemExit(f"--resume: {run_dir} has no config.json")
                saved = json.loads((run_dir / "config.json").read_text())
                for key, value in overrides.items():
                    section, name = key.split(".", 1)
                    if key in ("run.run_dir", "run.env", "run.algo") and value == saved["run"].get(name, value):
                        continue
                    if (section, name) not in RESUMABLE_OVERRIDES:
                        raise SystemExit(f"--resume uses the run's saved config; --{key} cannot change")
                    saved[section][name] = value
                configs = configs_from_json(saved)
            else:
                configs = build_configs(overrides)
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


__all__ = ["ALGORITHMS", "CLI_DEFAULTS", "SCENARIOS", "RunConfig", "TrafficConfig", "evaluate", "main", "train"]
