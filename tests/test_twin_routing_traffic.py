"""experiments/twin_routing_traffic.py and its shipped output (issue 19): the SUMO per-RSU counts load as
TwinRouting traffic with rush hours; counting, 5-min means and FCD parsing on hand-made inputs. SUMO itself is
not needed (the shipped CSV stands in for a run)."""

import gzip
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import twin_routing_traffic as trt
from vmjax import predict, runner
from vmjax.envs.twin_routing import TwinRoutingConfig
from vmjax.scenarios.twin_routing import load_traffic_series

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "data" / "traffic" / "twin_routing_sumo.csv"
DAYS, ROWS_PER_DAY = 3, 288


@pytest.fixture(scope="module")
def shipped():
    series, times, ids = predict.load_traffic_csv(CSV, return_labels=True)
    return series, times, ids


def test_shipped_csv_loads_as_twin_routing_traffic(shipped):
    series, times, ids = shipped
    config = TwinRoutingConfig()  # the layout the counts were made for
    assert (config.num_rsus, config.city_size_m, config.layout_seed) == (trt.NUM_RSUS, trt.CITY_SIZE_M, 0)
    assert series.shape == (DAYS * ROWS_PER_DAY, config.num_rsus)
    assert ids == [f"rsu_{i}" for i in range(config.num_rsus)]
    np.testing.assert_array_equal(times, np.arange(DAYS * ROWS_PER_DAY) * 300.0)
    assert np.isfinite(series).all() and (series >= 0).all()
    assert CSV.stat().st_size < 500_000


def test_shipped_csv_is_a_twin_routing_traffic_csv_path():
    """The configs of `vmjax train --env TwinRouting-v0 --traffic.csv_path data/traffic/twin_routing_sumo.csv
    --env.forecast_units flow --predictor.per_series_scaling false` (the module docstring's command) read the file:
    76 RSU columns for 76 + 10 + 1 servers, hence the shared scaler; the per-series one is refused."""
    overrides = {"run.env": "TwinRouting-v0", "traffic.csv_path": str(CSV), "env.forecast_units": "flow"}
    configs = runner.build_configs({**overrides, "predictor.per_series_scaling": False})
    config = configs["env"]
    env = SimpleNamespace(num_servers=config.num_rsus + config.num_uavs + 1)  # all load_traffic_series needs of it
    series, source = load_traffic_series(env, None, configs)
    assert series.shape == (DAYS * ROWS_PER_DAY, config.num_rsus) and "864 slots x 76 series" in source
    with pytest.raises(ValueError, match="per_series_scaling false"):
        load_traffic_series(env, None, runner.build_configs(overrides))


def test_shipped_csv_has_rush_hours(shipped):
    series = shipped[0].reshape(DAYS, ROWS_PER_DAY, -1)
    hours = np.arange(ROWS_PER_DAY) / 12.0
    window = lambda day, a, b: series[day][(hours >= a) & (hours < b)].mean()
    for day in range(DAYS):
        night = window(day, 2.0, 4.0)
        assert window(day, 7.5, 9.0) >= 3.0 * night, day
        assert window(day, 17.0, 19.0) >= 3.0 * night, day
        assert 40.0 <= series[day].mean(axis=1).max() <= 70.0  # the calibration: peaks near the server capacity
        assert series[day].max() > 1.5 * series[day].mean(axis=1).max()  # the centre is busier


def test_shipped_summary_matches_the_csv(shipped):
    report = json.loads(CSV.with_suffix(".json").read_text())
    assert report["rows"] == DAYS * ROWS_PER_DAY and len(report["seeds"]) == DAYS
    assert report["command"].startswith("python -m experiments.twin_routing_traffic ")
    hourly = shipped[0].reshape(DAYS, 24, 12, -1).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(report["hourly_mean_count_per_rsu"], hourly, atol=0.01)


