"""Non-learning baselines for CrossRealityPrivacy-v0 (spec 000 §7).

* Geo-I [P §7.1, R]: planar-Laplace perturbation (eq. 1): theta ~ U[0, 2 pi), r ~ Gamma(2, 1 / eps_geo) clipped to
  r_max, eps_geo = 13.5 / r_max per degree (mean r ~ 0.15 r_max); agent server by the greedy rule below.
* No perturbation + greedy server: r = 0 (a trivial reference: zero QoS loss, zero entropy).
* Max perturbation + greedy server: r = r_max, theta ~ U[0, 2 pi) (a reference for the other end of the radius).

Greedy server [R §7.1]: among the `num_nearest` (5) servers nearest the AV's true position (RSUs and the
satellite's ground point), take the one with the best running-mean utility (17) of this AV; servers never tried
count as worst, so with no history the nearest wins (ties -> nearest); with probability `explore` (0.1) a uniform
pick among those candidates instead.

Model-based radius planners (issue 24, docs/design.md): `make_radius_planner` plans each AV's radius per slot on
the utility (17) of a model rollout (`privacy_model_utility`, the env's own step), by a grid of radii and / or Adam
steps; `make_radius_planner_stateful` puts it on the fixed-radius rule (`PLANNERS`: `vmjax evaluate --heuristics`).

`make_*_policy(env)` returns a stateless per-world `policy(key, env_state, env_params) -> action` (no history:
nearest + exploration); `make_*_stateful(env)` returns a `vmjax.core.rollout.StatefulPolicy` whose state is the
per-AV `ServerHistory`, updated with the utility that the env will give for the chosen action
(`env.outcome`, the same function `step_env` uses).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import struct

from vmjax import design
from vmjax.core.rollout import StatefulPolicy, rollout_stateful, stateless
from vmjax.envs import cross_reality_privacy as crp

GEO_I_EPSILON_TIMES_RMAX = 13.5  # eps_geo = 13.5 / r_max [R §7.1]


@struct.dataclass
class ServerHistory:
    """Per-AV running sums of the utility (17) obtained on each server: [M, N + 1]."""

    utility_sum: jax.Array
    count: jax.Array


def init_history(env: crp.CrossRealityPrivacy) -> ServerHistory:
    shape = (env.num_agents, env.num_servers)
    return ServerHistory(utility_sum=jnp.zeros(shape, jnp.float32), count=jnp.zeros(shape, jnp.float32))


def update_history(history: ServerHistory, server, utility) -> ServerHistory:
    """Add this slot's utility [M] at the chosen servers [M]."""
    onehot = jax.nn.one_hot(server, history.count.shape[-1])
    return ServerHistory(utility_sum=history.utility_sum + onehot * utility[:, None], count=history.count + onehot)


def planar_laplace_radius_cdf(r, epsilon):
    """P(R <= r) = 1 - (1 + eps r) exp(-eps r) for the radius of the planar Laplace (eq. 1; Gamma(2, 1/eps))."""
    return 1.0 - (1.0 + epsilon * r) * jnp.exp(-epsilon * r)


def sample_planar_laplace(key, shape, epsilon, r_max):
    """(r clipped to r_max, theta ~ U[0, 2 pi)) of eq. (1): r ~ Gamma(2, scale 1 / eps)."""
    k_r, k_t = jax.random.split(key)
    radius = jnp.minimum(jax.random.gamma(k_r, 2.0, shape) / epsilon, r_max)
    theta = jax.random.uniform(k_t, shape, minval=0.0, maxval=2.0 * math.pi)
    return radius, theta


