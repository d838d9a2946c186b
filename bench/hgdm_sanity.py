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

import vmjax
from bench.common import train_and_report
from vmjax.agents import hgdm
from vmjax.agents.lhdppo import REWARD_MODES

SHOWN = (
    "mean_train_reward",
    "rollout_utility",
    "rollout_entropy_bits",
    "rollout_latency_s",
    "rollout_qos_loss",
    "rollout_migrated",
    "q_loss",
    "q_value",
    "actor_loss",
    "alpha",
    "entropy",
    "log_std_mean",
    "gradient_steps",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--reward-mode", default="manual", choices=REWARD_MODES)
    args = parser.parse_args()
    env = vmjax.make("CrossRealityPrivacy-v0")
    config = hgdm.HgdmConfig(
        num_iterations=args.iterations,
        num_envs=args.envs,
        updates_per_iteration=args.updates,
        reward_mode=args.reward_mode,
    )
    train_and_report(
        env,
        hgdm.make_trainer(env, config),
        args.iterations,
        SHOWN,
        f"{config.env_steps_per_iteration} env steps and {config.updates_per_iteration} gradient steps",
    )


if __name__ == "__main__":
    main()
