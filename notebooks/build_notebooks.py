"""Write the notebooks from their cell sources and execute them in place (outputs committed with them).

    python notebooks/build_notebooks.py            # needs nbformat, nbclient, ipykernel (pip install them)

The test suite runs the same cells at a tiny budget without Jupyter (tests/test_notebook_*.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def results_loader(folder: str) -> str:
    """The code that finds docs/results/<folder> (from notebooks/ or the repository root) and defines `load(name)`
    (its JSON, None when not produced yet): the start of every results notebook."""
    return f"""RESULTS = Path("../docs/results/{folder}")
if not RESULTS.exists():  # run from the repository root (the test suite)
    RESULTS = Path("docs/results/{folder}")
def load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None
"""


AVATAR_CELLS = [
    (
        "markdown",
        """# Hybrid-MAPPO on AvatarPremigration-v0: learning curves and the comparison with the heuristics

Spec 003 (avatar task pre-migration between RSUs). This notebook trains, with the `vmjax` library functions
behind the command line (`vmjax train`, `vmjax evaluate`):

- **Hybrid-MAPPO** with the LSTM workload forecast in the observation (the proposed method), 3 training seeds,
- **Hybrid-MAPPO w/o prediction** (9-dim observation), 3 training seeds,
- **MAPPO-DDPG** with and without prediction (the spec's comparison learner), 1 training seed each,
- **Hybrid-MAPPO with RSUs named by index** (`rsu_order="index"`, the spec's layout), 1 training seed, the
  ablation of the relabelling,

and evaluates them with the seven heuristics on the same held-out episodes. `ITERATIONS` below is the
budget per run; the machine, the budget and the wall time of the run that produced the outputs are printed at
the end. The same runs from a shell: `vmjax train --run.run_dir runs/nb/hybrid_lstm_s0`,
`... --env.workload_forecast none`, `... --run.algo mappo_ddpg`, `... --run.seed 1`, then
`vmjax evaluate runs/nb/*`. All runs use the command-line defaults, among them `rsu_order="distance"`
(an agent names RSUs by distance, slot 0 = its serving RSU; docs/avatar_premigration.md, Training).""",
    ),
    (
        "code",
        """import os, time, json
from pathlib import Path

ITERATIONS = int(os.environ.get("VMJAX_NOTEBOOK_ITERATIONS", "300"))  # training iterations per learner (the budget)
TINY = ITERATIONS < 10  # the test suite runs this notebook with 1 iteration and tiny sizes
EPISODES, SEEDS = (2, 1) if TINY else (100, 3)  # held-out episodes per seed, held-out seeds
TRAIN_SEEDS = [0] if TINY else [0, 1, 2]  # training seeds of the Hybrid-MAPPO variants
RUNS = Path(os.environ.get("VMJAX_NOTEBOOK_RUNS", "../runs/notebook"))

import jax
from IPython.display import Image, Markdown, display
from vmjax import runner
from vmjax.core.machine import machine_summary
start = time.time()
print(machine_summary())""",
    ),
    (
        "code",
        """def configs_for(name, algo, forecast, seed, rsu_order):
    overrides = {"run.run_dir": str(RUNS / name), "run.algo": algo, "env.workload_forecast": forecast,
                 "agent.num_iterations": ITERATIONS, "run.seed": seed, "env.rsu_order": rsu_order}
    if forecast == "lstm" and (RUNS / "hybrid_lstm_s0" / "predictor.msgpack").exists():
        overrides["run.predictor_path"] = str(RUNS / "hybrid_lstm_s0" / "predictor.msgpack")  # one predictor for all
    if TINY:
        overrides.update({"agent.num_envs": 2, "agent.num_steps": 8, "env.max_steps": 8, "env.num_vehicles": 3,
                          "env.num_rsus": 3, "run.chunk_iterations": 1, "predictor.hidden_size": 4,
                          "predictor.epochs": 1, "predictor.num_slots": 200})
    return runner.build_configs(overrides)

VARIANTS = {  # run folder -> (algorithm, forecast in the observation, training seed, rsu_order)
    **{f"hybrid_lstm_s{s}": ("hybrid_mappo", "lstm", s, "distance") for s in TRAIN_SEEDS},
    **{f"hybrid_none_s{s}": ("hybrid_mappo", "none", s, "distance") for s in TRAIN_SEEDS},
    "ddpg_lstm_s0": ("mappo_ddpg", "lstm", 0, "distance"),
    "ddpg_none_s0": ("mappo_ddpg", "none", 0, "distance"),
    "hybrid_lstm_index_s0": ("hybrid_mappo", "lstm", 0, "index"),
}
if TINY:  # the test checks that the cells run: one run per algorithm and forecast is enough
    VARIANTS = {name: v for name, v in VARIANTS.items() if name in ("hybrid_lstm_s0", "hybrid_none_s0", "ddpg_lstm_s0")}
train_wall = {}
for name, variant in VARIANTS.items():
    done = RUNS / name / "checkpoint.json"
    if not done.exists():
        runner.train(configs_for(name, *variant))
    else:
        print(f"{name}: already trained in {RUNS}, reused (delete the folder to train again)")
    train_wall[name] = json.loads(done.read_text())["train_wall_s"]""",
    ),
    ("markdown", "## Trajectory predictor (§4): held-out error of the LSTM against a constant-velocity extrapolation"),
    (
        "code",
        """pm = json.loads((RUNS / "hybrid_lstm_s0" / "predictor_metrics.json").read_text())
print(f"LSTM RMSE {pm['heldout_lstm']['rmse_m']:.1f} m, MAE {pm['heldout_lstm']['mae_m']:.1f} m, R2 {pm['heldout_lstm']['r2']:.3f}; "
      f"constant velocity RMSE {pm['heldout_constant_velocity']['rmse_m']:.1f} m; training {pm['train_wall_s']:.0f} s")""",
    ),
    ("markdown", "## Learning curves (mean total latency per vehicle-slot of the episodes finished in each iteration)"),
    (
        "code",
        """import matplotlib.pyplot as plt
import numpy as np
fig, ax = plt.subplots(figsize=(8, 4))
for name in [n for n in VARIANTS if n.endswith("_s0")]:
    records = runner.read_metrics(RUNS / name / "metrics.jsonl")
    steps = np.array([r["env_steps"] for r in records])
    latency = np.array([r["episode_total_latency_s"] for r in records])
    smooth = np.convolve(latency, np.ones(5) / 5, mode="valid") if len(latency) >= 5 else latency
    ax.plot(steps[len(steps) - len(smooth):], smooth, label=name)
ax.set_xlabel("environment steps"); ax.set_ylabel("mean total latency T_v (s), 5-iteration mean")
ax.grid(alpha=0.3); ax.legend(); ax.set_title("training seed 0"); plt.show()""",
    ),
    ("markdown", "## Comparison on held-out episodes (the same worlds for every policy)"),
    (
        "code",
        """results = runner.evaluate([RUNS / name for name in VARIANTS], EPISODES, SEEDS, 10_000, RUNS, log=lambda *_: None)
display(Markdown((RUNS / "evaluation.md").read_text()))
display(Image(str(RUNS / "evaluation.png")))""",
    ),
    ("markdown", "## Over training seeds: mean and spread of each learner's held-out latency"),
    (
        "code",
        """by_run = {Path(r["run_dir"]).name: r["latency_s"] for r in results.values() if "run_dir" in r}
def over_seeds(prefix):
    values = np.array([v for name, v in by_run.items() if name.startswith(prefix)])
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0), len(values)
hybrid, hybrid_std, n = over_seeds("hybrid_lstm_s")
hybrid_none, hybrid_none_std, _ = over_seeds("hybrid_none_s")
print(f"Hybrid-MAPPO (LSTM)      {hybrid:.3f} s, std over {n} training seeds {hybrid_std:.3f}")
print(f"Hybrid-MAPPO w/o pred.   {hybrid_none:.3f} s, std over {n} training seeds {hybrid_none_std:.3f}")
for name in ["random", "no_premigration", "full_premigration", "nearest_rsu", "least_loaded", "lighter_neighbour", "greedy_oracle", "greedy_observed"]:
    other = results[name]["latency_s"]
    print(f"Hybrid-MAPPO {hybrid:.3f} s vs {name} {other:.3f} s: {'lower' if hybrid < other else 'NOT lower'} "
          f"({100 * (other - hybrid) / other:+.1f}%)")
print(f"with prediction {hybrid:.3f} s vs without {hybrid_none:.3f} s: "
      f"{'not worse' if hybrid <= hybrid_none else 'WORSE'} ({hybrid - hybrid_none:+.3f} s)")
print(f"budget {ITERATIONS} iterations per learner; training wall time (jitted chunks, compile excluded) "
      + ", ".join(f"{n} {s:.0f} s" for n, s in train_wall.items()) + f"; this execution {time.time() - start:.0f} s "
      f"on {machine_summary()}")""",
    ),
]

TWIN_CELLS = [
    (
        "markdown",
        """# DM-MAPPO on TwinRouting-v0: workload predictors, learning curves, latency and packet loss

Spec 002 (digital-twin routing over RSUs, UAVs and a satellite with a dynamic action mask). This notebook runs,
with the library functions behind the command line (`vmjax train --env TwinRouting-v0`, `vmjax evaluate`):

- the **workload predictor** (§4): the LSTM-Transformer trained on the env's own per-server background load, and
  the §4.4 comparison with LSTM, GRU, CNN-LSTM, CNN-GRU and persistence on the same series;
- **DM-MAPPO** (predictor forecast in the observation and the mask, the proposed method), **DM-MAPPO w/o mask**
  (presence-only mask, §8.2 #4), **DM-MAPPO w/o pred.** (persistence forecast, §8.2 #8) and **MASAC** (§8.1),
  each with 3 training seeds, all with the same LSTM-Transformer;
- the comparison with **Greedy** (nearest selectable server, 10% exploration) and **Random** on the same held-out
  episodes: latency, migration latency and packet loss (eq. 15) with the spread over seeds;
- a **robustness sweep** over the number of edge servers: RSUs removed from the map (`EnvParams.rsu_present`), the
  trained DM-MAPPO and the heuristics evaluated at every size in one vmapped, once-compiled evaluation.

The same runs from a shell: `vmjax train --env TwinRouting-v0 --algo dm-mappo --run.run_dir runs/nb_twin/dm_s0`,
`... --env.use_mask false`, `... --env.workload_forecast persistence`, `... --algo masac`, `... --run.seed 1`,
then `vmjax evaluate runs/nb_twin/*`. `ITERATIONS` is the budget per run; the machine and the wall times are
printed at the end.""",
    ),
    (
        "code",
        """import os, time, json
from pathlib import Path

ITERATIONS = int(os.environ.get("VMJAX_NOTEBOOK_ITERATIONS", "120"))  # training iterations per learner (the budget)
TINY = ITERATIONS < 10  # the test suite runs this notebook with 1 iteration and tiny sizes
EPISODES, SEEDS = (2, 1) if TINY else (100, 3)  # held-out episodes per seed, held-out seeds
TRAIN_SEEDS = [0] if TINY else [0, 1, 2]
RUNS = Path(os.environ.get("VMJAX_NOTEBOOK_RUNS", "../runs/notebook_twin"))

import jax
import numpy as np
from IPython.display import Image, Markdown, display
from vmjax import predict, runner
from vmjax.core.machine import machine_summary
from vmjax.core.io import atomic_write_json
start = time.time()
print(machine_summary())""",
    ),
    (
        "code",
        """def configs_for(name, algo, forecast, use_mask, seed):
    overrides = {"run.env": "TwinRouting-v0", "run.algo": algo, "run.run_dir": str(RUNS / name), "run.seed": seed,
                 "env.workload_forecast": forecast, "env.use_mask": use_mask, "agent.num_iterations": ITERATIONS}
    if name != "dm_s0":  # one LSTM-Transformer, trained by the first run, for every run
        overrides["run.predictor_path"] = str(RUNS / "dm_s0" / "predictor.msgpack")
    if TINY:
        overrides.update({"env.num_vehicles": 2, "env.num_rsus": 6, "env.num_uavs": 1, "env.max_steps": 6,
                          "env.city_size_m": 2000.0, "agent.num_envs": 2, "agent.num_steps": 6,
                          "agent.hidden_sizes": (8,), "run.chunk_iterations": 1, "run.norm_episodes": 2,
                          "predictor.hidden_size": 4, "predictor.model_dim": 8, "predictor.num_heads": 2,
                          "predictor.head_dim": 4, "predictor.ffn_dim": 8, "predictor.epochs": 1,
                          "traffic.num_slots": 60})
        overrides.update({"agent.update_epochs": 1, "agent.num_minibatches": 2} if algo == "dm_mappo" else
                         {"agent.batch_size": 4, "agent.buffer_size": 64})
    return runner.build_configs(overrides)

VARIANTS = {  # run folder -> (algorithm, forecast, mask, training seed)
    **{f"dm_s{s}": ("dm_mappo", "predictor", True, s) for s in TRAIN_SEEDS},
    **{f"dm_nomask_s{s}": ("dm_mappo", "predictor", False, s) for s in TRAIN_SEEDS},
    **{f"dm_nopred_s{s}": ("dm_mappo", "persistence", True, s) for s in TRAIN_SEEDS},
    **{f"masac_s{s}": ("masac", "predictor", True, s) for s in TRAIN_SEEDS},
}
if TINY:  # the test checks that the cells run (MASAC and the ablations run in tests/test_cli.py)
    VARIANTS = {"dm_s0": VARIANTS["dm_s0"]}
train_wall = {}
for name, variant in VARIANTS.items():
    done = RUNS / name / "checkpoint.json"
    if not done.exists():
        runner.train(configs_for(name, *variant))
    else:
        print(f"{name}: already trained in {RUNS}, reused (delete the folder to train again)")
    train_wall[name] = json.loads(done.read_text())["train_wall_s"]""",
    ),
    (
        "markdown",
        """## Workload predictors (§4.4): one protocol, the series the DM-MAPPO predictor was trained on

The env's background load B_m(t) of every server (RSU flows, UAVs at half their nearest RSU's, the satellite at 4x
the mean), `traffic.num_slots` consecutive slots; chronological 70/10/20 split per series, the test split scored.
Error rate = WAPE (§4.5 [REC]).""",
    ),
    (
        "code",
        """pm = json.loads((RUNS / "dm_s0" / "predictor_metrics.json").read_text())
print(f"DM-MAPPO's predictor: {pm['source']}; test RMSE {pm['test']['rmse'] / 8e6:.3f} MB "
      f"(persistence {pm['test_persistence']['rmse'] / 8e6:.3f} MB), R2 {pm['test']['r2']:.3f}, trained in {pm['train_wall_s']:.0f} s")
comparison = RUNS / "predictor_comparison.json"
if not comparison.exists():
    series = np.load(RUNS / "dm_s0" / "traffic.npy")
    predictor_config = runner.configs_from_json(json.loads((RUNS / "dm_s0" / "config.json").read_text()))["predictor"]
    kinds = ("lstm_transformer",) if TINY else predict.MODEL_KINDS
    rows = predict.compare_predictors(jax.random.key(0), series, kinds, predictor_config)
    atomic_write_json(comparison, json.loads(json.dumps(rows, default=lambda x: np.asarray(x).tolist())))
rows = json.loads(comparison.read_text())
display(Markdown(predict.format_comparison_table(rows)))""",
    ),
    (
        "markdown",
        "## Learning curves (mean over training seeds of the episodes finished in each iteration; band: min-max)",
    ),
    (
        "code",
        """import matplotlib.pyplot as plt
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for group in ("dm", "dm_nomask", "dm_nopred", "masac"):
    names = [n for n in VARIANTS if n.rsplit("_s", 1)[0] == group]
    if not names:
        continue
    runs = [runner.read_metrics(RUNS / n / "metrics.jsonl") for n in names]
    steps = np.array([r["env_steps"] for r in runs[0]])
    for ax, key, scale in ((axes[0], "episode_total_latency_s", 1.0), (axes[1], "episode_failure", 100.0)):
        values = scale * np.array([[r[key] for r in records] for records in runs])
        line, = ax.plot(steps, values.mean(0), label=f"{group} ({len(names)} seeds)")
        ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
axes[0].set_ylabel("mean latency per vehicle-slot (s)"); axes[1].set_ylabel("service failures (% of vehicle-slots)")
for ax in axes:
    ax.set_xlabel("environment steps"); ax.set_yscale("log"); ax.grid(alpha=0.3); ax.legend()
plt.show()""",
    ),
    ("markdown", "## Comparison on held-out episodes (the same worlds for every policy)"),
    (
        "code",
        """results = runner.evaluate([RUNS / name for name in VARIANTS], EPISODES, SEEDS, 10_000, RUNS, log=lambda *_: None)
display(Markdown((RUNS / "evaluation.md").read_text()))
display(Image(str(RUNS / "evaluation.png")))""",
    ),
    ("markdown", "## Over training seeds: each learner's mean and spread (std over its training seeds)"),
    (
        "code",
        """by_run = {Path(r["run_dir"]).name: r for r in results.values() if "run_dir" in r}
def over_seeds(group, metric, scale=1.0):
    values = scale * np.array([r[metric] for name, r in by_run.items() if name.rsplit("_s", 1)[0] == group])
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0), len(values)
LABELS = {"dm": "DM-MAPPO", "dm_nomask": "DM-MAPPO w/o mask", "dm_nopred": "DM-MAPPO w/o pred.", "masac": "MASAC"}
summary = {}
lines = ["| method | training seeds | latency (s) | migration latency (s) | packet loss (%) |", "|---|---|---|---|---|"]
for group, label in LABELS.items():
    if not any(n.rsplit("_s", 1)[0] == group for n in VARIANTS):
        continue
    (lat, lat_sd, n), (mig, mig_sd, _), (loss, loss_sd, _) = (over_seeds(group, "latency_s"), over_seeds(group, "migration_s"),
                                                             over_seeds(group, "packet_loss", 100.0))
    summary[group] = {"latency_s": lat, "packet_loss_pct": loss}
    lines.append(f"| {label} | {n} | {lat:.4f} ± {lat_sd:.4f} | {mig:.4f} ± {mig_sd:.4f} | {loss:.3f} ± {loss_sd:.3f} |")
