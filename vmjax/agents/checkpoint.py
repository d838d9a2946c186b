"""Checkpoints of training state: one msgpack file, written atomically, that holds the whole trainer-state pytree
(Flax msgpack bytes), its sha256 and the progress it belongs to (iteration, env steps, training wall time), so
the state and its iteration count are committed together and a damaged file is detected on load.

Restoring needs a template with the same structure (a freshly initialised state from the same config), so a
checkpoint from another config fails with an error that says so instead of loading garbage. A checkpoint of
the earlier format (bare Flax bytes, progress in a separate checkpoint.json) still loads: `read_checkpoint`
returns no progress for it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import jax
import msgpack
import numpy as np
from flax import serialization

from vmjax.core import io

PyTree = Any
FORMAT = "vmjax-checkpoint/2"


class CheckpointError(ValueError):
    """A checkpoint that is missing, empty, damaged or from another configuration (the message names the file)."""


def save_checkpoint(path: str | os.PathLike, state: PyTree, **progress: Any) -> Path:
    """Write `state` and its `progress` (iteration, env_steps, train_wall_s: JSON-like values) to `path` as one
    file, atomically (an interrupted save keeps the previous checkpoint)."""
    host_state = jax.tree.map(np.asarray, jax.device_get(state))
    state_bytes = serialization.to_bytes(host_state)
    record = {
        "format": FORMAT,
        "progress": progress,
        "state_sha256": hashlib.sha256(state_bytes).hexdigest(),
        "state": state_bytes,
    }
    return io.atomic_write_bytes(path, msgpack.packb(record, use_bin_type=True))


def read_checkpoint(path: str | os.PathLike) -> tuple[dict | None, bytes]:
    """(progress, state bytes) of a checkpoint file, its checksum verified; progress is None for a checkpoint of
    the earlier format. CheckpointError naming the file when it is missing, empty, damaged or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    try:
        record = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as error:  # msgpack raises several types for truncated or garbled data
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt (not readable msgpack: {error})") from error
    if not isinstance(record, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt (not a msgpack map)")
    if record.get("format") != FORMAT:
        if "format" in record:
            raise CheckpointError(f"checkpoint {str(path)!r} has an unknown format {record['format']!r}")
        return None, data  # the earlier format: bare Flax bytes of the state
    state_bytes = record.get("state")
    if not isinstance(state_bytes, bytes) or not isinstance(record.get("progress"), dict):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt (fields missing)")
    if hashlib.sha256(state_bytes).hexdigest() != record.get("state_sha256"):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt (the state's sha256 does not match)")
    return record["progress"], state_bytes


def with_new_optional_fields(saved, expected):
    """The state dict `saved` with the keys of `expected` (the template's state dict) that it lacks added where
    the template holds None or an empty container: optional fields (e.g. `Trace.speeds_mps`) added to a state
    after the checkpoint was written, so older checkpoints still restore. Any other missing key stays missing
    (and the restore names it)."""
    if not isinstance(saved, dict) or not isinstance(expected, dict):
        return saved
    out = dict(saved)
    for key, value in expected.items():
        if key in saved:
            out[key] = with_new_optional_fields(saved[key], value)
        elif value is None or (isinstance(value, dict | list | tuple) and not value):
            out[key] = value
    return out


def restore_state(state_bytes: bytes, template: PyTree, where: str = "checkpoint") -> PyTree:
    """Flax msgpack bytes into the structure of `template`; CheckpointError naming `where` on a mismatch."""
    try:
        saved = serialization.msgpack_restore(state_bytes)
        saved = with_new_optional_fields(saved, serialization.to_state_dict(template))
        restored = serialization.from_state_dict(template, saved)
    except Exception as error:  # msgpack and structure errors come in many types
        raise CheckpointError(f"{where} is corrupt or from a different configuration: {error}") from error
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(template)):
        if np.shape(got) != np.shape(want):
            raise CheckpointError(
                f"{where} does not match this configuration: array of shape {np.shape(got)} "
                f"where {np.shape(want)} is expected"
            )
    return jax.tree.map(lambda got, want: np.asarray(got, dtype=np.asarray(want).dtype), restored, template)


def load_checkpoint_with_progress(path: str | os.PathLike, template: PyTree) -> tuple[PyTree, dict | None]:
    """(state in the structure of `template`, progress or None for the earlier format)."""
    progress, state_bytes = read_checkpoint(path)
    return restore_state(state_bytes, template, f"checkpoint {str(path)!r}"), progress


def load_checkpoint(path: str | os.PathLike, template: PyTree) -> PyTree:
    """Read a checkpoint into the structure of `template`; CheckpointError (a ValueError) naming the file when it
    is missing, empty, damaged, or from a different configuration."""
    return load_checkpoint_with_progress(path, template)[0]
