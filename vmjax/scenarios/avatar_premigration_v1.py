"""AvatarPremigration-v1 (spec 003 with the paper's same-slot contention, relayed results and hot spots): the v0
scenario's learners, predictor and table on `AvatarPremigrationV1Config`, with the per-slot oracles in the
evaluation table (the gap a policy could win) and the gradient planner on request (`vmjax evaluate --heuristics
gradient_planner`). docs/avatar_premigration.md, "v0 -> v1", gives the reasons."""

from __future__ import annotations

import dataclasses

from baselines import avatar_premigration as heuristics
from vmjax.envs.avatar_premigration import AvatarPremigrationV1Config
from vmjax.scenarios import avatar_premigration as v0

SCENARIO = dataclasses.replace(
    v0.SCENARIO,
    env_id="AvatarPremigration-v1",
    env_config=AvatarPremigrationV1Config,
    run_dir="runs/avatar_premigration_v1",
    evaluation=dataclasses.replace(
        v0.SCENARIO.evaluation,
        policies={**heuristics.POLICIES, **heuristics.ORACLES},
        optional_policies=heuristics.PLANNERS,  # vmjax evaluate --heuristics gradient_planner
    ),
)

__all__ = ["SCENARIO"]
