"""PPO math shared by the on-policy learners (spec 003 §6.2, MAPPO conventions).

Time is the leading axis of every rollout array. `terminated` marks a true end (no bootstrap); `done` is
terminated or truncated (the episode stops, so advantages do not flow across it). With auto-reset, the
value after a truncated step is the value of the *final* observation, not of the next episode's first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from vmjax.core.sharding import split_batch


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


def lambda_returns(rewards, next_values, terminated, done, gamma: float, gae_lambda: float):
    """TD(lambda) targets when the bootstrap value differs from the regressed one (a Q critic regressed on
    Q(o_t, a_t) and bootstrapped with b(o_{t+1}) = E_pi Q(o_{t+1}, .), spec 002 §6.2 C1):

        R_t = r_t + gamma (1 - terminated_t) [(1 - lambda) V'_t + lambda (done_t ? V'_t : R_{t+1})]

    lambda = 1 is the discounted return G_t of eq. (26) (bootstrapped where the rollout or the episode is cut),
    lambda = 0 the one-step target of eq. (25). The last step bootstraps from its own V'_t. Arrays [T, ...].
    """
    terminated = jnp.broadcast_to(terminated, rewards.shape).astype(rewards.dtype)
    done = jnp.broadcast_to(done, rewards.shape).astype(rewards.dtype)

    def backward(next_return, step):
        reward, next_value, term, end = step
        bootstrap = end * next_value + (1.0 - end) * next_return
        ret = reward + gamma * (1.0 - term) * ((1.0 - gae_lambda) * next_value + gae_lambda * bootstrap)
        return ret, ret

    _, returns = jax.lax.scan(backward, next_values[-1], (rewards, next_values, terminated, done), reverse=True)
    return returns


def masked_mean(x: jax.Array, weight: jax.Array | None = None) -> jax.Array:
    """Mean of `x`, or its `weight`-weighted mean (weights broadcast against x; 0 where all weights are 0)."""
    if weight is None:
        return jnp.mean(x)
    weight = jnp.broadcast_to(weight, x.shape).astype(x.dtype)
    return jnp.sum(x * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def normalize(x: jax.Array, eps: float = 1e-8, weight: jax.Array | None = None) -> jax.Array:
    """Zero mean, unit standard deviation over all entries (per-minibatch advantage normalization); with
    `weight`, the statistics are those of the weighted entries (the active agents)."""
    if weight is None:
        return (x - jnp.mean(x)) / (jnp.std(x) + eps)
    mean = masked_mean(x, weight)
    std = jnp.sqrt(masked_mean(jnp.square(x - mean), weight))
    return (x - mean) / (std + eps)


def clipped_surrogate(log_prob, old_log_prob, advantages, clip_eps: float):
    """Per-sample F(rho, A) = min(rho A, clip(rho, 1-eps, 1+eps) A), rho = pi/pi_old (spec 003 eqs. 22-27,
    spec 004 eqs. 25-26); the surrogate objective is its mean (to be maximised)."""
    ratio = jnp.exp(log_prob - old_log_prob)
    return jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages)


def clipped_surrogate_loss(log_prob, old_log_prob, advantages, clip_eps: float, weight=None):
    """-E[min(rho A, clip(rho, 1-eps, 1+eps) A)], rho = pi/pi_old (spec 003 eqs. 22-27).

    Returns (loss, stats) with the clip fraction and the approximate KL (mean of (rho - 1) - log rho). With
    `weight`, every mean is weighted (0 weight: an inactive agent, which contributes nothing).
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    loss = -masked_mean(clipped_surrogate(log_prob, old_log_prob, advantages, clip_eps), weight)
    stats = {
        "clip_fraction": masked_mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32), weight),
        "approx_kl": masked_mean((ratio - 1.0) - log_ratio, weight),
    }
    return loss, stats


def value_loss(values, old_values, returns, clip_eps: float | None, weight=None):
    """0.5 E[(V - R)^2] (spec 003 critic losses); with `clip_eps`, the MAPPO clipped form
    0.5 E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)]. With `weight`, a weighted mean."""
    squared = jnp.square(values - returns)
    if clip_eps is None:
        return 0.5 * masked_mean(squared, weight)
    clipped_values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * masked_mean(jnp.maximum(squared, jnp.square(clipped_values - returns)), weight)


