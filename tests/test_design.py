"""vmjax.design (issue 24): the constraint reparameterisations, gradients of each design objective against
central finite differences, the black-box searches on a toy quadratic, the gradient planner, jit / vmap
determinism, bad input, and the docs' embedding example (docs/design.md).

Finite differences run in float32 (the envs are float32 throughout; `jax.enable_x64` does not reach inside
them), so each check is argued: objectives are means of O(1)-O(50) second latencies or z-scores, float32 rounds
them to ~1e-6 relative, so a central difference with step h in raw space is accurate to ~1e-6 |f| / h; with
h = 3e-3 and 1e-3 that is <= 1e-2 of the directional derivatives checked here (|d| >= 1e-3 |f| per raw unit).
A step that straddles a switching surface (a policy's argmin flips, a clip activates) shows up as two step
sizes that disagree: the check first asserts the two agree, then that the reverse-mode gradient matches them.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmjax
from baselines import avatar_premigration as avatar_heuristics
from baselines import cross_reality_privacy as privacy_heuristics
from baselines import twin_routing as routing_heuristics
from baselines import twin_split as split_heuristics
from vmjax import design

STEPS = (3e-3, 1e-3)


# ---------------------------------------------------------------- tiny problems
def _avatar(policy="least_loaded"):
    env = vmjax.make("AvatarPremigration-v1", num_vehicles=4, num_rsus=3, max_steps=3, num_background_vehicles=6)
    make = {
        "least_loaded": avatar_heuristics.make_least_loaded_policy,
        "greedy": lambda e: avatar_heuristics.make_greedy_policy(e, num_fractions=5),
    }[policy]
    return env, make(env)


def _routing():
    env = vmjax.make(
        "TwinRouting-v1",
        num_vehicles=2,
        num_rsus=4,
        num_uavs=1,
        uav_loop_rsus=2,
        max_steps=3,
        distance_model="planar",
        city_size_m=3000.0,
    )
    return env, routing_heuristics.make_greedy_policy(env, explore_prob=0.0)


def _split():
    env = vmjax.make("TwinSplit-v1", num_vehicles=4, max_steps=3, reward="qoe")
    return env, design.int_targets(split_heuristics.make_greedy_balanced(env))


def _gradient_check(problem, raws, key, direction, steps=STEPS):
    """One compiled call at every design of `raws` [K, d...]: the reverse-mode directional derivative, the value
    (unbatched) and the objective at raw and raw +- h d for both step sizes h (vmapped). Where the two step sizes
    agree (no switching surface within them; at least one of the K designs), the gradient must match."""
    direction = direction / jnp.linalg.norm(direction)
    offsets = jnp.stack([jnp.zeros_like(direction)] + [s * h * direction for h in steps for s in (1.0, -1.0)])

    @jax.jit
    def run(raws):
        def at(raw):
            value, grad = jax.value_and_grad(lambda r: design.objective(problem, r, key))(raw)
            values = jax.vmap(lambda r: design.objective(problem, r, key))(raw[None] + offsets)
            return value, jnp.vdot(grad, direction), values

        return jax.lax.map(at, raws)

    first, again = run(raws), run(raws)
    for a, b in zip(first, again):  # jit: same key, same bits
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    value, directional, values = (np.asarray(x, np.float64) for x in first)
    np.testing.assert_allclose(values[:, 0], value, rtol=1e-5)  # vmap over designs = one design at a time
    fd = np.stack([(values[:, 1 + 2 * i] - values[:, 2 + 2 * i]) / (2 * h) for i, h in enumerate(steps)], axis=1)
    assert np.all(np.isfinite(directional)) and np.all(np.abs(directional) > 0)
    smooth = np.abs(fd[:, 0] - fd[:, 1]) <= 1e-2 * np.abs(fd[:, 1]) + 1e-6
    assert smooth.any(), (fd, directional)
    np.testing.assert_allclose(directional[smooth], fd[smooth, 0], rtol=1e-2, atol=1e-6)
    return value


def test_gpu_split_gradient_matches_finite_differences():
    env, policy = _avatar()
    problem = design.avatar_gpu_split(env, policy, num_envs=4, num_steps=3)
    raws = jnp.array([[0.3, -0.2, 0.1], [0.0, 0.0, 0.0], [-0.5, 0.4, 0.2]])
    value = _gradient_check(problem, raws, jax.random.key(3), jnp.array([1.0, -2.0, 0.5]))
    assert np.all(value > 0)  # a latency in seconds


def test_uav_anchor_gradient_matches_finite_differences():
    env, policy = _routing()
    problem = design.twin_routing_uav_anchors(env, policy, num_envs=2, num_steps=3)
    direction = jax.random.normal(jax.random.key(0), problem.init_raw.shape)
    raws = jnp.stack([problem.init_raw, problem.init_raw + 0.3 * direction])
    # d f / d raw is ~1e-3 per raw unit here (a z-scored cost, metres through a logit): larger steps keep the
    # float32 rounding of f (~1e-7) below 1e-2 of the difference
    _gradient_check(problem, raws, jax.random.key(3), direction, steps=(3e-2, 1e-2))


def test_twin_split_alpha_gradient_matches_finite_differences():
    env, policy = _split()
    problem = design.twin_split_alpha(env, policy, num_envs=4, num_steps=3)
    _gradient_check(problem, jnp.array([[0.2], [-1.5]]), jax.random.key(3), jnp.array([1.0]))


# ---------------------------------------------------------------- constraints
def test_simplex_keeps_the_budget_and_box_keeps_the_bounds():
    raws = jnp.array([[0.0, 0.0, 0.0], [50.0, -50.0, 0.0], [-80.0, 3.0, 1e3], [1.0, 2.0, 3.0]])
    split = design.simplex(raws, 120e9)
    np.testing.assert_allclose(np.sum(np.asarray(split, np.float64), axis=-1), 120e9, rtol=1e-6)
    assert np.all(np.asarray(split) >= 0) and np.all(np.isfinite(split))
    values = jnp.array([10e9, 50e9, 60e9])
    np.testing.assert_allclose(design.simplex(design.simplex_raw(values, 120e9), 120e9), values, rtol=1e-5)
    low, high = jnp.array([0.0, 100.0]), jnp.array([8000.0, 200.0])
    x = design.box(jnp.array([[-1e3, 1e3], [0.0, 0.0], [5.0, -5.0]]), low, high)
    assert np.all(np.asarray(x) >= np.asarray(low)) and np.all(np.asarray(x) <= np.asarray(high))
    np.testing.assert_allclose(design.box(design.box_raw(jnp.array([10.0, 150.0]), low, high), low, high), [10, 150])
    # the problems' apply: every raw is a feasible design
    env, policy = _avatar()
    problem = design.avatar_gpu_split(env, policy, total_gpu_hz=60e9)
    params = problem.apply(jnp.array([4.0, -3.0, 0.0]), problem.params)
    np.testing.assert_allclose(float(jnp.sum(params.rsu_gpu_hz_low)), 60e9, rtol=1e-6)
    np.testing.assert_array_equal(params.rsu_gpu_hz_low, params.rsu_gpu_hz_high)
    env, policy = _routing()
    problem = design.twin_routing_uav_anchors(env, policy, margin_m=100.0)
    loops = problem.apply(problem.init_raw + 30.0, problem.params).uav_loops_m
    extent = np.asarray(env.default_params.map_extent_m)
    assert np.all(np.asarray(loops) >= 100.0) and np.all(np.asarray(loops) <= extent - 100.0)
    np.testing.assert_allclose(
        problem.apply(problem.init_raw, problem.params).uav_loops_m, env.default_params.uav_loops_m
    )


def test_bad_input_names_the_field():
    env, policy = _avatar()
    for total in (0.0, -1e9, float("nan")):
        with pytest.raises(ValueError, match="total_gpu_hz"):
            design.avatar_gpu_split(env, policy, total_gpu_hz=total)
    with pytest.raises(ValueError, match="unknown design problem 'rsu_height'"):
        design.make_problem("rsu_height", env, policy)
    with pytest.raises(ValueError, match="num_envs"):
        design.avatar_gpu_split(env, policy, num_envs=0)
    with pytest.raises(ValueError, match="num_steps=5 exceeds the env's max_steps=3"):
        design.objective(design.avatar_gpu_split(env, policy, num_steps=5), jnp.zeros(3), jax.random.key(0))
    with pytest.raises(ValueError, match="population"):
        design.SearchConfig(population=3)
    with pytest.raises(ValueError, match="learning_rate"):
        design.SearchConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="unknown search method"):
        design.make_search("cma", lambda r, k: 0.0, lambda r, k: 0.0, jnp.zeros(2), design.SearchConfig())
    with pytest.raises(ValueError, match="PlannerConfig.steps"):
        design.PlannerConfig(steps=0)
    split_env, split_policy = _split()
    with pytest.raises(ValueError, match="alpha bounds"):
        design.twin_split_alpha(split_env, split_policy, low=0.5, high=0.2)
    with pytest.raises(ValueError, match="margin_m"):
        design.twin_routing_uav_anchors(*_routing(), margin_m=5000.0)


# ---------------------------------------------------------------- black-box search on a toy quadratic
@pytest.mark.parametrize("method", design.METHODS)
def test_searches_improve_a_toy_quadratic(method):
    target = jnp.array([1.0, -2.0, 0.5, 3.0])

    def f(raw, key):  # a noisy quadratic (noise from the key, like a Monte-Carlo objective)
        return jnp.sum((raw - target) ** 2) + 0.01 * jax.random.normal(key)

    config = design.SearchConfig(iterations=60, population=8, learning_rate=0.2, sigma=0.3)
    step, state, best = design.make_search(method, f, f, jnp.zeros(4), config, random_scale=2.0)
    step = jax.jit(step)
    for i in range(config.iterations):
        state = step(state, jax.random.key(i))
    start, end = float(jnp.sum(target**2)), float(jnp.sum((best(state) - target) ** 2))
    assert end < 0.5 * start, (method, start, end)


# ---------------------------------------------------------------- planner
def test_planner_returns_valid_actions_and_beats_its_base():
    env, _ = _avatar()
    base = avatar_heuristics.make_greedy_policy(env, num_fractions=5)
    planner = design.make_planner_policy(env, base, design.PlannerConfig(steps=4, horizon=1))
    keys = jax.random.split(jax.random.key(7), 8)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, env.default_params)
    params = env.default_params

    @jax.jit
    def run(keys, states):
        base_action = jax.vmap(base, in_axes=(0, 0, None))(keys, states, params)
        plan_action = jax.vmap(planner, in_axes=(0, 0, None))(keys, states, params)
        step = lambda k, s, a: env.step_env(k, s, a, params)[2]
        return (
            base_action,
            plan_action,
            jax.vmap(step)(keys, states, base_action),
            jax.vmap(step)(keys, states, plan_action),
        )

    base_action, plan_action, base_reward, plan_reward = run(keys, states)
    np.testing.assert_array_equal(plan_action["target"], base_action["target"])  # targets from the base
    assert plan_action["target"].dtype == jnp.int32 and plan_action["fraction"].shape == (8, env.num_agents)
    fraction = np.asarray(plan_action["fraction"])
    assert np.all((fraction >= 0) & (fraction <= 1)) and np.isfinite(fraction).all()
    # horizon 1: the model is the slot itself (its tasks are in the state), so the plan is never worse and here
    # strictly better on average
    assert float(jnp.mean(plan_reward)) > float(jnp.mean(base_reward))


# ---------------------------------------------------------------- CrossRealityPrivacy-v1 radius planner
def _privacy_states(num_worlds=4, slots=2):
    """CrossRealityPrivacy-v1 (40 RSUs, 3 AVs) states after `slots` fixed-radius slots (the adversary has a
    dead-reckoned prediction), the fixed-radius rule's servers and angles there."""
    env = vmjax.make("CrossRealityPrivacy-v1", num_vehicles=3, num_rsus=40, max_steps=6)
    params = env.default_params
    fixed = privacy_heuristics.make_fixed_radius_stateful(env, 0.4)

    @jax.jit
    def prepare(key):
        k_reset, k_hist, *k_slots = jax.random.split(key, 2 + slots + 1)
        _, state = env.reset(k_reset, params)
        history = fixed.init(k_hist, params)
        for k in k_slots[:slots]:
            action, history, _ = fixed.act(k, history, state, params)
            state = env.step_env(k, state, action, params)[1]
        action, _, _ = fixed.act(k_slots[-1], history, state, params)
        return state, action

    states, actions = jax.vmap(prepare)(jax.random.split(jax.random.key(3), num_worlds))
    return env, params, states, actions


