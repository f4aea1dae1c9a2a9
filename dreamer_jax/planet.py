"""Online planning with the cross-entropy method (CEM) on the learned world model, as in PlaNet
(Hafner et al. 2019): the `planet` behavior of Figure 4 (Dreamer's paper, Section 6).

At every agent step, from the current posterior state: sample `candidates` action sequences of
`horizon` steps from a diagonal Normal (clipped to [-1, 1]), roll each out with the transition
model, score it by the sum of predicted rewards, refit the Normal to the `top_k` best, repeat
`iterations` times; act with the first action of the final mean. Jitted; the candidates are a
batch dimension, the horizon a `lax.scan`, the iterations another `lax.scan`.
"""
from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from dreamer_jax import rssm


class PlannerConfig(NamedTuple):
    horizon: int = 12        # PlaNet: 12
    candidates: int = 1000   # PlaNet: 1000
    top_k: int = 100         # PlaNet: 100
    iterations: int = 10     # PlaNet: 10


def rollout_returns(nets, world_params, start: rssm.RSSMState, actions: jax.Array,
                    key: jax.Array) -> jax.Array:
    """Sum of predicted rewards r(s_1..s_H) [C] of action sequences [C, H, A] from `start` [C]."""
    states = rssm.imagine_open_loop(nets.rssm, world_params["rssm"], start, actions, key)
    return nets.reward.apply(world_params["reward"], rssm.feature(states)).sum(1)  # [C, H] -> [C]


def cem(score, key: jax.Array, shape: tuple[int, ...], cfg: PlannerConfig
        ) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy method over action sequences `shape` = (H, A) in [-1, 1].

    `score(actions [C, H, A], key) -> [C]`. Starts from Normal(0, 1); returns the final
    (mean, std) [H, A]."""
    def iteration(dist, k):
        mean, std = dist
        noise_key, score_key = jax.random.split(k)
        eps = jax.random.normal(noise_key, (cfg.candidates,) + shape)
        actions = jnp.clip(mean[None] + std[None] * eps, -1.0, 1.0)
        top, idx = jax.lax.top_k(score(actions, score_key), cfg.top_k)
        elite = actions[idx]
        return (elite.mean(0), elite.std(0)), top.mean()

    init = (jnp.zeros(shape), jnp.ones(shape))
    dist, _ = jax.lax.scan(iteration, init, jax.random.split(key, cfg.iterations))
    return dist


def cem_plan(nets, world_params, start: rssm.RSSMState, key: jax.Array,
             cfg: PlannerConfig) -> jax.Array:
    """The first action [E, A] of the CEM plan from each state of `start` [E, ...]."""
    chex.assert_rank(start.deter, 2)

    def plan_one(state, key):
        many = jax.tree.map(lambda x: jnp.broadcast_to(x, (cfg.candidates,) + x.shape), state)
        score = lambda actions, k: rollout_returns(nets, world_params, many, actions, k)  # noqa: E731
        mean, _ = cem(score, key, (cfg.horizon, nets.spec.action_dim), cfg)
        return mean[0]

    return jax.vmap(plan_one)(start, jax.random.split(key, start.deter.shape[0]))
