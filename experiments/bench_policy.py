"""Policy-step latency, before/after: the conv formulation used for acting, and where the loop's
PRNG key stream is split.

    .venv/bin/python experiments/bench_policy.py [--envs 1] [--calls 500]

Paper networks, 64x64x3 pixels, walker_walk's action size (6), random frames. Times one agent
step as the training loop takes it (observation in, numpy action out) for:
  matmul_host_split  the patch-matmul convs of training batches, key split by a separate call
                     (the policy step before session 4)
  lax_host_split     XLA's convolutions for the few frames of a policy step
  lax_device_split   XLA's convolutions and the key split inside the jitted step
                     (`train_state.make_acting_policy`, what `train.Agent.act` runs now)
Writes experiments/results/policy_step_<backend>.json and .md.

    .venv/bin/python experiments/bench_policy.py --cold [--calls 300]

times `lax_device_split` after what precedes it in a collection loop instead: the same call
(warm), 16 ms of sleep or of a busy Python loop (a render's duration without its memory
traffic), writing a 32 MB numpy array, a walker_walk env step with its MuJoCo render, or the same
env step in a worker process (`parallel.ProcessEnv`, as with --envs N or --overlap); and, for
the same effect without the policy, a trivial jitted op and 6 matrix-vector products over 6 MB
of weights, warm and after the busy loop; writes policy_step_cold_<backend>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import call_times, write_results  # noqa: E402
from dreamer_jax import agent, config as config_lib, train_state  # noqa: E402


def host_split(nets, params, obs, calls):
    """Seconds of `calls` agent steps: a key split, then the jitted step, numpy action out."""
    policy = jax.jit(lambda p, c, o, k, n, s: agent.policy_step(nets, p, c, o, k, n, s))
    carry, key = agent.initial_carry(nets, len(obs)), jax.random.PRNGKey(0)

    def step():
        return np.asarray(policy(params, carry, obs, jax.random.split(key)[1], 0.3, True)[1])

    return call_times(step, (), calls)


def device_split(nets, params, obs, calls):
    """Seconds of `calls` agent steps of `make_acting_policy` (the split inside), numpy out."""
    act = train_state.make_acting_policy(nets)
    carry, key = agent.initial_carry(nets, len(obs)), jax.random.PRNGKey(0)
    step = lambda: np.asarray(act(params, carry, obs, key, 0.3, True)[1])  # noqa: E731
    return call_times(step, (), calls)


def paper_policy_step(spec):
    """`step(obs [1, ...]) -> numpy action` of `make_acting_policy` with paper networks for
    `spec`, fixed parameters, carry and key (the loop's policy step, minus its state updates)."""
    config = config_lib.make_config("paper", task="dmc_walker_walk")
    nets = agent.make_nets(config, spec)
    params = agent.init_params(nets, jax.random.PRNGKey(0))
    act = train_state.make_acting_policy(nets)
    carry, key = agent.initial_carry(nets, 1), jax.random.PRNGKey(0)
    return lambda obs: np.asarray(act(params, carry, obs, key, 0.3, True)[1])


def busy_loop(seconds: float) -> None:
    """Keep this thread busy for `seconds`, touching almost no memory."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def cold_start(calls: int) -> dict:
    """Median ms of the acting policy step (one frame) after each kind of work in between."""
    from dreamer_jax import envs, parallel

    config = config_lib.make_config("paper", task="dmc_walker_walk")
    env = envs.make_env(config, seed=0)
    policy = paper_policy_step(env.spec)
    obs, scratch = env.reset(), np.zeros(8 * 2**20, np.float32)
    step = lambda: policy(obs[None])  # noqa: E731

    def render():
        nonlocal obs
        obs = env.step(np.zeros(env.spec.action_dim, np.float32))[0]

    def write():
        scratch[:] += 1.0

    # The same environment in a worker process (--envs N, --overlap): its render's working set
    # stays out of this process's caches, unless the OS runs both on one core.
    remote = parallel.ProcessEnv(config, seed=0)
    remote.reset()

    def render_elsewhere():
        nonlocal obs
        obs = remote.step(np.zeros(env.spec.action_dim, np.float32))[0]

    def sleep():  # The process idles as long as a render takes: wake-up, not caches.
        time.sleep(0.016)

    def spin():  # Busy as long as a render takes, touching almost no memory.
        busy_loop(0.016)

    # Two programs that are not the policy, for the same effect without it: a trivial one
    # (dispatch alone) and a chain of 6 matrix-vector products over 6 MB of weights (about the
    # acting parameters' 5.7 MB).
    trivial, zero = jax.jit(lambda x: x + 1), jnp.zeros(())
    weights = [jnp.asarray(np.random.default_rng(i).normal(size=(512, 512)) / 25, jnp.float32)
               for i in range(6)]

    def matvecs(weights, x):
        for w in weights:
            x = jnp.tanh(x @ w)
        return x

    chain, vector = jax.jit(matvecs), jnp.ones((1, 512))
    programs = {"policy": step, "trivial_jit": lambda: np.asarray(trivial(zero)),
                "matvec_chain_6mb": lambda: np.asarray(chain(weights, vector))}
    rows = {}
    for program, name, between in (
            ("policy", "warm", lambda: None), ("policy", "after_16ms_sleep", sleep),
            ("policy", "after_16ms_busy_loop", spin), ("policy", "after_32mb_numpy_write", write),
            ("policy", "after_env_step_with_render", render),
            ("policy", "after_env_step_with_render_in_a_worker_process", render_elsewhere),
            ("trivial_jit", "warm", lambda: None), ("trivial_jit", "after_16ms_busy_loop", spin),
            ("matvec_chain_6mb", "warm", lambda: None),
            ("matvec_chain_6mb", "after_16ms_busy_loop", spin)):
        call = programs[program]
        call()
        times = []
        for _ in range(calls):
            between()
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        name = name if program == "policy" else f"{program}: {name}"
        rows[name] = {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times)}
        print(f"{name}: {rows[name]['median_ms']:.3f} ms median", flush=True)
    env.close()
    remote.close()
    return rows


def report_cold(rows: dict, calls: int, out: pathlib.Path) -> None:
    """`cold_start`'s rows as policy_step_cold_<backend>.json and .md under `out`."""
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "cpu_count": os.cpu_count(), "jax": jax.__version__, "calls": calls, "rows": rows}
    lines = [f"# Policy step after other work ({result['date']}, {result['backend']}, "
             f"{result['cpu_count']} CPUs, jax {result['jax']})", "",
             "Paper networks, one walker_walk frame, `train_state.make_acting_policy`, "
             f"{calls} calls, each right after what the row names (rows named `program: ...` "
             "time another program the same way).", "",
             "| the call follows | median ms | min ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['median_ms']:.3f} | {v['min_ms']:.3f} |" for k, v in rows.items()]
    write_results(out / f"policy_step_cold_{jax.default_backend()}", result,
                  "\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--cold", action="store_true",
                        help="time the acting step after other work instead (see the docstring)")
    args = parser.parse_args()
    if args.cold:
        report_cold(cold_start(args.calls), args.calls, pathlib.Path(args.out))
        return
    spec = agent.EnvSpec((64, 64, 3), "uint8", 6)
    obs = np.random.default_rng(0).integers(0, 256, (args.envs, 64, 64, 3), dtype=np.uint8)
    rows = {}
    for name, impl, fn in (("matmul_host_split", "matmul", host_split),
                           ("lax_host_split", "lax", host_split),
                           ("lax_device_split", "auto", device_split)):
        nets = agent.make_nets(config_lib.make_config("paper", conv_impl=impl), spec)
        params = agent.init_params(nets, jax.random.PRNGKey(0))
        times = fn(nets, params, obs, args.calls)
        rows[name] = {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times)}
        print(f"{name}: {rows[name]['median_ms']:.3f} ms median", flush=True)
    result = {"date": datetime.date.today().isoformat(), "backend": jax.default_backend(),
              "cpu_count": os.cpu_count(), "jax": jax.__version__, "envs": args.envs,
              "calls": args.calls, "rows": rows}
    lines = [f"# Policy step, before/after ({result['date']}, {result['backend']}, "
             f"{result['cpu_count']} CPUs, jax {result['jax']})", "",
             f"Paper networks, 64x64x3 pixels, {args.envs} environment(s), {args.calls} calls; "
             "observation in, numpy action out.", "",
             "| variant | median ms | min ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['median_ms']:.3f} | {v['min_ms']:.3f} |" for k, v in rows.items()]
    write_results(pathlib.Path(args.out) / f"policy_step_{jax.default_backend()}", result,
                  "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
