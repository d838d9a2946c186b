"""Heuristic policies for AvatarPremigration-v0 (spec 003 §8, plus nearest- and least-loaded-RSU).

Each `make_*(env)` returns a pure `policy(key, state, params) -> {"target", "fraction"}` for one world;
`vmjax.core.rollout` vmaps it over worlds inside the jitted rollout. The policies read the start-of-slot
state through `env.slot_context`, the same quantities the env's step uses, and respect `env.rsu_mask`;
`_action` encodes the chosen RSU in the env's `rsu_order`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from vmjax.envs.avatar_premigration import AvatarPremigration, next_rsu_ahead, slot_latency


def _action(env, state, params, rsu, fraction):
    """The env action that sends `fraction` to RSU index `rsu` (encoded in the env's `rsu_order`)."""
    target = env.encode_target(state, params, rsu.astype(jnp.int32))
    return {"target": target, "fraction": jnp.asarray(fraction, jnp.float32)}


def make_random_policy(env: AvatarPremigration):
    """Random [C]: target uniform over the selectable RSUs, alpha ~ U[0, 1]."""
    space = env.action_space()

    def policy(key, state, params):
        k_target, k_fraction = jax.random.split(key)
        target = space["target"].sample(k_target, env.action_mask(state, params))
        return {"target": target.astype(jnp.int32), "fraction": jax.random.uniform(k_fraction, (env.num_agents,))}

    return policy


def make_no_premigration_policy(env: AvatarPremigration):
    """NPM [P]: alpha = 0, everything is processed at the serving RSU."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        return _action(env, state, params, ctx.serving, jnp.zeros(env.num_agents))

    return policy


def make_full_premigration_policy(env: AvatarPremigration):
    """FPM [P]: alpha = 1 to the next RSU in the direction of travel [C]."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        ahead = next_rsu_ahead(env.vehicle_positions(state), ctx.velocity_mps, params.rsu_xy_m, ctx.serving)
        return _action(env, state, params, ahead, jnp.ones(env.num_agents))

    return policy


def make_nearest_rsu_policy(env: AvatarPremigration, fraction: float = 0.5):
    """Pre-migrate `fraction` of the task to the nearest selectable RSU other than the serving one."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        others = env.rsu_mask(state, params) & (jnp.arange(env.num_rsus) != ctx.serving[:, None])
        target = jnp.argmin(jnp.where(others, ctx.distance_m, jnp.inf), axis=-1)
        target = jnp.where(jnp.any(others, axis=-1), target, ctx.serving)
        return _action(env, state, params, target, jnp.full(env.num_agents, fraction))

    return policy


def make_least_loaded_policy(env: AvatarPremigration, fraction: float = 0.5):
    """Pre-migrate `fraction` to the selectable RSU with the shortest queue wait L_m / C_m (no pre-migration
    when that is the serving RSU)."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        wait_s = ctx.queue_cycles / ctx.rsu.gpu_hz
        mask = env.rsu_mask(state, params)
        target = jnp.argmin(jnp.where(mask, wait_s[None, :], jnp.inf), axis=-1)
        return _action(env, state, params, target, jnp.full(env.num_agents, fraction))

    return policy


def make_greedy_policy(env: AvatarPremigration, num_fractions: int = 21):
    """Greedy [P/C]: each vehicle minimises its own current latency T_v(t) over every selectable target and
    alpha in {0, 0.05, ..., 1}, under the start-of-slot loads L(t), ignoring the others and the future.
    Ties go to the lowest index (target first, then alpha)."""
    fractions = jnp.linspace(0.0, 1.0, num_fractions)
    targets = jnp.arange(env.num_rsus)

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        n = env.num_agents

        def latency(target, fraction):
            lat = slot_latency(
                ctx, jnp.full(n, target, jnp.int32), jnp.full(n, fraction), params, env.config.cloud_truncate
            )
            return lat["total_latency_s"]

        grid = jax.vmap(lambda m: jax.vmap(lambda a: latency(m, a))(fractions))(targets)  # [M, F, N]
        allowed = env.rsu_mask(state, params).T[:, None, :]  # [M, 1, N]
        grid = jnp.where(allowed, grid, jnp.inf).reshape(-1, n)
        best = jnp.argmin(grid, axis=0)
        return _action(env, state, params, best // num_fractions, fractions[best % num_fractions])

    return policy


def make_lighter_neighbour_policy(env: AvatarPremigration, fraction: float = 0.6):
    """An observation-only rule: pre-migrate `fraction` to the second-nearest RSU when its backlog L_m(t)
    is smaller than the serving RSU's, else no pre-migration. It uses only what an agent observes (its
    position, hence the RSU layout, and L(t)): a reference for what the learners could reach."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        second = jnp.argsort(ctx.distance_m, axis=-1)[:, 1]
        lighter = state.queue_cycles[second] < state.queue_cycles[ctx.serving]
        allowed = jnp.take_along_axis(env.rsu_mask(state, params), second[:, None], axis=1)[:, 0]
        target = jnp.where(lighter & allowed, second, ctx.serving)
        return _action(env, state, params, target, jnp.where(target == ctx.serving, 0.0, fraction))

    return policy


POLICIES: dict[str, Callable[[AvatarPremigration], Callable]] = {
    "greedy": make_greedy_policy,
    "random": make_random_policy,
    "full_premigration": make_full_premigration_policy,
    "no_premigration": make_no_premigration_policy,
    "nearest_rsu": make_nearest_rsu_policy,
    "least_loaded": make_least_loaded_policy,
    "lighter_neighbour": make_lighter_neighbour_policy,
}
"""Every heuristic for AvatarPremigration-v0 by name."""
