"""Actor and critic networks (Flax linen), MAPPO defaults: MLPs with orthogonal init, a small last-layer
gain on policy heads, optional LayerNorm (spec 003 §6.1 [C]).

Per-agent parameters are stacked on a leading agent axis and applied with `jax.vmap`
(`init_per_agent` / `apply_per_agent`); shared parameters take the agent's one-hot id as an extra input
(`with_agent_id`). Both are config choices of the trainers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmjax.core.initializers import orthogonal  # also reached as networks.orthogonal

Activation = Literal["relu", "tanh"]  # the hidden-layer nonlinearity of a config field
ACTIVATIONS: dict[str, Callable] = dict(zip(get_args(Activation), (nn.relu, nn.tanh)))


def dense(features: int, gain: float) -> nn.Dense:
    """Dense layer with orthogonal(gain) kernel and zero bias (the MAPPO initialisation)."""
    return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    """Hidden layers of an actor or critic: Dense -> (LayerNorm) -> activation, repeated."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = dense(width, np.sqrt(2.0))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = ACTIVATIONS[self.activation](x)
        return x


class DiscreteActor(nn.Module):
    """pi^d(a^d | o): unmasked logits over `num_actions` choices (masking is the distribution's job)."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False
    head_gain: float = 0.01  # orthogonal gain of the output layer (small: a near-uniform initial policy)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(obs)
        return dense(self.num_actions, self.head_gain)(x)


class ContinuousActor(nn.Module):
    """pi^c(a^c | o) for actions in [0, 1]: Gaussian mean = sigmoid(MLP(o)) and a learned state-independent
    log-std initialised at `log_std_init` (spec 003 §6.1 [C]). Returns (mean, log_std), both [..., D]."""

    action_dim: int = 1
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False
    log_std_init: float = -1.0
    mean_squash: str = "sigmoid"  # "sigmoid": mean in (0, 1) [C]; "none": 0.5 + linear output, unbounded

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(obs)
        out = dense(self.action_dim, 0.01)(x)
        mean = nn.sigmoid(out) if self.mean_squash == "sigmoid" else 0.5 + out
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


class Critic(nn.Module):
    """V(s): a scalar value of the centralized (world) state."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(state)
        return dense(1, 1.0)(x)[..., 0]


def with_agent_id(obs: jax.Array) -> jax.Array:
    """Append the one-hot agent id to observations [..., N, D] -> [..., N, D + N] (shared-parameter actors)."""
    n = obs.shape[-2]
    ids = jnp.broadcast_to(jnp.eye(n, dtype=obs.dtype), obs.shape[:-2] + (n, n))
    return jnp.concatenate([obs, ids], axis=-1)


def init_per_agent(module: nn.Module, key: jax.Array, num_agents: int, sample_input: jax.Array):
    """Independent parameters for each agent, stacked on a leading agent axis."""
    keys = jax.random.split(key, num_agents)
    return jax.vmap(module.init, in_axes=(0, None))(keys, sample_input)


def apply_per_agent(module: nn.Module, params, inputs: jax.Array):
    """Apply agent v's parameters to agent v's input. `inputs` [..., N, D]; outputs keep the agent axis at the
    same place (a tuple output is handled leafwise)."""
    agent_axis = inputs.ndim - 2
    return jax.vmap(module.apply, in_axes=(0, agent_axis), out_axes=agent_axis)(params, inputs)


class QNetwork(DiscreteActor):
    """Q(o, .): one value per discrete action (`num_actions` outputs, unit-gain head; DM-MAPPO C1, MASAC)."""

    head_gain: float = 1.0


def init_agents(module: nn.Module, key: jax.Array, sample_inputs: jax.Array, shared: bool, add_id: bool = True):
    """Parameters for agents whose inputs are [N, D]: one set for all (`shared`; the one-hot id appended when
    `add_id`) or one per agent stacked on a leading axis."""
    if shared:
        return module.init(key, with_agent_id(sample_inputs) if add_id else sample_inputs)
    return init_per_agent(module, key, sample_inputs.shape[-2], sample_inputs[0])


def apply_agents(module: nn.Module, params, inputs: jax.Array, shared: bool, add_id: bool = True):
    """Apply `init_agents` parameters to inputs [..., N, D] (agent axis kept)."""
    if shared:
        return module.apply(params, with_agent_id(inputs) if add_id else inputs)
    return apply_per_agent(module, params, inputs)
