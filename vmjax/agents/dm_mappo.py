"""DM-MAPPO (spec 002 §6, Algorithm 2): MAPPO with a dynamic action mask for the digital-twin routing POMDP
(§5): one masked categorical actor per vehicle over the M servers, trained with the PPO clipped surrogate.

    trainer = make_trainer(env, DmMappoConfig())
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds

One iteration: roll `num_envs` worlds for `num_steps` steps, every agent sampling a_v ~ pi_old(. | o_v, K_v) under
the env's mask K = `env.action_mask` (stored in the buffer and reused for the log-probs and the entropy of the
update, §5.3); compute targets; then `update_epochs` epochs of shuffled minibatches (θ_old fixed for the whole
update, §6.3). Critics (§6.1):

* `critic_type="v"` (C2, default): V(o_v) (or V(s) of the world state with `centralized_critic`), GAE(λ)
  advantages, value target = GAE returns, optional MAPPO value clipping.
* `critic_type="q"` (C1, COMA-style): Q(o_v, .) with M outputs; advantage A = Q_old(o, a) - b(o) with the baseline
  b(o) = sum over feasible a of pi_old(a | o) Q_old(o, a) (`coma_baseline`); Q(o_t, a_t) regresses the
  TD(`q_lambda`) target bootstrapped with b(o_{t+1}) (`q_lambda=1`: the discounted return G_t of eq. 26).

Agents that are not present (`info["active"]` False: not yet departed, trip over) are weighted out of the
actor, critic and entropy losses and of the advantage normalisation (means over active samples, §5.4); the end of
an agent's trip is a terminal step for that agent's targets. The
`use_mask=False` ablation needs nothing here: the trainer uses whatever `env.action_mask` returns. Evaluation
(`Trainer.make_eval_policy`) takes the masked argmax (eq. 24).
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
GROUPS = ("actor", "critic")
LOG_METRICS = ("total_latency_s",)
CriticType = Literal["v", "q"]  # DmMappoConfig.critic_type


@dataclasses.dataclass(frozen=True)
class DmMappoConfig:
    """Hyper-parameters of DM-MAPPO (spec 002 §6.4 [REC]; [C] a choice the spec leaves open)."""

    num_envs: int = 16  # parallel worlds E [REC]
    num_steps: int = 120  # rollout length: one full episode of T_ep = 120 slots [REC]
    num_iterations: int = 300  # iterations; 300 x 16 x 120 x 5 agents = 2.9e6 agent-steps (spec: 2-5e6) [REC]
    update_epochs: int = 10  # PPO epochs per iteration [REC]
    num_minibatches: int = 4  # minibatches per epoch [REC]
    gamma: float = 0.99  # discount [REC]
    gae_lambda: float = 0.95  # GAE lambda of the V critic (C2) [REC]
    q_lambda: float = 1.0  # TD(lambda) of the Q critic's target (C1): 1 = discounted return G_t (eq. 26), 0 = eq. 25
    clip_eps: float = 0.2  # surrogate clip epsilon [REC]
    value_clip_eps: float = 0.0  # MAPPO clipped value loss; 0 disables it (§6.3 "optionally clipped") [C]
    entropy_coef: float = 0.01  # entropy bonus over the masked distribution [REC]
    value_coef: float = 0.5  # weight of the critic loss (scales the critic's gradient before clipping) [REC]
    actor_lr: float = 3e-4  # Adam learning rate of the actors (eps 1e-5) [REC]
    critic_lr: float = 1e-3  # Adam learning rate of the critics (eps 1e-5) [REC]
    anneal_lr: bool = False  # linear decay of both learning rates to 0 over training [REC optional]
    max_grad_norm: float = 0.5  # global-norm gradient clipping per parameter group [REC]
    normalize_advantages: bool = True  # per-minibatch normalisation over the active samples [REC]
    reward_scale: float = 1.0  # train on reward x this (the env's reward is already z-scored); raw reward logged
    hidden_sizes: tuple[int, ...] = (128, 128)  # MLP widths of actors and critics [REC]
    activation: networks.Activation = "tanh"  # "tanh" | "relu" [REC]
    layer_norm: bool = False  # LayerNorm after each hidden layer
    critic_type: CriticType = "v"  # "v": C2 V-critic + GAE (default) | "q": C1 COMA-style M-output Q-critic (§6.1)
    centralized_critic: bool = False  # critic input: the world state (all observations + one-hot id) instead of o_v
    share_actor_params: bool = False  # one actor for all agents (+ one-hot id) instead of per-agent actors (§5.1)
    share_critic_params: bool = False  # one critic for all agents (+ one-hot id) instead of per-agent critics
    deterministic_eval: bool = True  # evaluation policy: masked argmax (eq. 24), else a masked sample

    def __post_init__(self):
        owner = "DmMappoConfig"
        for name in ("num_envs", "num_steps", "num_iterations", "update_epochs", "num_minibatches"):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("gamma", "gae_lambda", "q_lambda"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in ("clip_eps", "actor_lr", "critic_lr", "max_grad_norm", "reward_scale", "value_coef"):
            validation.check_positive(owner, name, getattr(self, name))
        for name in ("value_clip_eps", "entropy_coef"):
            validation.check_non_negative(owner, name, getattr(self, name))
        validation.check_literal_fields(self)
        validation.check_layer_widths(owner, "hidden_sizes", self.hidden_sizes)
        validation.check_minibatches(owner, self.num_minibatches, self.num_envs, self.num_steps)

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps


DmMappoTrainerState = TrainerState  # params {"actor", "critic"} (stacked per agent unless shared); a checkpoint


class Transition(NamedTuple):
    """One rollout step (leaves [E, ...])."""

    obs: jax.Array  # [E, N, D]
    mask: jax.Array  # [E, N, M] the mask the action was sampled under
    action: jax.Array  # [E, N] int32 server
    log_prob: jax.Array  # [E, N] log pi_old(a | o, K)
    value: jax.Array  # [E, N] V_old(o) (C2) or Q_old(o, a) (C1)
    baseline: jax.Array  # [E, N] b_old(o) = E_pi_old Q_old(o, .) (C1); V_old(o) again for C2
    reward: jax.Array  # [E, N] scaled reward
    active: jax.Array  # [E, N] bool: the vehicle was present in the slot it acted in
    terminated: jax.Array  # [E]
    done: jax.Array  # [E]
    final_obs: jax.Array  # [E, N, D] observation the step reached, before any reset
    next_mask: jax.Array  # [E, N, M] mask at final_obs (the step's own mask when the episode ended: the
    # pre-reset state is not exposed by VecEnv); used by the C1 bootstrap b(o')


class Batch(NamedTuple):
    obs: jax.Array
    mask: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array  # value target: GAE return (C2) or TD(lambda) Q target (C1)
    active: jax.Array  # float weight, 0 for an inactive agent


coma_baseline = ppo.coma_baseline  # b(o) = sum_a pi(a | o) Q(o, a) over the feasible actions [§6.1 C1]


class Policy(NamedTuple):
    """The masked categorical actors and the critic, and how to apply them (shared or per-agent parameters).
    `act` has the signature `trainer.Trainer.make_eval_policy` expects."""

    actor: networks.DiscreteActor
    critic: Any  # networks.Critic (C2) | networks.QNetwork (C1)
    critic_type: str
    shared_actor: bool
    shared_critic: bool
    world_state: Callable[[jax.Array], jax.Array] | None  # obs [..., N, D] -> centralised input, or None

    def distribution(self, params: dict, obs: jax.Array, mask: jax.Array | None):
        logits = networks.apply_agents(self.actor, params["actor"], obs, self.shared_actor)
        return distributions.masked_categorical(logits, mask)

    def act(self, key, params: dict, obs, mask, deterministic: bool = False):
        """(server int32 [..., N], log pi(server | o, K))."""
        dist = self.distribution(params, obs, mask)
        action = (dist.mode() if deterministic else dist.sample(seed=key)).astype(jnp.int32)
        return action, dist.log_prob(action)

    def critic_input(self, obs):
        return obs if self.world_state is None else self.world_state(obs)

    def critic_out(self, params: dict, obs: jax.Array) -> jax.Array:
        """V [..., N] (C2) or Q(o, .) [..., N, M] (C1)."""
        return networks.apply_agents(
            self.critic, params["critic"], self.critic_input(obs), self.shared_critic, add_id=self.world_state is None
        )

    def baseline(self, params: dict, obs, mask) -> jax.Array:
        """C2: V(o); C1: the COMA baseline b(o) under `mask` with the current actor."""
        out = self.critic_out(params, obs)
        if self.critic_type == "v":
            return out
        return coma_baseline(out, self.distribution(params, obs, mask).probs, mask)


class Components(NamedTuple):
    """The pieces `make_trainer` assembles, exposed for tests and analysis."""

    policy: Policy
    vec: VecEnv
    init: Callable
    rollout: Callable  # (state, key) -> (env_state, obs, traj: Transition, log)
    prepare: Callable  # (params, traj) -> flat Batch with advantages and targets
    loss_fn: Callable  # (params, batch) -> (loss, stats)
    learn: Callable  # (params, opt_state, traj, key) -> (params, opt_state, stats): the PPO epochs on a rollout
    optimizers: dict  # group -> optax transformation
    update: Callable


def make_components(
    env: Environment,
    config: DmMappoConfig,
    env_params: PyTree | None = None,
    log_metrics: tuple[str, ...] = LOG_METRICS,
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    num_actions = env.action_space(env_params).n
    arch = {
        "hidden_sizes": tuple(int(h) for h in config.hidden_sizes),
        "activation": config.activation,
        "layer_norm": config.layer_norm,
    }
    policy = Policy(
        actor=networks.DiscreteActor(num_actions, **arch),
        critic=networks.Critic(**arch) if config.critic_type == "v" else networks.QNetwork(num_actions, **arch),
        critic_type=config.critic_type,
        shared_actor=config.share_actor_params,
        shared_critic=config.share_critic_params,
        world_state=env.world_state_from_observation if config.centralized_critic else None,
    )
    optimizers = {
        "actor": ppo.annealed_adam(config, config.actor_lr),
        "critic": ppo.annealed_adam(config, config.critic_lr),
    }
    value_clip = config.value_clip_eps if config.value_clip_eps > 0 else None

    def init(key) -> DmMappoTrainerState:
        k_env, k_actor, k_critic, k_run = jax.random.split(key, 4)
        obs, env_state = vec.reset(k_env, env_params)
        agent_obs = obs[0]  # [N, D]
        critic_input = policy.critic_input(agent_obs)
        params = {
            "actor": networks.init_agents(policy.actor, k_actor, agent_obs, config.share_actor_params),
            "critic": networks.init_agents(
                policy.critic, k_critic, critic_input, config.share_critic_params, add_id=not config.centralized_critic
            ),
        }
        opt_state = {name: optimizers[name].init(params[name]) for name in GROUPS}
        return DmMappoTrainerState(params, opt_state, env_state, obs, k_run, jnp.int32(0))

    def old_values(params, obs, mask, action):
        """(value, baseline) of the rollout: (V, V) for C2, (Q(o, a), b(o)) for C1."""
        out = policy.critic_out(params, obs)
        if config.critic_type == "v":
            return out, out
        taken = jnp.take_along_axis(out, action[..., None], axis=-1)[..., 0]
        return taken, coma_baseline(out, policy.distribution(params, obs, mask).probs, mask)

    # ------------------------------------------------------------------ rollout
    def rollout(state: DmMappoTrainerState, key):
        def step(carry, step_key):
            env_state, obs, mask = carry
            k_act, k_env = jax.random.split(step_key)
            action, log_prob = policy.act(k_act, state.params, obs, mask)
            value, baseline = old_values(state.params, obs, mask, action)
            next_obs, env_state, reward, terminated, truncated, info = vec.step(k_env, env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            next_mask = vec.action_mask(env_state, env_params)
            active = info["active"] if "active" in info else jnp.ones_like(reward, bool)
            transition = Transition(
                obs,
                mask,
                action,
                log_prob,
                value,
                baseline,
                reward * config.reward_scale,
                active,
                terminated,
                done,
                info["final_observation"],
                jnp.where(done[:, None, None], mask, next_mask),
            )
            return (env_state, next_obs, next_mask), (transition, ppo.episode_log(reward, info, log_metrics))

        mask = vec.action_mask(state.env_state, env_params)
        keys = jax.random.split(key, config.num_steps)
        (env_state, obs, _), (traj, log) = jax.lax.scan(step, (state.env_state, state.obs, mask), keys)
        return env_state, obs, traj, log

    def prepare(params, traj: Transition) -> Batch:
        # an agent whose trip ends (active now, inactive at the next step of the same episode) terminates: its
        # value after the trip is never trained (inactive samples are weighted out), so it is not bootstrapped
        # and no later (zero, inactive) reward flows back. The last rollout step assumes the agent stays.
        active = traj.active
        next_active = jnp.concatenate([active[1:], active[-1:]], axis=0)
        trip_end = active & ~next_active & ~traj.done[..., None]
        terminated = traj.terminated[..., None] | trip_end  # [T, E, N]
        done = traj.done[..., None] | trip_end
        next_value = policy.baseline(params, traj.final_obs, traj.next_mask)
        if config.critic_type == "v":
            advantage, target = ppo.gae(
                traj.reward, traj.value, next_value, terminated, done, config.gamma, config.gae_lambda
            )
        else:
            advantage = traj.value - traj.baseline
            target = ppo.lambda_returns(traj.reward, next_value, terminated, done, config.gamma, config.q_lambda)
        flat = ppo.flatten_time
        return Batch(
            flat(traj.obs),
            flat(traj.mask),
            flat(traj.action),
            flat(traj.log_prob),
            flat(traj.value),
            flat(advantage),
            flat(target),
            flat(traj.active).astype(jnp.float32),
        )

    # ------------------------------------------------------------------ losses
    def loss_fn(params, batch: Batch):
        weight = batch.active
        dist = policy.distribution(params, batch.obs, batch.mask)  # the stored mask (§5.3)
        log_prob = dist.log_prob(batch.action)
        advantage = ppo.normalize(batch.advantage, weight=weight) if config.normalize_advantages else batch.advantage
        policy_loss, stats = ppo.clipped_surrogate_loss(log_prob, batch.log_prob, advantage, config.clip_eps, weight)
        entropy = ppo.masked_mean(dist.entropy(), weight)
        out = policy.critic_out(params, batch.obs)
        if config.critic_type == "q":
            out = jnp.take_along_axis(out, batch.action[..., None], axis=-1)[..., 0]
        value_loss = ppo.value_loss(out, batch.value, batch.target, value_clip, weight)
        total = policy_loss - config.entropy_coef * entropy + config.value_coef * value_loss
        stats = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy, **stats}
        return total, stats

    gradient_step = ppo.grouped_gradient_step(loss_fn, optimizers, GROUPS)  # actors and critics: own Adam states

    def learn(params, opt_state, traj: Transition, key):
        """The update half of an iteration: targets from the rollout, then the PPO epochs. Returns (params,
        opt_state, mean stats)."""
        data = prepare(params, traj)
        (params, opt_state), stats = ppo.shuffled_minibatch_epochs(
            key, data, config.update_epochs, config.num_minibatches, gradient_step, (params, opt_state)
        )
        stats = jax.tree.map(jnp.mean, stats)
        stats["active_fraction"] = jnp.mean(data.active)
        stats["mean_feasible_actions"] = jnp.sum(data.mask * data.active[..., None]) / jnp.maximum(
            jnp.sum(data.active), 1.0
        )
        return params, opt_state, stats

    def update(state: DmMappoTrainerState) -> tuple[DmMappoTrainerState, dict]:
        key, k_roll, k_epochs = jax.random.split(state.key, 3)
        env_state, obs, traj, log = rollout(state, k_roll)
        params, opt_state, stats = learn(state.params, state.opt_state, traj, k_epochs)
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            **stats,
        }
        return DmMappoTrainerState(params, opt_state, env_state, obs, key, state.iteration + 1), metrics

    return Components(policy, vec, init, rollout, prepare, loss_fn, learn, optimizers, update)


def make_trainer(
    env: Environment,
    config: DmMappoConfig,
    env_params: PyTree | None = None,
    log_metrics: tuple[str, ...] = LOG_METRICS,
) -> Trainer:
    """Build the pure functions of a DM-MAPPO run on a multi-agent env with a Discrete(M) action per agent and an
    `action_mask` [N, M] (TwinRouting-v0)."""
    return trainer.assemble(Trainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "LOG_METRICS",
    "Batch",
    "Components",
    "CriticType",
    "DmMappoConfig",
    "DmMappoTrainerState",
    "Policy",
    "Transition",
    "coma_baseline",
    "make_components",
    "make_train",
    "make_trainer",
]
