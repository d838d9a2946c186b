"""LHDPPO (spec 000 §5): PPO over the joint hybrid action of all M AVs with two diffusion actors, one centralised
critic and the auxiliary diffusion loss, the whole training one jitted function (PureJaxRL pattern).

    trainer = make_trainer(env, LhdppoConfig())             # env = CrossRealityPrivacy-v0
    state = trainer.init(key)
    state, metrics = trainer.run(state, num_iterations)   # jit-compiled lax.scan over iterations
    train = make_train(env, config)                         # train(key) -> (state, metrics), vmap over seeds
    policy = trainer.make_eval_policy(state)                # policy(key, env_state, env_params) -> action
    make_train(env, hdppo_config())                         # HDPPO (§7.6): the same learner on eq. (20)
    make_train(env, hppo_config())                          # H-PPO / ghppo_config / ppo_relaxed_config (§7)

Pieces (spec sections):

* State s_t (eq. 19, §4.1): the env's observation [M, 10] of every AV (position, heading sin/cos, connected
  server, previous agent server, two satellite flags) flattened to one vector [10 M]; one centralised policy over
  the joint action (§4, §9-B10).
* Policy (eqs. 22, 26-28): `ContinuousDiffusionActor` (x_0 in R^{2M}, clamped to [-1, 1], = the Gaussian mean;
  state-independent learned log-std) for the perturbations (u_r, u_theta) of every AV, executed by the env's
  clip-then-affine map (§9-B6), and `DiscreteDiffusionActor` (x_0 in R^{M(N+1)} = logits [M, N+1]) for the agent
  servers. log pi = log pi^c + log pi^d (eq. 26). The start x_U of each mean-only chain is drawn at rollout time
  and stored per transition (§9-B3), so the update re-runs both chains from the stored noise: exact ratios.
* Critic V(s) (§5.5): MLP 256-256 (ReLU) -> 1 on s_t.
* Reward: the env's per-AV reward is the summand of eqs. (20) / (21); the MDP reward is their mean over the M AVs
  (the 1/M sum of eqs. 20-21), one scalar per world and step. `reward_mode` picks it from the env's info: "llm"
  uses `info["reward_llm_mean"]` (eq. 21, LHDPPO), "manual" uses `info["reward_manual_mean"]` (eq. 20, HDPPO),
  whatever the env's own `reward` switch is; "env" uses the mean of the env's reward (its `reward` switch).
  The LogWrapper's episode returns are always the env's own reward.
* Update (eqs. 29-34, §5.6): GAE (gamma = lambda = 0.95, truncation bootstraps V of the final observation);
  `update_epochs` epochs of shuffled minibatches; L = L_PPO (one joint clipped ratio, per-minibatch normalised
  advantages) + c_v L_V (clipped, eq. 31) - c_ent^k H_d (eq. 32, discrete entropy only) + c_aux^k L_diff (eq. 33,
  L1 noise-prediction loss of the discrete chain on the executed one-hots, only where the raw A > 0); one
  global-norm gradient clip, Adam. c_ent and c_aux are annealed linearly over the iterations (§5.5).

Baselines (§7) as configs of the same learner (`ALGORITHMS`): H-PPO = a Gaussian MLP and a Categorical MLP
(`vmjax.agents.mlp_heads`), each head its own clipped ratio (`ratio="per_head"`); GHPPO = LHDPPO with pi^c a
Gaussian MLP; PPO-relaxed = one Gaussian MLP over 2M + M coordinates, the last M mapped to servers
(`discrete_head="relaxed"`); HDPPO = LHDPPO on eq. (20). The learning baselines train on the manual reward
(eq. 20) [R §7]; everything else (rollout, GAE, epochs, optimiser, annealing) is shared.

Initial saturation (see `vmjax.agents.diffusion`): with x_U ~ N(0, I) the mean-only VP chain multiplies x_U by
1/sqrt(abar_U) = 12.5 (U = 5), so with the spec's literal choices ~94% of the continuous means sit on the clamp and
the discrete logits have std ~30 (per-AV entropy ~0.1 nats vs ln 21 = 3.04). Defaults chosen here [C]: a small
epsilon-head gain (`head_gain` = 0.01) and a scaled chain start x_U ~ N(0, `start_noise_scale`^2 I) with
`start_noise_scale` = 0.02 (x_U's contribution to x_0 then has std ~0.25). At init (measured, M = 5, N = 20) the
continuous means are then nowhere near the clamp and the discrete entropy is ~ln 21 (the usual near-uniform PPO
start). `start_noise_scale` = 1 with `head_gain` = 1 is the spec-literal set-up; 0 is the fully deterministic
chain of §9-B3's alternative. The auxiliary loss (eq. 33) still trains the denoiser on the standard forward
process (unit-variance noise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
import optax

from vmjax.agents import distributions, networks, ppo, trainer
from vmjax.agents.diffusion import (
    ChainNoise,
    ContinuousDiffusionActor,
    DiffusionConfig,
    DiscreteDiffusionActor,
    LossNorm,
)
from vmjax.agents.mlp_heads import CategoricalMlpActor, GaussianMlpActor, empty_noise, relaxed_choice
from vmjax.agents.trainer import Trainer, TrainerState
from vmjax.core import validation
from vmjax.core.env import Environment

PyTree = Any
RewardMode = Literal["llm", "manual", "env"]
ContinuousHead = Literal["diffusion", "mlp"]
DiscreteHead = Literal["diffusion", "mlp", "relaxed"]
Ratio = Literal["joint", "per_head"]
REWARD_MODES, CONTINUOUS_HEADS = get_args(RewardMode), get_args(ContinuousHead)
DISCRETE_HEADS, RATIOS = get_args(DiscreteHead), get_args(Ratio)
REWARD_INFO_KEYS = {"llm": "reward_llm_mean", "manual": "reward_manual_mean"}
LOG_METRICS = ("utility", "entropy_bits", "latency_s", "qos_loss")  # per-episode means via the LogWrapper
ROLLOUT_METRICS = ("utility", "entropy_bits", "latency_s", "qos_loss", "reward_llm", "migrated")  # per-step means


# ====================================================================== configuration (§5.5)
@dataclasses.dataclass(frozen=True)
class LhdppoConfig:
    """Hyper-parameters of LHDPPO (spec 000 §5.5; [P] paper value, [R] spec recommendation, [C] chosen here)."""

    num_envs: int = 16  # parallel worlds; 16 x 128 = 2048 transitions per update [R]
    num_steps: int = 128  # rollout steps per iteration [R]
    num_iterations: int = 2441  # ~5e6 env steps / 2048 [P Fig. 4 length]
    update_epochs: int = 10  # [R]
    num_minibatches: int = 8  # 2048 / 8 = minibatch 256 [P batch size 256]
    gamma: float = 0.95  # [P]
    gae_lambda: float = 0.95  # [P]
    clip_eps: float = 0.2  # kappa of eq. (30) [R]
    value_clip_eps: float = 0.2  # kappa of eq. (31) (V_clip); 0 disables the clipping
    value_coef: float = 0.25  # c_v of eq. (34) [P]
    ent_coef_init: float = 0.1  # c_ent at the first iteration [P]
    ent_coef_final: float = 0.001  # c_ent at the last iteration (linear) [R]
    aux_coef_init: float = 0.01  # c_aux at the first iteration [P]
    aux_coef_final: float = 0.0  # c_aux at the last iteration (linear) [R]
    aux_loss_norm: LossNorm = "l1"  # l_diff of eq. (33): "l1" [R] | "l2"
    actor_lr: float = 1e-4  # Adam lr of both diffusion actors (and the log-std) [P]
    critic_lr: float = 1e-4  # Adam lr of the critic [R]
    adam_eps: float = 1e-5
    max_grad_norm: float = 0.5  # one global-norm clip over all parameters [R]
    normalize_advantages: bool = True  # per-minibatch, for L_PPO only [R]
    reward_mode: RewardMode = "llm"  # "llm": eq. (21) (LHDPPO) | "manual": eq. (20) (HDPPO) | "env": the env's reward
    reward_scale: float = 1.0  # train on r x this (the raw rewards are logged)
    # diffusion actors (§5.2, §9-B4/B5)
    denoising_steps: int = 5  # U [P]
    beta_min: float = 0.1  # VP schedule b_min [R]
    beta_max: float = 10.0  # VP schedule b_max [R]
    time_embed_dim: int = 16  # [R]
    time_hidden: int = 32  # [R]
    state_hidden: tuple[int, ...] = (256, 256)  # denoiser state encoder [R]
    trunk_hidden: tuple[int, ...] = (256, 256)  # denoiser trunk [R]
    head_gain: float = 0.01  # orthogonal gain of the epsilon heads [C, see the module docstring]
    start_noise_scale: float = 0.02  # x_U ~ N(0, scale^2 I) [C]; 1.0 = spec literal, 0.0 = x_U = 0 (§9-B3 alt.)
    clip_denoised: bool = False  # GDMOPT per-step x0_hat clamp in the continuous chain
    logit_clip: float | None = None  # clamp of the discrete x_0 (None: unclamped [R B5]; 10.0 the alternative)
    log_std_init: float = -0.5  # [R]
    log_std_min: float = -5.0  # [R]
    log_std_max: float = 1.0  # [R]
    critic_hidden: tuple[int, ...] = (256, 256)  # [R]
    critic_activation: networks.Activation = "relu"  # [R "Mish or ReLU"]
    deterministic_eval: bool = True  # evaluation: the Gaussian mean and argmax logits [R §5.5]
    # policy heads: the baselines of §7 are this learner with other heads (see `hppo_config` and friends)
    continuous_head: ContinuousHead = "diffusion"  # pi^c: "diffusion" (eq. 27) | "mlp" (Gaussian MLP, H-PPO / GHPPO)
    discrete_head: DiscreteHead = "diffusion"  # pi^d: "diffusion" (eq. 28) | "mlp" (H-PPO) | "relaxed" (PPO-relaxed)
    ratio: Ratio = "joint"  # "joint": one clipped ratio of pi^c pi^d (eq. 29) | "per_head": one per head (H-PPO)
    mlp_hidden: tuple[int, ...] = (256, 256)  # hidden widths of the MLP heads [C, as the denoiser trunk]

    def __post_init__(self):
        owner = type(self).__name__
        for name in ("num_envs", "num_steps", "num_iterations", "update_epochs", "num_minibatches"):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        validation.check_int_at_least(owner, "denoising_steps", self.denoising_steps, 1)
        for name in ("gamma", "gae_lambda"):
            validation.check_probability(owner, name, getattr(self, name))
        for name in ("clip_eps", "actor_lr", "critic_lr", "adam_eps", "max_grad_norm", "reward_scale", "head_gain"):
            validation.check_positive(owner, name, getattr(self, name))
        for name in (
            "value_clip_eps",
            "value_coef",
            "ent_coef_init",
            "ent_coef_final",
            "aux_coef_init",
            "aux_coef_final",
            "start_noise_scale",
        ):
            validation.check_non_negative(owner, name, getattr(self, name))
        validation.check_literal_fields(self)
        validation.check_layer_widths(owner, "mlp_hidden", self.mlp_hidden)
        validation.check_layer_widths(owner, "critic_hidden", self.critic_hidden)
        if self.logit_clip is not None:
            validation.check_positive(owner, "logit_clip", self.logit_clip)
        validation.check_minibatches(owner, self.num_minibatches, self.num_envs, self.num_steps)
        # the diffusion fields are checked by DiffusionConfig / the actors, re-raised under this owner's name
        try:
            self.continuous_actor(1)
            self.discrete_actor(1, 2)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{owner}: {err}") from None

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    def diffusion_config(self, x_clip: float | None, clip_denoised: bool) -> DiffusionConfig:
        return DiffusionConfig(
            num_steps=self.denoising_steps,
            beta_min=self.beta_min,
            beta_max=self.beta_max,
            x_clip=x_clip,
            clip_denoised=clip_denoised,
            time_embed_dim=self.time_embed_dim,
            time_hidden=self.time_hidden,
            state_hidden=self.state_hidden,
            trunk_hidden=self.trunk_hidden,
            head_gain=self.head_gain,
        )

    def continuous_actor(self, num_agents: int):
        """pi^c of eq. (27): 2M outputs (3M for PPO-relaxed, whose last M coordinates pick the servers); a diffusion
        chain with x_0 clamped to [-1, 1] [R B5] or a Gaussian MLP."""
        dim = (3 if self.discrete_head == "relaxed" else 2) * num_agents
        if self.continuous_head == "mlp":
            return GaussianMlpActor(
                dim,
                tuple(self.mlp_hidden),
                self.critic_activation,
                self.head_gain,
                self.log_std_init,
                self.log_std_min,
                self.log_std_max,
            )
        return ContinuousDiffusionActor(
            self.diffusion_config(1.0, self.clip_denoised), dim, self.log_std_init, self.log_std_min, self.log_std_max
        )

    def discrete_actor(self, num_agents: int, num_servers: int):
        """pi^d of eq. (28): M x (N + 1) logits from a diffusion chain or an MLP; None for PPO-relaxed."""
        if self.discrete_head == "relaxed":
            return None
        if self.discrete_head == "mlp":
            return CategoricalMlpActor(
                num_agents, num_servers, tuple(self.mlp_hidden), self.critic_activation, self.head_gain
            )
        return DiscreteDiffusionActor(self.diffusion_config(self.logit_clip, False), num_agents, num_servers)


@dataclasses.dataclass(frozen=True)
class HdppoConfig(LhdppoConfig):
    """HDPPO (spec §7.6): LHDPPO trained on the manual reward, eq. (20), instead of eq. (21)."""

    reward_mode: RewardMode = "manual"  # eq. (20)


@dataclasses.dataclass(frozen=True)
class HppoConfig(LhdppoConfig):
    """H-PPO (spec §7.2, Fan et al. 2019): a Categorical MLP and a Gaussian MLP actor, each with its own clipped
    ratio, one shared critic; the manual reward (eq. 20) as every learning baseline [R §7]; no auxiliary loss."""

    reward_mode: RewardMode = "manual"  # eq. (20)
    continuous_head: ContinuousHead = "mlp"  # Gaussian MLP
    discrete_head: DiscreteHead = "mlp"  # Categorical MLP
    ratio: Ratio = "per_head"  # one clipped ratio per actor
    aux_coef_init: float = 0.0  # no denoiser to train
    aux_coef_final: float = 0.0


@dataclasses.dataclass(frozen=True)
class GhppoConfig(LhdppoConfig):
    """GHPPO (spec §7.3): H-PPO with a diffusion discrete actor, i.e. LHDPPO with pi^c a Gaussian MLP, trained on
    the manual reward (eq. 20); the spec's "= LHDPPO with eps^c replaced" reading: one joint ratio [R]."""

    reward_mode: RewardMode = "manual"  # eq. (20)
    continuous_head: ContinuousHead = "mlp"  # Gaussian MLP; the discrete actor stays a diffusion chain