def greedy_servers(
    key,
    env: crp.CrossRealityPrivacy,
    state,
    params,
    history: ServerHistory | None = None,
    explore: float = 0.1,
    num_nearest: int = 5,
):
    """The greedy agent server [M] (module docstring): best running mean among the nearest servers."""
    m = env.num_agents
    k = min(num_nearest, env.num_servers)
    true_deg = env.offsets_deg(state.trace.position_at(state.t), params)
    servers = crp.server_offsets_deg(params, env.config)
    dist = crp.geo_distance_m(true_deg[:, None, :], servers[None], params, env.config)  # [M, N + 1]
    candidates = jnp.argsort(dist, axis=-1, stable=True)[:, :k]  # nearest first
    if history is None:
        score = jnp.zeros((m, k))
    else:
        count = jnp.take_along_axis(history.count, candidates, axis=-1)
        mean = jnp.take_along_axis(history.utility_sum, candidates, axis=-1) / jnp.maximum(count, 1.0)
        score = jnp.where(count > 0, mean, -jnp.inf)
    best = jnp.argmax(score, axis=-1)  # first maximum = the nearest among ties
    k_explore, k_pick = jax.random.split(key)
    explore_now = jax.random.uniform(k_explore, (m,)) < explore
    pick = jnp.where(explore_now, jax.random.randint(k_pick, (m,), 0, k), best)
    return jnp.take_along_axis(candidates, pick[:, None], axis=-1)[:, 0].astype(jnp.int32)


def _action(env, params, server, radius, theta):
    raw = crp.raw_from_perturbation(radius, theta, params.r_max_deg, env.config.action_squash)
    return {"target": server, "perturbation": raw}


def _geo_i_action(env, key, state, params, history, epsilon_times_rmax, explore, num_nearest):
    k_lap, k_srv = jax.random.split(key)
    radius, theta = sample_planar_laplace(
        k_lap, (env.num_agents,), epsilon_times_rmax / params.r_max_deg, params.r_max_deg
    )
    return _action(env, params, greedy_servers(k_srv, env, state, params, history, explore, num_nearest), radius, theta)


def _still_action(env, key, state, params, history, explore, num_nearest):
    zero = jnp.zeros(env.num_agents)
    return _action(env, params, greedy_servers(key, env, state, params, history, explore, num_nearest), zero, zero)


def _fixed_radius_action(env, key, state, params, history, radius_fraction, explore, num_nearest):
    k_theta, k_srv = jax.random.split(key)
    radius = jnp.full((env.num_agents,), radius_fraction * params.r_max_deg)
    theta = jax.random.uniform(k_theta, (env.num_agents,), maxval=2.0 * math.pi)
    return _action(env, params, greedy_servers(k_srv, env, state, params, history, explore, num_nearest), radius, theta)


def _max_radius_action(env, key, state, params, history, explore, num_nearest):
    return _fixed_radius_action(env, key, state, params, history, 1.0, explore, num_nearest)


def make_geo_i_policy(
    env: crp.CrossRealityPrivacy,
    epsilon_times_rmax: float = GEO_I_EPSILON_TIMES_RMAX,
    explore: float = 0.1,
    num_nearest: int = 5,
):
    """Geo-I, stateless (no history): planar Laplace + nearest server with epsilon-greedy exploration."""

    def policy(key, state, params):
        return _geo_i_action(env, key, state, params, None, epsilon_times_rmax, explore, num_nearest)

    return policy


def make_no_perturbation_policy(env: crp.CrossRealityPrivacy, explore: float = 0.1, num_nearest: int = 5):
    """Reference: r = 0 (report the true location) + the greedy server (stateless: nearest + exploration)."""

    def policy(key, state, params):
        return _still_action(env, key, state, params, None, explore, num_nearest)

    return policy


def _stateful(env, choose) -> StatefulPolicy:
    def act(key, history, state, params):
        action = choose(key, state, params, history)
        out = env.outcome(state, action, params)
        return action, update_history(history, out["agent_server"], out["utility"]), {}

    return StatefulPolicy(init=lambda key, params: init_history(env), act=act)


def make_geo_i_stateful(
    env: crp.CrossRealityPrivacy,
    epsilon_times_rmax: float = GEO_I_EPSILON_TIMES_RMAX,
    explore: float = 0.1,
    num_nearest: int = 5,
) -> StatefulPolicy:
    """Geo-I with the historical greedy rule (a per-AV running mean of the utility per server)."""
    return _stateful(
        env,
        lambda key, state, params, history: _geo_i_action(
            env, key, state, params, history, epsilon_times_rmax, explore, num_nearest
        ),
    )


