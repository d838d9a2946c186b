"""TwinSplit-v0 (spec 004, MSRL): vehicle-twin tasks split between the serving RSU and a pre-migration target,
learned by MSRL's split actors (§6; its Local-Edge and Local-Model variants by `--agent.mode`), with vehicles
driving ground-truth taxi trips or EST-TG generated tracks (§4.9, §7.3) from a trace bank kept in the run folder."""

from __future__ import annotations

import dataclasses
import time
from io import BytesIO
from pathlib import Path
from typing import Literal

import numpy as np

from baselines import twin_split as heuristics
from vmjax import mobility
from vmjax.agents import msrl
from vmjax.core import io, validation
from vmjax.core.scene import Links, Scene, Servers, road_segments
from vmjax.envs.twin_split import TwinSplitConfig
from vmjax.scenarios.base import (
    Configs,
    Evaluation,
    Learner,
    Log,
    Scenario,
    cached_artifact,
    config_fingerprint,
    results_table,
)

TrajectorySource = Literal["synthetic", "real", "generated"]


@dataclasses.dataclass(frozen=True)
class TrajectoryConfig:
    """Where TwinSplit-v0's vehicles drive (spec 004 §4.9, §7.3)."""

    source: TrajectorySource = "real"  # "real": chained ground-truth taxi trips ("without generated vehicles") |
    # "generated": the EST-TG bank fitted on them ("with generated vehicles") | "synthetic": the env's road-grid
    # fallback
    bank_seed: int = 0  # seed of the city, the ground-truth taxis and the EST-TG fit (`build_trace_banks`)
    bank_vehicles: int = 512  # tracks in the bank; each world's vehicles are drawn from them
    bank_path: str = ""  # a saved bank (trace_bank.npz of another run) instead of building one

    def __post_init__(self):
        validation.check_literal_fields(self)
        validation.check_int_at_least("TrajectoryConfig", "bank_seed", self.bank_seed, 0)
        validation.check_int_at_least("TrajectoryConfig", "bank_vehicles", self.bank_vehicles, 1)


def prepare(env, params, configs: Configs, run_dir: Path, log: Log):
    """The trajectory bank (spec 004 §7.3): the env's own (`env.trace_bank`, the flag every scenario shares), else
    read back from the run folder (trace_bank.npz, when built from the same env and trajectories sections), from
    `trajectories.bank_path` (fitted to the env like `env.trace_bank`), or built by
    `vmjax.mobility.build_trace_banks` and saved; none for "synthetic"."""
    config, env_config = configs["trajectories"], configs["env"]
    if env_config.trace_bank:
        log(f"trajectories: {env_config.trace_bank} (env.trace_bank)")
        return params
    if config.source == "synthetic":
        return params

    def load(source: Path):
        try:
            trace = mobility.load_trace_bank(
                source,
                float(params.slot_s),
                (env_config.map_size_m, env_config.map_size_m),
                env_config.max_steps + 1,
                env_config.num_vehicles + env_config.num_background_vehicles,
                owner="trajectories.bank_path",
            )
        except ValueError as error:
            raise SystemExit(str(error)) from error
        valid = np.ones(trace.positions_m.shape[:2], bool) if trace.valid is None else np.asarray(trace.valid)
        return np.asarray(trace.positions_m), valid

    def save(path: Path, bank) -> None:
        buffer = BytesIO()
        np.savez(buffer, positions_m=bank[0], valid=bank[1])
        io.atomic_write_bytes(path, buffer.getvalue())

    def build():
        start = time.perf_counter()
        banks = mobility.build_trace_banks(
            config.bank_seed, config.bank_vehicles, configs["env"].max_steps + 1, configs["env"].map_size_m
        )
        trace = banks.real if config.source == "real" else banks.generated
        positions_m = np.asarray(trace.positions_m)
        valid = np.ones(positions_m.shape[:2], bool) if trace.valid is None else np.asarray(trace.valid)
        log(
            f"trajectories: built the {config.source} bank ({config.bank_vehicles} tracks, seed {config.bank_seed}) "
            f"in {time.perf_counter() - start:.0f} s"
        )
        return positions_m, valid

    fingerprint = config_fingerprint(configs, ("env", "trajectories"))
    positions_m, valid = cached_artifact(
        run_dir / "trace_bank.npz", fingerprint, config.bank_path, load, save, build, log, "trajectories"
    )
    return params.replace(trace_bank=mobility.Trace.create(positions_m, valid=valid))


MODE_LABELS = {"split": "MSRL (Split)", "local_edge": "Local-Edge", "local": "Local-Model"}  # spec 004 §8


def label(configs: Configs) -> str:
    """Split Model (MSRL), Local-Edge Model or Local-Model, then the trajectories if not the ground truth."""
    source = trajectory_source(configs)
    name = MODE_LABELS[configs["agent"].mode]
    suffix = {"real": "", "generated": " (EST-TG trajectories)", "synthetic": " (synthetic)", "env.trace_bank": ""}
    return name + suffix[source] + (f" ({Path(configs['env'].trace_bank).name})" if configs["env"].trace_bank else "")


