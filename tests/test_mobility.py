"""Tests of vmjax.mobility: Trace, road grids, synthetic road-grid mobility (spec 003 §7.2), trace CSV files."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmjax.mobility import (
    MobilityParams,
    RoadGrid,
    Trace,
    corridor_road,
    distance_to_lane_m,
    distance_to_road_m,
    generate_trajectories,
    intersections_m,
    load_trace_csv,
    urban_grid,
    write_trace_csv,
)

# One compiled generator per (grid, shape): every test below reuses these shapes, and params are traced.
GEN = jax.jit(generate_trajectories, static_argnames=("grid", "num_vehicles", "num_steps", "substeps"))
CORRIDOR = corridor_road()
URBAN = urban_grid()
NUM_VEHICLES, NUM_STEPS, SLOT_S = 64, 200, 10.0
QUIET = MobilityParams(lateral_jitter_std_m=0.0, gps_noise_std_m=0.0)
ORIGIN_LONLAT = (114.0439, 22.5312)  # spec 003 §7.2 projection origin


def generate(grid, params, seed=0):
    """Trace on one of the two test grids, as NumPy arrays (positions [T, V, 2], headings [T, V])."""
    trace = GEN(jax.random.key(seed), grid, params, NUM_VEHICLES, NUM_STEPS, SLOT_S)
    return np.asarray(trace.positions_m), np.asarray(trace.headings_rad)


def wrap_rad(angle):
    """Angle in [-pi, pi)."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def displacements_m(positions_m):
    """Per-slot displacement lengths [T-1, V]."""
    return np.linalg.norm(np.diff(positions_m, axis=0), axis=-1)


# --------------------------------------------------------------------------------------------- lane geometry


def test_corridor_lane_geometry_by_hand():
    # Spec 003 §7.2: road centre y = 122 / 2 = 61 m, lane offsets 6 and 16 m, right-hand traffic.
    # Eastbound heading (1, 0): right-hand normal (dy, -dx) = (0, -1)  ->  y = 61 - 6 = 55 and 61 - 16 = 45.
    # Westbound heading (-1, 0): normal (0, 1)                          ->  y = 61 + 6 = 67 and 61 + 16 = 77.
    grid = corridor_road()
    assert grid.y_roads_m == (61.0,) and grid.x_roads_m == () and grid.lane_offsets_m == (6.0, 16.0)
    assert grid.extent_m == (2490.0, 122.0) and grid.core_box_m == (0.0, 0.0, 2490.0, 122.0)
    positions_m, headings_rad = generate(CORRIDOR, QUIET)
    east = np.abs(wrap_rad(headings_rad)) < 1e-6
    west = np.abs(np.abs(wrap_rad(headings_rad)) - np.pi) < 1e-6
    assert np.all(east | west)
    assert east.any() and west.any()
    assert set(np.unique(np.round(positions_m[..., 1][east], 3))) == {45.0, 55.0}
    assert set(np.unique(np.round(positions_m[..., 1][west], 3))) == {67.0, 77.0}


def test_urban_lanes_are_on_the_right_of_travel():
    # Northbound (0, 1): normal (1, 0), lane at x = road + 3. Southbound: x = road - 3.
    # Eastbound (1, 0): normal (0, -1), y = road - 3. Westbound: y = road + 3.
    positions_m, headings_rad = generate(URBAN, QUIET)
    x_roads = np.asarray(URBAN.x_roads_m)
    y_roads = np.asarray(URBAN.y_roads_m)

    def signed_offset(coord, roads):
        nearest = roads[np.argmin(np.abs(coord[..., None] - roads), axis=-1)]
        return coord - nearest

    heading = np.round(wrap_rad(headings_rad) / (np.pi / 2)).astype(int) % 4  # 0 east, 1 north, 2 west, 3 south
    x_offset = signed_offset(positions_m[..., 0], x_roads)
    y_offset = signed_offset(positions_m[..., 1], y_roads)
    np.testing.assert_allclose(x_offset[heading == 1], 3.0, atol=1e-3)
    np.testing.assert_allclose(x_offset[heading == 3], -3.0, atol=1e-3)
    np.testing.assert_allclose(y_offset[heading == 0], -3.0, atol=1e-3)
    np.testing.assert_allclose(y_offset[heading == 2], 3.0, atol=1e-3)
    assert all((heading == h).any() for h in range(4))


