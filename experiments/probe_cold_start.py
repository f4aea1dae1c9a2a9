"""Why the policy step is slower right after a render: the idle time alone, under four settings.

    .venv/bin/python experiments/probe_cold_start.py [--calls 200]

The acting policy step (paper networks, one 64x64 frame, `train_state.make_acting_policy`) is
timed right after a Python busy loop of 0.1 to 16 ms that touches almost no memory (so it evicts
nothing of this process's own), in a fresh process per setting: the defaults; synchronous CPU
dispatch (`jax_cpu_enable_async_dispatch=False`); XLA's Eigen thread pool off
(`--xla_cpu_multi_thread_eigen=false`); the process pinned to one core (`taskset -c 0`). Writes
experiments/results/policy_step_cold_probe_<backend>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from bench import write_results  # noqa: E402

SPINS_MS = (0.0, 0.1, 0.5, 2.0, 5.0, 16.0)

CHILD = r"""
import json, statistics, sys, time
sys.path[:0] = [ROOT, ROOT + "/experiments"]
import jax, numpy as np
if SYNC:
    jax.config.update("jax_cpu_enable_async_dispatch", False)
from bench_policy import busy_loop, paper_policy_step
from dreamer_jax import agent

policy = paper_policy_step(agent.EnvSpec((64, 64, 3), "uint8", 6))
obs = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
policy(obs)
out = {}
for spin_ms in SPINS_MS:
    times = []
    for _ in range(CALLS):
        busy_loop(spin_ms / 1e3)
        start = time.perf_counter()
        policy(obs)
        times.append(time.perf_counter() - start)
    out[str(spin_ms)] = 1e3 * statistics.median(times)
print(json.dumps(out))
"""

SETTINGS = {
    "defaults": ({}, False, []),
    "synchronous_dispatch": ({}, True, []),
    "eigen_thread_pool_off": ({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}, False, []),
    "one_core": ({}, False, ["taskset", "-c", "0"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    import jax

    rows = {}
    for name, (env, sync, prefix) in SETTINGS.items():
        if prefix and not shutil.which(prefix[0]):
            continue
        code = (f"ROOT = {str(ROOT)!r}\nSYNC = {sync}\nCALLS = {args.calls}\n"
                f"SPINS_MS = {SPINS_MS!r}\n" + CHILD)
        result = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True,
                                text=True, env=dict(os.environ, **env), check=True)
        rows[name] = json.loads(result.stdout.strip().splitlines()[-1])
        print(name, {k: round(v, 3) for k, v in rows[name].items()}, flush=True)
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "cpu_count": os.cpu_count(), "jax": jax.__version__, "calls": args.calls,
              "rows": rows}
    lines = [f"# Policy step after an idle busy loop ({result['date']}, {result['backend']}, "
             f"{result['cpu_count']} CPUs, jax {result['jax']})", "",
             f"Paper networks, one 64x64 frame; median ms of {args.calls} calls, each right after "
             "a Python busy loop of the column's length (no memory traffic of its own).", "",
             "| setting | " + " | ".join(f"{s:g} ms" for s in SPINS_MS) + " |",
             "|---|" + "---|" * len(SPINS_MS)]
    lines += [f"| {name} | " + " | ".join(f"{row[str(s)]:.3f}" for s in SPINS_MS) + " |"
              for name, row in rows.items()]
    write_results(pathlib.Path(args.out) / f"policy_step_cold_probe_{result['backend']}", result,
                  "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
