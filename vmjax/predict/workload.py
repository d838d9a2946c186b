"""Workload predictors: spec 002 §4 (Sec. V, Alg. 1) — the LSTM-based Transformer and its comparison models.

    series = traffic.simulate_server_traffic(key, server_xy_m, radius_m=600.0, num_vehicles=300, num_slots=2000)
    predictor, history = train_workload_predictor(key, WorkloadPredictorConfig(), series)
    next_load = predict_next_load(predictor, series[-6:])        # [..., 6, S] -> [..., S], same units
    rows = compare_predictors(key, series)                       # one row per model + persistence
    print(format_comparison_table(rows))

    data           §4.1    series [T, S] from `traffic`: `load_traffic_csv` (a user's flow CSV),
                           `simulate_server_traffic` (vehicles in coverage), `synthetic_traffic_flow` (formula)
    model          §4.2    `LSTMTransformer`: LSTM(d_h) -> Dense(d_k) per step -> post-LN Transformer
                           encoder block (H heads of width d_k, FFN) -> last step -> Dense(1)
    comparison     §4.4    `RecurrentPredictor`: [Conv1D(k=1) + ReLU] -> LSTM | GRU -> last h -> Dense(1)
    training       §4.3    `train_workload_predictor`: per-series scaling on the train split, chronological
                           70/10/20 split, MSE, Adam + clip 1.0, early stopping on validation MSE (best kept),
                           the loop of `training.fit`
    inference      §4.3    `predict_next_load` (one step, jittable; what an env calls), `predict_load_series`
                           (every slot of a series at once: the precomputed S^pre table of §4.3); the
                           LSTM-Transformer with last-step pooling runs fused (`_fused_lstm_transformer`:
                           the last query's attention folded into products of weights, ~5x fewer FLOPs)
    metrics        §4.5    `workload_metrics`: RMSE, MAE, error rate (WAPE %), R^2 on the raw scale, RMSE and
                           MAE also on the normalised scale; `compare_predictors` puts every model in one table

Univariate and shared (§4.1, §4.3 [REC]): every model maps one series' window [batch, window, 1] to its next
value [batch, 1]; one model serves all servers (the S series are folded into the batch), each series scaled
with its own train-split statistics. The units of a series are whatever the data are in (vehicles in
coverage, flow counts, bits): predictions come back in the same units; the env maps a flow to a workload
with S^pre_m = S_v * c^_m (§4.1).

Time base (§4.1 [REC]): one sample of a series is one slot (PeMS 5-min samples read as 30-s env slots, the
spec's default option (i), "time compression"); nothing here resamples.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct

from vmjax.core import io, validation
from vmjax.core.initializers import (
    orthogonal,  # QR-free (flax's QR-based init can deadlock big CPU jits)
)
from vmjax.predict import training
from vmjax.predict.lstm import (
    chronological_split,
    denormalize,
    normalize,
    regression_metrics,
    sigmoid_via_tanh,
    sliding_windows,
)

FILE_FORMAT = "vmjax-workload-predictor"
FILE_VERSION = 1

ModelKind = Literal["lstm_transformer", "lstm", "gru", "cnn_lstm", "cnn_gru"]
MODEL_KINDS = typing.get_args(ModelKind)
MODEL_NAMES = {
    "lstm_transformer": "LSTM-Transformer",
    "lstm": "LSTM",
    "gru": "GRU",
    "cnn_lstm": "CNN-LSTM",
    "cnn_gru": "CNN-GRU",
    "persistence": "Persistence",
}


# ====================================================================== configuration
@dataclasses.dataclass(frozen=True)
class WorkloadPredictorConfig:
    """Every knob of a workload predictor and its training, with the spec 002 §4 defaults.

    [P] = the paper's value, [REC] = the spec's recommendation, [C] = chosen here (the spec is silent).
    Architecture fields a model kind does not use are ignored by it (e.g. `num_heads` by "gru").
    """

    kind: ModelKind = "lstm_transformer"  # one of MODEL_KINDS: the §4.2 model or a §4.4 comparison model
    window: int = 6  # T input slots -> the next one [P: T = 6; REC §9 #24: 6 inputs, not T + 1]
    hidden_size: int = 32  # d_h of the LSTM / GRU [P for the Transformer; REC 32 for §4.4 models]
    model_dim: int = 64  # d_k: Dense(d_h -> d_k) per step, the Transformer's width [P]
    num_heads: int = 4  # H attention heads [P]
    head_dim: int = 64  # q/k/v width per head; W_O: H * head_dim -> model_dim [REC §9 #26: 64 per head]
    ffn_dim: int = 128  # position-wise FFN model_dim -> ffn_dim -> model_dim [REC]
    ffn_activation: Literal["relu", "gelu"] = "relu"  # "relu" or "gelu" in the FFN [REC: ReLU/GELU]
    dropout_rate: float = 0.1  # dropout on the Transformer block's sublayer outputs, training only [REC]
    positional_embedding: bool = False  # learned per-step embedding added before attention [REC: optional]
    causal_attention: bool = False  # step k attends only to steps <= k [C: off; every input is past data]
    pooling: Literal["last", "mean"] = "last"  # "last" or "mean" over steps before the output Dense [REC: last (or
    # mean)]
    conv_filters: int = 32  # Conv1D filters of "cnn_lstm" / "cnn_gru" [REC: 32]
    conv_kernel_size: int = 1  # Conv1D kernel over time, causal padding [P per spec §4.4: 1]
    scaler: Literal["minmax", "zscore"] = "minmax"  # "minmax" ([0, 1] over the train split) or "zscore" [REC: either]
    per_series_scaling: bool = True  # one scaler per series [REC]; False: one for all (any series count)
    nonnegative: bool = True  # clip de-normalised predictions at 0 (traffic is a count) [C]
    learning_rate: float = 1e-3  # Adam step size [REC]
    batch_size: int = 64  # minibatch of windows (the last partial batch of each shuffle is dropped) [REC]
    epochs: int = 100  # maximum passes over the training windows [REC: <= 100]
    patience: int = 10  # stop after this many epochs without a better validation MSE; 0: never [REC]
    grad_clip_norm: float = 1.0  # global-norm gradient clipping; 0: off [REC]
    train_fraction: float = 0.7  # chronological split of each series' windows: first 70 % train [REC]
    val_fraction: float = 0.1  # next 10 % validate (early stopping, best epoch); the last 20 % test [REC]

    def __post_init__(self):
        owner = "WorkloadPredictorConfig"
        validation.check_literal_fields(self)
        validation.check_int_at_least(owner, "window", self.window, 1)
        for name in (
            "hidden_size",
            "model_dim",
            "num_heads",
            "head_dim",
            "ffn_dim",
            "conv_filters",
            "conv_kernel_size",
            "batch_size",
            "epochs",
        ):
            validation.check_int_at_least(owner, name, getattr(self, name), 1)
        validation.check_int_at_least(owner, "patience", self.patience, 0)
        for name in ("positional_embedding", "causal_attention", "per_series_scaling", "nonnegative"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{owner}.{name} must be a bool, got {getattr(self, name)!r}")
        validation.check_probability(owner, "dropout_rate", self.dropout_rate)
        if self.dropout_rate >= 1.0:
            raise ValueError(f"{owner}.dropout_rate must be < 1, got {self.dropout_rate!r}")
        validation.check_positive(owner, "learning_rate", self.learning_rate)
        validation.check_non_negative(owner, "grad_clip_norm", self.grad_clip_norm)
        for name in ("train_fraction", "val_fraction"):
            validation.check_probability(owner, name, getattr(self, name))
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"{owner}.train_fraction must be in (0, 1), got {self.train_fraction!r}")
        if not self.train_fraction + self.val_fraction < 1.0:
            raise ValueError(
                f"{owner}.train_fraction + val_fraction must be < 1 (the rest is the test split), got "
                f"{self.train_fraction} + {self.val_fraction}"
            )
        if self.patience > 0 and self.val_fraction == 0.0:
            raise ValueError(
                f"{owner}.patience={self.patience} needs a validation split: val_fraction > 0 (or patience=0)"
            )


# ====================================================================== the networks, §4.2 and §4.4
def _lstm_cell(hidden_size: int, name: str) -> nn.OptimizedLSTMCell:
    """Standard LSTM cell, eq. (17) with the linear cell update (§9 #25), zero initial state."""
    return nn.OptimizedLSTMCell(hidden_size, gate_fn=sigmoid_via_tanh, recurrent_kernel_init=orthogonal(), name=name)


def _gru_cell(hidden_size: int, name: str) -> nn.GRUCell:
    return nn.GRUCell(hidden_size, gate_fn=sigmoid_via_tanh, recurrent_kernel_init=orthogonal(), name=name)


class LSTMTransformer(nn.Module):
    """Spec 002 §4.2 (Fig. 2, eqs. 17-18 cleaned), on normalised windows [B, T, 1] -> [B, 1]:

    1. LSTM(d_h) over the window, full hidden sequence H [B, T, d_h] (eq. 17, linear cell update);
    2. Dense(d_h -> d_k) per step, X [B, T, d_k]; optional learned positional embedding;
    3. one Transformer encoder block, post-LN: X = LN(X + Drop(MHA(X))), X = LN(X + Drop(FFN(X))), where
       MHA has H heads of width `head_dim` (softmax(Q K^T / sqrt(head_dim)) V per head, concat, W_O back to
       d_k; eq. 18 with the missing V and the repeated head fixed) and FFN = Dense(ffn) -> act -> Dense(d_k);
       optional causal mask;
    4. the last step (or the mean over steps) -> Dense(1).

    `return_sequence=True` returns the encoder output [B, T, d_k] instead (before pooling).
    """

    hidden_size: int = 32
    model_dim: int = 64
    num_heads: int = 4
    head_dim: int = 64
    ffn_dim: int = 128
    ffn_activation: str = "relu"
    dropout_rate: float = 0.1
    positional_embedding: bool = False
    causal_attention: bool = False
    pooling: str = "last"

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool = False, return_sequence: bool = False) -> jax.Array:
        hidden = nn.RNN(_lstm_cell(self.hidden_size, "lstm"))(inputs)  # [B, T, d_h]
        x = nn.Dense(self.model_dim, name="project")(hidden)  # [B, T, d_k]
        if self.positional_embedding:
            x = x + self.param("position", nn.initializers.normal(0.02), (inputs.shape[-2], self.model_dim))
        mask = nn.make_causal_mask(jnp.ones(inputs.shape[:-1])) if self.causal_attention else None
        if self.pooling == "last" and not return_sequence:
            # Only the last step reaches the output: attend from its query alone (same result, ~2x fewer FLOPs;
            # the causal mask's last row is all ones). Keys and values still span the whole window.
            queries, mask = x[:, -1:], None
        else:
            queries = x
        attention = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.num_heads * self.head_dim,
            out_features=self.model_dim,
            name="attention",
        )(queries, x, x, mask=mask, deterministic=True)
        dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
        x = nn.LayerNorm(name="norm_1")(queries + dropout(attention))
        activation = nn.relu if self.ffn_activation == "relu" else nn.gelu
        ffn = nn.Dense(self.model_dim, name="ffn_2")(activation(nn.Dense(self.ffn_dim, name="ffn_1")(x)))
        x = nn.LayerNorm(name="norm_2")(x + dropout(ffn))
        if return_sequence:
            return x
        pooled = x[:, -1] if self.pooling == "last" else jnp.mean(x, axis=1)
        return nn.Dense(1, name="head")(pooled)


