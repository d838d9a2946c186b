"""Gradient-based network design and a gradient planner on vmjax's differentiable envs (issue 24).

A *design problem* is a fixed policy (a heuristic: its discrete choices are held) rolled out in many worlds
(`jax.vmap`) over a few slots (`lax.scan`, `vmjax.core.rollout`), with some continuous `EnvParams` fields made
functions of an unconstrained vector `raw`:

    objective(raw, key) = mean over worlds and slots of cost(params(raw))       (one Monte-Carlo estimate)

`raw` lives in R^d; the constraints are reparameterisations, so every optimiser (gradient, ES, random search)
searches R^d and every point it reaches is feasible:

    `simplex`   x = total softmax(raw)                  a fixed total split across servers (sum x = total, x > 0)
    `box`       x = low + (high - low) sigmoid(raw)     box bounds (low < x < high)

Three problems (`avatar_gpu_split`, `twin_routing_uav_anchors`, `twin_split_alpha`) and three optimisers at
equal env steps (`gradient_descent`, `evolution_strategy`, `random_search`), plus `make_planner_policy`, a
policy for AvatarPremigration that picks each vehicle's fraction alpha by gradient steps through a short model
rollout. The policies are arguments (e.g. `baselines.avatar_premigration.make_greedy_policy(env)`): this module
sits on top of the envs and imports no heuristic.

What the gradient is where the rollout is not smooth (docs/design.md, "Gradients on non-smooth paths"): the
derivative of the cost along the realised path, every discrete outcome held (the policy's argmin over servers,
the serving RSU = nearest RSU, masks, `premigrates`, overflow flags): zero through a discrete choice, no term
for the jump where a choice flips; through a clip (`min`, `max`, the queue clip at L^max) the derivative of the
active branch (a subgradient at a tie). These are the exact derivatives of a piecewise-smooth function away from
its switching surfaces, which is what `tests/test_design.py` checks against central finite differences.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vmjax.core.env import Environment
from vmjax.core.rollout import Policy

# ====================================================================== constraint reparameterisations


def check_total(owner: str, field: str, total) -> float:
    """A budget must be a positive finite number (ValueError naming `owner.field` otherwise)."""
    value = float(total)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{owner}.{field} must be a positive finite budget, got {total!r}")
    return value


def check_bounds(owner: str, field: str, low, high) -> tuple[np.ndarray, np.ndarray]:
    """Box bounds must be finite with low < high elementwise (ValueError naming `owner.field` otherwise)."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or np.any(lo >= hi):
        raise ValueError(f"{owner}.{field} bounds must be finite with low < high, got low={low!r}, high={high!r}")
    return lo, hi


def simplex(raw: jax.Array, total) -> jax.Array:
    """x = total softmax(raw) along the last axis: x > 0 and sum(x) = total for every raw (a budget split)."""
    return total * jax.nn.softmax(raw, axis=-1)


def simplex_raw(values, total) -> jax.Array:
    """A raw vector that `simplex` maps to `values` (positive, summing to `total`): centred log-shares."""
    log_share = jnp.log(jnp.asarray(values, jnp.float32) / total)
    return log_share - jnp.mean(log_share, axis=-1, keepdims=True)


def box(raw: jax.Array, low, high) -> jax.Array:
    """x = low + (high - low) sigmoid(raw): low < x < high for every finite raw."""
    return low + (high - low) * jax.nn.sigmoid(raw)


def box_raw(values, low, high, margin: float = 1e-4) -> jax.Array:
    """A raw vector that `box` maps to `values` (clipped `margin` inside the box): the logit of the position."""
    u = (jnp.asarray(values, jnp.float32) - low) / (high - low)
    u = jnp.clip(u, margin, 1.0 - margin)
    return jnp.log(u) - jnp.log1p(-u)


# ====================================================================== design problems


