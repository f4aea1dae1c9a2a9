"""Where the resident memory of a process that trains from pixels goes, stage by stage.

    .venv/bin/python experiments/rss_update.py --size 50x50 --chunks 4:1,4:4,10:4

For each `--conv_chunks`:`--imag_chunks` pair, a fresh Python process imports jax and
dreamer_jax, builds the paper-size training state, compiles the update (lower + compile), hands
the heap the compiler freed back to the OS (as `train.py` does), runs the update once and then
`--calls` more times on random data of the replay layout (no replay, no environment). It records
VmRSS and VmHWM (the peak so far) after each stage, and XLA's own buffer sizes (temp, arguments,
outputs, generated code). Writes `rss_update_<size>.json` and `.md` under `--out`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def child(size: str, conv_chunks: int, imag_chunks: int, calls: int) -> dict:
    """One measurement, in this process (run in a fresh one)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "experiments"))
    from dreamer_jax import memory

    memory.limit_heap_growth()  # As train.py does.
    stages = {"start": memory.memory_gib()}
    import jax

    from dreamer_jax import agent, config as config_lib, train_state
    import bench

    jax.numpy.zeros(1).block_until_ready()
    stages["jax imported"] = memory.memory_gib()
    b, t = (int(x) for x in size.split("x"))
    config = config_lib.make_config("paper", batch_size=b, seq_len=t, conv_chunks=conv_chunks,
                                    imag_chunks=imag_chunks)
    spec = agent.EnvSpec((64, 64, 3), "uint8", 6)
    update = train_state.make_update(config, spec)
    state = update.init(jax.random.PRNGKey(0))
    batch = jax.device_put(bench.random_batch(spec, b, t))
    jax.block_until_ready((state, batch))
    stages["state and batch on device"] = memory.memory_gib()
    compiled = update.step.lower(state, batch).compile()
    stages["update compiled"] = memory.memory_gib()
    memory.release_free_heap()  # As train.py does after each round of updates.
    stages["free heap released"] = memory.memory_gib()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    stages["first update"] = memory.memory_gib()
    for _ in range(calls):
        state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    stages[f"{calls} more updates"] = memory.memory_gib()
    analysis = compiled.memory_analysis()
    xla = {name: getattr(analysis, f"{name}_size_in_bytes") / 2**30
           for name in ("temp", "argument", "output", "generated_code")}
    return {"size": size, "conv_chunks": conv_chunks, "imag_chunks": imag_chunks,
            "stages": stages, "xla_gib": xla}


def table(results: list[dict]) -> str:
    stages = list(results[0]["stages"])
    head = "| stage: RSS / peak RSS (GiB) | " + " | ".join(
        f"conv_chunks {r['conv_chunks']}, imag_chunks {r['imag_chunks']}" for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for stage in stages:
        cells = [f"{r['stages'][stage]['rss_gib']:.2f} / {r['stages'][stage]['peak_rss_gib']:.2f}"
                 for r in results]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    for name in results[0]["xla_gib"]:
        cells = [f"{r['xla_gib'][name]:.3f}" for r in results]
        lines.append(f"| XLA {name} buffer | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="50x50", help="BxT")
    parser.add_argument("--chunks", default="4:1,4:4,10:4",
                        help="conv_chunks:imag_chunks pairs, comma-separated")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        conv_chunks, imag_chunks = (int(c) for c in args.child.split(":"))
        print(json.dumps(child(args.size, conv_chunks, imag_chunks, args.calls)))
        return
    from bench import write_results  # Here, not at the top: a child's "start" has no jax yet.

    results = []
    for chunks in args.chunks.split(","):
        out = subprocess.run([sys.executable, __file__, "--size", args.size, "--calls",
                              str(args.calls), "--child", str(chunks)],
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        last_stage = list(results[-1]["stages"].values())[-1]
        print(f"conv_chunks:imag_chunks {chunks}: peak RSS {last_stage['peak_rss_gib']:.2f} GiB",
              flush=True)
    record = {"date": datetime.date.today().isoformat(), "machine": platform.processor(),
              "config": f"paper sizes, pixels 64x64x3, action_dim 6, batch {args.size}, fp32",
              "results": results}
    write_results(
        pathlib.Path(args.out) / f"rss_update_{args.size}", record,
        f"# Resident memory of the {args.size} update, stage by stage ({record['date']})\n\n"
        f"`experiments/rss_update.py`: {record['config']}; one fresh process per column, no "
        f"replay, no environment. RSS = VmRSS, peak = VmHWM so far.\n\n" + table(results) + "\n")


if __name__ == "__main__":
    main()
