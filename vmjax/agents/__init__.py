"""vmjax.agents: networks, distributions, PPO math and the trainers (`make_train(env, config)`)."""

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
)
from vmjax.agents.dm_mappo import DmMappoConfig
from vmjax.agents.hgdm import HgdmConfig
from vmjax.agents.hybrid_mappo import (
    HybridMappoConfig,
    TrainerState,
    make_train,
    make_trainer,
)
from vmjax.agents.lhdppo import LhdppoConfig, ghppo_config, hdppo_config, hppo_config, ppo_relaxed_config
from vmjax.agents.mappo_ddpg import MappoDdpgConfig
from vmjax.agents.masac import MasacConfig
from vmjax.agents.msrl import MsrlConfig

__all__ = [
    "DmMappoConfig",
    "HgdmConfig",
    "HybridMappoConfig",
    "LhdppoConfig",
    "MappoDdpgConfig",
    "MasacConfig",
    "MsrlConfig",
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
]
