"""MSRL's experiments on TwinSplit-v1 (spec 004 §7; on top of the learners and baselines, like bench).

    python -m experiments.twin_split_v1 train      # Split / Local-Edge / Local-Model, 3 seeds, spec budget
    python -m experiments.twin_split_v1 train --plan sumo   # MSRL (Split) on a SUMO city's traces (issue 23)
    python -m experiments.twin_split_v1 table      # the method comparison and the capacity sweep, as markdown

`train` trains each actor mode with 3 seeds in one compiled `vmap` over seeds (`msrl.make_train`), the GPU
capacity C_nom a traced argument of the same program, so one compilation per mode serves every capacity and bank.
Each (bank, capacity, mode) group is evaluated at once on the 3 x 100 held-out worlds of `vmjax evaluate`
(PRNGKey(10000 + s), the same for every policy, the heuristics and the per-slot oracles included) and written to
training.json atomically; a finished group is skipped, so a killed run resumes at the next group. Groups go in
`PLAN` order: both banks at 60 GHz first (the method comparison), then the ground-truth bank at 40 / 80 / 50 / 70
GHz (the capacity sweep, learners retrained at each capacity). `--plan sumo` adds the group `sumo/60GHz`: the same
protocol on the traces of a SUMO simulation of a 5 km city grid (`SUMO_BANK`, built with the `sumo` extra into
`--sumo-bank` when that file is missing), MSRL (Split) only.
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
from baselines import twin_split as heuristics
from baselines import twin_split_study as study
from baselines.evaluate import FIRST_SEED, write_results
from experiments.curves import convergence_iteration
from vmjax import mobility, scenarios
from vmjax.agents import msrl
from vmjax.core.machine import machine_summary
from vmjax.mobility import sumo_build

OUT = Path("docs/results/twin_split_v1")
MODES = ("split", "local_edge", "local")
PLAN = (("real", 60.0), ("generated", 60.0), ("real", 40.0), ("real", 80.0), ("real", 50.0), ("real", 70.0))
PLANS = {"paper": (PLAN, MODES), "sumo": ((("sumo", 60.0),), ("split",))}
SUMO_BANK = dict(grid_number=11, grid_length_m=500.0, lanes=2, vehicles=100, hours=1.0, seed=0)
"""`vmjax traces sumo --grid-number 11 --grid-length-m 500 --lanes 2 --vehicles 100 --hours 1`: an 11 x 11 grid of
two-lane streets 500 m apart (TwinSplit's 5 km map), 8:00-9:00 of the weekday demand profile."""
SUMO_BANK_PATH = Path("runs/sumo/twin_split_city5k.npz")
AGENT_DEFAULTS = scenarios.get("TwinSplit-v1").defaults["agent"]  # the spec's budget and v1's threshold change
EVAL_METRICS = ("latency_s", "qoe", "ber", "migration_share", "use_server", "params_used")
CURVE_METRICS = ("episode_total_latency_s", "episode_qoe", "server_use_fraction", "mean_threshold_nats")
CURVE_EVERY = 10  # iterations between stored curve points


def msrl_config(mode: str, iterations: int) -> msrl.MsrlConfig:
    """What `vmjax train --env TwinSplit-v1 --agent.mode MODE` trains (spec 004 §6.10 budget, v1's Ch)."""
    return msrl.MsrlConfig(**{**AGENT_DEFAULTS, "mode": mode, "num_iterations": iterations})


def make_group_runner(env, base_params, config: msrl.MsrlConfig, episodes: int, seeds: int):
    """jit((seed keys [S], capacity Hz, trace bank) -> (eval metrics {m: [S, held-out seeds, episodes]}, curves
    {m: [S, iterations]})): training vmapped over seeds, then the trained policies on the held-out worlds."""

    def one(key, capacity, bank):
        params = base_params.replace(gpu_hz_nominal=capacity, trace_bank=bank)
        trainer = msrl.make_trainer(env, config, params)
        state, metrics = trainer.train(key)
        policy = trainer.make_eval_policy(state)
        evaluate = lambda k: heuristics.evaluate_episodes(env, [policy], params, k, 0, episodes)
        held_out = jax.vmap(evaluate)(jnp.stack([jax.random.PRNGKey(FIRST_SEED + s) for s in range(seeds)]))
        return held_out, {m: metrics[m] for m in CURVE_METRICS}

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def _summary(values: np.ndarray) -> dict:
    """values [training seeds, held-out seeds, episodes] -> mean, spread over training seeds, per-seed means."""
    per_seed = values.mean(axis=(1, 2))
    return {"mean": float(per_seed.mean()), "seed_std": float(per_seed.std(ddof=1)), "per_seed": per_seed.tolist()}


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def sumo_trace_bank(path: Path, num_slots: int, map_size_m: float, log=print) -> mobility.Trace:
    """The SUMO bank of `SUMO_BANK` at TwinSplit's 30-s slot on its map (built into `path` first if missing)."""
    if not path.exists():
        log(f"building the SUMO bank {path} ({SUMO_BANK})")
        sumo_build.build_sumo_bank(sumo_build.SumoBankConfig(**SUMO_BANK), path, log=log)
    return mobility.load_trace_bank(path, 30.0, (map_size_m, map_size_m), num_slots, 10, owner="--sumo-bank")


def train(
    out: Path,
    iterations: int,
    episodes: int,
    seeds: tuple[int, ...],
    plan=PLAN,
    modes=MODES,
    log=print,
    sumo_bank: Path = SUMO_BANK_PATH,
):
    path = out / "training.json"
    data = _read(path)
    data.update(
        iterations=iterations, num_envs=32, training_seeds=list(seeds), held_out_episodes=episodes, held_out_seeds=3
    )
    data["agent_defaults"] = AGENT_DEFAULTS  # the MsrlConfig fields the v1 scenario sets
    groups = data.setdefault("groups", {})
    env = vmjax.make("TwinSplit-v1")
    base = env.default_params
    banks, runners = {}, {}
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    for bank, ghz in plan:
        name = f"{bank}/{ghz:.0f}GHz"
        group = groups.setdefault(name, {})
        if bank == "sumo" and bank not in banks:
            banks[bank] = sumo_trace_bank(sumo_bank, env.config.max_steps + 1, env.config.map_size_m, log)
            data["sumo_bank"] = {"config": SUMO_BANK, "tracks": int(banks[bank].positions_m.shape[1])}
        if bank not in banks:
            banks[bank] = study.trace_bank(bank, env.config.max_steps + 1, env.config.map_size_m)
        if "heuristics" not in group:
            start = time.perf_counter()
            params = base.replace(trace_bank=banks[bank])
            policies = {n: make(env) for n, make in study.all_policies().items()}
            group["heuristics"] = study.evaluate_capacities(env, params, policies, episodes, 3, (ghz,))
            group["heuristics_machine"] = machine_summary()  # the file's "machine" is its last writer's
            write_results(path, data)
            log(f"{name}: heuristics and oracles in {time.perf_counter() - start:.0f} s")
        for mode in modes:
            if mode in group:
                continue
            start = time.perf_counter()
            if mode not in runners:
                runners[mode] = make_group_runner(env, base, msrl_config(mode, iterations), episodes, 3)
            held_out, curves = jax.device_get(runners[mode](keys, jnp.float32(ghz * 1e9), banks[bank]))
            group[mode] = {
                **{m: _summary(np.asarray(held_out[m])) for m in EVAL_METRICS},
                "curves": {m: np.asarray(curves[m])[:, CURVE_EVERY - 1 :: CURVE_EVERY].tolist() for m in CURVE_METRICS},
                "wall_s": time.perf_counter() - start,
                "machine": machine_summary(),
            }
            write_results(path, data)
            log(
                f"{name} {mode}: latency {group[mode]['latency_s']['mean']:.3f} s, QoE {group[mode]['qoe']['mean']:.3f}, "
                f"server calls {100 * group[mode]['use_server']['mean']:.1f}% in {time.perf_counter() - start:.0f} s"
            )
    return data


MODE_LABELS = {"split": "MSRL (Split)", "local_edge": "Local-Edge", "local": "Local-Model"}
REFERENCES = (
    "no_premigration",
    "full_migration",
    "random_migration",
    "greedy_requested_load",
    "oracle_latency",
    "oracle_qoe",
)


def _cells(result: dict) -> list[str]:
    """latency, QoE, BER, server calls and parameters per call of a learner's group entry (± training seeds)."""
    pm = lambda m, scale=1.0, digits=3: (
        f"{scale * result[m]['mean']:.{digits}f} ± {scale * result[m]['seed_std']:.{digits}f}"
    )
    return [
        pm("latency_s"),
        pm("qoe"),
        pm("ber", 100.0, 2),
        pm("use_server", 100.0, 1),
        f"{result['params_used']['mean']:.0f}",
    ]


def method_table(data: dict) -> str:
    """Per (bank, capacity) group: the learners (mean ± std over training seeds) and the references (± std over
    the held-out seeds), on the same held-out worlds."""
    lines = [
        "| group | method | latency (s) | QoE | BER (%) | server calls (%) | params per call |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group in data["groups"].items():
        for mode, label in MODE_LABELS.items():
            if mode in group:
                lines.append(f"| {name} | {label} | " + " | ".join(_cells(group[mode])) + " |")
        for ref in REFERENCES:
            r = group.get("heuristics", {}).get(ref)
            if r is None:
                continue
            lat, qoe, ber = (r[m]["mean"][0] for m in ("latency_s", "qoe", "ber"))
            lines.append(
                f"| {name} | {ref} | {lat:.3f} ± {r['latency_s']['seed_std'][0]:.3f} | {qoe:.3f} | {100 * ber:.2f} | – | – |"
            )
    return "\n".join(lines)


def capacity_table(data: dict, bank: str = "real") -> str:
    """Latency against C_nom with the learners retrained at each capacity, and the references."""
    groups = {float(n.split("/")[1][:-3]): g for n, g in data["groups"].items() if n.startswith(bank + "/")}
    caps = sorted(groups)
    lines = ["| method | " + " | ".join(f"{c:.0f} GHz" for c in caps) + " |", "|---|" + "---|" * len(caps)]
    for mode, label in MODE_LABELS.items():
        cells = [
            f"{groups[c][mode]['latency_s']['mean']:.3f} ± {groups[c][mode]['latency_s']['seed_std']:.3f}"
            if mode in groups[c]
            else "–"
            for c in caps
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        used = [f"{groups[c][mode]['params_used']['mean']:.0f}" if mode in groups[c] else "–" for c in caps]
        lines.append(f"| {label}: params per call | " + " | ".join(used) + " |")
    for ref in REFERENCES:
        cells = [
            f"{groups[c]['heuristics'][ref]['latency_s']['mean'][0]:.3f}" if "heuristics" in groups[c] else "–"
            for c in caps
        ]
        lines.append(f"| {ref} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def convergence_table(data: dict) -> str:
    """Per group and learner: the iteration at which the training latency (smoothed) made 90% of its improvement,
    mean ± std over training seeds, and the final server-use fraction and threshold in training."""
    lines = [
        "| group | method | iterations to 90% of the improvement | final training latency (s) | final server use in training (%) | final Thr (nats) |",
        "|---|---|---|---|---|---|",
    ]
    for name, group in data["groups"].items():
        for mode, label in MODE_LABELS.items():
            if mode not in group:
                continue
            curves = group[mode]["curves"]
            if len(curves["episode_total_latency_s"][0]) < 3:
                continue
            speed = [CURVE_EVERY * convergence_iteration(c, window=3) for c in curves["episode_total_latency_s"]]
            final = [c[-1] for c in curves["episode_total_latency_s"]]
            use = [100 * c[-1] for c in curves["server_use_fraction"]]
            thr = [c[-1] for c in curves["mean_threshold_nats"]]
            lines.append(
                f"| {name} | {label} | {np.mean(speed):.0f} ± {np.std(speed, ddof=1):.0f} | {np.mean(final):.3f} | "
                f"{np.mean(use):.1f} | {np.mean(thr):.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("command", choices=("train", "table"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--plan", choices=sorted(PLANS), default="paper", help="the paper's groups or the SUMO one")
    parser.add_argument("--sumo-bank", type=Path, default=SUMO_BANK_PATH, help="the SUMO bank (built if missing)")
    args = parser.parse_args(argv)
    if args.command == "train":
        plan, modes = PLANS[args.plan]
        train(args.out, args.iterations, args.episodes, tuple(args.seeds), plan, modes, sumo_bank=args.sumo_bank)
        return 0
    data = _read(args.out / "training.json")
    if not data.get("groups"):
        parser.error(f"no {args.out / 'training.json'}: run `train` first")
    print(method_table(data), capacity_table(data), convergence_table(data), sep="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
