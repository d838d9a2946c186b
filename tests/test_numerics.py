"""Issue 16, numerics: low SNR keeps rewards and training finite (log1p rates), opt-in checkify checks of params
inside jit / vmap (`vmjax.core.checked`), and the validation gaps (finite range highs, noise densities, bool config
fields, another env's params)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax import net
from vmjax.agents import dm_mappo, hybrid_mappo, lhdppo, msrl
from vmjax.core import rollout, uniform_random_policy
from vmjax.mobility import Trace


def _bank(steps, vehicles, low, high):
    return Trace.create(np.random.default_rng(0).uniform(low, high, (steps, vehicles, 2)).astype(np.float32))


def test_shannon_rate_positive_at_tiny_snr():
    # log2(1 + 1e-9) == 0 in float32; B log1p(snr) / ln 2 is not, and a 0 SNR is floored, not 0
    rate = net.shannon_rate_bps(1e7, 1.0, jnp.float32(1e-9), 1.0)
    assert float(rate) == pytest.approx(1e7 * 1e-9 / np.log(2.0), rel=1e-5)
    assert float(net.shannon_rate_bps(1e7, 1.0, jnp.float32(0.0), 1.0)) == pytest.approx(net.MIN_RATE_BPS)
    assert np.isfinite(float(net.transfer_latency_s(1e9, net.shannon_rate_bps(1e7, 1.0, 0.0, 1.0))))


def _avatar():
    env = vmjax.make("AvatarPremigration-v0", num_vehicles=2, num_rsus=3, max_steps=4)
    return env, env.default_params.replace(path_loss_exponent=5.0)


def _twin_routing():
    # before log1p: 0.8% of the random rollout's rewards -inf (the smaller V = 2, 6 RSUs had none)
    env = vmjax.make("TwinRouting-v0", num_vehicles=4, num_rsus=8, num_uavs=2, max_steps=8)
    return env, env.default_params.replace(path_loss_exponent=4.0)


def _twin_split():
    env = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=4, max_steps=4)
    params = env.default_params.replace(path_loss_exponent=4.0)
    return env, params.replace(trace_bank=_bank(5, 4, 0.0, 5000.0))


def _cross_reality():
    env = vmjax.make("CrossRealityPrivacy-v0", num_vehicles=2, num_rsus=3, max_steps=4, hop_neighbours=2)
    params = env.default_params.replace(noise_density_dbm_per_hz=-100.0)
    return env, params.replace(trace_bank=_bank(6, 4, [6000.0, 6000.0], [13000.0, 16000.0]))


LOW_SNR = {  # the settings: each made most rewards -inf before log1p
    "avatar_exponent_5": (
        _avatar,
        hybrid_mappo,
        hybrid_mappo.HybridMappoConfig(num_envs=2, num_steps=4, update_epochs=1, num_minibatches=1, hidden_sizes=(8,)),
    ),
    "twin_routing_exponent_4": (
        _twin_routing,
        dm_mappo,
        dm_mappo.DmMappoConfig(num_envs=2, num_steps=4, update_epochs=1, num_minibatches=1, hidden_sizes=(8,)),
    ),
    "twin_split_exponent_4": (
        _twin_split,
        msrl,
        msrl.MsrlConfig(num_envs=2, num_steps=4, update_epochs=1, num_minibatches=1),
    ),
    "cross_reality_noise_-100": (
        _cross_reality,
        lhdppo,
        lhdppo.LhdppoConfig(
            num_envs=2,
            num_steps=4,
            update_epochs=1,
            num_minibatches=1,
            denoising_steps=2,
            state_hidden=(8,),
            trunk_hidden=(8,),
            time_embed_dim=4,
            time_hidden=8,
            critic_hidden=(8,),
        ),
    ),
}


def random_rewards(env, params, key, worlds=4, steps=4):
    """Rewards [steps, worlds, N] of uniformly random actions (`vmjax.core.uniform_random_policy`)."""
    policy = uniform_random_policy(env, params)
    run = jax.jit(lambda k: rollout(env, policy, k, params, worlds, steps, lambda reward, info: reward))
    return run(key)


@pytest.mark.parametrize("case", list(LOW_SNR))
def test_low_snr_rewards_and_training_stay_finite(case):
    make_env, module, config = LOW_SNR[case]
    env, params = make_env()
    rewards = np.asarray(random_rewards(env, params, jax.random.key(0), worlds=8, steps=8))
    assert np.all(np.isfinite(rewards)), f"{case}: {np.mean(~np.isfinite(rewards)):.0%} of the rewards not finite"
    trainer = module.make_trainer(env, config, params)
    state = jax.jit(trainer.init)(jax.random.key(0))
    _, metrics = jax.jit(trainer.run, static_argnums=1)(state, 1)
    no_episode = np.asarray(metrics["episodes"]) == 0  # episode means are NaN (logged null) where none finished
    for name, value in metrics.items():
        value = np.asarray(value)
        if name.startswith("episode_"):
            value = np.where(no_episode, 0.0, value)
        assert np.all(np.isfinite(value)), f"{case}: training metric {name} = {value}"
    assert np.isfinite(np.asarray(metrics["mean_reward"])).all()


# ---------------------------------------------------------------------- checkify: bad params inside jit / vmap
def _split_eval(env, params, key):
    _, state = env.reset(key, params)
    action = jnp.zeros((env.num_agents,), jnp.int32)
    return env.step(key, state, action, params)[2]


def test_checked_env_names_a_bad_param_inside_vmapped_ablation():
    env = vmjax.core.checked(vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=4, max_steps=4))
    params = env.default_params
    sweep = lambda c: jax.vmap(lambda v: params.replace(gpu_hz_nominal=v))(jnp.asarray(c))
    evaluate = vmjax.core.run_checked(jax.jit(jax.vmap(lambda p: _split_eval(env, p, jax.random.key(0)))))
    rewards = evaluate(sweep([10e9, 20e9]))  # valid: passes, finite
    assert rewards.shape == (2, 2) and np.all(np.isfinite(np.asarray(rewards)))
    with pytest.raises(Exception, match="EnvParams.gpu_hz_nominal must be > 0"):
        evaluate(sweep([10e9, -20e9]))


def test_checked_reports_non_finite_outputs():
    check = vmjax.core.run_checked(jax.jit(lambda r: vmjax.core.checks.check_finite_tree("step reward", r)))
    check(jnp.ones(3))
    with pytest.raises(Exception, match="step reward is not finite"):
        check(jnp.array([1.0, -jnp.inf, 0.0]))


# ---------------------------------------------------------------------- validation gaps
@pytest.mark.parametrize(
    "env_id, field",
    [
        ("AvatarPremigration-v0", "task_bits_high"),
        ("TwinSplit-v0", "gpu_scale_high"),
        ("CrossRealityPrivacy-v0", "up_bits_high"),
    ],
)
def test_infinite_range_high_rejected(env_id, field):
    env = vmjax.make(env_id)
    with pytest.raises(ValueError, match=f"{field} must be finite"):
        env.validate_params(env.default_params.replace(**{field: float("inf")}))


@pytest.mark.parametrize("env_id", ["TwinSplit-v0", "CrossRealityPrivacy-v0"])
def test_noise_density_must_be_physical(env_id):
    env = vmjax.make(env_id)
    env.validate_params(env.default_params.replace(noise_density_dbm_per_hz=-100.0))
    with pytest.raises(ValueError, match="noise_density_dbm_per_hz must be < -30"):
        env.validate_params(env.default_params.replace(noise_density_dbm_per_hz=0.0))


@pytest.mark.parametrize(
    "env_id, field, value",
    [
        ("AvatarPremigration-v0", "rayleigh_fading", "false"),
        ("AvatarPremigration-v0", "obs_serving_onehot", 2),
        ("TwinSplit-v0", "rayleigh_fading", "false"),
        ("CrossRealityPrivacy-v0", "alpha_gate", "true"),
    ],
)
def test_bool_config_fields_type_checked(env_id, field, value):
    with pytest.raises(TypeError, match=f"{field} must be a bool"):
        vmjax.make(env_id, **{field: value})


def test_params_of_another_env_rejected_naming_both():
    split, routing = vmjax.make("TwinSplit-v0"), vmjax.make("TwinRouting-v0")
    for env, other in ((split, routing), (routing, split)):
        with pytest.raises(
            TypeError, match=r"(?s)got params of type .*twin_\w+\.EnvParams.*its own .*twin_\w+\.EnvParams"
        ):
            env.reset(jax.random.key(0), other.default_params)
    with pytest.raises(TypeError, match="TwinSplit-v0 got params"):  # traced params too
        jax.jit(lambda p: split.reset(jax.random.key(0), p))(routing.default_params)
