"""Spec 000 §7 baselines of CrossRealityPrivacy-v0: the Geo-I planar-Laplace radius against its analytic CDF
(KS test), the greedy server rule on a hand-built state, and a short stateful rollout."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import vmjax
from baselines import cross_reality_privacy as bcrp
from vmjax.mobility import Trace

R_MAX = 1e-3
EPS = 13.5 / R_MAX


def test_planar_laplace_radius_matches_its_cdf():
    # the analytic radial CDF 1 - (1 + eps r) e^{-eps r} is the Gamma(2, 1/eps) CDF (checked against scipy)
    r = np.linspace(0.0, R_MAX, 11)
    np.testing.assert_allclose(bcrp.planar_laplace_radius_cdf(r, EPS), stats.gamma(2, scale=1 / EPS).cdf(r), atol=1e-6)
    radius, theta = bcrp.sample_planar_laplace(jax.random.key(0), (20_000,), EPS, R_MAX)
    radius, theta = np.asarray(radius, float), np.asarray(theta, float)
    cdf = lambda x: np.where(x >= R_MAX, 1.0, np.asarray(bcrp.planar_laplace_radius_cdf(x, EPS)))  # clipped at r_max
    ks = stats.kstest(radius, cdf)
    assert ks.statistic < 0.015 and ks.pvalue > 1e-3, ks
    assert stats.kstest(theta, stats.uniform(0, 2 * math.pi).cdf).pvalue > 1e-3
    np.testing.assert_allclose(radius.mean(), 2 / EPS, rtol=0.03)  # mean r = 2 / eps = 0.148 r_max
    # a wrong eps is rejected
    assert stats.kstest(radius, lambda x: np.asarray(bcrp.planar_laplace_radius_cdf(x, 1.3 * EPS))).pvalue < 1e-6


@pytest.fixture(scope="module")
def line():
    """8 RSUs on a line 1 km apart; AV 0 and 2 next to RSU 0, AV 1 next to RSU 5."""
    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=3, num_rsus=8, hop_neighbours=1, max_steps=3)
    rsu = np.stack([5000.0 + 1000.0 * np.arange(8), np.full(8, 5000.0)], axis=1).astype(np.float32)
    p = env.default_params.replace(rsu_xy_m=jnp.asarray(rsu), rsu_hops=jnp.asarray(vmjax.net.knn_hop_counts(rsu, 1)))
    _, state = jax.jit(env.reset)(jax.random.key(0), p)
    pos = jnp.array([[5100.0, 5000.0], [10_050.0, 5000.0], [5000.0, 5300.0]])
    return env, p, state.replace(trace=Trace(positions_m=jnp.broadcast_to(pos, (4, 3, 2))))


def test_greedy_server_rule_on_a_hand_built_state(line):
    env, p, state = line
    assert np.asarray(bcrp.greedy_servers(jax.random.key(0), env, state, p, None, explore=0.0)).tolist() == [0, 5, 0]
    h = bcrp.init_history(env)
    # AV 0: RSU 3 (mean 2) beats RSU 1 (mean 1); RSU 7 (mean 5) is not among its 5 nearest (0..4)
    h = bcrp.update_history(h, jnp.array([3, 0, 1]), jnp.array([1.5, 0.0, 1.0]))
    h = bcrp.update_history(h, jnp.array([3, 0, 2]), jnp.array([2.5, 0.0, 1.0]))
    h = bcrp.update_history(h, jnp.array([1, 0, 8]), jnp.array([1.0, 0.0, 9.0]))  # AV 2: S is not a candidate
    h = bcrp.update_history(h, jnp.array([7, 0, 0]), jnp.array([5.0, 0.0, -1.0]))
    np.testing.assert_allclose(h.utility_sum[0, 3] / h.count[0, 3], 2.0)
    # AV 1: only RSU 0 was tried and it is not among its 5 nearest (3..7) -> the nearest, RSU 5;
    # AV 2: RSUs 1 and 2 tie at mean 1 (RSU 0 at -1) -> the nearer one, RSU 1
    chosen = bcrp.greedy_servers(jax.random.key(0), env, state, p, h, explore=0.0)
    assert np.asarray(chosen).tolist() == [3, 5, 1]
    # with exploration 1 every pick is uniform over the 5 nearest
    picks = jax.vmap(lambda k: bcrp.greedy_servers(k, env, state, p, h, explore=1.0))(
        jax.random.split(jax.random.key(1), 200)
    )
    picks = np.asarray(picks)
    assert set(picks[:, 0]) == {0, 1, 2, 3, 4} and set(picks[:, 1]) == {3, 4, 5, 6, 7}


def test_policies_through_the_env(line):
    env, p, state = line
    geo = bcrp.make_geo_i_policy(env, explore=0.0)
    radius = jax.jit(jax.vmap(lambda k: env.parse_action(geo(k, state, p), p)[1]))(  # r after the env's mapping
        jax.random.split(jax.random.key(2), 1000)
    )
    assert stats.kstest(np.ravel(radius), lambda x: np.asarray(bcrp.planar_laplace_radius_cdf(x, EPS))).pvalue > 1e-3
    still = bcrp.make_no_perturbation_policy(env, explore=0.0)(jax.random.key(0), state, p)
    assert np.asarray(still["target"]).tolist() == [0, 5, 0]
    np.testing.assert_array_equal(env.parse_action(still, p)[1], 0.0)
    # stateful Geo-I: three slots, the history counts them, privacy and QoS loss > 0 (vs. 0 without perturbation)
    for make, positive in ((bcrp.make_geo_i_stateful, True), (bcrp.make_no_perturbation_stateful, False)):
        policy = make(env)
        act, step = jax.jit(policy.act), jax.jit(env.step_env)
        history, s = policy.init(jax.random.key(0), p), state
        ent, qos = [], []
        for k in jax.random.split(jax.random.key(3), 3):
            action, history, _ = act(k, history, s, p)
            _, s, _, _, _, info = step(k, s, action, p)
            ent.append(info["entropy_bits"])
            qos.append(info["qos_loss"])
            np.testing.assert_allclose(
                info["utility"],
                info["entropy_bits"] - 0.02 * info["latency_s"] - 0.2 * info["qos_loss"],
                rtol=1e-5,
                atol=1e-5,
            )
        np.testing.assert_array_equal(np.asarray(history.count).sum(axis=1), 3)
        assert (np.mean(ent) > 0.05) == positive and (np.mean(qos) > 1e-3) == positive  # 1e-3: float32 rounding


def test_episode_metrics_and_stateful_rollout_agree_with_rollout(line):
    """`rollout_stateful` carries the policy state (a slot counter that switches the radius between r_max and 0)
    and `rollout` (its stateless case) sees the same worlds; the per-episode metrics satisfy eq. (17)
    (utility = E - 0.02 L - 0.2 Q per slot, so on every mean); no perturbation has E = Q = 0."""
    from vmjax.core.rollout import StatefulPolicy, rollout, rollout_stateful

    env, params, _ = line
    policy = bcrp.make_geo_i_policy(env)
    key = jax.random.key(7)

    def alternate(k, count, state, p):
        radius = jnp.where(count % 2 == 0, p.r_max_deg, 0.0) * jnp.ones(env.num_agents)
        return bcrp._action(env, p, state.connected, radius, jnp.zeros(env.num_agents)), count + 1, {}

    counter = StatefulPolicy(init=lambda k, p: jnp.int32(0), act=alternate)
    steps = jax.jit(lambda k: rollout_stateful(env, counter, k, params, 3, 4))(key)
    assert np.all(steps["entropy_bits"][0::2] > 1.0) and np.allclose(steps["entropy_bits"][1::2], 0.0, atol=1e-6)
    plain = jax.jit(lambda k: rollout(env, policy, k, params, 3, 4))(key)
    np.testing.assert_array_equal(plain["latency_s"] > 0, True)
    np.testing.assert_allclose(plain["uplink_s"], steps["uplink_s"], rtol=1e-6)  # same worlds (the connected link)
    np.testing.assert_allclose(
        plain["utility"],
        plain["entropy_bits"] - 0.02 * plain["latency_s"] - 0.2 * plain["qos_loss"],
        rtol=1e-5,
        atol=1e-5,
    )  # eq. (17), per slot
    still = jax.jit(lambda k: bcrp.episode_metrics(env, bcrp.POLICIES["no_perturbation"](env), params, k, 5))(key)
    assert all(still[name].shape == (5,) for name in bcrp.EVAL_METRICS)
    np.testing.assert_allclose(still["entropy_bits"], 0.0, atol=1e-6)
    np.testing.assert_allclose(still["qos_loss"], 0.0, atol=1e-6)
    np.testing.assert_allclose(still["utility"], -0.02 * still["latency_s"], rtol=1e-5)


def test_entropy_surface_is_zero_without_perturbation_and_rises_with_the_radius():
    from baselines.cross_reality_privacy_study import entropy_surface

    surface = entropy_surface(num_radii=4, num_angles=6)
    entropy = np.asarray(surface["entropy_bits"])
    assert entropy.shape == (4, 6)
    np.testing.assert_allclose(entropy[0], 0.0, atol=1e-6)
    assert np.all(np.diff(entropy, axis=0) > 0)  # every angle: more radius, more entropy
    assert np.all(entropy <= math.log2(9) + 1e-5)  # K = 9 candidates
    np.testing.assert_allclose(surface["angle_rad"][1], math.pi / 3)


def test_study_compare_extends_its_record_method_by_method(tmp_path):
    """`compare` run twice on one file keeps the first call's methods (same study, env config and overrides) and
    restarts the record when the study differs; heuristics only (no training)."""
    from baselines import cross_reality_privacy_study as study

    env_config = {"num_vehicles": 2, "num_rsus": 4, "max_steps": 3, "hop_neighbours": 2}
    path = tmp_path / "comparison.json"
    config = study.StudyConfig(iterations=1, seeds=2, eval_episodes=2)
    study.compare(config, path, ["No perturbation"], env_config, log=lambda *_: None)
    record = study.compare(config, path, ["Max perturbation"], env_config, log=lambda *_: None)
    assert set(record["results"]) == {"No perturbation", "Max perturbation"}
    assert len(record["results"]["Max perturbation"]["utility_seed_means"]) == 2
    assert record["results"]["Max perturbation"]["entropy_bits"] > 1.0
    assert record["results"]["No perturbation"]["entropy_bits"] == pytest.approx(0.0, abs=1e-6)
    other = study.StudyConfig(iterations=1, seeds=2, eval_episodes=3)
    assert set(study.compare(other, path, ["No perturbation"], env_config, log=lambda *_: None)["results"]) == {
        "No perturbation"
    }
    with pytest.raises(ValueError, match="unknown methods"):
        study.compare(config, path, ["Oracle"], env_config)
