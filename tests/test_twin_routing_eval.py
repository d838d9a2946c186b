"""Evaluation of TwinRouting-v0 policies (baselines/twin_routing.py): the per-episode metrics against
a NumPy recomputation from the raw info, and the RSU-count sweep as one vmapped rollout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines.evaluate import summarize_episodes
from baselines.twin_routing import (
    make_greedy_policy,
    make_policy_evaluator,
    make_random_policy,
    rsu_subset_masks,
    server_count_sweep,
)
from vmjax.core import Wrapper, rollout
from vmjax.envs.twin_routing import TwinRouting

# late vehicles and short trips: inactive samples, and worlds whose trips all end before max_steps
CONFIG = {
    "num_vehicles": 3,
    "num_rsus": 8,
    "num_uavs": 2,
    "max_steps": 6,
    "num_late_vehicles": 1,
    "min_trip_slots": 2,
}
EPISODES = 8
KEY = jax.random.key(0)
INFO_KEYS = (
    "active",
    "server",
    "failure",
    "total_latency_s",
    "migration_s",
    "migrated",
    "on_satellite",
    "masked_action",
    "invalid_action",
    "workload_variance_bits2",
)


class Done(Wrapper):
    """info["done"]: where each world's episode ended (the rollout auto-resets after it)."""

    def step_env(self, key, state, action, params):
        *out, term, trunc, info = self._env.step_env(key, state, action, params)
        return (*out, term, trunc, dict(info, done=term | trunc))


@pytest.fixture(scope="module")
def setup():
    env = TwinRouting(**CONFIG)
    # RSU 0 for all but the last vehicle (often masked and out of range: failures), an invalid index
    # for the last one (it runs on the fallback, the satellite)
    fixed = jnp.where(jnp.arange(env.num_agents) == env.num_agents - 1, 99, 0)
    policies = [
        make_greedy_policy(env),
        make_random_policy(env),
        lambda key, state, params: fixed.astype(jnp.int32),
    ]
    params = env.default_params
    evaluator = make_policy_evaluator(env, policies, params, EPISODES)

    def raw(key, index, params):
        """The raw info [T, E, V] of a rollout of `policies[index]` (a hand-written evaluation)."""
        policy = lambda k, s, p: jax.lax.switch(index, policies, k, s, p)
        keep = lambda r, info: dict({k: info[k] for k in (*INFO_KEYS, "done")}, reward=r)
        return rollout(Done(env), policy, key, params, EPISODES, env.config.max_steps, keep)

    return {
        "env": env,
        "policies": policies,
        "params": params,
        "evaluator": evaluator,
        "raw": jax.jit(raw),
    }


def numpy_metrics(raw):
    """The metrics of the first episode of every world from the raw info, in plain NumPy."""
    raw = {k: np.asarray(v, np.float64) for k, v in raw.items()}
    out = {}
    for e in range(raw["active"].shape[1]):
        end = int(np.flatnonzero(raw["done"][:, e])[0]) + 1  # the first episode: slots 0..end-1
        episode = {k: v[:end, e] for k, v in raw.items()}
        active = episode["active"] > 0
        row = {k: v[active].mean() for k, v in episode.items() if v.ndim == 2}
        per_vehicle = active.sum(0)
        seen = per_vehicle > 0
        fails = episode["failure"].sum(0)  # failures of inactive samples are 0 anyway
        row["packet_loss"] = (fails[seen] / per_vehicle[seen]).mean()  # eq. (15)
        row["workload_variance_bits2"] = episode["workload_variance_bits2"].mean()
        for k, v in row.items():
            out.setdefault(k, []).append(v)
    return {k: np.asarray(v) for k, v in out.items()}


NAMES = {
    "latency_s": "total_latency_s",
    "migration_s": "migration_s",
    "failure_rate": "failure",
    "packet_loss": "packet_loss",
    "migration_share": "migrated",
    "satellite_share": "on_satellite",
    "masked_action_share": "masked_action",
    "invalid_action_share": "invalid_action",
    "reward": "reward",
    "workload_variance_bits2": "workload_variance_bits2",
}


