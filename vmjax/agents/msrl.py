"""MSRL: multi-agent split reinforcement learning (spec 004 §6) for VT pre-migration (TwinSplit-v0, §5).

    trainer = make_trainer(env, MsrlConfig())
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds
    policy = trainer.make_eval_policy(state)                # a vmjax.core.rollout.StatefulPolicy

Pieces (spec sections):

* Split actor (§6.2): per-agent parameters stacked on a leading agent axis [V, ...] (not shared) and vmapped
  over agents. Client trunk obs -> 8 -> 16 (the smashed data z) and client head z -> |A|; server trunk
  z -> 16 -> 32 -> 16 and server head -> |A|. `actor_param_counts` gives P_ct, P_ch, P_st, P_sh (§6.9).
* Switch (§6.3-6.4): per (world, agent) `SwitchState` in the trainer state, shape [num_envs, V], carried
  across episodes and iterations (env resets do not touch it). Each actor call pushes the client-head entropy
  H (nats, under theta_old) into a ring buffer of W, raw = mean(H) > Thr, pushes raw into a ring buffer of M,
  use_server = raw or (flips in the window >= N_sw), and Thr <- clip(Thr + Ch use_server - decay (1 - use_server),
  Thr_min, ln|A|) (eq. 23; decay = `threshold_decay_nats`, 0 in the spec's reading). `mode="local"` forces use_server = 0, `"local_edge"` forces 1 (the baselines of §6.4).
* Rollout (Alg. 1 lines 3-10): the action is sampled from the head in use (server logits overwrite the
  client's). Stored: use_server, log pi_old of the used head and of the client head, pi_used(.|o), all
  agents' actions, and the observations (s(t) is their concat, §5: `Transition.world_state`).
* Critic (§6.2, §6.6): one shared centralised COMA critic, input s(t) + one-hot(agent id) + one-hot actions
  of the other agents (own slot removed), output |A| Q-values. The target critic omega_bar is the critic at
  the start of the iteration (Alg. 1 line 28: a hard copy every iteration; the params of the rollout *are*
  that copy, so no second copy is stored). Q_hat by eq. (28) (`td_lambda_targets`), advantage by eq. (27)
  (`counterfactual_advantages`).
* Losses (§6.5, eqs. 24-26): PPO clipped surrogate on the client head for every sample (its own old
  log-prob) plus, where use_server = 1, on the server head (through z into the client trunk unless
  `stop_grad_at_split`); per Alg. 1 line 22 both are (1/G) sums over the minibatch. Critic: 0.5 MSE to
  Q_hat. Separate Adam states (eps 1e-5) and global-norm clipping for actors and critic.

Action masks are not used: TwinSplit-v0 makes every RSU selectable (`env.action_mask` is all True).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax.agents import networks, ppo, trainer
from vmjax.agents.trainer import Trainer
from vmjax.core import validation
from vmjax.core.env import Environment
from vmjax.core.rollout import StatefulPolicy
from vmjax.core.wrappers import VecEnv

PyTree = Any
GROUPS = ("actor", "critic")
Mode = Literal["split", "local", "local_edge"]
MODES = get_args(Mode)
LOG_METRICS = ("total_latency_s", "ber", "qoe")


@dataclasses.dataclass(frozen=True)
class MsrlConfig:
    """Hyper-parameters of MSRL (spec 004 §6.10; [P] paper value, [R] spec recommendation)."""

    num_envs: int = 32  # parallel worlds (vmap) [R]
    num_steps: int = 100  # rollout length per iteration: one episode of T = 100 slots [R]
    num_iterations: int = 1000  # updates (= episodes per world), about 3.2e6 env steps [R]
    update_epochs: int = 5  # PPO epochs K [R]
    num_minibatches: int = 4  # minibatches per epoch (the paper's T/G loop) [R]
    gamma: float = 0.95  # discount [P]
    td_lambda: float = 0.95  # lambda of the TD(lambda) target, eq. (28) [R]
    clip_eps: float = 0.2  # epsilon_clip of eq. (25) [R]
    actor_lr: float = 1e-3  # Adam learning rate of the split actors [P]
    critic_lr: float = 1e-3  # Adam learning rate of the critic [P]
    adam_eps: float = 1e-5  # [R]
    max_grad_norm: float = 0.5  # global-norm gradient clip per parameter group [R]
    ent_coef: float = 0.0  # entropy bonus; 0 since it would fight the entropy switch [R §6.6]
    normalize_advantages: bool = True  # per-minibatch advantage normalisation [R §6.6]
    reward_scale: float = 1.0  # train on reward x this (the raw reward is logged)
    threshold0_nats: float = 0.7  # Thr^0 of eq. (23) [P]
    threshold_change_nats: float = 1e-5  # Ch: Thr moves by Ch per server call, eq. (23) [R]; < 0 allowed
    threshold_decay_nats: float = 0.0  # Thr falls by this per client-only call [C]; 0 = eq. (23) as the spec reads it.
    # With Ch > 0 Thr then tracks the client entropy; the share of server calls settles near decay / (Ch + decay)
    threshold_min_nats: float = 0.05  # Thr clip range [Thr_min, Thr_max] [R]
    threshold_max_nats: float | None = None  # None: ln|A| [R]
    entropy_window: int = 10  # W: client-head entropies averaged (§6.3) [R]
    decision_window: int = 20  # M: raw decisions in the flip window (§6.4) [R]
    num_switches: int = 4  # N_sw: flips in the window that engage the buffer mode (§6.4) [R]
    mode: Mode = "split"  # "split" (dynamic) | "local" (client only) | "local_edge" (always server) (§6.4)
    stop_grad_at_split: bool = False  # True: the server loss does not reach the client trunk (§6.5) [R]
    client_sizes: tuple[int, ...] = (8, 16)  # client trunk widths, split after layer 2 [P]
    server_sizes: tuple[int, ...] = (16, 32, 16)  # server trunk widths [P]
    critic_sizes: tuple[int, ...] = (32, 32)  # critic hidden widths [P]
    activation: networks.Activation = "relu"  # [R]
    deterministic_eval: bool = True  # evaluation: argmax of the head in use, else a sample [R]

    def __post_init__(self):
        owner = "MsrlConfig"
        for name in (
            "num_envs",
            "num_steps",
            "num_iterations",
            "update_epochs",
            "num_minibatches",
            "entropy_window",
            "decision_window",
            "num_switches",
        ):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("gamma", "td_lambda"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in (
            "clip_eps",
            "actor_lr",
            "critic_lr",
            "adam_eps",
            "max_grad_norm",
            "reward_scale",
            "threshold_min_nats",
        ):
            validation.check_positive(owner, name, getattr(self, name))
        validation.check_non_negative(owner, "ent_coef", self.ent_coef)
        validation.check_non_negative(owner, "threshold_decay_nats", self.threshold_decay_nats)
        validation.check_finite(owner, "threshold_change_nats", self.threshold_change_nats)
        validation.check_finite(owner, "threshold0_nats", self.threshold0_nats)
        if self.threshold_max_nats is not None:
            validation.check_range(
                owner, "threshold_min_nats", "threshold_max_nats", self.threshold_min_nats, self.threshold_max_nats
            )
        validation.check_literal_fields(self)
        for name in ("client_sizes", "server_sizes", "critic_sizes"):
            validation.check_layer_widths(owner, name, getattr(self, name))
        validation.check_minibatches(owner, self.num_minibatches, self.num_envs, self.num_steps)

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps


# ====================================================================== split actor (§6.2)
class SplitActor(nn.Module):
    """One agent's client + server model. Returns (client logits, server logits), both [..., |A|]."""

    num_actions: int
    client_sizes: tuple[int, ...] = (8, 16)
    server_sizes: tuple[int, ...] = (16, 32, 16)
    activation: str = "relu"
    stop_grad_at_split: bool = False

    def setup(self):
        # hidden layers: orthogonal gain sqrt(2); heads: gain 0.01 (near-uniform initial policies) [R]
        self.client_trunk = networks.MLP(self.client_sizes, self.activation)
        self.client_head = networks.dense(self.num_actions, 0.01)
        self.server_trunk = networks.MLP(self.server_sizes, self.activation)
        self.server_head = networks.dense(self.num_actions, 0.01)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = self.client_trunk(obs)  # smashed data, sent to the RSU when the server runs
        z_server = jax.lax.stop_gradient(z) if self.stop_grad_at_split else z
        return self.client_head(z), self.server_head(self.server_trunk(z_server))


