#!/usr/bin/env bash
# The GPU numbers of docs/speed.md as one prepared command, for a CUDA machine that already has
# jax with its CUDA plugin, flax, optax, chex and pytest (such as the image of the lent H100/H200
# machines, which cannot download anything).
#   bash experiments/gpu_bench.sh prepare   # on a machine with internet: the pure-Python wheels
#                                            # that image lacks (distrax and its needs, 7 MB) into
#                                            # .whl/ (add /.whl/ to .git/info/exclude)
#   bash experiments/gpu_bench.sh run        # on the GPU machine, from the repo root: installs
#                                            # .whl/ into /tmp/site, checks the conv formulations
#                                            # agree on the GPU (tests/test_nets.py), then
#                                            # bench.py (updates at 16x50 and 50x50, fp32 and
#                                            # bf16, in one piece; imagine; no env collection:
#                                            # dm_control's wheel alone is 56 MB). Results go to
#                                            # $OUT (or experiments/results): bench_gpu.{json,md},
#                                            # nvidia-smi.txt, tests.txt.
# With the device tool: run(command="bash experiments/gpu_bench.sh run", carry=[".whl"],
# timeout_s=540); the script stops itself at 500 s with what it has.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    py=python3; [ -x .venv/bin/python ] && py=.venv/bin/python  # scripts/setup.sh's venv has pip
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform any -d .whl \
      distrax==0.1.9 tfp-nightly==0.26.0.dev20261027 dm-tree==0.1.10 decorator==5.3.1 gast==0.7.0
    du -sh .whl ;;
  run)
    out="${OUT:-experiments/results}"
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi > "$out/nvidia-smi.txt" 2>&1
    python3 -c "import jax; print(jax.__version__, jax.devices())"
    timeout 120 python3 -m pytest -q -x tests/test_nets.py -p no:cacheprovider 2>&1 | tail -15 \
      | tee "$out/tests.txt"
    timeout 360 python3 experiments/bench.py --collect 0 --chunks 0 --calls 10 --out "$out" 2>&1 \
      | grep -v "^ " ;;
  *)
    echo "usage: bash experiments/gpu_bench.sh prepare|run" >&2
    exit 2 ;;
esac
