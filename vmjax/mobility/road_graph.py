"""Road graphs for EST-TG (spec 004 §4): `RoadGraph`, shortest paths in JAX, and snapping points onto roads.

A `RoadGraph` is a pytree of node positions (metres from the map origin) and an edge list with lengths in metres.
Edges are undirected by default (`directed=False`: every edge can be driven both ways); with `directed=True` an
edge (src, dst) goes from src to dst only. Shortest paths (spec §4.5, relaxation (18)) run Bellman-Ford on a dense
[N, N] weight matrix inside `lax.while_loop`, which is jittable, vmappable over sources and cheap for the few
hundred nodes of the spec's major-road graphs. `snap_to_road` is the nearest-edge projection of §4.2 step 4 and
the trajectory correction of §4.7. `jittered_grid_city` is the synthetic stand-in for Beijing's major roads (§4.8).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax.mobility.roads import RoadGrid


@struct.dataclass
class RoadGraph:
    """Road network as nodes and straight edges.

    node_xy_m:      [N, 2] float32, node positions in metres east/north of the map origin.
    edges:          [M, 2] int32, (src, dst) node ids of every edge.
    edge_length_m:  [M] float32 > 0, edge weights in metres (>= the straight distance for curved roads).
    directed:       static bool; False (default) means every edge is two-way.
    Build it with `RoadGraph.from_edges` (validated) rather than the raw constructor.
    """

    node_xy_m: jax.Array
    edges: jax.Array
    edge_length_m: jax.Array
    directed: bool = struct.field(pytree_node=False, default=False)

    @property
    def num_nodes(self) -> int:
        return self.node_xy_m.shape[0]

    @property
    def num_edges(self) -> int:
        return self.edges.shape[0]

    @classmethod
    def from_edges(cls, node_xy_m, edges, edge_length_m=None, *, directed: bool = False) -> RoadGraph:
        """Validates (in NumPy, before any tracing) and builds a graph; ValueError names the bad field.

        edge_length_m=None uses the straight-line length of every edge. Lengths must be finite and > 0
        (a zero-length edge would make shortest-path predecessors ambiguous); self-loops are rejected.
        """
        node_xy_m = np.asarray(node_xy_m, np.float64)
        if node_xy_m.ndim != 2 or node_xy_m.shape[1] != 2 or node_xy_m.shape[0] == 0:
            raise ValueError(f"RoadGraph.node_xy_m must have shape [N, 2] with N >= 1, got {node_xy_m.shape}")
        if not np.all(np.isfinite(node_xy_m)):
            raise ValueError("RoadGraph.node_xy_m must be finite")
        num_nodes = node_xy_m.shape[0]
        edges = np.asarray(edges)
        if edges.ndim != 2 or edges.shape[1] != 2 or edges.shape[0] == 0:
            raise ValueError(f"RoadGraph.edges must have shape [M, 2] with M >= 1, got {edges.shape}")
        if not np.issubdtype(edges.dtype, np.integer):
            raise ValueError(f"RoadGraph.edges must hold integer node ids, got dtype {edges.dtype}")
        bad = np.argwhere((edges < 0) | (edges >= num_nodes))
        if bad.size:
            i = int(bad[0, 0])
            raise ValueError(f"RoadGraph.edges must be node ids in [0, {num_nodes}), edge {i} is {edges[i].tolist()}")
        loops = np.flatnonzero(edges[:, 0] == edges[:, 1])
        if loops.size:
            raise ValueError(
                f"RoadGraph.edges must not contain self-loops, edge {int(loops[0])} is {edges[loops[0]].tolist()}"
            )
        if edge_length_m is None:
            edge_length_m = np.linalg.norm(node_xy_m[edges[:, 1]] - node_xy_m[edges[:, 0]], axis=-1)
        edge_length_m = np.asarray(edge_length_m, np.float64)
        if edge_length_m.shape != (edges.shape[0],):
            raise ValueError(
                f"RoadGraph.edge_length_m must have shape [M] = ({edges.shape[0]},), got {edge_length_m.shape}"
            )
        bad = np.flatnonzero(~(np.isfinite(edge_length_m) & (edge_length_m > 0.0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"RoadGraph.edge_length_m must be finite and > 0, edge {i} has {edge_length_m[i]}")
        return cls(
            node_xy_m=jnp.asarray(node_xy_m, jnp.float32),
            edges=jnp.asarray(edges, jnp.int32),
            edge_length_m=jnp.asarray(edge_length_m, jnp.float32),
            directed=bool(directed),
        )

    @classmethod
    def from_road_grid(cls, grid: RoadGrid) -> RoadGraph:
        """Undirected graph of a `RoadGrid`'s centre lines (lanes are not modelled).

        Nodes: every crossing of an x-road and a y-road, plus both ends of every road on the map border.
        Edges: consecutive nodes along each road, with their straight length. Node order: sorted (x, y).
        """
        width_m, height_m = grid.extent_m
        points = {(x, y) for x in grid.x_roads_m for y in grid.y_roads_m}
        points |= {(x, y) for x in grid.x_roads_m for y in (0.0, height_m)}
        points |= {(x, y) for y in grid.y_roads_m for x in (0.0, width_m)}
        nodes = sorted(points)
        index = {p: i for i, p in enumerate(nodes)}
        edges = []
        for x in grid.x_roads_m:
            ys = sorted(y for (px, y) in nodes if px == x)
            edges += [(index[(x, a)], index[(x, b)]) for a, b in itertools.pairwise(ys)]
        for y in grid.y_roads_m:
            xs = sorted(x for (x, py) in nodes if py == y)
            edges += [(index[(a, y)], index[(b, y)]) for a, b in itertools.pairwise(xs)]
        return cls.from_edges(np.asarray(nodes), np.asarray(edges, np.int64))


def _connected(num_nodes: int, edges: np.ndarray) -> bool:
    """True when the undirected graph is connected (union-find, NumPy/Python; for construction only)."""
    parent = list(range(num_nodes))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        parent[find(int(a))] = find(int(b))
    return len({find(i) for i in range(num_nodes)}) == 1


def jittered_grid_city(
    seed: int = 0,
    rows: int = 11,
    cols: int = 11,
    spacing_m: float = 500.0,
    jitter_m: float = 40.0,
    delete_fraction: float = 0.1,
    diagonals: bool = True,
) -> RoadGraph:
    """Synthetic "major roads" of a city window (spec 004 §4.8), undirected, seeded (NumPy `default_rng(seed)`).

    Defaults: 5 km x 5 km, 11 x 11 nodes 500 m apart, node jitter N(0, jitter_m) clipped to the map box
    [0, (cols-1) spacing] x [0, (rows-1) spacing]; `delete_fraction` of the grid edges are drawn for deletion and
    each deletion is dropped if it would disconnect the graph; `diagonals` adds the two diagonals through the
    centre node as edges between diagonal neighbours (four arterials from the centre towards the corners; the
    spec's "4 diagonal arterials through the centre", as we read it). Edge length = straight length; the spec's
    optional curved 2-segment polylines are not modelled (`RoadGraph` edges are straight).
    Node id of grid cell (row r, col c) = r * cols + c.
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"jittered_grid_city: rows and cols must be >= 2, got {rows}, {cols}")
    if not (spacing_m > 0.0 and jitter_m >= 0.0 and 0.0 <= delete_fraction < 1.0):
        raise ValueError(
            "jittered_grid_city: need spacing_m > 0, jitter_m >= 0 and 0 <= delete_fraction < 1, got "
            f"{spacing_m}, {jitter_m}, {delete_fraction}"
        )
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    xy_m = np.stack([c.ravel(), r.ravel()], axis=-1) * float(spacing_m)
    xy_m = xy_m + rng.normal(0.0, jitter_m, size=xy_m.shape)
    xy_m = np.clip(xy_m, 0.0, [(cols - 1) * spacing_m, (rows - 1) * spacing_m])

    def node(rr, cc):
        return rr * cols + cc

    edges = [(node(i, j), node(i, j + 1)) for i in range(rows) for j in range(cols - 1)]
    edges += [(node(i, j), node(i + 1, j)) for i in range(rows - 1) for j in range(cols)]
    edges = np.asarray(edges, np.int64)
    keep = np.ones(len(edges), bool)
    for i in rng.permutation(len(edges))[: round(delete_fraction * len(edges))]:
        keep[i] = False
        if not _connected(rows * cols, edges[keep]):
            keep[i] = True
    edges = edges[keep]
    if diagonals:
        r0, c0 = rows // 2, cols // 2
        diag = []
        for dr, dc in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            rr, cc = r0, c0
            while 0 <= rr + dr < rows and 0 <= cc + dc < cols:
                diag.append((node(rr, cc), node(rr + dr, cc + dc)))
                rr, cc = rr + dr, cc + dc
        edges = np.concatenate([edges, np.asarray(diag, np.int64).reshape(-1, 2)])
    return RoadGraph.from_edges(xy_m, edges)


