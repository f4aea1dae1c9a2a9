"""The observation term of the representation objectives of Section 4 (eq. 10-12).

- reconstruction (eq. 10): ln q(o_t | s_t) under a unit-variance Normal image model (in `agent`);
- contrastive (eq. 12): J_S = ln q(s_t | o_t) - ln sum_{o'} q(s_t | o'), o' over the observations
  of the current sequence batch (the InfoNCE bound of Appendix B, eq. 15);
- reward: no observation term.
"""
from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

def pairwise_gaussian_log_prob(x: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """[N, M]: ln N(x_i; mean_j, diag(std_j^2)) for x [N, F] and mean, std [M, F].

    Expanded into matmuls, sum_f (x_if - m_jf)^2 / s_jf^2 = x^2 @ w^T - 2 x @ (m w)^T + sum_f m^2 w
    with w = 1 / std^2, so N x M x F is never materialized.
    """
    chex.assert_rank([x, mean, std], 2)
    chex.assert_equal_shape([mean, std])
    hi = jax.lax.Precision.HIGHEST
    w = 1.0 / jnp.square(std)
    mahal = (jnp.matmul(jnp.square(x), w.T, precision=hi)
             - 2.0 * jnp.matmul(x, (mean * w).T, precision=hi)
             + jnp.sum(jnp.square(mean) * w, axis=-1)[None, :])
    log_norm = -jnp.sum(jnp.log(std), axis=-1)[None, :] - 0.5 * x.shape[-1] * math.log(2 * math.pi)
    return -0.5 * mahal + log_norm


def contrastive_term(feat: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """J_S^t of eq. 12 for every state [N]: feat [N, F] are the model states s_t, (mean, std)
    [N, F] the state model q(s | o) of the same N observations; row i's positive is o_i and the
    other N - 1 observations of the batch are its negatives."""
    chex.assert_equal_shape([feat, mean, std])
    log_q = pairwise_gaussian_log_prob(feat, mean, std)  # [N states, N observations]
    return jnp.diagonal(log_q) - jax.nn.logsumexp(log_q, axis=-1)
