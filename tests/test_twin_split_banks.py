"""Trajectory banks for TwinSplit-v0 (vmjax/mobility/banks.py, spec 004 §4.9, §7.3): real and EST-TG banks from
one seed plug into `EnvParams.trace_bank`, stay on the map and are deterministic."""

import jax
import numpy as np
import pytest

from vmjax.core import rollout
from vmjax.envs.twin_split import TwinSplit
from vmjax.mobility import (
    GroundTruthConfig,
    Trace,
    generate_chained_bank,
    on_road_ratio,
)
from vmjax.mobility.banks import build_trace_banks

SMALL = GroundTruthConfig(num_taxis=12, num_days=1)
STEPS, VEHICLES = 10, 6


def build(seed, map_size_m=5000.0):
    return build_trace_banks(
        seed, num_vehicles=VEHICLES, num_slots=STEPS + 1, map_size_m=map_size_m, ground_truth=SMALL, max_trips=4
    )


@pytest.fixture(scope="module")
def banks():
    return build(0)


def test_banks_plug_into_the_env_and_a_jitted_episode_runs(banks):
    env = TwinSplit(num_vehicles=3, max_steps=STEPS)
    policy = lambda key, state, p: state.prev_target  # no pre-migration
    keep = lambda reward, info: {"serving": info["serving"], "latency": info["total_latency_s"]}
    run = jax.jit(lambda k, p: rollout(env, policy, k, p, 2, STEPS, keep))
    for bank in (banks.real, banks.generated):
        assert isinstance(bank, Trace) and bank.positions_m.shape == (STEPS + 1, VEHICLES, 2)
        params = env.default_params.replace(trace_bank=bank)
        env.validate_params(params)
        out = run(jax.random.key(0), params)
        assert out["serving"].shape == (STEPS, 2, 3) and np.isfinite(np.asarray(out["latency"])).all()
        _, state = env.reset(jax.random.key(1), params)
        rows = np.asarray(state.trace.positions_m)  # the episode replays V columns of the bank
        bank_xy = np.asarray(bank.positions_m)
        for v in range(3):
            assert any(np.array_equal(rows[:, v], bank_xy[:, j]) for j in range(VEHICLES))


def test_positions_stay_on_the_map_and_move(banks):
    for bank in (banks.real, banks.generated):
        xy = np.asarray(bank.positions_m)
        assert np.isfinite(xy).all() and xy.min() >= 0.0 and xy.max() <= 5000.0
        assert np.mean(np.linalg.norm(np.diff(xy, axis=0), axis=-1) > 0) > 0.8
    assert on_road_ratio(banks.graph, np.asarray(banks.generated.positions_m).reshape(-1, 2)) == 1.0
    small = build(0, map_size_m=2500.0)  # city and hotspots scaled to the env's map
    for bank in (small.real, small.generated):
        xy = np.asarray(bank.positions_m)
        assert xy.min() >= 0.0 and xy.max() <= 2500.0 and xy.max() > 1250.0


def test_deterministic_for_the_seed(banks):
    again, other = build(0), build(1)
    for name in ("real", "generated"):
        np.testing.assert_array_equal(
            np.asarray(getattr(again, name).positions_m), np.asarray(getattr(banks, name).positions_m)
        )
        assert not np.array_equal(
            np.asarray(getattr(other, name).positions_m), np.asarray(getattr(banks, name).positions_m)
        )
    np.testing.assert_array_equal(again.real_jump_m, banks.real_jump_m)


def test_chained_bank_per_vehicle_hours(banks):
    key = jax.random.key(3)
    scalar = generate_chained_bank(key, banks.model, 8, num_vehicles=4, num_slots=6, max_trips=2)
    per_vehicle = generate_chained_bank(key, banks.model, np.full(4, 8), num_vehicles=4, num_slots=6, max_trips=2)
    np.testing.assert_array_equal(np.asarray(scalar.positions_m), np.asarray(per_vehicle.positions_m))
    mixed = generate_chained_bank(key, banks.model, np.asarray([8, 3, 8, 8]), num_vehicles=4, num_slots=6, max_trips=2)
    assert not np.array_equal(np.asarray(mixed.positions_m)[:, 1], np.asarray(scalar.positions_m)[:, 1])


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="num_vehicles"):
        build_trace_banks(0, num_vehicles=0)
    with pytest.raises(ValueError, match="map_size_m"):
        build_trace_banks(0, map_size_m=0.0)
