"""One benchmark run: vmjax against its NumPy and PyTorch references, in one process (`python -m bench`).

    python -m bench                       # the full run (minutes); results in bench/results/bench-<machine>.json
    python -m bench --quick               # tiny sizes: a smoke run of every part (seconds of work, plus compiles)
    python -m bench --worlds 1 64 4096 --repeats 7 --skip-torch --out /some/where.json

What is measured (bench/README.md has the details):

1. env throughput of AvatarPremigration-v0 (N = 20 vehicles, M = 10 RSUs, persistence forecast, episodes of
   100 slots with auto-reset included) for vmjax, the batched NumPy reference and the per-world NumPy
   reference at each world count; env steps/s, agent steps/s, vmjax compile time apart, and the ratios;
2. end-to-end Hybrid-MAPPO training throughput, vmjax against the PyTorch trainer with identical
   hyper-parameters (the `vmjax train` defaults with the persistence forecast);
3. vmjax step time against the number of vehicles and of RSUs;
4. peak memory per world of every implementation;
5. the machine (CPU model and cores, or the accelerator);
6. env throughput of TwinRouting-v0 (the default config: 5 vehicles, 76 RSUs, 10 UAVs, a satellite) under a
   masked uniform random policy, with the persistence forecast and with the in-rollout workload predictor
   (bench/twin_routing_throughput.py; no reference: absolute env and agent steps/s; `--skip-twin-routing`),
   and its world-step as a ratio to an AvatarPremigration-v0 one (part 1's env) at `--twin-ratio-worlds`
   (1024), both timed in alternation in this process (target: <= 5x).

Timing rules (ANCHORS.md): AOT-compile first and report compile time apart; `block_until_ready`; a warm-up
run excluded; the median of repeated runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import time
import tracemalloc
from typing import Any

import jax
import numpy as np

import vmjax
from bench import twin_routing_throughput as twin
from bench.common import (
    compile_and_time,
    compiled_memory,
    fill_unset,
    format_bytes,
    format_rate,
    format_times,
    log,
    make_env_rollout,
    markdown_table,
    median,
    require_positive,
    result_path,
    run_stamp,
    time_trainer,
)
from bench.reference.numpy_avatar import (
    AvatarPremigrationNumpy,
    BatchedAvatarPremigrationNumpy,
    ReferenceConfig,
)
from vmjax import runner
from vmjax.agents import make_trainer
from vmjax.agents.hybrid_mappo import HybridMappoConfig
from vmjax.core.io import atomic_write_bytes, atomic_write_json
from vmjax.core.machine import describe_machine, machine_label

ENV_ID = "AvatarPremigration-v0"
BENCH_VEHICLES, BENCH_RSUS = 20, 10  # the benchmark world (bench/env_throughput.py)
FORECAST = "persistence"  # the NumPy references and the PyTorch trainer have no LSTM
DEFAULT_WORLDS = (1, 64, 1024, 4096, 16384)
GPU_EXTRA_WORLDS = (65536, 262144)  # vmjax only, on an accelerator: where its best world count may lie
TARGET_WORLDS = 4096
TARGETS = {
    "env_vs_numpy_per_world": 150.0,  # x, vmjax env at 4096 worlds, on the 2-core CPU
    "env_vs_numpy_batched": 5.0,  # x, same
    "train_vs_torch": 20.0,  # x, end-to-end training env steps/s, on the CPU
    "gpu_env_steps_per_s": 100e6,  # env steps/s on an H100 / H200 at the best world count
}
SCHEMA_VERSION = 1

# Settings of the full run and of --quick; an option given on the command line wins over both.
FULL = {
    "worlds": list(DEFAULT_WORLDS),
    "extra_worlds": None,  # None: GPU_EXTRA_WORLDS on an accelerator, none on a CPU
    "repeats": 5,
    "steps": 200,
    "numpy_episode_max_worlds": 1024,
    "numpy_steps": 10,
    "per_world_sample": 4,
    "per_world_episodes": 2,
    "train_worlds": [20, 1024],
    "train_steps": None,  # None: the `vmjax train` default (100)
    "train_epochs": None,  # None: the `vmjax train` default (10)
    "train_minibatches": None,  # None: the `vmjax train` default (4)
    "train_chunk": 2,
    "train_repeats": 3,
    "train_large_repeats": 1,
    "torch_iterations": 3,
    "torch_large_iterations": 1,
    "torch_max_worlds": 1024,
    "torch_threads": 1,
    "scale_worlds": 1024,
    "scale_vehicles": [10, 50, 200],
    "scale_rsus": [5, 20, 80],
    "twin_worlds": [1, 64, 1024, 4096],
    "twin_max_rollout_s": 60.0,
    "twin_ratio_worlds": [1024],
}
QUICK = {
    **FULL,
    "worlds": [1, 4],
    "extra_worlds": [],
    "repeats": 2,
    "numpy_episode_max_worlds": 1,  # so that both NumPy timing methods run
    "numpy_steps": 3,
    "per_world_sample": 1,
    "per_world_episodes": 1,
    "train_worlds": [2],
    "train_steps": 20,
    "train_epochs": 1,
    "train_minibatches": 2,
    "train_chunk": 1,
    "train_repeats": 1,
    "torch_iterations": 2,
    "scale_worlds": 4,
    "scale_vehicles": [10],
    "scale_rsus": [5],
    "twin_worlds": [1, 4],
    "twin_ratio_worlds": [4],
}
LARGE_TRAIN_WORLDS = 256  # from here on: chunks of one iteration, `train_large_repeats` / `torch_large_iterations`


# ====================================================================== memory
def traced_peak_bytes(fn) -> int:
    """Peak bytes allocated (tracemalloc: Python objects and NumPy buffers) while `fn()` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak)


# ====================================================================== env throughput
def env_kwargs(num_vehicles: int, num_rsus: int) -> dict:
    return {"num_vehicles": num_vehicles, "num_rsus": num_rsus, "workload_forecast": FORECAST}


