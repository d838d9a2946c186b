"""Config and params validation in Python, before tracing, with errors that name the field."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

_TRACED = {"on": False}  # set by `traced_checks`: checks of traced values become `checkify.check`s


@contextlib.contextmanager
def traced_checks():
    """Within this block the check functions below also check traced values, as `checkify.check`s (functionalize
    them with `jax.experimental.checkify.checkify`; `vmjax.core.checked` does). Outside it a traced value is skipped:
    plain `validate_params` runs only on concrete params."""
    previous, _TRACED["on"] = _TRACED["on"], True
    try:
        yield
    finally:
        _TRACED["on"] = previous


def _require(ok: Callable, message: str, *values: Any) -> None:
    """Raise ValueError(message.format(*values)) unless ok(xp, *arrays) holds for every element; on traced values
    (under `traced_checks`) the same predicate in jnp becomes a `checkify.check`."""
    if any(isinstance(v, jax.core.Tracer) for v in values):
        if _TRACED["on"]:
            arrays = [jnp.asarray(v) for v in values]
            names = [f"v{i}" for i in range(len(values))]
            checkify.check(
                jnp.all(ok(jnp, *arrays)), message.format(*(f"{{{n}}}" for n in names)), **dict(zip(names, arrays))
            )
        return
    if not np.all(ok(np, *(np.asarray(v, dtype=np.float64) for v in values))):
        raise ValueError(message.format(*(repr(v) for v in values)))


def check_finite(owner: str, field: str, value: Any) -> None:
    _require(lambda xp, v: xp.isfinite(v), f"{owner}.{field} must be finite, got {{}}", value)


def check_positive(owner: str, field: str, value: Any) -> None:
    check_finite(owner, field, value)
    _require(lambda xp, v: v > 0, f"{owner}.{field} must be > 0, got {{}}", value)


def check_non_negative(owner: str, field: str, value: Any) -> None:
    check_finite(owner, field, value)
    _require(lambda xp, v: v >= 0, f"{owner}.{field} must be >= 0, got {{}}", value)


def check_probability(owner: str, field: str, value: Any) -> None:
    check_finite(owner, field, value)
    _require(lambda xp, v: (v >= 0) & (v <= 1), f"{owner}.{field} must be in [0, 1], got {{}}", value)


def check_below(owner: str, field: str, value: Any, bound: float, why: str = "") -> None:
    """A finite value < bound (`why`, if given, is appended to the error)."""
    check_finite(owner, field, value)
    _require(lambda xp, v: v < bound, f"{owner}.{field} must be < {bound}{why}, got {{}}", value)


NOISE_DENSITY_MAX_DBM_PER_HZ = -30.0
"""Upper bound on a noise density N0 in dBm/Hz. Thermal noise kT at 290 K is -174 dBm/Hz and a receiver's noise
figure and interference add tens of dB, so physical densities sit far below -100 dBm/Hz; -30 dBm/Hz is 1 mW/Hz
(10 kW of noise in 10 MHz, 144 dB above thermal): anything at or above it is a unit mistake (dBm vs dBm/Hz,
W vs dBm), and at 0 dBm/Hz the rates and rewards were NaN (issue 16)."""


def check_noise_density(owner: str, field: str, value: Any) -> None:
    """A noise density in dBm/Hz: finite and below `NOISE_DENSITY_MAX_DBM_PER_HZ`."""
    why = " dBm/Hz (thermal noise is -174 dBm/Hz; higher values are a unit mistake)"
    check_below(owner, field, value, NOISE_DENSITY_MAX_DBM_PER_HZ, why)


def check_range(owner: str, low_field: str, high_field: str, low: Any, high: Any) -> None:
    """low <= high, both finite (a U[low, high] draw with an infinite end gives inf / NaN)."""
    check_finite(owner, low_field, low)
    check_finite(owner, high_field, high)
    _require(
        lambda xp, lo, hi: lo <= hi, f"{owner}.{low_field} must be <= {owner}.{high_field}, got {{}} > {{}}", low, high
    )


def check_bool_fields(config: Any) -> None:
    """Every `bool`-annotated field of a config dataclass holds a real bool (not "false", 0 or 2); call it from
    `__post_init__`. The error names the class and the field."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if hints.get(field.name) is bool and not isinstance(getattr(config, field.name), (bool, np.bool_)):
            value = getattr(config, field.name)
            raise TypeError(f"{type(config).__name__}.{field.name} must be a bool (True / False), got {value!r}")


