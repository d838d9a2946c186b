"""TwinSplit v0 -> v1 calibration: what a policy could win, before any training (spec 004, issue "TwinSplit-v1").

    python -m baselines.twin_split_study calibrate [--out docs/results/twin_split_v1] [--episodes 100 --seeds 3]
    python -m baselines.twin_split_study fidelity [--out ...]        # EST-TG's spec §4.10 checks
    python -m baselines.twin_split_study report [--out ...]          # the docs' tables, as markdown

`calibrate` evaluates every heuristic, the value-of-information greedy rules and the per-slot oracles on each
calibration attempt (v0, then each v1 change added in turn), on both trajectory banks (ground truth, EST-TG) and
at C_nom = 40 / 60 / 80 GHz (one vmapped evaluation over the capacities, `gpu_capacity_sweep`), on the held-out
worlds of `vmjax evaluate` (PRNGKey(10000 + s)). The JSON is written atomically after every (attempt, bank), and
rows already written are skipped, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import vmjax
from baselines import twin_split as heuristics
from baselines.evaluate import FIRST_SEED, write_results
from vmjax import mobility
from vmjax.core.rollout import stateless
from vmjax.envs.twin_split import V1_PARAMS

OUT = Path("docs/results/twin_split_v1")
CAPACITIES_GHZ = (40.0, 60.0, 80.0)
BANKS = ("real", "generated")
METRICS = ("latency_s", "qoe", "ber", "migration_share")
REFERENCE = "no_premigration"  # doing nothing: every task stays at its serving RSU

_BACKGROUND = {k: V1_PARAMS[k] for k in ("util_mean_low", "util_mean_high", "util_init_low", "util_init_high")}
_BACKGROUND["util_noise_std"] = V1_PARAMS["util_noise_std"]
# (name, env id, config, EnvParams changes, what changes and why); the last one is TwinSplit-v1 itself
ATTEMPTS = (
    ("v0", "TwinSplit-v0", {}, {}, "the literal reading (spec §2.7, §7.2 [R] defaults)"),
    (
        "v0 + light background",
        "TwinSplit-v0",
        {},
        _BACKGROUND,
        'u-bar ~ U[0.02, 0.06]: the load "dynamically influenced by VT tasks from other users" (paper §III-B)',
    ),
    (
        "v0 + light background + tau 0.002",
        "TwinSplit-v0",
        {},
        {**_BACKGROUND, "ber_scale_per_mbit": 0.002},
        "a co-located 10 Mbit part adds ~2% BER, not ~18%",
    ),
    (
        "v0 + light background + tau 0.001",
        "TwinSplit-v0",
        {},
        {**_BACKGROUND, "ber_scale_per_mbit": 0.001},
        "the same, tau halved (sensitivity)",
    ),
    (
        "v1",
        "TwinSplit-v1",
        {},
        {},
        "+ the extended observation and L_E(t) = slot t's requests (eq. 21 indexes L_E by t)",
    ),
)


def all_policies() -> dict:
    return {**heuristics.POLICIES, **heuristics.INFORMATION, **heuristics.ORACLES}


def trace_bank(name: str, num_slots: int, map_size_m: float, seed: int = 0, vehicles: int = 512):
    """The scenario's bank (`--trajectories.source real | generated`, bank seed 0, 512 tracks)."""
    banks = mobility.build_trace_banks(seed, vehicles, num_slots, map_size_m)
    return getattr(banks, name)


