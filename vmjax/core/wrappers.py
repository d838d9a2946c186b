"""Wrappers every JAX RL user rewrites: delegation, episode statistics, and a vectorized env whose
auto-reset runs only when some world finished (a batch-level `lax.cond`, so the reset is not paid on
every step the way a `vmap`-ed select would pay it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from vmjax.core.env import Environment, is_concrete
from vmjax.core.sharding import check_mesh, check_world_count, shard_worlds

PyTree = Any


class Wrapper(Environment):
    """Delegates the whole contract to the wrapped env; subclasses override what they change."""

    def __init__(self, env: Environment):
        self._env = env
        self.num_agents = env.num_agents

    def __getattr__(self, name: str):
        return getattr(self._env, name)

    @property
    def params_class(self):
        return self._env.params_class

    @property
    def unwrapped(self) -> Environment:
        return getattr(self._env, "unwrapped", self._env)

    @property
    def default_params(self) -> PyTree:
        return self._env.default_params

    def reset_env(self, key, params):
        return self._env.reset_env(key, params)

    def step_env(self, key, state, action, params):
        return self._env.step_env(key, state, action, params)

    def merge_reset(self, done, reset_out, step_out):
        return self._env.merge_reset(done, reset_out, step_out)

    def check_action(self, action):
        return self._env.check_action(action)

    def observation_space(self, params=None):
        return self._env.observation_space(params)

    def action_space(self, params=None):
        return self._env.action_space(params)

    def action_mask(self, state, params):
        return self._env.action_mask(state, params)

    def world_state(self, state, params):
        return self._env.world_state(state, params)

    def world_state_from_observation(self, obs):
        return self._env.world_state_from_observation(obs)

    def agents_present(self, state, params):
        return self._env.agents_present(state, params)

    @property
    def agent_role(self) -> str:
        return self._env.agent_role

    def validate_params(self, params):
        return self._env.validate_params(params)

    @property
    def name(self) -> str:
        return f"{type(self).__name__}({self._env.name})"


@struct.dataclass
class LogState:
    """Episode statistics around the wrapped env's state (per agent where it says [N])."""

    env_state: PyTree
    episode_returns: jax.Array  # [N] running return of the current episode
    episode_lengths: jax.Array  # () steps in the current episode
    episode_metrics: dict  # name -> () running sum of the agent-mean of info[name]
    returned_episode_returns: jax.Array  # [N] return of the last finished episode
    returned_episode_lengths: jax.Array  # ()
    returned_episode_metrics: dict  # name -> () episode mean (per step) of info[name]
    returned_episode_valid: jax.Array  # () True once one episode has finished, so early zeros are not averaged


class LogWrapper(Wrapper):
    """Episode returns and lengths, plus per-episode means of chosen `info` metrics.

    `info` gains `returned_episode` (this step ended an episode), `returned_episode_returns` [N],
    `returned_episode_lengths`, `returned_episode_valid` and `returned_episode_<metric>`.
    """

    def __init__(self, env: Environment, metrics: Sequence[str] = ()):
        super().__init__(env)
        self.metrics = tuple(metrics)

    def reset_env(self, key, params):
        obs, env_state = self._env.reset_env(key, params)
        zeros = {name: jnp.float32(0.0) for name in self.metrics}
        return obs, LogState(
            env_state=env_state,
            episode_returns=jnp.zeros(self.num_agents, jnp.float32),
            episode_lengths=jnp.int32(0),
            episode_metrics=zeros,
            returned_episode_returns=jnp.zeros(self.num_agents, jnp.float32),
            returned_episode_lengths=jnp.int32(0),
            returned_episode_metrics=zeros,
            returned_episode_valid=jnp.array(False),
        )

    def step_env(self, key, state: LogState, action, params):
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(key, state.env_state, action, params)
        done = jnp.logical_or(terminated, truncated)
        returns = state.episode_returns + reward
        lengths = state.episode_lengths + 1
        sums = {name: state.episode_metrics[name] + jnp.mean(info[name]) for name in self.metrics}
        means = {name: sums[name] / lengths for name in self.metrics}
        state = LogState(
            env_state=env_state,
            episode_returns=jnp.where(done, 0.0, returns),
            episode_lengths=jnp.where(done, 0, lengths),
            episode_metrics={name: jnp.where(done, 0.0, sums[name]) for name in self.metrics},
            returned_episode_returns=jnp.where(done, returns, state.returned_episode_returns),
            returned_episode_lengths=jnp.where(done, lengths, state.returned_episode_lengths),
            returned_episode_metrics={
                name: jnp.where(done, means[name], state.returned_episode_metrics[name]) for name in self.metrics
            },
            returned_episode_valid=state.returned_episode_valid | done,
        )
        info = dict(
            info,
            returned_episode=done,
            returned_episode_returns=state.returned_episode_returns,
            returned_episode_lengths=state.returned_episode_lengths,
            returned_episode_valid=state.returned_episode_valid,
            **{f"returned_episode_{name}": state.returned_episode_metrics[name] for name in self.metrics},
        )
        return obs, state, reward, terminated, truncated, info

    def action_mask(self, state: LogState, params):
        return self._env.action_mask(state.env_state, params)

    def world_state(self, state: LogState, params):
        return self._env.world_state(state.env_state, params)

    def agents_present(self, state: LogState, params):
        return self._env.agents_present(state.env_state, params)

    def observation(self, state: LogState, params):
        return self._env.observation(state.env_state, params)

    def merge_reset(self, done, reset_out, step_out):
        (obs_reset, log_reset), (obs_step, log_step) = reset_out, step_out
        obs, env_state = self._env.merge_reset(done, (obs_reset, log_reset.env_state), (obs_step, log_step.env_state))
        return obs, log_step.replace(env_state=env_state)


