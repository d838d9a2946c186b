"""CrossRealityPrivacy-v0: cross-reality location privacy of AVs with migrating AI agents (spec 000, LHDPPO).

Every slot each autonomous vehicle (AV, one agent) reports a perturbed location to location-based services
(continuous action: radius r and angle theta, eqs. 1-2) and picks the edge server that hosts its AI agent
(discrete action: one of N RSUs or the LEO satellite S, §2.4). Colluding adversaries see the reported location
and the agent server and run a Bayesian inference over candidate positions (eqs. 3-5); the AV trades the
entropy of that posterior against service latency (eqs. 8-15) and QoS loss (eq. 16).

    observation  eq. (19), §4.1   `observation`      per AV: position, heading (sin, cos), connected server,
                                                     previous agent server (normalised), flags k = S, e^{t-1} = S
    action       §4.2, §9-B6      `parse_action`     {"target": int32 [M] in 0..N (N = satellite),
                                                      "perturbation": float32 [M, 2] raw (u_r, u_theta)}
                                                     mapped by `perturbation_from_raw` to r in [0, r_max] deg,
                                                     theta in [0, 2 pi) rad
    privacy      eqs. (2)-(5)     `location_entropy` adversary posterior over K candidate points, entropy in bits;
                                  `mobility_prior_entropy` for the routine-mobility adversary (v1)
    latency      eqs. (8)-(15)    `slot_outcome`     uplink + backhaul + downlink + migration + computation (s)
    QoS, utility eqs. (16)-(17)   `slot_outcome`     Q = ln(1 + d(l, l~)), u = w_E E - w_L L - w_Q Q
    reward       eqs. (20)-(21)   `step_env`         per-AV summand of eq. (21) (reward="llm", default) or of
                                                     eq. (20) (reward="manual"); their means over AVs in info
    transition   §4.4, §6.1       `step_env`         trajectories replayed from `EnvParams.trace_bank`, else
                                                     synthetic Manhattan-grid mobility (`vmjax.mobility`);
                                                     handover with hysteresis; per-slot draws D^up, D^down, phi_back

Coordinates (spec §0.3, §10): every position (trajectories, RSUs, the satellite's ground point) is float32 metres
east/north of the map origin, the south-west corner `origin_lonlat_deg` of the map. For eqs. (2)-(7), (16) and
(21) they are turned into degree offsets (d lon, d lat) from that origin by the spherical equirectangular
projection on the same sphere (`net.xy_to_latlon_offset_deg`); the perturbation adds degrees to those offsets
as eq. (2) adds them to lon / lat, and distances are haversines of offsets (`net.haversine_distance_m` with the
origin latitude), so float32 keeps sub-millimetre precision.

CrossRealityPrivacy-v1 (`CrossRealityPrivacyV1Config`) switches to an adversary that knows routine mobility (a lattice
window around the report, a Gaussian prior around the position dead-reckoned from the AV's previous reports, carried
in the state; likelihood in metres), 160 RSUs and the satellite relay, and observes the adversary
(docs/cross_reality_privacy.md, "v0 -> v1").

Units: bits, seconds, metres, hertz, watts; perturbation radius in degrees, angles in radians; entropy in bits.
Tags: [P] paper, [R] spec recommendation, [C] chosen here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmjax import mobility, net
from vmjax.core import fastrand, spaces, validation
from vmjax.core.env import Environment, is_concrete, materialize, traced_once

MB = net.BITS_PER_MEGABYTE  # 1 MB = 8e6 bit [R §0.3, A14]


# ====================================================================== configuration (static)
@dataclasses.dataclass(frozen=True)
class CrossRealityPrivacyConfig:
    """Static configuration: sizes and the spec's switches (§9-A), defaults = the spec's recommendations."""

    num_vehicles: int = 5  # M [P]
    num_rsus: int = 20  # N [R A2]
    max_steps: int = 50  # T slots per episode, time-limit truncation only [R A5]
    candidate_grid: int = 3  # odd g: the adversary's g x g candidate grid (adversary="grid") or lattice window
    # ("mobility_prior"), K = g^2 [R §2.5]
    hop_neighbours: int = 4  # RSU graph: each RSU joined to its 4 nearest, symmetrised, BFS hops [R A8]
    map_extent_m: tuple[float, float] = (19_000.0, 22_000.0)  # ~0.2 deg x 0.2 deg at 31.2 N [R §6.1]
    core_extent_m: tuple[float, float] = (10_000.0, 12_500.0)  # urban core holding the RSUs [R §6.1]
    origin_lonlat_deg: tuple[float, float] = (121.35, 31.13)  # map origin = south-west corner [R §6.1]
    distance: Literal["haversine", "paper"] = "haversine"  # eqs. (6)-(7), (16): "haversine" (standard) [R A4] | "paper"
    # (as printed)
    rate_link: Literal["connected", "agent"] = "connected"  # which AV-server distance sets R^up / R^down: "connected" k
    # [R A1] | "agent" e
    noise: net.NoiseModel = "density_x_bandwidth"  # noise power N0 B (-104 dBm) [R A6] | "density" (N0 used as watts)
    handover: Literal["hysteresis", "nearest"] = "hysteresis"  # stay on the RSU while in range [R A2] | "nearest"
    # (nearest in range each slot)
    reward: Literal["llm", "manual"] = "llm"  # eq. (21) [P LHDPPO] | "manual": eq. (20) (HDPPO and the baselines)
    alpha_gate: bool = False  # eq. (21) bonus w5 alpha literal [R B2] | gated as w5 alpha r / r_max
    rayleigh_fading: bool = False  # h multiplied by |g|^2 ~ Exp(1) per AV and slot [R A12 option]
    action_squash: Literal["clip", "tanh"] = "clip"  # raw -> (r, theta): "clip" then affine [R B6] | "tanh" then affine
    adversary: Literal["grid", "mobility_prior"] = "grid"  # eqs. (3)-(5): "grid" = the §2.5 [R] model (candidates
    # centred on the true location, uniform prior, likelihood in degrees) | "mobility_prior": the routine-mobility
    # adversary of §2.1 (`mobility_prior_entropy`: a map-anchored lattice window around the report, a Gaussian
    # prior around the position dead-reckoned from the AV's previous reports, likelihood in metres)
    satellite_relay: bool = False  # an agent on the satellite S while connected to an RSU: the RSU relays D^up and
    # D^down over the satellite link (D^up / R^up_sat + D^down / R^down_sat, in backhaul_s) | False: free, as [R A7]
    observe_adversary: bool = False  # append the adversary's dead-reckoned prediction offset (in prior widths) and
    # the AV's position in its lattice cell to the observation (needs adversary="mobility_prior")
    agent_server: Literal["action", "connected"] = "action"  # the agent server e: the action's target [P] |
    # "connected": the AV's connected server k (RSU or satellite), the action's target ignored (a study ablation that
    # leaves only the perturbation to learn; docs/cross_reality_privacy.md, "Longer budgets")
    slot_s: float = 60.0  # Delta t of the mobility [R A5]
    mobility_substeps: int = 4  # sub-steps per slot of the synthetic mobility
    trace_bank: str = ""  # a trace bank .npz (`vmjax traces sumo --out`, or a run's trace_bank.npz) replayed
    # instead of the built-in mobility: resampled to the slot, centred on the map (vmjax.mobility.load_trace_bank);
    # "" = none

    def __post_init__(self):
        owner = "CrossRealityPrivacyConfig"
        validation.check_str(owner, "trace_bank", self.trace_bank)
        validation.check_int_at_least(owner, "num_vehicles", self.num_vehicles, 1)
        validation.check_int_at_least(owner, "num_rsus", self.num_rsus, 2)
        validation.check_int_at_least(owner, "max_steps", self.max_steps, 1)
        validation.check_int_at_least(owner, "candidate_grid", self.candidate_grid, 1)
        if self.candidate_grid % 2 != 1:
            raise ValueError(f"{owner}.candidate_grid must be odd (centred on the AV), got {self.candidate_grid}")
        validation.check_int_at_least(owner, "hop_neighbours", self.hop_neighbours, 1)
        if self.hop_neighbours >= self.num_rsus:
            raise ValueError(f"{owner}.hop_neighbours must be < num_rsus={self.num_rsus}, got {self.hop_neighbours}")
        validation.check_int_at_least(owner, "mobility_substeps", self.mobility_substeps, 1)
        for name in ("map_extent_m", "core_extent_m", "origin_lonlat_deg"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != 2:
                raise ValueError(f"{owner}.{name} must be a tuple of 2 floats, got {value!r}")
            validation.check_finite(owner, name, value)
        validation.check_positive(owner, "map_extent_m", self.map_extent_m)
        validation.check_positive(owner, "core_extent_m", self.core_extent_m)
        if any(c > m for c, m in zip(self.core_extent_m, self.map_extent_m)):
            raise ValueError(
                f"{owner}.core_extent_m must fit in map_extent_m {self.map_extent_m}, got {self.core_extent_m}"
            )
        validation.check_positive(owner, "slot_s", self.slot_s)
        validation.check_literal_fields(self)
        validation.check_bool_fields(self)
        if self.observe_adversary and self.adversary != "mobility_prior":
            raise ValueError(f"{owner}.observe_adversary needs adversary='mobility_prior', got {self.adversary!r}")

    @property
    def origin_lat_deg(self) -> float:
        return float(self.origin_lonlat_deg[1])

    @property
    def haversine_variant(self) -> str:
        return "standard" if self.distance == "haversine" else "printed"


@dataclasses.dataclass(frozen=True)
class CrossRealityPrivacyV1Config(CrossRealityPrivacyConfig):
    """CrossRealityPrivacy-v1: v0 with an adversary that knows routine mobility and a server choice worth tens of
    seconds (the reasons, measured, are in docs/cross_reality_privacy.md, "v0 -> v1")."""

    num_rsus: int = 160  # N: a base-station density of ~1.3 per km^2 in the 10 x 12.5 km urban core (v0: 20)
    candidate_grid: int = 5  # the adversary's 5 x 5 lattice window: holds the cell of every location within r_max
    # (= 2 delta) of the report
    adversary: Literal["grid", "mobility_prior"] = "mobility_prior"  # the routine-mobility adversary (§2.1)
    satellite_relay: bool = True  # an agent on S costs the RSU -> satellite relay of D^up, D^down
    observe_adversary: bool = True  # + the dead-reckoned prediction offset and the lattice cell position


# ====================================================================== parameters (pytree, vmappable)
@struct.dataclass
class EnvParams:
    """Every constant of spec 000 §6.2 [P] and the adversary / reward constants [R] in SI units; per-episode and
    per-slot draws come from [low, high] ranges (set low == high to fix one value)."""

    rsu_xy_m: jax.Array  # [N, 2] RSU positions, metres from the map origin
    satellite_xy_m: jax.Array  # [2] the satellite's ground ("nadir") point at the map boundary [R A11]
    rsu_hops: jax.Array  # [N, N] int32 H(k, e) [R A8]
    mobility: mobility.MobilityParams  # synthetic mobility (used when trace_bank is None)
    trace_bank: mobility.Trace | None = None  # [T_bank >= T + 1, N_bank >= M, 2] replayed trajectories
    # channel, eqs. (8)-(10) [P §6.2]
    gain_coeff: float = 4.11  # A (linear)
    carrier_hz: float = 915e6  # f_c
    path_loss_exponent: float = 2.8  # xi
    uplink_bandwidth_hz: float = 10e6  # B^up
    downlink_bandwidth_hz: float = 10e6  # B^down
    av_tx_power_w: float = 0.01  # p_m = 10 dBm
    rsu_tx_power_w: float = 19.952623  # p_n = 43 dBm
    noise_density_dbm_per_hz: float = -174.0  # N0
    min_distance_m: float = 1.0  # h is evaluated at max(d, d_min) (h -> inf at d = 0) [C]
    sat_uplink_bps: float = 20e6  # R^up_sat
    sat_downlink_bps: float = 100e6  # R^down_sat
    # backhaul, migration, computation, eqs. (11)-(14) [P §6.2]
    wired_bps: float = 1e9  # R_N
    backhaul_per_hop_low_s: float = 1.0  # phi_back ~ U[1, 3] s/hop per slot [R A9]
    backhaul_per_hop_high_s: float = 3.0
    migration_per_hop_s: float = 0.02  # phi_mig
    up_bits_low: float = 10 * MB  # D^up ~ U[10, 20] MB per AV per slot
    up_bits_high: float = 20 * MB
    down_bits_low: float = 10 * MB  # D^down ~ U[10, 20] MB per AV per slot
    down_bits_high: float = 20 * MB
    model_bits_low: float = 5 * MB  # S_m ~ U[5, 50] MB per AV per episode
    model_bits_high: float = 50 * MB
    cycles_per_bit_low: float = 100.0  # c^cpu_m ~ U[100, 500] per AV per episode
    cycles_per_bit_high: float = 500.0
    rsu_cpu_low_hz: float = 5e9  # f_n ~ U[5, 20] GHz per RSU per episode
    rsu_cpu_high_hz: float = 20e9
    sat_cpu_hz: float = 50e9  # f_sat
    task_ratio: float = 0.1  # iota: D^task = iota D^up
    # geometry, perturbation and adversary, eqs. (1)-(7) [P] / §2.5 [R]
    earth_radius_m: float = net.EARTH_RADIUS_M  # R
    coverage_radius_m: float = 2000.0  # R_cov [R A2]
    r_max_deg: float = 0.001  # r_max
    candidate_spacing_ratio: float = 0.5  # delta = ratio r_max (degrees) [R §2.5]
    sigma_min_ratio: float = 0.05  # sigma = max(r, ratio r_max) [R §2.5]
    placement_temperature_m: float = 100.0  # tau of the distance softmax over RSUs [R §2.5]
    # the routine-mobility adversary (adversary="mobility_prior"; calibrated on zero perturbation and Geo-I,
    # docs/cross_reality_privacy.md "v0 -> v1")
    lattice_spacing_m: float = 55.6  # delta of its lattice, anchored to the map origin: the spec's r_max / 2 as
    # metres (55.597) [R §2.5]
    prior_std_m: float = 50.0  # sigma_P of its Gaussian prior around the dead-reckoned position: fitted [C]
    # utility, eq. (17) [P]
    w_entropy: float = 1.0  # omega_E per bit
    w_latency_per_s: float = 0.02  # omega_L
    w_qos: float = 0.2  # omega_Q
    # LLM-designed reward, eq. (21) [R B1 starting values]
    w1_entropy: float = 1.0
    w2_log_latency: float = 1.0
    w3_qos_normalised: float = 0.5
    w4_log_server_distance: float = 0.1  # on ln(1 + d_{m,e} / m)
    w5_angle_per_rad: float = 0.1


_POSITIVE_FIELDS = (
    "gain_coeff",
    "carrier_hz",
    "path_loss_exponent",
    "uplink_bandwidth_hz",
    "downlink_bandwidth_hz",
    "av_tx_power_w",
    "rsu_tx_power_w",
    "min_distance_m",
    "sat_uplink_bps",
    "sat_downlink_bps",
    "wired_bps",
    "up_bits_low",
    "down_bits_low",
    "model_bits_low",
    "cycles_per_bit_low",
    "rsu_cpu_low_hz",
    "sat_cpu_hz",
    "task_ratio",
    "earth_radius_m",
    "coverage_radius_m",
    "r_max_deg",
    "candidate_spacing_ratio",
    "sigma_min_ratio",
    "placement_temperature_m",
    "lattice_spacing_m",
    "prior_std_m",
)
_NON_NEGATIVE_FIELDS = (
    "backhaul_per_hop_low_s",
    "migration_per_hop_s",
    "w_entropy",
    "w_latency_per_s",
    "w_qos",
    "w1_entropy",
    "w2_log_latency",
    "w3_qos_normalised",
    "w4_log_server_distance",
)
_FINITE_FIELDS = ("w5_angle_per_rad",)
_RANGES = (
    ("backhaul_per_hop_low_s", "backhaul_per_hop_high_s"),
    ("up_bits_low", "up_bits_high"),
    ("down_bits_low", "down_bits_high"),
    ("model_bits_low", "model_bits_high"),
    ("cycles_per_bit_low", "cycles_per_bit_high"),
    ("rsu_cpu_low_hz", "rsu_cpu_high_hz"),
)


# ====================================================================== state (pytree)
@struct.dataclass
class SlotDraws:
    """Slot t's random quantities, drawn one slot ahead so observations and heuristics may see them [R A9]."""

    up_bits: jax.Array  # [M] D^up_m(t)
    down_bits: jax.Array  # [M] D^down_m(t)
    backhaul_per_hop_s: jax.Array  # () phi_back^t, s/hop
    fading: jax.Array | None  # [M] |g|^2 of the rate-setting link, or None


