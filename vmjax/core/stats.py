"""Running statistics as pytrees: the count / mean / M2 of a stream, merged batch by batch (Welford, Chan et
al.), so a pure function can carry them in its state (spec 002 §3.3 (B); reward and observation
normalisation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningMoments:
    """Moments of the samples seen so far, per entry of `shape`: count n, mean, and M2 = sum (x - mean)^2."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @classmethod
    def zeros(cls, shape: tuple[int, ...] = ()) -> RunningMoments:
        zeros = jnp.zeros(shape, jnp.float32)
        return cls(count=zeros, mean=zeros, m2=zeros)

    def update(self, x: jax.Array, weight: jax.Array | None = None) -> RunningMoments:
        """Merge a batch: `x` [..., B] with the moments' shape [...] plus a batch axis last; `weight` [..., B]
        (0/1, or bool) selects the samples that count (all when None). Chan's parallel merge:

            n_b = sum w, mean_b = sum w x / n_b, M2_b = sum w (x - mean_b)^2, delta = mean_b - mean,
            n' = n + n_b, mean' = mean + delta n_b / n', M2' = M2 + M2_b + delta^2 n n_b / n'.

        A batch with no selected sample leaves the moments unchanged.
        """
        x = jnp.asarray(x, jnp.float32)
        w = jnp.ones_like(x) if weight is None else jnp.asarray(weight, jnp.float32)
        n_b = jnp.sum(w, axis=-1)
        mean_b = jnp.sum(w * x, axis=-1) / jnp.maximum(n_b, 1.0)
        m2_b = jnp.sum(w * (x - mean_b[..., None]) ** 2, axis=-1)
        n = self.count + n_b
        safe_n = jnp.maximum(n, 1.0)
        delta = mean_b - self.mean
        return RunningMoments(
            count=n,
            mean=self.mean + delta * n_b / safe_n,
            m2=self.m2 + m2_b + delta * delta * self.count * n_b / safe_n,
        )

    @property
    def variance(self) -> jax.Array:
        """Sample variance M2 / (n - 1) (ddof = 1), 0 while n < 2."""
        return jnp.where(self.count > 1.0, self.m2 / jnp.maximum(self.count - 1.0, 1.0), 0.0)

    @property
    def std(self) -> jax.Array:
        """Sample standard deviation (ddof = 1)."""
        return jnp.sqrt(self.variance)
