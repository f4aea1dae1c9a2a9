"""Environments: DeepMind Control Suite from 64x64 pixels or from states, with action repeat
(Atari and gymnasium environments: `gym_envs`).

Task names are `dmc_<domain>_<task>` (e.g. dmc_walker_walk, dmc_ball_in_cup_catch; the
paper's short name dmc_cup_catch is accepted too). Each `step` repeats the action
`action_repeat` times, sums the rewards and renders only the last frame (the earlier frames
are never observed). Headless MuJoCo rendering picks EGL or OSMesa by itself.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know of an environment."""
    obs_shape: tuple[int, ...]
    obs_dtype: str          # 'uint8' for images, 'float32' for state vectors
    action_dim: int
    discrete: bool = False

    @property
    def is_image(self) -> bool:
        return self.obs_dtype == "uint8"


class EnvError(RuntimeError):
    """An environment cannot be made here; the message says why and what to do, in one line."""


# suite.ALL_TASKS of dm_control 1.0.50 (kept here so names validate without importing MuJoCo).
DMC_TASKS = (
    "acrobot_swingup", "acrobot_swingup_sparse", "ball_in_cup_catch", "cartpole_balance",
    "cartpole_balance_sparse", "cartpole_swingup", "cartpole_swingup_sparse", "cartpole_two_poles",
    "cartpole_three_poles", "cheetah_run", "dog_stand", "dog_walk", "dog_trot", "dog_run",
    "dog_fetch", "finger_spin", "finger_turn_easy", "finger_turn_hard", "fish_upright", "fish_swim",
    "hopper_stand", "hopper_hop", "humanoid_stand", "humanoid_walk", "humanoid_run",
    "humanoid_run_pure_state", "humanoid_CMU_stand", "humanoid_CMU_walk", "humanoid_CMU_run",
    "lqr_lqr_2_1", "lqr_lqr_6_2", "manipulator_bring_ball", "manipulator_bring_peg",
    "manipulator_insert_ball", "manipulator_insert_peg", "pendulum_swingup", "point_mass_easy",
    "point_mass_hard", "quadruped_walk", "quadruped_run", "quadruped_escape", "quadruped_fetch",
    "reacher_easy", "reacher_hard", "stacker_stack_2", "stacker_stack_4", "swimmer_swimmer6",
    "swimmer_swimmer15", "walker_stand", "walker_walk", "walker_run",
)
DMC_ALIASES = {"cup_catch": "ball_in_cup_catch"}
# The 20 tasks of the paper's Table G.
PAPER_TASKS = (
    "acrobot_swingup", "cartpole_balance", "cartpole_balance_sparse", "cartpole_swingup",
    "cartpole_swingup_sparse", "cheetah_run", "ball_in_cup_catch", "finger_spin",
    "finger_turn_easy", "finger_turn_hard", "hopper_hop", "hopper_stand", "pendulum_swingup",
    "quadruped_run", "quadruped_walk", "reacher_easy", "reacher_hard", "walker_run",
    "walker_stand", "walker_walk",
)
_DOMAINS = sorted({"ball_in_cup", "point_mass", "humanoid_CMU"} | {t.split("_")[0] for t in DMC_TASKS},
                  key=len, reverse=True)


def check_task_name(name: str) -> str:
    """Validate a task name of any suite (dmc_*, atari_*, gym:*); a one-line ConfigError else."""
    if name.startswith("atari_"):
        from dreamer_jax import gym_envs
        gym_envs.check_atari_name(name)
    elif name.startswith("gym:"):
        from dreamer_jax import gym_envs
        gym_envs.check_gym_name(name)
    else:
        dmc_domain_task(name)
    return name


def dmc_domain_task(name: str) -> tuple[str, str]:
    """'dmc_walker_walk' -> ('walker', 'walk'); a one-line ConfigError for anything else."""
    suite, _, rest = name.partition("_")
    rest = DMC_ALIASES.get(rest, rest)
    if suite != "dmc" or rest not in DMC_TASKS:
        from dreamer_jax.config import ConfigError
        raise ConfigError(
            f"--task={name!r} is unknown; use dmc_<domain>_<task> (e.g. dmc_walker_walk), "
            "atari_<game> (e.g. atari_pong) or gym:<id> (e.g. gym:Pendulum-v1); DMC tasks: "
            + ", ".join("dmc_" + t for t in DMC_TASKS))
    for domain in _DOMAINS:
        if rest.startswith(domain + "_"):
            return domain, rest[len(domain) + 1:]
    raise AssertionError(rest)  # Unreachable: every task starts with a known domain.


