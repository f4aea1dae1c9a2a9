#!/usr/bin/env bash
# Installs everything dreamer_jax needs on a fresh Debian/Ubuntu machine: the system libraries for
# headless MuJoCo rendering (EGL and OSMesa) and a virtual environment .venv with the package.
set -euo pipefail
cd "$(dirname "$0")/.."

need_gl=0
for lib in libEGL.so.1 libOSMesa.so libOpenGL.so.0; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_gl=1
done
if [ "$need_gl" = 1 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "[setup] installing headless OpenGL libraries (EGL, OSMesa) with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6 >/dev/null
  else
    echo "[setup] warning: no apt-get; install EGL (libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0) or OSMesa (libosmesa6) for pixel tasks" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
echo "[setup] ready: .venv/bin/python -m dreamer_jax.train --help"