def test_demand_profile_and_insertion_rates():
    hours = np.linspace(0.0, 24.0, 24 * 60 + 1)
    profile = trt.demand_profile(hours)
    assert profile.max() == pytest.approx(1.0) and profile.min() > 0.1
    morning, evening = (
        hours[np.argmax(np.where(hours < 12, profile, 0))],
        hours[np.argmax(np.where(hours > 12, profile, 0))],
    )
    assert 7.5 <= morning <= 8.5 and 17.0 <= evening <= 18.5
    assert trt.demand_profile(3.0) < 0.15 * profile.max()
    rates = trt.insertion_rates(1000.0, -3600, 86400)  # 25 h of 15-min steps, the first hour is 23:00 - 24:00
    assert len(rates) == 100 and rates[0] == pytest.approx(1000.0 * trt.demand_profile(23.125), abs=0.05)
    with pytest.raises(ValueError, match="whole number"):
        trt.insertion_rates(1000.0, 0, 1000)


def test_centre_weights():
    weights = trt.centre_weights([[4000.0, 4000.0], [0.0, 4000.0]], [500.0, 250.0], [4000.0, 4000.0], 1.0, 2000.0)
    np.testing.assert_allclose(weights, [1000.0, 250.0 * (1.0 + np.exp(-2.0))])


# ---------------------------------------------------------------------- counting on a hand-made example
RSUS = np.array([[0.0, 0.0], [1000.0, 0.0]])


def tiny_samples():
    """20 samples every 30 s of 3 vehicles and 2 RSUs (range 1200 m):
    v1 at (100, 0) always                       -> RSU 0
    v2 at (600, 0) in samples 0-9               -> RSU 1 (400 m vs 600 m)
       at (3000, 0) in samples 10-19            -> none (2000 m from RSU 1)
    v3 at (-1100, 0) in samples 0-4             -> RSU 0 (1100 m)
       at (-1201, 0) in samples 5-9             -> none (1201 m > 1200 m)
       absent in samples 10-14
       at (500, 0) in samples 15-19             -> RSU 0 (a tie goes to the lower index)."""
    for k in range(20):
        xy = [(100.0, 0.0), (600.0, 0.0) if k < 10 else (3000.0, 0.0)]
        if k < 5:
            xy.append((-1100.0, 0.0))
        elif k < 10:
            xy.append((-1201.0, 0.0))
        elif k >= 15:
            xy.append((500.0, 0.0))
        yield 600.0 + 30.0 * k, np.array(xy)


def test_assign_cells_nearest_within_range():
    xy = [[100.0, 0.0], [600.0, 0.0], [3000.0, 0.0], [-1100.0, 0.0], [-1201.0, 0.0], [500.0, 0.0], [1000, 1200]]
    np.testing.assert_array_equal(trt.assign_cells(xy, RSUS, 1200.0), [0, 1, -1, 0, -1, 0, 1])
    assert trt.assign_cells(np.zeros((0, 2)), RSUS).shape == (0,)


def test_counts_and_five_minute_means_by_hand():
    warmup = [(570.0, np.array([[0.0, 0.0]] * 9))]  # before the window: skipped
    counts = trt.count_samples([*warmup, *tiny_samples()], RSUS, 600.0, 20, 30.0, 1200.0)
    expected = np.zeros((20, 2))
    expected[:, 0] = 1  # v1
    expected[:10, 1] += 1  # v2
    expected[:5, 0] += 1  # v3 near RSU 0
    expected[15:, 0] += 1  # v3 at the tie
    np.testing.assert_array_equal(counts, expected)
    # row 0: RSU 0 (10 x v1 + 5 x v3) / 10 = 1.5, RSU 1 10 x v2 / 10 = 1.0; row 1: (10 + 5) / 10 = 1.5 and 0
    np.testing.assert_allclose(trt.window_means(counts, 10), [[1.5, 1.0], [1.5, 0.0]])
    text = trt.csv_text(trt.window_means(counts, 10))
    assert text == "time,rsu_0,rsu_1\n0,1.50,1.00\n300,1.50,0.00\n"