def test_turn_geometry_by_hand():
    # Sub-step of 30 m across the intersection (1050, 900) of the urban grid, 10 m before it:
    # the vehicle turns there and drives the remaining 20 m on the crossing road.
    # Left rotates the heading by +90 deg: E -> N, N -> W, W -> S, S -> E; right by -90 deg.
    from vmjax.mobility.synthetic import _crossing_table, _Drive, _drive_substep, _road_point_m, _unit_heading

    #          E       W       N       S      E straight
    vertical = [False, False, True, True, False]
    road_m = [900.0, 900.0, 1050.0, 1050.0, 900.0]
    along_m = [1040.0, 1060.0, 890.0, 910.0, 1040.0]
    direction = [1.0, -1.0, 1.0, -1.0, 1.0]
    drive = _Drive(
        vertical=jnp.array(vertical),
        road_m=jnp.array(road_m, jnp.float32),
        along_m=jnp.array(along_m, jnp.float32),
        direction=jnp.array(direction, jnp.float32),
        lane=jnp.zeros(5, jnp.int32),
        speed_mps=jnp.zeros(5, jnp.float32),
        stop_slots_left=jnp.zeros(5, jnp.int32),
    )
    crossings_m = jnp.asarray(_crossing_table(URBAN))
    distance_m = jnp.full(5, 30.0, jnp.float32)

    def after(turn_u):
        moved = _drive_substep(drive, distance_m, jnp.array(turn_u, jnp.float32), 0.5, crossings_m, URBAN.extent_m)
        return np.asarray(_road_point_m(moved.vertical, moved.road_m, moved.along_m)), np.asarray(
            _unit_heading(moved.vertical, moved.direction)
        )

    point_m, heading = after([0.1, 0.1, 0.1, 0.1, 0.9])  # u < p / 2: left; the last one goes straight
    np.testing.assert_allclose(point_m, [[1050, 920], [1050, 880], [1030, 900], [1070, 900], [1070, 900]])
    np.testing.assert_allclose(heading, [[0, 1], [0, -1], [-1, 0], [1, 0], [1, 0]])
    point_m, heading = after([0.3, 0.3, 0.3, 0.3, 0.6])  # p / 2 <= u < p: right
    np.testing.assert_allclose(point_m, [[1050, 880], [1050, 920], [1070, 900], [1030, 900], [1070, 900]])
    np.testing.assert_allclose(heading, [[0, -1], [0, 1], [1, 0], [-1, 0], [1, 0]])


# ----------------------------------------------------------------------------------------------- RoadGrid


def test_urban_grid_layout_and_intersections():
    grid = urban_grid()
    expected = (150.0, *(900.0 + 150.0 * i for i in range(9)), 2850.0)
    assert grid.x_roads_m == expected and grid.y_roads_m == expected
    assert grid.core_box_m == (900.0, 900.0, 2100.0, 2100.0)
    assert intersections_m(grid).shape == (121, 2)
    assert intersections_m(grid).dtype == np.float32
    assert intersections_m(CORRIDOR).shape == (0, 2)
    assert hash(grid) == hash(urban_grid()) and grid == urban_grid()


