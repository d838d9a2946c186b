"""Heuristic baselines of TwinSplit-v0 (spec 004 §8) and their evaluation (§7.1-7.3).

Each `make_*(env)` returns a pure per-world `policy(key, env_state, env_params) -> {"target": int32 [V],
"fraction": float32 [V]}` (the dict action of `TwinSplit.parse_action`); wrap it with `vmjax.core.stateless`
for the evaluator, which takes `StatefulPolicy`s so a learned MSRL policy (switching buffers, §6.3-6.4) runs
through the same code:

    full_migration      §8.4  target = nearest RSU other than the serving one, alpha = 1 (D^L = 0, T^p_e = 0;
                              outside (16e), allowed for this heuristic; the env's fraction range is [0, 1])
    no_premigration     §8.4  variant: target = serving RSU (no pre-migration, everything at the serving RSU)
    random_migration    §8.5  target uniform among the min(3, E - 1) nearest non-serving RSUs, alpha ~ U(0, 1)
                              per slot and vehicle
    greedy_least_loaded §7.2  (calibration reference) target = RSU with the most available workload
                              1 - (u_e L^max + sum_v c_{v,e}(t-1) + n_bg,e c_bg) / L^max (the observation's
                              L_E, eq. 21), ties to the lower index, alpha = 0.5; the serving RSU means no
                              pre-migration

`make_policy_evaluator` gives per-episode metrics; `gpu_capacity_sweep` runs the §7.1 40-80 GHz sweep of C_nom
as one vmapped, once-compiled evaluation.

    python -m baselines.twin_split --episodes 100 --seeds 3      # §7.2 calibration check at C_nom = 60 GHz
    python -m baselines.twin_split --bank real                   # ... on a build_trace_banks bank (§7.3)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from baselines import oracles
from vmjax import net
from vmjax.core.rollout import StatefulPolicy, stateless
from vmjax.core.wrappers import VecEnv
from vmjax.envs.twin_split import TwinSplit, requested_cycles, slot_outcome
from vmjax.mobility.banks import build_trace_banks


def _ranked_rsus(env: TwinSplit, state, params):
    """(serving RSU [V], non-serving RSUs by distance [V, E - 1]) in slot t (§2.1: serving = nearest)."""
    ctx = env.slot_context(state, params)
    distance = jnp.where(jax.nn.one_hot(ctx.serving, env.num_rsus, dtype=bool), jnp.inf, ctx.distance_m)
    return ctx.serving, jnp.argsort(distance, axis=-1, stable=True)[:, : env.num_rsus - 1].astype(jnp.int32)


def _action(target, fraction):
    return {
        "target": target.astype(jnp.int32),
        "fraction": jnp.broadcast_to(fraction, target.shape).astype(jnp.float32),
    }


def make_full_migration(env: TwinSplit):
    """Full Migration (§8.4): the nearest RSU other than the serving one, the whole task (alpha = 1)."""

    def policy(key, state, params):
        _, others = _ranked_rsus(env, state, params)
        return _action(others[:, 0], 1.0)

    return policy


def make_no_premigration(env: TwinSplit):
    """Full Migration, `no_premigration` reading (§8.4): target = serving RSU, so D^m = 0 (fraction 0)."""

    def policy(key, state, params):
        serving, _ = _ranked_rsus(env, state, params)
        return _action(serving, 0.0)

    return policy


def make_random_migration(env: TwinSplit, num_nearest: int = 3):
    """Random Migration (§8.5): uniform among the min(num_nearest, E - 1) nearest non-serving RSUs,
    alpha ~ U(0, 1) per slot and vehicle."""
    if num_nearest < 1:
        raise ValueError(f"make_random_migration: num_nearest must be >= 1, got {num_nearest}")
    k = min(num_nearest, env.num_rsus - 1)

    def policy(key, state, params):
        k_pick, k_alpha = jax.random.split(key)
        _, others = _ranked_rsus(env, state, params)
        pick = jax.random.randint(k_pick, (env.num_agents,), 0, k)
        fraction = jax.random.uniform(k_alpha, (env.num_agents,))
        return _action(jnp.take_along_axis(others, pick[:, None], axis=1)[:, 0], fraction)

    return policy


def available_workload(env: TwinSplit, state, params):
    """Available workload share of every RSU [E] as the agents observe it (eq. 21, `TwinSplit.available_workload`)."""
    return env.available_workload(state, params)


def make_greedy_least_loaded(env: TwinSplit, fraction: float = 0.5):
    """Greedy least-loaded (§7.2 calibration reference): every vehicle pre-migrates `fraction` to the RSU
    with the most available workload (no pre-migration when that is its serving RSU)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"make_greedy_least_loaded: fraction must be in [0, 1], got {fraction}")

    def policy(key, state, params):
        best = jnp.argmax(available_workload(env, state, params))
        return _action(jnp.full((env.num_agents,), best), fraction)

    return policy


