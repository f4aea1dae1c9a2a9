"""Episode replay: every finished episode is an `.npz` file on disk; a RAM cache samples from them.

An episode is a dict of arrays with T+1 entries (the first observation has a zero action and
zero reward): obs (uint8 images or float32 states), action, reward, discount. Files are written
atomically (temporary name, then rename) and read with allow_pickle=False, so a killed run never
leaves a file that is read back half-written. Sequences of length L are sampled uniformly:
an episode uniformly among those in RAM, then a start uniformly within it.
"""
from __future__ import annotations

import collections
import io
import os
import pathlib
import warnings
import zipfile

import numpy as np

KEYS = ("obs", "action", "reward", "discount")


def episode_nbytes(episode: dict[str, np.ndarray]) -> int:
    return sum(v.nbytes for v in episode.values())


def save_episode(directory: pathlib.Path, name: str, episode: dict[str, np.ndarray]) -> pathlib.Path:
    """Write `episode` as compressed npz; atomic: a crash leaves no partial `.npz`."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: episode[k] for k in KEYS})
    path = directory / f"{name}.npz"
    tmp = directory / f".{name}.npz.tmp"
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_episode(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Raises ValueError for a file that is not a complete, consistent episode."""
    try:
        with np.load(path, allow_pickle=False) as data:
            episode = {k: data[k] for k in KEYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path.name}: {type(e).__name__}: {e}") from None
    lengths = {len(v) for v in episode.values()}
    if len(lengths) != 1:
        raise ValueError(f"{path.name}: arrays of different lengths {sorted(lengths)}")
    return episode


class Replay:
    """Episodes on disk under `directory`, the newest that fit `ram_bytes` cached in RAM."""

    def __init__(self, directory: str | os.PathLike, ram_bytes: int):
        self.directory = pathlib.Path(directory)
        self.ram_bytes = int(ram_bytes)
        self._cache: collections.OrderedDict[str, dict[str, np.ndarray]] = collections.OrderedDict()
        self._cached_bytes = 0
        self.num_episodes = 0   # On disk (including those dropped from RAM).
        self.num_steps = 0      # Agent steps (transitions) on disk.

    def load(self) -> int:
        """Read the episodes already on disk (a resumed run); corrupt files are skipped."""
        if not self.directory.exists():
            return 0
        for tmp in self.directory.glob(".*.tmp"):
            tmp.unlink()  # Left by a crash mid-write; never a complete episode.
        for path in sorted(self.directory.glob("*.npz")):
            try:
                episode = load_episode(path)
            except ValueError as e:
                warnings.warn(f"skipping unreadable episode file {e}", stacklevel=2)
                continue
            self._insert(path.stem, episode)
        return self.num_episodes

    def add(self, episode: dict[str, np.ndarray]) -> pathlib.Path:
        """Store a finished episode on disk and in RAM."""
        length = len(episode["reward"]) - 1
        name = f"{self.num_episodes:06d}-{length}"
        path = save_episode(self.directory, name, episode)
        self._insert(name, episode)
        return path

    def _insert(self, name: str, episode: dict[str, np.ndarray]) -> None:
        self._cache[name] = episode
        self._cached_bytes += episode_nbytes(episode)
        self.num_episodes += 1
        self.num_steps += len(episode["reward"]) - 1
        while self._cached_bytes > self.ram_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= episode_nbytes(old)

    def episode_lengths(self) -> list[int]:
        """Entries (T + 1) of each episode in RAM."""
        return [len(e["reward"]) for e in self._cache.values()]

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> dict[str, np.ndarray]:
        """[batch_size, length, ...] arrays of uniformly sampled subsequences."""
        episodes = [e for e in self._cache.values() if len(e["reward"]) >= length]
        if not episodes:
            raise RuntimeError(f"no episode in replay has {length} steps to sample")
        picks = rng.integers(0, len(episodes), batch_size)
        out = {k: [] for k in KEYS}
        for i in picks:
            episode = episodes[i]
            start = rng.integers(0, len(episode["reward"]) - length + 1)
            for k in KEYS:
                out[k].append(episode[k][start:start + length])
        return {k: np.stack(v) for k, v in out.items()}
