"""vmjax worlds as Gymnasium environments: one world as a `gymnasium.Env`, many as a `gymnasium.vector.VectorEnv`.

    env = vmjax.interop.gymnasium_env("AvatarPremigration-v0")
    obs, info = env.reset(seed=0)  # obs float32 [N, obs_dim]; info["action_mask"] [N, n]
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

    envs = vmjax.interop.gymnasium_vector_env("AvatarPremigration-v0", num_envs=1024)
    obs, infos = envs.reset(seed=0)  # obs [1024, N, obs_dim]
    obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())

- The action of a world is the joint action of its agents as one Dict space keyed by the env's action heads, the
  agent axis first (`vmjax.interop.spaces.joint_space`): {"target": MultiDiscrete([M] * N), "fraction": Box(N,)};
  an env whose action is not a Dict has the one key "action".
- The reward is one number per world: the mean over the agents (`reward="sum"`: the sum); each agent's reward is
  in `info["agent_rewards"]` [N]. `info` also holds the env's own info (NumPy), `action_mask` (bool [N, n], for the
  next action) and `agents_present` (bool [N]).
- `reset(seed=s)` starts from `jax.random.key(s)`; `reset()` continues that key stream (without any seed, a seed is
  drawn from the env's `np_random`).
- The vector env steps every world in one jitted call (a `vmjax.VecEnv`) and auto-resets in the same step
  (`metadata["autoreset_mode"] = AutoresetMode.SAME_STEP`, as Gymnasium 1.x defines it): a world that terminates
  or truncates returns the first observation of its next episode, its last observation in
  `infos["final_obs"][i]` and its step info in `infos["final_info"]` (masks `infos["_final_obs"]`,
  `infos["_final_info"]`); its top-level info is that of the reset (`action_mask`, `agents_present`), so the step
  entries' masks `infos["_<key>"]` are False for it. The next action goes to the new episode.
"""

from __future__ import annotations

import numpy as np

from vmjax.interop import INSTALL_HINT, world
from vmjax.interop import spaces as gym_spaces

try:
    import gymnasium
    from gymnasium.vector import AutoresetMode, VectorEnv
    from gymnasium.vector.utils import batch_space
except ImportError as error:  # pragma: no cover - the optional dependency is missing
    raise ImportError(INSTALL_HINT) from error

REWARDS = ("mean", "sum")
RESET_INFO = ("action_mask", "agents_present")  # the info keys of a reset (the rest come from a step)


def check_reward(reward: str) -> str:
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {list(REWARDS)}, got {reward!r}")
    return reward


def reduce_reward(agent_rewards: np.ndarray, reward: str) -> np.ndarray:
    """The world's reward from its agents' [..., N]: their mean or sum."""
    return agent_rewards.mean(axis=-1) if reward == "mean" else agent_rewards.sum(axis=-1)


def _space_pair(native, params):
    """(observation space, joint action space) of one world, as Gymnasium spaces."""
    obs = gym_spaces.observation_space(native.observation_space(params), per_agent=False)
    return obs, gym_spaces.joint_space(native.action_space(params))


