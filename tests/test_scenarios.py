"""The scenario registry (`vmjax.scenarios`) and the runner's metrics sinks: every env has one scenario, every
scenario is complete, a new scenario reaches the command line without editing it, TensorBoard events are
written and readable."""

import dataclasses
import struct

import pytest

import vmjax
from vmjax import cli, runner, scenarios
from vmjax.core import registry
from vmjax.core.validation import field_choices


def test_every_registered_env_has_one_scenario():
    assert set(scenarios.all_scenarios()) == set(vmjax.registered_envs())
    assert next(iter(scenarios.all_scenarios())) == scenarios.DEFAULT_ENV_ID
    with pytest.raises(ValueError, match="unknown scenario 'Nope-v0'; known: AvatarPremigration-v0"):
        scenarios.get("Nope-v0")


@pytest.mark.parametrize("env_id", sorted(scenarios.all_scenarios()))
def test_scenarios_are_complete_and_their_defaults_name_real_fields(env_id):
    scenario = scenarios.get(env_id)
    assert scenario.env_id == env_id and scenario.learners and scenario.evaluation.policies
    for algo, learner in scenario.learners.items():
        assert dataclasses.is_dataclass(learner.config) and callable(learner.make_trainer) and learner.label
        sections = scenario.config_sections(algo, runner.RunConfig)
        assert list(sections)[:3] == ["run", "env", "agent"]
        for section, cls in sections.items():
            for field, comment in cli.field_comments(cls).items():
                assert comment, f"{cls.__name__}.{field} has no documentation comment"
    for section, values in scenario.defaults.items():  # a misspelt default would be dropped silently
        classes = (
            [learner.config for learner in scenario.learners.values()]
            if section == "agent"
            else [scenario.config_sections(scenario.default_algo, runner.RunConfig)[section]]
        )
        names = {f.name for cls in classes for f in dataclasses.fields(cls)}
        assert set(values) <= names, f"{env_id} defaults[{section!r}]: {sorted(set(values) - names)}"
    configs = runner.build_configs({"run.env": env_id})
    assert runner.run_label(configs).startswith(scenario.learners[scenario.default_algo].label.split(" ")[0])
    assert scenario.variant(configs)


def test_a_new_scenario_reaches_the_command_line_without_editing_it(tmp_path):
    """Adding a scenario = its env (registered) and its Scenario entry: the CLI's flags, the runner's configs
    and the labels come from the registry."""
    base = scenarios.get("CrossRealityPrivacy-v0")
    env_id = "CrossRealityPrivacyCopy-v0"
    registry.register(env_id, type(vmjax.make(base.env_id)))
    copy = dataclasses.replace(
        base, env_id=env_id, run_dir=str(tmp_path / "copy"), defaults={"agent": {"num_iterations": 7}}
    )
    scenarios.register(copy)
    try:
        parser = cli.make_parser(env_id=env_id)
        text = parser._subparsers._group_actions[0].choices["train"].format_help()
        assert "--agent.denoising_steps" in text and env_id in text
        configs = runner.build_configs({"run.env": env_id, "run.algo": "hppo"})
        assert configs["agent"].num_iterations == 7 and configs["run"].run_dir == str(tmp_path / "copy")
        assert runner.run_label(configs) == "H-PPO"
        with pytest.raises(SystemExit, match="--algo must be one of"):
            cli.main(["train", "--env", env_id, "--algo", "msrl"])
    finally:
        scenarios._SCENARIOS.pop(env_id)
        registry._REGISTRY.pop(env_id)


def test_literal_choices_are_shown_and_checked():
    assert field_choices(runner.RunConfig) == {"log": ("jsonl", "tensorboard")}
    text = cli.make_parser("msrl")._subparsers._group_actions[0].choices["train"].format_help()
    assert "--trajectories.source {synthetic|real|generated}" in text and "--run.log {jsonl|tensorboard}" in text
    with pytest.raises(ValueError, match=r"RunConfig.log must be one of \('jsonl', 'tensorboard'\), got 'csv'"):
        runner.RunConfig(log="csv")


def _read_tfrecords(path):
    """The records of a TensorBoard event file (TFRecord framing: length, its CRC, data, the data's CRC)."""
    data, records, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        records.append(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
    return records


def test_tensorboard_sink_writes_scalars_by_iteration(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto import event_pb2

    sinks = runner.MetricsSinks(tmp_path, "tensorboard")
    sinks.write([{"iteration": 1, "episode_return": -3.5, "curve": [1, 2]}, {"iteration": 2, "episode_return": -2.0}])
    sinks.close()
    assert [r["episode_return"] for r in runner.read_metrics(tmp_path / "metrics.jsonl")] == [-3.5, -2.0]
    (events_file,) = tmp_path.glob("events.out.tfevents.*")
    scalars = []
    for record in _read_tfrecords(events_file):
        event = event_pb2.Event.FromString(record)
        scalars += [(event.step, v.tag, round(v.simple_value, 3)) for v in event.summary.value]
    assert scalars == [(1, "episode_return", -3.5), (2, "episode_return", -2.0)]
