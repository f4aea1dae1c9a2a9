"""A timed stretch of real training: env steps per hour of `python -m dreamer_jax.train`.

    python experiments/train_stretch.py [--task dmc_walker_walk] [--preset paper] [--steps 30000]

Runs the training command (collection, C=100 updates per episode, evaluation, checkpoints, all
of it) in a fresh logdir for `--steps` env steps and reports the throughput of the part after
the seed episodes and the first compile: env steps per second from metrics.jsonl's
`env_steps_per_s` rows (one per `log_every` env steps), and the hours 1e6 env steps would take
at that rate. Writes experiments/results/train_stretch_<backend>.json and .md. Meant for a GPU
(the issue's goal: 1e6 env steps of walker_walk at the paper config in <= 20 min on one H100);
on this 2-core CPU the paper config runs at a few env steps per second.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="dmc_walker_walk")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--extra", default="", help="more flags for dreamer_jax.train, one string")
    parser.add_argument("--max_s", type=float, default=0,
                        help="stop the training after this many seconds (0: run to --steps) and "
                        "report the rate measured until then")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    import jax

    backend = jax.default_backend()
    device = str(jax.devices()[0].device_kind)
    with tempfile.TemporaryDirectory() as logdir:
        command = [sys.executable, "-m", "dreamer_jax.train", "--preset", args.preset,
                   "--task", args.task, "--steps", str(args.steps), "--logdir", logdir,
                   "--eval_every", "0", "--video_every", "0", "--log_every", "1000",
                   *args.extra.split()]
        start = time.time()
        process = subprocess.Popen(command, cwd=ROOT)
        try:
            code = process.wait(timeout=args.max_s or None)
        except subprocess.TimeoutExpired:  # Stopped on purpose: the rate so far is the result.
            process.terminate()
            process.wait()
            code = 0
        if code:
            raise SystemExit(f"the training command failed with exit code {code}")
        wall = time.time() - start
        text = (pathlib.Path(logdir) / "metrics.jsonl").read_text()
        rows = [json.loads(line) for line in text.splitlines() if line.endswith("}")]
    rates = [r["env_steps_per_s"] for r in rows if "env_steps_per_s" in r][1:]  # after compile
    if not rates:
        raise SystemExit("too few env steps to measure a rate: raise --steps or --max_s")
    rate = statistics.median(rates)
    result = {"date": datetime.date.today().isoformat(), "backend": backend, "device": device,
              "task": args.task, "preset": args.preset, "extra_flags": args.extra,
              "steps": args.steps, "max_s": args.max_s, "wall_s": wall,
              "env_steps_reached": max(r["step"] for r in rows), "env_steps_per_s": rate,
              "env_steps_per_hour": 3600 * rate, "hours_per_1e6_env_steps": 1e6 / rate / 3600}
    out = pathlib.Path(args.out) / f"train_stretch_{backend}"
    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / f"{out.name}_metrics.jsonl").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        f"# Training stretch ({device}, {result['date']})\n\n| key | value |\n|---|---|\n"
        + "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                    for k, v in result.items()) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