def test_road_grid_normalises_and_is_hashable():
    grid = RoadGrid(
        extent_m=[100, 50], x_roads_m=[60, 20], y_roads_m=[25], lane_offsets_m=[2], core_box_m=[0, 0, 50, 50]
    )
    assert grid.x_roads_m == (20.0, 60.0) and isinstance(grid.extent_m, tuple)
    hash(grid)
    np.testing.assert_allclose(
        np.asarray(distance_to_road_m(grid, jnp.array([[22.0, 40.0], [50.0, 30.0]]))), [2.0, 5.0]
    )
    np.testing.assert_allclose(
        np.asarray(distance_to_lane_m(grid, jnp.array([[22.0, 40.0], [50.0, 30.0]]))), [0.0, 3.0]
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(extent_m=(0.0, 10.0)), "extent_m"),
        (dict(x_roads_m=(), y_roads_m=()), "x_roads_m"),
        (dict(y_roads_m=(1.0,)), "y_roads_m"),  # lane at 1 - 2 < 0: outside the map
        (dict(x_roads_m=(20.0, 22.0)), "x_roads_m"),  # lanes of the two roads overlap
        (dict(lane_offsets_m=()), "lane_offsets_m"),
        (dict(lane_offsets_m=(-1.0,)), "lane_offsets_m"),
        (dict(core_box_m=(50.0, 0.0, 10.0, 50.0)), "core_box_m"),
        (dict(core_box_m=(30.0, 30.0, 40.0, 40.0)), "core_box_m"),  # no road in the core
        (dict(y_roads_m=(float("nan"),)), "y_roads_m"),
    ],
)
def test_road_grid_validation_names_the_field(kwargs, field):
    base = dict(
        extent_m=(100.0, 50.0), x_roads_m=(20.0,), y_roads_m=(10.0,), lane_offsets_m=(2.0,), core_box_m=(0, 0, 50, 50)
    )
    with pytest.raises(ValueError, match=f"RoadGrid.{field}"):
        RoadGrid(**{**base, **kwargs})


# ------------------------------------------------------------------------------------------ the generator


def test_generate_is_deterministic_per_key():
    a = GEN(jax.random.key(3), URBAN, MobilityParams(), NUM_VEHICLES, NUM_STEPS, SLOT_S)
    b = GEN(jax.random.key(3), URBAN, MobilityParams(), NUM_VEHICLES, NUM_STEPS, SLOT_S)
    c = GEN(jax.random.key(4), URBAN, MobilityParams(), NUM_VEHICLES, NUM_STEPS, SLOT_S)
    chex.assert_trees_all_equal(a, b)
    assert not np.allclose(np.asarray(a.positions_m), np.asarray(c.positions_m))


def test_shapes_and_dtypes():
    trace = GEN(jax.random.key(0), CORRIDOR, MobilityParams(), NUM_VEHICLES, NUM_STEPS, SLOT_S)
    chex.assert_shape(trace.positions_m, (NUM_STEPS, NUM_VEHICLES, 2))
    chex.assert_shape(trace.headings_rad, (NUM_STEPS, NUM_VEHICLES))
    chex.assert_type([trace.positions_m, trace.headings_rad], jnp.float32)
    chex.assert_tree_all_finite(trace)
    assert trace.valid is None and trace.num_steps == NUM_STEPS and trace.num_vehicles == NUM_VEHICLES
    assert bool(jnp.all(trace.valid_at(5)))


def test_jit_vmap_over_keys_and_params_traces_once():
    def sample(key, params):
        return generate_trajectories(key, CORRIDOR, params, num_vehicles=8, num_steps=30)

    def sample_batch(keys, params):
        return jax.vmap(sample, in_axes=(0, None))(keys, params)

    batched = jax.jit(chex.assert_max_traces(sample_batch, n=1))
    keys = jax.random.split(jax.random.key(0), 5)
    first = batched(keys, MobilityParams())
    second = batched(jax.random.split(jax.random.key(1), 5), MobilityParams(stop_prob=0.2, mean_speed_core_mps=9.0))
    chex.assert_shape(first.positions_m, (5, 30, 8, 2))
    chex.assert_shape(second.headings_rad, (5, 30, 8))
    single = jax.jit(sample)(keys[2], MobilityParams())
    np.testing.assert_allclose(np.asarray(first.positions_m[2]), np.asarray(single.positions_m), atol=1e-3)
    # vmap over a pytree of params (an ablation grid) in the same way.
    params_grid = jax.tree_util.tree_map(lambda v: jnp.full((5,), v), MobilityParams())
    ablation = jax.jit(jax.vmap(sample))(keys, params_grid)
    chex.assert_shape(ablation.positions_m, (5, 30, 8, 2))