class RecurrentPredictor(nn.Module):
    """Spec 002 §4.4 comparison models on normalised windows [B, T, 1] -> [B, 1]:
    [Conv1D(conv_filters, kernel, causal padding) -> ReLU] (when `conv_filters` > 0: CNN-LSTM / CNN-GRU) ->
    one LSTM or GRU layer (`cell`) -> last hidden state -> Dense(1). `train` is accepted and unused."""

    cell: str = "lstm"
    hidden_size: int = 32
    conv_filters: int = 0
    conv_kernel_size: int = 1

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
        x = inputs
        if self.conv_filters > 0:
            x = nn.relu(nn.Conv(self.conv_filters, (self.conv_kernel_size,), padding="CAUSAL", name="conv")(x))
        make_cell = _lstm_cell if self.cell == "lstm" else _gru_cell
        hidden = nn.RNN(make_cell(self.hidden_size, self.cell))(x)  # [B, T, hidden]
        return nn.Dense(1, name="head")(hidden[:, -1])


def make_workload_model(config: WorkloadPredictorConfig) -> nn.Module:
    """The flax module of `config.kind` with the config's sizes."""
    if config.kind == "lstm_transformer":
        return LSTMTransformer(
            hidden_size=config.hidden_size,
            model_dim=config.model_dim,
            num_heads=config.num_heads,
            head_dim=config.head_dim,
            ffn_dim=config.ffn_dim,
            ffn_activation=config.ffn_activation,
            dropout_rate=config.dropout_rate,
            positional_embedding=config.positional_embedding,
            causal_attention=config.causal_attention,
            pooling=config.pooling,
        )
    return RecurrentPredictor(
        cell="gru" if config.kind.endswith("gru") else "lstm",
        hidden_size=config.hidden_size,
        conv_filters=config.conv_filters if config.kind.startswith("cnn_") else 0,
        conv_kernel_size=config.conv_kernel_size,
    )


