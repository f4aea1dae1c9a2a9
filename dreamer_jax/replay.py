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
import json
import os
import pathlib
import warnings
import zipfile
import zlib
from typing import Sequence

import numpy as np

from dreamer_jax import files

KEYS = ("obs", "action", "reward", "discount")


def episode_nbytes(episode: dict[str, np.ndarray]) -> int:
    return sum(v.nbytes for v in episode.values())


def step_nbytes(obs_shape: Sequence[int], obs_dtype, action_dim: int) -> int:
    """Bytes one agent step takes in the RAM cache: its observation, float32 action, reward and
    discount (the arrays of `parallel.collect`'s episodes)."""
    return int(np.prod(obs_shape)) * np.dtype(obs_dtype).itemsize + 4 * action_dim + 8


def save_episode(directory: pathlib.Path, name: str, episode: dict[str, np.ndarray]) -> pathlib.Path:
    """Write `episode` as compressed npz; atomic: a crash leaves no partial `.npz`."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: episode[k] for k in KEYS})
    return files.write_atomic(directory / f"{name}.npz", buffer.getvalue())


def load_episode(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Raises ValueError for a file that is not a complete, consistent episode."""
    try:
        with np.load(path, allow_pickle=False) as data:
            episode = {k: data[k] for k in KEYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path.name}: {type(e).__name__}: {e}") from None
    lengths = {len(v) for v in episode.values()}
    if len(lengths) != 1:
        raise ValueError(f"{path.name}: arrays of different lengths {sorted(lengths)}")
    return episode


class Replay:
    """Episodes on disk under `directory`; the newest are cached in RAM (and sampled from).

    RAM holds at most `ram_bytes` and, if `capacity_steps` > 0, at most that many agent steps;
    the oldest whole episodes leave RAM first (FIFO). With `evict_disk`, an episode that leaves
    RAM is deleted from disk too, so disk holds what RAM holds; the number deleted is kept in
    `evicted.json`, so episode names and step counts stay right across resumes. Without it,
    every episode stays on disk.
    """

    def __init__(self, directory: str | os.PathLike, ram_bytes: int, capacity_steps: int = 0,
                 evict_disk: bool = False):
        self.directory = pathlib.Path(directory)
        self.ram_bytes = int(ram_bytes)
        self.capacity_steps = int(capacity_steps)
        self.evict_disk = evict_disk
        self._cache: collections.OrderedDict[str, dict[str, np.ndarray]] = collections.OrderedDict()
        self._cached_bytes = 0
        self._cached_steps = 0
        self._evicted = {"episodes": 0, "steps": 0}  # Deleted from disk by the capacity.
        self.num_episodes = 0   # Ever stored (on disk, or deleted by the capacity).
        self.num_steps = 0      # Agent steps (transitions) ever stored.

    def load(self) -> int:
        """Read the episodes already on disk (a resumed run); corrupt files are skipped."""
        if not self.directory.exists():
            return 0
        evicted = self.directory / "evicted.json"
        if evicted.exists():
            self._evicted = {k: int(v) for k, v in json.loads(evicted.read_text()).items()}
            self.num_episodes += self._evicted["episodes"]
            self.num_steps += self._evicted["steps"]
        for tmp in self.directory.glob(".*.tmp"):
            tmp.unlink()  # Left by a crash mid-write; never a complete episode.
        for path in sorted(self.directory.glob("*.npz")):
            index = path.stem.split("-")[0]
            if index.isdigit() and int(index) < self._evicted["episodes"]:
                path.unlink()  # Counted as deleted before a crash; finish the deletion.
                continue
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
        self._cached_steps += len(episode["reward"]) - 1
        self.num_episodes += 1
        self.num_steps += len(episode["reward"]) - 1
        while len(self._cache) > 1:
            over_capacity = 0 < self.capacity_steps < self._cached_steps
            if not (over_capacity or self._cached_bytes > self.ram_bytes):
                break
            old_name, old = self._cache.popitem(last=False)
            self._cached_bytes -= episode_nbytes(old)
            self._cached_steps -= len(old["reward"]) - 1
            if self.evict_disk:
                self._delete(old_name, len(old["reward"]) - 1)

    def _delete(self, name: str, steps: int) -> None:
        """Count first (atomically), then delete; a file a crash left behind after its count is
        deleted by the next `load` (deleted episodes are always the oldest, the lowest names)."""
        self._evicted["episodes"] += 1
        self._evicted["steps"] += steps
        files.write_atomic(self.directory / "evicted.json", json.dumps(self._evicted).encode())
        (self.directory / f"{name}.npz").unlink(missing_ok=True)

    def longest_episode(self) -> int:
        """Entries (T + 1) of the longest episode in RAM (0 if none): `sample` can draw sequences
        up to this long, since a sequence lies within one episode."""
        return max((len(e["reward"]) for e in self._cache.values()), default=0)

    @property
    def cached_steps(self) -> int:
        return self._cached_steps

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


def prefetch(replay: Replay, rng: np.random.Generator, count: int, batch_size: int, length: int,
             put=lambda batch: batch, depth: int = 2, consumed: dict | None = None):
    """Yield `count` batches sampled by a background thread, `depth` ahead of the consumer.

    `put` (e.g. `jax.device_put`) runs in the thread too, so sampling and the host-to-device
    copy overlap the updates. The batches are exactly those of `count` successive
    `replay.sample(rng, ...)` calls: the replay must not change while the generator runs (the
    training loop adds episodes only between blocks of updates), and `rng` is the thread's
    until the generator is exhausted or closed. An exception in the thread is raised in the
    consumer. `consumed` (a dict), if given, holds after each yielded batch the `rng` state
    that follows that batch's sampling: a consumer that stops early and closes the generator
    sets `rng.bit_generator.state` to it, and the next sample is the first it did not take.
    """
    import queue
    import threading

    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            for _ in range(count):
                if stop.is_set():
                    return
                batch = replay.sample(rng, batch_size, length)
                state = rng.bit_generator.state if consumed is not None else None
                slots.put((put(batch), state, None))
        except BaseException as e:  # noqa: BLE001  Handed to the consumer.
            slots.put((None, None, e))

    thread = threading.Thread(target=work, name="replay-prefetch", daemon=True)
    thread.start()
    try:
        for _ in range(count):
            batch, state, error = slots.get()
            if error is not None:
                raise error
            if consumed is not None:
                consumed.clear()
                consumed.update(state)
            yield batch
    finally:
        stop.set()
        while thread.is_alive():  # Unblock a producer waiting on a full queue.
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.01)

