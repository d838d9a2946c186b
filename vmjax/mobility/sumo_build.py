"""A trace bank from a SUMO simulation (issue 23; `vmjax traces sumo`): a road network, a day's demand, the
simulation, and the bank file every scenario reads through `--env.trace_bank`.

    config = SumoBankConfig(net="grid", vehicles=50, hours=1.0, seed=0)
    summary = build_sumo_bank(config, Path("bank.npz"))     # bank.npz, bank.net.xml, bank.fcd.xml.gz, bank.json

Steps (SUMO's own programs, from the `eclipse-sumo` wheel: pip install 'vmjax[sumo]'):
1. the net: `netgenerate --grid | --spider | --rand` with the given sizes, or the user's `.net.xml` (used as is) or
   `.osm` (through `netconvert --osm-files`, geo-referenced);
2. the demand: `randomTrips.py --insertion-rate` in 15-minute steps, the rate following a time-of-day profile
   (`demand_profile`, "weekday": night floor, morning and evening rush; "flat": constant) from `start_hour`, with a
   warm-up interval before it so the network is not empty at the bank's first slot. The peak rate is set so that
   about `vehicles` vehicles are on the road at once at the profile's maximum (`peak_rate_per_h`: trips last about
   the mean distance between two random points of the net's box at 60% of the mean speed limit);
3. `sumo --fcd-output` (x, y, angle and speed every second; lon/lat with `lonlat`, for geo-referenced nets);
4. the bank: `read_fcd` -> `fcd_to_trace` at `slot_s` -> `pack_tracks` (vehicles that come and go, packed into
   `vehicles` tracks, the busiest kept) -> `save_trace_bank`, with the net's box, the start time of day and a
   metadata record (the config, the SUMO version, the vehicles on the road, the commands).
The run is deterministic for a config (SUMO's and randomTrips' seeds are the config's `seed`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np

from vmjax.core.io import atomic_write_json
from vmjax.mobility.bank_file import save_trace_bank
from vmjax.mobility.sumo import (
    INSTALL_HINT,
    fcd_to_trace,
    geo_origin_lonlat,
    net_road_segments,
    pack_tracks,
    read_fcd,
    read_net,
)

RATE_STEP_S = 900  # randomTrips insertion-rate intervals (15 min); also the warm-up
NetKind = Literal["grid", "spider", "rand"]
Profile = Literal["weekday", "flat"]


# ====================================================================== demand
def demand_profile(hour):
    """Relative insertion rate (max 1) at `hour` of a weekday (hours from midnight, any real, periodic in 24):
    night floor 0.12, a daytime plateau of 0.5 between ~06:00 and ~21:30, a morning rush peaking at 08:00
    (sd 0.9 h) and an evening rush peaking at 17:45 (sd 1.2 h) (the profile of TwinRouting-v1's SUMO day,
    experiments/twin_routing_traffic.py)."""
    return _raw_profile(hour) / _PROFILE_MAX


def _raw_profile(hour):
    h = np.mod(np.asarray(hour, np.float64), 24.0)
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
    bump = lambda centre, sd: np.exp(-0.5 * ((h - centre + 12.0) % 24.0 - 12.0) ** 2 / sd**2)
    day = sigmoid((h - 6.0) / 0.6) * sigmoid((21.5 - h) / 1.0)
    return 0.12 + 0.38 * day + 0.5 * bump(8.0, 0.9) + 0.5 * bump(17.75, 1.2)


_PROFILE_MAX = float(_raw_profile(np.linspace(0.0, 24.0, 24 * 60 + 1)).max())


def insertion_rates(
    peak_per_h: float, begin_s: float, end_s: float, step_s: float = RATE_STEP_S, profile: Profile = "weekday"
) -> list[float]:
    """randomTrips' `--insertion-rate` list (vehicles per hour, one per `step_s` interval of [begin_s, end_s),
    seconds from midnight): `peak_per_h` x the profile at each interval's middle."""
    count = int(round((end_s - begin_s) / step_s))
    if count < 1 or not math.isclose(count * step_s, end_s - begin_s):
        raise ValueError(f"insertion_rates: [{begin_s}, {end_s}) s is not a whole number of {step_s} s steps")
    middles_h = (begin_s + (np.arange(count) + 0.5) * step_s) / 3600.0
    shape = demand_profile(middles_h) if profile == "weekday" else np.ones(count)
    return [round(float(r), 1) for r in peak_per_h * shape]