@struct.dataclass
class EnvState:
    t: jax.Array  # () slot index within the episode, 0-based
    trace: mobility.Trace  # [T + 1, M, 2] this episode's trajectories (metres), headings [T + 1, M] or None
    connected: jax.Array  # [M] int32 k_m^t in 0..N (N = satellite), §2.1
    prev_agent: jax.Array  # [M] int32 e_m^{t-1} (= k_m^0 at reset, §2.1)
    model_bits: jax.Array  # [M] S_m
    cycles_per_bit: jax.Array  # [M] c^cpu_m
    rsu_cpu_hz: jax.Array  # [N] f_n
    draws: SlotDraws
    # the AV's reports the routine-mobility adversary dead-reckons from (adversary="mobility_prior", else None):
    # metres from the map origin [M, 2]; both l^0 at reset (the adversary knows where the AV starts)
    last_report_m: jax.Array | None = None  # l~^{t-1}
    previous_report_m: jax.Array | None = None  # l~^{t-2} (= l~^0 at t = 1: no velocity from one report)


# ====================================================================== geometry and the adversary
def to_offset_deg(xy_m, params: EnvParams, origin_lat_deg: float):
    """Metres from the map origin [..., 2] -> (d lon, d lat) degree offsets [..., 2] (spherical equirectangular
    projection on radius R, the exact inverse of `net.latlon_offset_to_xy_m`)."""
    dlat, dlon = net.xy_to_latlon_offset_deg(xy_m, origin_lat_deg, params.earth_radius_m)
    return jnp.stack([dlon, dlat], axis=-1)


