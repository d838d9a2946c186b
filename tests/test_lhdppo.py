"""LHDPPO (spec 000 §5) on a tiny CrossRealityPrivacy-v0: jitted training over seeds (finite, deterministic),
no retracing of the update, the annealed coefficients (§5.5), ratio 1 before the first gradient step (stored
chain noise, eq. 29), the positive-advantage mask of the auxiliary loss (eq. 33), config errors, the HDPPO reward
switch and the evaluation policy under vmap over worlds."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax.agents import lhdppo
from vmjax.mobility import Trace

TINY = {
    "num_envs": 2,
    "num_steps": 6,
    "num_iterations": 3,
    "update_epochs": 2,
    "num_minibatches": 2,
    "denoising_steps": 2,
    "state_hidden": (16,),
    "trunk_hidden": (16,),
    "time_embed_dim": 4,
    "time_hidden": 8,
    "critic_hidden": (16,),
}
M, N = 2, 3


def _env():
    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=M, num_rsus=N, max_steps=5, hop_neighbours=2)
    rng = np.random.default_rng(0)
    bank = rng.uniform([6000.0, 6000.0], [13000.0, 16000.0], (8, 4, 2)).astype(np.float32)  # replayed traces
    return env, env.default_params.replace(trace_bank=Trace.create(bank))


@pytest.fixture(scope="module")
def setup():
    env, params = _env()
    config = lhdppo.LhdppoConfig(**TINY)
    return env, params, config, lhdppo.make_components(env, config, params)


@pytest.fixture(scope="module")
def batch(setup):
    """One rollout's flattened batch under the initial params (jitted rollout + GAE)."""
    _, _, _, comp = setup
    state = jax.jit(comp.init)(jax.random.key(3))

    def collect(state):
        _, _, traj, _ = comp.rollout(state, jax.random.key(4))
        return comp.prepare(state.params, traj)

    return state, jax.jit(collect)(state)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating))


def test_vmapped_training_is_finite_deterministic_and_follows_the_schedules():
    env, params = _env()
    config = lhdppo.LhdppoConfig(**TINY)
    train = jax.jit(jax.vmap(lhdppo.make_train(env, config, params)))
    k0, k1 = jax.random.key(0), jax.random.key(1)
    state, metrics = train(jnp.stack([k0, k0, k1]))
    assert _finite(state.params) and _finite(metrics)
    assert metrics["mean_reward"].shape == (3, config.num_iterations)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[0], metrics), jax.tree.map(lambda x: x[1], metrics))
    assert not np.allclose(metrics["mean_reward"][0], metrics["mean_reward"][2])
    # the annealed coefficients of iterations 0, mid, end (§5.5: 0.1 -> 0.001 and 0.01 -> 0, linear)
    np.testing.assert_allclose(metrics["ent_coef"][0], [0.1, 0.0505, 0.001], rtol=1e-6)
    np.testing.assert_allclose(metrics["aux_coef"][0], [0.01, 0.005, 0.0], atol=1e-9)
    # the first minibatch of every update is scored with the rollout's params: ratio 1 (eq. 29, stored noise)
    np.testing.assert_allclose(metrics["ratio_max_dev_first"], 0.0, atol=1e-5)
    assert np.all(metrics["entropy_d"] > 0.5 * np.log(N + 1))  # no saturated start (module docstring)
    for name in (
        "rollout_utility",
        "rollout_entropy_bits",
        "rollout_latency_s",
        "rollout_qos_loss",
        "entropy_c",
        "aux_loss",
        "clip_fraction",
        "value_loss",
        "policy_loss",
    ):
        assert name in metrics


def test_annealed_schedule_values():
    f = lambda k: float(lhdppo.annealed(0.1, 0.001, jnp.int32(k), 11))
    np.testing.assert_allclose([f(0), f(5), f(10), f(20)], [0.1, 0.0505, 0.001, 0.001], rtol=1e-6)
    coefs = lhdppo.coefficients(lhdppo.LhdppoConfig(num_iterations=1), jnp.int32(0))
    assert float(coefs["ent_coef"]) == pytest.approx(0.1) and float(coefs["aux_coef"]) == pytest.approx(0.01)


