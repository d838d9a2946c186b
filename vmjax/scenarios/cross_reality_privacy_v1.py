"""CrossRealityPrivacy-v1 (spec 000 with an adversary that knows routine mobility and a server choice worth tens of
seconds): the v0 scenario's learners and table on `CrossRealityPrivacyV1Config`, with the best fixed radius of the
calibration among the heuristics (the rule a learner must beat now that r = r_max no longer wins) and the radius
planners on request (`vmjax evaluate --heuristics radius_planner`).
docs/cross_reality_privacy.md, "v0 -> v1", gives the reasons."""

from __future__ import annotations

import dataclasses
import functools

from baselines import cross_reality_privacy as heuristics
from vmjax.envs.cross_reality_privacy import CrossRealityPrivacyV1Config
from vmjax.scenarios import cross_reality_privacy as v0

BEST_FIXED_RADIUS_FRACTION = heuristics.BEST_FIXED_RADIUS_FRACTION_V1  # the calibration's, kept with the heuristics

SCENARIO = dataclasses.replace(
    v0.SCENARIO,
    env_id="CrossRealityPrivacy-v1",
    env_config=CrossRealityPrivacyV1Config,
    run_dir="runs/cross_reality_privacy_v1",
    evaluation=dataclasses.replace(
        v0.SCENARIO.evaluation,
        policies={
            **heuristics.POLICIES,
            "best_fixed_radius": functools.partial(
                heuristics.make_fixed_radius_stateful, radius_fraction=BEST_FIXED_RADIUS_FRACTION
            ),
        },
        optional_policies=heuristics.PLANNERS,  # vmjax evaluate --heuristics radius_planner
    ),
)

__all__ = ["BEST_FIXED_RADIUS_FRACTION", "SCENARIO"]
