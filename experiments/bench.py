"""Benchmark of the jitted update (world model + actor + value in one call).

    python experiments/bench.py [--sizes 16x50,50x50] [--calls 10] [--out experiments/results]

Paper model sizes, 64x64x3 pixels, walker_walk's action size (6), fp32, random data of the replay
layout. Reports the median seconds per update over `--calls` calls after one warm-up call, the
compile time (lower + compile) separately, XLA's FLOP count, and peak RSS. Writes
`bench_<backend>.json` and `bench_<backend>.md` under `--out`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import time

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dreamer_jax import agent, config as config_lib, train_state  # noqa: E402


def random_batch(spec: agent.EnvSpec, batch: int, length: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    if spec.is_image:
        obs = rng.integers(0, 256, (batch, length) + spec.obs_shape, dtype=np.uint8)
    else:
        obs = rng.normal(size=(batch, length) + spec.obs_shape).astype(np.float32)
    return {"obs": obs,
            "action": rng.uniform(-1, 1, (batch, length, spec.action_dim)).astype(np.float32),
            "reward": rng.uniform(0, 2, (batch, length)).astype(np.float32),
            "discount": np.ones((batch, length), np.float32)}


def bench_update(config: config_lib.Config, spec: agent.EnvSpec, calls: int) -> dict:
    nets = agent.make_nets(config, spec)
    optimizers = train_state.make_optimizers(config)
    state = train_state.init_train_state(nets, optimizers, jax.random.PRNGKey(0))
    step = train_state.make_train_step(nets, optimizers, train_state.LossConfig.from_config(config))
    batch = jax.device_put(random_batch(spec, config.batch_size, config.seq_len))
    start = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    state, metrics = compiled(state, batch)  # Warm-up.
    jax.block_until_ready(metrics)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    return {"update_s": statistics.median(times), "update_s_min": min(times),
            "compile_s": compile_s, "flops": float(cost.get("flops", float("nan")))}


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16x50,50x50", help="BxT batch shapes")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--state", action="store_true", help="also time the cpu preset (states)")
    args = parser.parse_args()
    backend = jax.default_backend()
    result = {"date": datetime.date.today().isoformat(), "backend": backend,
              "device": str(jax.devices()[0].device_kind), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(),
              "jax": jax.__version__, "precision": "float32",
              "config": "paper (Appendix A) sizes, pixels 64x64x3, action_dim 6"}
    pixels = agent.EnvSpec((64, 64, 3), "uint8", 6)
    for size in args.sizes.split(","):
        b, t = (int(x) for x in size.split("x"))
        config = config_lib.make_config("paper", batch_size=b, seq_len=t)
        r = bench_update(config, pixels, args.calls)
        print(f"pixels {size}: {r['update_s']:.3f} s/update, compile {r['compile_s']:.1f} s, "
              f"{r['flops'] / 1e9:.0f} GFLOP (XLA count)", flush=True)
        result[f"update_s_{size}"] = r["update_s"]
        result[f"update_s_min_{size}"] = r["update_s_min"]
        result[f"compile_s_{size}"] = r["compile_s"]
        result[f"flops_per_update_{size}"] = r["flops"]
    result["compile_s"] = max(v for k, v in result.items() if k.startswith("compile_s_"))
    if args.state:
        config = config_lib.make_config("cpu", task="dmc_cartpole_swingup")
        r = bench_update(config, agent.EnvSpec((5,), "float32", 1), args.calls)
        print(f"state cpu preset {config.batch_size}x{config.seq_len}: {r['update_s']:.3f} s/update")
        result["state_cpu_preset_update_s"] = r["update_s"]
        result["state_cpu_preset_compile_s"] = r["compile_s"]
    result["peak_rss_gib"] = peak_rss_gib()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_{backend}.json").write_text(json.dumps(result, indent=1) + "\n")
    rows = [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in result.items()]
    (out / f"bench_{backend}.md").write_text(
        f"# Update benchmark ({backend}, {result['date']})\n\n| key | value |\n|---|---|\n"
        + "\n".join(rows) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
