"""`make(id, **config)`: the registry of scenarios by versioned id (`Name-v0`)."""

from __future__ import annotations

from collections.abc import Callable

from vmjax.core.env import Environment

_REGISTRY: dict[str, Callable[..., Environment]] = {}


def register(env_id: str, entry_point: Callable[..., Environment]) -> None:
    """Register a constructor under a versioned id; ids are unique."""
    if env_id in _REGISTRY and _REGISTRY[env_id] is not entry_point:
        raise ValueError(f"environment id {env_id!r} is already registered")
    _REGISTRY[env_id] = entry_point


def registered_envs() -> tuple[str, ...]:
    """The known ids, sorted."""
    return tuple(sorted(_REGISTRY))


def make(env_id: str, **config) -> Environment:
    """Build a registered environment; `config` holds its static fields (sizes, switches)."""
    if env_id not in _REGISTRY:
        raise ValueError(f"unknown environment id {env_id!r}; known ids: {', '.join(registered_envs())}")
    return _REGISTRY[env_id](**config)