def geo_distance_m(a_deg, b_deg, params: EnvParams, config: CrossRealityPrivacyConfig):
    """d(a, b) of eqs. (6)-(7) in metres between (d lon, d lat) offsets [..., 2] (broadcasting): the standard
    haversine (distance="haversine" [R A4]) or the formula as printed (distance="paper")."""
    return net.haversine_distance_m(
        a_deg[..., 1],
        a_deg[..., 0],
        b_deg[..., 1],
        b_deg[..., 0],
        params.earth_radius_m,
        config.haversine_variant,
        config.origin_lat_deg,
    )


def perturbation_from_raw(raw, r_max_deg, squash: str = "clip"):
    """Raw continuous action (u_r, u_theta) [..., 2] -> (r in [0, r_max] deg, theta in [0, 2 pi) rad) [R B6].

    squash="clip":  u <- clip(u, -1, 1); r = (u_r + 1) / 2 r_max, theta = (u_theta + 1) pi  (2 pi wraps to 0).
    squash="tanh":  u <- tanh(u), then the same affine map (smooth; a policy adds the tanh Jacobian itself).
    NaN raw values count as u = -1 (r = 0, theta = 0, i.e. no perturbation) inside jit [C].
    """
    raw = jnp.where(jnp.isnan(raw), -1.0, raw)
    u = jnp.clip(raw, -1.0, 1.0) if squash == "clip" else jnp.tanh(raw)
    radius = 0.5 * (u[..., 0] + 1.0) * r_max_deg
    theta = jnp.mod((u[..., 1] + 1.0) * math.pi, 2.0 * math.pi)
    return radius, theta


def raw_from_perturbation(radius_deg, theta_rad, r_max_deg, squash: str = "clip"):
    """The inverse of `perturbation_from_raw` for r in [0, r_max], theta in [0, 2 pi) (heuristics' actions)."""
    u_r = 2.0 * jnp.clip(jnp.asarray(radius_deg) / r_max_deg, 0.0, 1.0) - 1.0
    u_t = jnp.mod(jnp.asarray(theta_rad), 2.0 * math.pi) / math.pi - 1.0
    u = jnp.stack([u_r, u_t], axis=-1).astype(jnp.float32)
    return u if squash == "clip" else jnp.arctanh(jnp.clip(u, -1.0 + 1e-6, 1.0 - 1e-6))


def perturb(true_deg, radius_deg, theta_rad):
    """Eq. (2): l~ = (x + r cos theta, y + r sin theta), degrees added to (lon, lat) offsets [..., 2]."""
    return true_deg + jnp.stack([radius_deg * jnp.cos(theta_rad), radius_deg * jnp.sin(theta_rad)], axis=-1)


