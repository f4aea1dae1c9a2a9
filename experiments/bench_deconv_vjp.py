"""A hand-written gradient for the transposed convs, against autodiff: per layer and in the decoder.

    python experiments/bench_deconv_vjp.py [--batch 800] [--calls 5] [--out experiments/results]

`nets.conv_transpose_matmul` gets its gradient from autodiff, which XLA:CPU turns into pad / add
/ transposed-copy chains. The gradients of a transposed conv are themselves convolutions of the
output gradient dy, which `nets.conv_matmul` computes in its fast forward formulation:

    dx[i, j]     = sum_{a, b} dy[s*i + a, s*j + b] @ kernel[a, b]^T      (a strided conv of dy)
    dkernel[a, b] = sum_{n, i, j} x[i, j]^T dy[s*i + a, s*j + b]        (that conv's kernel gradient)

`conv_transpose_handwritten` is `nets.conv_transpose_matmul` with that gradient (`jax.custom_vjp`;
a 1x1 input, deconv0, stays one matmul with autodiff).
This script checks that both give the same gradients, then times forward + backward of each
decoder layer alone (random input and output gradient) and of the whole paper decoder
(`nets.ConvDecoder`, a squared-error loss), with autodiff and with the hand-written gradient,
alternating. Writes `deconv_vjp_<backend>.json` and `.md` under `--out`.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import os
import pathlib
import statistics
import sys

import jax
import jax.numpy as jnp

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import call_times, write_results  # noqa: E402  (experiments/ is this script's directory)
from bench_convs import DECODER  # noqa: E402
from dreamer_jax import nets  # noqa: E402


AUTODIFF = nets.conv_transpose_matmul


def conv_transpose_handwritten(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    if x.shape[1] == x.shape[2] == 1:  # deconv0: one matmul, whose autodiff is its own gradient.
        return AUTODIFF(x, kernel, stride)
    return _handwritten(x, kernel, stride)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _handwritten(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return AUTODIFF(x, kernel, stride)


def _forward(x, kernel, stride):
    return AUTODIFF(x, kernel, stride), (x, kernel)


def _backward(stride, residuals, dy):
    x, kernel = residuals
    dx = nets.conv_matmul(dy, kernel.transpose(0, 1, 3, 2), stride)
    as_conv = jnp.zeros(kernel.shape[:2] + kernel.shape[3:1:-1], kernel.dtype)  # [k, k, f, c]
    (dkernel,) = jax.linear_transpose(lambda kern: nets.conv_matmul(dy, kern, stride), as_conv)(x)
    return dx, dkernel.transpose(0, 1, 3, 2)


_handwritten.defvjp(_forward, _backward)
FORMS = {"autodiff": AUTODIFF, "handwritten": conv_transpose_handwritten}


def layer_grad(fn):
    return jax.jit(jax.grad(lambda w, x, t: jnp.sum(fn(x, w, 2) * t), argnums=(0, 1)))


def decoder_grad(fn, image):
    """The paper decoder's parameter and input gradients, its transposed convs computed by fn."""
    nets.conv_transpose_matmul = fn  # The module looks the function up when it is traced.
    try:
        decoder = nets.ConvDecoder(32, "matmul")
        params = decoder.init(jax.random.key(2), jnp.zeros((1, 230)))
        grad = jax.jit(jax.grad(lambda p, f: jnp.sum(jnp.square(decoder.apply(p, f) - image)),
                                argnums=(0, 1)))
        feat = jax.random.normal(jax.random.key(0), (image.shape[0], 230))
        return grad.lower(params, feat).compile(), (params, feat)
    finally:
        nets.conv_transpose_matmul = AUTODIFF


def max_rel_diff(a, b) -> float:
    diffs = jax.tree.map(lambda u, v: float(jnp.max(jnp.abs(u - v)) / (jnp.max(jnp.abs(u)) + 1e-30)),
                         a, b)
    return max(jax.tree.leaves(diffs))


def alternate(compiled: dict, args: dict, calls: int, rounds: int = 2) -> dict:
    """Median seconds per call of each form, the forms alternating `rounds` times."""
    times = {name: [] for name in compiled}
    for _ in range(rounds):
        for name, fn in compiled.items():
            times[name] += call_times(fn, args[name], calls)
    return {name: statistics.median(t) for name, t in times.items()}


def run(batch: int, calls: int) -> dict:
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "device": str(jax.devices()[0].device_kind), "cpu_count": os.cpu_count(),
              "jax": jax.__version__, "batch": batch, "calls": calls, "layers": {}}
    key = jax.random.key(0)
    for name, size, cin, cout, kernel in DECODER:
        if size == 1:
            continue  # deconv0: one matmul either way.
        x = jax.random.normal(key, (batch, size, size, cin))
        w = 0.05 * jax.random.normal(jax.random.key(1), (kernel, kernel, cin, cout))
        t = jax.random.normal(jax.random.key(2), AUTODIFF(x, w, 2).shape)
        grads = {form: layer_grad(fn) for form, fn in FORMS.items()}
        diff = max_rel_diff(grads["autodiff"](w, x, t), grads["handwritten"](w, x, t))
        compiled = {form: g.lower(w, x, t).compile() for form, g in grads.items()}
        seconds = alternate(compiled, dict.fromkeys(compiled, (w, x, t)), calls)
        result["layers"][name] = {**seconds, "max_rel_diff": diff}
        print(name, result["layers"][name], flush=True)
    image = jax.random.normal(jax.random.key(1), (batch, 64, 64, 3))
    compiled, args = {}, {}
    for form, fn in FORMS.items():
        compiled[form], args[form] = decoder_grad(fn, image)
    diff = max_rel_diff(compiled["autodiff"](*args["autodiff"]),
                        compiled["handwritten"](*args["handwritten"]))
    result["decoder"] = {**alternate(compiled, args, calls), "max_rel_diff": diff}
    print("decoder", result["decoder"], flush=True)
    return result


def markdown(result: dict) -> str:
    lines = [f"# Transposed convs: autodiff against a hand-written gradient "
             f"({result['backend']}, {result['date']})", "",
             f"Forward + backward, batch {result['batch']}, seconds per call (median of "
             f"{result['calls']} x 2 alternating rounds).", "",
             "| what | autodiff | hand-written | max relative difference of the gradients |",
             "|---|---|---|---|"]
    rows = [*result["layers"].items(), ("whole decoder", result["decoder"])]
    for name, row in rows:
        lines.append(f"| {name} | {row['autodiff']:.3f} | {row['handwritten']:.3f} | "
                     f"{row['max_rel_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=800)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    result = run(args.batch, args.calls)
    write_results(pathlib.Path(args.out) / f"deconv_vjp_{result['backend']}", result,
                  markdown(result))


if __name__ == "__main__":
    main()
