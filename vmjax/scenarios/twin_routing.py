"""TwinRouting-v0 (spec 002): vehicle twins hosted on RSUs, UAVs and a satellite, routed by DM-MAPPO (§6, with
the dynamic mask and the LSTM-Transformer workload forecast in the loop) or MASAC (§8.1). A run trains its
workload predictor on the env's own background load (or a traffic CSV) and calibrates the §3.3 (A) reward
statistics to its own config, both kept in the run folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from io import BytesIO
from pathlib import Path

import jax
import numpy as np

from baselines import twin_routing as heuristics
from vmjax import predict
from vmjax.agents import dm_mappo, masac
from vmjax.core import io, validation
from vmjax.core.scene import Links, Scene, Servers, road_segments, sky_point
from vmjax.envs.twin_routing import NormStats, TwinRoutingConfig
from vmjax.scenarios.base import (
    Configs,
    Evaluation,
    Learner,
    Log,
    Scenario,
    cached_artifact,
    cached_predictor,
    config_fingerprint,
    progress_end,
    progress_line,
    results_table,
    to_python,
)

LEARNED_FORECAST = "predictor"  # the env's workload_forecast that needs the trained workload predictor


@dataclasses.dataclass(frozen=True)
class TrafficConfig:
    """The workload predictor's training series (TwinRouting-v0, spec 002 §4.1 and §4.3)."""

    num_slots: int = 2000  # slots of the env's own simulated background load per server (288 slots = one day)
    csv_path: str = ""  # a traffic CSV (`vmjax.predict.load_traffic_csv`, one column per server) instead
    replay: bool = False  # also drive the env's RSU flows with the CSV (one column per RSU, vehicles per slot), e.g.
    # data/traffic/twin_routing_sumo.csv: EnvParams.flow_table, replayed from a random row of each episode

    def __post_init__(self):
        validation.check_int_at_least("TrafficConfig", "num_slots", self.num_slots, 20)
        validation.check_bool_fields(self)
        if self.replay and not self.csv_path:
            raise ValueError("TrafficConfig.replay needs a csv_path (--traffic.csv_path): the flows to replay")


def replayed_flow_table(env, params, traffic: TrafficConfig):
    """`params` with the CSV's per-RSU counts as `EnvParams.flow_table` (`traffic.replay`), checked against the env
    (the table only: the workload predictor, when the forecast needs one, is set after this)."""
    if not traffic.replay:
        return params
    counts = np.asarray(predict.load_traffic_csv(traffic.csv_path), np.float32)
    if counts.shape[1] != env.num_rsus:
        raise ValueError(
            f"--traffic.replay: {traffic.csv_path} has {counts.shape[1]} series but the env has {env.num_rsus} RSUs: "
            "give one column per RSU (vehicles per slot)"
        )
    params = params.replace(flow_table=jax.numpy.asarray(counts))
    env.check_flow_table(params.flow_table)
    return params


def load_traffic_series(env, params, configs: Configs) -> tuple[np.ndarray, str]:
    """The predictor's training series [T, S] in the units it forecasts (`env.forecast_units`) and a
    description of its source: the user's CSV, or `traffic.num_slots` slots of the env's background load."""
    traffic = configs["traffic"]
    if traffic.csv_path:
        series = np.asarray(predict.load_traffic_csv(traffic.csv_path), np.float32)
        if series.shape[1] != env.num_servers and configs["predictor"].per_series_scaling:
            raise ValueError(
                f"--traffic.csv_path has {series.shape[1]} series but the env has {env.num_servers} "
                "servers: give one column per server, or --predictor.per_series_scaling false"
            )
        return series, f"{traffic.csv_path} ({series.shape[0]} slots x {series.shape[1]} series)"
    key = jax.random.fold_in(jax.random.key(configs["run"].predictor_seed), 1)
    series = np.asarray(jax.jit(env.background_load_series, static_argnums=2)(key, params, traffic.num_slots))
    if configs["env"].forecast_units == "flow":
        series = series / float(params.data_bits)
    return series, f"simulated background load, {traffic.num_slots} slots x {env.num_servers} servers"


