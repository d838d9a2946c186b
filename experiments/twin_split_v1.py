"""MSRL's experiments on TwinSplit-v1 (spec 004 §7; on top of the learners and baselines, like bench).

    python -m experiments.twin_split_v1 train      # Split / Local-Edge / Local-Model, 3 seeds, spec budget
    python -m experiments.twin_split_v1 table      # the method comparison and the capacity sweep, as markdown

`train` trains each actor mode with 3 seeds in one compiled `vmap` over seeds (`msrl.make_train`), the GPU
capacity C_nom a traced argument of the same program, so one compilation per mode serves every capacity and bank.
Each (bank, capacity, mode) group is evaluated at once on the 3 x 100 held-out worlds of `vmjax evaluate`
(PRNGKey(10000 + s), the same for every policy, the heuristics and the per-slot oracles included) and written to
training.json atomically; a finished group is skipped, so a killed run resumes at the next group. Groups go in
`PLAN` order: both banks at 60 GHz first (the method comparison), then the ground-truth bank at 40 / 80 / 50 / 70
GHz (the capacity sweep, learners retrained at each capacity).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import twin_split as heuristics
from baselines import twin_split_study as study
from baselines.avatar_premigration_study import FIRST_SEED, write_results
from vmjax import scenarios
from vmjax.agents import msrl

OUT = Path("docs/results/twin_split_v1")
MODES = ("split", "local_edge", "local")
PLAN = (("real", 60.0), ("generated", 60.0), ("real", 40.0), ("real", 80.0), ("real", 50.0), ("real", 70.0))
AGENT_DEFAULTS = scenarios.get("TwinSplit-v1").defaults["agent"]  # the spec's budget and v1's threshold change
EVAL_METRICS = ("latency_s", "qoe", "ber", "migration_share", "use_server", "params_used")
CURVE_METRICS = ("episode_total_latency_s", "episode_qoe", "server_use_fraction", "mean_threshold_nats")
CURVE_EVERY = 10  # iterations between stored curve points


def msrl_config(mode: str, iterations: int) -> msrl.MsrlConfig:
    """What `vmjax train --env TwinSplit-v1 --agent.mode MODE` trains (spec 004 §6.10 budget, v1's Ch)."""
    return msrl.MsrlConfig(**{**AGENT_DEFAULTS, "mode": mode, "num_iterations": iterations})


def make_group_runner(env, base_params, config: msrl.MsrlConfig, episodes: int, seeds: int):
    """jit((seed keys [S], capacity Hz, trace bank) -> (eval metrics {m: [S, held-out seeds, episodes]}, curves
    {m: [S, iterations]})): training vmapped over seeds, then the trained policies on the held-out worlds."""

    def one(key, capacity, bank):
        params = base_params.replace(gpu_hz_nominal=capacity, trace_bank=bank)
        trainer = msrl.make_trainer(env, config, params)
        state, metrics = trainer.train(key)
        policy = trainer.make_eval_policy(state)
        evaluate = lambda k: heuristics.evaluate_episodes(env, [policy], params, k, 0, episodes)
        held_out = jax.vmap(evaluate)(jnp.stack([jax.random.PRNGKey(FIRST_SEED + s) for s in range(seeds)]))
        return held_out, {m: metrics[m] for m in CURVE_METRICS}

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def _summary(values: np.ndarray) -> dict:
    """values [training seeds, held-out seeds, episodes] -> mean, spread over training seeds, per-seed means."""
    per_seed = values.mean(axis=(1, 2))
    return {"mean": float(per_seed.mean()), "seed_std": float(per_seed.std(ddof=1)), "per_seed": per_seed.tolist()}


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def train(out: Path, iterations: int, episodes: int, seeds: tuple[int, ...], plan=PLAN, modes=MODES, log=print):
    path = out / "training.json"
    data = _read(path)
    data.update(
        iterations=iterations, num_envs=32, training_seeds=list(seeds), held_out_episodes=episodes, held_out_seeds=3
    )
    data["threshold_change_nats"] = AGENT_DEFAULTS["threshold_change_nats"]
    groups = data.setdefault("groups", {})
    env = vmjax.make("TwinSplit-v1")
    base = env.default_params
    banks, runners = {}, {}
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    for bank, ghz in plan:
        name = f"{bank}/{ghz:.0f}GHz"
        group = groups.setdefault(name, {})
        if bank not in banks:
            banks[bank] = study.trace_bank(bank, env.config.max_steps + 1, env.config.map_size_m)
        if "heuristics" not in group:
            start = time.perf_counter()
            params = base.replace(trace_bank=banks[bank])
            policies = {n: make(env) for n, make in study.all_policies().items()}
            group["heuristics"] = study.evaluate_capacities(env, params, policies, episodes, 3, (ghz,))
            write_results(path, data)
            log(f"{name}: heuristics and oracles in {time.perf_counter() - start:.0f} s")
        for mode in modes:
            if mode in group:
                continue
            start = time.perf_counter()
            if mode not in runners:
                runners[mode] = make_group_runner(env, base, msrl_config(mode, iterations), episodes, 3)
            held_out, curves = jax.device_get(runners[mode](keys, jnp.float32(ghz * 1e9), banks[bank]))
            group[mode] = {
                **{m: _summary(np.asarray(held_out[m])) for m in EVAL_METRICS},
                "curves": {m: np.asarray(curves[m])[:, CURVE_EVERY - 1 :: CURVE_EVERY].tolist() for m in CURVE_METRICS},
                "wall_s": time.perf_counter() - start,
            }
            write_results(path, data)
            log(
                f"{name} {mode}: latency {group[mode]['latency_s']['mean']:.3f} s, QoE {group[mode]['qoe']['mean']:.3f}, "
                f"server calls {100 * group[mode]['use_server']['mean']:.1f}% in {time.perf_counter() - start:.0f} s"
            )
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("command", choices=("train",))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    train(args.out, args.iterations, args.episodes, tuple(args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