def test_count_samples_rejects_gaps_repeats_and_off_grid_times():
    samples = list(tiny_samples())
    with pytest.raises(ValueError, match=r"fcd\.xml: 1 of 20 samples missing, the first at t = 630"):
        trt.count_samples(samples[:1] + samples[2:], RSUS, 600.0, 20, source="fcd.xml")
    with pytest.raises(ValueError, match="two samples at t = 600"):
        trt.count_samples(samples[:1] + samples, RSUS, 600.0, 20)
    with pytest.raises(ValueError, match="off the 30.0 s grid"):
        trt.count_samples([(615.0, np.zeros((0, 2)))], RSUS, 600.0, 20, 30.0)
    with pytest.raises(ValueError, match="whole number"):
        trt.window_means(np.zeros((15, 2)), 10)


# ---------------------------------------------------------------------- FCD files
FCD = """<?xml version="1.0" encoding="UTF-8"?>
<fcd-export xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <timestep time="0.00"/>
    <timestep time="30.00">
        <vehicle id="a" x="100.00" y="0.00"/>
        <vehicle id="b" x="600.50" y="-2.25"/>
    </timestep>
    <timestep time="60.00">
        <vehicle id="b" x="3000.00" y="0.00"/>
    </timestep>
</fcd-export>
"""


@pytest.mark.parametrize("compressed", [False, True])
def test_iter_fcd_streams_timesteps(tmp_path, compressed):
    path = tmp_path / ("fcd.xml.gz" if compressed else "fcd.xml")
    path.write_bytes(gzip.compress(FCD.encode()) if compressed else FCD.encode())
    samples = list(trt.iter_fcd(path))
    assert [t for t, _ in samples] == [0.0, 30.0, 60.0]
    assert samples[0][1].shape == (0, 2)
    np.testing.assert_array_equal(samples[1][1], [[100.0, 0.0], [600.5, -2.25]])
    np.testing.assert_array_equal(samples[2][1], [[3000.0, 0.0]])
    counts = trt.count_samples(trt.iter_fcd(path), RSUS, 0.0, 3, 30.0, 1200.0)
    np.testing.assert_array_equal(counts, [[0, 0], [1, 1], [0, 0]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (FCD.replace("</timestep>\n</fcd-export>", ""), r"fcd\.xml, line \d+, column \d+: malformed FCD XML"),
        (FCD.replace('<vehicle id="a" x="100.00"', '<vehicle id="a" x="1e"'), r"fcd\.xml: <vehicle id='a'>.*'x'"),
        (FCD.replace('<vehicle id="b" x="3000.00" y="0.00"/>', '<vehicle id="b" x="3000.00"/>'), r"'y', got None"),
        (FCD.replace('time="30.00"', 'time="nan"'), r"<timestep> needs a finite number in attribute 'time'"),
        ("<routes>\n</routes>\n", r"fcd\.xml: not an FCD file \(root element <routes>"),
        ("", r"fcd\.xml, line 1, column 0: malformed FCD XML"),
    ],
)
def test_malformed_fcd_names_the_file(tmp_path, text, match):
    path = tmp_path / "fcd.xml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        list(trt.iter_fcd(path))


def test_truncated_gzip_fcd(tmp_path):
    path = tmp_path / "fcd.xml.gz"
    path.write_bytes(gzip.compress(FCD.encode())[:-20])
    with pytest.raises(ValueError, match=r"fcd\.xml\.gz: "):
        list(trt.iter_fcd(path))


# ---------------------------------------------------------------------- SUMO stays optional
def test_module_imports_without_sumo_and_says_how_to_install(monkeypatch):
    code = "import sys, experiments.twin_routing_traffic; print('sumo' in sys.modules, 'sumolib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
    monkeypatch.setitem(sys.modules, "sumo", None)  # import sumo -> ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'vmjax\[sumo\]'"):
        trt.sumo_home()
