"""The hybrid policy head: a masked categorical over the discrete part and a Gaussian over the continuous
part (distrax), as spec 003 §6.1 [C] describes.

Masked logits use a large negative number, never -inf, so softmax gradients stay finite (ANCHORS.md).
The continuous action executed is clip(sample, 0, 1); its log-probability is taken on the raw sample.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp

MASKED_LOGIT = -1e9


def masked_categorical(logits: jax.Array, mask: jax.Array | None) -> distrax.Categorical:
    """Categorical over the last axis with unavailable choices (mask False) given zero probability."""
    if mask is not None:
        logits = jnp.where(mask, logits, MASKED_LOGIT)
    return distrax.Categorical(logits=logits)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Differential entropy of N(mu, sigma^2) per dimension, log sigma + 0.5 ln(2 pi e) (nats), elementwise."""
    return log_std + 0.5 * jnp.log(2.0 * jnp.pi * jnp.e)


def gaussian(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """Diagonal Gaussian over the last axis (log-probs and entropies summed over action dimensions)."""
    return distrax.Independent(distrax.Normal(mean, jnp.exp(log_std)), reinterpreted_batch_ndims=1)


def to_unit_interval(raw_sample: jax.Array) -> jax.Array:
    """The executed continuous action: the raw Gaussian sample clipped to [0, 1]."""
    return jnp.clip(raw_sample, 0.0, 1.0)