for name in ("greedy", "random"):
    r = results[name]
    summary[name] = {"latency_s": r["latency_s"], "packet_loss_pct": 100 * r["packet_loss"]}
    lines.append(f"| {name} | - | {r['latency_s']:.4f} ± {r['latency_s_seed_std']:.4f} | {r['migration_s']:.4f} ± "
                 f"{r['migration_s_seed_std']:.4f} | {100 * r['packet_loss']:.3f} ± {100 * r['packet_loss_seed_std']:.3f} |")
display(Markdown("\\n".join(lines) + "\\n\\n± for learners: std over training seeds; for heuristics: std over the held-out seeds"))
dm = summary["dm"]
if "dm_nomask" in summary:
    no_mask = summary["dm_nomask"]
    print(f"mask: packet loss {dm['packet_loss_pct']:.3f}% with vs {no_mask['packet_loss_pct']:.3f}% without -> "
          f"{'LOWER with the mask' if dm['packet_loss_pct'] < no_mask['packet_loss_pct'] else 'NOT lower with the mask'}")
if "dm_nopred" in summary:
    no_pred = summary["dm_nopred"]
    print(f"prediction: latency {dm['latency_s']:.4f} s with vs {no_pred['latency_s']:.4f} s without; packet loss "
          f"{dm['packet_loss_pct']:.3f}% vs {no_pred['packet_loss_pct']:.3f}%")
for name in [n for n in ("masac", "greedy", "random") if n in summary]:
    print(f"DM-MAPPO vs {name}: latency {dm['latency_s']:.4f} vs {summary[name]['latency_s']:.4f} s, packet loss "
          f"{dm['packet_loss_pct']:.3f}% vs {summary[name]['packet_loss_pct']:.3f}%")""",
    ),
    (
        "markdown",
        """## Robustness: fewer edge servers (one vmapped evaluation over the RSU subsets)

