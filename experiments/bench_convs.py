"""Per-layer timing of the conv formulations of `dreamer_jax.nets` (forward + backward).

    python experiments/bench_convs.py [--batch 800] [--calls 3] [--out experiments/results]

For every layer of the paper's encoder and decoder (64x64x3 images, depth 32) at `--batch`
images (800 = one 16x50 replay batch), times the gradient of a scalar of the layer's output with
respect to kernel and input, for each formulation:
  lax       XLA's convolution (what cuDNN runs on GPU)
  patches   all k*k taps as patch channels, one matmul (the first 'matmul' formulation)
  subpixel  transposed conv as a stride-1 patch conv per output phase (the first 'matmul'
            transposed formulation)
  matmul    today's `nets.conv_matmul` / `nets.conv_transpose_matmul`
Writes `bench_convs_<backend>.json` and `.md` under `--out`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys

import jax
import jax.numpy as jnp

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import call_times, xla_flops  # noqa: E402  (experiments/ is this script's directory)
from dreamer_jax import nets  # noqa: E402


def conv_transpose_subpixel(x, kernel, stride):
    """The first CPU formulation: per output phase, a stride-1 conv of the padded input."""
    k, _, c, f = kernel.shape
    n, h, w, _ = x.shape
    s, taps = stride, -(-kernel.shape[0] // stride)
    kp = jnp.pad(kernel, ((0, s * taps - k), (0, s * taps - k), (0, 0), (0, 0)))
    kp = kp.reshape(taps, s, taps, s, c, f)[::-1, :, ::-1]
    kp = kp.transpose(0, 2, 4, 1, 3, 5).reshape(taps, taps, c, s * s * f)
    xp = jnp.pad(x, ((0, 0), (taps - 1, taps - 1), (taps - 1, taps - 1), (0, 0)))
    y = nets.conv_patches(xp, kp, 1)
    mh, mw = y.shape[1], y.shape[2]
    y = y.reshape(n, mh, mw, s, s, f).transpose(0, 1, 3, 2, 4, 5).reshape(n, mh * s, mw * s, f)
    return y[:, :s * (h - 1) + k, :s * (w - 1) + k, :]


# (name, input size, in channels, out channels, kernel): the paper's layers at depth 32.
ENCODER = [("conv0", 64, 3, 32, 4), ("conv1", 31, 32, 64, 4), ("conv2", 14, 64, 128, 4),
           ("conv3", 6, 128, 256, 4)]
DECODER = [("deconv0", 1, 1024, 128, 5), ("deconv1", 5, 128, 64, 5), ("deconv2", 13, 64, 32, 6),
           ("deconv3", 30, 32, 3, 6)]
FORMS = {
    "conv": {"lax": nets.conv_lax, "patches": nets.conv_patches, "matmul": nets.conv_matmul},
    "deconv": {"lax": nets.conv_transpose_lax, "subpixel": conv_transpose_subpixel,
               "matmul": nets.conv_transpose_matmul},
}


def time_layer(fn, batch, size, cin, cout, kernel, calls):
    key = jax.random.key(0)
    x = jax.random.normal(key, (batch, size, size, cin))
    w = 0.05 * jax.random.normal(key, (kernel, kernel, cin, cout))
    grad = jax.jit(jax.grad(lambda w, x: jnp.sum(jnp.square(fn(x, w, 2))), argnums=(0, 1)))
    compiled = grad.lower(w, x).compile()
    times = call_times(compiled, (w, x), calls)
    return statistics.median(times), xla_flops(compiled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=800)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    backend = jax.default_backend()
    result = {"date": datetime.date.today().isoformat(), "backend": backend,
              "device": str(jax.devices()[0].device_kind), "jax": jax.__version__,
              "batch": args.batch, "calls": args.calls, "layers": {}}
    for kind, layers in (("conv", ENCODER), ("deconv", DECODER)):
        for name, size, cin, cout, kernel in layers:
            row = {}
            for form, fn in FORMS[kind].items():
                seconds, flops = time_layer(fn, args.batch, size, cin, cout, kernel, args.calls)
                row[form] = {"s": seconds, "gflop": flops / 1e9}
                print(f"{name} {form}: {seconds:.3f} s, {flops / 1e9:.1f} GFLOP", flush=True)
            result["layers"][name] = row
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_convs_{backend}.json").write_text(json.dumps(result, indent=1) + "\n")
    forms = ["lax", "patches", "subpixel", "matmul"]
    lines = [f"# Conv layers, forward + backward, batch {args.batch} ({backend}, {result['date']})",
             "", "Seconds per call (median of %d); XLA's FLOP count in brackets." % args.calls, "",
             "| layer | " + " | ".join(forms) + " |", "|---" * (len(forms) + 1) + "|"]
    for name, row in result["layers"].items():
        cells = [f"{row[f]['s']:.3f} ({row[f]['gflop']:.0f})" if f in row else "" for f in forms]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (out / f"bench_convs_{backend}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
