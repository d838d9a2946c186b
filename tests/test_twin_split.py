"""TwinSplit-v0 (spec 004): every equation against a float64 NumPy oracle and the spec's worked example (§2.8),
the guards, the observation (21), the options, and the contract (jit, vmap over worlds and params,
determinism, retracing, gradients, bad input)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from vmjax import net
from vmjax.envs import twin_split as ts
from vmjax.mobility import Trace

MBIT = 1e6
SMALL = {"num_vehicles": 3, "num_rsus": 4, "max_steps": 6}


# ---------------------------------------------------------------- the float64 NumPy oracle (§2.3-2.7)
def numpy_slot(
    pos,
    rsu,
    target,
    alpha,
    du,
    dtask,
    f,
    gpu,
    util,
    bbh,
    prev=None,
    mu=0.5,
    lmax=2.4e11,
    kd=0.2,
    bw=20e6,
    p=0.2,
    n0_dbm=-174.0,
    fc=5.9e9,
    a_gain=1.0,
    h=10.0,
    tau=0.02,
):
    """One slot of spec 004 written out by hand in float64 (prev: serving, target, D^L, D^m of slot t-1)."""
    pos, rsu = np.asarray(pos, float), np.asarray(rsu, float)
    v = len(pos)
    d = np.sqrt(((pos[:, None, :] - rsu[None]) ** 2).sum(-1) + h * h)  # (C1) [R]
    srv = d.argmin(1)
    sigma2 = 10 ** ((n0_dbm - 30) / 10) * bw
    rate = lambda dist: bw * np.log2(1 + p * a_gain * (3e8 / (4 * math.pi * fc * dist)) ** 2 / sigma2)  # (C2)-(C4)
    dm = np.where(target != srv, alpha * dtask, 0.0)  # §2.3 [R]
    dl = dtask - dm  # (5)
    same_srv = np.zeros(v, bool) if prev is None else srv == prev[0]
    phi = np.zeros(v, bool) if prev is None else target == prev[1]
    xi_e = np.maximum(dl - mu * same_srv * (0 if prev is None else prev[2]), 0)  # (4)
    xi_m = np.maximum(dm - mu * phi * (0 if prev is None else prev[3]), 0)  # (8)
    mig = dm > 0
    c = np.zeros((v, len(rsu)))
    for i in range(v):
        c[i, srv[i]] += f[i] * xi_e[i]
        if mig[i]:
            c[i, target[i]] += f[i] * xi_m[i]
    seen = util * lmax + c.sum(0)[None] - c  # §2.7
    out = {"loads": c.sum(0), "d": d, "srv": srv}
    i = np.arange(v)
    out["Ru"] = rate(d[i, srv])
    out["Tu"] = du / out["Ru"]  # (1)
    out["Tpe"] = np.where(dl > 0, (seen[i, srv] + xi_e * f) / gpu[srv], 0)  # (6)
    out["Tm"] = np.where(mig, dm / bbh[srv, target], 0)  # (3)
    out["Tpm"] = np.where(mig, (seen[i, target] + xi_m * f) / gpu[target], 0)  # (9)
    out["Tp"] = np.maximum(out["Tpe"], out["Tpm"] + out["Tm"])  # (10)
    out["Rd_target"] = rate(d[i, target])
    out["Td"] = kd * dl / out["Ru"] + np.where(mig, kd * dm / out["Rd_target"], 0)  # (2), same B and p down
    out["T"] = out["Tu"] + out["Tp"] + out["Td"]  # (11)
    same = (target[:, None] == target[None]) & mig[:, None] & mig[None] & ~np.eye(v, dtype=bool)  # (14)
    out["ber"] = 1 - np.exp(-tau * (same * dm[None] / MBIT).sum(1))  # (12)-(13)
    out["qoe"] = -out["ber"] - out["T"]  # (15), lambda1 = lambda2 = 1
    out.update(dm=dm, dl=dl, chi=same.any(1), phi=phi)
    return out


WORKED = {  # §2.8: RSU0 (0, 0), RSU1 (1000, 0); veh0 at (100, 0) -> RSU1, veh1 at (900, 0) stays on RSU1
    "pos": [[100.0, 0.0], [900.0, 0.0]],
    "rsu": [[0.0, 0.0], [1000.0, 0.0]],
    "target": np.array([1, 1]),
    "alpha": 0.5,
    "du": np.full(2, 2e6),
    "dtask": np.full(2, 20e6),
    "f": np.full(2, 1000.0),
    "gpu": np.full(2, 60e9),
    "util": np.full(2, 0.2),
    "bbh": np.full((2, 2), 500e6),
}


def test_worked_example_numpy_oracle_matches_the_spec():
    """The spec's §2.8 numbers are right (to their printed digits): checked by hand in float64."""
    o = numpy_slot(**WORKED)
    np.testing.assert_allclose(10 ** ((-174 - 30) / 10) * 20e6, 7.962e-14, rtol=1e-4)  # sigma^2
    np.testing.assert_allclose(o["loads"], [1.0e10, 3.0e10])
    np.testing.assert_allclose(o["Ru"][0] / MBIT, 239.84, atol=0.005)
    np.testing.assert_allclose(o["Tu"][0], 0.00834, atol=5e-6)
    np.testing.assert_allclose(o["Tpe"][0], 0.96667, atol=5e-6)
    np.testing.assert_allclose(o["Tm"][0], 0.02)
    np.testing.assert_allclose(o["Tpm"][0], 1.30000, atol=5e-6)
    np.testing.assert_allclose(o["Tp"][0], 1.32, atol=5e-6)
    np.testing.assert_allclose(o["Rd_target"][0] / MBIT, 113.88, atol=0.005)
    np.testing.assert_allclose(o["Td"][0], 0.02590, atol=5e-6)
    np.testing.assert_allclose(o["T"][0], 1.35424, atol=5e-6)
    np.testing.assert_allclose(o["Tp"][1], 1.30000, atol=5e-6)
    np.testing.assert_allclose(o["Td"][1], 0.01668, atol=5e-6)
    np.testing.assert_allclose(o["T"][1], 1.32502, atol=5e-6)
    np.testing.assert_array_equal(o["ber"], [0.0, 0.0])
    # the chi/eps example: both pre-migrate 10 Mb to the same RSU, tau = 0.02 / Mb
    both = numpy_slot(**{**WORKED, "pos": [[100.0, 0.0], [150.0, 0.0]]})
    np.testing.assert_allclose(both["ber"], 1 - math.exp(-0.2), rtol=1e-12)
    np.testing.assert_allclose(both["ber"], 0.18127, atol=5e-6)


