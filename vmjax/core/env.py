"""The environment contract (DESIGN.md): gymnax-1.0 signatures with a leading agent axis.

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

The env object holds only static configuration (sizes, switches); everything dynamic lives in the
`EnvState` pytree and every physical constant in the `EnvParams` pytree, so `jax.vmap` over params runs
an ablation in one compiled call. A subclass implements `reset_env` and `step_env` (one transition, no
reset); `step` adds the auto-reset.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from vmjax.core import spaces, validation

PyTree = Any


def select_tree(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    """Leafwise `jnp.where(pred, a, b)` for a scalar boolean `pred`."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


@jax.custom_jvp
def materialize(tree: PyTree) -> PyTree:
    """`lax.optimization_barrier` with an identity derivative: asks XLA to compute `tree` before what uses it
    (a performance hint; values and gradients are unchanged). The custom JVP keeps it differentiable on JAX
    versions whose barrier has no differentiation rule."""
    return jax.lax.optimization_barrier(tree)


@materialize.defjvp
def _materialize_jvp(primals, tangents):
    return materialize(primals[0]), tangents[0]


_TRACED_ONCE_PREFIX = "_traced_once_"


class traced_once:  # noqa: N801 - a decorator, named as one
    """Method decorator for a scenario's `reset_env` / `step_env`: the method runs through a `jax.jit` of the
    instance's bound method, made once per env object, so every caller of that object (`reset`, the auto-reset
    inside `step`, a `VecEnv`, a trainer's rollout and its evaluation, a heuristic's) shares one trace per
    argument shapes instead of re-running the method's Python each time (tracing is the costly part of compiling
    an env program: TwinRouting-v1's reset ~1 s, traced twice in every rollout). Inside an outer `jit` XLA
    inlines the call: the same program and values. Outside one, a call runs the compiled method (compiled once
    per shapes) instead of dispatching it op by op: TwinRouting-v1's eager reset took 18.8 s the first time and
    2.2 s each time after, now 3.7 s and 3 ms (2-core Intel Xeon). A check of values needs a concrete input and
    under this jit every input is traced: an action's goes in `Environment.check_action`, which `step` runs first
    (CrossRealityPrivacy's checks a concrete action's server ids and NaNs)."""

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __set_name__(self, owner, name):
        self.attribute = _TRACED_ONCE_PREFIX + name

    def __get__(self, env, owner=None):
        if env is None:
            return self.method
        jitted = env.__dict__.get(self.attribute)
        if jitted is None:
            jitted = env.__dict__[self.attribute] = jax.jit(self.method.__get__(env, owner))
        return jitted


