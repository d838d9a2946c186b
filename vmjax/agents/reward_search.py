"""The reward-design loop of spec 000 §4.5 without a language model: a vectorised search over the eq. (21) weights.

    weights = RewardWeights.spec_start()                        # (1.0, 1.0, 0.5, 0.1, 0.1), §4.3 [R]
    scores = train_and_score(env, config, params, candidates, key, eval_key)   # candidates [K, 5]
    result = search(env, config, params, key, rounds=3, candidates_per_round=4)
    result.best_weights, result.best_score, result.history

    python -m vmjax.agents.reward_search --rounds 2 --candidates 4 --iterations 20

The paper's loop (§4.5) asks an LLM for five candidate reward functions, trains the agent with each, feeds the KPIs
back and repeats. Its final output is eq. (21) with unreported weights w1..w5. Here a candidate is one weight
vector (w1_entropy, w2_log_latency, w3_qos_normalised, w4_log_server_distance, w5_angle_per_rad) of eq. (21):

* `train_and_score`: ONE jitted call trains LHDPPO (`lhdppo.make_trainer(...).train`, reward_mode "llm") on every
  candidate (and every seed: a [K, S] grid through two nested `jax.vmap`s; the env params of a candidate are
  `weights.apply(base_params)`, a traced pytree) and then rolls the trained evaluation policy out on the BASE
  params from one held-out `eval_key`: every candidate (and every seed of it) faces the same `eval_envs` worlds
  for `eval_steps` slots. The score is the evaluation utility of eq. (17), computed by the env with the fixed
  utility weights (w_entropy, w_latency_per_s, w_qos) of the base params, which the search never changes, plus
  its parts (entropy, latency, QoS loss) and the last iteration's training metrics.
* `search`: round 0 asks the generator for K candidates, every round trains and scores them in one vmapped call,
  appends a `RoundResult` to the history and passes the history back to the generator for the next round. The
  best candidate over all rounds by the seed-mean evaluation utility is returned. The seeds of the training keys
  are the same in every round (common random numbers), so candidates of different rounds are compared on the
  same initialisations and the same held-out episodes.
* The generator hook, the place for an LLM-backed designer: `generator(round_index: int, history:
  list[RoundResult], rng: numpy.random.Generator) -> array [K, 5]` (or a `RewardWeights` with [K] leaves).
  `history` holds the rounds done so far (empty for round 0), each with its weights [K, 5] and scores ([K] seed
  means, [K, S] per seed). `rng` is seeded from the search key and the round index, so the loop is
  deterministic for a given key. The default, `CrossEntropyGenerator`, is a cross-entropy-method rule (below).

Weight constraints are those of the env (`EnvParams` validation): w1..w4 >= 0, w5 finite. Candidates are
validated in Python before tracing; errors name the field and the candidate index.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vmjax.agents import lhdppo
from vmjax.core import io
from vmjax.core.env import Environment
from vmjax.core.rollout import rollout

PyTree = Any
WEIGHT_NAMES = ("w1_entropy", "w2_log_latency", "w3_qos_normalised", "w4_log_server_distance", "w5_angle_per_rad")
SPEC_START = (1.0, 1.0, 0.5, 0.1, 0.1)  # §4.3 [R] starting values of w1..w5
NON_NEGATIVE = WEIGHT_NAMES[:4]  # the env requires w1..w4 >= 0; w5 only finite
EVAL_METRICS = ("utility", "entropy_bits", "latency_s", "qos_loss")  # eq. (17) and its parts, per-step AV means
SHOWN_TRAIN = ("mean_train_reward", "rollout_utility", "entropy_d")  # training columns of the CLI table
SHOWN_TRAIN_LABELS = {
    "train_mean_train_reward": "train_reward",
    "train_rollout_utility": "train_utility",
    "train_entropy_d": "train_H_d",
}
OWNER = "reward_search"


# ====================================================================== the searched weights
class RewardWeights(NamedTuple):
    """The five weights of eq. (21) (a pytree: scalar leaves for one candidate, [K] leaves for K candidates)."""

    w1_entropy: Any
    w2_log_latency: Any
    w3_qos_normalised: Any
    w4_log_server_distance: Any
    w5_angle_per_rad: Any

    @classmethod
    def spec_start(cls) -> RewardWeights:
        return cls(*SPEC_START)

    @classmethod
    def from_params(cls, env_params) -> RewardWeights:
        return cls(*(getattr(env_params, name) for name in WEIGHT_NAMES))

    @classmethod
    def from_array(cls, array) -> RewardWeights:
        """[..., 5] -> RewardWeights with [...] leaves (float32)."""
        array = jnp.asarray(array, jnp.float32)
        return cls(*(array[..., i] for i in range(len(WEIGHT_NAMES))))

    def to_array(self) -> jax.Array:
        """[..., 5] in the order of WEIGHT_NAMES."""
        return jnp.stack([jnp.asarray(w, jnp.float32) for w in self], axis=-1)

    def apply(self, env_params):
        """env_params with exactly these five fields replaced (works on traced leaves, e.g. under vmap)."""
        return env_params.replace(**self._asdict())


def validate_weights(weights, owner: str = OWNER) -> np.ndarray:
    """Candidates as a float32 array [K, 5] (from an array or a RewardWeights with [K] or scalar leaves), checked:
    2-D with 5 columns, K >= 1, every weight finite, w1..w4 >= 0. Raises ValueError naming the field."""
    if isinstance(weights, RewardWeights):
        leaves = [np.asarray(w, np.float64) for w in weights]
        if any(leaf.ndim > 1 for leaf in leaves) or len({leaf.shape for leaf in leaves}) != 1:
            raise ValueError(
                f"{owner}: weights (RewardWeights) leaves must all be scalars or all [K], got shapes "
                f"{[leaf.shape for leaf in leaves]}"
            )
        array = np.stack([np.atleast_1d(leaf) for leaf in leaves], axis=-1)
    else:
        try:
            array = np.asarray(weights, np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{owner}: weights must be a numeric array [K, 5], got {type(weights).__name__}") from err
    if array.ndim != 2 or array.shape[1] != len(WEIGHT_NAMES):
        raise ValueError(
            f"{owner}: weights must have shape [K, {len(WEIGHT_NAMES)}] (columns {WEIGHT_NAMES}), got {array.shape}"
        )
    if array.shape[0] < 1:
        raise ValueError(f"{owner}: weights needs K >= 1 candidates (rows), got K = 0")
    for j, name in enumerate(WEIGHT_NAMES):
        column = array[:, j]
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            raise ValueError(f"{owner}: weights {name} of candidate {int(bad[0])} must be finite, got {column[bad[0]]}")
        if name in NON_NEGATIVE:
            bad = np.flatnonzero(column < 0)
            if bad.size:
                raise ValueError(
                    f"{owner}: weights {name} of candidate {int(bad[0])} must be >= 0 (EnvParams "
                    f"constraint), got {column[bad[0]]}"
                )
    return array.astype(np.float32)


def _check_setup(
    env: Environment, config: lhdppo.LhdppoConfig, base_params, eval_envs: int, eval_steps: int, num_seeds: int
) -> None:
    for name, value in (("eval_envs", eval_envs), ("eval_steps", eval_steps), ("num_seeds", num_seeds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{OWNER}: {name} must be an int >= 1, got {value!r}")
    if not isinstance(config, lhdppo.LhdppoConfig):
        raise TypeError(f"{OWNER}: config must be an LhdppoConfig, got {type(config).__name__}")
    env_reward = getattr(getattr(env, "config", None), "reward", None)
    if config.reward_mode == "manual" or (config.reward_mode == "env" and env_reward != "llm"):
        raise ValueError(
            f"{OWNER}: config.reward_mode={config.reward_mode!r} does not train on eq. (21), so the "
            f"searched weights would not change training; use reward_mode='llm'"
        )
    missing = [name for name in WEIGHT_NAMES if not hasattr(base_params, name)]
    if missing:
        raise ValueError(
            f"{OWNER}: base_params lacks the eq. (21) weight fields {missing} (CrossRealityPrivacy-v0 params have them)"
        )
    env.validate_params(base_params)


# ====================================================================== training + scoring (one jitted call)
class CandidateScores(NamedTuple):
    """Per-candidate results; every leaf is [K, S] (candidates x seeds)."""

    eval: dict  # EVAL_METRICS: means over the eval_steps x eval_envs held-out slots and the AVs
    train: dict  # every metric of the last training iteration (lhdppo's metrics dict)


def evaluate_policy(env: Environment, policy: Callable, params, eval_key, eval_envs: int, eval_steps: int) -> dict:
    """Mean of EVAL_METRICS over `eval_steps` x `eval_envs` slots of `vmjax.core.rollout.rollout` (AV means).
    The utility is the env's eq. (17) with `params`' utility weights (the eq. 21 weights do not enter it)."""
    out = rollout(env, policy, eval_key, params, eval_envs, eval_steps)
    return {name: jnp.mean(out[name]) for name in EVAL_METRICS}


def _train_and_score_one(env, config, eval_envs, eval_steps, base_params, weights: RewardWeights, key, eval_key):
    trainer = lhdppo.make_trainer(env, config, weights.apply(base_params))  # traced params: validated beforehand
    state, metrics = trainer.train(key)
    evaluation = evaluate_policy(env, trainer.make_eval_policy(state), base_params, eval_key, eval_envs, eval_steps)
    return CandidateScores(evaluation, jax.tree.map(lambda x: x[-1], metrics))


@partial(jax.jit, static_argnames=("env", "config", "eval_envs", "eval_steps"))
def _train_and_score_grid(
    env, config, eval_envs, eval_steps, base_params, weights: RewardWeights, seed_keys, eval_key
) -> CandidateScores:
    """weights: [K] leaves; seed_keys [S] -> CandidateScores with [K, S] leaves. Module-level jit: calls with the
    same env, config, sizes and K, S share one compilation (the search's rounds, the tests)."""
    one = partial(_train_and_score_one, env, config, eval_envs, eval_steps, base_params)
    over_seeds = jax.vmap(one, in_axes=(None, 0, None))
    return jax.vmap(over_seeds, in_axes=(0, None, None))(weights, seed_keys, eval_key)


def seed_keys(key, num_seeds: int) -> jax.Array:
    """The [S] training keys of `train_and_score` (the same for every candidate)."""
    return jax.random.split(key, num_seeds)


def train_and_score(
    env: Environment,
    config: lhdppo.LhdppoConfig,
    base_params,
    weights,
    key,
    eval_key,
    eval_envs: int = 16,
    eval_steps: int = 50,
    num_seeds: int = 1,
) -> CandidateScores:
    """Train LHDPPO on each candidate weight vector (weights [K, 5] or RewardWeights with [K] leaves) with each of
    the `num_seeds` keys `seed_keys(key, num_seeds)` (the same seeds for every candidate) and score the trained
    deterministic evaluation policy on `base_params` over the held-out `eval_key` episodes, all in one jitted,
    vmapped call. Returns CandidateScores with [K, S] leaves."""
    array = validate_weights(weights)
    _check_setup(env, config, base_params, eval_envs, eval_steps, num_seeds)
    return _train_and_score_grid(
        env,
        config,
        int(eval_envs),
        int(eval_steps),
        base_params,
        RewardWeights.from_array(array),
        seed_keys(key, int(num_seeds)),
        eval_key,
    )


# ====================================================================== the loop (§4.5)
class RoundResult(NamedTuple):
    round_index: int
    weights: np.ndarray  # [K, 5] float32, columns WEIGHT_NAMES
    scores: dict  # name -> [K] means over seeds: eval metrics by name, training metrics as "train_<name>"
    per_seed: dict  # the same names -> [K, S]
    seconds: float  # wall time of the round's train-and-score call (compilation included in round 0)

    @property
    def utility(self) -> np.ndarray:
        return self.scores["utility"]

    @classmethod
    def from_json(cls, data: dict) -> RoundResult:
        """The inverse of `to_json` (a resumed search's finished rounds)."""
        return cls(
            int(data["round"]),
            np.asarray(data["weights"], np.float32),
            {k: np.asarray(v, np.float64) for k, v in data["scores"].items()},
            {k: np.asarray(v) for k, v in data["per_seed"].items()},
            float(data["seconds"]),
        )

    def to_json(self) -> dict:
        return {
            "round": self.round_index,
            "weight_names": list(WEIGHT_NAMES),
            "weights": self.weights.tolist(),
            "scores": {k: np.asarray(v).tolist() for k, v in self.scores.items()},
            "per_seed": {k: np.asarray(v).tolist() for k, v in self.per_seed.items()},
            "seconds": self.seconds,
        }


class SearchResult(NamedTuple):
    best_weights: RewardWeights  # scalar leaves (Python floats)
    best_score: float  # its seed-mean evaluation utility, eq. (17)
    best_round: int
    best_index: int  # candidate index within best_round
    history: list  # [RoundResult]


Generator = Callable[[int, list, np.random.Generator], Any]
"""generator(round_index, history: list[RoundResult], rng: numpy.random.Generator) -> candidates [K, 5]."""


@dataclasses.dataclass(frozen=True)
class CrossEntropyGenerator:
    """The default offline candidate rule (a cross-entropy-method step on log-magnitudes of the weights).

    Round 0: candidate 0 is `start` (the spec's (1.0, 1.0, 0.5, 0.1, 0.1)); the others are `start` with each weight
    multiplied by an independent log-uniform factor 10^U(-spread, spread) (signs kept: a negative w5 stays
    negative; a zero weight is perturbed around `floor`).
    Round r >= 1: the elites are the top ceil(elite_fraction x n) of all n candidates evaluated so far by the
    seed-mean evaluation utility; with mu, sd the per-weight mean and std of the elites' log10 magnitudes, K new
    candidates are drawn as sign x 10^(mu + max(sd, spread x shrink^r / sqrt(3)) N(0, 1)). The elites' sign
    (majority, ties +) is kept per weight."""

    start: tuple[float, ...] = SPEC_START
    spread: float = 1.0  # log10 half-width of round 0's factors (1.0: x 0.1 .. x 10)
    elite_fraction: float = 0.25
    shrink: float = 0.5  # the minimum log10 std shrinks by this per round
    floor: float = 1e-3  # magnitudes below this are treated as this on the log scale

    def __post_init__(self):
        validate_weights(np.asarray([self.start]), owner="CrossEntropyGenerator.start")
        if not (self.spread >= 0 and math.isfinite(self.spread)):
            raise ValueError(f"CrossEntropyGenerator.spread must be finite and >= 0, got {self.spread}")
        if not 0 < self.elite_fraction <= 1:
            raise ValueError(f"CrossEntropyGenerator.elite_fraction must be in (0, 1], got {self.elite_fraction}")
        if not 0 < self.shrink <= 1:
            raise ValueError(f"CrossEntropyGenerator.shrink must be in (0, 1], got {self.shrink}")
        if not self.floor > 0:
            raise ValueError(f"CrossEntropyGenerator.floor must be > 0, got {self.floor}")

    def __call__(self, round_index: int, history: list, rng: np.random.Generator, num_candidates: int) -> np.ndarray:
        k = num_candidates
        if not history:
            start = np.asarray(self.start, np.float64)
            sign = np.where(start < 0, -1.0, 1.0)
            log_mag = np.log10(np.maximum(np.abs(start), self.floor))
            factors = rng.uniform(-self.spread, self.spread, (k, len(start)))
            factors[0] = 0.0
            return (sign * 10.0 ** (log_mag + factors)).astype(np.float32)
        weights = np.concatenate([r.weights for r in history]).astype(np.float64)
        utility = np.concatenate([r.utility for r in history])
        n_elite = max(1, math.ceil(self.elite_fraction * len(utility)))
        elite = weights[np.argsort(-utility, kind="stable")[:n_elite]]
        sign = np.where(np.sum(np.sign(elite), axis=0) < 0, -1.0, 1.0)
        log_mag = np.log10(np.maximum(np.abs(elite), self.floor))
        mu, sd = log_mag.mean(axis=0), log_mag.std(axis=0)
        sd = np.maximum(sd, self.spread * self.shrink**round_index / math.sqrt(3.0))
        samples = mu + sd * rng.standard_normal((k, len(mu)))
        return (sign * 10.0**samples).astype(np.float32)


def _round_rng(key, round_index: int) -> np.random.Generator:
    data = np.asarray(jax.random.key_data(jax.random.fold_in(key, round_index))).ravel()
    return np.random.default_rng([int(x) for x in data])


def _write_json_atomic(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    io.atomic_write_json(path, record)


def search(
    env: Environment,
    config: lhdppo.LhdppoConfig,
    base_params,
    key,
    rounds: int = 3,
    candidates_per_round: int = 5,
    generator: Generator | None = None,
    eval_key=None,
    eval_envs: int = 16,
    eval_steps: int = 50,
    num_seeds: int = 1,
    output_path: str | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    resume: Sequence[RoundResult] = (),
) -> SearchResult:
    """The §4.5 loop: `rounds` rounds of `candidates_per_round` candidates from `generator` (default
    `CrossEntropyGenerator()`), each round one `train_and_score` call (same training seeds and the same held-out
    `eval_key` episodes in every round; eval_key defaults to fold_in(key, 1)). A user generator is called as
    `generator(round_index, history, rng)` and must return [candidates_per_round, 5]. `output_path`: after every
    round the whole record so far is written there as JSON (atomically: a temporary file, then os.replace).
    `on_round(result)` is called after every round (the CLI prints its table). `resume`: the first rounds of an
    interrupted search with the same arguments (`RoundResult.from_json` of its record); they are kept as they are
    and the loop goes on from the next round. Returns the best candidate over all rounds by the seed-mean
    evaluation utility (first on ties) and the history."""
    for name, value in (("rounds", rounds), ("candidates_per_round", candidates_per_round)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{OWNER}: {name} must be an int >= 1, got {value!r}")
    _check_setup(env, config, base_params, eval_envs, eval_steps, num_seeds)
    if generator is None:
        default = CrossEntropyGenerator()

        def generator(round_index, history, rng):
            return default(round_index, history, rng, candidates_per_round)

    k_train, k_gen = jax.random.split(key)
    eval_key = jax.random.fold_in(key, 1) if eval_key is None else eval_key
    history: list[RoundResult] = list(resume)[:rounds]
    for r in range(len(history), rounds):
        candidates = generator(r, list(history), _round_rng(k_gen, r))
        array = validate_weights(candidates, owner=f"{OWNER}: generator round {r}")
        if array.shape[0] != candidates_per_round:
            raise ValueError(
                f"{OWNER}: generator round {r} returned {array.shape[0]} candidates, expected "
                f"candidates_per_round = {candidates_per_round}"
            )
        t0 = time.perf_counter()
        scores = train_and_score(env, config, base_params, array, k_train, eval_key, eval_envs, eval_steps, num_seeds)
        scores = jax.block_until_ready(scores)
        seconds = time.perf_counter() - t0
        per_seed = {name: np.asarray(v) for name, v in scores.eval.items()}
        per_seed.update({f"train_{name}": np.asarray(v) for name, v in scores.train.items()})
        means = {name: v.astype(np.float64).mean(axis=1) for name, v in per_seed.items()}
        result = RoundResult(r, array, means, per_seed, seconds)
        history.append(result)
        if output_path is not None:
            _write_json_atomic(output_path, _record(history, eval_envs, eval_steps, num_seeds, config))
        if on_round is not None:
            on_round(result)
    best_round, best_index, best_score = 0, 0, -np.inf
    for result in history:
        i = int(np.argmax(result.utility))
        if result.utility[i] > best_score:
            best_round, best_index, best_score = result.round_index, i, float(result.utility[i])
    best = RewardWeights(*(float(w) for w in history[best_round].weights[best_index]))
    return SearchResult(best, best_score, best_round, best_index, history)


def _record(history: Sequence[RoundResult], eval_envs, eval_steps, num_seeds, config) -> dict:
    return {
        "eval_envs": eval_envs,
        "eval_steps": eval_steps,
        "num_seeds": num_seeds,
        "config": {k: v for k, v in dataclasses.asdict(config).items()},
        "rounds": [r.to_json() for r in history],
    }


# ====================================================================== CLI
def format_round(result: RoundResult) -> str:
    """One table per round: the candidates' weights, eval metrics (eq. 17 and parts) and chosen training metrics."""
    short = ("w1", "w2", "w3", "w4", "w5")
    cols = list(EVAL_METRICS) + [f"train_{m}" for m in SHOWN_TRAIN if f"train_{m}" in result.scores]
    labels = [SHOWN_TRAIN_LABELS.get(c, c) for c in cols]
    header = "  k " + " ".join(f"{s:>8}" for s in short) + " " + " ".join(f"{c[:13]:>13}" for c in labels)
    lines = [f"round {result.round_index} ({result.seconds:.1f} s)", header]
    best = int(np.argmax(result.utility))
    for i, w in enumerate(result.weights):
        mark = "*" if i == best else " "
        lines.append(
            f"{mark}{i:2d} "
            + " ".join(f"{x:8.4g}" for x in w)
            + " "
            + " ".join(f"{result.scores[c][i]:13.5g}" for c in cols)
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> SearchResult:
    import vmjax

    parser = argparse.ArgumentParser(description="Offline reward-weight search for eq. (21) (spec 000 §4.5).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--num-envs", type=int, default=None, help="LhdppoConfig.num_envs (default 16)")
    parser.add_argument("--num-steps", type=int, default=None, help="LhdppoConfig.num_steps (default 128)")
    parser.add_argument("--eval-envs", type=int, default=16)
    parser.add_argument("--eval-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON record of every round (rewritten atomically)")
    args = parser.parse_args(argv)
    overrides = {"num_iterations": args.iterations}
    if args.num_envs is not None:
        overrides["num_envs"] = args.num_envs
    if args.num_steps is not None:
        overrides["num_steps"] = args.num_steps
    config = lhdppo.LhdppoConfig(**overrides)
    env = vmjax.make("CrossRealityPrivacy-v0")
    print(
        f"{args.rounds} rounds x {args.candidates} candidates x {args.seeds} seeds, {config.num_iterations} "
        f"iterations of {config.num_envs} x {config.num_steps}; eval {args.eval_envs} worlds x {args.eval_steps} "
        f"slots; backend {jax.default_backend()}",
        flush=True,
    )
    result = search(
        env,
        config,
        env.default_params,
        jax.random.key(args.seed),
        args.rounds,
        args.candidates,
        eval_envs=args.eval_envs,
        eval_steps=args.eval_steps,
        num_seeds=args.seeds,
        output_path=args.out,
        on_round=lambda r: print(format_round(r), flush=True),
    )
    weights = ", ".join(f"{n}={w:.4g}" for n, w in zip(WEIGHT_NAMES, result.best_weights))
    print(f"best: round {result.best_round} candidate {result.best_index}: utility {result.best_score:.5g} ({weights})")
    return result


__all__ = [
    "EVAL_METRICS",
    "SPEC_START",
    "WEIGHT_NAMES",
    "CandidateScores",
    "CrossEntropyGenerator",
    "RewardWeights",
    "RoundResult",
    "SearchResult",
    "evaluate_policy",
    "format_round",
    "main",
    "search",
    "seed_keys",
    "train_and_score",
    "validate_weights",
]

if __name__ == "__main__":
    main()
