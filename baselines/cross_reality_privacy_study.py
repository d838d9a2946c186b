"""CrossRealityPrivacy-v0 study (spec 000 §7-8): every method trained over seeds in one vmapped jit, all scored on
the same held-out worlds; the learning-rate and denoising-step sweeps; the entropy surface over radius and angle.

    python -m baselines.cross_reality_privacy_study compare --iterations 60 --out runs/crp_study
    python -m baselines.cross_reality_privacy_study sweep --field actor_lr --values 1e-4,3e-4,1e-3 --out ...
    python -m baselines.cross_reality_privacy_study surface --out runs/crp_study

Protocol [R §9-B9]: each learner (LHDPPO on eq. 21; HDPPO, GHPPO, H-PPO, PPO-relaxed on eq. 20, §7) trains
`iterations` x 2048 env steps per seed (the §5.5 hyper-parameters unless overridden), seeds vmapped; training
seed s is evaluated with deterministic actions (Gaussian mean, argmax) on held-out set s = `eval_episodes`
worlds from fold_in(PRNGKey(eval_seed), s), one episode of T = 50 slots each. Geo-I and no-perturbation (with
the historical greedy server rule) meet the same sets. The score is the mean per-slot utility of eq. (17)
(= the manual reward, eq. 20) with its parts E, L, Q; the spread is the std of the per-set means (ddof 1).
Compile time is measured apart from the training wall time. JSON is written atomically after every method.

`--env CrossRealityPrivacy-v1` runs the same study on v1 (docs/cross_reality_privacy.md, "Results on v1"): the
heuristics gain the calibration's best fixed radius, the scores the adversary's error (`adversary_error_m`), and
`study` runs every part of the v1 study into one folder, each part resumable (a re-run skips what is written):

    python -m baselines.cross_reality_privacy_study study --env CrossRealityPrivacy-v1 --iterations 12 \
        --out docs/results/cross_reality_privacy_v1

  comparison.json   every learner (3 seeds vmapped) and heuristic on the held-out sets, learning curves, the
                    attacker confidence (posterior max, eq. 4) binned by the perturbation distance, and each
                    method's trajectories of held-out world 0 of set 0 (true, reported, agent server)
  confidence.json   the fixed-radius rule r = f r_max, f = 0..1: attacker confidence, entropy and error vs f
  sweep_lr.json     LHDPPO over the learning-rate grid (actor = critic), every (lr, seed) in one vmapped jit
  sweep_denoising_steps.json   LHDPPO over U (static: one jit per U, seeds vmapped)
  reward_search.json           the §4.5 search (vmjax.agents.reward_search, resumable by round) and its best
                               weights retrained over the study's seeds against the hand-set weights

`report` also prints the longer budgets' table (`long_budget.json`, written by experiments/cross_reality_privacy_v1_long.py
from runs of `vmjax train`, which the CLI's runner owns, above this layer).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import cross_reality_privacy as heuristics
from baselines import cross_reality_privacy_v1_study as calibration
from vmjax.agents import hgdm, lhdppo, reward_search
from vmjax.core import io
from vmjax.core.machine import machine_summary
from vmjax.core.rollout import StatefulPolicy, VecEnv, rollout_stateful, stateless
from vmjax.envs import cross_reality_privacy as crp

ENV_IDS = ("CrossRealityPrivacy-v0", "CrossRealityPrivacy-v1")
LEARNERS = {
    "LHDPPO": "lhdppo",
    "HDPPO": "hdppo",
    "GHPPO": "ghppo",
    "H-PPO": "hppo",
    "PPO-relaxed": "ppo_relaxed",
    "HGDM": "hgdm",
}
PPO_STEPS_PER_ITERATION = 2048  # 16 worlds x 128 steps (§5.5): the study's budget unit
HEURISTICS = {"Geo-I": "geo_i", "No perturbation": "no_perturbation", "Max perturbation": "max_perturbation"}
BEST_FIXED = f"Best fixed radius (r = {heuristics.BEST_FIXED_RADIUS_FRACTION_V1:g} r_max)"
V1_HEURISTICS = {**HEURISTICS, BEST_FIXED: "best_fixed_radius"}  # the calibration's best fixed rule joins on v1
CURVES = ("mean_train_reward", "rollout_utility", "rollout_entropy_bits", "rollout_latency_s", "rollout_qos_loss")
SCORES = (
    "utility",
    "entropy_bits",
    "latency_s",
    "qos_loss",
    "reward_llm",
    "migrated",
    "perturbation_m",
    "attacker_confidence",
)
V1_SCORES = (*SCORES, "adversary_error_m")  # the routine-mobility adversary's error (v1 info)
INTENSITY_BIN_M = 10.0  # attacker confidence binned by the perturbation distance d(l, l~) (eq. 16's d), metres
INTENSITY_BINS = 12  # 0-10, ..., 110-120 m (r_max = 111.2 m north-south)
LR_GRID = (5e-5, 1e-4, 5e-4, 1e-3)  # the paper's Fig. 4 sweep (spec §6.2; actor = critic; the spec's 1e-4 included)
DENOISING_GRID = (3, 5, 7, 9)  # U (the spec's 5 included)
CONFIDENCE_FRACTIONS = tuple(i / 10 for i in range(11))  # r / r_max of the fixed-radius confidence curve


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Budget and evaluation of the study."""

    iterations: int = 60  # updates per seed (x 2048 env steps); the paper trains ~2441 (5e6 steps)
    seeds: int = 3  # training seeds, vmapped
    eval_episodes: int = 32  # held-out worlds per set (one episode of T slots each)
    eval_seed: int = 10_000  # held-out set s: fold_in(PRNGKey(eval_seed), s)
    env_id: str = "CrossRealityPrivacy-v0"

    def __post_init__(self):
        for name, low in (("iterations", 1), ("seeds", 1), ("eval_episodes", 1), ("eval_seed", 0)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ValueError(f"StudyConfig.{name} must be an int >= {low}, got {getattr(self, name)!r}")
        if self.env_id not in ENV_IDS:
            raise ValueError(f"StudyConfig.env_id must be one of {ENV_IDS}, got {self.env_id!r}")


def held_out_key(study: StudyConfig, index: int) -> jax.Array:
    return jax.random.fold_in(jax.random.PRNGKey(study.eval_seed), index)


def make_env(study: StudyConfig, env_config: dict | None = None):
    return vmjax.make(study.env_id, **(env_config or {}))


def heuristic_names(study: StudyConfig) -> dict[str, str]:
    """The heuristics of the study's env: name -> key of `heuristic_policy`."""
    return V1_HEURISTICS if study.env_id == "CrossRealityPrivacy-v1" else HEURISTICS


def heuristic_policy(env, key: str) -> StatefulPolicy:
    if key == "best_fixed_radius":
        return heuristics.make_fixed_radius_stateful(env, heuristics.BEST_FIXED_RADIUS_FRACTION_V1)
    return heuristics.POLICIES[key](env)


def score_names(env) -> tuple[str, ...]:
    """SCORES, plus the adversary's error where the env reports it (the routine-mobility adversary)."""
    return V1_SCORES if env.config.adversary == "mobility_prior" else SCORES


def _summary(per_set: dict[str, np.ndarray]) -> dict:
    """{metric: mean over sets, metric_seed_std, metric_seed_means} from per-set means [S]."""
    out = {}
    for name, values in per_set.items():
        values = np.asarray(values, np.float64)
        out[name] = float(values.mean())
        out[f"{name}_seed_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        out[f"{name}_seed_means"] = values.tolist()
    return out


def learner_config(name: str, iterations: int, overrides: dict | None = None):
    """The config of learner `name` (a LEARNERS key) for a budget of `iterations` x 2048 env steps: PPO learners
    run `iterations` updates; HGDM (16 worlds x 50 steps per iteration) as many iterations as give the same env
    steps (rounded up) [R §7: the same number of steps]. `overrides`: config fields (those the config has)."""
    algo = LEARNERS[name]
    if algo == "hgdm":
        fields = {f.name for f in dataclasses.fields(hgdm.HgdmConfig)}
        base = hgdm.HgdmConfig(**{k: v for k, v in (overrides or {}).items() if k in fields})
        steps = iterations * PPO_STEPS_PER_ITERATION
        return dataclasses.replace(base, num_iterations=-(-steps // base.env_steps_per_iteration))
    config_class = lhdppo.ALGORITHMS[algo]
    fields = {f.name for f in dataclasses.fields(config_class)}
    return config_class(num_iterations=iterations, **{k: v for k, v in (overrides or {}).items() if k in fields})


# ------------------------------------------------------------------------------------------- held-out rollouts
def intensity_bins(perturbation_m, values: dict) -> dict:
    """Sums of `values` ({name: [..]}, same shape as `perturbation_m`) and the count per perturbation-distance bin
    [INTENSITY_BINS] of width INTENSITY_BIN_M (the last bin takes everything beyond)."""
    index = jnp.clip(jnp.floor(perturbation_m / INTENSITY_BIN_M), 0, INTENSITY_BINS - 1).astype(jnp.int32)
    onehot = jax.nn.one_hot(index.ravel(), INTENSITY_BINS)
    sums = {name: onehot.T @ v.astype(jnp.float32).ravel() for name, v in values.items()}
    return {"count": jnp.sum(onehot, axis=0), **sums}


BINNED = ("attacker_confidence", "entropy_bits", "adversary_error_m")  # per-bin sums (those the env reports)


def held_out_rollout(env, policy, params, key, episodes: int, metrics: Sequence[str]) -> dict:
    """One episode (T slots) of `policy` in each of `episodes` worlds from `key` (the worlds of
    `heuristics.episode_metrics` for the same key): {"means": {metric: mean over slots, worlds, AVs},
    "bins": `intensity_bins` of BINNED summed over everything, "trajectory": world 0's true positions [T, M, 2]
    (metres), reports [T, M, 2] (metres, eq. 2), agent servers and connected servers [T, M]}."""
    policy = policy if isinstance(policy, StatefulPolicy) else stateless(policy)
    binned = tuple(name for name in BINNED if name in metrics)
    lat0 = env.config.origin_lat_deg

    def summary(reward, info):
        return {
            "means": {name: jnp.mean(info[name].astype(jnp.float32)) for name in metrics},
            "bins": intensity_bins(info["perturbation_m"], {name: info[name] for name in binned}),
            "reported_m": crp.offset_to_xy_m(info["reported_offset_deg"][0], params, lat0),
            "agent_server": info["agent_server"][0],
            "connected": info["connected"][0],
        }

    steps = rollout_stateful(env, policy, key, params, episodes, env.config.max_steps, summary)
    k_reset = jax.random.split(key, 3)[0]  # rollout_stateful's reset key: the same worlds
    _, state = VecEnv(env, episodes).reset(k_reset, params)
    true_m = state.trace.positions_m[0, : env.config.max_steps]  # [T, M, 2] of world 0
    return {
        "means": jax.tree.map(jnp.mean, steps["means"]),
        "bins": jax.tree.map(lambda x: jnp.sum(x, axis=0), steps["bins"]),
        "trajectory": {
            "true_m": true_m,
            "reported_m": steps["reported_m"],
            "agent_server": steps["agent_server"],
            "connected": steps["connected"],
        },
    }


def _collect(outs: list[dict]) -> dict:
    """The study's record of one method from its per-set `held_out_rollout`s: the metrics' summary over sets, the
    bins summed over sets, and set 0's trajectory."""
    per_set = {name: [float(o["means"][name]) for o in outs] for name in outs[0]["means"]}
    bins = {name: np.sum([np.asarray(o["bins"][name], np.float64) for o in outs], axis=0) for name in outs[0]["bins"]}
    count = np.maximum(bins["count"], 1.0)
    intensity = {"bin_m": INTENSITY_BIN_M, "count": bins["count"].tolist()}
    intensity.update({name: (bins[name] / count).tolist() for name in bins if name != "count"})
    trajectory = {name: np.asarray(v).tolist() for name, v in outs[0]["trajectory"].items()}
    return {**_summary(per_set), "intensity": intensity, "trajectory": trajectory}


# ------------------------------------------------------------------------------------------- training
def _make_trainer(env, params, config):
    make = hgdm.make_trainer if isinstance(config, hgdm.HgdmConfig) else lhdppo.make_trainer
    return make(env, config, params)


def _timed_run(train, *args):
    """(compile seconds, run seconds, outputs) of `jax.jit(train)(*args)`."""
    start = time.perf_counter()
    compiled = jax.jit(train).lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return compile_s, time.perf_counter() - start, out


def evaluate_param_lists(
    env, params, trainer, param_lists: Sequence[list], study: StudyConfig, deterministic: bool | None = None
) -> list[dict]:
    """For each list, seed s's params (list[s]) scored on held-out set s, by one compiled scorer. Deterministic
    actions (the learner's `deterministic_eval`, the study's protocol) unless `deterministic=False`: actions
    sampled from the policy."""
    metrics = score_names(env)

    @jax.jit
    def score(p, key):
        policy = trainer.make_eval_policy(p, deterministic)
        return held_out_rollout(env, policy, params, key, study.eval_episodes, metrics)

    return [_collect([score(p, held_out_key(study, s)) for s, p in enumerate(ps)]) for ps in param_lists]


def evaluate_trained(env, params, trainer, trained_params: list, study: StudyConfig) -> dict:
    """Seed s's trained params (trained_params[s]) scored deterministically on held-out set s."""
    return evaluate_param_lists(env, params, trainer, [trained_params], study)[0]


def _run_record(config, metrics, compile_s: float, train_s: float, runs: int) -> dict:
    """Curves [S, I], timing and budget of `runs` vmapped runs of `config`."""
    clip = np.asarray(metrics["clip_fraction"])[:, -1] if "clip_fraction" in metrics else np.full(1, np.nan)
    return {
        "curves": {name: np.asarray(metrics[name]).tolist() for name in CURVES},
        "compile_s": compile_s,
        "train_s": train_s,
        "env_steps": config.num_iterations * config.env_steps_per_iteration,
        "vmapped_runs": runs,
        "final_clip_fraction": float(np.mean(clip)),
    }


def train_and_evaluate(env, params, config, study: StudyConfig, log=print) -> dict:
    """Train `study.seeds` seeds of `config` (an LHDPPO-family or HGDM config) in one vmapped jit and score
    seed s on held-out set s."""
    trainer = _make_trainer(env, params, config)
    keys = jax.random.split(jax.random.PRNGKey(0), study.seeds)
    compile_s, train_s, (state, metrics) = _timed_run(jax.vmap(trainer.train), keys)
    env_steps = config.num_iterations * config.env_steps_per_iteration
    log(
        f"  {config.reward_mode} reward, {env_steps:,} env steps x {study.seeds} seeds: compile {compile_s:.0f} s, "
        f"train {train_s:.0f} s ({env_steps * study.seeds / train_s:,.0f} env steps/s)"
    )
    trained = [jax.tree.map(lambda x, s=s: x[s], state.params) for s in range(study.seeds)]
    return {
        **evaluate_trained(env, params, trainer, trained, study),
        **_run_record(config, metrics, compile_s, train_s, study.seeds),
    }


def train_learning_rate_grid(env, params, config, study: StudyConfig, rates: Sequence[float], log=print) -> dict:
    """LHDPPO-family `config` trained for every (learning rate, seed) in ONE vmapped jit: actor = critic = lr
    (`lhdppo.with_learning_rates`), seeds as in `train_and_evaluate`; (lr, seed s) scored on held-out set s.
    Returns {str(lr): record}."""
    trainer = _make_trainer(env, params, config)

    def train_one(key, lr):
        return trainer.run(lhdppo.with_learning_rates(trainer.init(key), lr, lr), config.num_iterations)

    keys = jax.random.split(jax.random.PRNGKey(0), study.seeds)
    grid = jax.vmap(jax.vmap(train_one, in_axes=(0, None)), in_axes=(None, 0))
    compile_s, train_s, (state, metrics) = _timed_run(grid, keys, jnp.asarray(rates, jnp.float32))
    runs = len(rates) * study.seeds
    log(
        f"  {len(rates)} learning rates x {study.seeds} seeds in one jit: compile {compile_s:.0f} s, train {train_s:.0f} s"
    )
    out = {}
    for i, lr in enumerate(rates):
        trained = [jax.tree.map(lambda x, i=i, s=s: x[i, s], state.params) for s in range(study.seeds)]
        per_lr = jax.tree.map(lambda x, i=i: x[i], metrics)
        out[str(lr)] = {
            **evaluate_trained(env, params, trainer, trained, study),
            **_run_record(config, per_lr, compile_s, train_s, runs),
        }
    return out


def evaluate_heuristic(env, params, name: str, study: StudyConfig) -> dict:
    """Heuristic `name` (a key of `heuristic_policy`) on the held-out sets 0..S-1."""
    policy = heuristic_policy(env, name)
    metrics = score_names(env)
    score = jax.jit(lambda key: held_out_rollout(env, policy, params, key, study.eval_episodes, metrics))
    return _collect([score(held_out_key(study, s)) for s in range(study.seeds)])


def machine() -> str:
    return machine_summary()


def _header(study: StudyConfig, env_config, overrides, **extra) -> dict:
    return {
        "study": dataclasses.asdict(study),
        "env_config": env_config or {},
        "overrides": overrides or {},
        "machine": machine(),
        **extra,
        "results": {},
    }


def _resume(path: Path, record: dict, keys: Sequence[str] = ("study", "env_config", "overrides")) -> dict:
    """`record` with the results of the file at `path` when that file was written for the same `keys`."""
    if path.is_file():
        saved = json.loads(path.read_text())
        same = lambda k: json.dumps(saved.get(k), sort_keys=True) == json.dumps(record[k], sort_keys=True)
        if all(same(k) for k in keys):
            record["results"] = saved["results"]
    return record


def compare(
    study: StudyConfig,
    out_path: Path,
    methods: Sequence[str] | None = None,
    env_config: dict | None = None,
    overrides: dict | None = None,
    log=print,
    **extra,
) -> dict:
    """Every learner and heuristic (or `methods`, names of LEARNERS / the env's heuristics); writes `out_path`
    (JSON) after each method. `overrides`: config fields for every learner (e.g. tiny sizes in tests). An
    existing `out_path` of the same study, env config and overrides is extended: its methods are kept and not run
    again (a killed run resumes). `extra`: more header fields (the command, the machine's load)."""
    env = make_env(study, env_config)
    params = env.default_params
    known = {**LEARNERS, **heuristic_names(study)}
    methods = list(methods or known)
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"compare: unknown methods {unknown}; known: {list(known)}")
    record = _resume(out_path, _header(study, env_config, overrides, **extra))
    record["servers_xy_m"] = np.asarray(env.server_xy_m(params)).tolist()  # RSUs, then the satellite's ground point
    for name in methods:
        if name in record["results"]:
            log(f"{name}: done")
            continue
        log(f"{name}:")
        if name in LEARNERS:
            config = learner_config(name, study.iterations, overrides)
            record["results"][name] = train_and_evaluate(env, params, config, study, log)
        else:
            record["results"][name] = evaluate_heuristic(env, params, known[name], study)
        r = record["results"][name]
        log(
            f"  utility {r['utility']:.4f} ± {r['utility_seed_std']:.4f}  entropy {r['entropy_bits']:.4f} bit  "
            f"latency {r['latency_s']:.2f} s  QoS loss {r['qos_loss']:.4f}"
        )
        io.atomic_write_json(out_path, record)
    return record


def sweep(
    study: StudyConfig,
    out_path: Path,
    field: str,
    values: Sequence,
    method: str = "LHDPPO",
    env_config: dict | None = None,
    overrides: dict | None = None,
    log=print,
    **extra,
) -> dict:
    """`method` trained with `field` = each of `values` (for "lr": actor_lr = critic_lr, every value and seed in
    one vmapped jit); JSON after each value (after the grid for "lr"). Values already in an `out_path` of the same
    study, method, field and overrides are kept and not run again."""
    env = make_env(study, env_config)
    params = env.default_params
    record = _header(study, env_config, overrides, method=method, field=field, **extra)
    record = _resume(out_path, record, ("study", "env_config", "overrides", "method", "field"))
    todo = [v for v in values if str(v) not in record["results"]]
    if field == "lr" and todo:
        log(f"{method} lr in {todo}:")
        record["results"].update(
            train_learning_rate_grid(env, params, learner_config(method, study.iterations, overrides), study, todo, log)
        )
        io.atomic_write_json(out_path, record)
        todo = []
    for value in todo:
        config = learner_config(method, study.iterations, {**(overrides or {}), field: value})
        log(f"{method} {field}={value}:")
        record["results"][str(value)] = train_and_evaluate(env, params, config, study, log)
        io.atomic_write_json(out_path, record)
    for value in values:
        r = record["results"][str(value)]
        log(f"  {field}={value}: utility {r['utility']:.4f} ± {r['utility_seed_std']:.4f}")
    return record


def confidence_curve(study: StudyConfig, out_path: Path, env_config: dict | None = None, log=print, **extra) -> dict:
    """The fixed-radius rule r = f r_max (uniform angle, greedy server), f in CONFIDENCE_FRACTIONS, on the held-out
    sets: the attacker confidence max_a Post(p_a) (eq. 4), the entropy (5), the adversary's error and the utility
    (17) against the perturbation intensity f (per set, as the comparison). Skipped when `out_path` holds it."""
    if out_path.is_file() and json.loads(out_path.read_text()).get("study") == dataclasses.asdict(study):
        log("confidence curve: done")
        return json.loads(out_path.read_text())
    env = make_env(study, env_config)
    params = env.default_params
    metrics = score_names(env)
    make = heuristics.make_fixed_radius_stateful
    rows = []
    for f in CONFIDENCE_FRACTIONS:
        per_set = {name: [] for name in metrics}
        for s in range(study.seeds):
            means = calibration.episode_means(
                env, make, params, held_out_key(study, s), study.eval_episodes, metrics, jnp.float32(f)
            )
            for name in metrics:
                per_set[name].append(means[name])
        rows.append({"fraction": f, **_summary(per_set)})
        log(
            f"  r = {f:.1f} r_max: confidence {rows[-1]['attacker_confidence']:.3f}, entropy {rows[-1]['entropy_bits']:.3f} bit"
        )
    record = {"study": dataclasses.asdict(study), "env_config": env_config or {}, "machine": machine(), **extra}
    record["rows"] = rows
    io.atomic_write_json(out_path, record)
    return record


def reward_weight_search(
    study: StudyConfig,
    out_path: Path,
    rounds: int,
    candidates: int,
    env_config: dict | None = None,
    overrides: dict | None = None,
    log=print,
    **extra,
) -> dict:
    """The §4.5 loop (`reward_search.search`, the default cross-entropy generator; round 0's candidate 0 is the
    hand-set weights, spec §4.3) with LHDPPO at the study's budget, 1 training seed per candidate, every
    candidate scored by the utility (17) on held-out set 0; resumed by round from `out_path`. Then the best
    weights are retrained over the study's seeds and scored like the comparison ("best_retrained"), to set
    against the comparison's LHDPPO (the hand-set weights, the same training keys and held-out sets)."""
    env = make_env(study, env_config)
    params = env.default_params
    config = learner_config("LHDPPO", study.iterations, overrides)
    record = _header(study, env_config, overrides, rounds=rounds, candidates=candidates, **extra)
    record = _resume(out_path, record, ("study", "env_config", "overrides", "candidates"))
    done = [reward_search.RoundResult.from_json(r) for r in record["results"].get("rounds", [])][:rounds]

    def on_round(result):
        log(reward_search.format_round(result))
        record["results"]["rounds"] = [r.to_json() for r in done + [result]]
        done.append(result)
        io.atomic_write_json(out_path, record)

    result = reward_search.search(
        env,
        config,
        params,
        jax.random.PRNGKey(1),
        rounds,
        candidates,
        eval_key=held_out_key(study, 0),
        eval_envs=study.eval_episodes,
        eval_steps=env.config.max_steps,
        num_seeds=1,
        on_round=on_round,
        resume=list(done),
    )
    best = dict(zip(reward_search.WEIGHT_NAMES, map(float, result.best_weights)))
    record["results"]["best"] = {
        "weights": best,
        "round": result.best_round,
        "index": result.best_index,
        "utility_set0": result.best_score,
    }
    io.atomic_write_json(out_path, record)
    if "best_retrained" not in record["results"]:
        log(f"best weights {best}: retrained over {study.seeds} seeds")
        trained = train_and_evaluate(env, result.best_weights.apply(params), config, study, log)
        record["results"]["best_retrained"] = trained
        io.atomic_write_json(out_path, record)
    return record


def seed_subset(result: dict, seeds: int, source: str) -> dict:
    """A record of `train_and_evaluate` restricted to its first `seeds` seeds (their held-out sets): the metrics'
    summary over those sets and the curves [seeds, I]; the binned confidence and the trajectory stay those of
    the whole record. `source` names where it comes from."""
    per_set = {k[: -len("_seed_means")]: v[:seeds] for k, v in result.items() if k.endswith("_seed_means")}
    curves = {name: np.asarray(v)[:seeds].tolist() for name, v in result["curves"].items()}
    keep = {k: v for k, v in result.items() if k in ("compile_s", "train_s", "env_steps", "final_clip_fraction")}
    return {**_summary(per_set), **keep, "curves": curves, "from": source}


SPEC_VALUES = {"lr": 1e-4, "denoising_steps": 5}
"""The spec's values of the swept fields (§5.5): the comparison's LHDPPO, reused in the grids."""


def _seed_spec_value(path: Path, record: dict, field: str, study: StudyConfig, grid: StudyConfig, **header) -> None:
    """Write the grid's spec value (SPEC_VALUES) into the sweep file at `path` from the comparison's LHDPPO
    `record` (its first `grid.seeds` seeds: the same training keys and held-out sets), so it is not trained
    twice."""
    sweep_record = _resume(
        path,
        _header(grid, header["env_config"], header["overrides"], method="LHDPPO", field=field, **header["extra"]),
        ("study", "env_config", "overrides", "method", "field"),
    )
    key = str(SPEC_VALUES[field])
    if key not in sweep_record["results"] and "LHDPPO" in record["results"]:
        sweep_record["results"][key] = seed_subset(record["results"]["LHDPPO"], grid.seeds, "comparison.json")
        io.atomic_write_json(path, sweep_record)


def run_study(
    study: StudyConfig,
    out: Path,
    rounds: int = 3,
    candidates: int = 4,
    grid_seeds: int | None = None,
    lr_grid: Sequence[float] = LR_GRID,
    denoising_grid: Sequence[int] = DENOISING_GRID,
    env_config: dict | None = None,
    overrides: dict | None = None,
    log=print,
    **extra,
) -> None:
    """Every part of the study into `out` (module docstring), the most important first; every part resumable.
    `grid_seeds`: training seeds of the two grids (default: the study's); their spec values (lr 1e-4, U = 5) are
    the comparison's LHDPPO on its first `grid_seeds` seeds (the same keys and held-out sets)."""
    grid = dataclasses.replace(study, seeds=grid_seeds or study.seeds)
    kw = dict(env_config=env_config, log=log, **extra)
    log(f"== comparison ({study.env_id}, {study.iterations} iterations x {PPO_STEPS_PER_ITERATION} env steps per seed)")
    methods = [*heuristic_names(study), *LEARNERS]  # the heuristics first: cheap, and the yardstick
    record = compare(study, out / "comparison.json", methods, overrides=overrides, **kw)
    log("== attacker confidence vs perturbation intensity (fixed radius)")
    confidence_curve(study, out / "confidence.json", **kw)
    log("== reward-weight search (§4.5)")
    reward_weight_search(study, out / "reward_search.json", rounds, candidates, overrides=overrides, **kw)
    for field, values in (("lr", lr_grid), ("denoising_steps", denoising_grid)):
        log(f"== LHDPPO over {field}")
        path = out / f"sweep_{field}.json"
        _seed_spec_value(path, record, field, study, grid, env_config=env_config, overrides=overrides, extra=extra)
        sweep(grid, path, field, list(values), overrides=overrides, **kw)


# ------------------------------------------------------------------------------------------- longer budgets
def long_budget_table(record: dict, comparison: dict | None = None) -> str:
    """Each learner at every budget (its comparison row first, when given), with the same seeds untrained
    (iteration 0, the same held-out sets); then the yardsticks: the best fixed radius on each env variant and on
    the default env (the comparison's)."""
    lines = [
        "| method | env steps per seed | utility (17) | untrained: utility (17) | sampled actions: utility (17) | "
        "sampled, untrained | entropy (bit) | latency (s) | QoS loss | attacker confidence | agent migrated (share "
        "of slots) | training (s, seeds vmapped) |",
        "|---" * 12 + "|",
    ]
    results = (comparison or {}).get("results", {})
    for name, rows in record["results"].items():
        budgets = sorted(rows.values(), key=lambda r: r["env_steps"])
        if name in results:
            budgets = [results[name], *budgets]
        for r in budgets:
            other = " | ".join(
                _cell(r[k], "utility", 3) if k in r else "–" for k in ("untrained", "sampled", "untrained_sampled")
            )
            lines.append(
                f"| {name} | {r['env_steps']:,} | {_cell(r, 'utility', 3)} | {other} | "
                f"{_cell(r, 'entropy_bits', 2)} | {_cell(r, 'latency_s', 1)} | {r['qos_loss']:.2f} | "
                f"{r['attacker_confidence']:.3f} | {r['migrated']:.2f} | {r['train_s']:.0f} |"
            )
    yardsticks = [(f"{BEST_FIXED} ({v})", y[BEST_FIXED]) for v, y in record.get("yardsticks", {}).items()]
    if BEST_FIXED in results:
        yardsticks.append((BEST_FIXED, results[BEST_FIXED]))
    for name, r in yardsticks:
        lines.append(
            f"| {name} | – | {_cell(r, 'utility', 3)} | – | – | – | {_cell(r, 'entropy_bits', 2)} | "
            f"{_cell(r, 'latency_s', 1)} | {r['qos_loss']:.2f} | {r['attacker_confidence']:.3f} | {r['migrated']:.2f} | – |"
        )
    return "\n".join(lines)


def entropy_surface(
    env=None, params=None, num_radii: int = 21, num_angles: int = 36, key=None, vehicle: int = 0
) -> dict:
    """E (eq. 5, bits) of one AV over a radius x angle grid (r in [0, r_max], theta in [0, 2 pi)), at reset of a
    world from `key`, its agent server kept on its connected server. Returns radius_deg [R], angle_rad [A],
    entropy_bits [R, A], the AV's server bearing (rad) and whether that server is the satellite."""
    env = env or vmjax.make("CrossRealityPrivacy-v0")
    params = env.default_params if params is None else params
    _, state = env.reset(jax.random.PRNGKey(0) if key is None else key, params)
    radii = jnp.linspace(0.0, params.r_max_deg, num_radii)
    angles = jnp.arange(num_angles) * (2.0 * math.pi / num_angles)

    def entropy(radius, angle):
        raw = crp.raw_from_perturbation(
            jnp.full((env.num_agents,), radius),
            jnp.full((env.num_agents,), angle),
            params.r_max_deg,
            env.config.action_squash,
        )
        out = env.outcome(state, {"target": state.connected, "perturbation": raw}, params)
        return out["entropy_bits"][vehicle]

    grid = jax.jit(jax.vmap(jax.vmap(entropy, in_axes=(None, 0)), in_axes=(0, None)))(radii, angles)
    true = env.offsets_deg(state.trace.position_at(state.t), params)[vehicle]
    server = int(state.connected[vehicle])
    servers = crp.server_offsets_deg(params, env.config)
    bearing = math.atan2(float(servers[server][1] - true[1]), float(servers[server][0] - true[0]))
    return {
        "radius_deg": np.asarray(radii).tolist(),
        "angle_rad": np.asarray(angles).tolist(),
        "entropy_bits": np.asarray(grid).tolist(),
        "server_bearing_rad": bearing,
        "server_is_satellite": server == env.config.num_rsus,
    }


def _cell(r: dict, name: str, digits: int) -> str:
    """`value ± seed std` (the value alone for one seed; "–" when absent)."""
    if name not in r:
        return "–"
    if len(r.get(f"{name}_seed_means", [])) < 2:
        return f"{r[name]:.{digits}f}"
    return f"{r[name]:.{digits}f} ± {r[f'{name}_seed_std']:.{digits}f}"


def format_table(results: dict[str, dict]) -> str:
    """The comparison table, best utility first; ± = std over the seeds' held-out sets."""
    v1 = any("adversary_error_m" in r for r in results.values())
    extra = " adversary error (m) |" if v1 else ""
    lines = [
        "| method | utility (17) | ± seeds | entropy (bit) | latency (s) | QoS loss | perturbation (m) | attacker "
        f"confidence |{extra}",
        "|---|---|---|---|---|---|---|---|" + ("---|" if v1 else ""),
    ]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["utility"]):
        error = f" {r['adversary_error_m']:.1f} |" if v1 else ""
        lines.append(
            f"| {name} | {r['utility']:.4f} | {r['utility_seed_std']:.4f} | {r['entropy_bits']:.4f} | "
            f"{r['latency_s']:.2f} | {r['qos_loss']:.4f} | {r['perturbation_m']:.1f} | "
            f"{r.get('attacker_confidence', float('nan')):.3f} |{error}"
        )
    return "\n".join(lines)


def side_by_side_table(v0: dict, v1: dict) -> str:
    """v0's and v1's comparison results (each {method: record}) in one table, v1's best utility first; methods
    only one of them has get "–" for the other."""
    lines = [
        "| method | v0 utility (17) | v0 entropy (bit) | v0 latency (s) | v1 utility (17) | v1 entropy (bit) | "
        "v1 latency (s) | v1 QoS loss | v1 attacker confidence | v1 adversary error (m) |",
        "|---" * 10 + "|",
    ]
    names = sorted(v1, key=lambda n: -v1[n]["utility"]) + [n for n in v0 if n not in v1]
    for name in names:
        a, b = v0.get(name), v1.get(name)
        left = f"{_cell(a, 'utility', 3)} | {a['entropy_bits']:.2f} | {a['latency_s']:.1f}" if a else "– | – | –"
        right = (
            f"{_cell(b, 'utility', 3)} | {_cell(b, 'entropy_bits', 2)} | {_cell(b, 'latency_s', 1)} | "
            f"{b['qos_loss']:.2f} | {b['attacker_confidence']:.3f} | {b['adversary_error_m']:.1f}"
            if b
            else "– | – | – | – | – | –"
        )
        lines.append(f"| {name} | {left} | {right} |")
    return "\n".join(lines)


def curve_table(results: dict, metric: str = "rollout_utility") -> str:
    """Each learner's training curve of `metric` (mean over seeds) at its first, middle and last iteration."""
    lines = [f"| learner | {metric}: first iteration | middle | last | env steps per seed |", "|---|---|---|---|---|"]
    for name, r in results.items():
        if "curves" not in r:
            continue
        curve = np.mean(np.asarray(r["curves"][metric], np.float64), axis=0)
        lines.append(
            f"| {name} | {curve[0]:.3f} | {curve[len(curve) // 2]:.3f} | {curve[-1]:.3f} | {r['env_steps']:,} |"
        )
    return "\n".join(lines)


def sweep_table(record: dict) -> str:
    """A sweep file's values as a table (± = std over its seeds' held-out sets)."""
    field = record["field"]
    lines = [
        f"| {field} | utility (17) | entropy (bit) | latency (s) | QoS loss | attacker confidence | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for value in sorted(record["results"], key=float):
        r = record["results"][value]
        source = "the comparison's LHDPPO" if r.get("from") else f"{r.get('vmapped_runs', '')} vmapped"
        lines.append(
            f"| {value} | {_cell(r, 'utility', 3)} | {_cell(r, 'entropy_bits', 3)} | {_cell(r, 'latency_s', 1)} | "
            f"{_cell(r, 'qos_loss', 2)} | {r['attacker_confidence']:.3f} | {source} |"
        )
    return "\n".join(lines)


def search_table(record: dict) -> str:
    """Every candidate of the reward-weight search (eq. 21 weights; utility (17) on held-out set 0, 1 seed)."""
    lines = ["| round | k | w1 | w2 | w3 | w4 | w5 | utility (17) | entropy (bit) | latency (s) | QoS loss |"]
    lines.append("|---" * 11 + "|")
    for rnd in record["results"].get("rounds", []):
        for k, w in enumerate(rnd["weights"]):
            sc = {name: rnd["scores"][name][k] for name in reward_search.EVAL_METRICS}
            tag = " (hand-set)" if rnd["round"] == 0 and k == 0 else ""
            lines.append(
                f"| {rnd['round']} | {k}{tag} | " + " | ".join(f"{x:.3g}" for x in w) + f" | {sc['utility']:.3f} | "
                f"{sc['entropy_bits']:.3f} | {sc['latency_s']:.1f} | {sc['qos_loss']:.2f} |"
            )
    return "\n".join(lines)


def confidence_table(record: dict) -> str:
    """The fixed-radius rule's attacker confidence, entropy, error and utility against r / r_max."""
    rows = record["rows"]
    lines = ["| r / r_max | " + " | ".join(f"{row['fraction']:.1f}" for row in rows) + " |"]
    lines.append("|---" * (len(rows) + 1) + "|")
    for name, label, digits in (
        ("attacker_confidence", "attacker confidence (posterior max)", 3),
        ("entropy_bits", "entropy (bit)", 2),
        ("adversary_error_m", "adversary error (m)", 1),
        ("utility", "utility (17)", 3),
    ):
        if name in rows[0]:
            lines.append(f"| {label} | " + " | ".join(f"{row[name]:.{digits}f}" for row in rows) + " |")
    return "\n".join(lines)


def load_result(out: Path, name: str) -> dict | None:
    """The study's JSON file `name` in `out`; None when it is not there."""
    return json.loads((out / name).read_text()) if (out / name).is_file() else None


def report(out: Path) -> str:
    """The docs' tables ("Results on v1") from the JSON files in `out` (those that exist)."""
    load = lambda name: load_result(out, name)
    parts = []
    comparison = load("comparison.json")
    if comparison:
        parts += [format_table(comparison["results"]), f"{comparison.get('command', '')}; {comparison['machine']}"]
        parts.append(curve_table(comparison["results"]))
        v0 = Path("bench/results/cross_reality_privacy_study/comparison.json")
        if v0.is_file():
            parts.append(side_by_side_table(json.loads(v0.read_text())["results"], comparison["results"]))
    for name in ("sweep_lr.json", "sweep_denoising_steps.json"):
        record = load(name)
        if record:
            parts.append(sweep_table(record))
    search = load("reward_search.json")
    if search:
        parts.append(search_table(search))
        best = search["results"].get("best_retrained")
        if best:
            parts.append(f"best weights {search['results']['best']['weights']}: retrained {_cell(best, 'utility', 3)}")
    confidence = load("confidence.json")
    if confidence:
        parts.append(confidence_table(confidence))
    longer = load("long_budget.json")
    if longer:
        parts.append(long_budget_table(longer, comparison))
    return "\n\n".join(parts)


def command_line(argv: Sequence[str] | None) -> str:
    args = sys.argv[1:] if argv is None else list(argv)
    return "python -m baselines.cross_reality_privacy_study " + shlex.join(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("compare", "sweep", "surface", "study", "report"))
    parser.add_argument("--env", default=StudyConfig.env_id, choices=ENV_IDS)
    parser.add_argument("--iterations", type=int, default=StudyConfig.iterations)
    parser.add_argument("--seeds", type=int, default=StudyConfig.seeds)
    parser.add_argument("--grid-seeds", type=int, default=None, help="study: seeds of the grids and the search")
    parser.add_argument("--eval-episodes", type=int, default=StudyConfig.eval_episodes)
    parser.add_argument("--methods", default="", help="comma-separated names (default: all)")
    parser.add_argument("--field", default="lr", help="sweep: an LhdppoConfig field, or lr (actor and critic)")
    parser.add_argument("--values", default="1e-4,3e-4,1e-3", help="sweep: comma-separated values")
    parser.add_argument("--rounds", type=int, default=3, help="study: rounds of the reward-weight search")
    parser.add_argument("--candidates", type=int, default=4, help="study: candidates per round of the search")
    parser.add_argument("--tiny", action="store_true", help="tiny env and learner sizes (a pipeline check only)")
    parser.add_argument("--note", default="", help="stored with the results (e.g. what else ran on the machine)")
    parser.add_argument("--out", type=Path, default=Path("runs/crp_study"))
    args = parser.parse_args(argv)
    study = StudyConfig(args.iterations, args.seeds, args.eval_episodes, env_id=args.env)
    env_config, overrides = (TINY_ENV, TINY_LEARNER) if args.tiny else (None, None)
    extra = {"command": command_line(argv), "note": args.note}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "compare":
        methods = [m for m in args.methods.split(",") if m] or None
        record = compare(study, args.out / "comparison.json", methods, env_config, overrides, **extra)
        print(format_table(record["results"]))
    elif args.command == "sweep":
        kind = int if args.field == "denoising_steps" else float
        values = [kind(v) for v in args.values.split(",")]
        sweep(
            study, args.out / f"sweep_{args.field}.json", args.field, values, "LHDPPO", env_config, overrides, **extra
        )
    elif args.command == "report":
        print(report(args.out))
    elif args.command == "study":
        run_study(
            study,
            args.out,
            args.rounds,
            args.candidates,
            args.grid_seeds,
            env_config=env_config,
            overrides=overrides,
            **extra,
        )
    else:
        io.atomic_write_json(args.out / "entropy_surface.json", entropy_surface())
        print(json.dumps({k: v for k, v in entropy_surface().items() if not isinstance(v, list)}))
    return 0


TINY_ENV = {"num_vehicles": 2, "num_rsus": 6, "max_steps": 4, "hop_neighbours": 2}
TINY_LEARNER = {
    "num_envs": 2,
    "num_steps": 4,
    "update_epochs": 1,
    "num_minibatches": 1,
    "denoising_steps": 2,
    "state_hidden": (8,),
    "trunk_hidden": (8,),
    "time_embed_dim": 4,
    "time_hidden": 4,
    "critic_hidden": (8,),
    "mlp_hidden": (8,),
    "buffer_size": 64,  # HGDM
    "batch_size": 4,
    "updates_per_iteration": 2,
    "learning_starts": 0,
}
"""`--tiny`: sizes for a pipeline check (tests, a first run); never for results."""


if __name__ == "__main__":
    raise SystemExit(main())
