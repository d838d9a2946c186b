"""EST-TG building blocks (spec 004 §4): road graphs, JAX shortest paths vs scipy, snapping, hourly KDEs."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse
from scipy.sparse import csgraph

from vmjax.mobility import (
    RoadGraph,
    RoadGrid,
    corridor_road,
    fit_hourly_kde,
    jittered_grid_city,
    kde_log_density,
    nearest_node,
    sample_hourly_kde,
    shortest_path,
    shortest_path_lengths,
    snap_to_road,
)

NUM_NODES = 10


def random_graph(seed: int, directed: bool) -> RoadGraph:
    """10 nodes: 12 random unique edges among nodes 0..6, one edge 7-8, node 9 isolated (so some pairs are unreachable)."""
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in range(7) for b in range(7) if a != b and (directed or a < b)]
    chosen = [pairs[i] for i in rng.choice(len(pairs), 12, replace=False)] + [(7, 8)]
    xy_m = rng.uniform(0.0, 1000.0, (NUM_NODES, 2))
    return RoadGraph.from_edges(xy_m, np.asarray(chosen), rng.uniform(10.0, 500.0, len(chosen)), directed=directed)


def scipy_distances(graph: RoadGraph) -> np.ndarray:
    edges, w = np.asarray(graph.edges), np.asarray(graph.edge_length_m, np.float64)
    matrix = scipy.sparse.csr_matrix((w, (edges[:, 0], edges[:, 1])), shape=(graph.num_nodes,) * 2)
    return csgraph.dijkstra(matrix, directed=graph.directed)


@pytest.mark.parametrize("directed", [False, True])
def test_shortest_paths_match_scipy_and_are_valid(directed):
    def lengths_from_sources(graph, sources):
        return jax.vmap(shortest_path_lengths, (None, 0))(graph, sources)

    chex.clear_trace_counter()  # the counter is per code location, shared by both parametrisations
    all_lengths = jax.jit(chex.assert_max_traces(lengths_from_sources, n=1))  # 3 graphs, one trace
    all_paths = jax.jit(jax.vmap(jax.vmap(shortest_path, (None, None, 0)), (None, 0, None)))
    nodes = jnp.arange(NUM_NODES)
    for seed in range(3):
        graph = random_graph(seed, directed)
        expected = scipy_distances(graph)
        got = np.asarray(all_lengths(graph, nodes))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
        np.testing.assert_allclose(got[np.isfinite(got)], expected[np.isfinite(expected)], rtol=1e-5)
        assert np.isinf(got[9, :9]).all() and np.isinf(got[:7, 7:]).all()

        path, count = (np.asarray(x) for x in all_paths(graph, nodes, nodes))
        edges, lengths = np.asarray(graph.edges), np.asarray(graph.edge_length_m)
        weight = {(int(a), int(b)): float(w) for (a, b), w in zip(edges, lengths)}
        if not directed:
            weight.update({(b, a): w for (a, b), w in list(weight.items())})
        for s in range(NUM_NODES):
            for t in range(NUM_NODES):
                n = int(count[s, t])
                assert (path[s, t, n:] == -1).all()
                if np.isinf(expected[s, t]):
                    assert n == 0
                    continue
                seq = path[s, t, :n].tolist()
                assert seq[0] == s and seq[-1] == t and len(set(seq)) == n
                total_m = sum(weight[(a, b)] for a, b in itertools.pairwise(seq))  # KeyError = not an edge
                np.testing.assert_allclose(total_m, expected[s, t], rtol=1e-5)

    # vmap over sources agrees with single-source calls (jitted, source traced)
    single = jax.jit(shortest_path_lengths)
    np.testing.assert_array_equal(np.asarray(single(graph, 4)), got[4])


def test_road_grid_graph_and_corridor():
    grid = RoadGrid(
        extent_m=(300.0, 200.0),
        x_roads_m=(100.0, 200.0),
        y_roads_m=(100.0,),
        lane_offsets_m=(3.0,),
        core_box_m=(0.0, 0.0, 300.0, 200.0),
    )
    graph = RoadGraph.from_road_grid(grid)
    assert graph.num_nodes == 8 and graph.num_edges == 7 and not graph.directed
    xy = np.asarray(graph.node_xy_m).tolist()
    start, end = xy.index([0.0, 100.0]), xy.index([200.0, 200.0])
    np.testing.assert_allclose(scipy_distances(graph)[start, end], 300.0)
    corridor = RoadGraph.from_road_grid(corridor_road())
    np.testing.assert_allclose(np.asarray(corridor.node_xy_m), [[0.0, 61.0], [2490.0, 61.0]])
    np.testing.assert_allclose(np.asarray(corridor.edge_length_m), [2490.0])


def test_jittered_grid_city_is_seeded_connected_and_in_the_box():
    city = jittered_grid_city(seed=3)
    assert city.num_nodes == 121 and 220 - 22 + 20 <= city.num_edges <= 240
    xy = np.asarray(city.node_xy_m)
    assert xy.min() >= 0.0 and xy.max() <= 5000.0
    grid_xy = np.stack(np.meshgrid(np.arange(11), np.arange(11), indexing="ij")[::-1], -1).reshape(-1, 2) * 500.0
    assert 25.0 < np.std(xy - grid_xy) < 50.0
    distances = scipy_distances(city)
    assert np.isfinite(distances).all()
    path, count = jax.jit(shortest_path)(city, 0, 120)  # corner to corner on the 121-node graph
    seq = np.asarray(path)[: int(count)]
    assert seq[0] == 0 and seq[-1] == 120 and (np.asarray(path)[int(count) :] == -1).all()
    np.testing.assert_allclose(np.linalg.norm(np.diff(xy[seq], axis=0), axis=-1).sum(), distances[0, 120], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(jittered_grid_city(seed=3).edges), np.asarray(city.edges))
    assert not np.array_equal(np.asarray(jittered_grid_city(seed=4).node_xy_m), xy)
    no_jitter = jittered_grid_city(seed=0, rows=3, cols=3, spacing_m=100.0, jitter_m=0.0, delete_fraction=0.0)
    assert no_jitter.num_edges == 12 + 4  # grid plus the 4 diagonal rays from the centre
    np.testing.assert_allclose(scipy_distances(no_jitter)[0, 8], 200.0 * np.sqrt(2.0), rtol=1e-6)


def test_snap_to_road_hand_computed():
    graph = RoadGraph.from_edges([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]], [[0, 1], [1, 2]])
    points = np.array([[[3.0, 4.0], [12.0, 6.0], [-3.0, -4.0]], [[10.0, 0.0], [6.0, 2.0], [20.0, 20.0]]])
    snapped, edge, dist = (np.asarray(x) for x in jax.jit(snap_to_road)(graph, points))
    assert snapped.shape == (2, 3, 2) and edge.shape == dist.shape == (2, 3)
    np.testing.assert_allclose(snapped[0], [[3.0, 0.0], [10.0, 6.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(edge[0], [0, 1, 0])
    np.testing.assert_allclose(dist[0], [4.0, 2.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(snapped[1], [[10.0, 0.0], [6.0, 0.0], [10.0, 10.0]], atol=1e-6)
    np.testing.assert_allclose(dist[1], [0.0, 2.0, np.hypot(10.0, 10.0)], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(nearest_node(graph, points[0])), [0, 2, 0])


def numpy_kde_log_density(data_unit, query_unit, bandwidth):
    """(17): log (1/n) sum_i (2 pi h^2)^-1 exp(-|u - u_i|^2 / (2 h^2)), in float64."""
    sq = ((query_unit[:, None, :] - data_unit[None]) ** 2).sum(-1)
    return np.log(np.mean(np.exp(-0.5 * sq / bandwidth**2), axis=1) / (2.0 * np.pi * bandwidth**2))


def test_kde_log_density_matches_numpy_mixture_per_hour():
    rng = np.random.default_rng(0)
    box_m = np.array([0.0, 0.0, 1000.0, 500.0])
    xy_m = rng.uniform(0.0, 1.0, (31, 2)) * box_m[2:]
    hours = np.arange(31) % 3  # hour 0 has 11 points, hours 1 and 2 have 10 (padding is exercised)
    kde = fit_hourly_kde(xy_m, hours, bandwidth=0.1, box_m=box_m, num_hours=3)
    np.testing.assert_array_equal(np.asarray(kde.counts), [11, 10, 10])
    query_m = rng.uniform(0.0, 1.0, (6, 2)) * box_m[2:]
    log_density = jax.jit(kde_log_density)
    for hour in range(3):
        expected = numpy_kde_log_density(xy_m[hours == hour] / box_m[2:], query_m / box_m[2:], 0.1)
        np.testing.assert_allclose(np.asarray(log_density(kde, hour, query_m)), expected, rtol=1e-4, atol=1e-4)


def test_kde_samples_match_mixture_moments_and_hour_selection():
    rng = np.random.default_rng(1)
    box_m = np.array([0.0, 0.0, 5000.0, 5000.0])
    hour0_m = rng.normal([1000.0, 1000.0], [300.0, 600.0], (40, 2))
    hour1_m = rng.normal([4000.0, 3500.0], 200.0, (25, 2))
    kde = fit_hourly_kde(np.concatenate([hour0_m, hour1_m]), np.repeat([0, 1], [40, 25]), 0.05, box_m, num_hours=2)
    sample = jax.jit(sample_hourly_kde, static_argnums=3)
    for hour, data_m in ((0, hour0_m), (1, hour1_m)):
        samples_unit = np.asarray(kde.to_unit(sample(jax.random.key(hour), kde, hour, 40000)), np.float64)
        data_unit = data_m / 5000.0
        np.testing.assert_allclose(samples_unit.mean(0), data_unit.mean(0), atol=0.004)
        expected_cov = np.cov(data_unit.T, bias=True) + 0.05**2 * np.eye(2)
        np.testing.assert_allclose(np.cov(samples_unit.T), expected_cov, atol=0.002)
    at_hour1_centre = np.array([[4000.0, 3500.0]])
    assert float(kde_log_density(kde, 1, at_hour1_centre)[0]) > float(kde_log_density(kde, 0, at_hour1_centre)[0]) + 5.0


def test_bad_inputs_name_the_field():
    xy = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    cases = [
        (lambda: RoadGraph.from_edges(xy, [[0, 1]], [-1.0]), "edge_length_m"),
        (lambda: RoadGraph.from_edges(xy, [[0, 1]], [np.nan]), "edge_length_m"),
        (lambda: RoadGraph.from_edges(xy, [[0, 1], [1, 2]], [1.0]), "edge_length_m"),
        (lambda: RoadGraph.from_edges(xy, [[0, 3]]), "edges"),
        (lambda: RoadGraph.from_edges(xy, [[0, -1]]), "edges"),
        (lambda: RoadGraph.from_edges(xy, [[1, 1]]), "self-loops"),
        (lambda: RoadGraph.from_edges(xy, [[0.0, 1.0]]), "edges"),
        (lambda: RoadGraph.from_edges(xy, [0, 1]), "edges"),
        (lambda: RoadGraph.from_edges([[0.0, 0.0, 0.0]], [[0, 1]]), "node_xy_m"),
        (lambda: RoadGraph.from_edges([[0.0, np.inf], [1.0, 0.0]], [[0, 1]]), "node_xy_m"),
        (lambda: fit_hourly_kde(xy, [0, 1, 1], num_hours=3), r"hours \[2\] have no points"),
        (lambda: fit_hourly_kde(xy, [0, 1, 5], num_hours=3), "hours must lie"),
        (lambda: fit_hourly_kde(xy, [0, 1], num_hours=2), "hours must be integers"),
        (lambda: fit_hourly_kde(xy, [0, 0, 0], bandwidth=0.0, num_hours=1), "bandwidth"),
        (lambda: fit_hourly_kde(xy, [0, 0, 0], box_m=(0.0, 0.0, 0.0, 1.0), num_hours=1), "box_m"),
        (lambda: fit_hourly_kde(np.zeros((3, 3)), [0, 0, 0], num_hours=1), "points_xy_m"),
        (lambda: jittered_grid_city(rows=1), "rows"),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match):
            make()
