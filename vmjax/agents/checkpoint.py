"""Checkpoints of training state: a Flax msgpack of the whole trainer-state pytree, written atomically.

Restoring needs a template with the same structure (a freshly initialised state from the same config), so a
checkpoint from another config fails with an error that says so instead of loading garbage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from vmjax.core import io

PyTree = Any


def save_checkpoint(path: str | os.PathLike, state: PyTree) -> Path:
    """Write `state` to `path` atomically (an interrupted save keeps the previous checkpoint)."""
    host_state = jax.tree.map(np.asarray, jax.device_get(state))
    return io.atomic_write_bytes(path, serialization.to_bytes(host_state))


def load_checkpoint(path: str | os.PathLike, template: PyTree) -> PyTree:
    """Read a checkpoint into the structure of `template`; ValueError naming the file when it is missing,
    corrupt, or from a different configuration."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        restored = serialization.from_bytes(template, path.read_bytes())
    except Exception as error:  # msgpack and structure errors come in many types
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or from a different configuration: {error}") from error
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(template)):
        if np.shape(got) != np.shape(want):
            raise ValueError(
                f"checkpoint {str(path)!r} does not match this configuration: array of shape {np.shape(got)} "
                f"where {np.shape(want)} is expected"
            )
    return jax.tree.map(lambda got, want: np.asarray(got, dtype=np.asarray(want).dtype), restored, template)
