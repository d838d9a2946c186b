"""Write the notebooks from their cell sources and execute them in place (outputs committed with them).

    python notebooks/build_notebooks.py            # needs nbformat, nbclient, ipykernel (pip install them)

The test suite runs the same cells at a tiny budget without Jupyter (tests/test_notebooks.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).parent

AVATAR_CELLS = [
    ("markdown", """# Hybrid-MAPPO on AvatarPremigration-v0: learning curves and the comparison with the heuristics

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
(an agent names RSUs by distance, slot 0 = its serving RSU; README, Training)."""),
    ("code", """import os, time, json
from pathlib import Path

ITERATIONS = int(os.environ.get("VMJAX_NOTEBOOK_ITERATIONS", "300"))  # training iterations per learner (the budget)
TINY = ITERATIONS < 10  # the test suite runs this notebook with 1 iteration and tiny sizes
EPISODES, SEEDS = (2, 1) if TINY else (100, 3)  # held-out episodes per seed, held-out seeds
TRAIN_SEEDS = [0] if TINY else [0, 1, 2]  # training seeds of the Hybrid-MAPPO variants
RUNS = Path(os.environ.get("VMJAX_NOTEBOOK_RUNS", "../runs/notebook"))

import jax
from IPython.display import Image, Markdown, display
from vmjax import cli
start = time.time()
print(cli.machine_description())"""),
    ("code", """def configs_for(name, algo, forecast, seed, rsu_order):
    overrides = {"run.run_dir": str(RUNS / name), "run.algo": algo, "env.workload_forecast": forecast,
                 "agent.num_iterations": ITERATIONS, "run.seed": seed, "env.rsu_order": rsu_order}
    if forecast == "lstm" and (RUNS / "hybrid_lstm_s0" / "predictor.msgpack").exists():
        overrides["run.predictor_path"] = str(RUNS / "hybrid_lstm_s0" / "predictor.msgpack")  # one predictor for all
    if TINY:
        overrides.update({"agent.num_envs": 2, "agent.num_steps": 8, "env.max_steps": 8, "env.num_vehicles": 3,
                          "env.num_rsus": 3, "run.chunk_iterations": 1, "predictor.hidden_size": 4,
                          "predictor.epochs": 1, "predictor.num_slots": 200})
    return cli.build_configs(overrides, cli.ALGORITHMS[algo][0])

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
        cli.train(configs_for(name, *variant))
    else:
        print(f"{name}: already trained in {RUNS}, reused (delete the folder to train again)")
    train_wall[name] = json.loads(done.read_text())["train_wall_s"]"""),
    ("markdown", "## Trajectory predictor (§4): held-out error of the LSTM against a constant-velocity extrapolation"),
    ("code", """pm = json.loads((RUNS / "hybrid_lstm_s0" / "predictor_metrics.json").read_text())
print(f"LSTM RMSE {pm['heldout_lstm']['rmse_m']:.1f} m, MAE {pm['heldout_lstm']['mae_m']:.1f} m, R2 {pm['heldout_lstm']['r2']:.3f}; "
      f"constant velocity RMSE {pm['heldout_constant_velocity']['rmse_m']:.1f} m; training {pm['train_wall_s']:.0f} s")"""),
    ("markdown", "## Learning curves (mean total latency per vehicle-slot of the episodes finished in each iteration)"),
    ("code", """import matplotlib.pyplot as plt
import numpy as np
fig, ax = plt.subplots(figsize=(8, 4))
for name in [n for n in VARIANTS if n.endswith("_s0")]:
    records = cli.read_metrics(RUNS / name / "metrics.jsonl")
    steps = np.array([r["env_steps"] for r in records])
    latency = np.array([r["episode_total_latency_s"] for r in records])
    smooth = np.convolve(latency, np.ones(5) / 5, mode="valid") if len(latency) >= 5 else latency
    ax.plot(steps[len(steps) - len(smooth):], smooth, label=name)
ax.set_xlabel("environment steps"); ax.set_ylabel("mean total latency T_v (s), 5-iteration mean")
ax.grid(alpha=0.3); ax.legend(); ax.set_title("training seed 0"); plt.show()"""),
    ("markdown", "## Comparison on held-out episodes (the same worlds for every policy)"),
    ("code", """results = cli.evaluate([RUNS / name for name in VARIANTS], EPISODES, SEEDS, 10_000, RUNS, log=lambda *_: None)
display(Markdown((RUNS / "evaluation.md").read_text()))
display(Image(str(RUNS / "evaluation.png")))"""),
    ("markdown", "## Over training seeds: mean and spread of each learner's held-out latency"),
    ("code", """by_run = {Path(r["run_dir"]).name: r["latency_s"] for r in results.values() if "run_dir" in r}
def over_seeds(prefix):
    values = np.array([v for name, v in by_run.items() if name.startswith(prefix)])
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0), len(values)
hybrid, hybrid_std, n = over_seeds("hybrid_lstm_s")
hybrid_none, hybrid_none_std, _ = over_seeds("hybrid_none_s")
print(f"Hybrid-MAPPO (LSTM)      {hybrid:.3f} s, std over {n} training seeds {hybrid_std:.3f}")
print(f"Hybrid-MAPPO w/o pred.   {hybrid_none:.3f} s, std over {n} training seeds {hybrid_none_std:.3f}")
for name in ["random", "no_premigration", "full_premigration", "nearest_rsu", "least_loaded", "lighter_neighbour", "greedy"]:
    other = results[name]["latency_s"]
    print(f"Hybrid-MAPPO {hybrid:.3f} s vs {name} {other:.3f} s: {'lower' if hybrid < other else 'NOT lower'} "
          f"({100 * (other - hybrid) / other:+.1f}%)")
print(f"with prediction {hybrid:.3f} s vs without {hybrid_none:.3f} s: "
      f"{'not worse' if hybrid <= hybrid_none else 'WORSE'} ({hybrid - hybrid_none:+.3f} s)")
print(f"budget {ITERATIONS} iterations per learner; training wall time (jitted chunks, compile excluded) "
      + ", ".join(f"{n} {s:.0f} s" for n, s in train_wall.items()) + f"; this execution {time.time() - start:.0f} s "
      f"on {cli.machine_description()}")"""),
]

NOTEBOOKS = {"avatar_premigration.ipynb": AVATAR_CELLS}


def build(name: str, cells, execute: bool = True) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
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
