"""vmjax.scenarios: the scenario registry. Each module `vmjax/scenarios/<name>.py` defines one `SCENARIO`
(a `vmjax.scenarios.base.Scenario`); this package finds the modules by itself, so adding a scenario needs no edit
here, in the runner or in the command line.

    from vmjax import scenarios
    scenario = scenarios.get("TwinRouting-v0")
    scenario.learners["dm_mappo"].config, scenario.evaluation.policies, scenario.prepare(...)
"""

from __future__ import annotations

import importlib
import pkgutil

from vmjax.scenarios.base import Evaluation, Learner, Scenario

DEFAULT_ENV_ID = "AvatarPremigration-v0"  # the command line's scenario when --env is not given

_SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> None:
    """Add a scenario under its env id (ids are unique; learner names may repeat across scenarios)."""
    if scenario.env_id in _SCENARIOS and _SCENARIOS[scenario.env_id] is not scenario:
        raise ValueError(f"scenario {scenario.env_id!r} is already registered")
    _SCENARIOS[scenario.env_id] = scenario


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            register(importlib.import_module(f"{__name__}.{module.name}").SCENARIO)


def all_scenarios() -> dict[str, Scenario]:
    """env id -> scenario, the default scenario first, then by id."""
    return dict(sorted(_SCENARIOS.items(), key=lambda kv: (kv[0] != DEFAULT_ENV_ID, kv[0])))


def get(env_id: str) -> Scenario:
    if env_id not in _SCENARIOS:
        raise ValueError(f"unknown scenario {env_id!r}; known: {', '.join(all_scenarios())}")
    return _SCENARIOS[env_id]


def algorithms() -> dict[str, str]:
    """--algo name -> env id of the first scenario (in `all_scenarios` order) that has it."""
    found: dict[str, str] = {}
    for env_id, scenario in all_scenarios().items():
        for algo in scenario.learners:
            found.setdefault(algo, env_id)
    return found


_discover()

__all__ = ["DEFAULT_ENV_ID", "Evaluation", "Learner", "Scenario", "algorithms", "all_scenarios", "get", "register"]
