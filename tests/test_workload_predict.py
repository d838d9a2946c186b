"""vmjax.predict.workload (spec 002 §4): the LSTM-based Transformer and the §4.4 comparison models (shapes,
the spec's sizes, causal masking), inference (jit / vmap, scaler round trip), splits and scaling, §4.5
metrics on hand-computed numbers, training, the traffic CSV loader, simulated traffic, and files."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmjax import predict
from vmjax.predict import workload

TINY = predict.WorkloadPredictorConfig(
    hidden_size=4,
    model_dim=8,
    num_heads=2,
    head_dim=4,
    ffn_dim=8,
    conv_filters=4,
    batch_size=16,
    epochs=6,
    patience=3,
)


def tiny(kind, **changes):
    return dataclasses.replace(TINY, kind=kind, **changes)


@pytest.fixture(scope="module")
def flow():
    """§4.1 synthetic flow: 3 series x 400 slots, a short "day" so the windows see the cycle."""
    return np.asarray(predict.synthetic_traffic_flow(jax.random.key(0), 3, 400, base=[10.0, 20.0, 5.0], day_slots=48))


@pytest.fixture(scope="module")
def trained_gru(flow):
    return predict.train_workload_predictor(jax.random.key(1), tiny("gru"), flow)


# ---------------------------------------------------------------- configuration
def test_config_defaults_are_the_spec_and_validation_names_the_field():
    c = predict.WorkloadPredictorConfig()
    assert (c.kind, c.window, c.hidden_size, c.model_dim, c.num_heads, c.head_dim, c.ffn_dim) == (
        "lstm_transformer",
        6,
        32,
        64,
        4,
        64,
        128,
    )
    assert (c.dropout_rate, c.learning_rate, c.batch_size, c.epochs, c.patience, c.grad_clip_norm) == (
        0.1,
        1e-3,
        64,
        100,
        10,
        1.0,
    )
    assert (c.train_fraction, c.val_fraction, c.conv_filters, c.conv_kernel_size) == (0.7, 0.1, 32, 1)
    for field, value in (
        ("kind", "tcn"),
        ("window", 0),
        ("num_heads", 0),
        ("dropout_rate", 1.0),
        ("pooling", "max"),
        ("scaler", "robust"),
        ("learning_rate", 0.0),
        ("train_fraction", 1.0),
        ("batch_size", 2.5),
        ("causal_attention", 1),
        ("patience", -1),
    ):
        with pytest.raises(ValueError, match=f"WorkloadPredictorConfig.{field}"):
            predict.WorkloadPredictorConfig(**{field: value})
    with pytest.raises(ValueError, match="train_fraction \\+ val_fraction must be < 1"):
        predict.WorkloadPredictorConfig(train_fraction=0.7, val_fraction=0.3)
    with pytest.raises(ValueError, match="needs a validation split"):
        predict.WorkloadPredictorConfig(val_fraction=0.0)


# ---------------------------------------------------------------- the networks, §4.2 / §4.4
def test_transformer_has_the_spec_sizes():
    """§4.2 with the defaults: LSTM(32) -> Dense(32 -> 64) -> 4 heads of width 64 (W_O: 256 -> 64) ->
    FFN 64 -> 128 -> 64 with two LayerNorms -> Dense(64 -> 1)."""
    init = lambda key: workload._init_params(key, config=predict.WorkloadPredictorConfig())  # noqa: E731
    shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(init, jax.random.key(0)))
    assert set(shapes) == {"lstm", "project", "attention", "norm_1", "ffn_1", "ffn_2", "norm_2", "head"}
    assert shapes["lstm"]["hi"]["kernel"] == (32, 32) and shapes["lstm"]["ii"]["kernel"] == (1, 32)
    assert shapes["project"]["kernel"] == (32, 64)
    for name in ("query", "key", "value"):
        assert shapes["attention"][name]["kernel"] == (64, 4, 64)  # [d_k, H, per-head width]
    assert shapes["attention"]["out"]["kernel"] == (4, 64, 64)  # concat(256) -> 64
    assert shapes["ffn_1"]["kernel"] == (64, 128) and shapes["ffn_2"]["kernel"] == (128, 64)
    assert shapes["head"]["kernel"] == (64, 1)
    with_positions = predict.WorkloadPredictorConfig(positional_embedding=True)
    assert jax.eval_shape(lambda key: workload._init_params(key, config=with_positions), jax.random.key(0))[
        "position"
    ].shape == (6, 64)
    # §4.4: 32 units everywhere; the CNN variants start with Conv1D(kernel 1, 32 filters)
    for kind, cell in (("lstm", "lstm"), ("gru", "gru"), ("cnn_lstm", "lstm"), ("cnn_gru", "gru")):
        config = predict.WorkloadPredictorConfig(kind=kind)
        shapes = jax.tree.map(
            lambda a: a.shape, jax.eval_shape(lambda key: workload._init_params(key, config=config), jax.random.key(0))
        )
        assert set(shapes) == ({"conv", cell, "head"} if kind.startswith("cnn") else {cell, "head"})
        assert shapes["head"]["kernel"] == (32, 1)
        if kind.startswith("cnn"):
            assert shapes["conv"]["kernel"] == (1, 1, 32)


@pytest.mark.parametrize("kind", predict.MODEL_KINDS)
def test_every_kind_output_shape_and_predict_next_load_jit_vmap(kind):
    config = tiny(kind)
    predictor = predict.init_workload_predictor(jax.random.key(0), config, low=[0.0, 10.0, -5.0], high=[1.0, 30.0, 5.0])
    x = jax.random.uniform(jax.random.key(1), (5, 6, 1))
    assert jax.eval_shape(predictor.model.apply, {"params": predictor.params}, x).shape == (5, 1)  # spec §10.3 #19
    history = 10.0 * jax.random.uniform(jax.random.key(2), (2, 4, 6, 3))  # [..., window, S]
    run = jax.jit(
        lambda p, h: (
            predict.predict_next_load(p, h),  # any leading axes
            jax.vmap(predict.predict_next_load, in_axes=(None, 0))(p, h),
            predict.predict_next_load(p, h[1, 2]),
        )
    )  # no batch axes: [window, S] -> [S]
    out, vmapped, one = run(predictor, history)
    assert out.shape == (2, 4, 3) and bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_allclose(vmapped, out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one, out[1, 2], rtol=1e-5, atol=1e-5)


def test_attention_causal_mask_pooling_and_dropout():
    """One jitted function runs the causal, the full-attention and the mean-pooling variants on the same
    weights (the mask and the pooling add no parameters), and the training-mode forward pass."""
    x = jax.random.uniform(jax.random.key(0), (2, 6, 1))
    bumped = x.at[:, 3].add(1.0)  # change step 3 only
    causal, full, mean = (
        workload.make_workload_model(tiny("lstm_transformer", **changes))
        for changes in ({"causal_attention": True}, {}, {"pooling": "mean", "dropout_rate": 0.5})
    )
    params = jax.jit(full.init)(jax.random.key(1), x)["params"]

    @jax.jit
    def run(params, key):
        v = {"params": params}
        sequences = {
            name: (m.apply(v, x, return_sequence=True), m.apply(v, bumped, return_sequence=True))
            for name, m in (("causal", causal), ("full", full))
        }
        outputs = {
            "causal": causal.apply(v, x),
            "full": full.apply(v, x),
            "mean": mean.apply(v, x),
            "mean_sequence": mean.apply(v, x, return_sequence=True),
            "mean_train": mean.apply(v, x, train=True, rngs={"dropout": key}),
        }
        return sequences, outputs

    sequences, outputs = run(params, jax.random.key(2))
    head = lambda pooled: pooled @ params["head"]["kernel"] + params["head"]["bias"]
    for name, (before, after) in sequences.items():
        assert before.shape == (2, 6, TINY.model_dim)
        changed = np.any(np.abs(np.asarray(after - before)) > 1e-6, axis=(0, 2))
        # the LSTM is causal, so only attention can carry the change to earlier steps
        assert list(changed) == ([False] * 3 + [True] * 3 if name == "causal" else [True] * 6)
    # "last" pooling attends from the last query only: the same numbers as the whole sequence's last step
    for name in ("causal", "full"):
        np.testing.assert_allclose(outputs[name], head(sequences[name][0][:, -1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["mean"], head(outputs["mean_sequence"].mean(axis=1)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(outputs["mean_train"], outputs["mean"])  # dropout only in training


# ---------------------------------------------------------------- scaling and inference
def test_scaler_round_trip_and_predict_next_load_units():
    series = np.stack([np.arange(20.0), 100.0 + 0.0 * np.arange(20.0), np.arange(20.0) ** 2], axis=1)
    config = tiny("gru", window=3)  # 17 windows: 11 train -> slots 0..13 seen by the scaler
    low, high = predict.fit_scaler(series, config)
    np.testing.assert_allclose(low, [0.0, 100.0, 0.0])
    np.testing.assert_allclose(high, [13.0, 101.0, 169.0])  # a constant series gets high = low + 1
    np.testing.assert_allclose(predict.denormalize(predict.normalize(series, low, high), low, high), series, rtol=1e-6)
    z_low, z_high = predict.fit_scaler(series, dataclasses.replace(config, scaler="zscore"))
    np.testing.assert_allclose(z_low, series[:14].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        z_high - z_low, np.where(series[:14].std(axis=0) > 0, series[:14].std(axis=0), 1.0), rtol=1e-5
    )
    pooled = predict.fit_scaler(series, dataclasses.replace(config, per_series_scaling=False))
    assert pooled[0].shape == pooled[1].shape == (1,) and pooled[0][0] == 0.0 and pooled[1][0] == 169.0

    predictor = predict.init_workload_predictor(jax.random.key(0), config, low, high)
    history = jnp.asarray(series[4:7])  # [3, S]
    negative_params = {**predictor.params, "head": {**predictor.params["head"], "bias": jnp.full((1,), -100.0)}}
    negative = predictor.replace(params=negative_params)
    raw = negative.replace(config=dataclasses.replace(config, nonnegative=False))

    @jax.jit
    def run(predictor, negative, raw, history, series):
        normalized = (history - predictor.low) / (predictor.high - predictor.low)
        y = predictor.model.apply({"params": predictor.params}, normalized.T[:, :, None])[:, 0]
        return (
            y,
            predict.predict_next_load(predictor, history),
            predict.predict_next_load(negative, history),
            predict.predict_next_load(raw, history),
            predict.predict_load_series(predictor, series),
        )

    y, out, clipped, unclipped, table = run(predictor, negative, raw, history, series)
    np.testing.assert_allclose(out, np.maximum(low + np.asarray(y) * (high - low), 0.0), rtol=1e-5, atol=1e-5)
    # nonnegative clips at 0 in raw units; off, the raw value comes through
    np.testing.assert_array_equal(clipped, 0.0)
    assert bool(jnp.all(unclipped < low - 50.0 * (high - low)))
    # the precomputed table: row k predicts slot k + window
    assert table.shape == (17, 3)
    np.testing.assert_allclose(table[4], out, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="predictor window = 3"):
        predict.predict_next_load(predictor, history[:2])
    with pytest.raises(ValueError, match="fitted to 3"):
        predict.predict_next_load(predictor, jnp.zeros((3, 5)))
    shared = predict.WorkloadPredictor(
        params=predictor.params,
        low=jnp.zeros(1),
        high=jnp.ones(1),
        config=dataclasses.replace(config, per_series_scaling=False),
    )
    assert (
        jax.eval_shape(predict.predict_next_load, shared, jnp.zeros((3, 5))).shape == (5,) and shared.num_series is None
    )
    assert predictor.num_series == 3


def test_split_sizes_and_chronological_windows():
    t, s = np.meshgrid(np.arange(20.0), np.arange(2.0), indexing="ij")
    series = 10.0 * t + s  # value encodes (slot, series)
    config = tiny("gru", window=3)
    assert predict.split_sizes(20, config) == (11, 1, 5)  # 17 windows: floor(11.9), floor(1.7), the rest
    splits = workload._split_windows(series, config)
    (train_x, train_y), (_, val_y), (test_x, test_y) = splits["train"], splits["val"], splits["test"]
    assert train_x.shape == (2, 11, 3) and val_y.shape == (2, 1) and test_y.shape == (2, 5)
    np.testing.assert_array_equal(train_x[1, 0], [1.0, 11.0, 21.0])
    np.testing.assert_array_equal(train_y[0], 10.0 * np.arange(3, 14))
    np.testing.assert_array_equal(val_y[:, 0], [140.0, 141.0])
    np.testing.assert_array_equal(test_y[0], 10.0 * np.arange(15, 20))
    np.testing.assert_array_equal(test_x[0, 0], [120.0, 130.0, 140.0])
    with pytest.raises(ValueError, match="empty split"):
        predict.split_sizes(8, config)


# ---------------------------------------------------------------- metrics, §4.5
def test_workload_metrics_hand_computed():
    y_true = np.array([[1.0, 2.0], [3.0, 0.0]])
    y_pred = np.array([[2.0, 2.0], [1.0, 1.0]])  # errors +1, 0, -2, +1
    m = predict.workload_metrics(y_true, y_pred, low=[0.0, 0.0], high=[2.0, 4.0])
    assert m["rmse"] == pytest.approx(np.sqrt(6.0 / 4))
    assert m["mae"] == pytest.approx(4.0 / 4)
    assert m["error_rate_pct"] == pytest.approx(100.0 * 4.0 / 6.0)  # WAPE: sum |e| / sum |y|
    assert m["mape_pct"] == pytest.approx(100.0 * np.mean([1.0 / 1.0, 0.0 / 2.0, 2.0 / 3.0]))  # y != 0 only
    assert m["r2"] == pytest.approx(1.0 - 6.0 / 5.0)  # pooled mean 1.5, SS_tot = 0.25 + 0.25 + 2.25 + 2.25
    assert m["r2_per_series"] == pytest.approx(0.5 * ((1.0 - 5.0 / 2.0) + (1.0 - 1.0 / 2.0)))
    # normalised: errors / (high - low) = 0.5, 0, -1, 0.25
    assert m["rmse_norm"] == pytest.approx(np.sqrt((0.25 + 0.0 + 1.0 + 0.0625) / 4))
    assert m["mae_norm"] == pytest.approx(1.75 / 4)
    assert m["num_samples"] == 4


def test_persistence_reference(flow):
    config = tiny("gru")
    m = predict.evaluate_persistence(flow, config)
    _, _, num_test = predict.split_sizes(flow.shape[0], config)
    truth, last = flow[-num_test:], flow[-num_test - 1 : -1]
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((truth - last) ** 2)), rel=1e-5)
    assert m["num_samples"] == truth.size
    np.testing.assert_array_equal(predict.persistence(jnp.asarray(flow[:6])), flow[5])


# ---------------------------------------------------------------- training, §4.3
def test_training_reduces_the_loss_and_keeps_the_best_epoch(trained_gru, flow):
    predictor, history = trained_gru
    assert history["epochs_run"] >= 1 and history["train_mse"].shape == history["val_mse"].shape == (
        history["epochs_run"],
    )
    assert np.all(np.isfinite(history["train_mse"])) and np.all(np.isfinite(history["val_mse"]))
    assert history["val_mse"].min() < history["initial_val_mse"]
    assert history["train_mse"][-1] < history["train_mse"][0]
    assert history["best_epoch"] == int(np.argmin(history["val_mse"]))
    # the returned weights are those of the best epoch: their val MSE is the history's minimum
    val = predict.evaluate_workload_predictor(predictor, flow, "val")
    assert val["rmse_norm"] ** 2 == pytest.approx(history["val_mse"].min(), rel=1e-3)
    test = predict.evaluate_workload_predictor(predictor, flow)
    assert np.isfinite(test["r2"]) and test["r2"] > 0.0
    # evaluate = the metrics of predict_next_load over the test windows
    _, _, num_test = predict.split_sizes(flow.shape[0], predictor.config)
    starts = np.arange(flow.shape[0] - num_test - 6, flow.shape[0] - 6)
    windows = flow[starts[:, None] + np.arange(6)]
    predicted = np.asarray(predict.predict_next_load(predictor, windows))
    assert test["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - flow[-num_test:]) ** 2)), rel=1e-4)


def test_training_is_deterministic_and_stops(flow, trained_gru):
    config = tiny("gru")
    a, hist_a = predict.train_workload_predictor(jax.random.key(1), config, flow)
    jax.tree.map(np.testing.assert_array_equal, a.params, trained_gru[0].params)
    np.testing.assert_array_equal(hist_a["val_mse"], trained_gru[1]["val_mse"])
    calls = []
    _, hist = predict.train_workload_predictor(
        jax.random.key(1), config, flow, progress=lambda epoch, record: calls.append(record) or True
    )
    assert len(calls) == 1 and hist["epochs_run"] == 1 and not hist["stopped_early"]
    with pytest.raises(ValueError, match="fewer than WorkloadPredictorConfig.batch_size"):
        predict.train_workload_predictor(jax.random.key(1), dataclasses.replace(config, batch_size=4096), flow)
    with pytest.raises(ValueError, match=r"series must have shape \[T, S\]"):
        predict.train_workload_predictor(jax.random.key(1), config, flow[:, 0])


def test_transformer_trains_and_compare_table(flow):
    config = tiny("lstm_transformer", epochs=2, patience=0)
    rows = predict.compare_predictors(jax.random.key(3), flow, kinds=("lstm_transformer",), config=config)
    assert [row["kind"] for row in rows] == ["lstm_transformer", "persistence"]
    for row in rows:
        assert all(np.isfinite(row[k]) for k in ("rmse", "mae", "error_rate_pct", "r2", "rmse_norm", "mae_norm"))
    assert rows[0]["epochs_run"] == 2 and rows[0]["num_params"] > 0
    assert rows[1]["rmse"] == pytest.approx(predict.evaluate_persistence(flow, config)["rmse"])
    table = predict.format_comparison_table(rows)
    assert table.splitlines()[0].startswith("| model | RMSE | MAE | error rate (WAPE %) | R2")
    assert "| LSTM-Transformer |" in table and "| Persistence |" in table and len(table.splitlines()) == 4
    with pytest.raises(ValueError, match="compare_predictors.kinds"):
        predict.compare_predictors(jax.random.key(3), flow, kinds=("arima",))


# ---------------------------------------------------------------- data, §4.1
def test_load_traffic_csv_wide_and_long(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text("time,rsu_a,rsu_b\n300,4,7.5\n0,1,2\n\n600,5,8\n")
    series, times, ids = predict.load_traffic_csv(wide, return_labels=True)
    assert series.dtype == np.float32 and ids == ["rsu_a", "rsu_b"]
    np.testing.assert_array_equal(times, [0.0, 300.0, 600.0])  # sorted by time
    np.testing.assert_array_equal(series, [[1.0, 2.0], [4.0, 7.5], [5.0, 8.0]])
    np.testing.assert_array_equal(predict.load_traffic_csv(wide, columns=["rsu_b"]), [[2.0], [7.5], [8.0]])
    long = tmp_path / "long.csv"
    long.write_text(
        "timestamp,station,flow\n"
        "2024-01-01 00:05:00,rsu_a,4\n2024-01-01 00:00:00,rsu_a,1\n2024-01-01 00:00:00,rsu_b,2\n"
        "2024-01-01 00:05:00,rsu_b,7.5\n2024-01-01 00:10:00,rsu_b,8\n2024-01-01 00:10:00,rsu_a,5\n"
    )
    long_series, long_times, long_ids = predict.load_traffic_csv(long, return_labels=True)
    assert long_ids == ["rsu_a", "rsu_b"]
    np.testing.assert_array_equal(long_series, series)
    np.testing.assert_array_equal(np.diff(long_times), [300.0, 300.0])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty", "", "empty file"),
        ("no_rows", "time,a\n", "no data rows"),
        ("one_column", "time\n1\n2\n", "at least one named series column"),
        ("text", "time,a,b\n0,1,2\n1,x,2\n", "line 3, column 'a': non-numeric value 'x'"),
        ("nan", "time,a,b\n0,1,2\n1,nan,2\n", "line 3, column 'a': non-finite value"),
        ("short_row", "time,a,b\n0,1,2\n1,2\n", "line 3: expected 3 fields"),
        ("bad_time", "time,a\nnoon,1\n1,2\n", "line 2, column 'time': unparseable time 'noon'"),
        ("duplicate_time", "time,a\n0,1\n5,2\n0,3\n", "lines 2 and 4, column 'time': duplicate time"),
        ("duplicate_column", "time,a,a\n0,1,2\n1,2,3\n", "duplicate column name"),
        ("one_time", "time,a\n0,1\n", "at least 2 time rows"),
        ("long_missing", "time,id,value\n0,a,1\n0,b,2\n1,a,3\n", "no value for id='b' at time='1'"),
        (
            "long_duplicate",
            "time,id,value\n0,a,1\n0,a,2\n1,a,3\n",
            "line 3: duplicate \\(time, id\\) = \\(0, a\\), first on line 2",
        ),
    ],
)
def test_load_traffic_csv_rejects_malformed_files(tmp_path, name, content, message):
    path = tmp_path / f"{name}.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        predict.load_traffic_csv(path)


def test_load_traffic_csv_options(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("time,a,b\n0,1,2\n1,2,3\n")
    with pytest.raises(ValueError, match="not found"):
        predict.load_traffic_csv(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="requested series \\['c'\\]"):
        predict.load_traffic_csv(path, columns=["c"])
    with pytest.raises(ValueError, match="long-layout file needs the header"):
        predict.load_traffic_csv(path, layout="long")


def test_simulated_server_traffic():
    xy = np.array([[1500.0, 1500.0], [600.0, 2400.0], [-5000.0, -5000.0]])  # the last is far off the map
    kwargs = dict(radius_m=[700.0, 700.0, 100.0], num_vehicles=40, num_slots=96, day_slots=48)
    series = np.asarray(predict.simulate_server_traffic(jax.random.key(0), xy, **kwargs))
    assert series.shape == (96, 3) and series.dtype == np.float32
    assert np.all(series >= 0.0) and np.all(series == np.round(series)) and np.all(series <= 40)
    np.testing.assert_array_equal(series[:, 2], 0.0)
    assert series[:, 0].sum() > 0
    # the daily cycle: more vehicles around mid-day (slot 24) than around midnight (slots 0 and 48)
    night = series[np.r_[0:6, 42:54], :2].mean()
    day = series[18:30, :2].mean()
    assert day > 1.5 * night
    np.testing.assert_array_equal(series, predict.simulate_server_traffic(jax.random.key(0), xy, **kwargs))
    with pytest.raises(ValueError, match="server_xy_m must have shape"):
        predict.simulate_server_traffic(jax.random.key(0), xy[:, :1], **kwargs)
    with pytest.raises(ValueError, match="radius_m must be > 0"):
        predict.simulate_server_traffic(jax.random.key(0), xy, **{**kwargs, "radius_m": 0.0})


def test_synthetic_traffic_flow(flow):
    assert flow.shape == (400, 3) and np.all(flow >= 0.0)
    np.testing.assert_allclose(flow.mean(axis=0), [10.0, 20.0, 5.0], rtol=0.15)  # the sines average out
    again = predict.synthetic_traffic_flow(jax.random.key(0), 3, 400, base=[10.0, 20.0, 5.0], day_slots=48)
    np.testing.assert_array_equal(flow, again)
    with pytest.raises(ValueError, match="ar_coeff"):
        predict.synthetic_traffic_flow(jax.random.key(0), 3, 400, ar_coeff=1.0)


# ---------------------------------------------------------------- files
def test_save_load_round_trip_and_bad_files(tmp_path, flow):
    config = tiny("lstm_transformer", positional_embedding=True)
    predictor = predict.init_workload_predictor(jax.random.key(5), config, low=[0.0, 1.0, 2.0], high=[10.0, 20.0, 30.0])
    path = predict.save_workload_predictor(tmp_path / "sub" / "workload.msgpack", predictor)
    loaded = predict.load_workload_predictor(path)
    assert loaded.config == config
    jax.tree.map(np.testing.assert_array_equal, loaded.params, predictor.params)
    np.testing.assert_array_equal(loaded.low, predictor.low)
    np.testing.assert_array_equal(loaded.high, predictor.high)
    assert [p.name for p in path.parent.iterdir()] == ["workload.msgpack"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError, match="train_workload_predictor"):
        predict.load_workload_predictor(tmp_path / "missing.msgpack")
    raw = path.read_bytes()
    header, _, payload = raw.partition(b"\n")
    other_sizes = header.replace(b'"model_dim": 8', b'"model_dim": 16')
    assert other_sizes != header
    for name, content, message in (
        ("garbage", b"not a predictor", "corrupt workload predictor file"),
        ("truncated", raw[: len(raw) // 2], "corrupt workload predictor file"),
        ("header_only", header, "no weights after the header"),
        ("shapes", other_sizes + b"\n" + payload, "do not match the header's config"),
        ("unknown_field", header.replace(b'"kind"', b'"flavour"') + b"\n" + payload, "unknown config field"),
    ):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=message):
            predict.load_workload_predictor(bad)