PARTS = ("client_trunk", "client_head", "server_trunk", "server_head")


def count_parts(actor_params: PyTree) -> dict[str, int]:
    """Weights + biases of each part of ONE agent's SplitActor params (a Flax tree with "params")."""
    return {part: int(sum(np.prod(x.shape) for x in jax.tree.leaves(actor_params["params"][part]))) for part in PARTS}


def actor_param_counts(obs_dim: int, num_actions: int, config: MsrlConfig = MsrlConfig()) -> dict[str, int]:
    """{P_ct, P_ch, P_st, P_sh} (§6.2) from the actual Flax param tree of one agent's actor (shapes only).
    For d = 9, |A| = 4: 224, 68, 1344, 68."""
    actor = SplitActor(num_actions, config.client_sizes, config.server_sizes, config.activation)
    shapes = jax.eval_shape(actor.init, jax.random.key(0), jnp.zeros((obs_dim,), jnp.float32))
    return count_parts(shapes)


def params_per_call(counts: dict[str, int]) -> dict[str, int]:
    """Parameters one actor call uses (§6.9): client only (Local-Model, split with use_server = 0),
    server path (Local-Edge: P_ct + P_st + P_sh) and split with use_server = 1 (all four parts)."""
    client = counts["client_trunk"] + counts["client_head"]
    server = counts["server_trunk"] + counts["server_head"]
    return {"local": client, "local_edge": counts["client_trunk"] + server, "split_server": client + server}


