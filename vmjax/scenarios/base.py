"""What a scenario is to the runner, the command line, the notebooks and bench: one `Scenario` object per module
`vmjax/scenarios/<name>.py`, and the few helpers those modules share (a predictor cached in the run folder,
progress lines on stderr).

A scenario module describes its env once: env id and config class, learners and their config classes,
command-line defaults, the preparation a run needs before training (`prepare`: train a predictor, calibrate
reward statistics, build a trace bank), the info fields to log, the evaluation (heuristics, evaluator,
metrics, table, plot panels) and how a run is named. Nothing outside a scenario's own files branches on its id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vmjax.core import io

Configs = dict[str, Any]  # section name -> config dataclass: "run", "env", "agent", then the scenario's own
Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Learner:
    """One `--algo` choice of a scenario."""

    label: str  # the learner's name in tables ("Hybrid-MAPPO")
    config: type  # its config dataclass (section "agent")
    make_trainer: Callable  # make_trainer(env, config, env_params, log_metrics=...) -> vmjax.agents.trainer.Trainer


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How `vmjax evaluate` treats a scenario: its heuristics, its evaluator, the metrics given a spread over the
    held-out seeds, its table and the panels of its figure."""

    policies: dict[str, Callable]  # heuristic name -> make(env) -> policy
    make_policy_evaluator: Callable  # (env, policies, params, num_episodes) -> jitted (key, index) -> metrics
    seed_metrics: tuple[str, ...]
    table: Callable[[dict, int, int], str]  # (results, episodes, seeds) -> markdown
    panels: tuple[tuple[str, str, float], ...]  # (metric, y label, scale)
    optional_policies: dict[str, Callable] = dataclasses.field(default_factory=dict)  # run only when named
    # (`vmjax evaluate --heuristics NAME`): model-based planners, whose compile takes minutes on a CPU

    def select_policies(self, names: Sequence[str] | None) -> dict[str, Callable]:
        """The heuristics `vmjax evaluate` runs: `policies` when `names` is None, else the named ones (from
        `policies` and `optional_policies`); ValueError naming the unknown ones and what there is."""
        if names is None:
            return dict(self.policies)
        available = {**self.policies, **self.optional_policies}
        unknown = [name for name in names if name not in available]
        if unknown:
            raise ValueError(
                f"unknown heuristic(s) {unknown}: this scenario has {sorted(self.policies)} and, when named, "
                f"{sorted(self.optional_policies) or 'nothing else'}"
            )
        return {name: available[name] for name in dict.fromkeys(names)}


def _no_preparation(env, params, configs: Configs, run_dir: Path, log: Log):
    return params