class VecEnv:
    """`num_envs` independent worlds stepped as one batch (leading world axis on obs, state, reward).

    Same semantics as `jax.vmap(env.step)`, including auto-reset and `info["final_observation"]`, but
    the reset is computed under a batch-level `lax.cond` only on steps where some world finished. Params
    are shared by all worlds; for an ablation over params, `jax.vmap` a rollout over them.

    With a `mesh` (`vmjax.core.sharding.world_mesh(num_devices=...)`), the world axis of every batched input
    and output (per-world keys, state, actions, obs, reward, info) is split over the mesh's "worlds" axis
    (`NamedSharding(mesh, PartitionSpec("worlds"))`, a sharding constraint inside `jit`, a `device_put`
    outside): each device steps its share of the worlds, in the same one compiled program. The values are those
    of the unsharded batch; `num_envs` must be divisible by the number of devices on that axis.
    """

    def __init__(self, env: Environment, num_envs: int, mesh=None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"VecEnv.num_envs must be a positive integer, got {num_envs!r}")
        if mesh is not None:
            check_world_count(num_envs, check_mesh(mesh), field="VecEnv.num_envs")
        self.env = env
        self.num_envs = num_envs
        self.num_agents = env.num_agents
        self.mesh = mesh

    @property
    def default_params(self):
        return self.env.default_params

    def _params(self, params):
        params = self.env.default_params if params is None else params
        if is_concrete(params):
            self.env.validate_params(params)
        return params

    def _shard(self, tree):
        """`tree` (batched over worlds) split over the mesh's world axis; as it is without a mesh."""
        return shard_worlds(tree, self.mesh)

    def world_keys(self, key: jax.Array) -> jax.Array:
        """`num_envs` per-world keys from one key, sharded like the worlds."""
        return self._shard(jax.random.split(key, self.num_envs))

    def reset(self, key: jax.Array, params=None):
        params = self._params(params)
        return self._shard(jax.vmap(self.env.reset_env, in_axes=(0, None))(self.world_keys(key), params))

    def step(self, key: jax.Array, state, action, params=None):
        params = self._params(params)
        state, action = self._shard((state, action))
        key_step, key_reset = jax.random.split(key)
        obs_step, state_step, reward, terminated, truncated, info = self._shard(
            jax.vmap(self.env.step_env, in_axes=(0, 0, 0, None))(self.world_keys(key_step), state, action, params)
        )
        done = jnp.logical_or(terminated, truncated)

        def reset_finished(_):
            reset_out = self._shard(jax.vmap(self.env.reset_env, in_axes=(0, None))(self.world_keys(key_reset), params))
            merge = jax.vmap(self.env.merge_reset)
            # worlds that start together end together: then the mask is a constant and XLA drops the selects
            all_done = jnp.ones_like(done)
            return jax.lax.cond(
                jnp.all(done),
                lambda: merge(all_done, reset_out, (obs_step, state_step)),
                lambda: merge(done, reset_out, (obs_step, state_step)),
            )

        obs, state = self._shard(jax.lax.cond(jnp.any(done), reset_finished, lambda _: (obs_step, state_step), None))
        info = dict(info, final_observation=obs_step)
        return obs, state, reward, terminated, truncated, info

    def action_mask(self, state, params=None):
        params = self.env.default_params if params is None else params
        return self._shard(jax.vmap(self.env.action_mask, in_axes=(0, None))(state, params))

    def world_state(self, state, params=None):
        params = self.env.default_params if params is None else params
        return self._shard(jax.vmap(self.env.world_state, in_axes=(0, None))(state, params))
