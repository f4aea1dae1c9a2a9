#!/usr/bin/env bash
# The CPU learning runs of experiments/results/, on a 2-core machine. Each run resumes if its
# logdir exists, so this script can be killed and started again (across sessions too).
#   bash experiments/reproduce_cpu.sh state    # cpu preset, cartpole swing-up from states, 100k env steps
#   bash experiments/reproduce_cpu.sh pixels   # paper hyper parameters from pixels, batch 16x50
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs}"
case "${1:-state}" in
  state)
    .venv/bin/python -m dreamer_jax.train --preset cpu --task dmc_cartpole_swingup \
      --logdir "$RUNS/cpu_state_cartpole" --steps 100000 --eval_every 5000 --eval_episodes 5
    .venv/bin/python -m dreamer_jax.plot "$RUNS/cpu_state_cartpole" \
      --out experiments/results/cpu_state_cartpole.png \
      --title "cartpole_swingup from states, cpu preset (batch 8x50, action repeat 8), 2-core CPU"
    cp "$RUNS/cpu_state_cartpole/metrics.jsonl" experiments/results/cpu_state_cartpole.jsonl ;;
  pixels)
    .venv/bin/python -m dreamer_jax.train --preset paper --task dmc_cartpole_swingup \
      --logdir "$RUNS/pixels_cartpole" --batch_size 16 --steps 100000 --eval_every 10000 \
      --checkpoint_every 2000
    .venv/bin/python -m dreamer_jax.plot "$RUNS/pixels_cartpole" --reference cartpole_swingup \
      --out experiments/results/pixels_cartpole.png \
      --title "cartpole_swingup from 64x64 pixels, paper config except batch 16x50, 2-core CPU"
    cp "$RUNS/pixels_cartpole/metrics.jsonl" experiments/results/pixels_cartpole.jsonl ;;
  *) echo "usage: $0 state|pixels" >&2; exit 2 ;;
esac