def make_max_perturbation_stateful(
    env: crp.CrossRealityPrivacy, explore: float = 0.1, num_nearest: int = 5
) -> StatefulPolicy:
    """Reference: r = r_max with a uniform angle every slot, and the historical greedy server rule. Entropy and
    QoS loss both rise with r; under the spec's adversary model (§2.5) and eq. (17)'s weights the entropy gain
    wins, so this fixed rule marks what the perturbation alone can reach."""
    return _stateful(
        env,
        lambda key, state, params, history: _max_radius_action(env, key, state, params, history, explore, num_nearest),
    )


BEST_FIXED_RADIUS_FRACTION_V1 = 0.4
"""r / r_max of the best fixed-radius rule on CrossRealityPrivacy-v1 (docs/results/cross_reality_privacy_v1/
calibration.json, attempt "v1", fixed_radius_peak): the rule a learner must beat on v1."""


def make_fixed_radius_stateful(
    env: crp.CrossRealityPrivacy, radius_fraction: float, explore: float = 0.1, num_nearest: int = 5
) -> StatefulPolicy:
    """Reference: r = radius_fraction r_max with a uniform angle every slot, and the historical greedy server rule
    (radius_fraction = 1: `make_max_perturbation_stateful`)."""
    return _stateful(
        env,
        lambda key, state, params, history: _fixed_radius_action(
            env, key, state, params, history, radius_fraction, explore, num_nearest
        ),
    )


# ---------------------------------------------------------------------- model-based radius planners (issue 24)


@dataclasses.dataclass(frozen=True)
class RadiusPlannerConfig:
    """`make_radius_planner`'s budget: first the best of `grid` radii evenly spaced over [0, r_max] (0: start from
    the base's radius), then `steps` Adam steps of size `learning_rate` on logit(r / r_max) (and on the angle
    theta when `optimise_angle`) through a model rollout of `horizon` slots (the base acts after the first); r
    stays in [`min_fraction`, 1 - `min_fraction`] r_max while it is optimised (a finite logit)."""

    steps: int = 10
    horizon: int = 1
    learning_rate: float = 0.3
    grid: int = 0
    min_fraction: float = 0.01
    optimise_angle: bool = False

    def __post_init__(self):
        for field, low in (("steps", 0), ("horizon", 1), ("grid", 0)):
            value = getattr(self, field)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"RadiusPlannerConfig.{field} must be an int >= {low}, got {value!r}")
        if self.grid == 1:
            raise ValueError("RadiusPlannerConfig.grid must be 0 (no grid) or >= 2 (radii 0 .. r_max), got 1")
        design.check_total("RadiusPlannerConfig", "learning_rate", self.learning_rate)
        if not 0.0 < self.min_fraction < 0.5:
            raise ValueError(f"RadiusPlannerConfig.min_fraction must be in (0, 0.5), got {self.min_fraction}")

    @property
    def model_rollouts_per_decision(self) -> int:
        """Model rollouts per decision: the grid's, ~3 per gradient step (forward and reverse), 2 to compare."""
        return self.grid + 3 * self.steps + (2 if self.steps else 0)


def privacy_model_utility(env, later_action, horizon: int, key, state, params, target, radius, theta):
    """Per-AV sum over `horizon` slots of the utility (17) of CrossRealityPrivacy when the AVs take (agent servers
    `target`, radius r deg, angle theta rad) now and `later_action` after (held), the env's own step as the model
    (later slots' task draws from `key`). [M]. Through r and theta the sum sees this slot's entropy (5) and QoS
    loss (16) and, for horizon > 1, the routine-mobility adversary's next dead-reckoned prediction, which the
    report moves (v1); latency (15) does not depend on the perturbation."""
    encode = lambda r, t: crp.raw_from_perturbation(r, t, params.r_max_deg, env.config.action_squash)
    action = {"target": target, "perturbation": encode(radius, theta)}
    total = jnp.zeros(env.num_agents, jnp.float32)
    for h in range(horizon):
        k_step, k_act = jax.random.split(jax.random.fold_in(key, h))
        if h:
            action = jax.lax.stop_gradient(later_action(k_act, state, params))
        if h == horizon - 1:
            out = env.outcome(state, action, params)
        else:
            _, state, _, _, _, out = env.step_env(k_step, state, action, params)
        total = total + out["utility"]
    return total


