"""experiments/reproduce_gpu.py: the paper-scale run lists are complete and every run's flags are valid."""
import importlib.util
import pathlib
import sys

import pytest

from dreamer_jax import envs, published

_PATH = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "reproduce_gpu.py"
_spec = importlib.util.spec_from_file_location("reproduce_gpu", _PATH)
reproduce_gpu = importlib.util.module_from_spec(_spec)
sys.modules["reproduce_gpu"] = reproduce_gpu  # dataclasses look their module up there
_spec.loader.exec_module(reproduce_gpu)


def test_table_g_plans_every_paper_task_and_seed_at_5e6():
    runs = reproduce_gpu.plan("table_g", None, [0, 1, 2, 3, 4], None, [])
    assert len(runs) == 20 * 5 and len({r.name for r in runs}) == len(runs)
    assert {r.task for r in runs} == set(envs.PAPER_TASKS) == set(published.TABLE_G)
    for run in runs:
        assert run.args[run.args.index("--steps") + 1] == "5000000"
        # 2.5M agent steps x 12.4 KB x 1.1 = 31.8 GiB: every episode stays in RAM.
        assert run.args[run.args.index("--replay_ram_gib") + 1] == "32"
        assert run.args[:2] == ("--preset", "paper")


def test_fig4_varies_the_horizon_of_each_behavior():
    runs = reproduce_gpu.plan("fig4", ["acrobot_swingup"], [0], 1000, [5, 20])
    flags = {(r.args[r.args.index("--behavior") + 1], r.args[-2], r.args[-1]) for r in runs}
    assert flags == {(b, f, h) for h in ("5", "20") for b, f in
                     (("dreamer", "--horizon"), ("only_action", "--horizon"), ("planet", "--plan_horizon"))}


@pytest.mark.parametrize("experiment", ["table_g", "curl", "fig4", "fig8", "atari"])
def test_dry_run_accepts_every_run(experiment, capsys):
    assert reproduce_gpu.main([experiment, "--dry_run", "--seeds", "0", "--runs", "/tmp/r"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"[reproduce_gpu] {experiment}: ")
    assert all(" -m dreamer_jax.train " in line and "--logdir /tmp/r/" in line for line in lines[1:])


def test_bad_task_is_one_line_error(capsys):
    with pytest.raises(SystemExit) as e:
        reproduce_gpu.main(["curl", "--dry_run", "--tasks", "walker_walkk"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "walker_walkk" in err
