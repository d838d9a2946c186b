"""Coverage-aware LSTM trajectory predictor: spec 003 §4 (Sec. V of the paper).

    positions_m = simulate_trajectories(key, grid, mobility_params, slot_s=10.0)   # [T, V, 2] (`traffic`)
    predictor, history = train_predictor(key, PredictorConfig(hidden_size=32), positions_m, box_m=map_box_m(extent_m))
    p_next_m = predict_next_position_m(predictor, window_m)      # [..., 12, 2] -> [..., 2]
    params = env.default_params.replace(predictor=predictor)     # workload_forecast="lstm"

    cell          eqs. (12)-(17)  `TrajectoryLSTM`            flax `OptimizedLSTMCell`, scanned by `nn.RNN`
    inference     §4.4            `predict_next_position_m`   `apply_stacked`: both layers in one scan
    model         §4.2            `TrajectoryLSTM`            LSTM -> Dropout -> LSTM -> Dense(2) -> ReLU
    training      §4.3            `train_predictor`           min-max box, chronological split, Adam, MSE
    metrics       §4.6            `regression_metrics`        MSE, RMSE, MAE, MedAE, R^2 (flattened)
    workloads     eq. (18)        the env ("lstm" forecast)   kappa * vehicles predicted in coverage

Positions are metres in the map frame. The network sees them min-max normalised to [0, 1] per coordinate
over a box (`low_m`, `high_m`) that travels with the trained weights in the `TrajectoryPredictor` pytree.
This module never imports `vmjax.envs` and takes no env: the training data come from `traffic.simulate_trajectories`
(road grid and mobility parameters) and the box from `map_box_m` (the map extent); the env-specific glue (the
env's own road and mobility) is `vmjax.envs.avatar_premigration.simulate_trajectories` / `map_box_m`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct

from vmjax.core import io, validation
from vmjax.predict import training

FILE_FORMAT = "vmjax-trajectory-lstm"
FILE_VERSION = 1


# ====================================================================== configuration
@dataclasses.dataclass(frozen=True)
class PredictorConfig:
    """Every knob of the predictor and its training, with the spec 003 §4 defaults."""

    hidden_size: int = 256  # cells per LSTM layer [P]
    dropout_rate: float = 0.05  # dropout between the LSTM layers, training only [P]
    history_slots: int = 12  # input window: the last 12 positions [P]
    batch_size: int = 40  # minibatch size [P]
    epochs: int = 500  # passes over the training windows [P]
    learning_rate: float = 1e-3  # Adam step size (Keras default) [C] §10 #21
    train_fraction: float = 0.8  # chronological split per vehicle: first 80% of windows train [C] §10 #21
    num_vehicles: int = 10  # vehicles simulated for training data [P: 10 observed vehicles]
    num_slots: int = 8640  # slots per vehicle: one day at 10 s [C] §7.2

    def __post_init__(self):
        owner = "PredictorConfig"
        validation.check_int_at_least(owner, "hidden_size", self.hidden_size, 1)
        validation.check_int_at_least(owner, "history_slots", self.history_slots, 1)
        validation.check_int_at_least(owner, "batch_size", self.batch_size, 1)
        validation.check_int_at_least(owner, "epochs", self.epochs, 1)
        validation.check_int_at_least(owner, "num_vehicles", self.num_vehicles, 1)
        validation.check_int_at_least(owner, "num_slots", self.num_slots, self.history_slots + 2)
        validation.check_probability(owner, "dropout_rate", self.dropout_rate)
        if self.dropout_rate >= 1.0:
            raise ValueError(f"{owner}.dropout_rate must be < 1, got {self.dropout_rate!r}")
        validation.check_positive(owner, "learning_rate", self.learning_rate)
        validation.check_probability(owner, "train_fraction", self.train_fraction)
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"{owner}.train_fraction must be in (0, 1), got {self.train_fraction!r}")


# ====================================================================== the network, §4.1-§4.2
def sigmoid_via_tanh(x: jax.Array) -> jax.Array:
    """sigma(x) = (1 + tanh(x / 2)) / 2: the gate function of eqs. (12)-(14), written with tanh, which XLA's
    CPU backend evaluates about twice as fast as the exp-based logistic (same values to float32 rounding)."""
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


class TrajectoryLSTM(nn.Module):
    """Spec 003 §4.2 "five-layer model": LSTM (full sequence) -> Dropout -> LSTM (last hidden state) ->
    Dense(2) -> ReLU.

    Each LSTM layer is flax's `OptimizedLSTMCell` (eqs. 12-17: gates i, f, o and candidate g = c~, then
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t)) scanned over time by `nn.RNN` from a zero state. Inputs
    [batch, history, 2] are min-max normalised coordinates; the output [batch, 2] is the normalised next
    position, non-negative because of the final ReLU (kept for faithfulness, §10 #21).
    [C] The Dense bias starts at 0.5, the centre of the normalised box, so the ReLU does not start dead.
    """

    hidden_size: int = 256
    dropout_rate: float = 0.05

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
        cell = functools.partial(nn.OptimizedLSTMCell, self.hidden_size, gate_fn=sigmoid_via_tanh)
        sequence = nn.RNN(cell(name="lstm_1"))(inputs)  # [B, T, H]
        sequence = nn.Dropout(self.dropout_rate, deterministic=not train)(sequence)
        (_, last_hidden), _ = nn.RNN(cell(name="lstm_2"), return_carry=True)(sequence)  # carry (c, h): h = last [B, H]
        out = nn.Dense(2, bias_init=nn.initializers.constant(0.5), name="dense")(last_hidden)
        return nn.relu(out)


@struct.dataclass
class TrajectoryPredictor:
    """A trained predictor as one pytree: network weights plus the normalisation box (metres, map frame).

    `hidden_size` and `history_slots` are static (part of the tree structure), so the predictor can sit in
    the env's `EnvParams` and run inside `jit`.
    """

    params: Any  # the TrajectoryLSTM "params" collection
    low_m: jax.Array  # [2] box corner mapped to 0
    high_m: jax.Array  # [2] box corner mapped to 1
    hidden_size: int = struct.field(pytree_node=False, default=256)
    history_slots: int = struct.field(pytree_node=False, default=12)

    @property
    def model(self) -> TrajectoryLSTM:
        return TrajectoryLSTM(hidden_size=self.hidden_size)


def _check_box(owner: str, low_m, high_m) -> tuple[jax.Array, jax.Array]:
    """Box corners as float32 [2] arrays, or ValueError naming the field."""
    low_m, high_m = np.asarray(low_m, np.float64), np.asarray(high_m, np.float64)
    validation.check_shape(owner, "low_m", low_m, (2,))
    validation.check_shape(owner, "high_m", high_m, (2,))
    validation.check_finite(owner, "low_m", low_m)
    validation.check_finite(owner, "high_m", high_m)
    if not np.all(high_m > low_m):
        raise ValueError(f"{owner}: the box must have high_m > low_m in both coordinates, got {low_m} and {high_m}")
    return jnp.asarray(low_m, jnp.float32), jnp.asarray(high_m, jnp.float32)


def init_predictor(key, hidden_size: int = 256, history_slots: int = 12, low_m=(0.0, 0.0), high_m=(1.0, 1.0)):
    """An untrained `TrajectoryPredictor` (flax default initialisation) for the box [low_m, high_m]."""
    validation.check_int_at_least("init_predictor", "hidden_size", hidden_size, 1)
    validation.check_int_at_least("init_predictor", "history_slots", history_slots, 1)
    low, high = _check_box("init_predictor", low_m, high_m)
    return TrajectoryPredictor(
        params=_init_params(key, hidden_size, history_slots),
        low_m=low,
        high_m=high,
        hidden_size=hidden_size,
        history_slots=history_slots,
    )


@functools.partial(jax.jit, static_argnames=("hidden_size", "history_slots"))
def _init_params(key, hidden_size: int, history_slots: int):
    """Flax default initialisation of the TrajectoryLSTM weights (jitted: eager init of the scans is slow)."""
    return TrajectoryLSTM(hidden_size=hidden_size).init(key, jnp.zeros((1, history_slots, 2), jnp.float32))["params"]


def map_box_m(extent_m) -> tuple[np.ndarray, np.ndarray]:
    """The map box ((0, 0), (width, height)) in metres of a map of `extent_m` = (width, height) (a road grid's
    `extent_m`), a natural normalisation box for `train_predictor`."""
    return np.zeros(2, np.float32), np.asarray(extent_m, np.float32)


# ====================================================================== normalisation and prediction
def normalize(positions_m, low_m, high_m):
    """Min-max scaling to [0, 1] per coordinate over the box (§4.3)."""
    return (positions_m - low_m) / (high_m - low_m)


def denormalize(normalized, low_m, high_m):
    """Inverse of `normalize`: metres in the map frame."""
    return low_m + normalized * (high_m - low_m)


def apply_stacked(predictor: TrajectoryPredictor, inputs: jax.Array, unroll: int | bool = 1) -> jax.Array:
    """`TrajectoryLSTM` at inference on normalised windows [B, history, 2] -> [B, 2], with both LSTM layers
    advanced in one scan over time (layer 2 consumes h_t of layer 1 as soon as it exists).

    Without dropout this is the same function as `predictor.model.apply`, but it never stores layer 1's
    [B, history, H] output sequence: memory O(B H) instead of O(B history H), which is what lets the env
    reset thousands of worlds at once.
    """
    params = predictor.params
    cell = nn.OptimizedLSTMCell(predictor.hidden_size, gate_fn=sigmoid_via_tanh)
    zeros = jnp.zeros((inputs.shape[0], predictor.hidden_size), inputs.dtype)

    def step(carry, x_t):
        state_1, state_2 = carry
        state_1, h_1 = cell.apply({"params": params["lstm_1"]}, state_1, x_t)  # eqs. (12)-(17), layer 1
        state_2, _ = cell.apply({"params": params["lstm_2"]}, state_2, h_1)  # layer 2
        return (state_1, state_2), None

    initial = ((zeros, zeros), (zeros, zeros))
    (_, (_, last_hidden)), _ = jax.lax.scan(step, initial, jnp.swapaxes(inputs, 0, 1), unroll=unroll)
    return nn.relu(last_hidden @ params["dense"]["kernel"] + params["dense"]["bias"])


def predict_next_position_m(predictor: TrajectoryPredictor, history_m: jax.Array) -> jax.Array:
    """p^(t+1) [..., 2] in metres from the last `history_slots` positions [..., history, 2] (deterministic:
    no dropout; `apply_stacked`). Pure and jittable; any number of leading batch axes."""
    history_m = jnp.asarray(history_m, jnp.float32)
    if history_m.ndim < 2 or history_m.shape[-2:] != (predictor.history_slots, 2):
        raise ValueError(
            f"predict_next_position_m: history_m must have shape [..., {predictor.history_slots}, 2] "
            f"(predictor.history_slots positions), got {tuple(history_m.shape)}"
        )
    batch_shape = history_m.shape[:-2]
    x = normalize(history_m, predictor.low_m, predictor.high_m).reshape(-1, predictor.history_slots, 2)
    y = apply_stacked(predictor, x)
    return denormalize(y, predictor.low_m, predictor.high_m).reshape(*batch_shape, 2)


def predict_trajectory_m(predictor: TrajectoryPredictor, positions_m: jax.Array, slots_per_call: int | None = 25):
    """One-step predictions along whole trajectories [T, V, 2] -> [T - history + 1, V, 2]: row k is p^ of slot
    k + history, predicted from slots k .. k + history - 1 (used by the env reset).

    The windows of `slots_per_call` consecutive rows (all vehicles) go through the network in one batched
    call, the calls one after another (`lax.map`); under `vmap` over worlds this bounds the memory of the
    LSTM activations at thousands of worlds. None: every window in one call.
    """
    windows = jnp.swapaxes(_windows(positions_m, predictor.history_slots), 1, 2)  # [W, V, h, 2], W = T - h + 1
    if slots_per_call is None or slots_per_call >= windows.shape[0]:
        return predict_next_position_m(predictor, windows)
    validation.check_int_at_least("predict_trajectory_m", "slots_per_call", slots_per_call, 1)
    return jax.lax.map(lambda w: predict_next_position_m(predictor, w), windows, batch_size=slots_per_call)


def constant_velocity(history_m: jax.Array) -> jax.Array:
    """Reference predictor p(t) + (p(t) - p(t-1)) from a window [..., history >= 2, 2] -> [..., 2]."""
    history_m = jnp.asarray(history_m)
    if history_m.ndim < 2 or history_m.shape[-2] < 2 or history_m.shape[-1] != 2:
        raise ValueError(f"constant_velocity: history_m must have shape [..., >= 2, 2], got {tuple(history_m.shape)}")
    return 2.0 * history_m[..., -1, :] - history_m[..., -2, :]


# ====================================================================== data, §4.3 / §7.2
def _check_positions(owner: str, positions_m, min_slots: int, num_features: int = 2) -> jax.Array:
    positions_m = jnp.asarray(positions_m, jnp.float32)
    if positions_m.ndim != 3 or positions_m.shape[-1] != num_features:
        raise ValueError(f"{owner}: positions_m must have shape [T, V, {num_features}], got {tuple(positions_m.shape)}")
    if positions_m.shape[0] < min_slots:
        raise ValueError(f"{owner}: positions_m needs at least {min_slots} slots, got {positions_m.shape[0]}")
    return positions_m


def _windows(positions_m: jax.Array, length: int) -> jax.Array:
    """All windows of `length` consecutive slots [T - length + 1, length, V, 2] (gather, jittable)."""
    starts = jnp.arange(positions_m.shape[0] - length + 1)
    return positions_m[starts[:, None] + jnp.arange(length)[None, :]]


def sliding_windows(positions_m, history: int, num_features: int = 2) -> tuple[jax.Array, jax.Array]:
    """Training pairs of §4.3: (inputs [S, history, F], targets [S, F]) with S = V (T - history), from
    series [T, V, F] (F = `num_features`: 2 for positions, 1 for the univariate workload series).

    Vehicle-major order: sample v * (T - history) + s is vehicle v's slots s .. s + history - 1 -> slot
    s + history, so each vehicle's samples are chronological.
    """
    validation.check_int_at_least("sliding_windows", "history", history, 1)
    positions_m = _check_positions("sliding_windows", positions_m, history + 1, num_features)
    windows = jnp.moveaxis(_windows(positions_m, history + 1), 2, 0)  # [V, W, h + 1, F]
    windows = windows.reshape(-1, history + 1, num_features)
    return windows[:, :history], windows[:, history]


def train_windows_per_vehicle(num_windows: int, train_fraction: float) -> int:
    """Number of each vehicle's (chronological) windows that go to training; the rest are held out."""
    num_train = int(np.floor(train_fraction * num_windows))
    if not 1 <= num_train < num_windows:
        raise ValueError(
            f"train_fraction={train_fraction} of {num_windows} windows per vehicle leaves an empty training or "
            "held-out set: use longer trajectories"
        )
    return num_train


def chronological_split(positions_m, history: int, train_fraction: float, num_features: int = 2):
    """Chronological split per vehicle (§10 #21): each vehicle's first `train_fraction` of windows train, the
    later ones are held out. Series [T, V, F] as in `sliding_windows`.
    Returns ((train_inputs, train_targets), (heldout_inputs, heldout_targets))."""
    positions_m = _check_positions("chronological_split", positions_m, history + 2, num_features)
    num_vehicles, num_windows = positions_m.shape[1], positions_m.shape[0] - history
    num_train = train_windows_per_vehicle(num_windows, train_fraction)
    inputs, targets = sliding_windows(positions_m, history, num_features)
    inputs = inputs.reshape(num_vehicles, num_windows, history, num_features)
    targets = targets.reshape(num_vehicles, num_windows, num_features)
    flat = lambda a: a.reshape(-1, *a.shape[2:])
    return (
        (flat(inputs[:, :num_train]), flat(targets[:, :num_train])),
        (flat(inputs[:, num_train:]), flat(targets[:, num_train:])),
    )


# ====================================================================== training, §4.3 (Algorithm 1)
@functools.lru_cache(maxsize=16)
def _training_functions(hidden_size, dropout_rate, learning_rate, history, batch_size, num_batches):
    """Jitted epoch and evaluation functions, cached per static setting so repeated calls do not recompile."""
    model = TrajectoryLSTM(hidden_size=hidden_size, dropout_rate=dropout_rate)
    tx = optax.adam(learning_rate)
    offsets = jnp.arange(history)

    def loss_fn(params, inputs, targets, key):
        prediction = model.apply({"params": params}, inputs, train=True, rngs={"dropout": key})
        return training.mse(prediction, targets)

    def gather(data, idx):
        """The minibatch's windows, gathered from the series [T, V, 2] by (vehicle, start slot)."""
        vehicle, start, series = data
        v, s = vehicle[idx], start[idx]
        return series[s[:, None] + offsets[None, :], v[:, None]], series[s + history, v]  # [B, h, 2], [B, 2]

    run_epoch = training.minibatch_epoch(loss_fn, tx, batch_size, num_batches, gather)

    @jax.jit
    def evaluate(params, inputs, targets):
        return training.mapped_mse(lambda x: model.apply({"params": params}, x[None])[0], inputs, targets)

    return model, tx, run_epoch, evaluate


def train_predictor(
    key,
    config: PredictorConfig,
    positions_m,
    *,
    box_m: tuple | None = None,
    progress: Callable[[int, dict], bool | None] | None = None,
) -> tuple[TrajectoryPredictor, dict]:
    """Train the §4.2 model on trajectories [T, V, 2] (metres) as §4.3 prescribes.

    - min-max normalisation over `box_m` = (low_m [2], high_m [2]); default: the data's own per-coordinate
      min and max (pass `map_box_m(extent_m)` to use the map box);
    - sliding windows (history -> next slot), chronological `train_fraction` split per vehicle;
    - Adam, MSE, `epochs` shuffled passes of `batch_size` minibatches (the last partial batch of each
      shuffle is dropped); one jitted `lax.scan` per epoch (`training.fit`).

    `progress(epoch, record)` is called after every epoch with record = {"epoch", "train_mse",
    "heldout_mse", "elapsed_s"}; returning True stops training early.
    Returns (predictor, history) with history = {"train_mse" [E], "heldout_mse" [E], "elapsed_s" [E],
    "initial_heldout_mse"}: per-epoch mean minibatch MSE (with dropout) and held-out MSE (normalised units).
    Deterministic for a key.
    """
    if not isinstance(config, PredictorConfig):
        raise TypeError(f"train_predictor: config must be a PredictorConfig, got {type(config).__name__}")
    h = config.history_slots
    positions_m = _check_positions("train_predictor", positions_m, h + 2)
    if box_m is None:
        flat = np.asarray(positions_m).reshape(-1, 2)
        box_m = (flat.min(axis=0), flat.max(axis=0))
    low_m, high_m = _check_box("train_predictor box_m", *box_m)
    series = normalize(positions_m, low_m, high_m)  # [T, V, 2]

    num_slots, num_vehicles = series.shape[:2]
    num_windows = num_slots - h
    num_train = train_windows_per_vehicle(num_windows, config.train_fraction)
    total_train = num_vehicles * num_train
    if total_train < config.batch_size:
        raise ValueError(
            f"train_predictor: {total_train} training windows are fewer than PredictorConfig.batch_size="
            f"{config.batch_size}: use longer trajectories or more vehicles"
        )
    vehicle = jnp.repeat(jnp.arange(num_vehicles, dtype=jnp.int32), num_train)
    start = jnp.tile(jnp.arange(num_train, dtype=jnp.int32), num_vehicles)
    _, (heldout_inputs, heldout_targets) = chronological_split(series, h, config.train_fraction)

    _, tx, run_epoch, evaluate = _training_functions(
        config.hidden_size,
        config.dropout_rate,
        config.learning_rate,
        h,
        config.batch_size,
        total_train // config.batch_size,
    )
    params, history, _ = training.fit(
        key,
        lambda k: _init_params(k, config.hidden_size, h),
        tx,
        run_epoch,
        (vehicle, start, series),
        lambda p: float(evaluate(p, heldout_inputs, heldout_targets)),
        epochs=config.epochs,
        metric="heldout_mse",
        progress=progress,
    )
    predictor = TrajectoryPredictor(
        params=params, low_m=low_m, high_m=high_m, hidden_size=config.hidden_size, history_slots=h
    )
    return predictor, history


# ====================================================================== metrics, §4.6
def regression_metrics(y_true, y_pred) -> dict:
    """§4.6 metrics over all samples and both coordinates, flattened: MSE, RMSE, MAE, MedAE, and
    R^2 = 1 - sum (y - y^)^2 / sum (y - mean(y))^2 with one mean over the flattened values.
    "r2_uniform" is sklearn's multi-output uniform average (the mean of the per-coordinate R^2)."""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"regression_metrics: y_true and y_pred must have the same non-empty shape, got "
            f"{y_true.shape} and {y_pred.shape}"
        )
    error = y_true - y_pred
    abs_error = np.abs(error)
    mse = float(np.mean(error**2))

    def r2(truth, err):
        denominator = np.sum((truth - truth.mean()) ** 2)
        return float(1.0 - np.sum(err**2) / denominator) if denominator > 0 else float("nan")

    columns_true, columns_err = y_true.reshape(-1, y_true.shape[-1]), error.reshape(-1, y_true.shape[-1])
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(abs_error)),
        "medae": float(np.median(abs_error)),
        "r2": r2(y_true, error),
        "r2_uniform": float(np.mean([r2(columns_true[:, j], columns_err[:, j]) for j in range(y_true.shape[-1])])),
    }


