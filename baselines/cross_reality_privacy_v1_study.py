"""CrossRealityPrivacy-v1 calibration study (spec 000; docs/cross_reality_privacy.md, "v0 -> v1"): the references
the routine-mobility adversary's constants are fitted to, and the checks that the v1 world leaves room for a
state-dependent policy, all without any learner.

    python -m baselines.cross_reality_privacy_v1_study [--worlds 200] [--out docs/results/cross_reality_privacy_v1]
    python -m baselines.cross_reality_privacy_v1_study report     # the docs' tables from calibration.json

(a) entropy (5) of zero perturbation and of Geo-I (eps = 13.5 / r_max, spec §7.1), both with the historical greedy
    server rule; the free constants (lattice spacing, prior width, window) are fitted to these two alone;
(b) utility (17) against the radius: of a fixed-radius rule (uniform angle, greedy server) over whole episodes, and
    per state: one-slot deviations to every radius of the grid (uniform angle) from the states Geo-I visits,
    grouped by the adversary's dead-reckoning offset |l_pred - l| (what v1 observes);
(c) the per-state oracle over the radius grid (the same angle draw) against the best fixed radius on the same
    states (myopic: a report's effect on the next slots' predictions is not counted), and the oracle over radius
    and angle;
(d) latency of Geo-I's perturbation with the greedy server rule, a uniform random server, the connected server and
    the satellite.

Every attempt of the calibration is kept in `calibration.json` (written atomically after each attempt) with the
machine it ran on. The worlds are the same for every rule: PRNGKey(eval_seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vmjax
from baselines import cross_reality_privacy as heuristics
from vmjax.core import io
from vmjax.core.machine import describe_machine, machine_summary
from vmjax.core.rollout import StatefulPolicy, VecEnv, rollout_stateful, stateless
from vmjax.envs import cross_reality_privacy as crp

DEFAULT_OUT = Path("docs/results/cross_reality_privacy_v1")
PAPER_ENTROPY_RANGE_BITS = (0.33, 0.74)  # the paper's entropies (spec §2.5 note): every method well under 1 bit
STATE_BINS_M = (0.0, 25.0, 75.0, 150.0, 300.0, math.inf)  # the adversary's dead-reckoning offset |l_pred - l|
PEAK_MARGIN = 0.05  # (b) an interior peak must beat both r = 0 and r = r_max by this much utility per AV-slot
ORACLE_MARGIN = 0.1  # (c) passes when the oracle beats the best fixed radius by this much utility per AV-slot
SERVER_MARGIN_S = 20.0  # (d) passes when a random server costs this much more latency than the greedy rule
METRICS = ("utility", "entropy_bits", "qos_loss", "latency_s", "adversary_error_m", "prediction_offset_m")
SERVER_METRICS = ("latency_s", "uplink_s", "backhaul_s", "migration_s", "computation_s", "entropy_bits", "utility")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Sizes of the study (defaults: the committed calibration.json)."""

    worlds: int = 200  # worlds (one episode of T = 50 slots each) per rule
    eval_seed: int = 20_000  # the worlds: PRNGKey(eval_seed)
    radius_steps: int = 10  # the radius grid: r = i r_max / radius_steps, i = 0..radius_steps
    num_angles: int = 4  # angles per radius in the one-slot sweep: 2 pi (k + u) / num_angles, u ~ U[0, 1)

    @property
    def radius_fractions(self) -> np.ndarray:
        return np.arange(self.radius_steps + 1) / self.radius_steps


# ------------------------------------------------------------------------------------------- rule rollouts
def episode_means(env, make_policy, params, key, worlds: int, metrics: Sequence[str], *args) -> dict:
    """Mean over worlds, slots and AVs of each info metric, one episode per world, for the policy
    `make_policy(env, *args)` (a StatefulPolicy or a per-world policy). `params` and `args` are traced, so a sweep
    over them compiles once per policy."""
    return {
        name: float(value)
        for name, value in _episode_means(env, make_policy, worlds, tuple(metrics))(key, params, *args).items()
    }


