"""Radio: path-loss channel gain, fading, SNR and the Shannon rate (specs 000, 002, 003, 004)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from vmjax.core import fastrand
from vmjax.net.units import SPEED_OF_LIGHT_MPS


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


def shannon_rate_bps(bandwidth_hz, tx_power_w, gain, noise_power_w):
    """R = B log2(1 + p h / sigma^2) in bit/s (spec 003 eqs. 1-2, spec 000 eq. 8, spec 002 eqs. 4-5, 11,
    spec 004 (C3)-(C4))."""
    return bandwidth_hz * jnp.log2(1.0 + snr(tx_power_w, gain, noise_power_w))