def test_single_slot_and_argument_errors():
    trace = generate_trajectories(jax.random.key(0), CORRIDOR, MobilityParams(), num_vehicles=3, num_steps=1)
    chex.assert_shape(trace.positions_m, (1, 3, 2))
    with pytest.raises(ValueError, match="num_vehicles"):
        generate_trajectories(jax.random.key(0), CORRIDOR, MobilityParams(), num_vehicles=0, num_steps=5)
    with pytest.raises(ValueError, match="MobilityParams.stop_prob"):
        generate_trajectories(jax.random.key(0), CORRIDOR, MobilityParams(stop_prob=1.5), num_vehicles=2, num_steps=5)
    with pytest.raises(ValueError, match="MobilityParams.stop_min_slots"):
        generate_trajectories(
            jax.random.key(0), CORRIDOR, MobilityParams(stop_min_slots=4), num_vehicles=2, num_steps=5
        )


@pytest.mark.parametrize("grid", [CORRIDOR, URBAN], ids=["corridor", "urban"])
def test_quiet_positions_lie_on_lanes_inside_the_map(grid):
    positions_m, _ = generate(grid, QUIET, seed=1)
    assert float(np.max(np.asarray(distance_to_lane_m(grid, positions_m)))) < 1e-3
    to_road_m = np.asarray(distance_to_road_m(grid, positions_m))
    # Away from crossing roads the nearest centre line is the vehicle's own road: distance = a lane offset.
    offsets_m = np.asarray(grid.lane_offsets_m)
    away = np.ones(to_road_m.shape, bool)
    if grid.x_roads_m and grid.y_roads_m:
        near_x = np.min(np.abs(positions_m[..., 0:1] - np.asarray(grid.x_roads_m)), axis=-1) <= offsets_m.max()
        near_y = np.min(np.abs(positions_m[..., 1:2] - np.asarray(grid.y_roads_m)), axis=-1) <= offsets_m.max()
        away = ~(near_x & near_y)
    assert away.mean() > 0.8
    assert np.all(np.min(np.abs(to_road_m[away][:, None] - offsets_m), axis=-1) < 1e-3)
    width_m, height_m = grid.extent_m
    assert np.all((positions_m[..., 0] >= 0) & (positions_m[..., 0] <= width_m))
    assert np.all((positions_m[..., 1] >= 0) & (positions_m[..., 1] <= height_m))


@pytest.mark.parametrize("grid", [CORRIDOR, URBAN], ids=["corridor", "urban"])
@pytest.mark.parametrize("max_speed_mps", [20.0, 8.0])
def test_slot_displacement_is_bounded_by_max_speed(grid, max_speed_mps):
    params = QUIET.replace(max_speed_mps=max_speed_mps)
    positions_m, _ = generate(grid, params, seed=2)
    # A turn also moves the vehicle across the road between lanes: up to 2 * max lane offset.
    bound_m = max_speed_mps * SLOT_S + 2.0 * max(grid.lane_offsets_m) + 1e-2
    step_m = displacements_m(positions_m)
    assert step_m.max() <= bound_m
    assert step_m.max() >= 0.5 * max_speed_mps * SLOT_S  # the cap is actually reached, not trivially met


def test_corridor_directions_lanes_and_u_turns():
    positions_m, headings_rad = generate(CORRIDOR, QUIET, seed=5)
    velocity_x = np.diff(positions_m[..., 0], axis=0) / SLOT_S
    same_heading = np.abs(wrap_rad(np.diff(headings_rad, axis=0))) < 1e-6  # excludes slots with a U-turn
    y_now = np.round(positions_m[1:, :, 1], 3)
    assert np.all(np.isin(y_now[(velocity_x > 0) & same_heading], [45.0, 55.0]))
    assert np.all(np.isin(y_now[(velocity_x < 0) & same_heading], [67.0, 77.0]))
    u_turns = np.abs(np.abs(wrap_rad(np.diff(headings_rad, axis=0))) - np.pi) < 1e-6
    assert u_turns.any(axis=0).mean() > 0.5  # 200 slots * ~120 m: most vehicles reach an end
    # A U-turn moves the vehicle into the opposite lanes.
    before, after = positions_m[:-1, :, 1][u_turns], positions_m[1:, :, 1][u_turns]
    assert np.all((before < 61.0) != (after < 61.0))
    assert positions_m[..., 0].min() >= 0.0 and positions_m[..., 0].max() <= 2490.0


