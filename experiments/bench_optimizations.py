"""Each of the speed issue's structural optimizations, measured with and without it.

    python experiments/bench_optimizations.py [--calls 5] [--steps 200] [--only PART]
                                              [--out experiments/results]

Paper sizes, pixels 64x64x3, fp32, batch 16x50, walker_walk (6 actions), on this machine's
default backend. Writes `optimizations_<backend>.json` and `.md`:

- donation: the update with its training state donated (`donate_argnums=0`, as trained) vs the
  same function jitted without; seconds per update and the bytes XLA aliases input to output.
- prefetch: C updates fed by `replay.prefetch` (sampling and the host-to-device copy in a
  thread, as trained) vs sampling, copying and updating one after another, from a replay of
  random 501-step pixel episodes; plus the sampling + copy time of one batch alone.
- render the last repeated frame only: agent steps of walker_walk at action repeat 2 as the
  environment does it (one render) vs a render after every repeated physics step (both peers).
- policy state on device: the training loop's policy step with its recurrent state kept as
  device arrays (as trained) vs fetched to host numpy and sent back every step.
- collection overlapped with the updates (`--overlap`): `--calls` updates and one episode of
  `--steps` agent steps of walker_walk collected by the training loop's policy (real renders),
  one after the other vs the episode in a thread during the updates; each half alone too.
- host round trips inside the update: the number of host callbacks, infeeds and outfeeds in the
  compiled update's HLO (expected 0; not a before/after, a check).
The RSSM scan unroll and the automatic chunks have their own results (bench_cpu_unroll_chunks,
bench_cpu_1core_chunks); bfloat16 is in bench.py.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench import random_batch, timed_updates, write_table  # noqa: E402
from dreamer_jax import agent, config as config_lib, replay as replay_lib, train_state  # noqa: E402


def donation(config, spec, calls: int) -> dict:
    update = train_state.make_update(config, spec)
    batch = jax.device_put(random_batch(spec, config.batch_size, config.seq_len))
    out = {}
    for name, jitted in (("donated", update.step), ("not_donated", jax.jit(update.step.__wrapped__))):
        state = update.init(jax.random.PRNGKey(0))
        compiled = jitted.lower(state, batch).compile()
        memory = compiled.memory_analysis()
        state, _, _ = timed_updates(compiled, state, [batch])  # Warm-up.
        _, _, times = timed_updates(compiled, state, [batch] * calls)
        out[f"update_s_{name}"] = statistics.median(times)
        out[f"alias_mib_{name}"] = memory.alias_size_in_bytes / 2**20
        out[f"temp_mib_{name}"] = memory.temp_size_in_bytes / 2**20
        if name == "donated":
            hlo = compiled.as_text()
            out["host_transfers_in_update"] = sum(hlo.count(op) for op in (
                "host_callback", "xla_python_cpu_callback", "xla_python_gpu_callback",
                "xla_ffi_python", " infeed(", " outfeed(", " send(", " recv("))
        del state
    return out


def filled_replay(directory: pathlib.Path, spec, episodes: int, length: int) -> replay_lib.Replay:
    rng = np.random.default_rng(0)
    replay = replay_lib.Replay(directory, ram_bytes=4 * 2**30)
    for _ in range(episodes):
        replay.add({"obs": rng.integers(0, 256, (length,) + spec.obs_shape, dtype=np.uint8),
                    "action": rng.uniform(-1, 1, (length, spec.action_dim)).astype(np.float32),
                    "reward": rng.uniform(0, 1, length).astype(np.float32),
                    "discount": np.ones(length, np.float32)})
    return replay


def prefetching(config, spec, calls: int) -> dict:
    update = train_state.make_update(config, spec)
    b, t = config.batch_size, config.seq_len
    with tempfile.TemporaryDirectory() as tmp:
        replay = filled_replay(pathlib.Path(tmp), spec, episodes=10, length=501)
        rng = np.random.default_rng(1)
        put_times = []
        for _ in range(20):
            start = time.perf_counter()
            jax.block_until_ready(jax.device_put(replay.sample(rng, b, t)))
            put_times.append(time.perf_counter() - start)
        state = update.init(jax.random.PRNGKey(0))
        compiled = update.step.lower(state, jax.device_put(replay.sample(rng, b, t))).compile()
        state, _, _ = timed_updates(compiled, state, [jax.device_put(replay.sample(rng, b, t))])
        out = {"sample_and_copy_ms": 1e3 * statistics.median(put_times)}
        start = time.perf_counter()
        state, _, _ = timed_updates(compiled, state, replay_lib.prefetch(
            replay, rng, calls, b, t, put=jax.device_put))
        out["loop_s_per_update_prefetch"] = (time.perf_counter() - start) / calls
        start = time.perf_counter()
        state, _, _ = timed_updates(compiled, state, (jax.device_put(replay.sample(rng, b, t))
                                                   for _ in range(calls)))
        out["loop_s_per_update_sequential"] = (time.perf_counter() - start) / calls
    return out


def rendering(config, steps: int) -> dict:
    from dreamer_jax import envs

    env = envs.make_env(config, seed=0)
    physics, dm_env = env._env.physics, env._env
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, env.spec.action_dim))
    env.reset()
    start = time.perf_counter()
    for action in actions:  # As collection does it: one render after the repeated steps.
        env.step(action)
    last_only = (time.perf_counter() - start) / steps
    env.reset()
    start = time.perf_counter()
    for action in actions:  # A render after every repeated physics step, as the peers do.
        for _ in range(config.action_repeat):
            dm_env.step(action)
            physics.render(64, 64, camera_id=0)
    every = (time.perf_counter() - start) / steps
    env.close()
    return {"agent_step_ms_render_last_only": 1e3 * last_only,
            "agent_step_ms_render_every_frame": 1e3 * every}


def policy_state(config, spec, steps: int) -> dict:
    update = train_state.make_update(config, spec)
    params = update.init(jax.random.PRNGKey(0)).params
    act = train_state.make_acting_policy(update.nets)
    obs = np.random.default_rng(0).integers(0, 256, (1,) + spec.obs_shape, dtype=np.uint8)
    out = {}
    for name, to_host in (("on_device", False), ("host_round_trip", True)):
        carry, key = agent.initial_carry(update.nets, 1), jax.random.PRNGKey(0)
        times = []
        for i in range(steps + 20):
            start = time.perf_counter()
            carry, action, key = act(params, carry, obs, key, 0.3, True)
            action = np.asarray(action)
            if to_host:
                carry = jax.tree.map(np.asarray, carry)
            if i >= 20:  # After compiling and warming up.
                times.append(time.perf_counter() - start)
        out[f"policy_step_ms_{name}"] = 1e3 * statistics.median(times)
    return out


def overlapped_collection(config, calls: int, steps: int, rounds: int = 2) -> dict:
    import dataclasses

    from dreamer_jax import envs, parallel, train

    config = dataclasses.replace(config, time_limit=steps * config.action_repeat, overlap=True)
    train_envs = parallel.make_envs(config, envs.make_env, seed=0)  # A worker process.
    learner = train.Agent(config, train_envs[0].spec, jax.random.PRNGKey(0))
    batch = jax.device_put(random_batch(train_envs[0].spec, config.batch_size, config.seq_len))

    def updates():
        for _ in range(calls):
            learner.state, _ = learner.train_step(learner.state, batch)
        jax.block_until_ready(learner.state)

    def collect(params=None):
        return parallel.collect(train_envs, lambda o, f: learner.act(o, f, True, 0, params))

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def together():
        collector = parallel.Background(collect, learner.params_copy())
        updates()
        collector.result()

    learner.state, _ = learner.train_step(learner.state, batch)  # Compile both, warm up.
    collect()
    times: dict[str, list] = {}
    for _ in range(rounds):
        for name, fn in (("updates_alone", updates), ("collection_alone", collect),
                         ("one_after_the_other", lambda: (updates(), collect())),
                         ("overlapped", together)):
            times.setdefault(name, []).append(timed(fn))
    parallel.close(train_envs)
    return {"overlap_updates": calls, "overlap_agent_steps": steps,
            **{f"round_s_{name}": statistics.median(t) for name, t in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5, help="updates per measurement")
    parser.add_argument("--steps", type=int, default=200, help="agent steps per measurement")
    parser.add_argument("--overlap_steps", type=int, default=500,
                        help="agent steps of the episode collected during --calls updates")
    parser.add_argument("--only", choices=("donation", "prefetch", "rendering", "policy",
                                            "overlap"), help="measure one part, into "
                        "optimizations_<backend>_<part>.json")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--preset", default="paper", help="debug: tiny networks, a smoke test")
    args = parser.parse_args()
    config = config_lib.make_config(args.preset, task="dmc_walker_walk", obs="pixels",
                                    **({"batch_size": 16, "seq_len": 50} if args.preset == "paper" else {}))
    spec = agent.EnvSpec((64, 64, 3), "uint8", 6)
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "device": str(jax.devices()[0].device_kind), "cpu_count": os.cpu_count(),
              "jax": jax.__version__, "config": f"{args.preset} sizes, pixels, fp32, batch "
              f"{config.batch_size}x{config.seq_len}",
              "calls": args.calls, "steps": args.steps}
    parts = (("donation", lambda: donation(config, spec, args.calls)),
             ("prefetch", lambda: prefetching(config, spec, args.calls)),
             ("rendering", lambda: rendering(config, args.steps)),
             ("policy", lambda: policy_state(config, spec, args.steps)),
             ("overlap", lambda: overlapped_collection(config, args.calls, args.overlap_steps)))
    for name, fn in parts:
        if args.only and name != args.only:
            continue
        part = fn()
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in part.items()},
              flush=True)
        result.update(part)
    suffix = f"_{args.only}" if args.only else ""
    write_table(pathlib.Path(args.out) / f"optimizations_{result['backend']}{suffix}", result,
                f"Structural optimizations, with and without ({result['backend']}, {result['date']})")


if __name__ == "__main__":
    main()
