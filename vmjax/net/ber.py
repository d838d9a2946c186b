"""Bit error rate from concurrent pre-migrations to one RSU (spec 004 eqs. 12-14)."""

from __future__ import annotations

import jax.numpy as jnp


def contention_bit_error_rate(premigrated_megabits, target, premigrates, scale_per_megabit):
    """eps_v = 1 - exp(-sum_{v' != v} tau D^m_{v'} chi_{v'}) for every vehicle (spec 004 eqs. 12-14 [R]).

    chi_{v'} = 1 when v' pre-migrates to the same RSU as v in the same slot and both pre-migrate.
    Inputs are per vehicle, shape [V]: pre-migrated size (Mbit), target RSU index, pre-migration flag.
    """
    same_target = target[:, None] == target[None, :]
    both = premigrates[:, None] & premigrates[None, :]
    others = ~jnp.eye(target.shape[0], dtype=bool)
    chi = same_target & both & others
    exposure = scale_per_megabit * jnp.sum(jnp.where(chi, premigrated_megabits[None, :], 0.0), axis=1)
    return 1.0 - jnp.exp(-exposure)