@dataclasses.dataclass(frozen=True)
class PpoRelaxedConfig(LhdppoConfig):
    """PPO-relaxed (spec §7.5): plain PPO with one Gaussian MLP over 2M + M dimensions; AV m's server is
    min(N, floor((u_m + 1)/2 (N + 1))) of its last coordinate. Manual reward (eq. 20)."""

    reward_mode: RewardMode = "manual"  # eq. (20)
    continuous_head: ContinuousHead = "mlp"  # one Gaussian MLP over 2M + M coordinates
    discrete_head: DiscreteHead = "relaxed"  # the last M coordinates mapped to server indices
    ent_coef_init: float = 0.0  # no entropy bonus [C, the usual continuous-PPO default: with a state-independent
    ent_coef_final: float = 0.0  # log-std the bonus only inflates sigma]
    aux_coef_init: float = 0.0  # no denoiser to train
    aux_coef_final: float = 0.0


hdppo_config, hppo_config, ghppo_config, ppo_relaxed_config = HdppoConfig, HppoConfig, GhppoConfig, PpoRelaxedConfig

# every learner of the comparison (§7): name -> config class (keyword overrides)
ALGORITHMS: dict[str, type[LhdppoConfig]] = {
    "lhdppo": LhdppoConfig,
    "hdppo": HdppoConfig,
    "ghppo": GhppoConfig,
    "hppo": HppoConfig,
    "ppo_relaxed": PpoRelaxedConfig,
}