def test_corridor_constant_speed_matches_hand_computed_reflection():
    # No noise, no stops: the initial speed is the mean, 12 m/s, so every slot covers exactly 120 m.
    # Unfolded coordinate u(t) = x0 + d * 120 t; the road position is the triangle wave of period 2 L.
    params = QUIET.replace(speed_noise_std_mps=0.0, stop_prob=0.0)
    positions_m, headings_rad = generate(CORRIDOR, params, seed=6)
    length_m = 2490.0
    x0 = positions_m[0, :, 0].astype(np.float64)
    direction = np.where(np.abs(headings_rad[0]) < 1.0, 1.0, -1.0)
    t = np.arange(NUM_STEPS)[:, None]
    unfolded = np.mod(x0 + direction * 120.0 * t, 2.0 * length_m)
    expected_x = np.where(unfolded <= length_m, unfolded, 2.0 * length_m - unfolded)
    np.testing.assert_allclose(positions_m[..., 0], expected_x, atol=0.05)


@pytest.mark.parametrize("stop_prob, stop_min, stop_max", [(0.05, 1, 3), (0.2, 2, 2), (0.0, 1, 3)])
def test_stops_give_zero_displacement_slots_at_the_configured_rate(stop_prob, stop_min, stop_max):
    # Without speed noise the AR(1) speed never reaches 0 by itself, so zero-displacement slots are stops.
    # A stop can start in any slot not continuing one; with mean length m the stopped fraction is
    # f = p m / (1 + p (m - 1)).
    params = QUIET.replace(
        speed_noise_std_mps=0.0, stop_prob=stop_prob, stop_min_slots=stop_min, stop_max_slots=stop_max
    )
    positions_m, _ = generate(CORRIDOR, params, seed=7)
    zero = displacements_m(positions_m) < 1e-6
    mean_length = 0.5 * (stop_min + stop_max)
    expected = stop_prob * mean_length / (1.0 + stop_prob * (mean_length - 1.0))
    assert abs(zero.mean() - expected) < 0.25 * expected + 0.002
    if stop_min == stop_max == 2:  # every run of zero slots is a sequence of whole 2-slot stops
        for v in range(NUM_VEHICLES):
            edges = np.flatnonzero(np.diff(np.concatenate([[0], zero[:, v].astype(int), [0]])))
            starts, ends = edges[0::2], edges[1::2]
            complete = ends < len(zero)  # a run reaching the last slot may be cut off
            assert np.all((ends - starts)[complete] % 2 == 0)


@pytest.mark.parametrize("mean_speed_mps", [12.0, 8.0])
def test_ar1_mean_speed_on_the_corridor(mean_speed_mps):
    params = QUIET.replace(stop_prob=0.0, mean_speed_core_mps=mean_speed_mps)
    positions_m, headings_rad = generate(CORRIDOR, params, seed=8)
    same_heading = np.abs(wrap_rad(np.diff(headings_rad, axis=0))) < 1e-6  # drop U-turn slots
    speed_mps = displacements_m(positions_m)[same_heading] / SLOT_S
    assert abs(speed_mps.mean() - mean_speed_mps) < 0.5
    assert speed_mps.max() <= params.max_speed_mps + 1e-3


def test_urban_grid_turns_and_core_density():
    positions_m, headings_rad = generate(URBAN, QUIET, seed=9)
    change = wrap_rad(np.diff(headings_rad, axis=0))
    quarter_turns = np.round(change / (np.pi / 2))
    np.testing.assert_allclose(change, quarter_turns * np.pi / 2, atol=1e-5)  # only axis-aligned headings
    assert (quarter_turns == 1).sum() > 20 and (quarter_turns == -1).sum() > 20  # left and right turns
    xmin, ymin, xmax, ymax = URBAN.core_box_m
    in_core = (
        (positions_m[..., 0] >= xmin)
        & (positions_m[..., 0] <= xmax)
        & (positions_m[..., 1] >= ymin)
        & (positions_m[..., 1] <= ymax)
    )
    area_share = (xmax - xmin) * (ymax - ymin) / (URBAN.extent_m[0] * URBAN.extent_m[1])
    assert in_core.mean() > 1.5 * area_share