# ---------------------------------------------------------------- the env on the worked example
@pytest.fixture(scope="module")
def worked():
    env = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=2, max_steps=4)
    positions = jnp.broadcast_to(jnp.asarray(WORKED["pos"], jnp.float32), (5, 2, 2))
    params = env.default_params.replace(
        rsu_xy_m=jnp.asarray(WORKED["rsu"], jnp.float32),
        backhaul_bps=jnp.full((2, 2), 500e6),
        trace_bank=Trace.create(positions),
    )
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(
        trace=Trace(positions_m=positions),
        util=jnp.full(2, 0.2),
        gpu_scale=jnp.ones(2),
        cycles_per_bit=jnp.full(2, 1000.0),
        draws=ts.SlotDraws(request_bits=jnp.full(2, 2e6), task_bits=jnp.full(2, 20e6), fading=None),
    )
    return env, params, state, jax.jit(env.step_env)


def test_worked_example_through_the_env(worked):
    _env, params, state, step = worked
    obs, nxt, reward, term, trunc, info = step(jax.random.key(1), state, jnp.array([1, 1], jnp.int32), params)
    o = numpy_slot(**WORKED)
    np.testing.assert_allclose(info["total_latency_s"], [1.35424, 1.32502], atol=2e-5)
    for key, ref in (
        ("uplink_s", "Tu"),
        ("local_processing_s", "Tpe"),
        ("migration_s", "Tm"),
        ("remote_processing_s", "Tpm"),
        ("processing_s", "Tp"),
        ("downlink_s", "Td"),
        ("total_latency_s", "T"),
        ("ber", "ber"),
        ("qoe", "qoe"),
    ):
        np.testing.assert_allclose(info[key], o[ref], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(nxt.prev_agent_cycles, [1.0e10, 3.0e10], rtol=1e-6)
    np.testing.assert_allclose(reward, -o["T"], rtol=1e-5)  # eq. (22)
    np.testing.assert_array_equal(info["serving"], [0, 1])
    np.testing.assert_array_equal(info["migrates"], [True, False])
    assert not bool(term) and not bool(trunc)
    # observation (21) of slot t + 1: a(t)/(E-1), available workload, eps, phi, chi, T(t) / 1 s
    available = np.clip(1 - (np.asarray(nxt.util) + np.array([1e10, 3e10]) / 2.4e11), 0, 1)
    want = np.concatenate([np.ones((2, 1)), np.tile(available, (2, 1)), np.zeros((2, 3)), o["T"][:, None]], axis=1)
    np.testing.assert_allclose(obs, want, rtol=1e-5, atol=1e-6)


def test_texture_reuse_and_stability_second_slot(worked):
    """Eqs. (4), (7), (8): same serving RSU and same target in slot 2 re-use mu of the previous parts."""
    _env, params, state, step = worked
    _, s1, *_ = step(jax.random.key(1), state, jnp.array([1, 1], jnp.int32), params)
    s1 = s1.replace(util=jnp.full(2, 0.2), draws=state.draws)
    _, _, _, _, _, info = step(jax.random.key(2), s1, jnp.array([1, 1], jnp.int32), params)
    first = numpy_slot(**WORKED)
    prev = (first["srv"], WORKED["target"], first["dl"], first["dm"])
    o = numpy_slot(**WORKED, prev=prev)
    np.testing.assert_allclose(o["loads"], [0.5e10, 1.5e10])  # xi halves with mu = 0.5
    np.testing.assert_array_equal(info["stable"], [True, True])
    for key, ref in (("local_processing_s", "Tpe"), ("remote_processing_s", "Tpm"), ("total_latency_s", "T")):
        np.testing.assert_allclose(info[key], o[ref], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(info["remote_processing_s"][0], (4.8e10 + 1e10 + 5e9) / 60e9, rtol=1e-5)
    # a changed target forfeits the re-use of the pre-migrated part (phi = 0) but not of the local part
    o2 = numpy_slot(**{**WORKED, "target": np.array([0, 0])}, prev=prev)
    _, _, _, _, _, info2 = step(jax.random.key(2), s1, jnp.array([0, 0], jnp.int32), params)
    np.testing.assert_allclose(info2["total_latency_s"], o2["T"], rtol=1e-5)


def test_guards_and_net_helpers():
    """xi clipped at 0, absent parts take no time, own serving RSU = no pre-migration, alpha = 1 -> D^L = 0."""
    np.testing.assert_allclose(
        net.reuse_discounted_bits(
            jnp.array([10e6, 4e6, 4e6]), jnp.array([10e6, 10e6, 10e6]), jnp.array([True, True, False]), 0.5
        ),
        [5e6, 0.0, 4e6],
    )
    env = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=2, max_steps=4)
    p = env.default_params.replace(
        rsu_xy_m=jnp.asarray(WORKED["rsu"], jnp.float32), backhaul_bps=jnp.full((2, 2), 500e6)
    )
    ctx = ts.SlotContext(
        distance_m=env.distances_m(jnp.asarray(WORKED["pos"], jnp.float32), p),
        serving=jnp.array([0, 1]),
        same_serving=jnp.zeros(2, bool),
        has_previous=jnp.array(False),
        prev_target=jnp.array([0, 1]),
        prev_local_bits=jnp.zeros(2),
        prev_premigrated_bits=jnp.zeros(2),
        request_bits=jnp.full(2, 2e6),
        task_bits=jnp.full(2, 20e6),
        cycles_per_bit=jnp.full(2, 1000.0),
        fading=None,
        util=jnp.full(2, 0.2),
        gpu_hz=jnp.full(2, 60e9),
    )
    out = jax.jit(ts.slot_outcome)(ctx, jnp.array([1, 1]), jnp.array([1.0, 0.7]), p)  # full migration, own RSU
    o = numpy_slot(**{**WORKED, "alpha": np.array([1.0, 0.7])})
    np.testing.assert_allclose(out["local_processing_s"], [0.0, o["Tpe"][1]], rtol=1e-5)
    np.testing.assert_allclose(out["migration_s"], [0.04, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out["remote_processing_s"][1], 0.0)
    np.testing.assert_allclose(out["total_latency_s"], o["T"], rtol=1e-5)
    zero = jax.jit(ts.slot_outcome)(ctx, jnp.array([1, 0]), jnp.zeros(2), p)  # alpha = 0: nothing moves
    assert not np.asarray(zero["migrates"]).any() and float(jnp.sum(zero["migration_s"])) == 0.0
    # (C2) [R] fading option: h g with g = 2 everywhere is the same as A = 2
    faded = jax.jit(ts.slot_outcome)(ctx.replace(fading=jnp.full((2, 2), 2.0)), jnp.array([1, 1]), jnp.full(2, 0.5), p)
    np.testing.assert_allclose(faded["total_latency_s"], numpy_slot(**WORKED, a_gain=2.0)["T"], rtol=1e-5)


def test_generated_background_vehicles_add_load(worked):
    """§2.7 / §7.3 option: 2 generated vehicles nearest to RSU0 add 2 c_bg = 4e9 cycles there."""
    _, params, state, _ = worked
    env = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=2, max_steps=4, num_background_vehicles=2)
    agents = np.asarray(state.trace.positions_m)
    positions = np.concatenate([agents, np.broadcast_to([[50.0, 0.0], [60.0, 0.0]], (5, 2, 2))], axis=1)
    s = state.replace(trace=Trace(positions_m=jnp.asarray(positions, jnp.float32)))
    obs, _, _, _, _, info = jax.jit(env.step_env)(jax.random.key(1), s, jnp.array([1, 1], jnp.int32), params)
    o = numpy_slot(**{**WORKED, "util": np.array([0.2 + 4e9 / 2.4e11, 0.2])})
    np.testing.assert_allclose(info["total_latency_s"], o["T"], rtol=1e-5)
    np.testing.assert_allclose(info["local_processing_s"][0], (4.8e10 + 4e9 + 1e10) / 60e9, rtol=1e-5)
    assert obs.shape == (2, 7)


def test_contention_ber_and_collision_flag():
    """Eqs. (12)-(14): only vehicles that actually pre-migrate to the same RSU count; chi flags them."""
    env = vmjax.make("TwinSplit-v0", num_vehicles=3, num_rsus=2, max_steps=4)
    p = env.default_params.replace(rsu_xy_m=jnp.asarray(WORKED["rsu"], jnp.float32))
    pos = jnp.array([[100.0, 0.0], [150.0, 0.0], [900.0, 0.0]])
    ctx = ts.SlotContext(
        distance_m=env.distances_m(pos, p),
        serving=jnp.array([0, 0, 1]),
        same_serving=jnp.zeros(3, bool),
        has_previous=jnp.array(False),
        prev_target=jnp.zeros(3, jnp.int32),
        prev_local_bits=jnp.zeros(3),
        prev_premigrated_bits=jnp.zeros(3),
        request_bits=jnp.full(3, 2e6),
        task_bits=jnp.array([20e6, 20e6, 20e6]),
        cycles_per_bit=jnp.full(3, 1000.0),
        fading=None,
        util=jnp.full(2, 0.2),
        gpu_hz=jnp.full(2, 60e9),
    )
    out = jax.jit(ts.slot_outcome)(ctx, jnp.array([1, 1, 1]), jnp.full(3, 0.5), p)
    np.testing.assert_allclose(out["ber"], [1 - math.exp(-0.2), 1 - math.exp(-0.2), 0.0], rtol=1e-5)
    np.testing.assert_array_equal(out["collision"], [True, True, False])
    np.testing.assert_allclose(out["qoe"], -out["ber"] - out["total_latency_s"], rtol=1e-6)


def test_background_utilisation_ar1():
    """§2.7: u(t+1) = clip(rho u + (1 - rho) u-bar w/max w + sigma zeta, 0, u_max); zero noise is exact."""
    p = vmjax.make("TwinSplit-v0").default_params.replace(util_noise_std=0.0)
    u = ts.next_utilisation(jax.random.key(0), jnp.array([0.2, 0.6, 0.0]), jnp.array([0.3, 0.4, 0.2]), 0.5, p)
    np.testing.assert_allclose(
        u, [0.9 * 0.2 + 0.1 * 0.3 * 0.5, 0.9 * 0.6 + 0.1 * 0.4 * 0.5, 0.1 * 0.2 * 0.5], rtol=1e-6
    )
    u = ts.next_utilisation(jax.random.key(0), jnp.array([0.6]), jnp.array([0.4]), 1.0, p.replace(util_noise_std=10.0))
    assert 0.0 <= float(u[0]) <= np.float32(0.6)


# ---------------------------------------------------------------- layout, observation, action options
def test_default_layout_and_backhaul():
    np.testing.assert_allclose(
        net.grid_rsu_positions(4, 5000.0), [[1250, 1250], [3750, 1250], [1250, 3750], [3750, 3750]]
    )
    np.testing.assert_allclose(ts.grid_backhaul_bps(4)[0], [500e6, 500e6, 500e6, 250e6])  # 500 Mb/s / hops
    assert net.rsu_grid_shape(9) == (3, 3) and net.rsu_grid_shape(6) == (2, 3)


def test_observation_modes_and_initial_values():
    env = vmjax.make("TwinSplit-v0", **SMALL)
    ext = vmjax.make("TwinSplit-v0", **SMALL, obs_mode="extended")
    assert env.obs_dim == 4 + 5 and ext.obs_dim == 3 * 4 + 8
    p = env.default_params
    obs, state = jax.jit(env.reset)(jax.random.key(3), p)
    serving = env.serving_rsu(state.trace.position_at(0), p)
    np.testing.assert_allclose(obs[:, 0], serving / 3.0)  # a(0) = serving RSU [R]
    np.testing.assert_allclose(obs[:, 1:5], np.tile(1 - np.asarray(state.util), (3, 1)), rtol=1e-6)
    np.testing.assert_array_equal(obs[:, 5:], 0.0)  # eps, phi, chi, T start at 0
    obs_x, state_x = jax.jit(ext.reset)(jax.random.key(3), p)
    np.testing.assert_allclose(obs_x[:, :9], obs, rtol=1e-6)
    pos = np.asarray(state_x.trace.position_at(0))
    np.testing.assert_allclose(obs_x[:, 9:11], pos / 5000.0, rtol=1e-5)
    np.testing.assert_array_equal(obs_x[:, 15:19], np.eye(4)[np.asarray(serving)])
    np.testing.assert_allclose(obs_x[:, 19], np.asarray(state_x.draws.task_bits) / 30e6, rtol=1e-6)
    assert bool(ext.observation_space(p).contains(obs_x)) and bool(env.observation_space(p).contains(obs))


def test_alpha_levels_dict_actions_reward_options(worked):
    _, params, state, _ = worked
    env = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=2, max_steps=4, alpha_levels=(0.25, 0.5, 1.0))
    assert env.num_actions == 6
    target, alpha = env.parse_action(jnp.array([5, 1], jnp.int32), params)
    np.testing.assert_array_equal(target, [1, 0])
    np.testing.assert_allclose(alpha, [1.0, 0.5])
    _, _, _, _, _, info = jax.jit(env.step_env)(
        jax.random.key(0), state, jnp.array([4, 5], jnp.int32), params
    )  # RSU 1, alpha .5
    np.testing.assert_allclose(info["total_latency_s"], [1.35424, 1.32502], atol=2e-5)
    base = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=2, max_steps=4)
    _, _, _, _, _, info_d = jax.jit(base.step_env)(
        jax.random.key(0), state, {"target": jnp.array([1, 1], jnp.int32), "fraction": jnp.array([0.5, 0.9])}, params
    )
    np.testing.assert_allclose(info_d["total_latency_s"], [1.35424, 1.32502], atol=2e-5)
    qoe_env = vmjax.make("TwinSplit-v0", num_vehicles=2, num_rsus=2, max_steps=4, reward="qoe")
    p_pen = params.replace(violation_penalty=2.0, max_workload_cycles=3e10)  # RSU1 over L^max: 6e9 + 3e10
    _, _, r, _, _, info_q = jax.jit(qoe_env.step_env)(jax.random.key(0), state, jnp.array([1, 1], jnp.int32), p_pen)
    assert int(info_q["workload_violations"]) == 1
    np.testing.assert_allclose(r, np.asarray(info_q["qoe"]) - 2.0 * int(info_q["workload_violations"]), rtol=1e-6)


