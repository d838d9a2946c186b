#!/usr/bin/env bash
# The paper's learners on AvatarPremigration-v1 at the spec's budget (spec 003 §6.3: 500 iterations of
# 20 worlds x 100 slots, lr 1e-4), with and without the LSTM forecast, 3 training seeds each.
#
#   bash experiments/avatar_premigration_v1.sh [RUNS_DIR] [ALGOS] [SEEDS]
#
# Resumable: a finished run is skipped, a cut-off one continues from its checkpoint (`vmjax train --resume`).
# Runs go one after another, seed by seed (every learner with and without the forecast for seed 0, then seed 1,
# ...), so a partial queue still compares like with like. The LSTM predictor is trained by the first run that needs it and
# reused by the others (--run.predictor_path). Then: vmjax evaluate RUNS_DIR/* (3 x 100 held-out episodes).
set -euo pipefail
RUNS=${1:-runs/avatar_premigration_v1}
ALGOS=${2:-"hybrid_mappo mappo_ddpg"}
SEEDS=${3:-"0 1 2"}
VMJAX=${VMJAX:-vmjax}
ITERATIONS=${ITERATIONS:-500}
mkdir -p "$RUNS"
PREDICTOR="$RUNS/hybrid_mappo-lstm-s0/predictor.msgpack"
for seed in $SEEDS; do
  for algo in $ALGOS; do
    case $algo in
      hybrid_mappo) lr=(--agent.actor_lr 1e-4 --agent.critic_lr 1e-4) ;;
      mappo_ddpg) lr=(--agent.actor_d_lr 1e-4 --agent.critic_d_lr 1e-4) ;;
      *) echo "unknown algo $algo" >&2; exit 2 ;;
    esac
    for forecast in lstm none; do
      dir="$RUNS/$algo-$forecast-s$seed"
      if [ -f "$dir/checkpoint.msgpack" ]; then
        $VMJAX train --resume --run.run_dir "$dir" >>"$dir/train.log" 2>&1
        continue
      fi
      extra=()
      if [ "$forecast" = lstm ] && [ -f "$PREDICTOR" ] && [ "$dir" != "$(dirname "$PREDICTOR")" ]; then
        extra=(--run.predictor_path "$PREDICTOR")
      fi
      mkdir -p "$dir"
      $VMJAX train --env AvatarPremigration-v1 --algo "$algo" --run.seed "$seed" --run.run_dir "$dir" \
        --env.workload_forecast "$forecast" --agent.num_iterations "$ITERATIONS" "${lr[@]}" "${extra[@]}" \
        >>"$dir/train.log" 2>&1
    done
  done
done