def test_urban_without_turn_probability_vehicles_keep_their_road():
    positions_m, headings_rad = generate(URBAN, QUIET.replace(turn_prob=0.0), seed=10)
    change = np.abs(wrap_rad(np.diff(headings_rad, axis=0)))
    assert np.all((change < 1e-6) | (np.abs(change - np.pi) < 1e-6))  # straight on or U-turn only
    vertical = np.abs(np.cos(headings_rad[0])) < 0.5
    across = np.where(vertical, positions_m[..., 0], positions_m[..., 1])  # the coordinate across the road
    assert np.all(np.abs(across - across[0]).max(axis=0) <= 2.0 * 3.0 + 1e-3)


# --------------------------------------------------------------------------------------------------- Trace


def test_trace_create_errors_name_the_field():
    with pytest.raises(ValueError, match=r"Trace.positions_m must have shape \[T, V, 2\], got \(5, 3\)"):
        Trace.create(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="Trace.positions_m must be finite"):
        Trace.create(np.array([[[0.0, np.nan]]]))
    with pytest.raises(ValueError, match="Trace.headings_rad"):
        Trace.create(np.zeros((5, 3, 2)), headings_rad=np.zeros((5,)))
    with pytest.raises(ValueError, match="Trace.valid"):
        Trace.create(np.zeros((5, 3, 2)), valid=np.ones((5, 4), bool))
    with pytest.raises(ValueError, match="Trace.valid must have dtype bool"):
        Trace.create(np.zeros((5, 3, 2)), valid=np.ones((5, 3)))


def test_trace_accessors():
    positions_m = np.array([[[0.0, 0.0], [5.0, 5.0]], [[10.0, 0.0], [5.0, 3.0]], [[30.0, 10.0], [5.0, 3.0]]])
    valid = np.array([[True, False], [True, True], [False, True]])
    trace = Trace.create(positions_m, valid=valid)
    assert trace.positions_m.dtype == jnp.float32 and trace.num_steps == 3 and trace.num_vehicles == 2
    np.testing.assert_allclose(np.asarray(trace.velocity_at(0, 10.0)), 0.0)
    np.testing.assert_allclose(np.asarray(trace.velocity_at(2, 10.0)), [[2.0, 1.0], [0.0, 0.0]])
    # t traced inside jit
    at = jax.jit(lambda tr, t: (tr.position_at(t), tr.velocity_at(t, 2.0), tr.valid_at(t)))
    position, velocity, present = at(trace, jnp.int32(1))
    np.testing.assert_allclose(np.asarray(position), [[10.0, 0.0], [5.0, 3.0]])
    np.testing.assert_allclose(np.asarray(velocity), [[5.0, 0.0], [0.0, -1.0]])
    np.testing.assert_array_equal(np.asarray(present), [True, True])
    np.testing.assert_array_equal(np.asarray(Trace.create(positions_m).valid_at(0)), [True, True])


# ----------------------------------------------------------------------------------------------- CSV files


