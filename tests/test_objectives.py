"""Tests of the representation objectives (Section 4, eq. 10-12) and the behavior variants
(eq. 4 V_R, eq. 5 V_N^k) against NumPy references written from the equations, and one update
of each variant through the library's jitted train step.
"""
from __future__ import annotations

import functools

import chex
import jax
import numpy as np
import pytest
from absl.testing import parameterized

from dreamer_jax import agent, imagine, objectives, train_state
from test_imagine import k_step_return, random_inputs


# --- eq. 12 -----------------------------------------------------------------------------------

def gaussian_log_prob_reference(x, mean, std):
    """ln N(x; mean, diag(std^2)) of one vector, straight from the density, float64."""
    x, mean, std = (np.asarray(a, np.float64) for a in (x, mean, std))
    return float(np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)))


def contrastive_reference(feat, mean, std):
    """J_S^t = ln q(s_t | o_t) - ln sum_{o'} q(s_t | o') for every t, with loops (eq. 12)."""
    n = feat.shape[0]
    out = np.zeros(n)
    for i in range(n):
        log_q = np.array([gaussian_log_prob_reference(feat[i], mean[j], std[j]) for j in range(n)])
        top = log_q.max()
        out[i] = log_q[i] - (top + np.log(np.sum(np.exp(log_q - top))))
    return out


def random_gaussians(seed, n, f):
    rng = np.random.default_rng(seed)
    feat = rng.normal(size=(n, f)).astype(np.float32)
    mean = rng.normal(size=(n, f)).astype(np.float32)
    std = rng.uniform(0.3, 2.0, size=(n, f)).astype(np.float32)
    return feat, mean, std


class ContrastiveTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((1, 3), (5, 4), (12, 7))
    def test_pairwise_log_prob_matches_density(self, n, f):
        feat, mean, std = random_gaussians(n + f, n, f)
        got = self.variant(objectives.pairwise_gaussian_log_prob)(feat, mean[:3], std[:3])
        chex.assert_shape(got, (n, min(3, n)))
        want = [[gaussian_log_prob_reference(feat[i], mean[j], std[j]) for j in range(min(3, n))]
                for i in range(n)]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((1, 3), (6, 5), (16, 9))
    def test_contrastive_term_matches_eq12(self, n, f):
        feat, mean, std = random_gaussians(10 * n + f, n, f)
        got = self.variant(objectives.contrastive_term)(feat, mean, std)
        chex.assert_shape(got, (n,))
        np.testing.assert_allclose(got, contrastive_reference(feat, mean, std), rtol=1e-4, atol=1e-4)

    def test_contrastive_term_bounds(self):
        # J_S <= 0 (the positive is one of the terms of the sum), = 0 for one observation, and
        # close to 0 when every state is far more likely under its own observation.
        feat, mean, std = random_gaussians(3, 8, 4)
        got = np.asarray(objectives.contrastive_term(feat, mean, std))
        assert np.all(got <= 1e-6)
        np.testing.assert_allclose(objectives.contrastive_term(feat[:1], mean[:1], std[:1]), 0.0,
                                   atol=1e-6)
        sharp = np.asarray(objectives.contrastive_term(feat, feat, np.full_like(std, 0.01)))
        np.testing.assert_allclose(sharp, 0.0, atol=1e-4)

    def test_contrastive_gradient_reaches_states_and_state_model(self):
        feat, mean, std = random_gaussians(4, 6, 3)
        grads = jax.grad(lambda *a: objectives.contrastive_term(*a).sum(), argnums=(0, 1, 2))(
            feat, mean, std)
        for g in grads:
            assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0


# --- eq. 4 and eq. 5 --------------------------------------------------------------------------

class ValueEstimateTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(horizon=(1, 4, 9), k=(1, 3, 15), scalar=(False, True))
    def test_nstep_matches_eq5(self, horizon, k, scalar):
        reward, value, discount = random_inputs(
            np.random.default_rng(100 * horizon + k), horizon, 3, scalar_discount=scalar)
        got = self.variant(functools.partial(imagine.nstep_returns, k=k))(reward, value, discount)
        chex.assert_shape(got, (horizon, 3))
        d = np.broadcast_to(np.asarray(discount, np.float64), reward.shape)
        want = np.stack([k_step_return(reward, value, d, tau, k) for tau in range(horizon)])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1, 5)
    def test_reward_sums_match_eq4(self, horizon):
        reward, _, _ = random_inputs(np.random.default_rng(horizon), horizon, 4)
        got = self.variant(imagine.reward_sums)(reward)
        chex.assert_shape(got, (horizon, 4))
        want = [reward[tau:].astype(np.float64).sum(0) for tau in range(horizon)]  # up to s_H
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_nstep_with_full_horizon_equals_lambda_one(self):
        reward, value, discount = random_inputs(np.random.default_rng(0), 6, 5)
        np.testing.assert_allclose(imagine.nstep_returns(reward, value, discount, k=6),
                                   imagine.lambda_returns(reward, value, discount, lambda_=1.0),
                                   rtol=1e-5, atol=1e-5)

    def test_dispatch_and_bad_values(self):
        reward, value, discount = random_inputs(np.random.default_rng(1), 3, 2)
        for estimate in imagine.ESTIMATES:
            out = imagine.value_estimate(reward, value, discount, estimate=estimate,
                                         lambda_=0.9, k=2)
            chex.assert_shape(out, (3, 2))
        with pytest.raises(ValueError, match="estimate='td'"):
            imagine.value_estimate(reward, value, discount, estimate="td", lambda_=0.9, k=2)
        with pytest.raises(ValueError, match="k=0"):
            imagine.nstep_returns(reward, value, discount, k=0)


