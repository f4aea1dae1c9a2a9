"""Seconds per update of sheeprl's DreamerV1 on CPU, for a side-by-side with `bench.py`.

    python experiments/bench_sheeprl.py [--sizes 16x50,50x50] [--calls 10] [--threads N]
        [--venv .venv-sheeprl] [--out experiments/results]

Creates (once) a separate virtual environment with PyTorch and sheeprl (pinned below), then, for
each BxT size, runs a worker in that environment (this same file, `--worker`, under the venv's
python) that builds sheeprl's DreamerV1 world model, actor and critic at the paper's sizes
(Appendix A: 64x64x3 pixels, Ha & Schmidhuber CNN of depth 32, RSSM 200 deterministic / 30
stochastic / 200 hidden, reward, value and action heads of 3 layers x 300 ELU units, action size
6 continuous, horizon 15) and times sheeprl's own `sheeprl.algos.dreamer_v1.dreamer_v1.train`
(world model loss and step, imagination of H = 15 from every posterior state, actor loss and
step, critic loss and step) on a random batch. Two warm-up updates, then the median of `--calls`
updates, with `--threads` torch threads (default: all cores); peak RSS of the worker. Run it on
an idle machine: with more threads than free cores, PyTorch's OpenMP threads wait on each other at
every small op and an update gets tens of times slower (the 1-minute load average at the start
is recorded). Writes `bench_sheeprl_cpu.json` and `.md` under `--out`, with
the speedup of our update (`update_s_<size>` of `bench_cpu.json` in the same folder) if present.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
TORCH_PIN = "torch==2.13.0"  # The local wheel (pip's find-links); any other version is a big download.
SHEEPRL_PIN = "sheeprl==0.8.4"
ACTION_DIM = 6  # walker_walk
IMAGE_SHAPE = (3, 64, 64)  # sheeprl's images are channels first


# --- Parent: the virtual environment and the report -------------------------------------------

def venv_python(venv: pathlib.Path) -> pathlib.Path:
    return venv / "bin" / "python"


def installed_versions(python: pathlib.Path) -> dict | None:
    """torch's and sheeprl's versions in the venv, None if either is missing."""
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({p: m.version(p) for p in ('torch', 'sheeprl')}))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def ensure_venv(venv: pathlib.Path) -> dict:
    """Create the venv and install the pins unless they are there; returns the versions."""
    python = venv_python(venv)
    versions = installed_versions(python) if python.exists() else None
    expected = {"torch": TORCH_PIN.split("==")[1], "sheeprl": SHEEPRL_PIN.split("==")[1]}
    if versions is None or any(not versions[k].startswith(v) for k, v in expected.items()):
        print(f"setting up {venv} ({TORCH_PIN}, {SHEEPRL_PIN})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run(pip + [TORCH_PIN], check=True)
        # torch pinned again so that sheeprl's requirements cannot replace it.
        subprocess.run(pip + [SHEEPRL_PIN, TORCH_PIN], check=True)
        versions = installed_versions(python)
    if versions is None or any(not versions[k].startswith(v) for k, v in expected.items()):
        raise RuntimeError(f"{venv} has {versions}, expected {expected}")
    return versions


def run_worker(python: pathlib.Path, size: str, calls: int, threads: int) -> dict:
    """One worker process per size: its result (the last line it prints, JSON)."""
    proc = subprocess.run([str(python), str(pathlib.Path(__file__).resolve()), "--worker",
                           "--sizes", size, "--calls", str(calls), "--threads", str(threads)],
                          stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_speedups(result: dict, sizes: list[str], ours_path: pathlib.Path) -> None:
    """speedup = sheeprl's seconds per update / ours, from our benchmark's JSON."""
    if not ours_path.exists():
        return
    ours = json.loads(ours_path.read_text())
    found = False
    for size in sizes:
        if f"update_s_{size}" in ours:
            result[f"ours_update_s_{size}"] = ours[f"update_s_{size}"]
            result[f"speedup_vs_sheeprl_{size}"] = (result[f"sheeprl_update_s_{size}"]
                                                    / ours[f"update_s_{size}"])
            found = True
    if found:
        source = ours_path.resolve()
        source = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
        result["ours_source"] = (f"{source} (bench.py, dated "
                                 f"{ours.get('date', '?')}, cpu_count {ours.get('cpu_count', '?')})")


def write_report(result: dict, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_sheeprl_cpu.json").write_text(json.dumps(result, indent=1) + "\n")
    rows = [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in result.items()]
    (out / "bench_sheeprl_cpu.md").write_text(
        f"# sheeprl DreamerV1 update benchmark (cpu, {result['date']})\n\n"
        "One call of sheeprl's `dreamer_v1.train()` (world model, imagination H=15, actor, critic)\n"
        "on a random batch of B sequences x T steps, paper sizes, fp32, eager PyTorch; median over\n"
        "calls after 2 warm-up calls. `speedup_vs_sheeprl_*` = sheeprl's time / ours"
        " (`ours_source`).\n\n| key | value |\n|---|---|\n" + "\n".join(rows) + "\n")


# --- Worker: runs under the venv's python -----------------------------------------------------

def compose_config(batch: int, length: int):
    """sheeprl's `exp=dreamer_v1` config at the paper's sizes, resolved as its CLI does."""
    import sheeprl
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from sheeprl.utils.utils import dotdict

    overrides = [
        "exp=dreamer_v1", "env=dmc", "env.wrapper.domain_name=walker", "env.wrapper.task_name=walk",
        "fabric.accelerator=cpu", "fabric.devices=1", "fabric.precision=32-true",
        f"algo.per_rank_batch_size={batch}", f"algo.per_rank_sequence_length={length}",
        "algo.horizon=15", "algo.gamma=0.99", "algo.lmbda=0.95",
        "algo.cnn_keys.encoder=[rgb]", "algo.mlp_keys.encoder=[]",
        "algo.cnn_act=torch.nn.ReLU", "algo.dense_act=torch.nn.ELU",
        # Every dense head (actor, critic, reward; also the unused vector encoder/decoder) 3 x 300.
        "algo.dense_units=300", "algo.mlp_layers=3",
        "algo.world_model.reward_model.mlp_layers=3", "algo.critic.mlp_layers=3",
        "algo.world_model.encoder.cnn_channels_multiplier=32",
        "algo.world_model.stochastic_size=30",
        "algo.world_model.recurrent_model.recurrent_state_size=200",
        "algo.world_model.representation_model.hidden_size=200",
        "algo.world_model.transition_model.hidden_size=200",
        "algo.world_model.use_continues=False", "algo.compile.enabled=False",
    ]
    config_dir = os.path.join(os.path.dirname(sheeprl.__file__), "configs")
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return dotdict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))


def build(cfg):
    """Fabric, models, optimizers and metric aggregator, as `dreamer_v1.main` and the CLI do."""
    import gymnasium as gym
    import hydra
    import numpy as np
    from torch.distributions import Distribution
    from sheeprl.algos.dreamer_v1 import utils as dv1_utils
    from sheeprl.algos.dreamer_v1.agent import build_agent
    from sheeprl.utils.metric import MetricAggregator

    Distribution.set_default_validate_args(cfg.distribution.validate_args)
    cfg.fabric.pop("callbacks", None)  # Checkpointing only.
    fabric = hydra.utils.instantiate(cfg.fabric, _convert_="all")
    fabric.seed_everything(cfg.seed)
    obs_space = gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, IMAGE_SHAPE, np.uint8)})
    world_model, actor, critic, _ = build_agent(fabric, (ACTION_DIM,), True, cfg, obs_space)
    optimizers = [
        hydra.utils.instantiate(opt_cfg, params=module.parameters(), _convert_="all")
        for opt_cfg, module in ((cfg.algo.world_model.optimizer, world_model),
                                (cfg.algo.actor.optimizer, actor), (cfg.algo.critic.optimizer, critic))]
    optimizers = fabric.setup_optimizers(*optimizers)
    metrics = cfg.metric.aggregator.metrics
    for key in set(metrics) - dv1_utils.AGGREGATOR_KEYS:  # As the CLI does.
        metrics.pop(key)
    MetricAggregator.disabled = cfg.metric.log_level == 0 or not metrics
    aggregator = hydra.utils.instantiate(cfg.metric.aggregator, _convert_="all").to(fabric.device)
    return fabric, (world_model, actor, critic), optimizers, aggregator


def peak_rss_gib() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: across fork + exec that keeps the parent's
    peak (here the benchmark of dreamer_jax that started this worker)."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib / 2**20


def random_batch(batch: int, length: int, seed: int = 0) -> dict:
    """A batch as `sample_batches` yields it: float tensors of shape (T, B, ...)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    shape = (length, batch)
    return {"rgb": torch.randint(0, 256, shape + IMAGE_SHAPE, generator=gen).float(),
            "actions": torch.rand(shape + (ACTION_DIM,), generator=gen) * 2 - 1,
            "rewards": torch.rand(shape + (1,), generator=gen) * 2,
            "terminated": torch.zeros(shape + (1,)), "truncated": torch.zeros(shape + (1,)),
            "is_first": torch.zeros(shape + (1,))}


