"""Data-parallel update: the batch split over 2 (host CPU) devices gives the 1-device update.

XLA fixes the device count when it starts, so the comparison runs in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=2.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import jax, numpy as np
sys.path[:0] = [ROOT, ROOT + "/tests"]
from conftest import ENV_SPECS, random_batch, tiny_config
from dreamer_jax import train_state

assert len(jax.devices()) == 2, jax.devices()
out = {}
for kind in ("state",):  # Encoder, RSSM, heads, imagination (pixels only swap the convs in).
    spec = ENV_SPECS[kind]
    cfg = tiny_config()
    batches = [random_batch(spec, cfg.batch_size, cfg.seq_len, seed=i) for i in range(2)]
    results = {}
    for name, mesh in (("one", None), ("two", train_state.data_mesh())):
        update = train_state.make_update(cfg, spec, mesh)
        step, state = update.step, update.init(jax.random.key(0))
        metrics = []
        for batch in batches:
            state, m = step(state, batch)
            metrics.append(m)
        if mesh is not None:  # The params really live on both devices.
            assert len(jax.tree.leaves(state.params)[0].sharding.device_set) == 2
        results[name] = jax.device_get((state.params, metrics))
    diffs = [float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
             for a, b in zip(jax.tree.leaves(results["one"]), jax.tree.leaves(results["two"]))]
    scale = max(float(np.max(np.abs(np.asarray(a)))) for a in jax.tree.leaves(results["one"]))
    out[kind] = {"max_abs_diff": max(diffs), "max_abs": scale,
                 "leaves": len(diffs)}
print(json.dumps(out))
"""


def test_two_device_update_equals_one_device_update():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2 "
                                     "--xla_backend_optimization_level=0")  # Fast compiles.
    code = f"ROOT = {str(ROOT)!r}\n" + SCRIPT
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for kind, r in out.items():
        # Two updates of params and metrics; the only difference allowed is float reduction order.
        assert r["leaves"] > 10, kind
        assert r["max_abs_diff"] <= 1e-4 * max(1.0, r["max_abs"]), (kind, r)

