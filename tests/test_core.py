"""The environment contract: spaces, registry, auto-reset semantics, episode statistics, VecEnv."""

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import vmjax
from vmjax.core import Environment, LogWrapper, VecEnv, spaces
from vmjax.core.env import traced_once


# ---------------------------------------------------------------- a toy env with both kinds of episode end
@struct.dataclass
class CountState:
    t: jax.Array
    total: jax.Array


class CountEnv(Environment):
    """Two agents; obs = [t, total]; reward = action; terminates when the total reaches 3, truncates at t = 4."""

    num_agents = 2

    @property
    def default_params(self):
        return {"limit": 4}

    def reset_env(self, key, params):
        state = CountState(t=jnp.int32(0), total=jnp.int32(0))
        return self._obs(state), state

    def _obs(self, state):
        return jnp.broadcast_to(jnp.stack([state.t, state.total]).astype(jnp.float32), (2, 2))

    def step_env(self, key, state, action, params):
        total = state.total + jnp.sum(action)
        state = CountState(t=state.t + 1, total=total)
        return self._obs(state), state, action.astype(jnp.float32), total >= 3, state.t >= params["limit"], {}

    def action_space(self, params=None):
        return spaces.Discrete(2, shape=(2,))


def run(env, actions, params=None):
    params = env.default_params if params is None else params
    obs, state = env.reset(jax.random.key(0), params)
    out = []
    for i, a in enumerate(actions):
        obs, state, reward, term, trunc, info = env.step(jax.random.key(i), state, jnp.array(a), params)
        out.append((obs, state, reward, bool(term), bool(trunc), info))
    return out


def test_truncation_resets_and_keeps_final_observation():
    out = run(CountEnv(), [[0, 0]] * 5)
    assert [o[4] for o in out] == [False, False, False, True, False]
    assert not any(o[3] for o in out)
    obs, state, _, _, _, info = out[3]
    np.testing.assert_array_equal(info["final_observation"][0], [4.0, 0.0])  # what the episode ended on
    np.testing.assert_array_equal(obs[0], [0.0, 0.0])  # the new episode's first observation
    assert int(state.t) == 0
    np.testing.assert_array_equal(out[2][5]["final_observation"], out[2][0])  # ongoing: the same obs


def test_termination_is_not_truncation_and_both_can_happen():
    out = run(CountEnv(), [[1, 1], [1, 0]])
    assert (out[1][3], out[1][4]) == (True, False)
    np.testing.assert_array_equal(out[1][5]["final_observation"][0], [2.0, 3.0])
    both = run(CountEnv(), [[0, 0], [0, 0], [0, 0], [1, 1], [0, 0]], params={"limit": 4})
    # t hits the limit on the 4th step while the total only reaches 2: truncation only
    assert (both[3][3], both[3][4]) == (False, True)
    both = run(CountEnv(), [[0, 0], [0, 0], [1, 1], [1, 1]], params={"limit": 4})
    assert (both[3][3], both[3][4]) == (True, True)


def test_log_wrapper_keeps_statistics_across_auto_reset():
    env = LogWrapper(CountEnv())
    out = run(env, [[1, 0], [0, 1], [1, 0], [0, 0]])
    info = out[2][5]  # terminated on the 3rd step with returns [2, 1]
    assert bool(info["returned_episode"]) and bool(info["returned_episode_valid"])
    np.testing.assert_array_equal(info["returned_episode_returns"], [2.0, 1.0])
    assert int(info["returned_episode_lengths"]) == 3
    state = out[3][1]
    assert not bool(out[3][5]["returned_episode"])
    np.testing.assert_array_equal(state.returned_episode_returns, [2.0, 1.0])  # kept after the reset
    np.testing.assert_array_equal(state.episode_returns, [0.0, 0.0])
    assert not bool(run(env, [[0, 0]])[0][5]["returned_episode_valid"])


def test_vec_env_matches_per_world_semantics():
    env = LogWrapper(CountEnv())
    vec = VecEnv(env, num_envs=3)
    obs, state = vec.reset(jax.random.key(0))
    assert obs.shape == (3, 2, 2)
    actions = jnp.array([[1, 1], [0, 0], [1, 0]])
    step = jax.jit(vec.step)
    for i in range(2):
        obs, state, reward, term, trunc, info = step(jax.random.key(i), state, actions)
    np.testing.assert_array_equal(term, [True, False, False])  # world 0 reached 4 > 3
    np.testing.assert_array_equal(obs[0, 0], [0.0, 0.0])  # world 0 was reset
    np.testing.assert_array_equal(obs[2, 0], [2.0, 2.0])  # world 2 goes on
    np.testing.assert_array_equal(info["final_observation"][0, 0], [2.0, 4.0])
    np.testing.assert_array_equal(state.returned_episode_returns[0], [2.0, 2.0])
    with pytest.raises(ValueError, match="num_envs"):
        VecEnv(env, 0)