def worker(size: str, calls: int, threads: int) -> dict:
    import statistics
    import time
    import warnings

    import sheeprl
    import torch
    from sheeprl.algos.dreamer_v1.dreamer_v1 import train

    torch.set_num_threads(threads)
    batch, length = (int(x) for x in size.split("x"))
    cfg = compose_config(batch, length)
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    fabric, (world_model, actor, critic), optimizers, aggregator = build(cfg)
    data = random_batch(batch, length)

    def update() -> float:
        batch_data = {k: v.clone() for k, v in data.items()}  # `train` writes `is_first`.
        start = time.perf_counter()
        train(fabric, world_model, actor, critic, *optimizers, batch_data, aggregator, cfg)
        return time.perf_counter() - start

    for _ in range(2):  # Warm-up.
        update()
    times = [update() for _ in range(calls)]
    with warnings.catch_warnings():  # The metrics of the environment were never updated.
        warnings.simplefilter("ignore")
        losses = {k: float(v) for k, v in aggregator.compute().items()}
    assert all(map(torch.isfinite, map(torch.tensor, losses.values()))), losses
    return {"size": size, "update_s": statistics.median(times), "update_s_min": min(times),
            "peak_rss_gib": peak_rss_gib(),
            "sheeprl": sheeprl.__version__, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "losses": losses}


