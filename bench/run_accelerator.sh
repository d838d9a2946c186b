#!/usr/bin/env bash
# The accelerator run behind bench/results/*-nvidia-*.json: every part with a time limit, sized for a short
# loan of one GPU (about 8 minutes). Each part writes its JSON itself (the harness after every finished part),
# so a part cut off by its limit keeps what it finished.
#
#   bash bench/run_accelerator.sh OUT_DIR        # OUT_DIR default: bench/results
set -u
out=${1:-bench/results}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee "$out/jax_devices.txt"

# TwinSplit-v0 env and MSRL training (the three modes) up to 65,536 worlds / 8,192 training worlds
timeout 170 python3 -u -m bench.twin_split_throughput --worlds 1 64 1024 4096 16384 65536 \
    --train-worlds 32 1024 8192 --out "$out/twin_split_throughput.json"
# AvatarPremigration-v0 against the NumPy references (no PyTorch on the accelerator machine), vmjax alone at
# 65,536 and 262,144 worlds, Hybrid-MAPPO training up to 8,192 worlds
timeout 200 python3 -u -m bench --skip-torch --skip-twin-routing --skip-scaling --repeats 3 \
    --worlds 1 64 1024 4096 16384 --extra-worlds 65536 262144 --train-worlds 20 1024 8192 \
    --out "$out/bench.json"
# TwinRouting-v0 env (persistence forecast and the LSTM-Transformer in the loop)
timeout 100 python3 -u -m bench.twin_routing_throughput --worlds 1 1024 16384 --repeats 3 \
    --out "$out/twin_routing_throughput.json"
# the layout search for a GPU preset (issue 21): Hybrid-MAPPO's training throughput at every world count x
# minibatch count; the fastest row is the candidate for `--run.preset gpu`
timeout 150 python3 -u -m bench.train_throughput --worlds 1024 4096 16384 --minibatches 4 16 64 --repeats 2 \
    --large-repeats 2 --out "$out/train_layout.json"
exit 0
