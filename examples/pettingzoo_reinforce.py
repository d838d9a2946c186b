"""Train a policy on a vmjax scenario through its PettingZoo adapter with a plain NumPy loop (no JAX in the learner).

    pip install -e '.[interop]'
    python examples/pettingzoo_reinforce.py [--env TwinRouting-v0] [--iterations 20] [--episodes 4]

REINFORCE with a linear softmax policy shared by every agent over the discrete action (the hosting server of
TwinRouting-v0), unavailable actions masked with `infos[agent]["action_mask"]`, returns-to-go with a mean
baseline. A few iterations on a small world: the point is the loop a PyTorch / NumPy user writes, not the score.
"""

from __future__ import annotations

import argparse

import numpy as np

from vmjax import interop


def masked_softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over the allowed actions only (mask int8 / bool [n])."""
    logits = np.where(mask.astype(bool), logits, -1e9)
    z = np.exp(logits - logits.max())
    return z / z.sum()


def run_episode(env, weights: np.ndarray, rng: np.random.Generator, seed: int):
    """One episode; per agent the list of (observation, mask, action, reward)."""
    obs, infos = env.reset(seed=seed)
    trajectories: dict[str, list] = {}
    while env.agents:
        actions, taken = {}, {}
        for agent in env.agents:
            mask = infos[agent]["action_mask"]
            probs = masked_softmax(np.append(obs[agent], 1.0) @ weights, mask)
            actions[agent] = int(rng.choice(len(probs), p=probs))
            taken[agent] = (obs[agent], mask, actions[agent])
        obs, rewards, terminations, truncations, infos = env.step(actions)
        for agent, (o, m, a) in taken.items():
            trajectories.setdefault(agent, []).append((o, m, a, rewards[agent]))
    return trajectories


def reinforce_gradient(trajectories: dict, weights: np.ndarray, gamma: float) -> tuple[np.ndarray, float]:
    """The REINFORCE gradient of the shared linear policy, and the mean episode return per agent."""
    samples, episode_returns = [], []
    for steps in trajectories.values():
        ret, returns = 0.0, []
        for *_, reward in reversed(steps):
            ret = reward + gamma * ret
            returns.append(ret)
        samples += [(o, m, a, g) for (o, m, a, _), g in zip(steps, reversed(returns))]
        episode_returns.append(sum(step[3] for step in steps))
    baseline = np.mean([g for *_, g in samples])
    grad = np.zeros_like(weights)
    for o, m, a, g in samples:
        x = np.append(o, 1.0)
        probs = masked_softmax(x @ weights, m)
        grad += np.outer(x, np.eye(len(probs))[a] - probs) * (g - baseline)
    return grad / len(samples), float(np.mean(episode_returns))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="TwinRouting-v0", help="an env id with a discrete action")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per iteration")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--gamma", type=float, default=0.95)
    args = parser.parse_args(argv)
    env = interop.pettingzoo_env(args.env, num_rsus=12, num_uavs=2, max_steps=20)
    agent = env.possible_agents[0]
    weights = np.zeros((env.observation_space(agent).shape[0] + 1, env.action_space(agent).n))
    rng = np.random.default_rng(0)
    for iteration in range(args.iterations):
        grads, returns = [], []
        for episode in range(args.episodes):
            trajectories = run_episode(env, weights, rng, seed=iteration * args.episodes + episode)
            grad, mean_return = reinforce_gradient(trajectories, weights, args.gamma)
            grads.append(grad)
            returns.append(mean_return)
        weights += args.lr * np.mean(grads, axis=0)
        print(f"iteration {iteration + 1:3d}: mean episode return per agent {np.mean(returns):8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