@pytest.mark.parametrize("origin_lonlat", [None, ORIGIN_LONLAT], ids=["xy", "lonlat"])
def test_csv_round_trip(tmp_path, origin_lonlat):
    trace = GEN(jax.random.key(11), CORRIDOR, MobilityParams(), NUM_VEHICLES, NUM_STEPS, SLOT_S)
    valid = np.ones((NUM_STEPS, NUM_VEHICLES), bool)
    valid[:7, 3] = False  # vehicle 3 enters late,
    valid[-5:, 4] = False  # vehicle 4 leaves early
    trace = trace.replace(valid=jnp.asarray(valid))
    path = tmp_path / "trace.csv"
    write_trace_csv(path, trace, SLOT_S, origin_lonlat=origin_lonlat)
    header = path.read_text().splitlines()[0]
    assert header == (
        "vehicle_id,timestamp,x_m,y_m" if origin_lonlat is None else "vehicle_id,timestamp,longitude,latitude"
    )
    assert not [p for p in tmp_path.iterdir() if p.name != "trace.csv"]  # no temp file left behind
    loaded = load_trace_csv(path, SLOT_S, origin_lonlat=origin_lonlat)
    assert loaded.num_steps == NUM_STEPS and loaded.num_vehicles == NUM_VEHICLES
    np.testing.assert_array_equal(np.asarray(loaded.valid), valid)
    np.testing.assert_allclose(np.asarray(loaded.positions_m)[valid], np.asarray(trace.positions_m)[valid], atol=1e-3)
    # Outside its span a vehicle holds its nearest observed position.
    np.testing.assert_allclose(
        np.asarray(loaded.positions_m)[:7, 3], np.asarray(trace.positions_m)[7, 3][None].repeat(7, 0), atol=1e-3
    )


