"""vmjax: a JAX-accelerated, vectorized simulator of vehicular-metaverse edge networks.

import vmjax
env = vmjax.make("AvatarPremigration-v0")
params = env.default_params
obs, state = env.reset(key, params)
obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
"""

from vmjax import core, envs, mobility, net  # noqa: F401  (envs registers the scenarios)
from vmjax.core import LogWrapper, VecEnv, make, registered_envs

__version__ = "0.1.0"

__all__ = ["LogWrapper", "VecEnv", "core", "envs", "make", "mobility", "net", "registered_envs"]