def weight_matrix_m(graph: RoadGraph) -> jax.Array:
    """Dense [N, N] float32 edge weights in metres: W[u, v] = shortest edge u -> v, inf without one, 0 on the diagonal."""
    n = graph.num_nodes
    src, dst = graph.edges[:, 0], graph.edges[:, 1]
    w = jnp.full((n, n), jnp.inf, jnp.float32).at[src, dst].min(graph.edge_length_m)
    if not graph.directed:
        w = w.at[dst, src].min(graph.edge_length_m)
    return w.at[jnp.arange(n), jnp.arange(n)].set(0.0)


def _bellman_ford_m(weights_m: jax.Array, source) -> jax.Array:
    """Distances [N] from `source` by relaxation (18) d(v) = min(d(v), d(u) + w(u, v)) until nothing changes."""
    n = weights_m.shape[0]
    dist = jnp.full((n,), jnp.inf, jnp.float32).at[source].set(0.0)

    def body(state):
        d, _, it = state
        new = jnp.min(d[:, None] + weights_m, axis=0)  # the diagonal is 0, so new <= d
        return new, jnp.any(new < d), it + 1

    def cond(state):
        return state[1] & (state[2] < n)

    dist, _, _ = jax.lax.while_loop(cond, body, (dist, jnp.array(True), jnp.array(0)))
    return dist


