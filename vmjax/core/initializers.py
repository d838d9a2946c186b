"""Parameter initializers shared by the learners (`vmjax.agents`) and the predictors (`vmjax.predict`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _gram_schmidt(a: jax.Array) -> jax.Array:
    """Orthonormal columns of `a` [n, k] (n >= k), modified Gram-Schmidt applied twice per column, so
    Q has the distribution of QR's Q with sign-corrected R (Haar) for a Gaussian `a`."""
    k = a.shape[1]

    def column(j, q):
        v = jax.lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False)
        earlier = (jnp.arange(k) < j).astype(a.dtype)
        for _ in range(2):  # "twice is enough" for float32
            v = v - q @ ((q.T @ v) * earlier)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, k, column, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0):
    """Orthogonal initializer (the same distribution as `jax.nn.initializers.orthogonal`) built from
    matrix products instead of LAPACK QR: on jax 0.10 CPU, the QR custom call inside a large jitted
    graph (a whole `train`) was seen to deadlock XLA's executor."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        tall = (max(rows, cols), min(rows, cols))
        q = _gram_schmidt(jax.random.normal(key, tall, jnp.float32))
        q = q if rows >= cols else q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init