# ---------------------------------------------------------------- spaces
def test_discrete_space_sample_contains_and_mask():
    space = spaces.Discrete(4, shape=(3,))
    x = space.sample(jax.random.key(0))
    assert x.dtype == jnp.int32 and bool(space.contains(x))
    assert not bool(space.contains(jnp.array([0, 1, 4])))
    assert not bool(space.contains(jnp.array([0.0, 1.0, 2.0])))
    assert not bool(space.contains(jnp.array([0, 1])))
    mask = jnp.array([[False, True, False, False], [True, True, False, False], [False] * 4])
    draws = jax.vmap(lambda k: space.sample(k, mask))(jax.random.split(jax.random.key(1), 2000))
    assert bool(jnp.all(draws[:, 0] == 1))
    assert set(np.unique(draws[:, 1])) == {0, 1}
    assert set(np.unique(draws[:, 2])) == {0, 1, 2, 3}  # nothing allowed: fall back to all
    with pytest.raises(ValueError, match="Discrete.n"):
        spaces.Discrete(0)


def test_box_and_dict_spaces():
    box = spaces.Box(0.0, 1.0, (5,))
    x = box.sample(jax.random.key(0))
    assert bool(box.contains(x)) and not bool(box.contains(x + 2.0))
    half = spaces.Box(0.0, np.inf, (1000,))
    assert bool(half.contains(half.sample(jax.random.key(1))))
    hybrid = spaces.Dict({"target": spaces.Discrete(3, shape=(2,)), "fraction": spaces.Box(0.0, 1.0, (2,))})
    a = hybrid.sample(jax.random.key(2))
    assert bool(hybrid.contains(a))
    assert not bool(hybrid.contains({"target": a["target"]}))
    assert not bool(hybrid.contains({"target": a["target"], "fraction": a["fraction"] - 2.0}))
    with pytest.raises(ValueError, match="low"):
        spaces.Box(1.0, 0.0, (2,))


# ---------------------------------------------------------------- registry
def test_registry_lists_known_ids():
    assert "AvatarPremigration-v0" in vmjax.registered_envs()
    with pytest.raises(ValueError, match="AvatarPremigration-v0"):
        vmjax.make("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="already registered"):
        vmjax.core.register("AvatarPremigration-v0", CountEnv)


def test_vec_env_when_every_world_ends_together():
    env = LogWrapper(CountEnv())
    vec = VecEnv(env, num_envs=2)
    obs, state = vec.reset(jax.random.key(0))
    step = jax.jit(vec.step)
    actions = jnp.array([[1, 0], [0, 1]])
    for i in range(4):  # t reaches the limit 4 in both worlds at once (totals stay below 3 until then)
        obs, state, reward, term, trunc, info = step(jax.random.key(i), state, actions * (i < 2))
    np.testing.assert_array_equal(trunc, [True, True])
    np.testing.assert_array_equal(obs[:, 0], [[0.0, 0.0], [0.0, 0.0]])  # both reset
    np.testing.assert_array_equal(info["final_observation"][:, 0], [[4.0, 2.0], [4.0, 2.0]])
    np.testing.assert_array_equal(state.returned_episode_returns, [[2.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(state.episode_lengths, [0, 0])


class TracedOnceEnv(CountEnv):
    """CountEnv whose reset_env counts how often its Python runs (traces) and starts from a random total."""

    def __init__(self):
        self.reset_traces = 0

    @traced_once
    def reset_env(self, key, params):
        self.reset_traces += 1
        state = CountState(t=jnp.int32(0), total=jax.random.randint(key, (), 0, 2))
        return self._obs(state), state


def count_rollout(env):
    def rollout(key):  # reset, then steps with the auto-reset inside, in one program
        obs, state = env.reset(key)
        for i in range(5):
            obs, state, *_ = env.step(jax.random.fold_in(key, i), state, jnp.ones(2, jnp.int32))
        return obs

    return rollout


def test_traced_once_reset_is_traced_once_per_env_object_and_gives_the_same_values():
    env = TracedOnceEnv()
    keys = jax.random.split(jax.random.key(0), 3)
    got = jax.jit(jax.vmap(count_rollout(env)))(keys)
    assert env.reset_traces == 1  # the reset and five auto-resets, under vmap: one trace
    jax.jit(count_rollout(env))(keys[0])  # another program on the same env object: no new trace
    assert env.reset_traces == 1
    plain = TracedOnceEnv()
    plain.reset_env = TracedOnceEnv.reset_env.__get__(plain)  # the undecorated method (read from the class)
    want = jax.jit(jax.vmap(count_rollout(plain)))(keys)
    assert plain.reset_traces == 6  # traced by the reset and again by each step's auto-reset
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert TracedOnceEnv().reset_traces == 0 and TracedOnceEnv.reset_env.__name__ == "reset_env"
    clone = copy.copy(env)  # a copy traces its own reset (the cached function belongs to the original)
    clone.reset(keys[0])
    assert clone.reset_traces == 2 and env.reset_traces == 1
    restored = pickle.loads(pickle.dumps(env))  # a used env still pickles; the copy traces its own reset
    restored.reset(keys[0])
    assert restored.reset_traces == 2
