"""CrossRealityPrivacy-v1 (spec 000 with an adversary that knows routine mobility and a server choice worth tens of
seconds): the v0 scenario's learners, heuristics and table on `CrossRealityPrivacyV1Config`.
docs/cross_reality_privacy.md, "v0 -> v1", gives the reasons."""

from __future__ import annotations

import dataclasses

from vmjax.envs.cross_reality_privacy import CrossRealityPrivacyV1Config
from vmjax.scenarios import cross_reality_privacy as v0

SCENARIO = dataclasses.replace(
    v0.SCENARIO,
    env_id="CrossRealityPrivacy-v1",
    env_config=CrossRealityPrivacyV1Config,
    run_dir="runs/cross_reality_privacy_v1",
)

__all__ = ["SCENARIO"]
