"""Writing files so that a crash or a full disk never leaves a partial file behind.

Every file dreamer_jax reads back (episodes, checkpoints, config.json, spec.json) is written to
a hidden temp file in the same directory, flushed to disk, then renamed over the target: a
reader sees the old file or the new one, never a part. A failed write (disk full, quota,
read-only) removes its temp file and raises `WriteError` with one line naming the file.
"""
from __future__ import annotations

import os
import pathlib


class WriteError(RuntimeError):
    """A file could not be written (disk full, permissions); the message names it, in one line."""


def write_error(path: os.PathLike | str, error: OSError) -> WriteError:
    return WriteError(f"cannot write {path}: {error.strerror or error}; free disk space (or fix "
                      "the permissions) and run the same command again to resume: nothing "
                      "written before is lost")


def write_atomic(path: os.PathLike | str, data: bytes) -> pathlib.Path:
    """Write `data` to `path` atomically (temp file, fsync, rename)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise write_error(path, e) from None
    return path