def coma_baseline(q_values: jax.Array, probs: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Counterfactual baseline b = sum_a pi(a | o) Q(., a) over the feasible actions (mask True; all when
    None): spec 002 §6.1 C1, spec 004 eq. (27). Arrays [..., M] -> [...]."""
    terms = probs * q_values
    if mask is not None:
        terms = jnp.where(mask, terms, 0.0)
    return jnp.sum(terms, axis=-1)


# ---------------------------------------------------------------------- trainer plumbing shared by the learners
def clipped_adam(
    learning_rate: float, max_grad_norm: float, eps: float = 1e-5, anneal_steps: int | None = None
) -> optax.GradientTransformation:
    """Global-norm gradient clipping then Adam(eps); with `anneal_steps`, the learning rate decays linearly to
    0 over that many gradient steps (the optimizer of every on-policy learner's parameter groups)."""
    if anneal_steps:
        learning_rate = optax.linear_schedule(learning_rate, 0.0, anneal_steps)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=eps))


def annealed_adam(config, learning_rate: float) -> optax.GradientTransformation:
    """`clipped_adam` with the config's `max_grad_norm`, its learning rate decayed linearly to 0 over the
    num_iterations x update_epochs x num_minibatches gradient steps of a run when `config.anneal_lr`."""
    steps = config.num_iterations * config.update_epochs * config.num_minibatches if config.anneal_lr else None
    return clipped_adam(learning_rate, config.max_grad_norm, anneal_steps=steps)


def grouped_gradient_step(loss_fn, optimizers: dict, groups: tuple[str, ...]):
    """gradient_step((params, opt_state), batch) -> ((params, opt_state), stats): one gradient of
    `loss_fn(params, batch) -> (loss, stats)`, each parameter group in `groups` updated by its own optimizer
    (separate Adam states; the groups are disjoint, so one summed loss gives each its own gradient)."""

    def gradient_step(carry, batch):
        params, opt_state = carry
        grads, stats = jax.grad(loss_fn, has_aux=True)(params, batch)
        new_params, new_opt = {}, {}
        for name in groups:
            updates, new_opt[name] = optimizers[name].update(grads[name], opt_state[name], params[name])
            new_params[name] = optax.apply_updates(params[name], updates)
        return (new_params, new_opt), stats

    return gradient_step


def shuffled_minibatch_epochs(key, data, update_epochs: int, num_minibatches: int, gradient_step, carry):
    """`update_epochs` passes over `data` (leaves [B, ...]), each a fresh permutation cut into `num_minibatches`
    minibatches, `carry, stats = gradient_step(carry, minibatch)` on each (lax.scan). Returns (carry, stats
    [update_epochs, num_minibatches, ...])."""
    size = jax.tree.leaves(data)[0].shape[0]

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, size)
        shuffled = jax.tree.map(lambda x: x[order].reshape((num_minibatches, -1) + x.shape[1:]), data)
        shuffled = split_batch(shuffled, axis=1)  # data parallel: each device's share of every minibatch
        return jax.lax.scan(gradient_step, carry, shuffled)

    return jax.lax.scan(epoch, carry, jax.random.split(key, update_epochs))


def flatten_time(x: jax.Array) -> jax.Array:
    """[T, E, ...] -> [T * E, ...]: time x worlds into one sample axis, each world's agents kept together."""
    return x.reshape((-1,) + x.shape[2:])


def episode_log(reward, info: dict, log_metrics) -> dict:
    """What a rollout step logs for `episode_metrics` (leaves [E, ...], a `LogWrapper` info)."""
    return {
        "reward": jnp.mean(reward),
        "returned_episode": info["returned_episode"],
        "returned_episode_returns": jnp.mean(info["returned_episode_returns"], axis=-1),
        **{f"returned_episode_{m}": info[f"returned_episode_{m}"] for m in log_metrics},
    }


def episode_metrics(log: dict, log_metrics) -> dict:
    """Iteration metrics from the stacked `episode_log`s [T, E]: the mean step reward, the number of episodes
    that finished, and the means of their return (agent-mean) and of each logged env metric (NaN in an iteration
    where no episode finished)."""
    finished = log["returned_episode"]
    count = jnp.sum(finished)
    episode_mean = lambda x: jnp.where(count > 0, jnp.sum(jnp.where(finished, x, 0.0)) / jnp.maximum(count, 1), jnp.nan)
    return {
        "mean_reward": jnp.mean(log["reward"]),
        "episodes": jnp.sum(finished),
        "episode_return": episode_mean(log["returned_episode_returns"]),
        **{f"episode_{m}": episode_mean(log[f"returned_episode_{m}"]) for m in log_metrics},
    }
