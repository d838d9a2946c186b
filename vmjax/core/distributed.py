"""Multi-host runs with JAX's own runtime (multi-controller `jax.distributed`): every process runs the same program
on its own devices, the arrays span every process's devices, and process 0 alone writes files.

    vmjax train --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0 ...   # on host 0
    vmjax train --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1 ...   # on host 1

The three settings also come from the environment (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
`JAX_PROCESS_ID`), and `vmjax train --distributed` alone lets JAX detect them (Slurm, Open MPI, Cloud TPU,
Kubernetes). `initialize` must run before any JAX computation (even `jax.devices()`). On a CPU, this jaxlib's
cross-process collectives use Gloo.

With one process (no initialisation) every function here is the single-process behaviour: `is_main_process()` is
True, `to_host` is `jax.device_get` and `barrier` does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax

PyTree = Any

ENV_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
"""Where `distributed_settings` reads what its flags leave unset."""


def distributed_settings(
    coordinator: str = "", num_processes: int = 0, process_id: int = -1, environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The keyword arguments of `jax.distributed.initialize` from flags, with `ENV_VARIABLES` filling the unset
    ones; None when neither names a coordinator (a single-process run). ValueError naming the flag (and its
    variable) when one is missing or invalid."""
    environ = os.environ if environ is None else environ
    coordinator = coordinator or environ.get("JAX_COORDINATOR_ADDRESS", "")
    if not coordinator:
        if num_processes or process_id >= 0:
            raise ValueError("--num-processes / --process-id need --coordinator HOST:PORT (or JAX_COORDINATOR_ADDRESS)")
        return None
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--coordinator must be HOST:PORT (JAX_COORDINATOR_ADDRESS), got {coordinator!r}")
    num_processes = num_processes or _int_from(environ, "JAX_NUM_PROCESSES", "--num-processes")
    process_id = process_id if process_id >= 0 else _int_from(environ, "JAX_PROCESS_ID", "--process-id")
    if num_processes < 1:
        raise ValueError(f"--num-processes (JAX_NUM_PROCESSES) must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id (JAX_PROCESS_ID) must be in 0..{num_processes - 1}, got {process_id}")
    return {"coordinator_address": coordinator, "num_processes": num_processes, "process_id": process_id}


def _int_from(environ: Mapping[str, str], name: str, flag: str) -> int:
    text = environ.get(name, "")
    if not text:
        raise ValueError(f"a multi-host run needs {flag} (or {name})")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def initialize(settings: dict[str, Any] | None, auto: bool = False) -> None:
    """`jax.distributed.initialize(**settings)`; with `auto` and no settings, JAX's cluster detection; nothing
    for a single-process run (`settings` None, `auto` False)."""
    if settings is None and not auto:
        return
    jax.distributed.initialize(**(settings or {}))


def is_main_process() -> bool:
    """Whether this process writes the run's files (process 0; the only one without `jax.distributed`)."""
    return jax.process_index() == 0


def to_host(tree: PyTree) -> PyTree:
    """`tree` as host (NumPy) arrays: `jax.device_get` in one process; in several, an array split over other
    processes' devices is all-gathered first (a collective: every process must call this, in the same order)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def gather(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return multihost_utils.process_allgather(leaf, tiled=True)
        return jax.device_get(leaf)

    return jax.tree.map(gather, tree)


def barrier(name: str) -> None:
    """Every process waits here until all have arrived (nothing in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


__all__ = ["ENV_VARIABLES", "barrier", "distributed_settings", "initialize", "is_main_process", "to_host"]