@struct.dataclass
class WorkloadPredictor:
    """A trained workload predictor as one pytree: weights plus the scaler (raw units).

    The scaler maps raw values to the network's scale with `normalize(x, low, high)` = (x - low) / (high -
    low): for "minmax" low/high are the train-split min/max, for "zscore" mean and mean + std. Shape [S]
    (one per series, `per_series_scaling`) or [1] (shared; the predictor then accepts any number of series).
    `config` is static (part of the tree structure), so the predictor can sit in an env's `EnvParams` and run
    inside `jit`.
    """

    params: Any  # the model's "params" collection
    low: jax.Array  # [S] or [1] raw value mapped to 0
    high: jax.Array  # [S] or [1] raw value mapped to 1
    config: WorkloadPredictorConfig = struct.field(pytree_node=False, default=WorkloadPredictorConfig())

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def num_series(self) -> int | None:
        """The series count the scaler was fitted to, or None when it is shared (any count works)."""
        return int(self.low.shape[-1]) if self.config.per_series_scaling else None

    @property
    def model(self) -> nn.Module:
        return make_workload_model(self.config)


@functools.partial(jax.jit, static_argnames=("config",))
def _init_params(key, config: WorkloadPredictorConfig):
    """Initial weights (jitted: eager init of the scans is slow)."""
    dummy = jnp.zeros((1, config.window, 1), jnp.float32)
    return make_workload_model(config).init(key, dummy)["params"]


def _check_scaler(owner: str, low, high) -> tuple[jax.Array, jax.Array]:
    low, high = np.atleast_1d(np.asarray(low, np.float64)), np.atleast_1d(np.asarray(high, np.float64))
    if low.ndim != 1 or low.shape != high.shape:
        raise ValueError(
            f"{owner}: low and high must be [S] vectors of the same shape, got {low.shape} and {high.shape}"
        )
    validation.check_finite(owner, "low", low)
    validation.check_finite(owner, "high", high)
    if not np.all(high > low):
        raise ValueError(f"{owner}: the scaler needs high > low for every series, got low={low} and high={high}")
    return jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)


def init_workload_predictor(key, config: WorkloadPredictorConfig | None = None, low=0.0, high=1.0) -> WorkloadPredictor:
    """An untrained predictor (flax default initialisation, orthogonal recurrent kernels) with the scaler
    (low, high): scalars or [S] vectors (see `WorkloadPredictor`)."""
    config = WorkloadPredictorConfig() if config is None else config
    if not isinstance(config, WorkloadPredictorConfig):
        raise TypeError(
            f"init_workload_predictor: config must be a WorkloadPredictorConfig, got {type(config).__name__}"
        )
    low, high = _check_scaler("init_workload_predictor", low, high)
    return WorkloadPredictor(params=_init_params(key, config), low=low, high=high, config=config)


