"""Latent imagination and the behavior losses (paper Section 3, eq. 4-8). Pure, un-jitted.

Layout: imagined trajectories are time-major, `[H+1, N, ...]` for states s_0..s_H (s_0 is a
posterior state of the replay batch, N = B*T starts) and `[H, N, ...]` for actions a_0..a_{H-1},
which is what `jax.lax.scan` emits. Callers (the train step, notebooks) jit these functions.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from dreamer_jax import rssm
from dreamer_jax.agent import Nets, action_dist, heads


class Imagined(NamedTuple):
    states: rssm.RSSMState   # [H+1, N, ...] s_0..s_H
    actions: jax.Array       # [H, N, A] a_0..a_{H-1}, a_tau ~ q(a | s_tau)
    feat: jax.Array          # [H+1, N, F]
    entropy: jax.Array       # [H, N] entropy of a discrete q(a | s_tau); zeros for continuous
                             # actions (the tanh-Normal has no closed form, and no loss uses it)


def imagine(nets: Nets, world_params, actor_params, start: rssm.RSSMState, key: jax.Array, *,
            horizon: int) -> Imagined:
    """Roll the action model forward `horizon` steps in latent space from every `start` state.

    `start` has one leading batch axis [N] (flatten [B, T] first) and is held fixed: no
    gradient flows into it. Gradients reach `actor_params` through the sampled actions and
    the (fixed) learned dynamics: the paper's analytic value gradients (eq. 7).
    """
    check_imagine_inputs(nets, start, key, horizon)
    start = jax.tree.map(jax.lax.stop_gradient, start)

    def step(state, k):
        act_key, img_key = jax.random.split(k)
        # Actions see a stop-gradient feature, as in the paper's code: the actor's gradient goes
        # through the action's effect on the next state, not through its own input.
        feat = jax.lax.stop_gradient(rssm.feature(state))
        dist = action_dist(nets, actor_params, feat)
        action = dist.sample(seed=act_key)
        entropy = (dist.entropy() if nets.spec.discrete
                   else jnp.zeros(action.shape[:-1], action.dtype))
        next_state = rssm.img_step(nets.rssm, world_params["rssm"], state, action, img_key)
        return next_state, (next_state, action, entropy)

    _, (states, actions, entropy) = jax.lax.scan(step, start, jax.random.split(key, horizon),
                                                 unroll=nets.scan_unroll)
    states = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s], 0), start, states)
    return Imagined(states, actions, rssm.feature(states), entropy)


def check_imagine_inputs(nets: Nets, start: rssm.RSSMState, key, horizon) -> None:
    """One-line ValueErrors for what a notebook plausibly gets wrong (static: shapes, types),
    instead of an error from deep inside the scan."""
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise ValueError(f"horizon={horizon!r} must be a positive integer (the paper: 15)")
    if not isinstance(start, rssm.RSSMState):
        raise ValueError(f"start must be an rssm.RSSMState, got {type(start).__name__}")
    sizes = {"deter": nets.rssm.deter_size, "stoch": nets.rssm.stoch_size,
             "mean": nets.rssm.stoch_size, "std": nets.rssm.stoch_size}
    shapes = {name: tuple(getattr(start, name).shape) for name in sizes}
    n = shapes["deter"][0] if shapes["deter"] else None
    if any(len(shape) != 2 or shape != (n, sizes[name]) for name, shape in shapes.items()):
        want = ", ".join(f"{name} [N, {size}]" for name, size in sizes.items())
        got = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"start must have one batch axis: {want}; got {got} (flatten posteriors "
                         f"[B, T, ...] first: jax.tree.map(lambda x: x.reshape((-1,) + "
                         f"x.shape[2:]), post))")
    typed = hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    raw = hasattr(key, "dtype") and key.dtype == jnp.uint32 and tuple(key.shape) == (2,)
    if not ((typed and key.shape == ()) or raw):
        got = (f"{key.dtype}{list(key.shape)}" if hasattr(key, "dtype")
               else type(key).__name__)
        raise ValueError(f"key must be one PRNG key (jax.random.key(0) or "
                         f"jax.random.PRNGKey(0)), got {got}")


def lambda_returns(reward: jax.Array, value: jax.Array, discount: jax.Array | float, *,
                   lambda_: float) -> jax.Array:
    """V_lambda(s_0..s_{H-1}) [H, N] of eq. 6 from reward, value [H+1, N] of states s_0..s_H.

    reward[t] and discount[t] are predicted from state s_t; discount may be a scalar gamma or
    [H+1, N] (predicted discounts). The estimate bootstraps with value[H] = v(s_H). Computed
    with the equivalent recursion V[t] = r[t] + d[t] ((1 - lambda) v[t+1] + lambda V[t+1]),
    V[H] = v[H]; tests check it against the weighted average of k-step returns of eq. 6.
    """
    chex.assert_rank([reward, value], 2)
    chex.assert_equal_shape([reward, value])
    discount = jnp.broadcast_to(jnp.asarray(discount, reward.dtype), reward.shape)

    def step(next_return, inputs):
        r, d, v_next = inputs
        ret = r + d * ((1 - lambda_) * v_next + lambda_ * next_return)
        return ret, ret

    inputs = (reward[:-1], discount[:-1], value[1:])
    _, returns = jax.lax.scan(step, value[-1], inputs, reverse=True)
    chex.assert_shape(returns, (reward.shape[0] - 1, reward.shape[1]))
    return returns


def nstep_returns(reward: jax.Array, value: jax.Array, discount: jax.Array | float, *,
                  k: int) -> jax.Array:
    """V_N^k(s_0..s_{H-1}) [H, N] of eq. 5 from reward, value [H+1, N] of states s_0..s_H.

    k rewards (fewer near the horizon: h = min(tau + k, H)), then the value of s_h; the discount
    before step n is the product of the discounts of s_tau..s_{n-1}, as in `lambda_returns`.
    """
    chex.assert_rank([reward, value], 2)
    chex.assert_equal_shape([reward, value])
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    horizon = reward.shape[0] - 1
    discount = jnp.broadcast_to(jnp.asarray(discount, reward.dtype), reward.shape)
    # Pad past the horizon with reward 0, discount 1 and value v(s_H): V_N^k of a state closer
    # than k steps to the horizon then bootstraps from v(s_H), which is h = min(tau + k, H).
    pad = lambda x, fill: jnp.concatenate([x, jnp.broadcast_to(fill, (k,) + x.shape[1:])])  # noqa: E731
    r = pad(reward[:-1], 0.0)
    d = pad(discount[:-1], 1.0)
    v = pad(value, value[-1])
    ret = jnp.zeros_like(reward[:-1])
    scale = jnp.ones_like(reward[:-1])
    for j in range(k):
        ret = ret + scale * r[j:j + horizon]
        scale = scale * d[j:j + horizon]
    ret = ret + scale * v[k:k + horizon]
    chex.assert_shape(ret, (horizon, reward.shape[1]))
    return ret


def reward_sums(reward: jax.Array) -> jax.Array:
    """V_R(s_0..s_{H-1}) [H, N] of eq. 4: the imagined rewards from s_tau up to s_H, no value."""
    chex.assert_rank(reward, 2)
    return jnp.cumsum(reward[::-1], axis=0)[::-1][:-1]


ESTIMATES = ("lambda", "nstep", "reward")


def value_estimate(reward: jax.Array, value: jax.Array, discount: jax.Array | float, *,
                   estimate: str, lambda_: float, k: int) -> jax.Array:
    """The behavior targets [H, N]: 'lambda' V_lambda (eq. 6, Dreamer), 'nstep' V_N^k (eq. 5),
    'reward' V_R (eq. 4, the action-only ablation without a value model)."""
    if estimate == "lambda":
        return lambda_returns(reward, value, discount, lambda_=lambda_)
    if estimate == "nstep":
        return nstep_returns(reward, value, discount, k=k)
    if estimate == "reward":
        return reward_sums(reward)
    raise ValueError(f"estimate={estimate!r}; choose one of {', '.join(ESTIMATES)}")


class BehaviorOut(NamedTuple):
    returns: jax.Array   # [H, N] value estimates (V_lambda by default), the actor's objective
    weights: jax.Array   # [H, N] loss weights (cumulative predicted discount, or ones)
    feat: jax.Array      # [H+1, N, F]
    reward: jax.Array    # [H+1, N]
    value: jax.Array     # [H+1, N]
    entropy: jax.Array   # [H, N] as `Imagined.entropy`


def actor_loss(nets: Nets, world_params, actor_params, value_params, start: rssm.RSSMState,
               key: jax.Array, *, horizon: int, discount: float, lambda_: float,
               estimate: str = "lambda", k: int = 1,
               entropy_scale: float = 0.0) -> tuple[jax.Array, BehaviorOut]:
    """eq. 7: maximize the value estimate of imagined states -> loss = -mean_{tau, N} V(s_tau).

    `estimate` picks V_lambda (default), V_N^k or V_R (see `value_estimate`). With
    `entropy_scale` > 0 (not the paper's; discrete actions) the loss also subtracts that times the
    weighted mean entropy of q(a | s_tau) at the imagined states s_0..s_{H-1}: the distributions
    the actions were sampled from, on stop-gradient features as there."""
    traj = imagine(nets, world_params, actor_params, start, key, horizon=horizon)
    reward, value, disc = heads(nets, world_params, value_params, traj.feat, discount=discount)
    returns = value_estimate(reward, value, disc, estimate=estimate, lambda_=lambda_, k=k)
    if nets.pcont is None:
        weights = jnp.ones_like(returns)
    else:
        # Probability-like weight of reaching s_tau: product of predicted discounts before tau.
        weights = jnp.cumprod(jnp.concatenate([jnp.ones_like(disc[:1]), disc[:-2]], 0), 0)
        weights = jax.lax.stop_gradient(weights)
    loss = -jnp.mean(weights * returns)
    if entropy_scale:
        loss = loss - entropy_scale * jnp.mean(weights * traj.entropy)
    return loss, BehaviorOut(returns, weights, traj.feat, reward, value, traj.entropy)


def value_loss(nets: Nets, value_params, feat: jax.Array, returns: jax.Array,
               weights: jax.Array) -> jax.Array:
    """eq. 8: regress v(s_tau) onto V_lambda(s_tau); features and targets carry no gradient."""
    # v of all H+1 states, as the actor's objective computed them (the same forward pass, which
    # XLA computes once), then the first H.
    pred = nets.value.apply(value_params, jax.lax.stop_gradient(feat))[:-1]
    target = jax.lax.stop_gradient(returns)
    chex.assert_equal_shape([pred, target])
    return jnp.mean(weights * 0.5 * jnp.square(pred - target))