def candidate_points(true_deg, params: EnvParams, grid: int):
    """The adversary's candidate set P_m^t [R §2.5]: a g x g grid p = (x + i delta, y + j delta), i, j in
    {-(g-1)/2..(g-1)/2}, delta = candidate_spacing_ratio r_max (degrees). [..., K, 2], K = g^2, i-major."""
    half = (grid - 1) // 2
    steps = np.arange(-half, half + 1, dtype=np.float32)
    offsets = np.stack(np.meshgrid(steps, steps, indexing="ij"), axis=-1).reshape(-1, 2)  # [K, 2] (i, j)
    delta = params.candidate_spacing_ratio * params.r_max_deg
    return true_deg[..., None, :] + delta * jnp.asarray(offsets)


def placement_log_likelihood(cand_deg, agent, rsu_deg, params: EnvParams, config: CrossRealityPrivacyConfig):
    """log Pr(l^ = l_e | p_a) of eq. (4) [R §2.5] for candidates [M, K, 2] (degree offsets) and agent servers
    [M]: on RSU e the distance softmax over RSUs, -d(p_a, l_e)/tau - logsumexp_n(-d(p_a, l_n)/tau) with d in
    metres (eqs. 6-7); on the satellite 0 (uninformative). [M, K]."""
    n = rsu_deg.shape[0]
    dist = geo_distance_m(cand_deg[:, :, None, :], rsu_deg[None, None, :, :], params, config)  # [M, K, N]
    logits = -dist / params.placement_temperature_m
    log_softmax = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    on_rsu = agent < n
    log_lv = jnp.take_along_axis(log_softmax, jnp.minimum(agent, n - 1)[:, None, None], axis=-1)[..., 0]
    return jnp.where(on_rsu[:, None], log_lv, 0.0)


def entropy_bits(log_post):
    """Eq. (5): E = -sum_a Post(p_a) log2 Post(p_a) over the last axis, from a normalised log-posterior."""
    return -jnp.sum(jnp.exp(log_post) * log_post, axis=-1) / math.log(2.0)


def location_entropy(
    true_deg, reported_deg, radius_deg, agent, rsu_deg, params: EnvParams, config: CrossRealityPrivacyConfig
):
    """The adversary's posterior (eq. 4) and the cross-reality location entropy (eq. 5), vectorised over AVs
    and candidates (shapes: true_deg, reported_deg [M, 2]; radius_deg, agent [M]; rsu_deg [N, 2]).

    log Post(p_a) = log Lp + log Lv + log prior - logsumexp (eqs. 3-4, conditional independence) [R §2.5]:
      Lp: product of two 1-D Gaussians centred on p_a at the reported point, sigma = max(r, sigma_min):
          log Lp = -|l~ - p_a|^2 / (2 sigma^2)  (degrees; the normalising constants cancel);
      Lv: `placement_log_likelihood`;
      prior: uniform 1/K.
    Returns (entropy in bits [M], attacker confidence max_a Post [M], posterior [M, K]).
    """
    cand = candidate_points(true_deg, params, config.candidate_grid)  # [M, K, 2]
    sigma = jnp.maximum(radius_deg, params.sigma_min_ratio * params.r_max_deg)  # [M]
    diff = reported_deg[:, None, :] - cand
    log_lp = -(diff[..., 0] ** 2 + diff[..., 1] ** 2) / (2.0 * sigma[:, None] ** 2)  # [M, K]
    log_lv = placement_log_likelihood(cand, agent, rsu_deg, params, config)
    log_post = jax.nn.log_softmax(log_lp + log_lv, axis=-1)  # the uniform prior cancels
    post = jnp.exp(log_post)
    return entropy_bits(log_post), jnp.max(post, axis=-1), post


# ---------------------------------------------------------------------- the routine-mobility adversary (v1)
def offset_to_xy_m(offset_deg, params: EnvParams, origin_lat_deg: float):
    """(d lon, d lat) degree offsets [..., 2] -> metres east/north of the map origin [..., 2]: the local
    equirectangular projection `net.latlon_offset_to_xy_m` (the inverse of `to_offset_deg`)."""
    return net.latlon_offset_to_xy_m(offset_deg[..., 1], offset_deg[..., 0], origin_lat_deg, params.earth_radius_m)


def radius_m(radius_deg, params: EnvParams, origin_lat_deg: float):
    """A perturbation radius in degrees as metres: the north-south length of r degrees of latitude, R (pi/180) r
    (`net.latlon_offset_to_xy_m`; r_max = 0.001 deg -> 111.19 m)."""
    radius_deg = jnp.asarray(radius_deg, jnp.float32)
    return net.latlon_offset_to_xy_m(radius_deg, jnp.zeros_like(radius_deg), origin_lat_deg, params.earth_radius_m)[
        ..., 1
    ]


def dead_reckoned_m(last_report_m, previous_report_m):
    """The adversary's prediction of l^t by constant-velocity dead reckoning from the AV's last two reports
    (spec §2.5 prior option): l~^{t-1} + (l~^{t-1} - l~^{t-2}), metres [..., 2]."""
    return 2.0 * last_report_m - previous_report_m


def lattice_window_m(reported_m, spacing_m, window: int):
    """The candidate set of the routine-mobility adversary: the window x window points of the lattice
    delta (i, j) (i, j integers; anchored to the map origin, fixed in metres) centred on the lattice point
    nearest the report. reported_m [..., 2] -> [..., K, 2], K = window^2, i-major."""
    half = (window - 1) // 2
    steps = np.arange(-half, half + 1, dtype=np.float32)
    offsets = np.stack(np.meshgrid(steps, steps, indexing="ij"), axis=-1).reshape(-1, 2)  # [K, 2] (i, j)
    centre = jnp.round(reported_m / spacing_m)  # lattice indices of the nearest point
    return (centre[..., None, :] + jnp.asarray(offsets)) * spacing_m


def gaussian_log_kernel(x_m, mean_m, std_m):
    """log of an isotropic 2-D Gaussian density up to its constant: -|x - mean|^2 / (2 std^2), over the last axis
    (metres; broadcasting)."""
    d = x_m - mean_m
    return -(d[..., 0] ** 2 + d[..., 1] ** 2) / (2.0 * std_m**2)


def mobility_prior_log_posterior(cand_m, reported_m, predicted_m, sigma_m, prior_std_m, log_lv):
    """Eq. (4) over explicit candidates [M, K, 2] (metres): log_softmax_a(log Lp + log Lv + log prior) with
    log Lp = -|l~ - p_a|^2 / (2 sigma^2) (reported_m [M, 2], sigma_m [M]), log prior = -|p_a - l_pred|^2 /
    (2 sigma_P^2) (predicted_m [M, 2]) and log Lv [M, K] given. [M, K]."""
    log_lp = gaussian_log_kernel(reported_m[:, None, :], cand_m, jnp.asarray(sigma_m)[:, None])
    log_prior = gaussian_log_kernel(cand_m, predicted_m[:, None, :], prior_std_m)
    return jax.nn.log_softmax(log_lp + log_lv + log_prior, axis=-1)