def test_trace_bank_rows_are_replayed():
    env = vmjax.make("TwinSplit-v0", **SMALL)
    bank = np.zeros((8, 5, 2), np.float32)
    bank[..., 0] = np.arange(5)[None, :] * 1000.0 + 100.0  # row k sits at x = 1000 k + 100
    bank[..., 1] = np.arange(8)[:, None] * 10.0
    p = env.default_params.replace(trace_bank=Trace.create(bank))
    _, state = env.reset(jax.random.key(0), p)
    x = np.asarray(state.trace.positions_m)
    rows = ((x[0, :, 0] - 100.0) / 1000.0).round().astype(int)
    assert len(set(rows.tolist())) == 3  # distinct rows
    np.testing.assert_allclose(x, bank[:7, rows])


# ---------------------------------------------------------------- contract
@pytest.fixture(scope="module")
def small():
    env = vmjax.make("TwinSplit-v0", **SMALL)
    chex.clear_trace_counter()  # chex keys traces by call stack names + source: other files' `small` fixtures collide
    bank = np.random.default_rng(0).uniform(0.0, 5000.0, (7, 8, 2)).astype(np.float32)  # a replayed bank (§4.9)
    params = env.default_params.replace(trace_bank=Trace.create(bank))
    return env, params, jax.jit(chex.assert_max_traces(env.reset, n=1)), jax.jit(chex.assert_max_traces(env.step, n=1))


