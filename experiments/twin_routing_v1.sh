#!/usr/bin/env bash
# The paper's learners on TwinRouting-v1 at the spec's budget (spec 002 §6.4: 2e6 agent-steps = 16 worlds x
# 120 slots x 5 vehicles x 209 iterations -> 210), each with the workload predictor, without workload
# information ("w/o pred.": --env.workload_forecast none) and without the mask, 3 training seeds each.
#
#   bash experiments/twin_routing_v1.sh [RUNS_DIR] [ALGOS] [SEEDS]
#   (environment: VARIANTS, ABLATIONS, ITERATIONS choose a part of the queue; ALGOS="" runs only the ablations)
#
# Resumable: a finished run is skipped, a cut-off one continues from its checkpoint (`vmjax train --resume`).
# Runs go learner by learner, seed by seed (every variant of DM-MAPPO for seed 0, then seed 1, ..., then MASAC), so
# a partial queue still compares like with like, the paper's method first (a MASAC run takes ~8x a DM-MAPPO one on
# the 2-core CPU). The LSTM-Transformer is trained on the SUMO day by the first run that needs it and
# reused by the others (--run.predictor_path). Then the ablations of spec §8.2 (DM-MAPPO with the predictor, 3 seeds
# each, every one a setting of its own, retrained and with its own reward constants and predictor): no UAVs, no
# satellite, UAVs entering and leaving (7 vehicles, 2 departing late, 5 UAVs entering and 6 leaving), and the city
# against the rural layout (68 RSUs over 20 km) on the synthetic §4.1 flow (the SUMO counts are the city's),
# rural also without the satellite. Then: python -m experiments.twin_routing_v1 evaluate RUNS_DIR/*.
set -euo pipefail
RUNS=${1:-runs/twin_routing_v1}
ALGOS=${2-"dm_mappo masac"}
SEEDS=${3:-"0 1 2"}
VMJAX=${VMJAX:-vmjax}
ITERATIONS=${ITERATIONS:-210}
ABLATIONS=${ABLATIONS:-"no_uav no_sat dynamic city_synthetic rural rural_no_sat"}
VARIANTS=${VARIANTS:-"predictor none nomask"}
mkdir -p "$RUNS"
PREDICTOR="$RUNS/dm_mappo-predictor-s0/predictor.msgpack"
for algo in $ALGOS; do
  for seed in $SEEDS; do
    for variant in $VARIANTS; do
      dir="$RUNS/$algo-$variant-s$seed"
      if [ -f "$dir/checkpoint.msgpack" ]; then
        $VMJAX train --resume --run.run_dir "$dir" >>"$dir/train.log" 2>&1
        continue
      fi
      case $variant in
        predictor) extra=(--env.workload_forecast predictor) ;;
        none) extra=(--env.workload_forecast none) ;;
        nomask) extra=(--env.workload_forecast predictor --env.use_mask false) ;;
      esac
      if [ "$variant" != none ] && [ -f "$PREDICTOR" ] && [ "$dir" != "$(dirname "$PREDICTOR")" ]; then
        extra+=(--run.predictor_path "$PREDICTOR")
      fi
      mkdir -p "$dir"
      $VMJAX train --env TwinRouting-v1 --algo "$algo" --run.seed "$seed" --run.run_dir "$dir" \
        --agent.num_iterations "$ITERATIONS" "${extra[@]}" >>"$dir/train.log" 2>&1
    done
  done
done
SYNTHETIC=(--traffic.replay false --traffic.csv_path "")
for seed in $SEEDS; do
  for ablation in $ABLATIONS; do
    dir="$RUNS/ablation-$ablation-s$seed"
    if [ -f "$dir/checkpoint.msgpack" ]; then
      $VMJAX train --resume --run.run_dir "$dir" >>"$dir/train.log" 2>&1
      continue
    fi
    case $ablation in
      no_uav) extra=(--env.use_uavs false) ;;
      no_sat) extra=(--env.use_satellite false) ;;
      dynamic) extra=(--env.num_vehicles 7 --env.num_late_vehicles 2 --env.num_uavs 11 --env.num_entering_uavs 5
        --env.num_exiting_uavs 6) ;;
      city_synthetic) extra=("${SYNTHETIC[@]}") ;;
      rural) extra=(--env.layout rural --env.num_rsus 68 "${SYNTHETIC[@]}") ;;
      rural_no_sat) extra=(--env.layout rural --env.num_rsus 68 --env.use_satellite false "${SYNTHETIC[@]}") ;;
      *) echo "unknown ablation $ablation" >&2; exit 2 ;;
    esac
    mkdir -p "$dir"
    $VMJAX train --env TwinRouting-v1 --algo dm_mappo --run.seed "$seed" --run.run_dir "$dir" \
      --agent.num_iterations "$ITERATIONS" --env.workload_forecast predictor "${extra[@]}" >>"$dir/train.log" 2>&1
  done
done
