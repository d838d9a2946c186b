"""TwinSplit-v1 (spec 004 with a load driven by the vehicles' own VT tasks, a bit-error scale at which pre-migrating
can pay, and an observation that can say "stay"): the v0 scenario's learners, trajectory banks and table on
`TwinSplitV1Config`, with the value-of-information rules and the per-slot oracles in the evaluation table.
docs/twin_split.md, "v0 -> v1", gives the reasons."""

from __future__ import annotations

import dataclasses

from baselines import twin_split as heuristics
from vmjax.envs.twin_split import TwinSplitV1Config
from vmjax.scenarios import twin_split as v0

SCENARIO = dataclasses.replace(
    v0.SCENARIO,
    env_id="TwinSplit-v1",
    env_config=TwinSplitV1Config,
    run_dir="runs/twin_split_v1",
    # the spec's budget (§6.10: 1000 iterations x 32 worlds x 100 slots) and a switching threshold that also falls on
    # client-only calls, with a floor below a trained client's entropy, so it tracks that entropy and the server keeps
    # about 2/3 of the calls (the paper's 25% fewer parameters than Local-Edge, spec §6.9): docs/twin_split.md,
    # "MSRL's switching threshold"
    defaults={
        "agent": {
            "num_envs": 32,
            "num_iterations": 1000,
            "threshold_change_nats": 1e-5,
            "threshold_decay_nats": 2e-5,
            "threshold_min_nats": 1e-4,
        }
    },
    evaluation=dataclasses.replace(
        v0.SCENARIO.evaluation, policies={**heuristics.POLICIES, **heuristics.INFORMATION, **heuristics.ORACLES}
    ),
)

__all__ = ["SCENARIO"]