RSUs are removed at random (nested subsets: a smaller map keeps a subset of a larger one's RSUs); UAVs and the
satellite stay. The DM-MAPPO policy (training seed 0, trained with all RSUs) and the heuristics run on the same
held-out worlds at every size; one compilation covers every size.""",
    ),
    (
        "code",
        """from baselines.twin_routing import POLICIES, server_count_sweep
configs, env, params, trainer, state = runner.load_run(RUNS / "dm_s0")
policies = {"DM-MAPPO": trainer.make_eval_policy(state.params), **{n: make(env) for n, make in POLICIES.items()}}
FRACTIONS = [1.0, 0.75, 0.5, 0.25]
sweep_start = time.time()
sweep = server_count_sweep(env, policies, params, FRACTIONS, jax.random.key(20_000), EPISODES)
sweep_wall = time.time() - sweep_start
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, rows in sweep.items():
    servers = [r["num_edge_servers"] for r in rows]
    axes[0].errorbar(servers, [r["latency_s"] for r in rows], yerr=[r["latency_s_ci95"] for r in rows], marker="o", label=name)
    axes[1].errorbar(servers, [100 * r["packet_loss"] for r in rows], yerr=[100 * r["packet_loss_ci95"] for r in rows],
                     marker="o", label=name)
axes[0].set_ylabel("mean latency per vehicle-slot (s)"); axes[1].set_ylabel("packet loss (%)")
for ax in axes:
    ax.set_xlabel("edge servers present (RSUs + UAVs; + 1 satellite)"); ax.grid(alpha=0.3); ax.legend()
plt.show()
print(" | ".join(f"{name}: " + ", ".join(f"{r['num_edge_servers']} servers {r['latency_s']:.4f} s / {100 * r['packet_loss']:.2f}%"
                                         for r in rows) for name, rows in sweep.items()))
print(f"sweep: {len(FRACTIONS)} sizes x {len(policies)} policies x {EPISODES} episodes in {sweep_wall:.0f} s (compile included)")
print(f"budget {ITERATIONS} iterations per learner; training wall time (jitted chunks, compile excluded) "
      + ", ".join(f"{n} {s:.0f} s" for n, s in train_wall.items()) + f"; this execution {time.time() - start:.0f} s "
      f"on {machine_summary()}")""",
    ),
]

TWIN_SPLIT_CELLS = [
    (
        "markdown",
        """# MSRL on TwinSplit-v0: EST-TG trajectories, split actors and the RSU GPU-capacity sweep

Spec 004 (vehicle-twin task pre-migration with split reinforcement learning). This notebook, with the `vmjax`
library functions behind the command line:

1. builds the synthetic city, its "ground-truth" taxi traces (the spec's stand-in for T-Drive, §4.8) and the EST-TG
   generator fitted on them (§4.4-4.7), and compares generated and ground-truth traces (heat maps, hourly
   profiles, the §4.10 fidelity metrics, against uniform random trips);
2. trains the three actors of §8 with 3 seeds each, in both scenarios of §7.3 (vehicles driving the ground-truth
   trips, "without generated vehicles", and the EST-TG bank, "with generated vehicles"): **MSRL (Split)** with the
   entropy-driven switch, **Local-Edge** (always the full client + server actor) and **Local-Model** (client only);
3. compares them with Full Migration (both readings), Random Migration and a greedy least-loaded heuristic on the
   same held-out episodes, and reports the parameters used per actor call (§6.9);
4. sweeps the nominal RSU GPU capacity from 40 to 80 GHz in one vmapped, once-compiled evaluation.

The same runs from a shell: `vmjax train --env TwinSplit-v0 --run.run_dir runs/nb_split/split_real_s0`,
`... --agent.mode local_edge`, `... --trajectories.source generated`, `... --run.seed 1`, then `vmjax evaluate
runs/nb_split/*_real_*`. `ITERATIONS` is the budget per run; the machine and the wall times are printed at the end.""",
    ),
    (
        "code",
        """import os, time, json
from io import BytesIO
from pathlib import Path

ITERATIONS = int(os.environ.get("VMJAX_NOTEBOOK_ITERATIONS", "300"))  # training iterations per run (the budget)
TINY = ITERATIONS < 10  # the test suite runs this notebook with 1 iteration and tiny sizes
EPISODES, SEEDS = (2, 1) if TINY else (100, 3)  # held-out episodes per seed, held-out seeds
TRAIN_SEEDS = [0] if TINY else [0, 1, 2]
RUNS = Path(os.environ.get("VMJAX_NOTEBOOK_RUNS", "../runs/notebook_twin_split"))
RUNS.mkdir(parents=True, exist_ok=True)

import jax
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display
from vmjax import mobility, runner
from vmjax.core.machine import machine_summary
from vmjax.core import io
start = time.time()
print(machine_summary())""",
    ),
    (
        "markdown",
        """## Trajectories: ground truth and EST-TG (§4.8-4.10)

One seed builds the jittered-grid city, 200 taxis x 7 days of ground-truth GPS (T-Drive's format and noise), fits
EST-TG (hourly Gaussian KDE of entry/exit points, shortest paths on the road graph, speeds by cell and hour, 30 s
interpolation, correction onto the road) and chains 512 vehicle tracks of 101 slots for each env bank. The fidelity
metrics compare 2,000 generated trips (and 2,000 uniform random straight-line trips, the naive baseline) with the
cleaned ground truth resampled at 30 s.""",
    ),
    (
        "code",
        """gt_config = mobility.GroundTruthConfig(num_taxis=6, num_days=1) if TINY else mobility.GroundTruthConfig()
bank_vehicles, num_trips = (16, 64) if TINY else (512, 2000)
banks_start = time.time()
banks = mobility.build_trace_banks(0, bank_vehicles, num_slots=101, ground_truth=gt_config)
banks_wall = time.time() - banks_start
for name, trace in (("real", banks.real), ("generated", banks.generated)):
    buffer = BytesIO()
    valid = np.ones(trace.positions_m.shape[:2], bool) if trace.valid is None else np.asarray(trace.valid)
    np.savez(buffer, positions_m=np.asarray(trace.positions_m), valid=valid)
    io.atomic_write_bytes(RUNS / f"bank_{name}.npz", buffer.getvalue())

box = (0.0, 0.0, 5000.0, 5000.0)
real_xy, real_hours, real_speed = mobility.real_points(*mobility.resample_trips(*mobility.clean_gps(banks.ground_truth, box)))
trips = mobility.generate_est_tg(jax.random.key(1), banks.model, num_trips)
naive = mobility.generate_naive(jax.random.key(1), np.asarray(banks.model.kde.box_m), num_trips, float(np.mean(real_speed)))
rows = {name: mobility.fidelity_report(banks.graph, real_xy, real_hours, real_speed, t) for name, t in (("EST-TG", trips), ("uniform random trips", naive))}
lines = ["| generator | spatial JSD | hourly JSD | speed W1 (m/s) | on-road ratio | trips 8-9 h / 3-4 h | speed r < 1 km / r > 2 km (m/s) |", "|---|---|---|---|---|---|---|"]
lines += [f"| {n} | {r['spatial_jsd']:.3f} | {r['hourly_jsd']:.3f} | {r['speed_w1_mps']:.2f} | {r['on_road_ratio']:.3f} | {r['rush_to_early_trip_ratio']:.1f} | {r['centre_speed_mps']:.1f} / {r['periphery_speed_mps']:.1f} |" for n, r in rows.items()]
display(Markdown("\\n".join(lines) + f"\\n\\nbanks built in {banks_wall:.0f} s; lower is better except the on-road ratio"))

gen_xy, gen_hours, _ = mobility.trip_points(trips)
node_xy = np.asarray(banks.graph.node_xy_m)
hist_box = np.concatenate([node_xy.min(0), node_xy.max(0)])
fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
for ax, (title, xy) in zip(axes[:2], (("ground truth (resampled 30 s)", real_xy), ("EST-TG", gen_xy))):
    ax.imshow(mobility.occupancy_histogram(xy, hist_box, 32).T, origin="lower", cmap="magma",
              extent=(hist_box[0], hist_box[2], hist_box[1], hist_box[3]))
    ax.set_title(f"{title}: point density"); ax.set_xlabel("x (m)"); ax.set_ylabel("y (m)")
axes[2].plot(mobility.hourly_share(real_hours), marker="o", label="ground truth")
axes[2].plot(mobility.hourly_share(gen_hours), marker="s", label="EST-TG")
axes[2].set_xlabel("hour of day"); axes[2].set_ylabel("share of points"); axes[2].legend(); axes[2].grid(alpha=0.3)
plt.tight_layout(); plt.show()
fidelity = rows""",
    ),
    (
        "markdown",
        "## Training: 3 actors x 2 trajectory banks x 3 seeds (the CLI defaults: 16 worlds, 10 vehicles, 4 RSUs)",
    ),
    (
        "code",
        """def configs_for(mode, source, seed):
    overrides = {"run.env": "TwinSplit-v0", "run.run_dir": str(RUNS / f"{mode}_{source}_s{seed}"), "run.seed": seed,
                 "agent.mode": mode, "agent.num_iterations": ITERATIONS, "trajectories.source": source,
                 "trajectories.bank_path": str(RUNS / f"bank_{source}.npz")}
    if TINY:
        overrides.update({"env.num_vehicles": 3, "agent.num_envs": 2, "agent.num_steps": 100, "run.chunk_iterations": 1})
    return runner.build_configs(overrides)

MODES = {"split": "MSRL (Split)", "local_edge": "Local-Edge", "local": "Local-Model"}
SOURCES = ("real", "generated")
VARIANTS = {f"{m}_{src}_s{s}": (m, src, s) for src in SOURCES for m in MODES for s in TRAIN_SEEDS}
if TINY:  # the test checks that the cells run (every mode is covered by tests/test_msrl.py)
    VARIANTS = {k: v for k, v in VARIANTS.items() if v[0] == "split"}
train_wall = {}
for name, variant in VARIANTS.items():
    done = RUNS / name / "checkpoint.json"
    if not done.exists():
        runner.train(configs_for(*variant), log=lambda *_: None, progress=False)
    else:
        print(f"{name}: already trained in {RUNS}, reused (delete the folder to train again)")
    train_wall[name] = json.loads(done.read_text())["train_wall_s"]
print(f"{len(VARIANTS)} runs, training wall time {sum(train_wall.values()):.0f} s (compile excluded)")""",
    ),
    (
        "markdown",
        """## Learning curves (ground-truth bank; mean over training seeds of the episodes finished in each iteration,
band: min-max) and the parameters used per actor call (§6.9)""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, 3, figsize=(16, 4))
for mode, label in MODES.items():
    names = [n for n, v in VARIANTS.items() if v[0] == mode and v[1] == "real"]
    if not names:
        continue
    runs = [runner.read_metrics(RUNS / n / "metrics.jsonl") for n in names]
    steps = np.array([r["env_steps"] for r in runs[0]])
    for ax, key, scale in ((axes[0], "episode_total_latency_s", 1.0), (axes[1], "params_used_per_agent_step", 1.0),
                           (axes[2], "server_use_fraction", 100.0)):
        values = scale * np.array([[r[key] for r in records] for records in runs])
        line, = ax.plot(steps, values.mean(0), label=f"{label} ({len(names)} seeds)")
        ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
axes[0].set_ylabel("mean T_total per vehicle-slot (s)"); axes[1].set_ylabel("actor parameters used per call")
axes[2].set_ylabel("server-side model calls (%)")
for ax in axes:
    ax.set_xlabel("environment steps"); ax.grid(alpha=0.3); ax.legend()
plt.tight_layout(); plt.show()""",
    ),
    ("markdown", "## Comparison on held-out episodes (the same worlds for every policy), in both scenarios"),
    (
        "code",
        """results = {}
for source, out in (("real", RUNS), ("generated", RUNS / "generated")):
    names = [n for n, v in VARIANTS.items() if v[1] == source]
    results[source] = runner.evaluate([RUNS / n for n in names], EPISODES, SEEDS, 10_000, out, log=lambda *_: None)
    display(Markdown(f"### vehicles on the {'ground-truth' if source == 'real' else 'EST-TG'} bank\\n\\n" + (out / "evaluation.md").read_text()))
display(Image(str(RUNS / "evaluation.png")))""",
    ),
    ("markdown", "## Over training seeds: each actor's mean ± std over its 3 training seeds"),
    (
        "code",
        """summary = {}
lines = ["| scenario | method | latency (s) | QoE | BER (%) | server calls (%) | params used | reduction vs Local-Edge (%) |",
         "|---|---|---|---|---|---|---|---|"]
for source in SOURCES:
    by_run = {Path(r["run_dir"]).name: r for r in results[source].values() if "run_dir" in r}
    def over_seeds(mode, metric, scale=1.0):
        values = scale * np.array([r[metric] for n, r in by_run.items() if VARIANTS[n][0] == mode])
        return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0)
    for mode, label in MODES.items():
        if not any(VARIANTS[n][0] == mode for n in by_run):
            continue
        (lat, lat_sd), (qoe, qoe_sd), (ber, ber_sd), (srv, srv_sd), (par, par_sd) = (
            over_seeds(mode, "latency_s"), over_seeds(mode, "qoe"), over_seeds(mode, "ber", 100.0),
            over_seeds(mode, "use_server", 100.0), over_seeds(mode, "params_used"))
        summary[(source, mode)] = {"latency_s": lat, "qoe": qoe, "ber_pct": ber, "params_used": par}
        row = f"| {source} | {label} | {lat:.4f} ± {lat_sd:.4f} | {qoe:.4f} ± {qoe_sd:.4f} | {ber:.2f} ± {ber_sd:.2f} | "
        lines.append(row + f"{srv:.1f} ± {srv_sd:.1f} | {par:.0f} ± {par_sd:.0f} | REDUCTION_{source}_{mode} |")
    edge = summary.get((source, "local_edge"), {}).get("params_used")
    for mode in MODES:  # §6.9 reduction, once Local-Edge's params are known
        if (source, mode) in summary:
            reduction = float("nan") if edge is None else 100 * (1 - summary[(source, mode)]["params_used"] / edge)
            summary[(source, mode)]["reduction_pct"] = reduction
            lines = [line.replace(f"REDUCTION_{source}_{mode}", f"{reduction:.1f}") for line in lines]
    for name in ("no_premigration", "full_migration", "greedy_balanced", "random_migration", "greedy_least_loaded"):
        r = results[source][name]
        summary[(source, name)] = {"latency_s": r["latency_s"], "qoe": r["qoe"], "ber_pct": 100 * r["ber"]}
        lines.append(f"| {source} | {name} | {r['latency_s']:.4f} ± {r['latency_s_seed_std']:.4f} | {r['qoe']:.4f} ± "
                     f"{r['qoe_seed_std']:.4f} | {100 * r['ber']:.2f} ± {100 * r['ber_seed_std']:.2f} | – | – | – |")
display(Markdown("\\n".join(lines) + "\\n\\n± for learners: std over training seeds; for heuristics: std over the held-out "
                 "seeds. Reduction = 100 (1 - params used / Local-Edge's), §6.9 (the paper reports about 25%)."))""",
    ),
    (
        "markdown",
        """## RSU GPU capacity sweep, 40-80 GHz (§7.1; one vmapped, once-compiled evaluation)

