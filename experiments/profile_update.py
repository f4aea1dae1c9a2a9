"""Where the time of one update goes: a jax.profiler trace, summed per network layer.

    .venv/bin/python experiments/profile_update.py [--size 16x50] [--calls 2]

Paper sizes, 64x64x3 pixels, fp32, the default config (the automatic chunks of this backend).
Compiles the update, runs it twice to warm up, traces `--calls` more calls and sums the trace's
per-operation events (XLA:CPU thunks) by the layer their HLO metadata names (encoder conv0-3,
decoder deconv0-3, forward or backward), and by kind: matmuls (`dot` and YNNPACK `ynn_fusion`
thunks) against everything else (copies, transposes, pads, concatenations, elementwise ops).
XLA runs independent thunks side by side on the two cores, so the per-operation times add up to
more than the wall-clock time of the update; the shares are what to read. Writes
`profile_update_<size>_<backend>.json` and `.md` under `--out`.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import glob
import gzip
import json
import pathlib
import re
import statistics
import sys
import tempfile
import time

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import random_batch, write_results  # noqa: E402
from dreamer_jax import agent, config as config_lib, train_state  # noqa: E402

SKIP = ("ThunkExecutor", "$", "PjitFunction")  # Whole-program and Python events, not operations.


def op_names(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> the jax op_name of its metadata (e.g. .../ConvDecoder/deconv3/...)."""
    names = {}
    for line in hlo_text.splitlines():
        match = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = .*?metadata=\{op_name="([^"]+)"', line)
        if match:
            names[match.group(1)] = match.group(2)
    return names


def group(op_name: str) -> str:
    """The layer (or part) an operation belongs to, and whether it is forward or backward."""
    direction = "backward" if "transpose(" in op_name else "forward"
    match = re.search(r"(ConvDecoder|ConvEncoder)\)*/(\w+)", op_name)
    if match:
        return f"{match.group(1)}/{match.group(2)} {direction}"
    if "ScalarHead" in op_name or "Actor" in op_name or "MLP" in op_name:
        return f"dense heads {direction}"
    if any(word in op_name for word in ("RSSM", "rssm", "GRU", "scan", "while")):
        return f"RSSM and scans {direction}"
    return f"other {direction}"


def profile(size: str, calls: int, top: int = 0) -> dict:
    b, t = (int(x) for x in size.split("x"))
    config = config_lib.make_config("paper", batch_size=b, seq_len=t)
    spec = agent.EnvSpec((64, 64, 3), "uint8", 6)
    update = train_state.make_update(config, spec)
    state = update.init(jax.random.PRNGKey(0))
    batch = jax.device_put(random_batch(spec, b, t))
    compiled = update.step.lower(state, batch).compile()
    names = op_names(compiled.as_text())
    for _ in range(2):
        state, _ = compiled(state, batch)
    jax.block_until_ready(state)
    walls = []
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        for _ in range(calls):
            start = time.perf_counter()
            state, _ = compiled(state, batch)
            jax.block_until_ready(state)
            walls.append(time.perf_counter() - start)
        jax.profiler.stop_trace()
        path = glob.glob(f"{trace_dir}/plugins/profile/*/*.trace.json.gz")[0]
        events = [e for e in json.load(gzip.open(path))["traceEvents"] if e.get("ph") == "X"]
    by_group, by_kind, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    for event in events:
        if event["name"].startswith(SKIP):
            continue
        ms = event["dur"] / 1e3 / calls
        op_name = names.get(event["name"], "")
        layer = group(op_name)
        by_group[layer] += ms
        by_op[(layer, event["name"], op_name[-120:])] += ms
        matmul = event["name"].startswith(("dot", "ynn_fusion"))
        by_kind[f"{layer.split('/')[0].split(' ')[0]} {'matmul' if matmul else 'other ops'}"] += ms
    return {"size": size, "wall_s_per_update": statistics.median(walls),
            "op_ms_total": sum(by_group.values()), "by_layer_ms": dict(by_group.most_common()),
            "by_kind_ms": dict(by_kind.most_common()),
            "top_ops_ms": [[*key, ms] for key, ms in by_op.most_common(top)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="16x50")
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--top", type=int, default=0,
                        help="also list the N most expensive operations with their jax op names")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "jax": jax.__version__, **profile(args.size, args.calls, args.top)}
    total = result["op_ms_total"]
    lines = [f"# Where the update's time goes ({args.size}, {result['backend']}, {result['date']}, "
             f"jax {result['jax']})", "",
             f"Paper sizes, pixels, fp32, default config; {args.calls} traced calls, "
             f"{result['wall_s_per_update']:.2f} s per update wall-clock, {total:.0f} ms of "
             "per-operation time per update (two cores run operations side by side).", "",
             "| layer / part | ms per update | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.0f} | {v / total:.1%} |" for k, v in result["by_layer_ms"].items()]
    lines += ["", "| part, kind | ms per update | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.0f} | {v / total:.1%} |" for k, v in result["by_kind_ms"].items()]
    if args.top:
        lines += ["", f"| top {args.top} operations: part | XLA thunk | jax op name (tail) | ms |",
                  "|---|---|---|---|"]
        lines += [f"| {part} | {thunk} | `{name}` | {ms:.0f} |"
                  for part, thunk, name, ms in result["top_ops_ms"]]
    write_results(pathlib.Path(args.out) / f"profile_update_{args.size}_{result['backend']}",
                  result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