# --- One update of each variant ---------------------------------------------------------------

VARIANTS = [
    ("image", dict(objective="contrastive")),
    ("state", dict(objective="contrastive")),
    ("state", dict(objective="reward")),  # No observation term: the encoder kind is moot.
    ("state", dict(behavior="only_action")),
    ("state", dict(value_estimate="nstep", value_k=2)),
]


@pytest.mark.parametrize("kind,overrides", VARIANTS)
def test_variant_update(kind, overrides, make_tiny_config, env_specs, make_random_batch):
    spec = env_specs[kind]
    cfg = make_tiny_config(**overrides)
    update = train_state.make_update(cfg, spec)
    state = update.init(jax.random.key(0))
    world = state.params["world"]
    assert ("decoder" in world) == (cfg.objective == "reconstruction")
    assert ("state_model" in world) == (cfg.objective == "contrastive")
    before = jax.device_get(state.params)
    state, metrics = update.step(state, make_random_batch(spec, cfg.batch_size, cfg.seq_len))
    metrics = jax.device_get(metrics)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert ("contrastive" in metrics) == (cfg.objective == "contrastive")
    assert ("obs_log_prob" in metrics) == (cfg.objective == "reconstruction")
    if cfg.objective == "contrastive":
        assert metrics["contrastive"] <= 0.0
    after = jax.device_get(state.params)
    changed = lambda a, b: any(  # noqa: E731
        not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert changed(before["world"], after["world"]) and changed(before["actor"], after["actor"])
    # The action-only ablation has no value model: its parameters never move.
    assert changed(before["value"], after["value"]) == (cfg.behavior != "only_action")


# --- PlaNet: CEM planning ---------------------------------------------------------------------

def test_cem_finds_the_best_sequence_of_a_known_score():
    from dreamer_jax import planet

    target = np.array([[0.5, -0.3], [-0.8, 0.1], [0.2, 0.9]], np.float32)  # [H, A]
    score = lambda actions, key: -((actions - target[None]) ** 2).sum((1, 2))  # noqa: E731
    cfg = planet.PlannerConfig(horizon=3, candidates=500, top_k=50, iterations=8)
    mean, std = jax.jit(lambda k: planet.cem(score, k, target.shape, cfg))(jax.random.key(0))
    chex.assert_shape([mean, std], target.shape)
    np.testing.assert_allclose(mean, target, atol=0.05)
    assert np.all(std < 0.1)  # The distribution has narrowed onto the optimum.
    # A single iteration from N(0, 1) is still far from it: the iterations do the work.
    one, _ = planet.cem(score, jax.random.key(0), target.shape, cfg._replace(iterations=1))
    assert np.abs(np.asarray(one) - target).max() > 0.05


def test_rollout_returns_match_a_python_loop(make_tiny_config, env_specs):
    from dreamer_jax import planet, rssm

    cfg = make_tiny_config()
    nets = agent.make_nets(cfg, env_specs["state"])
    params = agent.init_params(nets, jax.random.key(1))["world"]
    rng = np.random.default_rng(0)
    start = rssm.RSSMState(*(jax.numpy.asarray(rng.normal(size=(4, n)), jax.numpy.float32)
                             for n in (cfg.deter_size, cfg.stoch_size, cfg.stoch_size,
                                       cfg.stoch_size)))
    actions = rng.uniform(-1, 1, (4, 3, 2)).astype(np.float32)
    key = jax.random.key(2)
    got = planet.rollout_returns(nets, params, start, actions, key)
    state, want = start, 0.0
    for t, k in enumerate(jax.random.split(key, 3)):
        state = rssm.img_step(nets.rssm, params["rssm"], state, actions[:, t], k)
        want = want + nets.reward.apply(params["reward"], rssm.feature(state))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_planet_policy_and_update(make_tiny_config, env_specs, make_random_batch):
    from dreamer_jax import config as config_lib

    spec = env_specs["state"]
    cfg = make_tiny_config(behavior="planet", plan_horizon=3, plan_candidates=16, plan_top_k=4,
                           plan_iterations=2)
    update = train_state.make_update(cfg, spec)
    state = update.init(jax.random.key(0))
    before = jax.device_get(state.params)
    state, metrics = update.step(state, make_random_batch(spec, cfg.batch_size, cfg.seq_len))
    assert "actor_loss" not in metrics and np.isfinite(float(metrics["model_loss"]))
    after = jax.device_get(state.params)
    chex.assert_trees_all_equal(after["actor"], before["actor"])  # Nothing but the world model.
    policy = train_state.make_policy(update.nets)
    carry = agent.initial_carry(update.nets, 2)
    obs = np.zeros((2,) + spec.obs_shape, np.float32)
    carry, action = policy(state.params, carry, obs, jax.random.key(3), 0.0, False)
    chex.assert_shape(action, (2, spec.action_dim))
    assert np.all(np.abs(np.asarray(action)) <= 1.0)
    with pytest.raises(config_lib.ConfigError, match="discrete"):
        agent.make_nets(cfg, env_specs["discrete"])
