"""vmjax.agents: networks, distributions, PPO math and the trainers (`make_train(env, config)`)."""

from vmjax.agents import checkpoint, distributions, hybrid_mappo, mappo_ddpg, networks, ppo
from vmjax.agents.hybrid_mappo import HybridMappoConfig, TrainerState, make_train, make_trainer
from vmjax.agents.mappo_ddpg import MappoDdpgConfig

__all__ = [
    "HybridMappoConfig",
    "MappoDdpgConfig",
    "TrainerState",
    "checkpoint",
    "distributions",
    "hybrid_mappo",
    "make_train",
    "make_trainer",
    "mappo_ddpg",
    "networks",
    "ppo",
]
