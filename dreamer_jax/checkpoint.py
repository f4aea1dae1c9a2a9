"""Checkpoints: one msgpack file per save (no pickle), written atomically, the last few kept.

A file holds the train state (three parameter sets, three optimizer states, PRNG key, update
counter) and a JSON string of the loop's counters and sampler state. Loading falls back to the
previous file when the newest is unreadable, and refuses a checkpoint whose shapes differ.
"""
from __future__ import annotations

import json
import os
import pathlib
import warnings
from typing import Any

import flax.serialization
import jax
import numpy as np

from dreamer_jax import files


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used; the message is one line."""


def _dir(logdir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(logdir) / "checkpoints"


def save(logdir: str | os.PathLike, state: Any, meta: dict, *, step: int, keep: int = 2) -> pathlib.Path:
    directory = _dir(logdir)
    directory.mkdir(parents=True, exist_ok=True)
    state_dict = flax.serialization.to_state_dict(jax.device_get(state))
    data = flax.serialization.msgpack_serialize({"state": state_dict, "meta": json.dumps(meta)})
    path = files.write_atomic(directory / f"ckpt-{int(step):010d}.msgpack", data)
    for old in sorted(directory.glob("ckpt-*.msgpack"))[:-keep]:
        old.unlink()
    return path


def list_checkpoints(logdir: str | os.PathLike) -> list[pathlib.Path]:
    directory = _dir(logdir)
    return sorted(directory.glob("ckpt-*.msgpack")) if directory.exists() else []


def _restore(path: pathlib.Path, template: Any) -> tuple[Any, dict]:
    try:
        raw = flax.serialization.msgpack_restore(path.read_bytes())
        meta = json.loads(raw["meta"])
        state_dict = raw["state"]
    except Exception as e:  # noqa: BLE001 - any decoding failure means an unreadable file.
        raise ValueError(f"{path.name} is unreadable ({type(e).__name__})") from None
    want = flax.serialization.to_state_dict(template)
    want_shapes = jax.tree.map(np.shape, want)
    try:  # np.shape of a decodable but foreign object (a ragged list) raises ValueError.
        got_shapes = jax.tree.map(np.shape, state_dict)
    except (ValueError, TypeError):
        got_shapes = None
    same = got_shapes is not None and (
        jax.tree.structure(want_shapes) == jax.tree.structure(got_shapes) and all(
            a == b for a, b in zip(jax.tree.leaves(want_shapes), jax.tree.leaves(got_shapes))))
    if not same:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model (different sizes or networks); "
            "use another --logdir or the saved config")
    return flax.serialization.from_state_dict(template, state_dict), meta


def load(path: str | os.PathLike, template: Any) -> tuple[Any, dict]:
    """(state, meta) of the checkpoint file `path`; a CheckpointError naming it if it is missing,
    unreadable or of another model."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        return _restore(path, template)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {e}") from None


def load_latest(logdir: str | os.PathLike, template: Any) -> tuple[Any, dict] | None:
    """(state, meta) of the newest readable checkpoint, or None if there is none at all.

    An unreadable newest file is skipped with a warning naming it; if no file is readable, a
    CheckpointError (starting afresh beside the old run's episodes would silently mix runs)."""
    paths = list_checkpoints(logdir)
    for path in reversed(paths):
        try:
            return _restore(path, template)
        except ValueError as e:
            warnings.warn(f"{e}; falling back to the previous checkpoint", stacklevel=2)
    if paths:
        raise CheckpointError(f"none of the {len(paths)} checkpoints in {_dir(logdir)} is readable; "
                              "move them away to start afresh")
    return None
