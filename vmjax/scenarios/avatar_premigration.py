"""AvatarPremigration-v0 (spec 003, Chen et al., IEEE IoT-J 2023): avatar task pre-migration between RSUs,
learned by Hybrid-MAPPO (§6) or MAPPO-DDPG (§8), with the trajectory LSTM's workload forecast (§4.3, eq. 18)
trained before the run and kept in the run folder."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from baselines import avatar_premigration as heuristics
from baselines import evaluate as evaluator
from vmjax import predict
from vmjax.agents import hybrid_mappo, mappo_ddpg
from vmjax.core import io
from vmjax.core.scene import Links, Scene, Servers, road_segments, sky_point
from vmjax.envs.avatar_premigration import AvatarPremigrationConfig, map_box_m, simulate_trajectories
from vmjax.scenarios.base import (
    Configs,
    Evaluation,
    Learner,
    Log,
    Scenario,
    cached_predictor,
    config_fingerprint,
    progress_end,
    progress_line,
    results_table,
)

LEARNED_FORECAST = "lstm"  # the env's workload_forecast that needs the trained trajectory predictor


def train_trajectory_predictor(env, config: predict.PredictorConfig, seed: int, run_dir: Path, log: Log = print):
    """§4.3: fit the LSTM on simulated trajectories of the env's road (or on the env's trace bank, when it has
    one: the motion it replays), report held-out error (metres); its metrics go to predictor_metrics.json in the
    run folder."""
    k_data, k_test, k_train = jax.random.split(jax.random.PRNGKey(seed), 3)
    bank = env.default_params.trace_bank
    if bank is None:
        positions = simulate_trajectories(k_data, env, config.num_vehicles, config.num_slots)
        heldout = simulate_trajectories(k_test, env, config.num_vehicles, max(1000, config.history_slots + 2))
        data = f"{config.num_vehicles} x {config.num_slots} slots"
    else:
        positions, heldout = split_bank_tracks(k_test, bank)
        data = f"{positions.shape[1]} trace-bank tracks x {positions.shape[0]} slots ({heldout.shape[1]} held out)"
    log(f"trajectory predictor: training LSTM({config.hidden_size}) for {config.epochs} epochs on {data}")

    def progress(epoch, record):
        progress_line(
            f"  epoch {epoch + 1}/{config.epochs}  held-out MSE {record['heldout_mse']:.2e}  "
            f"{record['elapsed_s']:.0f} s"
        )

    predictor, history = predict.train_predictor(k_train, config, positions, box_m=map_box_m(env), progress=progress)
    progress_end()
    lstm = predict.evaluate_predictor(predictor, heldout)
    reference = predict.evaluate_constant_velocity(heldout, config.history_slots, predictor.low_m, predictor.high_m)
    log(
        f"trajectory predictor: held-out RMSE {lstm['rmse_m']:.1f} m (constant velocity {reference['rmse_m']:.1f} m), "
        f"R2 {lstm['r2']:.3f}, {history['elapsed_s'][-1]:.0f} s"
    )
    io.atomic_write_json(
        run_dir / "predictor_metrics.json",
        {
            "heldout_lstm": {k: float(v) for k, v in lstm.items()},
            "heldout_constant_velocity": {k: float(v) for k, v in reference.items()},
            "train_mse": history["train_mse"].tolist(),
            "heldout_mse": history["heldout_mse"].tolist(),
            "train_wall_s": float(history["elapsed_s"][-1]),
        },
    )
    return predictor


def split_bank_tracks(key, bank, heldout_share: float = 0.2):
    """A trace bank's tracks [T, V, 2] split at random into training and held-out tracks (a fifth, at least one)."""
    positions = np.asarray(bank.positions_m)
    if positions.shape[1] < 2:
        raise ValueError(f"the trajectory predictor needs a trace bank of >= 2 tracks, got {positions.shape[1]}")
    num_heldout = max(1, int(round(heldout_share * positions.shape[1])))
    order = np.asarray(jax.random.permutation(key, positions.shape[1]))
    return positions[:, np.sort(order[num_heldout:])], positions[:, np.sort(order[:num_heldout])]


def prepare(env, params, configs: Configs, run_dir: Path, log: Log):
    """With the LSTM forecast: the trajectory predictor, read back from the run folder (when trained from the same
    env, predictor and predictor seed) or `run.predictor_path`, else trained here (§4.3) and saved."""
    if configs["env"].workload_forecast != LEARNED_FORECAST:
        return params
    run = configs["run"]
    predictor = cached_predictor(
        run_dir,
        run.predictor_path,
        predict.load_predictor,
        predict.save_predictor,
        lambda: train_trajectory_predictor(env, configs["predictor"], run.predictor_seed, run_dir, log),
        log,
        config_fingerprint(configs, ("env", "predictor"), ("predictor_seed", "predictor_path")),
    )
    return params.replace(predictor=predictor)