def test_metrics_match_a_numpy_recomputation(setup):
    for index in range(3):
        got = jax.device_get(setup["evaluator"](KEY, index))
        info = jax.device_get(setup["raw"](KEY, index, setup["params"]))
        want = numpy_metrics(info)
        assert set(got) == set(NAMES)
        for name, ref in NAMES.items():
            assert got[name].shape == (EPISODES,) and got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], want[ref], rtol=1e-5, atol=1e-7, err_msg=name)
    # the fixed policy: failures, masked and invalid actions; eq. (15) weights per vehicle
    assert got["failure_rate"].max() > 0 and got["masked_action_share"].max() > 0
    assert got["invalid_action_share"].min() > 0
    assert (got["packet_loss"] != got["failure_rate"]).any()
    # the config exercises what the weighting is for: inactive samples and early episode ends, after
    # which the world resets and a second episode (left out) follows
    assert not info["active"].all()
    ends = np.argmax(info["done"], axis=0)
    assert (ends < CONFIG["max_steps"] - 1).any()
    assert info["active"][ends.min() + 1 :].any()


def test_same_key_same_worlds(setup):
    evaluator, raw = setup["evaluator"], setup["raw"]
    first, again = (jax.device_get(evaluator(KEY, 0)) for _ in range(2))
    other = jax.device_get(evaluator(jax.random.key(1), 0))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])  # deterministic
    assert not np.array_equal(first["latency_s"], other["latency_s"])
    greedy, rand = (jax.device_get(raw(KEY, i, setup["params"])) for i in (0, 1))
    for name in ("active", "done"):  # the same trips and episode ends for both policies
        np.testing.assert_array_equal(greedy[name], rand[name])
    assert not np.array_equal(greedy["server"], rand["server"])


def test_rsu_subset_masks():
    fractions = (0.01, 0.25, 0.3, 0.5, 1.0)
    masks = rsu_subset_masks(8, fractions, seed=3)
    assert masks.shape == (5, 8) and masks.dtype == bool
    np.testing.assert_array_equal(masks.sum(1), [1, 2, 2, 4, 8])  # 2.4 -> 2, at least 1
    assert all((masks[i] <= masks[i + 1]).all() for i in range(4))  # nested
    np.testing.assert_array_equal(masks, rsu_subset_masks(8, fractions, seed=3))
    assert not np.array_equal(masks, rsu_subset_masks(8, fractions, seed=4))
    with pytest.raises(ValueError, match="fractions"):
        rsu_subset_masks(8, (0.0, 1.0), seed=0)
    with pytest.raises(ValueError, match="fractions"):
        rsu_subset_masks(8, (), seed=0)


def test_server_count_sweep_is_one_vmapped_rollout(setup):
    env, params, policies = setup["env"], setup["params"], setup["policies"]
    traces = []

    def greedy(key, state, p):
        traces.append(1)  # runs once per trace of the sweep's rollout
        return policies[0](key, state, p)

    named = {"greedy": greedy, "random": policies[1], "fixed": policies[2]}
    fractions = (0.25, 1.0)
    result = server_count_sweep(env, named, params, fractions, KEY, EPISODES, seed=1)
    assert len(traces) == 1  # one compilation for every fraction and policy
    assert list(result) == list(named)
    for index, name in enumerate(named):
        small, full = result[name]
        assert small["fraction"] == 0.25 and full["fraction"] == 1.0
        assert (small["num_rsus_present"], small["num_edge_servers"]) == (2, 4)
        assert (full["num_rsus_present"], full["num_edge_servers"]) == (8, 10)
        plain = summarize_episodes(jax.device_get(setup["evaluator"](KEY, index)))
        assert set(full) == set(plain) | {
            "fraction",
            "num_rsus_present",
            "num_edge_servers",
        }
        for metric, value in plain.items():
            np.testing.assert_allclose(full[metric], value, rtol=1e-5, atol=1e-7, err_msg=metric)
    assert result["greedy"][0]["latency_s"] != result["greedy"][1]["latency_s"]
    # with 2 of 8 RSUs left no policy ever hosts a twin on a removed RSU
    present = rsu_subset_masks(env.num_rsus, fractions, seed=1)[0]
    reduced = params.replace(rsu_present=jnp.asarray(present))
    env.validate_params(reduced)
    for index in range(3):
        server = np.asarray(setup["raw"](KEY, index, reduced)["server"])
        assert not np.isin(server, np.flatnonzero(~present)).any()
    with pytest.raises(ValueError, match="flow_ar_coeff"):  # checked before the vmap
        server_count_sweep(env, named, params.replace(flow_ar_coeff=1.0), fractions, KEY, 2)
