"""PPO math shared by the on-policy learners (spec 003 §6.2, MAPPO conventions).

Time is the leading axis of every rollout array. `terminated` marks a true end (no bootstrap); `done` is
terminated or truncated (the episode stops, so advantages do not flow across it). With auto-reset, the
value after a truncated step is the value of the *final* observation, not of the next episode's first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, done, gamma: float, gae_lambda: float):
    """Generalized advantage estimation (spec 003 eqs. 28-31 [C] primary form).

        delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    `next_values` is V(s'_t) of the state the step reached (pre-reset). Arrays [T, ...]; the flags broadcast
    against the rewards. Returns (advantages, lambda-returns = advantages + values).
    """
    terminated = jnp.broadcast_to(terminated, rewards.shape).astype(rewards.dtype)
    done = jnp.broadcast_to(done, rewards.shape).astype(rewards.dtype)
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values

    def backward(next_advantage, step):
        delta, not_done = step
        advantage = delta + gamma * gae_lambda * not_done * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, 1.0 - done), reverse=True)
    return advantages, advantages + values


def normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Zero mean, unit standard deviation over all entries (per-minibatch advantage normalization)."""
    return (x - jnp.mean(x)) / (jnp.std(x) + eps)


def clipped_surrogate_loss(log_prob, old_log_prob, advantages, clip_eps: float):
    """-E[min(rho A, clip(rho, 1-eps, 1+eps) A)], rho = pi/pi_old (spec 003 eqs. 22-27).

    Returns (loss, stats) with the clip fraction and the approximate KL (mean of (rho - 1) - log rho).
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    stats = {
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
    }
    return loss, stats


def value_loss(values, old_values, returns, clip_eps: float | None):
    """0.5 E[(V - R)^2] (spec 003 critic losses); with `clip_eps`, the MAPPO clipped form
    0.5 E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)]."""
    squared = jnp.square(values - returns)
    if clip_eps is None:
        return 0.5 * jnp.mean(squared)
    clipped_values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(squared, jnp.square(clipped_values - returns)))
