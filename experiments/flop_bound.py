"""How fast the update could be on this machine at all: XLA's FLOP count against the matmul peak.

    python experiments/flop_bound.py [--sizes 16x50,50x50] [--bench experiments/results/bench_cpu.json]
                                     [--ratio 2.6] [--out experiments/results]

The speed issue's target is a ratio to sheeprl's update measured in the same run. Whatever the
implementation, an update cannot take less than its arithmetic divided by the machine's peak.
This script counts the arithmetic with XLA's cost analysis (`bench.update_flops`: the update in
one piece, scans unrolled, lowered only) twice: with XLA's own convolutions (`conv_impl lax`,
whose count is the exact math of each conv: positions x taps x in x out channels x 2, the output
positions of a conv, the input positions of a transposed conv) and with this project's CPU
formulation (`conv_impl matmul`, which computes some padding too). It then reads the same run's
sheeprl seconds and matmul peak from `--bench` (what `bench.py --sheeprl` wrote) and reports, per
batch size:

- `target_update_s`: sheeprl's seconds over `--ratio`;
- `update_s_at_peak`: the exact count at 100% of the peak, the floor for any implementation;
- `max_speedup_vs_sheeprl`: sheeprl's seconds over that floor;
- `peak_fraction_for_ratio`: the fraction of the peak an update of the exact count must sustain,
  every operation included, to be `--ratio` times faster than sheeprl.

Writes `flop_bound_<backend>.json` and `.md` under `--out`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

import bench  # noqa: E402
from dreamer_jax import agent, config as config_lib  # noqa: E402


def bound(flops: float, peer_s: float, peak: float, ratio: float) -> dict:
    """The time `ratio` times faster than a peer taking `peer_s`, the floor of an update of `flops`
    at `peak` FLOP/s, the speedup over the peer that the floor allows, and the fraction of `peak`
    needed to meet that time."""
    floor_s = flops / peak
    return {"target_update_s": peer_s / ratio, "update_s_at_peak": floor_s,
            "max_speedup_vs_sheeprl": peer_s / floor_s,
            "peak_fraction_for_ratio": flops * ratio / (peer_s * peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16x50,50x50", help="BxT batch shapes")
    parser.add_argument("--bench", default=str(ROOT / "experiments" / "results" / "bench_cpu.json"))
    parser.add_argument("--ratio", type=float, default=2.6, help="target speedup over sheeprl")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    measured = json.loads(pathlib.Path(args.bench).read_text())
    pixels = agent.EnvSpec((64, 64, 3), "uint8", 6)
    peak = measured["matmul_peak_flops"]
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "jax": jax.__version__, "bench_file": pathlib.Path(args.bench).name,
              "bench_date": measured["date"], "matmul_peak_flops": peak, "ratio": args.ratio}
    rows = []
    for size in args.sizes.split(","):
        b, t = (int(x) for x in size.split("x"))
        counts = {impl: bench.update_flops(config_lib.make_config(
            "paper", batch_size=b, seq_len=t, conv_impl=impl), pixels)
            for impl in ("lax", "matmul")}
        peer_s, ours_s = measured[f"sheeprl_update_s_{size}"], measured[f"update_s_{size}"]
        r = bound(counts["lax"], peer_s, peak, args.ratio)
        result.update({f"flops_exact_{size}": counts["lax"],
                       f"flops_matmul_{size}": counts["matmul"],
                       f"sheeprl_update_s_{size}": peer_s, f"update_s_{size}": ours_s,
                       **{f"{k}_{size}": v for k, v in r.items()}})
        rows.append(f"| {size} | {counts['lax'] / 1e9:.1f} | {counts['matmul'] / 1e9:.1f} | "
                    f"{peer_s:.2f} | {ours_s:.2f} | {r['target_update_s']:.2f} | "
                    f"{r['update_s_at_peak']:.2f} | {r['max_speedup_vs_sheeprl']:.2f}x | "
                    f"{100 * r['peak_fraction_for_ratio']:.0f}% |")
        print(rows[-1], flush=True)
    bench.write_results(
        pathlib.Path(args.out) / f"flop_bound_{result['backend']}", result,
        f"# The update's floor on this machine ({result['date']}; times and peak from "
        f"{result['bench_file']}, {result['bench_date']})\n\n"
        f"Matmul peak {peak / 1e9:.1f} GFLOP/s (float32, measured in that run); target "
        f"{args.ratio}x sheeprl.\n\n"
        "| batch | GFLOP, exact convs (XLA count) | GFLOP, this project's CPU convs | "
        "sheeprl s | dreamer_jax s | target s | s at 100% of peak | largest possible speedup | "
        "peak fraction the target needs |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
