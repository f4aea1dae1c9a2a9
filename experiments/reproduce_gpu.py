"""Paper-scale runs, scripted for GPU machines (none of this fits a 2-core CPU: reproduce_cpu.sh).

    python experiments/reproduce_gpu.py table_g            # Table G / Figure 6: 20 tasks x 5 seeds, 5e6 steps
    python experiments/reproduce_gpu.py curl               # CURL's 6 PlaNet-benchmark tasks x 5 seeds, 500k
    python experiments/reproduce_gpu.py fig4               # Figure 4: 3 behaviors x horizons, 3 tasks
    python experiments/reproduce_gpu.py fig8               # Figure 8: 3 objectives x 20 tasks
    python experiments/reproduce_gpu.py atari --tasks boxing,pong --steps 10000000   # Figure 9

Every run is `python -m dreamer_jax.train --preset paper ...` (`--preset atari` for Atari) in its
own logdir under --runs; its output (a progress line a minute) goes to <runs>/logs/<run>.log.
Running the same command again resumes every run (a finished one exits at once), so the script
can be killed at any time. Runs are spread over the visible GPUs, --per_gpu at a time on each
(more than one shares a GPU's memory: XLA_PYTHON_CLIENT_PREALLOCATE=false). When all runs have
ended, one learning-curve PNG and one score table per task go to <runs>/plots/
(`dreamer_jax.plot`, the paper's numbers drawn in). `--dry_run` prints the commands, the number
of env steps and the GPU-hours at the paper's rate (3 h per 1e6 env steps on one V100, Section 6)
and starts nothing.

The step counts of Figures 4 and 9 and the horizons on Figure 4's axis are not in the paper's
text; the defaults here (5e6 steps for Figure 4 and 8, horizons 5..25) are this project's choice,
flags change them.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dreamer_jax import envs, published, replay  # noqa: E402

PAPER_HOURS_PER_MILLION = 3.0  # Section 6: one V100 and 10 CPU cores per run.
CURL_TASKS = ("finger_spin", "cartpole_swingup", "reacher_easy", "cheetah_run", "walker_walk",
              "ball_in_cup_catch")
FIG4_TASKS = ("acrobot_swingup", "cartpole_swingup_sparse", "hopper_hop")  # long-horizon ones (Fig. 7)


@dataclasses.dataclass(frozen=True)
class Run:
    name: str  # logdir under --runs and log file name
    task: str  # reference task for plotting (Table G key), or the Atari task
    args: tuple[str, ...]  # flags of dreamer_jax.train after --preset

    def command(self, runs: pathlib.Path, python: str) -> list[str]:
        return [python, "-m", "dreamer_jax.train", *self.args, "--logdir", str(runs / self.name)]


def _split(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def keep_all_replay_gib(steps: int, action_repeat: int, action_dim: int) -> int:
    """`--replay_ram_gib` that keeps every episode of a run in RAM, as the paper samples from all
    data: 64x64x3 uint8 frames plus actions, rewards and discounts, +10%, at least the default 8.
    `action_dim`: a bound (21, humanoid's, for the suite; 18 one-hot actions on Atari)."""
    step = replay.step_nbytes((64, 64, 3), np.uint8, action_dim)
    return max(8, math.ceil(steps / action_repeat * step * 1.1 / 2**30))


def plan(experiment: str, tasks: list[str] | None, seeds: list[int], steps: int | None,
         horizons: list[int]) -> list[Run]:
    """The runs of one experiment; every flag is one of dreamer_jax.train's."""
    runs = []
    if experiment in ("table_g", "curl", "fig8"):
        default = CURL_TASKS if experiment == "curl" else envs.PAPER_TASKS
        steps = steps or (500_000 if experiment == "curl" else published.TABLE_G_STEPS)
        objectives = ("reconstruction", "contrastive", "reward") if experiment == "fig8" else (None,)
        for task in tasks or default:
            for objective in objectives:
                for seed in seeds:
                    extra = ("--objective", objective) if objective else ()
                    tag = f"_{objective}" if objective else ""
                    runs.append(Run(f"{experiment}/{task}{tag}_s{seed}", task, (
                        "--preset", "paper", "--task", f"dmc_{task}", "--seed", str(seed),
                        "--steps", str(steps), "--replay_ram_gib",
                        str(keep_all_replay_gib(steps, 2, 21)), *extra)))
    elif experiment == "fig4":
        steps = steps or published.TABLE_G_STEPS
        for task in tasks or FIG4_TASKS:
            for horizon in horizons:
                for behavior in ("dreamer", "only_action", "planet"):
                    length = ("--plan_horizon" if behavior == "planet" else "--horizon", str(horizon))
                    for seed in seeds:
                        runs.append(Run(f"fig4/{task}_{behavior}_h{horizon}_s{seed}", task, (
                            "--preset", "paper", "--task", f"dmc_{task}", "--seed", str(seed),
                            "--steps", str(steps), "--replay_ram_gib",
                            str(keep_all_replay_gib(steps, 2, 21)), "--behavior", behavior, *length)))
    elif experiment == "atari":
        steps = steps or published.TABLE_G_STEPS
        for game in tasks or ("boxing", "pong"):
            for seed in seeds:
                runs.append(Run(f"atari/{game}_s{seed}", f"atari_{game}", (
                    "--preset", "atari", "--task", f"atari_{game}", "--seed", str(seed),
                    "--steps", str(steps), "--replay_ram_gib", str(keep_all_replay_gib(steps, 4, 18)))))
    else:
        raise ValueError(experiment)
    return runs


def check(runs: list[Run]) -> None:
    """Every run's flags resolve to a valid config (one line and exit 2 on the first bad one)."""
    from dreamer_jax import train
    from dreamer_jax.config import ConfigError

    for run in runs:
        try:
            train.resolve_config([*run.args, "--logdir", "/nonexistent/dry-run"])
        except (train.UsageError, ConfigError) as e:
            print(f"reproduce_gpu: error: {run.name}: {e}", file=sys.stderr)
            raise SystemExit(2)


def gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
        return len([line for line in out.splitlines() if line.startswith("GPU")])
    return 0


def launch(runs: list[Run], root: pathlib.Path, gpus: list[str], per_gpu: int, python: str) -> list[str]:
    """Run everything, len(gpus) * per_gpu at a time; the names of the runs that failed."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    pending, active, failed = list(runs), {}, []
    slots = [gpu for gpu in gpus for _ in range(per_gpu)]
    while pending or active:
        free = [s for s in range(len(slots)) if s not in active]
        while pending and free:
            run, slot = pending.pop(0), free.pop(0)
            log = root / "logs" / (run.name.replace("/", "_") + ".log")
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=slots[slot])
            if per_gpu > 1:
                env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
            with open(log, "a") as f:
                proc = subprocess.Popen(run.command(root, python), stdout=f, stderr=subprocess.STDOUT,
                                        env=env, cwd=REPO)
            active[slot] = (run, proc)
            print(f"[reproduce_gpu] started {run.name} on GPU {slots[slot]} (log {log})", flush=True)
        time.sleep(5)
        for slot, (run, proc) in list(active.items()):
            if proc.poll() is not None:
                del active[slot]
                status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                print(f"[reproduce_gpu] {run.name}: {status}", flush=True)
                if proc.returncode:
                    failed.append(run.name)
    return failed


def plots(runs: list[Run], root: pathlib.Path, experiment: str, python: str) -> None:
    by_task: dict[str, list[pathlib.Path]] = {}
    for run in runs:
        logdir = root / run.name
        if (logdir / "metrics.jsonl").exists():
            by_task.setdefault(run.task, []).append(logdir)
    for task, logdirs in by_task.items():
        reference = ["--reference", task] if published.dmc_key(task) else []
        out = root / "plots" / f"{experiment}_{task}"
        subprocess.run([python, "-m", "dreamer_jax.plot", *map(str, logdirs), "--out", f"{out}.png",
                        "--table", f"{out}.md", "--title", f"{task}, {experiment}", *reference],
                       cwd=REPO, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python experiments/reproduce_gpu.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=("table_g", "curl", "fig4", "fig8", "atari"))
    parser.add_argument("--runs", type=pathlib.Path, default=REPO / "runs_gpu")
    parser.add_argument("--tasks", default=None, help="comma-separated, without the dmc_/atari_ prefix")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run")
    parser.add_argument("--horizons", default="5,10,15,20,25", help="fig4 only")
    parser.add_argument("--per_gpu", type=int, default=1, help="runs at a time on each GPU")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--dry_run", action="store_true")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in _split(args.seeds)]
        horizons = [int(h) for h in _split(args.horizons)]
    except ValueError:
        parser.error(f"--seeds={args.seeds!r} / --horizons={args.horizons!r} must be integers")
    tasks = _split(args.tasks) if args.tasks else None
    runs = plan(args.experiment, tasks, seeds, args.steps, horizons)
    check(runs)
    total = sum(int(r.args[r.args.index("--steps") + 1]) for r in runs)
    ram = max(int(r.args[r.args.index("--replay_ram_gib") + 1]) for r in runs)
    print(f"[reproduce_gpu] {args.experiment}: {len(runs)} runs, {total:.3g} env steps, "
          f"~{total / 1e6 * PAPER_HOURS_PER_MILLION:.0f} GPU-hours at the paper's 3 h per 1e6 (V100); "
          f"replay RAM up to {ram} GiB per run (every episode stays sampled, as in the paper) "
          f"x the runs at a time (--per_gpu x GPUs)")
    if args.dry_run:
        for run in runs:
            print(" ".join(run.command(args.runs, "python")))
        return 0
    n = gpu_count()
    if n == 0:
        print("reproduce_gpu: error: no GPU visible (nvidia-smi -L lists none); these runs need one "
              "each (on a CPU use experiments/reproduce_cpu.sh)", file=sys.stderr)
        return 2
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = _split(visible) if visible else [str(i) for i in range(n)]
    failed = launch(runs, args.runs, gpus, args.per_gpu, args.python)
    plots(runs, args.runs, args.experiment, args.python)
    if failed:
        print(f"[reproduce_gpu] {len(failed)} runs failed: {', '.join(failed)}; see {args.runs}/logs/; "
              "run the same command again to resume them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
