"""Recurrent state-space model (RSSM, Hafner et al. 2018) as pure one-step functions.

Model state s_t = (h_t deterministic GRU state, z_t stochastic sample of a diagonal Gaussian):
  transition (prior)        p(s_t | s_{t-1}, a_{t-1})       -> `img_step`
  representation (posterior) p(s_t | s_{t-1}, a_{t-1}, o_t) -> `obs_step`
`observe` scans `obs_step` over a sequence. Replay layouts are batch-major [B, T, ...]:
`action[:, t]` is the action that led to observation t, so `obs_step` at t consumes
(s_{t-1}, action[:, t], embed[:, t]).
"""
from __future__ import annotations

from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax.nets import GLOROT, Dense


class RSSMState(NamedTuple):
    """One model state per batch element; every field has leading batch dims [...]."""
    deter: jax.Array  # [..., deter_size] GRU state h_t
    stoch: jax.Array  # [..., stoch_size] sample z_t
    mean: jax.Array   # [..., stoch_size]
    std: jax.Array    # [..., stoch_size]


def initial_state(batch_shape: tuple[int, ...], *, deter_size: int, stoch_size: int) -> RSSMState:
    zeros = lambda n: jnp.zeros(batch_shape + (n,), jnp.float32)  # noqa: E731
    return RSSMState(zeros(deter_size), zeros(stoch_size), zeros(stoch_size), zeros(stoch_size))


def feature(state: RSSMState) -> jax.Array:
    """[..., stoch + deter]: the input of every head (decoder, reward, value, actor)."""
    return jnp.concatenate([state.stoch, state.deter], axis=-1)


class RSSMCore(nn.Module):
    """The learned layers. `img` is the transition, `obs` the representation model."""
    deter_size: int
    stoch_size: int
    hidden_size: int
    min_std: float

    def setup(self):
        self.img_in = Dense(self.hidden_size)
        # Keras' GRUCell (the paper's code): Glorot-uniform input kernels, orthogonal recurrent ones.
        self.gru = nn.GRUCell(self.deter_size, kernel_init=GLOROT)
        self.img_out = Dense(self.hidden_size)
        self.img_stats = Dense(2 * self.stoch_size)
        self.obs_out = Dense(self.hidden_size)
        self.obs_stats = Dense(2 * self.stoch_size)

    def _stats(self, layer, x):
        mean, std = jnp.split(layer(x), 2, axis=-1)
        return mean, jax.nn.softplus(std) + self.min_std

    def img(self, prev_deter, prev_stoch, prev_action):
        """-> (deter, prior mean, prior std)."""
        x = nn.elu(self.img_in(jnp.concatenate([prev_stoch, prev_action], -1)))
        deter, _ = self.gru(prev_deter, x)
        mean, std = self._stats(self.img_stats, nn.elu(self.img_out(deter)))
        return deter, mean, std

    def obs(self, deter, embed):
        """-> (posterior mean, posterior std)."""
        x = nn.elu(self.obs_out(jnp.concatenate([deter, embed], -1)))
        return self._stats(self.obs_stats, x)

    def __call__(self, prev_deter, prev_stoch, prev_action, embed):
        """Used only to initialize all parameters."""
        deter, _, _ = self.img(prev_deter, prev_stoch, prev_action)
        return self.obs(deter, embed)


def img_step(core: RSSMCore, params, prev: RSSMState, prev_action: jax.Array,
             key: jax.Array) -> RSSMState:
    """Prior s_t ~ p(s_t | s_{t-1}, a_{t-1}); reparameterized sample."""
    deter, mean, std = core.apply(params, prev.deter, prev.stoch, prev_action, method=RSSMCore.img)
    stoch = mean + std * jax.random.normal(key, mean.shape, mean.dtype)
    return RSSMState(deter, stoch, mean, std)


def obs_step(core: RSSMCore, params, prev: RSSMState, prev_action: jax.Array, embed: jax.Array,
             key: jax.Array) -> tuple[RSSMState, RSSMState]:
    """-> (posterior, prior) of s_t given s_{t-1}, a_{t-1} and the embedding of o_t."""
    prior_key, post_key = jax.random.split(key)
    prior = img_step(core, params, prev, prev_action, prior_key)
    mean, std = core.apply(params, prior.deter, embed, method=RSSMCore.obs)
    stoch = mean + std * jax.random.normal(post_key, mean.shape, mean.dtype)
    return RSSMState(prior.deter, stoch, mean, std), prior


def observe(core: RSSMCore, params, embed: jax.Array, action: jax.Array, key: jax.Array,
            start: RSSMState | None = None, unroll: int = 1) -> tuple[RSSMState, RSSMState]:
    """Posterior and prior states [B, T, ...] for embeddings [B, T, E] and actions [B, T, A].
    `unroll` steps run per loop iteration of the scan (same numbers)."""
    chex.assert_rank([embed, action], 3)
    chex.assert_equal_shape_prefix([embed, action], 2)
    batch, steps = embed.shape[:2]
    if start is None:
        start = initial_state((batch,), deter_size=core.deter_size, stoch_size=core.stoch_size)

    def step(prev, inputs):
        act, emb, k = inputs
        post, prior = obs_step(core, params, prev, act, emb, k)
        return post, (post, prior)

    keys = jax.random.split(key, steps)
    time_major = (jnp.swapaxes(action, 0, 1), jnp.swapaxes(embed, 0, 1), keys)
    _, (post, prior) = jax.lax.scan(step, start, time_major, unroll=unroll)
    to_batch_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    return jax.tree.map(to_batch_major, post), jax.tree.map(to_batch_major, prior)


def imagine_open_loop(core: RSSMCore, params, start: RSSMState, action: jax.Array,
                      key: jax.Array) -> RSSMState:
    """Priors [B, T, ...] from `start` [B] under given actions [B, T, A] (open-loop prediction)."""
    def step(prev, inputs):
        act, k = inputs
        state = img_step(core, params, prev, act, k)
        return state, state

    keys = jax.random.split(key, action.shape[1])
    _, states = jax.lax.scan(step, start, (jnp.swapaxes(action, 0, 1), keys))
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), states)


def gaussian_kl(post: RSSMState, prior: RSSMState) -> jax.Array:
    """KL(post || prior) of diagonal Gaussians, summed over the latent dims -> [...]."""
    var_ratio = jnp.square(post.std / prior.std)
    mahal = jnp.square((post.mean - prior.mean) / prior.std)
    return 0.5 * jnp.sum(var_ratio + mahal - 1.0 - jnp.log(var_ratio), axis=-1)


def kl_loss(post: RSSMState, prior: RSSMState, *, free_nats: float) -> tuple[jax.Array, jax.Array]:
    """-> (max(mean KL, free_nats), mean KL). The mean over batch and time is clipped, as in
    PlaNet and the paper's code: below `free_nats` the KL term carries no gradient."""
    kl = jnp.mean(gaussian_kl(post, prior))
    return jnp.maximum(kl, free_nats), kl