def peak_rate_per_h(vehicles: int, box_m, mean_speed_mps: float) -> float:
    """Insertions per hour that keep about `vehicles` on the road (Little's law: rate = count / trip time), a trip
    lasting the mean Manhattan distance between two uniform points of the box, (W + H) / 3, at 60% of the mean
    speed limit, plus 10 s."""
    xmin, ymin, xmax, ymax = box_m
    trip_s = ((xmax - xmin) + (ymax - ymin)) / 3.0 / (0.6 * mean_speed_mps) + 10.0
    return vehicles * 3600.0 / trip_s


# ====================================================================== SUMO programs
def sumo_home() -> str:
    """SUMO_HOME of the installed `eclipse-sumo` wheel (set in os.environ for its tools); RuntimeError naming the
    extra to install when it is missing."""
    try:
        import sumo
    except ImportError:
        raise RuntimeError(f"SUMO is not installed: {INSTALL_HINT} (the eclipse-sumo and sumolib wheels)") from None
    os.environ.setdefault("SUMO_HOME", sumo.SUMO_HOME)
    return sumo.SUMO_HOME


def sumo_version() -> str:
    """The installed eclipse-sumo wheel's version."""
    from importlib.metadata import version

    sumo_home()
    return version("eclipse-sumo")


def run_tool(args: list[str], log_path: Path) -> None:
    """Run a SUMO program, its output to `log_path`; RuntimeError with the log's tail on failure."""
    with open(log_path, "w") as log:
        result = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    if result.returncode:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}), see {log_path}:\n{tail}")


