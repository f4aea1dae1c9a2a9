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
DEBUG_RUN = ["--preset", "debug", "--task", "dmc_cartpole_swingup", "--eval_every", "300"]


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
    # Every 300 env steps, and once more where the run ends.
    assert [m["step"] for m in metrics if "eval_return" in m] == [300, 400]
    assert list((pixel_run / "checkpoints").glob("ckpt-*.msgpack"))
    assert list((pixel_run / "tb").iterdir())
    assert json.loads((pixel_run / "config.json").read_text())["obs"] == "pixels"
    # Open-loop video predictions every 200 env steps (debug preset).
    assert [p.name for p in sorted((pixel_run / "videos").glob("*.gif"))] == [
        "openloop-0000000200.gif", "openloop-0000000400.gif"]


def test_overlap_collects_pixels_during_the_updates(tmp_path):
    """`--overlap` on a pixel task: the episodes are rendered in a worker process (MuJoCo's GL
    context belongs to the thread that made it) and collected during the updates."""
    logdir = tmp_path / "overlap"
    result = run_cli(*DEBUG_RUN, "--logdir", str(logdir), "--steps", "300", "--overlap", "true")
    assert result.returncode == 0, result.stderr[-3000:]
    episodes = sorted((logdir / "episodes").glob("*.npz"))
    assert len(episodes) == 3
    with np.load(episodes[-1], allow_pickle=False) as ep:
        assert ep["obs"].shape == (51, 64, 64, 3) and ep["obs"].std() > 0
    assert [m["updates"] for m in read_metrics(logdir) if "model_loss" in m] == [5, 10]


def test_report_writes_open_loop_gif(pixel_run, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "video.gif"
    result = run_cli("--logdir", str(pixel_run), "--sequences", "3", "--out", str(out),
                     module="dreamer_jax.report")
    assert result.returncode == 0, result.stderr[-3000:]
    frames = iio.imread(out, index=None)
    # seq_len 8 frames; rows truth / model / error of 64 pixels; one 64-pixel column per sequence.
    assert frames.shape[:3] == (8, 3 * 64, 3 * 64), frames.shape
    truth = frames[:, :64, :, :3].astype(int)
    model = frames[:, 64:128, :, :3].astype(int)
    assert truth.std() > 0 and np.abs(truth - model).mean() > 0  # Real frames; not a copy.


def test_report_default_path_keeps_the_runs_own_videos(pixel_run):
    """The run writes videos/openloop-STEP.gif at a checkpoint step too; the report's default
    name differs, so the run's own video is never replaced."""
    videos = pixel_run / "videos"
    before = {p.name: p.read_bytes() for p in videos.glob("*.gif")}
    assert before, "the pixel run wrote no video"
    result = run_cli("--logdir", str(pixel_run), "--sequences", "2", "--seed", "3",
                     module="dreamer_jax.report")
    assert result.returncode == 0, result.stderr[-3000:]
    out = pathlib.Path(result.stdout.strip().splitlines()[-1])
    assert out.parent == videos and out.name.endswith("-report-seed3.gif") and out.exists()
    assert {p.name: p.read_bytes() for p in videos.glob("*.gif") if p != out} == before
    out.unlink()


@pytest.mark.parametrize("args,expect", [
    (["--sequences", "0"], "--sequences=0"),
    (["--seed", "-1"], "--seed=-1 must be >= 0"),
    (["--out", "/proc/forbidden.gif"], "cannot write /proc/forbidden.gif"),
    (["--logdir", "/nonexistent/run"], "not found"),
])
def test_report_bad_input_one_line_exit_2(pixel_run, args, expect):
    argv = ["--logdir", str(pixel_run)] + args if args[0] != "--logdir" else args
    result = run_cli(*argv, module="dreamer_jax.report")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], result.stderr


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
    (["--logdir", "/nonexistent/run"],
     "imagine_notebook: error: /nonexistent/run/config.json not found"),
    (["--starts", "0"], "--starts=0 must be a positive integer"),
])
def test_notebook_example_bad_input_one_line(pixel_run, args, expect):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = args if args[0] == "--logdir" else ["--logdir", str(pixel_run), *args]
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "imagine_notebook.py"),
                             *argv], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert expect in result.stderr.strip().splitlines()[-1], result.stderr


