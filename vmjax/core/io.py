"""Atomic file writes: results and checkpoints are written to a temporary file, fsynced and renamed into place
(then the folder is fsynced), so an interrupted run never leaves a half-written file behind. Written files get
the mode an ordinary `open` would give them (0666 less the umask), not tempfile's 0600."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process's umask (from /proc where it can be read, else by setting and restoring it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in folder `path` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, os.replace, fsync of the
    folder), with mode 0666 less the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def append_lines(path: str | os.PathLike, lines: list[str]) -> None:
    """Append text lines to `path` and fsync them (so a checkpoint written next never outlives them)."""
    with open(path, "a") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