def test_jit_determinism_time_limit_and_no_retracing(small):
    env, p, reset, step = small

    def run(key):
        k_reset, k_run = jax.random.split(key)
        _, state = reset(k_reset, p)
        out = []
        for k in jax.random.split(k_run, 8):
            k_act, k_step = jax.random.split(k)
            action = env.action_space(p).sample(k_act)
            obs, state, reward, _, trunc, info = step(k_step, state, action, p)
            out.append((obs, reward, trunc, info["final_observation"]))
        return [np.stack(x) for x in zip(*out)]

    obs_a, rew_a, trunc_a, final_a = run(jax.random.key(0))
    obs_b, rew_b, *_ = run(jax.random.key(0))  # same functions again: the max_traces=1 guards hold
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(rew_a, run(jax.random.key(1))[1])
    assert np.flatnonzero(trunc_a).tolist() == [5]
    assert not np.array_equal(final_a[5], obs_a[5])  # auto-reset keeps the last observation apart
    chex.assert_tree_all_finite((obs_a, rew_a))
    assert (rew_a < 0).all()


def test_vmap_over_worlds_and_params(small):
    env, p, _reset, _step = small
    keys = jax.random.split(jax.random.key(0), 3)
    actions = jnp.array([[0, 1, 2], [3, 3, 3], [2, 0, 1]], jnp.int32)

    def reset_and_step(key, a, params):
        _, state = env.reset(key, params)
        return env.step_env(key, state, a, params)

    out_v = jax.jit(jax.vmap(reset_and_step, in_axes=(0, 0, None)))(keys, actions, p)
    single = jax.jit(reset_and_step)
    for i in range(3):
        out_i = single(keys[i], actions[i], p)
        np.testing.assert_allclose(out_v[2][i], out_i[2], rtol=1e-5)
        np.testing.assert_allclose(out_v[0][i], out_i[0], rtol=1e-5, atol=1e-6)
    # §7.1 sweep of C_nom, 40..80 GHz, in one compiled call: more GPU, less latency
    swept = jax.vmap(lambda c: p.replace(gpu_hz_nominal=c))(jnp.array([40e9, 60e9, 80e9]))
    latency = jax.jit(jax.vmap(lambda q: -jnp.sum(reset_and_step(keys[0], actions[0], q)[2])))(swept)
    assert latency[0] > latency[1] > latency[2]
    np.testing.assert_allclose(latency[1], -jnp.sum(single(keys[0], actions[0], p)[2]), rtol=1e-5)


