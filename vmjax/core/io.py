"""Atomic file writes: results and checkpoints are written to a temporary file and renamed into place, so
an interrupted run never leaves a half-written file behind."""

from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------- CSV fields (trace and traffic files)
def parse_finite_float(text: str, where: str, column: str, what: str = "value") -> float:
    """A finite float from a CSV field, or ValueError naming the place (`where`: file and line), the column
    and `what` the field holds."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}, column {column!r}: non-numeric value {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}, column {column!r}: non-finite {what} {text!r}")
    return value


def parse_time_s(text: str, where: str, column: str, what: str = "time") -> float:
    """Seconds from a CSV field holding a number or an ISO date-time 'YYYY-MM-DD HH:MM[:SS]' (naive = UTC);
    ValueError naming the place, the column and `what` otherwise."""
    try:
        value = float(text)
    except ValueError:
        try:
            stamp = datetime.datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"{where}, column {column!r}: unparseable {what} {text!r} (expected seconds or 'YYYY-MM-DD HH:MM:SS')"
            ) from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.UTC)
        return stamp.timestamp()
    if not math.isfinite(value):
        raise ValueError(f"{where}, column {column!r}: non-finite {what} {text!r}")
    return value
