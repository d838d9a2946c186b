"""SUMO traces and networks (issue 23): the FCD and net readers against the committed samples in tests/data (no
SUMO needed), hand-computed resampling, track packing, RSU placement, bank files fitted to an env, the bad-input
errors, and one end-to-end run of the real SUMO binaries (skipped when the `sumo` extra is not installed)."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import vmjax
from vmjax import cli, render
from vmjax.mobility import (
    bank_roads_m,
    draw_bank_window,
    fcd_to_trace,
    geo_origin_lonlat,
    junction_visits,
    load_trace_bank,
    net_road_segments,
    pack_tracks,
    place_rsus,
    read_fcd,
    read_net,
    read_trace_bank,
    save_trace_bank,
    shortest_path,
    shortest_path_lengths,
    sumo_build,
)
from vmjax.mobility.sumo import sumo_angle_to_heading_rad

DATA = Path(__file__).parent / "data"
FCD = DATA / "sumo_sample.fcd.xml"
NET = DATA / "sumo_sample.net.xml"
HAS_SUMO = importlib.util.find_spec("sumo") is not None and importlib.util.find_spec("sumolib") is not None


# ---------------------------------------------------------------------------------------------- FCD reader
def test_fcd_sample_is_read_per_vehicle():
    fcd = read_fcd(FCD)
    assert fcd.vehicle_ids == ("a", "c", "b")  # order of first appearance; the person p0 is skipped
    assert fcd.num_timesteps == 7 and (fcd.begin_s, fcd.end_s) == (0.0, 6.0)
    np.testing.assert_array_equal(fcd.time_s[2], [2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(fcd.xy_m[2][:, 1], [0.0, 4.0, 12.0, 20.0])
    np.testing.assert_array_equal(fcd.speed_mps[0], [10, 20, 30, 40, 50, 60, 70])
    only = read_fcd(FCD, vehicle_ids=["b"], begin_s=3.0)
    assert only.vehicle_ids == ("b",) and only.time_s[0].tolist() == [3.0, 4.0, 5.0]


def test_resampling_at_slot_boundaries_by_hand():
    """Slots of 1.5 s from t = 0: t_k = 0, 1.5, 3, 4.5, 6. Vehicle a (x = 0, 10, 30, 60, 100, 150, 210 at t = 0..6):
    x(1.5) = (10 + 30) / 2 = 20, x(4.5) = (100 + 150) / 2 = 125; speed(1.5) = (20 + 30) / 2 = 25. Vehicle b enters
    at t = 2 and leaves after t = 5: present in slots 2 (t = 3, y = 4) and 3 (t = 4.5, y = (12 + 20) / 2 = 16),
    holding its first sample before and its last after. Vehicle c leaves after t = 1: present in slot 0 only."""
    trace = fcd_to_trace(read_fcd(FCD), slot_s=1.5)
    positions, valid = np.asarray(trace.positions_m), np.asarray(trace.valid)
    assert positions.shape == (5, 3, 2)
    np.testing.assert_allclose(positions[:, 0, 0], [0.0, 20.0, 60.0, 125.0, 210.0])
    np.testing.assert_allclose(positions[:, 0, 1], 5.0)
    np.testing.assert_allclose(positions[:, 2, 1], [0.0, 0.0, 4.0, 16.0, 20.0])
    np.testing.assert_allclose(positions[:, 1, 0], [200.0, 190.0, 190.0, 190.0, 190.0])
    np.testing.assert_array_equal(valid[:, 0], True)
    np.testing.assert_array_equal(valid[:, 1], [True, False, False, False, False])
    np.testing.assert_array_equal(valid[:, 2], [False, False, True, True, False])  # entry slot 2, exit slot 3
    np.testing.assert_allclose(np.asarray(trace.speeds_mps)[:, 0], [10.0, 25.0, 40.0, 55.0, 70.0])
    np.testing.assert_allclose(np.asarray(trace.speeds_mps)[3, 2], 8.0)
    headings = np.asarray(trace.headings_rad)
    np.testing.assert_allclose(headings[:, 0], 0.0, atol=1e-6)  # SUMO angle 90 (east)
    np.testing.assert_allclose(headings[:, 2], np.pi / 2, atol=1e-6)  # SUMO angle 0 (north)
    np.testing.assert_allclose(np.abs(headings[0, 1]), np.pi, atol=1e-6)  # SUMO angle 270 (west)
    np.testing.assert_allclose(sumo_angle_to_heading_rad([45.0, 180.0]), [np.pi / 4, -np.pi / 2])
    window = fcd_to_trace(read_fcd(FCD), slot_s=2.0, start_s=1.0, num_steps=3)  # t = 1, 3, 5
    np.testing.assert_allclose(np.asarray(window.positions_m)[:, 0, 0], [10.0, 60.0, 150.0])


def test_pack_tracks_reuses_a_track_after_its_vehicle_left():
    """a occupies track 0 throughout; c (slot 0) and then b (slots 2-3) share track 1, which holds c's last
    position (190, 50) in the gap and b's last one after it, not valid there."""
    tracks, vehicle_of_track = pack_tracks(fcd_to_trace(read_fcd(FCD), slot_s=1.5))
    np.testing.assert_array_equal(vehicle_of_track.T, [[0, 0, 0, 0, 0], [1, -1, 2, 2, -1]])
    np.testing.assert_array_equal(np.asarray(tracks.valid)[:, 1], [True, False, True, True, False])
    np.testing.assert_allclose(
        np.asarray(tracks.positions_m)[:, 1], [[200, 50], [190, 50], [100, 4], [100, 16], [100, 20]]
    )
    busiest, which = pack_tracks(fcd_to_trace(read_fcd(FCD), slot_s=1.5), num_tracks=1)
    assert busiest.positions_m.shape == (5, 1, 2) and which[:, 0].tolist() == [0] * 5