@functools.cache
def _episode_means(env, make_policy, worlds: int, metrics: tuple[str, ...]):
    summary = lambda reward, info: {name: jnp.mean(info[name].astype(jnp.float32), axis=-1) for name in metrics}

    def run(key, params, *args):
        policy = make_policy(env, *args)
        policy = policy if isinstance(policy, StatefulPolicy) else stateless(policy)
        steps = rollout_stateful(env, policy, key, params, worlds, env.config.max_steps, summary)
        return {name: jnp.mean(value) for name, value in steps.items()}

    return jax.jit(run)


def references(env, params, key, worlds: int, metrics: Sequence[str] = METRICS) -> dict:
    """(a): zero perturbation and Geo-I, both with the historical greedy server rule (§7.1)."""
    rules = {"zero_perturbation": heuristics.make_no_perturbation_stateful, "geo_i": heuristics.make_geo_i_stateful}
    return {name: episode_means(env, make, params, key, worlds, metrics) for name, make in rules.items()}


def fixed_radius_rule(env, params, key, worlds: int, fractions) -> dict:
    """(b), whole episodes: the fixed-radius rule r = f r_max (uniform angle, greedy server) for each f."""
    make = heuristics.make_fixed_radius_stateful
    rows = [episode_means(env, make, params, key, worlds, METRICS[:4], jnp.float32(f)) for f in fractions]
    return {name: [row[name] for row in rows] for name in METRICS[:4]}


def _geo_i_with(rule):
    return lambda env: heuristics.make_geo_i_server_policy(env, rule)


SERVER_POLICIES = {"greedy": heuristics.make_geo_i_stateful} | {
    name: _geo_i_with(rule) for name, rule in heuristics.SERVER_RULES.items()
}
SERVER_RULES = tuple(SERVER_POLICIES)


def server_latency(env, params, key, worlds: int, rules: Sequence[str] = SERVER_RULES) -> dict:
    """(d): Geo-I's perturbation with the historical greedy server rule ("greedy") and the fixed server rules of
    `heuristics.SERVER_RULES`, the same perturbation draws for every rule."""
    return {name: episode_means(env, SERVER_POLICIES[name], params, key, worlds, SERVER_METRICS) for name in rules}


# ------------------------------------------------------------------------------------------- one-slot sweep
def sweep_angles(key, shape, num_angles: int):
    """num_angles angles 2 pi (k + u) / num_angles per AV, u ~ U[0, 1) (a uniform angle, stratified): [A, *shape]."""
    u = jax.random.uniform(key, shape)
    return 2.0 * math.pi * (jnp.arange(num_angles)[:, None] + u[None]) / num_angles


def slot_sweep(env, state, target, radii_deg, angles, params):
    """Utility (17) [R, A, M] of every (radius, angle) in the grid for one world's slot, the servers `target`."""

    def utility(radius_deg, theta):
        radius = jnp.full((env.num_agents,), radius_deg)
        raw = crp.raw_from_perturbation(radius, theta, params.r_max_deg, env.config.action_squash)
        return env.outcome(state, {"target": target, "perturbation": raw}, params)["utility"]

    per_angle = jax.vmap(utility, in_axes=(None, 0))
    return jax.vmap(per_angle, in_axes=(0, None))(radii_deg, angles)


def radius_sweep(env, params, key, worlds: int, study: StudyConfig) -> dict:
    """The states Geo-I (greedy server) visits, and at each slot the utility of every grid radius x angle with
    Geo-I's server choice: {"utility": [slots * worlds * M, R, A], "offset_m": [slots * worlds * M]} (NumPy)."""
    sweep, offset = _radius_sweep(env, worlds, study.radius_steps, study.num_angles)(key, params)
    sweep = np.moveaxis(np.asarray(sweep), -1, 2)  # [T, W, M, R, A]
    return {"utility": sweep.reshape(-1, *sweep.shape[-2:]), "offset_m": np.asarray(offset).reshape(-1)}


