"""Config and params validation in Python, before tracing, with errors that name the field."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np


def _values(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def check_finite(owner: str, field: str, value: Any) -> None:
    if not np.all(np.isfinite(_values(value))):
        raise ValueError(f"{owner}.{field} must be finite, got {value!r}")


def check_positive(owner: str, field: str, value: Any) -> None:
    check_finite(owner, field, value)
    if not np.all(_values(value) > 0):
        raise ValueError(f"{owner}.{field} must be > 0, got {value!r}")


def check_non_negative(owner: str, field: str, value: Any) -> None:
    check_finite(owner, field, value)
    if not np.all(_values(value) >= 0):
        raise ValueError(f"{owner}.{field} must be >= 0, got {value!r}")


def check_probability(owner: str, field: str, value: Any) -> None:
    check_finite(owner, field, value)
    v = _values(value)
    if not np.all((v >= 0) & (v <= 1)):
        raise ValueError(f"{owner}.{field} must be in [0, 1], got {value!r}")


def check_range(owner: str, low_field: str, high_field: str, low: Any, high: Any) -> None:
    if not np.all(_values(low) <= _values(high)):
        raise ValueError(f"{owner}.{low_field} must be <= {owner}.{high_field}, got {low!r} > {high!r}")


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
