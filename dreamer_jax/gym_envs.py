"""Atari (ALE, via gymnasium + ale-py) and any gymnasium environment, as the agent sees them.

Task names:
  atari_<game>   e.g. atari_pong, atari_ms_pacman (ale-py ROM ids). The protocol of Machado et
                 al. (2018), which the paper follows: sticky actions (repeat probability 0.25),
                 the full action set of 18, no life-loss termination unless asked; the pixel-wise
                 maximum of the last two frames of each repeated action, resized (area average)
                 to 64x64x3; episodes end at game over or after the time limit (108,000 frames,
                 the usual 30 minutes of play). --obs state observes the console's 128-byte
                 RAM instead, as its 1024 bits in {-0.5, 0.5}: not the paper's setting, a cheap
                 one for CPU-scale runs. Bits, not bytes scaled to [-0.5, 0.5]: under the
                 unit-variance Gaussian observation model a change of a byte by 1 (a score, a
                 position) would cost 1e-5 nats and teach the representation nothing; a
                 flipped bit costs 0.5.
  gym:<id>       any registered gymnasium id, e.g. gym:Pendulum-v1. Observations: a 1-D Box as
                 a state vector (--obs state) or an image Box (HxWx3 uint8) / rendered frames
                 resized to 64x64 (--obs pixels). Actions: a 1-D Box with finite bounds
                 (the agent acts in [-1, 1]) or Discrete (one-hot).

Both need the optional packages `gymnasium` and `ale-py` (pip install -e '.[atari]').
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dreamer_jax.envs import EnvSpec

INSTALL_HINT = "pip install gymnasium==1.2.2 ale-py==0.12.1 (or pip install -e '.[atari]')"


def _env_error(message: str) -> Exception:
    from dreamer_jax.envs import EnvError
    return EnvError(message)


def _config_error(message: str) -> Exception:
    from dreamer_jax.config import ConfigError
    return ConfigError(message)


def atari_games() -> list[str]:
    try:
        import ale_py.roms
    except ImportError:
        raise _config_error(f"atari tasks need gymnasium and ale-py: {INSTALL_HINT}") from None
    return sorted(ale_py.roms.get_all_rom_ids())


def check_atari_name(name: str) -> str:
    game = name[len("atari_"):]
    games = atari_games()
    if game not in games:
        raise _config_error(f"--task={name!r} is unknown; Atari games are atari_<game>, one of: "
                            + ", ".join("atari_" + g for g in games))
    return game


def check_gym_name(name: str) -> str:
    env_id = name[len("gym:"):]
    try:
        import gymnasium as gym
    except ImportError:
        raise _config_error(f"gym: tasks need gymnasium: {INSTALL_HINT}") from None
    try:
        import ale_py
        gym.register_envs(ale_py)
    except ImportError:
        pass
    if env_id not in gym.registry:
        raise _config_error(f"--task={name!r}: {env_id!r} is not a registered gymnasium id "
                            "(e.g. gym:Pendulum-v1, gym:CartPole-v1)")
    return env_id


def area_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [h, w, C], each output pixel the area-weighted mean of the input
    pixels it covers (anti-aliased downscaling, like OpenCV's INTER_AREA)."""
    rows = _area_weights(image.shape[0], size[0])
    cols = _area_weights(image.shape[1], size[1])
    out = np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float32), cols, optimize=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in]: overlap of input cell j with output cell i, rows summing to 1."""
    edges = np.linspace(0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return (overlap / overlap.sum(1, keepdims=True)).astype(np.float32)


def _one_hot_index(action: np.ndarray, n: int) -> int:
    action = np.asarray(action).reshape(-1)
    if action.shape != (n,):
        raise ValueError(f"expected a one-hot action of {n} entries, got shape {action.shape}")
    return int(np.argmax(action))


class _Base:
    """What Atari and gym environments share: random actions, (no) RNG state, close."""
    spec: EnvSpec
    _env: Any

    def random_action(self, rng: np.random.Generator) -> np.ndarray:
        from dreamer_jax.envs import random_action
        return random_action(self.spec, rng)

    def rng_state(self) -> list:
        """Emulators and gym environments cannot be restored exactly; a resumed run starts a
        new episode with the environment's own seeding."""
        return []

    def set_rng_state(self, state: list) -> None:
        pass

    def close(self) -> None:
        self._env.close()


