"""`python -m dreamer_jax.train`: the thin host loop of Algorithm 1.

S seed episodes of random actions, then repeat {C updates of world model, actor and value in
one jitted step; collect one episode with the mode action + Normal(0, 0.3) noise}; evaluate
with the mode action every `eval_every` env steps. Everything lands in `--logdir`: episodes
(`episodes/*.npz`), checkpoints, `config.json`, `metrics.jsonl`, TensorBoard events. Running
the same command again on an existing logdir resumes it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time
from typing import Any, Sequence

from dreamer_jax import config as config_lib
from dreamer_jax.config import Config, ConfigError

# Fields that may change when a run is resumed (how long / how it is logged, not what it learns).
RUNTIME_FIELDS = ("steps", "logdir", "progress", "eval_every", "eval_episodes", "log_every",
                  "checkpoint_every", "replay_ram_gib")


class UsageError(Exception):
    """Bad command line, config or logdir: printed as one line, exit code 2."""


# --- Command line -----------------------------------------------------------------------------

def _field_docs() -> dict[str, str]:
    """Field docstrings from the source of `Config` (they are not kept at run time)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(config_lib.Config))
    docs, body = {}, tree.body[0].body
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(
                getattr(nxt, "value", None), ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # One line, exit code 2, no usage dump.
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dreamer_jax.train", description=__doc__.split("\n")[0],
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", default=None,
                        help=f"named settings: {', '.join(config_lib.PRESETS)} (default: paper)")
    docs = _field_docs()
    for field in dataclasses.fields(Config):
        kind = {bool: _bool, int: int, float: float, str: str}[type(field.default)]
        parser.add_argument(f"--{field.name}", type=kind, default=None, metavar=type(field.default).__name__,
                            help=f"{docs.get(field.name, '')} [{field.default}]")
    return parser


def default_preset() -> str:
    """'paper' on an accelerator; on CPU 'cpu' (paper-scale pixels there take weeks)."""
    import jax

    return "paper" if jax.default_backend() != "cpu" else "cpu"


def resolve_config(argv: Sequence[str] | None) -> tuple[Config, bool]:
    """(config, resuming). A logdir with config.json resumes with the saved config; an explicit
    flag that contradicts it (other than RUNTIME_FIELDS) is refused."""
    args = vars(build_parser().parse_args(argv))
    preset = args.pop("preset")
    overrides = {k: v for k, v in args.items() if v is not None}
    fresh = config_lib.make_config(preset or default_preset(), **overrides)
    saved_path = pathlib.Path(fresh.logdir) / "config.json"
    if not saved_path.exists():
        return fresh, False
    try:
        saved = config_lib.from_dict(json.loads(saved_path.read_text()))
    except (ValueError, TypeError, ConfigError) as e:
        raise UsageError(f"{saved_path} is not a readable config ({e}); use another --logdir")
    if preset is not None:
        compare = fresh
    else:
        compare = dataclasses.replace(saved, **overrides)
    differ = [f.name for f in dataclasses.fields(Config)
              if f.name not in RUNTIME_FIELDS and getattr(compare, f.name) != getattr(saved, f.name)]
    if differ:
        detail = ", ".join(f"{n}={getattr(compare, n)!r} (saved {getattr(saved, n)!r})" for n in differ)
        raise UsageError(f"--logdir {fresh.logdir} holds a run with another config: {detail}; "
                         "drop those flags to resume, or use a new --logdir")
    runtime = {k: v for k, v in overrides.items() if k in RUNTIME_FIELDS}
    return config_lib.validate(dataclasses.replace(saved, **runtime)), True


