"""Replay: atomic npz episodes, corrupt files skipped, uniform sampling, RAM budget."""
from __future__ import annotations

import time

import numpy as np
import pytest

from dreamer_jax import replay as replay_lib


def make_episode(length: int, offset: int = 0, image: bool = True) -> dict[str, np.ndarray]:
    t = np.arange(length + 1)
    obs = (np.broadcast_to((t + offset)[:, None, None, None] % 256, (length + 1, 8, 8, 3))
           .astype(np.uint8) if image else (t + offset)[:, None].astype(np.float32))
    return {"obs": obs, "action": np.stack([t + offset, -t], 1).astype(np.float32),
            "reward": (t + offset).astype(np.float32), "discount": np.ones(length + 1, np.float32)}


def test_save_load_roundtrip_no_temp_left(tmp_path):
    episode = make_episode(20)
    path = replay_lib.save_episode(tmp_path, "000000-20", episode)
    loaded = replay_lib.load_episode(path)
    for k in replay_lib.KEYS:
        np.testing.assert_array_equal(loaded[k], episode[k])
        assert loaded[k].dtype == episode[k].dtype
    assert [p.name for p in tmp_path.iterdir()] == ["000000-20.npz"]


def test_sample_shapes_and_contiguity(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    for i in range(3):
        replay.add(make_episode(30, offset=1000 * i, image=False))
    batch = replay.sample(np.random.default_rng(0), 16, 10)
    assert batch["obs"].shape == (16, 10, 1) and batch["action"].shape == (16, 10, 2)
    assert batch["reward"].shape == (16, 10) and batch["discount"].shape == (16, 10)
    # Each row is a contiguous slice of one episode: rewards increase by exactly 1.
    np.testing.assert_array_equal(np.diff(batch["reward"], axis=1), 1)
    np.testing.assert_array_equal(batch["obs"][..., 0], batch["reward"])


def test_sampling_is_uniform_over_episodes_and_starts(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    replay.add(make_episode(9, offset=0, image=False))
    replay.add(make_episode(9, offset=100, image=False))
    batch = replay.sample(np.random.default_rng(1), 20000, 5)
    first = batch["reward"][:, 0]
    episode = (first >= 100).astype(int)
    assert abs(episode.mean() - 0.5) < 0.02
    starts = np.bincount((first % 100).astype(int), minlength=6)  # 10 steps -> starts 0..5
    assert np.all(np.abs(starts / len(first) - 1 / 6) < 0.02)


def test_ram_budget_drops_oldest_from_ram_not_disk(tmp_path):
    one = replay_lib.episode_nbytes(make_episode(20))
    replay = replay_lib.Replay(tmp_path, ram_bytes=int(2.5 * one))
    for i in range(5):
        replay.add(make_episode(20, offset=10 * i))
    assert replay.cached_bytes <= 2.5 * one
    assert len(list(tmp_path.glob("*.npz"))) == 5 and replay.num_episodes == 5
    batch = replay.sample(np.random.default_rng(0), 200, 21)
    assert set(batch["reward"][:, 0].astype(int)) == {30, 40}  # Only the two newest in RAM.


def test_bit_flips_inside_an_episode_are_a_valueerror(tmp_path):
    """Damage inside the compressed data (a bad disk, a bad copy) surfaces as zlib or CRC
    errors when numpy reads a member: each is the one ValueError that `load` skips with a
    warning, never another exception."""
    path = replay_lib.save_episode(tmp_path, "000000-50", make_episode(50))
    good = path.read_bytes()
    kinds = set()
    for position in range(40, len(good) - 200, max(1, (len(good) - 240) // 40)):
        bad = bytearray(good)
        bad[position] ^= 0xFF
        path.write_bytes(bytes(bad))
        try:
            replay_lib.load_episode(path)
        except ValueError as e:
            kinds.add(str(e).split(":")[1].strip())
    assert {"error", "BadZipFile"} <= kinds, kinds  # zlib.error and bad CRCs both seen.


def test_load_skips_corrupt_and_partial_files(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    replay.add(make_episode(10))
    replay.add(make_episode(12))
    (tmp_path / "000002-10.npz").write_bytes(b"not a zip file")
    good = (tmp_path / "000001-12.npz").read_bytes()
    (tmp_path / "000003-12.npz").write_bytes(good[: len(good) // 2])  # Truncated.
    (tmp_path / ".000004-12.npz.tmp").write_bytes(good[:100])         # Crash mid-write.
    fresh = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    with pytest.warns(UserWarning) as record:
        assert fresh.load() == 2
    messages = " ".join(str(r.message) for r in record)
    assert "000002-10.npz" in messages and "000003-12.npz" in messages
    assert fresh.num_steps == 22
    assert not list(tmp_path.glob("*.tmp"))


def test_load_rejects_pickled_objects(tmp_path):
    path = tmp_path / "000000-3.npz"
    np.savez(path, obs=np.array([object()] * 4, dtype=object), action=np.zeros((4, 1)),
             reward=np.zeros(4), discount=np.ones(4))
    with pytest.raises(ValueError, match="000000-3.npz"):
        replay_lib.load_episode(path)


def test_capacity_in_steps_is_fifo_over_whole_episodes(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30, capacity_steps=45)
    for i in range(5):
        replay.add(make_episode(20, offset=10 * i))
    assert replay.cached_steps == 40  # Two 20-step episodes; a third would exceed 45.
    batch = replay.sample(np.random.default_rng(0), 200, 21)
    assert set(batch["reward"][:, 0].astype(int)) == {30, 40}
    assert len(list(tmp_path.glob("*.npz"))) == 5  # Disk keeps everything by default.


def test_evict_disk_keeps_names_and_counts_across_resume(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30, capacity_steps=45, evict_disk=True)
    for i in range(5):
        replay.add(make_episode(20, offset=10 * i))
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["000003-20.npz", "000004-20.npz"]
    resumed = replay_lib.Replay(tmp_path, ram_bytes=2**30, capacity_steps=45, evict_disk=True)
    resumed.load()
    assert resumed.num_episodes == 5 and resumed.num_steps == 100  # Deleted ones still count.
    assert resumed.add(make_episode(20)).name == "000005-20.npz"   # No name is reused.
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["000004-20.npz", "000005-20.npz"]
    # A crash after counting an eviction but before deleting: the next load finishes it.
    (tmp_path / "000002-20.npz").write_bytes((tmp_path / "000004-20.npz").read_bytes())
    again = replay_lib.Replay(tmp_path, ram_bytes=2**30, capacity_steps=45, evict_disk=True)
    again.load()
    assert not (tmp_path / "000002-20.npz").exists() and again.num_steps == 120


def test_prefetch_yields_the_same_batches_as_sampling(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    for i in range(4):
        replay.add(make_episode(15 + i, offset=10 * i))
    rng = np.random.default_rng(3)
    want = [replay.sample(rng, 4, 6) for _ in range(7)]
    got = list(replay_lib.prefetch(replay, np.random.default_rng(3), 7, 4, 6, depth=2))
    assert len(got) == 7
    for a, b in zip(got, want):
        for key in replay_lib.KEYS:
            np.testing.assert_array_equal(a[key], b[key])


def test_prefetch_rewinds_a_consumer_that_stops_early(tmp_path):
    """The thread samples ahead; `consumed` holds the generator state after the last batch the
    consumer took, so that rewinding to it makes the next sample the first one not taken."""
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    for i in range(4):
        replay.add(make_episode(15 + i, offset=10 * i))
    rng = np.random.default_rng(3)
    want = [replay.sample(rng, 4, 6) for _ in range(6)]
    rng, consumed = np.random.default_rng(3), {}
    batches = replay_lib.prefetch(replay, rng, 6, 4, 6, depth=3, consumed=consumed)
    got = [next(batches), next(batches)]
    time.sleep(0.2)  # The thread has sampled up to 3 batches ahead by now.
    batches.close()
    rng.bit_generator.state = consumed
    got += [replay.sample(rng, 4, 6) for _ in range(4)]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a["obs"], b["obs"])


def test_prefetch_raises_sampling_errors_and_stops_early(tmp_path):
    replay = replay_lib.Replay(tmp_path, ram_bytes=2**30)
    replay.add(make_episode(5))
    with pytest.raises(RuntimeError, match="no episode in replay has 50 steps"):
        list(replay_lib.prefetch(replay, np.random.default_rng(0), 3, 2, 50))
    batches = replay_lib.prefetch(replay, np.random.default_rng(0), 100, 2, 3, depth=1)
    next(batches)
    batches.close()  # The consumer stops early: the thread ends, nothing hangs.
