"""Cheap counter-based random numbers for simulator noise, keyed by ordinary JAX keys.

Why: on CPU, XLA lowers `jax.random`'s threefry to a rolled while loop, and at simulator scale
(thousands of worlds x vehicles x slots of noise at every reset and step) bulk draws with it dominated run
time. Here every number is `hash(hash(counter ^ s0) + s1)`, with the 32-bit `lowbias32` integer finalizer
(C. Wellons' hash-prospector: xor-shift / multiply, good avalanche) and (s0, s1) hashed from the raw words
of a JAX key. Keys are still made with `jax.random.split`: its loop also keeps XLA
from re-deriving per-world seeds inside every per-element kernel. Like `jax.random`, results are a pure
function of (key, shape): same key, same numbers, under `jit` and `vmap`. It is a simulation-quality
generator (uniforms on a 2^-24 grid, normals to about 5.3 sigma), not a cryptographic one; learning code
keeps using `jax.random` for its draws.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_GOLDEN = 0x9E3779B9


def _hash32(x: jax.Array) -> jax.Array:
    """lowbias32: a bijective 32-bit finalizer with low bias (xorshift-multiply)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _seeds(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Two 32-bit seeds hashed from the raw words of a typed JAX key (4-word keys folded to 2), so that keys
    differing in a few bits (hand-made keys) still give unrelated streams."""
    words = jax.random.key_data(key).astype(jnp.uint32)
    w0, w1 = words[..., 0], words[..., 1 % words.shape[-1]]
    for i in range(2, words.shape[-1]):
        w0, w1 = w1, w0 ^ words[..., i]
    s0 = _hash32(w0 ^ jnp.uint32(0x243F6A88))
    return s0, _hash32(w1 ^ s0)


def bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform uint32 words of `shape`."""
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(f"fastrand.bits: shape {shape} has more than 2^32 elements")
    s0, s1 = _seeds(key)
    counter = jax.lax.iota(jnp.uint32, size).reshape(shape)
    return _hash32(_hash32(counter ^ s0) + s1)


def uniform(key: jax.Array, shape: tuple[int, ...] = (), minval=0.0, maxval=1.0) -> jax.Array:
    """float32 uniform on [minval, maxval) (24-bit grid, (k + 0.5) / 2^24, never exactly 0 or 1 before scaling)."""
    u = ((bits(key, shape) >> 8).astype(jnp.float32) + 0.5) * (1.0 / (1 << 24))
    return minval + (maxval - minval) * u


# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
      4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)


def _horner(coeffs, x):
    out = jnp.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        out = out * x + c
    return out


def normal_quantile(p: jax.Array) -> jax.Array:
    """Inverse standard-normal CDF for p in (0, 1), branch-free (log and sqrt only, no trigonometry)."""
    q = p - 0.5
    r = q * q
    central = q * _horner(_A, r) / (_horner(_B, r) * r + 1.0)
    tail_p = jnp.minimum(p, 1.0 - p)
    t = jnp.sqrt(-2.0 * jnp.log(tail_p))
    tail = _horner(_C, t) / (_horner(_D, t) * t + 1.0)
    tail = jnp.where(q < 0, tail, -tail)
    return jnp.where(jnp.abs(q) <= 0.47575, central, tail)


def normal(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 standard normal by inversion of a uniform."""
    return normal_quantile(uniform(key, shape))


def exponential(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 Exp(1) by inversion: -log(1 - u)."""
    return -jnp.log1p(-uniform(key, shape))


def bernoulli(key: jax.Array, p, shape: tuple[int, ...] = ()) -> jax.Array:
    """Booleans that are True with probability p."""
    return uniform(key, shape) < p


def randint(key: jax.Array, shape: tuple[int, ...], minval, maxval) -> jax.Array:
    """int32 uniform on {minval, ..., maxval - 1} (bounds may be traced)."""
    u = uniform(key, shape)
    span = jnp.asarray(maxval) - jnp.asarray(minval)
    return jnp.minimum(jnp.asarray(minval) + jnp.floor(u * span).astype(jnp.int32), jnp.asarray(maxval) - 1)

