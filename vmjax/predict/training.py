"""The training loop every predictor shares: shuffled minibatch epochs (one jitted `lax.scan` each), a held-out
MSE after every epoch, a progress callback, optional early stopping on the held-out MSE.

    run_epoch = minibatch_epoch(loss_fn, tx, batch_size, num_batches, gather)    # jitted, built once per setting
    params, history, info = fit(key, init_params, tx, run_epoch, data, evaluate, epochs=100, metric="val_mse")

Used by `lstm.train_predictor` (spec 003 §4.3) and `workload.train_workload_predictor` (spec 002 §4.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax


def mse(prediction, target):
    """Mean squared error over every element."""
    return jnp.mean(jnp.square(prediction - target))


def mapped_mse(predict_one: Callable, inputs, targets, batch_size: int = 4096):
    """MSE of `predict_one` (one sample -> its prediction) mapped over `inputs` in batches of `batch_size`
    (`lax.map`: bounded memory on long held-out sets)."""
    return mse(jax.lax.map(predict_one, inputs, batch_size=batch_size), targets)


def minibatch_epoch(
    loss_fn: Callable, tx: optax.GradientTransformation, batch_size: int, num_batches: int, gather: Callable
) -> Callable:
    """A jitted `run_epoch(params, opt_state, key, data) -> (params, opt_state, mean minibatch loss)`: one shuffled
    pass over the training samples, a `lax.scan` over `num_batches` minibatches of `batch_size` samples (the last
    partial batch of the shuffle is dropped), one optimiser step each.

    `data` is a tuple of arrays whose first has one row per training sample (its length is what gets shuffled);
    `gather(data, idx)` returns the minibatch (inputs, targets) of the sample indices `idx` [batch_size];
    `loss_fn(params, inputs, targets, key)` gets a fresh dropout key per minibatch.
    """

    @jax.jit
    def run_epoch(params, opt_state, key, data):
        k_perm, k_drop = jax.random.split(key)
        order = jax.random.permutation(k_perm, data[0].shape[0])[: num_batches * batch_size]
        order = order.reshape(num_batches, batch_size)

        def step(carry, xs):
            params, opt_state = carry
            idx, k = xs
            inputs, targets = gather(data, idx)
            loss, grads = jax.value_and_grad(loss_fn)(params, inputs, targets, k)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(
            step, (params, opt_state), (order, jax.random.split(k_drop, num_batches))
        )
        return params, opt_state, jnp.mean(losses)

    return run_epoch


def fit(
    key,
    init_params: Callable[[Any], Any],
    tx: optax.GradientTransformation,
    run_epoch: Callable,
    data: tuple,
    evaluate: Callable[[Any], float],
    *,
    epochs: int,
    metric: str,
    select_best: bool = False,
    patience: int = 0,
    progress: Callable[[int, dict], bool | None] | None = None,
) -> tuple[Any, dict, dict]:
    """Train for up to `epochs` epochs of `run_epoch` (`minibatch_epoch`) from `init_params(k_init)`, with
    (k_init, k_epochs) = split(key) and one key of split(k_epochs, epochs) per epoch.

    After every epoch `evaluate(params)` gives the held-out MSE, recorded as `metric`; `progress(epoch, record)`
    gets record = {"epoch", "train_mse", metric, "elapsed_s"} and stops training by returning True.
    `select_best`: return the weights of the epoch with the lowest `metric` (the first of equals) and, with
    `patience` > 0, stop after `patience` epochs without a lower one; otherwise return the last weights.

    Returns (params, history, info): history = {"train_mse" [E], metric [E], "elapsed_s" [E],
    "initial_<metric>"} (NumPy arrays per epoch; train MSE is the mean minibatch loss) and info = {"best_epoch"
    (the last epoch without `select_best`), "epochs_run", "stopped_early"}.
    """
    k_init, k_epochs = jax.random.split(key)
    params = init_params(k_init)
    opt_state = tx.init(params)
    history = {"train_mse": [], metric: [], "elapsed_s": [], f"initial_{metric}": evaluate(params)}
    best_params, best_value, best_epoch, stopped_early = params, math.inf, -1, False
    t0 = time.perf_counter()
    for epoch, k in enumerate(jax.random.split(k_epochs, epochs)):
        params, opt_state, train_mse = run_epoch(params, opt_state, k, data)
        record = {
            "epoch": epoch,
            "train_mse": float(train_mse),
            metric: evaluate(params),
            "elapsed_s": time.perf_counter() - t0,
        }
        for name in ("train_mse", metric, "elapsed_s"):
            history[name].append(record[name])
        if not select_best or record[metric] < best_value:
            best_params, best_value, best_epoch = params, record[metric], epoch
        if progress is not None and progress(epoch, record):
            break
        if select_best and patience > 0 and epoch - best_epoch >= patience:
            stopped_early = True
            break
    for name in ("train_mse", metric, "elapsed_s"):
        history[name] = np.asarray(history[name])
    info = {"best_epoch": best_epoch, "epochs_run": len(history["train_mse"]), "stopped_early": stopped_early}
    return best_params, history, info
