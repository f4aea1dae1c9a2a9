"""Open-loop video prediction (the paper's Figure 5) and its command line.

    python -m dreamer_jax.report --logdir logdir/dmc_walker_walk [--sequences 6] [--out x.gif]

From replay sequences of the run: the first `context` (5) frames go through the representation
model; the remaining frames are predicted by the transition model from the actions alone, then
decoded. The GIF shows three rows per sequence column: truth, model, and the error
(model - truth, mid-grey = no error). The training loop writes one every --video_every env steps
into LOGDIR/videos/.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax import agent, rssm, train_state

CONTEXT = 5


class ReportError(RuntimeError):
    """The run cannot produce an open-loop video; one line."""


def open_loop(nets: agent.Nets, world_params, batch: dict, key: jax.Array, *,
              context: int = CONTEXT) -> tuple[jax.Array, jax.Array]:
    """(truth, model) images in [-0.5, 0.5], [B, T, H, W, C]: model frames < `context` are
    reconstructions of posterior states, later ones decoded open-loop priors."""
    obs_key, img_key = jax.random.split(key)
    truth = agent.preprocess(batch["obs"])
    post = train_state.observe_posteriors(
        nets, world_params, {k: batch[k][:, :context] for k in ("obs", "action")}, obs_key)
    last = jax.tree.map(lambda x: x[:, -1], post)
    prior = rssm.imagine_open_loop(nets.rssm, world_params["rssm"], last,
                                   batch["action"][:, context:], img_key)
    feat = jnp.concatenate([rssm.feature(post), rssm.feature(prior)], axis=1)
    return truth, nets.decoder.apply(world_params["decoder"], feat)


def make_report(nets: agent.Nets) -> Callable:
    """The jitted report entry point: `report(world_params, batch, key) -> (truth, model)`."""
    if nets.decoder is None or not nets.spec.is_image:
        raise ReportError("open-loop video needs pixel observations and the reconstruction "
                          f"objective's decoder (this run: objective={nets.objective!r}, "
                          f"obs_shape={nets.spec.obs_shape})")
    return jax.jit(lambda params, batch, key: open_loop(nets, params, batch, key))


def video_frames(truth: np.ndarray, model: np.ndarray) -> np.ndarray:
    """uint8 frames [T, 3*H, B*W, C]: rows truth / model / error, one column per sequence."""
    truth, model = np.asarray(truth, np.float32), np.asarray(model, np.float32)
    error = (model - truth + 1.0) / 2.0 - 0.5
    rows = [np.clip(x + 0.5, 0.0, 1.0) for x in (truth, model, error)]
    grid = np.concatenate(rows, axis=2)  # [B, T, 3H, W, C]
    b, t, h, w, c = grid.shape
    grid = grid.transpose(1, 2, 0, 3, 4).reshape(t, h, b * w, c)
    return (grid * 255).round().astype(np.uint8)


def write_gif(path: pathlib.Path, frames: np.ndarray, fps: int = 10) -> pathlib.Path:
    """Atomically (temp file + rename) write uint8 frames [T, H, W, C] as a looping GIF."""
    import imageio.v3 as iio

    from dreamer_jax import files

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)
    return files.write_atomic(path, data)


def write_open_loop_video(report: Callable, world_params, batch: dict, key: jax.Array,
                          path: pathlib.Path) -> pathlib.Path:
    truth, model = report(world_params, batch, key)
    return write_gif(path, video_frames(*jax.device_get((truth, model))))


def main(argv: Sequence[str] | None = None) -> int:
    from dreamer_jax import api
    from dreamer_jax.checkpoint import CheckpointError
    from dreamer_jax.config import ConfigError
    from dreamer_jax.files import WriteError

    parser = argparse.ArgumentParser(prog="python -m dreamer_jax.report", description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--sequences", type=int, default=6, help="columns of the video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="GIF path (default LOGDIR/videos/"
                        "openloop-STEP-report-seedSEED.gif: never the training run's own videos)")
    args = parser.parse_args(argv)
    try:
        if args.sequences <= 0:
            raise ReportError(f"--sequences={args.sequences} must be a positive integer")
        if args.seed < 0:
            raise ReportError(f"--seed={args.seed} must be >= 0")
        loaded = api.load_agent(args.logdir)
        report = make_report(loaded.nets)
        length = loaded.config.seq_len
        if length <= CONTEXT:
            raise ReportError(f"seq_len={length} leaves nothing to predict after {CONTEXT} context frames")
        if loaded.replay.longest_episode() < length:
            raise ReportError(f"no episode in {args.logdir} has the {length} steps to show")
        rng = np.random.default_rng(args.seed)
        batch = loaded.replay.sample(rng, args.sequences, length)
        step = loaded.meta["counters"]["env_steps"]
        name = f"openloop-{step:010d}-report-seed{args.seed}.gif"
        out = pathlib.Path(args.out) if args.out else pathlib.Path(args.logdir) / "videos" / name
        write_open_loop_video(report, loaded.params["world"], batch, jax.random.key(args.seed), out)
    except (ReportError, OSError, CheckpointError, ConfigError, WriteError) as e:
        print(f"dreamer_jax.report: error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
