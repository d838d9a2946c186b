"""CrossRealityPrivacy-v1: the routine-mobility adversary against a hand-computed 2 x 2 lattice and a float64 NumPy
oracle, its geometry helpers, the satellite relay and the observation by hand, `make` / jit / vmap / determinism,
v1 with v0's config values = v0, each v1 switch changing only what it should, and the calibration study's
summaries on hand-made sweeps."""

import json
import math
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines import cross_reality_privacy_v1_study as study
from vmjax import net
from vmjax.envs import cross_reality_privacy as crp
from vmjax.mobility import Trace
from vmjax.scenarios import cross_reality_privacy_v1 as scenario_v1

MB = 8e6
R_E = 6.371e6
DEG = math.pi / 180.0
LAT0 = 31.13  # the origin latitude (map south-west corner)
V0_VALUES = {"num_rsus": 20, "candidate_grid": 3, "adversary": "grid", "satellite_relay": False}
SMALL = {"num_vehicles": 3, "num_rsus": 6, "hop_neighbours": 2, "max_steps": 4}
RSU_M = np.array([[5000.0, 5000.0], [6000.0, 5000.0], [7000.0, 5000.0]])


# ---------------------------------------------------------------- the adversary by hand
def test_adversary_on_a_hand_computed_2x2_lattice():
    """Candidates A = (0, 0), B = (100, 0), C = (0, 100), D = (100, 100) m (delta = 100 m); the report at A, the
    dead-reckoned prediction at B; sigma = sigma_P = delta / sqrt(2 ln 2) = 84.932 m, so each Gaussian halves at
    one lattice step (exp(-delta^2 / (2 sigma^2)) = exp(-ln 2) = 1/2) and quarters at a diagonal step; no placement
    information (log Lv = 0, the satellite).

        likelihood Pr(l~ | p)    A 1     B 1/2   C 1/2   D 1/4     (|l~ - p|^2 = 0, d^2, d^2, 2 d^2)
        prior Pr(p)              A 1/2   B 1     C 1/4   D 1/2     (|p - l_pred|^2 = d^2, 0, 2 d^2, d^2)
        product                  A 1/2   B 1/2   C 1/8   D 1/8     sum 5/4
        posterior (eq. 4)        A 2/5   B 2/5   C 1/10  D 1/10
        entropy (eq. 5)          -2 (2/5) log2(2/5) - 2 (1/10) log2(1/10)
                                 = 0.8 x 1.321928 + 0.2 x 3.321928 = 1.057542 + 0.664386 = 1.721928 bit
                                 (= 1 bit for x, a fair coin, + H(4/5, 1/5) = 0.721928 bit for y)
        attacker confidence      2/5;  posterior mean (50, 20) m, 53.852 m from the truth at A
    """
    d = 100.0
    sigma = d / math.sqrt(2.0 * math.log(2.0))
    cand = jnp.asarray([[[0.0, 0.0], [d, 0.0], [0.0, d], [d, d]]])
    log_post = crp.mobility_prior_log_posterior(
        cand, jnp.zeros((1, 2)), jnp.asarray([[d, 0.0]]), jnp.asarray([sigma]), sigma, jnp.zeros((1, 4))
    )
    np.testing.assert_allclose(np.exp(log_post[0]), [0.4, 0.4, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(crp.entropy_bits(log_post), [1.721928], rtol=1e-6)
    mean = np.asarray(jnp.exp(log_post[0]) @ cand[0])
    np.testing.assert_allclose(mean, [50.0, 20.0], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(mean), 53.852, rtol=1e-4)


def test_geometry_helpers_by_hand():
    # constant-velocity dead reckoning: last (10, 5), the one before (0, 0) -> (20, 10)
    np.testing.assert_allclose(crp.dead_reckoned_m(jnp.array([10.0, 5.0]), jnp.zeros(2)), [20.0, 10.0])
    # the lattice point nearest (160, -40) at delta = 100 is (200, 0); a 3 x 3 window around it, i-major
    window = crp.lattice_window_m(jnp.array([160.0, -40.0]), 100.0, 3)
    xs, ys = np.meshgrid([100.0, 200.0, 300.0], [-100.0, 0.0, 100.0], indexing="ij")
    np.testing.assert_allclose(window, np.stack([xs.ravel(), ys.ravel()], -1))
    # -|x - mean|^2 / (2 sigma^2): (3, 4) from the origin at sigma 5 -> -25 / 50
    np.testing.assert_allclose(crp.gaussian_log_kernel(jnp.array([3.0, 4.0]), jnp.zeros(2), 5.0), -0.5)
    p = vmjax.make("CrossRealityPrivacy-v1").default_params
    # r_max = 0.001 deg of latitude = R pi / 180 * 0.001 = 111.1949 m; the spec's spacing r_max / 2 = 55.597 m
    np.testing.assert_allclose(crp.radius_m(jnp.array([1e-3]), p, LAT0), [111.1949], rtol=1e-6)
    np.testing.assert_allclose(study.spec_spacing_m(p), 55.597, rtol=1e-4)
    # degree offsets -> metres is the inverse of metres -> degree offsets (the one local projection)
    xy = jnp.array([[1234.5, 6789.0], [15000.0, 21000.0]])
    np.testing.assert_allclose(crp.offset_to_xy_m(crp.to_offset_deg(xy, p, LAT0), p, LAT0), xy, rtol=1e-6)
    # one degree of longitude at 31.13 N: R pi / 180 cos(31.13 deg) = 111 194.9 x 0.855997 = 95 182.5 m
    np.testing.assert_allclose(crp.offset_to_xy_m(jnp.array([1.0, 0.0]), p, LAT0), [95182.5, 0.0], rtol=1e-5)


# ---------------------------------------------------------------- one slot through the env
def to_deg(xy):
    xy = np.asarray(xy, float)
    return np.stack([xy[..., 0] / (R_E * math.cos(LAT0 * DEG)) / DEG, xy[..., 1] / R_E / DEG], axis=-1)


def to_m(deg):
    deg = np.asarray(deg, float)
    return np.stack([deg[..., 0] * DEG * R_E * math.cos(LAT0 * DEG), deg[..., 1] * DEG * R_E], axis=-1)


def hav_m(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    dx, dy = (a[..., 0] - b[..., 0]) * DEG, (a[..., 1] - b[..., 1]) * DEG
    cc = np.cos((a[..., 1] + LAT0) * DEG) * np.cos((b[..., 1] + LAT0) * DEG)
    return 2 * R_E * np.arcsin(np.sqrt(np.sin(dy / 2) ** 2 + cc * np.sin(dx / 2) ** 2))


def oracle_entropy(true_m, rep_deg, pred_m, r_deg, e, delta, sigma_p, window=5, tau=100.0):
    """The routine-mobility adversary in float64, one AV, explicit loops over the lattice window."""
    rep = to_m(rep_deg)
    centre = np.round(rep / delta)
    half = (window - 1) // 2
    sigma = max(r_deg, 5e-5) * DEG * R_E
    rsu_deg = to_deg(RSU_M)
    logit, cands = [], []
    for i in range(-half, half + 1):
        for j in range(-half, half + 1):
            c = (centre + [i, j]) * delta
            lp = -((rep - c) ** 2).sum() / (2 * sigma**2)
            prior = -((c - pred_m) ** 2).sum() / (2 * sigma_p**2)
            z = np.array([-hav_m(to_deg(c), q) / tau for q in rsu_deg])
            lv = z[e] - np.log(np.exp(z).sum()) if e < len(RSU_M) else 0.0
            logit.append(lp + prior + lv)
            cands.append(c)
    logit = np.array(logit)
    post = np.exp(logit - logit.max())
    post /= post.sum()
    error = np.linalg.norm(post @ np.array(cands) - true_m)
    return -(post * np.log2(post)).sum(), post.max(), error


@pytest.fixture(scope="module")
def hand():
    """v1 with 3 RSUs on a line 1 km apart, 3 AVs, chosen positions and reports (t = 2)."""
    env = vmjax.make("CrossRealityPrivacy-v1", num_vehicles=3, num_rsus=3, hop_neighbours=1, max_steps=3)
    p = env.default_params.replace(
        rsu_xy_m=jnp.asarray(RSU_M, jnp.float32), rsu_hops=jnp.asarray(net.knn_hop_counts(RSU_M, 1))
    )
    _, state = jax.jit(env.reset)(jax.random.key(0), p)
    pos = np.array([[5100.0, 5050.0], [5630.0, 5310.0], [6900.0, 4800.0]], np.float32)
    state = state.replace(
        t=jnp.int32(2),
        trace=Trace(positions_m=jnp.broadcast_to(jnp.asarray(pos), (4, 3, 2))),
        connected=jnp.array([0, 1, 2], jnp.int32),
        prev_agent=jnp.array([0, 1, 2], jnp.int32),
        draws=crp.SlotDraws(
            up_bits=jnp.full(3, 10 * MB),
            down_bits=jnp.full(3, 10 * MB),
            backhaul_per_hop_s=jnp.float32(2.0),
            fading=None,
        ),
        # predictions l~^1 + (l~^1 - l~^0): AV 0 on target, AV 1 30 m off, AV 2 200 m off
        last_report_m=jnp.asarray(pos + np.array([[-20.0, 0.0], [0.0, 15.0], [100.0, 0.0]]), jnp.float32),
        previous_report_m=jnp.asarray(pos + np.array([[-40.0, 0.0], [0.0, 0.0], [0.0, 0.0]]), jnp.float32),
    )
    return env, p, state, pos


def test_mobility_prior_slot_matches_numpy_oracle(hand):
    env, p, state, pos = hand
    radius, theta, target = np.array([0.0, 3e-4, 7e-4]), np.array([0.0, 1.0, 4.0]), np.array([0, 2, 3])
    action = {"target": jnp.asarray(target, jnp.int32), "perturbation": crp.raw_from_perturbation(radius, theta, 1e-3)}
    out = jax.jit(env.outcome)(state, action, p)
    pred = np.asarray(state.last_report_m) * 2 - np.asarray(state.previous_report_m)
    np.testing.assert_allclose(out["prediction_offset_m"], [0.0, 30.0, 200.0], atol=1e-2)
    for m in range(3):
        rep_deg = to_deg(pos[m]) + radius[m] * np.array([math.cos(theta[m]), math.sin(theta[m])])
        e, conf, error = oracle_entropy(
            pos[m], rep_deg, pred[m], radius[m], target[m], p.lattice_spacing_m, p.prior_std_m
        )
        np.testing.assert_allclose(out["entropy_bits"][m], e, rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(out["attacker_confidence"][m], conf, rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(out["adversary_error_m"][m], error, rtol=1e-3, atol=1e-2)
        np.testing.assert_allclose(out["reported_m"][m], to_m(rep_deg), rtol=1e-6, atol=1e-3)


def test_satellite_relay_and_the_observation_by_hand(hand):
    env, p, state, pos = hand
    stay = {"target": jnp.array([0, 1, 3], jnp.int32), "perturbation": -jnp.ones((3, 2))}
    out = env.outcome(state, stay, p)
    # AV 2 connected to RSU 2 with its agent on S: relay 10 MB / 20 Mbps + 10 MB / 100 Mbps = 4 + 0.8 = 4.8 s
    np.testing.assert_allclose(out["backhaul_s"], [0.0, 0.0, 4.8], rtol=1e-6)
    off = vmjax.make("CrossRealityPrivacy-v1", **{**env.config.__dict__, "satellite_relay": False})
    np.testing.assert_allclose(off.outcome(state, stay, p)["backhaul_s"], [0.0, 0.0, 0.0])
    obs = env.observation(state, p)
    assert obs.shape == (3, 14) and env.observation_space(p).contains(obs)
    # prediction offsets / sigma_P: (0, 0), (0, 30 m), (200 m, 0)
    sigma_p = p.prior_std_m
    np.testing.assert_allclose(obs[:, 10:12], [[0.0, 0.0], [0.0, 30 / sigma_p], [200 / sigma_p, 0.0]], atol=1e-4)
    # the AV in its lattice cell (delta 55.6 m): 5100 / 55.6 = 91.727 -> -0.273; 5050 / 55.6 = 90.827 -> -0.173
    assert p.lattice_spacing_m == 55.6
    np.testing.assert_allclose(obs[0, 12:14], [5100 / 55.6 - 92, 5050 / 55.6 - 91], atol=1e-4)


def test_reports_feed_the_dead_reckoning(hand):
    env, p, state, pos = hand
    action = {"target": jnp.array([0, 1, 2], jnp.int32), "perturbation": jnp.array([[1.0, -1.0]] * 3)}  # r_max east
    east_m = 1e-3 * DEG * R_E * math.cos(LAT0 * DEG)  # 95.22 m
    step = jax.jit(env.step_env)
    _, s3, _, _, _, info = step(jax.random.key(1), state, action, p)  # t = 2 -> 3
    np.testing.assert_allclose(s3.last_report_m, pos + [east_m, 0.0], atol=1e-2)
    np.testing.assert_allclose(s3.previous_report_m, state.last_report_m)
    assert "reported_m" not in info and {"adversary_error_m", "prediction_offset_m"} <= set(info)
    _, s0 = jax.jit(env.reset)(jax.random.key(4), p)  # both reports at the start position: l_pred = l^0
    np.testing.assert_allclose(s0.last_report_m, s0.trace.position_at(0))
    np.testing.assert_allclose(s0.previous_report_m, s0.trace.position_at(0))
    _, s1, _, _, _, _ = step(jax.random.key(2), s0, action, p)  # t = 0 -> 1: no velocity from a single report
    np.testing.assert_allclose(s1.previous_report_m, s1.last_report_m)
    np.testing.assert_allclose(env.predicted_m(s1), s1.last_report_m)


# ---------------------------------------------------------------- the contract
@pytest.fixture(scope="module")
def small():
    env = vmjax.make("CrossRealityPrivacy-v1", **SMALL)
    chex.clear_trace_counter()
    return env, env.default_params, jax.jit(env.reset), jax.jit(env.step)


def test_make_jit_vmap_and_determinism(small):
    env, p, reset, step = small
    assert env.name == "CrossRealityPrivacy-v1" and env.config.adversary == "mobility_prior"
    default = vmjax.make("CrossRealityPrivacy-v1")
    assert default.num_servers == 161 and default.obs_dim == 14 and default.config.candidate_grid == 5

    def run(key):
        k_reset, k_run = jax.random.split(key)
        _, state = reset(k_reset, p)
        out = []
        for k in jax.random.split(k_run, 5):
            k_act, k_step = jax.random.split(k)
            obs, state, reward, _, trunc, info = step(k_step, state, env.action_space(p).sample(k_act), p)
            out.append((obs, reward, trunc, info))
        return out

    a, b = run(jax.random.key(0)), run(jax.random.key(0))
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a[0][1], run(jax.random.key(1))[0][1])
    assert [bool(x[2]) for x in a] == [False, False, False, True, False]
    for obs, reward, _, info in a:
        chex.assert_tree_all_finite((obs, reward, info["entropy_bits"], info["adversary_error_m"]))
        assert env.observation_space(p).contains(obs)
        u = info["entropy_bits"] - 0.02 * info["latency_s"] - 0.2 * info["qos_loss"]
        np.testing.assert_allclose(info["utility"], u, rtol=1e-5, atol=1e-5)
    keys = jax.random.split(jax.random.key(2), 3)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, p)
    actions = env.action_space(p).sample(jax.random.key(5))
    out_v = jax.jit(jax.vmap(env.step, in_axes=(0, 0, None, None)))(keys, states, actions, p)
    for i in range(3):
        out_i = step(keys[i], reset(keys[i], p)[1], actions, p)
        np.testing.assert_allclose(out_v[2][i], out_i[2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out_v[0][i], out_i[0], rtol=1e-5, atol=1e-6)


def _steps(env, params, key, n=2):
    """n steps of random actions from a reset, jitted once per env: [(obs, state, reward, term, trunc, info)]."""
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    _, state = reset(key, params)
    out = []
    for k in jax.random.split(key, n):
        k_act, k_step = jax.random.split(k)
        out.append(step(k_step, state, env.action_space(params).sample(k_act), params))
        state = out[-1][1]
    return out


def test_v1_with_v0_values_steps_like_v0_and_the_adversary_changes_only_the_entropy():
    """(The relay alone changes only the relayed AV's backhaul: `test_satellite_relay_and_the_observation_by_hand`.)"""
    config = {"num_vehicles": 3, "max_steps": 4}
    v0 = vmjax.make("CrossRealityPrivacy-v0", **config)
    p = v0.default_params
    v0_steps = _steps(v0, p, jax.random.key(3))
    v1_as_v0 = vmjax.make("CrossRealityPrivacy-v1", **config, **V0_VALUES, observe_adversary=False)
    chex.assert_trees_all_equal(v0_steps, _steps(v1_as_v0, p, jax.random.key(3)))
    # the adversary alone: the same worlds, observations, latency and QoS loss; another entropy
    switched = vmjax.make(
        "CrossRealityPrivacy-v1", **config, **{**V0_VALUES, "adversary": "mobility_prior"}, observe_adversary=False
    )
    for (o0, _, _, _, _, i0), (o1, _, _, _, _, i1) in zip(v0_steps, _steps(switched, p, jax.random.key(3))):
        np.testing.assert_array_equal(o0, o1)
        for name in ("latency_s", "qos_loss", "backhaul_s", "perturbation_m"):
            np.testing.assert_array_equal(i0[name], i1[name])
        assert not np.allclose(i0["entropy_bits"], i1["entropy_bits"])


def test_agent_server_connected_ignores_the_target_and_is_the_action_env_with_the_connected_target(small):
    """`agent_server="connected"` (the longer-budget ablation): the agent sits on the connected server k whatever
    the action's target; the slot is the default env's slot with target = k."""
    env, p, reset, _ = small
    pinned = vmjax.make("CrossRealityPrivacy-v1", **SMALL, agent_server="connected")
    _, state = reset(jax.random.key(7), p)
    perturbation = jnp.full((env.num_agents, 2), 0.3)
    wrong = (state.connected + 1) % env.num_servers
    got = pinned.outcome(state, {"target": wrong, "perturbation": perturbation}, p)
    want = env.outcome(state, {"target": state.connected, "perturbation": perturbation}, p)
    np.testing.assert_array_equal(got["agent_server"], state.connected)
    chex.assert_trees_all_equal(got, want)
    assert not np.allclose(
        env.outcome(state, {"target": wrong, "perturbation": perturbation}, p)["latency_s"], want["latency_s"]
    )


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="observe_adversary needs adversary='mobility_prior'"):
        vmjax.make("CrossRealityPrivacy-v1", adversary="grid")
    with pytest.raises(ValueError, match="adversary must be one of"):
        vmjax.make("CrossRealityPrivacy-v1", adversary="oracle")


# ---------------------------------------------------------------- the calibration study's summaries
def test_study_peaks_states_oracle_and_checks_by_hand():
    fractions = np.array([0.0, 0.5, 1.0])
    assert study.peak([0.0, 1.0, 0.5], fractions) == {
        "best_fraction": 0.5,
        "best_utility": 1.0,
        "above_ends": 0.5,
        "interior": True,
    }
    assert not study.peak([2.0, 1.0, 0.5], fractions)["interior"]
    assert not study.peak([0.0, 1.0, 0.99], fractions)["interior"]  # a flat top: 0.01 above r_max (margin 0.05)
    # two states: near the prediction (offset 10 m) r = r_max pays, far from it (400 m) r = 0.5 r_max does;
    # utility [S, R, A] with 2 angles whose mean is the curve
    near, far = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.2])
    utility = np.stack([np.stack([near - 0.1, near + 0.1], -1), np.stack([far, far], -1)])
    sweep = {"utility": utility, "offset_m": np.array([10.0, 400.0])}
    rows = study.state_curves(sweep, fractions)
    assert [row["share"] for row in rows] == [0.5, 0.0, 0.0, 0.0, 0.5]
    assert rows[0]["best_fraction"] == 1.0 and rows[-1]["best_fraction"] == 0.5 and rows[-1]["interior"]
    gap = study.oracle_gap(sweep, fractions, jax.random.key(0))
    # fixed radii (angle drawn per state): r_max gives (2 +- 0.1 + 0.2) / 2, 0.5 r_max gives (1 +- 0.1 + 1) / 2
    assert gap["best_fixed_fraction"] == 1.0
    # the oracle picks r_max for the first state, 0.5 r_max for the second: (2 +- 0.1 + 1) / 2
    np.testing.assert_allclose(gap["oracle_radius_utility"] - gap["best_fixed_utility"], 0.4, atol=1e-6)
    np.testing.assert_allclose(gap["oracle_radius_angle_utility"], (2.1 + 1.0) / 2, atol=1e-6)


def test_committed_calibration_matches_the_defaults():
    """docs/results/cross_reality_privacy_v1/calibration.json was made with today's v1 defaults, every check of
    the v1 attempt passes, and the scenario's best fixed radius is the one it measured."""
    data = json.loads((Path(__file__).parents[1] / study.DEFAULT_OUT / "calibration.json").read_text())
    v1, p = data["attempts"]["v1"], vmjax.make("CrossRealityPrivacy-v1").default_params
    assert v1["defaults"] == {"lattice_spacing_m": p.lattice_spacing_m, "prior_std_m": p.prior_std_m}
    assert v1["defaults_match_fit"] and data["prior_fit"]["fitted_prior_std_m"] == p.prior_std_m
    assert all(v1["checks"].values()) and not data["attempts"]["self_consistent_prior"]["checks"]["c_oracle_room"]
    assert v1["fixed_radius_peak"]["best_fraction"] == scenario_v1.BEST_FIXED_RADIUS_FRACTION
    assert "best_fixed_radius" in scenario_v1.SCENARIO.evaluation.policies
    evaluation = scenario_v1.SCENARIO.evaluation  # the model-based planners only when named (vmjax evaluate)
    assert set(evaluation.optional_policies) == {"radius_planner", "gradient_radius_planner"}
    assert list(evaluation.select_policies(["radius_planner", "geo_i"])) == ["radius_planner", "geo_i"]
    assert "radius_planner" not in evaluation.select_policies(None)
