"""Tests of `dreamer_jax.train_state`: the one jitted update (world model, actor and value
together) and the jitted policy, for image, state-vector and discrete-action environments.
"""
from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

from conftest import jaxpr_eqns
from dreamer_jax import agent, rssm, train_state

NUM_STEPS = 3
NUM_ENVS = 3


@pytest.fixture(scope="module", params=["image", "state", "discrete"])
def trained(request, make_tiny_config, env_specs, make_random_batch):
    """Three updates of the library's jitted train step on random batches of one spec.

    `compute_grads` is wrapped in `chex.assert_max_traces(n=1)` while the step is built and run,
    so a second trace of the update (a recompilation) fails the fixture.
    """
    spec = env_specs[request.param]
    cfg = make_tiny_config()
    update = train_state.make_update(cfg, spec)
    state = jax.jit(update.init)(jax.random.key(0))
    initial = jax.device_get(state)

    original = train_state.compute_grads
    train_state.compute_grads = chex.assert_max_traces(original, n=1)
    try:
        step = update.step  # compute_grads is looked up when the step is traced.
        history = []
        for i in range(NUM_STEPS):
            batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len, seed=i)
            before = jax.device_get(state)  # `state` is donated to the step.
            state, metrics = step(state, batch)
            history.append((before, jax.device_get(metrics)))
    finally:
        train_state.compute_grads = original
        chex.clear_trace_counter()
    return dict(spec=spec, cfg=cfg, nets=update.nets, step=step, initial=initial,
                state=jax.device_get(state), history=history)


def test_train_step_compiles_once(trained):
    # The fixture itself fails if compute_grads is traced twice; the jit cache agrees.
    assert trained["step"]._cache_size() == 1


def test_train_step_increments_step_and_key(trained):
    assert int(trained["initial"].step) == 0
    assert int(trained["state"].step) == NUM_STEPS
    for i, (before, _) in enumerate(trained["history"]):
        assert int(before.step) == i
    keys = [jax.random.key_data(before.key) for before, _ in trained["history"]]
    keys.append(jax.random.key_data(trained["state"].key))
    for a, b in zip(keys, keys[1:]):
        assert not np.array_equal(a, b), "the train step reuses its PRNG key"


def test_train_step_metrics_are_finite(trained):
    expected = {"model_loss", "obs_log_prob", "reward_log_prob", "kl", "actor_loss",
                "value_loss", "imag_return", "world_grad_norm", "actor_grad_norm",
                "value_grad_norm"}
    for _, metrics in trained["history"]:
        assert expected <= set(metrics), expected - set(metrics)
        for name, value in metrics.items():
            chex.assert_shape(value, ())
            assert np.isfinite(value), f"{name} = {value}"
        for part in train_state.PARTS:
            assert metrics[f"{part}_grad_norm"] > 0, part
        assert metrics["kl"] >= 0


def test_train_step_updates_all_three_parameter_sets(trained):
    for i, (before, _) in enumerate(trained["history"]):
        after = (trained["history"][i + 1][0] if i + 1 < NUM_STEPS else trained["state"])
        for part in train_state.PARTS:
            old = jax.tree.leaves(before.params[part])
            new = jax.tree.leaves(after.params[part])
            assert len(old) == len(new)
            assert all(np.all(np.isfinite(x)) for x in new), part
            changed = [not np.array_equal(a, b) for a, b in zip(old, new)]
            assert any(changed), f"step {i} did not change the {part} parameters"
            # The optimizer state of every part advances too (Adam's count).
            count_before = [x for x in jax.tree.leaves(before.opt_state[part]) if x.ndim == 0]
            count_after = [x for x in jax.tree.leaves(after.opt_state[part]) if x.ndim == 0]
            assert [int(c) + 1 for c in count_before] == [int(c) for c in count_after]