@dataclasses.dataclass(frozen=True)
class DesignProblem:
    """A fixed policy in `env`, continuous `EnvParams` fields given by `apply(raw, params)`.

    `cost(reward [E, N], info) -> [E]` is the per-world, per-slot cost (lower is better); the objective averages
    it over `num_envs` worlds and `num_steps` slots. `init_raw` is the reference design (the env's default or an
    even split), `describe(raw)` the design in SI units for reports."""

    name: str
    env: Environment
    params: Any
    policy: Policy
    apply: Callable[[jax.Array, Any], Any]
    cost: Callable[[jax.Array, dict], jax.Array]
    init_raw: jax.Array
    describe: Callable[[jax.Array], dict]
    num_envs: int
    num_steps: int

    @property
    def env_steps_per_evaluation(self) -> int:
        """World-slots one objective evaluation rolls out (the equal-cost budget's unit)."""
        return self.num_envs * self.num_steps


def episode_rollout(env, policy: Policy, key, params, num_envs: int, num_steps: int, summarize) -> Any:
    """`num_envs` worlds reset from `key` (`jax.vmap`), then `num_steps` slots of `policy` (`lax.scan` over
    `env.step_env`, no auto-reset: `num_steps` must not exceed the episode). Returns `summarize(reward [E, N],
    info)` stacked over slots. The env's keys do not depend on the policy or on `params`' values, so two designs
    rolled out from one key meet the same worlds (common random numbers). Without the auto-reset branch of
    `vmjax.core.rollout` the compiled program is about half as large; the values are those of `rollout`'s first
    episode."""
    max_steps = getattr(env.config, "max_steps", None)
    if max_steps is not None and num_steps > max_steps:
        raise ValueError(f"num_steps={num_steps} exceeds the env's max_steps={max_steps} (one episode, no reset)")
    k_reset, k_env, k_policy = jax.random.split(key, 3)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), params)

    def body(state, keys):
        k_step, k_act = keys
        actions = jax.vmap(policy, in_axes=(0, 0, None))(jax.random.split(k_act, num_envs), state, params)
        step = lambda k, s, a: env.step_env(k, s, a, params)
        _, state, reward, _, _, info = jax.vmap(step)(jax.random.split(k_step, num_envs), state, actions)
        return state, summarize(reward, info)

    keys = (jax.random.split(k_env, num_steps), jax.random.split(k_policy, num_steps))
    return jax.lax.scan(body, state, keys)[1]


def objective(problem: DesignProblem, raw: jax.Array, key: jax.Array, num_envs: int | None = None) -> jax.Array:
    """Mean cost of `problem.policy` over `num_envs` (default `problem.num_envs`) worlds reset from `key` and
    `problem.num_steps` slots (`episode_rollout`), with the design `raw`: a scalar, differentiable in `raw`."""
    params = problem.apply(raw, problem.params)
    num_envs = problem.num_envs if num_envs is None else num_envs
    summary = episode_rollout(problem.env, problem.policy, key, params, num_envs, problem.num_steps, problem.cost)
    return jnp.mean(summary)