def label(configs: Configs) -> str:
    """The learner, then " w/o pred." (the 9-number observation, §8) or the forecast in brackets."""
    name = SCENARIO.learners[configs["run"].algo].label
    forecast = configs["env"].workload_forecast
    return name + ("" if forecast == LEARNED_FORECAST else " w/o pred." if forecast == "none" else f" ({forecast})")


def variant(configs: Configs) -> str:
    return f"forecast={configs['env'].workload_forecast}"


TABLE_COLUMNS = (
    ("mean latency (s)", lambda r: f"{r['latency_s']:.3f}"),
    ("std over seeds", lambda r: f"{r['latency_s_seed_std']:.3f}"),
    ("std over episodes", lambda r: f"{r['latency_s_std']:.3f}"),
    ("migration (s)", lambda r: f"{r['migration_s']:.3f}"),
    ("processing (s)", lambda r: f"{r['processing_s']:.3f}"),
    ("downlink (s)", lambda r: f"{r['downlink_s']:.3f}"),
    ("pre-migrated", lambda r: f"{100 * r['premigrated']:.0f}%"),
)


def format_table(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """Latency and its terms, best first."""
    note = (
        f"mean total latency per vehicle and slot over {seeds} seeds x {episodes} held-out episodes "
        "(the same worlds for every policy)"
    )
    return results_table(results, TABLE_COLUMNS, lambda r: r["latency_s"], note)


def scene(env, state, params, info=None, extras=None) -> Scene:
    """One slot of a world: the RSUs with their queue fill L_m / L^max_m and coverage disk, the cloud, each vehicle's
    serving RSU and, after the slot's action (`info`), the RSU it pre-migrates a fraction of its task to."""
    grid = env.road_grid
    width, height = grid.extent_m
    position = np.asarray(env.vehicle_positions(state))
    rsu_xy = np.asarray(params.rsu_xy_m)
    serving = np.argmin(np.linalg.norm(position[:, None] - rsu_xy[None], axis=-1), axis=-1)
    fill = np.asarray(state.queue_cycles / state.rsu.max_workload_cycles)
    extent = (0.0, float(width), 0.0, float(height))
    cloud = sky_point(extent, 0.5, 1.0) + np.array([[0.0, float(params.coverage_radius_m) + 150.0]])
    links = [Links("serving", position, rsu_xy[serving])]
    notes = [f"slot {int(state.t)} of {env.config.max_steps}"]
    if info is not None:
        moved = np.asarray(info["premigrated"], bool)
        links.append(Links("target", position[moved], rsu_xy[np.asarray(info["target"])[moved]]))
        fraction = np.asarray(info["fraction"])
        notes += [
            f"pre-migrating {moved.sum()} of {len(moved)} vehicles (mean alpha {fraction[moved].mean() if moved.any() else 0:.2f})",
            f"mean latency {float(np.mean(info['total_latency_s'])):.2f} s, cloud share {float(np.mean(info['cloud_share'])):.0%}",
        ]
    return Scene(
        title=env.name,
        extent_m=extent,
        vehicles_xy_m=position,
        vehicles_active=np.ones(len(position), bool),
        servers=[
            Servers("RSU", rsu_xy, fill, np.ones(len(rsu_xy), bool), float(params.coverage_radius_m)),
            Servers("cloud", cloud, np.array([np.nan]), np.array([True])),
        ],
        links=links,
        roads_m=road_segments(grid.x_roads_m, grid.y_roads_m, grid.extent_m),
        notes=notes,
    )


SCENARIO = Scenario(
    env_id="AvatarPremigration-v0",
    env_config=AvatarPremigrationConfig,
    learners={
        "hybrid_mappo": Learner("Hybrid-MAPPO", hybrid_mappo.HybridMappoConfig, hybrid_mappo.make_trainer),
        "mappo_ddpg": Learner("MAPPO-DDPG", mappo_ddpg.MappoDdpgConfig, mappo_ddpg.make_trainer),
    },
    run_dir="runs/avatar_premigration",
    evaluation=Evaluation(
        policies=heuristics.POLICIES,
        make_policy_evaluator=evaluator.make_policy_evaluator,
        seed_metrics=("latency_s",),
        table=format_table,
        panels=(("latency_s", "mean total latency per vehicle-slot (s)", 1.0),),
    ),
    label=label,
    variant=variant,
    log_metrics=("total_latency_s",),
    defaults={
        "env": {"workload_forecast": LEARNED_FORECAST, "rsu_order": "distance"},
        "agent": {"num_iterations": 300, "actor_lr": 3e-4, "critic_lr": 3e-4, "actor_d_lr": 3e-4, "critic_d_lr": 3e-4},
        "predictor": {"hidden_size": 32, "epochs": 15},
    },
    sections={"predictor": predict.PredictorConfig},
    prepare=prepare,
    scene=scene,
    greedy="greedy_oracle",
)

__all__ = ["SCENARIO", "format_table", "label", "prepare", "scene", "train_trajectory_predictor"]
