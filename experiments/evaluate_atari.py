"""Many evaluation episodes of one checkpoint of a run, per way of acting, against random play.

The training loop evaluates with a few greedy episodes per point, too few to tell a small gain
from chance. This loads the newest checkpoint of a logdir (`api.load_agent`; or the file given
with --checkpoint, e.g. one copied aside before the run deleted it) and plays
--episodes episodes of its task in each mode (fresh environment seeds, apart from the run's):

- greedy: the mode action (the training loop's evaluation);
- sample: actions sampled from the actor, no exploration noise;
- train: as the training episodes act, sampled plus the exploration noise (epsilon) of the
  checkpoint's update count.

    .venv/bin/python experiments/evaluate_atari.py --logdir RUN --episodes 30 \
        --random experiments/results/probe_boxing_random30.json --game boxing \
        --out experiments/results/evaluate_boxing_ram_ent0.03_s0.json

Writes JSON (returns per mode, mean, standard error, Welch's t against random play) and prints a
markdown table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import atari_summary  # noqa: E402

MODES = ("greedy", "sample", "train")


def play(loaded, mode: str, episodes: int, lockstep: int, seed: int) -> list[float]:
    """Returns of `episodes` episodes acted in `mode`, `lockstep` environments at a time."""
    import jax

    from dreamer_jax import agent, envs, parallel, train, train_state

    config, nets = loaded.config, loaded.nets
    act = train_state.make_acting_policy(nets)
    updates = int(loaded.meta["counters"]["updates"])
    noise = train.exploration(config, updates) if mode == "train" else 0.0
    key = jax.random.PRNGKey(seed)
    returns = []
    while len(returns) < episodes:
        count = min(lockstep, episodes - len(returns))
        batch = [envs.make_env(config, seed=seed + len(returns) + i) for i in range(count)]
        state = {"carry": None, "key": key}

        def step(obs, first, state=state):
            if np.any(first):
                state["carry"] = agent.initial_carry(nets, len(obs))
            state["carry"], action, state["key"] = act(loaded.params, state["carry"], obs,
                                                       state["key"], noise, mode != "greedy")
            return np.asarray(action)

        returns += [ret for _, ret in parallel.collect(batch, step)]
        key = state["key"]
        for env in batch:
            env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--checkpoint", default=None,
                        help="a checkpoint file of this run to play instead of its newest (e.g. "
                        "one copied aside before the run deleted it)")
    parser.add_argument("--episodes", type=int, default=30, help="episodes per mode")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated of {MODES}")
    parser.add_argument("--lockstep", type=int, default=10,
                        help="environments stepped together (one batched policy call)")
    parser.add_argument("--seed", type=int, default=100_000,
                        help="first environment seed (the runs use their --seed and --seed+1)")
    parser.add_argument("--random", type=pathlib.Path, default=None,
                        help="probe_atari_games.py's JSON with random play's returns")
    parser.add_argument("--game", default=None, help="the game's key in the --random JSON")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args()
    modes = args.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    if bad or args.episodes < 2 or args.lockstep < 1:
        parser.error(f"--modes {args.modes!r} / --episodes {args.episodes} / --lockstep "
                     f"{args.lockstep}: modes must be among {MODES}, episodes >= 2, lockstep >= 1")
    random = None
    if args.random is not None:
        random = atari_summary.random_returns(parser, args.random, args.game)
    from dreamer_jax import api, checkpoint, config

    try:
        loaded = api.load_agent(args.logdir, load_replay=False, checkpoint_file=args.checkpoint)
    except (FileNotFoundError, config.ConfigError, checkpoint.CheckpointError) as e:
        sys.exit(f"evaluate_atari.py: error: {e}")
    result = {"date": datetime.date.today().isoformat(), "logdir": str(args.logdir),
              "checkpoint": args.checkpoint or "newest",
              "task": loaded.config.task, "updates": int(loaded.meta["counters"]["updates"]),
              "env_steps": int(loaded.meta["counters"]["env_steps"]),
              "episodes": args.episodes, "modes": {}}
    lines = ["| mode | episodes | mean return | s.e. | Welch t vs random |", "|---|---|---|---|---|"]
    for mode in modes:
        start = time.perf_counter()
        returns = np.asarray(play(loaded, mode, args.episodes, args.lockstep, args.seed))
        row = {"returns": returns.tolist(), "mean": float(returns.mean()),
               "se": atari_summary.standard_error(returns),
               "seconds": round(time.perf_counter() - start, 1)}
        if random is not None:
            row["welch_t_vs_random"] = atari_summary.welch_t(returns, random)
        result["modes"][mode] = row
        lines.append(f"| {mode} | {len(returns)} | {row['mean']:.2f} | {row['se']:.2f} | "
                     f"{row.get('welch_t_vs_random', float('nan')):.1f} |")
        print(lines[-1], flush=True)
    if random is not None:
        result["random_mean"], result["random_episodes"] = float(random.mean()), len(random)
    print(f"{result['task']} at {result['updates']} updates ({result['env_steps']:,} env steps)")
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
