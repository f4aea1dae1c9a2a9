"""dm_control environments: names, specs, action repeat, rendering backend selection."""
from __future__ import annotations

import numpy as np
import pytest

from dreamer_jax import config as config_lib, envs


def test_all_paper_tasks_are_valid_names():
    assert len(envs.PAPER_TASKS) == 20
    for task in envs.PAPER_TASKS:
        domain, name = envs.check_task_name(f"dmc_{task}")
        assert f"{domain}_{name}" == task
    assert envs.check_task_name("dmc_cup_catch") == ("ball_in_cup", "catch")
    assert envs.check_task_name("dmc_point_mass_easy") == ("point_mass", "easy")


def test_unknown_task_is_a_config_error():
    with pytest.raises(config_lib.ConfigError, match="dmc_walker_fly"):
        envs.check_task_name("dmc_walker_fly")


def test_state_env_action_repeat_and_time_limit():
    env = envs.DMCEnv("dmc_cartpole_swingup", obs="state", action_repeat=2, time_limit=20, seed=0)
    assert env.spec.obs_shape == (5,) and env.spec.action_dim == 1 and not env.spec.is_image
    obs = env.reset()
    assert obs.shape == (5,) and obs.dtype == np.float32
    steps, done, total = 0, False, 0.0
    while not done:
        obs, reward, done, discount = env.step(np.ones(1))
        steps += 1
        total += reward
        assert 0 <= reward <= 2.0 and discount == 1.0  # Sum of two rewards in [0, 1].
    assert steps == 10  # 20 env steps / repeat 2.


def test_pixel_env_renders_64x64_uint8_once_per_agent_step(monkeypatch):
    env = envs.DMCEnv("dmc_cartpole_swingup", obs="pixels", action_repeat=2, time_limit=10, seed=0)
    calls = []
    render = env._env.physics.render
    monkeypatch.setattr(env._env.physics, "render", lambda *a, **k: calls.append(1) or render(*a, **k))
    obs = env.reset()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.std() > 0
    for _ in range(5):
        obs, *_ = env.step(np.zeros(1))
    assert len(calls) == 6  # Reset + 5 agent steps; the repeated frames are never rendered.
    assert envs.select_gl_backend() in ("egl", "osmesa") or envs.select_gl_backend()


def test_no_gl_backend_names_the_packages(monkeypatch):
    import subprocess

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    with pytest.raises(envs.EnvError, match="libosmesa6") as info:
        envs.select_gl_backend(required=True)
    assert "libegl1" in str(info.value) and "\n" not in str(info.value)
    assert envs.select_gl_backend(required=False) == "disable"  # State observations still work.