def annealed(init: float, final: float, iteration: jax.Array, num_iterations: int) -> jax.Array:
    """Linear schedule of c_ent / c_aux (§5.5 [R]): `init` at iteration 0, `final` at iteration
    num_iterations - 1 (held there afterwards)."""
    progress = jnp.clip(jnp.asarray(iteration, jnp.float32) / max(num_iterations - 1, 1), 0.0, 1.0)
    return (1.0 - progress) * init + progress * final  # exactly `final` at the end (float32)


def coefficients(config: LhdppoConfig, iteration: jax.Array) -> dict[str, jax.Array]:
    """c_ent^k (eq. 32) and c_aux^k (eqs. 33-34) used by the update of iteration k (0-based)."""
    n = config.num_iterations
    return {
        "ent_coef": annealed(config.ent_coef_init, config.ent_coef_final, iteration, n),
        "aux_coef": annealed(config.aux_coef_init, config.aux_coef_final, iteration, n),
    }


def aux_weight(raw_advantage: jax.Array) -> jax.Array:
    """1(A_t > 0) of eq. (33), on the raw (unnormalised) advantage [R §5.4]."""
    return (raw_advantage > 0.0).astype(jnp.float32)


# ====================================================================== policy (eqs. 22-28) and critic
class PolicySample(NamedTuple):
    """What a rollout stores per transition to recompute log pi exactly (eq. 29, §9-B3)."""

    raw: jax.Array  # [..., 2M] c_raw (log-probs on it)
    noise_c: ChainNoise  # continuous chain start x_U [..., 2M]
    choice: jax.Array  # [..., M] int32 e_m
    noise_d: ChainNoise  # discrete chain start x_U [..., M (N + 1)]
    log_prob_c: jax.Array  # [...]
    log_prob_d: jax.Array  # [...]


