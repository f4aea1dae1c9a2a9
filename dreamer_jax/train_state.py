"""Training state (three parameter sets, three optax Adam states, key, counter) and the one
jitted update that trains world model, action model and value model together (Algorithm 1).

All three losses are computed from the parameters before the update, as in the paper's code.
Replay batches are [B, T, ...] (see `agent`); imagination starts from all B*T posteriors.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from dreamer_jax import agent, imagine, rssm
from dreamer_jax.config import Config

PARTS = ("world", "actor", "value")


class TrainState(flax.struct.PyTreeNode):
    params: dict        # {'world', 'actor', 'value'}
    opt_state: dict     # same keys, optax Adam states
    key: jax.Array      # PRNG key of the updates
    step: jax.Array     # int32, updates done


def make_optimizers(config: Config) -> dict[str, optax.GradientTransformation]:
    """Adam with gradient norms above `grad_clip` scaled down (Appendix A)."""
    lrs = {"world": config.model_lr, "actor": config.actor_lr, "value": config.value_lr}
    return {part: optax.chain(optax.clip_by_global_norm(config.grad_clip),
                              optax.adam(lrs[part], eps=config.adam_eps))
            for part in PARTS}


def init_train_state(nets: agent.Nets, optimizers, key: jax.Array) -> TrainState:
    param_key, state_key = jax.random.split(key)
    params = agent.init_params(nets, param_key)
    opt_state = {part: optimizers[part].init(params[part]) for part in PARTS}
    return TrainState(params, opt_state, state_key, jnp.zeros((), jnp.int32))


class LossConfig(NamedTuple):
    """The scalar hyper parameters the losses need (hashable, static under jit)."""
    free_nats: float
    kl_scale: float
    pcont_scale: float
    discount: float
    lambda_: float
    horizon: int

    @classmethod
    def from_config(cls, config: Config) -> "LossConfig":
        return cls(config.free_nats, config.kl_scale, config.pcont_scale, config.discount,
                   config.lambda_, config.horizon)


def compute_grads(nets: agent.Nets, loss_cfg: LossConfig, params: dict, batch: dict,
                  key: jax.Array) -> tuple[dict, dict]:
    """Gradients of the three losses, each with respect to its own parameters only."""
    wm_key, imag_key = jax.random.split(key)

    # World model.
    wm_fn = lambda wp: agent.world_model_loss(  # noqa: E731
        nets, wp, batch, wm_key, free_nats=loss_cfg.free_nats, kl_scale=loss_cfg.kl_scale,
        pcont_scale=loss_cfg.pcont_scale, discount=loss_cfg.discount)
    (_, wm_out), wm_grads = jax.value_and_grad(wm_fn, has_aux=True)(params["world"])

    # Imagination: start from every posterior state, world model fixed.
    start = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), wm_out.post)
    actor_fn = lambda ap: imagine.actor_loss(  # noqa: E731
        nets, params["world"], ap, params["value"], start, imag_key, horizon=loss_cfg.horizon,
        discount=loss_cfg.discount, lambda_=loss_cfg.lambda_)
    (a_loss, beh), actor_grads = jax.value_and_grad(actor_fn, has_aux=True)(params["actor"])

    # Value model.
    v_loss, value_grads = jax.value_and_grad(imagine.value_loss, argnums=1)(
        nets, params["value"], beh.feat, beh.returns, beh.weights)

    metrics = dict(wm_out.metrics)
    metrics.update(
        actor_loss=a_loss, value_loss=v_loss, imag_return=jnp.mean(beh.returns),
        imag_reward=jnp.mean(beh.reward), imag_value=jnp.mean(beh.value),
        prior_std=jnp.mean(wm_out.prior.std), post_std=jnp.mean(wm_out.post.std))
    grads = {"world": wm_grads, "actor": actor_grads, "value": value_grads}
    return grads, metrics


def make_train_step(nets: agent.Nets, optimizers, loss_cfg: LossConfig
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The jitted `train_step(state, batch) -> (state, metrics)`; `state` is donated."""

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        key, step_key = jax.random.split(state.key)
        grads, metrics = compute_grads(nets, loss_cfg, state.params, batch, step_key)
        params, opt_state = {}, {}
        for part in PARTS:
            updates, opt_state[part] = optimizers[part].update(
                grads[part], state.opt_state[part], state.params[part])
            params[part] = optax.apply_updates(state.params[part], updates)
            metrics[f"{part}_grad_norm"] = optax.global_norm(grads[part])
        new_state = TrainState(params, opt_state, key, state.step + 1)
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0)


def make_policy(nets: agent.Nets) -> Callable:
    """The jitted `policy(params, carry, obs, key, noise, sample) -> (carry, action)`."""
    return jax.jit(lambda params, carry, obs, key, noise, sample: agent.policy_step(
        nets, params, carry, obs, key, noise, sample))


def observe_posteriors(nets: agent.Nets, world_params, batch: dict, key: jax.Array) -> rssm.RSSMState:
    """Posterior states [B, T, ...] of a replay batch (for reports and notebooks)."""
    embed = nets.encoder.apply(world_params["encoder"], agent.preprocess(batch["obs"]))
    post, _ = rssm.observe(nets.rssm, world_params["rssm"], embed, batch["action"], key)
    return post
