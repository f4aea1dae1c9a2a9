"""Tests of `dreamer_jax.agent`'s world-model loss: eq. 10 against a NumPy assembly of its terms,
and in chunks (`conv_chunks`): the same numbers and gradients as in one piece, and less memory
by XLA's own buffer assignment."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import jaxpr_eqns
from dreamer_jax import agent
from test_nets import normal_logpdf
from test_rssm import kl_reference


class ChunkedTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_values_and_gradients_match_one_piece(self):
        rng = np.random.default_rng(0)
        w = rng.normal(size=(5, 3)).astype(np.float32)
        x = rng.normal(size=(12, 5)).astype(np.float32)
        y = rng.normal(size=(12, 2, 3)).astype(np.float32)

        def rows(w, x, y):  # Row-wise, nonlinear, two inputs, an output of rank 1.
            return jnp.tanh(x @ w)[:, None, :] * y

        def loss(w, x, y, chunks):
            return jnp.sum(jnp.sin(agent.chunked(lambda a, b: rows(w, a, b), chunks, x, y)))

        want = np.asarray(rows(w, x, y))
        want_grads = jax.grad(loss, argnums=(0, 1, 2))(w, x, y, 1)
        for chunks in (1, 2, 3, 4, 12):
            got = self.variant(lambda w, x, y: agent.chunked(
                lambda a, b: rows(w, a, b), chunks, x, y))(w, x, y)
            chex.assert_shape(got, (12, 2, 3))
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
            grads = self.variant(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(
                w, x, y, chunks)
            for g, gw in zip(grads, want_grads):
                np.testing.assert_allclose(g, gw, rtol=1e-5, atol=1e-6)

    def test_rows_not_divisible(self):
        with pytest.raises(ValueError, match="5 chunks do not divide 12 rows"):
            agent.chunked(lambda a: a, 5, jnp.zeros((12, 2)))


def _world_loss_and_grads(cfg, spec, batch):
    nets = agent.make_nets(cfg, spec)
    params = agent.init_params(nets, jax.random.key(0))

    def loss(world):
        return agent.world_model_loss(nets, world, batch, jax.random.key(1),
                                      free_nats=cfg.free_nats, kl_scale=cfg.kl_scale,
                                      pcont_scale=cfg.pcont_scale, discount=cfg.discount)

    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params["world"])


@pytest.mark.parametrize("kind,objective", [("image", "reconstruction"), ("state", "reconstruction"),
                                            ("image", "contrastive")])
def test_world_model_loss_in_chunks_equals_one_piece(kind, objective, make_tiny_config, env_specs,
                                                     make_random_batch):
    spec = env_specs[kind]
    cfg = make_tiny_config(objective=objective)
    batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len)
    (loss, out), grads = _world_loss_and_grads(cfg, spec, batch)
    cfg4 = make_tiny_config(objective=objective, conv_chunks=4)
    (loss4, out4), grads4 = _world_loss_and_grads(cfg4, spec, batch)
    np.testing.assert_allclose(loss4, loss, rtol=1e-5)
    term = "obs_log_prob" if objective == "reconstruction" else "contrastive"
    for name in (term, "reward_log_prob", "kl"):
        np.testing.assert_allclose(out4.metrics[name], out.metrics[name], rtol=1e-5, err_msg=name)
    for g4, g in zip(jax.tree.leaves(grads4), jax.tree.leaves(grads)):
        # Float32 sums over other groupings of ~1e5 pixels: compare at the leaf's own scale.
        np.testing.assert_allclose(g4, g, rtol=1e-4, atol=1e-4 * float(np.abs(g).max()))
    observation_model = "decoder" if objective == "reconstruction" else "state_model"
    assert max(float(np.abs(g).max()) for g in jax.tree.leaves(grads[observation_model])) > 0


@pytest.mark.parametrize("objective,free_nats,kl_scale,pcont,reward_transform", [
    ("reconstruction", 0.0, 1.0, False, "none"),    # The KL above the free nats: it counts.
    ("reconstruction", 1e3, 1.0, False, "none"),    # Below: max(KL, free nats) = free nats.
    ("reconstruction", 0.0, 0.1, True, "tanh"),     # The atari preset's terms (Appendix C).
    ("reward", 0.0, 1.0, True, "none"),             # No observation term at all.
])
def test_world_model_loss_is_eq10_assembled_from_its_terms(
        objective, free_nats, kl_scale, pcont, reward_transform, make_tiny_config, env_specs,
        make_random_batch):
    """The loss against a NumPy assembly of eq. 10 from the model's own outputs (the networks
    are not under test here, the sum of terms is): -ln q(o|s) - ln q(r|s) + beta max(KL, free
    nats) - pcont_scale ln q(gamma d | s), each averaged over batch and time."""
    spec = env_specs["state"]
    cfg = make_tiny_config(objective=objective, pcont=pcont, reward_transform=reward_transform)
    nets = agent.make_nets(cfg, spec)
    world = agent.init_params(nets, jax.random.key(0))["world"]
    batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len, seed=3)
    batch["reward"] = 3.0 * batch["reward"]  # Beyond tanh's linear range.
    loss, out = agent.world_model_loss(
        nets, world, batch, jax.random.key(1), free_nats=free_nats, kl_scale=kl_scale,
        pcont_scale=cfg.pcont_scale, discount=cfg.discount, reward_transform=reward_transform)
    feat = np.concatenate([out.post.stoch, out.post.deter], -1)
    chex.assert_shape(feat, (cfg.batch_size, cfg.seq_len, cfg.stoch_size + cfg.deter_size))
    kl = np.mean(kl_reference(out.post, out.prior))
    reward = np.tanh(batch["reward"]) if reward_transform == "tanh" else batch["reward"]
    reward_pred = np.asarray(nets.reward.apply(world["reward"], feat))
    reward_lp = np.mean(normal_logpdf(reward, reward_pred, 1.0))
    want = kl_scale * max(kl, free_nats) - reward_lp
    if objective == "reconstruction":
        recon = np.asarray(nets.decoder.apply(world["decoder"], feat))
        want -= np.mean(np.sum(normal_logpdf(batch["obs"], recon, 1.0), -1))
    if pcont:
        logits = np.asarray(nets.pcont.apply(world["pcont"], feat), np.float64)
        target = cfg.discount * batch["discount"]
        log_sigmoid = lambda z: -np.logaddexp(0.0, -z)  # noqa: E731
        want -= cfg.pcont_scale * np.mean(target * log_sigmoid(logits)
                                          + (1 - target) * log_sigmoid(-logits))
    assert (kl > free_nats) == (free_nats == 0.0)
    np.testing.assert_allclose(out.metrics["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_conv_chunks_shrink_the_world_model_gradients_temp_memory(make_tiny_config, env_specs,
                                                                   make_random_batch):
    """XLA's buffer assignment (deterministic, not a timing): the encoder and decoder working
    sets of 256 images of 64x64x3 dominate; in 8 chunks the gradient needs far less."""
    spec = env_specs["image"]
    temp = {}
    for chunks in (1, 8):
        cfg = make_tiny_config(cnn_depth=8, batch_size=8, seq_len=32, conv_chunks=chunks)
        nets = agent.make_nets(cfg, spec)
        params = agent.init_params(nets, jax.random.key(0))
        batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len)

        def loss(world, batch):
            return agent.world_model_loss(nets, world, batch, jax.random.key(1),
                                          free_nats=cfg.free_nats, kl_scale=cfg.kl_scale,
                                          pcont_scale=cfg.pcont_scale, discount=cfg.discount)[0]

        compiled = jax.jit(jax.grad(loss)).lower(params["world"], batch).compile()
        temp[chunks] = compiled.memory_analysis().temp_size_in_bytes
    assert temp[8] < 0.5 * temp[1], temp


@pytest.mark.parametrize("rows,chunk_rows,backend,want", [
    (800, 256, "cpu", 1),       # 16x50 stays in one piece
    (1024, 256, "cpu", 1),
    (1600, 256, "cpu", 8),      # 32x50 images: 8 chunks of 200
    (2500, 256, "cpu", 10),     # 50x50 images: 10 of 250
    (2500, 1024, "cpu", 4),     # 50x50 imagination starts: 4 of 625
    (1031, 256, "cpu", 1),      # prime: chunks of one row would be slower, not smaller
    (2500, 256, "gpu", 1),      # accelerators keep one batch
])
def test_auto_chunks(rows, chunk_rows, backend, want):
    got = agent.auto_chunks(rows, chunk_rows, backend)
    assert got == want
    assert rows % got == 0 and (got == 1 or rows // got <= chunk_rows)


@pytest.mark.parametrize("obs,want_chunked", [("image", 2), ("state", 0)])
def test_default_conv_chunks_is_automatic_in_the_loss(obs, want_chunked, make_tiny_config,
                                                       env_specs, make_random_batch):
    """The default (0) chunks a CPU batch of 16x100 images into auto_chunks(1600, 256) = 8
    slices: the loss's jaxpr maps the encoder and the decoder over 8 chunks (scans of length 8).
    State vectors stay in one piece."""
    assert make_tiny_config().conv_chunks == 0
    spec = env_specs[obs]
    cfg = make_tiny_config(batch_size=16, seq_len=100, time_limit=200, action_repeat=1)
    nets = agent.make_nets(cfg, spec)
    params = agent.init_params(nets, jax.random.key(0))
    batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len)
    jaxpr = jax.make_jaxpr(lambda w: agent.world_model_loss(
        nets, w, batch, jax.random.key(1), free_nats=cfg.free_nats, kl_scale=cfg.kl_scale,
        pcont_scale=cfg.pcont_scale, discount=cfg.discount)[0])(params["world"]).jaxpr
    lengths = [int(e.params["length"]) for e in jaxpr_eqns(jaxpr) if e.primitive.name == "scan"]
    assert lengths.count(8) == want_chunked, lengths  # encoder, decoder + log-likelihood
    assert 100 in lengths  # the RSSM's posterior scan over the sequence
