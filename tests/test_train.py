"""End-to-end: the CLI on a real dm_control pixel task (debug preset), resume, notebook, bad input."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEBUG_RUN = ["--preset", "debug", "--task", "dmc_cartpole_swingup", "--eval_every", "200"]


def run_cli(*args: str, module: str = "dreamer_jax.train", timeout: int = 600
            ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def read_metrics(logdir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory) -> pathlib.Path:
    """A few hundred env steps of the full loop from 64x64 pixels."""
    logdir = tmp_path_factory.mktemp("run") / "cartpole"
    result = run_cli(*DEBUG_RUN, "--logdir", str(logdir), "--steps", "400")
    assert result.returncode == 0, result.stderr[-3000:]
    return logdir


def test_smoke_writes_episodes_metrics_checkpoints(pixel_run):
    episodes = sorted((pixel_run / "episodes").glob("*.npz"))
    assert len(episodes) == 4  # 400 env steps / (100-step episodes)
    with np.load(episodes[-1], allow_pickle=False) as ep:
        assert ep["obs"].shape == (51, 64, 64, 3) and ep["obs"].dtype == np.uint8
        assert ep["action"].shape == (51, 1)
        assert np.all(ep["action"][0] == 0) and np.all(np.abs(ep["action"]) <= 1)
    metrics = read_metrics(pixel_run)
    train_returns = [m for m in metrics if "train_return" in m]
    assert [m["step"] for m in train_returns] == [100, 200, 300, 400]
    updates = [m for m in metrics if "model_loss" in m]
    assert updates and all(np.isfinite(m["model_loss"]) for m in updates)
    assert any("eval_return" in m for m in metrics)
    assert list((pixel_run / "checkpoints").glob("ckpt-*.msgpack"))
    assert list((pixel_run / "tb").iterdir())
    assert json.loads((pixel_run / "config.json").read_text())["obs"] == "pixels"


def test_resume_continues_counters(pixel_run, tmp_path):
    # Copy so the other tests keep the original run.
    import shutil

    logdir = tmp_path / "resumed"
    shutil.copytree(pixel_run, logdir)
    before = read_metrics(logdir)
    result = run_cli("--logdir", str(logdir), "--steps", "600")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed" in result.stderr
    after = read_metrics(logdir)[len(before):]
    steps = [m["step"] for m in after if "train_return" in m]
    assert steps == [500, 600]
    updates = [m["updates"] for m in after if "updates" in m]
    last_updates = max(m["updates"] for m in before if "updates" in m)
    assert updates and min(updates) > last_updates
    assert len(list((logdir / "episodes").glob("*.npz"))) == 6


def test_resume_refuses_conflicting_config(pixel_run):
    result = run_cli("--logdir", str(pixel_run), "--horizon", "7")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "horizon=7" in lines[0] and "saved 5" in lines[0]


def test_notebook_example_runs_imagine(pixel_run, tmp_path):
    out = tmp_path / "imagination.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "imagine_notebook.py"), "--logdir",
         str(pixel_run), "--out", str(out), "--starts", "3"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imagined states (6, 3, 20)" in result.stdout  # H+1=6, N=3, feat 16+4
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("args, expect", [
    (["--task", "dmc_walker_fly"], "--task='dmc_walker_fly' is unknown"),
    (["--task", "atari_pong"], "--task='atari_pong' is unknown"),
    (["--batch_size", "-3"], "--batch_size=-3 must be a positive integer"),
    (["--horizon", "0"], "--horizon=0 must be a positive integer"),
    (["--preset", "fast"], "--preset='fast' is unknown"),
    (["--obs", "rgb"], "--obs='rgb' is not allowed"),
    (["--discount", "1.5"], "--discount=1.5 must be in [0, 1]"),
    (["--model_lr", "0"], "--model_lr=0.0 must be > 0"),
    (["--steps", "ten"], "invalid int value: 'ten'"),
    (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag"),
    (["--seq_len", "5000"], "--seq_len=5000 is longer than an episode"),
    (["--logdir", "/proc/forbidden/run"], "is not writable"),
])
def test_bad_input_one_line_exit_2(args, expect):
    result = run_cli(*args, "--steps", "10", timeout=120) if "--steps" not in args else run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expect in lines[0] and "Traceback" not in result.stderr


def test_config_reference_doc_is_current():
    from dreamer_jax import train

    assert (ROOT / "docs" / "config.md").read_text() == train.config_reference(), (
        "regenerate: python -m dreamer_jax.train --print-config-reference > docs/config.md")