class LhdppoPolicy(NamedTuple):
    """The two actors on s_t = the flattened joint observation (eq. 19) and the critic V(s). `discrete` is None
    for PPO-relaxed (§7.5): the continuous actor then has 3M outputs and the last M pick the servers."""

    continuous: Any  # ContinuousDiffusionActor | GaussianMlpActor
    discrete: Any  # DiscreteDiffusionActor | CategoricalMlpActor | None
    critic: networks.Critic
    start_noise_scale: float
    num_agents: int
    num_choices: int  # N + 1

    @staticmethod
    def state(obs: jax.Array) -> jax.Array:
        """s_t = {s_m^t}_m (eq. 19): the env's per-AV observations [..., M, D] -> [..., M D]."""
        return obs.reshape(obs.shape[:-2] + (-1,))

    @property
    def relaxed(self) -> bool:
        return self.discrete is None

    def init(self, key: jax.Array, state: jax.Array) -> dict:
        k_c, k_d, k_v = jax.random.split(key, 3)
        params = {"actor_c": self.continuous.init(k_c, state), "critic": self.critic.init(k_v, state)}
        if not self.relaxed:
            params["actor_d"] = self.discrete.init(k_d, state)
        return params

    def sample_noise(self, key: jax.Array, actor, batch_shape: tuple[int, ...]) -> ChainNoise:
        """x_U ~ N(0, start_noise_scale^2 I) (and the per-step noise of a stochastic chain, unscaled); empty for
        an MLP head or no head."""
        if actor is None:
            return empty_noise(batch_shape)
        noise = actor.sample_noise(key, batch_shape)
        return ChainNoise(noise.x_T * self.start_noise_scale, noise.steps)

    def distributions(self, params: dict, state: jax.Array, noise_c: ChainNoise, noise_d: ChainNoise):
        """(pi^c, pi^d) given the chain noise: the Gaussian over c_raw [..., 2M] and M categoricals [..., M]
        (pi^d is None for PPO-relaxed)."""
        dist_c = self.continuous.distribution(params["actor_c"], state, noise_c)
        return dist_c, None if self.relaxed else self.discrete.distribution(params["actor_d"], state, noise_d)

    def relaxed_choice(self, raw: jax.Array) -> jax.Array:
        """PPO-relaxed's servers [..., M] from the last M coordinates of c_raw (§7.5)."""
        return relaxed_choice(raw[..., 2 * self.num_agents :], self.num_choices)

    def act(self, key: jax.Array, params: dict, state: jax.Array, deterministic: bool = False):
        """Rollout step (§5.6): draw both chain starts, run both chains, sample c_raw ~ N(mu, sigma^2) and
        e_m ~ Cat(logits_m) (mean / argmax when `deterministic`). Returns (env action, PolicySample)."""
        k_nc, k_nd, k_c, k_d = jax.random.split(key, 4)
        batch = state.shape[:-1]
        noise_c = self.sample_noise(k_nc, self.continuous, batch)
        noise_d = self.sample_noise(k_nd, self.discrete, batch)
        dist_c, dist_d = self.distributions(params, state, noise_c, noise_d)
        raw = dist_c.mode() if deterministic else dist_c.sample(seed=k_c)
        if self.relaxed:
            choice, log_prob_d = self.relaxed_choice(raw), jnp.zeros(batch, jnp.float32)
        else:
            choice = (dist_d.mode() if deterministic else dist_d.sample(seed=k_d)).astype(jnp.int32)
            log_prob_d = jnp.sum(dist_d.log_prob(choice), axis=-1)
        sample = PolicySample(raw, noise_c, choice, noise_d, dist_c.log_prob(raw), log_prob_d)
        return self.env_action(sample), sample

    def log_probs(self, params: dict, state: jax.Array, sample: PolicySample):
        """(log pi^c(c_raw | s), log pi^d(d | s)) [...] under `params`, from the stored chain noise (eq. 26);
        log pi^d = 0 for PPO-relaxed (its servers are a function of c_raw). Also returns the distributions."""
        dist_c, dist_d = self.distributions(params, state, sample.noise_c, sample.noise_d)
        log_prob_c = dist_c.log_prob(sample.raw)
        if self.relaxed:
            return log_prob_c, jnp.zeros_like(log_prob_c), dist_c, dist_d
        return log_prob_c, jnp.sum(dist_d.log_prob(sample.choice), axis=-1), dist_c, dist_d

    def discrete_entropy(self, params: dict, dist_d) -> jax.Array:
        """The bracket of eq. (32): mean per-AV entropy of pi^d (nats); for PPO-relaxed the mean per-coordinate
        entropy of the Gaussian over the M server coordinates (state independent)."""
        if self.relaxed:
            log_std = self.continuous.log_std(params["actor_c"])[2 * self.num_agents :]
            return jnp.mean(distributions.gaussian_entropy(log_std))
        return jnp.mean(dist_d.entropy())

    def aux_loss(
        self, params: dict, state: jax.Array, choice: jax.Array, key: jax.Array, weight: jax.Array, norm: str
    ) -> jax.Array:
        """L_diff of eq. (33) for a diffusion discrete actor; 0 for an MLP head or PPO-relaxed."""
        if self.relaxed:
            return jnp.float32(0.0)
        return self.discrete.diffusion_loss(params["actor_d"], state, choice, key, weight, norm)

    def env_action(self, sample: PolicySample) -> dict:
        """{"target": e [..., M], "perturbation": raw (u_r, u_theta) [..., M, 2]} (the env clips and maps)."""
        m = self.num_agents
        perturbation = sample.raw[..., : 2 * m]
        return {"target": sample.choice, "perturbation": perturbation.reshape(perturbation.shape[:-1] + (m, 2))}

    def value(self, params: dict, state: jax.Array) -> jax.Array:
        return self.critic.apply(params["critic"], state)


