"""Heuristic policies for TwinRouting-v0 (spec 002 §8.1): Greedy and Random, and their evaluation.

Each `make_*(env)` returns a pure `policy(key, state, params) -> int32 [V]` (the hosting server of every
vehicle) for one world; `vmjax.core.rollout` vmaps it over worlds inside the jitted rollout. Both respect
`env.action_mask`: with the mask on they only pick feasible servers; with `use_mask=False` the mask is
presence only, so Greedy's "closest" may be out of range or overloaded (§8.1).

`make_policy_evaluator` gives the §8.2 evaluation metrics per held-out episode; `server_count_sweep`
evaluates with a share of the RSUs switched off, all shares in one vmapped, once-compiled rollout.

    python -m baselines.twin_routing --calibrate [--env TwinRouting-v1]   # §3.3 (A) z-score constants, default config
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import oracles
from baselines.evaluate import summarize_episodes
from vmjax.core import Wrapper, rollout
from vmjax.envs.twin_routing import (
    NormStats,
    TwinRouting,
    calibrate_norm_stats,
    packet_loss_rate,
)


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


def make_stay_policy(env: TwinRouting):
    """Doing nothing [C]: keep the twin on its current host while the mask allows it, else the nearest selectable
    RSU/UAV (the satellite when none): the reference a routing decision has to beat."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        mask = env.action_mask(state, params)
        stays = mask[jnp.arange(env.num_agents), ctx.host]
        return jnp.where(stays, ctx.host, env.nearest_selectable(ctx, mask)).astype(jnp.int32)

    return policy