def test_radius_model_utility_gradient_matches_finite_differences():
    """d(sum of the AVs' utility (17))/d r over a 2-slot model (this slot's entropy and QoS loss, the next slot's
    dead-reckoned prediction) against central differences in float32: utilities are O(1), float32 rounds them to
    ~1e-6, so steps of 3e-3 and 1e-3 r_max give differences accurate to ~1e-3 of the O(1) derivatives."""
    env, params, states, actions = _privacy_states(num_worlds=2)
    later = lambda k, s, p: {"target": s.connected, "perturbation": jnp.zeros((env.num_agents, 2))}
    r_max = params.r_max_deg
    utility = lambda frac, state, target, theta: jnp.sum(
        privacy_heuristics.privacy_model_utility(
            env, later, 2, jax.random.key(5), state, params, target, frac * r_max, theta
        )
    )
    f, grad = jax.jit(utility), jax.jit(jax.grad(utility))
    direction = jnp.asarray([1.0, -0.5, 0.8])
    for world in range(2):
        state, action = jax.tree.map(lambda x: x[world], (states, actions))
        args = (state, action["target"], env.parse_action(action, params)[2])
        for point in (0.25, 0.6):
            frac = jnp.full(env.num_agents, point, jnp.float32) + 0.05 * jnp.arange(env.num_agents)
            derivative = float(jnp.dot(grad(frac, *args), direction))
            diffs = [float((f(frac + h * direction, *args) - f(frac - h * direction, *args)) / (2 * h)) for h in STEPS]
            np.testing.assert_allclose(diffs[0], diffs[1], rtol=2e-2, atol=2e-2)  # no switching surface between
            np.testing.assert_allclose(derivative, diffs[1], rtol=2e-2, atol=2e-2)


