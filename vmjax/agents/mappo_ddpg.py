"""MAPPO-DDPG (spec 003 §8): the discrete target RSU learned by MAPPO, the continuous fraction alpha by MADDPG.

    trainer = make_trainer(env, MappoDdpgConfig())
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds

Discrete branch (MAPPO, on-policy): a masked categorical actor pi^d_v(a^d | o_v) and a centralized state-value
critic V^d(s), trained after each rollout with `update_epochs` epochs of shuffled minibatches of the PPO clipped
surrogate, GAE advantages (bootstrapping from the final, pre-reset observation at truncation) and the MAPPO
clipped value loss: the discrete half of `hybrid_mappo`, with the same modules and `ppo` math.

Continuous branch (MADDPG, off-policy, CTDE): a deterministic actor mu_v(o_v) = sigmoid(f_v(o_v)) per agent, one
centralized critic Q(s_v, a^c_1..N, onehot a^d_1..N) shared by the agents (s_v = the world state of agent v, which
carries its one-hot id, so Q regresses agent v's own reward stream), target copies of both with soft updates, and a
fixed-size circular replay buffer of *joint* transitions (one world step, all N agents: the centralized critic
needs every agent's action) held in the trainer state. Exploration: alpha = clip(mu(o) + sigma_t eps, 0, 1) with
sigma_t decaying linearly over training. Inside the rollout `lax.scan`, after every vectorized env step (which writes
`num_envs` transitions) `ddpg_updates_per_step` DDPG gradient steps run, once the buffer holds at least one batch:

    y_v    = r_v + gamma (1 - terminated) Q'(s'_v, mu'(o'_1..N), onehot a^d'_1..N)
    L_Q    = E[(Q(s_v, a^c, onehot a^d) - y_v)^2]
    L_mu   = -E[Q(s_v, (a^c_1, .., mu_v(o_v), .., a^c_N), onehot a^d)] + reg E[f_v(o_v)^2]   (MADDPG: only agent v's
             own action is replaced by its actor's, the others come from the buffer)
    theta' <- tau theta + (1 - tau) theta'

s' is built from `info["final_observation"]` (the observation the step reached, before any auto-reset). The
discrete actions a^d' in the target are those the *current* discrete policy takes at o' (its mode by default,
`target_discrete="sample"` draws them), masked by the action mask of s'; see `ReplayItem.next_mask` for how that
mask is recorded. Rewards are r_v = -T_v times `reward_scale`, as in hybrid_mappo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vmjax.agents import distributions, networks, ppo, trainer
from vmjax.agents.replay import (
    ReplayBuffer,
    replay_add,
    replay_init,
    replay_sample,
    soft_update,
)
from vmjax.agents.trainer import OffPolicyTrainerState, Trainer
from vmjax.core import validation
from vmjax.core.env import Environment
from vmjax.core.wrappers import VecEnv

PyTree = Any
LOG_METRICS = ("total_latency_s",)
TargetDiscrete = Literal["mode", "sample"]  # MappoDdpgConfig.target_discrete
PPO_GROUPS = ("actor_d", "critic_d")
DDPG_GROUPS = ("actor_c", "critic_q")


@dataclasses.dataclass(frozen=True)
class MappoDdpgConfig:
    """Hyper-parameters of MAPPO-DDPG (spec 003 §8 and §6.3; [P] paper value, [C] recommended choice)."""

    # --- rollout and schedule
    num_envs: int = 20  # parallel worlds per rollout (as Hybrid-MAPPO) [C]
    num_steps: int = 100  # rollout steps per iteration (one episode of T_max = 100) [C]
    num_iterations: int = 500  # training iterations (rollout with DDPG steps + PPO update) [C]
    gamma: float = 0.95  # discount of both branches [P]
    reward_scale: float = 0.1  # both branches train on r / 10; the raw reward is logged [C]
    # --- discrete branch: MAPPO
    update_epochs: int = 10  # PPO epochs K per iteration [C]
    num_minibatches: int = 4  # PPO minibatches per epoch [C]
    gae_lambda: float = 0.95  # GAE / TD(lambda) decay [C]
    clip_eps: float = 0.2  # surrogate clip epsilon [P]
    value_clip_eps: float = 0.2  # MAPPO value clipping of V^d; 0 disables it [C]
    entropy_coef: float = 0.01  # entropy bonus of the discrete actor [C]
    actor_d_lr: float = 1e-4  # Adam learning rate of the discrete actor [C]
    critic_d_lr: float = 1e-4  # Adam learning rate of the V^d critic [C]
    anneal_lr: bool = False  # linear decay of the two PPO learning rates to 0 over training [C]
    max_grad_norm: float = 0.5  # global-norm gradient clipping of each PPO parameter group [C]
    normalize_advantages: bool = True  # per-minibatch advantage normalization [C]
    # --- continuous branch: MADDPG
    buffer_size: int = 20_000  # replay capacity in joint transitions (one world step, all agents) [C] (§8)
    batch_size: int = 256  # joint transitions per DDPG gradient step [C] (§8)
    learning_starts: int = 0  # DDPG steps begin once the buffer holds max(batch_size, this) transitions [C]
    ddpg_updates_per_step: int = 1  # DDPG gradient steps after each vectorized env step; 0 freezes mu [C] (§8)
    actor_c_lr: float = 1e-4  # Adam learning rate of the deterministic actors mu_v [C] (§8)
    critic_q_lr: float = 1e-3  # Adam learning rate of the centralized Q critic [C] (§8)
    tau: float = 0.01  # soft target update theta' <- tau theta + (1 - tau) theta' [C] (§8)
    noise_sigma_start: float = 0.1  # Gaussian exploration std on alpha at the start of training [C] (§8)
    noise_sigma_end: float = 0.01  # ... decayed linearly to this over num_iterations * num_steps steps [C] (§8)
    ddpg_max_grad_norm: float = 0.5  # global-norm gradient clipping of mu and Q (MADDPG reference) [C]
    actor_c_preactivation_reg: float = 1e-3  # weight of E[f(o)^2] on mu's pre-sigmoid output (MADDPG ref.) [C]
    target_discrete: TargetDiscrete = "mode"  # a^d' in the Q target: "mode" | "sample" of the current pi^d at o' [C]
    # --- networks and evaluation
    hidden_sizes: tuple[int, ...] = (64, 64)  # MLP widths of every actor and critic [C]
    activation: networks.Activation = "relu"  # "relu" | "tanh" [C]
    layer_norm: bool = False  # LayerNorm after each hidden layer [C]
    share_actor_params: bool = False  # one actor per branch for all agents (+ one-hot id), not per-agent [C]
    deterministic_eval: bool = True  # eval: argmax target and mu(o) (else sample + noise_sigma_end) [C]

    def __post_init__(self):
        owner = "MappoDdpgConfig"
        for name in (
            "num_envs",
            "num_steps",
            "num_iterations",
            "update_epochs",
            "num_minibatches",
            "buffer_size",
            "batch_size",
        ):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("learning_starts", "ddpg_updates_per_step"):
            validation.check_int_at_least(owner, name, getattr(self, name), 0)
        for name in ("gamma", "gae_lambda", "tau"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in (
            "clip_eps",
            "actor_d_lr",
            "critic_d_lr",
            "max_grad_norm",
            "reward_scale",
            "actor_c_lr",
            "critic_q_lr",
            "tau",
            "ddpg_max_grad_norm",
        ):
            validation.check_positive(owner, name, getattr(self, name))
        for name in (
            "value_clip_eps",
            "entropy_coef",
            "noise_sigma_start",
            "noise_sigma_end",
            "actor_c_preactivation_reg",
        ):
            validation.check_non_negative(owner, name, getattr(self, name))
        validation.check_literal_fields(self)
        validation.check_layer_widths(owner, "hidden_sizes", self.hidden_sizes)
        validation.check_minibatches(owner, self.num_minibatches, self.num_envs, self.num_steps)
        trainer.check_replay_capacity(
            self,
            owner,
            self.num_envs,
            f"num_envs ({self.num_envs}): one vectorized step writes num_envs transitions",
            "DDPG",
        )

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def min_buffer_fill(self) -> int:
        return max(self.batch_size, self.learning_starts)


class ReplayItem(NamedTuple):
    """One joint transition of one world (N agents)."""

    obs: jax.Array  # [N, D]
    mask: jax.Array  # [N, M] action mask the discrete action was sampled under
    target: jax.Array  # [N] a^d
    fraction: jax.Array  # [N] executed alpha = clip(mu + noise, 0, 1)
    reward: jax.Array  # [N] scaled reward
    next_obs: jax.Array  # [N, D] final (pre-reset) observation of the step
    next_mask: jax.Array  # [N, M] action mask of s': exact within an episode; on the step that ends an episode the
    # pre-reset state is not exposed by VecEnv, so the mask of s is used (the serving RSU rarely changes in one slot)
    terminated: jax.Array  # () true end: no bootstrap


# ---------------------------------------------------------------------- networks and policy
class DeterministicActor(nn.Module):
    """mu(o) before the sigmoid: an MLP with a small-gain scalar head (alpha = sigmoid(output), 0.5 at init)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = networks.MLP(self.hidden_sizes, self.activation, self.layer_norm)(obs)
        # networks.orthogonal, not nn.initializers.orthogonal: LAPACK QR inside a large jit can deadlock XLA CPU
        head = nn.Dense(1, kernel_init=networks.orthogonal(0.01), bias_init=nn.initializers.zeros)
        return head(x)[..., 0]


