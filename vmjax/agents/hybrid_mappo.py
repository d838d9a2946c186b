"""Hybrid-MAPPO (spec 003 §6): per-agent discrete and continuous actors, two centralized critics, each branch
updated with its own clipped surrogate, the whole training one jitted function (PureJaxRL pattern).

    trainer = make_trainer(env, HybridMappoConfig())
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds

One iteration (Algorithm 2, §6.4): roll `num_envs` worlds for `num_steps` steps sampling a^d ~ pi^d_old and
a^c ~ pi^c_old simultaneously; compute V^d, V^c and GAE advantages per branch (bootstrapping from the final
observation at truncation); then `update_epochs` epochs of shuffled minibatches, each a gradient step on
theta^d, phi^d, theta^c and phi^c with four separate Adam states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from vmjax.agents import distributions, networks, ppo, trainer
from vmjax.agents.trainer import Trainer, TrainerState
from vmjax.core import validation
from vmjax.core.env import Environment
from vmjax.core.wrappers import VecEnv

PyTree = Any
BRANCHES = ("actor_d", "actor_c", "critic_d", "critic_c")
LOG_METRICS = ("total_latency_s",)
AlphaMean = Literal["sigmoid", "linear"]  # HybridMappoConfig.alpha_mean
Ratio = Literal["separate", "joint"]  # HybridMappoConfig.ratio


@dataclasses.dataclass(frozen=True)
class HybridMappoConfig:
    """Hyper-parameters of Hybrid-MAPPO (spec 003 §6.3; [P] paper value, [C] recommended choice)."""

    num_envs: int = 20  # parallel worlds per rollout; 20 x 100 steps x 10 agents = the 20,000 buffer [C]
    num_steps: int = 100  # rollout steps per iteration (one episode of T_max = 100) [C]
    num_iterations: int = 500  # training iterations (rollout + update) [C]
    update_epochs: int = 10  # PPO epochs K per iteration [C]
    num_minibatches: int = 4  # minibatches per epoch [C]
    gamma: float = 0.95  # discount [P]
    gae_lambda: float = 0.95  # GAE / TD(lambda) decay [C]
    clip_eps: float = 0.2  # surrogate clip epsilon [P]
    value_clip_eps: float = 0.2  # MAPPO value clipping; 0 disables it
    entropy_coef: float = 0.01  # entropy bonus per branch [C]
    actor_lr: float = 1e-4  # Adam learning rate of both actors [C]
    continuous_actor_lr: float = 0.0  # learning rate of the continuous actor alone; 0 means `actor_lr`
    critic_lr: float = 1e-4  # Adam learning rate of both critics [C]
    anneal_lr: bool = False  # linear decay of both learning rates to 0 over training
    max_grad_norm: float = 0.5  # global-norm gradient clipping per parameter group [C]
    normalize_advantages: bool = True  # per-minibatch advantage normalization [C]
    reward_scale: float = 0.1  # train on r / 10; the raw reward is logged [C]
    hidden_sizes: tuple[int, ...] = (64, 64)  # MLP widths of actors and critics [C]
    activation: networks.Activation = "relu"  # "relu" | "tanh"
    layer_norm: bool = False  # LayerNorm after each hidden layer
    log_std_init: float = -1.0  # initial log-std of the continuous actor [C]
    alpha_mean: AlphaMean = "sigmoid"  # Gaussian mean of alpha: "sigmoid" (in (0, 1), spec §6.1 [C]) | "linear"
    # (0.5 + a linear output: no saturation when the best alpha is at a bound; executed alpha is clipped)
    share_actor_params: bool = False  # one actor pair for all agents (+ one-hot id) instead of per-agent actors
    alpha_per_target: bool = False  # continuous actor outputs one alpha per target RSU and the chosen target's
    # is executed (H-PPO parameterised actions); False: one alpha for whichever target (spec §6.1)
    ratio: Ratio = "separate"  # "separate": one clipped ratio per branch [P]; "joint": one ratio of the summed
    # log-probs (LHDPPO style) with the discrete critic's advantage
    deterministic_eval: bool = True  # evaluation policy: argmax target and Gaussian mean (else sample)

    def __post_init__(self):
        owner = "HybridMappoConfig"
        for name in ("num_envs", "num_steps", "num_iterations", "update_epochs", "num_minibatches"):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("gamma", "gae_lambda"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in ("clip_eps", "actor_lr", "critic_lr", "max_grad_norm", "reward_scale"):
            validation.check_positive(owner, name, getattr(self, name))
        for name in ("value_clip_eps", "entropy_coef", "continuous_actor_lr"):
            validation.check_non_negative(owner, name, getattr(self, name))
        validation.check_literal_fields(self)
        validation.check_layer_widths(owner, "hidden_sizes", self.hidden_sizes)
        validation.check_minibatches(owner, self.num_minibatches, self.num_envs, self.num_steps)

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps


class Transition(NamedTuple):
    obs: jax.Array  # [E, N, D]
    mask: jax.Array  # [E, N, M]
    target: jax.Array  # [E, N] a^d
    raw_fraction: jax.Array  # [E, N, 1] unclipped Gaussian sample (log-probs are taken on it)
    log_prob_d: jax.Array  # [E, N]
    log_prob_c: jax.Array  # [E, N]
    value_d: jax.Array  # [E, N]
    value_c: jax.Array  # [E, N]
    reward: jax.Array  # [E, N] scaled reward
    terminated: jax.Array  # [E]
    done: jax.Array  # [E]
    final_obs: jax.Array  # [E, N, D] observation the step reached, before any reset


class Batch(NamedTuple):
    obs: jax.Array
    mask: jax.Array
    target: jax.Array
    raw_fraction: jax.Array
    log_prob_d: jax.Array
    log_prob_c: jax.Array
    value_d: jax.Array
    value_c: jax.Array
    advantage_d: jax.Array
    advantage_c: jax.Array
    return_d: jax.Array
    return_c: jax.Array


class Policy(NamedTuple):
    """The two actors and how to apply them (shared or per-agent parameters)."""

    discrete: networks.DiscreteActor
    continuous: networks.ContinuousActor
    shared: bool
    per_target: bool = False

    def discrete_distribution(self, params: dict, obs: jax.Array, mask: jax.Array | None):
        """Masked categorical over targets for observations [..., N, D]."""
        logits = networks.apply_agents(self.discrete, params["actor_d"], obs, self.shared)
        return distributions.masked_categorical(logits, mask)

    def continuous_distribution(self, params: dict, obs: jax.Array, target: jax.Array):
        """Gaussian over the raw fraction [..., N, 1]; with `per_target`, the component of `target`."""
        mean, log_std = networks.apply_agents(self.continuous, params["actor_c"], obs, self.shared)
        if self.per_target:
            mean = jnp.take_along_axis(mean, target[..., None], axis=-1)
            log_std = jnp.take_along_axis(log_std, target[..., None], axis=-1)
        return distributions.gaussian(mean, log_std)

    def act(self, key, params: dict, obs, mask, deterministic: bool = False):
        """Hybrid action {"target" int32 [..., N], "fraction" [..., N]} plus (raw sample, log-probs). Both
        parts are drawn at once from o_v (the continuous draw does not depend on the discrete one: with
        `per_target`, every target's alpha is drawn and the chosen target's is executed)."""
        dist_d = self.discrete_distribution(params, obs, mask)
        k_d, k_c = jax.random.split(key)
        target = (dist_d.mode() if deterministic else dist_d.sample(seed=k_d)).astype(jnp.int32)
        dist_c = self.continuous_distribution(params, obs, target)
        raw = dist_c.mode() if deterministic else dist_c.sample(seed=k_c)
        action = {"target": target, "fraction": distributions.to_unit_interval(raw[..., 0])}
        return action, raw, dist_d.log_prob(target), dist_c.log_prob(raw)


class Components(NamedTuple):
    """The pieces `make_trainer` assembles, exposed for tests and analysis."""

    policy: Policy
    vec: VecEnv
    init: Callable
    rollout: Callable  # (state, key) -> (env_state, obs, traj: Transition, log)
    advantages: Callable  # (params, traj) -> (adv_d, adv_c, ret_d, ret_c), GAE per branch
    loss_fn: Callable  # (params, batch) -> (loss, stats)
    optimizers: dict  # parameter group -> optax transformation
    update: Callable


def make_components(
    env: Environment,
    config: HybridMappoConfig,
    env_params: PyTree | None = None,
    log_metrics: tuple[str, ...] = LOG_METRICS,
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    num_targets = env.action_space(env_params).spaces["target"].n
    widths = tuple(int(h) for h in config.hidden_sizes)
    arch = {"hidden_sizes": widths, "activation": config.activation, "layer_norm": config.layer_norm}
    policy = Policy(
        discrete=networks.DiscreteActor(num_targets, **arch),
        continuous=networks.ContinuousActor(
            num_targets if config.alpha_per_target else 1,
            log_std_init=config.log_std_init,
            mean_squash="sigmoid" if config.alpha_mean == "sigmoid" else "none",
            **arch,
        ),
        shared=config.share_actor_params,
        per_target=config.alpha_per_target,
    )
    critic = networks.Critic(**arch)
    optimizers = {
        "actor_d": ppo.annealed_adam(config, config.actor_lr),
        "actor_c": ppo.annealed_adam(config, config.continuous_actor_lr or config.actor_lr),
        "critic_d": ppo.annealed_adam(config, config.critic_lr),
        "critic_c": ppo.annealed_adam(config, config.critic_lr),
    }
    value_clip = config.value_clip_eps if config.value_clip_eps > 0 else None

    def values(params, obs):
        world = env.world_state_from_observation(obs)
        return critic.apply(params["critic_d"], world), critic.apply(params["critic_c"], world)

    def init(key) -> TrainerState:
        k_env, k_d, k_c, k_vd, k_vc, k_run = jax.random.split(key, 6)
        obs, env_state = vec.reset(k_env, env_params)
        agent_obs = obs[0]  # [N, D]
        world = env.world_state_from_observation(agent_obs)
        params = {
            "actor_d": networks.init_agents(policy.discrete, k_d, agent_obs, config.share_actor_params),
            "actor_c": networks.init_agents(policy.continuous, k_c, agent_obs, config.share_actor_params),
            "critic_d": critic.init(k_vd, world),
            "critic_c": critic.init(k_vc, world),
        }
        opt_state = {name: optimizers[name].init(params[name]) for name in BRANCHES}
        return TrainerState(params, opt_state, env_state, obs, k_run, jnp.int32(0))

    # ------------------------------------------------------------------ rollout
    def rollout(state: TrainerState, key):
        def step(carry, step_key):
            env_state, obs = carry
            k_act, k_env = jax.random.split(step_key)
            mask = vec.action_mask(env_state, env_params)
            action, raw, log_prob_d, log_prob_c = policy.act(k_act, state.params, obs, mask)
            value_d, value_c = values(state.params, obs)
            next_obs, env_state, reward, terminated, truncated, info = vec.step(k_env, env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            transition = Transition(
                obs,
                mask,
                action["target"],
                raw,
                log_prob_d,
                log_prob_c,
                value_d,
                value_c,
                reward * config.reward_scale,
                terminated,
                done,
                info["final_observation"],
            )
            return (env_state, next_obs), (transition, ppo.episode_log(reward, info, log_metrics))

        keys = jax.random.split(key, config.num_steps)
        (env_state, obs), (traj, log) = jax.lax.scan(step, (state.env_state, state.obs), keys)
        return env_state, obs, traj, log

    def advantages(params, traj: Transition):
        """GAE per branch (eqs. 28-31), bootstrapping each critic from the pre-reset final observation."""
        next_d, next_c = values(params, traj.final_obs)
        flags = lambda x: x[..., None]
        cfg = (config.gamma, config.gae_lambda)
        adv_d, ret_d = ppo.gae(traj.reward, traj.value_d, next_d, flags(traj.terminated), flags(traj.done), *cfg)
        adv_c, ret_c = ppo.gae(traj.reward, traj.value_c, next_c, flags(traj.terminated), flags(traj.done), *cfg)
        return adv_d, adv_c, ret_d, ret_c

    # ------------------------------------------------------------------ losses
    def loss_fn(params, batch: Batch):
        dist_d = policy.discrete_distribution(params, batch.obs, batch.mask)
        dist_c = policy.continuous_distribution(params, batch.obs, batch.target)
        log_prob_d = dist_d.log_prob(batch.target)
        log_prob_c = dist_c.log_prob(batch.raw_fraction)
        norm = ppo.normalize if config.normalize_advantages else (lambda x: x)
        adv_d, adv_c = norm(batch.advantage_d), norm(batch.advantage_c)
        if config.ratio == "separate":  # eqs. (22)-(27): each branch its own ratio and critic
            loss_d, stats_d = ppo.clipped_surrogate_loss(log_prob_d, batch.log_prob_d, adv_d, config.clip_eps)
            loss_c, stats_c = ppo.clipped_surrogate_loss(log_prob_c, batch.log_prob_c, adv_c, config.clip_eps)
        else:
            loss_d, stats_d = ppo.clipped_surrogate_loss(
                log_prob_d + log_prob_c, batch.log_prob_d + batch.log_prob_c, adv_d, config.clip_eps
            )
            loss_c, stats_c = jnp.float32(0.0), stats_d
        entropy_d, entropy_c = jnp.mean(dist_d.entropy()), jnp.mean(dist_c.entropy())
        value_d, value_c = values(params, batch.obs)
        value_loss_d = ppo.value_loss(value_d, batch.value_d, batch.return_d, value_clip)
        value_loss_c = ppo.value_loss(value_c, batch.value_c, batch.return_c, value_clip)
        total = (loss_d - config.entropy_coef * entropy_d) + (loss_c - config.entropy_coef * entropy_c)
        total = total + value_loss_d + value_loss_c  # disjoint parameter groups: each gets its own gradient
        stats = {
            "policy_loss_d": loss_d,
            "policy_loss_c": loss_c,
            "value_loss_d": value_loss_d,
            "value_loss_c": value_loss_c,
            "entropy_d": entropy_d,
            "entropy_c": entropy_c,
            "approx_kl_d": stats_d["approx_kl"],
            "approx_kl_c": stats_c["approx_kl"],
            "clip_fraction_d": stats_d["clip_fraction"],
            "clip_fraction_c": stats_c["clip_fraction"],
        }
        return total, stats

    gradient_step = ppo.grouped_gradient_step(loss_fn, optimizers, BRANCHES)  # four Adam states (Alg. 2, 3.3)

    def update(state: TrainerState) -> tuple[TrainerState, dict]:
        key, k_roll, k_epochs = jax.random.split(state.key, 3)
        env_state, obs, traj, log = rollout(state, k_roll)
        adv_d, adv_c, ret_d, ret_c = advantages(state.params, traj)
        flat = ppo.flatten_time
        data = Batch(
            flat(traj.obs),
            flat(traj.mask),
            flat(traj.target),
            flat(traj.raw_fraction),
            flat(traj.log_prob_d),
            flat(traj.log_prob_c),
            flat(traj.value_d),
            flat(traj.value_c),
            flat(adv_d),
            flat(adv_c),
            flat(ret_d),
            flat(ret_c),
        )
        (params, opt_state), stats = ppo.shuffled_minibatch_epochs(
            k_epochs, data, config.update_epochs, config.num_minibatches, gradient_step, (state.params, state.opt_state)
        )
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            **jax.tree.map(jnp.mean, stats),
        }
        new_state = TrainerState(params, opt_state, env_state, obs, key, state.iteration + 1)
        return new_state, metrics

    return Components(policy, vec, init, rollout, advantages, loss_fn, optimizers, update)


def make_trainer(
    env: Environment,
    config: HybridMappoConfig,
    env_params: PyTree | None = None,
    log_metrics: tuple[str, ...] = LOG_METRICS,
) -> Trainer:
    """Build the pure functions of a Hybrid-MAPPO run on a multi-agent env with a hybrid
    {"target": Discrete, "fraction": Box[0, 1]} action."""
    return trainer.assemble(Trainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "BRANCHES",
    "LOG_METRICS",
    "AlphaMean",
    "Batch",
    "Components",
    "HybridMappoConfig",
    "Policy",
    "Ratio",
    "Trainer",
    "TrainerState",
    "Transition",
    "make_components",
    "make_train",
    "make_trainer",
]
