"""A learning curve from `evaluate_atari.py`'s JSON files: mean return ± standard error per
checkpoint and way of acting, against random play's mean ± its standard error.

    .venv/bin/python experiments/plot_evaluations.py experiments/results/evaluate_pong_ram_ent0.03_*.json \
        --out experiments/results/evaluate_pong_ram_ent0.03.png --title "Pong from RAM ..."

Also writes a markdown table beside the PNG (same name, .md).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import textwrap

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import atari_summary  # noqa: E402
from evaluate_atari import MODES  # noqa: E402


def load(paths: list[pathlib.Path]) -> list[dict]:
    """The evaluations sorted by env steps (all of one task)."""
    rows = sorted((json.loads(p.read_text()) for p in paths), key=lambda r: r["env_steps"])
    tasks = {r["task"] for r in rows}
    if len(tasks) != 1:
        sys.exit(f"plot_evaluations.py: error: the files hold several tasks {sorted(tasks)}; "
                 "give the evaluations of one task")
    return rows


def table(rows: list[dict], random: np.ndarray | None) -> str:
    modes = sorted({m for r in rows for m in r["modes"]}, key=MODES.index)
    lines = ["| env steps | updates | " + " | ".join(f"{m}: mean ± s.e. (t)" for m in modes) + " |",
             "|---|---|" + "---|" * len(modes)]
    for r in rows:
        cells = []
        for m in modes:
            row = r["modes"].get(m)
            cells.append("" if row is None else f"{row['mean']:.2f} ± {row['se']:.2f} "
                         f"({row.get('welch_t_vs_random', float('nan')):.1f})")
        lines.append(f"| {r['env_steps']:,} | {r['updates']:,} | " + " | ".join(cells) + " |")
    if random is not None:
        lines.append(f"\nRandom play: {random.mean():.2f} ± "
                     f"{atari_summary.standard_error(random):.2f} (s.e., {len(random)} "
                     f"episodes). Each point: {rows[0]['episodes']} episodes of one checkpoint; "
                     "t: Welch's t against random play.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path, help="PNG to write")
    parser.add_argument("--title", default="")
    parser.add_argument("--random", type=pathlib.Path, default=None,
                        help="probe_atari_games.py's JSON with random play's returns")
    parser.add_argument("--game", default=None, help="the game's key in the --random JSON")
    args = parser.parse_args()
    if args.out.suffix != ".png":
        parser.error(f"--out={str(args.out)!r} must end in .png")
    rows = load(args.files)
    random = None
    if args.random is not None:
        random = atari_summary.random_returns(parser, args.random, args.game)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    steps = np.array([r["env_steps"] for r in rows])
    for i, mode in enumerate(MODES):
        points = [(s, r["modes"][mode]) for s, r in zip(steps, rows) if mode in r["modes"]]
        if points:
            x = np.array([s for s, _ in points])
            y = np.array([p["mean"] for _, p in points])
            se = np.array([p["se"] for _, p in points])
            ax.errorbar(x + (i - 1) * 0.004 * steps.max(), y, yerr=se, marker="o", ms=4,
                        capsize=3, color=f"C{i}", label=f"{mode} ({rows[0]['episodes']} episodes)")
    if random is not None:
        se = atari_summary.standard_error(random)
        ax.axhspan(random.mean() - se, random.mean() + se, color="gray", alpha=0.3,
                   label=f"random play ({len(random)} episodes)")
    ax.set_xlabel("environment steps (frames)")
    ax.set_ylabel("episode return")
    ax.set_title(textwrap.fill(args.title, 90), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    text = table(rows, random)
    args.out.with_suffix(".md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