def _check_sizes(owner: str, num_envs: int, num_steps: int) -> None:
    for field, value in (("num_envs", num_envs), ("num_steps", num_steps)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{field} must be an int >= 1, got {value!r}")


def mean_latency_cost(reward: jax.Array, info: dict) -> jax.Array:
    """-mean_v r_v per world: the mean latency T_v (s) where r_v = -T_v (spec 003 eq. 21)."""
    return -jnp.mean(reward, axis=-1)


def avatar_gpu_split(
    env,
    policy: Policy,
    total_gpu_hz: float | None = None,
    num_envs: int = 16,
    num_steps: int = 10,
    params=None,
) -> DesignProblem:
    """AvatarPremigration: split a total GPU capacity sum_m C_m = `total_gpu_hz` across the M RSUs.

    C = simplex(raw, total) sets C_m for every episode (rsu_gpu_hz_low = rsu_gpu_hz_high = C_m, so the §7.1 draw
    returns C_m; L^max_m = max_workload_s C_m follows). The default total is M times the midpoint of the §7.1
    range (M x 20 GHz); `init_raw` is the even split. The cost is the mean latency, eqs. (1)-(9) and (21); C_m
    enters eqs. (4)-(5) (T = (L + w) / C), the cloud overrun of eq. (6), and the queue of §2.8 (drain C_m Delta t,
    clip at L^max_m). Note: with C_m an array the observation's L scale (`mean_max_workload_cycles`) is per RSU;
    heuristics read the state, not the observation."""
    owner = "avatar_gpu_split"
    _check_sizes(owner, num_envs, num_steps)
    params = env.default_params if params is None else params
    m = env.num_rsus
    if total_gpu_hz is None:
        total_gpu_hz = m * 0.5 * (float(params.rsu_gpu_hz_low) + float(params.rsu_gpu_hz_high))
    total = check_total(owner, "total_gpu_hz", total_gpu_hz)

    def apply(raw, p):
        gpu = simplex(raw, total)
        return p.replace(rsu_gpu_hz_low=gpu, rsu_gpu_hz_high=gpu)

    def describe(raw):
        return {"rsu_gpu_hz": np.asarray(simplex(raw, total)).tolist(), "total_gpu_hz": total}

    return DesignProblem(
        f"{env.name}: GPU split", env, params, policy, apply, mean_latency_cost, jnp.zeros(m), describe,
        num_envs, num_steps,
    )  # fmt: skip


def twin_routing_uav_anchors(
    env, policy: Policy, num_envs: int = 8, num_steps: int = 10, params=None, margin_m: float = 0.0
) -> DesignProblem:
    """TwinRouting: the UAVs' patrol anchor points (`EnvParams.uav_loops_m` [U, K, 2]) anywhere on the map.

    Each waypoint is `box(raw, margin, extent - margin)` per coordinate; `init_raw` is the default loops (RSU
    positions, §7.2 [REC]). The cost is the env's own, -r = w_T z_T(T^sum) + w_s z_S(S'_a) + w_d xi (eq. 22),
    averaged over the vehicles. The anchors move the UAVs (`mobility.uav_positions_m`: piecewise-linear
    interpolation along the loop at the random phase), hence the vehicle-UAV distances of eqs. (1')-(2) and the
    rates of eqs. (4)-(5): the latency terms carry the gradient; the failure flag xi, the mask and the nearest-RSU
    flow share of a UAV are discrete (zero gradient)."""
    owner = "twin_routing_uav_anchors"
    _check_sizes(owner, num_envs, num_steps)
    params = env.default_params if params is None else params
    if env.num_uavs < 1:
        raise ValueError(f"{owner}: the env has num_uavs=0, nothing to place")
    extent = np.asarray(params.map_extent_m, np.float64)
    low, high = check_bounds(owner, "margin_m", margin_m, extent - margin_m)
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)

    def apply(raw, p):
        return p.replace(uav_loops_m=box(raw, low, high))

    def describe(raw):
        return {"uav_loops_m": np.asarray(box(raw, low, high)).tolist()}

    def cost(reward, info):
        return -jnp.mean(reward, axis=-1)

    return DesignProblem(
        f"{env.name}: UAV anchors", env, params, policy, apply, cost, box_raw(params.uav_loops_m, low, high),
        describe, num_envs, num_steps,
    )  # fmt: skip