def make_radius_planner(env, later_action, config: RadiusPlannerConfig = RadiusPlannerConfig()):
    """plan(key, state, params, target, radius, theta) -> (radius, theta) [M] each for CrossRealityPrivacy: every
    AV's perturbation radius (and angle with `config.optimise_angle`) maximising `privacy_model_utility` from the
    current state, the agent servers held: the best of `config.grid` radii (if any), then `config.steps` Adam
    steps on logit(r / r_max) from there (or from the given base radius). The AVs' utilities are separable (each
    AV's entropy and QoS loss depend on its own report only), so per-coordinate Adam is one optimisation per AV,
    and each AV keeps the gradient's result only where the model rates it better than its start.

    Gradients: exact along the realised path; the lattice window's centre (a rounding) is held and the likelihood
    width's floor max(r, sigma_min) takes its active branch (docs/design.md)."""
    lo = config.min_fraction
    fractions = jnp.linspace(0.0, 1.0, max(config.grid, 2))

    def plan(key, state, params, target, radius, theta):
        r_max = params.r_max_deg
        utility = lambda r, t: privacy_model_utility(
            env, later_action, config.horizon, key, state, params, target, r, t
        )
        theta = jnp.asarray(theta, jnp.float32)
        if config.grid:
            radii = fractions[:, None] * r_max * jnp.ones_like(radius)  # [K, M]
            best = jnp.argmax(jax.vmap(lambda r: utility(r, theta))(radii), axis=0)  # [M]
            radius = jnp.take_along_axis(radii, best[None], axis=0)[0]
        if not config.steps:
            return radius, theta
        decode = lambda z: (r_max * jax.nn.sigmoid(z[0]), z[1] if config.optimise_angle else theta)
        z0 = (design.box_raw(jnp.clip(radius / r_max, lo, 1.0 - lo), 0.0, 1.0), theta)
        opt = optax.adam(config.learning_rate)

        def body(_, carry):
            z, opt_state = carry
            g = jax.grad(lambda z: -jnp.sum(utility(*decode(z))))(z)
            updates, opt_state = opt.update(g, opt_state)
            return optax.apply_updates(z, updates), opt_state

        z, _ = jax.lax.fori_loop(0, config.steps, body, (z0, opt.init(z0)))
        planned_r, planned_theta = decode(z)
        better = utility(planned_r, planned_theta) > utility(radius, theta)
        return jnp.where(better, planned_r, radius), jnp.where(better, planned_theta, theta)

    return plan


def make_radius_planner_stateful(
    env: crp.CrossRealityPrivacy,
    config: RadiusPlannerConfig = RadiusPlannerConfig(),
    radius_fraction: float = BEST_FIXED_RADIUS_FRACTION_V1,
    explore: float = 0.1,
    num_nearest: int = 5,
) -> StatefulPolicy:
    """The radius planner (`make_radius_planner`, issue 24) on the fixed-radius rule: its greedy servers and
    angle, each AV's radius (and angle) planned on the model's utility (17) from the current state, starting at
    radius_fraction r_max; in the model's later slots (horizon > 1) the fixed-radius rule acts."""

    def choose(key, state, params, history):
        k_base, k_plan = jax.random.split(key)
        base = _fixed_radius_action(env, k_base, state, params, history, radius_fraction, explore, num_nearest)
        later = lambda k, s, p: _fixed_radius_action(env, k, s, p, history, radius_fraction, explore, num_nearest)
        radius, theta = crp.perturbation_from_raw(base["perturbation"], params.r_max_deg, env.config.action_squash)
        plan = make_radius_planner(env, later, config)
        radius, theta = plan(k_plan, state, params, base["target"], radius, theta)
        return _action(env, params, base["target"], radius, theta)

    return _stateful(env, choose)


GRADIENT_RADIUS_PLANNER = RadiusPlannerConfig(steps=10, learning_rate=0.3)
"""The gradient radius planner of docs/design.md (10 Adam steps from 0.4 r_max; steps and rate from its screen)."""
RADIUS_PLANNER = RadiusPlannerConfig(grid=21, steps=5, learning_rate=0.03)
"""The best radius planner of docs/design.md: the best of 21 radii, then 5 gradient steps (-0.016 against the best
fixed radius's -0.514 on CrossRealityPrivacy-v1's held-out sets)."""