# --- Entry point ------------------------------------------------------------------------------

def measure(sizes: list[str], calls: int, threads: int, venv: pathlib.Path) -> dict:
    """sheeprl's update times and peak RSS per size (keys `sheeprl_*`); also used by bench.py."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: 1-minute load average {load:.1f}: the machine is not idle, the times "
              "will be too long", flush=True)
    versions = ensure_venv(venv)
    result = {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(),
              "sheeprl_version": versions["sheeprl"], "torch_version": versions["torch"],
              "torch_threads": threads, "load_avg_1min_at_start": load,
              "precision": "float32", "calls": calls,
              "config": "paper (Appendix A) sizes, pixels 64x64x3, action_dim 6, sheeprl "
                        "dreamer_v1 train() in eager mode (algo.compile off, its default)"}
    peaks = []
    for size in sizes:
        r = run_worker(venv_python(venv), size, calls, threads)
        print(f"sheeprl {size}: {r['update_s']:.3f} s/update (min {r['update_s_min']:.3f}), "
              f"peak RSS {r['peak_rss_gib']:.2f} GiB, {r['threads']} threads", flush=True)
        result[f"sheeprl_update_s_{size}"] = r["update_s"]
        result[f"sheeprl_update_s_min_{size}"] = r["update_s_min"]
        result[f"sheeprl_peak_rss_gib_{size}"] = r["peak_rss_gib"]
        peaks.append(r["peak_rss_gib"])
    result["sheeprl_peak_rss_gib"] = max(peaks)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16x50,50x50", help="BxT batch shapes")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--venv", default=str(ROOT / ".venv-sheeprl"))
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.sizes, args.calls, args.threads)), flush=True)
        return
    result = measure(args.sizes.split(","), args.calls, args.threads, pathlib.Path(args.venv))
    add_speedups(result, args.sizes.split(","), pathlib.Path(args.out) / "bench_cpu.json")
    write_report(result, pathlib.Path(args.out))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