# ---------------------------------------------------------------------------------------------- net reader
def test_net_sample_is_a_directed_road_graph():
    net = read_net(NET)
    assert net.junction_ids == ("A", "B", "C")  # the internal junction is skipped
    assert net.edge_ids == ("AB", "BA", "BC")  # the internal edge is skipped
    assert net.graph.directed
    np.testing.assert_allclose(np.asarray(net.graph.edge_length_m), [100.0, 100.0, 200.0])  # mean of 199 and 201
    np.testing.assert_allclose(net.edge_speed_mps, [13.89, 13.89, 20.0])  # the fastest lane
    assert net.edge_lanes.tolist() == [1, 1, 2] and net.extent_m == (100.0, 200.0)
    np.testing.assert_allclose(np.asarray(shortest_path_lengths(net.graph, 0)), [0.0, 100.0, 300.0])
    assert np.isinf(np.asarray(shortest_path_lengths(net.graph, 2))[:2]).all()  # C is a one-way dead end
    nodes, count = shortest_path(net.graph, 0, 2)
    assert np.asarray(nodes)[: int(count)].tolist() == [0, 1, 2]
    # the viewer's roads: A-B once (two directed edges), B-C
    np.testing.assert_array_equal(net_road_segments(net), [[[0, 0], [100, 0]], [[100, 0], [100, 200]]])


def test_rsus_on_the_busiest_junctions_or_spread_out():
    net = read_net(NET)
    visits = junction_visits(net, fcd_to_trace(read_fcd(FCD), slot_s=1.0), radius_m=50.0)
    assert visits.tolist() == [3, 6, 0]  # a at x = 0, 10, 30 near A; a at x = 60, 100 and b (t = 2..5) near B
    assert place_rsus(net.junction_xy_m, 2, visits=visits).tolist() == [1, 0]
    assert place_rsus(net.junction_xy_m, 2).tolist() == [1, 2]  # centre-most, then the farthest from it
    assert place_rsus(net.junction_xy_m, 2, visits=visits, min_spacing_m=150.0).tolist() == [1, 2]  # A too near
    with pytest.raises(ValueError, match="only 1 of 3 junctions are >= min_spacing_m=500.0"):
        place_rsus(net.junction_xy_m, 2, min_spacing_m=500.0)


