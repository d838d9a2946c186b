"""vmjax.agents: PPO math against plain NumPy, the hybrid head, networks, and Hybrid-MAPPO training."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import HybridMappoConfig, checkpoint, distributions, make_train, make_trainer, networks, ppo


# ---------------------------------------------------------------- NumPy references
def gae_numpy(rewards, values, next_values, terminated, done, gamma, lam):
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * (1.0 - terminated[t]) * next_values[t] - values[t]
        running = delta + gamma * lam * (1.0 - done[t]) * running
        advantages[t] = running
    return advantages, advantages + values


def test_gae_matches_numpy_reference_with_terminated_and_truncated_steps():
    rng = np.random.default_rng(0)
    t, e = 17, 5
    rewards, values, next_values = (rng.normal(size=(t, e)).astype(np.float32) for _ in range(3))
    terminated = rng.random((t, e)) < 0.1
    truncated = rng.random((t, e)) < 0.1
    done = terminated | truncated
    got = ppo.gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values), terminated, done, 0.95, 0.9)
    want = gae_numpy(rewards, values, next_values, terminated.astype(np.float32), done.astype(np.float32), 0.95, 0.9)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-5)


def test_gae_hand_computed_truncation_bootstraps_and_termination_does_not():
    # two steps, gamma 0.5, lambda 1; step 0 continues, step 1 ends
    r, v, nv = np.array([1.0, 2.0]), np.array([0.5, 0.25]), np.array([0.25, 4.0])
    trunc = ppo.gae(r, v, nv, np.array([0.0, 0.0]), np.array([0.0, 1.0]), 0.5, 1.0)[0]
    # delta1 = 2 + 0.5*4 - 0.25 = 3.75; delta0 = 1 + 0.5*0.25 - 0.5 = 0.625; A0 = 0.625 + 0.5*3.75 = 2.5
    np.testing.assert_allclose(trunc, [2.5, 3.75])
    term = ppo.gae(r, v, nv, np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.5, 1.0)[0]
    # delta1 = 2 - 0.25 = 1.75; A0 = 0.625 + 0.5*1.75 = 1.5
    np.testing.assert_allclose(term, [1.5, 1.75])


def test_gae_does_not_leak_across_episode_boundaries():
    r = np.array([0.0, 0.0, 10.0])
    zeros = np.zeros(3)
    adv = ppo.gae(r, zeros, zeros, zeros, np.array([0.0, 1.0, 0.0]), 0.9, 0.9)[0]
    np.testing.assert_allclose(adv, [0.0, 0.0, 10.0])


def test_clipped_surrogate_and_value_loss_match_numpy():
    rng = np.random.default_rng(1)
    logp, old = rng.normal(size=64).astype(np.float32), rng.normal(size=64).astype(np.float32)
    adv = rng.normal(size=64).astype(np.float32)
    ratio = np.exp(logp - old)
    want = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv))
    loss, stats = ppo.clipped_surrogate_loss(logp, old, adv, 0.2)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(stats["clip_fraction"], np.mean(np.abs(ratio - 1) > 0.2), rtol=1e-6)
    np.testing.assert_allclose(stats["approx_kl"], np.mean((ratio - 1) - (logp - old)), rtol=1e-4, atol=1e-6)

    v, v_old, ret = (rng.normal(size=64).astype(np.float32) for _ in range(3))
    clipped = v_old + np.clip(v - v_old, -0.2, 0.2)
    want_v = 0.5 * np.mean(np.maximum((v - ret) ** 2, (clipped - ret) ** 2))
    np.testing.assert_allclose(ppo.value_loss(v, v_old, ret, 0.2), want_v, rtol=1e-5)
    np.testing.assert_allclose(ppo.value_loss(v, v_old, ret, None), 0.5 * np.mean((v - ret) ** 2), rtol=1e-5)


def test_surrogate_hand_numbers():
    # ratio e^0.5 = 1.6487 > 1.2 with A = 2: min(3.297, 2.4) = 2.4; ratio 1 with A = -1: -1 -> loss -(2.4 - 1)/2
    loss, _ = ppo.clipped_surrogate_loss(jnp.array([0.5, 0.0]), jnp.zeros(2), jnp.array([2.0, -1.0]), 0.2)
    np.testing.assert_allclose(loss, -0.7, rtol=1e-6)


def test_normalize():
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    y = ppo.normalize(x)
    np.testing.assert_allclose([float(jnp.mean(y)), float(jnp.std(y))], [0.0, 1.0], atol=1e-5)


# ---------------------------------------------------------------- hybrid head and networks
def test_masked_categorical_never_samples_a_masked_action_and_has_finite_gradients():
    mask = jnp.array([[True, False, True, False], [False, False, False, True]])
    logits = jnp.array([[0.0, 5.0, 0.0, 5.0], [9.0, 9.0, 9.0, -3.0]])
    dist = distributions.masked_categorical(logits, mask)
    samples = dist.sample(seed=jax.random.PRNGKey(0), sample_shape=(4000,))
    assert bool(jnp.all(jnp.take_along_axis(jnp.broadcast_to(mask, (4000, 2, 4)), samples[..., None], -1)))
    assert set(np.unique(samples[:, 0]).tolist()) == {0, 2}
    grad = jax.grad(lambda lg: jnp.sum(distributions.masked_categorical(lg, mask).entropy()))(logits)
    assert bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(dist.probs[1], [0, 0, 0, 1], atol=1e-7)


def test_gaussian_log_prob_is_the_normal_density_on_the_raw_sample():
    dist = distributions.gaussian(jnp.array([[0.3]]), jnp.array([[-1.0]]))
    x = 1.4  # outside [0, 1]: executed as 1.0, log-prob on 1.4
    sigma = np.exp(-1.0)
    want = -0.5 * ((x - 0.3) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(dist.log_prob(jnp.array([[x]])), [want], rtol=1e-5)
    np.testing.assert_allclose(distributions.to_unit_interval(jnp.array([x, -0.2, 0.5])), [1.0, 0.0, 0.5])


def test_orthogonal_init_is_orthogonal_with_gain():
    for shape in [(15, 64), (64, 64), (64, 6)]:
        w = np.asarray(networks.orthogonal(np.sqrt(2.0))(jax.random.PRNGKey(3), shape))
        gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
        np.testing.assert_allclose(gram, 2.0 * np.eye(len(gram)), atol=1e-5)


def test_per_agent_parameters_apply_each_agents_own_network():
    actor = networks.DiscreteActor(3, hidden_sizes=(8,))
    params = networks.init_per_agent(actor, jax.random.PRNGKey(0), 4, jnp.zeros(5))
    obs = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 5))  # [E, N, D]
    out = networks.apply_per_agent(actor, params, obs)
    assert out.shape == (2, 4, 3)
    for v in range(4):
        own = jax.tree.map(lambda x, v=v: x[v], params)
        np.testing.assert_allclose(out[:, v], actor.apply(own, obs[:, v]), rtol=1e-5, atol=1e-6)
    ids = networks.with_agent_id(obs)
    assert ids.shape == (2, 4, 9)
    np.testing.assert_array_equal(ids[1, 2, 5:], [0, 0, 1, 0])


# ---------------------------------------------------------------- Hybrid-MAPPO
TINY = {
    "num_envs": 2,
    "num_steps": 8,
    "num_iterations": 2,
    "update_epochs": 2,
    "num_minibatches": 2,
    "hidden_sizes": (16,),
}


def tiny_env(**kw):
    return vmjax.make("AvatarPremigration-v0", num_vehicles=3, num_rsus=3, max_steps=8, **kw)


def test_tiny_training_run_under_jit_has_finite_losses_and_traces_once():
    trainer = make_trainer(tiny_env(), HybridMappoConfig(**TINY))
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    update = jax.jit(chex.assert_max_traces(trainer.update, n=1))
    for _ in range(2):
        state, metrics = update(state)
    chex.assert_tree_all_finite(metrics)
    chex.assert_tree_all_finite(state.params)
    assert int(state.iteration) == 2
    assert float(metrics["episodes"]) == 2.0  # both worlds finished their 8-slot episode
    assert float(metrics["episode_total_latency_s"]) > 0


@pytest.mark.parametrize(
    "ratio,share,per_target,mean", [("joint", False, False, "sigmoid"), ("separate", True, True, "linear")]
)
def test_training_variants_run(ratio, share, per_target, mean):
    config = HybridMappoConfig(
        **{**TINY, "num_iterations": 1},
        ratio=ratio,
        share_actor_params=share,
        alpha_per_target=per_target,
        alpha_mean=mean,
    )
    _, metrics = jax.jit(make_train(tiny_env(), config))(jax.random.PRNGKey(1))
    chex.assert_tree_all_finite(metrics)


def test_make_train_is_deterministic_and_vmaps_over_seeds():
    train = jax.jit(make_train(tiny_env(), HybridMappoConfig(**{**TINY, "num_iterations": 1})))
    a = train(jax.random.PRNGKey(3))[1]
    b = train(jax.random.PRNGKey(3))[1]
    chex.assert_trees_all_equal(a, b)
    batched = jax.jit(jax.vmap(make_train(tiny_env(), HybridMappoConfig(**{**TINY, "num_iterations": 1}))))
    metrics = batched(jax.random.split(jax.random.PRNGKey(4), 2))[1]
    assert metrics["mean_reward"].shape == (2, 1)


def test_remote_mask_is_respected_in_rollouts_and_by_the_eval_policy():
    env = tiny_env(area="remote")
    trainer = make_trainer(env, HybridMappoConfig(**TINY))
    state = trainer.init(jax.random.PRNGKey(0))
    policy = trainer.make_eval_policy(state.params, deterministic=False)
    params = env.default_params
    many = jax.jit(jax.vmap(policy, in_axes=(0, None, None)))
    step, mask_of = jax.jit(env.step), jax.jit(env.action_mask)
    _, env_state = jax.jit(env.reset)(jax.random.PRNGKey(1), params)
    for i in range(8):
        mask = mask_of(env_state, params)
        actions = many(jax.random.split(jax.random.PRNGKey(i), 50), env_state, params)
        allowed = jnp.take_along_axis(jnp.broadcast_to(mask, (50,) + mask.shape), actions["target"][..., None], -1)
        assert bool(jnp.all(allowed))
        action = jax.tree.map(lambda x: x[0], actions)
        _, env_state, *_ = step(jax.random.PRNGKey(i), env_state, action, params)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="num_minibatches"):
        HybridMappoConfig(num_envs=3, num_steps=5, num_minibatches=4)
    with pytest.raises(ValueError, match="ratio"):
        HybridMappoConfig(ratio="both")
    with pytest.raises(ValueError, match="actor_lr"):
        HybridMappoConfig(actor_lr=-1.0)


def test_literal_config_fields_are_the_checked_choices():
    import typing

    from vmjax import agents
    from vmjax.agents import diffusion, lhdppo, msrl
    from vmjax.core import validation

    assert typing.get_args(networks.Activation) == tuple(networks.ACTIVATIONS)
    assert typing.get_args(diffusion.Activation) == tuple(diffusion.ACTIVATIONS)
    assert msrl.MODES == ("split", "local", "local_edge") and lhdppo.REWARD_MODES == ("llm", "manual", "env")
    for cls in agents.LEARNERS:
        assert "activation" in validation.field_choices(cls) or "critic_activation" in validation.field_choices(cls)
    # a subclass that overrides a choice keeps it checked (the baselines of LHDPPO)
    assert validation.field_choices(lhdppo.HppoConfig)["ratio"] == lhdppo.RATIOS
    with pytest.raises(ValueError, match=r"HppoConfig\.ratio must be one of \('joint', 'per_head'\), got 'x'"):
        lhdppo.HppoConfig(ratio="x")
    with pytest.raises(ValueError, match=r"HybridMappoConfig\.activation must be one of \('relu', 'tanh'\)"):
        HybridMappoConfig(activation="gelu")


def test_make_trainer_dispatches_on_the_config_type():
    from vmjax import agents
    from vmjax.agents import lhdppo, trainer

    for cls, module in agents.LEARNERS.items():
        assert agents.learner_of(cls()) is module
    assert agents.learner_of(lhdppo.hppo_config()) is lhdppo  # a subclass: the nearest base in the table
    with pytest.raises(TypeError, match="no learner trains a dict"):
        agents.make_trainer(tiny_env(), {})
    built = make_trainer(tiny_env(), HybridMappoConfig(**TINY))
    assert isinstance(built, trainer.Trainer) and built.config == HybridMappoConfig(**TINY)
    assert agents.TrainerState is trainer.TrainerState


def test_gated_updates_train_only_once_the_buffer_is_full_enough():
    from vmjax.agents import replay, trainer

    buffer = replay.replay_add(replay.replay_init(jnp.float32(0.0), 8), jnp.arange(3, dtype=jnp.float32))

    def step(carry, key):
        return carry + 1, {"loss": jnp.float32(2.0)}

    for min_fill, updates, want in ((3, 4, 4), (4, 4, 0), (0, 0, 0)):
        carry, stats, ready = trainer.gated_updates(0, jax.random.key(0), buffer, min_fill, updates, step, ("loss",))
        assert int(carry) == want and bool(ready) == (want > 0)
        assert float(stats["loss"]) == (2.0 if want else 0.0)


def test_checkpoint_round_trip_and_resume_continue_the_same_run(tmp_path):
    trainer = make_trainer(tiny_env(), HybridMappoConfig(**TINY))
    run = jax.jit(trainer.run, static_argnums=1)
    start = jax.jit(trainer.init)(jax.random.PRNGKey(5))
    straight, _ = run(start, 2)
    half, _ = run(start, 1)
    checkpoint.save_checkpoint(tmp_path / "ckpt.msgpack", half)
    restored = checkpoint.load_checkpoint(tmp_path / "ckpt.msgpack", start)
    chex.assert_trees_all_equal(restored, jax.device_get(half))
    resumed, _ = run(jax.tree.map(jnp.asarray, restored), 1)
    chex.assert_trees_all_close(resumed.params, straight.params, rtol=1e-5, atol=1e-6)
    assert int(resumed.iteration) == int(straight.iteration) == 2

    (tmp_path / "bad.msgpack").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        checkpoint.load_checkpoint(tmp_path / "bad.msgpack", start)
    with pytest.raises(ValueError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "missing.msgpack", start)


def test_alpha_per_target_uses_the_chosen_targets_component():
    from vmjax.agents.hybrid_mappo import Policy

    policy = Policy(networks.DiscreteActor(3, (8,)), networks.ContinuousActor(3, (8,)), shared=True, per_target=True)
    obs = jax.random.normal(jax.random.PRNGKey(0), (2, 5))
    params = {
        "actor_d": policy.discrete.init(jax.random.PRNGKey(1), networks.with_agent_id(obs)),
        "actor_c": policy.continuous.init(jax.random.PRNGKey(2), networks.with_agent_id(obs)),
    }
    mean, log_std = policy.continuous.apply(params["actor_c"], networks.with_agent_id(obs))
    target = jnp.array([2, 0])
    raw = jnp.array([[0.7], [0.1]])
    got = policy.continuous_distribution(params, obs, target).log_prob(raw)
    sigma = np.exp(np.asarray(log_std)[[0, 1], [2, 0]])
    mu = np.asarray(mean)[[0, 1], [2, 0]]
    want = -0.5 * ((raw[:, 0] - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(got, want, rtol=1e-5)