@pytest.mark.parametrize("args, expect", [
    (["--task", "dmc_walker_fly"], "--task='dmc_walker_fly' is unknown"),
    (["--task", "atari_pongg"], "--task='atari_pongg' is unknown"),
    (["--task", "gym:NoSuchEnv-v0"], "'NoSuchEnv-v0' is not a registered gymnasium id"),
    (["--objective", "pixels"], "--objective='pixels' is not allowed"),
    (["--behavior", "planning"], "--behavior='planning' is not allowed"),
    (["--behavior", "planet", "--plan_top_k", "2000"], "--plan_top_k=2000 must be <="),
    (["--value_k", "0"], "--value_k=0 must be a positive integer"),
    (["--expl_noise", "-1"], "--expl_noise=-1.0 must be >= 0"),
    (["--lambda_", "-0.1"], "--lambda_=-0.1 must be in [0, 1]"),
    (["--action_repeat", "0"], "--action_repeat=0 must be a positive integer"),
    (["--free_nats", "-1"], "--free_nats=-1.0 must be >= 0"),
    (["--replay_ram_gib", "0"], "--replay_ram_gib=0.0 must be > 0"),
    (["--reward_transform", "clip"], "--reward_transform='clip' is not allowed"),
    (["--conv_impl", "cudnn"], "--conv_impl='cudnn' is not allowed"),
    (["--compute_dtype", "float16"], "--compute_dtype='float16' is not allowed"),
    (["--conv_chunks", "7"], "--conv_chunks=7 must divide batch_size * seq_len = 400"),
    (["--imag_chunks", "3"], "--imag_chunks=3 must divide batch_size * seq_len = 400"),
    (["--max_nonfinite", "0"], "--max_nonfinite=0 must be a positive integer"),
    (["--pcont", "maybe"], "--pcont"),
    (["--batch_size", "-3"], "--batch_size=-3 must be a positive integer"),
    (["--horizon", "0"], "--horizon=0 must be a positive integer"),
    (["--preset", "fast"], "--preset='fast' is unknown"),
    (["--obs", "rgb"], "--obs='rgb' is not allowed"),
    (["--discount", "1.5"], "--discount=1.5 must be in [0, 1]"),
    (["--model_lr", "0"], "--model_lr=0.0 must be > 0"),
    (["--steps", "ten"], "invalid int value: 'ten'"),
    (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag"),
    (["--seq_len", "5000"], "--seq_len=5000 is longer than an episode"),
    (["--seq_len", "1"], "--seq_len=1 must be >= 2"),
    (["--logdir", "/proc/forbidden/run"], "is not writable"),
])
def test_bad_input_one_line_exit_2(args, expect, capsys, tmp_path):
    """In-process through `train.main` (the CLI's entry point), which is fast; the subprocess
    test below checks that the real command behaves the same. Bad input writes nothing."""
    from dreamer_jax import train

    logdir = tmp_path / "run"
    argv = args if "--steps" in args else [*args, "--steps", "10"]
    argv = argv if "--logdir" in args else [*argv, "--logdir", str(logdir)]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expect in lines[0] and "Traceback" not in err
    assert not logdir.exists(), sorted(p.name for p in logdir.rglob("*"))  # Nothing written.


def test_episodes_shorter_than_a_sequence_one_line_exit_2(tmp_path, capsys):
    """A task whose episodes end early (CartPole-v1 under random actions: ~20 steps) cannot fill
    a sequence of 90: one line naming --seq_len and the longest episode; the episodes stay."""
    from dreamer_jax import train

    logdir = tmp_path / "short"
    argv = ["--preset", "debug", "--task", "gym:CartPole-v1", "--obs", "state",
            "--action_repeat", "1", "--seq_len", "90", "--steps", "2000", "--logdir", str(logdir)]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("[dreamer_jax]")]
    assert len(lines) == 1 and "Traceback" not in err, err  # Info lines aside, one error line.
    assert "--seq_len=90 is longer than every collected episode (longest: " in lines[0]
    assert list((logdir / "episodes").glob("*.npz"))


