"""Collection from several environment processes (`--envs N`)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dreamer_jax import config as config_lib, envs, parallel, replay

ROOT = pathlib.Path(__file__).resolve().parents[1]


def state_config(**overrides) -> config_lib.Config:
    return config_lib.make_config("debug", task="dmc_cartpole_swingup", obs="state", **overrides)


def policy(obs: np.ndarray, first: np.ndarray) -> np.ndarray:
    """A deterministic function of the observation, so that two collections can be compared."""
    return np.tanh(obs[:, :1] * 3.0 - obs[:, 1:2])


def test_process_envs_collect_the_same_episodes_as_in_process_envs():
    config = state_config(envs=2, time_limit=60)
    local = [envs.make_env(config, seed=7 + i) for i in range(2)]
    remote = parallel.make_envs(config, envs.make_env, seed=7)
    try:
        assert all(isinstance(e, parallel.ProcessEnv) for e in remote)
        assert remote[0].spec == local[0].spec
        for _ in range(2):  # Two rounds: the second starts from the environments' advanced RNGs.
            want, got = parallel.collect(local, policy), parallel.collect(remote, policy)
            assert len(got) == 2
            for (ep_want, ret_want), (ep_got, ret_got) in zip(want, got):
                assert ret_got == ret_want
                for key in ep_want:
                    np.testing.assert_array_equal(ep_got[key], ep_want[key])
            # Different seeds: different initial states.
            assert not np.array_equal(got[0][0]["obs"][0], got[1][0]["obs"][0])
        assert remote[1].rng_state() == local[1].rng_state()
    finally:
        parallel.close(local + remote)


def test_collect_shapes_and_lockstep_calls():
    config = state_config(time_limit=40)
    env = envs.make_env(config, seed=0)
    calls = []

    def act(obs, first):
        calls.append((obs.shape, first.copy()))
        return np.zeros((len(obs), 1), np.float32)

    (episode, ret), = parallel.collect([env], act)
    env.close()
    assert len(calls) == 20 and calls[0][0] == (1, 5)  # 40 env steps / action repeat 2.
    assert calls[0][1].tolist() == [True] and not any(f.any() for _, f in calls[1:])
    assert episode["obs"].shape == (21, 5) and episode["action"].shape == (21, 1)
    assert episode["reward"][0] == 0 and ret == pytest.approx(float(episode["reward"].sum()))
    # The replay's RAM estimate (train's note, reproduce_gpu's --replay_ram_gib) per step.
    spec = env.spec
    assert replay.episode_nbytes(episode) == 21 * replay.step_nbytes(spec.obs_shape, spec.obs_dtype,
                                                                    spec.action_dim)


def test_dead_worker_is_a_clear_error():
    config = state_config(envs=2)
    remote = parallel.make_envs(config, envs.make_env, seed=0)
    try:
        remote[1]._process.kill()
        remote[1]._process.join()
        with pytest.raises(parallel.WorkerError, match=r"dmc_cartpole_swingup \(seed 1\) died"):
            parallel.collect(remote, policy)
    finally:
        parallel.close(remote)


def test_train_with_two_env_processes_and_resume(tmp_path):
    """Each round collects one episode per process and runs C updates per episode; a resumed run
    restores both environments' random states."""
    logdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "dreamer_jax.train", "--preset", "debug", "--obs", "state",
           "--task", "dmc_cartpole_swingup", "--envs", "2", "--train_steps", "3",
           "--log_every", "100", "--logdir", str(logdir)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for steps in ("400", "600"):
        result = subprocess.run([*cmd, "--steps", steps], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train_return" in r] == [100, 200, 300, 400, 500, 600]
    # Seed episode 1 (debug preset: 1 seed episode) is collected by both processes: 2 episodes;
    # then rounds of 2 episodes with 2 x 3 updates before each.
    assert [r["updates"] for r in rows if "model_loss" in r] == [6, 12]
    assert "resumed" in result.stderr
    assert len(list((logdir / "episodes").glob("*.npz"))) == 6