def _metrics_in_both_units(predicted_m, targets_m, low_m, high_m) -> dict:
    """Normalised §4.6 metrics plus RMSE, MAE and MedAE in metres."""
    low_m, high_m = np.asarray(low_m), np.asarray(high_m)
    metrics = regression_metrics(
        normalize(np.asarray(targets_m), low_m, high_m), normalize(np.asarray(predicted_m), low_m, high_m)
    )
    in_metres = regression_metrics(targets_m, predicted_m)
    metrics.update({f"{name}_m": in_metres[name] for name in ("rmse", "mae", "medae")})
    return metrics


def evaluate_predictor(predictor: TrajectoryPredictor, positions_m) -> dict:
    """§4.6 metrics of one-step predictions over every window of trajectories [T, V, 2] (use held-out data):
    mse, rmse, mae, medae, r2, r2_uniform in normalised units and rmse_m, mae_m, medae_m in metres, plus
    num_samples."""
    inputs, targets = sliding_windows(positions_m, predictor.history_slots)
    predicted = jax.jit(predict_next_position_m)(predictor, inputs)
    metrics = _metrics_in_both_units(predicted, targets, predictor.low_m, predictor.high_m)
    return dict(metrics, num_samples=int(targets.shape[0]))


def evaluate_constant_velocity(positions_m, history_slots: int, low_m, high_m) -> dict:
    """The same metrics as `evaluate_predictor` for the constant-velocity reference on the same windows."""
    inputs, targets = sliding_windows(positions_m, history_slots)
    low, high = _check_box("evaluate_constant_velocity", low_m, high_m)
    metrics = _metrics_in_both_units(constant_velocity(inputs), targets, low, high)
    return dict(metrics, num_samples=int(targets.shape[0]))


