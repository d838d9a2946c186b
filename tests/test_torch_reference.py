"""The PyTorch Hybrid-MAPPO reference trainer (bench/reference/torch_hybrid_mappo.py) runs: a tiny training
iteration over per-world NumPy envs gives finite losses, and the masked categorical never samples a masked
target. Skipped where PyTorch is not installed (it is the optional `bench` extra)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.reference import torch_hybrid_mappo as th  # noqa: E402


def test_tiny_training_run_has_finite_losses():
    config = th.TorchHybridMappoConfig(num_minibatches=2, update_epochs=2)
    result = th.train(
        num_envs=2, num_steps=8, num_iterations=1, seed=0, config=config, env_config={"max_steps": 5}, num_threads=1
    )
    assert result["env_steps"] == 16 and len(result["iteration_s"]) == 1 and result["wall_s"] > 0
    metrics = result["metrics"][0]
    losses = ("policy_loss_d", "policy_loss_c", "value_loss_d", "value_loss_c", "entropy_d", "entropy_c")
    for name in losses + ("mean_reward",):
        assert math.isfinite(metrics[name]), name
    assert metrics["episodes"] == 2 and metrics["mean_reward"] < 0  # each world ended one 5-step episode
    assert all(torch.isfinite(p).all() for p in result["policy"].parameters())
    assert result["torch_threads"] == 1


def test_masked_targets_are_never_sampled_and_shapes_follow_the_agents():
    torch.manual_seed(0)
    num_agents, obs_dim, num_targets = 3, 15, 6
    policy = th.HybridPolicy(num_agents, obs_dim, num_targets, th.TorchHybridMappoConfig())
    obs = torch.rand(500, num_agents, obs_dim)
    mask = torch.from_numpy(np.random.default_rng(0).random((500, num_agents, num_targets)) < 0.4)
    mask[..., 2] = True  # at least one target allowed everywhere
    with torch.no_grad():
        target, raw, logp_d, logp_c = policy.act(obs, mask)
        greedy = policy.act(obs, mask, deterministic=True)[0]
    assert target.shape == logp_d.shape == logp_c.shape == (500, num_agents) and raw.shape == (500, num_agents, 1)
    assert mask.gather(-1, target[..., None]).all() and mask.gather(-1, greedy[..., None]).all()
    assert torch.isfinite(logp_d).all() and torch.isfinite(logp_c).all()
    values_d, values_c = policy.values(obs)
    assert values_d.shape == values_c.shape == (500, num_agents)


def test_ppo_math_agrees_with_vmjax():
    """GAE (truncation bootstrap included), the clipped surrogate and the clipped value loss are vmjax's."""
    from vmjax.agents import ppo

    rng = np.random.default_rng(0)
    t, e, n = 7, 3, 4
    rewards, values, next_values = (rng.normal(size=(t, e, n)).astype(np.float32) for _ in range(3))
    terminated = rng.random((t, e)) < 0.1
    done = terminated | (rng.random((t, e)) < 0.2)
    adv, ret = th.gae(*(torch.from_numpy(x) for x in (rewards, values, next_values, terminated, done)), 0.95, 0.9)
    adv_j, ret_j = ppo.gae(rewards, values, next_values, terminated[..., None], done[..., None], 0.95, 0.9)
    np.testing.assert_allclose(adv.numpy(), adv_j, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret.numpy(), ret_j, rtol=1e-5, atol=1e-5)
    logp, old, a, v, v_old, r = (rng.normal(size=64).astype(np.float32) * 0.3 for _ in range(6))
    loss = th.clipped_surrogate_loss(*(torch.from_numpy(x) for x in (logp, old, a)), 0.2)[0]
    np.testing.assert_allclose(loss.item(), ppo.clipped_surrogate_loss(logp, old, a, 0.2)[0], rtol=1e-5)
    vloss = th.value_loss(*(torch.from_numpy(x) for x in (v, v_old, r)), 0.2)
    np.testing.assert_allclose(vloss.item(), ppo.value_loss(v, v_old, r, 0.2), rtol=1e-5)