def test_update_is_traced_once(setup, batch):
    """The update keeps its state's structure and dtypes (so lax.scan over iterations and repeated jit calls do
    not retrace); checked by tracing only (jax.eval_shape: no compile), the compiled run is in the test above."""
    _, _, _, comp = setup
    state, _ = batch
    chex.clear_trace_counter()
    update = jax.jit(chex.assert_max_traces(comp.update, n=1))
    next_state, metrics = jax.eval_shape(update, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(next_state, state)
    jax.eval_shape(update, next_state)  # a second iteration: a cache hit, no second trace
    jax.eval_shape(update, state)
    assert metrics["ratio_max_dev_first"].shape == ()


def test_stored_noise_log_prob_gives_ratio_one_before_any_step(batch, setup):
    _, _, _, comp = setup
    state, data = batch
    coefs = lhdppo.coefficients(setup[2], jnp.int32(0))
    _, stats = jax.jit(comp.loss_fn)(state.params, data, jax.random.key(0), coefs)
    assert float(stats["ratio_max_dev"]) < 1e-5
    assert float(stats["approx_kl"]) == pytest.approx(0.0, abs=1e-7)
    # fresh chain noise (not the stored one) gives a different log-prob: the stored noise matters
    fresh = data.sample._replace(noise_d=data.sample.noise_d._replace(x_T=data.sample.noise_d.x_T + 1.0))
    _, stats_fresh = jax.jit(comp.loss_fn)(state.params, data._replace(sample=fresh), jax.random.key(0), coefs)
    assert float(stats_fresh["ratio_max_dev"]) > 1e-4


def test_aux_loss_only_uses_positive_advantage_samples(batch, setup):
    _, _, _, comp = setup
    state, data = batch
    size = data.advantage.shape[0]
    adv = jnp.where(jnp.arange(size) % 2 == 0, 1.0, -1.0).at[1].set(0.0)  # A = 0 counts as non-positive
    data = data._replace(advantage=adv)
    np.testing.assert_array_equal(lhdppo.aux_weight(adv), (np.arange(size) % 2 == 0).astype(np.float32))
    coefs = {"ent_coef": jnp.float32(0.0), "aux_coef": jnp.float32(1.0)}
    aux = jax.jit(lambda p, d: comp.loss_fn(p, d, jax.random.key(5), coefs)[1]["aux_loss"])
    base = float(aux(state.params, data))
    assert base > 0.0
    negative = jnp.asarray(np.arange(size) % 2 == 1)
    moved = data._replace(
        state=jnp.where(negative[:, None], data.state + 3.0, data.state),
        sample=data.sample._replace(choice=jnp.where(negative[:, None], N - data.sample.choice, data.sample.choice)),
    )
    assert float(aux(state.params, moved)) == pytest.approx(base, rel=1e-6)
    moved_pos = data._replace(state=jnp.where(negative[:, None], data.state, data.state + 3.0))
    assert abs(float(aux(state.params, moved_pos)) - base) > 1e-6
    none = data._replace(advantage=-jnp.abs(adv))
    assert float(aux(state.params, none)) == 0.0


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_envs", 0),
        ("gamma", 1.5),
        ("clip_eps", 0.0),
        ("ent_coef_init", -0.1),
        ("aux_coef_final", -1.0),
        ("reward_mode", "bogus"),
        ("aux_loss_norm", "l3"),
        ("denoising_steps", 0),
        ("start_noise_scale", -1.0),
        ("head_gain", 0.0),
        ("critic_hidden", (0,)),
        ("logit_clip", -1.0),
        ("num_minibatches", 5),
        ("time_embed_dim", 5),
        ("log_std_init", 3.0),
    ],
)
def test_bad_config_values_raise_naming_the_field(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        lhdppo.LhdppoConfig(**{field: value})


def test_hdppo_trains_on_the_manual_reward_and_eval_policy_vmaps(setup, batch):
    env, params, _, _ = setup
    comp = lhdppo.make_components(env, lhdppo.hdppo_config(**TINY), params)

    def collect(key):
        state = comp.init(key)
        _, _, traj, log = comp.rollout(state, key)
        return traj.reward, log

    reward, log = jax.jit(collect)(jax.random.key(0))
    np.testing.assert_allclose(reward, log["rollout_utility"], rtol=1e-5, atol=1e-6)  # eq. (20), mean over AVs

    trainer = lhdppo.make_trainer(env, lhdppo.LhdppoConfig(**TINY), params)
    state = batch[0]  # a TrainerState (make_eval_policy also takes its params)
    num_worlds = 3
    _, worlds = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(2), num_worlds), params)
    keys = jax.random.split(jax.random.key(3), num_worlds)

    @jax.jit
    def act(keys):
        det = jax.vmap(trainer.make_eval_policy(state), in_axes=(0, 0, None))
        sto = jax.vmap(trainer.make_eval_policy(state, deterministic=False), in_axes=(0, 0, None))
        a = det(keys, worlds, params)
        out = jax.vmap(env.outcome, in_axes=(0, 0, None))(worlds, a, params)  # the env accepts the actions
        return a, sto(keys, worlds, params), out["reward_llm"]

    a, a_sto, reward = act(keys)
    a_again = act(keys)[0]
    assert a["target"].shape == (num_worlds, M) and a["target"].dtype == jnp.int32
    assert a["perturbation"].shape == (num_worlds, M, 2) and _finite(a)
    for action in (a, a_sto):
        assert np.all((action["target"] >= 0) & (action["target"] <= N))
    chex.assert_trees_all_equal(a, a_again)
    assert not np.allclose(a["perturbation"], a_sto["perturbation"])
    assert _finite(reward)