# ====================================================================== files
def save_predictor(path: str | os.PathLike, predictor: TrajectoryPredictor) -> Path:
    """Write the predictor atomically: one JSON header line (format, version, hidden_size, history_slots,
    low_m, high_m) then the flax msgpack of the weights."""
    header = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "hidden_size": int(predictor.hidden_size),
        "history_slots": int(predictor.history_slots),
        "low_m": [float(v) for v in np.asarray(predictor.low_m)],
        "high_m": [float(v) for v in np.asarray(predictor.high_m)],
    }
    payload = serialization.to_bytes(jax.device_get(predictor.params))
    return io.atomic_write_bytes(path, json.dumps(header, sort_keys=True).encode("utf-8") + b"\n" + payload)


def load_predictor(path: str | os.PathLike) -> TrajectoryPredictor:
    """Read a file written by `save_predictor`; FileNotFoundError when missing, ValueError when corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no trajectory predictor file at {path}: train one with vmjax.predict.train_predictor and write it "
            "with vmjax.predict.save_predictor"
        )
    data = path.read_bytes()
    head, sep, payload = data.partition(b"\n")
    try:
        header = json.loads(head.decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
            raise ValueError(f"format is not {FILE_FORMAT!r}")
        if header.get("version") != FILE_VERSION:
            raise ValueError(f"unsupported version {header.get('version')!r} (this code reads {FILE_VERSION})")
        hidden_size, history_slots = int(header["hidden_size"]), int(header["history_slots"])
        validation.check_int_at_least("predictor file", "hidden_size", hidden_size, 1)
        validation.check_int_at_least("predictor file", "history_slots", history_slots, 1)
        low_m, high_m = _check_box("predictor file", header["low_m"], header["high_m"])
        if not sep:
            raise ValueError("no weights after the header")
        template = jax.eval_shape(  # shapes only; static arguments bound outside eval_shape (older jax traces them)
            lambda key: _init_params(key, hidden_size=hidden_size, history_slots=history_slots), jax.random.key(0)
        )
        params = serialization.from_bytes(template, payload)
        shapes_ok = jax.tree.all(jax.tree.map(lambda a, b: np.shape(a) == b.shape, params, template))
        if not shapes_ok:
            raise ValueError("weight shapes do not match the header's hidden_size")
    except Exception as err:  # any decoding failure means a corrupt file
        raise ValueError(f"corrupt trajectory predictor file {path}: {err}") from err
    return TrajectoryPredictor(
        params=jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params),
        low_m=low_m,
        high_m=high_m,
        hidden_size=hidden_size,
        history_slots=history_slots,
    )
