"""TwinRouting-v0's optimised world-step (issue 19 item 4) against the values of the implementation before it:
rollouts of 2 worlds over 14 slots (10 for the default layout; episodes of 12 slots elsewhere) under the masked random policy, recorded from the unmodified code
(`tests/data/twin_routing_reference.npz`), for every forecast mode (none, persistence, oracle, and the
predictor with a small randomly initialised LSTM-Transformer), the default layout and smaller ones that cross
episode ends, dynamic entry/exit, no satellite, fading, OFDMA, running statistics, the printed haversine and
the planar distance. Observations, rewards, masks, forecasts and the per-vehicle info must agree to float32
tolerance; the discrete outcomes (chosen server, flags) exactly.

The reference file was written by `python -m tests.test_twin_routing_speed --record` on the code before the
optimisation (commit 9443c32); rerunning it on later code only re-records that code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import vmjax
from baselines.twin_routing import make_random_policy
from vmjax import predict

REFERENCE = Path(__file__).parent / "data" / "twin_routing_reference.npz"
NUM_WORLDS, NUM_STEPS, DEFAULT_STEPS = 2, 14, 10  # the default layout's observations are large: fewer slots
MEDIUM = dict(num_vehicles=4, num_rsus=20, num_uavs=4, max_steps=12, city_size_m=3000.0)
SMALL_PREDICTOR = predict.WorkloadPredictorConfig(hidden_size=8, model_dim=16, num_heads=2, head_dim=8, ffn_dim=16)
CASES = {
    "default_persistence": dict(),
    "default_predictor": dict(workload_forecast="predictor"),
    "none": dict(MEDIUM, workload_forecast="none"),
    "persistence": dict(MEDIUM, workload_forecast="persistence"),
    "oracle": dict(MEDIUM, workload_forecast="oracle"),
    "predictor": dict(MEDIUM, workload_forecast="predictor"),
    "predictor_flow": dict(MEDIUM, workload_forecast="predictor", forecast_units="flow"),
    "dynamic": dict(
        MEDIUM,
        num_vehicles=5,
        num_late_vehicles=2,
        num_uavs=5,
        num_entering_uavs=2,
        num_exiting_uavs=2,
        min_trip_slots=3,
        use_satellite=False,
        obs_include_host=True,
        obs_include_presence=True,
        rayleigh_fading=True,
        ofdma_split=True,
        norm_mode="running",
        mask_increment="realised",
        reward_form="weighted_sum",
        team_reward=True,
    ),
    "rural_printed": dict(MEDIUM, layout="rural", haversine_variant="printed", rural_size_m=6000.0),
    "planar_literal": dict(MEDIUM, distance_model="planar", parameter_set="literal", use_uavs=False),
}
INFO = (
    "server",
    "total_latency_s",
    "uplink_s",
    "migration_s",
    "compute_s",
    "load_bits",
    "failure",
    "migrated",
    "out_of_range",
    "overloaded",
    "masked_action",
    "invalid_action",
    "packet_loss_rate",
    "workload_variance_bits2",
    "dropped_bits",
)


def make_case(name: str):
    """(env, params) of a reference case; the predictor cases get a small random LSTM-Transformer (key 3)."""
    config = CASES[name]
    env = vmjax.make("TwinRouting-v0", **config)
    params = env.default_params
    if config.get("workload_forecast") == "predictor":
        small = config is not CASES["default_predictor"]
        predictor_config = SMALL_PREDICTOR if small else predict.WorkloadPredictorConfig()
        scale = 1.0 if config.get("forecast_units") == "flow" else 2 * 8e6
        predictor = predict.init_workload_predictor(jax.random.key(3), predictor_config, 0.0, 60.0 * scale)
        params = params.replace(workload_predictor=predictor)
    return env, params


def run_case(name: str) -> dict:
    """The recorded quantities of `NUM_STEPS` VecEnv steps of `NUM_WORLDS` worlds under the masked random
    policy (keys fixed), as NumPy arrays; the final observations only of the slots where some world's episode
    ended (elsewhere they equal the observations)."""
    env, params = make_case(name)
    num_steps = DEFAULT_STEPS if name.startswith("default") else NUM_STEPS
    vec = vmjax.VecEnv(env, NUM_WORLDS)
    policy = jax.vmap(make_random_policy(env), in_axes=(0, 0, None))

    @jax.jit
    def run(key):
        k_reset, k_run = jax.random.split(key)
        obs0, state = vec.reset(k_reset, params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            mask = vec.action_mask(state, params)
            action = policy(jax.random.split(k_act, NUM_WORLDS), state, params)
            obs, state, reward, terminated, truncated, info = vec.step(k_step, state, action, params)
            out = {name: info[name] for name in INFO}
            out.update(
                obs=obs,
                final_observation=info["final_observation"],
                reward=reward,
                done=terminated | truncated,
                mask=mask,
                forecast_bits=state.forecast_bits,
                queue_bits=state.queue_bits,
                host=state.host,
            )
            return state, out

        _, outs = jax.lax.scan(body, state, jax.random.split(k_run, num_steps))
        return {"obs0": obs0, **outs}

    out = {k: np.asarray(v) for k, v in run(jax.random.key(11)).items()}
    out["final_observation"] = out["final_observation"][out["done"].any(axis=1)]
    return out


def record(path: Path = REFERENCE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in CASES:
        for key, value in run_case(name).items():
            arrays[f"{name}/{key}"] = value
        print(f"recorded {name}", flush=True)
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("name", list(CASES))
def test_rollout_equals_reference(name, reference):
    got = run_case(name)
    for key, value in got.items():
        want = reference[f"{name}/{key}"]
        assert value.shape == want.shape and value.dtype == want.dtype, key
        if np.issubdtype(want.dtype, np.floating):
            atol = 1e-5 * float(np.max(np.abs(want), initial=0.0))  # values near 0 next to large ones (rounding)
            np.testing.assert_allclose(value, want, rtol=1e-5, atol=atol, err_msg=f"{name}/{key}")
        else:
            np.testing.assert_array_equal(value, want, err_msg=f"{name}/{key}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        raise SystemExit("usage: python -m tests.test_twin_routing_speed --record")
