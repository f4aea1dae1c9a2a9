"""Tests of `dreamer_jax.nets`: the action distributions (Appendix A), both convolution
formulations against each other and against NumPy, the conv encoder/decoder shapes, and the
log-likelihoods.
"""
from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import jaxpr_eqns
from dreamer_jax import nets


def softplus(x):
    return np.logaddexp(0.0, x)


def normal_logpdf(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


# --- Tanh-transformed Normal (continuous actions) ------------------------------------------

def test_tanh_normal_params_reference():
    rng = np.random.default_rng(0)
    raw = (3 * rng.normal(size=(4, 5, 6))).astype(np.float32)  # A = 3
    mean, std = nets.tanh_normal_params(raw, mean_scale=5.0, init_std=5.0, min_std=1e-4)
    chex.assert_shape([mean, std], (4, 5, 3))
    mu, x = raw[..., :3].astype(np.float64), raw[..., 3:].astype(np.float64)
    np.testing.assert_allclose(mean, 5 * np.tanh(mu / 5), rtol=1e-5, atol=1e-6)
    # softplus^-1(init_std) = log(exp(init_std) - 1): a zero raw output gives std = init_std.
    np.testing.assert_allclose(std, softplus(x + np.log(np.expm1(5.0))) + 1e-4, rtol=1e-5)


def test_tanh_normal_params_mean_bounds_and_identity():
    big = np.array([[-1e4, -30.0, -7.0, 7.0, 30.0, 1e4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
                   np.float32)
    mean, std = nets.tanh_normal_params(big, mean_scale=5.0, init_std=5.0, min_std=1e-4)
    assert np.all(np.abs(np.asarray(mean)) <= 5.0)
    assert np.all(np.abs(np.asarray(mean)[:, 1:5]) < 5.0)
    np.testing.assert_allclose(std, 5.0 + 1e-4, rtol=1e-6)
    small = np.random.default_rng(1).uniform(-0.05, 0.05, size=(1, 8)).astype(np.float32)
    mean, _ = nets.tanh_normal_params(small, mean_scale=5.0, init_std=5.0, min_std=1e-4)
    np.testing.assert_allclose(mean, small[:, :4], rtol=1e-4)  # 5 tanh(x/5) = x - x^3/75 + ...
    # The minimum std holds however negative the raw std output is.
    _, std = nets.tanh_normal_params(np.full((1, 2), -1e3, np.float32), mean_scale=5.0,
                                     init_std=5.0, min_std=0.1)
    np.testing.assert_allclose(std, 0.1, rtol=1e-6)


def test_tanh_normal_log_prob_change_of_variables():
    rng = np.random.default_rng(2)
    mean = rng.uniform(-1, 1, size=(7, 3)).astype(np.float32)
    std = rng.uniform(0.2, 1.0, size=(7, 3)).astype(np.float32)
    u = rng.uniform(-1.5, 1.5, size=(7, 3))
    a = np.tanh(u).astype(np.float32)
    log_prob = jax.jit(lambda m, s, a: nets.tanh_normal(m, s).log_prob(a))(mean, std, a)
    chex.assert_shape(log_prob, (7,))
    a64 = a.astype(np.float64)
    want = np.sum(normal_logpdf(np.arctanh(a64), mean, std) - np.log(1 - a64 ** 2), axis=-1)
    np.testing.assert_allclose(log_prob, want, rtol=1e-4, atol=1e-4)


def test_tanh_normal_samples_are_reparameterized():
    rng = np.random.default_rng(3)
    mean = rng.uniform(-1, 1, size=(5, 2)).astype(np.float32)
    std = rng.uniform(0.2, 1.0, size=(5, 2)).astype(np.float32)
    key = jax.random.key(0)

    def sample(mean, std):
        return nets.tanh_normal(mean, std).sample(seed=key)

    a = np.asarray(jax.jit(sample)(mean, std), np.float64)
    chex.assert_shape(a, (5, 2))
    assert np.all(np.abs(a) < 1)
    grad_mean, grad_std = jax.jit(jax.grad(lambda m, s: jnp.sum(sample(m, s)), argnums=(0, 1)))(
        mean, std)
    # a = tanh(mean + std * eps): da/dmean = 1 - a^2, da/dstd = eps (1 - a^2).
    np.testing.assert_allclose(grad_mean, 1 - a ** 2, rtol=1e-4, atol=1e-6)
    eps = (np.arctanh(a) - mean) / std
    np.testing.assert_allclose(grad_std, eps * (1 - a ** 2), rtol=1e-3, atol=1e-4)


def test_tanh_normal_mode():
    mean = np.random.default_rng(4).normal(size=(3, 2)).astype(np.float32)
    np.testing.assert_allclose(nets.tanh_normal_mode(mean), np.tanh(mean), rtol=1e-6)


# --- One-hot categorical with straight-through gradients (discrete actions) -----------------

def test_onehot_straight_through_samples_are_one_hot():
    logits = (2 * np.random.default_rng(5).normal(size=(500, 4))).astype(np.float32)
    sample = np.asarray(nets.onehot_straight_through(logits).sample(seed=jax.random.key(1)))
    chex.assert_shape(sample, (500, 4))
    assert set(np.unique(sample)) <= {0.0, 1.0}
    np.testing.assert_array_equal(sample.sum(-1), 1.0)
    # The samples follow softmax(logits): the most likely class is drawn most often.
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    frequent = (sample.argmax(-1) == probs.argmax(-1)).mean()
    assert frequent > (probs.max(-1).mean() - 0.1)


def test_onehot_straight_through_gradient_is_softmax_gradient():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    w = rng.normal(size=(6, 4)).astype(np.float32)
    key = jax.random.key(2)
    got = jax.grad(lambda l: jnp.sum(nets.onehot_straight_through(l).sample(seed=key) * w))(
        logits)
    want = jax.grad(lambda l: jnp.sum(jax.nn.softmax(l, -1) * w))(logits)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.any(np.asarray(got) != 0)


# --- Convolutions ---------------------------------------------------------------------------

def conv_reference(x, kernel, stride):
    """VALID conv: out[n, i, j] = sum_{a, b} x[n, s*i + a, s*j + b] @ K[a, b]."""
    k = kernel.shape[0]
    n, h, w, _ = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, ho, wo, kernel.shape[-1]))
    for i in range(ho):
        for j in range(wo):
            for a in range(k):
                for b in range(k):
                    out[:, i, j] += x[:, stride * i + a, stride * j + b] @ kernel[a, b]
    return out


def conv_transpose_reference(x, kernel, stride):
    """Transposed conv: out[n, s*i + a, s*j + b] += x[n, i, j] @ K[a, b]; size s*(H-1) + k."""
    k = kernel.shape[0]
    n, h, w, _ = x.shape
    out = np.zeros((n, stride * (h - 1) + k, stride * (w - 1) + k, kernel.shape[-1]))
    for i in range(h):
        for j in range(w):
            for a in range(k):
                for b in range(k):
                    out[:, stride * i + a, stride * j + b] += x[:, i, j] @ kernel[a, b]
    return out


# (input size, kernel, stride): the encoder's and decoder's layers, and a few odd ones.
CONV_CASES = [(9, 4, 2), (8, 3, 1), (10, 4, 3), (7, 2, 2)]
DECONV_CASES = [(1, 5, 2), (3, 6, 2), (4, 5, 2), (3, 3, 1), (2, 4, 3), (3, 2, 2)]


def random_conv_inputs(seed, size, kernel, cin=3, cout=4, width=None):
    rng = np.random.default_rng(seed)
    width = size + 1 if width is None else width
    x = rng.normal(size=(2, size, width, cin)).astype(np.float32)
    k = rng.normal(size=(kernel, kernel, cin, cout)).astype(np.float32)
    return x, k


@pytest.mark.parametrize("cin", [3, 16])  # conv_matmul: all taps as patches / row taps only
@pytest.mark.parametrize("size,kernel,stride", CONV_CASES)
def test_conv_formulations_match_numpy(size, kernel, stride, cin):
    x, k = random_conv_inputs(size + kernel, size, kernel, cin=cin)
    want = conv_reference(x.astype(np.float64), k.astype(np.float64), stride)
    for fn in (nets.conv_matmul, nets.conv_patches, nets.conv_lax):
        got = jax.jit(fn, static_argnums=2)(x, k, stride)
        chex.assert_shape(got, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=fn.__name__)


@pytest.mark.parametrize("size,kernel,stride,width", [c + (None,) for c in DECONV_CASES] + [(1, 5, 2, 1)])
def test_conv_transpose_formulations_match_numpy(size, kernel, stride, width):
    x, k = random_conv_inputs(size + kernel, size, kernel, width=width)
    want = conv_transpose_reference(x.astype(np.float64), k.astype(np.float64), stride)
    for fn in (nets.conv_transpose_matmul, nets.conv_transpose_lax):
        got = jax.jit(fn, static_argnums=2)(x, k, stride)
        chex.assert_shape(got, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=fn.__name__)


@pytest.mark.parametrize("transpose,size,kernel,cin,features", [
    (False, 9, 4, 3, 4), (False, 9, 4, 16, 4),
    (True, 1, 5, 3, 4),  # a 1x1 input: one matmul
    # Kernels 5 (taps padded to 6) and 6; 16 input channels and 8 output features as well.
    (True, 3, 6, 3, 4), (True, 4, 5, 3, 4), (True, 5, 6, 16, 8), (True, 4, 5, 16, 8)])
def test_conv_module_impls_agree(transpose, size, kernel, cin, features, make_random_params):
    """'matmul' and 'lax' give the same outputs and gradients from the same parameters."""
    x, _ = random_conv_inputs(size, size, kernel, cin=cin, width=1 if size == 1 else None)
    modules = {impl: nets.Conv(features, kernel, 2, impl, transpose) for impl in ("matmul", "lax")}
    params = make_random_params(modules["lax"].init, jax.random.key(0), x)
    chex.assert_shape(params["params"]["kernel"], (kernel, kernel, cin, features))
    out_shape = jax.eval_shape(modules["lax"].apply, params, x).shape
    w = np.random.default_rng(7).normal(size=out_shape).astype(np.float32)

    def run(params, x, impl):
        def loss(params, x):
            return jnp.sum(modules[impl].apply(params, x) * w)
        return modules[impl].apply(params, x), jax.grad(loss, argnums=(0, 1))(params, x)

    outs = {impl: jax.jit(run, static_argnums=2)(params, x, impl) for impl in modules}
    chex.assert_trees_all_close(outs["matmul"], outs["lax"], rtol=1e-4, atol=1e-4)
    # The module adds its bias to the formulation's output.
    kernel_, bias = params["params"]["kernel"], params["params"]["bias"]
    reference = conv_transpose_reference if transpose else conv_reference
    want = reference(x.astype(np.float64), kernel_.astype(np.float64), 2) + bias
    np.testing.assert_allclose(outs["lax"][0], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ["matmul", "lax"])
def test_conv_encoder_decoder_shapes(impl):
    depth = 2
    image = jnp.zeros((2, 3, 64, 64, 3), jnp.float32)
    encoder = nets.ConvEncoder(depth, impl)
    embed, _ = jax.eval_shape(encoder.init_with_output, jax.random.key(0), image)
    chex.assert_shape(embed, (2, 3, 32 * depth))
    decoder = nets.ConvDecoder(depth, impl)
    feat = jnp.zeros((2, 3, 20), jnp.float32)
    recon, _ = jax.eval_shape(decoder.init_with_output, jax.random.key(0), feat)
    chex.assert_shape(recon, (2, 3, 64, 64, 3))
    # Any number of leading batch dims, including one.
    recon, _ = jax.eval_shape(decoder.init_with_output, jax.random.key(0), feat[0])
    chex.assert_shape(recon, (3, 64, 64, 3))


def test_conv_decoder_impls_agree(make_random_params):
    decoder = {impl: nets.ConvDecoder(2, impl) for impl in ("matmul", "lax")}
    feat = np.random.default_rng(8).normal(size=(3, 20)).astype(np.float32)
    params = make_random_params(decoder["lax"].init, jax.random.key(0), feat)
    outs = {impl: jax.jit(d.apply)(params, feat) for impl, d in decoder.items()}
    chex.assert_shape(outs["lax"], (3, 64, 64, 3))
    np.testing.assert_allclose(outs["matmul"], outs["lax"], rtol=1e-4, atol=1e-4)


# --- Heads and log-likelihoods ----------------------------------------------------------------

def test_heads_shapes():
    feat = jnp.zeros((4, 5, 20))
    value, _ = jax.eval_shape(nets.ScalarHead(16, 2).init_with_output, jax.random.key(0), feat)
    chex.assert_shape(value, (4, 5))
    raw, _ = jax.eval_shape(nets.ActionHead(3, 16, 2).init_with_output, jax.random.key(0), feat)
    chex.assert_shape(raw, (4, 5, 6))
    logits, _ = jax.eval_shape(nets.ActionHead(3, 16, 2, discrete=True).init_with_output,
                               jax.random.key(0), feat)
    chex.assert_shape(logits, (4, 5, 3))


def test_normal_log_prob():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    mean = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    pointwise = normal_logpdf(x.astype(np.float64), mean, 1.0)
    np.testing.assert_allclose(nets.normal_log_prob(x, mean), pointwise, rtol=1e-5, atol=1e-5)
    got = nets.normal_log_prob(x, mean, (2, 3))
    chex.assert_shape(got, (2, 3))
    np.testing.assert_allclose(got, pointwise.sum((2, 3)), rtol=1e-5, atol=1e-4)


def test_bernoulli_log_prob():
    rng = np.random.default_rng(10)
    logits = (3 * rng.normal(size=(4, 6))).astype(np.float32)
    target = rng.uniform(size=(4, 6)).astype(np.float32)
    target[0] = (target[0] > 0.5)  # Hard and soft targets.
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    want = target * np.log(p) + (1 - target) * np.log(1 - p)
    got = nets.bernoulli_log_prob(logits, target)
    chex.assert_shape(got, (4, 6))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Stable for large logits, where log(sigmoid) would underflow to -inf.
    big = nets.bernoulli_log_prob(np.array([100.0, -100.0], np.float32),
                                  np.array([0.0, 1.0], np.float32))
    np.testing.assert_allclose(big, [-100.0, -100.0], rtol=1e-5)


def test_resolve_conv_impl():
    assert nets.resolve_conv_impl("lax") == "lax"
    assert nets.resolve_conv_impl("matmul") == "matmul"
    auto = nets.resolve_conv_impl("auto")
    assert auto == ("matmul" if jax.default_backend() == "cpu" else "lax")


# --- Mixed precision (compute_dtype='bfloat16') ---------------------------------------------

def _dot_and_conv_dtypes(fn, *args) -> set[str]:
    """Operand dtypes of every dot_general / conv in the jaxpr of fn(*args), sub-jaxprs included."""
    return {str(v.aval.dtype) for eqn in jaxpr_eqns(jax.make_jaxpr(fn)(*args).jaxpr)
            if eqn.primitive.name in ("dot_general", "conv_general_dilated") for v in eqn.invars}


@pytest.mark.parametrize("name", ["encoder_matmul", "encoder_lax", "decoder_matmul", "decoder_lax",
                                  "scalar_head", "action_head"])
def test_bfloat16_modules_compute_in_bf16_and_return_float32(name, make_random_params):
    rng = np.random.default_rng(11)
    image = rng.uniform(-0.5, 0.5, (2, 64, 64, 3)).astype(np.float32)
    feat = rng.normal(size=(2, 20)).astype(np.float32)
    make, x = {
        "encoder_matmul": (lambda d: nets.ConvEncoder(2, "matmul", d), image),
        "encoder_lax": (lambda d: nets.ConvEncoder(2, "lax", d), image),
        "decoder_matmul": (lambda d: nets.ConvDecoder(2, "matmul", 3, d), feat),
        "decoder_lax": (lambda d: nets.ConvDecoder(2, "lax", 3, d), feat),
        "scalar_head": (lambda d: nets.ScalarHead(16, 2, d), feat),
        "action_head": (lambda d: nets.ActionHead(3, 16, 2, False, d), feat),
    }[name]
    full, half = make("float32"), make("bfloat16")
    params = make_random_params(full.init, jax.random.key(0), x)
    # Same parameter tree (float32 in both): a run can switch compute types.
    chex.assert_trees_all_equal_shapes_and_dtypes(
        params, jax.eval_shape(half.init, jax.random.key(0), x))
    assert _dot_and_conv_dtypes(full.apply, params, x) == {"float32"}
    assert _dot_and_conv_dtypes(half.apply, params, x) == {"bfloat16"}
    want, got = jax.jit(full.apply)(params, x), jax.jit(half.apply)(params, x)
    assert got.dtype == jnp.float32
    chex.assert_equal_shape([want, got])
    # bfloat16 keeps 8 bits of mantissa: errors of a few 1e-3 relative to the output's scale.
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=0.05 * scale)
    assert not np.array_equal(got, want)  # It really ran in another precision.
