"""vmjax for users outside JAX: PettingZoo and Gymnasium adapters over any registered env id.

    from vmjax import interop

    par_env = interop.pettingzoo_env("TwinRouting-v0", num_rsus=8)  # pettingzoo.ParallelEnv, agents "vehicle_0", ...
    env = interop.gymnasium_env("AvatarPremigration-v0")  # gymnasium.Env: one world, the joint action as a Dict
    envs = interop.gymnasium_vector_env("AvatarPremigration-v0", num_envs=64)  # gymnasium.vector.VectorEnv

The adapters sit on top of the package (they import vmjax; vmjax never imports them) and need the optional
dependencies `pip install 'vmjax[interop]'` (gymnasium, pettingzoo). Every call into the simulator is one jitted
function of the native env; NumPy goes in and comes out. See docs/api.md, "PettingZoo and Gymnasium".
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "vmjax.interop needs gymnasium and pettingzoo: pip install 'vmjax[interop]'"


def pettingzoo_env(env: Any, params: Any = None, **config):
    """A `pettingzoo.ParallelEnv` of one world of `env` (a registered id, made with `config`, or an env object)."""
    from vmjax.interop.parallel_env import ParallelEnv

    return ParallelEnv(env, params=params, **config)


def gymnasium_env(env: Any, params: Any = None, reward: str = "mean", **config):
    """A `gymnasium.Env` of one world of `env`: the joint action of the world's agents as one Dict space."""
    from vmjax.interop.gym_env import WorldEnv

    return WorldEnv(env, params=params, reward=reward, **config)


def gymnasium_vector_env(env: Any, num_envs: int, params: Any = None, reward: str = "mean", **config):
    """A `gymnasium.vector.VectorEnv` of `num_envs` worlds of `env`, stepped in one jitted call (same-step
    autoreset)."""
    from vmjax.interop.gym_env import WorldsVectorEnv

    return WorldsVectorEnv(env, num_envs, params=params, reward=reward, **config)


__all__ = ["INSTALL_HINT", "gymnasium_env", "gymnasium_vector_env", "pettingzoo_env"]