# ====================================================================== switching (§6.3-6.4)
@struct.dataclass
class SwitchState:
    """Switching state of each (world, agent); leaves [...] (e.g. [num_envs, V]) plus the buffer axis.

    The ring buffers are written at position num_calls % W (resp. % M); the fill counts are
    min(num_calls, W) and min(num_calls, M) (`entropy_fill`, `decision_fill`)."""

    threshold_nats: jax.Array  # [...] Thr (eq. 23)
    entropy_nats: jax.Array  # [..., W] ring buffer of client-head entropies H (nats)
    decisions: jax.Array  # [..., M] ring buffer of raw decisions (bool)
    num_calls: jax.Array  # [...] int32 actor calls so far (S of eq. 23)
    server_calls: jax.Array  # [...] int32 calls that used the server (sum_s Lar^s of eq. 23)

    @property
    def entropy_fill(self) -> jax.Array:
        return jnp.minimum(self.num_calls, self.entropy_nats.shape[-1])

    @property
    def decision_fill(self) -> jax.Array:
        return jnp.minimum(self.num_calls, self.decisions.shape[-1])


class SwitchRule(NamedTuple):
    """The static numbers of the switch (from MsrlConfig and |A|)."""

    threshold_change_nats: float  # Ch
    threshold_min_nats: float
    threshold_max_nats: float
    num_switches: int  # N_sw
    mode: str = "split"
    threshold_decay_nats: float = 0.0  # Thr falls by this per client-only call


def make_switch_rule(config: MsrlConfig, num_actions: int) -> SwitchRule:
    high = math.log(num_actions) if config.threshold_max_nats is None else config.threshold_max_nats
    return SwitchRule(
        config.threshold_change_nats,
        config.threshold_min_nats,
        high,
        config.num_switches,
        config.mode,
        config.threshold_decay_nats,
    )


def init_switch_state(threshold_nats: jax.Array, entropy_window: int, decision_window: int) -> SwitchState:
    """Empty buffers; `threshold_nats` sets the shape [...] (Thr^0 in training; the trained Thr in eval)."""
    thr = jnp.asarray(threshold_nats, jnp.float32)
    return SwitchState(
        threshold_nats=thr,
        entropy_nats=jnp.zeros(thr.shape + (entropy_window,), jnp.float32),
        decisions=jnp.zeros(thr.shape + (decision_window,), bool),
        num_calls=jnp.zeros(thr.shape, jnp.int32),
        server_calls=jnp.zeros(thr.shape, jnp.int32),
    )