def evaluate_capacities(env, params, policies: dict, episodes: int, seeds: int, capacities_ghz=CAPACITIES_GHZ) -> dict:
    """{policy: {metric: {"mean": [per capacity], "seed_std": [per capacity]}}} on `seeds` x `episodes` held-out
    worlds per capacity, the same worlds for every policy."""
    names = list(policies)
    fns = [stateless(policies[n]) for n in names]
    capacities = [c * 1e9 for c in capacities_ghz]
    runs = [
        heuristics.gpu_capacity_sweep(env, fns, params, capacities, jax.random.PRNGKey(FIRST_SEED + s), episodes)
        for s in range(seeds)
    ]
    out = {}
    for index, name in enumerate(names):
        seed_means = {m: np.array([np.mean(r[index][m], axis=1) for r in runs]) for m in METRICS}  # [S, C]
        out[name] = {
            m: {
                "mean": seed_means[m].mean(axis=0).tolist(),
                "seed_std": (seed_means[m].std(axis=0, ddof=1) if seeds > 1 else 0 * seed_means[m][0]).tolist(),
            }
            for m in METRICS
        }
    return out


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def calibrate(out: Path, episodes: int, seeds: int, log=print) -> dict:
    """The oracle-gap table of every attempt on both banks at every capacity."""
    path = out / "calibration.json"
    data = _read(path)
    data.setdefault("episodes_per_seed", episodes)
    data.setdefault("seeds", seeds)
    data["capacities_ghz"] = list(CAPACITIES_GHZ)
    attempts = data.setdefault("attempts", {})
    banks = {}
    for name, env_id, config, changes, reason in ATTEMPTS:
        env = vmjax.make(env_id, **config)
        entry = attempts.setdefault(name, {"env": env_id, "config": config, "params": changes, "reason": reason})
        for bank in BANKS:
            if bank in entry:
                continue
            if bank not in banks:
                banks[bank] = trace_bank(bank, env.config.max_steps + 1, env.config.map_size_m)
            start = time.perf_counter()
            params = env.default_params.replace(trace_bank=banks[bank], **changes)
            policies = {n: make(env) for n, make in all_policies().items()}
            entry[bank] = evaluate_capacities(env, params, policies, episodes, seeds)
            write_results(path, data)
            log(f"{name} [{bank}] in {time.perf_counter() - start:.0f} s: {gap_line(entry[bank])}")
    return data


def est_tg_fidelity(out: Path, seed: int = 0, num_trips: int = 2000, log=print) -> dict:
    """Spec §4.10 on the scenario's city (bank seed 0): EST-TG's and uniform random trips' metrics against the
    cleaned ground truth resampled at 30 s, plus the ground truth's own trip ratio and radial speeds."""
    banks = mobility.build_trace_banks(seed, 16, 101)
    box = (0.0, 0.0, 5000.0, 5000.0)
    points, trip = mobility.resample_trips(*mobility.clean_gps(banks.ground_truth, box))
    real_xy, real_hours, real_speed = mobility.real_points(points, trip)
    trip = np.asarray(trip)
    first = np.concatenate([[True], trip[1:] != trip[:-1]])
    same = ~first[1:]
    segment_speed = np.linalg.norm(np.diff(points.xy_m, axis=0), axis=-1)[same] / np.diff(points.time_s)[same]
    rows = {
        "EST-TG": mobility.generate_est_tg(jax.random.key(1), banks.model, num_trips),
        "uniform random trips": mobility.generate_naive(
            jax.random.key(1), np.asarray(banks.model.kde.box_m), num_trips, float(np.mean(real_speed))
        ),
    }
    data = {name: mobility.fidelity_report(banks.graph, real_xy, real_hours, real_speed, t) for name, t in rows.items()}
    centre, periphery = mobility.radial_mean_speeds(points.xy_m[:-1][same], segment_speed, (2500.0, 2500.0))
    data["ground truth"] = {
        "rush_to_early_trip_ratio": mobility.rush_to_early_trip_ratio(real_hours[first]),
        "centre_speed_mps": centre,
        "periphery_speed_mps": periphery,
    }
    data = {"seed": seed, "num_trips": num_trips, "reports": data}
    write_results(out / "est_tg_fidelity.json", data)
    for name, report in data["reports"].items():
        log(name, {k: round(v, 3) for k, v in report.items()})
    return data


def gap(results: dict, name: str, metric: str) -> list[float]:
    """Improvement over no pre-migration, % per capacity (positive = better; QoE is negative, higher is better)."""
    ref = np.asarray(results[REFERENCE][metric]["mean"])
    value = np.asarray(results[name][metric]["mean"])
    return (100 * (ref - value) / np.abs(ref) if metric != "qoe" else 100 * (value - ref) / np.abs(ref)).tolist()


def gap_line(results: dict) -> str:
    best = max((n for n in results if n.startswith("oracle")), key=lambda n: gap(results, n, "latency_s")[1])
    return f"{best} {gap(results, best, 'latency_s')[1]:+.1f}% latency, oracle_qoe {gap(results, 'oracle_qoe', 'qoe')[1]:+.1f}% QoE at 60 GHz"