class WorldEnv(gymnasium.Env):
    """One world of a vmjax env (`env`: a registered id made with `config`, or an env object) as a
    `gymnasium.Env`; no auto-reset (call `reset` after the episode ends)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, env, params=None, reward: str = "mean", render_mode: str | None = None, **config):
        native = world.resolve_env(env, config)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.native = native
        self.world = world.OneWorld(native, params)
        self.reward = check_reward(reward)
        self.render_mode = render_mode
        self.observation_space, self.action_space = _space_pair(native, self.world.params)
        self._native_space = native.action_space(self.world.params)
        self._state = None
        self._done = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self.world.key is None:
            self.world.key = world.seed_key(seed, self.np_random)
        (obs, mask, present), self._state = self.world.reset()
        self._done = False
        return np.array(obs, np.float32), {"action_mask": np.array(mask), "agents_present": np.array(present)}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over: call reset()")
        native_action = gym_spaces.joint_action(self._native_space, action)
        (obs, reward, terminated, truncated, info, mask, present), self._state = self.world.step(
            self._state, native_action
        )
        self._done = bool(terminated) or bool(truncated)
        info = {k: np.array(v) for k, v in info.items()}
        info.update(agent_rewards=np.array(reward), action_mask=np.array(mask), agents_present=np.array(present))
        world_reward = float(reduce_reward(np.asarray(reward, np.float64), self.reward))
        return np.array(obs, np.float32), world_reward, bool(terminated), bool(truncated), info

    def render(self):
        """With render_mode="rgb_array": the current slot drawn by `vmjax.render.frame`, an RGB array [H, W, 3]."""
        return world.rgb_frame(self.render_mode, self.native, self._state, self.world.params)


class WorldsVectorEnv(VectorEnv):
    """`num_envs` worlds of a vmjax env as a `gymnasium.vector.VectorEnv`: one jitted batched step, NumPy in and
    out, same-step autoreset (see the module docstring)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env, num_envs: int, params=None, reward: str = "mean", **config):
        native = world.resolve_env(env, config)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.native = native
        self.num_envs = int(num_envs)
        self.worlds = world.ManyWorlds(native, self.num_envs, params)
        self.reward = check_reward(reward)
        self.single_observation_space, self.single_action_space = _space_pair(native, self.worlds.params)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._native_space = native.action_space(self.worlds.params)
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset every world: (observations [num_envs, N, obs_dim], infos). One `seed` for all worlds (each world
        draws its own start from it)."""
        if isinstance(seed, list | tuple):
            raise ValueError("seed must be one int (the worlds' starts are drawn from it) or None, got a list")
        super().reset(seed=seed)
        if seed is not None or self.worlds.key is None:
            rng = self.np_random if self._np_random is not None else np.random.default_rng()
            self.worlds.key = world.seed_key(seed, rng)
        (obs, mask, present), self._state = self.worlds.reset()
        infos = masked_infos({"action_mask": mask, "agents_present": present}, np.ones(self.num_envs, bool))
        return np.array(obs, np.float32), infos

    def step(self, actions):
        """Step every world with its joint action (the batched `action_space`): (observations, rewards [num_envs],
        terminations, truncations, infos), same-step autoreset."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        native_actions = gym_spaces.joint_action(self._native_space, actions, batch=(self.num_envs,), where="actions")
        (obs, reward, terminated, truncated, info, mask, present), self._state = self.worlds.step(
            self._state, native_actions
        )
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        final_obs = np.array(info.pop("final_observation"), np.float32)
        step_info = {**info, "agent_rewards": reward}
        reset_info = {"action_mask": mask, "agents_present": present}
        infos = same_step_infos(step_info, reset_info, terminated | truncated, final_obs)
        world_rewards = reduce_reward(np.asarray(reward, np.float64), self.reward)
        return np.array(obs, np.float32), world_rewards, terminated, truncated, infos


def masked_infos(values: dict, mask: np.ndarray) -> dict:
    """Gymnasium's vector info layout: each key's batched values (copied) with its boolean mask "_key" over the
    worlds; {} when the mask is all False."""
    if not mask.any():
        return {}
    out = {}
    for key, value in values.items():
        out[key] = np.array(value)
        out[f"_{key}"] = mask.copy()
    return out


def same_step_infos(step_info: dict, reset_info: dict, done: np.ndarray, final_obs: np.ndarray) -> dict:
    """The infos of a same-step-autoreset vector step (what Gymnasium's SyncVectorEnv with
    AutoresetMode.SAME_STEP assembles): the step's entries masked to the worlds that go on, `reset_info` (entries
    valid for every world after the step: a finished world's are those of its reset), and for finished worlds
    `final_obs` (an object array, None elsewhere) and `final_info` (the step's entries), each with its mask."""
    infos = masked_infos(step_info, ~done)
    infos.update(masked_infos(reset_info, np.ones_like(done)))
    if done.any():
        infos["final_obs"] = np.full(len(done), None, dtype=object)
        for i in np.flatnonzero(done):
            infos["final_obs"][i] = final_obs[i].copy()
        infos["_final_obs"] = done.copy()
        infos["final_info"] = masked_infos(step_info, done)
        infos["_final_info"] = done.copy()
    return infos


__all__ = ["REWARDS", "WorldEnv", "WorldsVectorEnv", "masked_infos", "reduce_reward", "same_step_infos"]