@functools.cache
def _radius_sweep(env, worlds: int, radius_steps: int, num_angles: int):
    policy = heuristics.make_geo_i_stateful(env)
    vec = VecEnv(env, worlds)
    fractions = np.arange(radius_steps + 1) / radius_steps

    def run(key, params):
        radii = jnp.asarray(fractions, jnp.float32) * params.r_max_deg
        k_reset, k_env, k_policy = jax.random.split(key, 3)
        _, state = vec.reset(k_reset, params)
        policy_state = jax.vmap(policy.init, in_axes=(0, None))(
            jax.random.split(jax.random.fold_in(key, 1), worlds), params
        )

        def body(carry, keys):
            state, policy_state = carry
            k_step, k_act, k_angle = keys
            actions, policy_state, _ = jax.vmap(policy.act, in_axes=(0, 0, 0, None))(
                jax.random.split(k_act, worlds), policy_state, state, params
            )
            angles = jax.vmap(lambda k: sweep_angles(k, (env.num_agents,), num_angles))(
                jax.random.split(k_angle, worlds)
            )  # [W, A, M]
            sweep = jax.vmap(slot_sweep, in_axes=(None, 0, 0, None, 0, None))(
                env, state, actions["target"], radii, angles, params
            )  # [W, R, A, M]
            offset = jnp.linalg.norm(
                jax.vmap(env.predicted_m)(state) - jax.vmap(lambda s: s.trace.position_at(s.t))(state), axis=-1
            )  # [W, M]
            _, state, _, _, _, _ = vec.step(k_step, state, actions, params)
            return (state, policy_state), (sweep, offset)

        n = env.config.max_steps
        keys = tuple(jax.random.split(k, n) for k in (k_env, k_policy, jax.random.fold_in(key, 2)))
        return jax.lax.scan(body, (state, policy_state), keys)[1]

    return jax.jit(run)


@functools.cache
def make_env(env_id: str, **config):
    """One env object per (id, config), so the study's compiled functions are reused across attempts."""
    return vmjax.make(env_id, **config)


# ------------------------------------------------------------------------------------------- (b), (c) from a sweep
def peak(curve, fractions, margin: float = PEAK_MARGIN) -> dict:
    """The best radius of a utility curve over the radius grid, how far it is above the better end (r = 0 or
    r = r_max), and whether it is interior: inside the grid and at least `margin` above both ends."""
    curve = np.asarray(curve)
    best = int(np.argmax(curve))
    above = float(curve[best] - max(curve[0], curve[-1]))
    return {
        "best_fraction": float(fractions[best]),
        "best_utility": float(curve[best]),
        "above_ends": above,
        "interior": bool(0 < best < len(curve) - 1 and above >= margin),
    }


def state_curves(sweep: dict, fractions, bins=STATE_BINS_M) -> list[dict]:
    """(b) per state: the utility against the radius (angle-averaged) for each offset bin, with its peak."""
    curves = sweep["utility"].mean(axis=-1)  # [S, R]
    rows = []
    for low, high in zip(bins[:-1], bins[1:]):
        inside = (sweep["offset_m"] >= low) & (sweep["offset_m"] < high)
        row = {"offset_m": [low, None if math.isinf(high) else high], "share": float(inside.mean())}
        if inside.any():
            curve = curves[inside].mean(axis=0)
            row |= {"curve": curve.tolist()} | peak(curve, fractions)
        else:
            row |= {"curve": None, "best_fraction": None, "best_utility": None, "interior": False}
        rows.append(row)
    return rows