def twin_split_alpha(
    env, policy: Policy, low: float = 0.02, high: float = 0.98, num_envs: int = 16, num_steps: int = 10, params=None
) -> DesignProblem:
    """TwinSplit: the pre-migrated fraction alpha (`EnvParams.alpha`) of every vehicle whose action is an RSU.

    The agents' action is the RSU only (spec 004 §5); alpha is a protocol constant the network fixes (0.5 [R]).
    alpha = box(raw, low, high). The cost is -QoE (eq. 15) = lambda_1 eps + lambda_2 T^total: a larger alpha
    shortens max(local, migration + remote) (eq. 10) until the migrated part dominates, and raises the contention
    BER eps = 1 - exp(-tau sum D^m chi) (eqs. 12-14), so the optimum is interior and depends on the load. `policy`
    must return int RSU actions (the env applies `params.alpha`); the env must have no `alpha_levels`."""
    owner = "twin_split_alpha"
    _check_sizes(owner, num_envs, num_steps)
    if getattr(env.config, "alpha_levels", ()):
        raise ValueError(f"{owner}: the env has alpha_levels={env.config.alpha_levels}; alpha is then the agents'")
    params = env.default_params if params is None else params
    lo, hi = (float(x) for x in check_bounds(owner, "alpha", low, high))
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{owner}.alpha bounds must lie in [0, 1], got low={low}, high={high}")

    def apply(raw, p):
        return p.replace(alpha=box(raw[0], lo, hi))

    def describe(raw):
        return {"alpha": float(box(raw[0], lo, hi))}

    def cost(reward, info):
        return -jnp.mean(info["qoe"], axis=-1)

    init = box_raw(jnp.asarray([params.alpha]), lo, hi)
    return DesignProblem(f"{env.name}: alpha", env, params, policy, apply, cost, init, describe, num_envs, num_steps)


def int_targets(policy: Policy) -> Policy:
    """A TwinSplit heuristic returning {"target", "fraction"} as a policy returning its int targets (so the env
    applies `params.alpha`, the designed fraction)."""

    def wrapped(key, state, params):
        action = policy(key, state, params)
        return action["target"] if isinstance(action, dict) else action

    return wrapped


PROBLEMS: dict[str, Callable[..., DesignProblem]] = {
    "avatar_gpu_split": avatar_gpu_split,
    "twin_routing_uav_anchors": twin_routing_uav_anchors,
    "twin_split_alpha": twin_split_alpha,
}
"""The design problems by name, each (env, policy, **options) -> DesignProblem."""