C_e = C_nom x U[0.8, 1.2] per RSU and episode (§7.2); the trained actors (every training seed, trained at 60 GHz on
the ground-truth bank) and the heuristics meet the same held-out worlds at every capacity.""",
    ),
    (
        "code",
        """from baselines.twin_split import gpu_capacity_sweep, heuristic_policies
CAPACITIES_GHZ = [40, 50, 60, 70, 80]
policies, env, params = {}, None, None
for name, (mode, source, seed) in VARIANTS.items():
    if source != "real":
        continue
    configs, env_n, params_n, trainer, state = runner.load_run(RUNS / name)
    env, params = (env_n, params_n) if env is None else (env, params)
    policies[name] = trainer.make_eval_policy(state)
policies.update(heuristic_policies(env))
sweep_start = time.time()
sweep = gpu_capacity_sweep(env, policies, params, [c * 1e9 for c in CAPACITIES_GHZ], jax.random.key(20_000), EPISODES)
sweep_wall = time.time() - sweep_start
groups = {label: [n for n, v in VARIANTS.items() if v[0] == mode and v[1] == "real"] for mode, label in MODES.items()}
groups.update({n: [n] for n in heuristic_policies(env)})
fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
sweep_table = {}
for label, names in groups.items():
    if not names:
        continue
    for ax, metric, scale in ((axes[0], "latency_s", 1.0), (axes[1], "ber", 100.0)):
        per_seed = scale * np.array([np.asarray(sweep[n][metric]).mean(axis=1) for n in names])  # [seeds, capacities]
        line, = ax.plot(CAPACITIES_GHZ, per_seed.mean(0), marker="o", label=label)
        if len(names) > 1:
            ax.fill_between(CAPACITIES_GHZ, per_seed.min(0), per_seed.max(0), color=line.get_color(), alpha=0.2)
        sweep_table.setdefault(label, {})[metric] = per_seed.mean(0).tolist()
axes[0].set_ylabel("mean T_total per vehicle-slot (s)"); axes[1].set_ylabel("bit error rate (%)")
for ax in axes:
    ax.set_xlabel("nominal RSU GPU capacity C_nom (GHz)"); ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
plt.tight_layout(); plt.show()
lines = ["| policy | " + " | ".join(f"{c} GHz" for c in CAPACITIES_GHZ) + " |", "|---|" + "---|" * len(CAPACITIES_GHZ)]
lines += [f"| {label} | " + " | ".join(f"{t:.3f} s / {b:.2f}%" for t, b in zip(v["latency_s"], v["ber"])) + " |"
          for label, v in sweep_table.items()]
display(Markdown("\\n".join(lines) + "\\n\\nlatency / BER; learners: mean over training seeds"))
io.atomic_write_json(RUNS / "summary.json", {
    "fidelity": fidelity, "summary": {f"{s}/{m}": v for (s, m), v in summary.items()},
    "gpu_sweep_ghz": CAPACITIES_GHZ, "gpu_sweep": sweep_table, "machine": machine_summary()})
print(f"sweep: {len(CAPACITIES_GHZ)} capacities x {len(policies)} policies x {EPISODES} episodes in {sweep_wall:.0f} s "
      f"(compile included); budget {ITERATIONS} iterations per run; training wall time (compile excluded) "
      f"{sum(train_wall.values()):.0f} s for {len(VARIANTS)} runs; this execution {time.time() - start:.0f} s on "
      f"{machine_summary()}")""",
    ),
]

PRIVACY_CELLS = [
    (
        "markdown",
        """# LHDPPO and the §7 baselines on CrossRealityPrivacy-v0: entropy surface, comparison, sweeps

Spec 000 (cross-reality location privacy: every AV perturbs the location it reports, eqs. 1-2, and picks the
server of its AI agent, RSU or LEO satellite; a colluding adversary infers the true location from both, eqs.
3-5). With `baselines.cross_reality_privacy_study` (the library functions behind its command line) this notebook

1. maps the cross-reality location entropy (eq. 5) over the perturbation radius and angle for one AV (§2.5);
2. trains **LHDPPO** (two diffusion actors, eq. 21 reward), **HDPPO** (eq. 20), **GHPPO**, **H-PPO** and
   **PPO-relaxed** (§7) with 3 seeds each, vmapped in one jit per method, and scores every seed, with **Geo-I**
   and **no perturbation** (historical greedy server rule), on the same held-out worlds: utility (eq. 17),
   entropy, latency, QoS loss;
3. shows the learning curves (training-rollout means, mean ± std over seeds);
4. sweeps LHDPPO's learning rate and its number of denoising steps U (1 seed each).

The same from a shell: `python -m baselines.cross_reality_privacy_study compare --iterations 30 --out runs/crp_study`,
`... sweep --field lr --values 3e-4,1e-3 --seeds 1`, `... sweep --field denoising_steps --values 2,10 --seeds 1`,
`... surface`. A run folder that already holds a result with the same budget is read back instead of retrained.
`ITERATIONS` is the budget per run (x 2048 env steps; the paper trains ~5e6 steps, ~2441 iterations); the
machine and the wall times are printed at the end.""",
    ),
    (
        "code",
        """import dataclasses, os, time, json
from pathlib import Path

ITERATIONS = int(os.environ.get("VMJAX_NOTEBOOK_ITERATIONS", "30"))  # training iterations per run (the budget)
TINY = ITERATIONS < 10  # the test suite runs this notebook with 1 iteration and tiny sizes
SEEDS, EPISODES = (1, 2) if TINY else (3, 32)  # training seeds (= held-out sets), held-out worlds per set
RUNS = Path(os.environ.get("VMJAX_NOTEBOOK_RUNS", "../runs/crp_study"))
RUNS.mkdir(parents=True, exist_ok=True)
# tiny sizes for the test suite only; the study itself uses the spec's env and §5.5 learner
ENV_CONFIG = {"num_vehicles": 2, "num_rsus": 4, "max_steps": 5, "hop_neighbours": 2} if TINY else {}
OVERRIDES = ({"num_envs": 2, "num_steps": 5, "update_epochs": 1, "num_minibatches": 1, "denoising_steps": 2,
              "state_hidden": (16,), "trunk_hidden": (16,), "time_embed_dim": 4, "time_hidden": 8,
              "critic_hidden": (16,), "mlp_hidden": (16,)} if TINY else {})
METHODS = ["LHDPPO", "Geo-I"] if TINY else None  # None: all

import jax
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display
from baselines import cross_reality_privacy_study as study
from vmjax.core import io
start = time.time()
print(study.machine())""",
    ),
    (
        "markdown",
        """## Entropy over the perturbation radius and angle (eq. 5, §2.5 adversary)

One AV at reset of a default world, its agent on its connected RSU: the adversary's 3 x 3 candidate posterior
(Gaussian around the reported point with sigma = max(r, 0.05 r_max), times the distance-softmax placement
likelihood of the agent's server). E = 0 without perturbation and rises with the radius (contract tests); the
dashed line marks the direction of the agent's server.""",
    ),
    (
        "code",
        """surface_path = RUNS / "entropy_surface.json"
surface = json.loads(surface_path.read_text()) if surface_path.is_file() else study.entropy_surface()
io.atomic_write_json(surface_path, surface)
E = np.array(surface["entropy_bits"]); radii_m = np.array(surface["radius_deg"]) * 111_320.0
angles = np.array(surface["angle_rad"])
fig = plt.figure(figsize=(13, 4.3))
ax = fig.add_subplot(1, 2, 1)
mesh = ax.pcolormesh(np.degrees(angles), radii_m, E, shading="nearest", cmap="viridis")
ax.axvline(np.degrees(surface["server_bearing_rad"]) % 360, color="w", ls="--", lw=1)
fig.colorbar(mesh, ax=ax, label="entropy (bit)"); ax.set_xlabel("perturbation angle theta (deg)")
ax.set_ylabel("radius r (m, east-west scale)")
ax = fig.add_subplot(1, 2, 2)
for i in np.linspace(0, len(radii_m) - 1, 5).astype(int):
    ax.plot(np.degrees(angles), E[i], label=f"r = {radii_m[i]:.0f} m")
ax.set_xlabel("perturbation angle theta (deg)"); ax.set_ylabel("entropy (bit)"); ax.legend(fontsize=8); ax.grid(alpha=0.3)
plt.tight_layout(); plt.show()
spread = E.max(axis=1) - E.min(axis=1)
print(f"E(r = 0) = {E[0].max():.2e} bit; E(r_max) = {E[-1].mean():.3f} bit (log2 9 = {np.log2(9):.3f}); largest "
      f"variation over the angle at a fixed radius: {spread.max():.4f} bit")""",
    ),
    (
        "markdown",
        """## Method comparison on held-out worlds (3 training seeds each)

Training seed s of every learner is evaluated deterministically (Gaussian mean, argmax) on held-out set s; Geo-I
and no perturbation meet the same sets. ± = std over the 3 per-set means.""",
    ),
    (
        "code",
        """config = study.StudyConfig(ITERATIONS, SEEDS, EPISODES)
path = RUNS / "comparison.json"
saved = json.loads(path.read_text()) if path.is_file() else None
if saved is None or saved["study"] != dataclasses.asdict(config):
    saved = study.compare(config, path, METHODS, ENV_CONFIG, OVERRIDES, log=lambda *_: None)
results = saved["results"]
display(Markdown(study.format_table(results) + f"\\n\\n{SEEDS} seeds x {EPISODES} held-out worlds x T slots; "
                 f"{ITERATIONS} iterations = {ITERATIONS * 2048:,} env steps per learner and seed (machine: "
                 f"{saved['machine']})"))
names = sorted(results, key=lambda n: -results[n]["utility"])
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
for ax, (metric, label) in zip(axes, (("utility", "utility, eq. (17)"), ("entropy_bits", "entropy (bit)"),
                                      ("latency_s", "latency (s)"), ("qos_loss", "QoS loss, eq. (16)"))):
    ax.bar(range(len(names)), [results[n][metric] for n in names],
           yerr=[results[n][f"{metric}_seed_std"] for n in names], capsize=3, color="tab:blue")
    ax.set_xticks(range(len(names))); ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_title(label); ax.grid(axis="y", alpha=0.3)
plt.tight_layout(); plt.show()""",
    ),
    ("markdown", "## Learning curves (training rollouts: per-slot means over worlds and AVs; mean ± std over seeds)"),
    (
        "code",
        """learners = [n for n in results if "curves" in results[n]]
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
for ax, (metric, label) in zip(axes, (("rollout_utility", "utility, eq. (17)"), ("rollout_entropy_bits", "entropy (bit)"),
                                      ("rollout_latency_s", "latency (s)"), ("rollout_qos_loss", "QoS loss"))):
    for name in learners:
        curves = np.array(results[name]["curves"][metric])  # [seeds, iterations]
        steps = np.arange(1, curves.shape[1] + 1) * results[name]["env_steps"] / curves.shape[1]
        line, = ax.plot(steps, curves.mean(0), label=name)
        ax.fill_between(steps, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0), color=line.get_color(),
                        alpha=0.2)
    ax.set_title(label); ax.set_xlabel("environment steps"); ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
plt.tight_layout(); plt.show()
print("\\n".join(f"{n}: compile {results[n]['compile_s']:.0f} s, training {results[n]['train_s']:.0f} s for "
                f"{SEEDS} seeds, clip fraction at the last update {results[n]['final_clip_fraction']:.2f}" for n in learners))""",
    ),
    (
        "markdown",
        """## LHDPPO sweeps: learning rate (actor and critic) and denoising steps U (1 seed each)

The spec's values (lr 1e-4, U = 5) are the comparison's LHDPPO (its seed-0 entry is reused here).""",
    ),
    (
        "code",
        """# TINY: the spec's lr again (the comparison's program, a compilation-cache hit in the test suite)
SWEEPS = {"lr": [1e-4] if TINY else [3e-4, 1e-3], "denoising_steps": [] if TINY else [2, 10]}
spec_value = {"lr": 1e-4, "denoising_steps": 5}
sweep_config = study.StudyConfig(ITERATIONS, 1, EPISODES)
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
sweep_rows = ["| field | value | utility (17) | entropy (bit) | latency (s) | QoS loss |", "|---|---|---|---|---|---|"]
for ax, (field, values) in zip(axes, SWEEPS.items()):
    path = RUNS / f"sweep_{field}.json"
    saved = json.loads(path.read_text()) if path.is_file() else None
    if saved is None or saved["study"] != dataclasses.asdict(sweep_config) or saved["results"].keys() != {str(v) for v in values}:
        saved = study.sweep(sweep_config, path, field, values, "LHDPPO", ENV_CONFIG, OVERRIDES, log=lambda *_: None)
    runs = dict(saved["results"])
    if "LHDPPO" in results:  # the spec's value: seed 0 of the comparison (the same held-out set 0)
        base = results["LHDPPO"]
        runs[str(spec_value[field])] = {m: base[f"{m}_seed_means"][0] for m in ("utility", "entropy_bits", "latency_s", "qos_loss")}
        runs[str(spec_value[field])]["curves"] = {"rollout_utility": [base["curves"]["rollout_utility"][0]]}
    for value in sorted(runs, key=float):
        r = runs[value]
        ax.plot(np.array(r["curves"]["rollout_utility"])[0], label=f"{field} = {value}")
        sweep_rows.append(f"| {field} | {value} | {r['utility']:.4f} | {r['entropy_bits']:.4f} | {r['latency_s']:.2f} | "
                          f"{r['qos_loss']:.4f} |")
    ax.set_title(f"LHDPPO, {field}"); ax.set_xlabel("iteration"); ax.set_ylabel("rollout utility"); ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout(); plt.show()
display(Markdown("\\n".join(sweep_rows) + "\\n\\nheld-out set 0, deterministic policy, 1 training seed"))
io.atomic_write_json(RUNS / "evaluation.json", {"comparison": {n: {k: v for k, v in r.items() if k != "curves"}
                                                               for n, r in results.items()},
                                                "sweep_rows": sweep_rows, "machine": study.machine()})
print(f"this execution {time.time() - start:.0f} s on {study.machine()}")""",
    ),
]