def check_params_type(env_name: str, params: Any, params_cls: type) -> None:
    """`params` is an instance of the env's own params class (works on traced params: the class is static); the
    params of another env are rejected with both named, not left to fail as an AttributeError."""
    if not isinstance(params, params_cls):
        got = type(params)
        raise TypeError(
            f"{env_name} got params of type {got.__module__}.{got.__qualname__}, not its own "
            f"{params_cls.__module__}.{params_cls.__qualname__} (the params of another env?): use "
            f"env.default_params (and .replace(...)) of this env"
        )


def check_fields(
    owner: str,
    obj: Any,
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    probability: Iterable[str] = (),
    finite: Iterable[str] = (),
    ranges: Iterable[tuple[str, str]] = (),
) -> None:
    """The per-field checks above over tables of field names of `obj` (an EnvParams), each error naming the field."""
    for field in positive:
        check_positive(owner, field, getattr(obj, field))
    for field in non_negative:
        check_non_negative(owner, field, getattr(obj, field))
    for field in probability:
        check_probability(owner, field, getattr(obj, field))
    for field in finite:
        check_finite(owner, field, getattr(obj, field))
    for low, high in ranges:
        check_range(owner, low, high, getattr(obj, low), getattr(obj, high))


def check_str(owner: str, field: str, value: Any) -> None:
    """A text field (a path; "" for none)."""
    if not isinstance(value, str):
        raise ValueError(f'{owner}.{field} must be a string (a file path, or "" for none), got {value!r}')


def check_int_at_least(owner: str, field: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{owner}.{field} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}.{field} must be >= {minimum}, got {value}")


def check_choice(owner: str, field: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{owner}.{field} must be one of {choices}, got {value!r}")


def literal_choices(annotation: Any) -> tuple | None:
    """The allowed values of a `typing.Literal[...]` annotation, else None."""
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None


@functools.cache
def field_choices(config_cls: type) -> dict[str, tuple]:
    """{field: allowed values} of the `Literal`-typed fields of a config dataclass (its single declaration of
    the choices, read by `check_literal_fields` and by the command line's --help)."""
    hints = typing.get_type_hints(config_cls)
    choices = {}
    for field in dataclasses.fields(config_cls):
        allowed = literal_choices(hints.get(field.name))
        if allowed is not None:
            choices[field.name] = allowed
    return choices


def check_literal_fields(config: Any) -> None:
    """Every `Literal`-typed field of a config dataclass holds one of its declared values (call it from
    `__post_init__`); the error names the class and the field, as `check_choice` does."""
    for field, allowed in field_choices(type(config)).items():
        check_choice(type(config).__name__, field, getattr(config, field), allowed)


def check_shape(owner: str, field: str, value: Any, shape: tuple[int, ...]) -> None:
    got = tuple(np.shape(value))
    if got != tuple(shape):
        raise ValueError(f"{owner}.{field} must have shape {tuple(shape)}, got {got}")


def check_layer_widths(owner: str, field: str, value: Any) -> None:
    """A non-empty sequence of positive layer widths (hidden sizes of an MLP)."""
    if not value or any(int(width) < 1 for width in value):
        raise ValueError(f"{owner}.{field} must be positive layer widths, got {value!r}")


def check_minibatches(owner: str, num_minibatches: int, num_envs: int, num_steps: int) -> None:
    """`num_minibatches` must split the num_envs * num_steps samples of a rollout evenly."""
    if (num_envs * num_steps) % num_minibatches:
        raise ValueError(
            f"{owner}.num_minibatches ({num_minibatches}) must divide num_envs * num_steps ({num_envs * num_steps})"
        )


def config_from_kwargs(config_cls: type, owner: str, kwargs: dict[str, Any]):
    """Build a frozen config dataclass, naming unknown fields and listing the valid ones."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ValueError(f"{owner} got unknown config field(s) {unknown}; valid fields: {sorted(names)}")
    return config_cls(**kwargs)