def measure_vmjax_env(num_vehicles: int, num_rsus: int, worlds: int, steps: int, repeats: int) -> dict:
    """`steps` steps of a VecEnv from a reset state (auto-resets inside: episodes of 100 slots end in it),
    fixed random actions per world; compiled first, one warm-up run, median of `repeats` runs."""
    env = vmjax.make(ENV_ID, **env_kwargs(num_vehicles, num_rsus))
    reset, run = make_env_rollout(env, worlds, steps)
    key = jax.random.key(0)
    reset_exe, reset_compile_s, reset_runs = compile_and_time(reset, (key,), repeats)
    state, actions = reset_exe(key)
    run_exe, compile_s, runs = compile_and_time(run, (state, actions, jax.random.key(1)), repeats)
    memory = compiled_memory(run_exe, worlds)
    del state, actions, run_exe, reset_exe
    run_s = median(runs)
    env_steps = worlds * steps / run_s
    return {
        "worlds": worlds,
        "num_vehicles": num_vehicles,
        "num_rsus": num_rsus,
        "steps": steps,
        "compile_s": compile_s,
        "run_s": run_s,
        "runs_s": runs,
        "repeats": repeats,
        "step_s": run_s / steps,
        "world_step_s": run_s / (steps * worlds),
        "env_steps_per_s": env_steps,
        "agent_steps_per_s": env_steps * num_vehicles,
        "reset_compile_s": reset_compile_s,
        "initial_reset_s": median(reset_runs),
        "memory": memory,
        "peak_bytes_per_world": None if memory is None else memory["per_world_bytes"],
    }


def measure_numpy_batched(
    worlds: int,
    repeats: int,
    episode_max_worlds: int,
    split_steps: int,
    num_vehicles: int = BENCH_VEHICLES,
    num_rsus: int = BENCH_RSUS,
) -> dict:
    """The batched NumPy reference with fixed random actions per world.

    worlds <= episode_max_worlds ("episodes"): each timed run is one whole episode of `max_steps` steps from
    a reset, the last step auto-resetting every world, so the time includes one reset per `max_steps` steps.
    Otherwise ("split"): each run times `env.reset()` of all worlds (what the auto-reset of a step does when
    every world ends, as they all do together) and `split_steps` (< max_steps) steps that cross no episode
    end; the time of one steady-state step is (max_steps x step + reset) / max_steps. One warm-up run
    excluded, medians of `repeats` runs.
    """
    env = BatchedAvatarPremigrationNumpy(worlds, seed=0, **env_kwargs(num_vehicles, num_rsus))
    max_steps = env.config.max_steps
    env.reset()
    actions = env.sample_action()
    row: dict[str, Any] = {"worlds": worlds, "repeats": repeats}
    if worlds <= episode_max_worlds:
        runs = []
        for r in range(repeats + 1):
            env.reset()
            start = time.perf_counter()
            for _ in range(max_steps):
                _, _, _, truncated, _ = env.step(actions)
            elapsed = time.perf_counter() - start
            assert truncated.all(), "the timed episode must end (and auto-reset) in its last step"
            if r:  # the first run is the warm-up
                runs.append(elapsed)
        step_s = median(runs) / max_steps
        row.update(method="episodes", timed_steps=max_steps, runs_s=runs, step_s=step_s)
    else:
        steps = max(1, min(split_steps, max_steps - 1))
        step_runs, reset_runs = [], []
        for r in range(repeats + 1):
            start = time.perf_counter()
            env.reset()
            reset_s = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(steps):
                _, _, _, truncated, _ = env.step(actions)
            elapsed = time.perf_counter() - start
            assert not truncated.any()
            if r:
                reset_runs.append(reset_s)
                step_runs.append(elapsed / steps)
        plain_step_s, reset_s = median(step_runs), median(reset_runs)
        step_s = (max_steps * plain_step_s + reset_s) / max_steps
        row.update(
            method="split",
            timed_steps=steps,
            plain_step_s=plain_step_s,
            reset_s=reset_s,
            step_runs_s=step_runs,
            reset_runs_s=reset_runs,
            step_s=step_s,
        )
    env_steps = worlds / step_s
    row.update(env_steps_per_s=env_steps, agent_steps_per_s=env_steps * num_vehicles)
    del env
    row["peak_bytes_per_world"] = numpy_batched_peak_bytes(worlds, num_vehicles, num_rsus) / worlds
    return row


def numpy_batched_peak_bytes(worlds: int, num_vehicles: int, num_rsus: int) -> int:
    """tracemalloc peak while building B batched worlds, resetting them and taking a step that ends every
    episode (so the auto-reset runs inside it)."""

    def work():
        env = BatchedAvatarPremigrationNumpy(worlds, seed=1, **env_kwargs(num_vehicles, num_rsus))
        env.reset()
        actions = env.sample_action()
        env.step(actions)
        env._t[:] = env.config.max_steps - 1  # the next step ends every world's episode: auto-reset inside
        _, _, _, truncated, _ = env.step(actions)
        assert truncated.all()

    return traced_peak_bytes(work)


def measure_numpy_per_world(
    worlds: int, episodes: int, repeats: int, num_vehicles: int = BENCH_VEHICLES, num_rsus: int = BENCH_RSUS
) -> dict:
    """`worlds` AvatarPremigrationNumpy envs stepped one after another (as a Python list, the way the PyTorch
    trainer and gymnasium users drive them), each reset when its episode ends; `episodes` whole episodes per
    world in a timed run, fixed random actions per world, one warm-up run excluded, median of `repeats`."""
    seeds = np.random.SeedSequence(0).spawn(worlds)
    envs = [AvatarPremigrationNumpy(seed=s, **env_kwargs(num_vehicles, num_rsus)) for s in seeds]
    max_steps = envs[0].config.max_steps
    for env in envs:
        env.reset()
    actions = [env.sample_action() for env in envs]
    runs, resets = [], 0
    for r in range(repeats + 1):
        for env in envs:
            env.reset()
        resets = 0
        start = time.perf_counter()
        for _ in range(episodes * max_steps):
            for env, action in zip(envs, actions):
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset()
                    resets += 1
        elapsed = time.perf_counter() - start
        if r:
            runs.append(elapsed)
    assert resets == worlds * episodes
    steps = worlds * episodes * max_steps
    env_steps = steps / median(runs)
    return {
        "sample_worlds": worlds,
        "episodes": episodes,
        "timed_steps": steps,
        "runs_s": runs,
        "repeats": repeats,
        "env_steps_per_s": env_steps,
        "agent_steps_per_s": env_steps * num_vehicles,
        "world_step_s": 1.0 / env_steps,
    }


