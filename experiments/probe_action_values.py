"""What a discrete-action run's world model says each action is worth, at replay states.

For N posterior states s of a replay batch and every action k, imagine a_0 = k, then the action
model for the remaining H - 1 steps, and take the model's action value
Q(s, k) = V_lambda(s_0) of that trajectory (eq. 6 with the run's reward, value and discount
heads), averaged over --samples imagined trajectories. The advantage A(s, k) = Q(s, k) -
mean_k Q(s, k) splits into a part shared by all states (mean_s A(s, k): "action k is good
everywhere") and a state-dependent rest. The straight-through actor follows both; only the
second can make a policy better than a fixed action. The straight-through gradient
dV_lambda(s_0) / da_0 at a sampled a_0 (what pushes the actor's logits) is compared with A(s, .):
their correlation over actions, and how often its largest entry is the best action. Also prints
the action model's mean probabilities and its entropy at the same states.

    .venv/bin/python experiments/probe_action_values.py runs/atari_pong_ram_ent0.03

Prints one summary line per run and, with --out, writes them as JSON.
"""
from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from dreamer_jax import agent as agent_lib, api, imagine, rssm, train_state  # noqa: E402


def value_of_first_action(nets, params, start, first, key, *, horizon, discount, lambda_):
    """V_lambda(s_0) [N] of trajectories whose first action is `first` [N, A] (one-hot, or any
    vector: the dynamics take it as input), then the action model for H - 1 steps. Unlike
    `imagine()`, which holds its start fixed, gradients flow from every later state back to
    `first`, as they flow to a_0 in the actor loss."""
    keys = jax.random.split(key, horizon)
    s1 = rssm.img_step(nets.rssm, params["world"]["rssm"], start, first, keys[0])

    def step(state, k):  # The action model's step of imagine(): stop-gradient features.
        act_key, img_key = jax.random.split(k)
        feat = jax.lax.stop_gradient(rssm.feature(state))
        action = agent_lib.action_dist_sample(nets, params["actor"], feat, act_key)
        state = rssm.img_step(nets.rssm, params["world"]["rssm"], state, action, img_key)
        return state, rssm.feature(state)

    _, feats = jax.lax.scan(step, s1, keys[1:])
    feat = jnp.concatenate([rssm.feature(start)[None], rssm.feature(s1)[None], feats], 0)
    reward, value, disc = agent_lib.heads(nets, params["world"], params["value"], feat,
                                          discount=discount)
    # The imagined rewards alone, r(s_0) .. r(s_{H-1}) discounted by the predicted discounts,
    # for experiments/probe_atari_action_values.py's emulator rollouts. r(s_0), the reward of
    # reaching s_0, is the same for every first action and cancels in the advantages, so these
    # cover the rewards after a_0 .. a_{H-2}: one step fewer than the emulator's H.
    weights = jnp.cumprod(jnp.concatenate([jnp.ones_like(disc[:1]), disc[:-2]], 0), 0)
    rewards = (weights * reward[:-1]).sum(0)
    return imagine.lambda_returns(reward, value, disc, lambda_=lambda_)[0], rewards