@dataclasses.dataclass(frozen=True)
class SumoBankConfig:
    """What `vmjax traces sumo` builds (every field is a flag of the command)."""

    net: NetKind = "grid"  # generated network: "grid" | "spider" | "rand" (netgenerate)
    net_file: str = ""  # the user's network instead: a .net.xml (used as is) or an .osm (netconvert --osm-files)
    grid_number: int = 5  # grid: junctions per side
    grid_length_m: float = 200.0  # grid: street length between junctions
    spider_arms: int = 6  # spider: arms
    spider_circles: int = 4  # spider: circles
    spider_radius_m: float = 100.0  # spider: distance between circles
    rand_iterations: int = 60  # rand: netgenerate --rand.iterations (edges added)
    lanes: int = 1  # lanes per direction of generated nets
    speed_mps: float = 13.89  # speed limit of generated nets (50 km/h)
    vehicles: int = 50  # vehicles on the road at once at the demand peak = tracks in the bank
    hours: float = 1.0  # simulated hours after the warm-up (a multiple of 0.25)
    start_hour: float = 8.0  # time of day of the bank's first slot (hours from midnight, a multiple of 0.25)
    profile: Profile = "weekday"  # insertion rate over the day: "weekday" (rush hours) | "flat"
    seed: int = 0  # randomTrips, sumo and netgenerate --rand seed
    slot_s: float = 1.0  # the bank's slot (scenarios resample it to theirs)
    lonlat: bool = False  # positions from SUMO's lon/lat (--fcd-output.geo), projected around the net's south-west
    # corner (needs a geo-referenced net, e.g. from .osm)

    def __post_init__(self):
        owner = "SumoBankConfig"
        for name in ("grid_number", "spider_arms", "spider_circles", "rand_iterations", "lanes", "vehicles"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{owner}.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.grid_number < 2:
            raise ValueError(f"{owner}.grid_number must be >= 2, got {self.grid_number}")
        for name in ("grid_length_m", "spider_radius_m", "speed_mps", "hours", "slot_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{owner}.{name} must be a number > 0, got {value!r}")
        for name in ("hours", "start_hour"):
            value = getattr(self, name) * 3600.0 / RATE_STEP_S
            if not math.isclose(value, round(value), abs_tol=1e-9) or getattr(self, name) < 0:
                raise ValueError(f"{owner}.{name} must be a multiple of 0.25 h, got {getattr(self, name)!r}")
        if self.net not in ("grid", "spider", "rand"):
            raise ValueError(f"{owner}.net must be one of grid, spider, rand, got {self.net!r}")
        if self.profile not in ("weekday", "flat"):
            raise ValueError(f"{owner}.profile must be one of weekday, flat, got {self.profile!r}")
        if self.net_file and not (self.net_file.endswith((".net.xml", ".net.xml.gz", ".osm", ".osm.xml"))):
            raise ValueError(f"{owner}.net_file must be a .net.xml or .osm file, got {self.net_file!r}")
        if self.net_file and not os.path.isfile(self.net_file):
            raise ValueError(f"{owner}.net_file: {self.net_file}: file not found")


def netgenerate_args(config: SumoBankConfig) -> list[str]:
    """netgenerate's options for a generated net (SUMO docs, Tools/Netgenerate)."""
    common = [
        f"--default.lanenumber={config.lanes}",
        f"--default.speed={config.speed_mps}",
        "--no-turnarounds",
        f"--seed={config.seed}",
    ]
    if config.net == "grid":
        kind = ["--grid", f"--grid.number={config.grid_number}", f"--grid.length={config.grid_length_m}"]
    elif config.net == "spider":
        kind = [
            "--spider",
            f"--spider.arm-number={config.spider_arms}",
            f"--spider.circle-number={config.spider_circles}",
            f"--spider.space-radius={config.spider_radius_m}",
        ]
    else:
        kind = ["--rand", f"--rand.iterations={config.rand_iterations}"]
    return kind + common


def make_net(config: SumoBankConfig, net_path: Path, work_dir: Path) -> list[str]:
    """Write the net to `net_path`; returns the command that made it (empty for a copied .net.xml)."""
    home = sumo_home()
    if config.net_file.endswith((".osm", ".osm.xml")):
        args = [
            os.path.join(home, "bin", "netconvert"),
            f"--osm-files={config.net_file}",
            "--geometry.remove",
            "--junctions.join",
            "--remove-edges.isolated",
            "--keep-edges.by-vclass=passenger",
            f"--output-file={net_path}",
        ]
    elif config.net_file:
        read_net(config.net_file)  # a readable net, or the error names the file and line
        shutil.copyfile(config.net_file, net_path)
        return []
    else:
        args = [os.path.join(home, "bin", "netgenerate"), *netgenerate_args(config), f"--output-file={net_path}"]
    run_tool(args, work_dir / "net.log")
    return args


def build_sumo_bank(config: SumoBankConfig, out: Path, log=print) -> dict:
    """The whole pipeline of the module doc; writes `out` (.npz) and, beside it, `<stem>.net.xml`,
    `<stem>.fcd.xml.gz`, `<stem>.trips.xml` and `<stem>.json` (the summary, also returned). Every file is
    written under a temporary name in the output folder and renamed at the end."""
    home = sumo_home()
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {out}")
    stem = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as tmp:
        work = Path(tmp)
        net_path, trips_path, fcd_path = work / "net.net.xml", work / "trips.xml", work / "fcd.xml.gz"
        net_command = make_net(config, net_path, work)
        net = read_net(net_path)
        origin_lonlat = geo_origin_lonlat(net) if config.lonlat else None
        bank_begin_s = config.start_hour * 3600.0
        sim_begin_s, sim_end_s = bank_begin_s - RATE_STEP_S, bank_begin_s + config.hours * 3600.0
        mean_speed = float(np.average(net.edge_speed_mps, weights=np.asarray(net.graph.edge_length_m)))
        peak = peak_rate_per_h(config.vehicles, net.conv_boundary_m, mean_speed)
        rates = insertion_rates(peak, sim_begin_s, sim_end_s, profile=config.profile)
        log(f"traces sumo: {len(net.junction_ids)} junctions, {len(net.edge_ids)} edges; up to {peak:.0f} trips/h")
        trips_command = [
            sys.executable,
            os.path.join(home, "tools", "randomTrips.py"),
            f"--net-file={net_path}",
            f"--output-trip-file={trips_path}",
            f"--seed={config.seed}",
            "--prefix=v",
            f"--begin={sim_begin_s}",
            f"--end={sim_end_s}",
            "--insertion-rate",
            *[str(r) for r in rates],
            "--random-depart",
            "--vehicle-class=passenger",
            "--no-validate",
        ]
        run_tool(trips_command, work / "randomTrips.log")
        sumo_command = [
            os.path.join(home, "bin", "sumo"),
            f"--net-file={net_path}",
            f"--route-files={trips_path}",
            f"--begin={sim_begin_s}",
            f"--end={sim_end_s + 1.0}",
            f"--seed={config.seed}",
            f"--fcd-output={fcd_path}",
            "--fcd-output.attributes=x,y,angle,speed",
            f"--device.fcd.begin={bank_begin_s}",
            *(["--fcd-output.geo"] if config.lonlat else []),
            "--ignore-route-errors",
            "--no-step-log",
            "--duration-log.statistics",
        ]
        run_tool(sumo_command, work / "sumo.log")
        fcd = read_fcd(fcd_path, origin_lonlat=origin_lonlat, begin_s=bank_begin_s, end_s=sim_end_s)
        num_steps = int(round(config.hours * 3600.0 / config.slot_s)) + 1
        trace = fcd_to_trace(fcd, config.slot_s, start_s=bank_begin_s, num_steps=num_steps)
        on_road = np.asarray(trace.valid).sum(axis=1)
        tracks, vehicle_of_track = pack_tracks(trace, num_tracks=config.vehicles)
        box_m = bank_box_m(net, origin_lonlat)
        summary = dict(
            config=dataclasses.asdict(config),
            sumo_version=sumo_version(),
            junctions=len(net.junction_ids),
            edges=len(net.edge_ids),
            box_m=list(box_m),
            geo_referenced=net.has_geo_reference,
            trips_per_h_at_peak=round(peak, 1),
            sumo_vehicles=len(fcd.vehicle_ids),
            on_road_mean=float(on_road.mean()),
            on_road_max=int(on_road.max()),
            tracks=int(tracks.positions_m.shape[1]),
            track_occupancy=float(np.asarray(tracks.valid).mean()),
            slots=num_steps,
            commands=[_shown(c, work) for c in (net_command, trips_command, sumo_command) if c],
        )
        save_trace_bank(
            work / "bank.npz",
            tracks,
            config.slot_s,
            box_m=box_m,
            start_s=bank_begin_s,
            vehicle_of_track=vehicle_of_track,
            metadata=summary,
            roads_m=None if origin_lonlat else net_road_segments(net),  # junctions are in SUMO's x/y only
        )
        atomic_write_json(work / "bank.json", {**summary, "wall_s": round(time.perf_counter() - start, 1)})
        for name, target in (
            ("net.net.xml", f"{stem}.net.xml"),
            ("fcd.xml.gz", f"{stem}.fcd.xml.gz"),
            ("trips.xml", f"{stem}.trips.xml"),
            ("bank.json", f"{stem}.json"),
            ("bank.npz", str(out)),
        ):
            os.replace(work / name, target)
    if summary["tracks"] < config.vehicles:
        log(
            f"traces sumo: only {summary['tracks']} tracks (at most {summary['on_road_max']} vehicles on the road at "
            f"once), {config.vehicles} asked: raise --vehicles or --hours for more"
        )
    log(
        f"traces sumo: {out} ({summary['tracks']} tracks x {num_steps} slots of {config.slot_s} s, "
        f"{summary['sumo_vehicles']} SUMO vehicles, {summary['on_road_mean']:.1f} on the road on average, tracks "
        f"occupied {100 * summary['track_occupancy']:.0f}% of the time) in {time.perf_counter() - start:.0f} s"
    )
    return summary


def bank_box_m(net, origin_lonlat) -> tuple[float, float, float, float]:
    """The map box of the bank's positions: the net's convBoundary in SUMO x/y, or its origBoundary projected around
    `origin_lonlat` for lon/lat banks."""
    if origin_lonlat is None:
        return tuple(float(v) for v in net.conv_boundary_m)
    from vmjax.net.geo import lonlat_to_xy_m

    lon0, lat0, lon1, lat1 = net.orig_boundary
    x, y = lonlat_to_xy_m(np.asarray([lon0, lon1]), np.asarray([lat0, lat1]), *origin_lonlat)
    return float(x[0]), float(y[0]), float(x[1]), float(y[1])


def _shown(command: list[str], work: Path) -> str:
    """A command as recorded in the summary: program names without their folders, temporary paths as file names."""
    args = command[1:] if command[0] == sys.executable else command
    return " ".join([Path(args[0]).name] + [a.replace(str(work) + os.sep, "") for a in args[1:]])


__all__ = [
    "SumoBankConfig",
    "build_sumo_bank",
    "demand_profile",
    "insertion_rates",
    "make_net",
    "netgenerate_args",
    "peak_rate_per_h",
    "run_tool",
    "sumo_home",
    "sumo_version",
]
