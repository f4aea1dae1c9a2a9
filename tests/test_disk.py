"""A full disk: one-line error, exit code 2, nothing already written is lost, resume works."""
from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import uuid

import numpy as np
import pytest

from dreamer_jax import checkpoint, files, replay, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN = ["--preset", "debug", "--obs", "state", "--task", "dmc_cartpole_swingup",
       "--checkpoint_every", "100"]


def no_space(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_atomic_on_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.msgpack"
    files.write_atomic(target, b"old")
    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(files.WriteError, match=f"cannot write {target}: No space left on device"):
        files.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.msgpack"]  # No temp file left.


def test_repair_jsonl_cuts_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "lo')
    train.repair_jsonl(path)
    assert path.read_text() == '{"step": 1}\n'


def snapshot(logdir: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(logdir)): p.read_bytes() for p in sorted(logdir.rglob("*"))
            if p.is_file() and "tb" not in p.parts and p.name != "metrics.jsonl"}


def test_train_on_full_disk_exits_2_keeps_files_and_resumes(tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "run"
    assert train.main([*RUN, "--logdir", str(logdir), "--steps", "200"]) == 0
    before = snapshot(logdir)
    with monkeypatch.context() as patch:
        patch.setattr(files.os, "fsync", no_space)  # Every atomic write now fails.
        capsys.readouterr()
        assert train.main([*RUN, "--logdir", str(logdir), "--steps", "400"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dreamer_jax.train: error: cannot write ") and (
        "No space left on device" in err[-1] and "Traceback" not in "\n".join(err))
    assert snapshot(logdir) == before  # Nothing lost, no partial or temp file.
    assert not list(logdir.rglob(".*.tmp"))
    assert train.main([*RUN, "--logdir", str(logdir), "--steps", "400"]) == 0
    assert checkpoint.list_checkpoints(logdir)[-1].name == "ckpt-0000000400.msgpack"


def test_real_full_disk(tmp_path):
    """A small tmpfs filled by a pixel run (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        logdir = mount / f"run-{uuid.uuid4().hex[:6]}"
        cmd = [sys.executable, "-m", "dreamer_jax.train", "--preset", "debug", "--task",
               "dmc_cartpole_swingup", "--logdir", str(logdir), "--steps", "100000",
               "--checkpoint_every", "100", "--video_every", "0", "--eval_every", "0"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2, run.stderr[-3000:]
        assert lines[-1].startswith("dreamer_jax.train: error: cannot write "), lines[-1]
        assert "Traceback" not in run.stderr
        store = replay.Replay(logdir / "episodes", 2**30)
        assert store.load() >= 2  # Every episode on disk reads back whole.
        assert not list(logdir.rglob(".*.tmp"))
        template_ok = checkpoint.list_checkpoints(logdir)
        assert template_ok  # The checkpoints written before the disk filled are still there.
        with np.load(sorted((logdir / "episodes").glob("*.npz"))[-1], allow_pickle=False) as ep:
            assert ep["obs"].shape[1:] == (64, 64, 3)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