def count_params(predictor: WorkloadPredictor) -> int:
    """Number of trainable weights."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(predictor.params)))


# ====================================================================== inference
def predict_next_load(predictor: WorkloadPredictor, history: jax.Array) -> jax.Array:
    """Next-slot load [..., S] from the last `window` slots of every series, `history` [..., window, S]
    (oldest first, raw units); predictions come back in the same units (clipped at 0 when
    `config.nonnegative`). Deterministic (no dropout), pure, jittable and vmappable; the series are folded
    into the batch of the shared univariate model (run fused for the LSTM-Transformer, `_apply_model`). ValueError (at trace time) on a wrong window or a
    series count that does not match a per-series scaler."""
    history = jnp.asarray(history, jnp.float32)
    window = predictor.window
    if history.ndim < 2 or history.shape[-2] != window:
        raise ValueError(
            f"predict_next_load: history must have shape [..., {window}, num_series] (predictor window = {window} "
            f"slots, oldest first), got {tuple(history.shape)}"
        )
    num_series, scaled = history.shape[-1], predictor.low.shape[-1]
    if scaled not in (1, num_series):
        raise ValueError(
            f"predict_next_load: history has {num_series} series but the predictor's scaler was fitted to {scaled} "
            "(train with per_series_scaling=False for a predictor that accepts any series count)"
        )
    batch_shape = history.shape[:-2]
    x = normalize(history, predictor.low, predictor.high)  # [..., W, S]
    x = jnp.swapaxes(x, -1, -2).reshape(-1, window)  # [N S, W]: every series of every batch element at once
    y = _apply_model(predictor, x).reshape(*batch_shape, num_series)
    load = denormalize(y, predictor.low, predictor.high)
    return jnp.maximum(load, 0.0) if predictor.config.nonnegative else load


# ---------------------------------------------------------------- fused inference of the LSTM-Transformer
def _lstm_sequence(lstm: dict, x: jax.Array) -> list[jax.Array]:
    """Eq. (17) over windows x [B, T] (one feature per step): the hidden states h_1..h_T [B, d_h] of `nn.RNN`
    of the model's `OptimizedLSTMCell` (zero initial state, linear cell update), unrolled; the first step skips
    the products with the zero state (0 @ K_h = 0, f * c_0 = 0: the same values)."""
    gates = ("i", "f", "o", "g")  # the three sigmoid gates side by side: one element-wise pass over them
    kernel_h = jnp.concatenate([lstm[f"h{g}"]["kernel"] for g in gates], axis=-1)  # [d_h, 4 d_h]
    bias_h = jnp.concatenate([lstm[f"h{g}"]["bias"] for g in gates], axis=-1)
    kernel_i = jnp.concatenate([lstm[f"i{g}"]["kernel"] for g in gates], axis=-1)  # [1, 4 d_h]
    d_h = kernel_h.shape[0]
    hidden = []
    h = c = None
    for t in range(x.shape[-1]):
        z = (bias_h if h is None else jnp.dot(h, kernel_h) + bias_h) + jnp.dot(x[:, t : t + 1], kernel_i)
        sig = sigmoid_via_tanh(z[:, : 3 * d_h])
        i, f, o = sig[:, :d_h], sig[:, d_h : 2 * d_h], sig[:, 2 * d_h :]
        g = jnp.tanh(z[:, 3 * d_h :])
        c = i * g if c is None else f * c + i * g
        h = o * jnp.tanh(c)
        hidden.append(h)
    return hidden


def _fused_attention_weights(params: dict, config: WorkloadPredictorConfig, window: int) -> dict:
    """The products of weights that make the last step's attention act on the LSTM states directly (spec 002
    §4.2 step 3 with the last query only): with X = H W_p + b_p (+ P), q = (x_T W_Q + b_Q) / sqrt(d),
    k_j = x_j W_K + b_K, v_j = x_j W_V + b_V, per head h
        score_hj = q_h . k_hj = h_T G_h . h_j (+ e_h . h_j + a term per j from P) + a constant over j,
        sum_j p_hj v_hj W_O,h = (sum_j p_hj h_j) W_p W_V,h W_O,h (+ sum_j p_hj P_j W_V,h W_O,h) + constants
    (sum_j p_hj = 1), with G_h = W_p W_Q,h W_K,h^T W_p^T / sqrt(d). Softmax ignores the constants over j.
    Parameters only: computed once per call, shared by every window (and every world of a batch)."""
    att = params["attention"]
    w_p, b_p = params["project"]["kernel"], params["project"]["bias"]  # [d_h, d_k], [d_k]
    w_q, b_q = att["query"]["kernel"], att["query"]["bias"]  # [d_k, H, d], [H, d]
    w_k = att["key"]["kernel"]
    w_v, b_v = att["value"]["kernel"], att["value"]["bias"]
    w_o, b_o = att["out"]["kernel"], att["out"]["bias"]  # [H, d, d_k], [d_k]
    scale = 1.0 / np.sqrt(config.head_dim)
    hi = jax.lax.Precision.HIGHEST
    a = jnp.einsum("mhd,nhd->hmn", w_q, w_k, precision=hi) * scale  # [H, d_k, d_k]: q_h . k = x_T A_h x^T
    a_p = jnp.einsum("hmn,pn->hmp", a, w_p, precision=hi)  # A_h W_p^T [H, d_k, d_h]
    b_k = scale * jnp.einsum("hd,nhd,pn->hp", b_q, w_k, w_p, precision=hi)  # b_Q's term: b_Q W_K^T W_p^T / sqrt(d)
    out = {
        "g": jnp.einsum("qm,hmp->qhp", w_p, a_p, precision=hi).reshape(w_p.shape[0], -1),  # [d_h, H d_h]
        "e": (jnp.einsum("m,hmp->hp", b_p, a_p, precision=hi) + b_k).reshape(-1),
        "values": jnp.einsum("qm,mhd,hdn->hqn", w_p, w_v, w_o, precision=hi).reshape(-1, w_o.shape[-1]),  # [H d_h, d_k]
        "bias": b_o
        + jnp.einsum("m,mhd,hdn->n", b_p, w_v, w_o, precision=hi)
        + jnp.einsum("hd,hdn->n", b_v, w_o, precision=hi),
    }
    if config.positional_embedding:  # x_T carries P_T: its score term from x_T itself, [d_k, H d_h]
        out["g_x"] = jnp.transpose(a_p, (1, 0, 2)).reshape(a_p.shape[1], -1)
        out["e_x"] = b_k.reshape(-1)
        pos = params["position"][:window]  # [T, d_k]
        out["pos_scores"] = jnp.einsum("hmn,tn->mht", a, pos, precision=hi)  # x_T -> the P_j term of each score
        out["pos_q"] = scale * jnp.einsum("hd,nhd,tn->ht", b_q, w_k, pos, precision=hi)  # b_Q's P_j term
        out["pos_values"] = jnp.einsum("tm,mhd,hdn->htn", pos, w_v, w_o, precision=hi)  # [H, T, d_k]
    return out


def _fused_lstm_transformer(params: dict, config: WorkloadPredictorConfig, x: jax.Array) -> jax.Array:
    """`LSTMTransformer` at inference with `pooling="last"` on windows x [B, T] (normalised) -> [B]: the same
    function as the flax module (float32 rounding apart), with the attention of the last step folded into
    products of weights (`_fused_attention_weights`): ~5x fewer FLOPs per window (no keys and values of the
    earlier steps, no projection of their LSTM states)."""
    window = x.shape[-1]
    hidden = _lstm_sequence(params["lstm"], x)  # T x [B, d_h], never stacked (a copy of every state)
    h_last = hidden[-1]
    fused = _fused_attention_weights(params, config, window)
    heads, d_h = config.num_heads, config.hidden_size
    x_last = jnp.dot(h_last, params["project"]["kernel"]) + params["project"]["bias"]  # [B, d_k]
    if config.positional_embedding:
        x_last = x_last + params["position"][window - 1]
        g = jnp.dot(x_last, fused["g_x"]) + fused["e_x"]
    else:
        g = jnp.dot(h_last, fused["g"]) + fused["e"]
    g = g.reshape(-1, heads, d_h)  # [B, H, d_h]: score_hj = g_h . h_j (+ constants over j)
    scores = jnp.stack([jnp.einsum("bhp,bp->bh", g, h) for h in hidden], axis=-1)  # [B, H, T]
    if config.positional_embedding:
        scores = scores + jnp.einsum("bm,mht->bht", x_last, fused["pos_scores"]) + fused["pos_q"]
    weights = jax.nn.softmax(scores, axis=-1)
    pooled = sum(weights[:, :, t, None] * h[:, None, :] for t, h in enumerate(hidden))  # [B, H, d_h]
    attention = jnp.dot(pooled.reshape(-1, heads * d_h), fused["values"]) + fused["bias"]
    if config.positional_embedding:
        attention = attention + jnp.einsum("bht,htn->bn", weights, fused["pos_values"])
    norm = lambda name, y: nn.LayerNorm().apply({"params": params[name]}, y)
    dense = lambda name, y: nn.Dense(params[name]["kernel"].shape[-1]).apply({"params": params[name]}, y)
    y = norm("norm_1", x_last + attention)
    activation = nn.relu if config.ffn_activation == "relu" else nn.gelu
    y = norm("norm_2", y + dense("ffn_2", activation(dense("ffn_1", y))))
    return dense("head", y)[:, 0]


def _apply_model(predictor: WorkloadPredictor, x: jax.Array) -> jax.Array:
    """The network on normalised windows x [B, T] -> [B]: `_fused_lstm_transformer` for the LSTM-Transformer
    with last-step pooling, else the flax module."""
    config = predictor.config
    if config.kind == "lstm_transformer" and config.pooling == "last":
        return _fused_lstm_transformer(predictor.params, config, x)
    return predictor.model.apply({"params": predictor.params}, x[..., None])[:, 0]


def predict_load_series(predictor: WorkloadPredictor, series: jax.Array) -> jax.Array:
    """One-step predictions along whole series [T, S] -> [T - window, S]: row k predicts slot k + window from
    slots k .. k + window - 1 (the precomputed S^pre table of spec §4.3). Jittable."""
    series = jnp.asarray(series, jnp.float32)
    if series.ndim != 2 or series.shape[0] <= predictor.window:
        raise ValueError(f"predict_load_series: series must be [T > {predictor.window}, S], got {tuple(series.shape)}")
    starts = jnp.arange(series.shape[0] - predictor.window)
    windows = series[starts[:, None] + jnp.arange(predictor.window)[None, :]]  # [T - W, W, S]
    return predict_next_load(predictor, windows)


def persistence(history: jax.Array) -> jax.Array:
    """Reference forecast: the last observed value, [..., window, S] -> [..., S] (the spec's "w/o
    prediction" observation, §8.1)."""
    return jnp.asarray(history)[..., -1, :]


# ====================================================================== data, §4.1
def _check_series(owner: str, series, min_slots: int) -> np.ndarray:
    series = np.asarray(series, np.float32)
    if series.ndim != 2 or series.shape[1] < 1:
        raise ValueError(f"{owner}: series must have shape [T, S] (slots x series), got {series.shape}")
    if series.shape[0] < min_slots:
        raise ValueError(
            f"{owner}: series needs at least {min_slots} slots for this window and split, got {series.shape[0]}"
        )
    bad = np.argwhere(~np.isfinite(series))
    if bad.size:
        raise ValueError(
            f"{owner}: series must be finite, first non-finite value at [t, s] = {tuple(int(i) for i in bad[0])}"
        )
    return series


# ====================================================================== splits and scaling, §4.1
def split_sizes(num_slots: int, config: WorkloadPredictorConfig) -> tuple[int, int, int]:
    """Windows per series in the (train, val, test) splits: W = num_slots - window windows, chronological,
    floor(train_fraction W) and floor(val_fraction W) of them, the test split the rest (each >= 1, val >= 0)."""
    num_windows = num_slots - config.window
    num_train = int(np.floor(config.train_fraction * num_windows))
    num_val = int(np.floor(config.val_fraction * num_windows))
    num_test = num_windows - num_train - num_val
    if num_train < 1 or num_test < 1 or (config.val_fraction > 0 and num_val < 1):
        raise ValueError(
            f"{num_slots} slots give {num_windows} windows of {config.window} per series: the "
            f"{config.train_fraction}/{config.val_fraction}/rest split leaves an empty split; use a longer series"
        )
    return num_train, num_val, num_test


def _split_windows(series: np.ndarray, config: WorkloadPredictorConfig):
    """{"train", "val", "test"}: (inputs [S, n, window], targets [S, n]) in raw units, each series'
    windows in time order (targets of the train split are slots window .. window + n_train - 1, etc.).
    `chronological_split` makes the (train + val | test) cut, the val windows are the tail of the first part."""
    num_train, num_val, num_test = split_sizes(series.shape[0], config)
    w, s = config.window, series.shape[1]
    fraction = (num_train + num_val + 0.5) / (series.shape[0] - w)  # floor(fraction W) = num_train + num_val exactly
    (fit_x, fit_y), (test_x, test_y) = chronological_split(series[..., None], w, fraction, num_features=1)
    fit_x, fit_y = fit_x.reshape(s, -1, w), fit_y.reshape(s, -1)
    test_x, test_y = test_x.reshape(s, -1, w), test_y.reshape(s, -1)
    assert fit_y.shape[1] == num_train + num_val and test_y.shape[1] == num_test
    return {
        "train": (fit_x[:, :num_train], fit_y[:, :num_train]),
        "val": (fit_x[:, num_train:], fit_y[:, num_train:]),
        "test": (test_x, test_y),
    }


def fit_scaler(series, config: WorkloadPredictorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the §4.1 normalisation from the slots the train split sees (its inputs and targets):
    per series [S] or pooled [1]; a constant series gets high = low + 1 (so it maps to 0, not NaN)."""
    series = np.asarray(series, np.float64)
    num_train, _, _ = split_sizes(series.shape[0], config)
    seen = series[: num_train + config.window]  # every slot of the train windows
    if not config.per_series_scaling:
        seen = seen.reshape(-1, 1)
    if config.scaler == "minmax":
        low, high = seen.min(axis=0), seen.max(axis=0)
    else:
        low = seen.mean(axis=0)
        high = low + seen.std(axis=0)
    high = np.where(high - low > 1e-6 * np.maximum(1.0, np.abs(low)), high, low + 1.0)
    return low.astype(np.float32), high.astype(np.float32)


# ====================================================================== metrics, §4.5
def workload_metrics(y_true, y_pred, low=None, high=None) -> dict:
    """§4.5 metrics of predictions [N, S] (raw units) against targets [N, S]:

    - "rmse", "mae": raw scale; "r2": 1 - sum (y - y^)^2 / sum (y - mean y)^2 pooled over all series (one
      mean), "r2_per_series": the mean of each series' R^2 (`regression_metrics`'s "r2_uniform");
    - "error_rate_pct": WAPE = sum |y^ - y| / sum |y| x 100 (§4.5 [REC]: the paper leaves "error rate"
      undefined, and MAPE is unstable near zero flow); "mape_pct": MAPE over targets y != 0 only;
    - with the scaler (low, high): "rmse_norm", "mae_norm" on the normalised scale (the scale the paper's
      table appears to mix in, §4.5), labelled as such.
    """
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    base = regression_metrics(y_true, y_pred)
    abs_error = np.abs(y_pred - y_true)
    total = np.sum(np.abs(y_true))
    nonzero = y_true != 0
    metrics = {
        "rmse": base["rmse"],
        "mae": base["mae"],
        "error_rate_pct": float(100.0 * np.sum(abs_error) / total) if total > 0 else float("nan"),
        "mape_pct": float(100.0 * np.mean(abs_error[nonzero] / np.abs(y_true[nonzero])))
        if nonzero.any()
        else float("nan"),
        "r2": base["r2"],
        "r2_per_series": base["r2_uniform"],
        "num_samples": int(y_true.size),
    }
    if low is not None and high is not None:
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        normalised = regression_metrics(normalize(y_true, low, high), normalize(y_pred, low, high))
        metrics.update(rmse_norm=normalised["rmse"], mae_norm=normalised["mae"])
    return metrics


def _split_for_eval(series, config, split):
    validation.check_choice("evaluate", "split", split, ("train", "val", "test", "all"))
    series = _check_series("evaluate", series, config.window + 1)
    if split == "all":
        inputs, targets = sliding_windows(series[..., None], config.window, num_features=1)
        s = series.shape[1]
        return np.asarray(inputs).reshape(s, -1, config.window), np.asarray(targets).reshape(s, -1)
    inputs, targets = _split_windows(series, config)[split]
    return np.asarray(inputs), np.asarray(targets)


def evaluate_workload_predictor(predictor: WorkloadPredictor, series, split: str = "test") -> dict:
    """`workload_metrics` of one-step predictions on `split` of series [T, S] (raw units): "test" (default),
    "val" or "train" cut as in training (the predictor's config fractions), or "all" windows (for a
    separate held-out series). Normalised metrics use the predictor's scaler."""
    inputs, targets = _split_for_eval(series, predictor.config, split)  # [S, n, W], [S, n]
    history = jnp.asarray(np.transpose(inputs, (1, 2, 0)))  # [n, W, S]
    predicted = _jitted_predict(predictor, history)
    return workload_metrics(targets.T, np.asarray(predicted), predictor.low, predictor.high)


@jax.jit
def _jitted_predict(predictor, history):
    return predict_next_load(predictor, history)


def evaluate_persistence(series, config: WorkloadPredictorConfig | None = None, split: str = "test") -> dict:
    """The same metrics for the persistence forecast (last value) on the same windows, normalised with the
    scaler `train_workload_predictor` would fit."""
    config = WorkloadPredictorConfig() if config is None else config
    inputs, targets = _split_for_eval(series, config, split)
    low, high = fit_scaler(series, config)
    return workload_metrics(targets.T, inputs[:, :, -1].T, low, high)


# ====================================================================== training, §4.3 (Algorithm 1)
@functools.lru_cache(maxsize=32)
def _training_functions(config: WorkloadPredictorConfig, num_batches: int):
    """Jitted epoch and evaluation functions, cached per static setting so repeated calls do not recompile."""
    model = make_workload_model(config)
    tx = optax.adam(config.learning_rate)
    if config.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)

    def loss_fn(params, inputs, targets, key):
        prediction = model.apply({"params": params}, inputs, train=True, rngs={"dropout": key})[:, 0]
        return training.mse(prediction, targets)

    def gather(data, idx):
        inputs, targets = data
        return inputs[idx], targets[idx]

    run_epoch = training.minibatch_epoch(loss_fn, tx, config.batch_size, num_batches, gather)

    @jax.jit
    def evaluate(params, inputs, targets):
        return training.mapped_mse(lambda x: model.apply({"params": params}, x[None])[0, 0], inputs, targets)

    return tx, run_epoch, evaluate


