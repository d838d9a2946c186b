"""A short LHDPPO sanity run on the default CrossRealityPrivacy-v0 (not a benchmark, not a test).

    python -u -m bench.lhdppo_sanity [--iterations 45] [--lr 1e-4] [--reward-mode llm]

Trains `LhdppoConfig(num_iterations=..., actor_lr=critic_lr=lr, reward_mode=...)` (spec §5.5 defaults otherwise:
16 worlds x 128 steps, 10 epochs x 8 minibatches, U = 5) from key 0, prints the compile time, the wall time of
the whole jitted run, chosen iteration metrics, and evaluates on the same 16 x 50 held-out slots (key 123, the
`vmjax.core.rollout.rollout` episodes): the initial and trained policies (deterministic and sampled) and the
stateless Geo-I and no-perturbation baselines of `baselines/cross_reality_privacy.py`.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import vmjax
from baselines import cross_reality_privacy as crp_baselines
from vmjax.agents import lhdppo
from vmjax.core.rollout import rollout

SHOWN = ("mean_train_reward", "rollout_utility", "rollout_entropy_bits", "rollout_latency_s", "rollout_qos_loss",
         "rollout_migrated", "entropy_d", "entropy_c", "value_loss", "aux_loss", "clip_fraction", "approx_kl_c",
         "approx_kl_d", "ent_coef", "aux_coef", "ratio_max_dev_first")
EVALUATED = ("utility", "reward_llm", "entropy_bits", "latency_s", "qos_loss")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=45)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--reward-mode", default="llm", choices=lhdppo.REWARD_MODES)
    args = parser.parse_args()
    env = vmjax.make("CrossRealityPrivacy-v0")
    config = lhdppo.LhdppoConfig(num_iterations=args.iterations, actor_lr=args.lr, critic_lr=args.lr,
                                 reward_mode=args.reward_mode)
    train_and_report(env, lhdppo.make_trainer(env, config), args.iterations, SHOWN,
                     f"{config.env_steps_per_iteration} env steps")


def train_and_report(env, trainer, iterations: int, shown, per_iteration: str):
    """Compile and run `iterations` of `trainer` from key 0 (compile time apart), print the `shown` metrics at a
    few iterations and evaluate the initial and trained policies and the stateless heuristics on the same
    16 x 50 held-out slots (key 123). Shared by the LHDPPO and HGDM sanity runs."""
    params = trainer.env_params
    initial = jax.jit(trainer.init)(jax.random.key(0))
    run = jax.jit(trainer.run, static_argnums=1)
    start = time.time()
    compiled = run.lower(initial, iterations).compile()
    print(f"compile {time.time() - start:.1f}s", flush=True)
    start = time.time()
    final, metrics = compiled(initial)
    jax.block_until_ready(metrics)
    wall = time.time() - start
    print(f"{iterations} iterations in {wall:.1f}s ({wall / iterations:.2f}s per iteration, {per_iteration} each)",
          flush=True)
    k = iterations
    for i in sorted({0, 1, k // 4, k // 2, 3 * k // 4, k - 1}):
        print(i, " ".join(f"{name}={float(metrics[name][i]):.4g}" for name in shown), flush=True)

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