def numpy_per_world_peak_bytes(num_vehicles: int = BENCH_VEHICLES, num_rsus: int = BENCH_RSUS) -> int:
    """tracemalloc peak while building one world, resetting it, stepping it and resetting it again."""

    def work():
        env = AvatarPremigrationNumpy(seed=1, **env_kwargs(num_vehicles, num_rsus))
        env.reset()
        env.step(env.sample_action())
        env.reset()

    return traced_peak_bytes(work)


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or not denominator:
        return None
    return numerator / denominator


def bench_env(opts, cache: dict) -> dict:
    """Part 1: the three implementations at each world count (+ vmjax alone at the extra world counts)."""
    n, m = BENCH_VEHICLES, BENCH_RSUS
    per_world_measured: dict[int, dict] = {}
    per_world_bytes = numpy_per_world_peak_bytes(n, m)
    rows = []
    for worlds in opts.worlds:
        vm = measure_vmjax_env(n, m, worlds, opts.steps, opts.repeats)
        cache[(n, m, worlds)] = vm
        batched = measure_numpy_batched(worlds, opts.repeats, opts.numpy_episode_max_worlds, opts.numpy_steps, n, m)
        sample = min(worlds, opts.per_world_sample)
        if sample not in per_world_measured:
            per_world_measured[sample] = measure_numpy_per_world(sample, opts.per_world_episodes, opts.repeats, n, m)
        pw = dict(per_world_measured[sample])
        pw["worlds"] = worlds
        pw["measured"] = sample == worlds
        pw["basis"] = (
            f"measured: {worlds} world(s) stepped one after another"
            if sample == worlds
            else f"extrapolated from {sample} world(s) stepped one after another: the reference steps its worlds "
            f"one after another, so {worlds} worlds take {worlds // sample}x as long and env steps/s is the same"
        )
        pw["peak_bytes_per_world"] = per_world_bytes
        ratios = {
            "vmjax_over_numpy_batched": _ratio(vm["env_steps_per_s"], batched["env_steps_per_s"]),
            "vmjax_over_numpy_per_world": _ratio(vm["env_steps_per_s"], pw["env_steps_per_s"]),
            "numpy_batched_over_numpy_per_world": _ratio(batched["env_steps_per_s"], pw["env_steps_per_s"]),
        }
        rows.append({"worlds": worlds, "vmjax": vm, "numpy_batched": batched, "numpy_per_world": pw, "ratios": ratios})
        log(
            f"  env {worlds:>7} worlds: vmjax {vm['env_steps_per_s']:>13,.0f}  NumPy batched "
            f"{batched['env_steps_per_s']:>11,.0f} ({batched['method']})  NumPy per-world "
            f"{pw['env_steps_per_s']:>9,.0f}{'' if pw['measured'] else ' (extrapolated)'} env steps/s; "
            f"vmjax compile {vm['compile_s']:.1f} s"
        )
    extra = []
    for worlds in opts.extra_worlds:
        if worlds in opts.worlds:
            continue
        try:
            vm = measure_vmjax_env(n, m, worlds, opts.steps, opts.repeats)
        except Exception as error:  # noqa: BLE001  (out of device memory at the largest counts)
            extra.append({"worlds": worlds, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"})
            log(f"  env {worlds:>7} worlds: vmjax failed: {extra[-1]['error']}")
            continue
        cache[(n, m, worlds)] = vm
        extra.append({"worlds": worlds, "vmjax": vm})
        log(
            f"  env {worlds:>7} worlds: vmjax {vm['env_steps_per_s']:>13,.0f} env steps/s (vmjax only); "
            f"compile {vm['compile_s']:.1f} s"
        )
    return {
        "num_vehicles": n,
        "num_rsus": m,
        "workload_forecast": FORECAST,
        "max_steps": 100,
        "rows": rows,
        "vmjax_only_rows": extra,
        "method": {
            "vmjax": f"compiled rollout of {opts.steps} VecEnv steps from a reset state, auto-resets inside (one "
            "per 100 steps per world), fixed random actions per world; compile time and the initial "
            f"batched reset apart; one warm-up run excluded, median of {opts.repeats} runs with "
            "block_until_ready",
            "numpy_batched": f"worlds <= {opts.numpy_episode_max_worlds}: 'episodes', one whole 100-step episode "
            "per timed run with the auto-reset of every world in its last step; more worlds: "
            f"'split', reset() of all worlds and {min(opts.numpy_steps, 99)} steps without an "
            "episode end timed apart, combined as (100 x step + reset) / 100; one warm-up run "
            f"excluded, medians of {opts.repeats} runs",
            "numpy_per_world": f"a Python list of min(worlds, {opts.per_world_sample}) one-world envs stepped one "
            f"after another for {opts.per_world_episodes} episode(s) each, reset when the "
            "episode ends, in the timing; larger world counts take the measured steps/s "
            "(extrapolated: the worlds are stepped one after another); one warm-up run "
            f"excluded, median of {opts.repeats} runs",
            "memory": "vmjax: memory_analysis() of the compiled rollout (arguments + outputs + temporaries - "
            "aliased) / worlds; batched NumPy: tracemalloc peak while building the worlds, resetting "
            "them, a step and a step through every episode end (auto-reset), / worlds; one world at a "
            "time: tracemalloc peak of one world built, reset, stepped and reset again",
        },
    }


# ====================================================================== training throughput
def train_configs(worlds: int, opts):
    """(env config, HybridMappoConfig) of a `vmjax train` run (its command-line defaults) with the persistence
    forecast, RSUs by index and `worlds` parallel worlds."""
    # The NumPy reference under the PyTorch trainer implements rsu_order="index" only (the library default; the
    # command line may name RSUs by distance): both trainers step the same env, the benchmark's.
    overrides: dict[str, Any] = {"env.workload_forecast": FORECAST, "env.rsu_order": "index", "agent.num_envs": worlds}
    for flag, value in (
        ("num_steps", opts.train_steps),
        ("update_epochs", opts.train_epochs),
        ("num_minibatches", opts.train_minibatches),
    ):
        if value is not None:
            overrides[f"agent.{flag}"] = value
    configs = runner.build_configs(overrides, HybridMappoConfig)
    return configs["env"], configs["agent"]


def measure_vmjax_train(env_config, agent_config, chunk: int, repeats: int) -> dict:
    """A jitted chunk of `chunk` training iterations (rollout, GAE, PPO epochs), AOT-compiled (compile time
    apart), one warm-up chunk excluded, median over `repeats` chunks."""
    env = vmjax.make(ENV_ID, **dataclasses.asdict(env_config))
    return time_trainer(make_trainer(env, agent_config), chunk, repeats, agent_config.env_steps_per_iteration)


def vmjax_train_breakdown(env_config, agent_config, full: dict, chunk: int, repeats: int) -> dict:
    """Where a vmjax iteration's time goes, measured: the same iteration with 1 PPO epoch instead of E gives
    t(1) = rollout + GAE + 1 epoch and t(E) = rollout + GAE + E epochs, so one epoch is
    (t(E) - t(1)) / (E - 1) and the rollout with GAE is t(1) minus one epoch."""
    epochs = agent_config.update_epochs
    one = measure_vmjax_train(env_config, dataclasses.replace(agent_config, update_epochs=1), chunk, repeats)
    epoch_s = max(full["iteration_s"] - one["iteration_s"], 0.0) / (epochs - 1)
    rollout_gae_s = max(one["iteration_s"] - epoch_s, 0.0)
    return {
        "iteration_s_one_epoch": one["iteration_s"],
        "epoch_s": epoch_s,
        "rollout_gae_s": rollout_gae_s,
        "update_s": epochs * epoch_s,
        "update_share": epochs * epoch_s / full["iteration_s"],
        "method": "t(1 epoch) and t(E epochs) of the same jitted iteration; epoch = (t(E) - t(1)) / (E - 1)",
    }


def torch_config_from(agent_config):
    """The PyTorch trainer's config with the same hyper-parameters; raises if the vmjax config uses an option
    the PyTorch trainer does not implement."""
    from bench.reference.torch_hybrid_mappo import TorchHybridMappoConfig  # imports torch: an optional extra

    expected = {
        "activation": "relu",
        "layer_norm": False,
        "alpha_mean": "sigmoid",
        "share_actor_params": False,
        "alpha_per_target": False,
        "ratio": "separate",
        "anneal_lr": False,
    }
    for name, value in expected.items():
        if getattr(agent_config, name) != value:
            raise ValueError(
                f"the PyTorch trainer implements {name}={value!r} only, got {getattr(agent_config, name)!r}"
            )
    if agent_config.continuous_actor_lr not in (0.0, agent_config.actor_lr):
        raise ValueError("the PyTorch trainer has one actor learning rate")
    shared = {f.name for f in dataclasses.fields(TorchHybridMappoConfig)} - {"num_iterations"}
    return TorchHybridMappoConfig(num_iterations=1, **{name: getattr(agent_config, name) for name in shared})


def measure_torch_train(env_config, agent_config, iterations: int, threads: int) -> dict:
    """`iterations` iterations of the PyTorch trainer over per-world NumPy envs; the first is excluded as a
    warm-up when there are more than one; median per-iteration wall time."""
    from bench.reference import torch_hybrid_mappo as th  # imports torch: an optional extra

    config = torch_config_from(agent_config)
    reference_fields = {f.name for f in dataclasses.fields(ReferenceConfig)}
    env_cfg = {k: v for k, v in dataclasses.asdict(env_config).items() if k in reference_fields}
    result = th.train(
        config.num_envs, config.num_steps, iterations, seed=0, config=config, env_config=env_cfg, num_threads=threads
    )
    warmup = 1 if iterations > 1 else 0
    timed = result["iteration_s"][warmup:]
    iteration_s = median(timed)
    steps = config.num_envs * config.num_steps
    num_agents = env_config.num_vehicles
    return {
        "iterations": iterations,
        "warmup_iterations": warmup,
        "iteration_runs_s": result["iteration_s"],
        "iteration_s": iteration_s,
        "rollout_s": median(result["rollout_s"][warmup:]),
        "update_s": median(result["update_s"][warmup:]),
        "env_steps_per_iteration": steps,
        "env_steps_per_s": steps / iteration_s,
        "agent_steps_per_s": steps * num_agents / iteration_s,
        "torch_version": result["torch_version"],
        "torch_threads": result["torch_threads"],
    }


def torch_available() -> str | None:
    """None if PyTorch imports, else why not."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return f"PyTorch is not installed (optional extra: pip install -e '.[bench]'): {error}"
    return None


def bench_train(opts) -> dict:
    """Part 2: Hybrid-MAPPO training env steps/s, vmjax against the PyTorch trainer."""
    torch_missing = "skipped (--skip-torch)" if opts.skip_torch else torch_available()
    if torch_missing:
        log(f"  torch: {torch_missing}")
    rows = []
    for worlds in opts.train_worlds:
        env_config, agent_config = train_configs(worlds, opts)
        large = worlds >= LARGE_TRAIN_WORLDS
        chunk = 1 if large else opts.train_chunk
        repeats = opts.train_large_repeats if large else opts.train_repeats
        vm = measure_vmjax_train(env_config, agent_config, chunk, repeats)
        if torch_missing:
            torch_row: dict[str, Any] = {"skipped": torch_missing}
        elif worlds > opts.torch_max_worlds:
            torch_row = {
                "skipped": f"not run above --torch-max-worlds {opts.torch_max_worlds} (an iteration of the "
                "PyTorch trainer steps every world one after another in Python)"
            }
        else:
            iterations = opts.torch_large_iterations if large else opts.torch_iterations
            torch_row = measure_torch_train(env_config, agent_config, iterations, opts.torch_threads)
        ratio = _ratio(vm["env_steps_per_s"], torch_row.get("env_steps_per_s"))
        row = {"worlds": worlds, "vmjax": vm, "torch": torch_row, "ratio_vmjax_over_torch": ratio}
        if worlds == opts.train_worlds[0] and agent_config.update_epochs > 1:
            row["vmjax_breakdown"] = vmjax_train_breakdown(env_config, agent_config, vm, chunk, repeats)
            b = row["vmjax_breakdown"]
            log(
                f"  train {worlds:>6} worlds: vmjax rollout + GAE {b['rollout_gae_s']:.3f} s, "
                f"{agent_config.update_epochs} PPO epochs {b['update_s']:.3f} s per iteration"
            )
        rows.append(row)
        torch_text = (
            f"torch {torch_row['env_steps_per_s']:>9,.0f} ({torch_row['torch_threads']} thread(s)), ratio {ratio:.1f}x"
            if ratio is not None
            else f"torch {torch_row['skipped']}"
        )
        log(
            f"  train {worlds:>6} worlds: vmjax {vm['env_steps_per_s']:>9,.0f} env steps/s "
            f"({vm['iteration_s']:.2f} s/iteration, compile {vm['compile_s']:.1f} s); {torch_text}"
        )
    env_config, agent_config = train_configs(opts.train_worlds[0], opts)
    return {
        "algorithm": "hybrid_mappo",
        "env_config": dataclasses.asdict(env_config),
        "agent_config": {k: v for k, v in dataclasses.asdict(agent_config).items() if k != "num_envs"},
        "rows": rows,
        "method": {
            "vmjax": f"jitted chunk of iterations (trainer.run, as `vmjax train` runs them; {opts.train_chunk} "
            f"per chunk below {LARGE_TRAIN_WORLDS} worlds, else 1), AOT-compiled (compile time apart), "
            f"one warm-up chunk excluded, median of {opts.train_repeats} chunks ({opts.train_large_repeats} "
            f"from {LARGE_TRAIN_WORLDS} worlds) with block_until_ready, divided by the chunk length",
            "torch": f"bench/reference/torch_hybrid_mappo.py with the same hyper-parameters on per-world NumPy "
            f"envs, {opts.torch_threads} intra-op thread(s); {opts.torch_iterations} iterations "
            f"({opts.torch_large_iterations} from {LARGE_TRAIN_WORLDS} worlds), the first excluded as "
            "warm-up when more than one, median iteration wall time",
            "env_steps": "worlds x rollout steps per iteration / seconds per iteration (rollout + GAE + update)",
        },
    }


# ====================================================================== scaling
def bench_scaling(opts, cache: dict) -> dict:
    """Part 3: vmjax step time against N (at M = 10) and M (at N = 20) at a fixed world count."""
    worlds = opts.scale_worlds

    def row(n, m):
        cached = (n, m, worlds) in cache
        result = cache[(n, m, worlds)] if cached else measure_vmjax_env(n, m, worlds, opts.steps, opts.repeats)
        cache[(n, m, worlds)] = result
        out = {
            k: result[k]
            for k in (
                "num_vehicles",
                "num_rsus",
                "worlds",
                "steps",
                "compile_s",
                "run_s",
                "step_s",
                "world_step_s",
                "env_steps_per_s",
                "agent_steps_per_s",
                "peak_bytes_per_world",
            )
        }
        out["from_env_table"] = cached and n == BENCH_VEHICLES and m == BENCH_RSUS
        log(
            f"  scaling N={n:>3} M={m:>3} x {worlds} worlds: {result['step_s'] * 1e3:8.3f} ms per step, "
            f"{result['world_step_s'] * 1e9:9.1f} ns per world-step"
        )
        return out

    vehicles = [row(n, BENCH_RSUS) for n in sorted(set(opts.scale_vehicles) | {BENCH_VEHICLES})]
    rsus = [row(BENCH_VEHICLES, m) for m in sorted(set(opts.scale_rsus) | {BENCH_RSUS})]
    return {
        "worlds": worlds,
        "vehicles": vehicles,
        "rsus": rsus,
        "method": f"vmjax env rollout as in the env table ({opts.steps} steps, {worlds} worlds); step_s is one "
        "VecEnv step of all worlds, world_step_s = step_s / worlds; the N=20, M=10 row is the env "
        "table's measurement",
    }


# ====================================================================== TwinRouting-v0
def bench_twin_routing(opts) -> dict:
    """Part 6: TwinRouting-v0 env throughput (bench/twin_routing_throughput.py), both forecasts at
    `--twin-worlds`, and the world-step ratio to AvatarPremigration-v0 at `--twin-ratio-worlds`; its steps come
    from that module's full or --quick settings, the repeats from `--repeats`."""
    preset = twin.QUICK if opts.quick else twin.FULL
    return twin.bench_twin_routing(
        opts.twin_worlds,
        twin.FORECASTS,
        preset["steps"],
        preset["split_steps"],
        opts.repeats,
        opts.twin_max_rollout_s,
        preset["long_run_s"],
        preset["long_repeats"],
        ratio_worlds=opts.twin_ratio_worlds,
        ratio_steps=preset["ratio_steps"],
        reference_steps=preset["reference_steps"],
    )


# ====================================================================== targets, tables, plot
def evaluate_targets(result: dict) -> list[dict]:
    backend = result["machine"]["backend"]
    targets = []
    env = result.get("env")
    row = None if env is None else next((r for r in env["rows"] if r["worlds"] == TARGET_WORLDS), None)
    for key, name, label in (
        ("numpy_per_world", "env_vs_numpy_per_world", "per-world NumPy"),
        ("numpy_batched", "env_vs_numpy_batched", "batched NumPy"),
    ):
        measured = None if row is None else row["ratios"][f"vmjax_over_{key}"]
        targets.append(
            {
                "name": name,
                "description": f"vmjax env steps/s at {TARGET_WORLDS} worlds / {label}",
                "required": TARGETS[name],
                "measured": measured,
                "applies_to": "cpu",
                "met": None if measured is None else measured >= TARGETS[name],
                "note": "" if row is not None else f"{TARGET_WORLDS} worlds not in this run",
            }
        )
    twin_section = result.get("twin_routing")
    ratio_target = None if twin_section is None else twin_section.get("ratio_target")
    if ratio_target is not None:
        targets.append(
            {
                "name": "twin_routing_world_step_vs_avatar",
                "description": ratio_target["description"],
                "required": ratio_target["required_max"],
                "measured": ratio_target["measured"],
                "applies_to": "any",
                "met": ratio_target["met"],
                "note": ""
                if ratio_target["measured"] is not None
                else f"{ratio_target['worlds']} worlds not in this run",
            }
        )
    train = result.get("train")
    for train_row in [] if train is None else train["rows"]:
        measured = train_row["ratio_vmjax_over_torch"]
        targets.append(
            {
                "name": "train_vs_torch",
                "description": f"training env steps/s at {train_row['worlds']} worlds, vmjax / PyTorch",
                "required": TARGETS["train_vs_torch"],
                "measured": measured,
                "applies_to": "cpu",
                "met": None if measured is None else measured >= TARGETS["train_vs_torch"],
                "note": "" if measured is not None else train_row["torch"].get("skipped", ""),
            }
        )
    if env is not None:
        candidates = [r["vmjax"] for r in env["rows"] + env["vmjax_only_rows"] if "vmjax" in r]
        best = max(candidates, key=lambda r: r["env_steps_per_s"], default=None)
        on_gpu = backend not in ("cpu",)
        targets.append(
            {
                "name": "gpu_env_steps_per_s",
                "description": "vmjax env steps/s at the best world count "
                f"(N={BENCH_VEHICLES}, M={BENCH_RSUS}) on an H100/H200",
                "required": TARGETS["gpu_env_steps_per_s"],
                "measured": None if best is None else best["env_steps_per_s"],
                "best_worlds": None if best is None else best["worlds"],
                "applies_to": "gpu",
                "met": (best["env_steps_per_s"] >= TARGETS["gpu_env_steps_per_s"]) if (on_gpu and best) else None,
                "note": "" if on_gpu else "not applicable: no accelerator in this run",
            }
        )
    return targets


def render_tables(result: dict) -> str:
    """The run as markdown tables (printed at the end of the run)."""
    m = result["machine"]
    out = [
        f"Machine: {m['device']} ({m['backend']}), CPU {m['cpu']} x {m['cpu_cores']} cores; jax {m['jax']}"
        + (f"; torch {m['torch']}" if m.get("torch") else "")
    ]
    env = result.get("env")
    if env is not None:
        out.append(
            f"\n### Env throughput (N={env['num_vehicles']}, M={env['num_rsus']}, {env['workload_forecast']} "
            "forecast, episodes of 100 slots with auto-reset)\n"
        )
        rows = []
        for r in env["rows"]:
            b, p = r["numpy_batched"], r["numpy_per_world"]
            rows.append(
                [
                    str(r["worlds"]),
                    format_rate(r["vmjax"]["env_steps_per_s"]),
                    f"{r['vmjax']['compile_s']:.1f}",
                    format_rate(b["env_steps_per_s"]) + ("" if b["method"] == "episodes" else " †"),
                    format_rate(p["env_steps_per_s"]) + ("" if p["measured"] else " *"),
                    format_times(r["ratios"]["vmjax_over_numpy_batched"]),
                    format_times(r["ratios"]["vmjax_over_numpy_per_world"]),
                ]
            )
        for r in env["vmjax_only_rows"]:
            rate = format_rate(r["vmjax"]["env_steps_per_s"]) if "vmjax" in r else f"failed ({r['error'][:40]})"
            compile_s = f"{r['vmjax']['compile_s']:.1f}" if "vmjax" in r else "–"
            rows.append([str(r["worlds"]), rate, compile_s, "not run", "not run", "–", "–"])
        out.append(
            markdown_table(
                [
                    "worlds",
                    "vmjax env steps/s",
                    "vmjax compile s",
                    "NumPy batched",
                    "NumPy per-world",
                    "vmjax / batched",
                    "vmjax / per-world",
                ],
                rows,
            )
        )
        out.append(
            "\n† batched NumPy: reset and steps timed apart, combined as (100 x step + reset) / 100; "
            "* per-world NumPy: extrapolated from the measured worlds (stepped one after another)\n"
        )
        rows = [
            [
                str(r["worlds"]),
                format_rate(r["vmjax"]["agent_steps_per_s"]),
                format_rate(r["numpy_batched"]["agent_steps_per_s"]),
                format_rate(r["numpy_per_world"]["agent_steps_per_s"]),
            ]
            for r in env["rows"]
        ]
        out.append(
            markdown_table(
                ["worlds", "vmjax agent steps/s", "NumPy batched agent steps/s", "NumPy per-world agent steps/s"], rows
            )
        )
        out.append("\n### Peak memory per world\n")
        rows = [
            [
                str(r["worlds"]),
                format_bytes(r["vmjax"]["peak_bytes_per_world"]),
                format_bytes(r["numpy_batched"]["peak_bytes_per_world"]),
                format_bytes(r["numpy_per_world"]["peak_bytes_per_world"]),
            ]
            for r in env["rows"]
        ]
        rows += [
            [str(r["worlds"]), format_bytes(r["vmjax"]["peak_bytes_per_world"]), "not run", "not run"]
            for r in env["vmjax_only_rows"]
            if "vmjax" in r
        ]
        out.append(
            markdown_table(
                [
                    "worlds",
                    "vmjax (XLA memory_analysis)",
                    "NumPy batched (tracemalloc)",
                    "NumPy per-world (tracemalloc)",
                ],
                rows,
            )
        )
    train = result.get("train")
    if train is not None:
        e, a = train["env_config"], train["agent_config"]
        out.append(
            f"\n### Hybrid-MAPPO training (N={e['num_vehicles']}, M={e['num_rsus']}, {e['workload_forecast']} "
            f"forecast, {a['num_steps']} steps, {a['update_epochs']} epoch(s) x {a['num_minibatches']} "
            "minibatches)\n"
        )
        rows = []
        for r in train["rows"]:
            v, t = r["vmjax"], r["torch"]
            torch_cells = (
                [format_rate(t["env_steps_per_s"]), f"{t['iteration_s']:.2f}", str(t["torch_threads"])]
                if "env_steps_per_s" in t
                else ["not run", "–", "–"]
            )
            rows.append(
                [
                    str(r["worlds"]),
                    format_rate(v["env_steps_per_s"]),
                    f"{v['iteration_s']:.2f}",
                    f"{v['compile_s']:.1f}",
                    *torch_cells,
                    format_times(r["ratio_vmjax_over_torch"]),
                ]
            )
        out.append(
            markdown_table(
                [
                    "worlds",
                    "vmjax env steps/s",
                    "vmjax s/iteration",
                    "vmjax compile s",
                    "torch env steps/s",
                    "torch s/iteration",
                    "torch threads",
                    "vmjax / torch",
                ],
                rows,
            )
        )
        for r in train["rows"]:
            if "skipped" in r["torch"]:
                out.append(f"\ntorch at {r['worlds']} worlds: {r['torch']['skipped']}")
        for r in train["rows"]:
            if "vmjax_breakdown" in r:
                b, t = r["vmjax_breakdown"], r["torch"]
                out.append(
                    f"\nWhere an iteration's time goes at {r['worlds']} worlds (seconds; vmjax: {b['method']}; "
                    "torch: timed around its rollout and update loops)\n"
                )
                torch_rollout = t.get("rollout_s")
                torch_update = t.get("update_s")
                out.append(
                    markdown_table(
                        ["part", "vmjax s", "torch s", "vmjax / torch speed"],
                        [
                            [
                                "rollout (+ GAE)",
                                f"{b['rollout_gae_s']:.3f}",
                                "–" if torch_rollout is None else f"{torch_rollout:.3f}",
                                format_times(_ratio(torch_rollout, b["rollout_gae_s"])),
                            ],
                            [
                                f"{a['update_epochs']} PPO epochs",
                                f"{b['update_s']:.3f}",
                                "–" if torch_update is None else f"{torch_update:.3f}",
                                format_times(_ratio(torch_update, b["update_s"])),
                            ],
                        ],
                    )
                )
    scaling = result.get("scaling")
    if scaling is not None:
        for axis, label in (("vehicles", "N vehicles (M = 10)"), ("rsus", "M RSUs (N = 20)")):
            out.append(f"\n### vmjax scaling with {label}, {scaling['worlds']} worlds\n")
            rows = [
                [
                    str(r["num_vehicles"] if axis == "vehicles" else r["num_rsus"]),
                    f"{r['step_s'] * 1e3:,.3f}",
                    f"{r['world_step_s'] * 1e9:,.1f}",
                    format_rate(r["env_steps_per_s"]),
                    format_rate(r["agent_steps_per_s"]),
                    format_bytes(r["peak_bytes_per_world"]),
                ]
                for r in scaling[axis]
            ]
            out.append(
                markdown_table(
                    [
                        label.split(" (")[0],
                        "ms per step (all worlds)",
                        "ns per world-step",
                        "env steps/s",
                        "agent steps/s",
                        "memory per world",
                    ],
                    rows,
                )
            )
    if result.get("twin_routing") is not None:
        out.append("\n" + twin.render_table(result["twin_routing"]))
    out.append("\n### Targets\n")
    rows = []
    for t in result["targets"]:
        measured = format_rate(t["measured"]) if t["name"] == "gpu_env_steps_per_s" else format_times(t["measured"])
        required = format_rate(t["required"]) if t["name"] == "gpu_env_steps_per_s" else f">= {t['required']:g}x"
        if t["name"] == "twin_routing_world_step_vs_avatar":
            required = f"<= {t['required']:g}x"
        met = {True: "yes", False: "NO", None: "n/a"}[t["met"]]
        rows.append([t["description"], required, measured, met + (f" ({t['note']})" if t["note"] else "")])
    out.append(markdown_table(["target", "required", "measured", "met"], rows))
    return "\n".join(out)


def plot_env(result: dict, path) -> None:
    """Env steps/s against worlds, log-log, one line per implementation (hollow markers: extrapolated)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib is optional (no plot without it)
    from matplotlib.figure import Figure

    env = result["env"]
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    vm_rows = sorted(
        [r for r in env["rows"]] + [r for r in env["vmjax_only_rows"] if "vmjax" in r], key=lambda r: r["worlds"]
    )
    ax.plot([r["worlds"] for r in vm_rows], [r["vmjax"]["env_steps_per_s"] for r in vm_rows], "o-", label="vmjax (JAX)")
    rows = env["rows"]
    ax.plot(
        [r["worlds"] for r in rows],
        [r["numpy_batched"]["env_steps_per_s"] for r in rows],
        "s-",
        label="NumPy, batched worlds",
    )
    ax.plot(
        [r["worlds"] for r in rows],
        [r["numpy_per_world"]["env_steps_per_s"] for r in rows],
        "^--",
        color="C2",
        label="NumPy, one world at a time",
    )
    extrapolated = [r for r in rows if not r["numpy_per_world"]["measured"]]
    if extrapolated:
        ax.plot(
            [r["worlds"] for r in extrapolated],
            [r["numpy_per_world"]["env_steps_per_s"] for r in extrapolated],
            "^",
            color="C2",
            markerfacecolor="white",
            label="  extrapolated (hollow)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [r["worlds"] for r in vm_rows]
    ax.set_xticks(ticks, [f"{w:,}" for w in ticks])
    ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    ax.set_xlabel("parallel worlds")
    ax.set_ylabel("env steps / s")
    m = result["machine"]
    where = m["device"] if m["backend"] != "cpu" else f"{m['cpu']}, {m['cpu_cores']} cores"
    ax.set_title(f"AvatarPremigration-v0, N={env['num_vehicles']}, M={env['num_rsus']}\n{where}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


# ====================================================================== entry point
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Unset options take the full run's values (or --quick's).",
    )
    ints = {"type": int, "default": None, "metavar": "N"}
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (and the test)")
    parser.add_argument(
        "--worlds", nargs="+", help=f"world counts for all three implementations {DEFAULT_WORLDS}", **ints
    )
    parser.add_argument(
        "--extra-worlds",
        nargs="*",
        help=f"world counts for vmjax alone (default: {GPU_EXTRA_WORLDS} on an accelerator, none on a CPU)",
        **ints,
    )
    parser.add_argument("--repeats", help="timed repeats, median reported (5)", **ints)
    parser.add_argument("--steps", help="steps per vmjax rollout, auto-resets inside (200)", **ints)
    parser.add_argument(
        "--numpy-episode-max-worlds",
        help="batched NumPy: time whole episodes up to this many worlds, reset and steps apart above (1024)",
        **ints,
    )
    parser.add_argument("--numpy-steps", help="batched NumPy 'split' method: timed steps per run (10)", **ints)
    parser.add_argument("--per-world-sample", help="per-world NumPy: worlds actually stepped (4)", **ints)
    parser.add_argument("--per-world-episodes", help="per-world NumPy: episodes per world per run (2)", **ints)
    parser.add_argument("--train-worlds", nargs="+", help="worlds of the training comparison (20 1024)", **ints)
    parser.add_argument("--train-steps", help="rollout steps per iteration (CLI default 100)", **ints)
    parser.add_argument("--train-epochs", help="PPO epochs (CLI default 10)", **ints)
    parser.add_argument("--train-minibatches", help="minibatches per epoch (CLI default 4)", **ints)
    parser.add_argument(
        "--train-chunk", help=f"vmjax iterations per timed chunk below {LARGE_TRAIN_WORLDS} worlds (2)", **ints
    )
    parser.add_argument("--train-repeats", help=f"vmjax timed chunks below {LARGE_TRAIN_WORLDS} worlds (3)", **ints)
    parser.add_argument(
        "--train-large-repeats", help=f"vmjax timed chunks from {LARGE_TRAIN_WORLDS} worlds (1)", **ints
    )
    parser.add_argument("--torch-iterations", help="PyTorch iterations, first excluded as warm-up (3)", **ints)
    parser.add_argument(
        "--torch-large-iterations", help=f"PyTorch iterations from {LARGE_TRAIN_WORLDS} worlds (1)", **ints
    )
    parser.add_argument("--torch-max-worlds", help="largest world count the PyTorch trainer is run at (1024)", **ints)
    parser.add_argument(
        "--torch-threads", help="torch intra-op threads (1: torch's default oversubscribes busy cores)", **ints
    )
    parser.add_argument("--skip-torch", action="store_true", help="do not run the PyTorch trainer")
    parser.add_argument("--skip-train", action="store_true", help="do not run the training comparison")
    parser.add_argument("--skip-scaling", action="store_true", help="do not run the N / M scaling sweep")
    parser.add_argument("--scale-worlds", help="worlds of the scaling sweep (1024)", **ints)
    parser.add_argument("--scale-vehicles", nargs="+", help="N values at M = 10 (10 50 200)", **ints)
    parser.add_argument("--scale-rsus", nargs="+", help="M values at N = 20 (5 20 80)", **ints)
    parser.add_argument("--skip-twin-routing", action="store_true", help="do not run the TwinRouting-v0 env part")
    parser.add_argument("--twin-worlds", nargs="+", help="TwinRouting-v0 world counts (1 64 1024 4096)", **ints)
    parser.add_argument(
        "--twin-ratio-worlds",
        nargs="*",
        help="world counts of TwinRouting-v0's world-step ratio to AvatarPremigration-v0 (1024; none: skip)",
        **ints,
    )
    parser.add_argument(
        "--twin-max-rollout-s",
        type=float,
        default=None,
        metavar="S",
        help="TwinRouting-v0: longest estimated rollout run, else the split method (60)",
    )
    parser.add_argument(
        "--out",
        help="JSON path (default bench/results/bench-<machine>.json, -quick with --quick); "
        "the plot goes next to it (.png)",
    )
    args = parser.parse_args(argv)
    fill_unset(args, QUICK if args.quick else FULL)
    require_positive(
        parser, args, ("worlds", "train_worlds", "scale_vehicles", "scale_rsus", "twin_worlds", "twin_ratio_worlds")
    )
    return args


def run(opts) -> dict:
    """Measure everything `opts` asks for; returns the result dictionary (also written to `opts.out`)."""
    started = time.perf_counter()
    machine = describe_machine()
    if opts.extra_worlds is None:
        opts.extra_worlds = list(GPU_EXTRA_WORLDS) if machine["backend"] != "cpu" else []
    if not opts.skip_torch and torch_available() is None:
        import torch

        machine["torch"] = torch.__version__
    label = machine_label(machine)
    out = result_path("bench", label, opts.out, opts.quick)
    log(
        f"vmjax benchmark on {machine['device']} ({machine['backend']}; CPU {machine['cpu']} x "
        f"{machine['cpu_cores']}); writing {out}"
    )
    result: dict[str, Any] = {
        "benchmark": "vmjax-bench",
        "schema_version": SCHEMA_VERSION,
        "env_id": ENV_ID,
        **run_stamp(machine, label, opts),
        "targets_required": TARGETS,
    }
    cache: dict = {}
    parts = [("env", "env throughput", lambda: bench_env(opts, cache))]
    if not opts.skip_train:
        parts.append(("train", "training throughput", lambda: bench_train(opts)))
    if not opts.skip_scaling:
        parts.append(("scaling", "scaling", lambda: bench_scaling(opts, cache)))
    if not opts.skip_twin_routing:
        parts.append(("twin_routing", "TwinRouting-v0 env throughput", lambda: bench_twin_routing(opts)))
    for name, title, measure_part in parts:
        log(title)
        result[name] = measure_part()
        result["wall_s"] = time.perf_counter() - started
        atomic_write_json(out, result)  # every finished part survives a later failure or a time limit
    result["targets"] = evaluate_targets(result)
    plot_path = out.with_suffix(".png")
    try:
        plot_env(result, plot_path)
        result["plot"] = plot_path.name
    except ImportError as error:  # matplotlib is optional where only the numbers are needed
        result["plot"] = None
        log(f"no plot: {error}")
    atomic_write_json(out, result)
    result["paths"] = {"json": str(out), "plot": str(plot_path) if result["plot"] else None}
    return result


def main(argv=None) -> int:
    opts = parse_args(argv)
    result = run(opts)
    print()
    print(render_tables(result))
    print(f"\nwrote {result['paths']['json']} and {result['paths']['plot']} ({result['wall_s']:.0f} s)")
    return 0
