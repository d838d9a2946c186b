"""The trainer skeleton every learner shares (PureJaxRL pattern): a learner's `make_components` builds its pure
`init(key) -> state` and `update(state) -> (state, metrics)`; this module turns them into a `Trainer`.

    trainer = learner.make_trainer(env, config)           # = assemble(Trainer, learner.make_components, ...)
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over `update`
    train = learner.make_train(env, config)                # = trainer.train: train(key) -> (state, metrics)
    trainer = trainer.on_mesh(world_mesh(4))               # data parallel: worlds split over 4 devices
    state = trainer.place(state)                           # ... the state on them (`state_shardings`)

Also here: the trainer states shared by several learners (`TrainerState` of the on-policy learners,
`OffPolicyTrainerState` of the replay-buffer learners), the environment set-up of a run (`vector_env`), the
metrics every iteration starts with (`iteration_metrics`), the replay capacity check of the off-policy configs and
their gated gradient phase (`gated_updates`: train once the buffer holds `min_buffer_fill` transitions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vmjax.agents import ppo
from vmjax.agents.replay import ReplayBuffer
from vmjax.core.env import Environment, is_concrete
from vmjax.core.sharding import (
    check_mesh,
    check_world_axes,
    check_world_count,
    num_world_shards,
    sharded_batches,
    world_sharding,
)
from vmjax.core.wrappers import LogWrapper, VecEnv

PyTree = Any


# ---------------------------------------------------------------------- trainer states (checkpoints)
@struct.dataclass
class TrainerState:
    """Everything an on-policy training run needs to continue: a checkpoint is this pytree (Hybrid-MAPPO,
    DM-MAPPO, LHDPPO and its baselines)."""

    params: dict  # parameter group -> Flax params
    opt_state: PyTree  # one optax state per parameter group (or one over all of them)
    env_state: PyTree  # [E] LogWrapper states of the worlds
    obs: jax.Array  # [E, N, D] current observations
    key: jax.Array
    iteration: jax.Array  # () finished iterations


@struct.dataclass
class OffPolicyTrainerState:
    """Everything a replay-buffer training run needs to continue: a checkpoint is this pytree (MAPPO-DDPG,
    MASAC, HGDM)."""

    params: dict  # parameter group -> Flax params
    target_params: dict  # soft-updated copies of some groups
    opt_state: dict  # one optax state per optimised group
    buffer: ReplayBuffer  # replay items, leaves [buffer_size, ...]
    env_state: PyTree  # [E] LogWrapper states of the worlds
    obs: jax.Array  # [E, N, D] current observations
    key: jax.Array
    iteration: jax.Array  # () finished iterations


# ---------------------------------------------------------------------- the trainer
class Trainer(NamedTuple):
    """The pure functions of a training run. `run(state, n)` is jittable with `n` static."""

    config: Any  # the learner's config dataclass
    env: Environment
    env_params: PyTree
    policy: Any  # the learner's policy: `act(key, params, obs, mask, deterministic)` for the default evaluation
    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict]]
    run: Callable[[Any, int], tuple[Any, dict]]
    mesh: Mesh | None = None  # the devices the worlds are split over (`on_mesh`); None: wherever JAX puts them

    def train(self, key):
        """The PureJaxRL entry point every learner's `make_train` returns: a fresh run of
        `config.num_iterations` iterations from `key` -> (final state, per-iteration metrics)."""
        return self.run(self.init(key), self.config.num_iterations)

    def on_mesh(self, mesh: Mesh | None) -> Trainer:
        """This trainer, data parallel over `mesh` (`vmjax.core.sharding.world_mesh`): `run` keeps every state
        leaf on its `state_shardings` sharding (the worlds split over the mesh's "worlds" axis, the learner's
        numbers replicated, a replay buffer split along its items), so each device steps and differentiates its
        share of the worlds and XLA adds the cross-device sums. `mesh=None`: back to one device. ValueError
        naming `num_envs` unless the worlds split evenly over the mesh."""
        if mesh is not None:
            check_world_count(self.config.num_envs, check_mesh(mesh), field="num_envs")
        return self._replace(mesh=mesh, run=make_run(self.update, mesh))

    def place(self, state):
        """`state` on this trainer's mesh (`shard_state`); as it is without one. Use it on a fresh `init` or a
        restored checkpoint before compiling `run` for it, so the program is compiled for the sharded layout."""
        return shard_state(state, self.mesh)

    def make_eval_policy(self, params_or_state, deterministic: bool | None = None):
        """policy(key, env_state, env_params) -> action, for one world of the *unwrapped* env (the same
        signature as the heuristics in `baselines/`, so `vmjax.core.rollout` evaluates it), from the trained
        params or a whole trainer state."""
        params = getattr(params_or_state, "params", params_or_state)
        deterministic = self.config.deterministic_eval if deterministic is None else deterministic
        env = self.env

        def policy(key, env_state, env_params):
            obs = env.observation(env_state, env_params)
            mask = env.action_mask(env_state, env_params)
            return self.policy.act(key, params, obs, mask, deterministic)[0]

        return policy


def make_run(update: Callable[[Any], tuple[Any, dict]], mesh: Mesh | None = None) -> Callable[[Any, int], tuple]:
    """run(state, num_iterations) -> (state, metrics stacked over iterations): `lax.scan` over `update`. With a
    `mesh`, the state is held on its `state_shardings` before the first and after every iteration (the scan's
    carry keeps one layout; inside an iteration XLA's partitioner places the rest)."""

    def place(state):
        return shard_state(state, mesh)

    def run(state, num_iterations: int):
        def iteration(state, _):
            state, metrics = update(state)
            return place(state), metrics

        with sharded_batches(mesh):  # the learners' minibatches and replay samples split over the mesh
            return jax.lax.scan(iteration, place(state), None, length=num_iterations)

    return run


# ---------------------------------------------------------------------- data parallel: the state on a mesh
REPLICATED_FIELDS = ("params", "target_params", "opt_state", "key", "iteration")
"""Trainer-state fields every device holds whole: the learner's numbers, updated by the same global means."""

REPLAY_FIELDS = ("buffer",)
"""Trainer-state fields that are a `ReplayBuffer`: split along their item axis (see `replay_shardings`)."""


def replay_shardings(buffer: ReplayBuffer, mesh: Mesh) -> ReplayBuffer:
    """The shardings of a replay buffer on `mesh`: its items split over the mesh's "worlds" axis (each device
    stores capacity / devices of them) when the capacity divides evenly, else replicated; the write position
    and the fill count replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    split = buffer.capacity % num_world_shards(mesh) == 0
    data = jax.tree.map(lambda _: world_sharding(mesh) if split else replicated, buffer.data)
    return ReplayBuffer(data, replicated, replicated)


def _world_leaf_shardings(name: str, value: PyTree, mesh: Mesh) -> PyTree:
    """`world_sharding(mesh)` for every leaf of the state field `name` (batched over worlds); ValueError naming
    the leaf when its leading axis does not split evenly over the mesh."""
    hint = f" (fields other than {REPLICATED_FIELDS} and {REPLAY_FIELDS} are per-world)"
    check_world_axes(value, mesh, f"trainer state field {name}", hint)
    return jax.tree.map(lambda _: world_sharding(mesh), value)


def state_shardings(state, mesh: Mesh) -> PyTree:
    """A pytree like `state` (a `TrainerState`, `OffPolicyTrainerState` or a learner's own state dataclass) whose
    leaves are the `NamedSharding`s of a data-parallel run on `mesh`: `REPLICATED_FIELDS` replicated, a
    `REPLAY_FIELDS` buffer by `replay_shardings`, every other field (env_state, obs, a learner's per-world
    state such as MSRL's switch) split along its leading world axis over the mesh's "worlds" axis."""
    replicated = NamedSharding(check_mesh(mesh), PartitionSpec())
    shardings = {}
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if field.name in REPLICATED_FIELDS:
            shardings[field.name] = jax.tree.map(lambda _: replicated, value)
        elif field.name in REPLAY_FIELDS:
            shardings[field.name] = replay_shardings(value, mesh)
        else:
            shardings[field.name] = _world_leaf_shardings(field.name, value, mesh)
    return state.replace(**shardings)


def shard_state(state, mesh: Mesh | None):
    """`state` with every leaf on its `state_shardings` sharding: `jax.device_put` outside `jit` (a fresh or
    restored state moves to the devices), a sharding constraint inside. Values are unchanged; `mesh=None`
    returns `state` as it is."""
    if mesh is None:
        return state
    shardings = state_shardings(state, mesh)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(state)):
        return jax.lax.with_sharding_constraint(state, shardings)
    return jax.device_put(state, shardings)


def assemble(
    trainer_cls: type[Trainer],
    make_components: Callable,
    env: Environment,
    config,
    env_params: PyTree | None,
    log_metrics: tuple[str, ...],
) -> Trainer:
    """A learner's `make_trainer`: its components (`policy`, `init`, `update`) in the skeleton `trainer_cls`."""
    env_params = env.default_params if env_params is None else env_params
    c = make_components(env, config, env_params, log_metrics)
    return trainer_cls(config, env, env_params, c.policy, c.init, c.update, make_run(c.update))


def make_train_for(make_trainer: Callable[..., Trainer]) -> Callable:
    """The `make_train` of a learner (or of the package's dispatching `make_trainer`)."""

    def make_train(
        env: Environment, config, env_params: PyTree | None = None, log_metrics: tuple[str, ...] | None = None
    ):
        """PureJaxRL entry point: train(key) -> (final state, per-iteration metrics), one jittable function;
        `jax.vmap(train)(keys)` trains one policy per seed. `log_metrics` None: the learner's default."""
        if log_metrics is None:
            return make_trainer(env, config, env_params).train
        return make_trainer(env, config, env_params, log_metrics).train

    return make_train


# ---------------------------------------------------------------------- pieces of make_components
def vector_env(
    env: Environment, env_params: PyTree | None, num_envs: int, log_metrics: tuple[str, ...]
) -> tuple[PyTree, VecEnv]:
    """(env_params, the `num_envs` logged worlds of a run): the env's defaults when `env_params` is None,
    validated when concrete (traced params are validated by their caller)."""
    env_params = env.default_params if env_params is None else env_params
    if is_concrete(env_params):
        env.validate_params(env_params)
    return env_params, VecEnv(LogWrapper(env, metrics=log_metrics), num_envs)


def iteration_metrics(iteration: jax.Array, env_steps_per_iteration: int, log: dict, log_metrics) -> dict:
    """The metrics every iteration starts with: the finished iteration count, the env steps so far and the
    episode statistics of the rollout's stacked `ppo.episode_log`s."""
    return {
        "iteration": iteration + 1,
        "env_steps": (iteration + 1) * env_steps_per_iteration,
        **ppo.episode_metrics(log, log_metrics),
    }


# ---------------------------------------------------------------------- off-policy pieces
def check_replay_capacity(config, owner: str, written: int, written_text: str, learner: str = "training") -> None:
    """An off-policy config's replay buffer holds the `written` transitions one write adds (`written_text` says
    which, in the error) and `min_buffer_fill` = max(batch_size, learning_starts), else the `learner` never
    starts."""
    if config.buffer_size < written:
        raise ValueError(f"{owner}.buffer_size ({config.buffer_size}) must be >= {written_text}")
    if config.buffer_size < config.min_buffer_fill:
        raise ValueError(
            f"{owner}.buffer_size ({config.buffer_size}) must be >= batch_size ({config.batch_size}) and "
            f"learning_starts ({config.learning_starts}), else {learner} never starts"
        )


def gated_updates(
    carry, key, buffer: ReplayBuffer, min_fill: int, num_updates: int, step: Callable, stat_names: tuple[str, ...]
):
    """`num_updates` gradient steps `carry, stats = step(carry, key)` (a `lax.scan` over keys split from `key`)
    once the buffer holds `min_fill` transitions, else none (zero stats). Returns (carry, stats averaged over
    the steps, ready: bool ())."""
    zeros = {name: jnp.float32(0.0) for name in stat_names}
    if num_updates == 0:
        return carry, zeros, jnp.bool_(False)
    ready = buffer.size >= min_fill

    def train(carry):
        carry, stats = jax.lax.scan(step, carry, jax.random.split(key, num_updates))
        return carry, jax.tree.map(jnp.mean, stats)

    carry, stats = jax.lax.cond(ready, train, lambda c: (c, zeros), carry)
    return carry, stats, ready


__all__ = [
    "OffPolicyTrainerState",
    "Trainer",
    "TrainerState",
    "annealed_fields",
    "assemble",
    "check_replay_capacity",
    "gated_updates",
    "iteration_metrics",
    "make_run",
    "make_train_for",
    "REPLAY_FIELDS",
    "REPLICATED_FIELDS",
    "replay_shardings",
    "shard_state",
    "state_shardings",
    "vector_env",
]


def annealed_fields(agent) -> list[str]:
    """The fields of an agent config whose schedule is stretched over `num_iterations` (a learning rate annealed
    to 0, a coefficient or noise decayed from its start to its end value)."""
    names = {f.name for f in dataclasses.fields(agent)}
    found = ["anneal_lr"] if getattr(agent, "anneal_lr", False) else []
    for name in sorted(names):
        for end in ("_final", "_end"):
            if name.endswith(end):
                base = name[: -len(end)]
                start = next((n for n in (f"{base}_init", f"{base}_start", base) if n in names), None)
                if start and getattr(agent, start) != getattr(agent, name):
                    found.append(f"{start}/{name}")
    return found
