"""Wired topology between servers: k-nearest-neighbour graphs and hop counts (spec 000 §2.7 [REC],
spec 004 §7.2). Static NumPy: computed once from the layout, then stored in params as arrays."""

from __future__ import annotations

import numpy as np


def knn_adjacency(positions_m, k: int) -> np.ndarray:
    """Undirected graph joining each node to its k nearest nodes, symmetrised (spec 000 §2.7 [REC])."""
    positions_m = np.asarray(positions_m, dtype=np.float64)
    n = positions_m.shape[0]
    if k < 1 or k >= max(n, 2):
        raise ValueError(f"k must be in [1, {max(n - 1, 1)}] for {n} nodes, got {k}")
    dist = np.linalg.norm(positions_m[:, None] - positions_m[None, :], axis=-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[np.repeat(np.arange(n), k), nearest.ravel()] = True
    return adjacency | adjacency.T


def hop_counts(adjacency) -> np.ndarray:
    """Shortest-path hop counts by breadth-first search; H(n, n) = 0, unreachable pairs = -1."""
    adjacency = np.asarray(adjacency, dtype=bool)
    n = adjacency.shape[0]
    hops = np.full((n, n), -1, dtype=np.int32)
    for source in range(n):
        hops[source, source] = 0
        frontier = [source]
        depth = 0
        while frontier:
            depth += 1
            neighbours = np.flatnonzero(adjacency[frontier].any(axis=0) & (hops[source] < 0))
            hops[source, neighbours] = depth
            frontier = list(neighbours)
    return hops


def grid_manhattan_hops(rows: int, cols: int) -> np.ndarray:
    """Hop counts between the cells of a rows x cols grid (row-major), |dr| + |dc| (spec 004 §7.2)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    return (np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :])).astype(np.int32)


def knn_hop_counts(positions_m, k: int) -> np.ndarray:
    """H(n, n'): BFS hop counts [N, N] int32 on the symmetrised k-nearest-neighbour graph of the nodes,
    H(n, n) = 0 (spec 000 §2.7 [R A8]: the RSU-RSU wired graph, k = 4)."""
    return hop_counts(knn_adjacency(positions_m, k)).astype(np.int32)
