"""The diagnostics of experiments/ that the docs quote: their arithmetic on known inputs."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import atari_summary  # noqa: E402
import probe_action_values  # noqa: E402
import probe_atari_action_values  # noqa: E402


def test_advantage_split_shared_and_state_parts():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=5)
    q = 3.0 + shared + rng.normal(size=(40, 1))  # Every state agrees; state values differ.
    out = probe_action_values.split_advantage(q, "a")
    np.testing.assert_allclose(out["a_shared_rms"], np.sqrt(((shared - shared.mean()) ** 2).mean()))
    assert out["a_state_rms"] < 1e-6
    q = q + rng.normal(size=q.shape)  # Now also a state-dependent part: the squares add up.
    out = probe_action_values.split_advantage(q, "a")
    np.testing.assert_allclose(out["a_rms"] ** 2,
                               out["a_shared_rms"] ** 2 + out["a_state_rms"] ** 2)
    assert out["a_state_rms"] > 0.5


def test_held_byte_comparison():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 200, size=(30, 7))
    same = probe_atari_action_values.compare_held(true, true)
    assert same["byte_decoded_exactly"] == 1.0 and same["byte_decoded_mean_abs_error"] == 0.0
    np.testing.assert_allclose(same["byte_action_effect_correlation"], 1.0)
    np.testing.assert_allclose(same["byte_action_effect_rms"], same["model_byte_action_effect_rms"])
    # A model that moves the byte the same for every action knows nothing of their effects;
    # one whose moves are another state's scores near 0.
    blind = true.copy()
    blind[:, 1:] = blind[:, :1] + 3
    blind_out = probe_atari_action_values.compare_held(true, blind)
    assert blind_out["model_byte_action_effect_rms"] == 0
    assert np.isnan(blind_out["byte_action_effect_correlation"])
    other = np.concatenate([true[:, :1], np.roll(true[:, 1:], 1, axis=0)], 1)
    assert abs(probe_atari_action_values.compare_held(true, other)[
        "byte_action_effect_correlation"]) < 0.5


def test_emulator_action_values_run(tmp_path):
    out = tmp_path / "pong.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "probe_atari_action_values.py"), "--game",
         "pong", "--states", "3", "--every", "3", "--continuations", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(out.read_text())
    assert row["states"] == 3 and np.isfinite(row["reward_adv_rms"])
    np.testing.assert_allclose(row["reward_adv_rms"] ** 2, row["reward_adv_shared_rms"] ** 2
                               + row["reward_adv_state_rms"] ** 2, rtol=1e-6, atol=1e-12)


def test_action_values_gradient_reaches_the_first_action(make_tiny_config, env_specs,
                                                         make_random_params):
    """The straight-through gradient the probe compares with Q is dV_lambda(s_0)/da_0 through
    the whole imagined trajectory: it matches central differences along a random direction
    (the same imagination noise). With imagine()'s stop-gradient start in its place it fails."""
    import jax
    from test_imagine import build  # Tiny networks, random parameters and start states.

    cfg = make_tiny_config(horizon=4, pcont=True)
    nets, params, start = build(cfg, env_specs["discrete"], make_random_params, seed=3)
    rng = np.random.default_rng(3)
    n, a = start.deter.shape[0], nets.spec.action_dim
    key = jax.random.key(4)
    kw = dict(horizon=cfg.horizon, discount=cfg.discount, lambda_=cfg.lambda_)
    value = jax.jit(lambda first: probe_action_values.value_of_first_action(
        nets, params, start, first, key, **kw)[0])
    first = jax.nn.one_hot(rng.integers(a, size=n), a)
    grad = jax.grad(lambda f: value(f).sum())(first)
    direction = rng.normal(size=(n, a)).astype(np.float32)
    eps = 1e-2
    numeric = (value(first + eps * direction) - value(first - eps * direction)) / (2 * eps)
    assert np.abs(np.asarray(grad)).max() > 1e-4  # It does reach a_0.
    np.testing.assert_allclose((np.asarray(grad) * direction).sum(1), numeric, rtol=0.05,
                               atol=1e-4)


def test_handwritten_deconv_gradient_matches_autodiff():
    """bench_deconv_vjp.py's hand-written transposed-conv gradient (a strided conv of dy and its
    kernel gradient) equals autodiff's, for both of conv_matmul's paths (k = 5: all taps as
    patches; k = 6 with 8 features: row taps)."""
    import jax

    import bench_deconv_vjp

    for size, cin, cout, kernel in ((4, 3, 4, 5), (5, 16, 8, 6)):
        keys = jax.random.split(jax.random.key(size), 3)
        x = jax.random.normal(keys[0], (2, size, size, cin))
        w = jax.random.normal(keys[1], (kernel, kernel, cin, cout))
        t = jax.random.normal(keys[2], bench_deconv_vjp.AUTODIFF(x, w, 2).shape)
        want, got = (bench_deconv_vjp.layer_grad(fn)(w, x, t)
                     for fn in bench_deconv_vjp.FORMS.values())
        for a, b in zip(want, got):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        assert bench_deconv_vjp.max_rel_diff(want, got) < 1e-5


