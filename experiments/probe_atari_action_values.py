"""How much the first action matters in an Atari game, measured in the emulator, and whether a
run's world model knows it.

The ground truth for experiments/probe_action_values.py's model estimates: from states visited
by random play, restore the emulator, take each action of the full set, then --continuations
random action sequences (the same ones for every first action) for the remaining H - 1 agent
steps, and average the discounted tanh rewards (the atari preset's reward targets, gamma .99,
H = 10, action repeat 4, sticky actions .25). The restored state does not fix the sticky-action
draws; their noise is estimated from two halves of the continuations. The advantage
A(s, k) = Q(s, k) - mean_k Q(s, k) splits into a part shared by all states and a
state-dependent rest, as in the model probe's `reward_adv_*` fields. Also: RAM[--byte] after
holding each action --hold agent steps (Pong: byte 51, the player's paddle).

With --logdir (a run on the same game from its RAM, `--obs state`) the run's world model follows
the same random-play trajectory (posterior states from the observations and the actions taken).
At each probed state its imagined discounted rewards for each first action
(probe_action_values.action_values) are compared with the emulator's (does the model know where,
and which, actions matter?), and the byte decoded from its imagined states after holding each
action with the emulator's (does it know what the actions move?).

    .venv/bin/python experiments/probe_atari_action_values.py --game pong --states 400 \
        --logdir runs/atari_pong_ram_ent0.03 \
        --out experiments/results/probe_pong_action_values_model_ent0.03.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import probe_action_values  # noqa: E402
from dreamer_jax import gym_envs  # noqa: E402
from probe_action_values import correlation  # noqa: E402
from probe_atari_games import one_hot  # noqa: E402


def rollout(env, first: int, rest: np.ndarray, discount: float) -> float:
    """Discounted tanh rewards of `first`, then the actions `rest`, until the episode ends."""
    n = env.spec.action_dim
    total, scale = 0.0, 1.0
    for index in np.concatenate([[first], rest]):
        _, reward, done, _ = env.step(one_hot(int(index), n))
        total += scale * np.tanh(reward)
        scale *= discount
        if done:
            break
    return total


def actions_matter(q: np.ndarray) -> np.ndarray:
    """[states] bool: the first actions' discounted rewards q [states, A] are not all equal."""
    return np.ptp(q, 1) > 1e-6


class ModelTracker:
    """A run's posterior state along the trajectory the probe plays (no model: does nothing)."""

    def __init__(self, logdir: str | None):
        self.loaded, self.latents, self.logdir = None, [], logdir
        if logdir is None:
            return
        from dreamer_jax import agent, api, train_state

        self.loaded = api.load_agent(logdir, load_replay=False)
        self.policy = train_state.make_policy(self.loaded.nets)
        self.initial = lambda: agent.initial_carry(self.loaded.nets, 1)
        self.key = jax.random.PRNGKey(0)

    def observe(self, obs: np.ndarray, action: np.ndarray | None) -> None:
        """The posterior after `obs`, which followed `action` (None: the episode's first)."""
        if self.loaded is None:
            return
        carry = self.initial() if action is None else self.carry._replace(action=action[None])
        self.key, key = jax.random.split(self.key)
        self.carry, _ = self.policy(self.loaded.params, carry, obs[None], key, 0.0, False)

    def snapshot(self) -> None:
        if self.loaded is not None:
            self.latents.append(self.carry.latent)