# ---------------------------------------------------------------------------------------------- bank files
def _sample_bank(tmp_path) -> Path:
    tracks, vehicle_of_track = pack_tracks(fcd_to_trace(read_fcd(FCD), slot_s=1.0))
    path = tmp_path / "bank.npz"
    save_trace_bank(
        path, tracks, 1.0, box_m=(0.0, 0.0, 200.0, 200.0), start_s=3600.0, vehicle_of_track=vehicle_of_track
    )
    return path


def test_bank_file_round_trip_resampling_and_centring(tmp_path):
    path = _sample_bank(tmp_path)
    bank = read_trace_bank(path)
    assert bank.slot_s == 1.0 and bank.start_s == 3600.0 and bank.box_m == (0.0, 0.0, 200.0, 200.0)
    fitted = load_trace_bank(path, slot_s=2.0, map_extent_m=(1000.0, 400.0))  # t = 0, 2, 4, 6; shift (400, 100)
    positions = np.asarray(fitted.positions_m)
    np.testing.assert_allclose(positions[:, 0], [[400, 105], [430, 105], [500, 105], [610, 105]])
    assert positions.shape == (4, 2, 2)
    slot_1_5 = load_trace_bank(path, slot_s=1.5)  # no map: used in place; t = 0, 1.5, 3, 4.5, 6
    np.testing.assert_allclose(np.asarray(slot_1_5.positions_m)[:, 0, 0], [0.0, 20.0, 60.0, 125.0, 210.0])
    # track 1 carries c (t = 0, 1) then b (t = 2 .. 5): t = 1.5 lies between two vehicles, so it is not valid
    np.testing.assert_array_equal(np.asarray(slot_1_5.valid)[:, 1], [True, False, True, True, False])
    window = draw_bank_window(jax.random.key(0), fitted, num_vehicles=2, num_steps=3)
    assert window.positions_m.shape == (3, 2, 2) and window.valid.shape == (3, 2)


def test_bank_roads_are_centred_like_the_traces_and_drawn_by_the_viewer(tmp_path):
    """A bank's road segments move with its traces onto the env's map, and `render.scene_of` draws them instead of
    the scenario's own roads; a bank without roads keeps them; malformed roads name the file."""
    rng = np.random.default_rng(1)
    positions = 400.0 + np.cumsum(rng.normal(0.0, 5.0, (601, 3, 2)), axis=0)  # 10 min at 1 s
    roads = np.asarray([[[0.0, 0.0], [800.0, 0.0]], [[400.0, 0.0], [400.0, 800.0]]], np.float32)
    path, bare = tmp_path / "roads.npz", tmp_path / "bare.npz"
    trace = vmjax.mobility.Trace.create(positions)
    save_trace_bank(path, trace, 1.0, box_m=(0.0, 0.0, 800.0, 800.0), roads_m=roads)
    save_trace_bank(bare, trace, 1.0, box_m=(0.0, 0.0, 800.0, 800.0))
    np.testing.assert_array_equal(read_trace_bank(path).roads_m, roads)
    np.testing.assert_allclose(bank_roads_m(path, (2000.0, 1000.0)), roads + np.asarray([600.0, 100.0]))
    assert read_trace_bank(bare).roads_m is None and bank_roads_m(bare, (2000.0, 1000.0)) is None
    with pytest.raises(ValueError, match="trace bank not found"):
        bank_roads_m(tmp_path / "missing.npz", (2000.0, 1000.0))
    scenes = {}
    for name, bank in (("roads", path), ("bare", bare)):
        env = vmjax.make("CrossRealityPrivacy-v0", trace_bank=str(bank), num_vehicles=3, max_steps=4, slot_s=60.0)
        params = env.default_params
        _, state = env.reset(jax.random.key(0), params)
        scenes[name] = render.scene_of(env, state, params)
    width, height = env.config.map_extent_m
    np.testing.assert_allclose(scenes["roads"].roads_m, roads + (np.asarray([width, height]) - 800.0) / 2)
    assert scenes["bare"].roads_m is None or len(scenes["bare"].roads_m) != 2  # the scenario's own (none or a grid)
    np.savez(tmp_path / "bad.npz", positions_m=positions.astype(np.float32), roads_m=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"bad.npz: roads_m must be finite segments of shape \[K, 2, 2\]"):
        read_trace_bank(tmp_path / "bad.npz")