def make_least_loaded_policy(env: TwinRouting):
    """Least loaded [C]: the selectable RSU/UAV with the smallest estimated load after the vehicle's own increment,
    S^o_m + Delta S_{v,m} (what the observation and the mask see: the env's `workload_forecast` decides how good
    that estimate is), the satellite when no RSU/UAV is selectable. The value-of-information instrument: one rule,
    the forecasts of `INFORMATION`."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        mask = env.action_mask(state, params)
        load = env.estimated_load_bits(ctx)[None, :] + env.load_increment_bits(ctx, params)
        ground = mask & ~env.is_sat
        best = jnp.argmin(jnp.where(ground, load, jnp.inf), axis=-1)
        return jnp.where(jnp.any(ground, axis=-1), best, env.nearest_selectable(ctx, mask)).astype(jnp.int32)

    return policy


def make_oracle_policy(env: TwinRouting, objective: str = "own", rounds: int = 3):
    """Per-slot oracle [C]: the whole slot known (the true background B(t), the caches, every position and the
    other vehicles' choices). From the nearest selectable server, the vehicles take turns (`rounds` passes) choosing
    the present server that minimises their own reward cost, the bracket of eq. (22) with this slot's statistics
    (objective="own": iterated best response), or the sum over vehicles ("team"). Myopic: the queue it leaves for
    the next slot does not count. Not restricted by the mask (it knows what the mask estimates)."""
    oracles.check_objective(objective)
    candidates = jnp.arange(env.num_servers, dtype=jnp.int32)

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        mask = env.action_mask(state, params)
        mean, std = env.norm_moments(state, params)

        def cost(server):
            out = env.slot_latency(ctx, server, params)
            loads = out.pop("server_loads_bits")
            return jnp.where(ctx.active, env.reward_terms(ctx, server, out, loads, mean, std, params)["cost"], 0.0)

        allowed = jnp.broadcast_to(ctx.present, (env.num_agents, env.num_servers))
        allowed = jnp.where(ctx.active[:, None], allowed, mask)  # an inactive vehicle keeps its no-op
        start = env.nearest_selectable(ctx, mask)
        return oracles.best_response_rounds(cost, candidates, start, env.num_agents, rounds, objective, allowed)

    return policy


POLICIES: dict[str, Callable[[TwinRouting], Callable]] = {
    "greedy": make_greedy_policy,
    "random": make_random_policy,
}
"""Every heuristic for TwinRouting-v0 by name."""

REFERENCES: dict[str, Callable[[TwinRouting], Callable]] = {
    "stay": make_stay_policy,
    "nearest": lambda env: make_greedy_policy(env, explore_prob=0.0),
    "least_loaded": make_least_loaded_policy,
    "oracle": make_oracle_policy,
    "oracle_team": lambda env: make_oracle_policy(env, objective="team"),
}
"""TwinRouting-v1's calibration references (docs/twin_routing.md, "v0 -> v1"): doing nothing, the nearest server,
the least-loaded rule (whose estimate is the env's `workload_forecast`) and the per-slot oracles."""


def calibrate(env: TwinRouting, params=None, key=None, num_episodes: int = 64) -> NormStats:
    """§3.3 (A) [REC]: the fixed z-score constants from Greedy and Random (with the mask) rollouts."""
    params = env.default_params if params is None else params
    key = jax.random.key(0) if key is None else key
    policies = [make_greedy_policy(env), make_random_policy(env)]
    return calibrate_norm_stats(env, params, policies, key, num_episodes)


# ---------------------------------------------------------------------- evaluation
SAMPLE_METRICS = {
    "latency_s": "total_latency_s",  # T^sum, eq. (13)
    "migration_s": "migration_s",  # T^mig, eq. (12)
    "failure_rate": "failure",  # xi, eq. (14)
    "migration_share": "migrated",  # J, eq. (10)
    "satellite_share": "on_satellite",
    "masked_action_share": "masked_action",  # a present server outside the mask, eq. (23)
    "invalid_action_share": "invalid_action",  # out of bounds or absent: ran on the fallback
}
"""Metrics averaged over the active (vehicle, slot) samples of an episode: name -> info key."""


class _EpisodeEnd(Wrapper):
    """Adds info["episode_done"] (terminated or truncated), so the evaluator can keep the first
    episode of each world: when every trip is over early (`min_trip_slots`) the world auto-resets
    before `max_steps` and the rollout's later slots belong to a new episode."""

    def step_env(self, key, state, action, params):
        obs, state, reward, term, trunc, info = self._env.step_env(key, state, action, params)
        return obs, state, reward, term, trunc, dict(info, episode_done=term | trunc)


def _raw_info(reward, info):
    keys = (
        *SAMPLE_METRICS.values(),
        "active",
        "workload_variance_bits2",
        "episode_done",
    )
    return dict({key: info[key] for key in keys}, reward=reward)


def evaluate_episodes(env, policies, params, key, index, num_episodes):
    """Per-episode metrics [E] of `policies[index]` over the first episode of each world (not jitted: `params`
    may be traced, e.g. vmapped over a sweep)."""
    policy = lambda k, state, p: jax.lax.switch(index, policies, k, state, p)
    steps = env.config.max_steps
    raw = rollout(_EpisodeEnd(env), policy, key, params, num_episodes, steps, _raw_info)
    done = raw["episode_done"].astype(jnp.int32)  # [T, E]
    first = (jnp.cumsum(done, axis=0) - done) == 0  # slots up to the first episode end
    active = raw["active"] & first[..., None]  # [T, E, V]
    weight = active.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(weight, axis=(0, 2)), 1.0)
    mean = lambda x: jnp.sum(weight * x.astype(jnp.float32), axis=(0, 2)) / count
    out = {name: mean(raw[key]) for name, key in SAMPLE_METRICS.items()}
    out["reward"] = mean(raw["reward"])
    loss = packet_loss_rate(raw["failure"], active)  # [E, V], eq. (15)
    seen = jnp.any(active, axis=0)
    out["packet_loss"] = jnp.sum(loss * seen, -1) / jnp.maximum(jnp.sum(seen, -1), 1)
    variance = jnp.where(first, raw["workload_variance_bits2"], 0.0)  # [T, E], eq. (16b)
    out["workload_variance_bits2"] = jnp.sum(variance, 0) / jnp.sum(first, 0)
    return out


def make_policy_evaluator(env: TwinRouting, policies: Sequence[Callable], params, num_episodes: int):
    """One jitted `(key, index) -> {metric: [num_episodes] float32}` for `policies[index]`.

    The policies sit behind one `lax.switch`, so the env compiles once for all of them, and every
    policy meets the same `num_episodes` worlds drawn from `key`. Each world runs one episode
    (`max_steps` slots, or fewer when every trip ends early). Metrics, §8.2: the mean over the
    active (vehicle, slot) samples of `SAMPLE_METRICS` and of the reward (eqs. 21-22);
    `packet_loss`, eq. (15): each vehicle's failures over its active slots, averaged over the
    vehicles active at least once; `workload_variance_bits2`, eq. (16b): the mean over slots.
    """
    policies = list(policies)
    return jax.jit(lambda key, index: evaluate_episodes(env, policies, params, key, index, num_episodes))


def rsu_subset_masks(num_rsus: int, fractions: Sequence[float], seed: int) -> np.ndarray:
    """bool [F, num_rsus]: row f keeps round(f * num_rsus) RSUs (half up, at least 1), the first ones
    of one random permutation drawn from `seed`, so a smaller fraction keeps a subset."""
    if not fractions or any(not 0.0 < f <= 1.0 for f in fractions):
        raise ValueError(f"fractions must be one or more values in (0, 1], got {fractions}")
    rank = np.argsort(np.random.default_rng(seed).permutation(num_rsus))
    counts = [max(1, math.floor(f * num_rsus + 0.5)) for f in fractions]
    return np.stack([rank < k for k in counts])


def server_count_sweep(
    env: TwinRouting,
    policies: Sequence[Callable] | Mapping[str, Callable],
    params,
    fractions: Sequence[float],
    key,
    num_episodes: int,
    seed: int = 0,
) -> dict:
    """Evaluate every policy with only a share of the RSUs present (`rsu_subset_masks`, replacing
    `params.rsu_present`; UAVs then take their flow from the nearest present RSU, §4.1).

    One jitted function vmaps the evaluation of `make_policy_evaluator` over the F masks, so the
    env compiles once for all fractions and policies, and all of them see the worlds from `key`.
    Returns {policy name (or index): [F summaries]}: `summarize_episodes` of the per-episode
    metrics, plus "fraction", "num_rsus_present" and "num_edge_servers" (present RSUs + UAVs; the
    whole UAV fleet, 0 with `use_uavs=False`).
    """
    masks = rsu_subset_masks(env.num_rsus, fractions, seed)
    for mask in masks:  # the vmapped params are traced, so check them here
        env.validate_params(params.replace(rsu_present=jnp.asarray(mask)))
    if not isinstance(policies, Mapping):
        policies = dict(enumerate(policies))
    fns = list(policies.values())

    def run(key, index, present):
        one = lambda m: evaluate_episodes(env, fns, params.replace(rsu_present=m), key, index, num_episodes)
        return jax.vmap(one)(present)

    run = jax.jit(run)
    uavs = env.num_uavs if env.config.use_uavs else 0
    results = {}
    for index, name in enumerate(policies):
        episodes = jax.device_get(run(key, index, jnp.asarray(masks)))
        results[name] = [
            dict(
                summarize_episodes({k: v[f] for k, v in episodes.items()}),
                fraction=float(fraction),
                num_rsus_present=int(masks[f].sum()),
                num_edge_servers=int(masks[f].sum()) + uavs,
            )
            for f, fraction in enumerate(fractions)
        ]
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="print the norm stats of the default config",
    )
    parser.add_argument("--parameter-set", default="calibrated", choices=("calibrated", "literal"))
    parser.add_argument("--env", default="TwinRouting-v0", choices=("TwinRouting-v0", "TwinRouting-v1"))
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args(argv)
    if args.calibrate:
        env = vmjax.make(args.env, parameter_set=args.parameter_set)
        print(calibrate(env, num_episodes=args.episodes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
