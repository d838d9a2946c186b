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

import vmjax
from bench.common import train_and_report
from vmjax.agents import lhdppo

SHOWN = (
    "mean_train_reward",
    "rollout_utility",
    "rollout_entropy_bits",
    "rollout_latency_s",
    "rollout_qos_loss",
    "rollout_migrated",
    "entropy_d",
    "entropy_c",
    "value_loss",
    "aux_loss",
    "clip_fraction",
    "approx_kl_c",
    "approx_kl_d",
    "ent_coef",
    "aux_coef",
    "ratio_max_dev_first",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=45)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--reward-mode", default="llm", choices=lhdppo.REWARD_MODES)
    args = parser.parse_args()
    env = vmjax.make("CrossRealityPrivacy-v0")
    config = lhdppo.LhdppoConfig(
        num_iterations=args.iterations, actor_lr=args.lr, critic_lr=args.lr, reward_mode=args.reward_mode
    )
    train_and_report(
        env, lhdppo.make_trainer(env, config), args.iterations, SHOWN, f"{config.env_steps_per_iteration} env steps"
    )


if __name__ == "__main__":
    main()