def entropy_nats(logits: jax.Array) -> jax.Array:
    """H = -sum_a pi(a) ln pi(a) of softmax(logits) over the last axis (nats, §6.3)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def ring_push(buffer: jax.Array, num_calls: jax.Array, value: jax.Array) -> jax.Array:
    """Write `value` [...] at position num_calls % size of `buffer` [..., size]."""
    size = buffer.shape[-1]
    slot = jnp.arange(size) == (num_calls % size)[..., None]
    return jnp.where(slot, value[..., None], buffer)


def buffer_mean(buffer: jax.Array, fill: jax.Array) -> jax.Array:
    """Mean over the `fill` entries written so far (the whole buffer once full; writes start at slot 0)."""
    written = jnp.arange(buffer.shape[-1]) < fill[..., None]
    return jnp.sum(jnp.where(written, buffer, 0.0), axis=-1) / jnp.maximum(fill, 1)


def count_flips(decisions: jax.Array, num_calls: jax.Array) -> jax.Array:
    """n_sw = number of consecutive pairs that differ among the last min(num_calls, M) decisions, taken in
    chronological order (the ring unrolled from its oldest entry; the newest is at (num_calls - 1) % M)."""
    size = decisions.shape[-1]
    order = (num_calls[..., None] + jnp.arange(size)) % size  # oldest ... newest once full
    chrono = jnp.take_along_axis(decisions, order, axis=-1)
    fill = jnp.minimum(num_calls, size)[..., None]
    pair_valid = jnp.arange(1, size) >= size - fill + 1  # both entries of pair (k-1, k) were written
    return jnp.sum((chrono[..., 1:] != chrono[..., :-1]) & pair_valid, axis=-1)


def switch_step(state: SwitchState, entropy: jax.Array, rule: SwitchRule) -> tuple[jax.Array, SwitchState]:
    """One actor call of every agent (§6.4): push H, raw = mean(H) > Thr, push raw, n_sw = flips in the
    window, use_server = raw or n_sw >= N_sw (forced 0 / 1 by the local / local_edge modes), then
    Thr <- clip(Thr + Ch use_server - decay (1 - use_server), Thr_min, Thr_max) (eq. 23, decay = 0 in the
    spec's reading). Returns (use_server bool [...], state)."""
    calls = state.num_calls
    ent_buf = ring_push(state.entropy_nats, calls, entropy.astype(jnp.float32))
    mean_h = buffer_mean(ent_buf, jnp.minimum(calls + 1, ent_buf.shape[-1]))
    raw = mean_h > state.threshold_nats
    dec_buf = ring_push(state.decisions, calls, raw)
    flips = count_flips(dec_buf, calls + 1)
    use_server = raw | (flips >= rule.num_switches)
    if rule.mode == "local":
        use_server = jnp.zeros_like(raw)
    elif rule.mode == "local_edge":
        use_server = jnp.ones_like(raw)
    threshold = jnp.clip(
        state.threshold_nats + rule.threshold_change_nats * use_server - rule.threshold_decay_nats * ~use_server,
        rule.threshold_min_nats,
        rule.threshold_max_nats,
    )
    new_state = SwitchState(threshold, ent_buf, dec_buf, calls + 1, state.server_calls + use_server.astype(jnp.int32))
    return use_server, new_state


# ====================================================================== targets (§6.6)
def td_lambda_targets(reward, q_taken, q_next, done, gamma: float, td_lambda: float):
    """Q_hat of eq. (28) with the target critic: Q_hat_t = Q_bar(s_t, a_t) + G_t, G_t = delta_t +
    gamma lambda G_{t+1} (reverse lax.scan, `ppo.gae`), delta_t = r_t + gamma Q_bar(s_{t+1}, a_{t+1}) -
    Q_bar(s_t, a_t). After the last step of an episode (`done`, the T-slot horizon, §5) the bootstrap Q is 0
    and G does not flow across. Arrays [T, ...] (`done` broadcasts). Returns Q_hat."""
    return ppo.gae(reward, q_taken, q_next, done, done, gamma, td_lambda)[1]


def counterfactual_advantages(q_hat, q_values, pi_used):
    """A = Q_hat - b, eq. (27), b = sum_a' pi_used,old(a' | o) Q_bar(s, (a_{-v}, a')) (`ppo.coma_baseline`);
    q_values [..., |A|] are the target critic's outputs with the other agents' actions fixed."""
    return q_hat - ppo.coma_baseline(q_values, pi_used)


def other_agents_index(num_agents: int) -> np.ndarray:
    """[V, V-1]: for agent v, the indices of the other agents in order (own slot removed)."""
    return np.array([[j for j in range(num_agents) if j != v] for v in range(num_agents)], np.int32).reshape(
        num_agents, num_agents - 1
    )


# ====================================================================== policy
class MsrlPolicy(NamedTuple):
    """The split actors, the shared critic and the switch: how to apply them to [..., V, d] inputs."""

    actor: SplitActor
    critic: networks.QNetwork
    rule: SwitchRule
    counts: dict  # P_ct, P_ch, P_st, P_sh
    num_agents: int
    num_actions: int
    world_state: Callable[[jax.Array], jax.Array]  # obs [..., V, d] -> s(t) + one-hot id [..., V, V d + V]

    def logits(self, actor_params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(client, server) logits [..., V, |A|], agent v's parameters on agent v's observation."""
        return networks.apply_per_agent(self.actor, actor_params, obs)

    def select(self, key, actor_params, obs, switch: SwitchState, deterministic: bool = False):
        """Alg. 1 lines 6-8 for every agent: client forward, switch, server logits overwrite the client's when
        use_server; a sample (or argmax) of the head in use. Returns (action int32 [..., V], use_server bool,
        new switch, client logits, used logits)."""
        client, server = self.logits(actor_params, obs)
        use_server, switch = switch_step(switch, entropy_nats(client), self.rule)
        used = jnp.where(use_server[..., None], server, client)
        action = jnp.argmax(used, axis=-1) if deterministic else jax.random.categorical(key, used, axis=-1)
        return action.astype(jnp.int32), use_server, switch, client, used

    def params_used(self, use_server: jax.Array) -> jax.Array:
        """Parameters per agent-step (§6.9): P_ct + P_ch + use_server (P_st + P_sh) for split; P_ct + P_ch for
        local; P_ct + P_st + P_sh for local_edge."""
        per = params_per_call(self.counts)
        if self.rule.mode == "local":
            return jnp.full(use_server.shape, per["local"], jnp.float32)
        if self.rule.mode == "local_edge":
            return jnp.full(use_server.shape, per["local_edge"], jnp.float32)
        return jnp.where(use_server, per["split_server"], per["local"]).astype(jnp.float32)

    def critic_input(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """s(t) + one-hot(agent id) + one-hot actions of the other agents: [..., V, V d + V + (V-1)|A|]."""
        one_hot = jax.nn.one_hot(action, self.num_actions, dtype=obs.dtype)  # [..., V, |A|]
        others = one_hot[..., other_agents_index(self.num_agents), :]  # [..., V, V-1, |A|]
        others = others.reshape(others.shape[:-2] + (-1,))
        return jnp.concatenate([self.world_state(obs), others], axis=-1)

    def q_values(self, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Q(s, (a_{-v}, .)) [..., V, |A|]: agent v's Q for each of its own actions, the others' fixed."""
        return self.critic.apply(critic_params, self.critic_input(obs, action))


def taken(values: jax.Array, action: jax.Array) -> jax.Array:
    """values[..., a] for integer actions [...]."""
    return jnp.take_along_axis(values, action[..., None], axis=-1)[..., 0]


# ====================================================================== trainer
@struct.dataclass
class MsrlTrainerState:
    """Everything a training run needs to continue: a checkpoint is this pytree."""

    params: dict  # {"actor": SplitActor params stacked [V, ...], "critic": shared critic (= omega_bar)}
    opt_state: dict  # one optax state per group
    env_state: PyTree  # [E] LogWrapper states of the worlds
    obs: jax.Array  # [E, V, d] current observations
    switch: SwitchState  # [E, V] switching state, persists across episodes and iterations
    key: jax.Array
    iteration: jax.Array  # () finished iterations


class Transition(NamedTuple):
    """One rollout step (leaves [E, ...])."""

    obs: jax.Array  # [E, V, d]
    action: jax.Array  # [E, V] int32, all agents
    use_server: jax.Array  # [E, V] float32 0/1
    log_prob_used: jax.Array  # [E, V] log pi_old of the head that was used
    log_prob_client: jax.Array  # [E, V] log pi_old of the client head
    pi_used: jax.Array  # [E, V, |A|] pi_used,old(. | o)
    reward: jax.Array  # [E, V] scaled reward
    done: jax.Array  # [E] the episode ended with this step

    @property
    def world_state(self) -> jax.Array:
        """s(t) = concat of all V observations (§5) [..., V d]."""
        return self.obs.reshape(self.obs.shape[:-2] + (-1,))


class Batch(NamedTuple):
    """Flat samples [B, V, ...] (time x worlds; each sample keeps all its agents, the critic needs them)."""

    obs: jax.Array
    action: jax.Array
    use_server: jax.Array
    log_prob_used: jax.Array
    log_prob_client: jax.Array
    advantage: jax.Array
    q_target: jax.Array  # Q_hat, eq. (28)


class Components(NamedTuple):
    """The pieces `make_trainer` assembles, exposed for tests and analysis."""

    policy: MsrlPolicy
    vec: VecEnv
    init: Callable
    rollout: Callable  # (state, key) -> (env_state, obs, switch, traj, bootstrap_q [E, V], log)
    prepare: Callable  # (params, traj, bootstrap_q) -> flat Batch
    loss_fn: Callable  # (params, batch) -> (loss, stats)
    update: Callable


class MsrlTrainer(Trainer):
    """`trainer.Trainer` (init / update / run / train) whose evaluation policy carries the switching
    state: `make_eval_policy` returns a `vmjax.core.rollout.StatefulPolicy`, not a stateless function."""

    def make_eval_policy(self, params_or_state, deterministic: bool | None = None) -> StatefulPolicy:
        """StatefulPolicy for one world of the *unwrapped* env (vmap it over worlds).

        `params_or_state`: an `MsrlTrainerState` (each agent's switch starts from its trained threshold, the
        mean over the training worlds) or a params dict (thresholds start at Thr^0). init(key, env_params)
        -> SwitchState [V] with empty buffers; act(key, switch, env_state, env_params) -> (action int32 [V],
        switch, {"use_server": [V] float32, "params_used": [V] float32}): the switch runs as in training
        (Thr keeps moving by Ch per server call) and the action is the argmax (`deterministic`) or a sample
        of the head in use."""
        deterministic = self.config.deterministic_eval if deterministic is None else deterministic
        config, env, policy = self.config, self.env, self.policy
        if isinstance(params_or_state, MsrlTrainerState):
            params = params_or_state.params
            threshold = jnp.mean(params_or_state.switch.threshold_nats, axis=0)  # [V]
        else:
            params = params_or_state
            threshold = jnp.full((env.num_agents,), config.threshold0_nats, jnp.float32)

        def init(key, env_params):
            return init_switch_state(threshold, config.entropy_window, config.decision_window)

        def act(key, switch, env_state, env_params):
            obs = env.observation(env_state, env_params)
            action, use_server, switch, _, _ = policy.select(key, params["actor"], obs, switch, deterministic)
            extras = {"use_server": use_server.astype(jnp.float32), "params_used": policy.params_used(use_server)}
            return action, switch, extras

        return StatefulPolicy(init=init, act=act)


def make_components(
    env: Environment, config: MsrlConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    num_agents, num_actions = env.num_agents, env.action_space(env_params).n
    if num_agents < 2:
        raise ValueError(f"MSRL needs at least 2 agents (COMA critic over the others' actions), got {num_agents}")
    actor = SplitActor(
        num_actions,
        tuple(config.client_sizes),
        tuple(config.server_sizes),
        config.activation,
        config.stop_grad_at_split,
    )
    obs_dim = env.observation_space(env_params).shape[-1]
    policy = MsrlPolicy(
        actor=actor,
        critic=networks.QNetwork(num_actions, hidden_sizes=tuple(config.critic_sizes), activation=config.activation),
        rule=make_switch_rule(config, num_actions),
        counts=actor_param_counts(obs_dim, num_actions, config),
        num_agents=num_agents,
        num_actions=num_actions,
        world_state=env.world_state_from_observation,
    )
    optimizers = {
        "actor": ppo.clipped_adam(config.actor_lr, config.max_grad_norm, config.adam_eps),
        "critic": ppo.clipped_adam(config.critic_lr, config.max_grad_norm, config.adam_eps),
    }
    local_edge_params = float(params_per_call(policy.counts)["local_edge"])

    def init(key) -> MsrlTrainerState:
        k_env, k_actor, k_critic, k_run = jax.random.split(key, 4)
        obs, env_state = vec.reset(k_env, env_params)
        params = {
            "actor": networks.init_per_agent(actor, k_actor, num_agents, obs[0, 0]),
            "critic": policy.critic.init(k_critic, policy.critic_input(obs[0], jnp.zeros(num_agents, jnp.int32))),
        }
        opt_state = {name: optimizers[name].init(params[name]) for name in GROUPS}
        thr0 = jnp.clip(config.threshold0_nats, policy.rule.threshold_min_nats, policy.rule.threshold_max_nats)
        switch = init_switch_state(
            jnp.full((config.num_envs, num_agents), thr0), config.entropy_window, config.decision_window
        )
        return MsrlTrainerState(params, opt_state, env_state, obs, switch, k_run, jnp.int32(0))

    # ------------------------------------------------------------------ rollout (Alg. 1 lines 3-10)
    def rollout(state: MsrlTrainerState, key):
        actor_params = state.params["actor"]

        def step(carry, step_key):
            env_state, obs, switch = carry
            k_act, k_env = jax.random.split(step_key)
            action, use_server, switch, client, used = policy.select(k_act, actor_params, obs, switch)
            next_obs, env_state, reward, terminated, truncated, info = vec.step(k_env, env_state, action, env_params)
            log_used = jax.nn.log_softmax(used, axis=-1)
            transition = Transition(
                obs,
                action,
                use_server.astype(jnp.float32),
                taken(log_used, action),
                taken(jax.nn.log_softmax(client, axis=-1), action),
                jnp.exp(log_used),
                reward * config.reward_scale,
                jnp.logical_or(terminated, truncated),
            )
            log = {
                **ppo.episode_log(reward, info, log_metrics),
                **{f"step_{m}": jnp.mean(info[m]) for m in log_metrics},
                "use_server": jnp.mean(use_server),
                "params_used": jnp.mean(policy.params_used(use_server)),
                "client_entropy_nats": jnp.mean(entropy_nats(client)),
            }
            return (env_state, next_obs, switch), (transition, log)

        k_steps, k_boot = jax.random.split(key)
        carry = (state.env_state, state.obs, state.switch)
        (env_state, obs, switch), (traj, log) = jax.lax.scan(step, carry, jax.random.split(k_steps, config.num_steps))
        # bootstrap Q_bar(s_{T+1}, a_{T+1}) for a rollout cut inside an episode: the next action drawn as the
        # next rollout would (the switch state of this draw is discarded); zeroed by `done` otherwise
        next_action = policy.select(k_boot, actor_params, obs, switch)[0]
        bootstrap_q = taken(policy.q_values(state.params["critic"], obs, next_action), next_action)
        return env_state, obs, switch, traj, bootstrap_q, log

    def prepare(params, traj: Transition, bootstrap_q) -> Batch:
        """Q_hat (eq. 28) and A (eq. 27) with the target critic omega_bar = params["critic"] of the rollout."""
        q_values = policy.q_values(params["critic"], traj.obs, traj.action)  # [T, E, V, |A|]
        q_taken = taken(q_values, traj.action)
        q_next = jnp.concatenate([q_taken[1:], bootstrap_q[None]], axis=0)
        q_hat = td_lambda_targets(traj.reward, q_taken, q_next, traj.done[..., None], config.gamma, config.td_lambda)
        advantage = counterfactual_advantages(q_hat, q_values, traj.pi_used)
        flat = ppo.flatten_time
        return Batch(
            flat(traj.obs),
            flat(traj.action),
            flat(traj.use_server),
            flat(traj.log_prob_used),
            flat(traj.log_prob_client),
            flat(advantage),
            flat(q_hat),
        )

    # ------------------------------------------------------------------ losses (§6.5, §6.6)
    def loss_fn(params, batch: Batch):
        client, server = policy.logits(params["actor"], batch.obs)
        log_client = taken(jax.nn.log_softmax(client, axis=-1), batch.action)
        log_server = taken(jax.nn.log_softmax(server, axis=-1), batch.action)
        advantage = ppo.normalize(batch.advantage) if config.normalize_advantages else batch.advantage
        # eqs. (24)-(26) per sample; client head always (its own old log-prob), server head where it was used
        f_client = ppo.clipped_surrogate(log_client, batch.log_prob_client, advantage, config.clip_eps)
        f_server = ppo.clipped_surrogate(log_server, batch.log_prob_used, advantage, config.clip_eps)
        loss_client = -jnp.mean(f_client)
        loss_server = -jnp.mean(batch.use_server * f_server)  # (1/G) sum over the server samples (Alg. 1 l. 22)
        entropy = jnp.mean(entropy_nats(client) + batch.use_server * entropy_nats(server))
        q = taken(policy.q_values(params["critic"], batch.obs, batch.action), batch.action)
        critic_loss = ppo.value_loss(q, q, batch.q_target, None)  # 0.5 (Q_hat - Q_omega)^2 (Alg. 1 l. 23)
        total = loss_client + loss_server - config.ent_coef * entropy + critic_loss  # disjoint groups
        ratio_client = jnp.exp(log_client - batch.log_prob_client)
        stats = {
            "actor_loss_client": loss_client,
            "actor_loss_server": loss_server,
            "critic_loss": critic_loss,
            "entropy_loss_term": entropy,
            "approx_kl_client": jnp.mean((ratio_client - 1.0) - jnp.log(ratio_client)),
            "clip_fraction_client": jnp.mean((jnp.abs(ratio_client - 1.0) > config.clip_eps).astype(jnp.float32)),
        }
        return total, stats

    gradient_step = ppo.grouped_gradient_step(loss_fn, optimizers, GROUPS)  # actors and critic: own Adam states

    def update(state: MsrlTrainerState) -> tuple[MsrlTrainerState, dict]:
        """One iteration of Alg. 1: rollout, targets, K epochs of minibatches, then theta_old <- theta and
        omega_bar <- omega (the new params are the next rollout's)."""
        key, k_roll, k_epochs = jax.random.split(state.key, 3)
        env_state, obs, switch, traj, bootstrap_q, log = rollout(state, k_roll)
        data = prepare(state.params, traj, bootstrap_q)
        (params, opt_state), stats = ppo.shuffled_minibatch_epochs(
            k_epochs, data, config.update_epochs, config.num_minibatches, gradient_step, (state.params, state.opt_state)
        )
        params_used = jnp.mean(log["params_used"])
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            **{f"mean_{m}": jnp.mean(log[f"step_{m}"]) for m in log_metrics},
            "server_use_fraction": jnp.mean(log["use_server"]),
            "mean_threshold_nats": jnp.mean(switch.threshold_nats),
            "mean_client_entropy_nats": jnp.mean(log["client_entropy_nats"]),
            "params_used_per_agent_step": params_used,
            "param_reduction_pct": 100.0 * (1.0 - params_used / local_edge_params),  # vs Local-Edge (§6.9)
            **jax.tree.map(jnp.mean, stats),
        }
        return MsrlTrainerState(params, opt_state, env_state, obs, switch, key, state.iteration + 1), metrics

    return Components(policy, vec, init, rollout, prepare, loss_fn, update)


def make_trainer(
    env: Environment, config: MsrlConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> MsrlTrainer:
    """Build the pure functions of an MSRL run on a multi-agent env with a Discrete(|A|) action per agent
    (TwinSplit-v0). Returns an `MsrlTrainer` (`trainer.Trainer` with a stateful eval policy)."""
    return trainer.assemble(MsrlTrainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "LOG_METRICS",
    "MODES",
    "Batch",
    "Components",
    "MsrlConfig",
    "MsrlPolicy",
    "MsrlTrainer",
    "MsrlTrainerState",
    "SplitActor",
    "SwitchRule",
    "SwitchState",
    "Transition",
    "actor_param_counts",
    "count_flips",
    "count_parts",
    "counterfactual_advantages",
    "entropy_nats",
    "init_switch_state",
    "make_components",
    "make_switch_rule",
    "make_train",
    "make_trainer",
    "params_per_call",
    "switch_step",
    "td_lambda_targets",
]