@pytest.mark.parametrize("args, expect", [
    (["--task", "dmc_walker_fly"], "--task='dmc_walker_fly' is unknown"),
    (["--logdir", "/proc/forbidden/run"], "is not writable"),
])
def test_bad_input_one_line_exit_2_subprocess(args, expect):
    result = run_cli(*args, "--steps", "10", timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("module", ["train", "report", "plot"])
def test_help_prints_usage_and_every_train_flag(module, capsys):
    # argparse %-expands help strings: a literal '%' in a config field's doc once broke --help.
    import dataclasses
    import importlib

    from dreamer_jax.config import Config

    cli = importlib.import_module(f"dreamer_jax.{module}")
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m dreamer_jax.{module}")
    if module == "train":
        flags = [f"--{f.name}" for f in dataclasses.fields(Config)]
        assert all(flag in out for flag in flags), [f for f in flags if f not in out]


def test_config_reference_doc_is_current():
    from dreamer_jax import train

    assert (ROOT / "docs" / "config.md").read_text() == train.config_reference(), (
        "regenerate: python -m dreamer_jax.train --print-config-reference > docs/config.md")


def test_nonfinite_guard_warns_then_stops_with_checkpoint(capsys):
    from dreamer_jax import train

    counters = {"nonfinite_updates": 0, "nonfinite_streak": 0}
    saved = []
    save = lambda: saved.append(dict(counters))  # noqa: E731
    ok, bad = {"nonfinite": np.float32(0.0)}, {"nonfinite": np.float32(1.0)}
    train.check_nonfinite([ok, bad, bad], counters, 3, save, "LOGDIR")
    assert counters == {"nonfinite_updates": 2, "nonfinite_streak": 2} and not saved
    assert "2 of the last 3 updates" in capsys.readouterr().err
    train.check_nonfinite([ok] * 3, counters, 3, save, "LOGDIR")  # A good block resets the streak.
    assert counters["nonfinite_streak"] == 0
    with pytest.raises(train.TrainingDiverged, match="3 updates in a row.*LOGDIR"):
        train.check_nonfinite([ok, bad, bad, bad], counters, 3, save, "LOGDIR")
    assert len(saved) == 1 and counters["nonfinite_updates"] == 5


# --- Determinism and resume equivalence (CPU) ------------------------------------------------

STATE_RUN = ["--preset", "debug", "--obs", "state", "--task", "dmc_cartpole_swingup",
             "--train_steps", "20", "--log_every", "100", "--eval_every", "1000",
             "--checkpoint_every", "2500"]
VOLATILE = {"time", "env_steps_per_s", "rss_gib", "peak_rss_gib"}  # Wall clock, memory.


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


@pytest.mark.parametrize("overlap", ["false", "true"])
def test_same_seed_same_metrics_and_sigkill_resume_is_bit_exact(tmp_path, overlap):
    """~1,000 updates of a small config, run three ways: straight through (C); killed with
    SIGKILL right after its checkpoint at 2,500 env steps (A) and resumed from it (B). A agrees
    with C row for row (determinism), and what B logs after resuming agrees with C bit for bit
    (resume equivalence): same updates, same collected and evaluated episodes. Also with the
    collection in a thread during the updates (`--overlap`)."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    full, killed = tmp_path / "full", tmp_path / "killed"
    cmd = [sys.executable, "-m", "dreamer_jax.train", *STATE_RUN, "--steps", "5000",
           "--overlap", overlap]
    straight = subprocess.Popen([*cmd, "--logdir", str(full)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc = subprocess.Popen([*cmd, "--logdir", str(killed)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # No deadline: the run ends by itself at 5,000 steps, and the test fails if it ends first.
    while not list((killed / "checkpoints").glob("ckpt-0000002500.msgpack")):
        assert proc.poll() is None, "the run ended without a checkpoint at 2500 steps"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-3000:]
    reference = read_metrics(full)
    assert sum(1 for r in reference if "model_loss" in r) >= 45  # 20 updates per row: ~1,000.

    before = read_metrics(killed)
    assert before, "the killed run logged nothing"
    want = comparable([r for r in reference if r["step"] <= before[-1]["step"]])
    assert comparable(before) == want[:len(before)]  # Same seed, same machine: same numbers.

    result = run_cli("--logdir", str(killed))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed" in result.stderr and "at 2500 env steps" in result.stderr
    resumed = read_metrics(killed)[len(before):]
    assert resumed and resumed[0]["step"] > 2500
    assert comparable(resumed) == comparable([r for r in reference if r["step"] > 2500])
    # The same checkpoint schedule too (the last two of 2,500 and 5,000 env steps are kept).
    names = [sorted(p.name for p in (d / "checkpoints").glob("*.msgpack")) for d in (full, killed)]
    assert names[0] == names[1]


def test_atari_discrete_smoke(tmp_path):
    """The atari preset's discrete agent (one-hot actions, epsilon-greedy, predicted discount,
    tanh rewards) end to end on Pong with tiny networks and 100-step episodes."""
    logdir = tmp_path / "pong"
    result = run_cli("--preset", "atari", "--task", "atari_pong", "--logdir", str(logdir),
                     "--steps", "800", "--time_limit", "400", "--deter_size", "16",
                     "--stoch_size", "4", "--hidden_size", "16", "--cnn_depth", "2", "--units", "16",
                     "--layers", "2", "--batch_size", "4", "--seq_len", "8", "--train_steps", "5",
                     "--seed_episodes", "1", "--eval_every", "400", "--log_every", "400",
                     "--video_every", "400", "--progress", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(logdir)
    assert [m["step"] for m in metrics if "train_return" in m] == [400, 800]
    updates = [m for m in metrics if "pcont_log_prob" in m]
    assert updates and all(np.isfinite(m["model_loss"]) for m in updates)
    with np.load(sorted((logdir / "episodes").glob("*.npz"))[-1], allow_pickle=False) as ep:
        assert ep["obs"].shape == (101, 64, 64, 3) and ep["action"].shape == (101, 18)
        assert np.all(ep["action"][1:].sum(-1) == 1)  # One-hot actions.
    assert list((logdir / "videos").glob("*.gif"))
    # experiments/probe_action_values.py reads such a run: the model's value of each action.
    out = tmp_path / "values.json"
    probe = subprocess.run([sys.executable, str(ROOT / "experiments" / "probe_action_values.py"),
                            str(logdir), "--sequences", "2", "--samples", "2", "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["states"] == 2 * 8 and len(row["policy_mean_probs"]) == 18
    assert np.isclose(sum(row["policy_mean_probs"]), 1.0, atol=0.02)
    # The advantage splits into a shared and a state-dependent part (orthogonal: squares add).
    assert np.isclose(row["adv_rms"] ** 2, row["adv_shared_rms"] ** 2 + row["adv_state_rms"] ** 2,
                      rtol=1e-3)
    # experiments/evaluate_atari.py plays the checkpoint in each way of acting.
    out = tmp_path / "evaluate.json"
    evaluation = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "evaluate_atari.py"), "--logdir",
         str(logdir), "--episodes", "2", "--lockstep", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["updates"] == 5 and sorted(result["modes"]) == ["greedy", "sample", "train"]
    for row in result["modes"].values():
        assert len(row["returns"]) == 2 and np.isclose(row["mean"], np.mean(row["returns"]))


def test_exploration_schedule():
    """Appendix C: epsilon 0.4 -> 0.1 linearly over the first 200k updates; Appendix A: Normal
    noise std 0.3 throughout."""
    from dreamer_jax import config as config_lib, train

    atari = config_lib.make_config("atari", task="atari_pong")
    assert [train.exploration(atari, u) for u in (0, 100_000, 200_000, 10**6)] == pytest.approx(
        [0.4, 0.25, 0.1, 0.1])
    paper = config_lib.make_config("paper")
    assert [train.exploration(paper, u) for u in (0, 10**6)] == [0.3, 0.3]


def test_logger_shows_the_last_logged_returns_after_a_resume(tmp_path):
    from dreamer_jax import train

    logger = train.Logger(tmp_path, 1000, progress=False)
    assert np.isnan(logger.last_return) and np.isnan(logger.last_eval)
    logger.write(100, {"train_return": 5.0})
    logger.write(200, {"eval_return": 7.5, "model_loss": 1.0})
    logger.write(300, {"train_return": 6.0})
    logger.close()
    resumed = train.Logger(tmp_path, 1000, progress=False)
    assert (resumed.last_return, resumed.last_eval) == (6.0, 7.5)
    resumed.close()


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0:00:00"), (59.9, "0:00:59"), (3_661, "1:01:01"),
    (30 * 3600 + 5 * 60 + 7, "30:05:07"),  # Past a day: 30 hours, not 06.
    (-12.0, "0:00:00"),  # Seed episodes past --steps: nothing left, not 23:59:59.
    (float("inf"), "--"), (float("nan"), "--"), (1e9, "--"),
])
def test_progress_eta_text(seconds, text):
    from dreamer_jax import train

    assert train.format_eta(seconds) == text


def test_progress_rate_ignores_the_random_seed_episodes(tmp_path, monkeypatch, capsys):
    """Seed episodes (no updates yet) collect ~100x faster than training: the env steps/s and
    the ETA are measured from the first update on, not from the start of the run."""
    from dreamer_jax import train

    now = [0.0]
    monkeypatch.setattr(train.time, "time", lambda: now[0])
    logger = train.Logger(tmp_path, 10_000, progress=True)
    for now[0], step, updates in [(0.0, 0, 0),          # start
                                  (1.0, 5_000, 0),      # 5 seed episodes in a second
                                  (101.0, 5_000, 100),  # 100 updates, before collecting
                                  (201.0, 6_000, 100)]:  # 1,000 env steps per 100 s of training
        logger.progress(step, updates, force=True)
    logger.close()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "10.0 env steps/s" in last, last       # 1,000 steps / 100 s, not 6,000 / 201 s
    assert "ETA 0:06:40" in last, last            # 4,000 steps left at 10 per second


def test_params_copy_acts_with_the_old_parameters_after_a_donating_update(make_tiny_config,
                                                                          env_specs,
                                                                          make_random_batch):
    """`--overlap`'s collector acts with `Agent.params_copy()` while the update donates the
    training state: the copy outlives the donated buffers and gives the actions of the
    parameters from before the update, which the donated originals can no longer give."""
    import jax

    from dreamer_jax import train

    cfg, spec = make_tiny_config(obs="state"), env_specs["state"]
    agent = train.Agent(cfg, spec, jax.random.PRNGKey(0))
    obs, first = np.ones((1,) + spec.obs_shape, np.float32), np.ones(1, bool)
    key = agent.policy_key
    before = agent.act(obs, first, False)
    copy, donated = agent.params_copy(), agent.state.params
    agent.state, _ = agent.train_step(agent.state, make_random_batch(spec, cfg.batch_size,
                                                                     cfg.seq_len))
    agent.policy_key = key
    np.testing.assert_array_equal(agent.act(obs, first, False, params=copy), before)
    agent.policy_key = key
    assert not np.array_equal(agent.act(obs, first, False), before)  # The update moved them.
    with pytest.raises(ValueError, match="deleted or donated"):  # Acting without the copy.
        agent.act(obs, first, False, params=donated)


def test_replay_ram_note_counts_agent_steps_and_names_the_cap():
    import dataclasses

    from dreamer_jax import config as config_lib, envs, train

    spec = envs.EnvSpec((64, 64, 3), "uint8", 1)  # cartpole from pixels: 12288 + 4 + 8 bytes.
    config = config_lib.make_config("debug", task="dmc_cartpole_swingup", steps=100_000,
                                    action_repeat=2, replay_ram_gib=8.0)
    note = train.replay_ram_note(config, spec)
    assert "50000 agent steps x 12300 bytes = 0.57 GiB" in note and "capped" not in note
    capped = train.replay_ram_note(dataclasses.replace(config, replay_ram_gib=0.5), spec)
    assert "capped by --replay_ram_gib=0.5" in capped
    assert "20000 agent steps" in train.replay_ram_note(
        dataclasses.replace(config, replay_capacity=40_000), spec)


def test_sigterm_stops_between_updates_and_resuming_is_bit_exact(tmp_path, monkeypatch, capfd):
    """SIGTERM (a cluster's preemption, `kill`; Ctrl-C's SIGINT takes the same path, next test)
    lands in the middle of the second round of 20 updates: the run finishes that update,
    checkpoints (with how many of the round's updates ran), exits with 130, and the same
    command resumes it. The resumed run does the
    round's 10 remaining updates on the batches it would have sampled, so its end state is the
    uninterrupted run's byte for byte, and it collects and evaluates the same episodes."""
    import signal

    import flax.serialization

    from dreamer_jax import train

    args = [*STATE_RUN, "--steps", "1000", "--progress", "false"]
    assert train.main([*args, "--logdir", str(tmp_path / "full")]) == 0

    original, calls = train.Agent.train_step, [0]

    def train_step(self, state, batch):
        calls[0] += 1
        if calls[0] == 30:  # The 10th update of the second round.
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, state, batch)

    monkeypatch.setattr(train.Agent, "train_step", train_step)
    stopped = tmp_path / "stopped"
    assert train.main([*args, "--logdir", str(stopped)]) == 130
    err = capfd.readouterr().err
    assert "SIGTERM: stopping after the current update" in err
    assert "stopped at" in err and "30 updates" in err and "the same command resumes" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # The handlers are restored.
    raw = flax.serialization.msgpack_restore(
        sorted((stopped / "checkpoints").glob("*.msgpack"))[-1].read_bytes())
    counters = json.loads(raw["meta"])["counters"]
    assert (counters["updates"], counters["round_updates"]) == (30, 10)

    monkeypatch.setattr(train.Agent, "train_step", original)
    assert train.main([*args, "--logdir", str(stopped)]) == 0
    assert "resumed" in capfd.readouterr().err
    last = [sorted((d / "checkpoints").glob("*.msgpack"))[-1] for d in (tmp_path / "full", stopped)]
    assert last[0].name == last[1].name
    assert last[0].read_bytes() == last[1].read_bytes()  # Parameters, optimizers, counters, RNGs.
    episodes = [[(r["step"], r.get("train_return"), r.get("eval_return")) for r in read_metrics(d)
                 if "train_return" in r or "eval_return" in r] for d in (tmp_path / "full", stopped)]
    assert episodes[0] == episodes[1]


def test_ctrl_c_stops_a_run_with_environment_workers_and_it_resumes(tmp_path):
    """Ctrl-C in a terminal signals the whole process group: the environment worker processes
    (--envs 2) ignore it, so the parent can still ask them for their RNG states while it
    checkpoints; it exits with 130 and one line, and the same command resumes the run."""
    import signal
    import time

    logdir = tmp_path / "run"
    args = [*STATE_RUN, "--envs", "2", "--steps", "1500", "--logdir", str(logdir)]
    proc = subprocess.Popen([sys.executable, "-m", "dreamer_jax.train", *args],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # Its own process group, as in a terminal.
    metrics = logdir / "metrics.jsonl"
    while not (metrics.exists() and "model_loss" in metrics.read_text()):  # Training has begun.
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 130, err[-3000:]
    assert "SIGINT: stopping" in err and "Traceback" not in err and "WorkerError" not in err
    assert err.strip().splitlines()[-1].startswith("dreamer_jax.train: stopped at "), err[-3000:]
    assert list((logdir / "checkpoints").glob("*.msgpack"))
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed" in result.stderr
    assert read_metrics(logdir)[-1]["step"] >= 1500
