"""Hourly Gaussian kernel density estimates of trajectory points (EST-TG, spec 004 §4.3 and §4.4).

One KDE per hour of day, f_h(u) = (1/n_h) sum_i K(u - u_i), K(u) = (2 pi bw^2)^-1 exp(-|u|^2 / (2 bw^2)), with the
spec's bandwidth bw = 0.05 applied in *normalised* coordinates: u = ((x - xmin) / (xmax - xmin),
(y - ymin) / (ymax - ymin)) for the map box box_m = (xmin, ymin, xmax, ymax) in metres (spec §4.2 step 5 and §4.3,
`kde_coords = normalized`; on a non-square box the kernel is therefore anisotropic in metres). The KDE keeps its
data: every hour's normalised points are stored padded to the largest hour, with a count per hour. Sampling picks
one of that hour's points uniformly and adds bw * N(0, I2) (spec §4.4); samples may fall outside the map box, and
the caller rejects them (spec §4.4). Every hour must have at least one point: `fit_hourly_kde` raises otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class HourlyKDE:
    """Per-hour kernel data.

    points_unit:  [H, K, 2] float32, normalised data points of every hour (rows >= counts[h] are padding, zeros).
    counts:       [H] int32 >= 1, number of data points n_h of every hour.
    bandwidth:    scalar float32, kernel standard deviation in normalised units (spec: 0.05).
    box_m:        [4] float32, (xmin, ymin, xmax, ymax) in metres used for the normalisation.
    """

    points_unit: jax.Array
    counts: jax.Array
    bandwidth: jax.Array
    box_m: jax.Array

    def to_unit(self, xy_m) -> jax.Array:
        """Metres [..., 2] -> normalised coordinates [..., 2]."""
        return (jnp.asarray(xy_m, jnp.float32) - self.box_m[:2]) / (self.box_m[2:] - self.box_m[:2])

    def to_metres(self, xy_unit) -> jax.Array:
        """Normalised coordinates [..., 2] -> metres [..., 2]."""
        return self.box_m[:2] + jnp.asarray(xy_unit, jnp.float32) * (self.box_m[2:] - self.box_m[:2])


def fit_hourly_kde(points_xy_m, hours, bandwidth: float = 0.05, box_m=None, num_hours: int = 24) -> HourlyKDE:
    """Fits one Gaussian KDE per hour (spec §4.4: 24 models, each on that hour's points). NumPy, before tracing.

    points_xy_m: [P, 2] metres; hours: [P] integer hour of day in [0, num_hours); box_m: (xmin, ymin, xmax, ymax)
    in metres, default the bounding box of the points. ValueError names the bad field, including hours with no
    points (no fallback to other hours).
    """
    points_xy_m = np.asarray(points_xy_m, np.float64)
    if points_xy_m.ndim != 2 or points_xy_m.shape[1] != 2 or points_xy_m.shape[0] == 0:
        raise ValueError(f"fit_hourly_kde: points_xy_m must have shape [P, 2] with P >= 1, got {points_xy_m.shape}")
    if not np.all(np.isfinite(points_xy_m)):
        raise ValueError("fit_hourly_kde: points_xy_m must be finite")
    hours = np.asarray(hours)
    if hours.shape != (points_xy_m.shape[0],) or not np.issubdtype(hours.dtype, np.integer):
        raise ValueError(
            f"fit_hourly_kde: hours must be integers of shape [P] = ({points_xy_m.shape[0]},), got {hours.dtype} {hours.shape}"
        )
    if np.any((hours < 0) | (hours >= num_hours)):
        raise ValueError(f"fit_hourly_kde: hours must lie in [0, {num_hours}), got min {hours.min()} max {hours.max()}")
    if not (np.isfinite(bandwidth) and bandwidth > 0.0):
        raise ValueError(f"fit_hourly_kde: bandwidth must be finite and > 0, got {bandwidth}")
    if box_m is None:
        box_m = np.concatenate([points_xy_m.min(0), points_xy_m.max(0)])
    box_m = np.asarray(box_m, np.float64)
    if box_m.shape != (4,) or not np.all(np.isfinite(box_m)) or not np.all(box_m[2:] > box_m[:2]):
        raise ValueError(
            f"fit_hourly_kde: box_m must be finite (xmin, ymin, xmax, ymax) with xmax > xmin and ymax > ymin, got {box_m}"
        )
    counts = np.bincount(hours, minlength=num_hours)
    if np.any(counts == 0):
        raise ValueError(
            f"fit_hourly_kde: hours {np.flatnonzero(counts == 0).tolist()} have no points (every hour needs one)"
        )
    unit = (points_xy_m - box_m[:2]) / (box_m[2:] - box_m[:2])
    order = np.argsort(hours, kind="stable")
    rank = np.arange(len(hours)) - np.repeat(np.cumsum(counts) - counts, counts)  # position within its hour
    padded = np.zeros((num_hours, counts.max(), 2), np.float32)
    padded[hours[order], rank] = unit[order]
    return HourlyKDE(
        points_unit=jnp.asarray(padded),
        counts=jnp.asarray(counts, jnp.int32),
        bandwidth=jnp.asarray(bandwidth, jnp.float32),
        box_m=jnp.asarray(box_m, jnp.float32),
    )


def sample_hourly_kde(key, kde: HourlyKDE, hour, num: int) -> jax.Array:
    """`num` points [num, 2] in metres drawn from hour `hour`'s KDE (spec §4.4): a uniform data point + bw * N(0, I2).

    `hour` may be traced (clamped to [0, H)); `num` is static. Jittable and vmappable over keys and hours.
    """
    hour = jnp.clip(jnp.asarray(hour, jnp.int32), 0, kde.counts.shape[0] - 1)
    pick_key, noise_key = jax.random.split(key)
    index = jax.random.randint(pick_key, (num,), 0, kde.counts[hour])
    unit = kde.points_unit[hour, index] + kde.bandwidth * jax.random.normal(noise_key, (num, 2), jnp.float32)
    return kde.to_metres(unit)


def kde_log_density(kde: HourlyKDE, hour, points_m) -> jax.Array:
    """log f_hour(u) [...] of points [..., 2] given in metres, as a density over *normalised* coordinates (spec (17)).

    Subtract log((xmax - xmin) (ymax - ymin)) for a density per square metre. `hour` may be traced.
    """
    hour = jnp.clip(jnp.asarray(hour, jnp.int32), 0, kde.counts.shape[0] - 1)
    data = kde.points_unit[hour]  # [K, 2]
    valid = jnp.arange(data.shape[0]) < kde.counts[hour]
    sq = jnp.sum((kde.to_unit(points_m)[..., None, :] - data) ** 2, axis=-1)  # [..., K]
    logk = jnp.where(valid, -0.5 * sq / kde.bandwidth**2, -jnp.inf)
    norm = jnp.log(2.0 * jnp.pi * kde.bandwidth**2) + jnp.log(kde.counts[hour].astype(jnp.float32))
    return jax.scipy.special.logsumexp(logk, axis=-1) - norm
