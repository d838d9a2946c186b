"""MAPPO-DDPG (spec 003 §8): replay buffer, soft updates, config validation, and tiny jitted training runs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import networks
from vmjax.agents.mappo_ddpg import (
    DeterministicActor,
    MappoDdpgConfig,
    Policy,
    make_train,
    make_trainer,
    replay_add,
    replay_init,
    replay_sample,
    soft_update,
)
from vmjax.agents.trainer import Trainer

# tiny runs: compile time dominates, so ask XLA for a quick, unoptimized compile (3x faster here)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
TINY = {
    "num_envs": 2,
    "num_steps": 8,
    "num_iterations": 2,
    "update_epochs": 2,
    "num_minibatches": 2,
    "batch_size": 16,
    "buffer_size": 64,
    "hidden_sizes": (16, 16),
}


def _env():
    return vmjax.make("AvatarPremigration-v0", num_vehicles=3, num_rsus=3, max_steps=8, area="remote")


# ---------------------------------------------------------------------- replay buffer and soft update
def test_replay_buffer_insert_wraps_around():
    buffer = replay_init({"x": jnp.float32(0.0), "a": jnp.zeros(2, jnp.int32)}, capacity=5)
    assert buffer.capacity == 5 and int(buffer.size) == 0 and int(buffer.position) == 0
    buffer = replay_add(buffer, {"x": jnp.array([0.0, 1.0, 2.0]), "a": jnp.array([[0, 0], [1, 1], [2, 2]])})
    assert (int(buffer.position), int(buffer.size)) == (3, 3)
    np.testing.assert_array_equal(buffer.data["x"], [0, 1, 2, 0, 0])
    # 4 more: slots 3, 4, then wrap to 0, 1 (the oldest entries are overwritten)
    buffer = replay_add(buffer, {"x": jnp.array([10.0, 11.0, 12.0, 13.0]), "a": jnp.full((4, 2), 7)})
    assert (int(buffer.position), int(buffer.size)) == (2, 5)
    np.testing.assert_array_equal(buffer.data["x"], [12, 13, 2, 10, 11])
    np.testing.assert_array_equal(buffer.data["a"][:, 0], [7, 7, 2, 7, 7])
    assert buffer.data["a"].dtype == jnp.int32
    with pytest.raises(ValueError, match="capacity 5"):
        replay_add(buffer, {"x": jnp.zeros(6), "a": jnp.zeros((6, 2), jnp.int32)})


def test_replay_buffer_samples_only_filled_slots_uniformly():
    buffer = replay_init(jnp.float32(0.0), capacity=8)
    buffer = replay_add(buffer, jnp.array([5.0, 6.0, 7.0]))
    sample = jax.jit(replay_sample, static_argnums=2)(buffer, jax.random.key(0), 3000)
    values, counts = np.unique(np.asarray(sample), return_counts=True)
    np.testing.assert_array_equal(values, [5, 6, 7])  # never an unfilled (zero) slot
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.05)
    full = replay_add(replay_add(buffer, jnp.arange(5.0) + 10), jnp.array([20.0]))  # wrapped, all 8 filled
    values = np.unique(np.asarray(replay_sample(full, jax.random.key(1), 2000)))
    np.testing.assert_array_equal(values, np.sort(np.asarray(full.data)))


def test_soft_update_formula():
    target = {"w": jnp.array([1.0, 2.0]), "b": jnp.float32(-1.0)}
    online = {"w": jnp.array([3.0, 6.0]), "b": jnp.float32(1.0)}
    out = soft_update(target, online, 0.01)  # 0.99 * target + 0.01 * online
    np.testing.assert_allclose(out["w"], [1.02, 2.04], rtol=1e-6)
    np.testing.assert_allclose(out["b"], -0.98, rtol=1e-6)
    np.testing.assert_allclose(soft_update(target, online, 1.0)["w"], online["w"])


# ---------------------------------------------------------------------- config and policy
@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("tau", 1.5, r"MappoDdpgConfig\.tau"),
        ("batch_size", 0, r"MappoDdpgConfig\.batch_size"),
        ("buffer_size", 100, r"MappoDdpgConfig\.buffer_size"),  # < batch_size 256
        ("critic_q_lr", 0.0, r"MappoDdpgConfig\.critic_q_lr"),
        ("noise_sigma_end", -0.1, r"MappoDdpgConfig\.noise_sigma_end"),
        ("target_discrete", "mean", r"MappoDdpgConfig\.target_discrete"),
        ("num_minibatches", 3, r"MappoDdpgConfig\.num_minibatches"),
    ],
)
def test_config_validation_names_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        MappoDdpgConfig(**{field: value})


def test_config_defaults_follow_spec():
    c = MappoDdpgConfig()
    assert (c.buffer_size, c.batch_size, c.tau, c.actor_c_lr, c.critic_q_lr) == (20_000, 256, 0.01, 1e-4, 1e-3)
    assert (c.noise_sigma_start, c.noise_sigma_end, c.gamma, c.clip_eps, c.ddpg_updates_per_step) == (
        0.1,
        0.01,
        0.95,
        0.2,
        1,
    )


@pytest.mark.parametrize("shared", [True])  # per-agent actors are what the training runs below use
def test_policy_respects_mask_and_unit_interval(shared):
    n, d, m = 3, 5, 4
    policy = Policy(networks.DiscreteActor(m, (8,)), DeterministicActor((8,)), shared, eval_sigma=0.5)
    obs = jax.random.normal(jax.random.key(0), (6, n, d))
    if shared:
        params = {
            "actor_d": policy.discrete.init(jax.random.key(1), networks.with_agent_id(obs[0])),
            "actor_c": policy.continuous.init(jax.random.key(2), networks.with_agent_id(obs[0])),
        }
    else:
        params = {
            "actor_d": networks.init_per_agent(policy.discrete, jax.random.key(1), n, obs[0, 0]),
            "actor_c": networks.init_per_agent(policy.continuous, jax.random.key(2), n, obs[0, 0]),
        }
    mask = jax.random.bernoulli(jax.random.key(3), 0.4, (6, n, m)).at[..., 0].set(True)
    act = jax.jit(policy.act, static_argnums=4, compiler_options=FAST_COMPILE)
    for i in range(5):
        action, log_prob = act(jax.random.key(10 + i), params, obs, mask, False)
        assert action["target"].dtype == jnp.int32 and action["target"].shape == (6, n)
        assert bool(jnp.all(jnp.take_along_axis(mask, action["target"][..., None], -1)))
        assert bool(jnp.all((action["fraction"] >= 0) & (action["fraction"] <= 1)))
        assert bool(jnp.all(jnp.isfinite(log_prob)))
    greedy, _ = act(jax.random.key(0), params, obs, mask, True)
    alpha, _ = policy.mu(params["actor_c"], obs)
    np.testing.assert_allclose(greedy["fraction"], alpha)  # no exploration noise when deterministic


# ---------------------------------------------------------------------- tiny jitted training runs
# One compile of the whole training (`jax.vmap` over 2 seeds of `make_train`) serves most checks: XLA compile time
# on CPU dominates this file.
@pytest.fixture(scope="module")
def tiny_run():
    env = _env()
    config = MappoDdpgConfig(**TINY)
    train = jax.jit(jax.vmap(make_train(env, config)), compiler_options=FAST_COMPILE)
    keys = jnp.stack([jax.random.key(0), jax.random.key(7)])
    state, metrics = train(keys)
    return {
        "env": env,
        "config": config,
        "train": train,
        "keys": keys,
        "state": state,
        "metrics": jax.tree.map(np.asarray, metrics),
    }


def _seed(tree, index=0):
    return jax.tree.map(lambda x: x[index], tree)


def test_vmap_over_seeds_finite_losses(tiny_run):
    state, metrics = tiny_run["state"], tiny_run["metrics"]
    for key in (
        "iteration",
        "env_steps",
        "mean_reward",
        "episodes",
        "episode_return",
        "episode_total_latency_s",
        "policy_loss_d",
        "value_loss_d",
        "entropy_d",
        "q_loss",
        "actor_loss_c",
    ):
        assert key in metrics, key
        assert metrics[key].shape == (2, 2), key  # [seed, iteration]
        assert np.all(np.isfinite(metrics[key])), key
    np.testing.assert_array_equal(state.iteration, [2, 2])
    np.testing.assert_array_equal(metrics["env_steps"], [[16, 32]] * 2)
    np.testing.assert_array_equal(metrics["buffer_size"], [[16, 32]] * 2)
    # DDPG starts once the buffer holds one batch (16 = 8 steps of 2 worlds): step 8 of iteration 1, then every step
    np.testing.assert_array_equal(metrics["ddpg_updates"], [[1, 8]] * 2)
    assert np.all(metrics["q_loss"] > 0) and np.all(metrics["episodes"] == 2)
    assert np.all(metrics["exploration_sigma"][:, 0] > metrics["exploration_sigma"][:, 1])  # decaying noise
    chex.assert_tree_all_finite(state.params)
    assert not np.allclose(metrics["episode_total_latency_s"][0], metrics["episode_total_latency_s"][1])


def test_same_key_same_params(tiny_run):
    state, _ = tiny_run["train"](tiny_run["keys"])
    chex.assert_trees_all_equal(state.params, tiny_run["state"].params)
    chex.assert_trees_all_equal(state.buffer, tiny_run["state"].buffer)
    assert not np.allclose(
        state.params["critic_q"]["params"]["Dense_0"]["kernel"][0],
        state.params["critic_q"]["params"]["Dense_0"]["kernel"][1],
    )


def test_update_compiles_once_and_returns_the_same_trainer_type(tiny_run):
    built = make_trainer(tiny_run["env"], tiny_run["config"])
    assert isinstance(built, Trainer)
    update = jax.jit(chex.assert_max_traces(built.update, n=1), compiler_options=FAST_COMPILE)
    state = _seed(tiny_run["state"])
    s3, m3 = update(state)
    _, m4 = update(s3)  # a retrace here would raise
    again, _ = update(state)
    chex.assert_trees_all_equal(again.params, s3.params)
    assert int(m3["iteration"]) == 3 and int(m4["iteration"]) == 4 and int(m4["ddpg_updates"]) == 8
    assert np.isfinite(float(m4["q_loss"])) and np.isfinite(float(m4["actor_loss_c"]))

    def differs(x, y):
        return any(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), x, y)))

    for name in ("actor_d", "critic_d", "actor_c", "critic_q"):  # every parameter group learns in an update
        assert differs(state.params[name], s3.params[name]), name
    for name in ("actor_c", "critic_q"):  # soft-updated targets move, but trail the online nets
        assert differs(state.target_params[name], s3.target_params[name]), name
        assert differs(s3.params[name], s3.target_params[name]), name


def test_discrete_mask_respected_in_rollouts_and_eval(tiny_run):
    env, state = tiny_run["env"], _seed(tiny_run["state"])
    data = state.buffer.data
    mask, target = np.asarray(data.mask[:32]), np.asarray(data.target[:32])  # the 32 filled slots
    assert np.all(mask.sum(-1) == 2)  # remote area: {serving, next}, a non-trivial mask
    assert np.all(np.take_along_axis(mask, target[..., None], -1))
    np.testing.assert_array_equal(np.asarray(data.next_mask[:32]).sum(-1), 2)

    trainer = make_trainer(env, tiny_run["config"])
    world = _seed(state.env_state.env_state)  # world 0 of the unwrapped env, as the eval policy expects
    env_mask = np.asarray(env.action_mask(world, env.default_params))
    for deterministic in (False, True):
        policy = jax.jit(trainer.make_eval_policy(state.params, deterministic), compiler_options=FAST_COMPILE)
        for i in range(4):
            action = policy(jax.random.key(i), world, env.default_params)
            assert np.all(np.take_along_axis(env_mask, np.asarray(action["target"])[:, None], -1))
            assert np.all((np.asarray(action["fraction"]) >= 0) & (np.asarray(action["fraction"]) <= 1))