def action_values(nets, params, start, key, *, horizon, discount, lambda_, samples):
    """Q [N, A]: V_lambda(s_0) with a_0 forced to each one-hot action, and G [N, A]: the
    straight-through gradient dV_lambda(s_0) / da_0 at an a_0 sampled from the action model,
    the direction the actor's logits are pushed in. Both averaged over `samples` trajectories
    (the same imagination noise for every action)."""
    n, num = start.deter.shape[0], nets.spec.action_dim
    value = functools.partial(value_of_first_action, nets, params, start, horizon=horizon,
                              discount=discount, lambda_=lambda_)

    def one_sample(k):
        k_act, k_traj = jax.random.split(k)
        q, q_reward = jax.vmap(lambda i: value(jax.nn.one_hot(jnp.full((n,), i), num), k_traj))(
            jnp.arange(num))
        sampled = agent_lib.action_dist_sample(nets, params["actor"], rssm.feature(start), k_act)
        grad = jax.grad(lambda a: value(a, k_traj)[0].sum())(sampled)
        return q.T, q_reward.T, grad

    q, q_reward, grad = jax.vmap(one_sample)(jax.random.split(key, samples))
    return q.mean(0), q_reward.mean(0), grad.mean(0)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two flattened arrays; NaN when either is constant."""
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    norm = np.sqrt((a ** 2).sum() * (b ** 2).sum())
    return float((a * b).sum() / norm) if norm > 0 else float("nan")


def split_advantage(q: np.ndarray, name: str) -> dict:
    """RMS of the advantage A(s, k) = q(s, k) - mean_k q(s, k) [N, A], of its part shared by
    all states (mean over s) and of the state-dependent rest (the squares add up)."""
    adv = q - q.mean(1, keepdims=True)
    shared = adv.mean(0)
    return {f"{name}_rms": float(np.sqrt((adv ** 2).mean())),
            f"{name}_shared_rms": float(np.sqrt((shared ** 2).mean())),
            f"{name}_state_rms": float(np.sqrt(((adv - shared) ** 2).mean()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdirs", nargs="+")
    parser.add_argument("--sequences", type=int, default=8,
                        help="replay sequences (N = sequences x seq_len starts)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for logdir in args.logdirs:
        loaded = api.load_agent(logdir)
        config, nets, params = loaded.config, loaded.nets, loaded.params
        if not nets.spec.discrete:
            raise SystemExit(f"probe_action_values: {logdir} has continuous actions")
        key = jax.random.PRNGKey(args.seed)
        batch = loaded.replay.sample(np.random.default_rng(args.seed), args.sequences,
                                     config.seq_len)
        post = train_state.observe_posteriors(nets, params["world"], batch, key)
        start = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), post)
        fn = jax.jit(action_values, static_argnums=0,
                     static_argnames=("horizon", "discount", "lambda_", "samples"))
        q, q_reward, grad = jax.device_get(fn(
            nets, params, start, jax.random.fold_in(key, 1), horizon=config.horizon,
            discount=config.discount, lambda_=config.lambda_, samples=args.samples))
        adv = q - q.mean(1, keepdims=True)
        g = grad - grad.mean(1, keepdims=True)  # Softmax logits ignore a shift shared by all.
        shared = adv.mean(0)  # [A] the part every state agrees on
        probs = np.asarray(jax.nn.softmax(nets.actor.apply(params["actor"], rssm.feature(start))))
        entropy = float(-(probs * np.log(probs + 1e-12)).sum(-1).mean())
        best_here = np.argmax(q, 1)
        row = dict(
            logdir=logdir, updates=int(loaded.meta["counters"]["updates"]),
            env_steps=int(loaded.meta["counters"]["env_steps"]), states=int(q.shape[0]),
            q_mean=float(q.mean()), q_state_std=float(q.mean(1).std()),
            **split_advantage(q, "adv"),
            best_shared_action=int(np.argmax(shared)),
            states_whose_best_is_it=float(np.mean(best_here == np.argmax(shared))),
            distinct_best_actions=int(len(np.unique(best_here))),
            policy_mean_probs=np.round(probs.mean(0), 3).tolist(),
            policy_top_action=int(np.argmax(probs.mean(0))), policy_entropy=entropy,
            policy_prob_of_state_best=float(
                np.take_along_axis(probs, best_here[:, None], 1).mean()),
            # Does the straight-through gradient point where the model's action values do?
            grad_adv_correlation=float(np.nanmean([correlation(a, b) for a, b in zip(adv, g)])),
            grad_argmax_is_best=float(np.mean(np.argmax(g, 1) == best_here)),
            grad_rms=float(np.sqrt((g ** 2).mean())),
            # The same split for the discounted imagined rewards of the H steps alone.
            reward_sum_mean=float(q_reward.mean()),
            **split_advantage(q_reward, "reward_adv"))
        rows.append(row)
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
