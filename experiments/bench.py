"""Benchmark of the jitted update (world model + actor + value in one call).

    python experiments/bench.py [--sizes 16x50,50x50] [--calls 10] [--out experiments/results]

Paper model sizes, 64x64x3 pixels, walker_walk's action size (6), fp32, random data of the replay
layout, default config (on CPU the encoder and decoder, and imagination, run in automatic chunks).
Reports the median seconds per update over `--calls` calls after one warm-up call, the compile time
(lower + compile) separately, XLA's FLOP count (of the update in one piece, scans unrolled) and its
fraction of this machine's matmul peak (measured in the same run), imagined states per second of
`imagine()` (N = 2500, H = 15), policy-step latency and agent steps per second of pixel collection
on walker_walk (rendering split out), and peak RSS. Also XLA's temp buffer of each update, the
update with `--conv_chunks` given by `--chunks` (1: in one piece, the memory of not chunking), with
`--scan_unroll` when `--unroll` is given (pixel sizes and, with `--state`, the cpu preset), with
each `--variant`'s config overrides and, on accelerators, with `--compute_dtype bfloat16`. Writes
`bench_<backend>.json` and `.md` under `--out`.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def update_flops(config: config_lib.Config, spec: agent.EnvSpec) -> float:
    """FLOPs of one update by XLA's cost analysis of the program in one piece with the RSSM
    scans fully unrolled: the analysis counts a loop body once, not once per iteration (chunked
    or scanned programs report less than they compute; docs/speed.md). Lowered, not compiled:
    the count of the math itself, without the chunks' recomputed forward passes."""
    config = dataclasses.replace(config, conv_chunks=1, imag_chunks=1,
                                 scan_unroll=max(config.seq_len, config.horizon))
    update = train_state.make_update(config, spec)
    state = jax.eval_shape(update.init, jax.random.PRNGKey(0))
    batch = random_batch(spec, config.batch_size, config.seq_len)
    return xla_flops(update.step.lower(state, batch))


def xla_flops(program) -> float:
    """FLOPs of a lowered or compiled jax program by XLA's cost analysis (NaN where it has none)."""
    cost = program.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def bench_update(config: config_lib.Config, spec: agent.EnvSpec, calls: int) -> dict:
    update = train_state.make_update(config, spec)
    state = update.init(jax.random.PRNGKey(0))
    batch = jax.device_put(random_batch(spec, config.batch_size, config.seq_len))
    start = time.perf_counter()
    compiled = update.step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    temp_gib = compiled.memory_analysis().temp_size_in_bytes / 2**30
    state, _, _ = timed_updates(compiled, state, [batch])  # Warm-up.
    state, metrics, times = timed_updates(compiled, state, [batch] * calls)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    return {"update_s": statistics.median(times), "update_s_min": min(times),
            "compile_s": compile_s, "xla_temp_gib": temp_gib}


def timed_updates(step, state, batches) -> tuple[object, dict, list[float]]:
    """(state, last metrics, seconds of each update) of `step` over `batches` (an iterable),
    the state threaded through."""
    times, metrics = [], {}
    for batch in batches:
        start = time.perf_counter()
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return state, metrics, times


def call_times(fn, args: tuple, calls: int) -> list[float]:
    """Seconds of `calls` calls of `fn(*args)` to completion, after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return times


def matmul_peak(n: int = 2048, calls: int = 10, dtype=jax.numpy.float32) -> float:
    """FLOP/s of an n x n matmul at JAX's default precision (this machine's practical peak,
    measured now; on NVIDIA GPUs the default lets float32 matmuls use TF32)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
    return 2 * n**3 / min(call_times(jax.jit(lambda x, y: x @ y), (a, a), calls))


def bench_imagine(config: config_lib.Config, spec: agent.EnvSpec, starts: int, calls: int) -> float:
    """Imagined latent states per second of `imagine()` alone: N starts x H steps."""
    from dreamer_jax import imagine, rssm

    nets = agent.make_nets(config, spec)
    params = agent.init_params(nets, jax.random.PRNGKey(0))
    start = rssm.initial_state((starts,), deter_size=config.deter_size, stoch_size=config.stoch_size)
    fn = jax.jit(lambda p, s, k: imagine.imagine(nets, p["world"], p["actor"], s, k,
                                                 horizon=config.horizon).feat)
    times = call_times(fn, (params, start, jax.random.PRNGKey(1)), calls)
    return starts * config.horizon / statistics.median(times)


