"""CrossRealityPrivacy-v0 (spec 000): location perturbation and AI-agent migration, learned by LHDPPO (§5) and
the §7 comparison learners (HDPPO, GHPPO, H-PPO, PPO-relaxed as configs of the LHDPPO trainer; HGDM)."""

from __future__ import annotations

from baselines import cross_reality_privacy as heuristics
from vmjax.agents import hgdm, lhdppo
from vmjax.envs.cross_reality_privacy import CrossRealityPrivacyConfig
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
)

__all__ = ["SCENARIO", "format_table", "label"]