def oracle_gap(sweep: dict, fractions, key) -> dict:
    """(c) on the same states: the best fixed radius (one angle drawn per slot), the per-state oracle over the
    radius grid with that angle, and the oracle over radius and angle."""
    utility = sweep["utility"]  # [S, R, A]
    pick = np.asarray(jax.random.randint(key, (utility.shape[0],), 0, utility.shape[-1]))
    one_angle = np.take_along_axis(utility, pick[:, None, None], axis=-1)[..., 0]  # [S, R]
    fixed = one_angle.mean(axis=0)
    best = int(np.argmax(fixed))
    oracle = float(one_angle.max(axis=1).mean())
    return {
        "fixed_curve": fixed.tolist(),
        "best_fixed_fraction": float(fractions[best]),
        "best_fixed_utility": float(fixed[best]),
        "oracle_radius_utility": oracle,
        "oracle_radius_gain": oracle - float(fixed[best]),
        "oracle_radius_angle_utility": float(utility.max(axis=(1, 2)).mean()),
        "oracle_radius_histogram": np.bincount(one_angle.argmax(axis=1), minlength=len(fractions)).tolist(),
    }


def checks(entry: dict) -> dict:
    """The pass / fail of (a)-(d) for one attempt (module docstring; thresholds in the constants above)."""
    ref = entry["references"]
    zero, geo = ref["zero_perturbation"]["entropy_bits"], ref["geo_i"]["entropy_bits"]
    low, high = PAPER_ENTROPY_RANGE_BITS
    states = [row for row in entry["states"] if row["share"] > 0]
    interior_peaks = {row["best_fraction"] for row in states if row["interior"]}
    servers = entry["servers"]
    return {
        "a_references_in_paper_range": bool(zero < geo and low <= geo <= high and zero < low),
        "b_fixed_rule_interior": entry["fixed_radius_peak"]["interior"],
        "b_state_dependent": bool(len(interior_peaks) >= 2 and len({row["best_fraction"] for row in states}) >= 2),
        "c_oracle_room": bool(entry["oracle"]["oracle_radius_gain"] >= ORACLE_MARGIN),
        "d_server_matters": bool(servers["random"]["latency_s"] - servers["greedy"]["latency_s"] >= SERVER_MARGIN_S),
    }


# ------------------------------------------------------------------------------------------- attempts
def evaluate_attempt(env_id: str, config: dict, changes: dict, study: StudyConfig, sweep: bool = True, log=print):
    """(a)-(d) for one setting of the constants (`sweep=False`: (a), the fixed-radius rule and (d) only, for v0,
    whose adversary has no dead reckoning)."""
    env = make_env(env_id, **config)
    params = env.default_params.replace(**changes)
    key = jax.random.PRNGKey(study.eval_seed)
    fractions = study.radius_fractions
    start = time.perf_counter()
    metrics = METRICS if sweep else METRICS[:4]
    entry = {"env": env_id, "config": config, "params": changes}
    entry["references"] = references(env, params, key, study.worlds, metrics)
    log(f"  references {time.perf_counter() - start:.0f} s: " + _entropy_line(entry["references"]))
    entry["fixed_radius_rule"] = fixed_radius_rule(env, params, key, study.worlds, fractions)
    entry["fixed_radius_peak"] = peak(entry["fixed_radius_rule"]["utility"], fractions)
    log(f"  fixed radius {time.perf_counter() - start:.0f} s: {entry['fixed_radius_peak']}")
    entry["servers"] = server_latency(env, params, key, study.worlds)
    log(f"  servers {time.perf_counter() - start:.0f} s: {_server_line(entry['servers'])}")
    if sweep:
        swept = radius_sweep(env, params, key, study.worlds, study)
        entry["states"] = state_curves(swept, fractions)
        entry["oracle"] = oracle_gap(swept, fractions, jax.random.fold_in(key, 3))
        entry["checks"] = checks(entry)
        log(f"  sweep {time.perf_counter() - start:.0f} s: {_state_line(entry)}; {entry['checks']}")
    return entry


