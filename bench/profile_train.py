"""Where a vmjax Hybrid-MAPPO training iteration spends its time, from a `jax.profiler` trace.

    python -m bench.profile_train [--worlds 20] [--iterations 3]

The `vmjax train` configuration of the training benchmark (persistence forecast, RSUs by index), one
compiled `trainer.update`, a warm-up call, then a trace of `--iterations` calls. It prints the most
expensive XLA ops and sums the op time of the ops that run once per minibatch gradient step (the PPO update)
and, among those, of the matrix-multiply kernels (`dot`, `ynn_fusion`).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import gzip
import json
import tempfile

import jax

import vmjax
from vmjax import runner
from vmjax.agents.hybrid_mappo import HybridMappoConfig, make_trainer

HOST_EVENTS = ("ThunkExecutor", "$", "PjitFunction", "PjRt", "TfrtCpu")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    overrides = {"env.workload_forecast": "persistence", "env.rsu_order": "index", "agent.num_envs": args.worlds}
    configs = runner.build_configs(overrides, HybridMappoConfig)
    env = vmjax.make("AvatarPremigration-v0", **dataclasses.asdict(configs["env"]))
    agent = configs["agent"]
    trainer = make_trainer(env, agent)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    update = jax.jit(trainer.update).lower(state).compile()
    state, _ = jax.block_until_ready(update(state))  # warm-up, not traced
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        for _ in range(args.iterations):
            state, _ = jax.block_until_ready(update(state))
        jax.profiler.stop_trace()
        path = sorted(glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True))[-1]
        events = json.load(gzip.open(path))["traceEvents"]
    total_us, calls = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") == "X":
            total_us[event["name"]] += event["dur"]
            calls[event["name"]] += 1
    ops = {name: us for name, us in total_us.items() if not name.startswith(HOST_EVENTS)}
    steps = args.iterations * agent.update_epochs * agent.num_minibatches
    per_step = {name: us for name, us in ops.items() if calls[name] % steps == 0}
    matmul = sum(us for name, us in per_step.items() if name.startswith(("dot", "ynn_fusion")))
    per_iteration_ms = lambda us: us / 1e3 / args.iterations  # noqa: E731
    print(
        f"{args.worlds} worlds, {args.iterations} traced iterations; op time in ms per iteration "
        "(ops on two threads can overlap)"
    )
    for name, us in sorted(ops.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {per_iteration_ms(us):8.1f}  {calls[name] // args.iterations:5d} calls  {name[:80]}")
    wall = total_us["ThunkExecutor::Execute (wait for completion)"]
    print(f"executor wall time: {per_iteration_ms(wall):.1f} ms per iteration")
    print(
        f"ops run once per minibatch gradient step ({steps // args.iterations} per iteration): "
        f"{per_iteration_ms(sum(per_step.values())):.1f} ms, of which matrix-multiply kernels "
        f"{per_iteration_ms(matmul):.1f} ms; all other ops {per_iteration_ms(sum(ops.values()) - sum(per_step.values())):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
