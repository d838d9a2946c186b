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


def plot_learning_curve(
    records: Sequence[dict],
    path: str | os.PathLike,
    title: str = "",
    metric: str = "episode_total_latency_s",
    metric_label: str = "mean total latency T_v (s)",
) -> None:
    """The run's headline `metric` (default: mean total latency per vehicle-slot) and the mean episode return
    against environment steps; iterations without a value (null: no episode finished) are skipped."""
    steps = np.array([r["env_steps"] for r in records], dtype=float)
    fig, axes = _figure(10, 3.6, columns=2)
    for ax, name, label in zip(axes, (metric, "episode_return"), (metric_label, "episode return (per agent)")):
        values = np.array([np.nan if r.get(name) is None else r[name] for r in records], dtype=float)
        kept = np.isfinite(values)
        ax.plot(steps[kept], values[kept])
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)


DEFAULT_PANELS = (("latency_s", "mean total latency per vehicle-slot (s)", 1.0),)


def plot_comparison(
    results: dict[str, dict],
    path: str | os.PathLike,
    title: str = "",
    panels: Sequence[tuple[str, str, float]] = DEFAULT_PANELS,
) -> None:
    """Bar charts, one panel per (metric, y label, scale), of each policy's mean with the spread over evaluation
    seeds (`<metric>_seed_std`) as error bars; policies ordered by their first metric."""
    names = sorted(results, key=lambda n: results[n][panels[0][0]])
    fig, axes = _figure(
        max(6, 1.1 * len(names)) * (1 if len(panels) == 1 else 0.75 * len(panels)), 3.8, columns=len(panels)
    )
    for ax, (metric, label, scale) in zip(np.atleast_1d(axes), panels):
        means = [scale * results[n][metric] for n in names]
        spread = [scale * results[n].get(f"{metric}_seed_std", 0.0) for n in names]
        ax.bar(range(len(names)), means, yerr=spread, capsize=4, color="tab:blue")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)
