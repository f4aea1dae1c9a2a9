"""Probe a trained run's action model: returns, action saturation and the pre-tanh Normal of
the actor along evaluation episodes, with the mode action and with sample + exploration noise.

    .venv/bin/python experiments/probe_actions.py --logdir runs/state_lr3e4 --episodes 3

This is how the saturated-action plateau of docs/cpu_runs.md was found.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from dreamer_jax import agent, api, envs, nets, rssm, train_state  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    loaded = api.load_agent(args.logdir, load_replay=False)
    config = loaded.config
    env = envs.make_env(config, seed=args.seed)
    policy = train_state.make_policy(loaded.nets)

    @jax.jit
    def actor_normal(feat):
        raw = loaded.nets.actor.apply(loaded.params["actor"], feat)
        return nets.tanh_normal_params(raw, mean_scale=config.mean_scale,
                                       init_std=config.init_std, min_std=config.action_min_std)

    key = jax.random.PRNGKey(args.seed)
    for sample in (False, True):
        returns, actions, means, stds = [], [], [], []
        for _ in range(args.episodes):
            carry, obs, done, total = agent.initial_carry(loaded.nets, 1), env.reset(), False, 0.0
            while not done:
                key, k = jax.random.split(key)
                noise = config.expl_noise if sample else 0.0
                carry, action = policy(loaded.params, carry, obs[None], k, noise, sample)
                mean, std = actor_normal(rssm.feature(carry.latent))
                means.append(np.abs(np.asarray(mean[0])))
                stds.append(np.asarray(std[0]))
                actions.append(np.abs(np.asarray(action[0])))
                obs, reward, done, _ = env.step(np.asarray(action[0]))
                total += reward
            returns.append(total)
        actions = np.concatenate(actions)
        print(f"{'sample + noise' if sample else 'mode':>14}: returns {np.round(returns, 1).tolist()}, "
              f"|a| > 0.95 on {np.mean(actions > 0.95):.0%} of steps, mean |a| {actions.mean():.2f}, "
              f"pre-tanh |mean| median {np.median(np.concatenate(means)):.2f}, "
              f"std median {np.median(np.concatenate(stds)):.4f}")
    env.close()


if __name__ == "__main__":
    main()