def train_workload_predictor(
    key,
    config: WorkloadPredictorConfig,
    series,
    *,
    progress: Callable[[int, dict], bool | None] | None = None,
) -> tuple[WorkloadPredictor, dict]:
    """Train `config.kind` on series [T, S] (raw units) as spec §4.3 recommends, before any RL:

    - scaler (`fit_scaler`) from the train split only; windows of `config.window` slots -> the next slot;
    - chronological split per series: the first `train_fraction` of windows train, the next `val_fraction`
      validate, the rest is the test split (`evaluate_workload_predictor`);
    - one shared univariate model over all series; MSE on normalised values, Adam with global-norm
      clipping, shuffled minibatches (one jitted `lax.scan` per epoch), up to `epochs` epochs;
    - early stopping: stop after `patience` epochs without a better validation MSE and return the weights of
      the best validation epoch (patience 0: run every epoch, still keep the best; no val split: the last).

    `progress(epoch, record)` is called after each epoch with record = {"epoch", "train_mse", "val_mse",
    "elapsed_s"}; returning True stops training.
    Returns (predictor, history) with history = {"train_mse" [E], "val_mse" [E], "elapsed_s" [E],
    "initial_val_mse", "best_epoch", "epochs_run", "stopped_early"} (normalised MSE; train MSE is the mean
    minibatch loss with dropout). Deterministic for a key.
    """
    if not isinstance(config, WorkloadPredictorConfig):
        raise TypeError(
            f"train_workload_predictor: config must be a WorkloadPredictorConfig, got {type(config).__name__}"
        )
    series = _check_series("train_workload_predictor", series, config.window + 3)
    low, high = fit_scaler(series, config)
    scaled = np.asarray(normalize(series, low, high), np.float32)
    splits = _split_windows(scaled, config)
    flat = lambda xy: (jnp.asarray(xy[0].reshape(-1, config.window, 1)), jnp.asarray(xy[1].reshape(-1)))
    train_x, train_y = flat(splits["train"])
    val_x, val_y = flat(splits["val"])
    has_val = val_y.shape[0] > 0
    if train_y.shape[0] < config.batch_size:
        raise ValueError(
            f"train_workload_predictor: {train_y.shape[0]} training windows are fewer than "
            f"WorkloadPredictorConfig.batch_size={config.batch_size}: use a longer series or a smaller batch"
        )

    tx, run_epoch, evaluate = _training_functions(config, train_y.shape[0] // config.batch_size)
    val_mse = (lambda p: float(evaluate(p, val_x, val_y))) if has_val else (lambda p: float("nan"))
    best_params, history, info = training.fit(
        key,
        lambda k: _init_params(k, config),
        tx,
        run_epoch,
        (train_x, train_y),
        val_mse,
        epochs=config.epochs,
        metric="val_mse",
        select_best=has_val,
        patience=config.patience,
        progress=progress,
    )
    history.update(info)
    predictor = WorkloadPredictor(params=best_params, low=jnp.asarray(low), high=jnp.asarray(high), config=config)
    return predictor, history


def compare_predictors(
    key,
    series,
    kinds: Sequence[str] = MODEL_KINDS,
    config: WorkloadPredictorConfig | None = None,
    *,
    progress: Callable[[str, int, dict], bool | None] | None = None,
) -> list[dict]:
    """Spec §4.4: train every model kind under one protocol (the same `config` apart from `kind`, the same
    series, split, scaler and key) and evaluate each on the test split. Returns one row per kind, then a
    "persistence" reference row: {"model", "kind", "rmse", "mae", "error_rate_pct", "r2", "r2_per_series",
    "mape_pct", "rmse_norm", "mae_norm", "num_samples", "num_params", "epochs_run", "best_epoch",
    "train_s"}. `progress(kind, epoch, record)` is forwarded to training."""
    config = WorkloadPredictorConfig() if config is None else config
    for kind in kinds:
        validation.check_choice("compare_predictors", "kinds", kind, MODEL_KINDS)
    rows = []
    for kind in kinds:
        t0 = time.perf_counter()
        callback = None if progress is None else functools.partial(progress, kind)
        predictor, history = train_workload_predictor(
            key, dataclasses.replace(config, kind=kind), series, progress=callback
        )
        train_s = time.perf_counter() - t0
        metrics = evaluate_workload_predictor(predictor, series, "test")
        rows.append(
            {
                "model": MODEL_NAMES[kind],
                "kind": kind,
                **metrics,
                "num_params": count_params(predictor),
                "epochs_run": history["epochs_run"],
                "best_epoch": history["best_epoch"],
                "train_s": train_s,
            }
        )
    metrics = evaluate_persistence(series, config, "test")
    rows.append(
        {
            "model": MODEL_NAMES["persistence"],
            "kind": "persistence",
            **metrics,
            "num_params": 0,
            "epochs_run": 0,
            "best_epoch": -1,
            "train_s": 0.0,
        }
    )
    return rows


def format_comparison_table(rows: Sequence[dict]) -> str:
    """A Markdown table of `compare_predictors` rows (raw-scale metrics, then the normalised RMSE / MAE)."""
    header = (
        "| model | RMSE | MAE | error rate (WAPE %) | R2 | R2 per series | RMSE (norm.) | MAE (norm.) | "
        "params | epochs (best) | train s |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['rmse']:.4g} | {row['mae']:.4g} | {row['error_rate_pct']:.2f} | {row['r2']:.4f} | "
            f"{row['r2_per_series']:.4f} | {row.get('rmse_norm', float('nan')):.4f} | {row.get('mae_norm', float('nan')):.4f} | "
            f"{row['num_params']} | {row['epochs_run']} ({row['best_epoch'] + 1 if row['best_epoch'] >= 0 else '-'}) | "
            f"{row['train_s']:.1f} |"
        )
    return "\n".join(lines)


# ====================================================================== files
def save_workload_predictor(path: str | os.PathLike, predictor: WorkloadPredictor) -> Path:
    """Write the predictor atomically: one JSON header line (format, version, the config, low, high) then
    the flax msgpack of the weights."""
    header = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "config": dataclasses.asdict(predictor.config),
        "low": [float(v) for v in np.asarray(predictor.low)],
        "high": [float(v) for v in np.asarray(predictor.high)],
    }
    payload = serialization.to_bytes(jax.device_get(predictor.params))
    return io.atomic_write_bytes(path, json.dumps(header, sort_keys=True).encode("utf-8") + b"\n" + payload)