def is_concrete(tree: PyTree) -> bool:
    """True when no leaf is a tracer, i.e. values can be checked in Python before tracing."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


class Environment:
    """Base class of every vmjax scenario.

    Subclasses set `num_agents` and implement `default_params`, `reset_env`, `step_env`,
    `observation_space`, `action_space`, and where they apply `action_mask` and `world_state`.
    """

    num_agents: int
    params_class: type | None = None  # the env's EnvParams class: reset / step reject another env's params
    agent_role: str = "agent"  # what one agent is ("vehicle"): adapters name the agents f"{agent_role}_{index}"

    def __getstate__(self) -> dict:
        """What a copy or a pickle keeps: everything but the `traced_once` functions, which belong to this object
        (a copy traces its own)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith(_TRACED_ONCE_PREFIX)}

    # ------------------------------------------------------------------ the contract
    @property
    def default_params(self) -> PyTree:
        raise NotImplementedError

    def reset(self, key: jax.Array, params: PyTree | None = None) -> tuple[jax.Array, PyTree]:
        """Start an episode: returns (obs [num_agents, obs_dim], state)."""
        params = self.default_params if params is None else params
        self.check_params_class(params)
        if is_concrete(params):
            self.validate_params(params)
        return self.reset_env(key, params)

    def step(self, key: jax.Array, state: PyTree, action: PyTree, params: PyTree | None = None):
        """One transition with auto-reset.

        When the episode ends (terminated or truncated), the returned obs and state are those of a freshly
        reset episode; the observation the episode ended on is in `info["final_observation"]` (always
        present, equal to `obs` when the episode goes on). `terminated` (a true end, no bootstrap) and
        `truncated` (time limit, bootstrap) are kept apart.
        """
        params = self.default_params if params is None else params
        self.check_params_class(params)
        if is_concrete(params):
            self.validate_params(params)
        self.check_action(action)
        key_step, key_reset = jax.random.split(key)
        obs_step, state_step, reward, terminated, truncated, info = self.step_env(key_step, state, action, params)
        done = jnp.logical_or(terminated, truncated)
        obs_reset, state_reset = self.reset_env(key_reset, params)
        obs, state = self.merge_reset(done, (obs_reset, state_reset), (obs_step, state_step))
        info = dict(info, final_observation=obs_step)
        return obs, state, reward, terminated, truncated, info

    def merge_reset(self, done: jax.Array, reset_out: PyTree, step_out: PyTree) -> PyTree:
        """Pick the reset (obs, state) where `done`, else the stepped one. Wrappers that keep data across
        episodes (episode statistics) override this."""
        return select_tree(done, reset_out, step_out)

    def check_action(self, action: PyTree) -> None:
        """Raise ValueError naming the field when an action is malformed (keys, shapes, dtypes; and its values when
        it is concrete). `step` calls it before `step_env`, which may be traced even in an eager call
        (`traced_once`), where no value is concrete. Checks nothing by default."""

    # ------------------------------------------------------------------ to implement
    def reset_env(self, key: jax.Array, params: PyTree) -> tuple[jax.Array, PyTree]:
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: PyTree, action: PyTree, params: PyTree):
        """One transition without reset: (obs, state, reward [num_agents], terminated, truncated, info)."""
        raise NotImplementedError

    def observation_space(self, params: PyTree | None = None) -> spaces.Space:
        raise NotImplementedError

    def action_space(self, params: PyTree | None = None) -> spaces.Space:
        raise NotImplementedError

    def action_mask(self, state: PyTree, params: PyTree) -> jax.Array:
        """Boolean mask [num_agents, n] of the discrete head (all True by default)."""
        space = self.action_space(params)
        discrete = [s for s in getattr(space, "spaces", {"": space}).values() if isinstance(s, spaces.Discrete)]
        if not discrete:
            raise NotImplementedError(f"{self.name} has no discrete action head")
        return jnp.ones((self.num_agents, discrete[0].n), dtype=bool)

    def world_state(self, state: PyTree, params: PyTree) -> jax.Array:
        """Centralized-critic input [num_agents, state_dim]."""
        raise NotImplementedError

    def agents_present(self, state: PyTree, params: PyTree) -> jax.Array:
        """Boolean [num_agents]: the agents taking part in the slot `state` is at (every agent by default). A
        scenario whose agents enter and leave during an episode overrides it; an absent agent's action is
        ignored by `step`. The PettingZoo adapter (`vmjax.interop`) lists an agent from its first present slot
        and removes it, terminated, once it is gone."""
        return jnp.ones(self.num_agents, bool)

    def world_state_from_observation(self, obs: jax.Array) -> jax.Array:
        """Centralized-critic input built from the joint observation [..., N, D] alone (what trainers use, so
        the value of a final, pre-reset observation can be bootstrapped): every agent's observation
        concatenated, plus the agent's one-hot id -> [..., N, N * D + N] (the MAPPO / JaxMARL world state)."""
        n, d = obs.shape[-2:]
        joint = jnp.broadcast_to(obs.reshape(obs.shape[:-2] + (1, n * d)), obs.shape[:-2] + (n, n * d))
        ids = jnp.broadcast_to(jnp.eye(n, dtype=obs.dtype), obs.shape[:-2] + (n, n))
        return jnp.concatenate([joint, ids], axis=-1)

    def validate_params(self, params: PyTree) -> None:
        """Raise ValueError naming the field when a concrete params value is invalid."""

    def check_params_class(self, params: PyTree) -> None:
        """TypeError naming both envs when `params` is not this env's `params_class` (a static check: it also runs
        on traced params)."""
        if self.params_class is not None:
            validation.check_params_type(self.name, params, self.params_class)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}(num_agents={self.num_agents})"
