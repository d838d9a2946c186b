"""MASAC (spec 002 §8.1): per-agent discrete soft actor-critic with the dynamic action mask, the off-policy
baseline of DM-MAPPO.

    trainer = make_trainer(env, MasacConfig())
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds

Each agent v has a masked softmax actor pi_v(. | o_v, K_v), twin critics Q1_v, Q2_v(o_v, .) with M outputs,
target critics (Polyak, tau) and a temperature alpha_v tuned automatically towards a target entropy:
0.98 log M (`target_entropy="uniform"`) or 0.6 log #feasible(o) (`"feasible"`, per sample). Masked actions have
zero probability and are excluded from every expectation (entropy, soft value, actor loss). With
pi = pi(. | o, K) and pi' = pi(. | o', K'):

    y      = r + gamma (1 - terminated) sum_a pi'(a) [min_i Q'_i(o', a) - alpha log pi'(a)]
    L_Q    = E_active[(Q_i(o, a) - y)^2], i = 1, 2
    L_pi   = E_active[sum_a pi(a) (alpha log pi(a) - min_i Q_i(o, a))]
    L_alpha = E_active[log alpha (H(pi) - H_target)]      (alpha falls when the entropy exceeds the target)

A replay buffer of joint world transitions (every agent's o, a, r, o', K, K', active flag) lives in the training
state (`vmjax.agents.replay`). One iteration rolls `num_envs` worlds for `num_steps` steps sampling from the masked
actors; after every vectorized step `updates_per_step` gradient steps run once the buffer holds
max(batch_size, learning_starts) transitions. Inactive agents (`info["active"]` False) are weighted out of every
loss. Evaluation (`Trainer.make_eval_policy`) takes the masked argmax.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from vmjax.agents import distributions, networks, ppo, trainer
from vmjax.agents.replay import replay_add, replay_init, replay_sample, soft_update
from vmjax.agents.trainer import OffPolicyTrainerState, Trainer
from vmjax.core import validation
from vmjax.core.env import Environment

PyTree = Any
LOG_METRICS = ("total_latency_s",)
TargetEntropy = Literal["feasible", "uniform"]  # MasacConfig.target_entropy
SAC_STATS = ("q_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_value")


@dataclasses.dataclass(frozen=True)
class MasacConfig:
    """Hyper-parameters of MASAC (spec 002 §8.1; [C] a choice the spec leaves open)."""

    num_envs: int = 16  # parallel worlds (as DM-MAPPO) [C]
    num_steps: int = 120  # env steps per iteration (one episode); metrics are reported per iteration [C]
    num_iterations: int = 300  # training iterations [C]
    gamma: float = 0.99  # discount [§8.1]
    tau: float = 0.005  # Polyak rate of the target critics [§8.1]
    buffer_size: int = 20_000  # capacity in joint transitions (all agents of one world step): 1e5 agent
    # transitions with 5 vehicles [§8.1]
    batch_size: int = 256  # joint transitions per gradient step [§8.1]
    learning_starts: int = 0  # updates begin once the buffer holds max(batch_size, this) transitions [C]
    updates_per_step: int = 1  # gradient steps after each vectorized env step (num_envs transitions) [C]
    actor_lr: float = 3e-4  # Adam learning rate of the actors [§8.1]
    critic_lr: float = 3e-4  # Adam learning rate of the twin critics [§8.1]
    alpha_lr: float = 3e-4  # Adam learning rate of log alpha [§8.1]
    init_alpha: float = 0.2  # initial temperature [C]
    autotune_alpha: bool = True  # automatic temperature; False keeps alpha = init_alpha [§8.1]
    target_entropy: TargetEntropy = "feasible"  # "feasible": ratio log #feasible(o) | "uniform": ratio log M [§8.1]
    target_entropy_ratio: float = 0.0  # 0: 0.6 for "feasible", 0.98 for "uniform" [§8.1]
    max_grad_norm: float = 10.0  # global-norm gradient clipping of actors and critics [C]
    reward_scale: float = 1.0  # train on reward x this (the env's reward is z-scored); raw reward logged [C]
    hidden_sizes: tuple[int, ...] = (128, 128)  # MLP widths (as DM-MAPPO) [C]
    activation: networks.Activation = "relu"  # "relu" | "tanh" [C]
    layer_norm: bool = False  # LayerNorm after each hidden layer
    share_params: bool = False  # one actor / critic pair for all agents (+ one-hot id) instead of per agent [C]
    deterministic_eval: bool = True  # evaluation policy: masked argmax, else a masked sample

    def __post_init__(self):
        owner = "MasacConfig"
        for name in ("num_envs", "num_steps", "num_iterations", "buffer_size", "batch_size"):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("learning_starts", "updates_per_step"):
            validation.check_int_at_least(owner, name, getattr(self, name), 0)
        for name in ("gamma", "tau"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha", "max_grad_norm", "reward_scale", "tau"):
            validation.check_positive(owner, name, getattr(self, name))
        validation.check_non_negative(owner, "target_entropy_ratio", self.target_entropy_ratio)
        validation.check_literal_fields(self)
        validation.check_layer_widths(owner, "hidden_sizes", self.hidden_sizes)
        trainer.check_replay_capacity(self, owner, self.num_envs, f"num_envs ({self.num_envs})")

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def min_buffer_fill(self) -> int:
        return max(self.batch_size, self.learning_starts)

    @property
    def entropy_ratio(self) -> float:
        if self.target_entropy_ratio > 0:
            return self.target_entropy_ratio
        return 0.6 if self.target_entropy == "feasible" else 0.98


class ReplayItem(NamedTuple):
    """One joint transition of one world (N agents)."""

    obs: jax.Array  # [N, D]
    mask: jax.Array  # [N, M] the mask the action was sampled under
    action: jax.Array  # [N] int32
    reward: jax.Array  # [N] scaled
    next_obs: jax.Array  # [N, D] final (pre-reset) observation of the step
    next_mask: jax.Array  # [N, M] mask at next_obs (the step's own mask on the step that ended an episode: the
    # pre-reset state is not exposed by VecEnv)
    active: jax.Array  # [N] bool: the agent was present when it acted
    terminated: jax.Array  # [N] no bootstrap: the episode truly ended, or the agent's trip ended this step


MasacTrainerState = OffPolicyTrainerState  # params {"actor", "q1", "q2", "log_alpha" [N]}; target_params
# {"q1", "q2"}; opt_state {"actor", "critic", "alpha"}; buffer of ReplayItem; a checkpoint is this pytree


class Policy(NamedTuple):
    """Masked softmax actors and twin Q critics (per-agent stacked or shared parameters). `act` has the signature
    `trainer.Trainer.make_eval_policy` expects."""

    actor: networks.DiscreteActor
    critic: networks.QNetwork
    shared: bool

    def distribution(self, params: dict, obs, mask):
        return distributions.masked_categorical(
            networks.apply_agents(self.actor, params["actor"], obs, self.shared), mask
        )

    def q_values(self, params_q, obs) -> jax.Array:
        return networks.apply_agents(self.critic, params_q, obs, self.shared)

    def act(self, key, params: dict, obs, mask, deterministic: bool = False):
        dist = self.distribution(params, obs, mask)
        action = (dist.mode() if deterministic else dist.sample(seed=key)).astype(jnp.int32)
        return action, dist.log_prob(action)


def masked_soft_terms(logits: jax.Array, mask: jax.Array):
    """(probs, log_probs with 0 at masked entries, entropy over the feasible actions) of the masked softmax."""
    log_probs = jax.nn.log_softmax(jnp.where(mask, logits, distributions.MASKED_LOGIT), axis=-1)
    log_probs = jnp.where(mask, log_probs, 0.0)
    probs = jnp.where(mask, jnp.exp(log_probs), 0.0)
    return probs, log_probs, -jnp.sum(probs * log_probs, axis=-1)


def _optimizer(learning_rate: float, max_grad_norm: float | None) -> optax.GradientTransformation:
    adam = optax.adam(learning_rate)
    return adam if max_grad_norm is None else optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)


class Components(NamedTuple):
    policy: Policy
    init: Callable
    sac_step: Callable  # ((params, target_params, opt_state), batch: ReplayItem [B, ...]) -> (carry, stats)
    update: Callable


def make_components(
    env: Environment, config: MasacConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    num_actions = env.action_space(env_params).n
    num_agents = env.num_agents
    arch = {
        "hidden_sizes": tuple(int(h) for h in config.hidden_sizes),
        "activation": config.activation,
        "layer_norm": config.layer_norm,
    }
    policy = Policy(
        networks.DiscreteActor(num_actions, **arch), networks.QNetwork(num_actions, **arch), config.share_params
    )
    optimizers = {
        "actor": _optimizer(config.actor_lr, config.max_grad_norm),
        "critic": _optimizer(config.critic_lr, config.max_grad_norm),
        "alpha": _optimizer(config.alpha_lr, None),
    }
    ratio = config.entropy_ratio

    def target_entropy(mask):
        if config.target_entropy == "uniform":
            return jnp.full(mask.shape[:-1], ratio * math.log(num_actions), jnp.float32)
        return ratio * jnp.log(jnp.sum(mask, axis=-1).astype(jnp.float32))

    def next_active(env_state) -> jax.Array:
        """[E, N] presence of every agent in the state reached (envs with `vehicle_active`, else all True)."""
        if not callable(getattr(type(env), "vehicle_active", None)):  # a class method (not a wrapper's forward)
            return jnp.ones((config.num_envs, num_agents), bool)
        return jax.vmap(lambda s: env.vehicle_active(s.env_state, s.env_state.t))(env_state)

    def init(key) -> MasacTrainerState:
        k_env, k_actor, k_q1, k_q2, k_run = jax.random.split(key, 5)
        obs, env_state = vec.reset(k_env, env_params)
        agent_obs = obs[0]
        params = {
            "actor": networks.init_agents(policy.actor, k_actor, agent_obs, config.share_params),
            "q1": networks.init_agents(policy.critic, k_q1, agent_obs, config.share_params),
            "q2": networks.init_agents(policy.critic, k_q2, agent_obs, config.share_params),
            "log_alpha": jnp.full((num_agents,), math.log(config.init_alpha), jnp.float32),
        }
        target_params = {"q1": params["q1"], "q2": params["q2"]}
        opt_state = {
            "actor": optimizers["actor"].init(params["actor"]),
            "critic": optimizers["critic"].init({"q1": params["q1"], "q2": params["q2"]}),
            "alpha": optimizers["alpha"].init(params["log_alpha"]),
        }
        mask = jnp.ones((num_agents, num_actions), bool)
        zeros = jnp.zeros((num_agents,), jnp.float32)
        no = jnp.zeros((num_agents,), bool)
        example = ReplayItem(agent_obs, mask, jnp.zeros((num_agents,), jnp.int32), zeros, agent_obs, mask, no, no)
        buffer = replay_init(example, config.buffer_size)
        return MasacTrainerState(params, target_params, opt_state, buffer, env_state, obs, k_run, jnp.int32(0))

    # ------------------------------------------------------------------ one SAC gradient step
    def sac_step(carry, b: ReplayItem):
        params, target_params, opt_state = carry
        weight = b.active.astype(jnp.float32)  # [B, N]
        alpha = jnp.exp(params["log_alpha"])  # [N], broadcast over the batch

        # soft V(o') under the mask of o', with the current actor and the target critics
        next_logits = networks.apply_agents(policy.actor, params["actor"], b.next_obs, policy.shared)
        next_probs, next_log_probs, _ = masked_soft_terms(next_logits, b.next_mask)
        next_q = jnp.minimum(
            policy.q_values(target_params["q1"], b.next_obs), policy.q_values(target_params["q2"], b.next_obs)
        )
        next_v = jnp.sum(jnp.where(b.next_mask, next_probs * (next_q - alpha[:, None] * next_log_probs), 0.0), -1)
        not_terminal = 1.0 - b.terminated.astype(jnp.float32)
        y = jax.lax.stop_gradient(b.reward + config.gamma * not_terminal * next_v)

        def critic_loss(critics):
            take = lambda q: jnp.take_along_axis(q, b.action[..., None], axis=-1)[..., 0]
            q1 = take(policy.q_values(critics["q1"], b.obs))
            q2 = take(policy.q_values(critics["q2"], b.obs))
            loss = ppo.masked_mean(jnp.square(q1 - y), weight) + ppo.masked_mean(jnp.square(q2 - y), weight)
            return loss, ppo.masked_mean(q1, weight)

        critics = {"q1": params["q1"], "q2": params["q2"]}
        (q_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(critics)
        updates, opt_critic = optimizers["critic"].update(grads, opt_state["critic"], critics)
        critics = optax.apply_updates(critics, updates)

        q_min = jax.lax.stop_gradient(
            jnp.minimum(policy.q_values(critics["q1"], b.obs), policy.q_values(critics["q2"], b.obs))
        )

        def actor_loss(actor):
            logits = networks.apply_agents(policy.actor, actor, b.obs, policy.shared)
            probs, log_probs, entropy = masked_soft_terms(logits, b.mask)
            per_sample = jnp.sum(jnp.where(b.mask, probs * (alpha[:, None] * log_probs - q_min), 0.0), -1)
            return ppo.masked_mean(per_sample, weight), entropy

        (pi_loss, entropy), grads = jax.value_and_grad(actor_loss, has_aux=True)(params["actor"])
        updates, opt_actor = optimizers["actor"].update(grads, opt_state["actor"], params["actor"])
        actor = optax.apply_updates(params["actor"], updates)

        gap = jax.lax.stop_gradient(entropy - target_entropy(b.mask))  # [B, N]

        def alpha_loss(log_alpha):
            return ppo.masked_mean(log_alpha * gap, weight)

        a_loss, grads = jax.value_and_grad(alpha_loss)(params["log_alpha"])
        if config.autotune_alpha:
            updates, opt_alpha = optimizers["alpha"].update(grads, opt_state["alpha"], params["log_alpha"])
            log_alpha = optax.apply_updates(params["log_alpha"], updates)
        else:
            opt_alpha, log_alpha = opt_state["alpha"], params["log_alpha"]

        params = {"actor": actor, "q1": critics["q1"], "q2": critics["q2"], "log_alpha": log_alpha}
        target_params = soft_update(target_params, critics, config.tau)
        opt_state = {"actor": opt_actor, "critic": opt_critic, "alpha": opt_alpha}
        stats = {
            "q_loss": q_loss,
            "actor_loss": pi_loss,
            "alpha_loss": a_loss,
            "alpha": jnp.mean(alpha),
            "entropy": ppo.masked_mean(entropy, weight),
            "q_value": q_mean,
        }
        return (params, target_params, opt_state), stats

    def train_phase(carry, key, buffer):
        """`updates_per_step` SAC steps on fresh batches once the buffer holds enough transitions."""
        carry, stats, ready = trainer.gated_updates(
            carry,
            key,
            buffer,
            config.min_buffer_fill,
            config.updates_per_step,
            lambda c, k: sac_step(c, replay_sample(buffer, k, config.batch_size)),
            SAC_STATS,
        )
        return carry, stats, ready.astype(jnp.float32)

    # ------------------------------------------------------------------ one iteration
    def update(state: MasacTrainerState) -> tuple[MasacTrainerState, dict]:
        key, k_roll = jax.random.split(state.key)

        def step(carry, step_key):
            env_state, obs, mask, learner, buffer = carry
            k_act, k_env, k_sac = jax.random.split(step_key, 3)
            action, _ = policy.act(k_act, learner[0], obs, mask)
            next_obs, env_state, reward, terminated, truncated, info = vec.step(k_env, env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            next_mask = vec.action_mask(env_state, env_params)
            active = info["active"] if "active" in info else jnp.ones_like(reward, bool)
            # a trip that ends within the episode is terminal for its agent (its Q after the trip is never trained)
            trip_end = active & ~next_active(env_state) & ~done[:, None]
            item = ReplayItem(
                obs,
                mask,
                action,
                reward * config.reward_scale,
                info["final_observation"],
                jnp.where(done[:, None, None], mask, next_mask),
                active,
                terminated[:, None] | trip_end,
            )
            buffer = replay_add(buffer, item)
            learner, stats, ran = train_phase(learner, k_sac, buffer)
            log = {
                **ppo.episode_log(reward, info, log_metrics),
                **stats,
                "ran": ran,
                "sampled_masked": jnp.any(~jnp.take_along_axis(mask, action[..., None], -1)[..., 0] & active),
            }
            return (env_state, next_obs, next_mask, learner, buffer), log

        mask = vec.action_mask(state.env_state, env_params)
        carry = (state.env_state, state.obs, mask, (state.params, state.target_params, state.opt_state), state.buffer)
        (env_state, obs, _, learner, buffer), log = jax.lax.scan(
            step, carry, jax.random.split(k_roll, config.num_steps)
        )
        ran = log["ran"]
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            **{name: ppo.masked_mean(log[name], ran) for name in SAC_STATS},  # over the steps that trained
            "gradient_steps": jnp.sum(ran).astype(jnp.int32) * config.updates_per_step,
            "buffer_size": buffer.size,
            "sampled_masked_action": jnp.any(log["sampled_masked"]),
        }
        params, target_params, opt_state = learner
        return MasacTrainerState(
            params, target_params, opt_state, buffer, env_state, obs, key, state.iteration + 1
        ), metrics

    return Components(policy, init, sac_step, update)


def make_trainer(
    env: Environment, config: MasacConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> Trainer:
    """Build the pure functions of a MASAC run on a multi-agent env with a Discrete(M) action per agent and an
    `action_mask` [N, M] (TwinRouting-v0)."""
    return trainer.assemble(Trainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "LOG_METRICS",
    "Components",
    "MasacConfig",
    "MasacTrainerState",
    "Policy",
    "ReplayItem",
    "TargetEntropy",
    "make_components",
    "make_train",
    "make_trainer",
    "masked_soft_terms",
]