def spec_spacing_m(params) -> float:
    """delta = r_max / 2 (the spec's §2.5 candidate spacing) as metres of latitude: 55.6 m."""
    return float(crp.radius_m(0.5 * params.r_max_deg, params, 0.0))


def self_consistent_prior_std_m(env, params, key, worlds: int) -> float:
    """The prior width a Bayesian adversary would fit to its own dead-reckoning errors on routine trajectories
    (zero perturbation, greedy server): per-axis sigma = sqrt(E |l_pred - l|^2 / 2)."""
    summary = lambda reward, info: jnp.mean(info["prediction_offset_m"] ** 2, axis=-1)
    policy = heuristics.make_no_perturbation_stateful(env)
    squares = jax.jit(lambda k: rollout_stateful(env, policy, k, params, worlds, env.config.max_steps, summary))(key)
    return float(jnp.sqrt(jnp.mean(squares) / 2.0))


def fit_prior_std(env_id: str, config: dict, changes: dict, study: StudyConfig, grid_m, log=print) -> dict:
    """The fit of sigma_P: entropy of zero perturbation and of Geo-I for each prior width of `grid_m`; the fitted
    width is the largest one that keeps Geo-I within the paper's range and zero perturbation below it (the
    weakest routine-mobility adversary consistent with the paper's entropies)."""
    env = make_env(env_id, **config)
    key = jax.random.PRNGKey(study.eval_seed)
    rows = []
    for std_m in grid_m:
        params = env.default_params.replace(**changes, prior_std_m=float(std_m))
        ref = references(env, params, key, study.worlds, ("entropy_bits",))
        rows.append({"prior_std_m": float(std_m)} | {name: row["entropy_bits"] for name, row in ref.items()})
        log(f"  sigma_P {std_m:6.1f} m: {_entropy_line(ref)}")
    low, high = PAPER_ENTROPY_RANGE_BITS
    fitting = [r["prior_std_m"] for r in rows if low <= r["geo_i"] <= high and r["zero_perturbation"] < low]
    return {"rows": rows, "fitted_prior_std_m": max(fitting) if fitting else None}


PRIOR_GRID_M = (20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 120.0, 200.0)
"""The prior widths of the fit (metres)."""

RSU_COUNTS = (20, 40, 80, 160)
"""The RSU counts of the server-latency scan, (d)."""


