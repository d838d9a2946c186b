"""The PPO-family baselines of spec 000 §7 as configs of the LHDPPO learner: H-PPO (two MLP heads, one clipped
ratio per head), GHPPO (Gaussian MLP + diffusion discrete actor) and PPO-relaxed (one Gaussian over 2M + M
coordinates, eq. of §7.5 for the server index). Hand-checked relaxed mapping, the per-head surrogate against an
independent recomputation, the relaxed env action, and a tiny vmapped training run of each (finite, same key ->
same run, ratio 1 before the first gradient step), plus the evaluation policy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import lhdppo, mlp_heads, ppo
from vmjax.mobility import Trace

TINY = {
    "num_envs": 2,
    "num_steps": 6,
    "num_iterations": 2,
    "update_epochs": 2,
    "num_minibatches": 2,
    "denoising_steps": 2,
    "state_hidden": (16,),
    "trunk_hidden": (16,),
    "time_embed_dim": 4,
    "time_hidden": 8,
    "critic_hidden": (16,),
    "mlp_hidden": (16,),
}
M, N = 2, 3
# GHPPO's two heads (Gaussian MLP, diffusion discrete) are trained here in H-PPO and in tests/test_lhdppo.py
BASELINES = {"hppo": lhdppo.hppo_config, "ppo_relaxed": lhdppo.ppo_relaxed_config}


def _env():
    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=M, num_rsus=N, max_steps=5, hop_neighbours=2)
    rng = np.random.default_rng(0)
    bank = rng.uniform([6000.0, 6000.0], [13000.0, 16000.0], (8, 4, 2)).astype(np.float32)
    return env, env.default_params.replace(trace_bank=Trace.create(bank))


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating))


def test_relaxed_choice_by_hand():
    # N + 1 = 21 servers: floor((u + 1)/2 * 21), capped at 20; u clipped to [-1, 1] first
    u = jnp.array([-1.0, -0.9, 0.0, 0.5, 0.9999, 1.0, 2.0, -3.0])
    # -0.9 -> 0.05 * 21 = 1.05 -> 1; 0 -> 10.5 -> 10; 0.5 -> 15.75 -> 15; 0.9999 -> 20.99895 -> 20; 1 -> 21 -> 20
    np.testing.assert_array_equal(mlp_heads.relaxed_choice(u, 21), [0, 1, 10, 15, 20, 20, 20, 0])
    assert mlp_heads.relaxed_choice(u, 21).dtype == jnp.int32


def test_algorithm_registry_and_head_choices():
    assert set(lhdppo.ALGORITHMS) == {"lhdppo", "hdppo", "ghppo", "hppo", "ppo_relaxed"}
    h = lhdppo.hppo_config()
    assert (h.continuous_head, h.discrete_head, h.ratio, h.reward_mode) == ("mlp", "mlp", "per_head", "manual")
    g = lhdppo.ghppo_config()
    assert (g.continuous_head, g.discrete_head, g.reward_mode) == ("mlp", "diffusion", "manual")
    r = lhdppo.ppo_relaxed_config()
    assert (r.continuous_head, r.discrete_head, r.ent_coef_init) == ("mlp", "relaxed", 0.0)
    assert isinstance(r.continuous_actor(5), mlp_heads.GaussianMlpActor) and r.continuous_actor(5).action_dim == 15
    assert r.discrete_actor(5, 21) is None
    assert lhdppo.hppo_config(actor_lr=3e-4).actor_lr == 3e-4  # overrides pass through
    for field, value in (
        ("continuous_head", "lstm"),
        ("discrete_head", "gumbel"),
        ("ratio", "both"),
        ("mlp_hidden", (0,)),
    ):
        with pytest.raises(ValueError, match=field):
            lhdppo.LhdppoConfig(**{field: value})


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_trains_finite_deterministic_with_ratio_one_first(name):
    env, params = _env()
    config = BASELINES[name](**TINY)
    train = jax.jit(jax.vmap(lhdppo.make_train(env, config, params)))
    k0, k1 = jax.random.key(0), jax.random.key(1)
    state, metrics = train(jnp.stack([k0, k0, k1]))
    assert _finite(state.params) and _finite(metrics)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[0], metrics), jax.tree.map(lambda x: x[1], metrics))
    assert not np.allclose(metrics["mean_reward"][0], metrics["mean_reward"][2])
    np.testing.assert_allclose(metrics["ratio_max_dev_first"], 0.0, atol=1e-5)
    assert ("actor_d" in state.params) == (name != "ppo_relaxed")
    assert "mlp" in state.params["actor_c"]  # a Gaussian MLP, not a denoiser
    if name == "hppo":
        assert "mlp" in state.params["actor_d"]
        assert np.all(metrics["aux_loss"] == 0.0)
    if name != "ppo_relaxed":  # near-uniform categoricals at the start (0.01-gain heads)
        assert np.all(metrics["entropy_d"][:, 0] > 0.9 * np.log(N + 1))


def test_hppo_policy_loss_is_the_sum_of_per_head_clipped_surrogates():
    env, params = _env()
    config = lhdppo.hppo_config(**TINY)
    comp = lhdppo.make_components(env, config, params)
    state = jax.jit(comp.init)(jax.random.key(3))
    data = jax.jit(lambda s: comp.prepare(s.params, comp.rollout(s, jax.random.key(4))[2]))(state)
    # move the params a little so the ratios differ from 1 and some get clipped
    moved = jax.tree.map(lambda p: p * 1.5, state.params)
    coefs = lhdppo.coefficients(config, jnp.int32(0))
    _, stats = jax.jit(comp.loss_fn)(moved, data, jax.random.key(0), coefs)
    policy = comp.policy
    s = data.sample
    new_c = policy.continuous.log_prob(moved["actor_c"], data.state, s.noise_c, s.raw)
    new_d = policy.discrete.log_prob(moved["actor_d"], data.state, s.noise_d, s.choice)
    adv = ppo.normalize(data.advantage)

    def surrogate(new, old):  # -E[min(rho A, clip(rho, 0.8, 1.2) A)], written out
        rho = np.exp(np.asarray(new) - np.asarray(old))
        return -np.mean(np.minimum(rho * adv, np.clip(rho, 0.8, 1.2) * adv))

    expected = surrogate(new_c, s.log_prob_c) + surrogate(new_d, s.log_prob_d)
    assert float(stats["policy_loss"]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    joint = surrogate(np.asarray(new_c) + np.asarray(new_d), np.asarray(s.log_prob_c) + np.asarray(s.log_prob_d))
    assert abs(expected - joint) > 1e-4  # the per-head loss is not the joint-ratio loss here


def test_ppo_relaxed_action_uses_the_last_m_coordinates_and_eval_policy_vmaps():
    env, params = _env()
    config = lhdppo.ppo_relaxed_config(**TINY)
    trainer = lhdppo.make_trainer(env, config, params)
    policy = trainer.policy
    raw = jnp.array([[0.1, -0.2, 0.3, 0.4, -1.0, 0.55]])  # 2M perturbation coords, then M = 2 server coords
    sample = lhdppo.PolicySample(
        raw,
        mlp_heads.empty_noise((1,)),
        policy.relaxed_choice(raw),
        mlp_heads.empty_noise((1,)),
        jnp.zeros(1),
        jnp.zeros(1),
    )
    action = policy.env_action(sample)
    np.testing.assert_array_equal(action["target"], [[0, 3]])  # (N + 1) = 4: -1 -> 0; 0.55 -> floor(3.1) = 3
    np.testing.assert_allclose(action["perturbation"], [[[0.1, -0.2], [0.3, 0.4]]])

    state = jax.jit(trainer.init)(jax.random.key(0))
    _, worlds = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(2), 3), params)
    keys = jax.random.split(jax.random.key(3), 3)
    act = jax.jit(jax.vmap(trainer.make_eval_policy(state), in_axes=(0, 0, None)))
    a = act(keys, worlds, params)
    assert a["target"].shape == (3, M) and a["perturbation"].shape == (3, M, 2)
    assert np.all((a["target"] >= 0) & (a["target"] <= N)) and _finite(a)
    chex.assert_trees_all_equal(a, act(keys, worlds, params))
