"""Learning-curve measures shared by the experiments."""

from __future__ import annotations

import numpy as np


def convergence_iteration(latency: list, share: float = 0.9, window: int = 10) -> int:
    """The first iteration at which the latency, smoothed over `window` iterations, has made `share` of its
    improvement from the first window to the last one (the learning curves' convergence speed); a curve shorter
    than `window` counts from its first iteration."""
    series = np.array([np.nan if v is None else v for v in latency], dtype=float)
    smooth = np.array([np.nanmean(series[max(0, i - window + 1) : i + 1]) for i in range(len(series))])
    window = max(1, min(window, len(series)))
    start, end = smooth[window - 1], smooth[-1]
    reached = np.nonzero(start - smooth >= share * (start - end))[0]
    return int(reached[reached >= window - 1][0]) + 1
