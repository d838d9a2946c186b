"""`Trace`: where every vehicle is in every slot, as one pytree.

Positions are float32 metres relative to the map origin (DESIGN: coordinates relative to a map origin),
indexed `[slot, vehicle, (x, y)]`. Environments replay a trace slot by slot with `position_at(t)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax.core import validation


def _is_concrete(x) -> bool:
    """True when `x` holds values (not a tracer), so value checks can run in Python."""
    return not isinstance(x, jax.core.Tracer)


@struct.dataclass
class Trace:
    """Vehicle trajectories sampled on a common slot grid.

    positions_m:  [T, V, 2] float32, metres east/north of the map origin.
    headings_rad: [T, V] float32 direction of travel atan2(dy, dx), or None when unknown.
    valid:        [T, V] bool, True where the vehicle is present in the slot; None means all valid.
    speeds_mps:   [T, V] float32 speed in m/s (e.g. SUMO's FCD `speed`), or None when unknown.
    """

    positions_m: jax.Array
    headings_rad: jax.Array | None = None
    valid: jax.Array | None = None
    speeds_mps: jax.Array | None = None

    @classmethod
    def create(cls, positions_m, headings_rad=None, valid=None, speeds_mps=None) -> Trace:
        """Checks shapes (and finiteness, for concrete inputs) in Python, casts, and builds a `Trace`."""
        positions_m = jnp.asarray(positions_m, jnp.float32)
        if positions_m.ndim != 3 or positions_m.shape[-1] != 2:
            raise ValueError(f"Trace.positions_m must have shape [T, V, 2], got {tuple(positions_m.shape)}")
        steps_vehicles = tuple(positions_m.shape[:2])
        if _is_concrete(positions_m):
            bad = np.argwhere(~np.isfinite(np.asarray(positions_m)))
            if bad.size:
                raise ValueError(
                    f"Trace.positions_m must be finite, found {len(bad)} non-finite values "
                    f"(first at [t, v, c] = {tuple(int(i) for i in bad[0])})"
                )
        if headings_rad is not None:
            headings_rad = jnp.asarray(headings_rad, jnp.float32)
            if tuple(headings_rad.shape) != steps_vehicles:
                raise ValueError(
                    f"Trace.headings_rad must have shape [T, V] = {steps_vehicles}, got {tuple(headings_rad.shape)}"
                )
        if valid is not None:
            valid = jnp.asarray(valid)
            if valid.dtype != jnp.bool_:
                raise ValueError(f"Trace.valid must have dtype bool, got {valid.dtype}")
            if tuple(valid.shape) != steps_vehicles:
                raise ValueError(f"Trace.valid must have shape [T, V] = {steps_vehicles}, got {tuple(valid.shape)}")
        if speeds_mps is not None:
            speeds_mps = jnp.asarray(speeds_mps, jnp.float32)
            if tuple(speeds_mps.shape) != steps_vehicles:
                raise ValueError(
                    f"Trace.speeds_mps must have shape [T, V] = {steps_vehicles}, got {tuple(speeds_mps.shape)}"
                )
        return cls(positions_m=positions_m, headings_rad=headings_rad, valid=valid, speeds_mps=speeds_mps)

    @property
    def num_steps(self) -> int:
        """T, the number of slots."""
        return self.positions_m.shape[-3]

    @property
    def num_vehicles(self) -> int:
        """V, the number of vehicles."""
        return self.positions_m.shape[-2]

    def position_at(self, t) -> jax.Array:
        """Positions [V, 2] in slot `t` (a Python or traced int; out-of-range `t` is clamped)."""
        return jax.lax.dynamic_index_in_dim(self.positions_m, t, axis=0, keepdims=False)

    def velocity_at(self, t, slot_s) -> jax.Array:
        """Mean velocity [V, 2] in m/s over the slot ending at `t`: (p[t] - p[t-1]) / slot_s; zeros at t = 0."""
        previous_t = jnp.maximum(jnp.asarray(t, jnp.int32) - 1, 0)
        previous_m = jax.lax.dynamic_index_in_dim(self.positions_m, previous_t, axis=0, keepdims=False)
        return (self.position_at(t) - previous_m) / jnp.asarray(slot_s, jnp.float32)

    def valid_at(self, t) -> jax.Array:
        """Presence mask [V] bool in slot `t` (all True when `valid` is None)."""
        if self.valid is None:
            return jnp.ones(self.positions_m.shape[-2], jnp.bool_)
        return jax.lax.dynamic_index_in_dim(self.valid, t, axis=0, keepdims=False)


def check_trace_bank(owner: str, bank, min_steps: int, min_vehicles: int, vehicles_label: str = "num_vehicles") -> None:
    """An env's `trace_bank` param: None, or a finite `Trace` with at least `min_steps` slots and `min_vehicles`
    tracks (errors name `<owner>.trace_bank`)."""
    if bank is None:
        return
    if not isinstance(bank, Trace):
        raise ValueError(f"{owner}.trace_bank must be a vmjax.mobility.Trace or None, got {type(bank).__name__}")
    steps, vehicles = bank.positions_m.shape[:2]
    if steps < min_steps or vehicles < min_vehicles:
        raise ValueError(
            f"{owner}.trace_bank.positions_m must have shape [>= max_steps + 1 = {min_steps}, "
            f">= {vehicles_label} = {min_vehicles}, 2], got {tuple(bank.positions_m.shape)}"
        )
    validation.check_finite(owner, "trace_bank.positions_m", bank.positions_m)