# ====================================================================== trainer
class Transition(NamedTuple):
    state: jax.Array  # [E, M D] s_t
    sample: PolicySample  # [E, ...]
    value: jax.Array  # [E] V_old(s_t)
    reward: jax.Array  # [E] training reward (mean over AVs, scaled)
    terminated: jax.Array  # [E]
    done: jax.Array  # [E]
    final_state: jax.Array  # [E, M D] the state the step reached (pre-reset)


class Batch(NamedTuple):
    state: jax.Array
    sample: PolicySample
    value: jax.Array
    advantage: jax.Array  # raw GAE advantage
    target: jax.Array  # R_hat = A + V_old


class LhdppoTrainer(Trainer):
    """`trainer.Trainer` (init / update / run / train) with LHDPPO's evaluation policy."""

    def make_eval_policy(self, params_or_state, deterministic: bool | None = None):
        """policy(key, env_state, env_params) -> action for one world of the unwrapped env (the signature of the
        heuristics in `baselines/cross_reality_privacy.py`). `deterministic` (default `config.deterministic_eval`):
        the chain output as the Gaussian mean and argmax logits (the chain start x_U is still drawn)."""
        params = getattr(params_or_state, "params", params_or_state)
        deterministic = self.config.deterministic_eval if deterministic is None else deterministic
        env, policy = self.env, self.policy

        def act(key, env_state, env_params):
            state = policy.state(env.observation(env_state, env_params))
            return policy.act(key, params, state, deterministic)[0]

        return act


