"""Learning curves and the score table against the published numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dreamer_jax import config as config_lib, plot, published


def fake_run(root, name, evals, **overrides):
    logdir = root / name
    logdir.mkdir()
    cfg = config_lib.make_config("cpu", **{"task": "dmc_cartpole_swingup", **overrides})
    (logdir / "config.json").write_text(json.dumps(config_lib.to_dict(cfg)))
    rows = [{"step": s, "train_return": v - 10} for s, v in evals]
    rows += [{"step": s, "eval_return": v} for s, v in evals]
    (logdir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return logdir


def test_groups_seeds_and_tables_against_the_paper(tmp_path):
    a = fake_run(tmp_path, "a", [(1000, 100), (2000, 300), (3000, 500)], seed=0)
    b = fake_run(tmp_path, "b", [(1000, 200), (2000, 500)], seed=1, logdir="elsewhere")
    c = fake_run(tmp_path, "c", [(1000, 50), (2000, 60)], actor_lr=3e-4)
    groups = plot.group_runs([a, b, c])
    assert sorted(map(len, groups.values())) == [1, 2]  # Seeds pool; another lr does not.
    assert any("actor_lr=0.0003" in label for label in groups)
    steps, values = plot.eval_curve([a, b])
    np.testing.assert_array_equal(steps, [1000, 2000])  # Only steps every seed reached.
    np.testing.assert_array_equal(values, [[100, 300], [200, 500]])
    table = plot.score_table([a, b, c])
    row = next(line for line in table.splitlines() if "| 2 |" in line)
    assert "| 2000 | 400 ± 100 |" in row  # Mean ± std of the last common evaluation.
    assert f"| {published.TABLE_G['cartpole_swingup']['Dreamer']:.0f} |" in row
    assert "326±27 / 762±27" in row
    out = tmp_path / "curves.png"
    assert plot.main([str(a), str(b), str(c), "--out", str(out)]) == 0 and out.stat().st_size > 0


def test_published_data_is_complete():
    assert len(published.TABLE_G) == 20
    dreamer = [v["Dreamer"] for v in published.TABLE_G.values()]
    assert abs(np.mean(dreamer) - published.TABLE_G_AVERAGE["Dreamer"]) < 0.01
    planet = [v["PlaNet"] for v in published.TABLE_G.values()]
    assert abs(np.mean(planet) - published.TABLE_G_AVERAGE["PlaNet"]) < 0.01
    assert published.dmc_key("dmc_cup_catch") == "ball_in_cup_catch"
    assert published.dmc_key("atari_pong") is None


def test_table_averages_tasks_like_table_g(tmp_path):
    a = fake_run(tmp_path, "a", [(1000, 100)], task="dmc_walker_walk")
    b = fake_run(tmp_path, "b", [(1000, 400)], task="dmc_cheetah_run")
    last = plot.score_table([a, b]).splitlines()[-1]
    paper = [published.TABLE_G[t] for t in ("walker_walk", "cheetah_run")]
    dreamer = np.mean([p["Dreamer"] for p in paper])
    planet = np.mean([p["PlaNet"] for p in paper])
    assert last == (f"| mean of the 2 runs above with paper scores | | | 250 | {dreamer:.0f} | "
                    f"{planet:.0f} | | |")
    assert "mean of" not in plot.score_table([a])  # One task: no average row.
    # Two variants of one task (Figure 8's objectives) and another task: no average row either.
    c = fake_run(tmp_path, "c", [(1000, 300)], task="dmc_walker_walk", objective="reward")
    table = plot.score_table([a, b, c])
    assert "objective=reward" in table and "mean of" not in table


def test_published_points_up_to_the_planned_end_of_a_run_in_progress(tmp_path, monkeypatch):
    """A run planned for 100k env steps and logged to 20k still shows the published 100k
    points (CURL, the official scores file): they are its target."""
    run = fake_run(tmp_path, "a", [(10_000, 100), (20_000, 150)], steps=100_000)
    drawn = {}
    monkeypatch.setattr(plot, "draw_published", lambda ax, key, max_step: drawn.update(
        key=key, max_step=max_step))
    plot.plot([run], tmp_path / "curve.png")
    assert drawn == {"key": "cartpole_swingup", "max_step": 100_000}


def test_unreadable_lines_are_skipped_with_a_warning(tmp_path, capsys):
    """A live run mid-write or a run cut by a full disk (not resumed yet): the rest plots."""
    run = fake_run(tmp_path, "a", [(1000, 100), (2000, 300)])
    with open(run / "metrics.jsonl", "a") as f:
        f.write('\n{"step": 3000, "eval_ret')  # A blank line and a cut one.
    steps, values = plot.eval_curve([run])
    np.testing.assert_array_equal(steps, [1000, 2000])
    np.testing.assert_array_equal(values, [[100, 300]])
    assert "skipped 2 unreadable line(s)" in capsys.readouterr().err
    out = tmp_path / "curves.png"
    assert plot.main([str(run), "--out", str(out)]) == 0 and out.stat().st_size > 0


def test_a_resumed_runs_superseded_records_are_left_out(tmp_path):
    """Killed after evaluating at 3000 and resumed from an earlier checkpoint, the run redid the
    updates and evaluated at 3000 again (another value); its episodes stay as they were."""
    run = fake_run(tmp_path, "a", [(1000, 100), (2000, 200), (3000, 1)])
    with open(run / "metrics.jsonl", "a") as f:
        for step, value in [(3000, 300), (4000, 400)]:
            f.write(json.dumps({"step": step, "eval_return": value}) + "\n")
    assert plot.read_series(run, "eval_return") == ([1000, 2000, 3000, 4000], [100, 200, 300, 400])
    assert plot.read_series(run, "train_return") == ([1000, 2000, 3000], [90, 190, -9])
    steps, values = plot.eval_curve([run])
    np.testing.assert_array_equal(values, [[100, 200, 300, 400]])


@pytest.mark.parametrize("args, expect", [
    (["--out", "curves.gif"], "--out='curves.gif' must end in one of .png"),
    (["--out", "c.png", "--reference", "cartpole_upswing"], "--reference='cartpole_upswing' has no"),
    (["NOLOGDIR", "--out", "c.png"], "NOLOGDIR/metrics.jsonl not found"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, expect, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path, "a", [(1000, 100)])
    assert plot.main([str(run), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err
    assert not list(tmp_path.glob("c*"))  # Nothing written.
