"""vmjax.core: the environment contract (DESIGN.md), spaces, registry, wrappers and validation."""

from vmjax.core import sharding, spaces
from vmjax.core.checks import Checked, checked, run_checked
from vmjax.core.env import Environment, is_concrete, materialize, select_tree
from vmjax.core.registry import make, register, registered_envs
from vmjax.core.rollout import agent_means, rollout, uniform_random_policy
from vmjax.core.sharding import shard_worlds, world_mesh
from vmjax.core.stats import RunningMoments
from vmjax.core.wrappers import LogState, LogWrapper, VecEnv, Wrapper

__all__ = [
    "Checked",
    "Environment",
    "LogState",
    "LogWrapper",
    "RunningMoments",
    "VecEnv",
    "Wrapper",
    "agent_means",
    "checked",
    "rollout",
    "run_checked",
    "is_concrete",
    "materialize",
    "make",
    "register",
    "registered_envs",
    "select_tree",
    "shard_worlds",
    "sharding",
    "spaces",
    "uniform_random_policy",
    "world_mesh",
]
