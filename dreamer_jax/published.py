"""Published Dreamer (V1) scores to compare against, carried into the project as data.

DeepMind Control Suite from 64x64 pixels; returns in [0, 1000]. Sources (copied from the
project's shared reference notes, ../shared/reference/published.md):
- TABLE_G: the paper's Table G, final scores after 5e6 env steps (A3C, D4PG: 1e8 steps).
- CURL: CURL paper (Srinivas et al. 2020) Table 1, Dreamer column, mean and std at 100k / 500k
  env steps; that benchmark used per-task action repeats (PlaNet protocol).
- OFFICIAL: the official code's scores file (danijar/dreamer scores/dreamer.json), mean of 5
  seeds at 100k / 500k / 1M env steps; from an earlier hyper parameter setting, per its author.
Task keys are dm_control names (`cartpole_swingup`, `ball_in_cup_catch`).
"""
from __future__ import annotations

TABLE_G_STEPS = 5_000_000
TABLE_G: dict[str, dict[str, float | None]] = {
    # task: A3C (proprio, 1e8), D4PG (pixels, 1e8), PlaNet (pixels, 5e6), Dreamer (pixels, 5e6)
    "acrobot_swingup": {"A3C": 41.90, "D4PG": 91.70, "PlaNet": 3.21, "Dreamer": 365.26},
    "cartpole_balance": {"A3C": 951.60, "D4PG": 992.80, "PlaNet": 452.56, "Dreamer": 979.56},
    "cartpole_balance_sparse": {"A3C": 857.40, "D4PG": 1000.00, "PlaNet": 164.74, "Dreamer": 941.84},
    "cartpole_swingup": {"A3C": 558.40, "D4PG": 862.00, "PlaNet": 312.56, "Dreamer": 833.66},
    "cartpole_swingup_sparse": {"A3C": 179.80, "D4PG": 482.00, "PlaNet": 0.64, "Dreamer": 812.22},
    "cheetah_run": {"A3C": 213.90, "D4PG": 523.80, "PlaNet": 496.12, "Dreamer": 894.56},
    "ball_in_cup_catch": {"A3C": 104.70, "D4PG": 980.50, "PlaNet": 455.98, "Dreamer": 962.48},
    "finger_spin": {"A3C": 129.40, "D4PG": 985.70, "PlaNet": 495.25, "Dreamer": 498.88},
    "finger_turn_easy": {"A3C": 167.30, "D4PG": 971.40, "PlaNet": 451.22, "Dreamer": 825.86},
    "finger_turn_hard": {"A3C": 88.70, "D4PG": 966.00, "PlaNet": 312.55, "Dreamer": 891.38},
    "hopper_hop": {"A3C": 0.50, "D4PG": 242.00, "PlaNet": 0.37, "Dreamer": 368.97},
    "hopper_stand": {"A3C": 27.90, "D4PG": 929.90, "PlaNet": 5.96, "Dreamer": 923.72},
    "pendulum_swingup": {"A3C": 48.60, "D4PG": 680.90, "PlaNet": 3.27, "Dreamer": 833.00},
    "quadruped_run": {"A3C": None, "D4PG": None, "PlaNet": 280.45, "Dreamer": 888.39},
    "quadruped_walk": {"A3C": None, "D4PG": None, "PlaNet": 238.90, "Dreamer": 931.61},
    "reacher_easy": {"A3C": 95.60, "D4PG": 967.40, "PlaNet": 468.50, "Dreamer": 935.08},
    "reacher_hard": {"A3C": 39.70, "D4PG": 957.10, "PlaNet": 187.02, "Dreamer": 817.05},
    "walker_run": {"A3C": 191.80, "D4PG": 567.20, "PlaNet": 626.25, "Dreamer": 824.67},
    "walker_stand": {"A3C": 378.40, "D4PG": 985.20, "PlaNet": 759.19, "Dreamer": 977.99},
    "walker_walk": {"A3C": 311.00, "D4PG": 968.30, "PlaNet": 944.70, "Dreamer": 961.67},
}
TABLE_G_AVERAGE = {"A3C": 243.70, "D4PG": 786.32, "PlaNet": 332.97, "Dreamer": 823.39}

CURL: dict[str, dict[int, tuple[float, float]]] = {
    "finger_spin": {100_000: (341, 70), 500_000: (796, 183)},
    "cartpole_swingup": {100_000: (326, 27), 500_000: (762, 27)},
    "reacher_easy": {100_000: (314, 155), 500_000: (793, 164)},
    "cheetah_run": {100_000: (235, 137), 500_000: (570, 253)},
    "walker_walk": {100_000: (277, 12), 500_000: (897, 49)},
    "ball_in_cup_catch": {100_000: (246, 174), 500_000: (879, 87)},
}

OFFICIAL: dict[str, dict[int, float]] = {
    "cartpole_swingup": {100_000: 139, 500_000: 678, 1_000_000: 855},
    "cheetah_run": {100_000: 128, 500_000: 630, 1_000_000: 713},
    "ball_in_cup_catch": {100_000: 73, 500_000: 962, 1_000_000: 967},
    "finger_spin": {100_000: 8, 500_000: 339, 1_000_000: 515},
    "reacher_easy": {100_000: 125, 500_000: 430, 1_000_000: 603},
    "walker_walk": {100_000: 137, 500_000: 886, 1_000_000: 956},
}


def dmc_key(task: str) -> str | None:
    """'dmc_cup_catch' / 'dmc_ball_in_cup_catch' / 'cartpole_swingup' -> the keys above."""
    name = task[len("dmc_"):] if task.startswith("dmc_") else task
    name = {"cup_catch": "ball_in_cup_catch"}.get(name, name)
    return name if name in TABLE_G else None
