"""HGDM (spec 000 §7.4, Kang et al.): a GDM-based soft actor-critic with ONE diffusion actor whose continuous
latent covers both decision types of CrossRealityPrivacy-v0, twin Q critics, a replay buffer and off-policy
updates, the whole training one jitted function (PureJaxRL pattern).

    trainer = make_trainer(env, HgdmConfig())               # env = CrossRealityPrivacy-v0
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds
    policy = trainer.make_eval_policy(state)                # policy(key, env_state, env_params) -> action

Pieces ([P] spec / paper, [C] chosen here where the spec is silent):

* State s_t: the env's observation [M, 10] flattened to [10 M] (one centralised policy, as LHDPPO, §9-B10).
* Latent action a in (-1, 1)^A, A = 2M + M(N+1) [P §7.4]: a[:2M] are the perturbation coordinates
  (u_r, u_theta) of every AV (layout [u_r1, u_theta1, u_r2, ...], executed as `action["perturbation"]` [M, 2];
  the env clips and maps u -> radius / angle itself), a[2M:] reshaped [M, N+1] are per-AV server scores and the
  executed server is e_m = argmax of AV m's segment [P] (`latent_to_action`).
* Actor [C, the GDMOPT / "diffusion SAC" recipe]: the `ContinuousDiffusionActor` of `vmjax.agents.diffusion`
  (VP schedule, U = `denoising_steps` mean-only steps, its denoiser MLP) produces x_0 = the *pre-tanh mean*
  mu(s, x_U); its state-independent learned log-std vector sigma gives Gaussian exploration noise around it, and
  a tanh squash keeps the latent in (-1, 1):   a = tanh(mu(s, x_U) + sigma z),  z ~ N(0, I).
  log pi(a | s, x_U) is the tanh-Gaussian density with its Jacobian, which SAC's entropy term needs. Why this
  choice: the chain alone (mean-only, eq. 25) has no tractable density; a Gaussian around its output gives an
  exact conditional log-prob for the SAC entropy bonus and the temperature update, stays one continuous latent
  for both decision types (the discrete part explores because its scores are noisy, so its argmax varies), and
  keeps the reparameterised path a(params) through *all* U denoising steps for the actor loss. An entropy term
  on the softmax of the discrete segments was rejected: it would regularise scores the env never samples from.
  The chain start x_U ~ N(0, `start_noise_scale`^2 I) is drawn afresh at every use (off-policy: nothing needs to
  be re-scored later); the logged entropy -log pi(a | s, x_U) conditions on it, a lower bound of the marginal
  entropy. `start_noise_scale` = 0.02 and `head_gain` = 0.01 avoid the saturated start described in
  `vmjax.agents.lhdppo` (x_U / sqrt(abar_U) = 12.5 x_U otherwise) [C]. `step_noise` = "beta"/"posterior" gives
  the stochastic reverse chain instead (GDMOPT samples with per-step noise; then its z_u are drawn too); its
  per-step noise is not scaled by `start_noise_scale`, so with the default schedule most pre-tanh means start
  far outside [-1, 1] (tanh saturated): an option, not the default.
* Critics: twin Q_i(s, a) = `networks.Critic` MLP on concat[s, a] (a = the latent, not the executed one-hot: the
  argmax is a deterministic part of the environment seen from the latent, and only the latent gives the actor a
  gradient) [C]; target critics by Polyak averaging (tau) [C].
* SAC losses on a uniform replay batch (s, a, r, s', terminated) [C, the standard SAC of Haarnoja et al. 2018]:

      a' ~ pi(. | s'),   y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a' | s'))
      L_Q     = mean (Q_1(s, a) - y)^2 + mean (Q_2(s, a) - y)^2
      L_pi    = mean (alpha log pi(a~ | s) - min_i Q_i(s, a~)),   a~ = tanh(mu + sigma z) reparameterised
      L_alpha = -mean log alpha (log pi(a~ | s) + H_target),     H_target = `target_entropy_per_dim` x A

  in that order (the actor uses the just-updated critics), then the Polyak step of the target critics. s' is the
  state the step reached before any auto-reset (`info["final_observation"]`), so time-limit truncation
  bootstraps and only a true termination masks (the env only truncates, A5).
* Reward: the scalar per world and step of `lhdppo` (`reward_mode`: "manual" = info["reward_manual_mean"],
  eq. (20) by default for a baseline [P §7]; "llm" = eq. (21); "env" = the mean of the env's own reward).
* Iteration: `num_steps` vectorised env steps over `num_envs` worlds with the stochastic actor, all T x E world
  transitions written to the replay ring buffer (`vmjax.agents.replay`), then `updates_per_iteration` SAC
  gradient steps on uniform batches once the buffer holds max(batch_size, learning_starts) transitions (a
  `lax.cond`; before that no parameter changes) [C]. No uniform-random warm-up actions [C]: the initial
  actor already explores (sigma = exp(-0.5) around mu ~ 0).
* Evaluation (`make_eval_policy`): deterministic a = tanh(mu(s, x_U)) (x_U still drawn), else a sample.

Sanity run (`python -m bench.hgdm_sanity --iterations 50`, default env M = 5, N = 20, A = 115, 16 worlds x 50
steps + 50 gradient steps of batch 256 per iteration, key 0; a 2-core CPU shared with other jobs, load ~7):
compile 59 s, 5.7 s per iteration. Held-out evaluation (16 x 50 slots, key 123), mean eq. (20) utility per AV and
slot: initial deterministic 0.048 / sampled -0.257; after 50 iterations (40k env steps) deterministic 0.108 /
sampled -0.021 (Geo-I -1.53, no perturbation -1.75). The soft Q grows with the entropy bonus (q_value 2 -> 23,
alpha 0.05 -> 0.026) and the tanh-Gaussian entropy falls (50 -> -17 nats, still above H_target = -115) as the
actor pushes the server scores apart. 40k steps is < 1% of the 5e6-step budget: a smoke test, not a result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from vmjax.agents import networks, ppo, trainer
from vmjax.agents.diffusion import ChainNoise, ContinuousDiffusionActor, DiffusionConfig, StepNoise
from vmjax.agents.lhdppo import LOG_METRICS, LhdppoTrainer, RewardMode, step_log, training_reward
from vmjax.agents.replay import ReplayBuffer, replay_add, replay_init, replay_sample, soft_update
from vmjax.agents.trainer import OffPolicyTrainerState
from vmjax.core import validation
from vmjax.core.env import Environment

PyTree = Any
SAC_STATS = ("q_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_value", "target_q", "log_std_mean")


# ====================================================================== configuration
@dataclasses.dataclass(frozen=True)
class HgdmConfig:
    """Hyper-parameters of HGDM (spec 000 §7.4; [P] spec value, [R] spec recommendation, [C] chosen here)."""

    num_envs: int = 16  # parallel worlds (as LHDPPO) [C]
    num_steps: int = 50  # vectorised env steps per iteration (one episode of T = 50 per world) [C]
    num_iterations: int = 6250  # 6250 x 16 x 50 = 5e6 env steps, the LHDPPO budget [R §7: same steps]
    buffer_size: int = 100_000  # replay capacity in world transitions [C]
    batch_size: int = 256  # world transitions per gradient step [C, the spec's batch size]
    updates_per_iteration: int = 50  # SAC gradient steps per iteration (one per vectorised env step) [C]
    learning_starts: int = 1000  # updates begin once the buffer holds max(batch_size, this) transitions [C]
    gamma: float = 0.95  # [P, as LHDPPO]
    tau: float = 0.005  # Polyak rate of the target critics [C]
    actor_lr: float = 1e-4  # Adam lr of the diffusion actor and its log-std [P, the diffusion-actor lr]
    critic_lr: float = 3e-4  # Adam lr of the twin critics [C]
    alpha_lr: float = 3e-4  # Adam lr of log alpha [C]
    init_alpha: float = 0.05  # initial temperature (GDMOPT's fixed alpha) [C]
    autotune_alpha: bool = True  # learn alpha towards H_target; False keeps init_alpha [C]
    target_entropy_per_dim: float = -1.0  # H_target = this x A (SAC's -dim(A)) [C]
    max_grad_norm: float = 10.0  # global-norm clip of the actor and critic gradients [C]
    reward_mode: RewardMode = "manual"  # "manual": eq. (20) [P §7, baselines use R_man] | "llm": eq. (21) | "env"
    reward_scale: float = 1.0  # train on r x this (the raw rewards are logged)
    # the diffusion actor (§5.2 pieces, shared with LHDPPO)
    denoising_steps: int = 5  # U [P]
    beta_min: float = 0.1  # VP schedule b_min [R]
    beta_max: float = 10.0  # VP schedule b_max [R]
    step_noise: StepNoise = "none"  # "none": mean-only chain [P §5.2] | "beta" | "posterior" (stochastic chain)
    time_embed_dim: int = 16  # [R]
    time_hidden: int = 32  # [R]
    state_hidden: tuple[int, ...] = (256, 256)  # denoiser state encoder [R]
    trunk_hidden: tuple[int, ...] = (256, 256)  # denoiser trunk [R]
    head_gain: float = 0.01  # orthogonal gain of the epsilon head [C, see lhdppo's docstring]
    start_noise_scale: float = 0.02  # x_U ~ N(0, scale^2 I) [C]; 1.0 = the plain N(0, I) start
    mean_clip: float | None = None  # clamp of the pre-tanh mean x_0 (None: unclamped, tanh bounds a) [C]
    log_std_init: float = -0.5  # [C, as LHDPPO's continuous actor]
    log_std_min: float = -5.0  # [C]
    log_std_max: float = 1.0  # [C]
    critic_hidden: tuple[int, ...] = (256, 256)  # twin Q MLPs [C, as LHDPPO's critic]
    critic_activation: networks.Activation = "relu"  # [C]
    deterministic_eval: bool = True  # evaluation: a = tanh(mu), else a sample

    def __post_init__(self):
        owner = "HgdmConfig"
        for name in ("num_envs", "num_steps", "num_iterations", "buffer_size", "batch_size", "denoising_steps"):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("updates_per_iteration", "learning_starts"):
            validation.check_int_at_least(owner, name, getattr(self, name), 0)
        for name in ("gamma", "tau"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in (
            "tau",
            "actor_lr",
            "critic_lr",
            "alpha_lr",
            "init_alpha",
            "max_grad_norm",
            "reward_scale",
            "head_gain",
        ):
            validation.check_positive(owner, name, getattr(self, name))
        validation.check_non_negative(owner, "start_noise_scale", self.start_noise_scale)
        validation.check_finite(owner, "target_entropy_per_dim", self.target_entropy_per_dim)
        validation.check_literal_fields(self)
        validation.check_layer_widths(owner, "critic_hidden", self.critic_hidden)
        if self.mean_clip is not None:
            validation.check_positive(owner, "mean_clip", self.mean_clip)
        per_iteration = self.num_envs * self.num_steps
        trainer.check_replay_capacity(
            self, owner, per_iteration, f"num_envs * num_steps ({per_iteration}), the transitions written per iteration"
        )
        # the diffusion fields are checked by DiffusionConfig / the actor, re-raised under this owner's name
        try:
            self.actor(1, 2)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{owner}: {err}") from None

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def min_buffer_fill(self) -> int:
        return max(self.batch_size, self.learning_starts)

    def actor(self, num_agents: int, num_choices: int) -> ContinuousDiffusionActor:
        """The one diffusion actor over the latent of A = 2M + M(N+1) dims."""
        diffusion = DiffusionConfig(
            num_steps=self.denoising_steps,
            beta_min=self.beta_min,
            beta_max=self.beta_max,
            step_noise=self.step_noise,
            x_clip=self.mean_clip,
            time_embed_dim=self.time_embed_dim,
            time_hidden=self.time_hidden,
            state_hidden=self.state_hidden,
            trunk_hidden=self.trunk_hidden,
            head_gain=self.head_gain,
        )
        return ContinuousDiffusionActor(
            diffusion, latent_dim(num_agents, num_choices), self.log_std_init, self.log_std_min, self.log_std_max
        )


# ====================================================================== latent <-> env action
def latent_dim(num_agents: int, num_choices: int) -> int:
    """A = 2M perturbation coordinates + M (N+1) server scores [P §7.4]."""
    return 2 * num_agents + num_agents * num_choices


def latent_to_action(latent: jax.Array, num_agents: int, num_choices: int) -> dict:
    """The executed hybrid action of a latent [..., A]: {"perturbation": clip(a[:2M], -1, 1) as [..., M, 2],
    "target": argmax_j a[2M:].reshape(M, N+1)[m, j] as int32 [..., M]} (the env maps u -> radius / angle)."""
    m = num_agents
    batch = latent.shape[:-1]
    perturbation = jnp.clip(latent[..., : 2 * m], -1.0, 1.0).reshape(batch + (m, 2))
    scores = latent[..., 2 * m :].reshape(batch + (m, num_choices))
    return {"target": jnp.argmax(scores, axis=-1).astype(jnp.int32), "perturbation": perturbation}


def tanh_log_det_jacobian(pre_tanh: jax.Array) -> jax.Array:
    """sum_j log(1 - tanh(u_j)^2) [...], stably as 2 (log 2 - u - softplus(-2u))."""
    return jnp.sum(2.0 * (math.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh)), axis=-1)


def soft_td_target(reward, terminated, next_q1, next_q2, next_log_prob, alpha, gamma: float) -> jax.Array:
    """y = r + gamma (1 - terminated) (min(Q'_1, Q'_2) - alpha log pi(a' | s')) (the soft Bellman target)."""
    not_terminal = 1.0 - terminated.astype(jnp.float32)
    return reward + gamma * not_terminal * (jnp.minimum(next_q1, next_q2) - alpha * next_log_prob)


# ====================================================================== policy and critics
class HgdmPolicy(NamedTuple):
    """The diffusion actor over the latent and the twin critics' network (shared module, two parameter sets)."""

    actor: ContinuousDiffusionActor
    critic: networks.Critic
    num_agents: int
    num_choices: int
    start_noise_scale: float

    @property
    def latent_dim(self) -> int:
        return latent_dim(self.num_agents, self.num_choices)

    @staticmethod
    def state(obs: jax.Array) -> jax.Array:
        """s_t = the env's per-AV observations [..., M, D] flattened to [..., M D]."""
        return obs.reshape(obs.shape[:-2] + (-1,))

    def sample_noise(self, key: jax.Array, batch_shape: tuple[int, ...]) -> ChainNoise:
        """x_U ~ N(0, start_noise_scale^2 I) (and the unscaled per-step noise of a stochastic chain)."""
        noise = self.actor.sample_noise(key, batch_shape)
        return ChainNoise(noise.x_T * self.start_noise_scale, noise.steps)

    def sample(
        self,
        key: jax.Array,
        actor_params: dict,
        state: jax.Array,
        deterministic: bool = False,
        noise: ChainNoise | None = None,
    ):
        """a = tanh(mu(s, x_U) + sigma z) [..., A] and log pi(a | s, x_U) [...] (tanh-Gaussian density). With
        `deterministic`, a = tanh(mu). Differentiable in `actor_params` through every denoising step."""
        k_chain, k_z = jax.random.split(key)
        noise = self.sample_noise(k_chain, state.shape[:-1]) if noise is None else noise
        dist = self.actor.distribution(actor_params, state, noise)
        pre_tanh = dist.mode() if deterministic else dist.sample(seed=k_z)
        log_prob = dist.log_prob(pre_tanh) - tanh_log_det_jacobian(pre_tanh)
        return jnp.tanh(pre_tanh), log_prob

    def q_value(self, q_params: PyTree, state: jax.Array, latent: jax.Array) -> jax.Array:
        return self.critic.apply(q_params, jnp.concatenate([state, latent], axis=-1))

    def env_action(self, latent: jax.Array) -> dict:
        return latent_to_action(latent, self.num_agents, self.num_choices)

    def act(self, key: jax.Array, params: dict, state: jax.Array, deterministic: bool = False):
        """(env action, latent) for states [..., M D]."""
        latent, _ = self.sample(key, params["actor"], state, deterministic)
        return self.env_action(latent), latent


