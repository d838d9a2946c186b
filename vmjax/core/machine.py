"""The machine a run or a benchmark ran on (CPU model and cores, or the accelerator), for result files: the one
description written into run folders, evaluations, study records and benchmark JSON."""

from __future__ import annotations

import os
import platform

import jax


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict:
    """Backend, device kind and count, CPU model and cores, jax and Python versions."""
    device = jax.devices()[0]
    return {
        "backend": device.platform,
        "device": getattr(device, "device_kind", str(device)),
        "num_devices": jax.device_count(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def machine_summary(info: dict | None = None) -> str:
    """One line for logs and result files: 'AMD EPYC ..., 2 cores, jax 0.10.2, cpu'."""
    info = describe_machine() if info is None else info
    return f"{info['cpu']}, {info['cpu_cores']} cores, jax {info['jax']}, {info['device']}"


def machine_label(info: dict) -> str:
    """Short label for file names: 'cpu2' or the accelerator kind, spaces removed."""
    if info["backend"] == "cpu":
        return f"cpu{info['cpu_cores']}"
    return info["device"].replace(" ", "-").lower()