def test_policy(trained, make_random_batch):
    spec, nets = trained["spec"], trained["nets"]
    params = trained["state"].params
    policy = train_state.make_policy(nets)
    obs = make_random_batch(spec, NUM_ENVS, 1, seed=9)["obs"][:, 0]
    carry = agent.initial_carry(nets, NUM_ENVS)
    keys = {"key": jax.random.key(1), "other": jax.random.key(2)}
    # (noise, sample): evaluation (mode action), a policy sample without and with exploration
    # (continuous: Normal noise std 0.3; discrete: epsilon-greedy with epsilon 0.3).
    modes = [(0.0, False), (0.0, True), (0.3, True)]
    runs = {(k, mode): policy(params, carry, obs, keys[k], *mode) for k in keys for mode in modes}
    for (new_carry, action) in runs.values():
        action = np.asarray(action)
        chex.assert_shape(action, (NUM_ENVS, spec.action_dim))
        np.testing.assert_array_equal(new_carry.action, action)
        chex.assert_shape(new_carry.latent.deter, (NUM_ENVS, trained["cfg"].deter_size))
        chex.assert_shape([new_carry.latent.stoch, new_carry.latent.mean, new_carry.latent.std],
                          (NUM_ENVS, trained["cfg"].stoch_size))
        chex.assert_tree_all_finite(new_carry)
        if spec.discrete:
            assert set(np.unique(action)) <= {0.0, 1.0}
            np.testing.assert_array_equal(action.sum(-1), 1.0)
        else:
            assert np.all(np.abs(action) <= 1.0)
    # The same key gives the same actions, with and without noise or sampling.
    for mode in modes:
        chex.assert_trees_all_equal(policy(params, carry, obs, keys["key"], *mode),
                                    runs[("key", mode)])
    # Without noise and sampling the action is the mode of the posterior's action model.
    new_carry, action = runs[("key", (0.0, False))]
    mode_action = agent.action_mode(nets, params["actor"], rssm.feature(new_carry.latent))
    np.testing.assert_allclose(action, mode_action, rtol=1e-5, atol=1e-6)
    if not spec.discrete:
        assert np.all(np.abs(np.asarray(action)) < 1.0)  # tanh(mean)
        assert not np.allclose(runs[("key", (0.0, True))][1], action)  # a sample, not the mode
        assert not np.allclose(runs[("key", (0.3, True))][1], runs[("key", (0.0, True))][1])
        # Large exploration noise is clipped to the action bounds.
        _, wild = policy(params, carry, obs, keys["key"], 5.0, True)
        assert np.all(np.abs(np.asarray(wild)) <= 1.0)
        assert np.any(np.abs(np.asarray(wild)) == 1.0)
    # One compilation serves every noise level and both modes.
    assert policy._cache_size() == 1


def test_acting_policy_splits_the_key_stream_like_the_policy(trained, make_random_batch):
    """The training loop's step (key split on the device) draws what `make_policy` draws after
    a host-side split, and its conv formulation gives the training formulation's numbers."""
    spec, nets = trained["spec"], trained["nets"]
    params = trained["state"].params
    obs = make_random_batch(spec, NUM_ENVS, 1, seed=10)["obs"][:, 0]
    carry = agent.initial_carry(nets, NUM_ENVS)
    stream = jax.random.PRNGKey(3)
    act = train_state.make_acting_policy(nets)
    got_carry, got_action, next_stream = act(params, carry, obs, stream, 0.3, True)
    want_next, key = jax.random.split(stream)
    np.testing.assert_array_equal(next_stream, want_next)
    want_carry, want_action = train_state.make_policy(nets)(params, carry, obs, key, 0.3, True)
    chex.assert_trees_all_close(got_carry, want_carry, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_action, want_action, rtol=1e-6, atol=1e-6)
    # The same step on the training batches' conv formulation (patch-matmul on CPU).
    training_convs = jax.jit(lambda p, c, o, k: agent.policy_step(nets, p, c, o, k, 0.0, False))
    _, mode_action = training_convs(params, carry, obs, key)
    _, acting_mode = train_state.make_policy(nets)(params, carry, obs, key, 0.0, False)
    np.testing.assert_allclose(acting_mode, mode_action, rtol=1e-4, atol=1e-5)


def test_discrete_policy_explores_uniformly(make_tiny_config, env_specs, make_random_params):
    spec = env_specs["discrete"]
    nets = agent.make_nets(make_tiny_config(), spec)
    params = make_random_params(agent.init_params, nets, jax.random.key(0))
    policy = train_state.make_policy(nets)
    envs = 200
    obs = np.random.default_rng(3).normal(size=(envs,) + spec.obs_shape).astype(np.float32)
    carry = agent.initial_carry(nets, envs)
    _, greedy = policy(params, carry, obs, jax.random.key(4), 0.0, False)
    _, random = policy(params, carry, obs, jax.random.key(4), 1.0, False)
    # epsilon = 1: every action is uniform, whatever the greedy action is.
    counts = np.asarray(random).sum(0)
    assert np.all(counts > envs / spec.action_dim / 2), counts
    assert not np.array_equal(greedy, random)