# ====================================================================== trainer state and replay item
class ReplayItem(NamedTuple):
    """One world transition."""

    state: jax.Array  # [M D] s_t
    latent: jax.Array  # [A] the executed latent a_t
    reward: jax.Array  # () training reward (mean over AVs, scaled)
    next_state: jax.Array  # [M D] the state the step reached (pre-reset)
    terminated: jax.Array  # () bool: no bootstrap


HgdmTrainerState = OffPolicyTrainerState  # params {"actor": {"denoiser", "log_std"}, "q1", "q2", "log_alpha": ()};
# target_params {"q1", "q2"}; opt_state {"actor", "critic", "alpha"}; buffer of ReplayItem; a checkpoint


class HgdmTrainer(LhdppoTrainer):
    """`trainer.Trainer` (init / update / run / train) with the evaluation policy of `LhdppoTrainer`
    (`policy.act(key, params, state, deterministic)`): deterministic a = tanh(mu(s, x_U)), else a sample."""


class Components(NamedTuple):
    """The pure pieces of a run (tests reach the target, the losses and the SAC step through these)."""

    policy: HgdmPolicy
    init: Callable
    init_params: Callable  # key -> (params, target_params, opt_state), no env call
    rollout: Callable  # (state, key) -> (env_state, obs, items [T, E], log)
    td_target: Callable  # (params, target_params, batch, key) -> y [B]
    actor_loss: Callable  # (actor_params, critics, log_alpha, state [B, S], key) -> (loss, log_prob [B])
    sac_step: Callable  # ((params, target_params, opt_state), (batch, key)) -> (carry, stats)
    train_phase: Callable  # (learner, buffer, key) -> (learner, mean stats, ready): the gated gradient steps
    update: Callable


