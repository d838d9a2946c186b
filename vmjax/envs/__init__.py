"""vmjax.envs: the scenarios, one module each, registered by versioned id."""

from vmjax.core.registry import register
from vmjax.envs.avatar_premigration import AvatarPremigration, AvatarPremigrationV1
from vmjax.envs.cross_reality_privacy import CrossRealityPrivacy, CrossRealityPrivacyV1
from vmjax.envs.twin_routing import TwinRouting, TwinRoutingV1
from vmjax.envs.twin_split import TwinSplit, TwinSplitV1

register("AvatarPremigration-v0", AvatarPremigration)
register("AvatarPremigration-v1", AvatarPremigrationV1)
register("CrossRealityPrivacy-v0", CrossRealityPrivacy)
register("CrossRealityPrivacy-v1", CrossRealityPrivacyV1)
register("TwinRouting-v0", TwinRouting)
register("TwinRouting-v1", TwinRoutingV1)
register("TwinSplit-v0", TwinSplit)
register("TwinSplit-v1", TwinSplitV1)

__all__ = [
    "AvatarPremigration",
    "AvatarPremigrationV1",
    "CrossRealityPrivacy",
    "CrossRealityPrivacyV1",
    "TwinRouting",
    "TwinRoutingV1",
    "TwinSplit",
    "TwinSplitV1",
]
