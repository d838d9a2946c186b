"""Figures of a run: the learning curve and the policy comparison (matplotlib, headless)."""

from __future__ import annotations

import io as _io
import os
from collections.abc import Sequence

import numpy as np

from vmjax.core import io


def _figure(width_in: float, height_in: float, columns: int = 1):
    """A standalone figure (no pyplot, so the caller's matplotlib backend is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, columns)
    return fig, axes


def _save(fig, path) -> None:
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    io.atomic_write_bytes(path, buffer.getvalue())


def plot_learning_curve(records: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Mean total latency per vehicle-slot (s) and mean episode return against environment steps."""
    steps = np.array([r["env_steps"] for r in records], dtype=float)
    latency = np.array([r.get("episode_total_latency_s", np.nan) for r in records], dtype=float)
    ret = np.array([r.get("episode_return", np.nan) for r in records], dtype=float)
    fig, (ax1, ax2) = _figure(10, 3.6, columns=2)
    ax1.plot(steps, latency)
    ax1.set_xlabel("environment steps")
    ax1.set_ylabel("mean total latency T_v (s)")
    ax2.plot(steps, ret)
    ax2.set_xlabel("environment steps")
    ax2.set_ylabel("episode return (per agent)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)


def plot_comparison(results: dict[str, dict], path: str | os.PathLike, title: str = "") -> None:
    """Bar chart of mean latency per policy with the spread over evaluation seeds as error bars."""
    names = sorted(results, key=lambda n: results[n]["latency_s"])
    means = [results[n]["latency_s"] for n in names]
    spread = [results[n].get("latency_s_seed_std", 0.0) for n in names]
    fig, ax = _figure(max(6, 1.1 * len(names)), 3.8)
    ax.bar(range(len(names)), means, yerr=spread, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("mean total latency per vehicle-slot (s)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    _save(fig, path)
