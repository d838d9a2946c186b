"""Unit conversions shared by every scenario (SI inside vmjax: bits, seconds, metres, hertz, watts)."""

from __future__ import annotations

import jax.numpy as jnp

BITS_PER_MEGABYTE = 8e6
"""Decimal megabyte: 1 MB = 8e6 bit (spec 003 §2.3 "Units", spec 000 §0.3, spec 002 §2.7)."""

BITS_PER_MEGABIT = 1e6
SPEED_OF_LIGHT_MPS = 3e8
"""c = 3e8 m/s, as every spec writes it."""


def megabytes_to_bits(megabytes):
    """MB (decimal) -> bit."""
    return megabytes * BITS_PER_MEGABYTE


def bits_to_megabytes(bits):
    """bit -> MB (decimal)."""
    return bits / BITS_PER_MEGABYTE


def dbm_to_watts(power_dbm):
    """P_W = 10^((P_dBm - 30) / 10) (spec 000 §0.3)."""
    return 10.0 ** ((jnp.asarray(power_dbm, jnp.float32) - 30.0) / 10.0)


def watts_to_dbm(power_w):
    """P_dBm = 10 log10(P_W) + 30."""
    return 10.0 * jnp.log10(jnp.asarray(power_w, jnp.float32)) + 30.0


def noise_power_watts(noise_density_dbm_per_hz, bandwidth_hz):
    """Thermal noise power N0 * B in watts, from a density in dBm/Hz (spec 000 §2.7, spec 004 §7.2).

    Computed in the dB domain, P = N0[dBm/Hz] + 10 log10(B), so that float32 does not
    underflow on N0 ~ 4e-21 W/Hz.
    """
    bandwidth_hz = jnp.asarray(bandwidth_hz, jnp.float32)
    return dbm_to_watts(noise_density_dbm_per_hz + 10.0 * jnp.log10(bandwidth_hz))
