"""The native side the adapters share: the env from an id or object, its jitted reset and step (with the action
mask and the agents present, so one call returns all a step needs), and the stream of JAX keys behind
`reset(seed=...)`. Nothing here imports gymnasium or pettingzoo."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vmjax.core import registry, spaces
from vmjax.core.env import Environment
from vmjax.core.wrappers import VecEnv, Wrapper


def resolve_env(env: Any, config: dict) -> Environment:
    """`env` as an Environment: a registered id is made with `config` (an unknown id raises ValueError listing the
    known ones); an env object is used as it is (then `config` must be empty)."""
    if isinstance(env, str):
        return registry.make(env, **config)
    if not isinstance(env, Environment):
        raise TypeError(f"env must be a registered env id or a vmjax Environment, got {type(env).__name__}")
    if config:
        raise ValueError(f"config {sorted(config)} is only for an env id; {env.name} is already made")
    return env


def agent_names(env: Environment) -> list[str]:
    """The agents' names: role and index, "vehicle_0" ... "vehicle_{N-1}"."""
    return [f"{env.agent_role}_{i}" for i in range(env.num_agents)]


def discrete_head(space: spaces.Space) -> str | None:
    """The key of the native action space's discrete head ("" for a plain Discrete space), None without one."""
    if isinstance(space, spaces.Discrete):
        return ""
    if isinstance(space, spaces.Dict):
        return next((name for name, sub in space.spaces.items() if isinstance(sub, spaces.Discrete)), None)
    return None


def action_mask(env: Environment, state, params) -> jax.Array:
    """The env's boolean mask [N, n] of its discrete head, or an empty [N, 0] mask where it has none."""
    if discrete_head(env.action_space(params)) is None:
        return jnp.zeros((env.num_agents, 0), bool)
    return env.action_mask(state, params)


def seed_key(seed: int | None, fallback: np.random.Generator) -> jax.Array:
    """The key of `reset(seed=...)`: jax.random.key(seed); without a seed, one drawn from `fallback`."""
    if seed is None:
        seed = int(fallback.integers(0, 2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return jax.random.key(int(seed))


_COMPILED: dict = {}


def compiled(env: Environment, kind: str, build):
    """`build()` (jitted functions of `env`) made once per env class, config and `kind`: two adapters of equal envs
    (a seed test's two copies) share the compiled programs. A wrapper, or an env without a hashable `config`, gets
    its own."""
    if isinstance(env, Wrapper):  # a wrapper's own settings are not in the config it delegates to
        return build()
    key = (type(env), getattr(env, "config", None), kind)
    try:
        hash(key)
    except TypeError:
        return build()
    if key[1] is None:
        return build()
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def one_world_functions(env: Environment):
    """Jitted (reset(key, params), step(key, state, action, params)) of one world, each with the mask and the agents
    present after the call."""

    def reset(key, params):
        obs, state = env.reset_env(key, params)
        return obs, state, action_mask(env, state, params), env.agents_present(state, params)

    def step(key, state, action, params):
        obs, state, reward, terminated, truncated, info = env.step_env(key, state, action, params)
        out = (obs, reward, terminated, truncated, info)
        return out, state, action_mask(env, state, params), env.agents_present(state, params)

    return jax.jit(reset), jax.jit(step)


def many_worlds_functions(vec: VecEnv):
    """Jitted (reset(key, params), step(key, state, actions, params)) of a `VecEnv`, each with the masks and the
    agents present of every world after the call."""
    extras = lambda state, params: jax.vmap(
        lambda s: (action_mask(vec.env, s, params), vec.env.agents_present(s, params))
    )(state)

    def reset(key, params):
        obs, state = vec.reset(key, params)
        return obs, state, *extras(state, params)

    def step(key, state, actions, params):
        obs, state, reward, terminated, truncated, info = vec.step(key, state, actions, params)
        return (obs, reward, terminated, truncated, info), state, *extras(state, params)

    return jax.jit(reset), jax.jit(step)


class OneWorld:
    """One world of `env` under `params`: jitted `reset(key)` and `step(key, state, action)`, each returning NumPy
    (the state stays on the device) with the action mask and the agents present after the call."""

    def __init__(self, env: Environment, params):
        self.env = env
        self.params = env.default_params if params is None else params
        env.check_params_class(self.params)
        env.validate_params(self.params)
        self._reset, self._step = compiled(env, "one_world", lambda: one_world_functions(env))

    def reset(self, key):
        """(obs, state, mask, present): obs, mask and present as NumPy."""
        obs, state, mask, present = self._reset(key, self.params)
        obs, mask, present = jax.device_get((obs, mask, present))
        return obs, state, mask, present

    def step(self, key, state, action):
        """((obs, reward, terminated, truncated, info), state, mask, present), without auto-reset (the raw
        transition `step_env`); everything but the state as NumPy."""
        out, state, mask, present = self._step(key, state, action, self.params)
        out, mask, present = jax.device_get((out, mask, present))
        return out, state, mask, present


class ManyWorlds:
    """`num_envs` worlds of `env` in one `VecEnv` (same-step auto-reset, `info["final_observation"]`): jitted
    `reset(key)` and `step(key, state, actions)` returning NumPy, with the masks and the agents present after the
    call."""

    def __init__(self, env: Environment, num_envs: int, params):
        self.env = env
        self.vec = VecEnv(env, num_envs)
        self.params = env.default_params if params is None else params
        env.check_params_class(self.params)
        env.validate_params(self.params)
        self._reset, self._step = compiled(env, f"worlds_{num_envs}", lambda: many_worlds_functions(self.vec))

    def reset(self, key):
        """(obs, state, masks, present) of every world; all but the state as NumPy."""
        obs, state, mask, present = self._reset(key, self.params)
        obs, mask, present = jax.device_get((obs, mask, present))
        return obs, state, mask, present

    def step(self, key, state, actions):
        """((obs, reward, terminated, truncated, info), state, masks, present) of every world, auto-reset included
        (`VecEnv.step`); all but the state as NumPy."""
        out, state, mask, present = self._step(key, state, actions, self.params)
        out, mask, present = jax.device_get((out, mask, present))
        return out, state, mask, present


__all__ = [
    "ManyWorlds",
    "OneWorld",
    "action_mask",
    "agent_names",
    "compiled",
    "discrete_head",
    "resolve_env",
    "seed_key",
]