def bench_collection(config: config_lib.Config, steps: int) -> dict:
    """Policy-step latency and agent steps per second of collection (rendering split out) on
    the config's task from pixels."""
    from dreamer_jax import envs, train

    env = envs.make_env(config, seed=0)
    learner = train.Agent(config, env.spec, jax.random.PRNGKey(0))  # The training loop's policy.
    obs = env.reset()
    first = np.array([True])
    learner.act(obs[None], first, True)  # Compile.
    policy_s, env_s = [], []
    start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        action = learner.act(obs[None], first, True)[0]
        first = np.array([False])
        t1 = time.perf_counter()
        obs, _, done, _ = env.step(action)
        t2 = time.perf_counter()
        policy_s.append(t1 - t0)
        env_s.append(t2 - t1)
        if done:
            obs, first = env.reset(), np.array([True])
    total = time.perf_counter() - start
    env.close()
    return {"policy_step_ms": 1e3 * statistics.median(policy_s),
            "env_step_ms": 1e3 * statistics.median(env_s),
            "agent_steps_per_s": steps / total}


def write_results(stem: pathlib.Path, record: dict, markdown: str) -> None:
    """`record` as `<stem>.json` and `markdown` as `<stem>.md` (the experiments' result files)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown)


def peak_rss_gib() -> float:
    """VmHWM (`memory.memory_gib`); ru_maxrss where there is no /proc."""
    from dreamer_jax import memory

    peak = memory.memory_gib().get("peak_rss_gib")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16x50,50x50", help="BxT batch shapes")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--state", action="store_true", help="also time the cpu preset (states)")
    parser.add_argument("--sheeprl", action="store_true",
                        help="also time sheeprl's dreamer_v1 update in its own venv, same run "
                        "(experiments/bench_sheeprl.py; first use installs it, ~1 min)")
    parser.add_argument("--bf16", type=int, default=None,
                        help="also time the update with compute_dtype=bfloat16 (1/0; default: "
                        "on with an accelerator, off on CPU)")
    parser.add_argument("--chunks", type=int, default=1,
                        help="also time the update with --conv_chunks this (the default config "
                        "chunks automatically; 1: in one piece; 0: skip)")
    parser.add_argument("--unroll", type=int, default=0,
                        help="also time the updates with --scan_unroll this (0: skip)")
    parser.add_argument("--variant", action="append", default=[],
                        help="also time the pixel update with these config overrides, e.g. "
                        "conv_chunks=10,imag_chunks=4 (repeatable)")
    parser.add_argument("--collect", type=int, default=300,
                        help="agent steps of walker_walk pixel collection to time (0: skip)")
    args = parser.parse_args()
    backend = jax.default_backend()
    result = {"date": datetime.date.today().isoformat(), "backend": backend,
              "device": str(jax.devices()[0].device_kind), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(),
              "jax": jax.__version__, "precision": "float32",
              "config": "paper (Appendix A) sizes, pixels 64x64x3, action_dim 6"}
    pixels = agent.EnvSpec((64, 64, 3), "uint8", 6)
    variants = [(f"chunks{args.chunks}", {"conv_chunks": args.chunks})] if args.chunks else []
    if args.unroll > 1:
        variants.append((f"unroll{args.unroll}", {"scan_unroll": args.unroll}))
    for text in args.variant:
        overrides = dict(item.split("=") for item in text.split(","))
        overrides = {k: int(v) if v.isdigit() else v for k, v in overrides.items()}
        variants.append(("_".join(f"{k}{v}" for k, v in overrides.items()), overrides))
    if args.bf16 if args.bf16 is not None else backend != "cpu":
        variants.append(("bf16", {"compute_dtype": "bfloat16"}))
    for size in args.sizes.split(","):
        b, t = (int(x) for x in size.split("x"))
        config = config_lib.make_config("paper", batch_size=b, seq_len=t)
        r = bench_update(config, pixels, args.calls)
        r["flops"] = update_flops(config, pixels)  # Once per size: the variants do the same math.
        print(f"pixels {size}: {r['update_s']:.3f} s/update, compile {r['compile_s']:.1f} s, "
              f"{r['flops'] / 1e9:.0f} GFLOP (XLA count)", flush=True)
        result[f"update_s_{size}"] = r["update_s"]
        result[f"update_s_min_{size}"] = r["update_s_min"]
        result[f"compile_s_{size}"] = r["compile_s"]
        result[f"flops_per_update_{size}"] = r["flops"]
        result[f"xla_temp_gib_{size}"] = r["xla_temp_gib"]
        for suffix, overrides in variants:  # The same update with one option changed.
            config = config_lib.make_config("paper", batch_size=b, seq_len=t, **overrides)
            r = bench_update(config, pixels, args.calls)
            print(f"pixels {size} {suffix}: {r['update_s']:.3f} s/update, compile "
                  f"{r['compile_s']:.1f} s, XLA temp {r['xla_temp_gib']:.2f} GiB", flush=True)
            for key in ("update_s", "compile_s", "xla_temp_gib"):
                result[f"{key}_{size}_{suffix}"] = r[key]
        if backend != "cpu":  # What a lease cut short still leaves behind.
            save(result, args.out)
    result["compile_s"] = max(result[f"compile_s_{size}"] for size in args.sizes.split(","))
    big = 2048 if backend == "cpu" else 8192  # An accelerator needs a larger product to saturate.
    result["matmul_peak_flops"] = matmul_peak(big)
    if backend != "cpu":
        result["matmul_peak_flops_bf16"] = matmul_peak(big, dtype=jax.numpy.bfloat16)
    for size in args.sizes.split(","):
        if f"flops_per_update_{size}" in result:
            result[f"flop_utilization_{size}"] = (result[f"flops_per_update_{size}"]
                                                  / result[f"update_s_{size}"]
                                                  / result["matmul_peak_flops"])
    paper = config_lib.make_config("paper")
    result["imagine_states_per_s"] = bench_imagine(paper, pixels, 2500, args.calls)
    print(f"imagine: {result['imagine_states_per_s']:.0f} states/s (N=2500, H=15)", flush=True)
    if args.collect:
        result.update(bench_collection(paper, args.collect))
        print(f"collection: policy step {result['policy_step_ms']:.2f} ms, env step (render) "
              f"{result['env_step_ms']:.1f} ms, {result['agent_steps_per_s']:.1f} agent steps/s",
              flush=True)
    if args.state:
        state_variants = [("", {})]
        if args.unroll > 1:
            state_variants.append((f"_unroll{args.unroll}", {"scan_unroll": args.unroll}))
        for suffix, overrides in state_variants:
            config = config_lib.make_config("cpu", task="dmc_cartpole_swingup", **overrides)
            r = bench_update(config, agent.EnvSpec((5,), "float32", 1), args.calls)
            print(f"state cpu preset {config.batch_size}x{config.seq_len}{suffix}: "
                  f"{r['update_s']:.3f} s/update, compile {r['compile_s']:.1f} s")
            result[f"state_cpu_preset_update_s{suffix}"] = r["update_s"]
            result[f"state_cpu_preset_compile_s{suffix}"] = r["compile_s"]
    result["peak_rss_gib"] = peak_rss_gib()
    if args.sheeprl:  # After ours: its worker processes are separate, their RSS is their own.
        import bench_sheeprl

        sheeprl = bench_sheeprl.measure(args.sizes.split(","), args.calls, os.cpu_count(),
                                        ROOT / ".venv-sheeprl")
        result.update({k: v for k, v in sheeprl.items() if k.startswith(("sheeprl", "torch"))})
        for size in args.sizes.split(","):
            result[f"speedup_vs_sheeprl_{size}"] = (result[f"sheeprl_update_s_{size}"]
                                                    / result[f"update_s_{size}"])
    save(result, args.out)
    print(json.dumps(result, indent=1))


def save(result: dict, out: str) -> None:
    write_table(pathlib.Path(out) / f"bench_{result['backend']}", result,
                f"Update benchmark ({result['backend']}, {result['date']})")


def write_table(stem: pathlib.Path, record: dict, title: str) -> None:
    """`record` as `<stem>.json` and as a two-column key | value markdown table `<stem>.md`."""
    rows = [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in record.items()]
    write_results(stem, record, f"# {title}\n\n| key | value |\n|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