def mobility_prior_entropy(
    true_m, reported_m, predicted_m, radius_deg, agent, rsu_deg, params: EnvParams, config: CrossRealityPrivacyConfig
):
    """Eqs. (3)-(5) for the adversary that knows routine mobility (spec §2.1 threat model, §2.5 prior option),
    everything in metres from the map origin (true_m, reported_m, predicted_m [M, 2]; radius_deg, agent [M];
    rsu_deg [N, 2] degree offsets):

      candidates  p_a: `lattice_window_m` around the report (g x g, g = candidate_grid, spacing delta);
      Lp          log Pr(l~ | p_a) = -|l~ - p_a|^2 / (2 sigma^2), sigma = max(r, sigma_min_ratio r_max) as metres
                  (`radius_m`): the adversary knows the perturbation intensity, as in §2.5;
      Lv          `placement_log_likelihood` (the agent server);
      prior       log Pr(p_a) = -|p_a - l_pred|^2 / (2 sigma_P^2), l_pred = `dead_reckoned_m` of the reports;
      posterior   log_softmax_a(log Lp + log Lv + log prior) (eq. 4), entropy eq. (5) in bits.

    Returns (entropy in bits [M], attacker confidence max_a Post [M], posterior [M, K], adversary error [M]:
    the distance in metres from the posterior mean to the true location)."""
    lat0 = config.origin_lat_deg
    cand_m = lattice_window_m(reported_m, params.lattice_spacing_m, config.candidate_grid)  # [M, K, 2]
    r_min_deg = params.sigma_min_ratio * params.r_max_deg
    sigma_m = radius_m(jnp.maximum(radius_deg, r_min_deg), params, lat0)  # [M]
    log_lv = placement_log_likelihood(to_offset_deg(cand_m, params, lat0), agent, rsu_deg, params, config)
    log_post = mobility_prior_log_posterior(cand_m, reported_m, predicted_m, sigma_m, params.prior_std_m, log_lv)
    post = jnp.exp(log_post)
    mean_m = jnp.sum(post[..., None] * cand_m, axis=-2)
    error_m = jnp.sqrt(jnp.sum((mean_m - true_m) ** 2, axis=-1))
    return entropy_bits(log_post), jnp.max(post, axis=-1), post, error_m


def qos_loss_max(params: EnvParams, config: CrossRealityPrivacyConfig):
    """Q_max = the QoS loss at r = r_max maximised over theta [R §2.10, A13]: ln(1 + R (pi/180) r_max) = 4.720
    for the haversine (north-south displacement), ln(1 + 2 R (pi/180) r_max) = 5.409 as printed (east-west,
    where the printed hav = sin^2(d lon) has no cosine factor and arcsin(sin x) = x)."""
    arc = params.earth_radius_m * (math.pi / 180.0) * params.r_max_deg
    return jnp.log1p(arc if config.distance == "haversine" else 2.0 * arc)


def included_angle_rad(true_deg, server_deg, theta_rad):
    """alpha of eq. (21) [R §4.3]: |wrap_(-pi, pi](theta - beta)| in [0, pi], beta = atan2(y^ - y, x^ - x) in the
    degree frame of eq. (2); 0 when the server sits on the AV."""
    d = server_deg - true_deg
    at_av = (d[..., 0] == 0.0) & (d[..., 1] == 0.0)
    beta = jnp.arctan2(jnp.where(at_av, 0.0, d[..., 1]), jnp.where(at_av, 1.0, d[..., 0]))
    wrapped = jnp.mod(theta_rad - beta + math.pi, 2.0 * math.pi) - math.pi
    return jnp.where(at_av, 0.0, jnp.abs(wrapped))


# ====================================================================== radio and latency
def server_offsets_deg(params: EnvParams, config: CrossRealityPrivacyConfig):
    """(d lon, d lat) of the N RSUs then the satellite's ground point: [N + 1, 2]."""
    xy = jnp.concatenate([params.rsu_xy_m, params.satellite_xy_m[None, :]], axis=0)
    return to_offset_deg(xy, params, config.origin_lat_deg)


