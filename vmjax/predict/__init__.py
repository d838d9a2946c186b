"""vmjax.predict: the coverage-aware LSTM trajectory predictor of spec 003 §4 (`lstm`) and the workload
predictors of spec 002 §4 (`workload`: the LSTM-based Transformer and the LSTM / GRU / CNN-LSTM / CNN-GRU
comparison models), their data (`traffic`) and their shared training loop (`training`). Nothing here takes an
env: `vmjax.envs.avatar_premigration.simulate_trajectories(key, env, ...)` feeds an env's road and mobility in.

    grid = mobility.corridor_road(2490.0, 122.0)  # spec 003 §7.2 road (an env's `road_grid`)
    positions_m = simulate_trajectories(key, grid, mobility.MobilityParams(), slot_s=10.0, num_slots=8640)
    predictor, history = train_predictor(key, PredictorConfig(hidden_size=32), positions_m,
                                         box_m=map_box_m(grid.extent_m))
    save_predictor("predictor.msgpack", predictor)
    env = vmjax.make("AvatarPremigration-v0", workload_forecast="lstm")
    params = env.default_params.replace(predictor=load_predictor("predictor.msgpack"))

    series = simulate_server_traffic(key, server_xy_m, radius_m=600.0, num_vehicles=300, num_slots=2000)
    workload_predictor, history = train_workload_predictor(key, WorkloadPredictorConfig(), series)
    next_load = predict_next_load(workload_predictor, series[-6:])      # [..., 6, S] -> [..., S]
    print(format_comparison_table(compare_predictors(key, series)))
"""

from vmjax.predict.lstm import (
    PredictorConfig,
    TrajectoryLSTM,
    TrajectoryPredictor,
    apply_stacked,
    chronological_split,
    constant_velocity,
    denormalize,
    evaluate_constant_velocity,
    evaluate_predictor,
    init_predictor,
    load_predictor,
    map_box_m,
    normalize,
    predict_next_position_m,
    predict_trajectory_m,
    regression_metrics,
    save_predictor,
    sliding_windows,
    train_predictor,
)
from vmjax.predict.traffic import (
    load_traffic_csv,
    simulate_server_traffic,
    simulate_trajectories,
    synthetic_traffic_flow,
)
from vmjax.predict.workload import (
    MODEL_KINDS,
    LSTMTransformer,
    RecurrentPredictor,
    WorkloadPredictor,
    WorkloadPredictorConfig,
    compare_predictors,
    count_params,
    evaluate_persistence,
    evaluate_workload_predictor,
    fit_scaler,
    format_comparison_table,
    init_workload_predictor,
    load_workload_predictor,
    make_workload_model,
    persistence,
    predict_load_series,
    predict_next_load,
    save_workload_predictor,
    split_sizes,
    train_workload_predictor,
    workload_metrics,
)

__all__ = [
    "LSTMTransformer",
    "MODEL_KINDS",
    "PredictorConfig",
    "RecurrentPredictor",
    "TrajectoryLSTM",
    "TrajectoryPredictor",
    "WorkloadPredictor",
    "WorkloadPredictorConfig",
    "apply_stacked",
    "chronological_split",
    "compare_predictors",
    "constant_velocity",
    "count_params",
    "denormalize",
    "evaluate_constant_velocity",
    "evaluate_persistence",
    "evaluate_predictor",
    "evaluate_workload_predictor",
    "fit_scaler",
    "format_comparison_table",
    "init_predictor",
    "init_workload_predictor",
    "load_predictor",
    "load_traffic_csv",
    "load_workload_predictor",
    "make_workload_model",
    "map_box_m",
    "normalize",
    "persistence",
    "predict_load_series",
    "predict_next_load",
    "predict_next_position_m",
    "predict_trajectory_m",
    "regression_metrics",
    "save_predictor",
    "save_workload_predictor",
    "simulate_server_traffic",
    "simulate_trajectories",
    "sliding_windows",
    "split_sizes",
    "synthetic_traffic_flow",
    "train_predictor",
    "train_workload_predictor",
    "workload_metrics",
]