PLANNERS = {
    "radius_planner": lambda env: make_radius_planner_stateful(env, RADIUS_PLANNER),
    "gradient_radius_planner": lambda env: make_radius_planner_stateful(env, GRADIENT_RADIUS_PLANNER),
}
"""The model-based radius planners by name: make(env) -> StatefulPolicy (`vmjax evaluate --heuristics NAME`)."""


def random_servers(key, env: crp.CrossRealityPrivacy, state, params):
    """A uniform pick among all N + 1 servers for every AV (a bad server rule, for reference)."""
    return jax.random.randint(key, (env.num_agents,), 0, env.num_servers).astype(jnp.int32)


def connected_servers(key, env: crp.CrossRealityPrivacy, state, params):
    """The connected server k_m^t: no backhaul, a migration at every handover."""
    return state.connected


def satellite_servers(key, env: crp.CrossRealityPrivacy, state, params):
    """The LEO satellite S for every AV (its placement carries no position information, §2.5)."""
    return jnp.full((env.num_agents,), env.num_rsus, jnp.int32)


SERVER_RULES = {"random": random_servers, "connected": connected_servers, "satellite": satellite_servers}
"""Fixed server rules by name: rule(key, env, env_state, env_params) -> agent servers [M]."""


def make_geo_i_server_policy(
    env: crp.CrossRealityPrivacy, servers, epsilon_times_rmax: float = GEO_I_EPSILON_TIMES_RMAX
):
    """Geo-I's perturbation with another server rule (`SERVER_RULES`), stateless: the same perturbation draws as
    Geo-I for the same key, so server rules compare under the same perturbation."""

    def policy(key, state, params):
        k_lap, k_srv = jax.random.split(key)
        radius, theta = sample_planar_laplace(
            k_lap, (env.num_agents,), epsilon_times_rmax / params.r_max_deg, params.r_max_deg
        )
        return _action(env, params, servers(k_srv, env, state, params), radius, theta)

    return policy


def make_no_perturbation_stateful(
    env: crp.CrossRealityPrivacy, explore: float = 0.1, num_nearest: int = 5
) -> StatefulPolicy:
    """No perturbation with the historical greedy rule."""
    return _stateful(
        env, lambda key, state, params, history: _still_action(env, key, state, params, history, explore, num_nearest)
    )


POLICIES = {
    "geo_i": make_geo_i_stateful,
    "no_perturbation": make_no_perturbation_stateful,
    "max_perturbation": make_max_perturbation_stateful,
}
"""The heuristics by name: make(env) -> StatefulPolicy (the historical greedy server rule, §7.1)."""

EVAL_METRICS = ("utility", "reward_llm", "entropy_bits", "latency_s", "qos_loss", "migrated", "perturbation_m")
"""Per-episode means over slots and AVs (env info keys); `utility` is eq. (17) = the manual reward (20), the
common test score of every method [R §9-B9]."""


def episode_metrics(env: crp.CrossRealityPrivacy, policy, params, key, num_episodes: int) -> dict:
    """One episode (max_steps slots) in each of `num_episodes` worlds drawn from `key` (the same worlds for
    every policy): {metric: [num_episodes]} for EVAL_METRICS. `policy`: a StatefulPolicy or a plain per-world
    policy(key, env_state, env_params)."""
    policy = policy if isinstance(policy, StatefulPolicy) else stateless(policy)
    summary = lambda reward, info: {name: jnp.mean(info[name].astype(jnp.float32), axis=-1) for name in EVAL_METRICS}
    steps = rollout_stateful(env, policy, key, params, num_episodes, env.config.max_steps, summary)
    return {name: jnp.mean(value, axis=0) for name, value in steps.items()}


def make_policy_evaluator(env: crp.CrossRealityPrivacy, policies, params, num_episodes: int):
    """(key, index) -> {metric: float32 [num_episodes]} for `policies[index]` (the `vmjax evaluate` contract);
    one jitted function per policy, all on the same worlds for the same key."""
    env.validate_params(params)
    if not policies:
        raise ValueError("make_policy_evaluator: policies must be a non-empty sequence")
    compiled = [jax.jit(lambda key, p=p: episode_metrics(env, p, params, key, num_episodes)) for p in policies]
    return lambda key, index: compiled[int(index)](key)
