"""Collection from several environments at once: each in its own process (`--envs N`).

Rendering and physics run in the worker processes while the parent runs one batched policy
step for all of them. The workers are started with `spawn` (a forked JAX process is unsafe)
and import only the environment code. `envs=1` keeps the environment in the parent process
(unless `--overlap`).

`collect(envs, act)` steps all environments in lockstep until each has finished one episode;
an environment that is done waits (its slot in the policy batch is computed and ignored), so
the policy compiles for one batch shape. `Background(fn, ...)` runs such a collection in a
thread while the caller runs updates (`--overlap`).
"""
from __future__ import annotations

import multiprocessing
import traceback
from typing import Any, Callable

import numpy as np


class WorkerError(RuntimeError):
    """An environment process failed or died; the message names it and the cause."""


def _worker(conn, config_values: dict, seed: int) -> None:
    """Serve one environment: commands (name, args) -> ("ok", result) | ("error", text).

    Ctrl-C reaches the terminal's whole process group: the worker ignores it and lets the
    parent stop the run (checkpoint first, which asks the workers for their RNG states)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = None
    try:
        from dreamer_jax import config as config_lib, envs

        env = envs.make_env(config_lib.from_dict(config_values), seed=seed)
        conn.send(("ok", env.spec))
        while True:
            name, args = conn.recv()
            if name == "close":
                break
            try:
                conn.send(("ok", getattr(env, name)(*args)))
            except Exception as e:  # Reported in the parent with the environment's name.
                conn.send(("error", f"{type(e).__name__}: {e}"))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as e:
        try:
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        except OSError:
            pass
    finally:
        if env is not None:
            env.close()
        conn.close()


class ProcessEnv:
    """The environment of `config` (with `seed`) in a child process; same methods as the
    in-process environments, plus `call_async` / `result` to overlap several of them."""

    def __init__(self, config, seed: int):
        from dreamer_jax import config as config_lib

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._name = f"{config.task} (seed {seed})"
        self._process = context.Process(target=_worker, args=(child, config_lib.to_dict(config), seed),
                                        daemon=True)
        self._process.start()
        child.close()
        self.spec = self._receive()

    def _died(self) -> WorkerError:
        self._process.join(timeout=1)
        return WorkerError(f"the environment process of {self._name} died "
                           f"(exit code {self._process.exitcode})")

    def _receive(self) -> Any:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status == "error":
            from dreamer_jax.envs import EnvError
            first = value.splitlines()[0]
            if first.startswith(("EnvError: ", "ConfigError: ")):
                raise EnvError(first.split(": ", 1)[1])
            raise WorkerError(f"the environment process of {self._name} failed: {value}")
        return value

    def call_async(self, name: str, *args) -> None:
        try:
            self._conn.send((name, args))
        except OSError:  # Broken pipe: the process is gone.
            raise self._died() from None

    def result(self) -> Any:
        return self._receive()

    def _call(self, name: str, *args) -> Any:
        self.call_async(name, *args)
        return self.result()

    def reset(self) -> np.ndarray:
        return self._call("reset")

    def step(self, action: np.ndarray):
        return self._call("step", action)

    def rng_state(self) -> list:
        return self._call("rng_state")

    def set_rng_state(self, state: list) -> None:
        self._call("set_rng_state", state)

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(("close", ()))
            except OSError:
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
        self._conn.close()


def _call_all(envs: list, name: str, args: list[tuple]) -> list:
    """`env.name(*args[i])` for each env, the worker processes all at once."""
    for env, a in zip(envs, args):
        if isinstance(env, ProcessEnv):
            env.call_async(name, *a)
    return [env.result() if isinstance(env, ProcessEnv) else getattr(env, name)(*a)
            for env, a in zip(envs, args)]


def make_envs(config, make_env: Callable, *, seed: int) -> list:
    """`config.envs` environments with seeds seed, seed + 1, ...; in this process when there is
    only one, else each in a worker process. With `config.overlap` always in worker processes:
    the collector thread then only runs the policy, and MuJoCo renders on the thread that made
    its GL context (dm_control refuses a context made current on another thread)."""
    if config.envs == 1 and not config.overlap:
        return [make_env(config, seed=seed)]
    envs = []
    try:
        for i in range(config.envs):
            envs.append(ProcessEnv(config, seed + i))
    except BaseException:
        for env in envs:
            env.close()
        raise
    return envs


def collect(envs: list, act: Callable[[np.ndarray, np.ndarray], np.ndarray]
            ) -> list[tuple[dict[str, np.ndarray], float]]:
    """One episode from each environment, stepped in lockstep.

    `act(obs [E, ...], first [E] bool) -> actions [E, A]` is called once per step for all E
    environments (the observation of a finished one is its last). Returns (episode arrays,
    return) per environment, in order: `obs` [T+1, ...], `action` [T+1, A] (zeros first),
    `reward` and `discount` [T+1] (0 and 1 first).
    """
    spec = envs[0].spec
    obs = _call_all(envs, "reset", [()] * len(envs))
    steps = [{"obs": [o], "action": [np.zeros(spec.action_dim, np.float32)], "reward": [0.0],
              "discount": [1.0]} for o in obs]
    done = np.zeros(len(envs), bool)
    first = np.ones(len(envs), bool)
    while not done.all():
        actions = np.asarray(act(np.stack(obs), first), np.float32)
        first[:] = False
        running = [i for i in range(len(envs)) if not done[i]]
        results = _call_all([envs[i] for i in running], "step", [(actions[i],) for i in running])
        for i, (obs[i], reward, done[i], discount) in zip(running, results):
            record = steps[i]
            record["obs"].append(obs[i])
            record["action"].append(actions[i])
            record["reward"].append(reward)
            record["discount"].append(discount)
    episodes = []
    for record in steps:
        episode = {"obs": np.stack(record["obs"]).astype(spec.obs_dtype),
                   "action": np.stack(record["action"]).astype(np.float32),
                   "reward": np.asarray(record["reward"], np.float32),
                   "discount": np.asarray(record["discount"], np.float32)}
        episodes.append((episode, float(episode["reward"].sum())))
    return episodes


class Background:
    """`fn(*args)` in a daemon thread; `result()` waits for it and returns its value or raises
    its exception in the caller."""

    def __init__(self, fn: Callable, *args: Any):
        import threading

        self._value: Any = None
        self._error: BaseException | None = None

        def work():
            try:
                self._value = fn(*args)
            except BaseException as e:  # noqa: BLE001  Handed to the caller of result().
                self._error = e

        self._thread = threading.Thread(target=work, name="collector", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def close(envs: list) -> None:
    for env in envs:
        env.close()