def train_workload_predictor(env, params, configs: Configs, run_dir: Path, log: Log = print):
    """§4.3: fit the workload predictor (`predictor.kind`, default the LSTM-Transformer) on per-server load
    series, report its test-split error against the persistence forecast; the series is kept in the run folder
    (traffic.npy) for the §4.4 comparison."""
    config = configs["predictor"]
    series, source = load_traffic_series(env, params, configs)
    buffer = BytesIO()
    np.save(buffer, series)
    io.atomic_write_bytes(run_dir / "traffic.npy", buffer.getvalue())
    log(f"workload predictor: training {config.kind} for up to {config.epochs} epochs on {source}")

    def progress(epoch, record):
        progress_line(
            f"  epoch {epoch + 1}/{config.epochs}  val MSE {record['val_mse']:.2e}  {record['elapsed_s']:.0f} s"
        )

    key = jax.random.fold_in(jax.random.key(configs["run"].predictor_seed), 2)
    predictor, history = predict.train_workload_predictor(key, config, series, progress=progress)
    progress_end()
    test = predict.evaluate_workload_predictor(predictor, series, "test")
    reference = predict.evaluate_persistence(series, config, "test")
    log(
        f"workload predictor: test RMSE {test['rmse']:.4g} (persistence {reference['rmse']:.4g}), R2 {test['r2']:.3f}, "
        f"{history['elapsed_s'][-1]:.0f} s"
    )
    io.atomic_write_json(
        run_dir / "predictor_metrics.json",
        {
            "source": source,
            "test": to_python(test),
            "test_persistence": to_python(reference),
            "train_mse": np.asarray(history["train_mse"]).tolist(),
            "val_mse": np.asarray(history["val_mse"]).tolist(),
            "train_wall_s": float(history["elapsed_s"][-1]),
        },
    )
    return predictor


def calibrated_norm_stats(env, params, run, run_dir: Path, log: Log, fingerprint: str) -> NormStats:
    """§3.3 (A): the z-score constants of this config, calibrated once per run folder (norm_stats.json, reused
    while its `fingerprint` matches) on Greedy and Random episodes with the mask."""

    def calibrate() -> NormStats:
        start = time.perf_counter()
        stats = heuristics.calibrate(env, params, jax.random.key(run.seed + 7919), run.norm_episodes)
        log(
            f"reward statistics (§3.3 A) calibrated on {run.norm_episodes} Greedy + Random episodes in "
            f"{time.perf_counter() - start:.0f} s: latency {stats.latency_mean_s:.3f} +- {stats.latency_std_s:.3f} s"
        )
        return stats

    return cached_artifact(
        run_dir / "norm_stats.json",
        fingerprint,
        "",
        lambda path: NormStats(**json.loads(path.read_text())),
        lambda path, stats: io.atomic_write_json(
            path, {f.name: float(getattr(stats, f.name)) for f in dataclasses.fields(NormStats)}
        ),
        calibrate,
        log,
        "reward statistics",
    )


def prepare(env, params, configs: Configs, run_dir: Path, log: Log):
    """The workload predictor (with the learned forecast), then the run's reward statistics (`run.calibrate_norm`)."""
    run = configs["run"]
    params = replayed_flow_table(env, params, configs["traffic"])
    sections, predictor_fields = ("env", "predictor", "traffic"), ("predictor_seed", "predictor_path")
    predictor_sha = ""
    if configs["env"].workload_forecast == LEARNED_FORECAST:
        predictor = cached_predictor(
            run_dir,
            run.predictor_path,
            predict.load_workload_predictor,
            predict.save_workload_predictor,
            lambda: train_workload_predictor(env, params, configs, run_dir, log),
            log,
            config_fingerprint(configs, sections, predictor_fields),
        )
        params = params.replace(workload_predictor=predictor)
        predictor_sha = io.sha256_file(run_dir / "predictor.msgpack")
    if run.calibrate_norm:
        fingerprint = config_fingerprint(configs, sections, (*predictor_fields, "seed", "norm_episodes"))
        fingerprint = hashlib.sha256((fingerprint + predictor_sha).encode()).hexdigest()  # and the predictor used
        params = params.replace(norm_stats=calibrated_norm_stats(env, params, run, run_dir, log, fingerprint))
    return params


def check(configs: Configs) -> None:
    if configs["predictor"].window != configs["env"].load_history_slots:
        raise ValueError(
            f"--predictor.window ({configs['predictor'].window}) must equal --env.load_history_slots "
            f"({configs['env'].load_history_slots}): the predictor reads the env's load history"
        )


def label(configs: Configs) -> str:
    """The learner; " w/o pred." for the persistence forecast (spec 002's "without prediction") or the forecast
    in brackets; " w/o mask" without the dynamic mask."""
    env = configs["env"]
    name = SCENARIO.learners[configs["run"].algo].label
    forecast = env.workload_forecast
    name += "" if forecast == LEARNED_FORECAST else " w/o pred." if forecast == "persistence" else f" ({forecast})"
    return name + ("" if env.use_mask else " w/o mask")


def variant(configs: Configs) -> str:
    return f"forecast={configs['env'].workload_forecast}"


TABLE_COLUMNS = (
    ("latency (s)", lambda r: f"{r['latency_s']:.4f}"),
    ("± seeds", lambda r: f"{r['latency_s_seed_std']:.4f}"),
    ("migration latency (s)", lambda r: f"{r['migration_s']:.4f}"),
    ("± seeds", lambda r: f"{r['migration_s_seed_std']:.4f}"),
    ("packet loss (%)", lambda r: f"{100 * r['packet_loss']:.3f}"),
    ("± seeds", lambda r: f"{100 * r['packet_loss_seed_std']:.3f}"),
    ("migrations (%)", lambda r: f"{100 * r['migration_share']:.1f}"),
    ("on satellite (%)", lambda r: f"{100 * r['satellite_share']:.1f}"),
    ("reward", lambda r: f"{r['reward']:.3f}"),
)


