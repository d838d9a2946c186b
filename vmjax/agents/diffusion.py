"""Diffusion-policy actors for LHDPPO (spec 000 §5.1-5.4, §9-B, §10): a VP noise schedule, a conditional
epsilon-prediction denoiser, the reverse chain under `lax.scan`, and the continuous / discrete actors built on it.

    cfg_c = DiffusionConfig(x_clip=1.0)                       # continuous chain: x_0 clamped to [-1, 1] [REC B5]
    actor_c = ContinuousDiffusionActor(cfg_c, action_dim=2 * M)
    actor_d = DiscreteDiffusionActor(DiffusionConfig(), num_agents=M, num_choices=N + 1)
    params_c = actor_c.init(key_c, state)                     # {"denoiser": ..., "log_std": [2M]}
    sample = actor_c.act(key, params_c, state)                # raw action, stored chain noise, log-prob
    new_lp = actor_c.log_prob(new_params_c, state, sample.noise, sample.raw)   # PPO ratio, eq. (29)

The chain is *mean-only* by default (§5.2 [PAPER]): x_{u-1} = mu_psi(x_u, s, u) for u = U..1, started from
x_U ~ N(0, I) drawn at rollout time and stored per transition (§9-B3 [REC]). `DiffusionConfig.step_noise` also
offers the stochastic DDPM chain of eq. (24) (x_{u-1} = mu + sigma_u z_u); its per-step noises z_u are then drawn
up front too. All randomness of a chain is one `ChainNoise`, so re-running the chain from it with new parameters
gives exact PPO log-probs, and gradients flow through every denoising step.

Shapes: every function takes a conditioning state `state` [..., D] and works on any leading batch shape (and
under `jax.vmap`, e.g. over per-vehicle parameters stacked on a leading axis). The per-transition noise is
`ChainNoise(x_T [..., X], steps [..., U, X] or None)`. Under `jax.jit`, pass `deterministic` of `act` as a static
argument (`jax.jit(actor.act, static_argnames="deterministic")`).

Behaviour at initialisation (measured on CPU, M = 5, N + 1 = 21, D = 40, the [REC] sizes, 256 random states): the
mean-only eq. (25) chain from x_U ~ N(0, I) amplifies (with eps ~ 0 it returns x_U / sqrt(abar_U) = 12.5 x_U), so
~95% of the continuous x_0 coordinates sit on the [-1, 1] clamp, where mu has zero gradient (67% with
`clip_denoised=True`), and the discrete logits have std ~34 (mean per-vehicle entropy 0.09 nats vs ln 21 = 3.04).
The trainer's entropy bonus / learning has to pull these in; `head_gain` and `clip_denoised` are the knobs here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmjax.agents import distributions, networks, ppo
from vmjax.core import validation
from vmjax.core.initializers import orthogonal

PyTree = Any
ScheduleName = Literal["vp", "linear"]
StepNoise = Literal["none", "beta", "posterior"]
LossNorm = Literal["l1", "l2"]
Activation = Literal["mish", networks.Activation]  # Mish or one of networks.ACTIVATIONS
SCHEDULES = get_args(ScheduleName)
STEP_NOISE = get_args(StepNoise)
LOSS_NORMS = get_args(LossNorm)
ACTIVATIONS: dict[str, Callable] = {"mish": jax.nn.mish, **networks.ACTIVATIONS}


# ====================================================================== config and noise schedule (§5.2, §9-B4)
@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """One diffusion chain and its denoiser ([PAPER] / [REC] per spec 000 §5.2, §5.5, §9-B4/B5)."""

    num_steps: int = 5  # U denoising steps [PAPER]
    schedule: ScheduleName = "vp"  # "vp": Diffusion-QL/GDMOPT VP schedule [REC]; "linear": beta_u linear in u
    beta_min: float = 0.1  # vp: b_min [REC]; linear: beta_1
    beta_max: float = 10.0  # vp: b_max [REC]; linear: beta_U (must be < 1)
    step_noise: StepNoise = "none"  # "none": mean-only chain [PAPER]; "beta": sigma_u^2 = beta_u (eq. 24);
    # "posterior": sigma_u^2 = beta_u (1 - abar_{u-1}) / (1 - abar_u) (DDPM posterior variance, 0 at u = 1)
    x_clip: float | None = None  # clamp x_0 to [-x_clip, x_clip]; 1.0 for the continuous actor [REC B5],
    # None (unclamped logits) for the discrete actor [REC B5]
    clip_denoised: bool = False  # GDMOPT/Diffusion-QL per-step variant: x0_hat = (x_u - sqrt(1 - abar_u) eps) /
    # sqrt(abar_u) clamped to [-x_clip, x_clip], then the DDPM posterior mean (= eq. 25 when nothing is clamped)
    time_embed_dim: int = 16  # sinusoidal time embedding size (even, >= 4) [REC]
    time_hidden: int = 32  # time MLP: Linear(16, 32) -> Mish -> Linear(32, 16) [REC]
    state_hidden: tuple[int, ...] = (256, 256)  # state encoder: Linear(D, 256) -> Mish -> Linear(256, 256) [REC]
    trunk_hidden: tuple[int, ...] = (256, 256)  # trunk: Linear(., 256) -> Mish -> Linear(256, 256) -> Mish [REC]
    activation: Activation = "mish"  # [REC]; "relu" | "tanh" also accepted
    head_gain: float = 1.0  # orthogonal gain of the epsilon head (the repo's init; GDMOPT uses PyTorch defaults)

    def __post_init__(self):
        owner = "DiffusionConfig"
        validation.check_int_at_least(owner, "num_steps", self.num_steps, 1)
        validation.check_literal_fields(self)
        validation.check_positive(owner, "beta_min", self.beta_min)
        validation.check_positive(owner, "beta_max", self.beta_max)
        validation.check_range(owner, "beta_min", "beta_max", self.beta_min, self.beta_max)
        if self.schedule == "linear" and self.beta_max >= 1.0:
            raise ValueError(f"{owner}.beta_max must be < 1 for the linear schedule, got {self.beta_max!r}")
        if self.x_clip is not None:
            validation.check_positive(owner, "x_clip", self.x_clip)
        if self.clip_denoised and self.x_clip is None:
            raise ValueError(f"{owner}.clip_denoised needs {owner}.x_clip (the clamp range), got x_clip=None")
        validation.check_int_at_least(owner, "time_embed_dim", self.time_embed_dim, 4)
        if self.time_embed_dim % 2:
            raise ValueError(f"{owner}.time_embed_dim must be even, got {self.time_embed_dim}")
        validation.check_int_at_least(owner, "time_hidden", self.time_hidden, 1)
        validation.check_layer_widths(owner, "state_hidden", self.state_hidden)
        validation.check_layer_widths(owner, "trunk_hidden", self.trunk_hidden)
        validation.check_positive(owner, "head_gain", self.head_gain)


class Schedule(NamedTuple):
    """Precomputed constants of the U-step chain, float32 arrays [U]; entry u - 1 belongs to step u (eq. 25)."""

    betas: np.ndarray  # beta_u
    alphas: np.ndarray  # alpha_u = 1 - beta_u
    alpha_bars: np.ndarray  # abar_u = prod_{k <= u} alpha_k
    alpha_bars_prev: np.ndarray  # abar_{u-1}, abar_0 = 1
    posterior_variances: np.ndarray  # beta_u (1 - abar_{u-1}) / (1 - abar_u)
    eps_coefs: np.ndarray  # beta_u / sqrt(1 - abar_u), the epsilon coefficient of eq. (25)
    inv_sqrt_alphas: np.ndarray  # 1 / sqrt(alpha_u)
    step_sigmas: np.ndarray  # sigma_u of x_{u-1} = mu + sigma_u z_u (zeros for the mean-only chain)
    recip_sqrt_alpha_bars: np.ndarray  # 1 / sqrt(abar_u): x0_hat = x_u / sqrt(abar_u) - sqrt(1/abar_u - 1) eps
    recipm1_sqrt_alpha_bars: np.ndarray  # sqrt(1 / abar_u - 1)
    posterior_x0_coefs: np.ndarray  # beta_u sqrt(abar_{u-1}) / (1 - abar_u): posterior mean coefficient of x0_hat
    posterior_xu_coefs: np.ndarray  # (1 - abar_{u-1}) sqrt(alpha_u) / (1 - abar_u): ... and of x_u


def betas(config: DiffusionConfig) -> np.ndarray:
    """beta_u, u = 1..U (float64). vp [REC §5.2]: beta_u = 1 - exp(-b_min/U - 0.5 (b_max - b_min)(2u - 1)/U^2);
    linear: evenly spaced from beta_min to beta_max."""
    steps = config.num_steps
    if config.schedule == "linear":
        return np.linspace(config.beta_min, config.beta_max, steps)
    u = np.arange(1, steps + 1, dtype=np.float64)
    spread = 0.5 * (config.beta_max - config.beta_min) * (2.0 * u - 1.0) / steps**2
    return 1.0 - np.exp(-config.beta_min / steps - spread)


def make_schedule(config: DiffusionConfig) -> Schedule:
    """All schedule arrays of eqs. (23)-(25), computed in float64 on the host and stored as float32."""
    beta = betas(config)
    alpha = 1.0 - beta
    alpha_bar = np.cumprod(alpha)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    posterior = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    sigma = {"none": np.zeros_like(beta), "beta": np.sqrt(beta), "posterior": np.sqrt(posterior)}[config.step_noise]
    arrays = (
        beta,
        alpha,
        alpha_bar,
        alpha_bar_prev,
        posterior,
        beta / np.sqrt(1.0 - alpha_bar),
        1.0 / np.sqrt(alpha),
        sigma,
        1.0 / np.sqrt(alpha_bar),
        np.sqrt(1.0 / alpha_bar - 1.0),
        beta * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
        (1.0 - alpha_bar_prev) * np.sqrt(alpha) / (1.0 - alpha_bar),
    )
    return Schedule(*(np.asarray(a, np.float32) for a in arrays))


# ====================================================================== denoiser epsilon_psi(x_u, s, u) (§5.2)
def sinusoidal_embedding(u: jax.Array, dim: int) -> jax.Array:
    """Transformer/GDMOPT time embedding of step(s) u [...] -> [..., dim]: [sin(u f), cos(u f)] with
    f_j = 10000^(-j / (dim/2 - 1)), j = 0..dim/2 - 1."""
    half = dim // 2
    freqs = jnp.exp(jnp.arange(half, dtype=jnp.float32) * (-math.log(10000.0) / (half - 1)))
    angles = jnp.asarray(u, jnp.float32)[..., None] * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def _dense(features: int, gain: float, name: str) -> nn.Dense:
    """A named `networks.dense` layer: orthogonal(gain) kernel (the QR-free initializer), zero bias."""
    return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros, name=name)


class Denoiser(nn.Module):
    """epsilon_psi(x_u, s, u) (§5.2 [REC], the GDMOPT MLP): time embedding sinusoidal -> Linear -> act -> Linear,
    state encoder Linear -> act -> ... -> Linear, trunk concat[x_u, t_emb, s_enc] -> (Linear -> act) x k ->
    Linear(x_dim). Predicts the noise epsilon. `x` [..., X], `u` scalar or [...] (steps 1..U), `state` [..., D]."""

    x_dim: int
    config: DiffusionConfig = DiffusionConfig()

    @nn.compact
    def __call__(self, x: jax.Array, u: jax.Array, state: jax.Array) -> jax.Array:
        cfg = self.config
        act = ACTIVATIONS[cfg.activation]
        gain = float(np.sqrt(2.0))
        t = sinusoidal_embedding(u, cfg.time_embed_dim)
        t = _dense(cfg.time_embed_dim, 1.0, "time_1")(act(_dense(cfg.time_hidden, gain, "time_0")(t)))
        s = state
        for i, width in enumerate(cfg.state_hidden):
            s = _dense(width, gain, f"state_{i}")(s)
            s = act(s) if i < len(cfg.state_hidden) - 1 else s  # the encoder ends with a plain Linear
        batch = jnp.broadcast_shapes(x.shape[:-1], t.shape[:-1], s.shape[:-1])
        parts = [jnp.broadcast_to(a, batch + a.shape[-1:]) for a in (x, t, s)]
        h = jnp.concatenate(parts, axis=-1)
        for i, width in enumerate(cfg.trunk_hidden):
            h = act(_dense(width, gain, f"trunk_{i}")(h))
        return _dense(self.x_dim, cfg.head_gain, "out")(h)


# ====================================================================== the reverse chain (eqs. 23-25)
class ChainNoise(NamedTuple):
    """All the randomness of one reverse chain, stored per transition (§9-B3): the start x_U ~ N(0, I) and, for
    a stochastic chain (`step_noise` != "none"), z_u ~ N(0, I) per step (`steps[..., u - 1, :]`); else None."""

    x_T: jax.Array  # [..., X]
    steps: jax.Array | None  # [..., U, X] or None (mean-only chain, §5.2 [PAPER])


def sample_chain_noise(key: jax.Array, config: DiffusionConfig, x_dim: int, batch_shape: tuple[int, ...] = ()):
    """Draw a `ChainNoise` up front (rollout time) for chains of batch shape `batch_shape`."""
    k_start, k_steps = jax.random.split(key)
    x_T = jax.random.normal(k_start, batch_shape + (x_dim,))
    if config.step_noise == "none":
        return ChainNoise(x_T, None)
    return ChainNoise(x_T, jax.random.normal(k_steps, batch_shape + (config.num_steps, x_dim)))


def reverse_chain(
    denoise: Callable, schedule: Schedule, state: jax.Array, noise: ChainNoise, denoised_clip: float | None = None
) -> jax.Array:
    """x_0 of the reverse chain (eqs. 23-25) from stored noise, as one `lax.scan` over u = U..1:

        x_{u-1} = (1/sqrt(alpha_u)) (x_u - beta_u / sqrt(1 - abar_u) eps(x_u, s, u)) + sigma_u z_u

    with sigma_u = 0 for the mean-only chain. With `denoised_clip` (GDMOPT's clip_denoised), the mean is instead
    c1_u clip(x0_hat, +-clip) + c2_u x_u, x0_hat = x_u / sqrt(abar_u) - sqrt(1/abar_u - 1) eps: the same value as
    eq. (25) wherever x0_hat is inside the clamp. `denoise(x, u, state)` is the denoiser with its parameters bound;
    gradients flow through every step. Returns x_0 [..., X] (not clamped at the end)."""
    num_steps = schedule.betas.shape[0]
    u = jnp.arange(num_steps, 0, -1, dtype=jnp.int32)  # U, ..., 1
    rev = lambda a: jnp.asarray(a)[::-1]  # entry u - 1 -> position U - u
    steps = jnp.zeros((num_steps,)) if noise.steps is None else rev(jnp.moveaxis(noise.steps, -2, 0))

    def step(x, inputs):
        u_k, c, z = inputs
        eps = denoise(x, u_k, state)
        if denoised_clip is None:
            mean = c.inv_sqrt_alphas * (x - c.eps_coefs * eps)  # eq. (25)
        else:
            x0_hat = jnp.clip(
                c.recip_sqrt_alpha_bars * x - c.recipm1_sqrt_alpha_bars * eps, -denoised_clip, denoised_clip
            )
            mean = c.posterior_x0_coefs * x0_hat + c.posterior_xu_coefs * x
        return mean + c.step_sigmas * z if noise.steps is not None else mean, None

    xs = (u, jax.tree.map(rev, schedule), steps)
    x_0, _ = jax.lax.scan(step, noise.x_T, xs)
    return x_0


@dataclasses.dataclass(frozen=True)
class DiffusionChain:
    """A conditional diffusion model over x in R^X: the denoiser, its schedule and the chain (§5.2)."""

    config: DiffusionConfig
    x_dim: int

    def __post_init__(self):
        validation.check_int_at_least("DiffusionChain", "x_dim", self.x_dim, 1)

    @property
    def denoiser(self) -> Denoiser:
        return Denoiser(self.x_dim, self.config)

    @property
    def schedule(self) -> Schedule:
        return make_schedule(self.config)

    def init(self, key: jax.Array, state: jax.Array) -> PyTree:
        """Denoiser parameters for conditioning states shaped like `state` [D] (or [..., D])."""
        x = jnp.zeros(state.shape[:-1] + (self.x_dim,), jnp.float32)
        return self.denoiser.init(key, x, jnp.int32(1), state)

    def sample_noise(self, key: jax.Array, batch_shape: tuple[int, ...] = ()) -> ChainNoise:
        return sample_chain_noise(key, self.config, self.x_dim, batch_shape)

    def run(self, params: PyTree, state: jax.Array, noise: ChainNoise) -> jax.Array:
        """x_0 [..., X] from stored noise, clamped to [-x_clip, x_clip] when `x_clip` is set (§5.2, §9-B5)."""
        denoise = functools.partial(self.denoiser.apply, params)
        clip = self.config.x_clip
        x_0 = reverse_chain(denoise, self.schedule, state, noise, clip if self.config.clip_denoised else None)
        return x_0 if clip is None else jnp.clip(x_0, -clip, clip)


# ====================================================================== auxiliary diffusion loss (eq. 33)
class LossNoise(NamedTuple):
    """The randomness of one DDPM training step: the step u ~ U{1..U} [...] and epsilon ~ N(0, I) [..., X]."""

    u: jax.Array
    eps: jax.Array


def sample_loss_noise(key: jax.Array, num_steps: int, x_shape: tuple[int, ...]) -> LossNoise:
    k_u, k_eps = jax.random.split(key)
    u = jax.random.randint(k_u, x_shape[:-1], 1, num_steps + 1, dtype=jnp.int32)
    return LossNoise(u, jax.random.normal(k_eps, x_shape))


def denoising_errors(
    chain: DiffusionChain, params: PyTree, state: jax.Array, x_0: jax.Array, noise: LossNoise, norm: str = "l1"
) -> jax.Array:
    """Per-sample l_diff [...] (eq. 33 [REC §5.4]): x_u = sqrt(abar_u) x_0 + sqrt(1 - abar_u) eps and
    l = mean_j |eps_psi(x_u, s, u) - eps|_j ("l1", the spec) or mean_j (.)^2 ("l2", the plain DDPM MSE)."""
    validation.check_choice("denoising_errors", "norm", norm, LOSS_NORMS)
    alpha_bar = jnp.asarray(chain.schedule.alpha_bars)[noise.u - 1][..., None]
    x_u = jnp.sqrt(alpha_bar) * x_0 + jnp.sqrt(1.0 - alpha_bar) * noise.eps
    residual = chain.denoiser.apply(params, x_u, noise.u, state) - noise.eps
    return jnp.mean(jnp.abs(residual) if norm == "l1" else jnp.square(residual), axis=-1)


def diffusion_loss(
    chain: DiffusionChain,
    params: PyTree,
    state: jax.Array,
    x_0: jax.Array,
    key: jax.Array,
    weight: jax.Array | None = None,
    norm: str = "l1",
) -> jax.Array:
    """L_diff (eq. 33): sum(w l_diff) / max(1, sum(w)) over the samples, with w = 1(A_raw > 0) from the trainer
    (None: plain mean). `state` [..., D], `x_0` [..., X], `weight` [...]. Samples with w = 0 contribute nothing
    (no value, no gradient)."""
    errors = denoising_errors(
        chain, params, state, x_0, sample_loss_noise(key, chain.config.num_steps, x_0.shape), norm
    )
    return ppo.masked_mean(errors, weight)


# ====================================================================== continuous actor (eq. 27)
def check_log_std_bounds(owner: str, actor) -> None:
    """A Gaussian actor's log_std_init / _min / _max: finite and log_std_min <= log_std_init <= log_std_max."""
    for name in ("log_std_init", "log_std_min", "log_std_max"):
        validation.check_finite(owner, name, getattr(actor, name))
    validation.check_range(owner, "log_std_min", "log_std_init", actor.log_std_min, actor.log_std_init)
    validation.check_range(owner, "log_std_init", "log_std_max", actor.log_std_init, actor.log_std_max)


class ContinuousSample(NamedTuple):
    raw: jax.Array  # [..., A] c_raw = mu + sigma z (log-probs are taken on it, §9-B6)
    noise: ChainNoise  # the chain noise to store
    log_prob: jax.Array  # [...] log N(c_raw; mu, sigma^2)
    mean: jax.Array  # [..., A] mu = clamped chain output


@dataclasses.dataclass(frozen=True)
class ContinuousDiffusionActor:
    """pi^c(c | s) = N(c; mu_psi(s, x_U), diag(sigma^2)) (eq. 27): mu = the chain's clamped x_0, sigma = exp of
    a state-independent learned log-std vector [REC: init -0.5, clamped to [-5, 1]]. Params:
    {"denoiser": Flax params, "log_std": [A]}."""

    config: DiffusionConfig = DiffusionConfig(x_clip=1.0)
    action_dim: int = 2
    log_std_init: float = -0.5
    log_std_min: float = -5.0
    log_std_max: float = 1.0

    def __post_init__(self):
        owner = "ContinuousDiffusionActor"
        validation.check_int_at_least(owner, "action_dim", self.action_dim, 1)
        check_log_std_bounds(owner, self)

    @property
    def chain(self) -> DiffusionChain:
        return DiffusionChain(self.config, self.action_dim)

    def init(self, key: jax.Array, state: jax.Array) -> dict:
        return {
            "denoiser": self.chain.init(key, state),
            "log_std": jnp.full((self.action_dim,), self.log_std_init, jnp.float32),
        }

    def sample_noise(self, key: jax.Array, batch_shape: tuple[int, ...] = ()) -> ChainNoise:
        return self.chain.sample_noise(key, batch_shape)

    def mean(self, params: dict, state: jax.Array, noise: ChainNoise) -> jax.Array:
        """mu_psi(s) [..., A]: the clamped chain output (eqs. 25, 27)."""
        return self.chain.run(params["denoiser"], state, noise)

    def log_std(self, params: dict) -> jax.Array:
        return jnp.clip(params["log_std"], self.log_std_min, self.log_std_max)

    def distribution(self, params: dict, state: jax.Array, noise: ChainNoise) -> distrax.Distribution:
        mean = self.mean(params, state, noise)
        return distributions.gaussian(mean, jnp.broadcast_to(self.log_std(params), mean.shape))

    def log_prob(self, params: dict, state: jax.Array, noise: ChainNoise, raw: jax.Array) -> jax.Array:
        """log pi^c(c_raw | s) [...] under `params`, re-running the chain from the stored noise (eqs. 26-27)."""
        return self.distribution(params, state, noise).log_prob(raw)

    def entropy(self, params: dict) -> jax.Array:
        """Entropy of the Gaussian (state independent: it depends on log sigma only)."""
        log_std = self.log_std(params)
        return jnp.sum(distributions.gaussian_entropy(log_std))

    def act(self, key: jax.Array, params: dict, state: jax.Array, deterministic: bool = False) -> ContinuousSample:
        """Rollout step (§5.6): draw the chain noise, run the chain, sample c_raw = mu + sigma z (the mean when
        `deterministic`, for evaluation) and its log-prob."""
        k_chain, k_z = jax.random.split(key)
        noise = self.sample_noise(k_chain, state.shape[:-1])
        dist = self.distribution(params, state, noise)
        raw = dist.mode() if deterministic else dist.sample(seed=k_z)
        return ContinuousSample(raw, noise, dist.log_prob(raw), dist.mode())


def perturbation_action(raw: jax.Array, r_max: float) -> dict[str, jax.Array]:
    """Map c_raw [..., 2M] to the executed perturbation (eq. 27 [REC §9-B6], clip then affine; no Jacobian since the
    log-prob is on c_raw): layout [r_1, theta_1, r_2, theta_2, ...]; radius = (clip(c_r, -1, 1) + 1)/2 r_max in
    [0, r_max] and angle = (clip(c_theta, -1, 1) + 1) pi in [0, 2 pi]. Returns {"radius", "angle"} [..., M]."""
    pairs = jnp.clip(raw, -1.0, 1.0).reshape(raw.shape[:-1] + (-1, 2))
    return {"radius": (pairs[..., 0] + 1.0) * 0.5 * r_max, "angle": (pairs[..., 1] + 1.0) * jnp.pi}


# ====================================================================== discrete actor (eq. 28)
class DiscreteSample(NamedTuple):
    choice: jax.Array  # [..., M] int32 e_m (the agent server of each vehicle)
    noise: ChainNoise  # the chain noise to store
    log_prob: jax.Array  # [...] sum_m log Cat(e_m | logits_m) (eq. 28)
    logits: jax.Array  # [..., M, K]


@dataclasses.dataclass(frozen=True)
class DiscreteDiffusionActor:
    """pi^d(d | s) = prod_m Cat(e_m | logits_m(s)) (eq. 28): the chain's x_0 in R^{M K}, reshaped [M, K]
    (vehicle-major), is the logits (unclamped by default, §9-B5). Params: {"denoiser": Flax params}."""

    config: DiffusionConfig = DiffusionConfig()
    num_agents: int = 1
    num_choices: int = 2

    def __post_init__(self):
        validation.check_int_at_least("DiscreteDiffusionActor", "num_agents", self.num_agents, 1)
        validation.check_int_at_least("DiscreteDiffusionActor", "num_choices", self.num_choices, 2)

    @property
    def chain(self) -> DiffusionChain:
        return DiffusionChain(self.config, self.num_agents * self.num_choices)

    def init(self, key: jax.Array, state: jax.Array) -> dict:
        return {"denoiser": self.chain.init(key, state)}

    def sample_noise(self, key: jax.Array, batch_shape: tuple[int, ...] = ()) -> ChainNoise:
        return self.chain.sample_noise(key, batch_shape)

    def logits(self, params: dict, state: jax.Array, noise: ChainNoise) -> jax.Array:
        x_0 = self.chain.run(params["denoiser"], state, noise)
        return x_0.reshape(x_0.shape[:-1] + (self.num_agents, self.num_choices))

    def distribution(self, params: dict, state: jax.Array, noise: ChainNoise) -> distrax.Categorical:
        """M independent categoricals, batch shape [..., M]."""
        return distrax.Categorical(logits=self.logits(params, state, noise))

    def log_prob(self, params: dict, state: jax.Array, noise: ChainNoise, choice: jax.Array) -> jax.Array:
        """log pi^d(d | s) = sum_m log softmax(logits_m)[e_m] [...] (eq. 28), from the stored chain noise."""
        return jnp.sum(self.distribution(params, state, noise).log_prob(choice), axis=-1)

    def entropy(self, params: dict, state: jax.Array, noise: ChainNoise) -> jax.Array:
        """(1/M) sum_m H(Cat(logits_m)) [...] (the bracket of eq. 32, in nats)."""
        return jnp.mean(self.distribution(params, state, noise).entropy(), axis=-1)

    def act(self, key: jax.Array, params: dict, state: jax.Array, deterministic: bool = False) -> DiscreteSample:
        """Rollout step (§5.6): draw the chain noise, run the chain, sample e_m ~ Cat(softmax(logits_m)) (argmax
        when `deterministic`) and the joint log-prob."""
        k_chain, k_e = jax.random.split(key)
        noise = self.sample_noise(k_chain, state.shape[:-1])
        dist = distrax.Categorical(logits=self.logits(params, state, noise))
        choice = (dist.mode() if deterministic else dist.sample(seed=k_e)).astype(jnp.int32)
        return DiscreteSample(choice, noise, jnp.sum(dist.log_prob(choice), axis=-1), dist.logits)

    def one_hot(self, choice: jax.Array) -> jax.Array:
        """x_0^d of eq. (33): the concatenated one-hot of the executed choices [..., M] -> [..., M K]."""
        hot = jax.nn.one_hot(choice, self.num_choices, dtype=jnp.float32)
        return hot.reshape(choice.shape[:-1] + (self.num_agents * self.num_choices,))

    def diffusion_loss(
        self,
        params: dict,
        state: jax.Array,
        choice: jax.Array,
        key: jax.Array,
        weight: jax.Array | None = None,
        norm: str = "l1",
    ) -> jax.Array:
        """L_diff (eq. 33) on the executed migrations, weighted by `weight` = 1(A_raw > 0) [...]."""
        return diffusion_loss(self.chain, params["denoiser"], state, self.one_hot(choice), key, weight, norm)
