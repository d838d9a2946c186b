"""TwinRouting-v1: infeasible hosts that cost (overflow and out-of-range links through the satellite), the mask's
increment equal to what the realised load adds, the replayed flow table, the v1 load defaults, and the calibration
references (stay, least loaded, the per-slot oracle) against hand-built slots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines import twin_routing as heuristics
from tests.test_twin_routing import HAND, MB, WORKED, hand_ctx
from vmjax.envs import twin_routing as tr

SMALL = dict(num_vehicles=3, num_rsus=6, num_uavs=2, max_steps=8, city_size_m=2000.0)


@pytest.fixture(scope="module")
def hand():
    env = vmjax.make("TwinRouting-v1", **HAND)
    return {"env": env, "params": env.default_params, "latency": jax.jit(env.slot_latency), "mask": jax.jit(env._mask)}


def test_v1_is_registered_with_its_defaults():
    env = vmjax.make("TwinRouting-v1")
    assert env.name == "TwinRouting-v1" and isinstance(env.config, tr.TwinRoutingV1Config)
    c = env.config
    assert (c.mask_increment, c.overflow_adds_sat_comm, c.out_of_range_link) == ("realised", True, "satellite_relay")
    v0 = vmjax.make("TwinRouting-v0")
    assert v0.config.out_of_range_link == "channel" and v0.config.mask_increment == "spec"
    p1, p0 = env.default_params, v0.default_params
    for field, value in tr.V1_PARAMS.items():
        assert float(getattr(p1, field)) == pytest.approx(value)
    assert float(p0.flow_mean_vehicles) == 30.0  # v0 unchanged
    assert float(p1.channel_gain_coeff) == float(p0.channel_gain_coeff)  # the calibrated radio of v0


def test_out_of_range_host_is_reached_through_the_satellite(hand):
    """Vehicle 0 is 1300 m from RSU 0 (range 1200 m): up and down at R^SAT = 16 Mbit / 100 Mbit/s each, and xi = 1;
    v0 extrapolates the Friis rate instead."""
    dist = [[1300.0, 700.0, 1600.0, 550e3], [100.0, 100.0, 100.0, 550e3]]
    p = hand["params"]
    out = hand["latency"](hand_ctx(dist), jnp.array([0, 0], jnp.int32), p)
    np.testing.assert_allclose(out["uplink_s"][0], 0.16, rtol=1e-6)
    np.testing.assert_allclose(out["downlink_s"][0], 0.16, rtol=1e-6)
    assert bool(out["out_of_range"][0]) and bool(out["failure"][0])
    v0 = vmjax.make("TwinRouting-v0", **HAND)
    old = jax.jit(v0.slot_latency)(hand_ctx(dist), jnp.array([0, 0], jnp.int32), p)
    assert float(old["uplink_s"][0]) < 0.05  # the Friis rate extrapolated to 1300 m: milliseconds
    # in range: the channel as in v0
    inside = hand["latency"](hand_ctx(dist), jnp.array([1, 0], jnp.int32), p)
    inside_v0 = jax.jit(v0.slot_latency)(hand_ctx(dist), jnp.array([1, 0], jnp.int32), p)
    np.testing.assert_allclose(inside["uplink_s"][0], inside_v0["uplink_s"][0], rtol=1e-6)
    assert float(inside["uplink_s"][0]) < 0.05 and not bool(inside["failure"][0])
    # without a satellite (the §8.2 ablation) nothing relays: the channel, as v0, and still a failure
    no_sat = vmjax.make("TwinRouting-v1", **HAND, use_satellite=False)
    alone = jax.jit(no_sat.slot_latency)(hand_ctx(dist), jnp.array([0, 0], jnp.int32), p)
    np.testing.assert_allclose(alone["uplink_s"][0], old["uplink_s"][0], rtol=1e-6)
    assert bool(alone["failure"][0])


def test_overflow_pays_the_satellite_links(hand):
    """B + Q = 250 MB at RSU 1, the twin moves in (+2 + 60 MB): 312 > 300 MB overflows; computed on the satellite
    (2 MB x 1 cycle/bit / 80 GHz) and its up and down links are paid on top (2 x 0.16 s)."""
    p = hand["params"]
    over = hand["latency"](hand_ctx(WORKED, background_mb=(0, 250, 0, 0)), jnp.array([1, 0], jnp.int32), p)
    assert bool(over["overloaded"][0]) and bool(over["failure"][0])
    np.testing.assert_allclose(over["extra_s"][0], 0.32, rtol=1e-6)
    np.testing.assert_allclose(over["compute_s"][0], 2 * MB * float(p.cycles_per_bit) / 80e9, rtol=1e-5)


def test_mask_increment_is_what_the_realised_load_adds(hand):
    """For every vehicle and server, the mask's Delta S equals S'_m with the vehicle on m minus S'_m without it
    (eq. 8 with the migrated twin counted), for the current host, a new host and before the first placement."""
    env, p = hand["env"], hand["params"]
    for placed in ((True, True), (False, True)):
        ctx = hand_ctx(WORKED, background_mb=(10, 20, 5, 40), host=(0, 1), placed=placed, active=(True, True))
        increment = np.asarray(env.load_increment_bits(ctx, p))
        for v in range(2):
            other = 1 - v
            without = ctx.replace(active=ctx.active.at[v].set(False))
            for m in range(env.num_servers):
                server = jnp.array([m, 0] if v == 0 else [1, m], jnp.int32)
                with_v = env.slot_latency(ctx, server, p)["server_loads_bits"][m]
                base = env.slot_latency(without, server, p)["server_loads_bits"][m]
                assert float(with_v - base) == pytest.approx(increment[v, m], rel=1e-6), (placed, v, m, other)


def test_flow_table_is_replayed_from_a_random_row():
    env = vmjax.make("TwinRouting-v1", **SMALL)
    rows = SMALL["max_steps"] + env.config.load_history_slots + 1 + 5
    table = np.arange(rows * env.num_rsus, dtype=np.float32).reshape(rows, env.num_rsus) % 97
    params = env.default_params.replace(flow_table=jnp.asarray(table))
    env.validate_params(params)
    _, state = jax.jit(env.reset)(jax.random.key(3), params)
    start = int(np.floor(float(state.flow_offset_slots)))
    assert 0 <= start < rows
    for t in range(SMALL["max_steps"]):
        flow = env.flow_vehicles(state.flow_offset_slots, state.flow_phase_rad, state.flow_noise, t, params)
        np.testing.assert_array_equal(np.asarray(flow), table[(start + t) % rows])
    # the reset's background is S_v x the table row of slot 0 at the RSUs; the history holds the rows before it
    np.testing.assert_allclose(
        np.asarray(state.background_bits[: env.num_rsus]), table[start] * float(params.data_bits), rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(state.load_history_bits[-1, : env.num_rsus]),
        table[(start - 1) % rows] * float(params.data_bits),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="EnvParams.flow_table must have shape"):
        env.validate_params(params.replace(flow_table=jnp.ones((5, env.num_rsus))))
    with pytest.raises(ValueError, match="EnvParams.flow_table"):
        env.validate_params(params.replace(flow_table=-jnp.ones((rows, env.num_rsus))))


def test_references_on_a_rollout():
    """Stay keeps the host while it is selectable; least loaded picks the smallest S^o + Delta S among the
    selectable RSUs/UAVs; the team oracle's slot cost is never above the nearest server's (its start)."""
    env = vmjax.make("TwinRouting-v1", **SMALL)
    params = env.default_params
    _, state = jax.jit(env.reset)(jax.random.key(0), params)
    step = jax.jit(env.step)
    stay, least = heuristics.make_stay_policy(env), heuristics.make_least_loaded_policy(env)
    team = jax.jit(heuristics.make_oracle_policy(env, objective="team"))
    nearest = heuristics.make_greedy_policy(env, explore_prob=0.0)
    key = jax.random.key(1)
    for t in range(4):
        key, k = jax.random.split(key)
        ctx = env.slot_context(state, params)
        mask = np.asarray(env.action_mask(state, params))
        a_stay = np.asarray(stay(k, state, params))
        host = np.asarray(ctx.host)
        for v in range(env.num_agents):
            if mask[v, host[v]]:
                assert a_stay[v] == host[v]
        a_least = np.asarray(least(k, state, params))
        load = np.asarray(env.estimated_load_bits(ctx))[None, :] + np.asarray(env.load_increment_bits(ctx, params))
        ground = mask & ~env.is_sat
        for v in range(env.num_agents):
            if ground[v].any():
                assert load[v, a_least[v]] == pytest.approx(load[v][ground[v]].min())
        mean, std = env.norm_moments(state, params)

        def slot_cost(server):
            out = env.slot_latency(ctx, jnp.asarray(server, jnp.int32), params)
            loads = out.pop("server_loads_bits")
            cost = env.reward_terms(ctx, jnp.asarray(server), out, loads, mean, std, params)["cost"]
            return float(jnp.sum(jnp.where(ctx.active, cost, 0.0)))

        assert slot_cost(team(k, state, params)) <= slot_cost(nearest(k, state, params)) + 1e-5
        _, state, *_ = step(k, state, jnp.asarray(a_least), params)


def test_v1_rollout_is_jittable_and_deterministic():
    env = vmjax.make("TwinRouting-v1", **SMALL)
    params = env.default_params
    policy = heuristics.make_oracle_policy(env)
    from vmjax.core.rollout import rollout

    run = jax.jit(lambda k: rollout(env, policy, k, params, 2, 6, lambda r, info: {"r": r, "f": info["failure"]}))
    a, b = run(jax.random.key(5)), run(jax.random.key(5))
    np.testing.assert_array_equal(np.asarray(a["r"]), np.asarray(b["r"]))
    assert np.all(np.isfinite(np.asarray(a["r"])))


# ---------------------------------------------------------------- the command line
def test_v1_trains_from_the_command_line(tmp_path, monkeypatch):
    """`vmjax train --env TwinRouting-v1` (DM-MAPPO without workload information: the paper's "w/o pred."); its
    `vmjax evaluate` table holds the calibration references next to Greedy and Random (they run through the same
    evaluator as v0's, tested in test_cli)."""
    import json

    from tests.test_cli import TINY_TWIN
    from vmjax import cli, runner, scenarios

    run_dir = tmp_path / "v1"
    flags = [f if f != "TwinRouting-v0" else "TwinRouting-v1" for f in TINY_TWIN]
    flags += ["--env.workload_forecast", "none", "--agent.num_iterations", "1"]
    flags += ["--traffic.replay", "false", "--traffic.csv_path", ""]  # the synthetic flow (6 RSUs, not the SUMO 76)
    cli.main(["train", "--algo", "dm_mappo", "--run.run_dir", str(run_dir), *flags])
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["env"] == "TwinRouting-v1" and saved["env"]["out_of_range_link"] == "satellite_relay"
    assert saved["traffic"] == {"num_slots": 2000, "csv_path": "", "replay": False}
    assert runner.run_label(runner.resume_configs(run_dir, {})) == "DM-MAPPO w/o pred."
    policies = scenarios.get("TwinRouting-v1").evaluation.policies
    assert set(policies) == {"greedy", "random", "stay", "nearest", "least_loaded", "oracle", "oracle_team"}

    # the study on trained runs (experiments/twin_routing_v1.py): the method table of the run's setting with
    # Greedy and Random with and without the mask, the S^mig / S_v sweeps, the curves; resumable
    from experiments import twin_routing_v1 as study

    monkeypatch.setattr(study, "REFERENCES", ("stay",))  # the oracle's compile is long; the same code path
    monkeypatch.setattr(study, "HEURISTICS", ("greedy",))  # Random: the same code path, two compiles more
    out = tmp_path / "study"
    setting = study.setting_of(runner.resume_configs(run_dir, {}))
    assert setting != "default" and "num_rsus=6" in setting and "replay=False" in setting
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text((run_dir / "config.json").read_text())
    data = study.evaluate([run_dir, tmp_path / "unfinished"], out, episodes=2, seeds=2, log=lambda *_: None)
    result = data["settings"][setting]
    assert list(result["runs"]) == ["v1"] and result["heuristics_forecast"] == "none"
    assert set(result["heuristics"]) == {"Greedy", "Greedy w/o mask", "stay (no migration)"}
    run = result["runs"]["v1"]
    assert (
        run["label"] == "DM-MAPPO w/o pred." and run["iteration"] == 1 and len(run["per_held_out_seed"]["reward"]) == 2
    )
    assert all(np.isfinite(run[m]) for m in study.METRICS)
    assert run["latency_s"] == pytest.approx(np.mean(run["per_held_out_seed"]["latency_s"]))
    table = study.method_table(data, setting)
    assert "| DM-MAPPO w/o pred. (1 seed) |" in table and "| Greedy w/o mask |" in table
    stamp = (out / "evaluation.json").stat().st_mtime_ns
    study.evaluate([run_dir], out, episodes=2, seeds=2, log=lambda *_: None)  # already evaluated: skipped
    assert (out / "evaluation.json").stat().st_mtime_ns == stamp
    sweeps = study.sweep([run_dir], out, episodes=2, seeds=1, setting=setting, log=lambda *_: None)
    assert set(sweeps["results"]) == {"v1", "greedy"}
    for field, (_, values) in study.SWEEPS.items():
        assert len(sweeps["results"]["v1"][field]["latency_s"]) == len(values)
        assert "| DM-MAPPO w/o pred. |" in study.sweep_table(sweeps, field)
    curves = study.learning_curves([run_dir], out)
    assert list(curves["curves"]) == [setting] and list(curves["curves"][setting]) == ["DM-MAPPO w/o pred."]
    elsewhere = {"iteration": [1], "latency_s": [0.1], "failure": [0.0], "wall_s": 1.0}  # a run not on this disk
    curves["curves"][setting]["DM-MAPPO w/o pred."]["other"] = elsewhere
    study.write_results(out / "learning_curves.json", curves)
    merged = study.learning_curves([run_dir], out)["curves"][setting]["DM-MAPPO w/o pred."]
    assert set(merged) == {"v1", "other"} and merged["v1"] == curves["curves"][setting]["DM-MAPPO w/o pred."]["v1"]
    assert study.main(["table", "--out", str(out)]) == 0


def test_traffic_replay_drives_the_env_from_a_csv(tmp_path):
    """`--traffic.csv_path F --traffic.replay true`: the CSV's per-RSU counts become EnvParams.flow_table; the v1
    scenario replays the shipped SUMO day by default, and it fits the default env."""
    from vmjax import runner
    from vmjax.scenarios import twin_routing as scenario

    configs = runner.build_configs({"run.env": "TwinRouting-v1"})
    assert configs["traffic"].replay and configs["env"].forecast_units == "flow"
    full = vmjax.make("TwinRouting-v1")
    sumo = scenario.replayed_flow_table(full, full.default_params, configs["traffic"])
    assert sumo.flow_table.shape == (864, 76)
    learned = vmjax.make("TwinRouting-v1", workload_forecast="predictor")  # the scenario's default: the predictor
    assert learned.default_params.workload_predictor is None  # is trained after the table is set (`prepare`)
    assert scenario.replayed_flow_table(learned, learned.default_params, configs["traffic"]).flow_table.shape == (
        864,
        76,
    )

    env = vmjax.make("TwinRouting-v1", **SMALL)
    rows = SMALL["max_steps"] + env.config.load_history_slots + 1
    path = tmp_path / "counts.csv"
    header = "time," + ",".join(f"rsu_{i}" for i in range(env.num_rsus))
    body = "\n".join(f"{30 * t}," + ",".join(str(t + i) for i in range(env.num_rsus)) for t in range(rows))
    path.write_text(header + "\n" + body + "\n")
    params = scenario.replayed_flow_table(
        env, env.default_params, scenario.TrafficConfig(csv_path=str(path), replay=True)
    )
    np.testing.assert_array_equal(np.asarray(params.flow_table)[2], np.arange(env.num_rsus) + 2)
    assert scenario.replayed_flow_table(env, params, scenario.TrafficConfig()) is params  # no replay: unchanged
    with pytest.raises(ValueError, match="replay needs a csv_path"):
        scenario.TrafficConfig(replay=True)
    wide = vmjax.make("TwinRouting-v1", **{**SMALL, "num_rsus": 7})
    with pytest.raises(ValueError, match="has 6 series but the env has 7 RSUs"):
        scenario.replayed_flow_table(wide, wide.default_params, scenario.TrafficConfig(csv_path=str(path), replay=True))
