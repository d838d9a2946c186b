"""Spaces with `sample(key)` and `contains(x)`, in the gymnax style, with an optional leading shape
(for example the agent axis of a multi-agent action)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np


class Space:
    """Base class: a set of arrays of one shape and dtype."""

    shape: tuple[int, ...]
    dtype: jnp.dtype

    def sample(self, key: jax.Array) -> jax.Array:  # pragma: no cover - interface
        raise NotImplementedError

    def contains(self, x) -> jax.Array:  # pragma: no cover - interface
        raise NotImplementedError


class Discrete(Space):
    """Integers {0, ..., n-1}, int32, in an array of `shape` (one per agent, say)."""

    def __init__(self, n: int, shape: tuple[int, ...] = ()):
        if int(n) < 1:
            raise ValueError(f"Discrete.n must be >= 1, got {n}")
        self.n = int(n)
        self.shape = tuple(shape)
        self.dtype = jnp.int32

    def sample(self, key: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """Uniform over {0..n-1}; with a boolean `mask` of shape shape + (n,), uniform over the allowed
        values (a row with nothing allowed falls back to all values)."""
        if mask is None:
            return jax.random.randint(key, self.shape, 0, self.n, dtype=self.dtype)
        mask = jnp.asarray(mask, bool)
        mask = jnp.where(jnp.any(mask, axis=-1, keepdims=True), mask, True)
        logits = jnp.where(mask, 0.0, -1e9)
        return jax.random.categorical(key, logits, axis=-1, shape=self.shape).astype(self.dtype)

    def contains(self, x) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape or not jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.array(False)
        return jnp.all((x >= 0) & (x < self.n))

    def __repr__(self) -> str:
        return f"Discrete({self.n}, shape={self.shape})"


class Box(Space):
    """Real arrays with elementwise bounds low <= x <= high."""

    def __init__(self, low, high, shape: tuple[int, ...], dtype=jnp.float32):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.low = np.broadcast_to(np.asarray(low, dtype=np.float32), self.shape)
        self.high = np.broadcast_to(np.asarray(high, dtype=np.float32), self.shape)
        if np.any(self.low > self.high):
            raise ValueError("Box.low must be <= Box.high everywhere")

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform where both bounds are finite; a standard normal shifted into half-bounded or unbounded
        directions elsewhere."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        k_u, k_n = jax.random.split(key)
        uniform = jax.random.uniform(k_u, self.shape, self.dtype, 0.0, 1.0)
        normal = jax.random.normal(k_n, self.shape, self.dtype)
        finite_low, finite_high = jnp.isfinite(low), jnp.isfinite(high)
        bounded = jnp.where(finite_low & finite_high, low + uniform * (high - low), 0.0)
        x = jnp.where(finite_low & finite_high, bounded, normal)
        x = jnp.where(finite_low & ~finite_high, low + jnp.abs(normal), x)
        x = jnp.where(~finite_low & finite_high, high - jnp.abs(normal), x)
        return x.astype(self.dtype)

    def contains(self, x) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape or not jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.array(False)
        return jnp.all((x >= self.low) & (x <= self.high))

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, low={self.low.min()}, high={self.high.max()})"


class Dict(Space):
    """A dict of named sub-spaces: a hybrid action is Dict({"target": Discrete, "fraction": Box})."""

    def __init__(self, spaces: Mapping[str, Space]):
        if not spaces:
            raise ValueError("Dict.spaces must not be empty")
        self.spaces = dict(spaces)

    def sample(self, key: jax.Array) -> dict[str, jax.Array]:
        keys = jax.random.split(key, len(self.spaces))
        return {name: space.sample(k) for (name, space), k in zip(self.spaces.items(), keys)}

    def contains(self, x) -> jax.Array:
        if not isinstance(x, Mapping) or set(x) != set(self.spaces):
            return jnp.array(False)
        return jnp.all(jnp.stack([space.contains(x[name]) for name, space in self.spaces.items()]))

    def __getitem__(self, name: str) -> Space:
        return self.spaces[name]

    def __repr__(self) -> str:
        return f"Dict({self.spaces})"
