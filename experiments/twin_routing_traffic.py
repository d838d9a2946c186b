"""Per-RSU vehicle counts for TwinRouting-v0 from a SUMO simulation of weekday traffic (issue 19).

    pip install -e '.[sumo]'
    python -m experiments.twin_routing_traffic            # 3 days (seeds 1 2 3) -> data/traffic/twin_routing_sumo.csv
    python -m experiments.twin_routing_traffic --seeds 7 --out day.csv --work-dir sumo_files  # 1 day, files kept

What it simulates (SUMO's `netgenerate`, `randomTrips.py` and `sumo`, all from the `eclipse-sumo` wheel):
- the road network: a 17 x 17 grid of 2-lane streets 500 m apart (13.89 m/s, traffic lights at every crossing)
  over TwinRouting's 8 km x 8 km city map, SUMO's x/y equal to the map's metres (no offset: the net's
  netOffset is checked to be 0, 0);
- the demand: trips of at least 2 km (straight line between their first and last edge), origins and
  destinations drawn in proportion to edge length x a centre bonus (1 + exp(-r^2 / 2 (2 km)^2), r the distance
  to the map centre: the centre is busier), inserted at a weekday rate (`demand_profile`, 15-min steps): low
  at night, a morning rush peaking at 08:00, a midday plateau and an evening rush peaking at 17:45;
- every day its own simulation with its own randomTrips and sumo seed; each starts an hour before midnight
  (`WARMUP_S`, the 23:00 rate) so the network is not empty at 00:00;
- the traffic model: SUMO's mesoscopic one by default (`--model meso`: queues on ~100-m edge segments with
  traffic-light and right-of-way control at the junctions, positions interpolated along the segments), about 9x
  faster than the microscopic one (`--model micro`), which holds ~20 % more vehicles at the same insertion
  rate (slower trips: 59 against 50 per cell after an hour at 20,000 vehicles/h); the default rate is for meso.

What it counts: every 30 s (FCD output, `--device.fcd.period 30`, x and y only), the vehicles in each RSU's cell:
a vehicle belongs to its nearest RSU (`vmjax.net.city_rsu_positions(76, 8000, 0)`, the env's default city
layout) if that RSU is within the RSU range of 1200 m, else to none. One CSV row per 5 minutes is the mean of
its 10 samples: one PeMS-style 5-min sample per 30-s env slot (spec 002 §4.1 (i)), 288 rows a day, 864 for the
3 days (times in seconds from midnight of day 0, so the days follow each other).

The demand level is a calibration, not a measurement: the env turns a count c into a background load of
S_v c = 2 MB x c per slot and an RSU drains kappa = 120 MB per slot, so ~60 vehicles in a cell is the
server's capacity; the spec asks for peaks near L^max, so the peak insertion rate (`--peak-rate`, vehicles per
hour entering the whole city) is set so that the network-wide mean count per cell at the rush-hour peak is
about 50-60 (the busiest, central cells above it) and the night about 10-15 % of the peak.

Reading it in TwinRouting: the file is the `vmjax.predict.load_traffic_csv` wide layout (`time,rsu_0,...`),
one column per RSU in vehicles, so the predictor trains on it with

    vmjax train --env TwinRouting-v0 --traffic.csv_path data/traffic/twin_routing_sumo.csv \\
        --env.forecast_units flow --predictor.per_series_scaling false

(76 columns, not one per server: the env also has UAVs and the satellite, hence the shared scaler; "flow"
units since the values are vehicle counts). The SUMO intermediate files (net, trips, FCD) go to `--work-dir`,
by default a temporary folder that is deleted afterwards. The CSV and the JSON summary beside it are written
atomically.

The counting and parsing functions (`iter_fcd`, `assign_cells`, `count_samples`, `window_means`) need only
NumPy: the tests import them without SUMO.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vmjax.mobility.sumo_build import (  # noqa: F401 - demand_profile, sumo_home: this module's API too
    demand_profile,
    insertion_rates,
    run_tool,
    sumo_home,
    sumo_version,
)

OUT = Path("data/traffic/twin_routing_sumo.csv")
NUM_RSUS = 76  # TwinRouting-v0's default N
CITY_SIZE_M = 8000.0  # TwinRouting-v0's city map side
LAYOUT_SEED = 0  # TwinRouting-v0's default layout_seed
RSU_RANGE_M = 1200.0  # D^max RSU
DAY_S = 86400
SAMPLE_S = 30  # FCD period = the env's slot
ROW_S = 300  # one CSV row = one 5-min window = 10 samples
WARMUP_S = 3600  # each day's simulation starts this long before midnight
RATE_STEP_S = 900  # randomTrips insertion-rate intervals (15 min)
GRID_SPACING_M = 500.0
LANES = 2
SPEED_MPS = 13.89  # 50 km/h
MIN_TRIP_M = 2000.0
CENTRE_BONUS = 1.0  # origin/destination weight 1 + CENTRE_BONUS exp(-r^2 / 2 CENTRE_SIGMA_M^2)
CENTRE_SIGMA_M = 2000.0
PEAK_RATE_PER_H = 23000.0  # vehicles inserted per hour at the profile's maximum (calibrated, see the docstring)


# ====================================================================== demand
# demand_profile (the weekday rate) and insertion_rates live in vmjax.mobility.sumo_build, shared with
# `vmjax traces sumo`


def centre_weights(midpoints_m, lengths_m, centre_m, bonus: float = CENTRE_BONUS, sigma_m: float = CENTRE_SIGMA_M):
    """Origin/destination weights [E] of edges with midpoints [E, 2] and lengths [E] (metres): length x
    (1 + bonus exp(-r^2 / 2 sigma^2)), r the distance to `centre_m` [2]."""
    r2 = np.sum((np.asarray(midpoints_m, np.float64) - np.asarray(centre_m, np.float64)) ** 2, axis=-1)
    return np.asarray(lengths_m, np.float64) * (1.0 + bonus * np.exp(-0.5 * r2 / sigma_m**2))


# ====================================================================== FCD parsing and counting (NumPy only)
def iter_fcd(path) -> Iterator[tuple[float, np.ndarray]]:
    """Stream a SUMO FCD file (`.xml` or `.xml.gz`): (time s, vehicle positions [K, 2] metres) per
    <timestep>, in file order, elements cleared as they are read. ValueError names the file (and the line for
    malformed XML) for anything that is not FCD with numeric time, x and y."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            root = None
            xy: list[tuple[float, float]] = []
            for event, elem in ET.iterparse(handle, events=("start", "end")):
                if root is None:
                    root = elem
                    if elem.tag != "fcd-export":
                        raise ValueError(f"{path}: not an FCD file (root element <{elem.tag}>, expected <fcd-export>)")
                    continue
                if event != "end":
                    continue
                if elem.tag == "vehicle":
                    xy.append((_number(path, elem, "x"), _number(path, elem, "y")))
                elif elem.tag == "timestep":
                    t = _number(path, elem, "time")
                    yield t, np.asarray(xy, np.float64).reshape(-1, 2)
                    xy = []
                    root.clear()  # drop the finished timesteps
    except ET.ParseError as err:
        line, column = err.position
        raise ValueError(f"{path}, line {line}, column {column}: malformed FCD XML ({err.msg})") from None
    except (EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: truncated or corrupt gzip FCD file ({err})") from None


def _number(path: str, elem, name: str) -> float:
    text = elem.get(name)
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        where = f"<{elem.tag}" + (f" id={elem.get('id')!r}" if elem.get("id") is not None else "") + ">"
        raise ValueError(f"{path}: {where} needs a finite number in attribute {name!r}, got {text!r}")
    return value


def assign_cells(xy_m, rsu_xy_m, range_m: float = RSU_RANGE_M) -> np.ndarray:
    """Cell index [K] of each vehicle position [K, 2]: its nearest RSU of `rsu_xy_m` [N, 2] (metres, planar) if
    that RSU is within `range_m`, else -1 (ties go to the lower index)."""
    xy = np.asarray(xy_m, np.float64).reshape(-1, 2)
    rsu = np.asarray(rsu_xy_m, np.float64)
    d2 = np.sum((xy[:, None, :] - rsu[None, :, :]) ** 2, axis=-1)
    nearest = np.argmin(d2, axis=1) if xy.shape[0] else np.zeros(0, np.int64)
    within = d2[np.arange(xy.shape[0]), nearest] <= range_m**2
    return np.where(within, nearest, -1)


def count_samples(
    samples: Iterable[tuple[float, np.ndarray]],
    rsu_xy_m,
    start_s: float,
    num_samples: int,
    sample_s: float = SAMPLE_S,
    range_m: float = RSU_RANGE_M,
    source: str = "samples",
) -> np.ndarray:
    """Vehicles per RSU cell [num_samples, N] at the times start_s + k sample_s (k = 0 .. num_samples - 1)
    from (time s, positions [K, 2]) samples; samples before or after that window are skipped (the warm-up).
    ValueError (naming `source`) when a sample in the window is off the sample_s grid, repeated, or missing."""
    num_rsus = np.asarray(rsu_xy_m).shape[0]
    counts = np.zeros((num_samples, num_rsus), np.float64)
    seen = np.zeros(num_samples, bool)
    for t, xy in samples:
        k = (t - start_s) / sample_s
        index = int(round(k))
        if index < 0 or index >= num_samples:
            continue
        if abs(k - index) > 1e-6:
            raise ValueError(f"{source}: sample at t = {t} s is off the {sample_s} s grid starting at {start_s} s")
        if seen[index]:
            raise ValueError(f"{source}: two samples at t = {t} s")
        seen[index] = True
        cells = assign_cells(xy, rsu_xy_m, range_m)
        counts[index] = np.bincount(cells[cells >= 0], minlength=num_rsus)
    if not seen.all():
        missing = np.flatnonzero(~seen)
        raise ValueError(
            f"{source}: {missing.size} of {num_samples} samples missing, the first at t = "
            f"{start_s + missing[0] * sample_s} s (did the simulation end early?)"
        )
    return counts


def window_means(counts, per_row: int = ROW_S // SAMPLE_S) -> np.ndarray:
    """Mean over consecutive windows of `per_row` samples: [T, N] -> [T / per_row, N]."""
    counts = np.asarray(counts, np.float64)
    if counts.shape[0] % per_row:
        raise ValueError(f"window_means: {counts.shape[0]} samples are not a whole number of {per_row}-sample rows")
    return counts.reshape(counts.shape[0] // per_row, per_row, *counts.shape[1:]).mean(axis=1)


def hourly_means(rows, row_s: int = ROW_S) -> np.ndarray:
    """Network-wide mean count per hour of the day [24] of one day's rows [DAY_S / row_s, N]."""
    rows = np.asarray(rows, np.float64)
    return rows.reshape(24, 3600 // row_s, -1).mean(axis=(1, 2))


def csv_text(rows, row_s: int = ROW_S) -> str:
    """The wide-layout CSV (`time,rsu_0,...`, time in seconds from the first row, 2 decimals) of rows [T, N]."""
    rows = np.asarray(rows, np.float64)
    lines = ["time," + ",".join(f"rsu_{i}" for i in range(rows.shape[1]))]
    lines += [f"{k * row_s}," + ",".join(f"{v:.2f}" for v in row) for k, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


# ====================================================================== SUMO (imported lazily)
_run = run_tool  # sumo_home, sumo_version and run_tool: vmjax.mobility.sumo_build


def build_network(work_dir: Path) -> Path:
    """The grid network over the city map (SUMO x/y = map metres); returns net.net.xml."""
    home = sumo_home()
    net_path = work_dir / "net.net.xml"
    junctions = int(round(CITY_SIZE_M / GRID_SPACING_M)) + 1
    _run(
        [
            os.path.join(home, "bin", "netgenerate"),
            "--grid",
            f"--grid.number={junctions}",
            f"--grid.length={GRID_SPACING_M}",
            "--grid.attach-length=0",
            f"--default.lanenumber={LANES}",
            f"--default.speed={SPEED_MPS}",
            "--default.junctions.type=traffic_light",
            "--no-turnarounds",
            "--offset.disable-normalization",
            "--seed=0",
            f"--output-file={net_path}",
        ],
        work_dir / "netgenerate.log",
    )
    import sumolib

    net = sumolib.net.readNet(str(net_path))
    offset = net.getLocationOffset()
    xmin, ymin, xmax, ymax = net.getBoundary()
    if any(abs(v) > 1e-6 for v in offset) or abs(xmin) > 1 or abs(ymin) > 1 or abs(xmax - CITY_SIZE_M) > 1:
        raise RuntimeError(f"{net_path}: net offset {offset}, boundary {net.getBoundary()}: not the map's metres")
    return net_path


def write_weights(net_path: Path, prefix: Path) -> None:
    """randomTrips' `--weights-prefix` files (.src.xml, .dst.xml): `centre_weights` per edge."""
    import sumolib

    net = sumolib.net.readNet(str(net_path))
    edges = [e for e in net.getEdges() if not e.isSpecial()]
    mids = [np.mean(e.getShape(), axis=0) for e in edges]
    weights = centre_weights(mids, [e.getLength() for e in edges], (CITY_SIZE_M / 2, CITY_SIZE_M / 2))
    body = "".join(f'        <edge id="{e.getID()}" value="{w:.3f}"/>\n' for e, w in zip(edges, weights))
    text = f'<edgedata>\n    <interval begin="0" end="{DAY_S + WARMUP_S}">\n{body}    </interval>\n</edgedata>\n'
    for suffix in (".src.xml", ".dst.xml"):
        Path(f"{prefix}{suffix}").write_text(text)


MODELS = {
    "meso": ["--mesosim", "--meso-junction-control", "--meso-interpolate-pos"],  # queues per 100-m edge segment
    "micro": [],  # car following and lane changing, ~9x slower
}


def simulate_day(
    net_path: Path, weights_prefix: Path, seed: int, peak_per_h: float, work_dir: Path, model: str = "meso"
) -> Path:
    """One day's trips (randomTrips, `seed`) and simulation (sumo, `MODELS[model]`) from -WARMUP_S to midnight +
    24 h, shifted by WARMUP_S (SUMO time 0 is 23:00 of the day before); returns the gzipped FCD file (x, y every
    SAMPLE_S)."""
    home = sumo_home()
    end_s = WARMUP_S + DAY_S
    rates = insertion_rates(peak_per_h, -WARMUP_S, DAY_S)
    trips = work_dir / f"trips_{seed}.trips.xml"
    _run(
        [
            sys.executable,
            os.path.join(home, "tools", "randomTrips.py"),
            f"--net-file={net_path}",
            f"--output-trip-file={trips}",
            f"--weights-prefix={weights_prefix}",
            f"--seed={seed}",
            f"--prefix=s{seed}_",
            "--begin=0",
            f"--end={end_s}",
            "--insertion-rate",
            *[str(r) for r in rates],
            "--random-depart",
            f"--min-distance={MIN_TRIP_M}",
            "--vehicle-class=passenger",
            "--no-validate",
        ],
        work_dir / f"randomTrips_{seed}.log",
    )
    fcd = work_dir / f"fcd_{seed}.xml.gz"
    _run(
        [
            os.path.join(home, "bin", "sumo"),
            f"--net-file={net_path}",
            f"--route-files={trips}",
            "--begin=0",
            f"--end={end_s}",
            f"--seed={seed}",
            *MODELS[model],
            f"--fcd-output={fcd}",
            "--fcd-output.attributes=x,y",
            f"--device.fcd.period={SAMPLE_S}",
            "--ignore-route-errors",
            "--no-step-log",
            "--duration-log.statistics",
            f"--statistic-output={work_dir / f'stats_{seed}.xml'}",
        ],
        work_dir / f"sumo_{seed}.log",
    )
    return fcd


def sumo_statistics(path) -> dict:
    """The trip counts and means of a sumo `--statistic-output` file (vehicles, teleports, trip statistics)."""
    root = ET.parse(path).getroot()
    vehicles, teleports, trips = (root.find(tag) for tag in ("vehicles", "teleports", "vehicleTripStatistics"))
    return dict(
        trips_loaded=int(vehicles.get("loaded")),
        trips_inserted=int(vehicles.get("inserted")),
        teleports=int(teleports.get("total")),
        mean_route_length_m=float(trips.get("routeLength")),
        mean_trip_duration_s=float(trips.get("duration")),
        mean_time_loss_s=float(trips.get("timeLoss")),
    )


def day_rows(fcd_path: Path, rsu_xy_m) -> np.ndarray:
    """One day's CSV rows [DAY_S / ROW_S, N] from a `simulate_day` FCD file."""
    counts = count_samples(iter_fcd(fcd_path), rsu_xy_m, WARMUP_S, DAY_S // SAMPLE_S, source=str(fcd_path))
    return window_means(counts)


def rsu_positions() -> np.ndarray:
    """TwinRouting-v0's default city RSU layout [76, 2] (metres)."""
    from vmjax import net

    return np.asarray(net.city_rsu_positions(NUM_RSUS, CITY_SIZE_M, LAYOUT_SEED), np.float64)


def generate(seeds, peak_per_h: float, work_dir: Path, model: str = "meso", log=None) -> tuple[np.ndarray, dict]:
    """All days' rows [len(seeds) * 288, N] and a summary dict (SUMO version, per-day stats, runtime)."""
    log = log or (lambda text: print(text, flush=True))  # a day takes minutes: show each as it ends
    start = time.perf_counter()
    rsu_xy = rsu_positions()
    net_path = build_network(work_dir)
    weights_prefix = work_dir / "weights"
    write_weights(net_path, weights_prefix)
    days, per_day = [], []
    for day, seed in enumerate(seeds):
        t0 = time.perf_counter()
        fcd = simulate_day(net_path, weights_prefix, seed, peak_per_h, work_dir, model)
        t1 = time.perf_counter()
        rows = day_rows(fcd, rsu_xy)
        t2 = time.perf_counter()
        hourly = hourly_means(rows)
        days.append(rows)
        per_day.append(
            dict(
                day=day,
                seed=seed,
                hourly_mean_count=[round(float(v), 2) for v in hourly],
                max_cell_count=round(float(rows.max()), 2),
                **sumo_statistics(work_dir / f"stats_{seed}.xml"),
                simulation_s=round(t1 - t0, 1),
                counting_s=round(t2 - t1, 1),
            )
        )
        log(
            f"day {day} (seed {seed}): simulated in {t1 - t0:.0f} s, counted in {t2 - t1:.0f} s; mean count per RSU "
            f"at 08:00 {hourly[8]:.1f}, 17:00 {hourly[17]:.1f}, 03:00 {hourly[3]:.1f}, busiest cell {rows.max():.1f}"
        )
    return np.concatenate(days), dict(sumo_version=sumo_version(), days=per_day, runtime_s=time.perf_counter() - start)


def summary(rows, info: dict, seeds, peak_per_h: float, model: str, command: str) -> dict:
    """The JSON written beside the CSV."""
    per_day = np.asarray(rows, np.float64).reshape(len(seeds), DAY_S // ROW_S, -1)
    hourly = np.stack([hourly_means(day) for day in per_day])
    mean_hourly = hourly.mean(axis=0)
    return dict(
        command=command,
        sumo_version=info["sumo_version"],
        seeds=list(seeds),
        rows=int(per_day.shape[0] * per_day.shape[1]),
        columns=[f"rsu_{i}" for i in range(per_day.shape[2])],
        row_s=ROW_S,
        sample_s=SAMPLE_S,
        sumo_model=dict(name=model, options=MODELS[model]),
        counting=dict(
            rsu_layout=f"vmjax.net.city_rsu_positions({NUM_RSUS}, {CITY_SIZE_M}, {LAYOUT_SEED})",
            rsu_range_m=RSU_RANGE_M,
            rule="nearest RSU within range, else none; row = mean of the 10 samples (every 30 s) of its 5 min",
        ),
        network=dict(
            generator="netgenerate --grid",
            junctions_per_side=int(round(CITY_SIZE_M / GRID_SPACING_M)) + 1,
            spacing_m=GRID_SPACING_M,
            lanes=LANES,
            speed_mps=SPEED_MPS,
            junction_type="traffic_light",
            extent_m=[0.0, 0.0, CITY_SIZE_M, CITY_SIZE_M],
        ),
        demand=dict(
            generator="randomTrips.py --insertion-rate (15-min steps) --random-depart",
            peak_rate_veh_per_h=peak_per_h,
            min_trip_distance_m=MIN_TRIP_M,
            od_weights=f"edge length x (1 + {CENTRE_BONUS} exp(-r^2 / 2 ({CENTRE_SIGMA_M:.0f} m)^2)), r to map centre",
            warmup_s=WARMUP_S,
            insertion_rate_veh_per_h_by_quarter_hour=insertion_rates(peak_per_h, 0, DAY_S),
        ),
        hourly_mean_count_per_rsu=[round(float(v), 2) for v in mean_hourly],
        peak_hour_mean_count=round(float(mean_hourly.max()), 2),
        night_mean_count_02_04=round(float(mean_hourly[2:4].mean()), 2),
        night_to_peak_ratio=round(float(mean_hourly[2:4].mean() / mean_hourly.max()), 3),
        days=info["days"],
        runtime_s=round(info["runtime_s"], 1),
    )


def main(argv=None) -> int:
    from vmjax.core import io

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--out", type=Path, default=OUT, help="the CSV; the JSON summary goes beside it")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="one randomTrips/sumo seed per day")
    parser.add_argument("--peak-rate", type=float, default=PEAK_RATE_PER_H, help="vehicles inserted per hour at peak")
    parser.add_argument("--model", choices=tuple(MODELS), default="meso", help="SUMO's mesoscopic or microscopic model")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep SUMO's files here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.peak_rate <= 0:
        parser.error("--peak-rate must be positive")
    sumo_home()  # fail early without SUMO
    command = "python -m experiments.twin_routing_traffic " + " ".join(
        [
            f"--out {args.out.as_posix()}",
            "--seeds " + " ".join(map(str, args.seeds)),
            f"--peak-rate {args.peak_rate:g}",
            f"--model {args.model}",
        ]
    )
    if args.work_dir is None:
        with tempfile.TemporaryDirectory(prefix="twin_routing_sumo_") as tmp:
            rows, info = generate(args.seeds, args.peak_rate, Path(tmp), args.model)
    else:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        rows, info = generate(args.seeds, args.peak_rate, args.work_dir, args.model)
    report = summary(rows, info, args.seeds, args.peak_rate, args.model, command)
    io.atomic_write_text(args.out, csv_text(rows))
    io.atomic_write_json(args.out.with_suffix(".json"), report)
    print(f"wrote {args.out} ({rows.shape[0]} rows x {rows.shape[1]} RSUs) in {report['runtime_s']:.0f} s")
    print("hour  mean count per RSU (mean over days)")
    for hour, value in enumerate(report["hourly_mean_count_per_rsu"]):
        print(f"{hour:02d}    {value:6.1f}  " + "#" * int(round(value)))
    print(f"night (02-04) / peak hour = {report['night_to_peak_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
