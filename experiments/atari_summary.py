"""An Atari run's returns against random play: training episodes in windows, greedy evaluations.

Reads each logdir's metrics.jsonl (training episodes: `train_return`; evaluations:
`eval_return`) and random play's returns from `probe_atari_games.py`'s JSON, and writes a
markdown table: per run and window of training episodes (after the seed episodes) the mean return,
its standard error and Welch's t against random play; then the evaluation points.

    .venv/bin/python experiments/atari_summary.py RUN [RUN ...] --game boxing \
        --random experiments/results/probe_boxing_random30.json --window 10 \
        --out experiments/results/atari_boxing_ram_summary.md

Training episodes act with the actor's samples and epsilon-greedy noise (0.4 decaying to 0.1
over 200k updates), so random play is their floor, not a fair opponent; greedy evaluations
take the mode action.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from dreamer_jax import plot  # noqa: E402


def random_returns(parser: argparse.ArgumentParser, path: pathlib.Path, game: str) -> np.ndarray:
    """Random play's returns of `game` in probe_atari_games.py's JSON at `path` (a one-line
    parser error when the game is not there)."""
    games = json.loads(path.read_text())["games"]
    if game not in games:
        parser.error(f"--game {game!r} is not in {path}; it has {sorted(games)}")
    return np.asarray(games[game]["random_returns"], dtype=float)


def standard_error(sample: np.ndarray) -> float:
    """Standard error of the mean (sample standard deviation, ddof 1)."""
    return float(sample.std(ddof=1) / np.sqrt(len(sample)))


def welch_t(sample: np.ndarray, reference: np.ndarray) -> float:
    """Welch's t of mean(sample) - mean(reference) (sample standard deviations, ddof 1)."""
    se = np.hypot(standard_error(sample), standard_error(reference))
    return float((sample.mean() - reference.mean()) / se)


def windows(values: np.ndarray, size: int) -> list[np.ndarray]:
    """Consecutive windows of `size` values; a shorter last window joins the one before it."""
    chunks = [values[i:i + size] for i in range(0, len(values), size)]
    if len(chunks) > 1 and len(chunks[-1]) < size:
        chunks[-2:] = [np.concatenate(chunks[-2:])]
    return chunks


def summarize(logdirs: list[pathlib.Path], random: np.ndarray, seed_episodes: int,
              size: int) -> str:
    lines = [f"Random play: {random.mean():.2f} ± {random.std(ddof=1):.2f} (sd) over "
             f"{len(random)} episodes.", "",
             "| run | training episodes | env steps | mean return | s.e. | Welch t vs random |",
             "|---|---|---|---|---|---|"]
    evals, last = {}, []
    for logdir in logdirs:  # plot.read_series leaves out what a resumed run logged again.
        steps, values = (np.array(x[seed_episodes:])
                         for x in plot.read_series(logdir, "train_return"))
        last.append(values[-size:])
        start = seed_episodes
        for chunk_steps, chunk in zip(windows(steps, size), windows(values, size)):
            t = welch_t(chunk, random) if len(chunk) > 1 else float("nan")
            se = standard_error(chunk) if len(chunk) > 1 else float("nan")
            lines.append(f"| {logdir.name} | {start + 1}-{start + len(chunk)} | "
                         f"{chunk_steps[0]:,}-{chunk_steps[-1]:,} | {chunk.mean():.2f} | "
                         f"{se:.2f} | {t:.1f} |")
            start += len(chunk)
        evals[logdir.name] = list(zip(*plot.read_series(logdir, "eval_return")))
    if len(logdirs) > 1:  # The runs' latest windows pooled: one sample of the learned behaviour.
        pooled = np.concatenate(last)
        lines.append(f"| all {len(logdirs)} runs | the last {size} of each | | {pooled.mean():.2f} | "
                     f"{standard_error(pooled):.2f} | "
                     f"{welch_t(pooled, random):.1f} |")
    lines += ["", "| run | greedy evaluations (env steps: return) |", "|---|---|"]
    for name, points in evals.items():
        lines.append(f"| {name} | " + ", ".join(f"{s:,}: {v:.1f}" for s, v in points) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logdirs", nargs="+", type=pathlib.Path)
    parser.add_argument("--game", required=True, help="the game's key in the --random JSON")
    parser.add_argument("--random", required=True, type=pathlib.Path,
                        help="probe_atari_games.py's JSON with the game's random returns")
    parser.add_argument("--seed_episodes", type=int, default=5,
                        help="random seed episodes at the start of each run, left out")
    parser.add_argument("--window", type=int, default=10, help="training episodes per row")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="markdown file to write")
    args = parser.parse_args()
    random = random_returns(parser, args.random, args.game)
    text = summarize(args.logdirs, random, args.seed_episodes, args.window)
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
