"""UAV patrols: closed loops through ground anchors (RSUs) flown at constant speed, with optional entry from
and exit to the map boundary (spec 002 §1, §5.5 step 1, §7.2 "UAV patrols", §8.2 ablation 5).

    loops = patrol_loops(rsu_xy_m, num_loops=10, loop_size=4)        # static NumPy [U, K, 2]
    xy, present = uav_positions_m(loops, phase_m, enter_slot, leave_slot, t, 3.7, 30.0, extent_m)

A UAV that is present from the start patrols its loop from `phase_m` metres past its first waypoint. A UAV
with an entry slot e >= 0 appears at the boundary point nearest its first waypoint in slot e, flies
straight there at the patrol speed, then patrols from the first waypoint. A UAV with a leave slot l leaves
its path in slot l towards the boundary point nearest to where it is, and is absent from the slot in which
it reaches the boundary on. Positions are metres from the map origin; everything after `patrol_loops` is
pure JAX, vectorised over UAVs, and differentiable in the speed and phase.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

ALWAYS = -(2**30)
"""`enter_slot` of a UAV present from before the episode (no entry flight)."""

NEVER = 2**30
"""`leave_slot` of a UAV that stays to the end."""


def patrol_loops(anchors_xy_m, num_loops: int, loop_size: int = 4) -> np.ndarray:
    """Closed patrol loops through nearby anchors (RSUs) [num_loops, K, 2], K = min(loop_size, #anchors).

    Loop seeds are spread over the map by farthest-point sampling (first seed: the anchor nearest the
    anchors' centroid; loops may share seeds when there are fewer anchors than loops); each loop is its seed
    plus the seed's K - 1 nearest anchors, visited in angular order around their centroid (a simple polygon).
    """
    anchors = np.asarray(anchors_xy_m, np.float64).reshape(-1, 2)
    if anchors.shape[0] < 1:
        raise ValueError("patrol_loops: anchors_xy_m must hold at least one anchor")
    if num_loops < 0 or loop_size < 1:
        raise ValueError(f"patrol_loops: num_loops must be >= 0 and loop_size >= 1, got {num_loops}, {loop_size}")
    k = min(loop_size, anchors.shape[0])
    dist = np.linalg.norm(anchors[:, None] - anchors[None], axis=-1)
    seeds = [int(np.argmin(np.linalg.norm(anchors - anchors.mean(axis=0), axis=-1)))]
    to_seeds = dist[seeds[0]].copy()
    while len(seeds) < num_loops:
        nxt = int(np.argmax(to_seeds))
        seeds.append(nxt)
        to_seeds = np.minimum(to_seeds, dist[nxt])
    loops = np.zeros((num_loops, k, 2), np.float32)
    for u, seed in enumerate(seeds[:num_loops]):
        members = anchors[np.argsort(dist[seed], kind="stable")[:k]]
        centre = members.mean(axis=0)
        angle = np.arctan2(members[:, 1] - centre[1], members[:, 0] - centre[0])
        members = members[np.argsort(angle, kind="stable")]
        start = int(np.argmin(np.linalg.norm(members - anchors[seed], axis=-1)))
        loops[u] = np.roll(members, -start, axis=0)  # the loop starts at its seed
    return loops


def _segments(loops_m):
    """Segment vectors [U, K, 2] (waypoint k -> k+1, closing back to 0) and lengths [U, K]."""
    vec = jnp.roll(loops_m, -1, axis=-2) - loops_m
    length = jnp.sqrt(vec[..., 0] ** 2 + vec[..., 1] ** 2)
    return vec, length


def loop_lengths_m(loops_m):
    """Perimeter of each closed loop [U]."""
    return jnp.sum(_segments(jnp.asarray(loops_m, jnp.float32))[1], axis=-1)


def position_on_loop_m(loops_m, distance_m):
    """Where a UAV is after flying `distance_m` [U] (any real number; it wraps) from its first waypoint along
    its closed loop [U, K, 2] -> [U, 2]. A loop of zero length (one anchor) is a hover point."""
    loops_m = jnp.asarray(loops_m, jnp.float32)
    vec, length = _segments(loops_m)
    total = jnp.sum(length, axis=-1)
    s = jnp.mod(distance_m, jnp.where(total > 0, total, 1.0))
    ends = jnp.cumsum(length, axis=-1)  # [U, K]
    seg = jnp.minimum(jnp.sum(s[:, None] >= ends, axis=-1), loops_m.shape[-2] - 1)
    start_s = jnp.take_along_axis(ends - length, seg[:, None], axis=-1)[:, 0]
    seg_len = jnp.take_along_axis(length, seg[:, None], axis=-1)[:, 0]
    frac = jnp.where(seg_len > 0, (s - start_s) / jnp.where(seg_len > 0, seg_len, 1.0), 0.0)
    start = jnp.take_along_axis(loops_m, seg[:, None, None], axis=-2)[:, 0]
    step = jnp.take_along_axis(vec, seg[:, None, None], axis=-2)[:, 0]
    return start + frac[:, None] * step


def nearest_boundary_point_m(xy_m, extent_m):
    """The point of the map rectangle's boundary [0, W] x [0, H] nearest to each point [..., 2] (for a point
    inside: its projection on the closest edge)."""
    xy_m = jnp.asarray(xy_m, jnp.float32)
    width, height = extent_m[0], extent_m[1]
    x = jnp.clip(xy_m[..., 0], 0.0, width)
    y = jnp.clip(xy_m[..., 1], 0.0, height)
    gaps = jnp.stack([x, width - x, y, height - y], axis=-1)
    edge = jnp.argmin(gaps, axis=-1)
    return jnp.stack(
        [
            jnp.where(edge == 0, 0.0, jnp.where(edge == 1, width, x)),
            jnp.where(edge == 2, 0.0, jnp.where(edge == 3, height, y)),
        ],
        axis=-1,
    )


def _norm(v):
    return jnp.sqrt(v[..., 0] ** 2 + v[..., 1] ** 2)


def _flight_before_leaving_m(loops_m, phase_m, enter_slot, t, step_m, extent_m):
    """Position [U, 2] in slot `t` ignoring the exit: entry leg, then the loop."""
    entering = enter_slot > ALWAYS
    first = loops_m[:, 0]
    gate = nearest_boundary_point_m(first, extent_m)
    leg = first - gate
    leg_m = _norm(leg)
    flown_m = (t - jnp.where(entering, enter_slot, 0)).astype(jnp.float32) * step_m
    on_leg = entering & (flown_m < leg_m)
    leg_xy = gate + jnp.clip(flown_m / jnp.where(leg_m > 0, leg_m, 1.0), 0.0, 1.0)[:, None] * leg
    loop_m = jnp.where(entering, flown_m - leg_m, phase_m + flown_m)
    return jnp.where(on_leg[:, None], leg_xy, position_on_loop_m(loops_m, loop_m))


def uav_positions_m(loops_m, phase_m, enter_slot, leave_slot, t, speed_mps, slot_s, extent_m):
    """UAV positions [U, 2] and presence [U] in slot `t` (a traced int; negative slots are before the
    episode). `enter_slot` [U] int32: `ALWAYS` or the slot of entry at the boundary; `leave_slot` [U]: `NEVER`
    or the slot in which the UAV heads for the boundary. Present iff entered and not yet out."""
    loops_m = jnp.asarray(loops_m, jnp.float32)
    extent_m = jnp.asarray(extent_m, jnp.float32)
    step_m = jnp.asarray(speed_mps, jnp.float32) * slot_s
    t = jnp.asarray(t, jnp.int32)
    leaving = leave_slot < NEVER
    here = _flight_before_leaving_m(loops_m, phase_m, enter_slot, t, step_m, extent_m)
    exit_from = _flight_before_leaving_m(
        loops_m, phase_m, enter_slot, jnp.where(leaving, leave_slot, t), step_m, extent_m
    )
    gate = nearest_boundary_point_m(exit_from, extent_m)
    out = gate - exit_from
    out_m = _norm(out)
    flown_m = (t - jnp.where(leaving, leave_slot, t)).astype(jnp.float32) * step_m
    gone = leaving & (flown_m >= out_m) & (t >= leave_slot)
    away = leaving & (t >= leave_slot)
    out_xy = exit_from + jnp.clip(flown_m / jnp.where(out_m > 0, out_m, 1.0), 0.0, 1.0)[:, None] * out
    xy = jnp.where(away[:, None], out_xy, here)
    entered = (enter_slot <= ALWAYS) | (t >= enter_slot)
    return xy, entered & ~gone