def calibrate(out: Path, study: StudyConfig, command: str, log=print) -> dict:
    """Every attempt, in order, into out/calibration.json (rewritten atomically after each): v0 as it is; v1 with
    the self-consistent prior; the prior-width fit; the server-latency scan over N; v1 with its defaults."""
    path = out / "calibration.json"
    v1 = make_env("CrossRealityPrivacy-v1")
    spacing_m = v1.default_params.lattice_spacing_m  # = r_max / 2 as metres (`spec_spacing_m`), rounded
    data = {
        "command": command,
        "machine": machine_summary(),
        "machine_description": describe_machine(),
        "study": dataclasses.asdict(study) | {"radius_fractions": study.radius_fractions.tolist()},
        "paper_entropy_range_bits": list(PAPER_ENTROPY_RANGE_BITS),
        "state_bins_m": [b if math.isfinite(b) else None for b in STATE_BINS_M],
        "thresholds": {"peak_margin": PEAK_MARGIN, "oracle_margin": ORACLE_MARGIN, "server_margin_s": SERVER_MARGIN_S},
        "spec_spacing_m": spacing_m,
        "attempts": {},
    }
    attempts = data["attempts"]

    def record(name: str, reason: str, entry: dict) -> None:
        attempts[name] = {"reason": reason} | entry
        write_results(path, data)

    log("v0 as it is")
    record(
        "v0",
        "CrossRealityPrivacy-v0 with its defaults: the problem",
        evaluate_attempt("CrossRealityPrivacy-v0", {}, {}, study, sweep=False, log=log),
    )
    key = jax.random.PRNGKey(study.eval_seed)
    consistent = self_consistent_prior_std_m(v1, v1.default_params, key, study.worlds)
    log(f"self-consistent prior: sigma_P = {consistent:.1f} m")
    record(
        "self_consistent_prior",
        "v1, lattice spacing r_max / 2, 5 x 5 window, and the prior width a Bayesian adversary fits to its own "
        "dead-reckoning errors under zero perturbation",
        evaluate_attempt(
            "CrossRealityPrivacy-v1", {}, {"lattice_spacing_m": spacing_m, "prior_std_m": consistent}, study, log=log
        ),
    )
    log("prior-width fit")
    fit = fit_prior_std("CrossRealityPrivacy-v1", {}, {"lattice_spacing_m": spacing_m}, study, PRIOR_GRID_M, log)
    data["prior_fit"] = fit
    write_results(path, data)
    log("server latency against N")
    data["rsu_scan"] = {}
    for n in RSU_COUNTS:
        env = make_env("CrossRealityPrivacy-v1", **({} if n == v1.num_rsus else {"num_rsus": n}))
        data["rsu_scan"][str(n)] = server_latency(env, env.default_params, key, study.worlds, ("greedy", "random"))
        log(f"  N = {n}: {_server_line(data['rsu_scan'][str(n)])}")
        write_results(path, data)
    defaults = v1.default_params
    log("v1 defaults")
    record(
        "v1",
        "CrossRealityPrivacy-v1 with its defaults (lattice spacing r_max / 2, the fitted prior width)",
        evaluate_attempt("CrossRealityPrivacy-v1", {}, {}, study, log=log)
        | {
            "defaults": {"lattice_spacing_m": defaults.lattice_spacing_m, "prior_std_m": defaults.prior_std_m},
            "defaults_match_fit": defaults.prior_std_m == fit["fitted_prior_std_m"],
        },
    )
    return data


def _entropy_line(ref: dict) -> str:
    return ", ".join(f"{name} {row['entropy_bits']:.3f} bit" for name, row in ref.items())


def _state_line(entry: dict) -> str:
    peaks = " ".join(f"{row['best_fraction']:.2f}" for row in entry["states"])
    o = entry["oracle"]
    return (
        f"state peaks {peaks}; oracle {o['oracle_radius_utility']:.3f} vs fixed {o['best_fixed_utility']:.3f} "
        f"(r = {o['best_fixed_fraction']:.2f} r_max)"
    )


def _server_line(servers: dict) -> str:
    return ", ".join(f"{name} {row['latency_s']:.1f} s" for name, row in servers.items())


def write_results(path: Path, data: dict) -> None:
    io.atomic_write_json(path, data)


