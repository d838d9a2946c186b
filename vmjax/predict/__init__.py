"""vmjax.predict: the coverage-aware LSTM trajectory predictor of spec 003 §4.

    positions_m = simulate_trajectories(key, env, num_vehicles=10, num_slots=8640)
    predictor, history = train_predictor(key, PredictorConfig(hidden_size=32), positions_m, box_m=map_box_m(env))
    save_predictor("predictor.msgpack", predictor)
    env = vmjax.make("AvatarPremigration-v0", workload_forecast="lstm")
    params = env.default_params.replace(predictor=load_predictor("predictor.msgpack"))
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
    simulate_trajectories,
    sliding_windows,
    train_predictor,
)

__all__ = [
    "PredictorConfig",
    "TrajectoryLSTM",
    "TrajectoryPredictor",
    "apply_stacked",
    "chronological_split",
    "constant_velocity",
    "denormalize",
    "evaluate_constant_velocity",
    "evaluate_predictor",
    "init_predictor",
    "load_predictor",
    "map_box_m",
    "normalize",
    "predict_next_position_m",
    "predict_trajectory_m",
    "regression_metrics",
    "save_predictor",
    "simulate_trajectories",
    "sliding_windows",
    "train_predictor",
]