# --- NaN/Inf guard ----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["reward", "obs"])
def test_nonfinite_update_is_skipped(field, make_tiny_config, env_specs, make_random_batch):
    spec = env_specs["state"]
    cfg = make_tiny_config()
    update = train_state.make_update(cfg, spec)
    step, state = update.step, update.init(jax.random.key(0))
    good = make_random_batch(spec, cfg.batch_size, cfg.seq_len, seed=1)
    bad = dict(good)
    bad[field] = good[field].copy()
    bad[field][1, 2] = np.nan  # One poisoned value is enough to make the losses NaN.
    before = jax.device_get(state)
    state, metrics = step(state, bad)
    after = jax.device_get(state)
    assert float(metrics["nonfinite"]) == 1.0
    chex.assert_trees_all_equal(after.params, before.params)
    chex.assert_trees_all_equal(after.opt_state, before.opt_state)
    assert int(after.step) == 1 and not np.array_equal(after.key, before.key)
    # A finite batch afterwards is applied as usual.
    state, metrics = step(state, good)
    assert float(metrics["nonfinite"]) == 0.0
    moved = jax.device_get(state.params)
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(moved), jax.tree.leaves(before.params)))


def test_bfloat16_train_step_keeps_float32_state(make_tiny_config, env_specs, make_random_batch):
    """compute_dtype='bfloat16': the update runs, its losses are finite and close to float32's,
    and parameters and Adam moments stay float32."""
    spec = env_specs["image"]
    results = {}
    for dtype in ("float32", "bfloat16"):
        cfg = make_tiny_config(compute_dtype=dtype)
        update = train_state.make_update(cfg, spec)
        step, state = update.step, update.init(jax.random.key(0))
        state, metrics = step(state, make_random_batch(spec, cfg.batch_size, cfg.seq_len))
        results[dtype] = jax.device_get((state, metrics))
    state, metrics = results["bfloat16"]
    for leaf in jax.tree.leaves((state.params, state.opt_state)):
        assert leaf.dtype in (np.float32, np.int32), leaf.dtype
    for name in ("model_loss", "actor_loss", "value_loss"):
        want, got = results["float32"][1][name], metrics[name]
        assert np.isfinite(got), name
        np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05, err_msg=name)


def _scans(jaxpr) -> set[tuple[int, int]]:
    """(length, unroll) of every lax.scan in a jaxpr, nested ones included."""
    return {(int(eqn.params["length"]), int(eqn.params["unroll"])) for eqn in jaxpr_eqns(jaxpr)
            if eqn.primitive.name == "scan"}