# ------------------------------------------------------------------------------------------- report
def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def report(data: dict) -> str:
    """The markdown tables of docs/cross_reality_privacy.md ("v0 -> v1") from calibration.json."""
    fractions = data["study"]["radius_fractions"]
    lines = ["Attempts ((a)-(d); utility (17) per AV-slot):", ""]
    lines += [
        "| attempt | sigma_P (m) | E zero (bit) | E Geo-I (bit) | best fixed r / r_max | its utility | above ends "
        "| per-state best r / r_max (offset bins) | oracle over r: gain | oracle over r x angle | random - greedy "
        "server (s) | checks |",
        "|---" * 12 + "|",
    ]
    for name, a in data["attempts"].items():
        ref, fixed, servers = a["references"], a["fixed_radius_peak"], a["servers"]
        sigma = a.get("defaults", {}).get("prior_std_m", a["params"].get("prior_std_m"))
        states = " / ".join(_fmt(row["best_fraction"], 1) for row in a.get("states", [])) or "–"
        oracle = a.get("oracle", {})
        gain, full = oracle.get("oracle_radius_gain"), oracle.get("oracle_radius_angle_utility")
        extra = servers["random"]["latency_s"] - servers["greedy"]["latency_s"]
        failed = [k for k, ok in a.get("checks", {}).items() if not ok]
        verdict = ("fails " + ", ".join(failed)) if failed else ("passes" if "checks" in a else "–")
        lines.append(
            f"| {name} | {_fmt(sigma, 1) if isinstance(sigma, float) else '–'} | "
            f"{_fmt(ref['zero_perturbation']['entropy_bits'])} | {_fmt(ref['geo_i']['entropy_bits'])} | "
            f"{fixed['best_fraction']:.1f} | {fixed['best_utility']:.3f} | {fixed['above_ends']:.3f} | {states} | "
            f"{_fmt(gain)} | {_fmt(full)} | {extra:.1f} | {verdict} |"
        )
    lines += [
        "",
        "Prior-width fit (lattice spacing and window of v1):",
        "",
        "| sigma_P (m) | E zero (bit) | E Geo-I (bit) |",
    ]
    lines.append("|---|---|---|")
    for row in data["prior_fit"]["rows"]:
        lines.append(f"| {row['prior_std_m']:.0f} | {row['zero_perturbation']:.3f} | {row['geo_i']:.3f} |")
    lines += ["", f"fitted: sigma_P = {data['prior_fit']['fitted_prior_std_m']} m", ""]
    v1 = data["attempts"].get("v1")
    if v1:
        lines += ["Utility (17) against the radius, v1 (one-slot, angle-averaged, states of Geo-I):", ""]
        lines += ["| offset |l_pred - l| (m) | share | " + " | ".join(f"{f:.1f}" for f in fractions) + " | best |"]
        lines.append("|---" * (len(fractions) + 3) + "|")
        for row in v1["states"]:
            low, high = row["offset_m"]
            span = f"{low:.0f}-{high:.0f}" if high is not None else f">= {low:.0f}"
            cells = " | ".join(_fmt(x, 2) for x in row["curve"]) if row["curve"] else " | ".join("–" for _ in fractions)
            lines.append(f"| {span} | {row['share']:.2f} | {cells} | {_fmt(row['best_fraction'], 1)} |")
        lines += ["", "The fixed-radius rule over whole episodes (uniform angle, greedy server):", ""]
        lines += ["| | " + " | ".join(f"{f:.1f}" for f in fractions) + " |", "|---" * (len(fractions) + 1) + "|"]
        for name in ("v0", "v1"):
            rule = data["attempts"][name]["fixed_radius_rule"]
            lines.append(f"| {name} utility | " + " | ".join(f"{x:.3f}" for x in rule["utility"]) + " |")
            lines.append(f"| {name} entropy (bit) | " + " | ".join(f"{x:.2f}" for x in rule["entropy_bits"]) + " |")
    lines += ["", "Server rules under Geo-I's perturbation (latency per AV-slot, s):", ""]
    lines += ["| | greedy | random | connected | satellite |", "|---|---|---|---|---|"]
    for name in ("v0", "v1"):
        if name in data["attempts"]:
            servers = data["attempts"][name]["servers"]
            cells = " | ".join(f"{servers[r]['latency_s']:.1f}" for r in ("greedy", "random", "connected", "satellite"))
            lines.append(f"| {name} | {cells} |")
    for n, servers in data.get("rsu_scan", {}).items():
        lines.append(
            f"| v1, N = {n} | {servers['greedy']['latency_s']:.1f} | {servers['random']['latency_s']:.1f} | | |"
        )
    lines += ["", f"{data['command']}; {data['machine']}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("calibrate", "report"), default="calibrate")
    parser.add_argument("--worlds", type=int, default=StudyConfig.worlds)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.command == "report":
        print(report(json.loads((args.out / "calibration.json").read_text())))
        return 0
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m baselines.cross_reality_privacy_v1_study", *argv])
    calibrate(args.out, StudyConfig(worlds=args.worlds), command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
