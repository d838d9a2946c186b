"""vmjax.agents: networks, distributions, PPO math, the trainer skeleton and the learners.

`make_trainer(env, config)` / `make_train(env, config)` build the learner that `config`'s type names (its class
or the nearest base class in `LEARNERS`), so every learner is reached the same way.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from vmjax.agents import (
    checkpoint,
    diffusion,
    distributions,
    dm_mappo,
    hgdm,
    hybrid_mappo,
    lhdppo,
    mappo_ddpg,
    masac,
    mlp_heads,
    msrl,
    networks,
    ppo,
    replay,
    reward_search,
    trainer,
)
from vmjax.agents.dm_mappo import DmMappoConfig
from vmjax.agents.hgdm import HgdmConfig
from vmjax.agents.hybrid_mappo import HybridMappoConfig
from vmjax.agents.lhdppo import LhdppoConfig, ghppo_config, hdppo_config, hppo_config, ppo_relaxed_config
from vmjax.agents.mappo_ddpg import MappoDdpgConfig
from vmjax.agents.masac import MasacConfig
from vmjax.agents.msrl import MsrlConfig
from vmjax.agents.trainer import OffPolicyTrainerState, Trainer, TrainerState

# config class -> the learner module that trains it (LHDPPO's baseline configs subclass LhdppoConfig)
LEARNERS: dict[type, ModuleType] = {
    HybridMappoConfig: hybrid_mappo,
    MappoDdpgConfig: mappo_ddpg,
    DmMappoConfig: dm_mappo,
    MasacConfig: masac,
    MsrlConfig: msrl,
    LhdppoConfig: lhdppo,
    HgdmConfig: hgdm,
}


def learner_of(config: Any) -> ModuleType:
    """The learner module of a config: the first class of `type(config).__mro__` in `LEARNERS`."""
    for cls in type(config).__mro__:
        if cls in LEARNERS:
            return LEARNERS[cls]
    names = ", ".join(cls.__name__ for cls in LEARNERS)
    raise TypeError(f"no learner trains a {type(config).__name__}; agent configs: {names}")


def make_trainer(env, config, env_params=None, log_metrics: tuple[str, ...] | None = None) -> Trainer:
    """The `Trainer` of `config`'s learner on `env` (init / update / run / train / make_eval_policy).
    `log_metrics` None: the learner's default info keys."""
    learner = learner_of(config)
    if log_metrics is None:
        return learner.make_trainer(env, config, env_params)
    return learner.make_trainer(env, config, env_params, log_metrics)


make_train = trainer.make_train_for(make_trainer)  # train(key) -> (state, metrics) of `config`'s learner


__all__ = [
    "LEARNERS",
    "DmMappoConfig",
    "HgdmConfig",
    "HybridMappoConfig",
    "LhdppoConfig",
    "MappoDdpgConfig",
    "MasacConfig",
    "MsrlConfig",
    "OffPolicyTrainerState",
    "Trainer",
    "TrainerState",
    "checkpoint",
    "diffusion",
    "distributions",
    "dm_mappo",
    "ghppo_config",
    "hdppo_config",
    "hgdm",
    "hppo_config",
    "hybrid_mappo",
    "learner_of",
    "lhdppo",
    "make_train",
    "make_trainer",
    "mappo_ddpg",
    "masac",
    "mlp_heads",
    "msrl",
    "networks",
    "ppo",
    "ppo_relaxed_config",
    "replay",
    "reward_search",
    "trainer",
]
