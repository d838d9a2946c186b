"""vmjax.render: one frame of every scenario drawn headlessly (a non-empty image, the scenario's own quantities in
its scene), and `vmjax render RUN_DIR --policy ...` writing a GIF of a tiny held-out episode."""

import json

import jax
import numpy as np
import pytest

import vmjax
from vmjax import cli, render, runner, scenarios
from vmjax.core.rollout import uniform_random_policy

SMALL = {
    "AvatarPremigration-v0": dict(num_vehicles=3, num_rsus=3, max_steps=4),
    "TwinRouting-v0": dict(num_vehicles=3, num_rsus=6, num_uavs=2, max_steps=4, num_late_vehicles=1),
    "TwinSplit-v0": dict(num_vehicles=3, num_rsus=4, max_steps=4),
    "CrossRealityPrivacy-v0": dict(num_vehicles=3, num_rsus=6, hop_neighbours=2, max_steps=4),
}
WITH_STEP = ("TwinSplit-v0", "CrossRealityPrivacy-v0")  # their frames show the step's own quantities


@pytest.fixture(scope="module")
def worlds():
    """env id -> (env, params, state, info of one random step from it or None)."""
    out = {}
    for env_id, config in SMALL.items():
        env = vmjax.make(env_id, **config)
        params = env.default_params
        _, state = jax.jit(env.reset_env)(jax.random.key(0), params)
        info = None
        if env_id in WITH_STEP:
            action = uniform_random_policy(env, params)(jax.random.key(1), state, params)
            info = jax.jit(env.step_env)(jax.random.key(2), state, action, params)[5]
        out[env_id] = (env, params, state, info)
    return out


def test_every_scenario_has_a_scene_and_a_greedy_heuristic():
    for env_id in vmjax.registered_envs():
        scenario = scenarios.get(env_id)
        assert scenario.scene is not None and scenario.greedy in scenario.evaluation.policies, env_id
    assert set(SMALL) == {e for e in vmjax.registered_envs() if e.endswith("-v0")}


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_frame_of_each_scenario_is_a_non_empty_image(worlds, env_id):
    env, params, state, info = worlds[env_id]
    extras = {"use_server": np.array([1.0, 0.0, 1.0], np.float32)} if env_id == "TwinSplit-v0" else None
    image = render.rgb_array(env, state, params, info, extras)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.std() > 10.0  # something is drawn, not a blank canvas
    scene = render.scene_of(env, state, params, info, extras)
    assert scene.vehicles_xy_m.shape == (env.num_agents, 2) and {"serving"} <= {g.kind for g in scene.links}
    loads = np.concatenate([np.asarray(g.load, float) for g in scene.servers])
    assert np.all(loads[~np.isnan(loads)] >= 0.0)


def test_scenario_quantities_are_in_the_scene(worlds):
    env, params, state, info = worlds["CrossRealityPrivacy-v0"]
    scene = render.scene_of(env, state, params, info)
    assert "reported location" in scene.markers and "report" in {g.kind for g in scene.links}
    assert {g.kind for g in scene.servers} == {"RSU", "satellite"}
    env, params, state, info = worlds["TwinSplit-v0"]
    scene = render.scene_of(env, state, params, info, {"use_server": np.array([1.0, 0.0, 1.0])})
    assert scene.vehicle_marks["server-side actor call"].tolist() == [True, False, True]
    assert any("2 server-side, 1 client-side" in note for note in scene.notes)
    env, params, state, _ = worlds["TwinRouting-v0"]
    scene = render.scene_of(env, state, params)
    assert {g.kind for g in scene.servers} == {"RSU", "UAV", "satellite"}
    assert scene.vehicles_active.tolist() == [True, True, False]  # the late vehicle has not departed


def test_render_command_writes_a_gif_of_a_heuristic_episode(tmp_path, capsys):
    from PIL import Image

    run_dir = tmp_path / "run"
    overrides = {"run.run_dir": str(run_dir), "env.workload_forecast": "persistence"}
    overrides.update({f"env.{k}": v for k, v in SMALL["AvatarPremigration-v0"].items()})
    configs = runner.build_configs(overrides)
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(runner.configs_to_json(configs)))
    out = tmp_path / "episode.gif"
    argv = ["render", str(run_dir), "--policy", "nearest_rsu", "--steps", "3", "--fps", "2", "--out", str(out)]
    assert cli.main(argv) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and np.asarray(gif.convert("RGB")).std() > 10.0
    assert "nearest_rsu on AvatarPremigration-v0, 3 frames" in capsys.readouterr().out
    assert render.policy_of_run(run_dir, "greedy")[3] == "greedy_oracle"  # the scenario's Scenario.greedy
    with pytest.raises(SystemExit, match="--policy must be one of trained, greedy, full_premigration"):
        cli.main(["render", str(run_dir), "--policy", "nope", "--out", str(out)])
    with pytest.raises(SystemExit, match="--out must end in .gif or .mp4"):
        cli.main(["render", str(run_dir), "--policy", "random", "--steps", "1", "--out", str(tmp_path / "x.png")])