AVATAR_V1_CELLS = [
    (
        "markdown",
        """# AvatarPremigration-v1: what a policy could win, the paper's learners, and the sweeps

AvatarPremigration-v1 is v0 (the literal reading of spec 003) with three mechanisms the paper's experiment depends
on: same-slot contention at the RSUs (processor sharing; a pre-migrated part waits behind the target's own
tasks), results of the pre-migrated part relayed over the wired network, and the spec's 40 background
vehicles. docs/avatar_premigration.md gives the v0 -> v1 table and the reasons. This notebook only reads and
plots the JSON that these commands wrote (each JSON names its machine):

- `python -m baselines.avatar_premigration_study calibrate`: every heuristic and the per-slot oracles on every
  calibration attempt, 3 x 100 held-out episodes (`calibration.json`);
- `bash experiments/avatar_premigration_v1.sh` then `vmjax evaluate runs/avatar_premigration_v1/* --out
  docs/results/avatar_premigration_v1/evaluation` (`evaluation/evaluation.json`) and
  `python -m baselines.avatar_premigration_study curves runs/avatar_premigration_v1/*` (`learning_curves.json`);
- `python -m baselines.avatar_premigration_study sweep runs/avatar_premigration_v1/*` (`sweeps.json`).""",
    ),
    (
        "code",
        """import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from baselines import avatar_premigration_study as study

"""
        + results_loader("avatar_premigration_v1")
        + """
calibration, evaluation = load("calibration.json"), load("evaluation/evaluation.json")
curves, sweeps, predictor = load("learning_curves.json"), load("sweeps.json"), load("predictor.json")
loaded = {"calibration": calibration, "evaluation": evaluation, "curves": curves, "sweeps": sweeps,
          "predictor": predictor}
for name, data in loaded.items():
    print(f"{name}: {data['machine'] if data else 'not produced yet'}")""",
    ),
    (
        "markdown",
        """## 1. Before any training: the oracle gap, v0 and v1 side by side

Mean latency per vehicle and slot (s) ± the spread over the 3 held-out seeds. The oracles know the whole state
and the other vehicles' choices, and look one slot ahead only.""",
    ),
    (
        "code",
        """if calibration:
    display(Markdown(study.calibration_markdown(calibration)))
    attempts = calibration["attempts"]
    v0, v1 = attempts["v0"]["results"], attempts[[n for n, *_ in study.ATTEMPTS][-1]]["results"]
    names = sorted(v1, key=lambda n: v1[n]["latency_s"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(x - 0.2, [v0[n]["latency_s"] for n in names], 0.4, label="v0")
    ax.bar(x + 0.2, [v1[n]["latency_s"] for n in names], 0.4, label="v1")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("mean latency per vehicle-slot (s)")
    ax.legend()
    fig.tight_layout()
    plt.show()""",
    ),
    (
        "markdown",
        """## 2. The paper's learners on v1 (spec budget: 500 iterations, lr 1e-4)

The method comparison on 3 x 100 held-out episodes (the same worlds for every policy), then the learning
curves with and without the forecast: mean over training seeds, the band is one standard deviation.""",
    ),
    (
        "code",
        """if evaluation:
    results = evaluation["results"]
    rows = ["| policy | mean latency (s) | spread over held-out seeds |", "|---|---|---|"]
    for name in sorted(results, key=lambda n: results[n]["latency_s"]):
        rows.append(f"| {name} | {results[name]['latency_s']:.3f} | {results[name]['latency_s_seed_std']:.3f} |")
    display(Markdown("\\n".join(rows)))
if curves:
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, runs in sorted(curves["curves"].items()):
        length = min(len(r["latency_s"]) for r in runs.values())
        series = np.array([[np.nan if v is None else v for v in r["latency_s"][:length]] for r in runs.values()])
        mean, std = np.nanmean(series, axis=0), np.nanstd(series, axis=0)
        iterations = np.arange(1, length + 1)
        ax.plot(iterations, mean, label=f"{label} ({len(runs)} seeds)")
        ax.fill_between(iterations, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("iteration (20 episodes each)")
    ax.set_ylabel("mean episode latency per vehicle-slot (s)")
    ax.legend()
    fig.tight_layout()
    plt.show()""",
    ),
    (
        "markdown",
        """## 3. The sweeps (spec §7.1, §10 #23-24), each one compiled `vmap` over `EnvParams`

Every RSU (or the cloud) is set to the swept value, the rest is drawn as usual; the trained policies are the
ones trained at the default ranges (not retrained per point).""",
    ),
    (
        "code",
        """if sweeps:
    panels = sweeps["results"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5), squeeze=False)
    for ax, (name, rows) in zip(axes[0], panels.items()):
        pooled = {}  # a learner's training seeds ("<label> [<run folder>]") pooled into their mean
        for policy, r in rows["policies"].items():
            pooled.setdefault(policy.split(" [")[0], []).append(r["latency_s"])
        for policy, series in sorted(pooled.items()):
            label = policy if len(series) == 1 else f"{policy} ({len(series)} seeds)"
            ax.plot(rows["values"], np.mean(series, axis=0), marker="o", label=label)
        ax.set_xlabel(name)
        ax.set_ylabel("mean latency (s)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    plt.show()
    display(Markdown(study.sweeps_markdown(sweeps)))""",
    ),
    (
        "markdown",
        """## 4. The trajectory LSTM (§4.6 metrics on held-out trajectories)

Normalised units are the spec's min-max box of the map; metres alongside. The reference is constant velocity.""",
    ),
    (
        "code",
        """if predictor:
    rows = ["| predictor | MSE | R2 | MAE | MedAE | RMSE (m) |", "|---|---|---|---|---|---|"]
    for name in ("heldout_lstm", "heldout_constant_velocity"):
        m = predictor[name]
        rows.append(f"| {name[8:]} | {m['mse']:.2e} | {m['r2']:.4f} | {m['mae']:.4f} | {m['medae']:.4f} | "
                    f"{m['rmse_m']:.1f} |")
    config = predictor["predictor_config"]
    display(Markdown("\\n".join(rows) + f"\\n\\nLSTM({config['hidden_size']}), {config['epochs']} epochs, "
                     f"trained in {predictor['train_wall_s']:.0f} s on {predictor['machine']}"))""",
    ),
]


