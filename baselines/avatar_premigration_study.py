"""AvatarPremigration studies: the v0 -> v1 calibration (what a policy could win) and the parameter sweeps.

    python -m baselines.avatar_premigration_study calibrate [--out docs/results/avatar_premigration_v1]
    python -m baselines.avatar_premigration_study sweep [--out ...]   # the heuristics; trained runs: experiments/
    python -m baselines.avatar_premigration_study report [--out ...]   # the tables of the docs, as markdown

`calibrate` evaluates every heuristic and the per-slot oracles on each calibration attempt (v0, each v1
mechanism alone, then together) on the held-out worlds of `vmjax evaluate` (PRNGKey(10000 + s)), and the value
of information: the observation-only greedy with the oracle, persistence and no forecast (and the LSTM's, given
--predictor). `sweep` runs each §7.1 sweep as one compiled `vmap` over `EnvParams` for the heuristics
(`python -m experiments.avatar_premigration_v1 sweep RUN_DIR ...` adds trained policies). Both write JSON atomically after every row and skip rows already written, so
a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import avatar_premigration as heuristics
from baselines.evaluate import FIRST_SEED, make_policy_evaluator, policy_episodes, summarize_episodes, write_results
from vmjax import net, predict

OUT = Path("docs/results/avatar_premigration_v1")

# (name, env id, config, what changes and why); the last one is AvatarPremigration-v1 itself
ATTEMPTS = (
    ("v0", "AvatarPremigration-v0", {}, "the literal reading (spec §2.8: start-of-slot loads only)"),
    (
        "v0 + contention",
        "AvatarPremigration-v0",
        {"contention": "processor_sharing"},
        "paper §III-C: a pre-migrated task is processed after the other avatar tasks in the current RSU",
    ),
    (
        "v0 + relay",
        "AvatarPremigration-v0",
        {"downlink": "relay"},
        'results returned "via the vehicular network": target -> wired -> serving RSU -> vehicle',
    ),
    (
        "v0 + contention + relay",
        "AvatarPremigration-v0",
        {"contention": "processor_sharing", "downlink": "relay"},
        "both mechanisms",
    ),
    (
        "v1 (+ 40 background vehicles)",
        "AvatarPremigration-v1",
        {},
        "the spec's background option (§7.1: N_bg = 40, kappa_bg = 5 Gcycles/slot): hot spots near L^max",
    ),
)
FORECASTS = ("coverage_oracle", "persistence", "none")
SWEEPS = {  # §7.1 / §10 #23-24: every RSU (or the cloud) set to the value, the rest drawn as usual
    "task_size_mb": ("task_bits", net.BITS_PER_MEGABYTE, (50.0, 100.0, 150.0, 200.0, 250.0)),
    "wireless_bandwidth_mhz": ("rsu_bandwidth_hz", 1e6, (100.0, 200.0, 300.0, 400.0, 500.0)),
    "migration_bandwidth_mbps": ("rsu_migration_bps", 1e6, (500.0, 600.0, 700.0, 800.0, 900.0)),
    "rsu_gpu_ghz": ("rsu_gpu_hz", 1e9, (10.0, 15.0, 20.0, 25.0, 30.0)),
    "cloud_gpu_ghz": ("cloud_gpu_hz", 1e9, (50.0, 60.0, 70.0, 80.0, 90.0, 100.0)),
}


def all_policies():
    return {**heuristics.POLICIES, **heuristics.ORACLES}


def evaluate_policies(env, params, policies: dict, episodes: int, seeds: int) -> dict[str, dict]:
    """Each policy on `seeds` x `episodes` held-out worlds (the same for all): pooled summaries plus the
    spread of the latency over the seeds."""
    names = list(policies)
    evaluator = make_policy_evaluator(env, [policies[n] for n in names], params, episodes)
    out = {}
    for index, name in enumerate(names):
        start = time.perf_counter()
        runs = [jax.device_get(evaluator(jax.random.PRNGKey(FIRST_SEED + s), index)) for s in range(seeds)]
        pooled = summarize_episodes({k: np.concatenate([np.asarray(r[k]) for r in runs]) for k in runs[0]})
        seed_means = [float(np.mean(r["latency_s"])) for r in runs]
        pooled["latency_s_seed_means"] = seed_means
        pooled["latency_s_seed_std"] = float(np.std(seed_means, ddof=1)) if seeds > 1 else 0.0
        pooled["wall_s"] = time.perf_counter() - start
        out[name] = pooled
    return out


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def calibrate(out: Path, episodes: int, seeds: int, predictor_path: str | None, log=print) -> dict:
    """The oracle-gap table of every attempt, then the value-of-information table on v1."""
    path = out / "calibration.json"
    data = _read(path)
    data.setdefault("episodes_per_seed", episodes)
    data.setdefault("seeds", seeds)
    attempts = data.setdefault("attempts", {})
    for name, env_id, config, reason in ATTEMPTS:
        if name in attempts:
            continue
        env = vmjax.make(env_id, **config)
        policies = {n: make(env) for n, make in all_policies().items()}
        results = evaluate_policies(env, env.default_params, policies, episodes, seeds)
        attempts[name] = {"env": env_id, "config": config, "reason": reason, "results": results}
        write_results(path, data)
        log(f"{name}: " + ", ".join(f"{n} {r['latency_s']:.2f}" for n, r in results.items()))
    information = data.setdefault("value_of_information", {})
    forecasts = FORECASTS + (("lstm",) if predictor_path else ())
    for forecast in forecasts:
        if forecast in information:
            continue
        env = vmjax.make("AvatarPremigration-v1", workload_forecast=forecast)
        params = env.default_params
        if forecast == "lstm":
            params = params.replace(predictor=predict.load_predictor(predictor_path))
        policies = {"greedy_observed": heuristics.make_greedy_observed_policy(env)}
        information[forecast] = evaluate_policies(env, params, policies, episodes, seeds)["greedy_observed"]
        write_results(path, data)
        log(f"greedy_observed with the {forecast} forecast: {information[forecast]['latency_s']:.3f} s")
    return data


def swept_params(params, field: str, scale: float, values) -> object:
    """`params` stacked over the sweep points: field_low = field_high = value * scale at each point (and for the
    task size, kappa of eq. 18 = D f follows it)."""
    values = jnp.asarray(values, jnp.float32) * scale
    stacked = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(jnp.asarray(x), (len(values),) + jnp.shape(x)), params)
    stacked = stacked.replace(**{f"{field}_low": values, f"{field}_high": values})
    if field == "task_bits":
        stacked = stacked.replace(workload_per_vehicle_cycles=values * params.cycles_per_bit)
    return stacked


def make_sweep_evaluator(env, policies: list, episodes: int):
    """jit(vmap over stacked EnvParams) of (key, policy index, params) -> mean latency per episode [episodes]
    (`baselines.evaluate.policy_episodes`)."""
    run = policy_episodes(env, policies, episodes)
    return jax.jit(jax.vmap(lambda key, index, params: run(key, index, params)["latency_s"], in_axes=(None, None, 0)))


def heuristic_group(env_id: str = "AvatarPremigration-v1"):
    """(name, env, params, policies) of every heuristic and the per-slot best-response oracle on `env_id`, a group
    for `sweep`."""
    env = vmjax.make(env_id)
    makers = {**heuristics.POLICIES, "oracle_best_response": heuristics.ORACLES["oracle_best_response"]}
    return "heuristics", env, env.default_params, {n: make(env) for n, make in makers.items()}


def sweep(groups: list, out: Path, episodes: int, log=print) -> dict:
    """Every sweep for each group (name, env, params, {policy name: policy}): one compiled evaluator per group and
    sweep, vmapped over the stacked EnvParams. Rows already in sweeps.json are kept (resumable)."""
    path = out / "sweeps.json"
    data = _read(path)
    data.setdefault("episodes", episodes)
    data.setdefault("held_out_seed", FIRST_SEED)
    results = data.setdefault("results", {})
    for sweep_name, (field, scale, values) in SWEEPS.items():
        rows = results.setdefault(sweep_name, {"values": list(values), "policies": {}})
        for group, group_env, params, policies in groups:
            names = [n for n in policies if n not in rows["policies"]]
            if not names:
                continue
            start = time.perf_counter()
            evaluator = make_sweep_evaluator(group_env, [policies[n] for n in names], episodes)
            stacked = swept_params(params, field, scale, values)
            for index, name in enumerate(names):
                latency = np.asarray(evaluator(jax.random.PRNGKey(FIRST_SEED), index, stacked))  # [points, episodes]
                rows["policies"][name] = {
                    "latency_s": latency.mean(axis=1).tolist(),
                    "latency_s_std": latency.std(axis=1, ddof=1).tolist(),
                }
            write_results(path, data)
            log(f"{sweep_name} {group}: {len(names)} policies, {time.perf_counter() - start:.0f} s")
    return data


def _cell(result: dict) -> str:
    spread = result.get("latency_s_seed_std", 0.0)
    return f"{result['latency_s']:.2f} ± {spread:.2f}"


def calibration_markdown(data: dict) -> str:
    """The oracle-gap table (policies x attempts) and the value-of-information table, as markdown."""
    order = [name for name, *_ in ATTEMPTS]
    attempts = dict(sorted(data["attempts"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    last = list(attempts.values())[-1]["results"]
    names = sorted(last, key=lambda n: last[n]["latency_s"])
    lines = ["| policy | " + " | ".join(attempts) + " |", "|---" * (len(attempts) + 1) + "|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_cell(a["results"][name]) for a in attempts.values()) + " |")
    gaps = []
    for attempt in attempts.values():
        r = attempt["results"]
        best_rule = min(v["latency_s"] for k, v in r.items() if not k.startswith("oracle"))
        oracle = min(r["oracle_best_response"]["latency_s"], r["oracle_team"]["latency_s"])
        npm = r["no_premigration"]["latency_s"]
        gaps.append(f"{100 * (npm - oracle) / npm:.0f}% / {100 * (best_rule - oracle) / best_rule:.0f}%")
    lines.append("| **oracle gap** vs no pre-migration / vs the best rule | " + " | ".join(gaps) + " |")
    saturated = [f"{100 * a['results']['no_premigration']['saturated_rsus']:.1f}%" for a in attempts.values()]
    lines.append("| RSU-slots at >= 90% of L^max under no pre-migration | " + " | ".join(saturated) + " |")
    out = "\n".join(lines)
    information = data.get("value_of_information", {})
    if information:
        rows = ["| forecast in the observation | greedy_observed latency (s) |", "|---|---|"]
        rows += [
            f"| {forecast} | {_cell(information[forecast])} |"
            for forecast in (*FORECASTS, "lstm")
            if forecast in information
        ]
        out += "\n\n" + "\n".join(rows)
    return out


def sweeps_markdown(data: dict) -> str:
    """One table per sweep: policies x sweep points, mean latency (s). A learner's training seeds (policies named
    "<label> [<run folder>]") are pooled into one row: the mean over seeds ± their standard deviation."""
    out = []
    for sweep_name, rows in data["results"].items():
        pooled: dict[str, list] = {}
        for name, r in rows["policies"].items():
            pooled.setdefault(name.split(" [")[0], []).append(r["latency_s"])
        middle = len(rows["values"]) // 2
        lines = [f"| {sweep_name} | " + " | ".join(f"{v:g}" for v in rows["values"]) + " |"]
        lines.append("|---" * (len(rows["values"]) + 1) + "|")
        for name, series in sorted(pooled.items(), key=lambda kv: np.mean(kv[1], axis=0)[middle]):
            series = np.asarray(series, dtype=float)
            mean, label = series.mean(axis=0), name if len(series) == 1 else f"{name} ({len(series)} seeds)"
            spread = series.std(axis=0, ddof=1) if len(series) > 1 else np.full(len(mean), np.nan)
            cells = [f"{m:.2f}" if np.isnan(d) else f"{m:.2f} ± {d:.2f}" for m, d in zip(mean, spread)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baselines.avatar_premigration_study", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="oracle-gap and value-of-information tables")
    cal.add_argument("--episodes", type=int, default=100)
    cal.add_argument("--seeds", type=int, default=3)
    cal.add_argument("--predictor", help="a trained trajectory predictor (predictor.msgpack) for the lstm row")
    cal.add_argument("--out", type=Path, default=OUT)
    swp = sub.add_parser("sweep", help="the §7.1 parameter sweeps of the heuristics, vmapped over EnvParams")
    swp.add_argument("--episodes", type=int, default=100)
    swp.add_argument("--out", type=Path, default=OUT)
    rep = sub.add_parser("report", help="print the calibration and sweep tables (markdown) from the JSON")
    rep.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.command == "report":
        for name, render in (("calibration.json", calibration_markdown), ("sweeps.json", sweeps_markdown)):
            if (args.out / name).exists():
                print(render(_read(args.out / name)) + "\n")
        return 0
    if args.episodes < 2:
        parser.error("--episodes must be >= 2 (the tables report a spread over episodes)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "calibrate":
        if args.seeds < 1:
            parser.error("--seeds must be >= 1")
        calibrate(args.out, args.episodes, args.seeds, args.predictor)
    else:
        sweep([heuristic_group()], args.out, args.episodes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
