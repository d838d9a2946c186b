"""Fixed-size circular replay buffer held in a JAX training state, and Polyak soft updates: shared by the
off-policy learners (`mappo_ddpg`'s MADDPG branch, `masac`). Pure functions, jittable and vmappable.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from vmjax.core.sharding import split_batch

PyTree = Any


@struct.dataclass
class ReplayBuffer:
    """Fixed-size circular buffer: every leaf of `data` is [capacity, ...]; `position` is the next slot written,
    `size` the number of filled slots (<= capacity)."""

    data: PyTree
    position: jax.Array  # () int32
    size: jax.Array  # () int32

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def replay_init(example: PyTree, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like `example` (one transition, no leading axis)."""
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data, jnp.int32(0), jnp.int32(0))


def replay_add(buffer: ReplayBuffer, items: PyTree) -> ReplayBuffer:
    """Write a batch of transitions (leaves [B, ...], B <= capacity) at `position`, wrapping around and overwriting
    the oldest entries."""
    capacity = buffer.capacity
    count = jax.tree.leaves(items)[0].shape[0]
    if count > capacity:
        raise ValueError(f"replay_add: {count} items do not fit a buffer of capacity {capacity}")
    slots = (buffer.position + jnp.arange(count, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda store, x: store.at[slots].set(x.astype(store.dtype)), buffer.data, items)
    return ReplayBuffer(data, (buffer.position + count) % capacity, jnp.minimum(buffer.size + count, capacity))


def replay_sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> PyTree:
    """`batch_size` transitions drawn uniformly (with replacement) among the filled slots. The filled slots are
    always 0..size-1 (writes start at 0 and wrap only once the buffer is full)."""
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return split_batch(jax.tree.map(lambda store: store[index], buffer.data))  # data parallel: a share per device


def soft_update(target: PyTree, online: PyTree, tau: float) -> PyTree:
    """Polyak averaging theta' <- tau theta + (1 - tau) theta' (leafwise)."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


__all__ = ["ReplayBuffer", "replay_add", "replay_init", "replay_sample", "soft_update"]