def format_table(results: dict[str, dict], episodes: int, seeds: int) -> str:
    """Latency, migration latency and packet loss (eq. 15) with their spread over the held-out seeds, then
    failures, migrations and satellite hosting; best latency first."""
    note = (
        f"means per active vehicle-slot (packet loss: eq. 15 per vehicle, then over vehicles) over {seeds} "
        f"seeds x {episodes} held-out episodes (the same worlds for every policy); ± = std of the seed means"
    )
    return results_table(results, TABLE_COLUMNS, lambda r: r["latency_s"], note)


def scene(env, state, params, info=None, extras=None) -> Scene:
    """One slot of a world: RSUs, patrolling UAVs (faint when absent) and the satellite with their estimated load
    S^o_m / L^max_m, the vehicles on their trip, the server hosting each twin and, after the slot's action
    (`info`), the server it moves to (a migration when it differs)."""
    grid = env.road_grid
    width, height = grid.extent_m
    extent = (0.0, float(width), 0.0, float(height))
    t = int(state.t)
    position = np.asarray(state.trace.position_at(min(t, env.config.max_steps)))
    active = np.asarray(env.vehicle_active(state, t), bool)
    uav_xy, uav_present = env.uav_positions(state, params, t)
    present = np.asarray(env.server_presence(uav_present, params), bool)
    load = np.where(present, np.asarray(state.forecast_bits + state.queue_bits), 0.0) / float(params.edge_cache_bits)
    n, u = env.num_rsus, env.num_uavs
    server_xy = np.concatenate([np.asarray(params.rsu_xy_m), np.asarray(uav_xy), sky_point(extent, 0.96, 1.06)])
    host = np.asarray(state.host)
    links = [Links("serving", position[active], server_xy[host[active]])]
    notes = [f"slot {t} of {env.config.max_steps}, {active.sum()} of {len(active)} vehicles on their trip"]
    if info is not None:
        server = np.asarray(info["server"])
        links.append(Links("target", position[active], server_xy[server[active]]))
        migrated = np.asarray(info["migrated"], bool) & active
        latency = np.asarray(info["total_latency_s"])[active]
        notes += [
            f"migrations {migrated.sum()}, on the satellite {int(np.sum(np.asarray(info['on_satellite'])))}, "
            f"failures {int(np.sum(np.asarray(info['failure'])))}",
            f"mean latency {latency.mean() if latency.size else 0.0:.2f} s",
        ]
    satellite_load = np.array([load[env.satellite] * float(params.edge_cache_bits) / 1e9])
    notes.append(f"satellite load {satellite_load[0]:.2f} Gbit")
    return Scene(
        title=env.name,
        extent_m=extent,
        vehicles_xy_m=position,
        vehicles_active=active,
        servers=[
            Servers("RSU", server_xy[:n], load[:n], present[:n]),
            Servers("UAV", server_xy[n : n + u], load[n : n + u], present[n : n + u]),
            Servers("satellite", server_xy[env.satellite :], np.array([np.nan]), present[env.satellite :]),
        ],
        links=links,
        roads_m=road_segments(grid.x_roads_m, grid.y_roads_m, grid.extent_m),
        notes=notes,
    )


SCENARIO = Scenario(
    env_id="TwinRouting-v0",
    env_config=TwinRoutingConfig,
    learners={
        "dm_mappo": Learner("DM-MAPPO", dm_mappo.DmMappoConfig, dm_mappo.make_trainer),
        "masac": Learner("MASAC", masac.MasacConfig, masac.make_trainer),
    },
    run_dir="runs/twin_routing",
    evaluation=Evaluation(
        policies=heuristics.POLICIES,
        make_policy_evaluator=heuristics.make_policy_evaluator,
        seed_metrics=("latency_s", "migration_s", "packet_loss"),
        table=format_table,
        panels=(
            ("latency_s", "mean latency per vehicle-slot (s)", 1.0),
            ("migration_s", "migration latency (s)", 1.0),
            ("packet_loss", "packet loss rate (%)", 100.0),
        ),
    ),
    label=label,
    variant=variant,
    log_metrics=("total_latency_s", "migration_s", "failure"),
    defaults={
        "env": {"workload_forecast": LEARNED_FORECAST},
        "agent": {"num_iterations": 150},
        "predictor": {"head_dim": 16, "epochs": 20},
    },
    sections={"predictor": predict.WorkloadPredictorConfig, "traffic": TrafficConfig},
    prepare=prepare,
    check=check,
    scene=scene,
    greedy="greedy",
)

__all__ = [
    "SCENARIO",
    "TrafficConfig",
    "format_table",
    "label",
    "load_traffic_series",
    "prepare",
    "replayed_flow_table",
    "scene",
    "train_workload_predictor",
]