def make_greedy_balanced(env: TwinSplit, fraction: float = 0.5):
    """Greedy least-loaded without herding (§7.2 calibration reference, [C]): vehicles choose one after the
    other; each estimates the processing time of eqs. (6), (9), (10) (with the observed load of slot t-1, eq. 21,
    plus what the vehicles before it chose in this slot, the RSUs' C_e and its own D^task f_v, textures ignored)
    for staying and for pre-migrating `fraction` to every other RSU, and takes the fastest (ties: lowest index)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"make_greedy_balanced: fraction must be in [0, 1], got {fraction}")

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        base_cycles = (1.0 - available_workload(env, state, params)) * params.max_workload_cycles  # [E]
        others = ~jnp.eye(env.num_rsus, dtype=bool)

        def choose(added, vehicle):
            serving, cycles = ctx.serving[vehicle], ctx.task_bits[vehicle] * ctx.cycles_per_bit[vehicle]
            load = base_cycles + added
            stay_s = (load[serving] + cycles) / ctx.gpu_hz[serving]
            split_s = jnp.maximum(
                (load[serving] + (1.0 - fraction) * cycles) / ctx.gpu_hz[serving],
                (load + fraction * cycles) / ctx.gpu_hz,
            )  # [E], migration time ignored
            time_s = jnp.where(others[serving], split_s, stay_s)
            target = jnp.argmin(time_s)
            moved = jnp.where(target == serving, 0.0, fraction * cycles)
            added = added.at[serving].add(cycles - moved).at[target].add(moved)
            return added, target

        _, target = jax.lax.scan(choose, jnp.zeros(env.num_rsus), jnp.arange(env.num_agents))
        return _action(target, jnp.where(target == ctx.serving, 0.0, fraction))

    return policy


LOAD_INFORMATION = ("requested", "previous", "none")


def make_greedy_informed(env: TwinSplit, load_information: str = "requested"):
    """Sequential greedy with texture re-use [C], for the value of information of the RSU loads: vehicles choose
    one after the other (index order); each estimates its processing time, eqs. (4), (6), (8)-(10), with its own
    task, f_v, textures (I_v, phi_v), the RSUs' C_e and the migration time, for staying and for pre-migrating the
    env's alpha to every other RSU, and takes the fastest (ties: lowest index). The load ahead of it at RSU e is
    the background (u_e(t) L^max and the generated vehicles) plus what the earlier vehicles chose in this slot plus
    the later vehicles' work as if they stay, estimated from `load_information`: "requested" slot t's requests
    (`requested_cycles`, what TwinSplit-v1's eq. (21) shows); "previous" persistence, the agents' load of slot t-1
    (what v0's eq. (21) shows); "none" no load at all (not even the background or the earlier vehicles' choices).
    Each vehicle takes its own stay work out of the estimate in turn. Uplink and downlink are left out."""
    if load_information not in LOAD_INFORMATION:
        raise ValueError(f"load_information must be one of {LOAD_INFORMATION}, got {load_information!r}")
    e = env.num_rsus

    def policy(key, state, params):
        ctx = env.slot_context(state, params)
        f, task = ctx.cycles_per_bit, ctx.task_bits
        alpha = params.alpha
        stay_cycles = f * net.reuse_discounted_bits(task, ctx.prev_local_bits, ctx.same_serving, params.texture_reuse)
        background = ctx.util * params.max_workload_cycles + ctx.generated_cycles
        if load_information == "requested":
            stay_load = requested_cycles(ctx, params)
        elif load_information == "previous":
            stay_load = state.prev_agent_cycles
        else:
            background, stay_load = jnp.zeros(e), jnp.zeros(e)
        targets = jnp.arange(e)

        def choose(carry, vehicle):
            added, pending = carry
            serving = ctx.serving[vehicle]
            # the later vehicles' work as if they stay: the estimate less this vehicle's own
            pending = jnp.maximum(pending - jax.nn.one_hot(serving, e) * stay_cycles[vehicle], 0.0)
            load = background + added + pending
            migrates = targets != serving
            premigrated = jnp.where(migrates, alpha * task[vehicle], 0.0)  # [E] candidates
            local = task[vehicle] - premigrated
            stable = (targets == ctx.prev_target[vehicle]) & ctx.has_previous
            xi_local = net.reuse_discounted_bits(
                local, ctx.prev_local_bits[vehicle], ctx.same_serving[vehicle], params.texture_reuse
            )
            xi_remote = net.reuse_discounted_bits(
                premigrated, ctx.prev_premigrated_bits[vehicle], stable, params.texture_reuse
            )
            local_s = net.compute_latency_s(load[serving], f[vehicle] * xi_local, ctx.gpu_hz[serving])
            migration_s = net.transfer_latency_s(premigrated, params.backhaul_bps[serving])
            remote_s = net.compute_latency_s(load, f[vehicle] * xi_remote, ctx.gpu_hz)
            time_s = net.split_processing_latency_s(local_s, migration_s, jnp.where(migrates, remote_s, 0.0))
            target = jnp.argmin(time_s)
            chosen = jax.nn.one_hot(serving, e) * f[vehicle] * xi_local[target] + jax.nn.one_hot(target, e) * jnp.where(
                migrates[target], f[vehicle] * xi_remote[target], 0.0
            )
            added = added + (chosen if load_information != "none" else 0.0)
            return (added, pending), target

        _, target = jax.lax.scan(choose, (jnp.zeros(e), stay_load), jnp.arange(env.num_agents))
        return _action(target, jnp.where(target == ctx.serving, 0.0, alpha))

    return policy


ORACLE_METRICS = {"latency": "total_latency_s", "qoe": "qoe"}


def make_oracle_policy(env: TwinSplit, objective: str = "own", metric: str = "latency", rounds: int = 3):
    """Per-slot oracle [C]: the whole slot known (positions, task sizes, f_v, C_e, the background load and the
    other vehicles' choices). Starting from no pre-migration, the vehicles take turns (`rounds` passes, in index
    order) choosing the action of the agents' own action space (the RSU, at the env's alpha or alpha levels) that
    minimises their own cost given the others' current actions (objective="own": iterated best response) or the
    slot's total cost (objective="team": coordinate descent, never worse than no pre-migration). The cost is
    T^total (metric="latency", eq. 11) or -QoE (metric="qoe", eq. 15). Myopic: texture re-use in the next slot
    (mu, eqs. 4 and 8) does not count."""
    if metric not in ORACLE_METRICS:
        raise ValueError(f"metric must be one of {sorted(ORACLE_METRICS)}, got {metric!r}")
    oracles.check_objective(objective)
    sign = 1.0 if metric == "latency" else -1.0

    def policy(key, state, params):
        ctx = env.slot_context(state, params)

        def cost(action):
            target, alpha = env.parse_action(action, params)
            return sign * slot_outcome(ctx, target, alpha, params, env.config.downlink_power)[ORACLE_METRICS[metric]]

        start = ctx.serving * env.num_levels  # the serving RSU: no pre-migration at any level
        candidates = jnp.arange(env.num_actions, dtype=jnp.int32)
        action = oracles.best_response_rounds(cost, candidates, start, env.num_agents, rounds, objective)
        return _action(*env.parse_action(action, params))

    return policy


POLICIES: dict[str, Callable[[TwinSplit], Callable]] = {
    "full_migration": make_full_migration,
    "no_premigration": make_no_premigration,
    "random_migration": make_random_migration,
    "greedy_least_loaded": make_greedy_least_loaded,
    "greedy_balanced": make_greedy_balanced,
}
"""Every heuristic of TwinSplit-v0 by name (per-world `policy(key, state, params) -> dict action`)."""

ORACLES: dict[str, Callable[[TwinSplit], Callable]] = {
    "oracle_latency": make_oracle_policy,
    "oracle_qoe": lambda env: make_oracle_policy(env, metric="qoe"),
    "oracle_team_latency": lambda env: make_oracle_policy(env, objective="team"),
}
"""Per-slot oracles (the whole slot and the others' choices known): the gap a policy could win."""

INFORMATION: dict[str, Callable[[TwinSplit], Callable]] = {
    f"greedy_{source}_load": (lambda source: lambda env: make_greedy_informed(env, source))(source)
    for source in LOAD_INFORMATION
}
"""The value of information of the RSU loads: one greedy rule, three load estimates (`make_greedy_informed`)."""


def heuristic_policies(env: TwinSplit) -> dict[str, StatefulPolicy]:
    """All `POLICIES` wrapped with `stateless`, ready for the evaluator."""
    return {name: stateless(make(env)) for name, make in POLICIES.items()}


# ---------------------------------------------------------------------- evaluation
EXTRAS = ("use_server", "params_used")
"""Per-agent extras of a StatefulPolicy that the evaluator averages; a policy without one reports NaN."""

STEP_METRICS = {
    "latency_s": "total_latency_s",  # T^total, eq. (11)
    "qoe": "qoe",  # eq. (15)
    "ber": "ber",  # epsilon, eq. (12): the "error rate"
    "migration_s": "migration_s",  # T^m, eq. (3), 0 for vehicles that do not pre-migrate
    "migration_share": "migrates",  # share of (vehicle, slot) with D^m > 0
}
"""Metrics averaged over vehicles and slots: name -> info key of `TwinSplit.step_env`."""


def _normalise(env: TwinSplit, policies: Sequence[StatefulPolicy]):
    """Branches for `lax.switch` with one output structure: the carry is the tuple of every policy's state
    (branch i updates entry i), actions become the dict action, extras hold exactly EXTRAS (NaN if absent)."""

    def branch(i, policy):
        def act(key, states, env_state, params):
            action, new_state, extras = policy.act(key, states[i], env_state, params)
            target, alpha = env.parse_action(action, params)
            unknown = set(extras) - set(EXTRAS)
            if unknown:
                raise ValueError(f"policy {i} returned extras {sorted(unknown)}; the evaluator knows {list(EXTRAS)}")
            nan = jnp.full((env.num_agents,), jnp.nan, jnp.float32)
            out = {
                k: jnp.asarray(extras[k], jnp.float32).reshape(env.num_agents) if k in extras else nan for k in EXTRAS
            }
            return _action(target, alpha), states[:i] + (new_state,) + states[i + 1 :], out

        return act

    return [branch(i, p) for i, p in enumerate(policies)]


def rollout_raw(env: TwinSplit, policies: Sequence[StatefulPolicy], params, key, index, num_episodes: int):
    """One episode (max_steps slots) in each of `num_episodes` worlds under `policies[index]`; the per-step
    info [T, N, V] (per-slot scalars [T, N]) plus "reward" and the EXTRAS.

    Keys as in `vmjax.core.rollout` (reset, env, policy from `key`; policy init keys from fold_in(key, 1)),
    so the worlds do not depend on the policy and a `stateless` policy sees the same keys as in `rollout`."""
    vec = VecEnv(env, num_episodes)
    branches = _normalise(env, policies)
    k_reset, k_env, k_policy = jax.random.split(key, 3)
    init_keys = jax.random.split(jax.random.fold_in(key, 1), num_episodes)
    _, env_state = vec.reset(k_reset, params)
    policy_state = tuple(jax.vmap(p.init, in_axes=(0, None))(init_keys, params) for p in policies)

    def act(k, states, s, p):
        return jax.lax.switch(index, branches, k, states, s, p)

    def body(carry, keys):
        env_state, policy_state = carry
        k_step, k_act = keys
        action, policy_state, extras = jax.vmap(act, in_axes=(0, 0, 0, None))(
            jax.random.split(k_act, num_episodes), policy_state, env_state, params
        )
        _, env_state, reward, _, _, info = vec.step(k_step, env_state, action, params)
        info = {k: v for k, v in info.items() if k != "final_observation"}
        return (env_state, policy_state), dict(info, reward=reward, **extras)

    steps = env.config.max_steps
    keys = (jax.random.split(k_env, steps), jax.random.split(k_policy, steps))
    return jax.lax.scan(body, (env_state, policy_state), keys)[1]


def evaluate_episodes(env, policies, params, key, index, num_episodes):
    """Per-episode metrics {name: [num_episodes]} of `policies[index]` (traceable: params may be traced)."""
    raw = rollout_raw(env, policies, params, key, index, num_episodes)
    mean = lambda x: jnp.mean(x.astype(jnp.float32), axis=(0, 2))
    out = {name: mean(raw[k]) for name, k in STEP_METRICS.items()}
    out["reward"] = mean(raw["reward"])
    out["workload_violations"] = jnp.mean(raw["workload_violations"].astype(jnp.float32), axis=0)  # per slot
    for k in EXTRAS:
        out[k] = mean(raw[k])
    return out


def make_policy_evaluator(env: TwinSplit, policies: Sequence[StatefulPolicy], params, num_episodes: int):
    """One jitted `(key, index) -> {metric: float32 [num_episodes]}` for `policies[index]`.

    The policies sit behind one `lax.switch` (compiled once for all of them) and every policy meets the same
    `num_episodes` worlds (positions, tasks, capacities, background load) for the same key. One episode of
    max_steps slots per world. Metrics, means over vehicles and slots: `latency_s` T^total (11), `qoe` (15),
    `ber` epsilon (12), `reward` (22 or 15), `migration_s` T^m (3) (0 when not pre-migrating),
    `migration_share` (D^m > 0); `workload_violations` (16b,c), RSUs over L^max per slot; `use_server` and
    `params_used` from the policy's extras, NaN when the policy does not report them (heuristics). Plain
    `policy(key, state, params)` functions are wrapped with `stateless`.
    """
    policies = [p if isinstance(p, StatefulPolicy) else stateless(p) if callable(p) else p for p in policies]
    if not policies or not all(isinstance(p, StatefulPolicy) for p in policies):
        raise ValueError(
            "make_policy_evaluator: policies must be a non-empty sequence of StatefulPolicy or plain "
            "policy(key, state, params) functions (wrapped with vmjax.core.rollout.stateless)"
        )
    env.validate_params(params)
    return jax.jit(lambda key, index: evaluate_episodes(env, policies, params, key, index, num_episodes))


def gpu_capacity_sweep(
    env: TwinSplit,
    policies: Sequence[StatefulPolicy] | Mapping[str, StatefulPolicy],
    params,
    capacities_hz: Sequence[float],
    key,
    num_episodes: int,
) -> dict[str, dict[str, np.ndarray]]:
    """The §7.1 sweep of the nominal RSU GPU capacity C_nom (e.g. 40, 50, ..., 80 GHz; C_e = C_nom U[gpu_scale_low,
    gpu_scale_high] per RSU and episode, §7.2; set both to 1 in `params` for the homogeneous case, §10-A35).

    One jitted function vmaps the evaluation of `make_policy_evaluator` over `gpu_hz_nominal`, compiled once for
    every capacity and policy; every (policy, capacity) meets the worlds of `key`. Returns {policy name (or
    index): {metric: [num_capacities, num_episodes]}}, rows in the order of `capacities_hz`.
    """
    capacities = np.asarray(capacities_hz, np.float32)
    if capacities.ndim != 1 or len(capacities) == 0:
        raise ValueError(
            f"gpu_capacity_sweep: capacities_hz must be a sequence of one or more values, got {capacities_hz}"
        )
    for c in capacities:  # the vmapped params are traced, so check them here
        env.validate_params(params.replace(gpu_hz_nominal=float(c)))
    if not isinstance(policies, Mapping):
        policies = dict(enumerate(policies))
    fns = list(policies.values())
    one = lambda k, i, c: evaluate_episodes(env, fns, params.replace(gpu_hz_nominal=c), k, i, num_episodes)
    run = jax.jit(jax.vmap(one, in_axes=(None, None, 0)))
    return {name: jax.device_get(run(key, i, jnp.asarray(capacities))) for i, name in enumerate(policies)}


def calibration_check(
    num_episodes: int = 100,
    seeds: Sequence[int] = (0, 1, 2),
    gpu_hz_nominal: float = 60e9,
    env: TwinSplit | None = None,
    params=None,
) -> dict:
    """§7.2 calibration note: mean T^total of the heuristics at C_nom (default params, synthetic fallback mobility
    unless `params` has a trace bank), `num_episodes` per seed. Returns {policy: {metric: (mean, std over
    seeds)}} plus "random_over_greedy" (ratio of mean latencies; the note asks >= 1.15-1.2)."""
    env = TwinSplit() if env is None else env
    params = (env.default_params if params is None else params).replace(gpu_hz_nominal=gpu_hz_nominal)
    policies = heuristic_policies(env)
    evaluate = make_policy_evaluator(env, list(policies.values()), params, num_episodes)
    out = {}
    for i, name in enumerate(policies):
        per_seed = [jax.device_get(evaluate(jax.random.key(s), i)) for s in seeds]
        out[name] = {
            m: (float(np.mean([np.mean(r[m]) for r in per_seed])), float(np.std([np.mean(r[m]) for r in per_seed])))
            for m in per_seed[0]
        }
    out["random_over_greedy"] = out["random_migration"]["latency_s"][0] / out["greedy_least_loaded"]["latency_s"][0]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="TwinSplit-v0 heuristics: spec 004 §7.2 calibration check")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--gpu-ghz", type=float, default=60.0)
    parser.add_argument(
        "--bank",
        default="none",
        choices=("none", "real", "generated"),
        help="trajectories: synthetic fallback, or a build_trace_banks bank (§7.3 without / with generated vehicles)",
    )
    parser.add_argument("--bank-seed", type=int, default=0)
    parser.add_argument("--bank-vehicles", type=int, default=512)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    env = TwinSplit()
    params = env.default_params
    if args.bank != "none":
        banks = build_trace_banks(args.bank_seed, args.bank_vehicles, env.config.max_steps + 1, env.config.map_size_m)
        params = params.replace(trace_bank=getattr(banks, args.bank))
        print(f"{args.bank} bank built in {time.perf_counter() - start:.1f} s")
    result = calibration_check(args.episodes, tuple(range(args.seeds)), args.gpu_ghz * 1e9, env, params)
    for name, metrics in result.items():
        if isinstance(metrics, dict):
            print(name, {m: f"{v[0]:.4g} +- {v[1]:.2g}" for m, v in metrics.items() if m not in EXTRAS})
    print(f"random / greedy mean latency: {result['random_over_greedy']:.3f}")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