def prepare_logdir(config: Config) -> pathlib.Path:
    logdir = pathlib.Path(config.logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        probe = logdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--logdir {config.logdir!r} is not writable ({e.strerror})")
    if not (logdir / "config.json").exists():
        write_json_atomic(logdir / "config.json", config_lib.to_dict(config))
    return logdir


def write_json_atomic(path: pathlib.Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


# --- Logging ----------------------------------------------------------------------------------

class Logger:
    """metrics.jsonl + TensorBoard scalars, keyed by env steps; a one-line progress display."""

    def __init__(self, logdir: pathlib.Path, total_steps: int, progress: bool):
        from tensorboardX import SummaryWriter

        self._jsonl = open(logdir / "metrics.jsonl", "a")
        self._tb = SummaryWriter(str(logdir / "tb"))
        self._total = total_steps
        self._enabled = progress
        self._tty = sys.stderr.isatty()
        self._start_time, self._start_steps = time.time(), None
        self._last_print = 0.0
        self.last_return = float("nan")
        self.last_eval = float("nan")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), "time": round(time.time(), 3)}
        record.update({k: float(v) for k, v in metrics.items()})
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        for k, v in metrics.items():
            self._tb.add_scalar(k, float(v), int(step))
        self._tb.flush()

    def progress(self, step: int, updates: int, *, force: bool = False) -> None:
        now = time.time()
        if self._start_steps is None:
            self._start_steps, self._start_time = step, now
        if not self._enabled or (not force and now - self._last_print < (2.0 if self._tty else 60.0)):
            return
        self._last_print = now
        fps = (step - self._start_steps) / max(now - self._start_time, 1e-6)
        eta = (self._total - step) / fps if fps > 0 else float("inf")
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 1e7 else "--"
        line = (f"[dreamer_jax] {step}/{self._total} env steps ({100 * step / self._total:5.1f}%) "
                f"updates {updates} | {fps:6.1f} env steps/s | return {self.last_return:7.1f} "
                f"eval {self.last_eval:7.1f} | ETA {eta_text}")
        if self._tty:
            print("\r" + line, end="\n" if force else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._jsonl.close()
        self._tb.close()


# --- Collection -------------------------------------------------------------------------------

def run_episode(env, act) -> tuple[dict[str, Any], float]:
    """One episode; `act(obs, first) -> action`. Returns the episode arrays and its return."""
    import numpy as np

    obs = env.reset()
    spec = env.spec
    steps = {"obs": [obs], "action": [np.zeros(spec.action_dim, np.float32)],
             "reward": [0.0], "discount": [1.0]}
    done, first = False, True
    while not done:
        action = act(obs, first)
        first = False
        obs, reward, done, discount = env.step(action)
        steps["obs"].append(obs)
        steps["action"].append(np.asarray(action, np.float32))
        steps["reward"].append(reward)
        steps["discount"].append(discount)
    episode = {
        "obs": np.stack(steps["obs"]).astype(spec.obs_dtype),
        "action": np.stack(steps["action"]).astype(np.float32),
        "reward": np.asarray(steps["reward"], np.float32),
        "discount": np.asarray(steps["discount"], np.float32),
    }
    return episode, float(episode["reward"].sum())


class Agent:
    """The compiled entry points and the training state."""

    def __init__(self, config: Config, spec, key):
        import jax

        from dreamer_jax import agent, train_state

        self.config = config
        self.nets = agent.make_nets(config, spec)
        self.optimizers = train_state.make_optimizers(config)
        init_key, self.policy_key = jax.random.split(key)
        self.state = train_state.init_train_state(self.nets, self.optimizers, init_key)
        self.train_step = train_state.make_train_step(
            self.nets, self.optimizers, train_state.LossConfig.from_config(config))
        self._policy = train_state.make_policy(self.nets)
        self._initial_carry = agent.initial_carry(self.nets, 1)
        self._carry = self._initial_carry

    def act(self, obs, first: bool, noise: float):
        import jax
        import numpy as np

        if first:
            self._carry = self._initial_carry
        self.policy_key, key = jax.random.split(self.policy_key)
        self._carry, action = self._policy(self.state.params, self._carry, obs[None], key, noise)
        return np.asarray(action[0])


# --- Main -------------------------------------------------------------------------------------

def train(config: Config, resuming: bool, note: str | None = None) -> None:
    import jax
    import numpy as np

    from dreamer_jax import checkpoint, envs, replay as replay_lib

    logdir = prepare_logdir(config)
    if note:
        print(note, file=sys.stderr)
    env = envs.make_env(config, seed=config.seed)
    eval_env = envs.make_env(config, seed=config.seed + 10_000)
    write_json_atomic(logdir / "spec.json", dataclasses.asdict(env.spec))
    agent = Agent(config, env.spec, jax.random.PRNGKey(config.seed))
    replay = replay_lib.Replay(logdir / "episodes", int(config.replay_ram_gib * 2**30))
    replay.load()
    rng = np.random.default_rng(config.seed)
    counters = {"updates": 0, "env_steps": 0, "episodes": 0, "last_eval": 0, "last_log": 0,
                "last_ckpt": 0}
    restored = checkpoint.load_latest(logdir, agent.state)
    if restored is not None:
        agent.state, meta = restored
        counters.update(meta["counters"])
        rng.bit_generator.state = meta["replay_rng"]
        agent.policy_key = jax.numpy.asarray(np.asarray(meta["policy_key"], np.uint32))
        print(f"[dreamer_jax] resumed {logdir} at {counters['env_steps']} env steps, "
              f"{counters['updates']} updates", file=sys.stderr)
    counters["env_steps"] = replay.num_steps * config.action_repeat
    counters["episodes"] = replay.num_episodes

    logger = Logger(logdir, config.steps, config.progress)

    def collect(act) -> float:
        episode, ret = run_episode(env, act)
        replay.add(episode)
        counters["env_steps"] += (len(episode["reward"]) - 1) * config.action_repeat
        counters["episodes"] += 1
        logger.last_return = ret
        logger.write(counters["env_steps"], {"train_return": ret,
                                             "train_length": len(episode["reward"]) - 1,
                                             "episodes": counters["episodes"]})
        return ret

    def save() -> None:
        meta = {"counters": counters, "replay_rng": rng.bit_generator.state,
                "policy_key": np.asarray(agent.policy_key).tolist()}
        checkpoint.save(logdir, agent.state, meta, step=counters["env_steps"])
        counters["last_ckpt"] = counters["env_steps"]

    while counters["episodes"] < config.seed_episodes and counters["env_steps"] < config.steps:
        collect(lambda obs, first: env.random_action(rng))
        logger.progress(counters["env_steps"], counters["updates"])

    update_metrics: list[dict] = []
    last_log_time = [time.time()]
    while counters["env_steps"] < config.steps:
        for _ in range(config.train_steps):
            batch = replay.sample(rng, config.batch_size, config.seq_len)
            agent.state, metrics = agent.train_step(agent.state, batch)
            update_metrics.append(metrics)
            counters["updates"] += 1
        collect(lambda obs, first: agent.act(obs, first, config.expl_noise))
        if config.eval_every and counters["env_steps"] - counters["last_eval"] >= config.eval_every:
            returns = [run_episode(eval_env, lambda o, f: agent.act(o, f, 0.0))[1]
                       for _ in range(config.eval_episodes)]
            logger.last_eval = float(np.mean(returns))
            logger.write(counters["env_steps"], {"eval_return": logger.last_eval})
            counters["last_eval"] = counters["env_steps"]
        if counters["env_steps"] - counters["last_log"] >= config.log_every and update_metrics:
            means = jax.tree.map(lambda *xs: float(np.mean(xs)), *jax.device_get(update_metrics))
            now = time.time()
            fps = (counters["env_steps"] - counters["last_log"]) / max(now - last_log_time[0], 1e-6)
            last_log_time[0] = now
            means.update(updates=counters["updates"], env_steps_per_s=fps)
            logger.write(counters["env_steps"], means)
            update_metrics.clear()
            counters["last_log"] = counters["env_steps"]
        if counters["env_steps"] - counters["last_ckpt"] >= config.checkpoint_every:
            save()
        logger.progress(counters["env_steps"], counters["updates"])
    save()
    logger.progress(counters["env_steps"], counters["updates"], force=True)
    logger.close()
    env.close()
    eval_env.close()


def main(argv: Sequence[str] | None = None) -> int:
    from dreamer_jax.checkpoint import CheckpointError
    from dreamer_jax.envs import EnvError

    try:
        config, resuming = resolve_config(argv)
        note = None
        if not resuming and "--preset" not in (sys.argv[1:] if argv is None else argv) \
                and default_preset() == "cpu":
            note = ("[dreamer_jax] no accelerator found: using --preset cpu (state observations, "
                    "batch 8); pass --preset paper for the paper's pixel agent")
        train(config, resuming, note)
    except (UsageError, ConfigError, EnvError, CheckpointError) as e:
        print(f"dreamer_jax.train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dreamer_jax.train: interrupted; resume with the same command", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