def shortest_path_lengths(graph: RoadGraph, source) -> jax.Array:
    """Shortest-path distances [N] float32 in metres from node `source` (spec §4.5); inf for unreachable nodes.

    Jittable (`source` may be traced) and vmappable over sources: `jax.vmap(shortest_path_lengths, (None, 0))`.
    """
    return _bellman_ford_m(weight_matrix_m(graph), jnp.asarray(source, jnp.int32))


def shortest_path(graph: RoadGraph, source, target) -> tuple[jax.Array, jax.Array]:
    """Shortest path from `source` to `target` as a fixed-shape node sequence (spec §4.5).

    Returns (nodes [N] int32, num_nodes int32): nodes[:num_nodes] runs from source to target, the rest is -1.
    source == target gives ([source, -1, ...], 1); an unreachable target gives (all -1, 0).
    Jittable and vmappable over sources and targets; N (the node count) bounds every simple path.
    """
    weights_m = weight_matrix_m(graph)
    source = jnp.asarray(source, jnp.int32)
    target = jnp.asarray(target, jnp.int32)
    dist = _bellman_ford_m(weights_m, source)
    pred = jnp.argmin(dist[:, None] + weights_m.at[jnp.diag_indices(graph.num_nodes)].set(jnp.inf), axis=0)
    pred = pred.astype(jnp.int32)

    def back(node, _):
        nxt = jnp.where((node < 0) | (node == source), -1, pred[jnp.maximum(node, 0)])
        return nxt, node

    start = jnp.where(jnp.isfinite(dist[target]), target, -1)
    _, reversed_nodes = jax.lax.scan(back, start, None, length=graph.num_nodes)
    count = jnp.sum(reversed_nodes >= 0).astype(jnp.int32)
    i = jnp.arange(graph.num_nodes)
    nodes = jnp.where(i < count, reversed_nodes[jnp.clip(count - 1 - i, 0, graph.num_nodes - 1)], -1)
    return nodes, count


def snap_to_road(graph: RoadGraph, points_m) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Orthogonal projection of points [..., 2] (metres) onto the nearest edge segment (spec §4.2 step 4, §4.7).

    Returns (snapped_m [..., 2] float32, edge_index [...] int32, distance_m [...] float32). Ties go to the lowest
    edge index. Memory is [..., M]: chunk very large point sets.
    """
    p = jnp.asarray(points_m, jnp.float32)[..., None, :]  # [..., 1, 2]
    a = graph.node_xy_m[graph.edges[:, 0]]  # [M, 2]
    ab = graph.node_xy_m[graph.edges[:, 1]] - a
    t = jnp.clip(jnp.sum((p - a) * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    proj = a + t[..., None] * ab  # [..., M, 2]
    dist_m = jnp.linalg.norm(p - proj, axis=-1)
    edge = jnp.argmin(dist_m, axis=-1)
    snapped = jnp.take_along_axis(proj, edge[..., None, None], axis=-2)[..., 0, :]
    return snapped, edge.astype(jnp.int32), jnp.take_along_axis(dist_m, edge[..., None], axis=-1)[..., 0]


def nearest_node(graph: RoadGraph, points_m) -> jax.Array:
    """Id [...] int32 of the node nearest to each point [..., 2] (spec §4.4: entry/exit points snap to nodes)."""
    d2 = jnp.sum((jnp.asarray(points_m, jnp.float32)[..., None, :] - graph.node_xy_m) ** 2, axis=-1)
    return jnp.argmin(d2, axis=-1).astype(jnp.int32)