TWIN_SPLIT_V1_CELLS = [
    (
        "markdown",
        """# TwinSplit-v1: what a policy could win, and MSRL's experiments at the spec's budget

TwinSplit-v1 is v0 (the literal reading of spec 004) with a background of a few percent of L^max, so the RSU load is
the vehicles' own VT work; a bit-error scale tau of 0.002 per Mbit; the extended observation, which has the serving RSU
(an agent can say "stay"); and L_E(t) as the work requested at each RSU in slot t. docs/twin_split.md gives the
v0 -> v1 table and the reasons. This notebook only reads and plots the JSON that these commands wrote (each JSON
names its machine):

- `python -m baselines.twin_split_study calibrate`: every heuristic, the value-of-information greedy and the
  per-slot oracles on every calibration attempt, both trajectory banks, 40 / 60 / 80 GHz, 3 x 100 held-out
  episodes (`calibration.json`);
- `python -m experiments.twin_split_v1 train`: Split / Local-Edge / Local-Model, 3 seeds each at the spec's budget,
  for each (bank, capacity) group, evaluated on the same held-out worlds (`training.json`);
- `python -m baselines.twin_split_study fidelity`: EST-TG's spec §4.10 checks (`est_tg_fidelity.json`).""",
    ),
    (
        "code",
        """import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from baselines import twin_split_study as study
from experiments import twin_split_v1 as experiment

"""
        + results_loader("twin_split_v1")
        + """
calibration, training, fidelity = load("calibration.json"), load("training.json"), load("est_tg_fidelity.json")
for name, data in {"calibration": calibration, "training": training, "fidelity": fidelity}.items():
    print(f"{name}: {data['machine'] if data else 'not produced yet'}")""",
    ),
    (
        "markdown",
        """## 1. Before any training: the oracle gap, v0 and v1 side by side

Gains over no pre-migration (every task at its serving RSU) on the held-out worlds; the oracles know the whole
slot and the other vehicles' choices, and look one slot ahead only.""",
    ),
    (
        "code",
        """if calibration:
    display(Markdown(study.gap_markdown(calibration)))
    caps = calibration["capacities_ghz"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, metric, label in ((axes[0], "latency_s", "latency (s)"), (axes[1], "qoe", "QoE")):
        for attempt, style in (("v0", "--"), ("v1", "-")):
            results = calibration["attempts"][attempt]["real"]
            for name in ("no_premigration", "oracle_latency", "oracle_qoe", "greedy_requested_load", "random_migration"):
                ax.plot(caps, results[name][metric]["mean"], style, marker="o", label=f"{attempt} {name}")
        ax.set_xlabel("C_nom (GHz)")
        ax.set_ylabel(f"mean {label} per vehicle-slot")
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    plt.show()
    display(Markdown("### Value of information: the RSU loads\\n\\n" + study.information_markdown(calibration)))""",
    ),
    (
        "markdown",
        """## 2. MSRL, Local-Edge and Local-Model on v1 (spec budget: 1000 iterations x 32 worlds x 100 slots)

The method comparison per (bank, capacity) group on 3 x 100 held-out episodes (the same worlds for every policy;
± is the spread over the 3 training seeds for the learners, over the held-out seeds for the references), the
capacity sweep with the learners retrained at each capacity, and the learning curves.""",
    ),
    (
        "code",
        """if training and training.get("groups"):
    display(Markdown(experiment.method_table(training)))
    display(Markdown(experiment.capacity_table(training)))
    display(Markdown(experiment.convergence_table(training)))
    groups = training["groups"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for name, group in groups.items():
        for mode, label in experiment.MODE_LABELS.items():
            if mode not in group:
                continue
            curves = np.asarray(group[mode]["curves"]["episode_total_latency_s"])
            iterations = experiment.CURVE_EVERY * np.arange(1, curves.shape[1] + 1)
            line, = axes[0].plot(iterations, curves.mean(0), label=f"{name} {label}")
            axes[0].fill_between(iterations, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2)
            use = np.asarray(group[mode]["curves"]["server_use_fraction"])
            axes[1].plot(iterations, 100 * use.mean(0), color=line.get_color(), label=f"{name} {label}")
    axes[0].set_xlabel("iteration"); axes[0].set_ylabel("training episode latency (s)")
    axes[1].set_xlabel("iteration"); axes[1].set_ylabel("server calls in training (%)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    plt.show()
    sweep = {float(n.split("/")[1][:-3]): g for n, g in groups.items() if n.startswith("real/")}
    if len(sweep) > 1:
        caps = sorted(sweep)
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
        for mode, label in experiment.MODE_LABELS.items():
            points = [c for c in caps if mode in sweep[c]]
            if points:
                axes[0].errorbar(points, [sweep[c][mode]["latency_s"]["mean"] for c in points],
                                 [sweep[c][mode]["latency_s"]["seed_std"] for c in points], marker="o", label=label)
                axes[1].plot(points, [sweep[c][mode]["params_used"]["mean"] for c in points], marker="o", label=label)
        for ref in ("no_premigration", "oracle_latency", "random_migration"):
            points = [c for c in caps if "heuristics" in sweep[c]]
            axes[0].plot(points, [sweep[c]["heuristics"][ref]["latency_s"]["mean"][0] for c in points], "--", marker="s", label=ref)
        axes[0].set_xlabel("C_nom (GHz)"); axes[0].set_ylabel("latency (s)"); axes[0].legend(fontsize=7)
        axes[1].set_xlabel("C_nom (GHz)"); axes[1].set_ylabel("parameters used per actor call")
        fig.tight_layout()
        plt.show()""",
    ),
    (
        "markdown",
        """## 3. EST-TG's spec §4.10 checks

2,000 generated trips against the cleaned ground truth of the scenario's city (bank seed 0).""",
    ),
    (
        "code",
        """if fidelity:
    rows = ["| trips | spatial JSD | hourly JSD | speed W1 (m/s) | on-road | trips 8-9 h / 3-4 h | speed r < 1 km / r > 2 km (m/s) |",
            "|---|---|---|---|---|---|---|"]
    for name, r in fidelity["reports"].items():
        cell = lambda key, fmt: format(r[key], fmt) if key in r else ""
        rows.append(f"| {name} | {cell('spatial_jsd', '.3f')} | {cell('hourly_jsd', '.3f')} | {cell('speed_w1_mps', '.2f')} | "
                    f"{cell('on_road_ratio', '.3f')} | {r['rush_to_early_trip_ratio']:.1f} | "
                    f"{r['centre_speed_mps']:.1f} / {r['periphery_speed_mps']:.1f} |")
    display(Markdown("\\n".join(rows)))""",
    ),
]


TWIN_ROUTING_V1_CELLS = [
    (
        "markdown",
        """# TwinRouting-v1: what a policy could win, and DM-MAPPO's experiments at the spec's budget

TwinRouting-v1 is v0 (the literal reading of spec 002) with infeasible hosts that cost (an overflow pays the
satellite's links, an out-of-range host is reached through the satellite), the mask testing what the realised load
adds, a background load that reaches the caches' capacity at its peak, and, in the scenario, the per-RSU vehicle
counts of a SUMO weekday replayed as the RSU flows. docs/twin_routing.md ("v0 -> v1") gives the table of changes
and the reasons. This notebook only reads and plots the JSON that these commands wrote (each JSON names its
machine):

- `python -m baselines.twin_routing_study calibrate`: the references, Greedy and Random on every calibration
  attempt (v0 first), the value of information, the mask ablation (`calibration.json`);
- `python -m baselines.twin_routing_study predictors`: the spec §4.4 predictor table on both traffic sources
  (`predictors.json`);
- `bash experiments/twin_routing_v1.sh`, then `python -m experiments.twin_routing_v1 evaluate|sweep|curves
  runs/twin_routing_v1/*`: DM-MAPPO and MASAC with the predictor, without workload information and without the
  mask, 3 seeds at the spec's budget, the ablations, the S^mig and S_v sweeps (`evaluation.json`, `sweeps.json`,
  `learning_curves.json`).""",
    ),
    (
        "code",
        """import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from baselines import twin_routing_study as study
from experiments import twin_routing_v1 as experiment

"""
        + results_loader("twin_routing_v1")
        + """
calibration, predictors = load("calibration.json"), load("predictors.json")
evaluation, sweeps, curves = load("evaluation.json"), load("sweeps.json"), load("learning_curves.json")
for name, data in {"calibration": calibration, "predictors": predictors, "evaluation": evaluation,
                   "sweeps": sweeps, "curves": curves}.items():
    print(f"{name}: {data['machine'] if data else 'not produced yet'}")""",
    ),
    (
        "markdown",
        """## 1. Before any training: v0 and v1 side by side

What each reference wins over doing nothing (the twin stays on its host), per calibration attempt, then the value
of information (the least-loaded rule and Greedy with an oracle forecast, persistence and none) and the mask
ablation. The same held-out worlds for every policy of an attempt.""",
    ),
    (
        "code",
        """if calibration:
    display(Markdown(study.calibration_markdown(calibration)))
    display(Markdown(study.information_markdown(calibration)))
if predictors:
    display(Markdown(study.predictors_markdown(predictors)))""",
    ),
    (
        "markdown",
        """## 2. The learners on v1 (spec budget: 210 iterations x 16 worlds x 120 slots = 2e6 agent-steps)

Per setting (the default world, then each ablation), on 3 x 100 held-out episodes: the learners pooled over their
training seeds (± their spread), Greedy and Random with and without the mask and the references (± the spread over
held-out seeds). Rewards use one set of z-score constants per setting.""",
    ),
    (
        "code",
        """if evaluation:
    for setting in evaluation["settings"]:
        display(Markdown(f"### {setting}\\n\\n" + experiment.method_table(evaluation, setting)))
    rows = experiment.pooled_rows(evaluation["settings"]["default"]) if "default" in evaluation["settings"] else []
    if rows:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        for ax, metric, label, scale in ((axes[0], "latency_s", "latency (ms)", 1e3),
                                         (axes[1], "packet_loss", "packet loss (%)", 100.0),
                                         (axes[2], "reward", "reward", 1.0)):
            values = [scale * r[metric] for r in rows]
            errors = [0.0 if r[f"{metric}_std"] is None else scale * r[f"{metric}_std"] for r in rows]
            ax.barh([r["label"] for r in rows], values, xerr=errors)
            ax.set_xlabel(label)
        axes[0].set_xscale("log")
        fig.tight_layout()
        plt.show()""",
    ),
    (
        "markdown",
        """## 3. The migration-size and generated-data sweeps (policies trained at 60 MB and 2 MB, not retrained)""",
    ),
    (
        "code",
        """if sweeps and sweeps.get("results"):
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, (field, (axis, values)) in zip(axes, experiment.SWEEPS.items()):
        display(Markdown(f"latency (ms) across {axis}\\n\\n" + experiment.sweep_table(sweeps, field)))
        display(Markdown(f"reward across {axis}\\n\\n" + experiment.sweep_table(sweeps, field, "reward", 1.0)))
        by_label = {}
        for result in sweeps["results"].values():
            by_label.setdefault(result["label"], []).append(result[field]["reward"])
        for label, runs in sorted(by_label.items()):
            arr = np.array(runs)
            ax.errorbar(np.array(values) / experiment.MB, arr.mean(0), arr.std(0), marker="o", label=label)
        ax.set_xlabel(axis); ax.set_ylabel("reward per vehicle-slot")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    plt.show()""",
    ),
    (
        "markdown",
        """## 4. Learning curves (training episodes, mean over the 16 worlds of each iteration)""",
    ),
    (
        "code",
        """if curves and curves.get("curves"):
    display(Markdown(experiment.curves_table(curves)))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for label, runs in sorted(curves["curves"].get("default", {}).items()):
        latency = np.array([[np.nan if v is None else v for v in r["latency_s"]] for r in runs.values()], float)
        failure = np.array([[np.nan if v is None else v for v in r["failure"]] for r in runs.values()], float)
        n = min(map(len, latency))
        line, = axes[0].plot(np.arange(1, n + 1), 1e3 * np.nanmean(latency[:, :n], 0), label=label)
        axes[1].plot(np.arange(1, n + 1), 100 * np.nanmean(failure[:, :n], 0), color=line.get_color())
    axes[0].set_xlabel("iteration"); axes[0].set_ylabel("training episode latency (ms)"); axes[0].set_yscale("log")
    axes[1].set_xlabel("iteration"); axes[1].set_ylabel("failed slots in training (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    plt.show()""",
    ),
]


