"""Which Atari games can show learning at a CPU budget? Random play against each fixed action.

For each game: episodes of uniformly random actions, then one episode per fixed action of the full
action set, all with the Machado protocol of dreamer_jax's Atari environment (sticky actions .25,
action repeat 4) and at most --max_steps agent steps. A game suits a short run when random
episodes are short, rewards come often, and some simple behaviour beats random play by far.

    .venv/bin/python experiments/probe_atari_games.py --games road_runner kangaroo \
        --out experiments/results/probe_atari_games.json

Writes JSON (per game: random returns, lengths, reward rate; return per fixed action) and a
markdown table next to it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from dreamer_jax import gym_envs  # noqa: E402


def play(env, policy, rng, max_steps):
    env.reset()
    total, steps, rewarded, done = 0.0, 0, 0, False
    while not done and steps < max_steps:
        _, reward, done, _ = env.step(policy(rng))
        total += reward
        rewarded += reward != 0
        steps += 1
    return total, steps, rewarded


def one_hot(index, n):
    action = np.zeros(n, np.float32)
    action[index] = 1.0
    return action


def probe(game, episodes, max_steps, seed):
    env = gym_envs.AtariEnv(game, obs="state", action_repeat=4, time_limit=108_000, seed=seed)
    n = env.spec.action_dim
    rng = np.random.default_rng(seed)
    rand = [play(env, lambda r: one_hot(r.integers(n), n), rng, max_steps) for _ in range(episodes)]
    fixed = [play(env, lambda r, a=a: one_hot(a, n), rng, max_steps)[0] for a in range(n)]
    env.close()
    returns = [r[0] for r in rand]
    return dict(
        random_returns=returns, random_mean=float(np.mean(returns)),
        random_std=float(np.std(returns)), random_lengths=[r[1] for r in rand],
        random_reward_rate=float(sum(r[2] for r in rand) / max(1, sum(r[1] for r in rand))),
        fixed_action_returns=fixed, best_fixed_action=int(np.argmax(fixed)),
        best_fixed_return=float(np.max(fixed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", required=True)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--max_steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    results = {}
    for game in args.games:
        results[game] = probe(game, args.episodes, args.max_steps, args.seed)
        r = results[game]
        print(f"{game}: random {r['random_mean']:.0f}±{r['random_std']:.0f} "
              f"(len {np.mean(r['random_lengths']):.0f}, reward rate {r['random_reward_rate']:.3f}), "
              f"best fixed action {r['best_fixed_action']}: {r['best_fixed_return']:.0f}", flush=True)
    out = pathlib.Path(args.out)
    meta = dict(date=datetime.date.today().isoformat(), machine=platform.processor() or platform.machine(),
                episodes=args.episodes, max_agent_steps=args.max_steps, action_repeat=4,
                sticky_actions=0.25, seed=args.seed)
    out.write_text(json.dumps(dict(meta=meta, games=results), indent=1))
    lines = ["| game | random return (mean ± std) | random episode length (agent steps) | "
             "steps with reward | best fixed action: return |", "|---|---|---|---|---|"]
    for game, r in results.items():
        lines.append(f"| {game} | {r['random_mean']:.0f} ± {r['random_std']:.0f} | "
                     f"{np.mean(r['random_lengths']):.0f} | {r['random_reward_rate']:.1%} | "
                     f"{r['best_fixed_action']}: {r['best_fixed_return']:.0f} |")
    out.with_suffix(".md").write_text(
        f"Atari games under random play and each fixed action ({meta['date']}, {args.episodes} random "
        f"episodes, one per fixed action, at most {args.max_steps} agent steps, action repeat 4, "
        "sticky actions .25)\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
