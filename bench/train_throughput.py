"""End-to-end training throughput of Hybrid-MAPPO on AvatarPremigration-v0 at several numbers of parallel worlds.

    python -m bench.train_throughput [--worlds 1 64 1024 4096] [--minibatches 4 16] [--forecast lstm] [--epochs 10]

One timed unit is one full training iteration: a 100-step rollout of every world (policy sampling, env steps,
auto-resets with the LSTM forecast), GAE, and the PPO update (epochs x minibatches of four networks). The
iteration is AOT-compiled first (compile time reported apart), run once as a warm-up, then timed with
`block_until_ready`; the median of the repeats is reported. Throughput = worlds x rollout steps / time; the
reference in the same process is the first row. With several `--minibatches`, every world count is measured at
every minibatch count (the layout search behind a device's preset: the fastest row). The LSTM has the command line's default size
(32 cells) with untrained weights: its cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import jax

import vmjax
from bench.common import compile_aot, median, result_path, timed_state_runs
from vmjax import predict
from vmjax.agents import HybridMappoConfig, make_trainer
from vmjax.core.io import atomic_write_json
from vmjax.core.machine import describe_machine, machine_label
from vmjax.envs import avatar_premigration


def make_env_and_params(forecast: str, predictor_hidden: int):
    env = vmjax.make("AvatarPremigration-v0", workload_forecast=forecast)
    params = env.default_params
    if forecast == "lstm":
        low, high = avatar_premigration.map_box_m(env)
        predictor = predict.init_predictor(jax.random.PRNGKey(0), predictor_hidden, env.config.history_slots, low, high)
        params = params.replace(predictor=predictor)
    return env, params


def measure_one(env, params, num_worlds: int, epochs: int, repeats: int, minibatches: int | None = None) -> dict:
    config = HybridMappoConfig(num_envs=num_worlds, num_steps=env.config.max_steps, update_epochs=epochs)
    if minibatches is not None:
        config = dataclasses.replace(config, num_minibatches=minibatches)
    trainer = make_trainer(env, config, params)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    step, compile_s = compile_aot(jax.jit(trainer.update), (state,))
    times, _ = timed_state_runs(step, state, repeats)
    iteration_s = median(times)
    env_steps = config.env_steps_per_iteration
    return {
        "worlds": num_worlds,
        "minibatches": config.num_minibatches,
        "compile_s": compile_s,
        "iteration_s": iteration_s,
        "env_steps_per_iteration": env_steps,
        "env_steps_per_s": env_steps / iteration_s,
        "agent_steps_per_s": env_steps * env.num_agents / iteration_s,
        "repeats": repeats,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 64, 1024, 4096], help="parallel worlds")
    parser.add_argument(
        "--forecast",
        default="lstm",
        choices=["lstm", "persistence", "none"],
        help="workload forecast in the observation (default: the LSTM, as `vmjax train`)",
    )
    parser.add_argument("--predictor-hidden", type=int, default=32, help="LSTM cells (command-line default 32)")
    parser.add_argument("--epochs", type=int, default=10, help="PPO epochs per iteration (spec default 10)")
    parser.add_argument(
        "--minibatches",
        type=int,
        nargs="+",
        default=[None],
        help="PPO minibatches per epoch, each a row at every world count (default: the config's)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations per world count (median)")
    parser.add_argument(
        "--large-repeats",
        type=int,
        default=1,
        help="timed iterations at 2048 worlds or more (one CPU iteration takes minutes there)",
    )
    parser.add_argument("--out", help="JSON path (default bench/results/train_throughput-<machine>.json)")
    args = parser.parse_args(argv)
    machine = describe_machine()
    env, params = make_env_and_params(args.forecast, args.predictor_hidden)
    print(
        f"Hybrid-MAPPO training throughput on AvatarPremigration-v0 (N=10, M=6, forecast={args.forecast}, "
        f"{args.epochs} epochs); {machine}",
        flush=True,
    )
    rows = []
    for worlds, minibatches in itertools.product(args.worlds, args.minibatches):
        repeats = args.repeats if worlds < 2048 else args.large_repeats
        row = measure_one(env, params, worlds, args.epochs, repeats, minibatches)
        rows.append(row)
        print(
            f"{worlds:>6} worlds  {row['minibatches']:>3} minibatches  {row['env_steps_per_s']:>12,.0f} env steps/s  {row['agent_steps_per_s']:>13,.0f} "
            f"agent steps/s  iteration {row['iteration_s']:7.2f} s  compile {row['compile_s']:5.1f} s",
            flush=True,
        )
    for row in rows:
        row["ratio_vs_first"] = row["env_steps_per_s"] / rows[0]["env_steps_per_s"]
    out = result_path("train_throughput", machine_label(machine), args.out)
    atomic_write_json(
        out,
        {
            "benchmark": "train_throughput",
            "algorithm": "hybrid_mappo",
            "env": "AvatarPremigration-v0",
            "config": vars(args),
            "machine": machine,
            "rows": rows,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