PRIVACY_V1_CELLS = [
    (
        "markdown",
        """# CrossRealityPrivacy-v1: the paper's study on the routine-mobility adversary

CrossRealityPrivacy-v1 is v0 (spec 000, LHDPPO) with an adversary that knows routine mobility, 160 RSUs and the
satellite relay; docs/cross_reality_privacy.md gives the v0 -> v1 table, the calibration and the results. This
notebook only reads and plots the JSON that these commands wrote (each JSON names its machine and command):

- `python -m baselines.cross_reality_privacy_v1_study`: the calibration, before any training (`calibration.json`);
- `python -m baselines.cross_reality_privacy_study study --env CrossRealityPrivacy-v1 --iterations 10 --seeds 3
  --grid-seeds 1 --eval-episodes 32 --rounds 3 --candidates 3 --out docs/results/cross_reality_privacy_v1`: the six
  learners (3 seeds vmapped per learner) and the heuristics on the same held-out worlds (`comparison.json`), the
  fixed radius's attacker confidence (`confidence.json`), the reward-weight search (`reward_search.json`), the
  learning-rate and denoising-step grids (`sweep_lr.json`, `sweep_denoising_steps.json`);
- `bash experiments/cross_reality_privacy_v1_long.sh`: learners at 10 times that budget and more (`vmjax train
  --run.seeds 3`), scored on the same held-out worlds at every budget they pass (`long_budget.json`).""",
    ),
    (
        "code",
        """import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from baselines import cross_reality_privacy_study as study
from baselines import cross_reality_privacy_v1_study as calibration_study

"""
        + results_loader("cross_reality_privacy_v1")
        + """
calibration, comparison, confidence = load("calibration.json"), load("comparison.json"), load("confidence.json")
search, sweeps = load("reward_search.json"), {f: load(f"sweep_{f}.json") for f in ("lr", "denoising_steps")}
def caption(fig, record):
    \"\"\"Every figure names its machine and command.\"\"\"
    fig.text(0.01, -0.04, f"{record.get('note') or record['machine']}\\n{record.get('command', '')}", fontsize=7)
for name, data in {"calibration": calibration, "comparison": comparison, "confidence": confidence,
                   "search": search, **sweeps}.items():
    print(f"{name}: {data['machine'] if data else 'not produced yet'}")""",
    ),
    (
        "markdown",
        """## 1. Before any training: utility (17) against the radius, per state (v1) and over whole episodes (v0, v1)

One-slot deviations to every radius from the states Geo-I visits, grouped by the adversary's dead-reckoning
offset |l_pred - l|: the best radius depends on the state. Over whole episodes v0's fixed rule climbs to r_max,
v1's peaks inside.""",
    ),
    (
        "code",
        """if calibration:
    fractions = calibration["study"]["radius_fractions"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for row in calibration["attempts"]["v1"]["states"]:
        low, high = row["offset_m"]
        label = f"{low:.0f}-{high:.0f} m" if high is not None else f">= {low:.0f} m"
        axes[0].plot(fractions, row["curve"], marker="o", label=f"offset {label} ({row['share']:.0%})")
    axes[0].set_xlabel("r / r_max"); axes[0].set_ylabel("utility (17), one slot"); axes[0].legend(fontsize=7)
    for name in ("v0", "v1"):
        axes[1].plot(fractions, calibration["attempts"][name]["fixed_radius_rule"]["utility"], marker="o", label=name)
    axes[1].set_xlabel("r / r_max (fixed rule, whole episodes)"); axes[1].set_ylabel("utility (17)"); axes[1].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    caption(fig, calibration)
    fig.tight_layout(); plt.show()
    oracle = calibration["attempts"]["v1"]["oracle"]
    print(f"per-state oracle over r: {oracle['oracle_radius_utility']:.3f} vs best fixed r = "
          f"{oracle['best_fixed_fraction']:.1f} r_max: {oracle['best_fixed_utility']:.3f} (gain {oracle['oracle_radius_gain']:.3f})")""",
    ),
    (
        "markdown",
        """## 2. The comparison on held-out worlds (v1), v0's next to it

Training seed s of every learner is evaluated deterministically on held-out set s (32 worlds x 50 slots); every
heuristic meets the same sets. ± = std over the 3 per-set means. v0's table (61,440 env steps per seed) is in
`bench/results/cross_reality_privacy_study/`.""",
    ),
    (
        "code",
        """V0 = Path(str(RESULTS).replace("docs/results/cross_reality_privacy_v1", "bench/results/cross_reality_privacy_study"))
v0 = json.loads((V0 / "comparison.json").read_text()) if (V0 / "comparison.json").exists() else None
if comparison:
    results = comparison["results"]
    display(Markdown(study.format_table(results)))
    names = sorted(results, key=lambda n: -results[n]["utility"])
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for ax, (metric, label) in zip(axes, (("utility", "utility (17)"), ("entropy_bits", "entropy (bit)"),
                                          ("latency_s", "latency (s)"), ("adversary_error_m", "adversary error (m)"))):
        ax.bar(range(len(names)), [results[n][metric] for n in names],
               yerr=[results[n][f"{metric}_seed_std"] for n in names], capsize=3)
        if v0 and metric != "adversary_error_m":  # v0's value of the same method (where it has one)
            ax.scatter([i for i, n in enumerate(names) if n in v0["results"]],
                       [v0["results"][n][metric] for n in names if n in v0["results"]], color="k", marker="x",
                       label="v0", zorder=3)
        ax.set_xticks(range(len(names))); ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_title(label); ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    caption(fig, comparison)
    fig.tight_layout(); plt.show()""",
    ),
    (
        "markdown",
        "## 3. Learning curves (training rollouts: per-slot means over worlds and AVs; mean ± std over seeds)",
    ),
    (
        "code",
        """if comparison:
    learners = [n for n in study.LEARNERS if n in comparison["results"]]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for ax, (metric, label) in zip(axes, (("rollout_utility", "utility (17)"), ("rollout_entropy_bits", "entropy (bit)"),
                                          ("rollout_latency_s", "latency (s)"), ("rollout_qos_loss", "QoS loss (16)"))):
        for name in learners:
            r = comparison["results"][name]
            curves = np.array(r["curves"][metric])  # [seeds, iterations]
            steps = np.arange(1, curves.shape[1] + 1) * r["env_steps"] / curves.shape[1]
            line, = ax.plot(steps, curves.mean(0), label=name)
            ax.fill_between(steps, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0),
                            color=line.get_color(), alpha=0.2)
        if metric == "rollout_utility":
            ax.axhline(comparison["results"][study.BEST_FIXED]["utility"], color="k", ls="--", lw=1,
                       label="best fixed radius (held-out)")
        ax.set_title(label); ax.set_xlabel("environment steps per seed"); ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    caption(fig, comparison)
    fig.tight_layout(); plt.show()
    print("\\n".join(f"{n}: compile {comparison['results'][n]['compile_s']:.0f} s, training "
                    f"{comparison['results'][n]['train_s']:.0f} s (3 seeds vmapped)" for n in learners))""",
    ),
    (
        "markdown",
        """## 3b. Longer budgets on the CPU (`vmjax train --run.seeds 3`, scored on the same held-out sets)

`bash experiments/cross_reality_privacy_v1_long.sh` trains each learner beyond the study's 20,480 env steps per
seed and scores it at every budget it passes (`long_budget.json`). Lines: training rollouts (mean over 3 seeds,
moving average over 10 iterations, band = std over seeds); points: held-out scores at each scored budget
(± std over the 3 sets; filled: deterministic actions, the study's protocol; open: actions sampled from the
policy), the study's 20,480-step run included; dashed: the best fixed radius (greedy server) on the held-out sets,
dotted: on an env variant's (the connected server); in the latency panel the calibration's greedy and
uniform-random servers. The table adds each run's seeds untrained
(iteration 0) on the same sets.""",
    ),
    (
        "code",
        """longer = load("long_budget.json")
if longer:
    display(Markdown(study.long_budget_table(longer, comparison)))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4))
    panels = (("rollout_utility", "utility", "utility (17)"), ("rollout_latency_s", "latency_s", "latency (s)"),
              ("rollout_entropy_bits", "entropy_bits", "entropy (bit)"))
    for ax, (metric, score, label) in zip(axes, panels):
        for name, rows in longer["results"].items():
            last = max(rows.values(), key=lambda r: r["env_steps"])
            curves = np.array(last["curves"][metric])  # [seeds, iterations]
            window = min(10, curves.shape[1])
            smooth = np.array([np.convolve(c, np.ones(window) / window, mode="valid") for c in curves])
            steps = (np.arange(smooth.shape[1]) + window) * last["env_steps"] / curves.shape[1]
            line, = ax.plot(steps, smooth.mean(0), label=name)
            ax.fill_between(steps, smooth.mean(0) - smooth.std(0), smooth.mean(0) + smooth.std(0),
                            color=line.get_color(), alpha=0.2)
            points = sorted(rows.values(), key=lambda r: r["env_steps"])
            if comparison and name in comparison["results"]:
                points = [comparison["results"][name], *points]
            ax.errorbar([r["env_steps"] for r in points], [r[score] for r in points],
                        [r[f"{score}_seed_std"] for r in points], color=line.get_color(), marker="o", ls="none")
            sampled = [r for r in points if "sampled" in r]  # the same held-out sets, actions drawn from the policy
            ax.errorbar([r["env_steps"] for r in sampled], [r["sampled"][score] for r in sampled],
                        [r["sampled"][f"{score}_seed_std"] for r in sampled], color=line.get_color(), marker="o",
                        mfc="none", ls="none")
        if comparison:
            ax.axhline(comparison["results"][study.BEST_FIXED][score], color="k", ls="--", lw=1,
                       label="best fixed radius (held-out)")
        for variant, yardsticks in longer.get("yardsticks", {}).items():
            ax.axhline(yardsticks[study.BEST_FIXED][score], color="k", ls=":", lw=1.5,
                       label=f"best fixed radius, {variant} (held-out)")
        if metric == "rollout_latency_s" and calibration:
            servers = calibration["attempts"]["v1"]["servers"]
            for server, style in (("greedy", ":"), ("random", "-.")):
                ax.axhline(servers[server]["latency_s"], color="gray", ls=style, lw=1,
                           label=f"{server} server (calibration)")
        ax.set_xscale("log"); ax.set_title(label); ax.set_xlabel("environment steps per seed"); ax.grid(alpha=0.3)
    fig.legend(*axes[1].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    caption(fig, {**longer, "command": "bash experiments/cross_reality_privacy_v1_long.sh (each step: vmjax train, "
                                        "then python -m experiments.cross_reality_privacy_v1_long)"})
    fig.tight_layout(); plt.show()
else:
    print("long_budget.json: not produced yet (bash experiments/cross_reality_privacy_v1_long.sh)")""",
    ),
    (
        "markdown",
        """## 4. Attacker confidence (posterior max, eq. 4) against the perturbation intensity

Left: the fixed-radius rule r = f r_max on the held-out sets. Right: every method's AV-slots binned by the
perturbation distance d(l, l~) (10 m bins; bins with fewer than 20 AV-slots left out).""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, 2, figsize=(13, 4))
if confidence:
    rows = confidence["rows"]
    f = [row["fraction"] for row in rows]
    axes[0].errorbar(f, [row["attacker_confidence"] for row in rows],
                     [row["attacker_confidence_seed_std"] for row in rows], marker="o", label="posterior max")
    ax2 = axes[0].twinx()
    ax2.plot(f, [row["entropy_bits"] for row in rows], color="tab:red", marker="s", label="entropy (bit)")
    ax2.set_ylabel("entropy (bit)", color="tab:red")
    axes[0].set_xlabel("r / r_max (fixed rule)"); axes[0].set_ylabel("attacker confidence"); axes[0].grid(alpha=0.3)
    display(Markdown(study.confidence_table(confidence)))
if comparison:
    for name, r in comparison["results"].items():
        count = np.array(r["intensity"]["count"])
        keep = count >= 20
        centres = (np.arange(len(count)) + 0.5) * r["intensity"]["bin_m"]
        axes[1].plot(centres[keep], np.array(r["intensity"]["attacker_confidence"])[keep], marker=".", label=name)
    axes[1].set_xlabel("perturbation distance d(l, l~) (m)"); axes[1].set_ylabel("attacker confidence")
    axes[1].legend(fontsize=6); axes[1].grid(alpha=0.3)
    caption(fig, comparison)
fig.tight_layout(); plt.show()""",
    ),
    (
        "markdown",
        """## 5. True vs reported trajectories and the chosen servers (held-out world 0 of set 0, 3 vehicles)

Solid: the true trajectory; dotted with dots: the reports (eq. 2); triangles: the agent server chosen in each slot
(RSUs grey; the satellite's ground point is off the map). Seed 0 of each learner.""",
    ),
    (
        "code",
        """if comparison:
    shown = [n for n in ("LHDPPO", "H-PPO", study.BEST_FIXED, "Geo-I") if n in comparison["results"]]
    servers = np.array(comparison["servers_xy_m"])
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 4.5), squeeze=False)
    for ax, name in zip(axes[0], shown):
        tr = comparison["results"][name]["trajectory"]
        true, reported, agent = np.array(tr["true_m"]), np.array(tr["reported_m"]), np.array(tr["agent_server"])
        lo, hi = true.reshape(-1, 2).min(0) - 1500, true.reshape(-1, 2).max(0) + 1500
        near = np.all((servers[:-1] >= lo) & (servers[:-1] <= hi), axis=1)
        ax.scatter(*servers[:-1][near].T / 1e3, s=8, color="0.7")
        for m in range(min(3, true.shape[1])):
            line, = ax.plot(*true[:, m].T / 1e3, lw=1.5)
            ax.plot(*reported[:, m].T / 1e3, ls=":", marker=".", ms=3, color=line.get_color())
            on_rsu = agent[:, m] < len(servers) - 1
            ax.scatter(*servers[agent[on_rsu, m]].T / 1e3, marker="^", s=30, color=line.get_color(), edgecolor="k")
            moves = int(np.sum(agent[1:, m] != agent[:-1, m]))
            ax.plot([], [], color=line.get_color(), label=f"AV {m}: {moves} migrations, {int(np.sum(~on_rsu))} slots on S")
        ax.set_title(name, fontsize=9); ax.set_xlabel("x (km)"); ax.set_ylabel("y (km)"); ax.legend(fontsize=6)
        ax.set_aspect("equal")
    caption(fig, comparison)
    fig.tight_layout(); plt.show()""",
    ),
    (
        "markdown",
        """## 6. LHDPPO's learning-rate grid (actor = critic, every rate and seed in one vmapped jit) and denoising steps U

1 seed (held-out set 0). The spec's values (lr 1e-4, U = 5) are the comparison's LHDPPO on the same seed and set.""",
    ),
    (
        "code",
        """done = {f: r for f, r in sweeps.items() if r}
if done:
    fig, axes = plt.subplots(1, len(done), figsize=(6.5 * len(done), 3.8), squeeze=False)
    for ax, (field, record) in zip(axes[0], done.items()):
        display(Markdown(f"**{field}**\\n\\n" + study.sweep_table(record)))
        values = sorted(record["results"], key=float)
        r = [record["results"][v] for v in values]
        ax.errorbar([float(v) for v in values], [x["utility"] for x in r], [x["utility_seed_std"] for x in r], marker="o")
        if field == "lr":
            ax.set_xscale("log")
        if comparison:
            ax.axhline(comparison["results"][study.BEST_FIXED]["utility"], color="k", ls="--", lw=1,
                       label="best fixed radius")
            ax.legend(fontsize=7)
        ax.set_xlabel(field); ax.set_ylabel("utility (17), held-out"); ax.grid(alpha=0.3)
        caption(fig, record)
    fig.tight_layout(); plt.show()""",
    ),
    (
        "markdown",
        """## 7. The reward-weight search (§4.5, offline cross-entropy stand-in for the LLM)

Each round trains LHDPPO on 3 weight vectors of eq. (21) in one vmapped jit (1 seed each) and scores them by the
utility (17) on held-out set 0; round 0's candidate 0 is the hand-set weights (spec §4.3). The best vector is then
retrained on 3 seeds and set against the comparison's LHDPPO (hand-set weights, same seeds and sets).""",
    ),
    (
        "code",
        """if search and search["results"].get("rounds"):
    display(Markdown(study.search_table(search)))
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for rnd in search["results"]["rounds"]:
        ax.scatter([rnd["round"]] * len(rnd["scores"]["utility"]), rnd["scores"]["utility"], color="tab:blue")
    hand = search["results"]["rounds"][0]["scores"]["utility"][0]
    ax.axhline(hand, color="tab:orange", ls="--", label="hand-set weights (round 0, k = 0)")
    ax.set_xlabel("round"); ax.set_ylabel("utility (17), held-out set 0"); ax.legend(fontsize=7); ax.grid(alpha=0.3)
    caption(fig, search)
    fig.tight_layout(); plt.show()
    best = search["results"].get("best_retrained")
    if best and comparison and "LHDPPO" in comparison["results"]:
        hand_set = comparison["results"]["LHDPPO"]
        print(f"best weights {search['results']['best']['weights']}\\nretrained, 3 seeds: utility "
              f"{best['utility']:.3f} ± {best['utility_seed_std']:.3f} vs hand-set {hand_set['utility']:.3f} ± "
              f"{hand_set['utility_seed_std']:.3f}")""",
    ),
]


