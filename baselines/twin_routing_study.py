"""TwinRouting v0 -> v1 calibration: what a policy could win, before any training (spec 002, issue "TwinRouting-v1").

    python -m baselines.twin_routing_study calibrate [--out docs/results/twin_routing_v1] [--episodes 100 --seeds 3]
    python -m baselines.twin_routing_study predictors [--out ...]      # spec §4.4 predictor table on v1's traffic
    python -m baselines.twin_routing_study report [--out ...]          # the docs' tables, as markdown

`calibrate` evaluates, on each calibration attempt (v0, then each v1 change added in turn):
- the references of `baselines.twin_routing.REFERENCES` (doing nothing, the nearest server, the least-loaded rule,
  the per-slot oracles) and the spec's Greedy and Random, with the mask;
- the value of information: the least-loaded rule and Greedy under the three workload estimates of the env
  (`workload_forecast` = "oracle": the true B(t); "persistence": B(t - 1); "none": the cached work only);
- Greedy and Random without the mask (the mask ablation);
- the background load's one-step predictability (`predictability`): persistence's error against the best linear
  forecast from the 6-slot window, and how close the caches come to capacity.
Every policy of an attempt meets the same held-out worlds (PRNGKey(10000 + s), as `vmjax evaluate`), and its reward
uses one set of z-score statistics per attempt (Greedy and Random with the mask and the persistence forecast, §3.3
A). The JSON is written atomically after every attempt; attempts already written are skipped (a killed run
resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import twin_routing as heuristics
from baselines.evaluate import FIRST_SEED, summarize_episodes, write_results
from vmjax.envs.twin_routing import V1_PARAMS

OUT = Path("docs/results/twin_routing_v1")
FORECASTS = ("oracle", "persistence", "none")
METRICS = ("reward", "latency_s", "failure_rate", "packet_loss", "migration_share", "satellite_share")
REFERENCE = "stay"  # doing nothing: the twin stays on its host while the mask allows it

V0_FLOW = {"flow_daily_amplitude": 0.6, "flow_half_daily_amplitude": 0.3, "flow_noise_frac": 0.1}  # v0's load
# (name, env id, config, EnvParams changes, what changes and why); the last one is TwinRouting-v1 itself
ATTEMPTS = (
    ("v0", "TwinRouting-v0", {}, {}, "the literal reading with the calibrated parameter set (spec §7, §11)"),
    (
        "v1 costs",
        "TwinRouting-v1",
        {},
        V0_FLOW,
        "an overflow pays the satellite's links, an out-of-range host is reached through the satellite, the mask "
        "tests S_v + J S^mig",
    ),
    ("v1", "TwinRouting-v1", {}, V1_PARAMS, "TwinRouting-v1: a background load that reaches capacity at its peak"),
    (
        "v1 SUMO",
        "TwinRouting-v1",
        {},
        {"flow_table": "data/traffic/twin_routing_sumo.csv"},
        "TwinRouting-v1 with the RSU flows replayed from the SUMO day (--traffic.replay)",
    ),
)


def _norm_stats(env, params, episodes: int):
    """§3.3 (A) statistics of this world (Greedy + Random, mask on, the env's forecast)."""
    return heuristics.calibrate(env, params, jax.random.key(7919), episodes)


def evaluate_policies(env, params, policies: dict, episodes: int, seeds: int, metrics=METRICS) -> dict:
    """{name: summary} of each policy (`policies`: name -> `make(env)`) on `seeds` x `episodes` held-out worlds
    (the same for every policy, one compiled evaluator), with the per-seed means of `metrics`."""
    makers = list(policies.values())
    evaluator = heuristics.make_policy_evaluator(env, [make(env) for make in makers], params, episodes)
    results = {}
    for index, name in enumerate(policies):
        per_seed = [jax.device_get(evaluator(jax.random.PRNGKey(FIRST_SEED + s), index)) for s in range(seeds)]
        episodes_all = {k: np.concatenate([np.asarray(p[k]) for p in per_seed]) for k in per_seed[0]}
        summary = summarize_episodes(episodes_all)
        summary["seed_means"] = {m: [float(np.mean(p[m])) for p in per_seed] for m in metrics}
        results[name] = summary
    return results


def predictability(env, params, worlds: int = 64, slots: int = 600, window: int = 6) -> dict:
    """The background load's one-step error (bits, RSUs and UAVs of `worlds` simulated series of `slots`): RMSE of
    persistence (B(t - 1)) and of the least-squares linear forecast from the `window` previous slots (fitted on
    the same data: an upper bound on what a linear model learns), relative to the series' std; and the mean and
    99th percentile of B over L^max."""
    keys = jax.random.split(jax.random.key(123), worlds)
    series = jax.jit(jax.vmap(lambda k: env.background_load_series(k, params, slots)))(keys)
    ground = np.asarray(series)[:, :, : env.num_rsus + env.num_uavs]  # [W, T, N + U]
    x = np.moveaxis(ground, 2, 1).reshape(-1, slots).astype(np.float64)  # one row per (world, server)
    x = x[x.std(axis=1) > 0]
    lags = np.stack([x[:, k : slots - window + k] for k in range(window)], axis=-1).reshape(-1, window)
    target = x[:, window:].reshape(-1)
    design = np.concatenate([lags, np.ones((len(lags), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    rmse = lambda e: float(np.sqrt(np.mean(e**2)))
    scale = float(np.std(target))
    persistence = rmse(target - lags[:, -1])
    linear = rmse(target - design @ coef)
    cache = float(params.edge_cache_bits)
    return {
        "persistence_rmse_mb": persistence / 8e6,
        "linear_rmse_mb": linear / 8e6,
        "linear_gain": 1.0 - linear / persistence,
        "series_std_mb": scale / 8e6,
        "mean_over_cache": float(target.mean()) / cache,
        "p99_over_cache": float(np.percentile(target, 99)) / cache,
    }


def _resolve(overrides: dict) -> dict:
    """EnvParams changes with a traffic CSV's path for `flow_table` read into its [T, N] counts."""
    overrides = dict(overrides)
    if isinstance(overrides.get("flow_table"), str):
        from vmjax import predict

        overrides["flow_table"] = jnp.asarray(predict.load_traffic_csv(overrides["flow_table"]), jnp.float32)
    return overrides


def evaluate_attempt(env_id: str, config: dict, overrides: dict, episodes: int, seeds: int, log=print) -> dict:
    """Every reference, the value of information and the mask ablation on one world (see the module docstring)."""
    base = vmjax.make(env_id, **config)
    params = base.default_params.replace(**_resolve(overrides))
    start = time.perf_counter()
    params = params.replace(norm_stats=_norm_stats(base, params, 64))
    row = {
        "norm_stats": {f.name: float(getattr(params.norm_stats, f.name)) for f in dataclasses.fields(params.norm_stats)}
    }
    row["predictability"] = predictability(base, params)
    policies = {**heuristics.REFERENCES, **heuristics.POLICIES}
    row["policies"] = evaluate_policies(base, params, policies, episodes, seeds)
    information = {}
    for forecast in ("oracle", "none"):
        env = vmjax.make(env_id, **{**config, "workload_forecast": forecast})
        keep = {k: heuristics.POLICIES.get(k) or heuristics.REFERENCES[k] for k in ("least_loaded", "greedy")}
        information[forecast] = evaluate_policies(env, params, keep, episodes, seeds)
    information["persistence"] = {k: row["policies"][k] for k in ("least_loaded", "greedy")}
    row["information"] = information
    unmasked = vmjax.make(env_id, **{**config, "use_mask": False})
    row["no_mask"] = evaluate_policies(unmasked, params, heuristics.POLICIES, episodes, seeds)
    row["wall_s"] = time.perf_counter() - start
    log(f"  {env_id} {overrides}: {row['wall_s']:.0f} s")
    return row


SUMO_CSV = Path("data/traffic/twin_routing_sumo.csv")  # per-RSU vehicle counts of a SUMO day (experiments/)


def traffic_sources(num_slots: int = 2000) -> dict:
    """{name: (series [T, S] in bits, description)}: TwinRouting-v1's own background load (`num_slots` slots of every
    server, the series a run's predictor trains on) and, when shipped, the SUMO counts x S_v per RSU."""
    env = vmjax.make("TwinRouting-v1")
    params = env.default_params
    series = jax.jit(env.background_load_series, static_argnums=2)(jax.random.key(1), params, num_slots)
    sources = {"synthetic": (np.asarray(series), f"TwinRouting-v1 background load, {num_slots} slots")}
    if SUMO_CSV.exists():
        from vmjax import predict

        counts = np.asarray(predict.load_traffic_csv(SUMO_CSV), np.float32)
        sources["sumo"] = (counts * float(params.data_bits), f"{SUMO_CSV} x S_v ({counts.shape[0]} slots)")
    return sources


def compare_predictors(out: Path, epochs: int = 20, log=print) -> dict:
    """Spec §4.4 on v1's traffic: the LSTM-Transformer (16-wide heads, the scenario's default), LSTM, GRU, CNN-LSTM,
    CNN-GRU and persistence, one protocol, test split; one source at a time, resumable."""
    from vmjax import predict

    path = out / "predictors.json"
    data = _read(path)
    config = predict.WorkloadPredictorConfig(head_dim=16, epochs=epochs)
    for name, (series, description) in traffic_sources().items():
        if isinstance(data.get(name), dict):
            continue
        log(f"predictors on {description}")
        rows = predict.compare_predictors(jax.random.key(2), series, config=config)
        data[name] = {"source": description, "epochs": epochs, "rows": rows}
        write_results(path, data)
    return data


def predictors_markdown(data: dict) -> str:
    lines = ["| source | model | test RMSE (MB) | vs persistence | R2 | params |", "|---|---|---|---|---|---|"]
    for name, block in data.items():
        if not isinstance(block, dict):  # "machine"
            continue
        rows = block["rows"]
        base = next(r for r in rows if r["kind"] == "persistence")["rmse"]
        for r in rows:
            lines.append(
                f"| {name} | {r['model']} | {r['rmse'] / 8e6:.3f} | {100 * (r['rmse'] / base - 1):+.1f}% | "
                f"{r['r2']:.3f} | {r['num_params']} |"
            )
    return "\n".join(lines)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def calibrate(out: Path, episodes: int, seeds: int, attempts=ATTEMPTS, log=print) -> dict:
    path = out / "calibration.json"
    data = _read(path)
    data.update(held_out_episodes=episodes, held_out_seeds=seeds, first_seed=FIRST_SEED)
    data.setdefault("attempts", {})
    for name, env_id, config, overrides, reason in attempts:
        if name in data["attempts"]:
            continue
        log(f"attempt {name}: {reason}")
        row = evaluate_attempt(env_id, config, overrides, episodes, seeds, log)
        row.update(env_id=env_id, config=config, overrides=overrides, reason=reason)
        data["attempts"][name] = row
        write_results(path, data)
    return data


def gap(policies: dict, name: str, metric: str = "reward") -> float:
    """Relative improvement of `name` over doing nothing on `metric` (reward: higher is better; else lower)."""
    ref, value = policies[REFERENCE][metric], policies[name][metric]
    return (value - ref) / abs(ref) if metric == "reward" else (ref - value) / abs(ref)


POLICY_ORDER = ("stay", "nearest", "least_loaded", "oracle", "oracle_team", "greedy", "random")


def _attempts(data: dict) -> list:
    """The attempts in `ATTEMPTS` order (then any others)."""
    order = [a[0] for a in ATTEMPTS]
    return sorted(data["attempts"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))


def calibration_markdown(data: dict) -> str:
    """One row per (attempt, policy): reward (± std over the held-out seeds), latency, failures, migrations, the
    gain over doing nothing; then Greedy and Random without the mask."""
    lines = [
        "| attempt | policy | reward | vs stay | latency (s) | failures | migrations |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in _attempts(data):
        for policy in POLICY_ORDER:
            summary = row["policies"][policy]
            spread = np.std(summary["seed_means"]["reward"], ddof=1)
            lines.append(
                f"| {name} | {policy} | {summary['reward']:.3f} ± {spread:.3f} | "
                f"{100 * gap(row['policies'], policy):+.1f}% | {summary['latency_s']:.4f} | "
                f"{100 * summary['failure_rate']:.3f}% | {100 * summary['migration_share']:.1f}% |"
            )
        for policy, summary in row["no_mask"].items():
            lines.append(
                f"| {name} | {policy} w/o mask | {summary['reward']:.3f} | | {summary['latency_s']:.4f} | "
                f"{100 * summary['failure_rate']:.2f}% | {100 * summary['migration_share']:.1f}% |"
            )
    return "\n".join(lines)


def information_markdown(data: dict) -> str:
    lines = [
        "| attempt | rule | oracle forecast | persistence | none | one-step error of persistence (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in _attempts(data):
        error = row["predictability"]["persistence_rmse_mb"]
        for rule in ("least_loaded", "greedy"):
            cells = []
            for forecast in FORECASTS:
                s = row["information"][forecast][rule]
                cells.append(f"{s['reward']:.3f} ({100 * s['failure_rate']:.2f}% failures)")
            lines.append(f"| {name} | {rule} | " + " | ".join(cells) + f" | {error:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("calibrate", "predictors", "report"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        calibrate(args.out, args.episodes, args.seeds)
    if args.command == "predictors":
        compare_predictors(args.out)
    if (args.out / "predictors.json").exists():
        print(predictors_markdown(_read(args.out / "predictors.json")))
        print()
    data = _read(args.out / "calibration.json")
    print(calibration_markdown(data))
    print()
    print(information_markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