class Components(NamedTuple):
    """The pure pieces of a run (tests reach the loss and the rollout through these)."""

    policy: LhdppoPolicy
    init: Callable
    rollout: Callable
    prepare: Callable  # (params, traj) -> Batch (flattened)
    loss_fn: Callable  # (params, batch, key, coefs) -> (loss, stats)
    update: Callable


def make_policy(env: Environment, config: LhdppoConfig, env_params: PyTree) -> LhdppoPolicy:
    num_servers = env.action_space(env_params).spaces["target"].n
    return LhdppoPolicy(
        continuous=config.continuous_actor(env.num_agents),
        discrete=config.discrete_actor(env.num_agents, num_servers),
        critic=networks.Critic(tuple(int(h) for h in config.critic_hidden), config.critic_activation),
        start_noise_scale=float(config.start_noise_scale),
        num_agents=env.num_agents,
        num_choices=num_servers,
    )


def make_optimizer(config: LhdppoConfig) -> optax.GradientTransformation:
    """One global-norm clip over all parameters, then Adam with the actor / critic learning rates (§5.5). The
    learning rates live in the optimizer state (`optax.inject_hyperparams`), so `with_learning_rates` can set
    them per run and a study can vmap over them (the same updates as `optax.adam(lr)`)."""

    def adam(lr):
        return optax.inject_hyperparams(optax.adam)(learning_rate=lr, eps=config.adam_eps)

    def labels(params):
        return {
            name: jax.tree.map(lambda _, label="critic" if name == "critic" else "actor": label, sub)
            for name, sub in params.items()
        }

    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.multi_transform({"actor": adam(config.actor_lr), "critic": adam(config.critic_lr)}, labels),
    )


def with_learning_rates(state: TrainerState, actor_lr, critic_lr) -> TrainerState:
    """`state` with the Adam learning rates of the actor and critic groups (`make_optimizer`) replaced by
    `actor_lr`, `critic_lr` (floats or traced scalars: `jax.vmap` over them trains one run per learning rate in
    one jit). The parameters and the Adam moments are unchanged."""
    rates = {"actor": actor_lr, "critic": critic_lr}

    def replace(path, leaf):
        names = [p.key for p in path if isinstance(p, jax.tree_util.DictKey)]
        if names and names[-1] == "learning_rate" and names[0] in rates:
            return jnp.asarray(rates[names[0]], leaf.dtype) * jnp.ones_like(leaf)
        return leaf

    return state.replace(opt_state=jax.tree_util.tree_map_with_path(replace, state.opt_state))


