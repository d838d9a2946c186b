"""MLP policy heads with the interface of the diffusion actors (`vmjax.agents.diffusion`), so the LHDPPO learner
can swap a diffusion chain for a plain network: H-PPO, GHPPO and PPO-relaxed (spec 000 §7.2, 7.3, 7.5).

    actor_c = GaussianMlpActor(action_dim=2 * M)                 # pi^c: N(tanh(MLP(s)), diag(sigma^2))
    actor_d = CategoricalMlpActor(num_agents=M, num_choices=N + 1)   # pi^d: prod_m Cat(MLP(s)[m])

Both take the `ChainNoise` arguments of the diffusion actors and ignore them: `sample_noise` returns a zero
placeholder ([..., 1]), so a rollout stores nothing for these heads and the learner's code path is the same. The discrete
head has no auxiliary diffusion loss (`diffusion_loss` is 0, eq. 33 applies to a diffusion actor only).

Initialisation [C]: orthogonal hidden layers (gain sqrt 2) and a 0.01-gain head (the MAPPO / PPO convention
of `vmjax.agents.networks`), so the initial Gaussian mean is ~0 (mid-range perturbation) and the initial
categoricals are ~uniform, as the diffusion actors are with their default `head_gain`. The Gaussian mean is
squashed by tanh into [-1, 1] [C], the range the continuous diffusion actor clamps its mean to (§9-B5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from vmjax.agents import distributions, networks
from vmjax.agents.diffusion import ChainNoise, check_log_std_bounds
from vmjax.core import validation


class MlpHead(nn.Module):
    """MLP(s) -> `out_dim` outputs with a small-gain linear head."""

    out_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    head_gain: float = 0.01

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        return networks.dense(self.out_dim, self.head_gain)(networks.MLP(self.hidden_sizes, self.activation)(state))


def empty_noise(batch_shape: tuple[int, ...]) -> ChainNoise:
    """The `ChainNoise` of a head without a chain: one unused zero per sample (a zero-width array would break
    the `reshape(-1, ...)` flattening of rollout batches)."""
    return ChainNoise(jnp.zeros(batch_shape + (1,), jnp.float32), None)


def _check_head(owner: str, hidden_sizes, activation: str, head_gain: float) -> None:
    validation.check_layer_widths(owner, "hidden_sizes", hidden_sizes)
    validation.check_choice(owner, "activation", activation, tuple(networks.ACTIVATIONS))
    validation.check_positive(owner, "head_gain", head_gain)


@dataclasses.dataclass(frozen=True)
class GaussianMlpActor:
    """pi^c(c | s) = N(c; tanh(MLP(s)), diag(sigma^2)), sigma = exp of a state-independent learned log-std vector
    (the continuous actor of H-PPO / GHPPO, §7.2-7.3, and PPO-relaxed's policy over 2M + M dims, §7.5).
    Params: {"mlp": Flax params, "log_std": [A]}."""

    action_dim: int = 2
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    head_gain: float = 0.01
    log_std_init: float = -0.5
    log_std_min: float = -5.0
    log_std_max: float = 1.0

    def __post_init__(self):
        owner = "GaussianMlpActor"
        validation.check_int_at_least(owner, "action_dim", self.action_dim, 1)
        _check_head(owner, self.hidden_sizes, self.activation, self.head_gain)
        check_log_std_bounds(owner, self)

    @property
    def network(self) -> MlpHead:
        return MlpHead(self.action_dim, tuple(self.hidden_sizes), self.activation, self.head_gain)

    def init(self, key: jax.Array, state: jax.Array) -> dict:
        return {
            "mlp": self.network.init(key, state),
            "log_std": jnp.full((self.action_dim,), self.log_std_init, jnp.float32),
        }

    def sample_noise(self, key: jax.Array, batch_shape: tuple[int, ...] = ()) -> ChainNoise:
        return empty_noise(batch_shape)

    def mean(self, params: dict, state: jax.Array, noise: ChainNoise | None = None) -> jax.Array:
        """mu(s) = tanh(MLP(s)) [..., A] in [-1, 1]."""
        return jnp.tanh(self.network.apply(params["mlp"], state))

    def log_std(self, params: dict) -> jax.Array:
        return jnp.clip(params["log_std"], self.log_std_min, self.log_std_max)

    def distribution(self, params: dict, state: jax.Array, noise: ChainNoise | None = None) -> distrax.Distribution:
        mean = self.mean(params, state)
        return distributions.gaussian(mean, jnp.broadcast_to(self.log_std(params), mean.shape))

    def log_prob(self, params: dict, state: jax.Array, noise: ChainNoise | None, raw: jax.Array) -> jax.Array:
        return self.distribution(params, state).log_prob(raw)

    def entropy(self, params: dict) -> jax.Array:
        """Entropy of the Gaussian, summed over the A dimensions (state independent)."""
        return jnp.sum(distributions.gaussian_entropy(self.log_std(params)))


@dataclasses.dataclass(frozen=True)
class CategoricalMlpActor:
    """pi^d(d | s) = prod_m Cat(e_m | MLP(s)[m]) (the discrete actor of H-PPO, §7.2): M (N + 1) logits,
    vehicle-major. Params: {"mlp": Flax params}."""

    num_agents: int = 1
    num_choices: int = 2
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    head_gain: float = 0.01

    def __post_init__(self):
        owner = "CategoricalMlpActor"
        validation.check_int_at_least(owner, "num_agents", self.num_agents, 1)
        validation.check_int_at_least(owner, "num_choices", self.num_choices, 2)
        _check_head(owner, self.hidden_sizes, self.activation, self.head_gain)

    @property
    def network(self) -> MlpHead:
        return MlpHead(self.num_agents * self.num_choices, tuple(self.hidden_sizes), self.activation, self.head_gain)

    def init(self, key: jax.Array, state: jax.Array) -> dict:
        return {"mlp": self.network.init(key, state)}

    def sample_noise(self, key: jax.Array, batch_shape: tuple[int, ...] = ()) -> ChainNoise:
        return empty_noise(batch_shape)

    def logits(self, params: dict, state: jax.Array, noise: ChainNoise | None = None) -> jax.Array:
        out = self.network.apply(params["mlp"], state)
        return out.reshape(out.shape[:-1] + (self.num_agents, self.num_choices))

    def distribution(self, params: dict, state: jax.Array, noise: ChainNoise | None = None) -> distrax.Categorical:
        return distrax.Categorical(logits=self.logits(params, state))

    def log_prob(self, params: dict, state: jax.Array, noise: ChainNoise | None, choice: jax.Array) -> jax.Array:
        return jnp.sum(self.distribution(params, state).log_prob(choice), axis=-1)

    def diffusion_loss(
        self,
        params: dict,
        state: jax.Array,
        choice: jax.Array,
        key: jax.Array,
        weight: jax.Array | None = None,
        norm: str = "l1",
    ) -> jax.Array:
        """No auxiliary diffusion loss for an MLP head (eq. 33 trains a denoiser): 0."""
        return jnp.float32(0.0)


def relaxed_choice(u: jax.Array, num_choices: int) -> jax.Array:
    """PPO-relaxed's discrete mapping (spec §7.5): u in [-1, 1] -> min(N, floor((u + 1)/2 (N + 1))), with
    `num_choices` = N + 1 and u clipped to [-1, 1] first. int32, same shape as u."""
    index = jnp.floor((jnp.clip(u, -1.0, 1.0) + 1.0) * 0.5 * num_choices).astype(jnp.int32)
    return jnp.minimum(index, num_choices - 1)


__all__ = ["CategoricalMlpActor", "GaussianMlpActor", "MlpHead", "empty_noise", "relaxed_choice"]