def test_every_scenario_takes_the_bank_through_env_trace_bank(tmp_path):
    """vmjax.make(id, trace_bank=path) for all four scenarios: the bank in default_params, fitted to the env's slot
    and map, replayed by reset; too short a bank names the field and the fix."""
    rng = np.random.default_rng(0)
    positions = 400.0 + np.cumsum(rng.normal(0.0, 5.0, (7201, 6, 2)), axis=0)  # 2 h at 1 s
    path = tmp_path / "bank.npz"
    trace = vmjax.mobility.Trace.create(positions)
    save_trace_bank(path, trace, 1.0, box_m=(0.0, 0.0, 800.0, 800.0))
    sizes = {
        "AvatarPremigration-v0": dict(num_vehicles=3, max_steps=4),
        "TwinRouting-v0": dict(num_vehicles=3, max_steps=4, num_rsus=8, num_uavs=2),
        "TwinSplit-v0": dict(num_vehicles=3, max_steps=4),
        "CrossRealityPrivacy-v0": dict(num_vehicles=3, max_steps=4),
    }
    for env_id, config in sizes.items():
        env = vmjax.make(env_id, trace_bank=str(path), **config)
        bank = env.default_params.trace_bank
        assert bank is not None and bank.positions_m.shape[1] == 6, env_id
        params = env.default_params
        extent = np.asarray(params.map_extent_m if hasattr(params, "map_extent_m") else env.config.map_extent_m)
        np.testing.assert_allclose(np.asarray(bank.positions_m)[0, 0], positions[0, 0] - 400.0 + extent / 2, atol=1e-3)
        if env_id in ("AvatarPremigration-v0", "TwinRouting-v0"):  # the two resets new to banks (jit: faster here)
            _, state = jax.jit(env.reset)(jax.random.key(0), env.default_params)
            xy = np.asarray(state.trace.positions_m)
            assert xy.shape[1] == 3 and np.all(np.abs(xy - extent / 2) < 1000.0), env_id
    with pytest.raises(ValueError, match=r"CrossRealityPrivacyConfig.trace_bank: .* needs >= 201.*--hours"):
        vmjax.make("CrossRealityPrivacy-v0", trace_bank=str(path), max_steps=200)  # 2 h at 60 s = 121 slots
    with pytest.raises(ValueError, match=r"TwinSplitConfig.trace_bank: .* 6 tracks, the env needs >= 10"):
        vmjax.make("TwinSplit-v0", trace_bank=str(path))
    with pytest.raises(ValueError, match="trace bank not found"):
        vmjax.make("TwinSplit-v0", trace_bank=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="TwinSplitConfig.trace_bank must be a string"):
        vmjax.make("TwinSplit-v0", trace_bank=3)


# ---------------------------------------------------------------------------------------------- bad input
def _write(tmp_path, name, text, compress=False) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


def test_truncated_and_malformed_fcd_name_file_and_line(tmp_path):
    text = FCD.read_text()
    truncated = _write(tmp_path, "cut.fcd.xml", text[: text.index('<timestep time="3.00">') + 40])
    with pytest.raises(ValueError, match=r"cut.fcd.xml, line 20, column \d+: malformed FCD XML .*truncated file"):
        read_fcd(truncated)
    broken = _write(
        tmp_path, "broken.fcd.xml", text.replace('<vehicle id="b" x="100.00" y="4.00"', '<vehicle id="b" x=100')
    )
    with pytest.raises(ValueError, match=r"broken.fcd.xml, line 21, column \d+: malformed FCD XML"):
        read_fcd(broken)
    gz = _write(tmp_path, "cut.fcd.xml.gz", text, compress=True)
    gz.write_bytes(gz.read_bytes()[:-30])
    with pytest.raises(ValueError, match="cut.fcd.xml.gz: truncated or corrupt FCD file"):
        read_fcd(gz)
    bad_number = _write(tmp_path, "nan.fcd.xml", text.replace('x="60.00"', 'x="sixty"'))
    with pytest.raises(
        ValueError, match=r"nan.fcd.xml, line 20: <vehicle id='a'> needs a finite number in attribute 'x'"
    ):
        read_fcd(bad_number)
    with pytest.raises(ValueError, match="not an FCD file"):
        read_fcd(NET)
    twice = _write(tmp_path, "twice.fcd.xml", text.replace('<vehicle id="c" x="190.00"', '<vehicle id="a" x="190.00"'))
    with pytest.raises(
        ValueError, match=r"twice.fcd.xml, line 13: vehicle 'a' appears twice in the timestep at time=1.0"
    ):
        read_fcd(twice)


