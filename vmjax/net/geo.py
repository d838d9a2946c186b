"""Distances: planar, planar with a height offset, haversine (great circle), and the local projection.

Inputs are float32 arrays that broadcast; the last axis of a position holds (x, y) in metres.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

EARTH_RADIUS_M = 6.371e6
"""Mean Earth radius used by spec 000 (R = 6371 km); spec 002 uses 6 371 393 m (pass it explicitly)."""

METRES_PER_DEGREE_LATITUDE = 110_750.0
"""Spec 003 §7.2 equirectangular projection: metres per degree of latitude."""

METRES_PER_DEGREE_LONGITUDE_AT_EQUATOR = 111_320.0
"""Spec 003 §7.2: metres per degree of longitude = 111 320 * cos(latitude)."""


def _dot2(a, b):
    """a . b over a last axis of length 2, written out: XLA's CPU reductions over a length-2 axis are slow."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]


def _safe_sqrt(x):
    """sqrt(x) for x >= 0 with a zero (not infinite) derivative at x = 0: gradients through coincident points
    stay finite (0 * inf would give NaN) and values are unchanged."""
    positive = x > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def planar_distance_m(a_xy, b_xy, min_distance_m=0.0):
    """Euclidean distance ||a - b||_2 over the last axis (spec 003 §2.3, spec 004 (C1)), clamped below."""
    diff = jnp.asarray(a_xy) - jnp.asarray(b_xy)
    return jnp.maximum(jnp.sqrt(_dot2(diff, diff)), min_distance_m)


def distance_with_height_m(ground_distance_m, height_m):
    """Slant distance sqrt(D^2 + h^2) for an antenna or UAV at height h (spec 002 eq. 2, spec 004 (C1) [R])."""
    ground_distance_m = jnp.asarray(ground_distance_m)
    return _safe_sqrt(ground_distance_m * ground_distance_m + jnp.asarray(height_m) ** 2)


def pairwise_planar_distance_m(a_xy, b_xy, min_distance_m=0.0):
    """All distances between points a [..., A, 2] and b [..., B, 2] -> [..., A, B]."""
    return planar_distance_m(a_xy[..., :, None, :], b_xy[..., None, :, :], min_distance_m)


def haversine_central_angle_rad(lat1_deg, lon1_deg, lat2_deg, lon2_deg, variant: str = "standard", origin_lat_deg=0.0):
    """Central angle between two points given in degrees.

    variant="standard" (spec 002 eq. 1', spec 000 [REC]):
        a = sin^2(dlat/2) + cos(lat1) cos(lat2) sin^2(dlon/2),  eta = 2 arcsin(sqrt(a)).
    variant="printed" reproduces the papers' printed eq. (spec 002 eq. 1, spec 000 eq. 6):
        a = sin^2(dlon) + cos(lat1) cos(lat2) sin^2(dlat)  (no half angles, cos factor on latitude).

    float32 resolves absolute longitudes near 120 degrees to about 1 m only, so positions may be given as
    offsets in degrees from a map origin whose latitude `origin_lat_deg` (a Python float) enters the
    cosines; differences of small offsets keep millimetre precision (DESIGN: coordinates relative to a map
    origin). The longitude origin cancels.
    """
    deg = math.pi / 180.0
    lat1 = jnp.asarray(lat1_deg, jnp.float32)
    lat2 = jnp.asarray(lat2_deg, jnp.float32)
    dlat = (lat1 - lat2) * deg
    dlon = (jnp.asarray(lon1_deg, jnp.float32) - jnp.asarray(lon2_deg, jnp.float32)) * deg
    cos_cos = jnp.cos((lat1 + origin_lat_deg) * deg) * jnp.cos((lat2 + origin_lat_deg) * deg)
    if variant == "standard":
        a = jnp.sin(dlat / 2) ** 2 + cos_cos * jnp.sin(dlon / 2) ** 2
    elif variant == "printed":
        a = jnp.sin(dlon) ** 2 + cos_cos * jnp.sin(dlat) ** 2
    else:
        raise ValueError(f"variant must be 'standard' or 'printed', got {variant!r}")
    return 2.0 * jnp.arcsin(_safe_sqrt(jnp.clip(a, 0.0, 1.0)))


