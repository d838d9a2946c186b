"""vmjax.envs: the scenarios, one module each, registered by versioned id."""

from vmjax.core.registry import register
from vmjax.envs.avatar_premigration import AvatarPremigration

register("AvatarPremigration-v0", AvatarPremigration)

__all__ = ["AvatarPremigration"]
