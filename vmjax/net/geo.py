"""Distances: planar, planar with a height offset, haversine (great circle), and the local projection.

Inputs are float32 arrays that broadcast; the last axis of a position holds (x, y) in metres.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

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
    return jnp.maximum(_safe_sqrt(_dot2(diff, diff)), min_distance_m)


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


# ---------------------------------------------------------------- the haversine, per point then per pair
# XLA's CPU backend evaluates jnp.sin / jnp.cos ~7x and jnp.arcsin ~20x slower than a short polynomial (range
# reduction included), and fuses per-point work into the pair loops that broadcast it (once per pair).
_SIN_TAYLOR = tuple(float((-1) ** k / math.factorial(2 * k + 1)) for k in range(8))  # x^1 .. x^15
_COS_TAYLOR = tuple(float((-1) ** k / math.factorial(2 * k)) for k in range(9))  # x^0 .. x^16
_TWO_PI_HI = float(np.float32(2.0 * math.pi))  # Cody-Waite split of 2 pi: hi + lo = 2 pi to ~1e-15
_TWO_PI_LO = 2.0 * math.pi - _TWO_PI_HI


def _reduce_half_pi(x):
    """(r, flip): r in [-pi/2, pi/2] with sin(x) = sin(r), and cos(x) = -cos(r) where flip, else cos(r) (x - 2 pi k
    with 2 pi split in two, then the reflection r -> +-pi - r)."""
    x = jnp.asarray(x, jnp.float32)
    k = jnp.round(x * (1.0 / (2.0 * math.pi)))
    r = (x - k * _TWO_PI_HI) - k * _TWO_PI_LO  # in [-pi, pi]
    flip = jnp.abs(r) > 0.5 * math.pi
    return jnp.where(r > 0.5 * math.pi, math.pi - r, jnp.where(r < -0.5 * math.pi, -math.pi - r, r)), flip


def _horner(coefficients, z):
    p = coefficients[-1]
    for c in coefficients[-2::-1]:
        p = p * z + c
    return p


def sin_poly(x):
    """sin(x) for float32 x: `_reduce_half_pi`, then the odd Taylor polynomial of degree 15 (truncation < 1e-10
    on [-pi/2, pi/2]). Within 1 ulp of `jnp.sin` for |x| <= pi/2 (the haversine's half-angles on any map);
    beyond, the absolute error stays below ~3e-7 (the rounding of x itself near multiples of pi)."""
    r, _ = _reduce_half_pi(x)
    return r * _horner(_SIN_TAYLOR, r * r)


def cos_poly(x):
    """cos(x) for float32 x: `_reduce_half_pi`, then the even Taylor polynomial of degree 16. Within a few ulp of
    `jnp.cos` for |x| < pi/2 away from its zeros (any latitude short of the poles); absolute error below ~1e-7
    near them (the rounding of x itself) and ~3e-7 beyond pi/2."""
    r, flip = _reduce_half_pi(x)
    p = _horner(_COS_TAYLOR, r * r)
    return jnp.where(flip, -p, p)


def arcsin_poly(x):
    """arcsin(x) for float32 x in [0, 1] (the Cephes single-precision `asinf` polynomial; x > 1/2 through
    arcsin(x) = pi/2 - 2 arcsin(sqrt((1 - x) / 2))): within ~2 ulp of `jnp.arcsin`."""
    x = jnp.asarray(x, jnp.float32)
    big = x > 0.5
    z = jnp.where(big, 0.5 * (1.0 - x), x * x)
    s = jnp.where(big, jnp.sqrt(jnp.maximum(z, 0.0)), x)
    p = (((4.2163199048e-2 * z + 2.4181311049e-2) * z + 4.5470025998e-2) * z + 7.4953002686e-2) * z + 1.6666752422e-1
    r = s + s * z * p
    return jnp.where(big, 0.5 * math.pi - 2.0 * r, r)


class SpherePoints(NamedTuple):
    """Points as the haversine needs them, computed once per point (`sphere_points`) and shared by every pair
    they are in (`haversine_hav`): their latitude / longitude offsets from a map origin in degrees
    (`xy_to_latlon_offset_deg`), sine and cosine of k times the offsets in radians (k = 1/2 for the standard
    haversine, 1 for the printed eq. 1) and the cosine of the absolute latitude."""

    lat_deg: jnp.ndarray  # [...] latitude offset from the origin
    lon_deg: jnp.ndarray  # [...] longitude offset from the origin
    sin_lat: jnp.ndarray  # [...] sin(k lat), lat in radians
    cos_lat: jnp.ndarray  # [...] cos(k lat)
    sin_lon: jnp.ndarray  # [...] sin(k lon)
    cos_lon: jnp.ndarray  # [...] cos(k lon)
    cos_abs_lat: jnp.ndarray  # [...] cos(origin latitude + lat)


def sphere_points(xy_m, origin_lat_deg, radius_m=EARTH_RADIUS_M, variant: str = "standard") -> SpherePoints:
    """Metres east/north of a map origin [..., 2] -> `SpherePoints` [...] for `haversine_hav` with the same
    `variant` (the per-point part of `haversine_central_angle_rad`; `sin_poly` / `cos_poly`)."""
    if variant not in ("standard", "printed"):
        raise ValueError(f"variant must be 'standard' or 'printed', got {variant!r}")
    lat, lon = xy_to_latlon_offset_deg(xy_m, origin_lat_deg, radius_m)
    k = (math.pi / 180.0) * (0.5 if variant == "standard" else 1.0)
    return SpherePoints(
        lat,
        lon,
        sin_poly(lat * k),
        cos_poly(lat * k),
        sin_poly(lon * k),
        cos_poly(lon * k),
        cos_poly((lat + origin_lat_deg) * (math.pi / 180.0)),
    )


def _sin_of_difference(sin_a, cos_a, sin_b, cos_b, a, b):
    """sin(x_a - x_b) = sin x_a cos x_b - cos x_a sin x_b from per-point values, exactly 0 where a == b (the
    offsets the angles come from). The products cancel for near points: the absolute error, ~1e-10 rad
    (~1 mm) on a map of 20 km, is that of the offsets' own float32 rounding."""
    return jnp.where(a == b, 0.0, sin_a * cos_b - cos_a * sin_b)


def haversine_hav(
    p1: SpherePoints, p2: SpherePoints, variant: str = "standard", ordering_only: bool = False, exact_zero: bool = True
):
    """The haversine a in [0, 1] of the central angle between `SpherePoints` (broadcasting), eq. (1') of spec
    002, a = sin^2(dlat / 2) + cos(lat1) cos(lat2) sin^2(dlon / 2), or the printed eq. (1) (`variant="printed"`:
    sin^2(dlon) + cos cos sin^2(dlat)); the sines of the differences by `_sin_of_difference` (a few operations
    per pair, no trigonometric function). eta = 2 arcsin(sqrt(a)) grows with a, so a orders pairs by distance
    as eta does; `ordering_only=True` keeps just that (no exact 0 for coincident points, no clip to [0, 1]).
    `exact_zero=False`: coincident points may get a ~1e-20 residual instead of 0 (a few operations fewer)."""
    exact = exact_zero and not ordering_only
    diff = _sin_of_difference if exact else lambda sa, ca, sb, cb, a, b: sa * cb - ca * sb
    s_lat = diff(p1.sin_lat, p1.cos_lat, p2.sin_lat, p2.cos_lat, p1.lat_deg, p2.lat_deg)
    s_lon = diff(p1.sin_lon, p1.cos_lon, p2.sin_lon, p2.cos_lon, p1.lon_deg, p2.lon_deg)
    cos_cos = p1.cos_abs_lat * p2.cos_abs_lat
    if variant == "standard":
        a = s_lat * s_lat + cos_cos * (s_lon * s_lon)
    elif variant == "printed":
        a = s_lon * s_lon + cos_cos * (s_lat * s_lat)
    else:
        raise ValueError(f"variant must be 'standard' or 'printed', got {variant!r}")
    return a if ordering_only else jnp.clip(a, 0.0, 1.0)


def central_angle_from_hav_rad(a):
    """eta = 2 arcsin(sqrt(a)) of eq. (1') from the haversine a in [0, 1] (`haversine_hav`), with `arcsin_poly`."""
    return 2.0 * arcsin_poly(_safe_sqrt(a))


def haversine_points_m(
    p1: SpherePoints, p2: SpherePoints, radius_m=EARTH_RADIUS_M, variant: str = "standard", exact_zero: bool = True
):
    """R eta between `SpherePoints` of the same `variant` (broadcasting): `haversine_distance_m` with the
    trigonometry done once per point (equal to it within ~1 mm, its float32 rounding on a map). `exact_zero`:
    see `haversine_hav` (without it, coincident points are ~1e-4 m apart)."""
    return radius_m * central_angle_from_hav_rad(haversine_hav(p1, p2, variant, exact_zero=exact_zero))


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