def slot_outcome(
    true_deg,
    radius_deg,
    theta_rad,
    agent,
    connected,
    prev_agent,
    draws: SlotDraws,
    model_bits,
    cycles_per_bit,
    rsu_cpu_hz,
    params: EnvParams,
    config: CrossRealityPrivacyConfig,
    predicted_m=None,
):
    """Everything of one slot for the hybrid action (r, theta, e) given the true positions (offsets, [M, 2]),
    the connected servers k [M] and the previous agent servers e^{t-1} [M] (0..N-1 RSUs, N satellite);
    `predicted_m` [M, 2] is the routine-mobility adversary's dead-reckoned position (adversary="mobility_prior").
    Returns a dict of per-AV arrays [M] (eqs. 2-17, 21)."""
    n = params.rsu_xy_m.shape[0]
    servers = server_offsets_deg(params, config)  # [N + 1, 2]
    reported = perturb(true_deg, radius_deg, theta_rad)  # eq. (2)
    adversary = {}
    if config.adversary == "grid":
        entropy, confidence, _ = location_entropy(true_deg, reported, radius_deg, agent, servers[:n], params, config)
    else:
        lat0 = config.origin_lat_deg
        true_m, reported_m = offset_to_xy_m(true_deg, params, lat0), offset_to_xy_m(reported, params, lat0)
        entropy, confidence, _, error_m = mobility_prior_entropy(
            true_m, reported_m, predicted_m, radius_deg, agent, servers[:n], params, config
        )
        adversary = {
            "reported_m": reported_m,
            "adversary_error_m": error_m,
            "prediction_offset_m": jnp.sqrt(jnp.sum((predicted_m - true_m) ** 2, axis=-1)),
        }
    # communication, eqs. (8)-(12)
    k_rsu, e_rsu, prev_rsu = connected < n, agent < n, prev_agent < n
    k_i, e_i, prev_i = jnp.minimum(connected, n - 1), jnp.minimum(agent, n - 1), jnp.minimum(prev_agent, n - 1)
    link = connected if config.rate_link == "connected" else agent
    ground = k_rsu if config.rate_link == "connected" else k_rsu & e_rsu  # [R A1]: else satellite rates
    link_m = geo_distance_m(true_deg, servers[link], params, config)
    # eq. (8) and its downlink twin, R = B log2(1 + p h / (N0 B)), d clamped below at `min_distance_m` [C]
    rate_m = jnp.maximum(link_m, params.min_distance_m)
    fading = 1.0 if draws.fading is None else draws.fading
    channel = {
        "gain_coeff": params.gain_coeff,
        "carrier_hz": params.carrier_hz,
        "exponent": params.path_loss_exponent,
        "fading": fading,
    }
    noise_w = lambda bandwidth_hz: net.noise_power_from_density_w(
        params.noise_density_dbm_per_hz, bandwidth_hz, config.noise
    )
    up_bps = net.link_rate_bps(
        rate_m, params.uplink_bandwidth_hz, params.av_tx_power_w, noise_w(params.uplink_bandwidth_hz), **channel
    )
    down_bps = net.link_rate_bps(
        rate_m, params.downlink_bandwidth_hz, params.rsu_tx_power_w, noise_w(params.downlink_bandwidth_hz), **channel
    )
    up_bps = jnp.where(ground, up_bps, params.sat_uplink_bps)
    down_bps = jnp.where(ground, down_bps, params.sat_downlink_bps)
    uplink_s = net.transfer_latency_s(draws.up_bits, up_bps)  # eq. (9)
    downlink_s = net.transfer_latency_s(draws.down_bits, down_bps)  # eq. (10)
    backhaul_s = jnp.where(  # eq. (11), zero unless both are RSUs and differ [R A7]
        k_rsu & e_rsu & (connected != agent),
        net.backhaul_latency_s(
            draws.up_bits, draws.down_bits, params.wired_bps, draws.backhaul_per_hop_s, params.rsu_hops[k_i, e_i]
        ),
        0.0,
    )
    if config.satellite_relay and config.rate_link == "connected":  # the RSU k relays to the agent on S [C v1]
        relay_s = net.transfer_latency_s(draws.up_bits, params.sat_uplink_bps) + net.transfer_latency_s(
            draws.down_bits, params.sat_downlink_bps
        )
        backhaul_s = jnp.where(k_rsu & ~e_rsu, relay_s, backhaul_s)
    comm_s = uplink_s + backhaul_s + downlink_s  # eq. (12)
    # migration, eq. (13)
    migrated = agent != prev_agent
    rsu_to_rsu = net.hop_migration_latency_s(
        model_bits, params.wired_bps, params.migration_per_hop_s, params.rsu_hops[prev_i, e_i]
    )
    migration_s = jnp.where(
        ~migrated,
        0.0,
        jnp.where(
            e_rsu & prev_rsu,
            rsu_to_rsu,
            jnp.where(
                prev_rsu,
                net.transfer_latency_s(model_bits, params.sat_uplink_bps),
                net.transfer_latency_s(model_bits, params.sat_downlink_bps),
            ),
        ),
    )
    # computation, eq. (14), and the total, eq. (15)
    cpu_hz = jnp.where(e_rsu, rsu_cpu_hz[e_i], params.sat_cpu_hz)
    computation_s = net.compute_latency_s(0.0, cycles_per_bit * params.task_ratio * draws.up_bits, cpu_hz)
    latency_s = comm_s + migration_s + computation_s
    # QoS loss, eq. (16), and utility, eq. (17)
    perturbation_m = geo_distance_m(true_deg, reported, params, config)
    qos = jnp.log1p(perturbation_m)
    utility = params.w_entropy * entropy - params.w_latency_per_s * latency_s - params.w_qos * qos
    # LLM-designed reward summand, eq. (21)
    qos_norm = qos / qos_loss_max(params, config)
    server_m = geo_distance_m(true_deg, servers[agent], params, config)
    alpha = included_angle_rad(true_deg, servers[agent], theta_rad)
    bonus = alpha * (radius_deg / params.r_max_deg if config.alpha_gate else 1.0)
    reward_llm = (
        params.w1_entropy * entropy
        - params.w2_log_latency * jnp.log1p(latency_s)
        - params.w3_qos_normalised * qos_norm
        - params.w4_log_server_distance * jnp.log1p(server_m)
        + params.w5_angle_per_rad * bonus
    )
    return {
        "entropy_bits": entropy,
        "attacker_confidence": confidence,
        "reported_offset_deg": reported,
        "perturbation_m": perturbation_m,
        "radius_deg": radius_deg,
        "angle_rad": theta_rad,
        "link_distance_m": link_m,
        "uplink_bps": up_bps,
        "downlink_bps": down_bps,
        "uplink_s": uplink_s,
        "backhaul_s": backhaul_s,
        "downlink_s": downlink_s,
        "communication_s": comm_s,
        "migration_s": migration_s,
        "computation_s": computation_s,
        "latency_s": latency_s,
        "migrated": migrated,
        "qos_loss": qos,
        "qos_loss_normalised": qos_norm,
        "utility": utility,
        "server_distance_m": server_m,
        "alpha_rad": alpha,
        "reward_llm": reward_llm,
        **adversary,
    }