def calibration_markdown(data: dict, bank: str = "real") -> str:
    """Per attempt: each policy's latency and QoE at every capacity, with the change against no pre-migration."""
    caps = data["capacities_ghz"]
    lines = []
    for name, entry in data["attempts"].items():
        if bank not in entry:
            continue
        results = entry[bank]
        lines += [f"**{name}** ({entry['reason']})", ""]
        header = " | ".join(f"{c:.0f} GHz latency (s) | QoE" for c in caps)
        lines += [f"| policy | {header} |", "|---|" + "---|---|" * len(caps)]
        for policy in sorted(results, key=lambda n: results[n]["latency_s"]["mean"][1]):
            cells = []
            for i in range(len(caps)):
                lat, qoe = results[policy]["latency_s"]["mean"][i], results[policy]["qoe"]["mean"][i]
                dl, dq = gap(results, policy, "latency_s")[i], gap(results, policy, "qoe")[i]
                cells.append(f"{lat:.3f} ({dl:+.1f}%) | {qoe:.3f} ({dq:+.1f}%)")
            lines.append(f"| {policy} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def gap_markdown(data: dict) -> str:
    """One row per attempt and bank: the best per-slot oracle's latency gain and oracle_qoe's QoE gain over no
    pre-migration at each capacity, and the best rule that is not an oracle."""
    caps = data["capacities_ghz"]
    head = " | ".join(f"{c:.0f} GHz" for c in caps)
    lines = [
        f"| attempt | bank | best oracle, latency: {head} | oracle_qoe, QoE: {head} | best non-oracle rule at 60 GHz |",
        "|---|---|" + "---|" * (2 * len(caps)) + "---|",
    ]
    for name, entry in data["attempts"].items():
        for bank in BANKS:
            if bank not in entry:
                continue
            results = entry[bank]
            oracle = [
                max(gap(results, n, "latency_s")[i] for n in results if n.startswith("oracle"))
                for i in range(len(caps))
            ]
            qoe = gap(results, "oracle_qoe", "qoe")
            rules = [n for n in results if not n.startswith("oracle") and n != REFERENCE]
            middle = caps.index(60.0) if 60.0 in caps else 0
            best = max(rules, key=lambda n: gap(results, n, "latency_s")[middle])
            cells = [f"{g:+.1f}%" for g in oracle] + [f"{g:+.1f}%" for g in qoe]
            rule = f"{best} {gap(results, best, 'latency_s')[middle]:+.1f}% / QoE {gap(results, best, 'qoe')[middle]:+.1f}%"
            lines.append(f"| {name} | {bank} | " + " | ".join(cells) + f" | {rule} |")
    return "\n".join(lines)


def information_markdown(data: dict, attempt: str = "v1") -> str:
    """The value of information of the RSU loads: the same greedy rule with slot t's requests, slot t-1's load, or
    none, against no pre-migration and the oracle, at every capacity on both banks."""
    caps = data["capacities_ghz"]
    names = ["oracle_latency", *heuristics.INFORMATION, REFERENCE]
    lines = [
        "| bank | load information | " + " | ".join(f"{c:.0f} GHz latency (s)" for c in caps) + " |",
        "|---|---|" + "---|" * len(caps),
    ]
    for bank in BANKS:
        results = data["attempts"][attempt][bank]
        for name in names:
            cells = [
                f"{results[name]['latency_s']['mean'][i]:.3f} ({gap(results, name, 'latency_s')[i]:+.1f}%)"
                for i in range(len(caps))
            ]
            lines.append(f"| {bank} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("command", choices=("calibrate", "fidelity", "report"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        calibrate(args.out, args.episodes, args.seeds)
    elif args.command == "fidelity":
        est_tg_fidelity(args.out)
    else:
        data = _read(args.out / "calibration.json")
        if not data:
            raise SystemExit(f"{args.out / 'calibration.json'}: missing; run `calibrate` first")
        print(f"### The oracle gap of every attempt\n\n{gap_markdown(data)}\n")
        print(f"### Value of information (v1)\n\n{information_markdown(data)}\n")
        for bank in BANKS:
            print(f"### Every policy, {bank} bank\n\n{calibration_markdown(data, bank)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