def load_workload_predictor(path: str | os.PathLike) -> WorkloadPredictor:
    """Read a file written by `save_workload_predictor`; FileNotFoundError when missing, ValueError when
    corrupt (bad header, unknown config field, weights whose shapes do not match the config)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no workload predictor file at {path}: train one with vmjax.predict.train_workload_predictor and "
            "write it with vmjax.predict.save_workload_predictor"
        )
    head, sep, payload = path.read_bytes().partition(b"\n")
    try:
        header = json.loads(head.decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
            raise ValueError(f"format is not {FILE_FORMAT!r}")
        if header.get("version") != FILE_VERSION:
            raise ValueError(f"unsupported version {header.get('version')!r} (this code reads {FILE_VERSION})")
        config = validation.config_from_kwargs(
            WorkloadPredictorConfig, "workload predictor file", dict(header["config"])
        )
        low, high = _check_scaler("workload predictor file", header["low"], header["high"])
        if not sep:
            raise ValueError("no weights after the header")
        template = jax.eval_shape(lambda key: _init_params(key, config=config), jax.random.key(0))  # shapes only
        params = serialization.from_bytes(template, payload)
        same = jax.tree.structure(params) == jax.tree.structure(template) and jax.tree.all(
            jax.tree.map(lambda a, b: np.shape(a) == b.shape, params, template)
        )
        if not same:
            raise ValueError("weight shapes do not match the header's config")
    except Exception as err:  # any decoding failure means a corrupt file
        raise ValueError(f"corrupt workload predictor file {path}: {err}") from err
    return WorkloadPredictor(
        params=jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params), low=low, high=high, config=config
    )