# ====================================================================== the environment
class CrossRealityPrivacy(Environment):
    """Spec 000 scenario; `CrossRealityPrivacy(**config)` or `vmjax.make("CrossRealityPrivacy-v0", **config)`."""

    params_class = EnvParams
    env_id = "CrossRealityPrivacy-v0"
    agent_role = "vehicle"
    config_class: type = CrossRealityPrivacyConfig

    def __init__(self, **config):
        self.config = validation.config_from_kwargs(self.config_class, self.env_id, config)
        c = self.config
        self.num_agents, self.num_rsus = c.num_vehicles, c.num_rsus
        self.num_servers = c.num_rsus + 1  # index N = the satellite
        self.obs_dim = 14 if c.observe_adversary else 10
        self.road_grid = mobility.urban_grid(c.map_extent_m, c.core_extent_m, 500.0, 2000.0, (3.0,))
        if c.trace_bank:
            self.default_params  # noqa: B018 - read the bank now: a bad file fails in make(), with the file named

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def default_params(self) -> EnvParams:
        c = self.config
        rsu = net.jittered_grid_rsu_positions(c.num_rsus, c.map_extent_m, c.core_extent_m)
        owner = f"{type(c).__name__}.trace_bank"
        bank = mobility.config_trace_bank(
            c.trace_bank, c.slot_s, c.map_extent_m, c.max_steps + 1, c.num_vehicles, owner
        )
        return EnvParams(
            rsu_xy_m=jnp.asarray(rsu),
            satellite_xy_m=jnp.zeros(2, jnp.float32),  # the south-west map corner, in the remote ring [R A11]
            rsu_hops=jnp.asarray(net.knn_hop_counts(rsu, c.hop_neighbours)),
            # speeds within U[0, 60] km/h [R §6.1]
            mobility=mobility.MobilityParams(
                mean_speed_core_mps=8.0, mean_speed_outskirts_mps=12.0, max_speed_mps=16.67
            ),
            trace_bank=bank,
        )

    def validate_params(self, params: EnvParams) -> None:
        owner, c, n = "EnvParams", self.config, self.config.num_rsus
        validation.check_fields(
            owner,
            params,
            positive=_POSITIVE_FIELDS,
            non_negative=_NON_NEGATIVE_FIELDS,
            finite=_FINITE_FIELDS,
            ranges=_RANGES,
        )
        validation.check_noise_density(owner, "noise_density_dbm_per_hz", params.noise_density_dbm_per_hz)
        validation.check_shape(owner, "rsu_xy_m", params.rsu_xy_m, (n, 2))
        validation.check_finite(owner, "rsu_xy_m", params.rsu_xy_m)
        validation.check_shape(owner, "satellite_xy_m", params.satellite_xy_m, (2,))
        validation.check_finite(owner, "satellite_xy_m", params.satellite_xy_m)
        validation.check_shape(owner, "rsu_hops", params.rsu_hops, (n, n))
        dtype = jnp.asarray(params.rsu_hops).dtype
        if not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(f"{owner}.rsu_hops must be integer hop counts, got dtype {dtype}")
        hops = np.asarray(params.rsu_hops) if is_concrete(params.rsu_hops) else None
        off = ~np.eye(n, dtype=bool)
        if hops is not None and (np.any(np.diag(hops) != 0) or np.any(hops[off] < 1)):
            raise ValueError(f"{owner}.rsu_hops must be 0 on the diagonal and >= 1 elsewhere (a connected RSU graph)")
        mobility.validate_params(params.mobility)
        mobility.check_trace_bank(owner, params.trace_bank, c.max_steps + 1, c.num_vehicles)

    # ------------------------------------------------------------------ spaces
    def action_space(self, params=None) -> spaces.Dict:
        """{"target": the agent server e in 0..N (N = satellite), "perturbation": raw (u_r, u_theta)} [§4.2]."""
        m = self.num_agents
        bound = 1.0 if self.config.action_squash == "clip" else np.inf
        return spaces.Dict(
            {
                "target": spaces.Discrete(self.num_servers, shape=(m,)),
                "perturbation": spaces.Box(-bound, bound, (m, 2)),
            }
        )

    def observation_space(self, params=None) -> spaces.Box:
        high = np.full((self.num_agents, self.obs_dim), np.inf, np.float32)
        high[:, 2:4] = 1.0
        high[:, 8:10] = 1.0
        high[:, 12:14] = 0.5  # the position in the lattice cell (observe_adversary)
        low = -high
        low[:, 8:10] = 0.0
        return spaces.Box(low, high, (self.num_agents, self.obs_dim))

    # ------------------------------------------------------------------ reset
    @traced_once
    def reset_env(self, key, params: EnvParams):
        c, m, n = self.config, self.num_agents, self.num_rsus
        k_traj, k_start, k_model, k_cpu, k_f, k_draw = jax.random.split(key, 6)
        if params.trace_bank is None:
            trace = mobility.generate_trajectories(
                k_traj, self.road_grid, params.mobility, m, c.max_steps + 1, c.slot_s, c.mobility_substeps
            )
        else:  # M distinct rows of the bank, a common random start slot [R A5]
            bank = params.trace_bank
            rows = jnp.argsort(fastrand.uniform(k_traj, (bank.positions_m.shape[1],)))[:m]
            start = fastrand.randint(k_start, (), 0, bank.positions_m.shape[0] - c.max_steps)
            window = lambda a: jax.lax.dynamic_slice_in_dim(a[:, rows], start, c.max_steps + 1, axis=0)
            headings = None if bank.headings_rad is None else window(bank.headings_rad)
            trace = mobility.Trace(positions_m=window(bank.positions_m), headings_rad=headings)
        connected = self.connect(trace.position_at(0), jnp.full((m,), n, jnp.int32), params)
        state = EnvState(
            t=jnp.int32(0),
            trace=trace,
            connected=connected,
            prev_agent=connected,  # e^0 = k^0 (§2.1)
            model_bits=fastrand.uniform(k_model, (m,), params.model_bits_low, params.model_bits_high),
            cycles_per_bit=fastrand.uniform(k_cpu, (m,), params.cycles_per_bit_low, params.cycles_per_bit_high),
            rsu_cpu_hz=fastrand.uniform(k_f, (n,), params.rsu_cpu_low_hz, params.rsu_cpu_high_hz),
            draws=self.sample_slot_draws(k_draw, params),
        )
        if c.adversary == "mobility_prior":  # the adversary knows where the AV starts (its routine)
            start_m = trace.position_at(0)
            state = state.replace(last_report_m=start_m, previous_report_m=start_m)
        return self.observation(state, params), state

    def sample_slot_draws(self, key, params: EnvParams) -> SlotDraws:
        """D^up, D^down per AV and phi_back per slot, uniform over the §6.2 ranges [R A9]; the optional fading."""
        m = self.num_agents
        return SlotDraws(
            up_bits=fastrand.uniform(key, (m,), params.up_bits_low, params.up_bits_high, stream=0),
            down_bits=fastrand.uniform(key, (m,), params.down_bits_low, params.down_bits_high, stream=1),
            backhaul_per_hop_s=fastrand.uniform(
                key, (), params.backhaul_per_hop_low_s, params.backhaul_per_hop_high_s, stream=2
            ),
            fading=net.rayleigh_power_gain(key, (m,), stream=3) if self.config.rayleigh_fading else None,
        )

    # ------------------------------------------------------------------ geometry helpers
    def offsets_deg(self, xy_m, params: EnvParams):
        """Metres from the map origin -> (d lon, d lat) degree offsets (see the module docstring)."""
        return to_offset_deg(xy_m, params, self.config.origin_lat_deg)

    def rsu_distances_m(self, position_m, params: EnvParams):
        """d(AV, RSU n) of eqs. (6)-(7) in metres, [M, N]."""
        return geo_distance_m(
            self.offsets_deg(position_m, params)[:, None, :],
            self.offsets_deg(params.rsu_xy_m, params)[None],
            params,
            self.config,
        )

    def connect(self, position_m, previous, params: EnvParams):
        """k_m^t (§2.1, [R A2]): with handover="hysteresis" stay on the previous RSU while it is within R_cov,
        else the nearest RSU if within R_cov, else the satellite N; "nearest" drops the stay rule."""
        n = self.num_rsus
        d = self.rsu_distances_m(position_m, params)
        in_range = d <= params.coverage_radius_m
        nearest = jnp.argmin(d, axis=-1).astype(jnp.int32)
        rows = jnp.arange(d.shape[0])
        target = jnp.where(in_range[rows, nearest], nearest, n)
        if self.config.handover == "hysteresis":
            stay = (previous < n) & in_range[rows, jnp.minimum(previous, n - 1)]
            target = jnp.where(stay, previous, target)
        return target.astype(jnp.int32)

    def heading_rad(self, state: EnvState):
        """theta-dot_m^t [R A10]: the trace's heading, else the bearing of the last displacement (the next one
        at t = 0)."""
        if state.trace.headings_rad is not None:
            return jax.lax.dynamic_index_in_dim(state.trace.headings_rad, state.t, axis=0, keepdims=False)
        prev = state.trace.position_at(jnp.maximum(state.t - 1, 0))
        nxt = state.trace.position_at(jnp.maximum(state.t, 1))
        d = nxt - prev
        return jnp.arctan2(d[:, 1], d[:, 0])

    def server_xy_m(self, params: EnvParams):
        """RSUs then the satellite's ground point, metres [N + 1, 2]."""
        return jnp.concatenate([params.rsu_xy_m, params.satellite_xy_m[None]], axis=0)

    # ------------------------------------------------------------------ what the agent sees
    def observation(self, state: EnvState, params: EnvParams) -> jax.Array:
        """s_m^t, eq. (19) [R §4.1]: [x, y, sin theta-dot, cos theta-dot, x_k, y_k, x^_{t-1}, y^_{t-1},
        1(k = S), 1(e^{t-1} = S)], coordinates as (p - centre) / half extent (the satellite at its ground
        point). [M, 10]."""
        n = self.num_rsus
        centre = 0.5 * jnp.asarray(self.config.map_extent_m, jnp.float32)
        norm = lambda xy: (xy - centre) / centre
        servers = self.server_xy_m(params)
        heading = self.heading_rad(state)
        parts = [
            norm(state.trace.position_at(state.t)),
            jnp.sin(heading)[:, None],
            jnp.cos(heading)[:, None],
            norm(servers[state.connected]),
            norm(servers[state.prev_agent]),
            (state.connected == n).astype(jnp.float32)[:, None],
            (state.prev_agent == n).astype(jnp.float32)[:, None],
        ]
        if self.config.observe_adversary:
            parts += list(self.adversary_features(state, params))
        return jnp.concatenate(parts, axis=-1).astype(jnp.float32)

    def predicted_m(self, state: EnvState):
        """The routine-mobility adversary's dead-reckoned position of every AV this slot, metres [M, 2]."""
        return dead_reckoned_m(state.last_report_m, state.previous_report_m)

    def adversary_features(self, state: EnvState, params: EnvParams):
        """What an AV can know of the routine-mobility adversary (observe_adversary): its dead-reckoned prediction
        offset (l_pred - l) / sigma_P [M, 2], and the AV's true position in its lattice cell, l / delta - round(l /
        delta) in [-0.5, 0.5]^2 [M, 2] (the report's cell follows from it and the action)."""
        position_m = state.trace.position_at(state.t)
        cell = position_m / params.lattice_spacing_m
        return (self.predicted_m(state) - position_m) / params.prior_std_m, cell - jnp.round(cell)

    def world_state(self, state: EnvState, params: EnvParams) -> jax.Array:
        """s_t = {s_m^t} (§4.1, one centralised critic): every AV's observation plus the AV's one-hot id."""
        return self.world_state_from_observation(self.observation(state, params))

    # ------------------------------------------------------------------ action
    def parse_action(self, action, params: EnvParams) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(agent server e [M] int32, r [M] deg, theta [M] rad) from {"target", "perturbation"}, checked by
        `check_action`; inside jit, ids are clipped into range and NaN raw values count as -1 (no perturbation)."""
        self.check_action(action)
        target, raw = jnp.asarray(action["target"]), jnp.asarray(action["perturbation"])
        radius, theta = perturbation_from_raw(raw, params.r_max_deg, self.config.action_squash)
        return jnp.clip(target, 0, self.num_servers - 1).astype(jnp.int32), radius, theta

    def check_action(self, action) -> None:
        """A {"target": [M] int, "perturbation": [M, 2] float} action: keys, shapes and dtypes are checked in Python
        (ValueError naming the field, at trace time); for a concrete (non-traced) action NaN perturbations and
        server ids outside 0..N also raise."""
        m, s = self.num_agents, self.num_servers
        if not isinstance(action, Mapping) or set(action) != {"target", "perturbation"}:
            got = sorted(action) if isinstance(action, Mapping) else type(action).__name__
            raise ValueError(f"action must be a dict with keys ['perturbation', 'target'], got {got}")
        target, raw = jnp.asarray(action["target"]), jnp.asarray(action["perturbation"])
        if target.shape != (m,):
            raise ValueError(f"action['target'] must have shape ({m},) (one agent server per AV), got {target.shape}")
        if not jnp.issubdtype(target.dtype, jnp.integer):
            raise ValueError(f"action['target'] must be integer server indices, got dtype {target.dtype}")
        if raw.shape != (m, 2):
            raise ValueError(
                f"action['perturbation'] must have shape ({m}, 2) (raw radius, angle per AV), got {raw.shape}"
            )
        if not jnp.issubdtype(raw.dtype, jnp.floating):
            raise ValueError(f"action['perturbation'] must be floating point, got dtype {raw.dtype}")
        if is_concrete(target):
            bad = np.flatnonzero((np.asarray(target) < 0) | (np.asarray(target) >= s))
            if bad.size:
                raise ValueError(
                    f"action['target'] must be server ids in [0, {s - 1}] (N = {s - 1} is the satellite), "
                    f"got {np.asarray(target).tolist()}"
                )
        if is_concrete(raw) and np.isnan(np.asarray(raw)).any():
            raise ValueError(f"action['perturbation'] must not be NaN, got {np.asarray(raw).tolist()}")

    # ------------------------------------------------------------------ transition and reward
    def outcome(self, state: EnvState, action, params: EnvParams) -> dict:
        """The slot's per-AV metrics (eqs. 2-17, 21) for a parsed or raw action, without advancing the state."""
        agent, radius, theta = self.parse_action(action, params)
        if self.config.agent_server == "connected":
            agent = state.connected
        predicted = self.predicted_m(state) if self.config.adversary == "mobility_prior" else None
        true_deg = materialize(
            self.offsets_deg(state.trace.position_at(state.t), params)
        )  # computed once: reported - true is exactly 0 at r = 0
        out = slot_outcome(
            true_deg,
            radius,
            theta,
            agent,
            state.connected,
            state.prev_agent,
            state.draws,
            state.model_bits,
            state.cycles_per_bit,
            state.rsu_cpu_hz,
            params,
            self.config,
            predicted,
        )
        return dict(out, agent_server=agent, connected=state.connected)

    @traced_once
    def step_env(self, key, state: EnvState, action, params: EnvParams):
        c = self.config
        out = self.outcome(state, action, params)
        reward = out["reward_llm"] if c.reward == "llm" else out["utility"]  # eq. (21) / eq. (20) summands
        t_next = state.t + 1
        next_state = state.replace(
            t=t_next,
            connected=self.connect(state.trace.position_at(t_next), state.connected, params),
            prev_agent=out["agent_server"],
            draws=self.sample_slot_draws(key, params),
        )
        if c.adversary == "mobility_prior":  # the report joins the adversary's history
            reported = out.pop("reported_m")
            previous = jnp.where(state.t == 0, reported, state.last_report_m)
            next_state = next_state.replace(last_report_m=reported, previous_report_m=previous)
        truncated = t_next >= c.max_steps
        terminated = jnp.array(False)  # time limit only [R A5]
        info = dict(
            out,
            reward_llm_mean=jnp.mean(out["reward_llm"]),
            reward_manual_mean=jnp.mean(out["utility"]),
            migrations=jnp.sum(out["migrated"]),
        )
        return self.observation(next_state, params), next_state, reward, terminated, truncated, info


class CrossRealityPrivacyV1(CrossRealityPrivacy):
    """CrossRealityPrivacy-v1: `CrossRealityPrivacyV1Config` (the routine-mobility adversary, 160 RSUs, the
    satellite relay, the adversary in the observation); every v0 field still applies, and v1 with v0's config
    values steps exactly like v0. `vmjax.make("CrossRealityPrivacy-v1", **config)`."""

    env_id = "CrossRealityPrivacy-v1"
    config_class = CrossRealityPrivacyV1Config