def test_grad_wrt_continuous_params_matches_finite_differences(small):
    env, p, reset, _ = small
    _, state = reset(jax.random.key(4), p)
    action = jnp.array([1, 2, 3], jnp.int32)

    def total_reward(x):
        q = p.replace(gpu_hz_nominal=60e9 * x[0], rsu_height_m=x[1], texture_reuse=x[2])
        return jnp.sum(env.step_env(jax.random.key(0), state, action, q)[2])

    x = jnp.array([1.0, 10.0, 0.5])
    g = jax.jit(jax.grad(total_reward))(x)
    assert np.isfinite(g).all() and g[0] > 0  # faster GPUs: higher reward
    f = jax.jit(total_reward)
    for i, eps in enumerate((1e-2, 1.0, 1e-2)):
        e = jnp.zeros(3).at[i].set(eps)
        np.testing.assert_allclose(g[i], (f(x + e) - f(x - e)) / (2 * eps), rtol=3e-2, atol=1e-4)


def test_bad_config_params_and_actions_name_the_field(small):
    env, p, _, _ = small
    for kwargs, field in (
        ({"num_rsus": 1}, "num_rsus"),
        ({"obs_mode": "full"}, "obs_mode"),
        ({"reward": "ber"}, "reward"),
        ({"alpha_levels": (0.5, 1.5)}, "alpha_levels"),
        ({"num_rsu": 3}, "num_rsu.*valid fields"),
        ({"downlink_power": "x"}, "downlink_power"),
    ):
        with pytest.raises(ValueError, match=field):
            vmjax.make("TwinSplit-v0", **kwargs)
    for bad, field in (
        (p.replace(gpu_hz_nominal=-1.0), "gpu_hz_nominal"),
        (p.replace(alpha=1.5), "alpha"),
        (p.replace(texture_reuse=float("nan")), "texture_reuse"),
        (p.replace(task_bits_low=40e6), "task_bits_low"),
        (p.replace(rsu_xy_m=jnp.zeros((3, 2))), "rsu_xy_m"),
        (p.replace(backhaul_bps=jnp.zeros((4, 4))), "backhaul_bps"),
        (p.replace(trace_bank=Trace.create(jnp.zeros((3, 3, 2)))), "trace_bank"),
    ):
        with pytest.raises(ValueError, match=field):
            env.reset(jax.random.key(0), bad)
    _, state = jax.jit(env.reset)(jax.random.key(0), p)
    step = jax.jit(env.step)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        step(jax.random.key(0), state, jnp.zeros(2, jnp.int32), p)
    with pytest.raises(ValueError, match="integer"):
        step(jax.random.key(0), state, jnp.zeros(3), p)
    with pytest.raises(ValueError, match="keys"):
        step(jax.random.key(0), state, {"rsu": jnp.zeros(3, jnp.int32)}, p)
    # out-of-range indices are clipped inside jit, never NaN
    _, _, r, *_ = step(jax.random.key(0), state, jnp.array([-5, 99, 2], jnp.int32), p)
    assert np.isfinite(np.asarray(r)).all()
