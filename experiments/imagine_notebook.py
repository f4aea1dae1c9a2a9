# %% [markdown]
# # Imagining with a trained Dreamer
# A notebook in py:percent format (open it in Jupyter with jupytext, in VS Code, or run it with
# `python experiments/imagine_notebook.py --logdir LOGDIR`). It loads the newest checkpoint of a
# run, takes posterior states of a replay batch as starting points and calls `imagine()` from user
# code, then plots the imagined rewards, values and V_lambda returns along the horizon.

# %%
import argparse
import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dreamer_jax import agent as agent_lib, api, imagine, train_state  # noqa: E402
from dreamer_jax.checkpoint import CheckpointError  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--logdir", default="logdir/dmc_walker_walk")
parser.add_argument("--out", default=None, help="PNG path (default: LOGDIR/imagination.png)")
parser.add_argument("--starts", type=int, default=8, help="replay sequences to start from")
args, unknown = parser.parse_known_args()  # Jupyter passes its own (-f kernel.json).
if args.starts <= 0:
    parser.error(f"--starts={args.starts} must be a positive integer")
if [a for a in unknown if a.startswith("--")]:
    print(f"imagine_notebook: warning: ignoring {' '.join(unknown)}")

# %% Load the run: config, networks, parameters, episodes.
try:
    loaded = api.load_agent(args.logdir)
except (OSError, ValueError, CheckpointError) as e:  # No run there yet, no checkpoint yet.
    raise SystemExit(f"imagine_notebook: error: {e}") from None
config, nets, params = loaded.config, loaded.nets, loaded.params
print(f"{config.task}: {loaded.meta['counters']['env_steps']} env steps, "
      f"{loaded.meta['counters']['updates']} updates")

# %% Posterior states of a replay batch are the starting points of imagination.
key = jax.random.PRNGKey(0)
obs_key, imag_key = jax.random.split(key)
batch = loaded.replay.sample(np.random.default_rng(0), args.starts, config.seq_len)
post = train_state.observe_posteriors(nets, params["world"], batch, obs_key)
start = jax.tree.map(lambda x: x[:, -1], post)  # The last state of each sequence: [N, ...].

# %% Imagine H steps ahead with the action model, then predict rewards and values.
traj = jax.jit(imagine.imagine, static_argnums=0, static_argnames="horizon")(
    nets, params["world"], params["actor"], start, imag_key, horizon=config.horizon)
reward, value, disc = agent_lib.heads(nets, params["world"], params["value"], traj.feat,
                                      discount=config.discount)
returns = imagine.lambda_returns(reward, value, disc, lambda_=config.lambda_)
print("imagined states", traj.feat.shape, "actions", traj.actions.shape)

# %% Plot.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, data, title in zip(axes, (reward, value, returns), ("reward r(s_t)", "value v(s_t)",
                                                            "V_lambda(s_t)")):
    data = np.asarray(data)
    ax.plot(data, color="tab:blue", alpha=0.35)
    ax.plot(data.mean(1), color="black", lw=2, label="mean")
    ax.set_title(title)
    ax.set_xlabel("imagination step t")
axes[0].legend()
fig.suptitle(f"{config.task}: imagined trajectories from {start.deter.shape[0]} replay states")
fig.tight_layout()
out = pathlib.Path(args.out or pathlib.Path(args.logdir) / "imagination.png")
fig.savefig(out, dpi=100)
print(f"wrote {out}")
assert bool(jnp.all(jnp.isfinite(returns)))
