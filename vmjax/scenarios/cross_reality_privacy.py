"""CrossRealityPrivacy-v0 (spec 000): location perturbation and AI-agent migration, learned by LHDPPO (§5) and
the §7 comparison learners (HDPPO, GHPPO, H-PPO, PPO-relaxed as configs of the LHDPPO trainer; HGDM)."""

from __future__ import annotations

from baselines import cross_reality_privacy as heuristics
from vmjax.agents import hgdm, lhdppo
from vmjax.envs.cross_reality_privacy import CrossRealityPrivacyConfig
from vmjax.scenarios.base import Configs, Evaluation, Learner, Scenario

LABELS = {"lhdppo": "LHDPPO", "hdppo": "HDPPO", "ghppo": "GHPPO", "hppo": "H-PPO", "ppo_relaxed": "PPO-relaxed"}


def label(configs: Configs) -> str:
    """The learner, then its reward if not its own (spec 000 §7: LHDPPO on eq. (21), the rest on eq. (20))."""
    algo = configs["run"].algo
    default_reward = SCENARIO.learners[algo].config().reward_mode
    reward = configs["agent"].reward_mode
    return SCENARIO.learners[algo].label + ("" if reward == default_reward else f" (reward {reward})")


def variant(configs: Configs) -> str:
    return f"reward={configs['agent'].reward_mode}"


def format_table(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """The utility of eq. (17) and its parts E (eq. 5), L (eq. 15), Q (eq. 16) with their spread over the held-out
    seeds, then the eq. (21) reward, migrations and the perturbation; best utility first."""
    lines = [
        (
            "| policy | utility (17) | ± seeds | entropy (bit) | ± seeds | latency (s) | ± seeds | QoS loss | ± seeds | "
            "reward (21) | migrated (%) | perturbation (m) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["utility"]):
        lines.append(
            f"| {name} | {r['utility']:.4f} | {r['utility_seed_std']:.4f} | {r['entropy_bits']:.4f} | "
            f"{r['entropy_bits_seed_std']:.4f} | {r['latency_s']:.2f} | {r['latency_s_seed_std']:.2f} | "
            f"{r['qos_loss']:.4f} | {r['qos_loss_seed_std']:.4f} | {r['reward_llm']:.4f} | "
            f"{100 * r['migrated']:.1f} | {r['perturbation_m']:.1f} |"
        )
    lines.append(
        f"\nmeans per AV-slot over {seeds} seeds x {episodes} held-out episodes (the same worlds for every "
        "policy; deterministic learned policies); ± = std of the seed means"
    )
    return "\n".join(lines)


# CLI defaults: the spec's §5.5 learner (16 worlds x 128 steps, 10 epochs) for 100 iterations (~2e5 env steps; the
# paper trains ~5e6), about 5 minutes per run on 2 CPU cores (HGDM: 100 x 800 env steps).
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
    defaults={"agent": {"num_iterations": 100}},
)

__all__ = ["SCENARIO", "format_table", "label"]
