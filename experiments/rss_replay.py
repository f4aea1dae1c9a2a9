"""Bounded replay memory: stream synthetic 64x64x3 pixel episodes through a capped Replay and
record the process RSS against (frames in RAM x bytes per frame) + the working set.

    .venv/bin/python experiments/rss_replay.py --capacity_gib 1.0 --episodes 500

Each episode (501 frames, 1000 env steps at action repeat 2) is written to disk (evicted from
disk with the capacity, so the disk stays bounded too) and cached in RAM as uint8; between
episodes, batches of 50x50 are sampled as in training (prefetch thread, host copies). Writes
experiments/results/rss_replay.json and .md: RSS after every episode, the frames' bytes, and
the ratio (RSS - working set) / frame bytes, which must stay <= 1.05 once the replay is full.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from dreamer_jax import memory, replay as replay_lib  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
LENGTH = 500  # Agent steps per episode (1000 env steps, action repeat 2).


def rss_bytes() -> int:
    return int(memory.memory_gib()["rss_gib"] * 2**30)


def synthetic_episode(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Frames like a rendered scene (smooth, compressible) with per-episode content."""
    t = np.arange(LENGTH + 1)[:, None, None, None]
    y, x = np.mgrid[0:64, 0:64]
    phase = rng.uniform(0, 6.28, 3)
    frames = 127 + 120 * np.sin(0.1 * x[None, :, :, None] + 0.05 * t + phase)
    frames = frames + rng.integers(0, 8, (LENGTH + 1, 64, 64, 3))
    return {"obs": np.clip(frames, 0, 255).astype(np.uint8),
            "action": rng.uniform(-1, 1, (LENGTH + 1, 6)).astype(np.float32),
            "reward": rng.uniform(0, 1, LENGTH + 1).astype(np.float32),
            "discount": np.ones(LENGTH + 1, np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity_gib", type=float, default=1.0)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--batches", type=int, default=10, help="50x50 batches per episode")
    parser.add_argument("--out", default=str(RESULTS / "rss_replay"))
    parser.add_argument("--glibc_default", action="store_true",
                        help="keep glibc's adaptive mmap threshold (train.py fixes it at 1 MiB)")
    args = parser.parse_args()
    if not args.glibc_default:
        memory.limit_heap_growth()

    step_bytes = 64 * 64 * 3 + 4 * 6 + 8
    capacity_steps = int(args.capacity_gib * 2**30 / step_bytes)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = replay_lib.Replay(pathlib.Path(tmp) / "episodes", 64 * 2**30, capacity_steps,
                                  evict_disk=True)
        store.add(synthetic_episode(rng))
        for batch in replay_lib.prefetch(store, rng, args.batches, 50, 50, lambda b: b):
            pass
        base = rss_bytes()  # Interpreter, numpy, one episode and the sampled batches' buffers.
        base_frames = store.cached_bytes
        for episode in range(1, args.episodes):
            store.add(synthetic_episode(rng))
            for batch in replay_lib.prefetch(store, rng, args.batches, 50, 50, lambda b: b):
                pass
            rss = rss_bytes()
            rows.append({"episode": episode + 1, "rss_gib": rss / 2**30,
                         "replay_gib": store.cached_bytes / 2**30,
                         "ratio": (rss - base) / max(store.cached_bytes - base_frames, 1),
                         "disk_episodes": len(list(store.directory.glob("*.npz")))})
            if episode % 50 == 0:
                print(f"episode {episode + 1}: RSS {rss / 2**30:.3f} GiB, replay "
                      f"{store.cached_bytes / 2**30:.3f} GiB, ratio {rows[-1]['ratio']:.3f}",
                      flush=True)
    full = [r for r in rows if r["replay_gib"] >= 0.95 * args.capacity_gib]
    summary = {
        "date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "capacity_gib": args.capacity_gib,
        "malloc": "glibc default" if args.glibc_default else "mmap threshold 1 MiB (as train.py)", "episodes": args.episodes,
        "agent_steps_streamed": args.episodes * LENGTH, "bytes_per_step": step_bytes,
        "working_set_gib": base / 2**30,
        "max_rss_gib": max(r["rss_gib"] for r in rows),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "max_ratio_when_full": max((r["ratio"] for r in full), default=float("nan")),
        "final_ratio": rows[-1]["ratio"], "max_disk_episodes": max(r["disk_episodes"] for r in rows),
        "rows": rows,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    lines = [f"# Replay RSS under a synthetic pixel stream ({summary['date']})", "",
             f"{args.episodes} episodes x {LENGTH} agent steps of 64x64x3 uint8 frames "
             f"({args.episodes * LENGTH * step_bytes / 2**30:.1f} GiB streamed) through "
             f"`Replay(capacity={capacity_steps} steps = {args.capacity_gib} GiB, evict_disk=True)`, "
             f"{args.batches} batches of 50x50 sampled after each episode; malloc: {summary['malloc']}.", "",
             "| measure | value |", "|---|---|",
             f"| working set before the stream (interpreter, numpy, buffers) | {base / 2**30:.3f} GiB |",
             f"| max RSS | {summary['max_rss_gib']:.3f} GiB |",
             f"| (RSS - working set) / frame bytes, max once full | {summary['max_ratio_when_full']:.3f} |",
             f"| same, at the end | {summary['final_ratio']:.3f} |",
             f"| episode files on disk, max | {summary['max_disk_episodes']} |"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
