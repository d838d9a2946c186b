"""CrossRealityPrivacy-v0 (spec 000): location perturbation and AI-agent migration, learned by LHDPPO (§5) and
the §7 comparison learners (HDPPO, GHPPO, H-PPO, PPO-relaxed as configs of the LHDPPO trainer; HGDM)."""

from __future__ import annotations

import numpy as np

from baselines import cross_reality_privacy as heuristics
from vmjax.agents import hgdm, lhdppo
from vmjax.core.scene import Links, Scene, Servers, road_segments
from vmjax.envs.cross_reality_privacy import CrossRealityPrivacyConfig, offset_to_xy_m
from vmjax.scenarios.base import Configs, Evaluation, Learner, Scenario, results_table

LABELS = {"lhdppo": "LHDPPO", "hdppo": "HDPPO", "ghppo": "GHPPO", "hppo": "H-PPO", "ppo_relaxed": "PPO-relaxed"}


def label(configs: Configs) -> str:
    """The learner, then its reward if not its own (spec 000 §7: LHDPPO on eq. (21), the rest on eq. (20))."""
    algo = configs["run"].algo
    default_reward = SCENARIO.learners[algo].config().reward_mode
    reward = configs["agent"].reward_mode
    return SCENARIO.learners[algo].label + ("" if reward == default_reward else f" (reward {reward})")


def variant(configs: Configs) -> str:
    return f"reward={configs['agent'].reward_mode}"


TABLE_COLUMNS = (
    ("utility (17)", lambda r: f"{r['utility']:.4f}"),
    ("± seeds", lambda r: f"{r['utility_seed_std']:.4f}"),
    ("entropy (bit)", lambda r: f"{r['entropy_bits']:.4f}"),
    ("± seeds", lambda r: f"{r['entropy_bits_seed_std']:.4f}"),
    ("latency (s)", lambda r: f"{r['latency_s']:.2f}"),
    ("± seeds", lambda r: f"{r['latency_s_seed_std']:.2f}"),
    ("QoS loss", lambda r: f"{r['qos_loss']:.4f}"),
    ("± seeds", lambda r: f"{r['qos_loss_seed_std']:.4f}"),
    ("reward (21)", lambda r: f"{r['reward_llm']:.4f}"),
    ("migrated (%)", lambda r: f"{100 * r['migrated']:.1f}"),
    ("perturbation (m)", lambda r: f"{r['perturbation_m']:.1f}"),
)


def format_table(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """The utility of eq. (17) and its parts E (eq. 5), L (eq. 15), Q (eq. 16) with their spread over the held-out
    seeds, then the eq. (21) reward, migrations and the perturbation; best utility first."""
    note = (
        f"means per AV-slot over {seeds} seeds x {episodes} held-out episodes (the same worlds for every "
        "policy; deterministic learned policies); ± = std of the seed means"
    )
    return results_table(results, TABLE_COLUMNS, lambda r: -r["utility"], note)


def scene(env, state, params, info=None, extras=None) -> Scene:
    """One slot of a world: each AV's true location and, after the slot's action (`info`), the perturbed location it
    reports (an arrow from true to reported); the RSU or satellite it is connected to and the server hosting its AI
    agent; each server's load is its share of the AVs' agents."""
    grid = env.road_grid
    width, height = grid.extent_m
    true_m = np.asarray(state.trace.position_at(state.t))
    servers_xy = np.asarray(env.server_xy_m(params))
    n = env.num_rsus
    agent_server = np.asarray(state.prev_agent if info is None else info["agent_server"])
    share = np.bincount(agent_server, minlength=n + 1) / len(agent_server)
    links = [Links("serving", true_m, servers_xy[np.asarray(state.connected)])]
    notes = [f"slot {int(state.t)} of {env.config.max_steps}"]
    markers = {}
    if info is not None:
        links.append(Links("target", true_m, servers_xy[agent_server]))
        reported = np.asarray(offset_to_xy_m(info["reported_offset_deg"], params, env.config.origin_lat_deg))
        links.append(Links("report", true_m, reported))
        markers["reported location"] = reported
        notes += [
            f"perturbation {float(np.mean(np.asarray(info['perturbation_m']))):.0f} m, "
            f"location entropy {float(np.mean(np.asarray(info['entropy_bits']))):.2f} bit",
            f"latency {float(np.mean(np.asarray(info['latency_s']))):.2f} s, utility {float(np.mean(np.asarray(info['utility']))):.2f}",
        ]
    return Scene(
        title=env.name,
        extent_m=(0.0, float(width), 0.0, float(height)),
        vehicles_xy_m=true_m,
        vehicles_active=np.ones(len(true_m), bool),
        servers=[
            Servers("RSU", servers_xy[:n], share[:n], np.ones(n, bool), float(params.coverage_radius_m)),
            Servers("satellite", servers_xy[n:], share[n:], np.array([True])),
        ],
        links=links,
        roads_m=road_segments(grid.x_roads_m, grid.y_roads_m, grid.extent_m),
        markers=markers,
        notes=notes,
    )


SCENARIO = Scenario(
    env_id="CrossRealityPrivacy-v0",
    env_config=CrossRealityPrivacyConfig,
    learners={
        **{name: Learner(LABELS[name], config, lhdppo.make_trainer) for name, config in lhdppo.ALGORITHMS.items()},
        "hgdm": Learner("HGDM", hgdm.HgdmConfig, hgdm.make_trainer),
    },
    run_dir="runs/cross_reality_privacy",
    evaluation=Evaluation(
        policies=heuristics.POLICIES,
        make_policy_evaluator=heuristics.make_policy_evaluator,
        seed_metrics=("utility", "entropy_bits", "latency_s", "qos_loss"),
        table=format_table,
        panels=(
            ("utility", "utility, eq. (17), per AV-slot", 1.0),
            ("entropy_bits", "location entropy (bit)", 1.0),
            ("latency_s", "latency per AV-slot (s)", 1.0),
        ),
    ),
    label=label,
    variant=variant,
    log_metrics=lhdppo.LOG_METRICS,
    headline_metric="episode_latency_s",
    headline_label="latency per AV-slot (s)",
    defaults={"agent": {"num_iterations": 100}},
    scene=scene,
    greedy="geo_i",
)

__all__ = ["SCENARIO", "format_table", "label", "scene"]
