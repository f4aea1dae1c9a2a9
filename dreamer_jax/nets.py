"""Stateless Flax modules and the distributions built from their outputs.

- Conv encoder / transposed-conv decoder of Ha & Schmidhuber (2018), as used by Dreamer, for
  64x64x3 images; MLP encoder / decoder for state vectors.
- Dense heads: `layers` x `units` ELU, then a linear output (Appendix A: 3 x 300).
- Action head: tanh-transformed Normal with mean `mean_scale * tanh(mu / mean_scale)` and softplus
  std (continuous), or one-hot categorical with straight-through gradients (discrete).

Convolutions have two formulations with the same parameters and the same numbers: 'lax' (XLA
convolutions; cuDNN on GPU) and 'matmul' (space-to-depth, row taps as patches, one matmul per
layer, column taps as shifted adds), which XLA:CPU runs several times faster than its
convolutions, transposed ones especially (docs/speed.md).
All modules take any number of leading batch dimensions.

Mixed precision: every module has a `dtype` ('float32', or 'bfloat16' for GPUs): its matmuls and
convolutions run in that type on float32 parameters, and its output is float32 again, so losses,
distributions and the RSSM's recurrence stay in float32.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


# Keras' default initializer, as in the paper's TF code.
GLOROT = nn.initializers.glorot_uniform()
Dense = functools.partial(nn.Dense, kernel_init=GLOROT)


def resolve_conv_impl(impl: str) -> str:
    if impl == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "lax"
    return impl


# --- Convolutions -------------------------------------------------------------------------

def conv_patches(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """VALID conv of x [N, H, W, C] with kernel [k, k, C, F] as patch extraction + one matmul."""
    k = kernel.shape[0]
    n, h, w, c = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    patches = [
        x[:, a:a + stride * (ho - 1) + 1:stride, b:b + stride * (wo - 1) + 1:stride, :]
        for a in range(k) for b in range(k)
    ]
    patches = jnp.concatenate(patches, axis=-1)  # [N, Ho, Wo, k*k*C], ordered (a, b, c).
    return patches @ kernel.reshape(k * k * c, -1)


def conv_matmul(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """VALID strided conv of x [N, H, W, C] with kernel [k, k, C, F], written for XLA:CPU.

    With k a multiple of s, a stride-s conv is a stride-1 conv with k/s taps per axis on the
    space-to-depth input [N, H/s, W/s, s*s*C]. Row taps become patch channels (one matmul
    with a long contraction); column taps become shifted adds of the matmul's outputs, which
    keeps the patch tensor (and its gradient) small. Few channels: all taps as patches.
    """
    k, _, c, f = kernel.shape
    s = stride
    if k % s:
        return conv_patches(x, kernel, stride)
    n, h, w, _ = x.shape
    kk = k // s
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    hs, ws = ho + kk - 1, wo + kk - 1
    xs = x[:, :hs * s, :ws * s].reshape(n, hs, s, ws, s, c)
    xs = xs.transpose(0, 1, 3, 2, 4, 5).reshape(n, hs, ws, s * s * c)  # channels (r, t, c)
    taps = kernel.reshape(kk, s, kk, s, c, f)  # kernel[s*a + r, s*b + t] = taps[a, r, b, t]
    if s * s * c < 32:  # A stride-1 conv of the space-to-depth input, all taps as patches.
        return conv_patches(xs, taps.transpose(0, 2, 1, 3, 4, 5).reshape(kk, kk, s * s * c, f), 1)
    rows = jnp.concatenate([xs[:, a:a + ho] for a in range(kk)], axis=-1)  # [N, Ho, ws, (a,r,t,c)]
    y = rows @ taps.transpose(0, 1, 3, 4, 2, 5).reshape(kk * s * s * c, kk * f)
    y = y.reshape(n, ho, ws, kk, f)
    return sum(y[:, :, b:b + wo, b] for b in range(kk))


def conv_lax(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_transpose_matmul(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """Transposed conv, out[s*i + a, s*j + b] += x[i, j] @ kernel[a, b]; x [N, H, W, C].

    A 1x1 input is one matmul. Otherwise, per output phase (r, t) = (row mod s, col mod s),
    out[s*m + r, s*l + t] = sum_{p, q} x[m - p, l - q] @ kernel[s*p + r, s*q + t] over the P =
    ceil(k/s) taps per axis: row taps are gathered as patch channels of the row-padded input
    (one matmul, contraction P*C), column taps are shifted adds of its outputs; the s*s phases
    come out as channels and are interleaved (depth-to-space). Output size s*(H-1) + k.
    """
    k, _, c, f = kernel.shape
    n, h, w, _ = x.shape
    s = stride
    if h == w == 1:
        y = x.reshape(n, c) @ kernel.transpose(2, 0, 1, 3).reshape(c, k * k * f)
        return y.reshape(n, k, k, f)
    taps = -(-k // s)  # P
    kp = jnp.pad(kernel, ((0, s * taps - k), (0, s * taps - k), (0, 0), (0, 0)))
    kp = kp.reshape(taps, s, taps, s, c, f)[::-1]  # (p flipped, r, q, t, c, f)
    kp = kp.transpose(0, 4, 2, 1, 3, 5).reshape(taps * c, taps * s * s * f)
    mh, mw = h + taps - 1, w + taps - 1
    xp = jnp.pad(x, ((0, 0), (taps - 1, taps - 1), (0, 0), (0, 0)))
    rows = jnp.concatenate([xp[:, a:a + mh] for a in range(taps)], axis=-1)  # [N, mh, W, P*C]
    y = (rows @ kp).reshape(n, mh, w, taps, s * s * f)
    y = sum(jnp.pad(y[:, :, :, q], ((0, 0), (0, 0), (q, taps - 1 - q), (0, 0)))
            for q in range(taps))  # [N, mh, mw, (r, t, f)]
    y = y.reshape(n, mh, mw, s, s, f).transpose(0, 1, 3, 2, 4, 5).reshape(n, mh * s, mw * s, f)
    return y[:, :s * (h - 1) + k, :s * (w - 1) + k, :]


def conv_transpose_lax(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    k = kernel.shape[0]
    return jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1], (1, 1), [(k - 1, k - 1)] * 2, lhs_dilation=(stride, stride),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv(nn.Module):
    """VALID, strided 2D convolution (NHWC) with a selectable formulation."""
    features: int
    kernel: int
    stride: int
    impl: str = "auto"
    transpose: bool = False
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", GLOROT, (self.kernel, self.kernel, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        impl = resolve_conv_impl(self.impl)
        if self.transpose:
            fn = conv_transpose_matmul if impl == "matmul" else conv_transpose_lax
        else:
            fn = conv_matmul if impl == "matmul" else conv_lax
        x, kernel, bias = (v.astype(self.dtype) for v in (x, kernel, bias))
        return fn(x, kernel, self.stride) + bias.reshape((1, 1, 1, -1))


def _flatten_batch(x: jax.Array, event_rank: int) -> tuple[jax.Array, tuple[int, ...]]:
    batch = x.shape[:x.ndim - event_rank]
    return x.reshape((-1,) + x.shape[x.ndim - event_rank:]), batch


class ConvEncoder(nn.Module):
    """[..., 64, 64, 3] float image in [-0.5, 0.5] -> [..., 32 * depth] embedding."""
    depth: int = 32
    impl: str = "auto"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        x, batch = _flatten_batch(image, 3)
        for i, mult in enumerate((1, 2, 4, 8)):
            conv = Conv(mult * self.depth, 4, 2, self.impl, dtype=self.dtype, name=f"conv{i}")
            x = nn.relu(conv(x))
        return x.reshape(batch + (-1,)).astype(jnp.float32)


class ConvDecoder(nn.Module):
    """[..., feat] -> [..., 64, 64, 3] mean of a unit-variance Normal over the image."""
    depth: int = 32
    impl: str = "auto"
    channels: int = 3
    dtype: str = "float32"

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        x, batch = _flatten_batch(feat, 1)
        x = Dense(32 * self.depth, dtype=self.dtype, name="dense")(x)[:, None, None, :]
        specs = ((4 * self.depth, 5), (2 * self.depth, 5), (self.depth, 6), (self.channels, 6))
        for i, (features, kernel) in enumerate(specs):
            x = Conv(features, kernel, 2, self.impl, transpose=True, dtype=self.dtype,
                     name=f"deconv{i}")(x)
            if i < len(specs) - 1:
                x = nn.relu(x)
        return x.reshape(batch + x.shape[1:]).astype(jnp.float32)


class StateModel(nn.Module):
    """State model q(s_t | o_t) of the contrastive objective (eq. 11): a CNN on the image (or an
    MLP on a state vector), then a diagonal Gaussian over the model state feature [stoch, deter]."""
    feat_size: int
    image: bool
    depth: int = 32
    units: int = 300
    layers: int = 3
    impl: str = "auto"
    min_std: float = 0.1
    dtype: str = "float32"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.image:
            x = ConvEncoder(self.depth, self.impl, self.dtype)(obs)
        else:
            x = MLP(self.units, self.layers, dtype=self.dtype)(obs)
        mean, std = jnp.split(Dense(2 * self.feat_size, name="stats")(x), 2, axis=-1)
        return mean, jax.nn.softplus(std) + self.min_std


class MLP(nn.Module):
    """`layers` dense ELU layers of `units`, then a linear layer to `out` (omitted if None)."""
    units: int
    layers: int
    out: int | None = None
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.layers):
            x = nn.elu(Dense(self.units, dtype=self.dtype, name=f"h{i}")(x))
        if self.out is not None:
            x = Dense(self.out, dtype=self.dtype, name="out")(x)
        return x.astype(jnp.float32)


class ScalarHead(nn.Module):
    """Dense head predicting one scalar per state: reward and value means, discount logits."""
    units: int
    layers: int
    dtype: str = "float32"

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        return MLP(self.units, self.layers, 1, self.dtype)(feat)[..., 0]


class ActionHead(nn.Module):
    """Continuous: raw (mu, std_param) [..., 2A]; discrete: logits [..., A]."""
    action_dim: int
    units: int
    layers: int
    discrete: bool = False
    dtype: str = "float32"

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        out = self.action_dim if self.discrete else 2 * self.action_dim
        return MLP(self.units, self.layers, out, self.dtype)(feat)


# --- Distributions ------------------------------------------------------------------------

def tanh_normal_params(raw: jax.Array, *, mean_scale: float, init_std: float,
                       min_std: float) -> tuple[jax.Array, jax.Array]:
    """Pre-tanh Normal (mean, std) from the action head output [..., 2A] (Appendix A)."""
    mu, std_param = jnp.split(raw, 2, axis=-1)
    mean = mean_scale * jnp.tanh(mu / mean_scale)
    raw_init_std = math.log(math.expm1(init_std))  # softplus^-1(init_std)
    std = jax.nn.softplus(std_param + raw_init_std) + min_std
    return mean, std


def tanh_normal(mean: jax.Array, std: jax.Array) -> distrax.Distribution:
    """a = tanh(mean + std * eps) (eq. 3); reparameterized samples; event = last axis."""
    return distrax.Transformed(
        distrax.MultivariateNormalDiag(mean, std), distrax.Block(distrax.Tanh(), ndims=1))


def tanh_normal_mode(mean: jax.Array) -> jax.Array:
    """The deterministic action of evaluation: tanh(mean). (Training collection samples the
    action model and adds the exploration noise to the sample.)"""
    return jnp.tanh(mean)


def onehot_straight_through(logits: jax.Array) -> distrax.Distribution:
    """One-hot categorical whose samples pass gradients as if they were the probabilities."""
    return distrax.straight_through_wrapper(distrax.OneHotCategorical)(logits=logits, dtype=jnp.float32)


def normal_log_prob(x: jax.Array, mean: jax.Array, event_axes: Sequence[int] = ()) -> jax.Array:
    """log N(x; mean, 1), summed over `event_axes`."""
    lp = -0.5 * jnp.square(x - mean) - 0.5 * np.log(2 * np.pi)
    return lp.sum(axis=tuple(event_axes)) if event_axes else lp


def bernoulli_log_prob(logits: jax.Array, target: jax.Array) -> jax.Array:
    """log-likelihood of soft `target` in [0, 1] under Bernoulli(sigmoid(logits))."""
    return target * jax.nn.log_sigmoid(logits) + (1 - target) * jax.nn.log_sigmoid(-logits)
