"""Shared test setup: strict JAX numerics, fast compiles and tiny configurations.

Every test runs with `jax_numpy_rank_promotion='raise'` (implicit broadcasting of arrays of
different ranks is an error, so layout mistakes cannot hide) and in float32 (x64 off), the
precision the agent trains in.

Almost all of the suite's time is XLA compilation of tiny programs, so the test process compiles
with LLVM optimization level 0 (`--xla_backend_optimization_level=0`): about 2.5x faster on
XLA:CPU, same numbers within the tests' tolerances. Set DREAMER_TEST_FULL_OPT=1 to compile as
training does. The flag is set only while XLA starts up, so subprocesses (CLI tests) do not
inherit it.

The subprocesses that the CLI tests start share a persistent XLA compilation cache (a fresh
temporary directory per session, removed at exit): many of them run `dreamer_jax.train` with the
same small configuration, and each would otherwise compile the same programs again (a 400-step
pixel run: 107 s cold, 28 s with the cache, on one core). A cache entry is the executable XLA
would build, so no number changes. Reads and writes take a file lock (`filelock`), as some tests
run processes side by side. The test process itself does not use the cache: it compiles with
other XLA flags (above), which jax's cache key would not tell apart. DREAMER_TEST_NO_CACHE=1
turns the cache off.

The suite runs one pytest-xdist worker per core (`-n logical` in pyproject.toml; `-n 0` runs it
in one process): one process leaves much of a second core idle (tracing, Python, environments
and small programs run on one thread; XLA spreads only part of its compiling over threads).
2 cores: 19 min 0 s in one process, 13 min 40 s in two workers (session 24). The workers
inherit the first process's cache directory (DREAMER_TEST_XLA_CACHE), so all of the session's
subprocesses share one cache.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)


def _start_xla_with_fast_compiles() -> None:
    saved = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{saved or ''} --xla_backend_optimization_level=0"
    try:
        jax.jit(lambda x: x + 1)(0)  # XLA reads XLA_FLAGS once, at its first compilation.
    finally:
        if saved is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = saved


if not os.environ.get("DREAMER_TEST_FULL_OPT"):
    _start_xla_with_fast_compiles()


def _share_a_compilation_cache_with_subprocesses() -> None:
    cache = os.environ.get("DREAMER_TEST_XLA_CACHE")
    if not cache:  # The first process of the session (pytest-xdist's workers inherit it).
        cache = tempfile.mkdtemp(prefix="dreamer_jax_tests_xla_cache_")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["DREAMER_TEST_XLA_CACHE"] = cache
    # jax reads these at import, so they reach the subprocesses' jax and not this process's:
    # this process compiles with other XLA flags, and jax's cache key does not see them.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(8 << 30)  # Turns on jax's file lock.


if not os.environ.get("DREAMER_TEST_NO_CACHE"):
    _share_a_compilation_cache_with_subprocesses()

from dreamer_jax import agent, config  # noqa: E402  (after the JAX flags above)

# The three kinds of environment the agent supports.
ENV_SPECS = {
    "image": agent.EnvSpec((64, 64, 3), "uint8", 2),
    "state": agent.EnvSpec((5,), "float32", 2),
    "discrete": agent.EnvSpec((5,), "float32", 3, discrete=True),
}


def jaxpr_eqns(jaxpr):
    """Every equation of a jaxpr, those of its sub-jaxprs (jit, scan, cond bodies) included."""
    import jax.extend.core

    for eqn in jaxpr.eqns:
        yield eqn
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from jaxpr_eqns(sub)


def tiny_config(**overrides) -> config.Config:
    """The `debug` preset (tiny networks) with `overrides`; validated like any config."""
    return config.make_config("debug", **overrides)


@pytest.fixture(scope="session")
def make_tiny_config():
    """Factory fixture: `make_tiny_config(horizon=3, ...)` -> a debug-preset Config."""
    return tiny_config


def random_batch(spec: agent.EnvSpec, batch_size: int, seq_len: int, seed: int = 0) -> dict:
    """A replay batch [B, T, ...] of random data laid out as `agent` documents it."""
    rng = np.random.default_rng(seed)
    shape = (batch_size, seq_len)
    if spec.is_image:
        obs = rng.integers(0, 256, shape + spec.obs_shape, dtype=np.uint8)
    else:
        obs = rng.normal(size=shape + spec.obs_shape).astype(np.float32)
    if spec.discrete:
        action = np.eye(spec.action_dim, dtype=np.float32)[
            rng.integers(0, spec.action_dim, shape)]
    else:
        action = rng.uniform(-1, 1, shape + (spec.action_dim,)).astype(np.float32)
    action[:, 0] = 0.0  # The action before an episode's first observation is zero.
    return {
        "obs": obs,
        "action": action,
        "reward": rng.normal(size=shape).astype(np.float32),
        "discount": (rng.uniform(size=shape) > 0.1).astype(np.float32),
    }


@pytest.fixture(scope="session")
def make_random_batch():
    """Factory fixture: `make_random_batch(spec, B, T, seed)` -> a random replay batch."""
    return random_batch


@pytest.fixture(scope="session")
def env_specs():
    """{'image', 'state', 'discrete'} -> EnvSpec: 64x64x3 pixels, a 5-dim state vector (both
    with 2 continuous action dims) and a 5-dim state vector with 3 discrete actions."""
    return ENV_SPECS


def random_params(init_fn, *args, seed: int = 0):
    """Parameters shaped like `init_fn(*args)` would make them, drawn with NumPy.

    Kernels ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2). Only shapes are traced (`jax.eval_shape`),
    which avoids compiling the initializers: tests need random parameters, not Glorot ones.
    """
    rng = np.random.default_rng(seed)

    def draw(leaf):
        if len(leaf.shape) >= 2:
            scale = 1.0 / np.sqrt(np.prod(leaf.shape[:-1]))
        else:
            scale = 0.1
        return (scale * rng.normal(size=leaf.shape)).astype(leaf.dtype)

    return jax.tree.map(draw, jax.eval_shape(lambda: init_fn(*args)))


@pytest.fixture(scope="session")
def make_random_params():
    """Factory fixture: `make_random_params(module.init, key, *inputs, seed=0)`."""
    return random_params
