"""Open-loop video prediction (Figure 5): the jitted report and the GIF layout."""
from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

from dreamer_jax import agent, report


def test_open_loop_context_then_prediction(make_tiny_config, env_specs, make_random_batch):
    spec = env_specs["image"]
    cfg = make_tiny_config()
    nets = agent.make_nets(cfg, spec)
    params = agent.init_params(nets, jax.random.key(0))["world"]
    batch = make_random_batch(spec, 2, cfg.seq_len)
    truth, model = report.make_report(nets)(params, batch, jax.random.key(1))
    chex.assert_shape([truth, model], (2, cfg.seq_len) + spec.obs_shape)
    # The prediction never sees frames after the context: changing them changes only the truth.
    changed = dict(batch, obs=batch["obs"].copy())
    changed["obs"][:, report.CONTEXT:] = 255 - changed["obs"][:, report.CONTEXT:]
    truth2, model2 = report.make_report(nets)(params, changed, jax.random.key(1))
    np.testing.assert_allclose(model, model2, atol=1e-6)
    np.testing.assert_allclose(truth2[:, :report.CONTEXT], truth[:, :report.CONTEXT])
    after = slice(report.CONTEXT, None)
    assert np.abs(np.asarray(truth2[:, after]) - np.asarray(truth[:, after])).min() > 0
    # ... while the context frames do change it.
    changed["obs"][:, 0] = 255 - changed["obs"][:, 0]
    _, model3 = report.make_report(nets)(params, changed, jax.random.key(1))
    assert np.abs(np.asarray(model3) - np.asarray(model)).max() > 1e-6


def test_video_frames_layout():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-0.5, 0.5, (2, 4, 6, 5, 3)).astype(np.float32)  # [B, T, H, W, C]
    frames = report.video_frames(truth, truth)
    chex.assert_shape(frames, (4, 18, 10, 3))
    assert frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[:, :6], frames[:, 6:12])  # truth row == model row
    np.testing.assert_array_equal(frames[:, 12:], 128)             # no error: mid-grey
    np.testing.assert_array_equal(frames[1, :6, 5:], np.round((truth[1, 1] + 0.5) * 255))


@pytest.mark.parametrize("overrides,kind", [({}, "state"), ({"objective": "reward"}, "image")])
def test_report_refuses_runs_without_pixel_decoder(overrides, kind, make_tiny_config, env_specs):
    nets = agent.make_nets(make_tiny_config(**overrides), env_specs[kind])
    with pytest.raises(report.ReportError, match="open-loop video needs"):
        report.make_report(nets)
