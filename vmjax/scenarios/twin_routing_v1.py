"""TwinRouting-v1 (spec 002 with infeasible hosts that cost, the mask testing what the realised load adds, and a
background load that reaches the caches' capacity at its peak): the v0 scenario's learners, predictor, reward
calibration and table on `TwinRoutingV1Config`. "Without prediction" is the paper's: no workload information
(`--env.workload_forecast none`), not persistence. The evaluation adds the calibration references (doing nothing,
the nearest server, least loaded, the per-slot oracles). docs/twin_routing.md, "v0 -> v1", gives the reasons."""

from __future__ import annotations

import dataclasses

from baselines import twin_routing as heuristics
from vmjax.envs.twin_routing import TwinRoutingV1Config
from vmjax.scenarios import twin_routing as v0
from vmjax.scenarios.base import Configs


def label(configs: Configs) -> str:
    """The learner; " w/o pred." without workload information (the paper's "without prediction", `none`), the
    forecast in brackets otherwise (persistence, oracle); " w/o mask" without the dynamic mask."""
    env = configs["env"]
    name = SCENARIO.learners[configs["run"].algo].label
    forecast = env.workload_forecast
    name += "" if forecast == v0.LEARNED_FORECAST else " w/o pred." if forecast == "none" else f" ({forecast})"
    return name + ("" if env.use_mask else " w/o mask")


SUMO_TRAFFIC = "data/traffic/twin_routing_sumo.csv"  # per-RSU counts of 3 SUMO weekdays (experiments/)

SCENARIO = dataclasses.replace(
    v0.SCENARIO,
    env_id="TwinRouting-v1",
    env_config=TwinRoutingV1Config,
    run_dir="runs/twin_routing_v1",
    label=label,
    # the SUMO day drives the RSU flows and trains the predictor (counts: flow units, one scaler for 76 series):
    # the world where the per-slot oracle and an oracle forecast win clearly (docs/twin_routing.md, "v0 -> v1");
    # `--traffic.replay false` gives the synthetic §4.1 flow
    defaults={
        **v0.SCENARIO.defaults,
        "env": {"workload_forecast": v0.LEARNED_FORECAST, "forecast_units": "flow"},
        "predictor": {**v0.SCENARIO.defaults["predictor"], "per_series_scaling": False},
        "traffic": {"csv_path": SUMO_TRAFFIC, "replay": True},
    },
    evaluation=dataclasses.replace(v0.SCENARIO.evaluation, policies={**heuristics.POLICIES, **heuristics.REFERENCES}),
)

__all__ = ["SCENARIO", "SUMO_TRAFFIC", "label"]
