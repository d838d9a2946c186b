"""vmjax.agents: networks, distributions, PPO math and the trainers (`make_train(env, config)`)."""

from vmjax.agents import distributions, networks, ppo
from vmjax.agents.hybrid_mappo import HybridMappoConfig, TrainerState, make_train, make_trainer

__all__ = ["HybridMappoConfig", "TrainerState", "distributions", "make_train", "make_trainer", "networks", "ppo"]
