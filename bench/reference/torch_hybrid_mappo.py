"""Hybrid-MAPPO in PyTorch (CPU) over per-world NumPy envs: the training loop a user would write instead.

    from bench.reference.torch_hybrid_mappo import train
    result = train(num_envs=20, num_steps=100, num_iterations=2, seed=0)
    result["env_steps_per_s"], result["iteration_s"]

    python -m bench.reference.torch_hybrid_mappo --envs 20 --steps 100 --iterations 2

It mirrors `vmjax.agents.hybrid_mappo` with the hyper-parameters of a `vmjax train` run (`HybridMappoConfig`
defaults with the command line's learning rates 3e-4): per-agent discrete actors (masked categorical over
the target RSU) and continuous actors (Gaussian over alpha with a sigmoid mean and a learned
state-independent log-std, the executed alpha clipped to [0, 1], log-probs on the raw sample), two
centralized critics on the world state (all observations + the agent's one-hot id), GAE with the value of
the final (pre-reset) observation bootstrapped at truncation, and per-branch clipped PPO losses with MAPPO
value clipping, entropy bonuses, per-minibatch advantage normalization, gradient-norm clipping and four
Adam optimizers. Per-agent parameters are stacked on an agent axis (one batched matmul per layer).

The environments are a Python list of `AvatarPremigrationNumpy` worlds stepped one after another, each
reset by the loop when its episode ends, as users of gymnasium-style simulators typically do. Needs the
optional `bench` extra (`pip install -e '.[bench]'`, the PyTorch CPU build is enough).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from bench.reference.numpy_avatar import AvatarPremigrationNumpy, ReferenceParams

MASKED_LOGIT = -1e9
BRANCHES = ("actor_d", "actor_c", "critic_d", "critic_c")


@dataclasses.dataclass(frozen=True)
class TorchHybridMappoConfig:
    """Hyper-parameters (vmjax `HybridMappoConfig` defaults; learning rates of `vmjax train`)."""

    num_envs: int = 20
    num_steps: int = 100
    num_iterations: int = 150
    update_epochs: int = 10
    num_minibatches: int = 4
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2  # 0 disables value clipping
    entropy_coef: float = 0.01
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    reward_scale: float = 0.1
    hidden_sizes: tuple[int, ...] = (64, 64)
    log_std_init: float = -1.0

    def __post_init__(self):
        for name in ("num_envs", "num_steps", "num_iterations", "update_epochs", "num_minibatches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TorchHybridMappoConfig.{name} must be an integer >= 1, got {value!r}")
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(
                f"TorchHybridMappoConfig.num_minibatches ({self.num_minibatches}) must divide num_envs * num_steps "
                f"({self.num_envs * self.num_steps})"
            )


# ====================================================================== networks
class AgentLinear(nn.Module):
    """One dense layer per agent, weights stacked on an agent axis: x [..., A, in] -> [..., A, out].
    Orthogonal init with `gain`, zero bias (the MAPPO defaults vmjax uses)."""

    def __init__(self, num_agents: int, in_features: int, out_features: int, gain: float):
        super().__init__()
        weight = torch.empty(num_agents, out_features, in_features)
        for w in weight:
            nn.init.orthogonal_(w, gain)
        self.weight = nn.Parameter(weight.transpose(1, 2).contiguous())  # [A, in, out]
        self.bias = nn.Parameter(torch.zeros(num_agents, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        a, i = x.shape[-2:]
        x = x.reshape(-1, a, i).transpose(0, 1)  # [A, batch, in]
        y = torch.baddbmm(self.bias[:, None, :], x, self.weight)  # [A, batch, out]
        return y.transpose(0, 1).reshape(*lead, a, -1)


def _agent_mlp(num_agents, in_features, hidden_sizes, out_features, out_gain) -> nn.Sequential:
    layers, width = [], in_features
    for hidden in hidden_sizes:
        layers += [AgentLinear(num_agents, width, hidden, math.sqrt(2.0)), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, AgentLinear(num_agents, width, out_features, out_gain))


def _orthogonal_linear(in_features, out_features, gain) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class DiscreteActors(nn.Module):
    """pi^d_v(a^d | o_v) for every agent v: unmasked logits [..., A, M]."""

    def __init__(self, num_agents, obs_dim, num_targets, hidden_sizes):
        super().__init__()
        self.net = _agent_mlp(num_agents, obs_dim, hidden_sizes, num_targets, 0.01)

    def forward(self, obs):
        return self.net(obs)


class ContinuousActors(nn.Module):
    """pi^c_v(a^c | o_v): Gaussian mean sigmoid(MLP(o)) [..., A, 1] and a learned log-std per agent."""

    def __init__(self, num_agents, obs_dim, hidden_sizes, log_std_init):
        super().__init__()
        self.net = _agent_mlp(num_agents, obs_dim, hidden_sizes, 1, 0.01)
        self.log_std = nn.Parameter(torch.full((num_agents, 1), float(log_std_init)))

    def forward(self, obs):
        mean = torch.sigmoid(self.net(obs))
        return mean, self.log_std.expand_as(mean)


class Critic(nn.Module):
    """V(s) of the centralized world state [..., state_dim] -> [...]."""

    def __init__(self, state_dim, hidden_sizes):
        super().__init__()
        layers, width = [], state_dim
        for hidden in hidden_sizes:
            layers += [_orthogonal_linear(width, hidden, math.sqrt(2.0)), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*layers, _orthogonal_linear(width, 1, 1.0))

    def forward(self, state):
        return self.net(state)[..., 0]


def world_state(obs: torch.Tensor) -> torch.Tensor:
    """All agents' observations plus the agent's one-hot id: [..., N, D] -> [..., N, N * D + N]."""
    n, d = obs.shape[-2:]
    joint = obs.reshape(*obs.shape[:-2], 1, n * d).expand(*obs.shape[:-2], n, n * d)
    ids = torch.eye(n, dtype=obs.dtype).expand(*obs.shape[:-2], n, n)
    return torch.cat([joint, ids], dim=-1)


class HybridPolicy(nn.Module):
    """The four networks of Hybrid-MAPPO."""

    def __init__(self, num_agents: int, obs_dim: int, num_targets: int, config: TorchHybridMappoConfig):
        super().__init__()
        hidden = tuple(int(h) for h in config.hidden_sizes)
        state_dim = num_agents * obs_dim + num_agents
        self.actor_d = DiscreteActors(num_agents, obs_dim, num_targets, hidden)
        self.actor_c = ContinuousActors(num_agents, obs_dim, hidden, config.log_std_init)
        self.critic_d = Critic(state_dim, hidden)
        self.critic_c = Critic(state_dim, hidden)

    def distributions(self, obs: torch.Tensor, mask: torch.Tensor | None):
        logits = self.actor_d(obs)
        if mask is not None:
            logits = torch.where(mask, logits, torch.full_like(logits, MASKED_LOGIT))
        mean, log_std = self.actor_c(obs)
        return Categorical(logits=logits), Normal(mean, log_std.exp())

    def act(self, obs: torch.Tensor, mask: torch.Tensor | None, deterministic: bool = False):
        """(target [..., N], raw alpha sample [..., N, 1], log pi^d, log pi^c); the executed alpha is
        clamp(raw, 0, 1). Both parts are drawn at once from o_v."""
        dist_d, dist_c = self.distributions(obs, mask)
        if deterministic:
            target, raw = dist_d.probs.argmax(-1), dist_c.mean
        else:
            target, raw = dist_d.sample(), dist_c.sample()
        return target, raw, dist_d.log_prob(target), dist_c.log_prob(raw).sum(-1)

    def values(self, obs: torch.Tensor):
        state = world_state(obs)
        return self.critic_d(state), self.critic_c(state)


# ====================================================================== PPO math
def gae(rewards, values, next_values, terminated, done, gamma, gae_lambda):
    """Advantages and lambda-returns [T, E, N]; `next_values` are V of the pre-reset observation reached."""
    terminated = terminated[..., None].to(rewards.dtype)
    not_done = 1.0 - done[..., None].to(rewards.dtype)
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values


def _normalize(x, eps=1e-8):
    return (x - x.mean()) / (x.std(unbiased=False) + eps)


def clipped_surrogate_loss(log_prob, old_log_prob, advantages, clip_eps):
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    loss = -torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantages).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_eps).float().mean()
    return loss, approx_kl, clip_fraction


def value_loss(values, old_values, returns, clip_eps):
    squared = (values - returns).square()
    if not clip_eps:
        return 0.5 * squared.mean()
    clipped = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
    return 0.5 * torch.maximum(squared, (clipped - returns).square()).mean()


# ====================================================================== training
def make_envs(
    num_envs: int, seed: int, env_params: ReferenceParams | None = None, env_config: Mapping[str, Any] | None = None
) -> list[AvatarPremigrationNumpy]:
    seeds = np.random.SeedSequence(seed).spawn(num_envs)
    return [AvatarPremigrationNumpy(params=env_params, seed=s, **dict(env_config or {})) for s in seeds]


def train(
    num_envs: int = 20,
    num_steps: int = 100,
    num_iterations: int = 150,
    seed: int = 0,
    *,
    config: TorchHybridMappoConfig | None = None,
    env_params: ReferenceParams | None = None,
    env_config: Mapping[str, Any] | None = None,
    num_threads: int | None = None,
    log: Callable[[dict], None] | None = None,
) -> dict:
    """Train Hybrid-MAPPO for `num_iterations` iterations of `num_envs` worlds x `num_steps` steps.

    `config` sets the other hyper-parameters (its num_envs / num_steps / num_iterations are replaced by the
    arguments). `num_threads` sets torch's intra-op threads for the run (restored after): on cores shared
    with other work, torch's default of one thread per core oversubscribes them (an iteration was seen
    18x slower with 2 threads than with 1 on 2 busy cores), so benchmarks should set and report it.

    Returns {"env_steps", "wall_s", "iteration_s" (list), "rollout_s", "update_s", "env_steps_per_s" (over
    the whole run), "metrics" (per iteration), "policy" (the trained nn.Module), "torch_version",
    "torch_threads"}.
    """
    config = dataclasses.replace(
        config or TorchHybridMappoConfig(), num_envs=num_envs, num_steps=num_steps, num_iterations=num_iterations
    )
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        return _train(config, seed, env_params, env_config, log)
    finally:
        torch.set_num_threads(previous_threads)


def _train(config: TorchHybridMappoConfig, seed: int, env_params, env_config, log) -> dict:
    torch.manual_seed(seed)
    envs = make_envs(config.num_envs, seed, env_params, env_config)
    n, m, d = envs[0].num_agents, envs[0].num_rsus, envs[0].obs_dim
    policy = HybridPolicy(n, d, m, config)
    groups = {name: getattr(policy, name) for name in BRANCHES}
    lrs = {
        "actor_d": config.actor_lr,
        "actor_c": config.actor_lr,
        "critic_d": config.critic_lr,
        "critic_c": config.critic_lr,
    }
    optimizers = {name: torch.optim.Adam(groups[name].parameters(), lr=lrs[name], eps=1e-5) for name in BRANCHES}

    e, steps = config.num_envs, config.num_steps
    obs = np.stack([env.reset()[0] for env in envs])  # [E, N, D]
    episode_return = np.zeros(e)
    result = {"env_steps": 0, "iteration_s": [], "rollout_s": [], "update_s": [], "metrics": []}
    start_run = time.perf_counter()
    for iteration in range(config.num_iterations):
        start = time.perf_counter()
        # ---------------------------------------------------------------- rollout
        buf_obs = torch.empty(steps, e, n, d)
        buf_final = torch.empty(steps, e, n, d)
        buf_mask = torch.empty(steps, e, n, m, dtype=torch.bool)
        buf_target = torch.empty(steps, e, n, dtype=torch.long)
        buf_raw = torch.empty(steps, e, n, 1)
        buf_logp_d, buf_logp_c = torch.empty(steps, e, n), torch.empty(steps, e, n)
        buf_value_d, buf_value_c = torch.empty(steps, e, n), torch.empty(steps, e, n)
        rewards = np.empty((steps, e, n), np.float32)
        terminated = np.zeros((steps, e), bool)
        done = np.zeros((steps, e), bool)
        final_obs = np.empty((e, n, d), np.float32)
        finished_returns, finished_latency = [], []
        with torch.no_grad():
            for t in range(steps):
                obs_t = torch.from_numpy(obs)
                mask = torch.from_numpy(np.stack([env.action_mask() for env in envs]))
                target, raw, logp_d, logp_c = policy.act(obs_t, mask)
                value_d, value_c = policy.values(obs_t)
                target_np = target.numpy()
                fraction_np = raw[..., 0].clamp(0.0, 1.0).numpy()
                next_obs = np.empty_like(obs)
                for i, env in enumerate(envs):
                    o, r, term, trunc, info = env.step({"target": target_np[i], "fraction": fraction_np[i]})
                    final_obs[i], rewards[t, i] = o, r
                    terminated[t, i], done[t, i] = term, term or trunc
                    episode_return[i] += float(r.mean())
                    if term or trunc:
                        finished_returns.append(episode_return[i])
                        finished_latency.append(-episode_return[i] / env.config.max_steps)
                        episode_return[i] = 0.0
                        o, _ = env.reset()
                    next_obs[i] = o
                buf_obs[t], buf_final[t], buf_mask[t] = obs_t, torch.from_numpy(final_obs), mask
                buf_target[t], buf_raw[t], buf_logp_d[t], buf_logp_c[t] = target, raw, logp_d, logp_c
                buf_value_d[t], buf_value_c[t] = value_d, value_c
                obs = next_obs
            # ------------------------------------------------------------ advantages
            next_d, next_c = policy.values(buf_final)
            scaled = torch.from_numpy(rewards) * config.reward_scale
            term_t, done_t = torch.from_numpy(terminated), torch.from_numpy(done)
            adv_d, ret_d = gae(scaled, buf_value_d, next_d, term_t, done_t, config.gamma, config.gae_lambda)
            adv_c, ret_c = gae(scaled, buf_value_c, next_c, term_t, done_t, config.gamma, config.gae_lambda)
        rollout_s = time.perf_counter() - start

        # ---------------------------------------------------------------- update
        flat = lambda x: x.reshape(steps * e, *x.shape[2:])  # noqa: E731  (time x worlds), agents kept together
        data = [
            flat(x)
            for x in (
                buf_obs,
                buf_mask,
                buf_target,
                buf_raw,
                buf_logp_d,
                buf_logp_c,
                buf_value_d,
                buf_value_c,
                adv_d,
                adv_c,
                ret_d,
                ret_c,
            )
        ]
        size, per_batch = steps * e, steps * e // config.num_minibatches
        stats = []
        for _ in range(config.update_epochs):
            order = torch.randperm(size)
            for k in range(config.num_minibatches):
                index = order[k * per_batch : (k + 1) * per_batch]
                o, mk, tg, raw, old_d, old_c, old_vd, old_vc, a_d, a_c, r_d, r_c = (x[index] for x in data)
                dist_d, dist_c = policy.distributions(o, mk)
                logp_d, logp_c = dist_d.log_prob(tg), dist_c.log_prob(raw).sum(-1)
                if config.normalize_advantages:
                    a_d, a_c = _normalize(a_d), _normalize(a_c)
                loss_d, kl_d, cf_d = clipped_surrogate_loss(logp_d, old_d, a_d, config.clip_eps)
                loss_c, kl_c, cf_c = clipped_surrogate_loss(logp_c, old_c, a_c, config.clip_eps)
                entropy_d, entropy_c = dist_d.entropy().mean(), dist_c.entropy().sum(-1).mean()
                v_d, v_c = policy.values(o)
                vloss_d = value_loss(v_d, old_vd, r_d, config.value_clip_eps)
                vloss_c = value_loss(v_c, old_vc, r_c, config.value_clip_eps)
                total = (loss_d - config.entropy_coef * entropy_d) + (loss_c - config.entropy_coef * entropy_c)
                total = total + vloss_d + vloss_c  # disjoint parameter groups: each gets its own gradient
                for opt in optimizers.values():
                    opt.zero_grad(set_to_none=True)
                total.backward()
                for name, opt in optimizers.items():  # four separate Adam states, clipped per group
                    nn.utils.clip_grad_norm_(groups[name].parameters(), config.max_grad_norm)
                    opt.step()
                losses = (loss_d, loss_c, vloss_d, vloss_c, entropy_d, entropy_c, kl_d, kl_c, cf_d, cf_c)
                stats.append([x.item() for x in losses])
        update_s = time.perf_counter() - rollout_s - start
        iteration_s = time.perf_counter() - start

        names = (
            "policy_loss_d",
            "policy_loss_c",
            "value_loss_d",
            "value_loss_c",
            "entropy_d",
            "entropy_c",
            "approx_kl_d",
            "approx_kl_c",
            "clip_fraction_d",
            "clip_fraction_c",
        )
        metrics = {
            "iteration": iteration + 1,
            "env_steps": (iteration + 1) * size,
            "mean_reward": float(rewards.mean()),
            "episodes": len(finished_returns),
            "episode_return": float(np.mean(finished_returns)) if finished_returns else float("nan"),
            "episode_total_latency_s": float(np.mean(finished_latency)) if finished_latency else float("nan"),
            **dict(zip(names, np.mean(stats, axis=0).tolist())),
            "iteration_s": iteration_s,
        }
        result["env_steps"] += size
        result["iteration_s"].append(iteration_s)
        result["rollout_s"].append(rollout_s)
        result["update_s"].append(update_s)
        result["metrics"].append(metrics)
        if log is not None:
            log(metrics)
    result["wall_s"] = time.perf_counter() - start_run
    result["env_steps_per_s"] = result["env_steps"] / result["wall_s"]
    result["policy"] = policy
    result["torch_version"] = torch.__version__
    result["torch_threads"] = torch.get_num_threads()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reference.torch_hybrid_mappo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--envs", type=int, default=20, help="parallel worlds (a Python list of NumPy envs)")
    parser.add_argument("--steps", type=int, default=100, help="rollout steps per iteration")
    parser.add_argument("--iterations", type=int, default=2, help="training iterations")
    parser.add_argument("--epochs", type=int, default=10, help="PPO epochs per iteration")
    parser.add_argument("--forecast", default="persistence", choices=["persistence", "none"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = TorchHybridMappoConfig(update_epochs=args.epochs)

    def log(metrics):
        print(
            f"iteration {metrics['iteration']:>4}  {metrics['iteration_s']:7.2f} s  mean reward "
            f"{metrics['mean_reward']:8.3f}  episodes {metrics['episodes']}",
            flush=True,
        )

    result = train(
        args.envs,
        args.steps,
        args.iterations,
        args.seed,
        config=config,
        env_config={"workload_forecast": args.forecast},
        num_threads=args.threads,
        log=log,
    )
    rollout, update = float(np.median(result["rollout_s"])), float(np.median(result["update_s"]))
    print(
        f"torch {result['torch_version']} ({result['torch_threads']} threads): {result['env_steps_per_s']:,.0f} "
        f"env steps/s over {result['env_steps']} steps; median rollout {rollout:.2f} s, update {update:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
