"""Policy-step latency, before/after: the conv formulation used for acting, and where the loop's
PRNG key stream is split.

    .venv/bin/python experiments/bench_policy.py [--envs 1] [--calls 500]

Paper networks, 64x64x3 pixels, walker_walk's action size (6), random frames. Times one agent
step as the training loop takes it (observation in, numpy action out) for:
  matmul_host_split  the patch-matmul convs of training batches, key split by a separate call
                     (the policy step before session 4)
  lax_host_split     XLA's convolutions for the few frames of a policy step
  lax_device_split   XLA's convolutions and the key split inside the jitted step
                     (`train_state.make_acting_policy`, what `train.Agent.act` runs now)
Writes experiments/results/policy_step_<backend>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import statistics
import sys

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import call_times, write_results  # noqa: E402
from dreamer_jax import agent, config as config_lib, train_state  # noqa: E402


def host_split(nets, params, obs, calls):
    """Seconds of `calls` agent steps: a key split, then the jitted step, numpy action out."""
    policy = jax.jit(lambda p, c, o, k, n, s: agent.policy_step(nets, p, c, o, k, n, s))
    carry, key = agent.initial_carry(nets, len(obs)), jax.random.PRNGKey(0)

    def step():
        return np.asarray(policy(params, carry, obs, jax.random.split(key)[1], 0.3, True)[1])

    return call_times(step, (), calls)


def device_split(nets, params, obs, calls):
    """Seconds of `calls` agent steps of `make_acting_policy` (the split inside), numpy out."""
    act = train_state.make_acting_policy(nets)
    carry, key = agent.initial_carry(nets, len(obs)), jax.random.PRNGKey(0)
    step = lambda: np.asarray(act(params, carry, obs, key, 0.3, True)[1])  # noqa: E731
    return call_times(step, (), calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    spec = agent.EnvSpec((64, 64, 3), "uint8", 6)
    obs = np.random.default_rng(0).integers(0, 256, (args.envs, 64, 64, 3), dtype=np.uint8)
    rows = {}
    for name, impl, fn in (("matmul_host_split", "matmul", host_split),
                           ("lax_host_split", "lax", host_split),
                           ("lax_device_split", "auto", device_split)):
        nets = agent.make_nets(config_lib.make_config("paper", conv_impl=impl), spec)
        params = agent.init_params(nets, jax.random.PRNGKey(0))
        times = fn(nets, params, obs, args.calls)
        rows[name] = {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times)}
        print(f"{name}: {rows[name]['median_ms']:.3f} ms median", flush=True)
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "cpu_count": os.cpu_count(), "jax": jax.__version__, "envs": args.envs,
              "calls": args.calls, "rows": rows}
    lines = [f"# Policy step, before/after ({result['date']}, {result['backend']}, "
             f"{result['cpu_count']} CPUs, jax {result['jax']})", "",
             f"Paper networks, 64x64x3 pixels, {args.envs} environment(s), {args.calls} calls; "
             "observation in, numpy action out.", "",
             "| variant | median ms | min ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['median_ms']:.3f} | {v['min_ms']:.3f} |" for k, v in rows.items()]
    write_results(pathlib.Path(args.out) / f"policy_step_{jax.default_backend()}", result,
                  "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