def make_problem(name: str, env, policy: Policy, **options) -> DesignProblem:
    """`PROBLEMS[name](env, policy, **options)`; ValueError naming the unknown problem."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown design problem {name!r}; known: {sorted(PROBLEMS)}")
    return PROBLEMS[name](env, policy, **options)


# ====================================================================== optimisers at equal env steps


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Budget and step sizes. Every method spends `iterations` x `evals_per_iteration` x (worlds x slots) env
    steps: the gradient method one evaluation of `problem.num_envs` worlds per iteration, ES `population`
    members of num_envs / population worlds each, random search `population` candidates likewise."""

    iterations: int = 20
    population: int = 8  # ES members (antithetic pairs: population / 2) and random-search candidates per iteration
    learning_rate: float = 0.1  # Adam on raw, gradient and ES
    sigma: float = 0.3  # ES perturbation scale in raw space
    eval_every: int = 5  # held-out evaluation every this many iterations (not counted in the budget)

    def __post_init__(self):
        for field in ("iterations", "population", "eval_every"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SearchConfig.{field} must be an int >= 1, got {value!r}")
        if self.population % 2:
            raise ValueError(f"SearchConfig.population must be even (antithetic pairs), got {self.population}")
        for field in ("learning_rate", "sigma"):
            check_total("SearchConfig", field, getattr(self, field))


def _member_problem(problem: DesignProblem, population: int) -> DesignProblem:
    if problem.num_envs % population:
        raise ValueError(
            f"problem.num_envs={problem.num_envs} must be divisible by SearchConfig.population={population}"
        )
    return dataclasses.replace(problem, num_envs=problem.num_envs // population)


def centered_ranks(values: jax.Array) -> jax.Array:
    """Fitness shaping of OpenAI-ES: ranks mapped to [-0.5, 0.5] (robust to the objective's scale)."""
    ranks = jnp.argsort(jnp.argsort(values)).astype(jnp.float32)
    return ranks / (values.shape[0] - 1) - 0.5


def es_gradient(fitness_fn, raw, key, population: int, sigma: float) -> jax.Array:
    """OpenAI-ES estimate of d E[f(raw + sigma eps)] / d raw with `population` / 2 antithetic pairs and centred
    ranks; `fitness_fn(raws [P, d...]) -> [P]` (lower is better)."""
    half = jax.random.normal(key, (population // 2, *raw.shape))
    eps = jnp.concatenate([half, -half])
    weights = centered_ranks(fitness_fn(raw[None] + sigma * eps))
    return jnp.tensordot(weights, eps, axes=1) / (population * sigma)


def make_search(method: str, f_full, f_member, init_raw, config: SearchConfig, random_scale: float = 2.0):
    """One optimiser as (step(state, key) -> state, state0, best(state) -> raw), jittable.

    `f_full(raw, key)` is one objective estimate on the full batch of worlds of an iteration, `f_member(raw, key)`
    one on 1 / population of them (same key -> same worlds), so every method spends the same env steps per
    iteration:
      "gradient": Adam on raw with d f_full / d raw (reverse mode through the vmapped, scanned rollout), fresh
                  worlds every iteration (a stochastic gradient);
      "es":       OpenAI-ES, `population` members (antithetic pairs, centred ranks) each on f_member with the same
                  worlds (common random numbers), Adam on the estimate;
      "random":   `population` candidates init + N(0, random_scale^2) per iteration on f_member; the best seen so
                  far by its own noisy estimate is the answer (the reference design is the first incumbent).
    """
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; known: {sorted(METHODS)}")
    init_raw = jnp.asarray(init_raw, jnp.float32)
    if method == "random":

        def step(state, k):
            best_raw, best_value, first = state
            k_cand, k_world = jax.random.split(k)
            noise = jax.random.normal(k_cand, (config.population, *init_raw.shape))
            cand = init_raw[None] + random_scale * noise
            cand = jnp.where(first, cand.at[0].set(init_raw), cand)
            values = jax.vmap(lambda r: f_member(r, k_world))(cand)
            i = jnp.argmin(values)
            better = values[i] < best_value
            return jnp.where(better, cand[i], best_raw), jnp.where(better, values[i], best_value), jnp.array(False)

        return step, (init_raw, jnp.float32(jnp.inf), jnp.array(True)), lambda s: s[0]

    opt = optax.adam(config.learning_rate)

    def step(state, k):
        raw, opt_state = state
        if method == "gradient":
            g = jax.grad(f_full)(raw, k)
        else:
            k_eps, k_world = jax.random.split(k)
            fitness = jax.vmap(lambda r: f_member(r, k_world))
            g = es_gradient(fitness, raw, k_eps, config.population, config.sigma)
        updates, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(raw, updates), opt_state

    return step, (init_raw, opt.init(init_raw)), lambda s: s[0]


def optimise(
    problem: DesignProblem, method: str, config: SearchConfig, keys, held_out_key, held_out_envs: int = 64
) -> list[dict]:
    """Run `make_search(method)` on `problem` for `config.iterations` iterations from `problem.init_raw`, once per
    key of `keys` (the seeds; one compilation serves them all).

    Every `eval_every` iterations the current answer is scored on `held_out_envs` worlds reset from
    `held_out_key` (other keys than the optimisation's; not counted in the budget). Returns one dict per seed:
    {"method", "curve": [{iteration, env_steps, wall_s, held_out}], "first_iteration_s" (compilation included;
    excluded from wall_s), "raw", "design"}."""
    member = _member_problem(problem, config.population)
    f_full = lambda raw, k: objective(problem, raw, k)
    f_member = lambda raw, k: objective(member, raw, k)
    step, state0, best = make_search(method, f_full, f_member, problem.init_raw, config)
    step = jax.jit(step)
    held_out = jax.jit(lambda raw: objective(problem, raw, held_out_key, held_out_envs))
    per_iteration = problem.env_steps_per_evaluation
    reference = float(held_out(best(state0)))
    results = []
    for key in keys:
        state, wall, first_s = state0, 0.0, None
        curve = [{"iteration": 0, "env_steps": 0, "wall_s": 0.0, "held_out": reference}]
        for i in range(1, config.iterations + 1):
            start = time.perf_counter()
            state = jax.block_until_ready(step(state, jax.random.fold_in(key, i)))
            elapsed = time.perf_counter() - start
            if first_s is None:
                first_s = elapsed
            else:
                wall += elapsed
            if i % config.eval_every == 0 or i == config.iterations:
                point = {"iteration": i, "env_steps": i * per_iteration, "wall_s": wall}
                curve.append({**point, "held_out": float(held_out(best(state)))})
        raw = best(state)
        results.append({"method": method, "curve": curve, "first_iteration_s": first_s,
                        "raw": np.asarray(raw).tolist(), "design": problem.describe(raw)})  # fmt: skip
    return results


METHODS = ("gradient", "es", "random")
"""The three optimisers of `make_search` / `optimise`."""


# ====================================================================== gradient planner (AvatarPremigration)


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    """`make_planner_policy`'s budget: `steps` Adam steps of size `learning_rate` on logit(alpha) through a model
    rollout of `horizon` slots (the base policy acts after the first); alpha below `min_fraction` snaps to 0."""

    steps: int = 5
    horizon: int = 2
    learning_rate: float = 0.5
    min_fraction: float = 0.02

    def __post_init__(self):
        for field in ("steps", "horizon"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PlannerConfig.{field} must be an int >= 1, got {value!r}")
        check_total("PlannerConfig", "learning_rate", self.learning_rate)
        if not 0.0 < self.min_fraction < 0.5:
            raise ValueError(f"PlannerConfig.min_fraction must be in (0, 0.5), got {self.min_fraction}")


def model_cost(env, base: Policy, horizon: int, key, state, params, target, fraction) -> jax.Array:
    """Sum over `horizon` slots of the vehicles' mean latency (s) when they take (target, fraction) now and the
    base policy after, the env's own step as the model (its task draws from `key`, not the env's future keys)."""
    _, next_state, reward, *_ = env.step_env(key, state, {"target": target, "fraction": fraction}, params)
    total = -jnp.mean(reward)
    for h in range(1, horizon):
        k_act, k_step = jax.random.split(jax.random.fold_in(key, h))
        action = jax.lax.stop_gradient(base(k_act, next_state, params))  # held: the base's later choices
        _, next_state, reward, *_ = env.step_env(k_step, next_state, action, params)
        total = total - jnp.mean(reward)
    return total


def make_planner_policy(env, base: Policy, config: PlannerConfig = PlannerConfig()) -> Policy:
    """A policy(key, state, params) -> {"target", "fraction"} for AvatarPremigration: the targets of `base`; each
    vehicle's alpha by `config.steps` Adam steps on logit(alpha), all vehicles jointly, minimising `model_cost`
    from the current state (eqs. (1)-(9) and (21) with the v1 contention terms when on, the §2.8 queue for the
    later slots), started from the base's alpha. The plan replaces the base action only where the model rates
    it better (so on the model it never does worse). Vehicles that stay (target = serving RSU) keep alpha = 0."""
    lo = config.min_fraction

    def policy(key, state, params):
        k_base, k_model = jax.random.split(key)
        action = base(k_base, state, params)
        target, base_fraction = action["target"], jnp.asarray(action["fraction"], jnp.float32)
        serving = env.slot_context(state, params).serving
        moves = env.decode_target(state, params, target) != serving
        cost = lambda frac: model_cost(env, base, config.horizon, k_model, state, params, target, frac)
        logit = box_raw(jnp.clip(base_fraction, lo, 1.0 - lo), 0.0, 1.0)
        fraction_of = lambda u: jnp.where(moves, jax.nn.sigmoid(u), 0.0)
        opt = optax.adam(config.learning_rate)

        def body(_, carry):
            u, opt_state = carry
            g = jax.grad(lambda u: cost(fraction_of(u)))(u)
            updates, opt_state = opt.update(g, opt_state)
            return optax.apply_updates(u, updates), opt_state

        u, _ = jax.lax.fori_loop(0, config.steps, body, (logit, opt.init(logit)))
        planned = fraction_of(u)
        planned = jnp.where(planned < lo, 0.0, planned)
        better = cost(planned) < cost(base_fraction)
        return {"target": target, "fraction": jnp.where(better, planned, base_fraction)}

    return policy