def make_policy(env: Environment, config: HgdmConfig, env_params: PyTree) -> HgdmPolicy:
    num_choices = env.action_space(env_params).spaces["target"].n
    return HgdmPolicy(
        actor=config.actor(env.num_agents, num_choices),
        critic=networks.Critic(tuple(int(h) for h in config.critic_hidden), config.critic_activation),
        num_agents=env.num_agents,
        num_choices=num_choices,
        start_noise_scale=float(config.start_noise_scale),
    )


def make_components(
    env: Environment, config: HgdmConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    policy = make_policy(env, config, env_params)
    optimizers = {
        "actor": ppo.clipped_adam(config.actor_lr, config.max_grad_norm),
        "critic": ppo.clipped_adam(config.critic_lr, config.max_grad_norm),
        "alpha": optax.adam(config.alpha_lr),
    }
    target_entropy = config.target_entropy_per_dim * policy.latent_dim

    def init_params(key) -> tuple[dict, dict, dict]:
        """(params, target_params, opt_state) for the env's state size (no env call): target critics = online."""
        k_actor, k_q1, k_q2 = jax.random.split(key, 3)
        s = jnp.zeros((math.prod(env.observation_space(env_params).shape),), jnp.float32)
        sa = jnp.zeros((s.shape[0] + policy.latent_dim,), jnp.float32)
        params = {
            "actor": policy.actor.init(k_actor, s),
            "q1": policy.critic.init(k_q1, sa),
            "q2": policy.critic.init(k_q2, sa),
            "log_alpha": jnp.float32(math.log(config.init_alpha)),
        }
        critics = {"q1": params["q1"], "q2": params["q2"]}
        opt_state = {
            "actor": optimizers["actor"].init(params["actor"]),
            "critic": optimizers["critic"].init(critics),
            "alpha": optimizers["alpha"].init(params["log_alpha"]),
        }
        return params, critics, opt_state

    def init(key) -> HgdmTrainerState:
        k_env, k_params, k_run = jax.random.split(key, 3)
        obs, env_state = vec.reset(k_env, env_params)
        params, target_params, opt_state = init_params(k_params)
        s = policy.state(obs[0])
        example = ReplayItem(s, jnp.zeros((policy.latent_dim,), jnp.float32), jnp.float32(0.0), s, jnp.bool_(False))
        return HgdmTrainerState(
            params,
            target_params,
            opt_state,
            replay_init(example, config.buffer_size),
            env_state,
            obs,
            k_run,
            jnp.int32(0),
        )

    # ------------------------------------------------------------------ rollout
    def rollout(state: HgdmTrainerState, key):
        def step(carry, step_key):
            env_state, obs = carry
            k_act, k_env = jax.random.split(step_key)
            s = policy.state(obs)
            action, latent = policy.act(k_act, state.params, s)
            next_obs, env_state, reward, terminated, _, info = vec.step(k_env, env_state, action, env_params)
            r = training_reward("HgdmConfig", config.reward_mode, reward, info)
            item = ReplayItem(s, latent, r * config.reward_scale, policy.state(info["final_observation"]), terminated)
            log = step_log(reward, info, log_metrics, r)
            return (env_state, next_obs), (item, log)

        keys = jax.random.split(key, config.num_steps)
        (env_state, obs), (items, log) = jax.lax.scan(step, (state.env_state, state.obs), keys)
        return env_state, obs, items, log

    # ------------------------------------------------------------------ SAC
    def td_target(params, target_params, batch: ReplayItem, key) -> jax.Array:
        next_latent, next_log_prob = policy.sample(key, params["actor"], batch.next_state)
        y = soft_td_target(
            batch.reward,
            batch.terminated,
            policy.q_value(target_params["q1"], batch.next_state, next_latent),
            policy.q_value(target_params["q2"], batch.next_state, next_latent),
            next_log_prob,
            jnp.exp(params["log_alpha"]),
            config.gamma,
        )
        return jax.lax.stop_gradient(y)

    def actor_loss(actor_params, critics, log_alpha, state, key, noise: ChainNoise | None = None):
        """L_pi = mean(alpha log pi(a~ | s) - min_i Q_i(s, a~)) with a~ reparameterised through every denoising
        step (alpha held fixed here); `noise` overrides the chain noise drawn from `key`. -> (L_pi, log pi [B])."""
        latent, log_prob = policy.sample(key, actor_params, state, noise=noise)
        q = jnp.minimum(policy.q_value(critics["q1"], state, latent), policy.q_value(critics["q2"], state, latent))
        return jnp.mean(jax.lax.stop_gradient(jnp.exp(log_alpha)) * log_prob - q), log_prob

    def sac_step(carry, inputs):
        (params, target_params, opt_state), (batch, key) = carry, inputs
        k_target, k_actor = jax.random.split(key)
        y = td_target(params, target_params, batch, k_target)

        def critic_loss(critics):
            q1 = policy.q_value(critics["q1"], batch.state, batch.latent)
            q2 = policy.q_value(critics["q2"], batch.state, batch.latent)
            return jnp.mean(jnp.square(q1 - y)) + jnp.mean(jnp.square(q2 - y)), q1

        critics = {"q1": params["q1"], "q2": params["q2"]}
        (q_loss, q1), grads = jax.value_and_grad(critic_loss, has_aux=True)(critics)
        updates, opt_critic = optimizers["critic"].update(grads, opt_state["critic"], critics)
        critics = optax.apply_updates(critics, updates)

        frozen = jax.lax.stop_gradient(critics)
        (pi_loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            params["actor"], frozen, params["log_alpha"], batch.state, k_actor
        )
        updates, opt_actor = optimizers["actor"].update(grads, opt_state["actor"], params["actor"])
        actor = optax.apply_updates(params["actor"], updates)

        gap = jax.lax.stop_gradient(log_prob + target_entropy)
        a_loss, grad_alpha = jax.value_and_grad(lambda log_alpha: -jnp.mean(log_alpha * gap))(params["log_alpha"])
        if config.autotune_alpha:
            updates, opt_alpha = optimizers["alpha"].update(grad_alpha, opt_state["alpha"], params["log_alpha"])
            log_alpha = optax.apply_updates(params["log_alpha"], updates)
        else:
            opt_alpha, log_alpha = opt_state["alpha"], params["log_alpha"]

        stats = {
            "q_loss": q_loss,
            "actor_loss": pi_loss,
            "alpha_loss": a_loss,
            "alpha": jnp.exp(params["log_alpha"]),
            "entropy": -jnp.mean(log_prob),
            "q_value": jnp.mean(q1),
            "target_q": jnp.mean(y),
            "log_std_mean": jnp.mean(policy.actor.log_std(params["actor"])),
        }
        params = {"actor": actor, "q1": critics["q1"], "q2": critics["q2"], "log_alpha": log_alpha}
        target_params = soft_update(target_params, critics, config.tau)
        opt_state = {"actor": opt_actor, "critic": opt_critic, "alpha": opt_alpha}
        return (params, target_params, opt_state), stats

    def train_phase(learner, buffer: ReplayBuffer, key):
        def one(carry, k):
            k_batch, k_step = jax.random.split(k)
            return sac_step(carry, (replay_sample(buffer, k_batch, config.batch_size), k_step))

        return trainer.gated_updates(
            learner, key, buffer, config.min_buffer_fill, config.updates_per_iteration, one, SAC_STATS
        )

    # ------------------------------------------------------------------ one iteration
    def update(state: HgdmTrainerState) -> tuple[HgdmTrainerState, dict]:
        key, k_roll, k_train = jax.random.split(state.key, 3)
        env_state, obs, items, log = rollout(state, k_roll)
        buffer = replay_add(state.buffer, jax.tree.map(ppo.flatten_time, items))
        learner = (state.params, state.target_params, state.opt_state)
        (params, target_params, opt_state), stats, ready = train_phase(learner, buffer, k_train)
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            "mean_train_reward": jnp.mean(log["train_reward"]),
            **{name: jnp.mean(v) for name, v in log.items() if name.startswith("rollout_")},
            **stats,
            "gradient_steps": ready.astype(jnp.int32) * config.updates_per_iteration,
            "buffer_size": buffer.size,
        }
        new_state = HgdmTrainerState(params, target_params, opt_state, buffer, env_state, obs, key, state.iteration + 1)
        return new_state, metrics

    return Components(policy, init, init_params, rollout, td_target, actor_loss, sac_step, train_phase, update)


def make_trainer(
    env: Environment, config: HgdmConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> HgdmTrainer:
    """Build the pure functions of an HGDM run on CrossRealityPrivacy-v0 (hybrid {"target", "perturbation"}
    action). `log_metrics`: info keys whose per-episode means are logged."""
    return trainer.assemble(HgdmTrainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "SAC_STATS",
    "Components",
    "HgdmConfig",
    "HgdmPolicy",
    "HgdmTrainer",
    "HgdmTrainerState",
    "ReplayItem",
    "latent_dim",
    "latent_to_action",
    "make_components",
    "make_policy",
    "make_train",
    "make_trainer",
    "soft_td_target",
    "tanh_log_det_jacobian",
]