def test_radius_planner_keeps_servers_stays_in_range_and_beats_its_base():
    env, params, states, actions = _privacy_states()
    later = lambda k, s, p: {"target": s.connected, "perturbation": jnp.zeros((env.num_agents, 2))}
    config = privacy_heuristics.RadiusPlannerConfig(steps=5, learning_rate=0.3)

    @jax.jit
    def plan(key, state, action):
        _, radius, theta = env.parse_action(action, params)
        planner = privacy_heuristics.make_radius_planner(env, later, config)
        planned = planner(key, state, params, action["target"], radius, theta)
        model = lambda r, t: privacy_heuristics.privacy_model_utility(
            env, later, 1, key, state, params, action["target"], r, t
        )
        return planned, model(*planned), model(radius, theta)

    keys = jax.random.split(jax.random.key(9), 4)
    (radius, theta), planned_utility, base_utility = jax.vmap(plan)(keys, states, actions)
    r = np.asarray(radius) / float(params.r_max_deg)
    assert np.all((r >= 0) & (r <= 1)) and np.isfinite(r).all()
    np.testing.assert_array_equal(theta, jax.vmap(lambda a: env.parse_action(a, params)[2])(actions))  # angle held
    assert np.all(np.asarray(planned_utility) >= np.asarray(base_utility) - 1e-6)  # per AV, never worse on the model
    assert float(jnp.mean(planned_utility)) > float(jnp.mean(base_utility)) + 0.05
    # a grid of radii alone: the best of its points per AV, so at least the grid's r = 0.4 r_max point (the base)
    grid = privacy_heuristics.RadiusPlannerConfig(grid=6, steps=0)
    grid_planner = privacy_heuristics.make_radius_planner(env, later, grid)
    r_grid, _ = jax.jit(
        jax.vmap(lambda k, s, a: grid_planner(k, s, params, a["target"], *env.parse_action(a, params)[1:]))
    )(keys, states, actions)
    fractions = np.asarray(r_grid) / float(params.r_max_deg)
    np.testing.assert_allclose(fractions, np.round(fractions * 5) / 5, atol=1e-6)  # points of the grid
    assert grid.model_rollouts_per_decision == 6 and config.model_rollouts_per_decision == 17


