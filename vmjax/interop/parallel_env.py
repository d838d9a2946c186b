"""One world of a vmjax env as a PettingZoo `ParallelEnv`.

    par_env = vmjax.interop.pettingzoo_env("TwinRouting-v0", num_rsus=8)
    obs, infos = par_env.reset(seed=0)
    while par_env.agents:
        actions = {a: par_env.action_space(a).sample(infos[a]["action_mask"]) for a in par_env.agents}
        obs, rewards, terminations, truncations, infos = par_env.step(actions)

- Agents are named by role and index (`vehicle_0`, ...); `possible_agents` lists them all, `agents` those taking
  part now. Spaces are Gymnasium spaces per agent (`vmjax.interop.spaces.agent_space`): a hybrid action is a Dict
  ({"target": Discrete, "fraction": Box(1,)}), the same object on every call.
- `infos[agent]["action_mask"]` is the int8 mask of the discrete head for the agent's next action (what
  `Discrete.sample(mask)` takes), and the agent's own entries of the env's info (those with a leading agent
  axis); the world's whole info of the last step is `last_info`.
- `reset(seed=s)` starts from `jax.random.key(s)`; `reset()` continues that key stream (reproducible); the first
  `reset()` without any seed draws one.
- `terminations` / `truncations` are the env's own, apart: a time limit truncates every agent, a terminal state
  terminates them. Where agents enter and leave (`env.agents_present`, e.g. TwinRouting's late vehicles and
  finished trips), an agent joins `agents` at its first present slot (its first observation comes in that step's
  `observations`) and, once it is gone, is terminated and removed; it never comes back (a replayed trace's
  vehicle that reappears later in the episode is driven by the filler action). Slots in which no agent is present
  but the episode goes on are stepped through with the filler action (nobody acts, no reward is lost), so
  `agents` is empty only after the episode.
- The episode does not auto-reset: once `agents` is empty, call `reset`.
"""

from __future__ import annotations

import numpy as np

from vmjax.interop import INSTALL_HINT, world
from vmjax.interop import spaces as gym_spaces

try:
    from pettingzoo.utils.env import ParallelEnv as _ParallelEnv
except ImportError as error:  # pragma: no cover - the optional dependency is missing
    raise ImportError(INSTALL_HINT) from error


