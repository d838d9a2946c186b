"""Per-slot oracles shared by the scenarios' baselines: iterated best response over a finite action grid.

A scenario supplies `cost(action) -> [N]` (each agent's cost of one slot under the joint `action`, the whole state
known) and a grid of candidate per-agent actions; `best_response_rounds` lets the agents take turns choosing their
best candidate given the others' current choices. The result is the gap a policy could win in that slot (the
calibration rules: an oracle against doing nothing, before any training)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

OBJECTIVES = ("own", "team")


def check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f'objective must be "own" or "team", got {objective!r}')


def best_response_rounds(
    cost: Callable,
    candidates,
    start,
    num_agents: int,
    rounds: int,
    objective: str = "own",
    allowed: jax.Array | None = None,
):
    """Agents 0, 1, ..., N-1, `rounds` times over, each replace their entry of the joint action by the candidate that
    minimises, the others held, their own cost (objective="own": iterated best response) or the sum over agents
    (objective="team": coordinate descent, never worse than `start`). `candidates` is a pytree whose leaves have a
    leading axis K (candidate k of every leaf is one per-agent action), `start` one with leaves [N, ...],
    `allowed` an optional [N, K] mask. Ties go to the lowest candidate index. Returns the joint action."""
    check_objective(objective)

    def improve(step, action):
        agent = step % num_agents

        def score(candidate):
            joint = jax.tree.map(lambda a, c: a.at[agent].set(c), action, candidate)
            costs = cost(joint)
            return costs[agent] if objective == "own" else jnp.sum(costs)

        scores = jax.vmap(score)(candidates)
        if allowed is not None:
            scores = jnp.where(allowed[agent], scores, jnp.inf)
        best = jnp.argmin(scores)
        return jax.tree.map(lambda a, c: a.at[agent].set(c[best]), action, candidates)

    return jax.lax.fori_loop(0, rounds * num_agents, improve, start)