def _no_check(configs: Configs) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Everything the runner and the command line know about one environment."""

    env_id: str
    env_config: type  # the env's config dataclass (section "env")
    learners: dict[str, Learner]  # --algo -> learner; the first is the scenario's default
    run_dir: str  # default run folder
    evaluation: Evaluation
    label: Callable[[Configs], str]  # a run's name in tables: the learner, then how it departs from the method
    variant: Callable[[Configs], str]  # the config choices a training log line names ("forecast=lstm")
    log_metrics: tuple[str, ...]  # info fields logged per finished episode during training
    defaults: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # command-line defaults that
    # differ from the library's, per section
    sections: dict[str, type] = dataclasses.field(default_factory=dict)  # the scenario's own config sections
    prepare: Callable = _no_preparation  # (env, params, configs, run_dir, log) -> params: what a run needs before
    # training (a predictor, reward statistics, a trace bank), cached in the run folder
    check: Callable[[Configs], None] = _no_check  # cross-section checks no single config can make
    headline_metric: str = "episode_total_latency_s"  # the logged metric of the progress line and learning curve
    headline_label: str = "mean total latency T_v (s)"  # its axis label in the learning curve
    scene: Callable | None = None  # (env, state, params, info=None, extras=None) -> vmjax.core.scene.Scene: what a
    # frame of one world shows (`vmjax.render.frame`); info: of the step taken from `state`; extras: the policy's
    # per-agent extras (MSRL's use_server)
    greedy: str = ""  # the heuristic (a key of evaluation.policies) that `vmjax render --policy greedy` shows

    def __post_init__(self):
        if not self.learners:
            raise ValueError(f"scenario {self.env_id} has no learners")
        if self.greedy and self.greedy not in self.evaluation.policies:
            raise ValueError(f"scenario {self.env_id}: greedy={self.greedy!r} is not one of its heuristics")

    @property
    def default_algo(self) -> str:
        return next(iter(self.learners))

    def config_sections(self, algo: str, run_config: type) -> dict[str, type]:
        """Section name -> config class of a run of learner `algo`, the run section first."""
        return {"run": run_config, "env": self.env_config, "agent": self.learners[algo].config, **self.sections}


# ---------------------------------------------------------------------------------------------- shared helpers
def progress_line(text: str) -> None:
    """One progress line on stderr: rewritten in place on a terminal, appended otherwise."""
    if sys.stderr.isatty():
        sys.stderr.write("\r" + text[:150].ljust(150))
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def progress_end() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")
        sys.stderr.flush()


def to_python(tree: dict) -> dict:
    """Scalars and arrays of a metrics dict as JSON-ready floats and lists."""
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()) for k, v in tree.items()}


Column = tuple[str, Callable[[dict], str]]  # (header, formatter of one policy's results)


def results_table(
    results: dict[str, dict], columns: Sequence[Column], sort_key: Callable[[dict], float], note: str
) -> str:
    """A markdown table of `vmjax evaluate`'s results, one row per policy ordered by `sort_key`, then `note`."""
    lines = ["| policy | " + " | ".join(header for header, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, r in sorted(results.items(), key=lambda kv: sort_key(kv[1])):
        lines.append(f"| {name} | " + " | ".join(cell(r) for _, cell in columns) + " |")
    return "\n".join(lines) + "\n\n" + note


def config_fingerprint(configs: Configs, sections: Sequence[str], run_fields: Sequence[str] = ()) -> str:
    """sha256 of the JSON of the config `sections` (those the run has) and the `run_fields` of its run section:
    the fingerprint of the configuration an artifact of the run folder was built from."""
    data = {section: _fingerprinted(configs[section]) for section in sections if section in configs}
    data["run"] = {name: getattr(configs["run"], name) for name in run_fields}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()


LATER_FIELDS = {"trace_bank": "", "agent_server": "action"}
"""Config fields added after run folders existed, with their default: at that default a field is left out of the
fingerprint, so the artifacts of earlier run folders (predictors, reward statistics) still match."""


def _fingerprinted(config) -> dict:
    values = dataclasses.asdict(config)
    return {k: v for k, v in values.items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


def fingerprint_path(path: Path) -> Path:
    """The sidecar of a run-folder artifact: the config fingerprint it was built from and the file's sha256."""
    return path.with_name(path.name + ".built.json")


def artifact_matches(path: Path, fingerprint: str) -> bool:
    """Whether `path` exists and its sidecar names `fingerprint` and the file's current contents."""
    sidecar = fingerprint_path(path)
    if not (path.is_file() and sidecar.is_file()):
        return False
    try:
        built = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(built, dict)
        and built.get("config_sha256") == fingerprint
        and built.get("file_sha256") == io.sha256_file(path)
    )


def record_artifact(path: Path, fingerprint: str) -> None:
    """Write the sidecar of `path` (after the artifact itself, so a kill in between leaves it unmatched)."""
    io.atomic_write_json(fingerprint_path(path), {"config_sha256": fingerprint, "file_sha256": io.sha256_file(path)})


def cached_artifact(
    path: Path, fingerprint: str, source_path: str, load: Callable, save: Callable, build: Callable, log: Log, what: str
):
    """A derived artifact of the run folder (a predictor, reward statistics, a trace bank): loaded from `path` when
    it was built from the same configuration (`fingerprint`), else loaded from `source_path` (a user's file, used
    as given) or built by `build()`; saved to `path` with its fingerprint either way. A stale file is rebuilt
    with a log line."""
    if source_path:
        artifact = load(Path(source_path))
        log(f"{what}: loaded {source_path}")
    elif artifact_matches(path, fingerprint):
        log(f"{what}: loaded {path}")
        return load(path)
    else:
        if path.exists():
            log(f"{what}: {path} was built from another configuration (or has no fingerprint): rebuilding it")
        artifact = build()
    fingerprint_path(path).unlink(missing_ok=True)
    save(path, artifact)
    record_artifact(path, fingerprint)
    return artifact


def cached_predictor(
    run_dir: Path, source_path: str, load: Callable, save: Callable, train: Callable, log: Log, fingerprint: str
):
    """A run's predictor: read back from the run folder (predictor.msgpack) when it was trained from the same
    configuration (`fingerprint`), from `source_path` (a saved predictor of another run), or trained by `train()`;
    saved in the run folder with its fingerprint either way."""
    return cached_artifact(run_dir / "predictor.msgpack", fingerprint, source_path, load, save, train, log, "predictor")
