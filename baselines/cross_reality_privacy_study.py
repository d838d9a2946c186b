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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import cross_reality_privacy as heuristics
from vmjax.agents import hgdm, lhdppo
from vmjax.core import io
from vmjax.core.machine import machine_summary
from vmjax.envs import cross_reality_privacy as crp

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
CURVES = ("mean_train_reward", "rollout_utility", "rollout_entropy_bits", "rollout_latency_s", "rollout_qos_loss")
SCORES = ("utility", "entropy_bits", "latency_s", "qos_loss", "reward_llm", "migrated", "perturbation_m")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Budget and evaluation of the study."""

    iterations: int = 60  # updates per seed (x 2048 env steps); the paper trains ~2441 (5e6 steps)
    seeds: int = 3  # training seeds, vmapped
    eval_episodes: int = 32  # held-out worlds per set (one episode of T slots each)
    eval_seed: int = 10_000  # held-out set s: fold_in(PRNGKey(eval_seed), s)

    def __post_init__(self):
        for name, low in (("iterations", 1), ("seeds", 1), ("eval_episodes", 1), ("eval_seed", 0)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ValueError(f"StudyConfig.{name} must be an int >= {low}, got {getattr(self, name)!r}")


def held_out_key(study: StudyConfig, index: int) -> jax.Array:
    return jax.random.fold_in(jax.random.PRNGKey(study.eval_seed), index)


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
    return lhdppo.ALGORITHMS[algo](num_iterations=iterations, **(overrides or {}))


def train_and_evaluate(env, params, config, study: StudyConfig, log=print) -> dict:
    """Train `study.seeds` seeds of `config` (an LHDPPO-family or HGDM config) in one vmapped jit and score
    seed s on held-out set s."""
    make_trainer = hgdm.make_trainer if isinstance(config, hgdm.HgdmConfig) else lhdppo.make_trainer
    trainer = make_trainer(env, config, params)
    train = jax.jit(jax.vmap(trainer.train))
    keys = jax.random.split(jax.random.PRNGKey(0), study.seeds)
    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(keys))
    train_s = time.perf_counter() - start

    @jax.jit
    def score(trained_params, key):
        policy = trainer.make_eval_policy(trained_params)
        return heuristics.episode_metrics(env, policy, params, key, study.eval_episodes)

    per_set = {name: [] for name in SCORES}
    for s in range(study.seeds):
        out = score(jax.tree.map(lambda x, s=s: x[s], state.params), held_out_key(study, s))
        for name in SCORES:
            per_set[name].append(float(jnp.mean(out[name])))
    env_steps = config.num_iterations * config.env_steps_per_iteration
    log(
        f"  {config.reward_mode} reward, {env_steps:,} env steps x {study.seeds} seeds: compile {compile_s:.0f} s, "
        f"train {train_s:.0f} s ({env_steps * study.seeds / train_s:,.0f} env steps/s)"
    )
    curves = {name: np.asarray(metrics[name]).tolist() for name in CURVES}
    return {
        **_summary(per_set),
        "curves": curves,
        "compile_s": compile_s,
        "train_s": train_s,
        "env_steps": env_steps,
        "final_clip_fraction": float(np.mean(np.asarray(metrics["clip_fraction"])[:, -1]))
        if "clip_fraction" in metrics
        else float("nan"),
    }


def evaluate_heuristic(env, params, name: str, study: StudyConfig) -> dict:
    policy = heuristics.POLICIES[name](env)
    score = jax.jit(lambda key: heuristics.episode_metrics(env, policy, params, key, study.eval_episodes))
    per_set = {metric: [] for metric in SCORES}
    for s in range(study.seeds):
        out = score(held_out_key(study, s))
        for metric in SCORES:
            per_set[metric].append(float(jnp.mean(out[metric])))
    return _summary(per_set)


def machine() -> str:
    return machine_summary()


def compare(
    study: StudyConfig,
    out_path: Path,
    methods: Sequence[str] | None = None,
    env_config: dict | None = None,
    overrides: dict | None = None,
    log=print,
) -> dict:
    """Every learner and heuristic (or `methods`, names of LEARNERS / HEURISTICS); writes `out_path` (JSON)
    after each method. `overrides`: config fields for every learner (e.g. tiny sizes in tests). An existing
    `out_path` of the same study, env config and overrides is extended (its other methods are kept)."""
    env = vmjax.make("CrossRealityPrivacy-v0", **(env_config or {}))
    params = env.default_params
    methods = list(methods or [*LEARNERS, *HEURISTICS])
    unknown = [m for m in methods if m not in LEARNERS and m not in HEURISTICS]
    if unknown:
        raise ValueError(f"compare: unknown methods {unknown}; known: {[*LEARNERS, *HEURISTICS]}")
    record = {
        "study": dataclasses.asdict(study),
        "env_config": env_config or {},
        "overrides": overrides or {},
        "machine": machine(),
        "results": {},
    }
    if out_path.is_file():
        saved = json.loads(out_path.read_text())
        same = lambda k: json.dumps(saved.get(k), sort_keys=True) == json.dumps(record[k], sort_keys=True)
        if all(same(k) for k in ("study", "env_config", "overrides")):
            record["results"] = saved["results"]
    for name in methods:
        log(f"{name}:")
        if name in HEURISTICS:
            record["results"][name] = evaluate_heuristic(env, params, HEURISTICS[name], study)
        else:
            record["results"][name] = train_and_evaluate(
                env, params, learner_config(name, study.iterations, overrides), study, log
            )
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
) -> dict:
    """`method` trained with `field` = each of `values` (for "lr": actor_lr = critic_lr); JSON after each."""
    env = vmjax.make("CrossRealityPrivacy-v0", **(env_config or {}))
    params = env.default_params
    record = {
        "study": dataclasses.asdict(study),
        "method": method,
        "field": field,
        "overrides": overrides or {},
        "machine": machine(),
        "results": {},
    }
    for value in values:
        fields = {"actor_lr": value, "critic_lr": value} if field == "lr" else {field: value}
        config = learner_config(method, study.iterations, {**(overrides or {}), **fields})
        log(f"{method} {field}={value}:")
        record["results"][str(value)] = train_and_evaluate(env, params, config, study, log)
        r = record["results"][str(value)]
        log(f"  utility {r['utility']:.4f} ± {r['utility_seed_std']:.4f}")
        io.atomic_write_json(out_path, record)
    return record


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


def format_table(results: dict[str, dict]) -> str:
    lines = [
        "| method | utility (17) | ± seeds | entropy (bit) | latency (s) | QoS loss | perturbation (m) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["utility"]):
        lines.append(
            f"| {name} | {r['utility']:.4f} | {r['utility_seed_std']:.4f} | {r['entropy_bits']:.4f} | "
            f"{r['latency_s']:.2f} | {r['qos_loss']:.4f} | {r['perturbation_m']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("compare", "sweep", "surface"))
    parser.add_argument("--iterations", type=int, default=StudyConfig.iterations)
    parser.add_argument("--seeds", type=int, default=StudyConfig.seeds)
    parser.add_argument("--eval-episodes", type=int, default=StudyConfig.eval_episodes)
    parser.add_argument("--methods", default="", help="comma-separated names (default: all)")
    parser.add_argument("--field", default="lr", help="sweep: an LhdppoConfig field, or lr (actor and critic)")
    parser.add_argument("--values", default="1e-4,3e-4,1e-3", help="sweep: comma-separated values")
    parser.add_argument("--out", type=Path, default=Path("runs/crp_study"))
    args = parser.parse_args(argv)
    study = StudyConfig(args.iterations, args.seeds, args.eval_episodes)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "compare":
        methods = [m for m in args.methods.split(",") if m] or None
        record = compare(study, args.out / "comparison.json", methods)
        print(format_table(record["results"]))
    elif args.command == "sweep":
        kind = int if args.field == "denoising_steps" else float
        sweep(study, args.out / f"sweep_{args.field}.json", args.field, [kind(v) for v in args.values.split(",")])
    else:
        io.atomic_write_json(args.out / "entropy_surface.json", entropy_surface())
        print(json.dumps({k: v for k, v in entropy_surface().items() if not isinstance(v, list)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