def test_atari_summary_windows_and_welch_t(tmp_path):
    """Training returns after the seed episodes, in windows, against random play; an evaluation
    logged again by a resumed run counts once, with its later value."""
    rng = np.random.default_rng(0)
    random = rng.normal(1.5, 5.0, size=30)
    returns = rng.normal(6.0, 10.0, size=2 + 13).round()
    rows = [{"step": 1000 * (i + 1), "train_return": float(v)} for i, v in enumerate(returns)]
    rows += [{"step": 15000, "eval_return": -3.0}, {"step": 15000, "eval_return": 7.5}]
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = atari_summary.summarize([run, run], random, seed_episodes=2, size=5)
    # 13 learned episodes in windows of 5, 8 (the short last one joins the one before).
    first, second = returns[2:7], returns[7:]
    for start, stop, chunk in [(3, 7, first), (8, 15, second)]:
        n, m = len(chunk), len(random)
        t = (chunk.mean() - random.mean()) / np.sqrt(
            ((chunk - chunk.mean()) ** 2).sum() / (n - 1) / n
            + ((random - random.mean()) ** 2).sum() / (m - 1) / m)
        assert f"| run | {start}-{stop} | {1000 * start:,}-{1000 * stop:,} | {chunk.mean():.2f} |" in text
        assert text.count(f"| {t:.1f} |") >= 2  # Once per copy of the run.
    pooled = np.concatenate([returns[-5:]] * 2)
    assert f"| all 2 runs | the last 5 of each | | {pooled.mean():.2f} |" in text
    assert "| run | 15,000: 7.5 |" in text


def test_plot_evaluations_table_and_png(tmp_path):
    """evaluate_atari.py's files, in any order, become one row per checkpoint, sorted by env steps."""
    files = []
    for steps, mean in [(2000, -19.0), (1000, -20.5)]:
        row = {"task": "atari_pong", "env_steps": steps, "updates": steps // 10, "episodes": 3,
               "modes": {"greedy": {"mean": mean, "se": 0.25, "welch_t_vs_random": 1.5}}}
        files.append(tmp_path / f"e{steps}.json")
        files[-1].write_text(json.dumps(row))
    random = tmp_path / "random.json"
    random.write_text(json.dumps({"games": {"pong": {"random_returns": [-21.0, -20.0, -21.0]}}}))
    out = tmp_path / "curve.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "plot_evaluations.py"), *map(str, files),
         "--out", str(out), "--random", str(random), "--game", "pong"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.stat().st_size > 0
    lines = out.with_suffix(".md").read_text().splitlines()
    assert lines[2] == "| 1,000 | 100 | -20.50 ± 0.25 (1.5) |"
    assert lines[3] == "| 2,000 | 200 | -19.00 ± 0.25 (1.5) |"
    se = np.std([-21.0, -20.0, -21.0], ddof=1) / np.sqrt(3)
    assert f"Random play: -20.67 ± {se:.2f}" in lines[-1]


def test_flop_bound_uses_exact_conv_counts_and_its_arithmetic():
    """flop_bound.py's floor rests on XLA counting a (transposed) conv as its exact math, and its
    target fraction is 1 exactly when the target ratio is the largest possible speedup."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    import bench
    import flop_bound

    rng = np.random.default_rng(0)
    for layer, (n, h, cin, cout, k) in [(nn.Conv, (3, 12, 3, 8, 4)),
                                        (nn.ConvTranspose, (3, 5, 8, 4, 6))]:
        module = layer(cout, (k, k), strides=(2, 2), padding="VALID", use_bias=False)
        x = jnp.asarray(rng.normal(size=(n, h, h, cin)), jnp.float32)
        params = module.init(jax.random.PRNGKey(0), x)
        y = module.apply(params, x)
        positions = y.shape[1] * y.shape[2] if layer is nn.Conv else h * h  # Taps meet inputs once.
        flops = bench.xla_flops(jax.jit(module.apply).lower(params, x))
        np.testing.assert_allclose(flops, 2 * n * positions * k * k * cin * cout, rtol=1e-6)
    flops, peer_s, peak = rng.uniform(1e11, 1e12), rng.uniform(1, 10), rng.uniform(1e11, 3e11)
    r = flop_bound.bound(flops, peer_s, peak, ratio=2.0)
    np.testing.assert_allclose(r["update_s_at_peak"] * peak, flops)
    np.testing.assert_allclose(r["target_update_s"] * 2.0, peer_s)
    np.testing.assert_allclose(flop_bound.bound(flops, peer_s, peak, r["max_speedup_vs_sheeprl"])
                               ["peak_fraction_for_ratio"], 1.0)
    np.testing.assert_allclose(r["peak_fraction_for_ratio"], 2.0 * flops / peak / peer_s)
