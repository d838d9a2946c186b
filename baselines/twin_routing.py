"""Heuristic policies for TwinRouting-v0 (spec 002 §8.1): Greedy and Random.

Each `make_*(env)` returns a pure `policy(key, state, params) -> int32 [V]` (the hosting server of every
vehicle) for one world; `vmjax.core.rollout` vmaps it over worlds inside the jitted rollout. Both respect
`env.action_mask`: with the mask on they only pick feasible servers; with `use_mask=False` the mask is
presence only, so Greedy's "closest" may be out of range or overloaded (§8.1).

    python -m baselines.twin_routing --calibrate     # §3.3 (A) z-score constants for the default config
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import jax
import jax.numpy as jnp

from vmjax.envs.twin_routing import NormStats, TwinRouting, calibrate_norm_stats


def make_random_policy(env: TwinRouting):
    """Random [P]: uniform over the selectable servers of `env.action_mask`."""
    space = env.action_space()

    def policy(key, state, params):
        return space.sample(key, env.action_mask(state, params)).astype(jnp.int32)

    return policy


def make_greedy_policy(env: TwinRouting, explore_prob: float = 0.1):
    """Greedy [P]: each vehicle, with probability 1 - `explore_prob`, the geographically closest selectable
    RSU/UAV (the satellite when none is selectable; the mask's fallback without a satellite), else a server
    drawn uniformly from the selectable ones (independently per vehicle)."""
    space = env.action_space()

    def policy(key, state, params):
        k_coin, k_random = jax.random.split(key)
        ctx = env.slot_context(state, params)
        mask = env.action_mask(state, params)
        closest = env.nearest_selectable(ctx, mask)
        random = space.sample(k_random, mask).astype(jnp.int32)
        explore = jax.random.uniform(k_coin, (env.num_agents,)) < explore_prob
        return jnp.where(explore, random, closest)

    return policy


POLICIES: dict[str, Callable[[TwinRouting], Callable]] = {
    "greedy": make_greedy_policy,
    "random": make_random_policy,
}
"""Every heuristic for TwinRouting-v0 by name."""


def calibrate(env: TwinRouting, params=None, key=None, num_episodes: int = 64) -> NormStats:
    """§3.3 (A) [REC]: the fixed z-score constants from Greedy and Random (with the mask) rollouts."""
    params = env.default_params if params is None else params
    key = jax.random.key(0) if key is None else key
    policies = [make_greedy_policy(env), make_random_policy(env)]
    return calibrate_norm_stats(env, params, policies, key, num_episodes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="print the norm stats of the default config")
    parser.add_argument("--parameter-set", default="calibrated", choices=("calibrated", "literal"))
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args(argv)
    if args.calibrate:
        env = TwinRouting(parameter_set=args.parameter_set)
        print(calibrate(env, num_episodes=args.episodes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
