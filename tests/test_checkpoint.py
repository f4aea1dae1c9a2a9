"""Checkpoints: atomic msgpack files, fallback past a corrupt newest file, refusal of a model
of other sizes, no pickle."""
from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

from dreamer_jax import checkpoint, train_state


def make_state(cfg, spec, seed=0):
    return train_state.make_update(cfg, spec).init(jax.random.PRNGKey(seed))  # Raw keys, as train.py.


@pytest.fixture()
def saved(tmp_path, make_tiny_config, env_specs):
    cfg, spec = make_tiny_config(), env_specs["state"]
    states = [make_state(cfg, spec, seed) for seed in (1, 2)]
    for step, state in zip((100, 200), states):
        checkpoint.save(tmp_path, state, {"counters": {"env_steps": step}}, step=step)
    return tmp_path, cfg, spec, states


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_roundtrip_newest_and_keep(saved, tmp_path):
    logdir, cfg, spec, states = saved
    state, meta = checkpoint.load_latest(logdir, make_state(cfg, spec))
    assert meta["counters"]["env_steps"] == 200 and leaves_equal(state, states[1])
    checkpoint.save(logdir, states[0], {"counters": {}}, step=300)
    assert [p.name for p in checkpoint.list_checkpoints(logdir)] == [
        "ckpt-0000000200.msgpack", "ckpt-0000000300.msgpack"]  # The two newest are kept.
    assert not list((logdir / "checkpoints").glob(".*tmp"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_newest_falls_back_with_warning(saved, damage):
    logdir, cfg, spec, states = saved
    newest = checkpoint.list_checkpoints(logdir)[-1]
    data = newest.read_bytes()
    newest.write_bytes({"truncate": data[:len(data) // 2], "garbage": b"\x00\xff" * 999,
                        "empty": b""}[damage])
    with pytest.warns(UserWarning, match=f"{newest.name} is unreadable.*falling back"):
        state, meta = checkpoint.load_latest(logdir, make_state(cfg, spec))
    assert meta["counters"]["env_steps"] == 100 and leaves_equal(state, states[0])


def test_load_one_named_file(saved):
    """An older checkpoint by its file (evaluating earlier points of a run); a missing or
    damaged file is a CheckpointError naming it, never another checkpoint."""
    logdir, cfg, spec, states = saved
    older = checkpoint.list_checkpoints(logdir)[0]
    state, meta = checkpoint.load(older, make_state(cfg, spec))
    assert meta["counters"]["env_steps"] == 100 and leaves_equal(state, states[0])
    with pytest.raises(checkpoint.CheckpointError, match="ckpt-7.msgpack not found"):
        checkpoint.load(logdir / "ckpt-7.msgpack", make_state(cfg, spec))
    older.write_bytes(b"not msgpack")
    with pytest.raises(checkpoint.CheckpointError, match=f"{older.name} is unreadable"):
        checkpoint.load(older, make_state(cfg, spec))


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(saved):
    logdir, cfg, spec, _ = saved
    for path in checkpoint.list_checkpoints(logdir):
        path.write_bytes(b"not msgpack")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(checkpoint.CheckpointError, match="none of the 2 checkpoints"):
            checkpoint.load_latest(logdir, make_state(cfg, spec))


def test_other_model_sizes_are_refused(saved, make_tiny_config):
    logdir, _, spec, _ = saved
    bigger = make_tiny_config(deter_size=32)
    with pytest.raises(checkpoint.CheckpointError, match="does not fit this model"):
        checkpoint.load_latest(logdir, make_state(bigger, spec))


def test_empty_logdir_has_no_checkpoint(tmp_path, make_tiny_config, env_specs):
    assert checkpoint.load_latest(tmp_path, make_state(make_tiny_config(), env_specs["state"])) is None


def test_leftover_temp_file_is_never_read(saved):
    logdir, cfg, spec, _ = saved
    (logdir / "checkpoints" / ".ckpt-0000000300.msgpack.tmp").write_bytes(b"half a file")
    _, meta = checkpoint.load_latest(logdir, make_state(cfg, spec))
    assert meta["counters"]["env_steps"] == 200
