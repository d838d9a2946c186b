#!/usr/bin/env bash
# CrossRealityPrivacy-v1's learners beyond the study's 20,480 env steps per seed, on the CPU, in the background
# (issue 20, item 3: the paper trains ~5e6; no GPU was lent). Each step trains one learner, 3 seeds in one program
# (`vmjax train --run.seeds 3`), to a budget in iterations of 2048 env steps per seed, then scores every run at its
# current budget on the study's held-out sets (long_budget.json, one row per learner and budget):
#
#   bash experiments/cross_reality_privacy_v1_long.sh [RUNS_DIR] [OUT_DIR]
#   (environment: QUEUE="algo:iterations[:connected] ...", the steps in order)
#
# A step "algo:iterations:connected" trains on `--env.agent_server connected`: the env puts each agent on its
# connected server and ignores the learner's server choice, which leaves only the perturbation to learn (the
# yardstick is then the best fixed radius on that env, scored by the same command).
#
# Resumable: a finished step is skipped, a cut-off one continues from its checkpoint (`vmjax train --resume`).
# PPO-relaxed and H-PPO have no schedule tied to the budget (their entropy and auxiliary coefficients are 0), so a
# run extended from 100 to 489 iterations is the run of 489 iterations, scored on the way. LHDPPO, HDPPO and GHPPO
# anneal their entropy (LHDPPO also its auxiliary) coefficient over the budget: each budget is a run of its own.
set -euo pipefail
RUNS=${1:-runs/crp_v1_long}
OUT=${2:-docs/results/cross_reality_privacy_v1}
VMJAX=${VMJAX:-vmjax}
PYTHON=${PYTHON:-python}
QUEUE=${QUEUE:-"ppo_relaxed:100 hppo:100 lhdppo:100 ppo_relaxed:100:connected hppo:100:connected ppo_relaxed:489
  hdppo:100 lhdppo:100:connected ghppo:100 hppo:489"}
mkdir -p "$RUNS"
for step in $QUEUE; do
  IFS=: read -r algo iterations variant <<<"$step"
  extra=()
  name=$algo
  if [ "${variant:-}" = connected ]; then
    extra=(--env.agent_server connected)
    name=$algo-connected
  elif [ -n "${variant:-}" ]; then
    echo "unknown variant '$variant' in step '$step' (known: connected)" >&2
    exit 2
  fi
  case $algo in
    ppo_relaxed | hppo) dir="$RUNS/$name" ;;  # extended in place
    *) dir="$RUNS/$name-$iterations" ;;
  esac
  mkdir -p "$dir"
  if [ -f "$dir/checkpoint.msgpack" ]; then
    $VMJAX train --resume --run.run_dir "$dir" --agent.num_iterations "$iterations" >>"$dir/train.log" 2>&1
  else
    $VMJAX train --env CrossRealityPrivacy-v1 --algo "$algo" --run.seeds 3 --run.run_dir "$dir" \
      --agent.num_iterations "$iterations" "${extra[@]}" >>"$dir/train.log" 2>&1
  fi
  $PYTHON -m experiments.cross_reality_privacy_v1_long --out "$OUT" "$dir"
done