class AtariEnv(_Base):
    """reset() -> obs; step(one-hot action) -> (obs, reward, done, discount)."""

    def __init__(self, game: str, *, obs: str = "pixels", action_repeat: int = 4,
                 time_limit: int = 108_000, seed: int = 0, size: tuple[int, int] = (64, 64),
                 sticky: float = 0.25, life_done: bool = False):
        from ale_py.env import AtariEnv as ALE

        self._ram = obs == "state"
        self._env = ALE(game=game, obs_type="ram" if self._ram else "rgb", frameskip=1,
                        repeat_action_probability=sticky, full_action_space=True,
                        max_num_frames_per_episode=time_limit)
        self._repeat, self._limit, self._size = action_repeat, time_limit, size
        self._life_done, self._seed, self._steps = life_done, seed, 0
        self._first_reset = True
        actions = int(self._env.action_space.n)
        self.spec = (EnvSpec((1024,), "float32", actions, discrete=True) if self._ram
                     else EnvSpec(size + (3,), "uint8", actions, discrete=True))

    def _observe(self, frames: list[np.ndarray]) -> np.ndarray:
        """The RAM's bits after the last frame, or the pixel-wise max of the last two frames,
        resized."""
        if self._ram:
            return np.unpackbits(frames[-1]).astype(np.float32) - 0.5
        frame = np.maximum(frames[0], frames[-1]) if len(frames) > 1 else frames[-1]
        return area_resize(frame, self._size)

    def reset(self) -> np.ndarray:
        seed = self._seed if self._first_reset else None
        self._first_reset = False
        frame, info = self._env.reset(seed=seed)
        self._lives, self._steps = info.get("lives", 0), 0
        return self._observe([frame])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, float]:
        index = _one_hot_index(action, self.spec.action_dim)
        reward, frames, done, discount = 0.0, [], False, 1.0
        for _ in range(self._repeat):
            frame, r, terminated, truncated, info = self._env.step(index)
            reward += float(r)
            frames = frames[-1:] + [frame]
            self._steps += 1
            lost_life = info.get("lives", 0) < self._lives
            self._lives = info.get("lives", 0)
            if terminated or (self._life_done and lost_life):
                done, discount = True, 0.0
            if truncated or self._steps >= self._limit:
                done = True
            if done:
                break
        return self._observe(frames), reward, done, discount



class GymEnv(_Base):
    """A gymnasium environment with action repeat; see the module docstring for the spaces."""

    def __init__(self, env_id: str, *, obs: str = "state", action_repeat: int = 1,
                 time_limit: int = 1000, seed: int = 0, size: tuple[int, int] = (64, 64)):
        import gymnasium as gym
        from gymnasium import spaces

        probe = gym.make(env_id)
        image_space = (isinstance(probe.observation_space, spaces.Box)
                       and len(probe.observation_space.shape) == 3
                       and probe.observation_space.dtype == np.uint8)
        vector_space = (isinstance(probe.observation_space, spaces.Box)
                        and len(probe.observation_space.shape) == 1)
        probe.close()
        self._render = obs == "pixels" and not image_space
        if obs == "state" and not vector_space:
            raise _env_error(f"gym:{env_id}: --obs state needs a 1-D Box observation space, "
                             f"not {probe.observation_space}; try --obs pixels")
        if not self._render:
            self._env = gym.make(env_id)
        else:
            try:
                self._env = gym.make(env_id, render_mode="rgb_array")
                self._env.reset(seed=seed)
                self._env.render()
            except Exception as e:  # noqa: BLE001  Rendering back ends fail in many ways.
                raise _env_error(f"gym:{env_id}: cannot render it for --obs pixels "
                                 f"({type(e).__name__}: {e}); try --obs state") from None
        space = self._env.action_space
        if isinstance(space, spaces.Discrete):
            self._discrete, action_dim = True, int(space.n)
        elif (isinstance(space, spaces.Box) and len(space.shape) == 1
              and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            self._discrete, action_dim = False, int(space.shape[0])
            self._low, self._high = space.low.astype(np.float64), space.high.astype(np.float64)
        else:
            raise _env_error(f"gym:{env_id}: action space {space} is not supported; use "
                             "Discrete or a 1-D Box with finite bounds")
        self._obs_kind, self._repeat, self._limit, self._size = obs, action_repeat, time_limit, size
        self._seed, self._first_reset, self._steps = seed, True, 0
        if obs == "pixels":
            self.spec = EnvSpec(size + (3,), "uint8", action_dim, self._discrete)
        else:
            dim = int(self._env.observation_space.shape[0])
            self.spec = EnvSpec((dim,), "float32", action_dim, self._discrete)

    def _observe(self, observation) -> np.ndarray:
        if self._obs_kind == "state":
            return np.asarray(observation, np.float32)
        frame = self._env.render() if self._render else observation
        if frame is None or np.asarray(frame).ndim != 3:
            raise _env_error("the environment rendered no RGB frame; use --obs state")
        return area_resize(np.asarray(frame)[..., :3], self._size)

    def reset(self) -> np.ndarray:
        seed = self._seed if self._first_reset else None
        self._first_reset = False
        self._steps = 0
        observation, _ = self._env.reset(seed=seed)
        return self._observe(observation)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, float]:
        if self._discrete:
            env_action: Any = _one_hot_index(action, self.spec.action_dim)
        else:
            a = np.clip(np.asarray(action, np.float64), -1, 1)
            env_action = (self._low + (a + 1) * 0.5 * (self._high - self._low)).astype(
                self._env.action_space.dtype)
        reward, done, discount = 0.0, False, 1.0
        for _ in range(self._repeat):
            observation, r, terminated, truncated, _ = self._env.step(env_action)
            reward += float(r)
            self._steps += 1
            if terminated:
                done, discount = True, 0.0
            if truncated or self._steps >= self._limit:
                done = True
            if done:
                break
        return self._observe(observation), reward, done, discount
