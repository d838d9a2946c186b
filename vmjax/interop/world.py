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
    """Jitted (reset(key, params), step(key, state, action, params)) of one world. Each splits `key` (the adapter's
    key stream: the next key comes back) and returns, after the call, the action mask and the agents present."""

    def reset(key, params):
        key, sub = jax.random.split(key)
        obs, state = env.reset_env(sub, params)
        return key, (obs, action_mask(env, state, params), env.agents_present(state, params)), state

    def step(key, state, action, params):
        key, sub = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = env.step_env(sub, state, action, params)
        out = (
            obs,
            reward,
            terminated,
            truncated,
            info,
            action_mask(env, state, params),
            env.agents_present(state, params),
        )
        return key, out, state

    return jax.jit(reset), jax.jit(step)


def many_worlds_functions(vec: VecEnv):
    """Jitted (reset(key, params), step(key, state, actions, params)) of a `VecEnv`, as `one_world_functions` with
    a leading world axis (the masks and agents present of every world)."""
    extras = lambda state, params: jax.vmap(
        lambda s: (action_mask(vec.env, s, params), vec.env.agents_present(s, params))
    )(state)

    def reset(key, params):
        key, sub = jax.random.split(key)
        obs, state = vec.reset(sub, params)
        return key, (obs, *extras(state, params)), state

    def step(key, state, actions, params):
        key, sub = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = vec.step(sub, state, actions, params)
        return key, (obs, reward, terminated, truncated, info, *extras(state, params)), state

    return jax.jit(reset), jax.jit(step)


def rgb_frame(render_mode: str | None, env: Environment, state, params):
    """The adapters' `render()`: with render_mode="rgb_array" the current slot drawn by `vmjax.render.frame`, an RGB
    array [H, W, 3]; None without a render mode; RuntimeError before the first reset (`state` None)."""
    if render_mode is None:
        return None
    if state is None:
        raise RuntimeError("call reset() before render()")
    from vmjax import render  # matplotlib only when drawing

    return render.rgb_array(env, state, params)


class _Worlds:
    """What `OneWorld` and `ManyWorlds` share: the params (checked once), the key stream `key` (set it from
    `seed_key`; each reset and step advances it inside the jitted call), NumPy out."""

    def __init__(self, env: Environment, params, functions):
        self.env = env
        self.params = env.default_params if params is None else params
        env.check_params_class(self.params)
        env.validate_params(self.params)
        self._reset, self._step = functions
        self.key = None

    def _check_key(self) -> None:
        if self.key is None:
            raise RuntimeError("set the key stream (`seed_key`) before reset")

    def reset(self):
        """(obs, mask, present) as NumPy, and the state (on the device)."""
        self._check_key()
        self.key, out, state = self._reset(self.key, self.params)
        return jax.device_get(out), state

    def step(self, state, action):
        """(obs, reward, terminated, truncated, info, mask, present) as NumPy, and the next state."""
        self._check_key()
        self.key, out, state = self._step(self.key, state, action, self.params)
        return jax.device_get(out), state


class OneWorld(_Worlds):
    """One world of `env` under `params`: jitted `reset()` and `step(state, action)` without auto-reset (the raw
    transition `step_env`), with the action mask and the agents present after the call."""

    def __init__(self, env: Environment, params):
        super().__init__(env, params, compiled(env, "one_world", lambda: one_world_functions(env)))


class ManyWorlds(_Worlds):
    """`num_envs` worlds of `env` in one `VecEnv` (same-step auto-reset, `info["final_observation"]`): jitted
    `reset()` and `step(state, actions)` with the masks and the agents present of every world after the call."""

    def __init__(self, env: Environment, num_envs: int, params):
        self.vec = VecEnv(env, num_envs)
        super().__init__(env, params, compiled(env, f"worlds_{num_envs}", lambda: many_worlds_functions(self.vec)))


__all__ = [
    "ManyWorlds",
    "OneWorld",
    "action_mask",
    "agent_names",
    "compiled",
    "discrete_head",
    "resolve_env",
    "rgb_frame",
    "seed_key",
]