def action_values(game: str, states: int, every: int, continuations: int, horizon: int,
                  discount: float, seed: int, model: ModelTracker, byte: int, hold: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Returns [states, A, continuations] at every `every`-th state of random-play episodes,
    and RAM[byte] [states, A + 1]: at the state, then after holding each action `hold` steps."""
    env = gym_envs.AtariEnv(game, obs="state", action_repeat=4, time_limit=108_000, seed=seed)
    ale, n = env._env.ale, env.spec.action_dim
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    held: list[list[int]] = []
    model.observe(env.reset(), None)
    while len(rows) < states:
        for _ in range(every):
            action = one_hot(int(rng.integers(n)), n)
            obs, _, done, _ = env.step(action)
            model.observe(obs, action)
            if done:
                model.observe(env.reset(), None)
        model.snapshot()
        snapshot, counters = ale.cloneState(), (env._lives, env._steps)

        def restore():
            ale.restoreState(snapshot)
            env._lives, env._steps = counters

        rests = rng.integers(n, size=(continuations, horizon - 1))
        q = np.zeros((n, continuations))
        for k in range(n):
            for c, rest in enumerate(rests):
                restore()
                q[k, c] = rollout(env, k, rest, discount)
        restore()
        held.append([int(ale.getRAM()[byte])])
        for k in range(n):
            restore()
            for _ in range(hold):
                env.step(one_hot(k, n))
            held[-1].append(int(ale.getRAM()[byte]))
        restore()
        rows.append(q)
    env.close()
    return np.stack(rows), np.array(held)


def model_held_bytes(nets, world, start, key, *, hold: int, byte: int) -> jax.Array:
    """RAM[byte] [N, A + 1] decoded from the model: at `start`, then after holding each action
    for `hold` imagined steps (bits of the decoder's mean, most significant first)."""
    from dreamer_jax import rssm

    num = nets.spec.action_dim
    weights = 2 ** jax.numpy.arange(7, -1, -1)

    def decode(state):
        bits = nets.decoder.apply(world["decoder"], rssm.feature(state))[..., 8 * byte:8 * byte + 8]
        return ((bits > 0) * weights).sum(-1)

    def held(index):
        action = jax.nn.one_hot(jax.numpy.full(start.deter.shape[:1], index), num)
        state, _ = jax.lax.scan(
            lambda s, k: (rssm.img_step(nets.rssm, world["rssm"], s, action, k), None),
            start, jax.random.split(key, hold))
        return decode(state)

    return jax.numpy.concatenate([decode(start)[:, None],
                                  jax.vmap(held)(jax.numpy.arange(num)).T], 1)


def compare_model(model: ModelTracker, q: np.ndarray, held: np.ndarray, samples: int, seed: int,
                  byte: int, hold: int) -> dict:
    """The run's imagined discounted rewards per first action at the probed states, against the
    emulator's `q` [states, A]; and its RAM[byte] after holding each action, against `held`."""
    config, nets, params = model.loaded.config, model.loaded.nets, model.loaded.params
    start = jax.tree.map(lambda *x: jax.numpy.concatenate(x), *model.latents)
    fn = jax.jit(probe_action_values.action_values, static_argnums=0,
                 static_argnames=("horizon", "discount", "lambda_", "samples"))
    _, q_model, _ = jax.device_get(fn(nets, params, start, jax.random.PRNGKey(seed + 1),
                                      horizon=config.horizon, discount=config.discount,
                                      lambda_=config.lambda_, samples=samples))
    held_model = np.asarray(jax.jit(model_held_bytes, static_argnums=0,
                                    static_argnames=("hold", "byte"))(
        nets, params["world"], start, jax.random.PRNGKey(seed + 2), hold=hold, byte=byte))
    true = q - q.mean(1, keepdims=True)
    pred = q_model - q_model.mean(1, keepdims=True)
    matters = actions_matter(q)
    rms = lambda x: float(np.sqrt((x ** 2).mean())) if x.size else float("nan")  # noqa: E731
    return dict(
        logdir=model.logdir,
        updates=int(model.loaded.meta["counters"]["updates"]),
        model_reward_sum_mean=float(q_model.mean()),
        model_reward_adv_rms=rms(pred),
        model_reward_adv_rms_where_actions_matter=rms(pred[matters]),
        model_reward_adv_rms_elsewhere=rms(pred[~matters]),
        # Over all (state, action) pairs: does the model's advantage follow the emulator's?
        adv_correlation=correlation(true, pred),
        # Where actions matter: is the model's best first action one of the emulator's best?
        model_best_is_a_true_best=float(np.mean(
            (q[np.arange(len(q)), np.argmax(q_model, 1)] >= q.max(1) - 1e-6)[matters])),
        states_probed=int(len(q)), states_where_actions_matter=int(matters.sum()),
        **compare_held(held, held_model))


def compare_held(true: np.ndarray, pred: np.ndarray) -> dict:
    """RAM byte [states, A + 1] of the emulator and of the model: does the model decode it at the
    probed state, and does it move it with the actions as the emulator does?"""
    move_true = true[:, 1:] - true[:, :1]
    move_pred = pred[:, 1:] - pred[:, :1]
    effect_true = move_true - move_true.mean(1, keepdims=True)  # What the action adds.
    effect_pred = move_pred - move_pred.mean(1, keepdims=True)
    return dict(
        byte_decoded_exactly=float(np.mean(pred[:, 0] == true[:, 0])),
        byte_decoded_mean_abs_error=float(np.abs(pred[:, 0] - true[:, 0]).mean()),
        byte_action_effect_rms=float(np.sqrt((effect_true ** 2).mean())),
        model_byte_action_effect_rms=float(np.sqrt((effect_pred ** 2).mean())),
        byte_action_effect_correlation=correlation(effect_true, effect_pred))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="pong")
    parser.add_argument("--states", type=int, default=100)
    parser.add_argument("--every", type=int, default=7, help="agent steps between probed states")
    parser.add_argument("--continuations", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--discount", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default=None, help="a run to compare (same game, --obs state)")
    parser.add_argument("--model_samples", type=int, default=8)
    parser.add_argument("--byte", type=int, default=51,
                        help="a RAM byte the actions move (Pong: 51, the player's paddle)")
    parser.add_argument("--hold", type=int, default=2, help="agent steps each action is held")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    model = ModelTracker(args.logdir)
    returns, held = action_values(args.game, args.states, args.every, args.continuations,
                                  args.horizon, args.discount, args.seed, model, args.byte,
                                  args.hold)
    q = returns.mean(2)
    # Sampling noise of these advantages (sticky actions, continuations): half the difference
    # between the advantages of the two halves of the continuations.
    halves = [r.mean(2) - r.mean(2).mean(1, keepdims=True) for r in np.array_split(returns, 2, 2)]
    row = dict(
        date=datetime.date.today().isoformat(), game=args.game, states=args.states,
        every=args.every, continuations=args.continuations, horizon=args.horizon,
        discount=args.discount, seed=args.seed, reward_sum_mean=float(q.mean()),
        **probe_action_values.split_advantage(q, "reward_adv"),
        reward_adv_noise_rms=float(np.sqrt(((halves[0] - halves[1]) ** 2).mean()) / 2),
        states_where_actions_differ=float(np.mean(actions_matter(q))),
        mean_best_minus_worst=float(np.ptp(q, 1).mean()))
    if model.loaded is not None:
        row.update(compare_model(model, q, held, args.model_samples, args.seed, args.byte,
                                 args.hold))
    print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
