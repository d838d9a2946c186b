"""HGDM (spec 000 §7.4: diffusion SAC over one latent) on a tiny CrossRealityPrivacy-v0: the replay buffer of world
transitions, the latent -> hybrid action mapping, the tanh-Gaussian log-prob and the soft TD target against hand
formulas, the exact Polyak step, actor-loss gradients through every denoising step, a jitted training run over
seeds (finite, deterministic, traced once), config errors and the evaluation policy under jit / vmap."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import hgdm
from vmjax.agents.replay import replay_add, replay_init, replay_sample
from vmjax.mobility import Trace

TINY = {
    "num_envs": 2,
    "num_steps": 6,
    "num_iterations": 3,
    "buffer_size": 40,
    "batch_size": 8,
    "updates_per_iteration": 2,
    "learning_starts": 13,
    "denoising_steps": 2,
    "state_hidden": (16,),
    "trunk_hidden": (16,),
    "time_embed_dim": 4,
    "time_hidden": 8,
    "critic_hidden": (16,),
}
M, N = 2, 3
S = 10 * M  # flattened state size
A = 2 * M + M * (N + 1)  # latent size


def _env():
    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=M, num_rsus=N, max_steps=5, hop_neighbours=2)
    rng = np.random.default_rng(0)
    bank = rng.uniform([6000.0, 6000.0], [13000.0, 16000.0], (8, 4, 2)).astype(np.float32)  # replayed traces
    return env, env.default_params.replace(trace_bank=Trace.create(bank))


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating))


def _batch(key, size=5, terminated=None):
    ks = jax.random.split(key, 4)
    term = jnp.zeros(size, bool) if terminated is None else jnp.asarray(terminated)
    return hgdm.ReplayItem(
        jax.random.normal(ks[0], (size, S)),
        jax.random.uniform(ks[1], (size, A), minval=-1.0, maxval=1.0),
        jax.random.normal(ks[2], (size,)),
        jax.random.normal(ks[3], (size, S)),
        term,
    )


@pytest.fixture(scope="module")
def setup():
    env, params = _env()
    config = hgdm.HgdmConfig(**TINY)
    comp = hgdm.make_components(env, config, params)
    learner = jax.jit(comp.init_params)(jax.random.key(0))
    return env, params, config, comp, learner


@pytest.fixture(scope="module")
def trained():
    """One compiled vmapped training run over keys (0, 0, 1)."""
    env, params = _env()
    config = hgdm.HgdmConfig(**TINY)
    trainer = hgdm.make_trainer(env, config, params)
    k0, k1 = jax.random.key(0), jax.random.key(1)
    state, metrics = jax.jit(jax.vmap(trainer.train))(jnp.stack([k0, k0, k1]))
    return trainer, state, metrics


# ---------------------------------------------------------------- replay buffer of world transitions
def test_replay_buffer_of_transitions_wraps_and_samples_only_filled_slots():
    example = hgdm.ReplayItem(jnp.zeros(S), jnp.zeros(A), jnp.float32(0.0), jnp.zeros(S), jnp.bool_(False))
    buffer = replay_init(example, 5)
    assert buffer.data.state.shape == (5, S) and buffer.data.terminated.dtype == jnp.bool_

    def items(rewards):  # transitions tagged by their reward (state filled with the same number)
        r = jnp.asarray(rewards, jnp.float32)
        return hgdm.ReplayItem(
            jnp.repeat(r[:, None], S, 1), jnp.repeat(r[:, None], A, 1), r, jnp.repeat(-r[:, None], S, 1), r > 100
        )

    add = jax.jit(replay_add)
    buffer = add(buffer, items([1.0, 2.0, 3.0]))
    assert (int(buffer.position), int(buffer.size)) == (3, 3)
    np.testing.assert_array_equal(buffer.data.reward, [1, 2, 3, 0, 0])
    sample = jax.jit(replay_sample, static_argnums=2)(buffer, jax.random.key(0), 600)
    assert sample.state.shape == (600, S) and sample.latent.shape == (600, A) and sample.reward.shape == (600,)
    np.testing.assert_array_equal(np.unique(sample.reward), [1, 2, 3])  # never an empty (zero) slot
    np.testing.assert_array_equal(sample.state[:, 0], sample.reward)  # leaves stay aligned per transition
    np.testing.assert_array_equal(sample.next_state[:, -1], -sample.reward)
    buffer = add(buffer, items([4.0, 5.0, 106.0]))  # slots 3, 4, then wrap to 0
    assert (int(buffer.position), int(buffer.size)) == (1, 5)
    np.testing.assert_array_equal(buffer.data.reward, [106, 2, 3, 4, 5])
    np.testing.assert_array_equal(buffer.data.terminated, [True, False, False, False, False])
    sample = replay_sample(buffer, jax.random.key(1), 800)
    np.testing.assert_array_equal(np.unique(sample.reward), [2, 3, 4, 5, 106])


# ---------------------------------------------------------------- action mapping
def test_latent_to_action_hand_example():
    # M = 2, N + 1 = 3: [u_r1, u_th1, u_r2, u_th2 | scores AV1 (3) | scores AV2 (3)]
    latent = jnp.array([0.3, -1.7, 2.0, -0.25, 0.1, 0.9, -0.2, -0.5, -0.6, 0.4])
    a = hgdm.latent_to_action(latent, 2, 3)
    np.testing.assert_allclose(a["perturbation"], [[0.3, -1.0], [1.0, -0.25]])
    np.testing.assert_array_equal(a["target"], [1, 2])
    assert a["target"].dtype == jnp.int32
    batch = jax.jit(lambda x: hgdm.latent_to_action(x, 2, 3))(jnp.stack([latent, -latent]))
    np.testing.assert_array_equal(batch["target"], [[1, 2], [2, 1]])  # -scores: [0.2, -0.1, -0.9], [0.5, 0.6, -0.4]
    assert batch["perturbation"].shape == (2, 2, 2)
    assert hgdm.latent_dim(5, 21) == 10 + 105


# ---------------------------------------------------------------- log-prob, TD target, Polyak, gradients
def test_tanh_gaussian_log_prob_matches_hand_formula(setup):
    _, _, _, comp, (params, _, _) = setup
    policy = comp.policy
    s = jax.random.normal(jax.random.key(1), (4, S))
    noise = policy.sample_noise(jax.random.key(2), (4,))

    @jax.jit
    def pieces(p):
        sample = policy.sample(jax.random.key(3), p, s, noise=noise)
        det = policy.sample(jax.random.key(3), p, s, deterministic=True, noise=noise)[0]
        return sample, det, policy.actor.mean(p, s, noise)

    (latent, log_prob), det, mu = pieces(params["actor"])
    mu = np.asarray(mu, np.float64)
    log_std = np.asarray(params["actor"]["log_std"], np.float64)
    a = np.asarray(latent, np.float64)
    u = np.arctanh(a)
    hand = np.sum(-0.5 * ((u - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi), -1) - np.sum(
        np.log(1.0 - a**2), -1
    )
    np.testing.assert_allclose(log_prob, hand, rtol=1e-4, atol=1e-3)
    assert np.all(np.abs(a) < 1.0)
    np.testing.assert_allclose(det, np.tanh(mu), rtol=1e-5, atol=1e-6)


def test_soft_td_target_hand_numbers():
    y = hgdm.soft_td_target(
        jnp.array([1.0, 0.5, -2.0]),
        jnp.array([False, True, False]),
        jnp.array([2.0, 3.0, -1.0]),
        jnp.array([1.5, 4.0, -0.5]),
        jnp.array([-1.0, 0.2, 3.0]),
        jnp.float32(0.1),
        0.95,
    )
    # 1 + 0.95 (1.5 + 0.1); terminated: r only; -2 + 0.95 (-1 - 0.3)
    np.testing.assert_allclose(y, [2.52, 0.5, -3.235], rtol=1e-6)


def test_td_target_and_q_loss_against_hand_formula(setup):
    _, _, _, comp, (params, target_params, opt_state) = setup
    policy = comp.policy
    target_params = jax.tree.map(lambda x: x + 0.05, target_params)  # targets differ from the online critics
    params = dict(params, log_alpha=jnp.float32(math.log(0.3)))
    batch = _batch(jax.random.key(4), 8, terminated=[False, True, False, False, True, False, False, False])
    key = jax.random.key(5)
    k_target, _ = jax.random.split(key)
    y = jax.jit(comp.td_target)(params, target_params, batch, k_target)
    # the hand formula from independently evaluated pieces
    next_a, next_lp = jax.jit(lambda p: policy.sample(k_target, p, batch.next_state))(params["actor"])
    critic = jax.jit(policy.critic.apply)
    sa = np.concatenate([np.asarray(batch.next_state), np.asarray(next_a)], -1)
    q1, q2 = np.asarray(critic(target_params["q1"], sa)), np.asarray(critic(target_params["q2"], sa))
    not_done = 1.0 - np.asarray(batch.terminated, np.float64)
    hand = np.asarray(batch.reward) + 0.95 * not_done * (np.minimum(q1, q2) - 0.3 * np.asarray(next_lp))
    np.testing.assert_allclose(y, hand, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y)[[1, 4]], np.asarray(batch.reward)[[1, 4]], rtol=1e-6)
    # the SAC step's critic loss uses that target: sum_i mean (Q_i(s, a) - y)^2 with the pre-step critics
    _, stats = jax.jit(comp.sac_step)((params, target_params, opt_state), (batch, key))
    sa = np.concatenate([np.asarray(batch.state), np.asarray(batch.latent)], -1)
    q_loss = sum(np.mean((np.asarray(critic(params[q], sa)) - hand) ** 2) for q in ("q1", "q2"))
    np.testing.assert_allclose(stats["q_loss"], q_loss, rtol=1e-4)
    assert float(stats["alpha"]) == pytest.approx(0.3, rel=1e-6)


def test_sac_step_polyak_update_is_exact_and_alpha_moves(setup):
    _, _, config, comp, (params, target_params, opt_state) = setup
    target_params = jax.tree.map(lambda x: x - 0.1, target_params)
    (new, new_target, _), stats = jax.jit(comp.sac_step)(
        (params, target_params, opt_state), (_batch(jax.random.key(6), 8), jax.random.key(7))
    )
    for q in ("q1", "q2"):
        expected = jax.tree.map(
            lambda t, o: (1.0 - config.tau) * np.asarray(t) + config.tau * np.asarray(o), target_params[q], new[q]
        )
        chex.assert_trees_all_close(new_target[q], expected, rtol=1e-6, atol=1e-7)
        assert not np.allclose(jax.tree.leaves(new[q])[0], jax.tree.leaves(params[q])[0])  # the critic stepped
    # alpha loss = -log alpha (log pi + H_target): entropy above the target (-A) -> alpha falls
    assert float(stats["entropy"]) > -A and float(new["log_alpha"]) < float(params["log_alpha"])
    assert _finite(stats) and _finite(new)


def test_actor_loss_gradients_reach_every_denoising_step(setup):
    env, params, _, _, (learner, _, _) = setup
    # a chain with per-step noise z_u (step_noise="beta") to differentiate against, U = 3
    config = hgdm.HgdmConfig(**{**TINY, "denoising_steps": 3, "step_noise": "beta"})
    comp = hgdm.make_components(env, config, params)
    critics = {"q1": learner["q1"], "q2": learner["q2"]}
    s = jax.random.normal(jax.random.key(8), (6, S))
    noise = comp.policy.sample_noise(jax.random.key(11), (6,))

    @jax.jit
    def grads(key, noise):
        actor = comp.init_params(key)[0]["actor"]
        loss = lambda p, n: comp.actor_loss(p, critics, learner["log_alpha"], s, jax.random.key(12), noise=n)[0]
        return jax.grad(loss, argnums=(0, 1))(actor, noise)

    g_params, g_noise = grads(jax.random.key(10), noise)
    # every denoiser layer (time MLP included) and the log-std get a gradient
    assert all(float(jnp.abs(leaf).sum()) > 0 for leaf in jax.tree.leaves(g_params))
    # d L_pi / d z_u != 0 for every step u and d L_pi / d x_U != 0: the gradient passes back through all U steps
    per_step = np.abs(np.asarray(g_noise.steps)).sum(axis=(0, 2))  # [U]
    assert per_step.shape == (3,) and np.all(per_step > 0)
    assert np.abs(np.asarray(g_noise.x_T)).sum() > 0


# ---------------------------------------------------------------- training
def test_vmapped_training_is_finite_deterministic_and_learns(trained):
    _, state, metrics = trained
    assert _finite(state.params) and _finite(metrics)
    assert metrics["q_loss"].shape == (3, TINY["num_iterations"])
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[0], metrics), jax.tree.map(lambda x: x[1], metrics))
    assert not np.allclose(metrics["mean_train_reward"][0], metrics["mean_train_reward"][2])
    np.testing.assert_array_equal(metrics["env_steps"][0], [12, 24, 36])
    np.testing.assert_array_equal(metrics["buffer_size"][0], [12, 24, 36])
    # no gradient step before the buffer holds max(batch_size, learning_starts) = 13 transitions (12 after one
    # iteration): the first iteration's SAC stats are zeros, then 2 steps per iteration
    np.testing.assert_array_equal(metrics["gradient_steps"][0], [0, 2, 2])
    assert np.all(metrics["q_loss"][:, 0] == 0.0) and np.all(metrics["q_loss"][:, 1:] > 0.0)
    for name in (
        "mean_train_reward",
        "rollout_utility",
        "rollout_entropy_bits",
        "rollout_latency_s",
        "rollout_qos_loss",
        "q_loss",
        "actor_loss",
        "alpha",
        "alpha_loss",
        "entropy",
        "q_value",
        "episode_utility",
    ):
        assert name in metrics
    # the training reward is eq. (20) (reward_mode="manual"): the mean utility over AVs
    np.testing.assert_allclose(metrics["mean_train_reward"], metrics["rollout_utility"], rtol=1e-5, atol=1e-6)
    assert np.all(metrics["alpha"][:, 1:] > 0)


def test_update_is_traced_once(setup, trained):
    _, _, _, comp, _ = setup
    state = jax.tree.map(lambda x: x[0], trained[1])
    chex.clear_trace_counter()
    update = jax.jit(chex.assert_max_traces(comp.update, n=1))
    next_state, metrics = jax.eval_shape(update, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(next_state, state)
    jax.eval_shape(update, next_state)  # a cache hit, no second trace
    jax.eval_shape(update, state)
    assert metrics["q_loss"].shape == ()


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_envs", 0),
        ("gamma", 1.5),
        ("tau", 0.0),
        ("actor_lr", 0.0),
        ("batch_size", 0),
        ("buffer_size", 4),
        ("updates_per_iteration", -1),
        ("reward_mode", "bogus"),
        ("step_noise", "loud"),
        ("denoising_steps", 0),
        ("start_noise_scale", -1.0),
        ("head_gain", 0.0),
        ("critic_hidden", (0,)),
        ("mean_clip", -1.0),
        ("time_embed_dim", 5),
        ("log_std_init", 3.0),
        ("init_alpha", 0.0),
        ("target_entropy_per_dim", float("nan")),
        ("learning_starts", -1),
    ],
)
def test_bad_config_values_raise_naming_the_field(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        hgdm.HgdmConfig(**{**TINY, field: value})


def test_buffer_smaller_than_learning_starts_is_rejected():
    with pytest.raises(ValueError, match="learning_starts"):
        hgdm.HgdmConfig(**{**TINY, "learning_starts": 100})


# ---------------------------------------------------------------- evaluation policy
def test_eval_policy_jits_vmaps_and_gives_valid_actions(trained):
    trainer, state, _ = trained
    env, params = trainer.env, trainer.env_params
    state = jax.tree.map(lambda x: x[0], state)
    worlds = state.env_state.env_state  # the 2 training worlds (inside the LogWrapper)
    keys = jax.random.split(jax.random.key(3), 2)

    @jax.jit
    def act(keys):
        det = jax.vmap(trainer.make_eval_policy(state), in_axes=(0, 0, None))
        sto = jax.vmap(trainer.make_eval_policy(state.params, deterministic=False), in_axes=(0, 0, None))
        a = det(keys, worlds, params)
        out = jax.vmap(env.outcome, in_axes=(0, 0, None))(worlds, a, params)  # the env accepts the actions
        return a, sto(keys, worlds, params), out["utility"]

    a, a_sto, utility = act(keys)
    chex.assert_trees_all_equal(a, act(keys)[0])
    for action in (a, a_sto):
        assert action["target"].shape == (2, M) and action["target"].dtype == jnp.int32
        assert np.all((action["target"] >= 0) & (action["target"] <= N))
        assert action["perturbation"].shape == (2, M, 2)
        assert np.all(np.abs(action["perturbation"]) <= 1.0) and _finite(action)
    assert not np.allclose(a["perturbation"], a_sto["perturbation"])
    assert _finite(utility)
