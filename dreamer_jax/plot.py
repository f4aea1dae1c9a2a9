"""`python -m dreamer_jax.plot LOGDIR [LOGDIR ...] --out curve.png`: learning curves.

Reads each logdir's metrics.jsonl and draws train and eval returns against env steps;
`--reference TASK` adds Dreamer's published pixel figures for that task (CURL Table 1 at 100k
and 500k env steps), which come from ../shared/reference/published.md.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

# Dreamer, 64x64 pixels, mean and std over seeds (CURL paper, Srinivas et al. 2020, Table 1).
CURL_DREAMER = {
    "finger_spin": {100_000: (341, 70), 500_000: (796, 183)},
    "cartpole_swingup": {100_000: (326, 27), 500_000: (762, 27)},
    "reacher_easy": {100_000: (314, 155), 500_000: (793, 164)},
    "cheetah_run": {100_000: (235, 137), 500_000: (570, 253)},
    "walker_walk": {100_000: (277, 12), 500_000: (897, 49)},
    "ball_in_cup_catch": {100_000: (246, 174), 500_000: (879, 87)},
}


def read_series(logdir: pathlib.Path, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if key in record:
            steps.append(record["step"])
            values.append(record[key])
    return steps, values


def plot(logdirs: list[pathlib.Path], out: pathlib.Path, *, title: str = "",
         reference: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, logdir in enumerate(logdirs):
        color = f"C{i}"
        steps, values = read_series(logdir, "train_return")
        ax.plot(steps, values, color=color, alpha=0.3, lw=1)
        steps, values = read_series(logdir, "eval_return")
        ax.plot(steps, values, color=color, marker="o", ms=3, label=f"{logdir.name} (eval)")
    if reference in CURL_DREAMER:
        for step, (mean, std) in CURL_DREAMER[reference].items():
            ax.errorbar([step], [mean], yerr=[std], color="black", marker="s", capsize=4,
                        label=f"Dreamer pixels, CURL Tab. 1 ({step // 1000}k)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamer_jax.plot", description=__doc__.split("\n")[0])
    parser.add_argument("logdirs", nargs="+", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--reference", default=None, help=f"one of {', '.join(CURL_DREAMER)}")
    args = parser.parse_args(argv)
    for logdir in args.logdirs:
        if not (logdir / "metrics.jsonl").exists():
            print(f"dreamer_jax.plot: error: {logdir}/metrics.jsonl not found", file=sys.stderr)
            return 2
    plot(args.logdirs, args.out, title=args.title, reference=args.reference)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
