"""Radio: path-loss channel gain, fading, SNR and the Shannon rate (specs 000, 002, 003, 004)."""

from __future__ import annotations

import math
import typing
from typing import Literal

import jax.numpy as jnp

from vmjax.core import fastrand
from vmjax.net.units import SPEED_OF_LIGHT_MPS, dbm_to_watts, noise_power_watts

NoiseModel = Literal["density_x_bandwidth", "density"]
"""How a noise density N0 (dBm/Hz) becomes the noise power sigma^2 (`noise_power_from_density_w`)."""
NOISE_MODELS: tuple[str, ...] = typing.get_args(NoiseModel)


def path_loss_gain(distance_m, gain_coeff, carrier_hz, exponent):
    """Deterministic channel power gain h = A * (c / (4 pi f_c d))^l.

    Spec 003 §2.3 (A = 4.11, f_c = 2 GHz, l = 2.8), spec 000 §2.7 (f_c = 915 MHz, l = 2.8),
    spec 004 (C2) and spec 002 eq. (3) (l = 2). Evaluated in the log domain so that float32 neither
    underflows nor loses precision for d in metres and f_c in hertz.
    """
    distance_m = jnp.asarray(distance_m, jnp.float32)
    log_ratio = math.log(SPEED_OF_LIGHT_MPS / (4.0 * math.pi)) - jnp.log(carrier_hz) - jnp.log(distance_m)
    return gain_coeff * jnp.exp(exponent * log_ratio)


def calibrated_gain_coeff(snr_ref, noise_power_w, tx_power_w, ref_distance_m, carrier_hz, exponent=2.0):
    """The coefficient A that makes SNR(d_ref) = snr_ref (spec 002 §2.3 [REC]).

    A = SNR_ref * sigma^2 / (p * (c / (4 pi f d_ref))^l); with spec 002's values A ~ 3.0951e9.
    """
    free_space = path_loss_gain(ref_distance_m, 1.0, carrier_hz, exponent)
    return snr_ref * noise_power_w / (tx_power_w * free_space)


def rayleigh_power_gain(key, shape, stream: int = 0):
    """Small-scale Rayleigh fading power |g|^2 ~ Exp(1) (optional flag in specs 002, 003, 004)."""
    return fastrand.exponential(key, shape, stream)


def snr(tx_power_w, gain, noise_power_w):
    """Signal-to-noise ratio p h / sigma^2 (linear)."""
    return tx_power_w * gain / noise_power_w


MIN_RATE_BPS = 1e-3
"""Floor of `shannon_rate_bps` (bit/s). A link this slow (an SNR below ~1.4e-10 at 10 MHz) needs 1e3 s per bit, far
beyond any slot; the floor lifts such rates, and the rate 0 of an SNR that is itself 0 in float32 (a path gain that
underflowed), to 1e-3 bit/s, so every latency T = D / R is finite (a rate floor, not a latency cap). At the default
settings of the four scenarios no rate comes near it."""


def shannon_rate_bps(bandwidth_hz, tx_power_w, gain, noise_power_w):
    """R = B log2(1 + p h / sigma^2) in bit/s (spec 003 eqs. 1-2, spec 000 eq. 8, spec 002 eqs. 4-5, 11,
    spec 004 (C3)-(C4)).

    Computed as B log1p(SNR) / ln 2: log2(1 + SNR) rounds to 0 in float32 once SNR < ~6e-8 (1 + SNR == 1), and
    a zero rate made T = D / R infinite (issue 16). log1p stays positive for any SNR > 0; the result is then
    floored at `MIN_RATE_BPS` for the SNRs that are themselves 0 in float32, so every latency D / R is finite.
    """
    rate = bandwidth_hz * (jnp.log1p(snr(tx_power_w, gain, noise_power_w)) / math.log(2.0))
    return jnp.maximum(rate, MIN_RATE_BPS)


def noise_power_from_density_w(noise_density_dbm_per_hz, bandwidth_hz, model: NoiseModel = "density_x_bandwidth"):
    """sigma^2 in watts from a density N0 in dBm/Hz: N0 B ("density_x_bandwidth", spec 000 §2.7 / [R A6]: -104 dBm
    at 10 MHz; spec 004 §7.2) or N0 alone read as a power ("density", the literal reading of spec 000 [R A6])."""
    if model == "density":
        return dbm_to_watts(noise_density_dbm_per_hz)
    return noise_power_watts(noise_density_dbm_per_hz, bandwidth_hz)


def link_rate_bps(distance_m, bandwidth_hz, tx_power_w, noise_power_w, *, gain_coeff, carrier_hz, exponent, fading=1.0):
    """R = B log2(1 + p h / sigma^2) with h = |g|^2 A (c / (4 pi f_c d))^l: `shannon_rate_bps` of the faded
    `path_loss_gain` (spec 003 eqs. 1-2; spec 000 eq. 8; spec 002 eqs. 3-5, 11; spec 004 (C2)-(C4)).

    `fading` is the small-scale power gain |g|^2 (1 without fading, `rayleigh_power_gain` with it) and
    `noise_power_w` the noise power sigma^2 in watts (a constant, or `noise_power_from_density_w`).
    """
    gain = fading * path_loss_gain(distance_m, gain_coeff, carrier_hz, exponent)
    return shannon_rate_bps(bandwidth_hz, tx_power_w, gain, noise_power_w)