def test_non_monotone_times_and_unknown_vehicles(tmp_path):
    text = FCD.read_text().replace('<timestep time="4.00">', '<timestep time="2.50">')
    with pytest.raises(
        ValueError, match=r"line 23: timestep times must increase, got time=2.5 after time=3.0 \(line 19\)"
    ):
        read_fcd(_write(tmp_path, "back.fcd.xml", text))
    with pytest.raises(ValueError, match=r"sumo_sample.fcd.xml: unknown vehicle id\(s\) \['nope', 'zz'\]"):
        read_fcd(FCD, vehicle_ids=["a", "zz", "nope"])
    with pytest.raises(ValueError, match="not longitude/latitude"):
        read_fcd(FCD, origin_lonlat=(116.4, 39.9))  # x = 200 is no longitude: not an --fcd-output.geo file


def test_malformed_net_and_missing_geo_reference(tmp_path):
    text = NET.read_text()
    with pytest.raises(ValueError, match=r"cut.net.xml, line \d+, column \d+: malformed SUMO net XML .*truncated"):
        read_net(_write(tmp_path, "cut.net.xml", text[: text.index('<edge id="BC"')]))
    unknown = _write(tmp_path, "unknown.net.xml", text.replace('from="B" to="C"', 'from="B" to="Z"'))
    with pytest.raises(ValueError, match=r"unknown.net.xml, line 17: edge 'BC' refers to unknown junction 'Z'"):
        read_net(unknown)
    no_length = _write(tmp_path, "len.net.xml", text.replace('length="199.00"', ""))
    with pytest.raises(
        ValueError, match=r"len.net.xml, line 18: <lane id='BC_0'> needs a finite number in attribute 'length'"
    ):
        read_net(no_length)
    with pytest.raises(ValueError, match=r"has no geo reference \(<location projParameter='!'>\)"):
        geo_origin_lonlat(read_net(NET))
    geo = read_net(
        _write(
            tmp_path,
            "geo.net.xml",
            text.replace(
                'origBoundary="0.00,0.00,100.00,200.00" projParameter="!"',
                'origBoundary="116.30,39.90,116.31,39.92" projParameter="+proj=utm +zone=50 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"',
            ),
        )
    )
    assert geo.has_geo_reference and geo_origin_lonlat(geo) == (116.30, 39.90)


def test_missing_sumo_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sumo", None)  # `import sumo` raises ImportError
    with pytest.raises(RuntimeError, match=r"SUMO is not installed: pip install 'vmjax\[sumo\]'"):
        sumo_build.sumo_home()
    with pytest.raises(SystemExit):
        cli.main(["traces", "sumo", "--vehicles", "3", "--out", "never.npz"])
    assert "pip install 'vmjax[sumo]'" in capsys.readouterr().err


def test_traces_sumo_flags_are_checked(capsys):
    with pytest.raises(SystemExit):
        cli.main(["traces", "sumo", "--hours", "0.3", "--out", "x.npz"])
    assert "hours must be a multiple of 0.25 h" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["traces", "sumo", "--net", "ring", "--out", "x.npz"])
    assert "invalid choice: 'ring'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- real SUMO
