"""dm_control environments: names, specs, action repeat, rendering backend selection."""
from __future__ import annotations

import os

import numpy as np
import pytest

from dreamer_jax import config as config_lib, envs


def test_all_paper_tasks_are_valid_names():
    assert len(envs.PAPER_TASKS) == 20
    for task in envs.PAPER_TASKS:
        domain, name = envs.dmc_domain_task(f"dmc_{task}")
        assert f"{domain}_{name}" == task
    assert envs.dmc_domain_task("dmc_cup_catch") == ("ball_in_cup", "catch")
    assert envs.dmc_domain_task("dmc_point_mass_easy") == ("point_mass", "easy")


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


def test_gl_backend_probe_picks_the_first_that_renders(monkeypatch):
    """Unset: EGL first, OSMesa when EGL's probe fails; the choice lands in the environment.
    Set by the user: kept without probing."""
    import subprocess

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    tried = []

    def probe(cmd, env, **kwargs):
        tried.append(env["MUJOCO_GL"])
        return subprocess.CompletedProcess(cmd, 0 if env["MUJOCO_GL"] == "osmesa" else 1)

    monkeypatch.setattr(subprocess, "run", probe)
    assert envs.select_gl_backend() == "osmesa" and tried == ["egl", "osmesa"]
    assert os.environ["MUJOCO_GL"] == os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert envs.select_gl_backend() == "egl" and tried == ["egl", "osmesa"]


def test_gl_backend_probe_on_this_machine(monkeypatch):
    """The real probe (a subprocess that renders) finds a working backend here: CI installs
    both EGL and OSMesa."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert envs.select_gl_backend() in ("egl", "osmesa")


def test_no_gl_backend_names_the_packages(monkeypatch):
    import subprocess

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    with pytest.raises(envs.EnvError, match="libosmesa6") as info:
        envs.select_gl_backend(required=True)
    assert "libegl1" in str(info.value) and "\n" not in str(info.value)
    assert envs.select_gl_backend(required=False) == "disable"  # State observations still work.


# --- Atari and gymnasium ----------------------------------------------------------------------

def test_area_resize_averages_cells():
    from dreamer_jax import gym_envs

    image = np.zeros((4, 6, 3), np.uint8)
    image[:2, :3] = 200  # Top-left quarter.
    out = gym_envs.area_resize(image, (2, 2))
    np.testing.assert_array_equal(out[..., 0], [[200, 0], [0, 0]])
    # Non-integer factor: every output pixel is a convex combination; a constant stays constant.
    np.testing.assert_array_equal(gym_envs.area_resize(np.full((210, 160, 3), 77, np.uint8),
                                                       (64, 64)), 77)
    rows = gym_envs._area_weights(210, 64)
    np.testing.assert_allclose(rows.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rows.sum(0), 64 / 210, rtol=1e-5)  # Each input counted equally.


def test_atari_env_protocol():
    from dreamer_jax import gym_envs

    env = gym_envs.AtariEnv("pong", action_repeat=4, time_limit=400, seed=0)
    assert env.spec.obs_shape == (64, 64, 3) and env.spec.discrete and env.spec.action_dim == 18
    obs = env.reset()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    rng = np.random.default_rng(0)
    steps, done = 0, False
    while not done:
        action = env.random_action(rng)
        assert action.shape == (18,) and action.sum() == 1
        obs, reward, done, discount = env.step(action)
        steps += 1
    assert steps == 100 and discount == 1.0  # Time limit in frames: 400 / 4; not a terminal.
    with pytest.raises(ValueError, match="one-hot"):
        env.step(np.zeros(3))


def test_atari_env_ram_observations():
    """--obs state on Atari: the bits of the 128-byte console RAM after the last repeated frame,
    as -0.5 / 0.5, most significant bit of each byte first; same game, actions and protocol as
    from pixels."""
    from dreamer_jax import gym_envs

    def bits(ram):  # Independent of np.unpackbits: bit 7 - j of byte i at 8 * i + j.
        return np.array([(int(b) >> (7 - j)) & 1 for b in ram for j in range(8)]) - 0.5

    env = gym_envs.AtariEnv("pong", obs="state", action_repeat=4, time_limit=400, seed=0)
    assert env.spec.obs_shape == (1024,) and env.spec.obs_dtype == "float32"
    assert env.spec.discrete and env.spec.action_dim == 18
    first = env.reset()
    np.testing.assert_array_equal(first, bits(env._env.ale.getRAM()))
    rng = np.random.default_rng(0)
    steps, done, seen = 0, False, [first]
    while not done:
        obs, reward, done, discount = env.step(env.random_action(rng))
        np.testing.assert_array_equal(obs, bits(env._env.ale.getRAM()))
        seen.append(obs)
        steps += 1
    assert steps == 100 and discount == 1.0
    seen = np.stack(seen)
    assert seen.dtype == np.float32 and set(np.unique(seen)) == {-0.5, 0.5}
    assert np.any(seen.std(0) > 0)  # The game moves.


def test_gym_env_vector_box_and_discrete():
    from dreamer_jax import gym_envs

    env = gym_envs.GymEnv("Pendulum-v1", obs="state", action_repeat=2, time_limit=10, seed=0)
    assert env.spec.obs_shape == (3,) and env.spec.action_dim == 1 and not env.spec.discrete
    env.reset()
    obs, reward, done, discount = env.step(np.ones(1, np.float32))
    assert obs.shape == (3,) and reward < 0 and not done
    env = gym_envs.GymEnv("CartPole-v1", obs="state", action_repeat=1, time_limit=500, seed=0)
    assert env.spec.discrete and env.spec.action_dim == 2
    env.reset()
    for _ in range(500):
        obs, reward, done, discount = env.step(np.array([1.0, 0.0], np.float32))  # Always left.
        if done:
            break
    assert done and discount == 0.0  # The pole falls: a real terminal.


@pytest.mark.parametrize("task,expect", [
    ("atari_pongg", "atari_pong"),
    ("gym:NoSuchEnv-v0", "not a registered gymnasium id"),
    ("walker_walk", "dmc_<domain>_<task>"),
])
def test_unknown_atari_and_gym_names(task, expect):
    with pytest.raises(config_lib.ConfigError, match=expect):
        envs.check_task_name(task)


def test_gym_unsupported_spaces_are_one_line_errors():
    import gymnasium as gym

    from dreamer_jax import gym_envs

    class MultiDiscreteEnv(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (2,))
        action_space = gym.spaces.MultiDiscrete([2, 3])

    gym.register("DreamerJaxTestMultiDiscrete-v0", entry_point=MultiDiscreteEnv)
    with pytest.raises(envs.EnvError, match="action space MultiDiscrete"):
        gym_envs.GymEnv("DreamerJaxTestMultiDiscrete-v0", obs="state")
    with pytest.raises(envs.EnvError, match="1-D Box observation"):
        gym_envs.GymEnv("Blackjack-v1", obs="state")  # A Tuple observation space.