class ParallelEnv(_ParallelEnv):
    """PettingZoo parallel API over one world of a vmjax env (`env`: a registered id made with `config`, or an env
    object; `params`: its EnvParams, default `env.default_params`)."""

    def __init__(self, env, params=None, render_mode: str | None = None, **config):
        native = world.resolve_env(env, config)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.native = native
        self.world = world.OneWorld(native, params)
        self.render_mode = render_mode
        self.metadata = {"name": f"vmjax/{native.name}", "render_modes": ["rgb_array"], "is_parallelizable": True}
        self.possible_agents = world.agent_names(native)
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        self._native_space = native.action_space(self.world.params)
        self._action_spaces = {a: gym_spaces.agent_space(self._native_space) for a in self.possible_agents}
        native_obs = native.observation_space(self.world.params)
        self._observation_spaces = {a: gym_spaces.observation_space(native_obs, True) for a in self.possible_agents}
        whole = gym_spaces.observation_space(native_obs, False)
        self.state_space = type(whole)(whole.low.reshape(-1), whole.high.reshape(-1), (whole.low.size,), np.float32)
        self._obs = None
        self._rng = np.random.default_rng()
        self._state = None
        self._mask = None
        self._present = None
        self._finished: set[str] = set()
        self.agents: list[str] = []
        self.last_info: dict = {}

    # ------------------------------------------------------------------ spaces
    def _check_agent(self, agent) -> None:
        if agent not in self._index:
            raise ValueError(
                f"unknown agent {agent!r}; agents are {self.possible_agents[0]} .. {self.possible_agents[-1]}"
            )

    def observation_space(self, agent):
        self._check_agent(agent)
        return self._observation_spaces[agent]

    def action_space(self, agent):
        self._check_agent(agent)
        return self._action_spaces[agent]

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode: (observations, infos) of the agents present at its first slot."""
        if seed is not None or self.world.key is None:
            self.world.key = world.seed_key(seed, self._rng)
        (obs, self._mask, self._present), self._state = self.world.reset()
        self._obs = obs
        self._finished = set()
        self.agents = [a for a in self.possible_agents if self._present[self._index[a]]]
        self.last_info = {}
        observations, _, _, _, infos = self._agent_dicts(self.agents, obs, None, {})
        if not self.agents:  # nobody there at the first slot: step through until somebody is
            observations, infos = self._skip_empty_slots()
        return observations, infos

    def _build_action(self, actions: dict):
        """The world's native action: the given actions of the live agents, the filler action of the others."""
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict agent -> action, got {type(actions).__name__}")
        for agent in actions:
            self._check_agent(agent)
            if agent not in self.agents:
                raise ValueError(f"actions[{agent!r}]: {agent} is not acting now (agents: {self.agents})")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions is missing the live agent(s) {missing}")
        rows = [
            actions[a] if a in actions else gym_spaces.filler_action(self._native_space, self._mask_row(i))
            for i, a in enumerate(self.possible_agents)
        ]
        return gym_spaces.stack_agent_actions(self._native_space, rows, self.possible_agents)

    def _mask_row(self, index: int) -> np.ndarray | None:
        return None if self._mask is None or self._mask.shape[-1] == 0 else self._mask[index]

    def step(self, actions: dict):
        """One slot: (observations, rewards, terminations, truncations, infos) of the agents that acted and of
        those that joined in this slot."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over (no agents left): call reset()")
        native_action = self._build_action(actions)
        out, self._state = self.world.step(self._state, native_action)
        obs, reward, terminated, truncated, info, self._mask, self._present = out
        self.last_info, self._obs = info, obs
        episode_over = bool(terminated) or bool(truncated)
        acted = list(self.agents)
        joined = [] if episode_over else self._newly_present(acted)
        out = self._agent_dicts(acted + joined, obs, reward, info)
        observations, rewards, terminations, truncations, infos = out
        for agent in acted:
            gone = not self._present[self._index[agent]]
            terminations[agent] = bool(terminated) or gone
            truncations[agent] = bool(truncated) and not terminations[agent]
        for agent in joined:
            rewards[agent], terminations[agent], truncations[agent] = 0.0, False, False
        done = {a for a in acted if terminations[a] or truncations[a]}
        self._finished |= done
        self.agents = [a for a in self.possible_agents if a in (set(acted) - done) | set(joined)]
        if not self.agents and not episode_over:
            more_obs, more_infos = self._skip_empty_slots()
            observations.update(more_obs)
            infos.update(more_infos)
            for agent in more_obs:
                rewards[agent], terminations[agent], truncations[agent] = 0.0, False, False
        return observations, rewards, terminations, truncations, infos

    def _newly_present(self, acting: list[str]) -> list[str]:
        """Agents present now that have never acted in this episode (not acting, not finished)."""
        skip = set(acting) | self._finished
        return [a for a in self.possible_agents if a not in skip and self._present[self._index[a]]]

    def _skip_empty_slots(self):
        """Step with filler actions while no agent is present and the episode goes on; (observations, infos) of
        the agents that then join ({} when the episode ends first)."""
        while True:
            fillers = [gym_spaces.filler_action(self._native_space, self._mask_row(i)) for i in range(len(self._index))]
            native_action = gym_spaces.stack_agent_actions(self._native_space, fillers, self.possible_agents)
            out, self._state = self.world.step(self._state, native_action)
            obs, _, terminated, truncated, info, self._mask, self._present = out
            self.last_info, self._obs = info, obs
            if bool(terminated) or bool(truncated):
                return {}, {}
            joined = self._newly_present([])
            if joined:
                self.agents = joined
                observations, _, _, _, infos = self._agent_dicts(joined, obs, None, info)
                return observations, infos

    def _agent_dicts(self, agents: list[str], obs, reward, info: dict):
        """Per-agent dicts of the observation, reward (0.0 without one), empty termination / truncation dicts
        (filled by `step`) and info (the action mask and the agent's rows of the env's info)."""
        n = len(self.possible_agents)
        per_agent = {k: v for k, v in info.items() if np.ndim(v) >= 1 and np.shape(v)[0] == n}
        observations, rewards, infos = {}, {}, {}
        for agent in agents:
            i = self._index[agent]
            observations[agent] = np.array(obs[i], np.float32)
            rewards[agent] = 0.0 if reward is None else float(reward[i])
            agent_info = {k: np.array(v[i]) for k, v in per_agent.items()}
            row = self._mask_row(i)
            if row is not None:
                agent_info["action_mask"] = row.astype(np.int8)
            infos[agent] = agent_info
        return observations, rewards, {}, {}, infos

    # ------------------------------------------------------------------ the rest of the API
    def state(self) -> np.ndarray:
        """The global state: every agent's observation of the current slot, concatenated (`state_space`)."""
        if self._obs is None:
            raise RuntimeError("call reset() before state()")
        return np.array(self._obs, np.float32).reshape(-1)

    def render(self):
        """With render_mode="rgb_array": the current slot drawn by `vmjax.render.frame`, an RGB array [H, W, 3]."""
        return world.rgb_frame(self.render_mode, self.native, self._state, self.world.params)

    def close(self) -> None:
        self._state = None


__all__ = ["ParallelEnv"]
