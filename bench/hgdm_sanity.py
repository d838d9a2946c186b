"""A short HGDM sanity run on the default CrossRealityPrivacy-v0 (not a benchmark, not a test).

    python -u -m bench.hgdm_sanity [--iterations 40] [--envs 16] [--updates 50] [--reward-mode manual]

Trains `HgdmConfig(num_iterations=..., num_envs=..., updates_per_iteration=..., reward_mode=...)` (defaults
otherwise: 50 steps per iteration, batch 256, U = 5) from key 0, prints the compile time, the wall time of the
whole jitted run, chosen iteration metrics, and evaluates on the same 16 x 50 held-out slots (key 123, the
`vmjax.core.rollout.rollout` episodes) as `bench/lhdppo_sanity.py`: the initial and trained policies
(deterministic and sampled) and the stateless Geo-I and no-perturbation baselines.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import vmjax
from baselines import cross_reality_privacy as crp_baselines
from vmjax.agents import hgdm
from vmjax.agents.lhdppo import REWARD_MODES
from vmjax.core.rollout import rollout

SHOWN = ("mean_train_reward", "rollout_utility", "rollout_entropy_bits", "rollout_latency_s", "rollout_qos_loss",
         "rollout_migrated", "q_loss", "q_value", "actor_loss", "alpha", "entropy", "log_std_mean", "gradient_steps")
EVALUATED = ("utility", "reward_llm", "entropy_bits", "latency_s", "qos_loss")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--reward-mode", default="manual", choices=REWARD_MODES)
    args = parser.parse_args()
    env = vmjax.make("CrossRealityPrivacy-v0")
    params = env.default_params
    config = hgdm.HgdmConfig(num_iterations=args.iterations, num_envs=args.envs, updates_per_iteration=args.updates,
                             reward_mode=args.reward_mode)
    trainer = hgdm.make_trainer(env, config)
    initial = jax.jit(trainer.init)(jax.random.key(0))
    run = jax.jit(trainer.run, static_argnums=1)
    start = time.time()
    compiled = run.lower(initial, args.iterations).compile()
    print(f"compile {time.time() - start:.1f}s", flush=True)
    start = time.time()
    final, metrics = compiled(initial)
    jax.block_until_ready(metrics)
    wall = time.time() - start
    print(f"{args.iterations} iterations in {wall:.1f}s ({wall / args.iterations:.2f}s per iteration, "
          f"{config.env_steps_per_iteration} env steps and {config.updates_per_iteration} gradient steps each)",
          flush=True)
    k = args.iterations
    for i in sorted({0, 1, k // 4, k // 2, 3 * k // 4, k - 1}):
        print(i, " ".join(f"{name}={float(metrics[name][i]):.4g}" for name in SHOWN), flush=True)

    def evaluate(policy, name):
        out = jax.jit(lambda key: rollout(env, policy, key, params, 16, 50))(jax.random.key(123))
        print(f"EVAL {name:28s} " + " ".join(f"{m}={float(jnp.mean(out[m])):.4f}" for m in EVALUATED), flush=True)

    evaluate(trainer.make_eval_policy(initial), "initial (deterministic)")
    evaluate(trainer.make_eval_policy(initial, deterministic=False), "initial (sampled)")
    evaluate(trainer.make_eval_policy(final), "trained (deterministic)")
    evaluate(trainer.make_eval_policy(final, deterministic=False), "trained (sampled)")
    evaluate(crp_baselines.make_geo_i_policy(env), "Geo-I (stateless greedy)")
    evaluate(crp_baselines.make_no_perturbation_policy(env), "no perturbation + greedy")


if __name__ == "__main__":
    main()
