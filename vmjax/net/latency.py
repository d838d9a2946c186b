"""Latency and queue physics shared by the scenarios: transfer, compute behind a queue, split
processing, migration over wired hops, and the fluid workload queue."""

from __future__ import annotations

import jax.numpy as jnp


def transfer_latency_s(size_bits, rate_bps):
    """Time to move `size_bits` over a link of `rate_bps`: T = D / R (spec 003 T^u, eq. 3, migration;
    spec 000 eqs. 9-10; spec 002 eqs. 6-7, 12; spec 004 eqs. 1-3).

    Zero data takes zero time even over a zero-rate link (no 0/0 NaN).
    """
    size_bits = jnp.asarray(size_bits, jnp.float32)
    safe_rate = jnp.where(size_bits > 0, rate_bps, 1.0)
    return jnp.where(size_bits > 0, size_bits / safe_rate, 0.0)


def compute_latency_s(queued_cycles, task_cycles, capacity_hz):
    """Waiting behind the queued work, then processing the task: T = (L + w) / C.

    Spec 003 eqs. (4)-(5), spec 004 eqs. (6), (9); with queued_cycles = 0 it is plain compute time
    (spec 000 eq. 14, spec 002 eq. 9 with the whole queue as the task).
    """
    return (queued_cycles + task_cycles) / capacity_hz


def split_processing_latency_s(local_s, migration_s, remote_s):
    """Local processing runs in parallel with migrate-then-process: max(T_local, T_mig + T_remote)
    (spec 003 eq. 8, spec 004 eq. 10)."""
    return jnp.maximum(local_s, migration_s + remote_s)


def processor_sharing_wait_cycles(own_cycles, other_cycles, shares_server):
    """Same-slot work that delays each task under processor sharing: sum_u [shares_server_vu] min(w_u, w_v).

    Tasks that start together on one server of capacity C, each getting C / k while k are unfinished,
    finish at (sum_u min(w_u, w_v)) / C (the own task included). `own_cycles` [N] are the tasks w_v;
    `other_cycles` [U] the other tasks w_u; `shares_server` [N, U] bool says which of them run beside task v
    (exclude v itself). Spec 003 v1 contention (§2.5 extended: eqs. 4-5 with this added to L_m(t)).
    """
    own = jnp.asarray(own_cycles)[:, None]
    other = jnp.asarray(other_cycles)[None, :]
    return jnp.sum(jnp.where(shares_server, jnp.minimum(own, other), 0.0), axis=-1)


def hop_migration_latency_s(size_bits, wired_rate_bps, per_hop_s, hops):
    """Migration over a wired RSU-RSU path: S / R_N + phi * H (spec 000 eq. 13, RSU -> RSU case).

    Zero hops means no migration and zero latency.
    """
    hops = jnp.asarray(hops)
    return jnp.where(hops > 0, transfer_latency_s(size_bits, wired_rate_bps) + per_hop_s * hops, 0.0)


def backhaul_latency_s(up_bits, down_bits, wired_rate_bps, per_hop_s, hops):
    """Relay between the connected RSU and the agent's RSU: (D_up + D_down) / R_N + 2 phi H
    (spec 000 eq. 11); zero when the two are the same RSU (H = 0)."""
    hops = jnp.asarray(hops)
    wire = transfer_latency_s(up_bits + down_bits, wired_rate_bps)
    return jnp.where(hops > 0, wire + 2.0 * per_hop_s * hops, 0.0)


def fluid_queue_update(queue, arrivals, service, capacity):
    """Backlog after one slot: Q' = min(Q_max, max(0, Q + W - S)) (spec 003 §2.8, spec 002 §7.3).

    Returns (new queue, overflow), where overflow = max(0, Q + W - S - Q_max) is the work the
    clip removed (absorbed by the cloud in spec 003, dropped as failures in spec 002).
    """
    unclipped = jnp.maximum(queue + arrivals - service, 0.0)
    return jnp.minimum(unclipped, capacity), jnp.maximum(unclipped - capacity, 0.0)


def reuse_discounted_bits(size_bits, previous_bits, reused, reuse_coeff):
    """Rendering load after texture re-use: xi = max(D(t) - mu * 1[reused] * D(t-1), 0)
    (spec 004 eqs. (4) and (8), with the [R] clip at zero). `reused` is I_v(t) for the serving-RSU part
    and phi_v(t) for the pre-migrated part; mu in [0, 1] is dimensionless."""
    discount = jnp.where(reused, reuse_coeff * jnp.asarray(previous_bits, jnp.float32), 0.0)
    return jnp.maximum(jnp.asarray(size_bits, jnp.float32) - discount, 0.0)
