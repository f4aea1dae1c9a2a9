"""Tests of `dreamer_jax.rssm`: the Gaussian KL and its free nats, and the RSSM steps/scans.

Replay layouts are batch-major [B, T, ...]; `observe` is checked against a plain Python loop
over `obs_step` (the scan must not change the numbers).
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import rssm

DETER, STOCH, HIDDEN, EMBED, ACTION = 8, 3, 8, 6, 2


def random_gaussian(rng, shape, mean_scale=1.0) -> rssm.RSSMState:
    """An RSSMState whose (mean, std) are random; deter and stoch are irrelevant to the KL."""
    mean = (mean_scale * rng.normal(size=shape)).astype(np.float32)
    std = rng.uniform(0.3, 2.0, size=shape).astype(np.float32)
    zeros = np.zeros(shape[:-1] + (DETER,), np.float32)
    return rssm.RSSMState(zeros, mean, mean, std)


def kl_reference(post, prior):
    """KL(N(m1, s1^2) || N(m2, s2^2)) summed over the last axis:
    log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2 per dimension."""
    m1, s1 = np.asarray(post.mean, np.float64), np.asarray(post.std, np.float64)
    m2, s2 = np.asarray(prior.mean, np.float64), np.asarray(prior.std, np.float64)
    return np.sum(np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5, axis=-1)


def test_gaussian_kl_closed_form():
    rng = np.random.default_rng(0)
    post, prior = random_gaussian(rng, (4, 5, STOCH)), random_gaussian(rng, (4, 5, STOCH))
    kl = jax.jit(rssm.gaussian_kl)(post, prior)
    chex.assert_shape(kl, (4, 5))
    np.testing.assert_allclose(kl, kl_reference(post, prior), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(kl) >= 0)
    np.testing.assert_allclose(rssm.gaussian_kl(post, post), 0.0, atol=1e-6)


def test_gaussian_kl_monte_carlo():
    rng = np.random.default_rng(1)
    post, prior = random_gaussian(rng, (2, STOCH)), random_gaussian(rng, (2, STOCH))
    m1, s1 = np.asarray(post.mean, np.float64), np.asarray(post.std, np.float64)
    m2, s2 = np.asarray(prior.mean, np.float64), np.asarray(prior.std, np.float64)
    x = m1 + s1 * rng.normal(size=(200_000,) + m1.shape)

    def log_normal(x, m, s):
        return np.sum(-0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi), axis=-1)

    estimate = np.mean(log_normal(x, m1, s1) - log_normal(x, m2, s2), axis=0)
    np.testing.assert_allclose(rssm.gaussian_kl(post, prior), estimate, rtol=0.05, atol=0.05)


def test_kl_loss_value_is_clipped_mean():
    rng = np.random.default_rng(2)
    post, prior = random_gaussian(rng, (3, 4, STOCH)), random_gaussian(rng, (3, 4, STOCH))
    mean_kl = kl_reference(post, prior).mean()
    for free_nats in (0.0, mean_kl - 0.5, mean_kl + 0.5):
        loss, kl = rssm.kl_loss(post, prior, free_nats=free_nats)
        chex.assert_shape([loss, kl], ())
        np.testing.assert_allclose(kl, mean_kl, rtol=1e-5)
        np.testing.assert_allclose(loss, max(mean_kl, free_nats), rtol=1e-5)


def kl_loss_grads(post, prior, free_nats):
    def loss(post_mean, post_std, prior_mean, prior_std):
        return rssm.kl_loss(post._replace(mean=post_mean, std=post_std),
                            prior._replace(mean=prior_mean, std=prior_std),
                            free_nats=free_nats)[0]
    return jax.grad(loss, argnums=(0, 1, 2, 3))(post.mean, post.std, prior.mean, prior.std)


def test_kl_loss_no_gradient_below_free_nats():
    rng = np.random.default_rng(3)
    prior = random_gaussian(rng, (3, 4, STOCH))
    # A posterior close to the prior: the mean KL is far below 3 nats.
    post = prior._replace(mean=prior.mean + 0.05, std=prior.std * 1.05)
    assert kl_reference(post, prior).mean() < 0.5
    for grad in kl_loss_grads(post, prior, free_nats=3.0):
        np.testing.assert_array_equal(grad, 0.0)


def test_kl_loss_gradient_above_free_nats():
    rng = np.random.default_rng(4)
    post, prior = random_gaussian(rng, (3, 4, STOCH)), random_gaussian(rng, (3, 4, STOCH), 3.0)
    mean_kl = kl_reference(post, prior).mean()
    assert mean_kl > 1.0
    got = kl_loss_grads(post, prior, free_nats=mean_kl - 1.0)
    # Above the free nats the loss is the mean KL itself. NumPy gradient of the closed form,
    # divided by the number of (batch, time) entries the mean runs over:
    m1, s1 = np.asarray(post.mean, np.float64), np.asarray(post.std, np.float64)
    m2, s2 = np.asarray(prior.mean, np.float64), np.asarray(prior.std, np.float64)
    count = m1.size / m1.shape[-1]
    want = (
        (m1 - m2) / s2 ** 2 / count,                          # d/d m1
        (-1 / s1 + s1 / s2 ** 2) / count,                     # d/d s1
        -(m1 - m2) / s2 ** 2 / count,                         # d/d m2
        (1 / s2 - (s1 ** 2 + (m1 - m2) ** 2) / s2 ** 3) / count,  # d/d s2
    )
    for g, w in zip(got, want):
        assert np.any(np.asarray(g) != 0)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


# --- The model ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def core_and_params():
    core = rssm.RSSMCore(DETER, STOCH, HIDDEN, min_std=0.1)
    params = jax.jit(core.init)(jax.random.key(0), jnp.zeros((1, DETER)), jnp.zeros((1, STOCH)),
                                jnp.zeros((1, ACTION)), jnp.zeros((1, EMBED)))
    return core, params


def random_sequence(seed, batch=3, steps=5):
    rng = np.random.default_rng(seed)
    embed = rng.normal(size=(batch, steps, EMBED)).astype(np.float32)
    action = rng.uniform(-1, 1, size=(batch, steps, ACTION)).astype(np.float32)
    return embed, action


def random_start(seed, batch=3):
    rng = np.random.default_rng(seed)
    return rssm.RSSMState(
        rng.normal(size=(batch, DETER)).astype(np.float32),
        rng.normal(size=(batch, STOCH)).astype(np.float32),
        rng.normal(size=(batch, STOCH)).astype(np.float32),
        rng.uniform(0.5, 1.5, size=(batch, STOCH)).astype(np.float32))


def test_observe_shapes(core_and_params):
    core, params = core_and_params
    embed, action = random_sequence(5, batch=3, steps=5)
    post, prior = jax.jit(functools.partial(rssm.observe, core))(
        params, embed, action, jax.random.key(1))
    for state in (post, prior):
        chex.assert_shape(state.deter, (3, 5, DETER))
        chex.assert_shape([state.stoch, state.mean, state.std], (3, 5, STOCH))
        chex.assert_tree_all_finite(state)
        assert np.all(np.asarray(state.std) >= 0.1)
    # The posterior and prior of step t share the deterministic state h_t.
    np.testing.assert_array_equal(post.deter, prior.deter)


@pytest.mark.parametrize("with_start", [False, True])
def test_observe_equals_python_loop_over_obs_step(core_and_params, with_start):
    core, params = core_and_params
    batch, steps = 3, 5
    embed, action = random_sequence(6, batch, steps)
    key = jax.random.key(2)
    start = random_start(7, batch) if with_start else None
    post, prior = jax.jit(functools.partial(rssm.observe, core))(
        params, embed, action, key, start)

    # observe draws one key per time step with jax.random.split(key, T).
    keys = jax.random.split(key, steps)
    state = start if with_start else rssm.initial_state(
        (batch,), deter_size=DETER, stoch_size=STOCH)
    step = jax.jit(functools.partial(rssm.obs_step, core))
    posts, priors = [], []
    for t in range(steps):
        state, pri = step(params, state, action[:, t], embed[:, t], keys[t])
        posts.append(state)
        priors.append(pri)
    stack = lambda states: jax.tree.map(lambda *xs: np.stack(xs, 1), *states)  # noqa: E731
    for got, want in ((post, stack(posts)), (prior, stack(priors))):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_obs_step_posterior_uses_observation(core_and_params):
    core, params = core_and_params
    start = random_start(8)
    embed, action = random_sequence(9)
    step = jax.jit(functools.partial(rssm.obs_step, core))
    key = jax.random.key(3)
    post_a, prior_a = step(params, start, action[:, 0], embed[:, 0], key)
    post_b, prior_b = step(params, start, action[:, 0], embed[:, 1], key)
    # The prior ignores the observation; the posterior does not.
    for a, b in zip(prior_a, prior_b):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(post_a.mean, post_b.mean)
    # obs_step = the prior of img_step (first half of its key), then a reparameterized posterior
    # sample around the new observation (second half of its key).
    prior_key, post_key = jax.random.split(key)
    prior = jax.jit(functools.partial(rssm.img_step, core))(params, start, action[:, 0], prior_key)
    for a, b in zip(prior_a, prior):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    eps = jax.random.normal(post_key, post_a.mean.shape)
    np.testing.assert_allclose(post_a.stoch, post_a.mean + post_a.std * eps, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(post_a.deter, prior_a.deter)


def test_img_step_deterministic_given_key(core_and_params):
    core, params = core_and_params
    start = random_start(10)
    action = np.random.default_rng(11).uniform(-1, 1, size=(3, ACTION)).astype(np.float32)
    step = jax.jit(functools.partial(rssm.img_step, core))
    a = step(params, start, action, jax.random.key(4))
    b = step(params, start, action, jax.random.key(4))
    c = step(params, start, action, jax.random.key(5))
    chex.assert_shape(a.deter, (3, DETER))
    chex.assert_shape([a.stoch, a.mean, a.std], (3, STOCH))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # Another key changes only the sample, and the sample is mean + std * eps (reparameterized).
    np.testing.assert_array_equal(a.deter, c.deter)
    np.testing.assert_array_equal(a.mean, c.mean)
    assert not np.allclose(a.stoch, c.stoch)
    eps = jax.random.normal(jax.random.key(4), a.mean.shape)
    np.testing.assert_allclose(a.stoch, a.mean + a.std * eps, rtol=1e-5, atol=1e-6)


def test_imagine_open_loop_shapes_and_loop(core_and_params):
    core, params = core_and_params
    start = random_start(12)
    _, action = random_sequence(13, steps=4)
    key = jax.random.key(6)
    states = jax.jit(functools.partial(rssm.imagine_open_loop, core))(params, start, action, key)
    chex.assert_shape(states.deter, (3, 4, DETER))
    chex.assert_shape([states.stoch, states.mean, states.std], (3, 4, STOCH))
    step = jax.jit(functools.partial(rssm.img_step, core))
    state = start
    for t, k in enumerate(jax.random.split(key, 4)):
        state = step(params, state, action[:, t], k)
        for g, w in zip(states, state):
            np.testing.assert_allclose(g[:, t], w, rtol=1e-5, atol=1e-6)