def trajectory_source(configs: Configs) -> str:
    """Where the vehicles drive: the env's trace bank when it has one, else `trajectories.source`."""
    return "env.trace_bank" if configs["env"].trace_bank else configs["trajectories"].source


def variant(configs: Configs) -> str:
    return f"mode={configs['agent'].mode}, trajectories={trajectory_source(configs)}"


TABLE_COLUMNS = (
    ("latency (s)", lambda r: f"{r['latency_s']:.4f}"),
    ("± seeds", lambda r: f"{r['latency_s_seed_std']:.4f}"),
    ("QoE", lambda r: f"{r['qoe']:.4f}"),
    ("± seeds", lambda r: f"{r['qoe_seed_std']:.4f}"),
    ("BER (%)", lambda r: f"{100 * r['ber']:.2f}"),
    ("± seeds", lambda r: f"{100 * r['ber_seed_std']:.2f}"),
    ("pre-migrated (%)", lambda r: f"{100 * r['migration_share']:.1f}"),
    ("server calls (%)", lambda r: f"{100 * r['use_server']:.1f}" if "use_server" in r else "–"),
    ("params used", lambda r: f"{r['params_used']:.0f}" if "params_used" in r else "–"),
)


def format_table(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """Latency (eq. 11), QoE (eq. 15) and BER (eq. 12) with their spread over the held-out seeds, then
    migrations, the server-side model's share of actor calls and the parameters used (§6.9); best latency first."""
    note = (
        f"means per vehicle-slot over {seeds} seeds x {episodes} held-out episodes (the same worlds for "
        "every policy); ± = std of the seed means; server calls and params used: learned actors only (§6.9)"
    )
    return results_table(results, TABLE_COLUMNS, lambda r: r["latency_s"], note)


def scene(env, state, params, info=None, extras=None) -> Scene:
    """One slot of a world: the RSUs with their utilisation u_e(t), each vehicle's serving RSU and, after the slot's
    action (`info`), the RSU it pre-migrates its twin's split part to; with a split actor (`extras["use_server"]`,
    MSRL's switch), the vehicles whose action came from the server-side model are ringed."""
    grid = env.road_grid
    width, height = grid.extent_m
    position = np.asarray(state.trace.position_at(state.t))[: env.num_agents]
    rsu_xy = np.asarray(params.rsu_xy_m)
    serving = np.argmin(np.linalg.norm(position[:, None] - rsu_xy[None], axis=-1), axis=-1)
    links = [Links("serving", position, rsu_xy[serving])]
    notes = [f"slot {int(state.t)} of {env.config.max_steps}"]
    marks = {}
    if info is not None:
        target = np.asarray(info["target"])
        moved = target != np.asarray(info["serving"])
        links.append(Links("target", position[moved], rsu_xy[target[moved]]))
        notes.append(
            f"pre-migrating {moved.sum()} of {len(moved)} (alpha {float(np.mean(np.asarray(info['alpha']))):.2f}), "
            f"mean latency {float(np.mean(np.asarray(info['total_latency_s']))):.2f} s, "
            f"QoE {float(np.mean(np.asarray(info['qoe']))):.2f}"
        )
    if extras and "use_server" in extras:
        server_call = np.asarray(extras["use_server"]) > 0.5
        marks["server-side actor call"] = server_call
        notes.append(f"split actor: {server_call.sum()} server-side, {(~server_call).sum()} client-side calls")
    else:
        notes.append("split actor calls: none (not a split-actor policy)")
    return Scene(
        title=env.name,
        extent_m=(0.0, float(width), 0.0, float(height)),
        vehicles_xy_m=position,
        vehicles_active=np.ones(len(position), bool),
        servers=[Servers("RSU", rsu_xy, np.asarray(state.util), np.ones(len(rsu_xy), bool))],
        links=links,
        roads_m=road_segments(grid.x_roads_m, grid.y_roads_m, grid.extent_m),
        vehicle_marks=marks,
        notes=notes,
    )


SCENARIO = Scenario(
    env_id="TwinSplit-v0",
    env_config=TwinSplitConfig,
    learners={"msrl": Learner("MSRL", msrl.MsrlConfig, msrl.make_trainer)},
    run_dir="runs/twin_split",
    evaluation=Evaluation(
        policies=heuristics.POLICIES,
        make_policy_evaluator=heuristics.make_policy_evaluator,
        seed_metrics=("latency_s", "qoe", "ber"),
        table=format_table,
        panels=(("latency_s", "mean total latency per vehicle-slot (s)", 1.0), ("ber", "bit error rate (%)", 100.0)),
    ),
    label=label,
    variant=variant,
    log_metrics=("total_latency_s", "qoe", "ber"),
    defaults={"agent": {"num_envs": 16, "num_iterations": 300}},
    sections={"trajectories": TrajectoryConfig},
    prepare=prepare,
    scene=scene,
    greedy="greedy_least_loaded",
)

__all__ = ["SCENARIO", "TrajectoryConfig", "format_table", "label", "prepare", "scene"]
