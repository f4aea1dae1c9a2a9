"""Tests of `dreamer_jax.imagine`: V_lambda (eq. 4-6), latent imagination, the behavior losses
(eq. 7-8) and their gradient hygiene inside `train_state.compute_grads`.

The reference V_lambda below is eq. 6 written out literally as a weighted average of the k-step
returns of eq. 5, not the backward recursion the library uses.
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from dreamer_jax import agent, imagine, rssm, train_state
from dreamer_jax.config import ConfigError


# --- NumPy reference of eq. 5 and eq. 6 --------------------------------------------------------

def k_step_return(reward, value, discount, tau, k):
    """V_N^k(s_tau) of eq. 5 for arrays [H+1, N] (discount already broadcast to [H+1, N]).

    sum_{n=tau}^{h-1} (prod_{j=tau}^{n-1} d_j) r_n + (prod_{j=tau}^{h-1} d_j) v_h,
    h = min(tau + k, H). With d_j = gamma this is eq. 5's gamma^{n-tau} and gamma^{h-tau}.
    """
    horizon = reward.shape[0] - 1
    h = min(tau + k, horizon)
    total = np.zeros(reward.shape[1], np.float64)
    for n in range(tau, h):
        total += np.prod(discount[tau:n], axis=0) * reward[n]
    return total + np.prod(discount[tau:h], axis=0) * value[h]


def lambda_return_reference(reward, value, discount, lambda_, *, remaining_horizon=True):
    """V_lambda(s_0..s_{H-1}) [H, N] of eq. 6 as a weighted average of k-step returns.

    remaining_horizon=True: for s_tau the average runs over k = 1..H' with H' = H - tau,
      (1 - lambda) sum_{n=1}^{H'-1} lambda^{n-1} V_N^n + lambda^{H'-1} V_N^{H'}.
    remaining_horizon=False: eq. 6 exactly as printed, n = 1..H for every tau, where h is clipped
      to the horizon inside V_N^k (eq. 5).
    """
    reward = np.asarray(reward, np.float64)
    value = np.asarray(value, np.float64)
    discount = np.broadcast_to(np.asarray(discount, np.float64), reward.shape)
    horizon = reward.shape[0] - 1
    out = np.zeros((horizon, reward.shape[1]), np.float64)
    for tau in range(horizon):
        last = horizon - tau if remaining_horizon else horizon
        est = lambda_ ** (last - 1) * k_step_return(reward, value, discount, tau, last)
        for n in range(1, last):
            est = est + (1 - lambda_) * lambda_ ** (n - 1) * k_step_return(
                reward, value, discount, tau, n)
        out[tau] = est
    return out


def random_inputs(rng, horizon, num, scalar_discount=False):
    reward = rng.normal(size=(horizon + 1, num)).astype(np.float32)
    value = rng.normal(size=(horizon + 1, num)).astype(np.float32)
    if scalar_discount:
        discount = float(rng.uniform(0.5, 1.0))
    else:
        discount = rng.uniform(0.0, 1.0, size=(horizon + 1, num)).astype(np.float32)
    return reward, value, discount


# --- The reference itself -------------------------------------------------------------------

@pytest.mark.parametrize("horizon", [1, 2, 4, 7])
@pytest.mark.parametrize("lambda_", [0.0, 0.3, 0.95, 1.0])
def test_reference_remaining_horizon_equals_eq6_as_printed(horizon, lambda_):
    # For s_tau every V_N^k with k >= H - tau is the same full return (h is clipped to H), so the
    # weights (1 - lambda) lambda^{n-1}, n = H-tau..H-1, plus lambda^{H-1} on the same estimate add
    # up to lambda^{H-tau-1}: both readings of eq. 6 are the same number.
    reward, value, discount = random_inputs(np.random.default_rng(horizon), horizon, 3)
    np.testing.assert_allclose(
        lambda_return_reference(reward, value, discount, lambda_, remaining_horizon=True),
        lambda_return_reference(reward, value, discount, lambda_, remaining_horizon=False),
        rtol=1e-10, atol=1e-10)


def test_reference_by_hand():
    # H = 2, one trajectory, gamma = 0.5, lambda = 0.5:
    #   V_N^1(s_1) = r1 + g v2 = 2 + 0.5*8 = 6;  V_lambda(s_1) = V_N^1(s_1) = 6
    #   V_N^1(s_0) = r0 + g v1 = 1 + 0.5*4 = 3
    #   V_N^2(s_0) = r0 + g r1 + g^2 v2 = 1 + 1 + 2 = 4
    #   V_lambda(s_0) = (1 - 0.5) * 3 + 0.5 * 4 = 3.5
    reward = np.array([[1.0], [2.0], [100.0]])  # r2 is never used: s_2 is bootstrapped.
    value = np.array([[-50.0], [4.0], [8.0]])   # v0 is never used.
    expected = np.array([[3.5], [6.0]])
    np.testing.assert_allclose(lambda_return_reference(reward, value, 0.5, 0.5), expected)
    got = imagine.lambda_returns(jnp.asarray(reward, jnp.float32), jnp.asarray(value, jnp.float32),
                                 0.5, lambda_=0.5)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# --- lambda_returns against the reference, jit and no jit -------------------------------------

class LambdaReturnsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(horizon=(1, 3, 8), lambda_=(0.0, 0.6, 0.95, 1.0))
    def test_matches_eq6_with_per_step_discount(self, horizon, lambda_):
        num = 4
        reward, value, discount = random_inputs(
            np.random.default_rng(10 * horizon + int(10 * lambda_)), horizon, num)
        fn = self.variant(functools.partial(imagine.lambda_returns, lambda_=lambda_))
        got = fn(reward, value, discount)
        chex.assert_shape(got, (horizon, num))
        np.testing.assert_allclose(
            got, lambda_return_reference(reward, value, discount, lambda_), rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(horizon=(1, 5), lambda_=(0.0, 0.95, 1.0))
    def test_matches_eq6_with_scalar_discount(self, horizon, lambda_):
        num = 3
        reward, value, gamma = random_inputs(
            np.random.default_rng(horizon), horizon, num, scalar_discount=True)
        fn = self.variant(functools.partial(imagine.lambda_returns, lambda_=lambda_))
        got = fn(reward, value, gamma)
        chex.assert_shape(got, (horizon, num))
        np.testing.assert_allclose(
            got, lambda_return_reference(reward, value, gamma, lambda_), rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1, 6)
    def test_lambda_zero_is_one_step_td_target(self, horizon):
        reward, value, discount = random_inputs(np.random.default_rng(1), horizon, 5)
        got = self.variant(functools.partial(imagine.lambda_returns, lambda_=0.0))(
            reward, value, discount)
        chex.assert_shape(got, (horizon, 5))
        expected = reward[:-1] + discount[:-1] * value[1:]  # r_tau + d_tau v(s_{tau+1})
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1, 6)
    def test_lambda_one_is_discounted_reward_sum_plus_bootstrap(self, horizon):
        reward, value, discount = random_inputs(np.random.default_rng(2), horizon, 5)
        got = self.variant(functools.partial(imagine.lambda_returns, lambda_=1.0))(
            reward, value, discount)
        chex.assert_shape(got, (horizon, 5))
        expected = np.zeros((horizon, 5))
        for tau in range(horizon):
            # V_R of eq. 4 with discounting, plus the discounted bootstrap v(s_H).
            scale = np.ones(5)
            for n in range(tau, horizon):
                expected[tau] += scale * reward[n]
                scale = scale * discount[n]
            expected[tau] += scale * value[horizon]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    def test_rejects_mismatched_shapes(self):
        reward, value, discount = random_inputs(np.random.default_rng(3), 4, 2)
        with self.assertRaises(AssertionError):
            imagine.lambda_returns(reward, value[:-1], discount, lambda_=0.9)


# --- Imagination and the behavior losses ------------------------------------------------------

HORIZON = 4
NUM_STARTS = 6


def random_state(rng, num, deter_size, stoch_size) -> rssm.RSSMState:
    normal = lambda n: rng.normal(size=(num, n)).astype(np.float32)  # noqa: E731
    std = rng.uniform(0.5, 1.5, size=(num, stoch_size)).astype(np.float32)
    return rssm.RSSMState(normal(deter_size), normal(stoch_size), normal(stoch_size), std)


def build(cfg, spec, make_random_params, seed=0):
    nets = agent.make_nets(cfg, spec)
    params = make_random_params(agent.init_params, nets, jax.random.key(seed), seed=seed)
    start = random_state(np.random.default_rng(seed), NUM_STARTS, cfg.deter_size, cfg.stoch_size)
    return nets, params, start


@pytest.fixture(scope="module")
def continuous(make_tiny_config, env_specs, make_random_params):
    cfg = make_tiny_config(horizon=HORIZON)
    return (cfg,) + build(cfg, env_specs["state"], make_random_params)


def test_imagine_shapes_and_start(continuous):
    cfg, nets, params, start = continuous
    fn = jax.jit(functools.partial(imagine.imagine, nets, horizon=HORIZON))
    traj = fn(params["world"], params["actor"], start, jax.random.key(1))
    n, a = NUM_STARTS, nets.spec.action_dim
    chex.assert_shape([traj.states.deter], (HORIZON + 1, n, cfg.deter_size))
    chex.assert_shape([traj.states.stoch, traj.states.mean, traj.states.std],
                      (HORIZON + 1, n, cfg.stoch_size))
    chex.assert_shape(traj.actions, (HORIZON, n, a))
    chex.assert_shape(traj.feat, (HORIZON + 1, n, cfg.feat_size))
    for got, want in zip(traj.states, start):
        np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(traj.feat, rssm.feature(traj.states))
    assert np.all(np.abs(np.asarray(traj.actions)) <= 1.0)
    # Imagined states move away from the start (the rollout is not a no-op).
    assert not np.allclose(traj.states.deter[1:], traj.states.deter[:1])
    chex.assert_tree_all_finite(traj)


BAD_IMAGINE_INPUTS = {  # name -> (change to the valid arguments, the one line expected)
    "posteriors [B, T]": (lambda a: dict(a, start=jax.tree.map(
        lambda x: x.reshape((2, 3) + x.shape[1:]), a["start"])),
        r"start must have one batch axis: deter \[N, 16\].*got deter \(2, 3, 16\)"),
    "stoch too small": (lambda a: dict(a, start=a["start"]._replace(stoch=a["start"].stoch[:, :3])),
                        r"start must have one batch axis.*stoch \(6, 3\)"),
    "a plain tuple": (lambda a: dict(a, start=tuple(a["start"])),
                      "start must be an rssm.RSSMState, got tuple"),
    "horizon 0": (lambda a: dict(a, horizon=0), "horizon=0 must be a positive integer"),
    "horizon 2.5": (lambda a: dict(a, horizon=2.5), "horizon=2.5 must be a positive integer"),
    "int seed": (lambda a: dict(a, key=0), "key must be one PRNG key .* got int"),
    "two keys": (lambda a: dict(a, key=jax.random.split(a["key"], 2)),
                 r"key must be one PRNG key .* got key<fry>\[2\]"),
}


@pytest.mark.parametrize("case", BAD_IMAGINE_INPUTS)
def test_imagine_bad_inputs_one_line(continuous, case):
    """What a notebook plausibly gets wrong, named in one line before anything is traced."""
    _, nets, params, start = continuous
    change, message = BAD_IMAGINE_INPUTS[case]
    args = change(dict(start=start, key=jax.random.key(1), horizon=HORIZON))
    with pytest.raises(ValueError, match=message) as info:
        imagine.imagine(nets, params["world"], params["actor"], args["start"], args["key"],
                        horizon=args["horizon"])
    assert "\n" not in str(info.value)


def test_imagine_discrete_actions_are_one_hot(make_tiny_config, env_specs, make_random_params):
    cfg = make_tiny_config(horizon=HORIZON)
    nets, params, start = build(cfg, env_specs["discrete"], make_random_params)
    fn = jax.jit(functools.partial(imagine.imagine, nets, horizon=HORIZON))
    traj = fn(params["world"], params["actor"], start, jax.random.key(2))
    chex.assert_shape(traj.actions, (HORIZON, NUM_STARTS, nets.spec.action_dim))
    actions = np.asarray(traj.actions)
    assert set(np.unique(actions)) <= {0.0, 1.0}
    np.testing.assert_array_equal(actions.sum(-1), 1.0)


@pytest.fixture(scope="module")
def grads_setup(continuous, make_random_batch):
    """compute_grads and independent recomputations of each loss, in one compiled function."""
    cfg, nets, params, _ = continuous
    loss_cfg = train_state.LossConfig.from_config(cfg)
    batch = make_random_batch(nets.spec, 3, 5, seed=4)
    key = jax.random.key(5)

    def run(params, batch, key):
        grads, metrics = train_state.compute_grads(nets, loss_cfg, params, batch, key)
        # compute_grads splits its key into (world model key, imagination key).
        wm_key, imag_key = jax.random.split(key)

        def wm_loss(world):
            return agent.world_model_loss(
                nets, world, batch, wm_key, free_nats=cfg.free_nats, kl_scale=cfg.kl_scale,
                pcont_scale=cfg.pcont_scale, discount=cfg.discount)

        (_, wm_out), wm_grads = jax.value_and_grad(wm_loss, has_aux=True)(params["world"])
        start = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), wm_out.post)

        def a_loss(actor, start):
            return imagine.actor_loss(nets, params["world"], actor, params["value"], start,
                                      imag_key, horizon=cfg.horizon, discount=cfg.discount,
                                      lambda_=cfg.lambda_)

        (actor_loss, beh), (actor_grads, start_grads) = jax.value_and_grad(
            a_loss, argnums=(0, 1), has_aux=True)(params["actor"], start)
        reward, value, _ = agent.heads(nets, params["world"], params["value"], beh.feat,
                                       discount=cfg.discount)
        return dict(grads=grads, metrics=metrics, wm_grads=wm_grads, actor_grads=actor_grads,
                    start_grads=start_grads, actor_loss=actor_loss, beh=beh, head_reward=reward,
                    head_value=value)

    out = jax.device_get(jax.jit(run)(params, batch, key))
    return cfg, nets, params, batch, out


def assert_trees_close(got, want, rtol=1e-5, atol=1e-6):
    chex.assert_trees_all_equal_structs(got, want)
    for path, g in jax.tree_util.tree_leaves_with_path(got):
        w = functools.reduce(lambda t, k: t[k.key], path, want)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=str(path))


def test_actor_gradients_reach_actor_but_not_start(grads_setup):
    _, _, _, _, out = grads_setup
    # Every actor parameter (mean and std outputs included) gets an analytic value gradient
    # through the sampled actions and the learned dynamics (eq. 7).
    for path, leaf in jax.tree_util.tree_leaves_with_path(out["actor_grads"]):
        assert np.all(np.isfinite(leaf)), path
        assert np.any(np.asarray(leaf) != 0), f"no gradient reaches actor parameter {path}"
    # The start states (posteriors of the replay batch) are held fixed.
    for leaf in jax.tree.leaves(out["start_grads"]):
        np.testing.assert_array_equal(leaf, 0.0)


def test_world_model_gradient_is_world_model_loss_alone(grads_setup):
    # The train step's world-model gradient is that of eq. 10 alone: the actor and value
    # losses move no world-model parameter (the world model is fixed while learning behaviors).
    _, _, _, _, out = grads_setup
    assert_trees_close(out["grads"]["world"], out["wm_grads"])
    assert max(np.abs(leaf).max() for leaf in jax.tree.leaves(out["wm_grads"])) > 0


def test_actor_gradient_is_actor_loss_from_posterior_starts(grads_setup):
    _, _, _, _, out = grads_setup
    assert_trees_close(out["grads"]["actor"], out["actor_grads"])
    np.testing.assert_allclose(out["metrics"]["actor_loss"], out["actor_loss"], rtol=1e-6)


def test_value_gradient_uses_constant_targets(grads_setup):
    # eq. 8 with the targets as constants: grad of 0.5 * mean(w * (v(s_tau) - V_lambda)^2).
    _, nets, params, _, out = grads_setup
    beh = out["beh"]
    feat = np.asarray(beh.feat[:-1])
    targets = np.asarray(beh.returns)
    weights = np.asarray(beh.weights)

    def reference(value_params):
        pred = nets.value.apply(value_params, feat)
        return 0.5 * jnp.mean(weights * jnp.square(pred - targets))

    want = jax.jit(jax.grad(reference))(params["value"])
    assert_trees_close(out["grads"]["value"], want)
    assert max(np.abs(leaf).max() for leaf in jax.tree.leaves(want)) > 0


def test_value_loss_stops_gradient_of_targets(continuous):
    # Targets computed from the value parameters themselves still act as constants in eq. 8.
    cfg, nets, params, start = continuous
    feat = np.random.default_rng(6).normal(size=(HORIZON + 1, NUM_STARTS, cfg.feat_size))
    feat = feat.astype(np.float32)
    reward = np.random.default_rng(7).normal(size=(HORIZON + 1, NUM_STARTS)).astype(np.float32)
    weights = np.ones((HORIZON, NUM_STARTS), np.float32)

    def targets_of(value_params):
        value = nets.value.apply(value_params, feat)
        return imagine.lambda_returns(reward, value, cfg.discount, lambda_=cfg.lambda_)

    def through_targets(value_params):
        return imagine.value_loss(nets, value_params, feat, targets_of(value_params), weights)

    constant_targets = np.asarray(jax.jit(targets_of)(params["value"]))

    def constant(value_params):
        return imagine.value_loss(nets, value_params, feat, constant_targets, weights)

    got = jax.jit(jax.grad(through_targets))(params["value"])
    want = jax.jit(jax.grad(constant))(params["value"])
    assert_trees_close(got, want)


def test_actor_loss_is_minus_mean_lambda_return(grads_setup):
    cfg, _, _, _, out = grads_setup
    beh = out["beh"]
    horizon, num = cfg.horizon, beh.reward.shape[1]
    chex.assert_shape([beh.returns, beh.weights], (horizon, num))
    chex.assert_shape([beh.reward, beh.value], (horizon + 1, num))
    chex.assert_shape(beh.feat, (horizon + 1, num, cfg.feat_size))
    # The behavior quantities are the reward and value heads on the imagined states.
    np.testing.assert_allclose(beh.reward, out["head_reward"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(beh.value, out["head_value"], rtol=1e-6, atol=1e-6)
    returns = lambda_return_reference(beh.reward, beh.value, cfg.discount, cfg.lambda_)
    np.testing.assert_allclose(beh.returns, returns, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(beh.weights, 1.0)
    np.testing.assert_allclose(out["actor_loss"], -returns.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["metrics"]["imag_return"], returns.mean(), rtol=1e-5, atol=1e-6)


def test_actor_loss_with_predicted_discount(make_tiny_config, env_specs, make_random_params):
    # With a discount predictor the per-step discounts are sigmoid(pcont(s_tau)) and every
    # V_lambda(s_tau) is weighted by the predicted probability of reaching s_tau.
    cfg = make_tiny_config(horizon=HORIZON, pcont=True)
    nets, params, start = build(cfg, env_specs["state"], make_random_params, seed=8)

    def run(params, start, key):
        loss, beh = imagine.actor_loss(nets, params["world"], params["actor"], params["value"],
                                       start, key, horizon=HORIZON, discount=cfg.discount,
                                       lambda_=cfg.lambda_)
        logits = nets.pcont.apply(params["world"]["pcont"], beh.feat)
        return loss, beh, logits

    loss, beh, logits = jax.device_get(jax.jit(run)(params, start, jax.random.key(9)))
    disc = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    chex.assert_shape(disc, (HORIZON + 1, NUM_STARTS))
    returns = lambda_return_reference(beh.reward, beh.value, disc, cfg.lambda_)
    weights = np.ones((HORIZON, NUM_STARTS))
    for tau in range(1, HORIZON):
        weights[tau] = np.prod(disc[:tau], axis=0)
    np.testing.assert_allclose(beh.returns, returns, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(beh.weights, weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, -(weights * returns).mean(), rtol=1e-5, atol=1e-6)


def entropy_reference(logits: np.ndarray) -> np.ndarray:
    """-sum_a p(a) log p(a) of softmax(logits), in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return -(p * np.log(p)).sum(-1)


@pytest.mark.parametrize("pcont", [False, True])
def test_actor_entropy_bonus_matches_reference(make_tiny_config, env_specs, make_random_params,
                                               pcont):
    # --actor_entropy c (not the paper's): loss = -mean(w * V) - c * mean(w * H[q(a|s_tau)]) over
    # s_0..s_{H-1}; with c = 0 the loss is eq. 7 exactly. Same key: the same trajectory.
    cfg = make_tiny_config(horizon=HORIZON, pcont=pcont)
    nets, params, start = build(cfg, env_specs["discrete"], make_random_params, seed=10)
    scale = 0.37

    def run(actor, c):
        return imagine.actor_loss(nets, params["world"], actor, params["value"], start,
                                  jax.random.key(11), horizon=HORIZON, discount=cfg.discount,
                                  lambda_=cfg.lambda_, entropy_scale=c)

    (loss0, beh0), (loss1, beh1) = jax.device_get(
        (jax.jit(run, static_argnums=1)(params["actor"], 0.0),
         jax.jit(run, static_argnums=1)(params["actor"], scale)))
    logits = nets.actor.apply(params["actor"], jnp.asarray(beh0.feat[:-1]))
    want_entropy = entropy_reference(logits)
    chex.assert_shape(beh1.entropy, (HORIZON, NUM_STARTS))
    np.testing.assert_allclose(beh1.entropy, want_entropy, rtol=1e-5, atol=1e-6)
    assert np.all(want_entropy > 0) and np.all(want_entropy < np.log(3) + 1e-9)
    np.testing.assert_allclose(beh1.returns, beh0.returns, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(loss0, -(beh0.weights * beh0.returns).mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        loss1, loss0 - scale * (beh0.weights * want_entropy).mean(), rtol=1e-5, atol=1e-6)


def test_actor_entropy_gradient_raises_entropy(make_tiny_config, env_specs, make_random_params):
    # The bonus's own gradient (the difference of the two losses' gradients) is an ascent
    # direction of the policy's entropy at the imagined states: a small step along it raises
    # the mean entropy, measured at the same (fixed) features.
    cfg = make_tiny_config(horizon=HORIZON)
    nets, params, start = build(cfg, env_specs["discrete"], make_random_params, seed=12)

    def loss(actor, c):
        return imagine.actor_loss(nets, params["world"], actor, params["value"], start,
                                  jax.random.key(13), horizon=HORIZON, discount=cfg.discount,
                                  lambda_=cfg.lambda_, entropy_scale=c)[0]

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    bonus_grad = jax.tree.map(lambda a, b: a - b, grad(params["actor"], 1.0),
                              grad(params["actor"], 0.0))
    _, beh = jax.jit(lambda a: imagine.actor_loss(
        nets, params["world"], a, params["value"], start, jax.random.key(13), horizon=HORIZON,
        discount=cfg.discount, lambda_=cfg.lambda_))(params["actor"])
    feat = beh.feat[:-1]

    def mean_entropy(actor):
        return float(entropy_reference(nets.actor.apply(actor, feat)).mean())

    stepped = jax.tree.map(lambda p, g: p - 1e-2 * g, params["actor"], bonus_grad)
    assert mean_entropy(stepped) > mean_entropy(params["actor"]) + 1e-6


def test_actor_entropy_is_for_discrete_actions(make_tiny_config, env_specs):
    cfg = make_tiny_config(actor_entropy=1e-3)
    with pytest.raises(ConfigError, match=r"--actor_entropy=0\.001 .*discrete"):
        agent.make_nets(cfg, env_specs["state"])
    agent.make_nets(cfg, env_specs["discrete"])
