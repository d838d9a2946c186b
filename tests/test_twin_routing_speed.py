"""TwinRouting-v0's optimised world-step (issue 19 item 4) against the values of the implementation before it:
rollouts of 2 worlds over 14 slots (10 for the default layout; episodes of 12 slots elsewhere) under the masked random policy, recorded from the unmodified code
(`tests/data/twin_routing_reference.npz`), for every forecast mode (none, persistence, oracle, and the
predictor with a small randomly initialised LSTM-Transformer), the default layout (replayed only with
VMJAX_ALL_TWIN_ROUTING_CASES=1, see SUITE_CASES) and smaller ones that cross episode ends, dynamic entry/exit, no satellite, fading, OFDMA, running statistics, the printed haversine and
the planar distance. Observations, rewards, masks, forecasts and the per-vehicle info must agree to float32
tolerance; the discrete outcomes (chosen server, flags) exactly.

The reference file was written by `python -m tests.test_twin_routing_speed --record` on the code before the
optimisation (commit 9443c32); rerunning it on later code only re-records that code.

The pieces are also checked on their own against slow references kept here: the polynomial sine / cosine /
arcsine and the per-point haversine against NumPy and `net.haversine_distance_m`, the UAV nearest-RSU scan
against an argmin over all distances, `first_argmin` and `rows_by_loop` against their JAX equivalents, and the
fused LSTM-Transformer inference against the flax module.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines.twin_routing import make_random_policy
from vmjax import net, predict
from vmjax.envs import twin_routing as tr
from vmjax.predict import workload

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


FULL_ONLY = ("default_persistence", "default_predictor", "none", "persistence", "oracle")
SUITE_CASES = [name for name in CASES if os.environ.get("VMJAX_ALL_TWIN_ROUTING_CASES") or name not in FULL_ONLY]
"""The cases the suite replays. The default layout's two (76 RSUs, 10 UAVs) run the code paths of the medium
layout's persistence and predictor cases at the largest compile cost of the file, and the medium layout's none,
persistence and oracle differ from its predictor case only in the forecast's one line (`TwinRouting.forecast`,
unit-tested in test_twin_routing.py::test_forecast_modes), each at a full compile, so the suite leaves those five
out; `VMJAX_ALL_TWIN_ROUTING_CASES=1 python -m pytest tests/test_twin_routing_speed.py` replays every case (do that
after touching the world-step)."""


@pytest.mark.parametrize("name", SUITE_CASES)
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


# ---------------------------------------------------------------- the pieces against slow references
def test_polynomial_trigonometry_matches_numpy():
    x = np.concatenate([np.linspace(-math.pi / 2, math.pi / 2, 20001), np.geomspace(1e-9, 1.5, 2001)]).astype(
        np.float32
    )
    ulp = lambda v: np.spacing(np.abs(v).astype(np.float32)).astype(np.float64)
    x64 = x.astype(np.float64)
    for fn, ref in ((net.sin_poly, np.sin), (net.cos_poly, np.cos)):  # a few ulp; ~1e-7 near cos's zero
        err = np.abs(np.asarray(jax.jit(fn)(x), np.float64) - ref(x64))
        assert np.all(err <= np.maximum(4.0 * ulp(ref(x64)), 1e-7)), fn.__name__
    wide = np.linspace(-40.0, 40.0, 20001).astype(np.float32)  # beyond +-pi/2: reduced, absolute error ~1e-7
    np.testing.assert_allclose(np.asarray(jax.jit(net.sin_poly)(wide)), np.sin(wide.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(net.cos_poly)(wide)), np.cos(wide.astype(np.float64)), atol=1e-6)
    unit = np.concatenate([np.linspace(0.0, 1.0, 20001), np.geomspace(1e-10, 1.0, 2001)]).astype(np.float32)
    want = np.arcsin(unit.astype(np.float64))
    err = np.abs(np.asarray(jax.jit(net.arcsin_poly)(unit), np.float64) - want)
    assert np.max(err / np.maximum(ulp(want), 1e-45)) <= 4.0


@pytest.mark.parametrize("variant", ["standard", "printed"])
def test_haversine_per_point_matches_the_pairwise_formula(variant):
    rng = np.random.default_rng(0)
    a = rng.uniform(-2000.0, 20000.0, (300, 2)).astype(np.float32)
    b = rng.uniform(-2000.0, 20000.0, (40, 2)).astype(np.float32)
    b[:3] = a[:3]  # coincident points: exactly 0
    r, lat0 = 6_371_393.0, 39.9

    def reference(a, b):
        la, lo = net.xy_to_latlon_offset_deg(a[:, None], lat0, r)
        lb, lob = net.xy_to_latlon_offset_deg(b[None], lat0, r)
        return net.haversine_distance_m(la, lo, lb, lob, r, variant, lat0)

    def fast(a, b):
        pa, pb = net.sphere_points(a[:, None], lat0, r, variant), net.sphere_points(b[None], lat0, r, variant)
        return net.haversine_points_m(pa, pb, r, variant)

    want, got = np.asarray(jax.jit(reference)(a, b)), np.asarray(jax.jit(fast)(a, b))
    assert np.all(got[np.arange(3), np.arange(3)] == 0.0)
    # both carry the float32 rounding of the offsets (~mm on a 20 km map): equal to that
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=0.03)
    config = tr.TwinRoutingConfig(haversine_variant=variant, origin_lat_deg=lat0)
    np.testing.assert_allclose(
        np.asarray(tr.ground_distance_m(a[:, None], b[None], r, config)), got, rtol=2e-5, atol=1e-3
    )


@pytest.mark.parametrize("config", [dict(), dict(num_rsus=9, num_uavs=3), dict(distance_model="planar")])
def test_nearest_rsu_is_the_argmin_of_the_distances(config):
    env = vmjax.make("TwinRouting-v0", **config)
    params = env.default_params
    present = np.ones(env.num_rsus, bool)
    present[[3, 7]] = False
    params = params.replace(rsu_present=jnp.asarray(present))
    xy = jax.random.uniform(jax.random.key(0), (64, 2), minval=-500.0, maxval=env.road_grid.extent_m[0] + 500.0)
    xy = xy.at[0].set(params.rsu_xy_m[3])  # on an absent RSU
    d = tr.ground_distance_m(xy[:, None], params.rsu_xy_m[None], params.earth_radius_m, env.config)
    want = jnp.argmin(jnp.where(params.rsu_present[None, :], d, jnp.inf), axis=-1)
    got = jax.jit(env.nearest_rsu)(xy, params)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    nobody = params.replace(rsu_present=jnp.zeros(env.num_rsus, bool))  # no present RSU: index 0, as argmin
    np.testing.assert_array_equal(np.asarray(jax.jit(env.nearest_rsu)(xy[:4], nobody)), 0)


def test_first_argmin_and_rows_by_loop():
    x = jnp.array([[3.0, 1.0, 1.0, 2.0], [jnp.inf, jnp.inf, jnp.inf, jnp.inf], [0.0, 5.0, -1.0, -1.0]])
    np.testing.assert_array_equal(np.asarray(tr.first_argmin(x)), np.asarray(jnp.argmin(x, axis=-1)))
    rows = jax.random.normal(jax.random.key(1), (5, 7))
    fn = lambda r: jnp.cumsum(r) * r[0]
    np.testing.assert_array_equal(np.asarray(tr.rows_by_loop(fn, rows)), np.asarray(jax.vmap(fn)(rows)))


@pytest.mark.parametrize(
    "config",
    [
        predict.WorkloadPredictorConfig(),
        SMALL_PREDICTOR,
        predict.WorkloadPredictorConfig(positional_embedding=True, causal_attention=True, ffn_activation="gelu"),
        predict.WorkloadPredictorConfig(window=3, hidden_size=12, num_heads=3, head_dim=5, model_dim=10),
    ],
)
def test_fused_lstm_transformer_matches_the_flax_module(config):
    predictor = predict.init_workload_predictor(jax.random.key(2), config)
    x = jax.random.uniform(jax.random.key(3), (512, config.window), minval=-0.3, maxval=1.4)
    want = predictor.model.apply({"params": predictor.params}, x[..., None])[:, 0]
    got = jax.jit(lambda p, x: workload._fused_lstm_transformer(p.params, p.config, x))(predictor, x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    history = jax.random.uniform(jax.random.key(4), (2, config.window, 9), minval=0.0, maxval=50.0)
    scaled = predict.init_workload_predictor(jax.random.key(2), config, 5.0, 40.0)
    x = jnp.swapaxes((history - 5.0) / 35.0, -1, -2).reshape(-1, config.window, 1)
    flax_loads = 5.0 + scaled.model.apply({"params": scaled.params}, x)[:, 0].reshape(2, 9) * 35.0
    np.testing.assert_allclose(
        np.asarray(predict.predict_next_load(scaled, history)),
        np.maximum(np.asarray(flax_loads), 0.0),
        rtol=1e-5,
        atol=1e-4,
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        raise SystemExit("usage: python -m tests.test_twin_routing_speed --record")
