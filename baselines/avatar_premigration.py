"""Heuristic policies for AvatarPremigration-v0 (spec 003 §8, plus nearest- and least-loaded-RSU).

Each `make_*(env)` returns a pure `policy(key, state, params) -> {"target", "fraction"}` for one world;
`vmjax.core.rollout` vmaps it over worlds inside the jitted rollout. The policies read the start-of-slot
state through `env.slot_context`, the same quantities the env's step uses, and respect `env.rsu_mask`;
`_action` encodes the chosen RSU in the env's `rsu_order`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from baselines import oracles
from vmjax import design, net
from vmjax.envs.avatar_premigration import AvatarPremigration, RsuState, SlotContext, next_rsu_ahead, slot_latency


def _action(env, state, params, rsu, fraction):
    """The env action that sends `fraction` to RSU index `rsu` (encoded in the env's `rsu_order`)."""
    target = env.encode_target(state, params, rsu.astype(jnp.int32))
    return {"target": target, "fraction": jnp.asarray(fraction, jnp.float32)}


def make_random_policy(env: AvatarPremigration):
    """Random [C]: target uniform over the selectable RSUs, alpha ~ U[0, 1]."""
    space = env.action_space()

    def policy(key, state, params):
        k_target, k_fraction = jax.random.split(key)
        target = space["target"].sample(k_target, env.action_mask(state, params))
        return {"target": target.astype(jnp.int32), "fraction": jax.random.uniform(k_fraction, (env.num_agents,))}

    return policy


def make_no_premigration_policy(env: AvatarPremigration):
    """NPM [P]: alpha = 0, everything is processed at the serving RSU."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        return _action(env, state, params, ctx.serving, jnp.zeros(env.num_agents))

    return policy


def make_full_premigration_policy(env: AvatarPremigration):
    """FPM [P]: alpha = 1 to the next RSU in the direction of travel [C]."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        ahead = next_rsu_ahead(env.vehicle_positions(state), ctx.velocity_mps, params.rsu_xy_m, ctx.serving)
        return _action(env, state, params, ahead, jnp.ones(env.num_agents))

    return policy


def make_nearest_rsu_policy(env: AvatarPremigration, fraction: float = 0.5):
    """Pre-migrate `fraction` of the task to the nearest selectable RSU other than the serving one."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        others = env.rsu_mask(state, params) & (jnp.arange(env.num_rsus) != ctx.serving[:, None])
        target = jnp.argmin(jnp.where(others, ctx.distance_m, jnp.inf), axis=-1)
        target = jnp.where(jnp.any(others, axis=-1), target, ctx.serving)
        return _action(env, state, params, target, jnp.full(env.num_agents, fraction))

    return policy


def make_least_loaded_policy(env: AvatarPremigration, fraction: float = 0.5):
    """Pre-migrate `fraction` to the selectable RSU with the shortest queue wait L_m / C_m (no pre-migration
    when that is the serving RSU)."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        wait_s = ctx.queue_cycles / ctx.rsu.gpu_hz
        mask = env.rsu_mask(state, params)
        target = jnp.argmin(jnp.where(mask, wait_s[None, :], jnp.inf), axis=-1)
        return _action(env, state, params, target, jnp.full(env.num_agents, fraction))

    return policy


def _candidates(env, num_fractions):
    """Every (target RSU, alpha) pair of the greedy grid: targets [M F], fractions [M F], target-major."""
    fractions = jnp.linspace(0.0, 1.0, num_fractions)
    return jnp.repeat(jnp.arange(env.num_rsus), num_fractions), jnp.tile(fractions, env.num_rsus)


def _grid_argmin(env, latency, allowed, num_fractions):
    """The action minimising `latency(target, fraction) -> [N]` per vehicle over the grid, masked by
    `allowed` [N, M]; ties go to the lowest index (target first, then alpha)."""
    targets, fractions = _candidates(env, num_fractions)
    grid = jax.vmap(latency)(targets, fractions)  # [M F, N]
    grid = jnp.where(allowed.T[targets], grid, jnp.inf)
    best = jnp.argmin(grid, axis=0)
    return targets[best], fractions[best]


def make_greedy_policy(env: AvatarPremigration, num_fractions: int = 21):
    """Greedy, the oracle reference [P/C]: each vehicle minimises its own current latency T_v(t) over every
    selectable target and alpha in {0, 0.05, ..., 1}, seeing the whole start-of-slot state (its task sizes,
    RSU capacities, bandwidths, stay time, L(t)). It ignores the future and assumes the other vehicles do not
    pre-migrate (with contention it counts their local work; herding onto one RSU is its weakness).
    Ties go to the lowest index (target first, then alpha)."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        n = env.num_agents
        stay = (ctx.serving, jnp.zeros(n))

        def latency(target, fraction):
            own = (jnp.full(n, target, jnp.int32), jnp.full(n, fraction))
            return env.slot_latency(ctx, *own, params, others=stay)["total_latency_s"]

        target, fraction = _grid_argmin(env, latency, env.rsu_mask(state, params), num_fractions)
        return _action(env, state, params, target, fraction)

    return policy


def prior_context(env: AvatarPremigration, state, params) -> SlotContext:
    """The slot as an agent can know it from its eq. (19) observation: its position (hence the distances to
    the fixed RSUs and its serving RSU) and L(t) exactly; prior means (the §7.1 ranges' midpoints) for task
    sizes, bandwidths, GPU capacities and the cloud; the stay time averaged over driving either way along the
    road at the mobility's mean speed; no fading."""
    true = env.slot_context(state, params)
    n, m = env.num_agents, env.num_rsus
    mid = lambda low, high: 0.5 * (low + high)
    position = env.vehicle_positions(state)
    speed = params.mobility.mean_speed_core_mps
    stay = [
        net.disk_exit_time_s(
            position,
            jnp.broadcast_to(jnp.array([sign * speed, 0.0]), (n, 2)),
            params.rsu_xy_m[true.serving],
            params.coverage_radius_m,
            params.stay_min_speed_mps,
            params.stay_max_s,
        )
        for sign in (1.0, -1.0)
    ]
    gpu = mid(params.rsu_gpu_hz_low, params.rsu_gpu_hz_high)
    rsu = RsuState(
        bandwidth_hz=jnp.full(m, mid(params.rsu_bandwidth_hz_low, params.rsu_bandwidth_hz_high)),
        migration_bps=jnp.full((m, m), mid(params.rsu_migration_bps_low, params.rsu_migration_bps_high)),
        gpu_hz=jnp.full(m, gpu),
        max_workload_cycles=jnp.full(m, params.max_workload_s * gpu),
        cloud_gpu_hz=jnp.asarray(mid(params.cloud_gpu_hz_low, params.cloud_gpu_hz_high)),
    )
    return true.replace(
        velocity_mps=jnp.zeros((n, 2)),
        stay_time_s=0.5 * (stay[0] + stay[1]),
        # the vehicles sharing the uplink are not observed: the expected count, 1 + (N - 1) / M, when shared
        uplink_share=jnp.full(n, 1.0 + (n - 1) / m if env.config.share_uplink_bandwidth else 1.0),
        task_input_bits=jnp.full(n, mid(params.task_input_bits_low, params.task_input_bits_high)),
        task_bits=jnp.full(n, mid(params.task_bits_low, params.task_bits_high)),
        fading=None,
        rsu=rsu,
    )


def expected_others_served(env: AvatarPremigration, state, params) -> jax.Array:
    """How many of the other N - 1 vehicles an agent expects each RSU to serve this slot [M]: spread in
    proportion to the observed forecast's eq. (18) coverage counts (coverage_oracle / lstm forecasts), else
    evenly over the M RSUs (persistence and none carry no count)."""
    others = env.num_agents - 1.0
    if env.config.workload_forecast in ("coverage_oracle", "lstm"):
        counts = env.forecast(state, params) / params.workload_per_vehicle_cycles
        return others * counts / jnp.maximum(jnp.sum(counts), 1e-6)
    return jnp.full(env.num_rsus, others / env.num_rsus)


def make_greedy_observed_policy(env: AvatarPremigration, num_fractions: int = 21):
    """Greedy restricted to what an agent observes (eq. 19) [C]: the same one-step minimiser as `greedy`, on
    `prior_context` (prior means for everything unobserved). With contention, the other vehicles are expected
    where `expected_others_served` puts them, with mean-size tasks and no pre-migration: the local part waits
    behind k_m min(E[D], (1 - alpha) E[D]) f (processor sharing), the pre-migrated part behind k_m' E[D] f."""

    def policy(key, state, params):
        ctx = prior_context(env, state, params)
        n = env.num_agents
        mean_cycles = ctx.task_bits * params.cycles_per_bit
        others = expected_others_served(env, state, params)
        c = env.config

        def latency(target, fraction):
            target, fraction = jnp.full(n, target, jnp.int32), jnp.full(n, fraction)
            wait = None
            if c.contention == "processor_sharing":
                local = others[ctx.serving] * (1.0 - jnp.where(target == ctx.serving, 0.0, fraction)) * mean_cycles
                wait = (local, others[target] * mean_cycles)
            return slot_latency(ctx, target, fraction, params, c.cloud_truncate, c.downlink, wait)["total_latency_s"]

        target, fraction = _grid_argmin(env, latency, env.rsu_mask(state, params), num_fractions)
        return _action(env, state, params, target, fraction)

    return policy


def make_oracle_policy(env: AvatarPremigration, objective: str = "own", rounds: int = 3, num_fractions: int = 21):
    """Per-slot oracle best response [C]: the whole state known, and the other vehicles' choices. Starting from
    no pre-migration, the vehicles take turns (`rounds` passes, in index order) choosing the grid action that
    minimises, given the others' current actions, their own latency (objective="own": iterated best response)
    or the slot's total latency (objective="team": coordinate descent, never worse than where it starts).
    Myopic: the next slots' queues do not count."""
    oracles.check_objective(objective)
    targets, fractions = _candidates(env, num_fractions)
    n = env.num_agents

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        allowed = env.rsu_mask(state, params)[:, targets]  # [N, M F]
        latency = lambda action: env.slot_latency(ctx, action[0], action[1], params)["total_latency_s"]
        start = (ctx.serving, jnp.zeros(n))
        target, fraction = oracles.best_response_rounds(
            latency, (targets, fractions), start, n, rounds, objective, allowed
        )
        return _action(env, state, params, target, fraction)

    return policy


def make_lighter_neighbour_policy(env: AvatarPremigration, fraction: float = 0.6):
    """An observation-only rule: pre-migrate `fraction` to the second-nearest RSU when its backlog L_m(t)
    is smaller than the serving RSU's, else no pre-migration. It uses only what an agent observes (its
    position, hence the RSU layout, and L(t)): a reference for what the learners could reach."""

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        second = jnp.argsort(ctx.distance_m, axis=-1)[:, 1]
        lighter = state.queue_cycles[second] < state.queue_cycles[ctx.serving]
        allowed = jnp.take_along_axis(env.rsu_mask(state, params), second[:, None], axis=1)[:, 0]
        target = jnp.where(lighter & allowed, second, ctx.serving)
        return _action(env, state, params, target, jnp.where(target == ctx.serving, 0.0, fraction))

    return policy


POLICIES: dict[str, Callable[[AvatarPremigration], Callable]] = {
    "greedy_oracle": make_greedy_policy,
    "greedy_observed": make_greedy_observed_policy,
    "random": make_random_policy,
    "full_premigration": make_full_premigration_policy,
    "no_premigration": make_no_premigration_policy,
    "nearest_rsu": make_nearest_rsu_policy,
    "least_loaded": make_least_loaded_policy,
    "lighter_neighbour": make_lighter_neighbour_policy,
}
"""Every heuristic for AvatarPremigration-v0 and -v1 by name."""

ORACLES: dict[str, Callable[[AvatarPremigration], Callable]] = {
    "oracle_best_response": make_oracle_policy,
    "oracle_team": lambda env: make_oracle_policy(env, objective="team"),
}
"""Per-slot oracles (whole state and the others' choices known): the gap a policy could win (`calibrate`)."""


GRADIENT_PLANNER = design.PlannerConfig(steps=5, horizon=2, learning_rate=0.5)
"""The gradient planner of docs/design.md: 5 Adam steps on the fractions through a 2-slot model rollout."""

PLANNERS: dict[str, Callable[[AvatarPremigration], Callable]] = {
    "gradient_planner": lambda env: design.make_planner_policy(env, make_greedy_policy(env), GRADIENT_PLANNER),
}
"""The model-based planners by name (`vmjax evaluate --heuristics gradient_planner`): the greedy oracle's targets,
the fractions by gradient steps (`design.make_planner_policy`)."""
