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
        if mesh is not None:  # Every batch array is split along B, not replicated.
            _, batch_in = step.lower(state, batches[0]).compile().input_shardings[0]
            specs = {tuple(s.spec) for s in jax.tree.leaves(batch_in)}
            out["batch_specs"] = sorted(map(list, specs))
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
    assert out.pop("batch_specs") == [["data"]]
    for kind, r in out.items():
        # Two updates of params and metrics; the only difference allowed is float reduction order.
        assert r["leaves"] > 10, kind
        assert r["max_abs_diff"] <= 1e-4 * max(1.0, r["max_abs"]), (kind, r)


POLICY_SCRIPT = r"""
import json, sys
import jax, numpy as np
sys.path[:0] = [ROOT, ROOT + "/tests"]
from conftest import ENV_SPECS, tiny_config
from dreamer_jax import train

cfg, spec = tiny_config(obs="state"), ENV_SPECS["state"]
agent = train.Agent(cfg, spec, jax.random.PRNGKey(0))
obs = np.ones((1,) + spec.obs_shape, np.float32)
elsewhere = jax.device_put(agent.state.params, jax.devices()[1])  # As params_copy on a GPU.
key = agent.policy_key
firsts = [np.ones(1, bool), np.zeros(1, bool), np.zeros(1, bool)]
same = [agent.act(obs, f, True).tolist() for f in firsts]
agent.policy_key = key
mixed = [agent.act(obs, firsts[0], True, params=elsewhere).tolist(),
         agent.act(obs, firsts[1], True).tolist(),
         agent.act(obs, firsts[2], True, params=elsewhere).tolist()]
print(json.dumps({"same": same, "mixed": mixed,
                  "key_devices": sorted(d.id for d in agent.policy_key.devices())}))
"""


def test_policy_state_follows_the_parameters_between_devices():
    """`--overlap` on an accelerator acts with a parameter copy on the host CPU, evaluation with
    the training state's: the policy's recurrent state and key stream move along with the
    parameters (2 host devices stand in for mesh and host), and the actions are those of one
    device throughout."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2 "
                                     "--xla_backend_optimization_level=0")
    code = f"ROOT = {str(ROOT)!r}\n" + POLICY_SCRIPT
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mixed"] == out["same"]
    assert out["key_devices"] == [1]
