"""Opt-in runtime checks that work inside `jit` and `vmap` (issue 16): `checked(env)` runs the env's
`validate_params` conditions on traced params, and checks that observations and rewards are finite, as
`jax.experimental.checkify` checks; `run_checked(fn)` functionalizes them and raises the first failure.

    env = vmjax.core.checked(vmjax.make("TwinSplit-v0"))
    evaluate = vmjax.core.run_checked(jax.jit(jax.vmap(evaluate_one, in_axes=(None, 0))))
    evaluate(key, ablated_params)  # JaxRuntimeError: "EnvParams.rsu_cpu_hz_low must be > 0, got -1e9 ..."
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from vmjax.core import validation
from vmjax.core.wrappers import Wrapper


def check_finite_tree(what: str, tree) -> None:
    """A `checkify.check` that every float leaf of `tree` is finite (the error names `what` and the leaf)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            checkify.check(jnp.all(jnp.isfinite(leaf)), f"{what}{jax.tree_util.keystr(path)} is not finite")


class Checked(Wrapper):
    """`env` with its params checks (`env.validate_params`, as jnp predicates on traced values) run on every
    reset and step, and the observations and rewards checked finite, as `checkify` checks (see `run_checked`).
    Costs a few reductions per step; leave it out of training runs."""

    def check_params(self, params) -> None:
        with validation.traced_checks():
            self._env.validate_params(params)

    def reset_env(self, key, params):
        self.check_params(params)
        obs, state = self._env.reset_env(key, params)
        check_finite_tree("reset observation", obs)
        return obs, state

    def step_env(self, key, state, action, params):
        self.check_params(params)
        obs, state, reward, terminated, truncated, info = self._env.step_env(key, state, action, params)
        check_finite_tree("step observation", obs)
        check_finite_tree("step reward", reward)
        return obs, state, reward, terminated, truncated, info


def checked(env) -> Checked:
    """Wrap `env` so that its params and outputs are checked inside jit / vmap (call it through `run_checked`)."""
    return Checked(env)


def run_checked(fn: Callable, errors=checkify.user_checks) -> Callable:
    """`fn` (jitted, vmapped or not) with its `checkify` checks functionalized: returns fn's output, or raises
    `checkify.JaxRuntimeError` with the first failed check's message (under vmap: of the first failing member)."""
    checked_fn = checkify.checkify(fn, errors=errors)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        err, out = checked_fn(*args, **kwargs)
        err.throw()
        return out

    return run