def random_action(spec: EnvSpec, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random action: one-hot for discrete actions, else in [-1, 1]^A."""
    if spec.discrete:
        return np.eye(spec.action_dim, dtype=np.float32)[rng.integers(spec.action_dim)]
    return rng.uniform(-1, 1, spec.action_dim).astype(np.float32)


# --- Headless rendering ---------------------------------------------------------------------

_PROBE = (
    "from dm_control import suite\n"
    "env = suite.load('cartpole', 'balance')\n"
    "env.reset()\n"
    "assert env.physics.render(8, 8).shape == (8, 8, 3)\n"
)
GL_INSTALL_HINT = (
    "no headless OpenGL backend works for MuJoCo rendering: install EGL "
    "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0) or OSMesa "
    "(apt-get install libosmesa6), or set MUJOCO_GL yourself")


def select_gl_backend(required: bool = True) -> str:
    """Set MUJOCO_GL (and PYOPENGL_PLATFORM) to a backend that renders; EGL first, then OSMesa.

    A value the user set is kept. Must run before dm_control is imported. Without a working
    backend: an EnvError if `required` (pixels), else rendering is disabled (state observations).
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    for backend in ("egl", "osmesa"):
        env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
        try:
            result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                                    timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
    if not required:
        os.environ["MUJOCO_GL"] = "disable"
        return "disable"
    raise EnvError(GL_INSTALL_HINT)


# --- DeepMind Control Suite -----------------------------------------------------------------

class DMCEnv:
    """One dm_control task with action repeat and a time limit, as the agent sees it.

    reset() -> obs; step(action in [-1, 1]^A) -> (obs, reward, done, discount).
    Observations: uint8 [64, 64, 3] images or float32 [D] state vectors.
    """

    def __init__(self, name: str, *, obs: str = "pixels", action_repeat: int = 2,
                 time_limit: int = 1000, seed: int = 0, size: tuple[int, int] = (64, 64),
                 render_fast: bool = False):
        domain, task = dmc_domain_task(name)
        select_gl_backend(required=obs == "pixels")
        from dm_control import suite

        self._env = suite.load(domain, task, task_kwargs={"random": seed})
        self._obs_kind = obs
        self._repeat = action_repeat
        self._limit = time_limit
        self._size = size
        self._camera = 2 if domain == "quadruped" else 0
        self._steps = 0
        if render_fast and obs == "pixels":
            model = self._env.physics.model
            model.vis.quality.shadowsize = 0
            model.vis.quality.offsamples = 0
            model.mat_reflectance[:] = 0
        spec = self._env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        if obs == "pixels":
            obs_shape, dtype = size + (3,), "uint8"
        else:
            dim = sum(int(np.prod(v.shape)) for v in self._env.observation_spec().values())
            obs_shape, dtype = (dim,), "float32"
        self.spec = EnvSpec(obs_shape, dtype, int(spec.shape[0]), discrete=False)

    def _observe(self, time_step) -> np.ndarray:
        if self._obs_kind == "pixels":
            return self._env.physics.render(*self._size, camera_id=self._camera)
        return np.concatenate([np.asarray(v, np.float32).reshape(-1)
                               for v in time_step.observation.values()])

    def reset(self) -> np.ndarray:
        self._steps = 0
        return self._observe(self._env.reset())

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, float]:
        action = np.asarray(action, np.float64)
        action = self._low + (np.clip(action, -1, 1) + 1) * 0.5 * (self._high - self._low)
        reward, discount = 0.0, 1.0
        for _ in range(self._repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            self._steps += 1
            discount = time_step.discount if time_step.discount is not None else 1.0
            if time_step.last() or self._steps >= self._limit:
                break
        done = time_step.last() or self._steps >= self._limit
        return self._observe(time_step), reward, done, float(discount)

    def rng_state(self) -> list:
        """The task's random state (initial states of coming episodes), JSON-serializable."""
        name, keys, pos, has_gauss, gauss = self._env.task.random.get_state()
        return [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(gauss)]

    def set_rng_state(self, state: list) -> None:
        name, keys, pos, has_gauss, gauss = state
        self._env.task.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, gauss))

    def random_action(self, rng: np.random.Generator) -> np.ndarray:
        return random_action(self.spec, rng)

    def close(self) -> None:
        self._env.close()


def make_env(config: Any, *, seed: int):
    """The environment of `config.task`: DMCEnv, gym_envs.AtariEnv or gym_envs.GymEnv."""
    if config.task.startswith("atari_"):
        from dreamer_jax import gym_envs
        return gym_envs.AtariEnv(gym_envs.check_atari_name(config.task), obs=config.obs,
                                 action_repeat=config.action_repeat,
                                 time_limit=config.time_limit, seed=seed)
    if config.task.startswith("gym:"):
        from dreamer_jax import gym_envs
        return gym_envs.GymEnv(gym_envs.check_gym_name(config.task), obs=config.obs,
                               action_repeat=config.action_repeat, time_limit=config.time_limit,
                               seed=seed)
    return DMCEnv(config.task, obs=config.obs, action_repeat=config.action_repeat,
                  time_limit=config.time_limit, seed=seed, render_fast=config.render_fast)
