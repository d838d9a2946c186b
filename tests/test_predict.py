"""vmjax.predict (spec 003 §4): LSTM cell eqs. (12)-(17) and the §4.2 model against NumPy, windows, §4.6
metrics on hand-computed numbers, training, determinism, files, and the env's "lstm" workload forecast
(eq. 18)."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax import predict
from vmjax.envs import avatar_premigration as ap

HIDDEN = 16


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm_step(p, c, h, x):
    """Spec 003 eqs. (12)-(17) with W = input kernels, U = recurrent kernels, b = biases (flax names:
    i = input gate, f = forget gate, o = output gate, g = candidate c~)."""
    gate = lambda name: (
        x @ np.asarray(p["i" + name]["kernel"])
        + h @ np.asarray(p["h" + name]["kernel"])
        + np.asarray(p["h" + name]["bias"])
    )
    f = sigmoid(gate("f"))  # (12)
    i = sigmoid(gate("i"))  # (13)
    o = sigmoid(gate("o"))  # (14)
    c_tilde = np.tanh(gate("g"))  # (15)
    c = f * c + i * c_tilde  # (16)
    h = o * np.tanh(c)  # (17)
    return c, h


def random_like(key, tree, scale=0.5):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [scale * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves)])


@pytest.fixture(scope="module")
def env():
    return vmjax.make("AvatarPremigration-v0")


@pytest.fixture(scope="module")
def box(env):
    return ap.map_box_m(env)


@pytest.fixture(scope="module")
def data(env):
    train = ap.simulate_trajectories(jax.random.key(0), env, num_vehicles=8, num_slots=500)
    test = ap.simulate_trajectories(jax.random.key(1), env, num_vehicles=8, num_slots=200)
    return train, test


@pytest.fixture(scope="module")
def untrained(box):
    return predict.init_predictor(jax.random.key(9), HIDDEN, 12, *box)


@pytest.fixture(scope="module")
def config():
    return predict.PredictorConfig(hidden_size=HIDDEN, epochs=30)


@pytest.fixture(scope="module")
def trained(config, data, box):
    return predict.train_predictor(jax.random.key(2), config, data[0], box_m=box)


# ---------------------------------------------------------------- the network, §4.1-§4.2
def test_lstm_cell_matches_eqs_12_to_17():
    cell = nn.OptimizedLSTMCell(3)
    x = jax.random.normal(jax.random.key(0), (4, 2))
    c0, h0 = jax.random.normal(jax.random.key(1), (2, 4, 3))
    params = random_like(jax.random.key(2), cell.init(jax.random.key(3), (c0, h0), x)["params"])
    (c1, h1), out = cell.apply({"params": params}, (c0, h0), x)
    c_np, h_np = numpy_lstm_step(params, np.asarray(c0), np.asarray(h0), np.asarray(x))
    np.testing.assert_allclose(c1, c_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h1, h_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, h_np, rtol=1e-5, atol=1e-6)


def test_model_is_the_five_layer_architecture(untrained):
    """LSTM over the full sequence -> LSTM -> last hidden -> Dense(2) -> ReLU, from zero states."""
    model = predict.TrajectoryLSTM(hidden_size=HIDDEN)
    x = jax.random.uniform(jax.random.key(0), (3, 12, 2))
    params = random_like(jax.random.key(1), untrained.params, scale=0.3)
    assert set(params) == {"lstm_1", "lstm_2", "dense"}
    got = model.apply({"params": params}, x)

    def run_layer(p, seq):
        c = h = np.zeros((seq.shape[0], HIDDEN))
        outputs = []
        for t in range(seq.shape[1]):
            c, h = numpy_lstm_step(p, c, h, seq[:, t])
            outputs.append(h)
        return np.stack(outputs, axis=1)

    hidden = run_layer(params["lstm_2"], run_layer(params["lstm_1"], np.asarray(x)))[:, -1]
    expected = np.maximum(hidden @ np.asarray(params["dense"]["kernel"]) + np.asarray(params["dense"]["bias"]), 0.0)
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the inference path (both layers in one scan, no stored sequence) is the same function
    stacked = predict.apply_stacked(untrained.replace(params=params), x)
    np.testing.assert_allclose(stacked, expected, rtol=1e-5, atol=1e-6)


def test_output_shape_relu_and_dropout_only_in_training(untrained):
    model = predict.TrajectoryLSTM(hidden_size=HIDDEN, dropout_rate=0.5)
    x = jax.random.uniform(jax.random.key(0), (6, 12, 2))
    variables = {"params": untrained.params}
    y = model.apply(variables, x)
    assert y.shape == (6, 2) and bool(jnp.all(y >= 0.0))
    np.testing.assert_array_equal(y, model.apply(variables, x))  # deterministic at inference
    y_train = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(y_train, y)
    negative = {"params": {**untrained.params, "dense": {**untrained.params["dense"], "bias": jnp.full(2, -100.0)}}}
    np.testing.assert_array_equal(model.apply(negative, x), 0.0)  # ReLU clips at 0


def test_predict_next_position_denormalises_and_checks_shape(untrained):
    np.testing.assert_array_equal(untrained.low_m, [0.0, 0.0])
    np.testing.assert_array_equal(untrained.high_m, [2490.0, 122.0])
    history = jnp.tile(jnp.array([1000.0, 60.0]), (3, 2, 12, 1))
    out = predict.predict_next_position_m(untrained, history)
    assert out.shape == (3, 2, 2)
    unit = untrained.model.apply({"params": untrained.params}, history[0, :1] / jnp.array([2490.0, 122.0]))
    np.testing.assert_allclose(out[0, 0], unit[0] * jnp.array([2490.0, 122.0]), rtol=1e-5)
    with pytest.raises(ValueError, match="history_slots positions"):
        predict.predict_next_position_m(untrained, jnp.zeros((3, 4, 2)))


def test_constant_velocity():
    history = jnp.array([[[0.0, 0.0], [1.0, 2.0], [3.0, 5.0]]])
    np.testing.assert_allclose(predict.constant_velocity(history), [[5.0, 8.0]])
    with pytest.raises(ValueError, match=">= 2"):
        predict.constant_velocity(jnp.zeros((1, 2)))


# ---------------------------------------------------------------- data
def test_sliding_windows_and_chronological_split():
    t, v = np.meshgrid(np.arange(6), np.arange(2), indexing="ij")
    positions = np.stack([10.0 * t + v, -(10.0 * t + v)], axis=-1)  # [T=6, V=2, 2], encodes (t, v)
    inputs, targets = predict.sliding_windows(positions, 3)
    assert inputs.shape == (6, 3, 2) and targets.shape == (6, 2)  # S = V (T - history) = 2 * 3
    np.testing.assert_array_equal(inputs[0, :, 0], [0, 10, 20])  # vehicle 0, slots 0..2 -> slot 3
    np.testing.assert_array_equal(targets[0], [30, -30])
    np.testing.assert_array_equal(inputs[2, :, 0], [20, 30, 40])  # vehicle 0, slots 2..4 -> slot 5
    np.testing.assert_array_equal(targets[2], [50, -50])
    np.testing.assert_array_equal(inputs[3, :, 0], [1, 11, 21])  # vehicle 1 starts
    np.testing.assert_array_equal(targets[5], [51, -51])
    (_, train_y), (test_x, test_y) = predict.chronological_split(positions, 3, 0.7)
    # floor(0.7 * 3) = 2 windows per vehicle train, the last one is held out
    np.testing.assert_array_equal(train_y[:, 0], [30, 40, 31, 41])
    np.testing.assert_array_equal(test_y[:, 0], [50, 51])
    np.testing.assert_array_equal(test_x[1, :, 0], [21, 31, 41])
    with pytest.raises(ValueError, match="positions_m"):
        predict.sliding_windows(np.zeros((6, 2)), 3)
    with pytest.raises(ValueError, match="empty training or held-out"):
        predict.chronological_split(positions, 3, 0.2)


def test_simulate_trajectories_uses_env_mobility(data):
    """The corridor of §7.2: lanes at y = 45..77 m (+ noise), at most 20 m/s * 10 s per slot (+ noise)."""
    train, test = data
    assert train.shape == (500, 8, 2) and test.shape == (200, 8, 2)
    y = np.asarray(train[..., 1])
    assert 25.0 < y.min() and y.max() < 97.0 and np.all(np.asarray(train[..., 0]) > -30.0)
    steps_m = np.linalg.norm(np.diff(np.asarray(train), axis=0), axis=-1)
    assert steps_m.max() < 200.0 + 40.0 and np.median(steps_m) > 50.0
    assert not np.allclose(train[:200], test)  # different keys, different draws


# ---------------------------------------------------------------- metrics, §4.6
def test_regression_metrics_hand_computed():
    y_true = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_pred = np.array([[1.0, 2.5], [2.0, 4.0]])  # errors 0, -0.5, 1, 0
    m = predict.regression_metrics(y_true, y_pred)
    assert m["mse"] == pytest.approx(1.25 / 4)
    assert m["rmse"] == pytest.approx(np.sqrt(1.25 / 4))
    assert m["mae"] == pytest.approx(1.5 / 4)
    assert m["medae"] == pytest.approx(0.25)  # median of {0, 0, 0.5, 1}
    assert m["r2"] == pytest.approx(1.0 - 1.25 / 5.0)  # flattened mean 2.5, SS_tot = 5
    assert m["r2_uniform"] == pytest.approx(0.5 * ((1 - 1 / 2) + (1 - 0.25 / 2)))  # per coordinate, averaged
    with pytest.raises(ValueError, match="same non-empty shape"):
        predict.regression_metrics(y_true, y_pred[:1])


def test_metrics_in_metres_and_normalised_units(untrained):
    """Straight motion at constant velocity: the constant-velocity reference is exact."""
    t = np.arange(20.0)[:, None, None]
    positions = np.concatenate([5.0 + 12.0 * t, 60.0 + 0.0 * t], axis=-1) + np.array([[[0.0, 0.0], [100.0, 10.0]]])
    m = predict.evaluate_constant_velocity(positions, 12, (0.0, 0.0), (2490.0, 122.0))
    assert m["num_samples"] == 2 * 8
    assert m["rmse_m"] == pytest.approx(0.0, abs=1e-4) and m["r2"] == pytest.approx(1.0)
    m = predict.evaluate_predictor(untrained, positions)
    inputs, targets = predict.sliding_windows(positions, 12)
    err_m = np.asarray(predict.predict_next_position_m(untrained, inputs)) - np.asarray(targets)
    assert m["rmse_m"] == pytest.approx(np.sqrt(np.mean(err_m**2)), rel=1e-4)
    assert m["mse"] == pytest.approx(np.mean((err_m / np.array([2490.0, 122.0])) ** 2), rel=1e-4)


# ---------------------------------------------------------------- training, §4.3
def test_config_validation_names_the_field():
    assert predict.PredictorConfig() == predict.PredictorConfig(
        hidden_size=256,
        dropout_rate=0.05,
        history_slots=12,
        batch_size=40,
        epochs=500,
        learning_rate=1e-3,
        train_fraction=0.8,
        num_vehicles=10,
        num_slots=8640,
    )
    for field, value in (
        ("hidden_size", 0),
        ("dropout_rate", 1.0),
        ("learning_rate", 0.0),
        ("train_fraction", 1.0),
        ("batch_size", 2.5),
        ("num_slots", 13),
    ):
        with pytest.raises(ValueError, match=f"PredictorConfig.{field}"):
            predict.PredictorConfig(**{field: value})


def test_training_beats_untrained_and_constant_velocity(trained, untrained, data, box, config):
    predictor, history = trained
    assert history["train_mse"].shape == history["heldout_mse"].shape == (config.epochs,)
    assert history["heldout_mse"][-1] < 0.1 * history["initial_heldout_mse"]
    assert history["train_mse"][-1] < history["train_mse"][0]
    test = data[1]
    lstm = predict.evaluate_predictor(predictor, test)
    cv = predict.evaluate_constant_velocity(test, config.history_slots, *box)
    assert (
        lstm["mse"] < cv["mse"] < predict.evaluate_predictor(untrained, test)["mse"]
    )  # normalised: the lane (y) is learned, noise averaged
    assert lstm["rmse_m"] < 1.5 * cv["rmse_m"]  # and along the road close to constant velocity (~33 m)
    assert lstm["r2"] > 0.95
    # the history's held-out MSE is the same quantity as evaluate_predictor on the held-out slots
    num_train = predict.lstm.train_windows_per_vehicle(data[0].shape[0] - config.history_slots, config.train_fraction)
    heldout = predict.evaluate_predictor(predictor, data[0][num_train:])
    assert heldout["mse"] == pytest.approx(history["heldout_mse"][-1], rel=1e-3)


def test_training_is_deterministic(trained, data, box, config):
    short = dataclasses.replace(config, epochs=2)
    a, hist_a = predict.train_predictor(jax.random.key(4), short, data[0], box_m=box)
    b, hist_b = predict.train_predictor(jax.random.key(4), short, data[0], box_m=box)
    c, _ = predict.train_predictor(jax.random.key(5), short, data[0], box_m=box)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    np.testing.assert_array_equal(hist_a["heldout_mse"], hist_b["heldout_mse"])
    assert not np.allclose(a.params["dense"]["kernel"], c.params["dense"]["kernel"])
    stops = []
    _, hist = predict.train_predictor(
        jax.random.key(4), short, data[0], box_m=box, progress=lambda epoch, record: stops.append(record) or True
    )
    assert len(stops) == 1 and hist["heldout_mse"].shape == (1,)  # True from progress stops early


def test_save_load_round_trip_and_bad_files(trained, tmp_path, data):
    predictor, _ = trained
    path = predict.save_predictor(tmp_path / "sub" / "lstm.msgpack", predictor)
    loaded = predict.load_predictor(path)
    assert (loaded.hidden_size, loaded.history_slots) == (HIDDEN, 12)
    jax.tree.map(np.testing.assert_array_equal, loaded.params, predictor.params)
    np.testing.assert_array_equal(loaded.low_m, predictor.low_m)
    np.testing.assert_array_equal(loaded.high_m, predictor.high_m)
    window = data[1][:12, :3].swapaxes(0, 1)
    np.testing.assert_array_equal(
        predict.predict_next_position_m(loaded, window), predict.predict_next_position_m(predictor, window)
    )
    assert [p.name for p in path.parent.iterdir()] == ["lstm.msgpack"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError, match="train_predictor"):
        predict.load_predictor(tmp_path / "missing.msgpack")
    raw = path.read_bytes()
    for name, content in (
        ("garbage", b"not a predictor"),
        ("truncated", raw[: len(raw) // 2]),
        ("header_only", raw.partition(b"\n")[0]),
    ):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="corrupt trajectory predictor file"):
            predict.load_predictor(bad)


# ---------------------------------------------------------------- the env's "lstm" forecast, eq. (18)
def test_env_lstm_forecast_is_eq_18_of_predicted_positions(untrained):
    env = vmjax.make("AvatarPremigration-v0", workload_forecast="lstm", num_background_vehicles=4, max_steps=20)
    predictor = untrained
    params = env.default_params.replace(predictor=predictor)
    obs, state = jax.jit(env.reset)(jax.random.key(1), params)
    assert obs.shape == (10, 15) and env.obs_dim == 15
    assert state.forecast_cycles.shape == (20, 6)
    action = {"target": jnp.zeros(10, jnp.int32), "fraction": jnp.full(10, 0.3)}
    step = jax.jit(env.step)
    for _ in range(3):
        obs, state, reward, *_ = step(jax.random.key(2), state, action, params)
    assert int(state.t) == 3 and bool(jnp.all(jnp.isfinite(obs))) and bool(jnp.all(reward < 0))
    h, t = env.config.history_slots, 3
    window = state.trace.positions_m[t + 1 : t + 1 + h].swapaxes(0, 1)  # [14 vehicles, h, 2], ends at p(t)
    predicted = predict.predict_next_position_m(predictor, window)
    d = np.linalg.norm(np.asarray(predicted)[:, None] - np.asarray(params.rsu_xy_m)[None], axis=-1)
    expected = params.workload_per_vehicle_cycles * (d <= params.coverage_radius_m).sum(axis=0)
    np.testing.assert_allclose(env.forecast(state, params), expected, rtol=1e-6)
    np.testing.assert_allclose(obs[0, 8:14], expected / params.mean_max_workload_cycles, rtol=1e-5)
    np.testing.assert_allclose(
        state.forecast_cycles,
        params.workload_per_vehicle_cycles
        * ap.coverage_counts(
            predict.predict_trajectory_m(predictor, state.trace.positions_m[1 : h + 20]),
            params.rsu_xy_m,
            params.coverage_radius_m,
        ),
        rtol=1e-6,
    )


def test_env_lstm_needs_a_matching_predictor(untrained):
    env = vmjax.make("AvatarPremigration-v0", workload_forecast="lstm")
    with pytest.raises(ValueError, match="EnvParams.predictor is None.*load_predictor"):
        env.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="EnvParams.predictor is None"):
        jax.jit(env.reset)(jax.random.key(0), env.default_params)  # also at trace time
    short_env = vmjax.make("AvatarPremigration-v0", workload_forecast="lstm", history_slots=8)
    with pytest.raises(ValueError, match="history_slots=12 differs from the env's history_slots=8"):
        short_env.reset(jax.random.key(0), short_env.default_params.replace(predictor=untrained))
    # other modes ignore the predictor field; "persistence" stays the default
    plain = vmjax.make("AvatarPremigration-v0")
    assert plain.default_params.predictor is None
    plain.validate_params(plain.default_params.replace(predictor=untrained))