def test_radius_planner_policy_is_deterministic_and_reports_its_utility():
    env = vmjax.make("CrossRealityPrivacy-v1", num_vehicles=2, num_rsus=30, max_steps=3)
    policy = privacy_heuristics.make_radius_planner_stateful(env, privacy_heuristics.RadiusPlannerConfig(steps=2))
    run = jax.jit(lambda k: privacy_heuristics.episode_metrics(env, policy, env.default_params, k, 2))
    a, b = run(jax.random.key(1)), run(jax.random.key(1))
    for name in privacy_heuristics.EVAL_METRICS:
        np.testing.assert_array_equal(a[name], b[name])
    assert np.isfinite(np.asarray(a["utility"])).all()


@pytest.mark.parametrize(
    "field, value", [("steps", -1), ("horizon", 0), ("grid", 1), ("learning_rate", 0.0), ("min_fraction", 0.5)]
)
def test_radius_planner_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=f"RadiusPlannerConfig.{field}"):
        privacy_heuristics.RadiusPlannerConfig(**{field: value})


# ---------------------------------------------------------------- the docs' example runs
def test_docs_embedding_example_runs():
    text = (Path(__file__).parent.parent / "docs" / "design.md").read_text()
    code = re.search(r"<!-- example -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 30
    scope: dict = {}
    exec(compile(code, "docs/design.md", "exec"), scope)
    assert np.isfinite(float(scope["value"])) and float(scope["value"]) > 0
    assert np.isfinite(float(scope["d_fraction"])) and np.all(np.isfinite(np.asarray(scope["d_gpu"])))
    assert np.all(np.asarray(scope["d_gpu"]) <= 0)  # more GPU never slows a task down
