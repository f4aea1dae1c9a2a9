#!/usr/bin/env bash
# The GPU numbers of docs/speed.md as prepared commands, for a CUDA machine that already has jax
# with its CUDA plugin, flax, optax, chex and pytest (such as the image of the lent H100/H200
# machines, which cannot download anything).
#   bash experiments/gpu_bench.sh prepare   # on a machine with internet: the wheels that image
#                                            # lacks into .whl/ (distrax and its needs, 7 MB;
#                                            # mujoco, PyOpenGL, dm-env, tensorboardX, 30 MB),
#                                            # dm_control's suite without its unused assets into
#                                            # .whl/site (2.4 MB), and the EGL loader packages
#                                            # into .gl/ (add /.whl/ and /.gl/ to
#                                            # .git/info/exclude)
#   bash experiments/gpu_bench.sh run        # on the GPU machine, from the repo root: checks the
#                                            # conv formulations agree on the GPU
#                                            # (tests/test_nets.py), then bench.py (updates at
#                                            # 16x50 and 50x50, fp32 and bf16, in one piece;
#                                            # imagine; no env collection). Results go to $OUT
#                                            # (or experiments/results): bench_gpu.{json,md},
#                                            # nvidia-smi.txt, tests.txt.
#   bash experiments/gpu_bench.sh stretch    # on the GPU machine: a timed stretch of real
#                                            # training, walker_walk from pixels at the paper
#                                            # config with 8 environment processes and
#                                            # --overlap true (train_stretch.py), MuJoCo
#                                            # rendering through the GPU's EGL.
#   bash experiments/gpu_bench.sh all        # run, then stretch, in one call (~9 minutes).
# With the device tool: run(command="bash experiments/gpu_bench.sh all", carry=[".whl", ".gl"],
# timeout_s=590); each part stops itself in time and keeps what it measured.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-experiments/results}"

install() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD/.whl/site:$PWD" PYTHONUNBUFFERED=1
}

bench() {
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1
  python3 -c "import jax; print(jax.__version__, jax.devices())"
  timeout 100 python3 -m pytest -q -x tests/test_nets.py -p no:cacheprovider 2>&1 | tail -15 \
    | tee "$out/tests.txt"
  timeout "${1:-360}" python3 experiments/bench.py --collect 0 --chunks 0 --calls 10 \
    --out "$out" 2>&1 | grep -v "^ "
}

stretch() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  local vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$vendor"
  export MUJOCO_GL=egl
  python3 -c "from dreamer_jax import config, envs; e = envs.make_env(config.make_config(
      'paper', task='dmc_walker_walk'), seed=0); print('render ok', e.reset().shape)" || return 1
  python3 experiments/train_stretch.py --preset paper --task dmc_walker_walk --steps 200000 \
    --max_s "${1:-420}" --extra "--envs 8 --overlap true" --out "$out"
}

case "${1:-}" in
  prepare)
    py=python3; [ -x .venv/bin/python ] && py=.venv/bin/python  # scripts/setup.sh's venv has pip
    dl() { "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any "$@"; }
    dl -d .whl distrax==0.1.9 tfp-nightly==0.26.0.dev20261027 dm-tree==0.1.10 decorator==5.3.1 \
      gast==0.7.0 mujoco==3.17.0 pyopengl==3.1.10 dm-env==1.6 tensorboardX==2.6.5 || exit 1
    tmp=$(mktemp -d)
    dl -d "$tmp" dm_control==1.0.50 || exit 1
    rm -rf .whl/site && mkdir -p .whl/site
    # The suite's 20 tasks need none of: locomotion, manipulation, the dog's assets, tests.
    "$py" - "$tmp"/dm_control-*.whl <<'PY'
import sys, zipfile
skip = ("dm_control/locomotion/", "dm_control/manipulation/", "dm_control/suite/dog_assets/",
        "dm_control/mujoco/testing/", "dm_control/blender/", "dm_control/mjcf/test_assets/",
        "dm_control/third_party/kinova/", "dm_control/suite/all_domains.png")
wheel = zipfile.ZipFile(sys.argv[1])
for info in wheel.infolist():
    if not info.filename.startswith(skip) and ".dist-info/" not in info.filename:
        wheel.extract(info, ".whl/site")
PY
    rm -rf "$tmp"
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update -qq && (cd .gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 \
      libopengl0 libgl1 libglx0 libgles2) || echo "warning: no EGL packages in .gl" >&2
    du -sh .whl .gl ;;
  run)
    mkdir -p "$out"; install; bench 360 ;;
  stretch)
    mkdir -p "$out"; install; stretch 420 ;;
  all)
    mkdir -p "$out"; install; bench 210; stretch 210 ;;
  *)
    echo "usage: bash experiments/gpu_bench.sh prepare|run|stretch|all" >&2
    exit 2 ;;
esac
