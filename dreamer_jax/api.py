"""Notebook-level access to a trained run: load its config, networks and parameters.

    agent = dreamer_jax.api.load_agent("logdir/dmc_walker_walk")
    batch = agent.replay.sample(np.random.default_rng(0), 4, 20)
    post = train_state.observe_posteriors(agent.nets, agent.params["world"], batch, key)
    traj = imagine.imagine(agent.nets, agent.params["world"], agent.params["actor"], start, key,
                           horizon=agent.config.horizon)
"""
from __future__ import annotations

import json
import pathlib
from typing import NamedTuple

import jax

from dreamer_jax import agent as agent_lib
from dreamer_jax import checkpoint, config as config_lib, replay as replay_lib, train_state
from dreamer_jax.config import Config


class LoadedAgent(NamedTuple):
    config: Config
    nets: agent_lib.Nets
    params: dict
    replay: replay_lib.Replay
    meta: dict


def load_agent(logdir: str, *, load_replay: bool = True,
               checkpoint_file: str | None = None) -> LoadedAgent:
    """The newest checkpoint of `logdir` (or the file `checkpoint_file`, e.g. one kept aside from
    an earlier point of the run) with its config, networks and (optionally) episodes."""
    path = pathlib.Path(logdir)
    for name in ("config.json", "spec.json"):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path / name} not found: is {logdir!r} a dreamer_jax logdir?")
    try:
        values = json.loads((path / "config.json").read_text())
        if not isinstance(values, dict):
            raise TypeError(f"a JSON {type(values).__name__}, not an object")
        config = config_lib.from_dict(values)
    except (json.JSONDecodeError, TypeError) as e:
        raise config_lib.ConfigError(f"{path / 'config.json'} is not a dreamer_jax config: "
                                     f"{type(e).__name__}: {e}") from None
    try:
        spec_values = json.loads((path / "spec.json").read_text())
        spec = agent_lib.EnvSpec(tuple(spec_values["obs_shape"]), spec_values["obs_dtype"],
                                 spec_values["action_dim"], spec_values["discrete"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise config_lib.ConfigError(f"{path / 'spec.json'} is not a dreamer_jax spec: "
                                     f"{type(e).__name__}: {e}") from None
    update = train_state.make_update(config, spec)
    template = update.init(jax.random.PRNGKey(0))
    if checkpoint_file is not None:
        restored = checkpoint.load(checkpoint_file, template)
    else:
        restored = checkpoint.load_latest(path, template)
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {path / 'checkpoints'}")
    state, meta = restored
    replay = replay_lib.Replay(path / "episodes", int(config.replay_ram_gib * 2**30),
                               config.replay_capacity // config.action_repeat)
    if load_replay:
        replay.load()
    return LoadedAgent(config, update.nets, state.params, replay, meta)