def learning_rates(state: TrainerState) -> dict[str, jax.Array]:
    """The Adam learning rates {"actor", "critic"} held in `state.opt_state` (see `with_learning_rates`)."""
    found = {}

    def visit(path, leaf):
        names = [p.key for p in path if isinstance(p, jax.tree_util.DictKey)]
        if names and names[-1] == "learning_rate":
            found[names[0]] = leaf
        return leaf

    jax.tree_util.tree_map_with_path(visit, state.opt_state)
    return found


def _mean_over_agents(x: jax.Array) -> jax.Array:
    return jnp.mean(x.astype(jnp.float32), axis=-1) if x.ndim >= 2 else x.astype(jnp.float32)


def training_reward(owner: str, reward_mode: str, reward: jax.Array, info: dict) -> jax.Array:
    """r_t per world [E] (§4.3): the mean over AVs of eq. (21) / (20) summands (see the module docstring), or
    the mean of the env's own per-agent reward for `reward_mode` "env". `owner` names the config in errors."""
    if reward_mode == "env":
        return jnp.mean(reward, axis=-1)
    name = REWARD_INFO_KEYS[reward_mode]
    if name not in info:
        raise ValueError(
            f"{owner}.reward_mode={reward_mode!r} needs info[{name!r}] from the env "
            f"(CrossRealityPrivacy-v0 provides it); use reward_mode='env' for other envs"
        )
    return info[name]


def step_log(reward: jax.Array, info: dict, log_metrics: tuple[str, ...], train_reward: jax.Array) -> dict:
    """What a rollout step logs: the LogWrapper's episode fields, the training reward and the per-step means of
    ROLLOUT_METRICS over AVs (`rollout_<name>`)."""
    log = dict(ppo.episode_log(reward, info, log_metrics), train_reward=train_reward)
    log.update({f"rollout_{m}": _mean_over_agents(info[m]) for m in ROLLOUT_METRICS if m in info})
    return log


