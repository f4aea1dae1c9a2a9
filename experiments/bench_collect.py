"""Collection throughput with 1, 2, ... environment processes (`--envs`), from pixels.

    .venv/bin/python experiments/bench_collect.py --envs 1,2 --task dmc_walker_walk

Runs the training loop's collection (`parallel.collect` with `train.Agent.act`: the jitted
batched policy step with exploration noise, paper networks) for whole episodes and reports
agent steps per second summed over the environments. Writes experiments/results/collect_<backend>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bench import write_results  # noqa: E402
from dreamer_jax import config as config_lib, envs, parallel, train  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def measure(config: config_lib.Config, episodes: int) -> dict:
    train_envs = parallel.make_envs(config, envs.make_env, seed=0)
    try:
        learner = train.Agent(config, train_envs[0].spec, jax.random.PRNGKey(0))
        act = lambda obs, first: learner.act(obs, first, True)  # noqa: E731  As in training.
        parallel.collect(train_envs, act)  # Compile, warm the renderers.
        start = time.perf_counter()
        steps = 0
        for _ in range(episodes):
            steps += sum(len(ep["reward"]) - 1 for ep, _ in parallel.collect(train_envs, act))
        seconds = time.perf_counter() - start
    finally:
        parallel.close(train_envs)
    return {"envs": config.envs, "agent_steps": steps, "seconds": seconds,
            "agent_steps_per_s": steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="1,2")
    parser.add_argument("--task", default="dmc_walker_walk")
    parser.add_argument("--time_limit", type=int, default=400, help="env steps per episode")
    parser.add_argument("--episodes", type=int, default=2, help="timed episodes per environment")
    parser.add_argument("--out", default=str(RESULTS / f"collect_{jax.default_backend()}"))
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.envs.split(",")):
        config = config_lib.make_config("paper", task=args.task, envs=n, time_limit=args.time_limit)
        rows.append(measure(config, args.episodes))
        print(f"envs {n}: {rows[-1]['agent_steps_per_s']:.1f} agent steps/s", flush=True)
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "task": args.task, "config": "paper networks, pixels, action repeat 2, default visuals",
              "rows": rows}
    lines = [f"# Collection with parallel environment processes ({result['date']}, "
             f"{result['backend']}, {result['cpu_count']} CPUs)", "",
             f"{args.task} from 64x64 pixels, paper networks, {args.time_limit}-step episodes, "
             "policy step batched over the environments.", "",
             "| envs | agent steps/s |", "|---|---|"]
    lines += [f"| {r['envs']} | {r['agent_steps_per_s']:.1f} |" for r in rows]
    write_results(pathlib.Path(args.out), result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