def write_text(tmp_path, text, name="in.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_resamples_filters_and_selects_longest_presence(tmp_path):
    path = write_text(
        tmp_path,
        "vehicle_id,timestamp,x_m,y_m,speed\n"
        "a,2024-01-01 00:00:00,0,0,1\n"
        "a,2024-01-01 00:00:20,100,0,1\n"
        "a,2024-01-01 00:00:40,100,50,1\n"
        "b,2024-01-01 00:00:10,500,500,1\n"  # outside the box
        "b,2024-01-01 00:00:20,10,10,1\n"
        "c,2024-01-01 00:00:10,20,20,1\n"
        "c,2024-01-01 00:00:30,40,20,1\n",
    )
    trace = load_trace_csv(path, slot_s=10.0, box_m=(0.0, 0.0, 200.0, 200.0), num_vehicles=2)
    # In-box presence: a 40 s, b 0 s (one row left), c 20 s -> keep a and c, in file order.
    assert trace.num_vehicles == 2 and trace.num_steps == 5
    np.testing.assert_allclose(
        np.asarray(trace.positions_m[:, 0]), [[0, 0], [50, 0], [100, 0], [100, 25], [100, 50]], atol=1e-4
    )
    np.testing.assert_allclose(
        np.asarray(trace.positions_m[:, 1]), [[20, 20], [20, 20], [30, 20], [40, 20], [40, 20]], atol=1e-4
    )
    np.testing.assert_array_equal(np.asarray(trace.valid[:, 1]), [False, True, True, True, False])
    np.testing.assert_allclose(np.asarray(trace.headings_rad[:, 0]), [0, 0, 0, np.pi / 2, np.pi / 2], atol=1e-6)
    longer = load_trace_csv(path, slot_s=10.0, num_steps=8)
    assert longer.num_steps == 8 and not bool(jnp.any(longer.valid[5:]))


def test_load_lonlat_projection(tmp_path):
    lon0, lat0 = ORIGIN_LONLAT
    metres_per_degree_lon = 111_320.0 * math.cos(math.radians(lat0))
    path = write_text(
        tmp_path,
        "timestamp,latitude,longitude,vehicle_id\n"
        f"0,{lat0},{lon0},7\n"
        f"10,{lat0 + 100.0 / 110_750.0},{lon0 + 200.0 / metres_per_degree_lon},7\n",
    )
    trace = load_trace_csv(path, slot_s=10.0, origin_lonlat=ORIGIN_LONLAT)
    np.testing.assert_allclose(np.asarray(trace.positions_m[:, 0]), [[0.0, 0.0], [200.0, 100.0]], atol=1e-3)


MALFORMED = {
    "missing column": (
        "vehicle_id,timestamp,x_m\n1,0,5\n",
        {},
        r"line 1.*missing required column.*'y_m'.*columns found: \['vehicle_id', 'timestamp', 'x_m'\]",
    ),
    "lonlat without origin": ("vehicle_id,timestamp,longitude,latitude\n1,0,114,22\n", {}, "pass origin_lonlat"),
    "non-numeric": (
        "vehicle_id,timestamp,x_m,y_m\n1,0,5,6\n1,10,abc,6\n",
        {},
        "line 3, column 'x_m': non-numeric value 'abc'",
    ),
    "bad timestamp": (
        "vehicle_id,timestamp,x_m,y_m\n1,yesterday,5,6\n",
        {},
        "line 2, column 'timestamp': unparseable timestamp 'yesterday'",
    ),
    "non-finite": (
        "vehicle_id,timestamp,x_m,y_m\n1,0,5,6\n1,10,5,inf\n",
        {},
        "line 3, column 'y_m': non-finite coordinate",
    ),
    "nan": ("vehicle_id,timestamp,x_m,y_m\n1,0,nan,6\n", {}, "line 2, column 'x_m': non-finite coordinate"),
    "short row": ("vehicle_id,timestamp,x_m,y_m\n1,0,5\n", {}, "line 2: expected 4 fields"),
    "empty box": (
        "vehicle_id,timestamp,x_m,y_m\n1,0,5,6\n",
        {"box_m": (100, 100, 200, 200)},
        "no rows left after filtering",
    ),
    "too many vehicles": (
        "vehicle_id,timestamp,x_m,y_m\n1,0,5,6\n2,0,5,6\n",
        {"num_vehicles": 3},
        "num_vehicles=3 requested but 2 vehicle",
    ),
    "duplicate timestamp": (
        "vehicle_id,timestamp,x_m,y_m\n1,0,5,6\n2,0,5,6\n1,10,5,6\n1,0,7,7\n",
        {},
        "lines 2 and 5, column 'timestamp': vehicle '1' has duplicate timestamp",
    ),
    "empty file": ("", {}, "empty file"),
    "header only": ("vehicle_id,timestamp,x_m,y_m\n", {}, "no data rows"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_load_malformed_files_raise_clear_errors(tmp_path, case):
    text, kwargs, message = MALFORMED[case]
    path = write_text(tmp_path, text)
    with pytest.raises(ValueError, match=message) as error:
        load_trace_csv(path, slot_s=10.0, **kwargs)
    assert "in.csv" in str(error.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.csv: trace file not found"):
        load_trace_csv(tmp_path / "nope.csv", slot_s=10.0)


def test_load_trace_csv_limits_span_rejects_bad_coordinates_and_accepts_bom(tmp_path):
    # issue 16: one wrong year no longer builds a multi-gigabyte trace silently
    rows = "vehicle_id,timestamp,x_m,y_m\na,2020-01-01 00:00:00,0,0\na,2020-01-01 00:01:00,10,0\nb,2021-01-01 00:00:00,5,5\n"
    path = write_text(tmp_path, rows)
    with pytest.raises(ValueError, match=r"in\.csv, lines 2 and 4, column 'timestamp'.*max_span_s"):
        load_trace_csv(path, 30.0)
    assert load_trace_csv(path, 86_400.0, max_span_s=None).positions_m.shape[0] == 367
    # impossible longitude / latitude, with the file and line
    lonlat = "vehicle_id,timestamp,longitude,latitude\na,0,116.4,39.9\na,30,500.0,95.0\n"
    with pytest.raises(ValueError, match=r"in\.csv, line 3: longitude 500.0 / latitude 95.0 out of range"):
        load_trace_csv(write_text(tmp_path, lonlat), 30.0, origin_lonlat=(116.4, 39.9))
    # a UTF-8 byte-order mark (as spreadsheet exports write) is skipped
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfvehicle_id,timestamp,x_m,y_m\na,0,0,0\na,30,10,0\n")
    assert load_trace_csv(bom, 30.0).positions_m.shape == (2, 1, 2)


def test_load_tdrive_accepts_a_byte_order_mark(tmp_path):
    from vmjax.mobility.tdrive import load_tdrive

    path = tmp_path / "1.txt"
    path.write_bytes(
        b"\xef\xbb\xbf1,2008-02-02 15:36:08,116.51172,39.92123\n1,2008-02-02 15:46:08,116.51135,39.93883\n"
    )
    assert len(load_tdrive(path)) == 2