class Policy(NamedTuple):
    """The discrete MAPPO actor and the deterministic MADDPG actor (shared or per-agent parameters). `act` has the
    signature `trainer.Trainer.make_eval_policy` expects."""

    discrete: networks.DiscreteActor
    continuous: DeterministicActor
    shared: bool
    eval_sigma: float  # exploration std of a non-deterministic evaluation

    def discrete_distribution(self, actor_d: PyTree, obs: jax.Array, mask: jax.Array | None):
        return distributions.masked_categorical(networks.apply_agents(self.discrete, actor_d, obs, self.shared), mask)

    def mu(self, actor_c: PyTree, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(alpha = sigmoid(f(o)) [..., N], pre-activation f(o) [..., N])."""
        pre = networks.apply_agents(self.continuous, actor_c, obs, self.shared)
        return jax.nn.sigmoid(pre), pre

    def act(self, key, params: dict, obs, mask, deterministic: bool = False, sigma=None):
        """Hybrid action {"target" int32 [..., N], "fraction" [..., N]} plus log pi^d(target)."""
        dist_d = self.discrete_distribution(params["actor_d"], obs, mask)
        alpha, _ = self.mu(params["actor_c"], obs)
        if deterministic:
            target = dist_d.mode()
        else:
            k_d, k_c = jax.random.split(key)
            target = dist_d.sample(seed=k_d)
            sigma = self.eval_sigma if sigma is None else sigma
            alpha = jnp.clip(alpha + sigma * jax.random.normal(k_c, alpha.shape, alpha.dtype), 0.0, 1.0)
        action = {"target": target.astype(jnp.int32), "fraction": alpha}
        return action, dist_d.log_prob(target)


MappoDdpgTrainerState = OffPolicyTrainerState  # params {"actor_d", "critic_d", "actor_c", "critic_q"};
# target_params {"actor_c", "critic_q"}; buffer of ReplayItem [buffer_size, ...]; a checkpoint is this pytree


class Transition(NamedTuple):
    """What the PPO update of the discrete branch needs from a rollout step (leaves [E, ...])."""

    obs: jax.Array
    mask: jax.Array
    target: jax.Array
    log_prob_d: jax.Array
    value_d: jax.Array
    reward: jax.Array  # scaled
    terminated: jax.Array  # [E]
    done: jax.Array  # [E]
    final_obs: jax.Array


class Batch(NamedTuple):
    obs: jax.Array
    mask: jax.Array
    target: jax.Array
    log_prob_d: jax.Array
    value_d: jax.Array
    advantage_d: jax.Array
    return_d: jax.Array


DDPG_STATS = ("q_loss", "actor_loss_c", "q_value")


def _ddpg_optimizer(config: MappoDdpgConfig, learning_rate: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.ddpg_max_grad_norm), optax.adam(learning_rate))


class Components(NamedTuple):
    """The pieces `make_trainer` assembles, exposed for tests and analysis."""

    policy: Policy
    vec: VecEnv
    init: Callable
    rollout: Callable  # (state, key) -> (env_state, obs, (params, target_params, opt_state), buffer, traj, log)
    ddpg_step: Callable  # ((params, target_params, opt_state), key, buffer, actor_d) -> (carry, stats)
    loss_fn: Callable  # (params, batch) -> (loss, stats) of the discrete branch's PPO update
    ppo_update: Callable  # (params, opt_state, traj, key) -> (params, opt_state, stats)
    optimizers: dict  # parameter group -> optax transformation
    update: Callable


def make_components(
    env: Environment,
    config: MappoDdpgConfig,
    env_params: PyTree | None = None,
    log_metrics: tuple[str, ...] = LOG_METRICS,
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    num_targets = env.action_space(env_params).spaces["target"].n
    num_agents = env.num_agents
    widths = tuple(int(h) for h in config.hidden_sizes)
    arch = {"hidden_sizes": widths, "activation": config.activation, "layer_norm": config.layer_norm}
    policy = Policy(
        discrete=networks.DiscreteActor(num_targets, **arch),
        continuous=DeterministicActor(**arch),
        shared=config.share_actor_params,
        eval_sigma=config.noise_sigma_end,
    )
    critic_d = networks.Critic(**arch)
    critic_q = networks.Critic(**arch)  # the same scalar-output MLP, on [s_v, a^c_1..N, onehot a^d_1..N]
    optimizers = {
        "actor_d": ppo.annealed_adam(config, config.actor_d_lr),
        "critic_d": ppo.annealed_adam(config, config.critic_d_lr),
        "actor_c": _ddpg_optimizer(config, config.actor_c_lr),
        "critic_q": _ddpg_optimizer(config, config.critic_q_lr),
    }
    value_clip = config.value_clip_eps if config.value_clip_eps > 0 else None
    total_steps = config.num_iterations * config.num_steps
    eye = jnp.eye(num_agents, dtype=bool)

    def value_d(params_d, obs):
        return critic_d.apply(params_d, env.world_state_from_observation(obs))

    def q_value(params_q, world, fraction_rows, target):
        """Q(s_v, a^c rows, onehot a^d) -> [..., N]. world [..., N, S]; fraction_rows [..., N, N] (row v: the joint
        alpha vector seen by agent v's Q); target [..., N] int joint discrete action."""
        onehot = jax.nn.one_hot(target, num_targets, dtype=world.dtype).reshape(target.shape[:-1] + (-1,))
        onehot = jnp.broadcast_to(onehot[..., None, :], world.shape[:-1] + onehot.shape[-1:])
        return critic_q.apply(params_q, jnp.concatenate([world, fraction_rows, onehot], axis=-1))

    def rows(fraction):
        """[..., N] joint alpha -> [..., N, N], the same vector for every agent's Q."""
        return jnp.broadcast_to(fraction[..., None, :], fraction.shape + fraction.shape[-1:])

    def sigma_at(global_step):
        progress = jnp.clip(global_step / total_steps, 0.0, 1.0)
        return config.noise_sigma_start + (config.noise_sigma_end - config.noise_sigma_start) * progress

    def init(key) -> MappoDdpgTrainerState:
        k_env, k_d, k_c, k_vd, k_q, k_run = jax.random.split(key, 6)
        obs, env_state = vec.reset(k_env, env_params)
        agent_obs = obs[0]  # [N, D]
        actor_d = networks.init_agents(policy.discrete, k_d, agent_obs, config.share_actor_params)
        actor_c = networks.init_agents(policy.continuous, k_c, agent_obs, config.share_actor_params)
        world = env.world_state_from_observation(agent_obs)
        zeros_n = jnp.zeros((num_agents,), jnp.float32)
        q_sample = jnp.concatenate(
            [
                world,
                jnp.zeros((num_agents, num_agents), world.dtype),
                jnp.zeros((num_agents, num_agents * num_targets), world.dtype),
            ],
            axis=-1,
        )
        params = {
            "actor_d": actor_d,
            "critic_d": critic_d.init(k_vd, world),
            "actor_c": actor_c,
            "critic_q": critic_q.init(k_q, q_sample),
        }
        target_params = {name: params[name] for name in DDPG_GROUPS}
        opt_state = {name: optimizers[name].init(params[name]) for name in PPO_GROUPS + DDPG_GROUPS}
        mask = jnp.ones((num_agents, num_targets), bool)
        example = ReplayItem(
            agent_obs, mask, jnp.zeros((num_agents,), jnp.int32), zeros_n, zeros_n, agent_obs, mask, jnp.array(False)
        )
        buffer = replay_init(example, config.buffer_size)
        return MappoDdpgTrainerState(params, target_params, opt_state, buffer, env_state, obs, k_run, jnp.int32(0))

    # ------------------------------------------------------------------ MADDPG step
    def ddpg_step(carry, key, buffer, actor_d):
        params, target_params, opt_state = carry
        k_sample, k_next = jax.random.split(key)
        b: ReplayItem = replay_sample(buffer, k_sample, config.batch_size)
        world = env.world_state_from_observation(b.obs)
        next_world = env.world_state_from_observation(b.next_obs)
        next_alpha, _ = policy.mu(target_params["actor_c"], b.next_obs)
        next_dist = policy.discrete_distribution(actor_d, b.next_obs, b.next_mask)
        next_target = next_dist.mode() if config.target_discrete == "mode" else next_dist.sample(seed=k_next)
        next_q = q_value(target_params["critic_q"], next_world, rows(next_alpha), next_target)
        not_terminal = 1.0 - b.terminated.astype(jnp.float32)[:, None]
        y = jax.lax.stop_gradient(b.reward + config.gamma * not_terminal * next_q)

        def critic_loss(params_q):
            q = q_value(params_q, world, rows(b.fraction), b.target)
            return jnp.mean(jnp.square(q - y)), jnp.mean(q)

        (q_loss, q_mean), grads_q = jax.value_and_grad(critic_loss, has_aux=True)(params["critic_q"])
        updates, opt_q = optimizers["critic_q"].update(grads_q, opt_state["critic_q"], params["critic_q"])
        params_q = optax.apply_updates(params["critic_q"], updates)

        def actor_loss(params_c):  # against the critic just updated (critic step first, then actor)
            alpha, pre = policy.mu(params_c, b.obs)
            # row v: the buffer's joint alpha with agent v's own entry replaced by mu_v(o_v) (MADDPG)
            fraction_rows = jnp.where(eye, alpha[:, None, :], b.fraction[:, None, :])
            q = q_value(params_q, world, fraction_rows, b.target)
            return -jnp.mean(q) + config.actor_c_preactivation_reg * jnp.mean(jnp.square(pre))

        actor_loss_c, grads_c = jax.value_and_grad(actor_loss)(params["actor_c"])
        updates, opt_c = optimizers["actor_c"].update(grads_c, opt_state["actor_c"], params["actor_c"])
        params_c = optax.apply_updates(params["actor_c"], updates)

        params = dict(params, actor_c=params_c, critic_q=params_q)
        online = {name: params[name] for name in DDPG_GROUPS}
        target_params = soft_update(target_params, online, config.tau)
        opt_state = dict(opt_state, actor_c=opt_c, critic_q=opt_q)
        stats = {"q_loss": q_loss, "actor_loss_c": actor_loss_c, "q_value": q_mean}
        return (params, target_params, opt_state), stats

    def ddpg_phase(carry, key, buffer, actor_d):
        """`ddpg_updates_per_step` DDPG steps if the buffer holds enough transitions, else nothing."""
        carry, stats, ready = trainer.gated_updates(
            carry,
            key,
            buffer,
            config.min_buffer_fill,
            config.ddpg_updates_per_step,
            lambda c, k: ddpg_step(c, k, buffer, actor_d),
            DDPG_STATS,
        )
        return carry, stats, ready.astype(jnp.float32)

    # ------------------------------------------------------------------ rollout
    def rollout(state: MappoDdpgTrainerState, key):
        actor_d, params_critic_d = state.params["actor_d"], state.params["critic_d"]

        def step(carry, xs):
            env_state, obs, mask, ddpg, buffer = carry
            step_key, t = xs
            k_act, k_env, k_ddpg = jax.random.split(step_key, 3)
            params = ddpg[0]
            sigma = sigma_at(state.iteration * config.num_steps + t)
            action, log_prob_d = policy.act(k_act, params, obs, mask, False, sigma)
            value = value_d(params_critic_d, obs)
            next_obs, env_state, reward, terminated, truncated, info = vec.step(k_env, env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            next_mask = vec.action_mask(env_state, env_params)
            final_obs = info["final_observation"]
            scaled = reward * config.reward_scale
            item = ReplayItem(
                obs,
                mask,
                action["target"],
                action["fraction"],
                scaled,
                final_obs,
                jnp.where(done[:, None, None], mask, next_mask),
                terminated,
            )
            buffer = replay_add(buffer, item)
            ddpg, stats, ran = ddpg_phase(ddpg, k_ddpg, buffer, actor_d)
            transition = Transition(obs, mask, action["target"], log_prob_d, value, scaled, terminated, done, final_obs)
            log = {
                **ppo.episode_log(reward, info, log_metrics),
                "fraction": jnp.mean(action["fraction"]),
                "sigma": sigma,
                "ddpg_ran": ran,
                **stats,
            }
            return (env_state, next_obs, next_mask, ddpg, buffer), (transition, log)

        keys = jax.random.split(key, config.num_steps)
        steps = jnp.arange(config.num_steps, dtype=jnp.int32)
        mask = vec.action_mask(state.env_state, env_params)
        carry = (state.env_state, state.obs, mask, (state.params, state.target_params, state.opt_state), state.buffer)
        (env_state, obs, _, ddpg, buffer), (traj, log) = jax.lax.scan(step, carry, (keys, steps))
        return env_state, obs, ddpg, buffer, traj, log

    # ------------------------------------------------------------------ PPO update of the discrete branch
    def loss_fn(params, batch: Batch):
        dist_d = policy.discrete_distribution(params["actor_d"], batch.obs, batch.mask)
        log_prob_d = dist_d.log_prob(batch.target)
        adv = ppo.normalize(batch.advantage_d) if config.normalize_advantages else batch.advantage_d
        loss_d, stats_d = ppo.clipped_surrogate_loss(log_prob_d, batch.log_prob_d, adv, config.clip_eps)
        entropy_d = jnp.mean(dist_d.entropy())
        value = value_d(params["critic_d"], batch.obs)
        value_loss_d = ppo.value_loss(value, batch.value_d, batch.return_d, value_clip)
        total = loss_d - config.entropy_coef * entropy_d + value_loss_d  # disjoint parameter groups
        stats = {
            "policy_loss_d": loss_d,
            "value_loss_d": value_loss_d,
            "entropy_d": entropy_d,
            "approx_kl_d": stats_d["approx_kl"],
            "clip_fraction_d": stats_d["clip_fraction"],
        }
        return total, stats

    gradient_step = ppo.grouped_gradient_step(loss_fn, optimizers, PPO_GROUPS)  # the discrete actor and V^d

    def ppo_update(params, opt_state, traj: Transition, key):
        next_value = value_d(params["critic_d"], traj.final_obs)

        def flags(x):  # [T, E] -> [T, E, 1], broadcast over agents
            return x[..., None]

        adv, ret = ppo.gae(
            traj.reward,
            traj.value_d,
            next_value,
            flags(traj.terminated),
            flags(traj.done),
            config.gamma,
            config.gae_lambda,
        )
        flat = ppo.flatten_time
        data = Batch(
            flat(traj.obs),
            flat(traj.mask),
            flat(traj.target),
            flat(traj.log_prob_d),
            flat(traj.value_d),
            flat(adv),
            flat(ret),
        )
        start = ({n: params[n] for n in PPO_GROUPS}, {n: opt_state[n] for n in PPO_GROUPS})
        (new_params, new_opt), stats = ppo.shuffled_minibatch_epochs(
            key, data, config.update_epochs, config.num_minibatches, gradient_step, start
        )
        return dict(params, **new_params), dict(opt_state, **new_opt), stats

    def update(state: MappoDdpgTrainerState) -> tuple[MappoDdpgTrainerState, dict]:
        key, k_roll, k_epochs = jax.random.split(state.key, 3)
        env_state, obs, (params, target_params, opt_state), buffer, traj, log = rollout(state, k_roll)
        params, opt_state, stats = ppo_update(params, opt_state, traj, k_epochs)
        ran = log["ddpg_ran"]
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            **jax.tree.map(jnp.mean, stats),
            **{name: ppo.masked_mean(log[name], ran) for name in DDPG_STATS},  # over the steps that ran DDPG
            "ddpg_updates": jnp.sum(ran).astype(jnp.int32) * config.ddpg_updates_per_step,
            "buffer_size": buffer.size,
            "exploration_sigma": jnp.mean(log["sigma"]),
            "mean_fraction": jnp.mean(log["fraction"]),
        }
        new_state = MappoDdpgTrainerState(
            params, target_params, opt_state, buffer, env_state, obs, key, state.iteration + 1
        )
        return new_state, metrics

    return Components(policy, vec, init, rollout, ddpg_step, loss_fn, ppo_update, optimizers, update)


def make_trainer(
    env: Environment,
    config: MappoDdpgConfig,
    env_params: PyTree | None = None,
    log_metrics: tuple[str, ...] = LOG_METRICS,
) -> Trainer:
    """Build the pure functions of a MAPPO-DDPG run on a multi-agent env with a hybrid
    {"target": Discrete, "fraction": Box[0, 1]} action."""
    return trainer.assemble(Trainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "LOG_METRICS",
    "Components",
    "DeterministicActor",
    "MappoDdpgConfig",
    "MappoDdpgTrainerState",
    "Policy",
    "ReplayBuffer",
    "ReplayItem",
    "TargetDiscrete",
    "make_components",
    "make_train",
    "make_trainer",
    "replay_add",
    "replay_init",
    "replay_sample",
    "soft_update",
]
