"""vmjax.interop: the PettingZoo ParallelEnv passes PettingZoo's own API and seed tests on every scenario, the
single-world gymnasium.Env passes Gymnasium's env checker, and the vector env keeps Gymnasium 1.x's spaces and
same-step autoreset contract (checked against gymnasium's own SyncVectorEnv over the single-world env). Small
worlds and short episodes: the adapters of one config share one compiled step (`vmjax.interop.world.compiled`)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402
from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

import vmjax  # noqa: E402
from vmjax import interop  # noqa: E402

SMALL = {
    "AvatarPremigration-v0": dict(num_vehicles=3, num_rsus=3, max_steps=4),
    "TwinRouting-v0": dict(  # late vehicles and trips that end: agents join and leave
        num_vehicles=4, num_rsus=6, num_uavs=2, max_steps=6, num_late_vehicles=2, min_trip_slots=2
    ),
    "TwinSplit-v0": dict(num_vehicles=3, num_rsus=4, max_steps=4),
    "CrossRealityPrivacy-v0": dict(num_vehicles=3, num_rsus=6, hop_neighbours=2, max_steps=4),
}


def test_every_registered_scenario_has_a_small_config():
    """Every scenario (the -v0 id of each registered family) is covered by the tests below."""
    families = {env_id.rsplit("-", 1)[0] for env_id in vmjax.registered_envs()}
    assert families == {env_id.rsplit("-", 1)[0] for env_id in SMALL}


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_parallel_env_passes_pettingzoo_api_and_seed_tests(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PettingZoo reports key-set slips as warnings: make them failures
        warnings.filterwarnings("ignore", "No agents present but not all possible_agents")  # never-departed
        parallel_api_test(interop.pettingzoo_env(env_id, **SMALL[env_id]), num_cycles=50)
    parallel_seed_test(lambda: interop.pettingzoo_env(env_id, **SMALL[env_id]), num_cycles=20)


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_world_env_passes_gymnasium_env_checker(env_id):
    env = interop.gymnasium_env(env_id, **SMALL[env_id])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*Box observation space (maximum|minimum) value is")  # unbounded loads
        check_env(env, skip_render_check=True)


def test_parallel_env_names_spaces_and_masks():
    env = interop.pettingzoo_env("AvatarPremigration-v0", **SMALL["AvatarPremigration-v0"])
    assert env.possible_agents == ["vehicle_0", "vehicle_1", "vehicle_2"]
    space = env.action_space("vehicle_1")
    assert isinstance(space, gymnasium.spaces.Dict) and set(space) == {"target", "fraction"}
    assert space["target"] == gymnasium.spaces.Discrete(3) and space["fraction"].shape == (1,)
    assert env.action_space("vehicle_1") is space and env.action_space("vehicle_0") is not space
    obs, infos = env.reset(seed=7)
    assert infos["vehicle_0"]["action_mask"].dtype == np.int8 and infos["vehicle_0"]["action_mask"].shape == (3,)
    assert env.state().shape == env.state_space.shape == (3 * obs["vehicle_0"].shape[0],)
    actions = {a: env.action_space(a).sample({"target": infos[a]["action_mask"], "fraction": None}) for a in env.agents}
    _, rewards, terms, truncs, infos = env.step(actions)
    assert set(rewards) == set(terms) == set(truncs) == set(env.agents)
    assert "total_latency_s" in infos["vehicle_2"] and np.ndim(infos["vehicle_2"]["total_latency_s"]) == 0


def test_parallel_env_reset_is_reproducible():
    make = lambda: interop.pettingzoo_env("CrossRealityPrivacy-v0", **SMALL["CrossRealityPrivacy-v0"])
    a, b = make(), make()
    first = a.reset(seed=3)[0]
    second = a.reset()[0]  # continues seed 3's key stream
    np.testing.assert_array_equal(b.reset(seed=3)[0]["vehicle_0"], first["vehicle_0"])
    np.testing.assert_array_equal(b.reset()[0]["vehicle_0"], second["vehicle_0"])
    assert not np.array_equal(first["vehicle_0"], second["vehicle_0"])


def test_late_vehicles_join_and_finished_trips_leave():
    env = interop.pettingzoo_env("TwinRouting-v0", **SMALL["TwinRouting-v0"])
    seen, finished = set(), set()
    for seed in range(3):
        obs, infos = env.reset(seed=seed)
        assert set(obs) == set(env.agents) and "vehicle_3" not in env.agents  # late vehicles depart at t >= 1
        while env.agents:
            acting = set(env.agents)
            seen |= acting
            actions = {a: int(np.argmax(infos[a]["action_mask"])) for a in env.agents}
            obs, rewards, terms, truncs, infos = env.step(actions)
            assert acting <= set(obs) and set(obs) == set(rewards) == set(terms) == set(infos)
            done = {a for a in acting if terms[a] or truncs[a]}
            finished |= {a for a in done if terms[a]}
            assert not (set(env.agents) & done) and set(env.agents) == (acting - done) | (set(obs) - acting)
    assert "vehicle_3" in seen and finished  # a late vehicle joined, a trip ended with a termination


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="unknown environment id 'Nope-v0'; known ids: AvatarPremigration-v0"):
        interop.pettingzoo_env("Nope-v0")
    env = interop.pettingzoo_env("AvatarPremigration-v0", **SMALL["AvatarPremigration-v0"])
    env.reset(seed=0)
    good = {a: {"target": 0, "fraction": np.array([0.5], np.float32)} for a in env.agents}
    with pytest.raises(ValueError, match=r"actions\['vehicle_1'\]\['fraction'\] must have shape \(1,\), got \(2,\)"):
        env.step({**good, "vehicle_1": {"target": 0, "fraction": np.zeros(2, np.float32)}})
    with pytest.raises(ValueError, match=r"actions\['vehicle_0'\]\['target'\] must be integer"):
        env.step({**good, "vehicle_0": {"target": 0.5, "fraction": np.array([0.5], np.float32)}})
    with pytest.raises(ValueError, match=r"missing the live agent\(s\) \['vehicle_2'\]"):
        env.step({a: good[a] for a in ("vehicle_0", "vehicle_1")})
    with pytest.raises(ValueError, match="unknown agent 'truck_0'"):
        env.action_space("truck_0")
    world_env = interop.gymnasium_env("AvatarPremigration-v0", **SMALL["AvatarPremigration-v0"])
    world_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action\['target'\] must have shape \(3,\), got \(2,\)"):
        world_env.step({"target": np.zeros(2, np.int64), "fraction": np.zeros(3, np.float32)})


# ---------------------------------------------------------------------------------------------- vector env
VEC_ID, VEC_CONFIG, NUM_ENVS = "AvatarPremigration-v0", SMALL["AvatarPremigration-v0"], 3


@pytest.fixture(scope="module")
def vector_run():
    """5 steps of the vector env and of Gymnasium's SyncVectorEnv (same-step autoreset) over the single-world env,
    under the same actions; episodes of 4 steps, so step 4 (index 3) ends every world."""
    envs = interop.gymnasium_vector_env(VEC_ID, NUM_ENVS, **VEC_CONFIG)
    sync = SyncVectorEnv(
        [lambda: interop.gymnasium_env(VEC_ID, **VEC_CONFIG)] * NUM_ENVS, autoreset_mode=AutoresetMode.SAME_STEP
    )
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(5)]
    ours = [envs.reset(seed=1)] + [envs.step(a) for a in actions]
    theirs = [sync.reset(seed=1)] + [sync.step(a) for a in actions]
    return envs, sync, actions, ours, theirs


def test_vector_env_spaces_are_gymnasium_batches(vector_run):
    envs, sync, _, ours, _ = vector_run
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.single_observation_space == sync.single_observation_space
    assert envs.single_action_space == sync.single_action_space
    assert envs.observation_space == gymnasium.vector.utils.batch_space(envs.single_observation_space, NUM_ENVS)
    assert envs.action_space == sync.action_space
    assert set(envs.single_action_space) == {"target", "fraction"}
    assert envs.single_action_space["target"] == gymnasium.spaces.MultiDiscrete([3, 3, 3])
    for out in ours:
        assert out[0] in envs.observation_space
    for _, rewards, terms, truncs, _ in ours[1:]:
        assert rewards.shape == terms.shape == truncs.shape == (NUM_ENVS,)


def test_vector_env_same_step_autoreset(vector_run):
    envs, _, _, ours, _ = vector_run
    for step in (1, 2, 3, 5):  # no world ends: every step entry present for every world, no final_obs
        obs, _, terms, truncs, infos = ours[step]
        assert not (terms | truncs).any() and "final_obs" not in infos
        assert infos["_total_latency_s"].all() and infos["agent_rewards"].shape == (NUM_ENVS, 3)
    obs, rewards, terms, truncs, infos = ours[4]  # the 4th step ends every episode (time limit)
    assert truncs.all() and not terms.any() and np.all(rewards < 0)
    assert infos["_final_obs"].all() and infos["_final_info"].all()
    for i in range(NUM_ENVS):
        assert infos["final_obs"][i] in envs.single_observation_space
        assert not np.array_equal(infos["final_obs"][i], obs[i])  # obs is the next episode's first
    assert "total_latency_s" not in infos and infos["final_info"]["total_latency_s"].shape == (NUM_ENVS, 3)
    assert infos["_action_mask"].all()  # the reset's info: the new episode's mask
    obs_next, rewards_next, _, truncs_next, infos_next = ours[5]  # the next action went to the new episode
    assert not truncs_next.any() and np.all(rewards_next < 0) and "final_obs" not in infos_next


def test_vector_env_info_layout_matches_gymnasium_sync_vector_env(vector_run):
    _, _, _, ours, theirs = vector_run
    for (o1, *rest1), (o2, *rest2) in zip(ours, theirs):
        assert o1.shape == o2.shape and o1.dtype == o2.dtype
        info1, info2 = rest1[-1], rest2[-1]
        assert set(info1) == set(info2)
        for key in info1:
            if key.startswith("_"):
                np.testing.assert_array_equal(info1[key], info2[key], err_msg=key)
            elif key == "final_info":  # its mask keys; the terminal state's mask is not kept (no action follows)
                assert set(info1[key]) == set(info2[key]) - {
                    "action_mask",
                    "_action_mask",
                    "agents_present",
                    "_agents_present",
                }
            elif key != "final_obs":
                assert info1[key].shape == info2[key].shape and info1[key].dtype == info2[key].dtype, key
        if rest1[:-1]:
            for ours_part, theirs_part in zip(rest1[:-1], rest2[:-1]):
                assert ours_part.shape == theirs_part.shape


def test_vector_env_is_deterministic_and_checks_actions(vector_run):
    _, _, actions, ours, _ = vector_run
    again = interop.gymnasium_vector_env(VEC_ID, NUM_ENVS, **VEC_CONFIG)
    np.testing.assert_array_equal(again.reset(seed=1)[0], ours[0][0])
    for action, expected in zip(actions, ours[1:]):
        out = again.step(action)
        np.testing.assert_array_equal(out[0], expected[0])
        np.testing.assert_array_equal(out[1], expected[1])
    with pytest.raises(ValueError, match=r"actions\['fraction'\] must have shape \(3, 3\), got \(3, 2\)"):
        again.step({"target": actions[0]["target"], "fraction": np.zeros((3, 2), np.float32)})
    with pytest.raises(ValueError, match="seed must be one int"):
        again.reset(seed=[1, 2, 3])


def test_vector_infos_of_worlds_that_end_apart():
    """Worlds that end at different steps (TwinRouting's trips, terminal states): per-world masks, as Gymnasium's
    SyncVectorEnv lays them out (no env needed)."""
    from vmjax.interop.gym_env import same_step_infos

    done = np.array([False, True, False])
    step_info = {"latency_s": np.array([1.0, 2.0, 3.0]), "agent_rewards": np.zeros((3, 2))}
    reset_info = {"action_mask": np.ones((3, 2, 4), bool)}
    final_obs = np.arange(3 * 2 * 5, dtype=np.float32).reshape(3, 2, 5)
    infos = same_step_infos(step_info, reset_info, done, final_obs)
    assert infos["_latency_s"].tolist() == [True, False, True] and infos["_action_mask"].all()
    assert infos["_final_obs"].tolist() == [False, True, False] == infos["_final_info"].tolist()
    assert infos["final_obs"][0] is None and np.array_equal(infos["final_obs"][1], final_obs[1])
    assert infos["final_info"]["_latency_s"].tolist() == [False, True, False]
    assert infos["final_info"]["latency_s"][1] == 2.0 and infos["latency_s"] is not step_info["latency_s"]
    assert "final_obs" not in same_step_infos(step_info, reset_info, np.zeros(3, bool), final_obs)
