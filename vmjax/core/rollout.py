"""Roll a per-world policy through `num_envs` worlds in one `lax.scan` (the evaluation loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vmjax.core import spaces
from vmjax.core.env import Environment
from vmjax.core.sharding import shard_worlds
from vmjax.core.wrappers import VecEnv

Policy = Callable[[jax.Array, Any, Any], Any]
"""policy(key, state, params) -> action, for one world; `rollout` vmaps it over worlds."""


class StatefulPolicy(NamedTuple):
    """A per-world policy that carries its own state from step to step (e.g. MSRL's switching
    buffers and entropy threshold, spec 004 §6.3-6.4). Evaluators vmap both functions over worlds.

    init(key, env_params) -> policy_state of one world
    act(key, policy_state, env_state, env_params) -> (action, policy_state, extras), where
        extras is a dict of per-agent arrays [N] (e.g. {"use_server": ..., "params_used": ...}),
        possibly empty.
    """

    init: Callable[[jax.Array, Any], Any]
    act: Callable[[jax.Array, Any, Any, Any], tuple[Any, Any, dict]]


def stateless(policy: Policy) -> StatefulPolicy:
    """Wrap a `policy(key, env_state, env_params) -> action` as a `StatefulPolicy` with no state."""

    def act(key, policy_state, env_state, env_params):
        return policy(key, env_state, env_params), policy_state, {}

    return StatefulPolicy(init=lambda key, env_params: (), act=act)


def uniform_random_policy(env: Environment, params: Any) -> Policy:
    """policy(key, env_state, env_params) -> action: uniform over `env.action_space`, a discrete head uniform over
    the actions of `env.action_mask` (all of them where the env masks nothing), continuous parts over their Box.
    The reference a learner must beat, and a probe of the env over its whole action space."""
    space = env.action_space(params)

    def sample(sub, key, mask):
        return sub.sample(key, mask).astype(jnp.int32) if isinstance(sub, spaces.Discrete) else sub.sample(key)

    def policy(key, state, p):
        mask = env.action_mask(state, p)
        if not isinstance(space, spaces.Dict):
            return sample(space, key, mask)
        keys = jax.random.split(key, len(space.spaces))
        return {name: sample(sub, k, mask) for k, (name, sub) in zip(keys, space.spaces.items())}

    return policy


def agent_means(reward: jax.Array, info: dict) -> dict:
    """Default per-step summary: every per-agent array [E, N] averaged over agents -> [E]."""
    out = {"reward": jnp.mean(reward, axis=-1)}
    for name, value in info.items():
        if name == "final_observation":
            continue
        out[name] = jnp.mean(value.astype(jnp.float32), axis=-1) if value.ndim == 2 else value
    return out


def rollout(
    env: Environment,
    policy: Policy,
    key: jax.Array,
    params: Any,
    num_envs: int,
    num_steps: int,
    summarize: Callable[[jax.Array, dict], Any] = agent_means,
    mesh=None,
):
    """Reset `num_envs` worlds from `key` and run `policy` for `num_steps` steps (auto-reset included).

    The env's randomness comes from keys that do not depend on the policy, so two policies rolled out
    from the same key face the same worlds, trajectories and tasks (held-out episodes).
    Returns `summarize(reward, info)` stacked over steps, e.g. {name: [num_steps, num_envs]}.
    With a `mesh` (`vmjax.core.sharding.world_mesh`) the worlds are split over its devices (`VecEnv`'s `mesh`);
    the values are those of the unsharded rollout.
    """
    return rollout_stateful(env, stateless(policy), key, params, num_envs, num_steps, summarize, mesh)


def rollout_stateful(
    env: Environment,
    policy: StatefulPolicy,
    key: jax.Array,
    params: Any,
    num_envs: int,
    num_steps: int,
    summarize: Callable[[jax.Array, dict], Any] = agent_means,
    mesh=None,
):
    """`rollout` for a `StatefulPolicy` (its state carried per world from step to step; policy init keys from
    fold_in(key, 1)); `rollout` is this with `stateless(policy)`. The env's keys do not depend on the policy, so
    every policy meets the same worlds. Returns `summarize(reward, info)` stacked over steps.

    With a `mesh`, the env state, the policy state, the per-world keys and every summary leaf whose leading
    axis is the world axis are split over the mesh's "worlds" axis (`num_envs` must be divisible by its size);
    a summary that reduces over worlds is computed across devices (float32 rounding may then differ)."""
    vec = VecEnv(env, num_envs, mesh=mesh)
    k_reset, k_env, k_policy = jax.random.split(key, 3)
    _, state = vec.reset(k_reset, params)
    policy_state = shard_worlds(
        jax.vmap(policy.init, in_axes=(0, None))(vec.world_keys(jax.random.fold_in(key, 1)), params), mesh
    )

    def body(carry, keys):
        state, policy_state = carry
        k_step, k_act = keys
        actions, policy_state, _ = jax.vmap(policy.act, in_axes=(0, 0, 0, None))(
            vec.world_keys(k_act), policy_state, state, params
        )
        _, state, reward, _, _, info = vec.step(k_step, state, actions, params)
        return (state, shard_worlds(policy_state, mesh)), _shard_per_world(summarize(reward, info), num_envs, mesh)

    keys = (jax.random.split(k_env, num_steps), jax.random.split(k_policy, num_steps))
    return jax.lax.scan(body, (state, policy_state), keys)[1]


def _shard_per_world(summary: Any, num_envs: int, mesh) -> Any:
    """The leaves of a per-step summary whose leading axis is the world axis, split over `mesh`; the others
    (reductions over worlds) as they are."""
    if mesh is None:
        return summary

    def place(leaf):
        return shard_worlds(leaf, mesh) if jnp.ndim(leaf) and jnp.shape(leaf)[0] == num_envs else leaf

    return jax.tree.map(place, summary)
