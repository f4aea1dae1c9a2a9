"""`python -m dreamer_jax.plot LOGDIR [LOGDIR ...] --out curves.png [--table scores.md]`.

Learning curves and a score table against the published numbers (`dreamer_jax.published`).
Logdirs whose configs differ only in seed (and logdir, steps and other run-time fields) are one
group: its curve is the mean evaluation return over seeds at the env steps all of them reached,
the band min..max. The published figures of the group's task are drawn in: the paper's Table G
score at 5e6 env steps (dashed), CURL's Table 1 at 100k / 500k (squares with std), the official
code's scores file at 100k / 500k / 1M (triangles). `--table` writes a markdown table of the last
evaluation of each group next to the paper's numbers for that task.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from dreamer_jax import published
from dreamer_jax.config import RUNTIME_FIELDS

# Fields that do not make two runs different experiments: seeds pool into one curve.
_NOT_EXPERIMENT = {"seed", *RUNTIME_FIELDS}


def read_records(logdir: pathlib.Path) -> list[dict]:
    """The records of `logdir/metrics.jsonl`. Lines that are not JSON (a live run mid-write, a
    run stopped by a full disk and not resumed yet) are skipped with a warning."""
    records, bad = [], 0
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
        else:
            bad += 1
    if bad:
        print(f"dreamer_jax.plot: warning: skipped {bad} unreadable line(s) of "
              f"{logdir}/metrics.jsonl", file=sys.stderr)
    return records


def read_series(logdir: pathlib.Path, key: str) -> tuple[list[int], list[float]]:
    """(env steps, values) of `key`. A resumed run redoes the updates and evaluation since its
    checkpoint at the env step its replay had reached, and logs them again: a record at or
    before the last kept step replaces the superseded ones from that step on."""
    steps, values = [], []
    for record in read_records(logdir):
        if key in record:
            while steps and steps[-1] >= record["step"]:
                steps.pop()
                values.pop()
            steps.append(record["step"])
            values.append(record[key])
    return steps, values


def read_config(logdir: pathlib.Path) -> dict:
    """The run's config with today's defaults filled in for fields added since it was saved."""
    from dreamer_jax import config as config_lib

    path = logdir / "config.json"
    if not path.exists():
        return {"task": logdir.name}
    raw = json.loads(path.read_text())
    try:
        return config_lib.to_dict(config_lib.from_dict(raw))
    except (config_lib.ConfigError, TypeError):
        return raw


def group_runs(logdirs: list[pathlib.Path]) -> dict[str, list[pathlib.Path]]:
    """Label -> logdirs of the same experiment (configs equal but for seed and run-time fields).
    The label is the task plus the fields in which groups differ."""
    configs = {d: read_config(d) for d in logdirs}
    keys = {d: tuple(sorted((k, json.dumps(v)) for k, v in c.items() if k not in _NOT_EXPERIMENT))
            for d, c in configs.items()}
    distinct = sorted(set(keys.values()))
    varying = set()
    for k in distinct:
        for other in distinct:
            varying |= {name for (name, _) in set(k) ^ set(other)}
    varying.discard("task")
    groups: dict[str, list[pathlib.Path]] = {}
    for d in logdirs:
        c = configs[d]
        shown = [n for n in sorted(varying)  # CEM settings matter to the planet behavior only.
                 if not (n.startswith("plan_") and c.get("behavior") != "planet")]
        extra = ", ".join(f"{name}={c.get(name)}" for name in shown)
        label = c.get("task", d.name) + (f" ({extra})" if extra else "")
        groups.setdefault(label, []).append(d)
    return groups


def eval_curve(logdirs: list[pathlib.Path]) -> tuple[np.ndarray, np.ndarray]:
    """(steps [S], eval returns [runs, S]) at the env steps every run of the group reached."""
    series = [dict(zip(*read_series(d, "eval_return"))) for d in logdirs]
    common = sorted(set.intersection(*(set(s) for s in series)))
    return np.array(common, int), np.array([[s[t] for t in common] for s in series]).reshape(
        len(series), len(common))


def plot(logdirs: list[pathlib.Path], out: pathlib.Path, *, title: str = "",
         reference: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    tasks = set()
    max_step = 0
    for i, (label, runs) in enumerate(group_runs(logdirs).items()):
        color = f"C{i}"
        tasks.add(published.dmc_key(read_config(runs[0]).get("task", "")))
        for d in runs:
            steps, values = read_series(d, "train_return")
            ax.plot(steps, values, color=color, alpha=0.15, lw=1)
            # A run still in progress: the published points up to its planned end are drawn.
            max_step = max([max_step, read_config(d).get("steps", 0)] + steps)
        steps, values = eval_curve(runs)
        ax.plot(steps, values.mean(0), color=color, marker="o", ms=3,
                label=f"{label}: eval, {len(runs)} seed{'s' * (len(runs) > 1)}")
        if len(runs) > 1:
            ax.fill_between(steps, values.min(0), values.max(0), color=color, alpha=0.2)
    key = published.dmc_key(reference) if reference else (tasks.pop() if len(tasks) == 1 else None)
    if key:
        draw_published(ax, key, max_step)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    # Below the axes: long run labels inside would cover the early part of the curves.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=1, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")


def draw_published(ax, key: str, max_step: int) -> None:
    for step, (mean, std) in published.CURL.get(key, {}).items():
        if step <= 1.5 * max(max_step, 1):
            ax.errorbar([step], [mean], yerr=[std], color="black", marker="s", capsize=4, ls="",
                        label=f"Dreamer pixels, CURL Tab. 1 ({step // 1000}k)")
    official = {s: v for s, v in published.OFFICIAL.get(key, {}).items() if s <= 1.5 * max(max_step, 1)}
    if official:
        ax.plot(list(official), list(official.values()), color="grey", marker="^", ls=":",
                label="Dreamer pixels, official scores file")
    score = published.TABLE_G[key]["Dreamer"]
    ax.axhline(score, color="black", ls="--", lw=1, label=f"Dreamer pixels, paper Tab. G at 5e6 ({score:.0f})")


def score_table(logdirs: list[pathlib.Path]) -> str:
    """Markdown: last eval return per group (mean ± std over seeds) next to the paper's."""
    lines = ["| run | seeds | env steps | eval return | Dreamer paper, pixels, 5e6 | PlaNet paper, 5e6 "
             "| Dreamer CURL 100k / 500k | official 100k / 500k / 1M |",
             "|---|---|---|---|---|---|---|---|"]
    means = []  # (final eval mean, paper Dreamer, paper PlaNet) of the groups with paper scores
    tasks = []  # their tasks
    for label, runs in group_runs(logdirs).items():
        steps, values = eval_curve(runs)
        if not len(steps):
            continue
        finals = values[:, -1]
        key = published.dmc_key(read_config(runs[0]).get("task", ""))
        paper = published.TABLE_G.get(key, {})
        curl = published.CURL.get(key, {})
        official = published.OFFICIAL.get(key, {})
        fmt = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        if paper.get("Dreamer") is not None:
            means.append((finals.mean(), paper["Dreamer"], paper["PlaNet"]))
            tasks.append(key)
        lines.append(
            f"| {label} | {len(runs)} | {int(steps[-1])} | {finals.mean():.0f}"
            + (f" ± {finals.std():.0f}" if len(runs) > 1 else "")
            + f" | {fmt(paper.get('Dreamer'))} | {fmt(paper.get('PlaNet'))} | "
            + (" / ".join(f"{m:.0f}±{s:.0f}" for m, s in curl.values()) or "—") + " | "
            + (" / ".join(f"{v:.0f}" for v in official.values()) or "—") + " |")
    # Figure 6 / Table G's "average" row, over the tasks present; not when groups share a task
    # (variants of one task, e.g. Figure 8's objectives, are not a benchmark average).
    if len(means) > 1 and len(set(tasks)) == len(tasks):
        ours, dreamer, planet = np.mean(means, axis=0)
        lines.append(f"| mean of the {len(means)} runs above with paper scores | | | {ours:.0f} | "
                     f"{dreamer:.0f} | {planet:.0f} | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamer_jax.plot", description=__doc__.split("\n")[0])
    parser.add_argument("logdirs", nargs="+", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--table", type=pathlib.Path, default=None, help="also write a markdown score table")
    parser.add_argument("--title", default="")
    parser.add_argument("--reference", default=None,
                        help="task whose published scores to draw (default: the runs' task)")
    args = parser.parse_args(argv)
    formats = ("png", "pdf", "svg", "jpg", "jpeg")
    if args.out.suffix.lower().lstrip(".") not in formats:
        print(f"dreamer_jax.plot: error: --out={str(args.out)!r} must end in one of "
              f"{', '.join('.' + f for f in formats)}", file=sys.stderr)
        return 2
    for logdir in args.logdirs:
        if not (logdir / "metrics.jsonl").exists():
            print(f"dreamer_jax.plot: error: {logdir}/metrics.jsonl not found", file=sys.stderr)
            return 2
    if args.reference and not published.dmc_key(args.reference):
        print(f"dreamer_jax.plot: error: --reference={args.reference!r} has no published scores; "
              f"one of {', '.join(published.TABLE_G)}", file=sys.stderr)
        return 2
    plot(args.logdirs, args.out, title=args.title, reference=args.reference)
    print(f"wrote {args.out}")
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(score_table(args.logdirs))
        print(f"wrote {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