def haversine_distance_m(
    lat1_deg, lon1_deg, lat2_deg, lon2_deg, radius_m=EARTH_RADIUS_M, variant="standard", origin_lat_deg=0.0
):
    """Great-circle distance R * eta (spec 002 eq. 2 for RSUs, spec 000 eq. 7); see
    `haversine_central_angle_rad` for origin-relative inputs."""
    return radius_m * haversine_central_angle_rad(lat1_deg, lon1_deg, lat2_deg, lon2_deg, variant, origin_lat_deg)


def xy_to_latlon_offset_deg(xy_m, origin_lat_deg, radius_m=EARTH_RADIUS_M):
    """Metres east/north of a map origin [..., 2] -> (latitude offset, longitude offset) in degrees, by the
    spherical equirectangular projection of radius `radius_m`: dlat = y / R, dlon = x / (R cos lat0).

    The inverse of `latlon_offset_to_xy_m`. It lets a scenario keep positions in local metres and still
    measure distances with the haversine on the same sphere (spec 002 §2.1-2.2): inside a region of tens of
    kilometres the two agree to < 0.1 %. `origin_lat_deg` is a Python float; `radius_m` may be traced.
    """
    xy_m = jnp.asarray(xy_m, jnp.float32)
    deg_per_m = (180.0 / math.pi) / jnp.asarray(radius_m, jnp.float32)
    return xy_m[..., 1] * deg_per_m, xy_m[..., 0] * deg_per_m / math.cos(math.radians(origin_lat_deg))


def latlon_offset_to_xy_m(dlat_deg, dlon_deg, origin_lat_deg, radius_m=EARTH_RADIUS_M):
    """(latitude, longitude) offsets in degrees from a map origin -> metres east/north [..., 2] (the spherical
    equirectangular projection of `xy_to_latlon_offset_deg`)."""
    m_per_deg = jnp.asarray(radius_m, jnp.float32) * (math.pi / 180.0)
    x = jnp.asarray(dlon_deg, jnp.float32) * m_per_deg * math.cos(math.radians(origin_lat_deg))
    return jnp.stack([x, jnp.asarray(dlat_deg, jnp.float32) * m_per_deg], axis=-1)


def metres_per_degree(origin_lat_deg):
    """(metres per degree of longitude, metres per degree of latitude) at a latitude (spec 003 §7.2)."""
    return (
        METRES_PER_DEGREE_LONGITUDE_AT_EQUATOR * math.cos(math.radians(origin_lat_deg)),
        METRES_PER_DEGREE_LATITUDE,
    )


def lonlat_to_xy_m(lon_deg, lat_deg, origin_lon_deg, origin_lat_deg):
    """Equirectangular projection to metres east/north of a map origin (spec 003 §7.2).

    Origin stays a Python float so the subtraction happens in float64 when the inputs are NumPy
    arrays; positions are then small numbers that float32 resolves to millimetres (DESIGN: coordinates
    relative to a map origin).
    """
    m_lon, m_lat = metres_per_degree(origin_lat_deg)
    return (lon_deg - origin_lon_deg) * m_lon, (lat_deg - origin_lat_deg) * m_lat


def xy_to_lonlat(x_m, y_m, origin_lon_deg, origin_lat_deg):
    """Inverse of `lonlat_to_xy_m`."""
    m_lon, m_lat = metres_per_degree(origin_lat_deg)
    return origin_lon_deg + x_m / m_lon, origin_lat_deg + y_m / m_lat


def disk_exit_time_s(position_m, velocity_mps, centre_m, radius_m, min_speed_mps=0.1, max_time_s=1e3):
    """Time until a point moving at constant velocity leaves a disk (spec 003 §2.8 stay time [C]).

    Positive root tau of ||p + v tau - c|| = R: 0 when already outside, `max_time_s` when slower than
    `min_speed_mps` (and never more than `max_time_s`). Last axis holds (x, y).
    """
    rel = jnp.asarray(position_m) - jnp.asarray(centre_m)
    v = jnp.asarray(velocity_mps)
    a = _dot2(v, v)
    half_b = _dot2(rel, v)
    c = _dot2(rel, rel) - radius_m * radius_m
    inside = c <= 0.0
    moving = a >= min_speed_mps * min_speed_mps
    safe_a = jnp.where(moving, a, 1.0)
    disc = jnp.where(inside & moving, half_b * half_b - safe_a * c, 1.0)  # >= 0 whenever inside
    tau = (-half_b + jnp.sqrt(disc)) / safe_a
    tau = jnp.where(moving, tau, max_time_s)
    return jnp.where(inside, jnp.clip(tau, 0.0, max_time_s), 0.0)