def test_scan_unroll_changes_no_numbers(make_tiny_config, env_specs, make_random_batch):
    """scan_unroll only changes how XLA loops over the RSSM scans: one update (posterior scan over
    the sequence, imagination over the horizon, including an unroll that does not divide them)
    gives the same losses and parameters."""
    spec = env_specs["state"]
    results = {}
    for unroll in (1, 3):
        cfg = make_tiny_config(scan_unroll=unroll)
        assert cfg.seq_len % 3 and cfg.horizon % 3  # A remainder of the unrolled loop is taken.
        update = train_state.make_update(cfg, spec)
        step, state = update.step, update.init(jax.random.key(0))
        batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len)
        scans = _scans(jax.make_jaxpr(step)(state, batch).jaxpr)  # {(length, unroll), ...}
        assert {(cfg.seq_len, unroll), (cfg.horizon, unroll)} <= scans, scans
        state, metrics = step(state, batch)
        results[unroll] = jax.device_get((state.params, metrics))
    for name in ("model_loss", "actor_loss", "value_loss", "kl", "imag_return"):
        np.testing.assert_allclose(results[3][1][name], results[1][1][name], rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    chex.assert_trees_all_close(results[3][0], results[1][0], rtol=1e-4, atol=1e-6)


def test_imag_chunks_are_the_mean_of_one_piece_chunks(make_tiny_config, env_specs,
                                                      make_random_params):
    """imag_chunks=4: behavior losses, metrics and actor/value gradients are the mean of those
    of 4 one-piece calls, chunk i on the i-th quarter of the starts with the i-th split key; the
    chunked gradient needs less XLA temp memory than the one-piece one."""
    spec = env_specs["state"]
    cfg = make_tiny_config()
    loss_cfg = train_state.LossConfig.from_config(cfg)
    nets = agent.make_nets(cfg, spec)
    params = make_random_params(agent.init_params, nets, jax.random.key(0))
    n, chunks = 256, 4
    rng = np.random.default_rng(0)
    normal = lambda size: jax.numpy.asarray(rng.normal(size=(n, size)), jax.numpy.float32)  # noqa: E731
    start = rssm.RSSMState(normal(cfg.deter_size), normal(cfg.stoch_size),
                           normal(cfg.stoch_size), 0.5 + jax.numpy.abs(normal(cfg.stoch_size)))
    key = jax.random.key(1)
    grads = jax.jit(train_state.behavior_grads, static_argnums=(0, 1, 5))
    got = jax.device_get(grads(nets, loss_cfg, params, start, key, chunks))
    parts = [jax.device_get(grads(nets, loss_cfg, params,
                                  jax.tree.map(lambda x: x[i * n // chunks:(i + 1) * n // chunks],
                                               start), k, 1))
             for i, k in enumerate(jax.random.split(key, chunks))]
    want = jax.tree.map(lambda *xs: np.mean(np.stack(xs), 0), *parts)
    chex.assert_trees_all_close(got, want, rtol=1e-4, atol=1e-6)
    assert got[1]["actor_loss"] != parts[0][1]["actor_loss"]  # The chunks differ.

    temp = {c: grads.lower(nets, loss_cfg, params, start, key, c).compile()
            .memory_analysis().temp_size_in_bytes for c in (1, chunks)}
    assert temp[chunks] < 0.6 * temp[1], temp


def test_default_imag_chunks_is_automatic(make_tiny_config, env_specs, make_random_batch):
    """imag_chunks=0 (default) on CPU: imagination from 16x100 = 1600 starts runs as a map over
    auto_chunks(1600, 1024) = 2 chunks of 800 (a scan of length 2 around the horizon's scan),
    which imag_chunks=1 does not have."""
    spec = env_specs["state"]
    lengths = {}
    for imag_chunks in (0, 1):
        cfg = make_tiny_config(batch_size=16, seq_len=100, time_limit=200, action_repeat=1,
                               imag_chunks=imag_chunks)
        update = train_state.make_update(cfg, spec)
        step, state = update.step, jax.eval_shape(update.init, jax.random.key(0))
        batch = make_random_batch(spec, cfg.batch_size, cfg.seq_len)
        lengths[imag_chunks] = [n for n, _ in _scans(jax.make_jaxpr(step)(state, batch).jaxpr)]
    assert make_tiny_config().imag_chunks == 0
    assert agent.auto_chunks(1600, agent.IMAG_CHUNK_ROWS) == 2
    assert 2 in lengths[0] and 2 not in lengths[1], lengths
    assert cfg.horizon in lengths[0] and cfg.horizon in lengths[1], lengths


BAD_BATCHES = {  # name -> (spec, change to a valid batch, the one line expected)
    "one episode, no batch axis": (
        "image", lambda b: dict(b, obs=b["obs"][0]),
        r"batch obs must be \[B, T, 64, 64, 3\] uint8 .* got \[8, 64, 64, 3\]"),
    "float frames": ("image", lambda b: dict(b, obs=b["obs"].astype(np.float32)),
                     r"batch obs must be .* uint8 .* got \[2, 8, 64, 64, 3\] float32"),
    "84x84 frames": ("image", lambda b: dict(b, obs=np.zeros((2, 8, 84, 84, 3), np.uint8)),
                     r"got \[2, 8, 84, 84, 3\] uint8"),
    "integer actions": (
        "discrete", lambda b: dict(b, action=b["action"].argmax(-1)),
        r"batch action must be one-hot \[B, T, 3\] matching obs \[2, 8\], got \[2, 8\]"),
    "no actions": ("state", lambda b: {"obs": b["obs"]}, "batch lacks action"),
}


@pytest.mark.parametrize("case", BAD_BATCHES)
def test_observe_posteriors_bad_batch_one_line(case, make_tiny_config, env_specs,
                                               make_random_batch):
    kind, change, message = BAD_BATCHES[case]
    spec = env_specs[kind]
    batch = change(make_random_batch(spec, 2, 8))
    with pytest.raises(ValueError, match=message) as info:
        train_state.check_batch(spec, batch)
    assert "\n" not in str(info.value)


def test_observe_posteriors_checks_its_batch(make_tiny_config, env_specs, make_random_batch):
    """The check guards the notebook entry point: a valid batch gives [B, T] posteriors."""
    cfg, spec = make_tiny_config(), env_specs["state"]
    nets = agent.make_nets(cfg, spec)
    world = agent.init_params(nets, jax.random.key(0))["world"]
    batch = make_random_batch(spec, 2, 8)
    post = train_state.observe_posteriors(nets, world, batch, jax.random.key(1))
    chex.assert_shape(post.deter, (2, 8, cfg.deter_size))
    with pytest.raises(ValueError, match="batch obs must be"):
        train_state.observe_posteriors(nets, world, dict(batch, obs=batch["obs"][0]),
                                       jax.random.key(1))