DESIGN_CELLS = [
    (
        "markdown",
        """# The differentiable environment at work: network design and a gradient planner (issue 24)

`vmjax.design` optimises continuous design parameters of an env's params (a GPU budget split over the RSUs, UAV
patrol anchors, TwinSplit's pre-migrated fraction) against the expected cost of a fixed heuristic, with gradients
through `vmap`-ed rollouts, and compares the gradient with an evolution strategy and random search at the same
env steps, scored on held-out worlds (docs/design.md). The gradient planner picks AvatarPremigration's fractions by
a few gradient steps through a short model rollout, and the radius planners pick CrossRealityPrivacy-v1's
perturbation radius the same way. This notebook only reads and plots the JSON that these
commands wrote (each names its machine):

- `python -m experiments.design search` (`docs/results/design/search.json`),
- `python -m experiments.design planner` (`docs/results/design/planner.json`),
- `python -m experiments.design radius_planner` (`docs/results/design/radius_planner.json`).""",
    ),
    (
        "code",
        """import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

RESULTS = Path("../docs/results/design")
if not RESULTS.exists():  # run from the repository root (the test suite)
    RESULTS = Path("docs/results/design")
search = json.loads((RESULTS / "search.json").read_text())
planner = json.loads((RESULTS / "planner.json").read_text())
print("search:", search["machine"])
print("planner:", planner["machine"])""",
    ),
    (
        "markdown",
        """## 1. Objective on held-out worlds against env steps (mean over 3 seeds; lower is better)""",
    ),
    (
        "code",
        """problems = search["problems"]
fig, axes = plt.subplots(1, len(problems), figsize=(5 * len(problems), 3.6))
for ax, (name, problem) in zip(np.atleast_1d(axes), problems.items()):
    for method, record in problem["methods"].items():
        curves = [run["curve"] for run in record["runs"]]
        steps = [point["env_steps"] for point in curves[0]]
        values = np.array([[point["held_out"] for point in curve] for curve in curves])
        ax.plot(steps, values.mean(axis=0), label=method)
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
    ax.set_title(problem["problem"], fontsize=9)
    ax.set_xlabel("env steps")
axes[0].set_ylabel("held-out objective")
axes[0].legend()
fig.text(0.01, -0.06, f"{search['machine']}\\n{search['command']}", fontsize=7)
plt.show()
for name, problem in problems.items():
    print(problem["problem"])
    for method, record in problem["methods"].items():
        final = [run["curve"][-1]["held_out"] for run in record["runs"]]
        print(f"  {method:>8}: {np.mean(final):.4f} +- {np.std(final, ddof=1):.4f} (3 seeds), {record['total_s']:.0f} s")""",
    ),
    (
        "markdown",
        """## 2. The GPU split each method found (AvatarPremigration-v1, 6 RSUs, 120 GHz in all; seed 0)

The equal split is the reference. ES puts almost all the cycles on a single RSU (which one differs by seed), where
the greedy policy then sends its work; the gradient splits them between the two outskirts RSUs in every seed: it
holds the policy's choices fixed, so it cannot see that reaction (docs/design.md).""",
    ),
    (
        "code",
        """problem = problems["avatar_gpu_split"]
designs = {"equal split": problem["reference_design"]["rsu_gpu_hz"]}
designs.update({method: record["runs"][0]["design"]["rsu_gpu_hz"] for method, record in problem["methods"].items()})
fig, ax = plt.subplots(figsize=(7, 3.2))
width = 0.8 / len(designs)
for i, (label, hz) in enumerate(designs.items()):
    ax.bar(np.arange(len(hz)) + i * width, np.asarray(hz) / 1e9, width, label=label)
ax.set_xticks(np.arange(len(hz)) + 0.4 - width / 2, [f"RSU {r}" for r in range(len(hz))])
ax.set_ylabel("GPU (GHz)")
ax.legend(fontsize=8)
fig.text(0.01, -0.08, search["machine"], fontsize=7)
plt.show()""",
    ),
    (
        "markdown",
        """The same splits on the map: each RSU of the grid layout (dense core, sparse outskirts) as a disc whose area
is its GPU share (`vmjax.make("AvatarPremigration-v1", layout="grid")`'s RSU positions).""",
    ),
    (
        "code",
        """import vmjax

env = vmjax.make("AvatarPremigration-v1", layout="grid", max_steps=20)
rsu_xy = np.asarray(env.default_params.rsu_xy_m)
width, height = env.road_grid.extent_m
fig, axes = plt.subplots(1, len(designs), figsize=(3.2 * len(designs), 3.3), sharey=True)
for ax, (label, hz) in zip(np.atleast_1d(axes), designs.items()):
    ghz = np.asarray(hz) / 1e9
    ax.scatter(rsu_xy[:, 0], rsu_xy[:, 1], s=12 * ghz, color="tab:green", alpha=0.6, edgecolor="k")
    for (x, y), g in zip(rsu_xy, ghz):
        ax.annotate(f"{g:.0f}", (x, y), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=7)
    ax.set_xlim(-200, width + 200)
    ax.set_ylim(-200, height + 300)
    ax.set_aspect("equal")
    ax.set_title(label, fontsize=9)
    ax.set_xlabel("x (m)")
axes[0].set_ylabel("y (m)")
fig.text(0.01, -0.06, "disc area and label: GHz at the RSU (120 GHz in all); " + search["machine"], fontsize=7)
plt.show()""",
    ),
    (
        "markdown",
        """## 3. The gradient planner against its heuristic base (AvatarPremigration-v1, held-out episodes)""",
    ),
    (
        "code",
        """print(f"{'base':>14} | base latency (s) | planner latency (s) | gain | ms per decision (base / planner)")
for base, record in planner["bases"].items():
    b, p = record["base"], record["planner"]
    print(f"{base:>14} | {b['mean_latency_s']:16.2f} | {p['mean_latency_s']:19.2f} | {record['gain_pct']:4.1f}% | "
          f"{b['ms_per_decision']:.3f} / {p['ms_per_decision']:.3f}")
print(planner["machine"])
print(planner["command"])""",
    ),
    (
        "markdown",
        """## 4. Radius planners on CrossRealityPrivacy-v1 against the best fixed radius

Each AV's perturbation radius planned per slot on the model's utility (17) (the best fixed radius's server and
angle held): gradient steps, a grid of radii, or a grid refined by gradient steps, on the held-out sets of the §7
study (`python -m experiments.design radius_planner`, `docs/results/design/radius_planner.json`). Higher is
better; the error bars are the std over the 3 held-out sets.""",
    ),
    (
        "code",
        """radius = json.loads((RESULTS / "radius_planner.json").read_text())
rows = radius["planners"]
names = list(rows)
fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 3.6))
utility = [rows[n]["utility"] for n in names]
spread = [np.std(rows[n]["utility_per_seed"]) for n in names]
ax.barh(names, utility, xerr=spread, color=["0.6"] + ["tab:blue"] * (len(names) - 1))
ax.invert_yaxis()
ax.set_xlabel("utility (17) per AV-slot")
for n in names[1:]:
    bx.scatter(rows[n]["ms_per_decision"], rows[n]["utility"], label=n)
bx.axhline(rows[names[0]]["utility"], color="0.6", linestyle="--", label=names[0])
bx.set_xlabel("ms per decision (one world-slot, 5 AVs)")
bx.set_ylabel("utility (17)")
bx.legend(fontsize=7)
fig.text(0.01, -0.08, f"{radius['machine']}\\n{radius['command']}", fontsize=7)
plt.show()
for n in names:
    print(f"{n:>40}: utility {rows[n]['utility']:+.3f}, entropy {rows[n]['entropy_bits']:.3f} bit, "
          f"QoS loss {rows[n]['qos_loss']:.3f}, {rows[n]['ms_per_decision']:.1f} ms per decision")""",
    ),
]


NOTEBOOKS = {
    "avatar_premigration.ipynb": AVATAR_CELLS,
    "avatar_premigration_v1.ipynb": AVATAR_V1_CELLS,
    "twin_routing.ipynb": TWIN_CELLS,
    "twin_routing_v1.ipynb": TWIN_ROUTING_V1_CELLS,
    "twin_split.ipynb": TWIN_SPLIT_CELLS,
    "twin_split_v1.ipynb": TWIN_SPLIT_V1_CELLS,
    "cross_reality_privacy.ipynb": PRIVACY_CELLS,
    "cross_reality_privacy_v1.ipynb": PRIVACY_V1_CELLS,
    "differentiable.ipynb": DESIGN_CELLS,
}


def build(name: str, cells, execute: bool = True) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    path = HERE / name
    if execute:
        from nbclient import NotebookClient

        start = time.time()
        NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        print(f"executed {name} in {time.time() - start:.0f} s")
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        if len(sys.argv) == 1 or name in sys.argv[1:]:
            print(build(name, cells))