@pytest.mark.skipif(not HAS_SUMO, reason="needs the sumo extra: pip install 'vmjax[sumo]'")
def test_real_sumo_builds_a_bank_the_envs_replay(tmp_path):
    """netgenerate + randomTrips + sumo on a 3 x 3 grid for 15 minutes, through `vmjax traces sumo`; the bank,
    FCD, net and summary are written, the FCD and net read back, and TwinSplit-v0 replays the bank."""
    out = tmp_path / "tiny.npz"
    argv = ["traces", "sumo", "--grid-number", "3", "--grid-length-m", "150", "--vehicles", "4", "--hours", "0.25"]
    cli.main([*argv, "--slot-s", "5", "--seed", "1", "--out", str(out)])
    for suffix in (".npz", ".net.xml", ".fcd.xml.gz", ".trips.xml", ".json"):
        assert (tmp_path / f"tiny{suffix}").is_file(), suffix
    bank = read_trace_bank(out)
    assert bank.trace.positions_m.shape == (181, 4, 2) and bank.slot_s == 5.0 and bank.start_s == 8 * 3600.0
    assert bank.metadata["sumo_vehicles"] >= 4 and bank.metadata["config"]["seed"] == 1
    assert 0.3 < np.asarray(bank.trace.valid).mean() <= 1.0
    net = read_net(tmp_path / "tiny.net.xml")
    assert len(net.junction_ids) == 9 and net.graph.directed and not net.has_geo_reference
    fcd = read_fcd(tmp_path / "tiny.fcd.xml.gz")
    assert fcd.begin_s == 8 * 3600.0 and len(fcd.vehicle_ids) == bank.metadata["sumo_vehicles"]
    xy = np.concatenate(fcd.xy_m)
    assert np.all((xy > -10.0) & (xy < 310.0))  # on the 300 m x 300 m grid
    env = vmjax.make("TwinSplit-v0", trace_bank=str(out), num_vehicles=4, max_steps=20)
    bank_xy = np.asarray(env.default_params.trace_bank.positions_m)  # 30-s slots, the 300 m net at the map centre
    assert bank_xy.shape == (31, 4, 2) and np.all(np.abs(bank_xy - 2500.0) < 200.0)
    with pytest.raises(SystemExit):
        cli.main([*argv, "--lonlat", "true", "--out", str(tmp_path / "geo.npz")])
    assert bank.roads_m.shape == (12, 2, 2)  # the 3 x 3 grid's 12 two-way streets, for the viewer


@pytest.mark.skipif(not HAS_SUMO, reason="needs the sumo extra: pip install 'vmjax[sumo]'")
def test_real_sumo_builds_a_bank_from_an_osm_file(tmp_path):
    """`vmjax traces sumo --net-file map.osm`: netconvert turns the committed hand-written OSM grid (3 x 3 streets
    ~200 m apart, its corners geometry points) into a geo-referenced net of 5 junctions; the traces in x/y carry the
    net's roads, the lon/lat bank (`--lonlat true`) none (the junctions are in SUMO's x/y)."""
    argv = ["traces", "sumo", "--net-file", str(DATA / "sumo_tiny_grid.osm"), "--vehicles", "3", "--hours", "0.25"]
    cli.main([*argv, "--slot-s", "5", "--seed", "2", "--out", str(tmp_path / "osm.npz")])
    net = read_net(tmp_path / "osm.net.xml")
    assert net.has_geo_reference and len(net.junction_ids) == 5
    assert all(395.0 < side < 415.0 for side in net.extent_m)  # 0.0042 deg of latitude, 0.0042 deg of longitude
    bank = read_trace_bank(tmp_path / "osm.npz")
    assert bank.trace.positions_m.shape == (181, 3, 2) and bank.roads_m.shape == (8, 2, 2)
    cli.main([*argv, "--slot-s", "5", "--seed", "2", "--lonlat", "true", "--out", str(tmp_path / "geo.npz")])
    geo = read_trace_bank(tmp_path / "geo.npz")
    assert geo.roads_m is None and all(390.0 < v < 410.0 for v in geo.box_m[2:])