def make_components(
    env: Environment, config: LhdppoConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> Components:
    env_params, vec = trainer.vector_env(env, env_params, config.num_envs, log_metrics)
    policy = make_policy(env, config, env_params)
    optimizer = make_optimizer(config)
    value_clip = config.value_clip_eps if config.value_clip_eps > 0 else None

    def init(key) -> TrainerState:
        k_env, k_params, k_run = jax.random.split(key, 3)
        obs, env_state = vec.reset(k_env, env_params)
        params = policy.init(k_params, policy.state(obs[0]))
        return TrainerState(params, optimizer.init(params), env_state, obs, k_run, jnp.int32(0))

    # ------------------------------------------------------------------ rollout (§5.6)
    def rollout(state: TrainerState, key):
        def step(carry, step_key):
            env_state, obs = carry
            k_act, k_env = jax.random.split(step_key)
            s = policy.state(obs)
            action, sample = policy.act(k_act, state.params, s)
            value = policy.value(state.params, s)
            next_obs, env_state, reward, terminated, truncated, info = vec.step(k_env, env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            r = training_reward(type(config).__name__, config.reward_mode, reward, info)
            transition = Transition(
                s, sample, value, r * config.reward_scale, terminated, done, policy.state(info["final_observation"])
            )
            log = step_log(reward, info, log_metrics, r)
            return (env_state, next_obs), (transition, log)

        keys = jax.random.split(key, config.num_steps)
        (env_state, obs), (traj, log) = jax.lax.scan(step, (state.env_state, state.obs), keys)
        return env_state, obs, traj, log

    def prepare(params, traj: Transition) -> Batch:
        """GAE (§5.4) with V(s'_t) of the pre-reset state (truncation bootstraps), flattened to [T E, ...]."""
        next_values = policy.value(params, traj.final_state)
        adv, ret = ppo.gae(
            traj.reward, traj.value, next_values, traj.terminated, traj.done, config.gamma, config.gae_lambda
        )
        flat = lambda tree: jax.tree.map(ppo.flatten_time, tree)
        return Batch(flat(traj.state), flat(traj.sample), flat(traj.value), flat(adv), flat(ret))

    # ------------------------------------------------------------------ loss, eq. (34)
    def loss_fn(params, batch: Batch, key, coefs):
        sample = batch.sample
        log_prob_c, log_prob_d, _, dist_d = policy.log_probs(params, batch.state, sample)
        log_prob, old_log_prob = log_prob_c + log_prob_d, sample.log_prob_c + sample.log_prob_d  # eq. (26)
        adv = ppo.normalize(batch.advantage) if config.normalize_advantages else batch.advantage
        per_head = {
            head: ppo.clipped_surrogate_loss(new, old, adv, config.clip_eps)
            for head, (new, old) in {"c": (log_prob_c, sample.log_prob_c), "d": (log_prob_d, sample.log_prob_d)}.items()
        }
        if config.ratio == "joint":
            policy_loss, clip_stats = ppo.clipped_surrogate_loss(
                log_prob, old_log_prob, adv, config.clip_eps
            )  # (29-30)
        else:  # H-PPO: each head its own clipped ratio
            policy_loss = per_head["c"][0] + per_head["d"][0]
            clip_stats = jax.tree.map(lambda c, d: 0.5 * (c + d), per_head["c"][1], per_head["d"][1])
        value = policy.value(params, batch.state)
        value_loss = ppo.value_loss(value, batch.value, batch.target, value_clip)  # eq. (31)
        entropy_d = policy.discrete_entropy(params, dist_d)  # the bracket of eq. (32), nats per AV
        weight = aux_weight(batch.advantage)
        aux_loss = policy.aux_loss(params, batch.state, sample.choice, key, weight, config.aux_loss_norm)  # (33)
        total = (
            policy_loss + config.value_coef * value_loss - coefs["ent_coef"] * entropy_d + coefs["aux_coef"] * aux_loss
        )  # eq. (34)
        stats = {
            "total_loss": total,
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "aux_loss": aux_loss,
            "entropy_d": entropy_d,
            "entropy_c": policy.continuous.entropy(params["actor_c"]),
            "aux_fraction": jnp.mean(weight),
            "clip_fraction": clip_stats["clip_fraction"],
            "approx_kl": clip_stats["approx_kl"],
            # per-head clip fraction / KL (diagnostics with the joint ratio of eq. 29; the loss with "per_head")
            **{
                f"{stat}_{head}": value
                for head, (_, head_stats) in per_head.items()
                for stat, value in head_stats.items()
            },
            "ratio_max_dev": jnp.max(jnp.abs(jnp.exp(log_prob - old_log_prob) - 1.0)),
        }
        return total, stats

    def make_gradient_step(coefs):
        def gradient_step(carry, batch: Batch):
            params, opt_state, key = carry
            key, k_aux = jax.random.split(key)
            grads, stats = jax.grad(loss_fn, has_aux=True)(params, batch, k_aux, coefs)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, key), stats

        return gradient_step

    def update(state: TrainerState) -> tuple[TrainerState, dict]:
        key, k_roll, k_epochs, k_aux = jax.random.split(state.key, 4)
        coefs = coefficients(config, state.iteration)
        env_state, obs, traj, log = rollout(state, k_roll)
        batch = prepare(state.params, traj)
        (params, opt_state, _), stats = ppo.shuffled_minibatch_epochs(
            k_epochs,
            batch,
            config.update_epochs,
            config.num_minibatches,
            make_gradient_step(coefs),
            (state.params, state.opt_state, k_aux),
        )
        rollout_means = {name: jnp.mean(v) for name, v in log.items() if name.startswith("rollout_")}
        metrics = {
            **trainer.iteration_metrics(state.iteration, config.env_steps_per_iteration, log, log_metrics),
            "mean_train_reward": jnp.mean(log["train_reward"]),
            **rollout_means,
            **jax.tree.map(jnp.mean, stats),
            "ratio_max_dev_first": stats["ratio_max_dev"][0, 0],  # before any gradient step: 0 up to rounding
            "log_std_mean": jnp.mean(policy.continuous.log_std(params["actor_c"])),
            **coefs,
        }
        return TrainerState(params, opt_state, env_state, obs, key, state.iteration + 1), metrics

    return Components(policy, init, rollout, prepare, loss_fn, update)


def make_trainer(
    env: Environment, config: LhdppoConfig, env_params: PyTree | None = None, log_metrics: tuple[str, ...] = LOG_METRICS
) -> LhdppoTrainer:
    """Build the pure functions of an LHDPPO run on CrossRealityPrivacy-v0 (hybrid {"target", "perturbation"}
    action, per-AV rewards). `log_metrics`: info keys whose per-episode means are logged."""
    return trainer.assemble(LhdppoTrainer, make_components, env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics), jittable, vmap over seeds


__all__ = [
    "ALGORITHMS",
    "Batch",
    "Components",
    "GhppoConfig",
    "HdppoConfig",
    "HppoConfig",
    "LhdppoConfig",
    "LhdppoPolicy",
    "LhdppoTrainer",
    "PolicySample",
    "PpoRelaxedConfig",
    "Transition",
    "annealed",
    "aux_weight",
    "coefficients",
    "ghppo_config",
    "hdppo_config",
    "hppo_config",
    "make_components",
    "learning_rates",
    "make_optimizer",
    "make_policy",
    "make_train",
    "make_trainer",
    "ppo_relaxed_config",
    "step_log",
    "training_reward",
    "with_learning_rates",
]
