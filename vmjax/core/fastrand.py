"""Cheap counter-based random numbers for simulator noise, keyed by ordinary JAX keys.

Why: on CPU, XLA lowers `jax.random`'s threefry to a rolled while loop, and at simulator scale
(thousands of worlds x vehicles x slots of noise at every reset and step) bulk draws with it dominated run
time. Here every number is `hash(hash(counter ^ s0) + s1)`, with the 32-bit `lowbias32` integer finalizer
(C. Wellons' hash-prospector: xor-shift / multiply, good avalanche) and (s0, s1) taken from the raw words
of a JAX key. Keys are still made with `jax.random.split`: its loop also keeps XLA
from re-deriving per-world seeds inside every per-element kernel. Like `jax.random`, results are a pure
function of (key, shape): same key, same numbers, under `jit` and `vmap`. It is a simulation-quality
generator (uniforms on a 2^-24 grid, Box-Muller normals to about 5.8 sigma), not a cryptographic one; learning code
keeps using `jax.random` for its draws.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

_GOLDEN = 0x9E3779B9


def _hash32(x: jax.Array) -> jax.Array:
    """lowbias32: a bijective 32-bit finalizer with low bias (xorshift-multiply)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _seeds(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Two 32-bit seeds from the raw words of a typed JAX key (4-word keys folded to 2).

    The first word is hashed (one hash: XLA recomputes this per element) so that hand-made keys differing
    in a few bits of it do not give permuted copies of one stream; the second enters through an addition
    between the two per-element hashes, where neighbouring values already give unrelated streams.
    """
    words = jax.random.key_data(key).astype(jnp.uint32)
    w0, w1 = words[..., 0], words[..., 1 % words.shape[-1]]
    for i in range(2, words.shape[-1]):
        w0, w1 = w1, w0 ^ words[..., i]
    return _hash32(w0 ^ jnp.uint32(0x243F6A88)), w1


def bits(key: jax.Array, shape: tuple[int, ...], stream: int = 0) -> jax.Array:
    """Uniform uint32 words of `shape`; `stream` (a small int) selects an independent stream of the same key."""
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(f"fastrand.bits: shape {shape} has more than 2^32 elements")
    s0, s1 = _seeds(key)
    counter = jax.lax.iota(jnp.uint32, size).reshape(shape)
    return _hash32(_hash32(counter ^ s0) + (s1 + jnp.uint32((_GOLDEN * stream) % 2**32)))


def uniform(key: jax.Array, shape: tuple[int, ...] = (), minval=0.0, maxval=1.0, stream: int = 0) -> jax.Array:
    """float32 uniform on [minval, maxval) (24-bit grid, (k + 0.5) / 2^24, never exactly 0 or 1 before scaling)."""
    u = ((bits(key, shape, stream) >> 8).astype(jnp.float32) + 0.5) * (1.0 / (1 << 24))
    return minval + (maxval - minval) * u


def _sin_pi_coefficients(degree: int = 17) -> tuple[float, ...]:
    """Odd coefficients c_k of sin(pi x) ~ x * sum_k c_k x^(2k) on [-1, 1] (least-squares Chebyshev fit,
    max error 7e-7): a polynomial instead of `jnp.sin`, which XLA's CPU backend evaluates ~20x slower."""
    x = np.linspace(-1.0, 1.0, 4001)
    fit = np.polynomial.chebyshev.Chebyshev.fit(x, np.sin(np.pi * x), degree)
    return tuple(float(c) for c in fit.convert(kind=np.polynomial.Polynomial).coef[1::2])


_SIN_PI = _sin_pi_coefficients()


def _sin_pi(x: jax.Array) -> jax.Array:
    """sin(pi x) for x in [-1, 1]."""
    x2 = x * x
    acc = jnp.full_like(x, _SIN_PI[-1])
    for c in _SIN_PI[-2::-1]:
        acc = acc * x2 + c
    return x * acc


def normal_pair(key: jax.Array, shape: tuple[int, ...] = ()) -> tuple[jax.Array, jax.Array]:
    """Two independent float32 standard normal arrays by the Box-Muller transform:
    r = sqrt(-2 log u1), (r cos 2 pi u2, r sin 2 pi u2)."""
    radius = jnp.sqrt(-2.0 * jnp.log(uniform(key, shape, stream=1)))
    x = 2.0 * uniform(key, shape, stream=2) - 1.0  # angle pi x in [-pi, pi)
    cos_x = jnp.where(x < 0.5, x + 0.5, x - 1.5)  # cos(pi x) = sin(pi (x + 1/2)), wrapped into [-1, 1)
    return radius * _sin_pi(cos_x), radius * _sin_pi(x)


def normal(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 standard normal (one branch of `normal_pair`)."""
    return normal_pair(key, shape)[0]


def exponential(key: jax.Array, shape: tuple[int, ...] = (), stream: int = 0) -> jax.Array:
    """float32 Exp(1) by inversion: -log(1 - u)."""
    return -jnp.log1p(-uniform(key, shape, stream=stream))


def bernoulli(key: jax.Array, p, shape: tuple[int, ...] = ()) -> jax.Array:
    """Booleans that are True with probability p."""
    return uniform(key, shape) < p


def randint(key: jax.Array, shape: tuple[int, ...], minval, maxval) -> jax.Array:
    """int32 uniform on {minval, ..., maxval - 1} (bounds may be traced)."""
    u = uniform(key, shape)
    span = jnp.asarray(maxval) - jnp.asarray(minval)
    return jnp.minimum(jnp.asarray(minval) + jnp.floor(u * span).astype(jnp.int32), jnp.asarray(maxval) - 1)
