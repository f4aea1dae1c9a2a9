"""Training state (three parameter sets, three optax Adam states, key, counter) and the one
jitted update that trains world model, action model and value model together (Algorithm 1).

All three losses are computed from the parameters before the update, as in the paper's code.
Replay batches are [B, T, ...] (see `agent`); imagination starts from all B*T posteriors.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from dreamer_jax import agent, imagine, rssm
from dreamer_jax.config import Config

PARTS = ("world", "actor", "value")


class TrainState(flax.struct.PyTreeNode):
    params: dict        # {'world', 'actor', 'value'}
    opt_state: dict     # same keys, optax Adam states
    key: jax.Array      # PRNG key of the updates
    step: jax.Array     # int32, updates done


def make_optimizers(config: Config) -> dict[str, optax.GradientTransformation]:
    """Adam with gradient norms above `grad_clip` scaled down (Appendix A)."""
    lrs = {"world": config.model_lr, "actor": config.actor_lr, "value": config.value_lr}
    return {part: optax.chain(optax.clip_by_global_norm(config.grad_clip),
                              optax.adam(lrs[part], eps=config.adam_eps))
            for part in PARTS}


def init_train_state(nets: agent.Nets, optimizers, key: jax.Array) -> TrainState:
    """Parameters and Adam states, each built by one jitted call: op-by-op (eager) it dispatches
    hundreds of small programs, each compiled and kept (paper sizes, pixels: 0.74 vs 0.58 GiB RSS,
    17 vs 11 s on one core; docs/speed.md)."""
    param_key, state_key = jax.random.split(key)
    params = jax.jit(agent.init_params, static_argnums=0)(nets, param_key)
    opt_state = jax.jit(lambda p: {part: optimizers[part].init(p[part]) for part in PARTS})(params)
    return TrainState(params, opt_state, state_key, jnp.zeros((), jnp.int32))


class LossConfig(NamedTuple):
    """The scalar hyper parameters the losses need (hashable, static under jit)."""
    free_nats: float
    kl_scale: float
    pcont_scale: float
    discount: float
    lambda_: float
    horizon: int
    estimate: str = "lambda"   # 'lambda' | 'nstep' | 'reward' (see imagine.value_estimate)
    value_k: int = 5
    learn_value: bool = True   # False for the only_action ablation: no value model
    learn_actor: bool = True   # False for planet: CEM planning replaces the action model
    reward_transform: str = "none"  # 'tanh': bounded reward targets (Appendix C)
    imag_chunks: int = 1       # imagination over the starts in this many chunks; 0: automatic
    actor_entropy: float = 0.0  # entropy bonus of a discrete action model (not the paper's)

    @classmethod
    def from_config(cls, config: Config) -> "LossConfig":
        only_action = config.behavior == "only_action"
        return cls(config.free_nats, config.kl_scale, config.pcont_scale, config.discount,
                   config.lambda_, config.horizon,
                   estimate="reward" if only_action else config.value_estimate,
                   value_k=config.value_k, learn_value=config.behavior == "dreamer",
                   learn_actor=config.behavior != "planet",
                   reward_transform=config.reward_transform, imag_chunks=config.imag_chunks,
                   actor_entropy=config.actor_entropy)


def compute_grads(nets: agent.Nets, loss_cfg: LossConfig, params: dict, batch: dict,
                  key: jax.Array) -> tuple[dict, dict]:
    """Gradients of the three losses, each with respect to its own parameters only."""
    wm_key, imag_key = jax.random.split(key)

    # World model.
    wm_fn = lambda wp: agent.world_model_loss(  # noqa: E731
        nets, wp, batch, wm_key, free_nats=loss_cfg.free_nats, kl_scale=loss_cfg.kl_scale,
        pcont_scale=loss_cfg.pcont_scale, discount=loss_cfg.discount,
        reward_transform=loss_cfg.reward_transform)
    (_, wm_out), wm_grads = jax.value_and_grad(wm_fn, has_aux=True)(params["world"])

    metrics = dict(wm_out.metrics)
    metrics.update(prior_std=jnp.mean(wm_out.prior.std), post_std=jnp.mean(wm_out.post.std))
    zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)  # noqa: E731
    if not loss_cfg.learn_actor:  # PlaNet plans with the world model alone.
        return {"world": wm_grads, "actor": zeros(params["actor"]),
                "value": zeros(params["value"])}, metrics

    # Imagination: start from every posterior state, world model fixed.
    start = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), wm_out.post)
    chunks = loss_cfg.imag_chunks or agent.auto_chunks(start.deter.shape[0],
                                                        agent.IMAG_CHUNK_ROWS)
    (actor_grads, value_grads), behavior_metrics = behavior_grads(
        nets, loss_cfg, params, start, imag_key, chunks)
    metrics.update(behavior_metrics)
    grads = {"world": wm_grads, "actor": actor_grads, "value": value_grads}
    return grads, metrics


def behavior_losses(nets: agent.Nets, loss_cfg: LossConfig, world_params, actor_params,
                    value_params, start: rssm.RSSMState, key: jax.Array) -> tuple[jax.Array, dict]:
    """Actor loss (eq. 7) + value loss (eq. 8) of the trajectories imagined from `start` [N].

    The sum's gradient is each loss's gradient with respect to its own parameters only: the
    actor loss sees the value parameters through a stop-gradient, the value loss sees imagined
    features and targets through stop-gradients (`imagine.value_loss`)."""
    a_loss, beh = imagine.actor_loss(
        nets, world_params, actor_params, jax.lax.stop_gradient(value_params), start, key,
        horizon=loss_cfg.horizon, discount=loss_cfg.discount, lambda_=loss_cfg.lambda_,
        estimate=loss_cfg.estimate, k=loss_cfg.value_k, entropy_scale=loss_cfg.actor_entropy)
    v_loss = (imagine.value_loss(nets, value_params, beh.feat, beh.returns, beh.weights)
              if loss_cfg.learn_value else jnp.zeros(()))
    metrics = dict(actor_loss=a_loss, value_loss=v_loss, imag_return=jnp.mean(beh.returns),
                   imag_reward=jnp.mean(beh.reward), imag_value=jnp.mean(beh.value))
    if nets.spec.discrete:
        metrics["actor_entropy"] = jnp.mean(beh.entropy)
    return a_loss + v_loss, metrics


def behavior_grads(nets: agent.Nets, loss_cfg: LossConfig, params: dict, start: rssm.RSSMState,
                   key: jax.Array, chunks: int) -> tuple[tuple[dict, dict], dict]:
    """((actor grads, value grads), metrics) of `behavior_losses` over the N starts.

    With chunks > 1 the starts are split into equal chunks imagined one after another
    (`lax.map`), each recomputed in the backward pass (`jax.checkpoint`), and chunk i draws its
    noise from the i-th split of `key`: the losses and gradients are the mean over chunks, which
    is the mean over all starts, and the memory is one chunk's. Without a value model
    (only_action) the value gradients are zero, leaving its parameters and Adam state as they are.
    """
    def one_piece(actor_params, value_params, start, key):
        return behavior_losses(nets, loss_cfg, params["world"], actor_params, value_params,
                               start, key)

    if chunks == 1:
        objective = lambda ap, vp: one_piece(ap, vp, start, key)  # noqa: E731
    else:
        n = start.deter.shape[0]
        split = jax.tree.map(lambda x: x.reshape((chunks, n // chunks) + x.shape[1:]), start)
        keys = jax.random.split(key, chunks)

        def objective(ap, vp):
            chunk_fn = jax.checkpoint(lambda args: one_piece(ap, vp, *args))
            total, metrics = jax.lax.map(chunk_fn, (split, keys))
            return jnp.mean(total), jax.tree.map(jnp.mean, metrics)

    return jax.grad(objective, argnums=(0, 1), has_aux=True)(params["actor"], params["value"])


def all_finite(tree) -> jax.Array:
    """Scalar bool: every element of every floating-point leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def data_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh with axis 'data' over `devices` (default: all devices of this process; after
    `jax.distributed.initialize()`, `jax.devices()` spans every host)."""
    import numpy as np

    return jax.sharding.Mesh(np.asarray(jax.devices() if devices is None else devices), ("data",))


def make_train_step(nets: agent.Nets, optimizers, loss_cfg: LossConfig,
                    mesh: jax.sharding.Mesh | None = None
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The jitted `train_step(state, batch) -> (state, metrics)`; `state` is donated.

    metrics['nonfinite'] is 1.0 when the update was skipped for non-finite losses or gradients.
    With a `mesh` (see `data_mesh`), the batch is split along B over the mesh's 'data' axis and
    the state is replicated: data-parallel training, the same math as on one device (XLA inserts
    the gradient all-reduce). B must be a multiple of the number of devices.
    """

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        key, step_key = jax.random.split(state.key)
        grads, metrics = compute_grads(nets, loss_cfg, state.params, batch, step_key)
        params, opt_state = {}, {}
        for part in PARTS:
            updates, opt_state[part] = optimizers[part].update(
                grads[part], state.opt_state[part], state.params[part])
            params[part] = optax.apply_updates(state.params[part], updates)
            metrics[f"{part}_grad_norm"] = optax.tree.norm(grads[part])
        # NaN/Inf guard: an update whose losses or gradients are not all finite is not applied
        # (parameters and optimizer states stay as they were; the key and counter move on).
        finite = all_finite((grads, metrics))
        keep = lambda new, old: jax.tree.map(  # noqa: E731
            lambda n, o: jnp.where(finite, n, o), new, old)
        params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
        metrics["nonfinite"] = 1.0 - finite.astype(jnp.float32)
        new_state = TrainState(params, opt_state, key, state.step + 1)
        return new_state, metrics

    if mesh is None:
        return jax.jit(train_step, donate_argnums=0)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    return jax.jit(train_step, donate_argnums=0, in_shardings=(replicated, split),
                   out_shardings=(replicated, replicated))


class Update(NamedTuple):
    """Everything one configuration's training needs: its networks, `init(key) -> TrainState`
    and the jitted `step(state, batch) -> (state, metrics)` (both hold the optimizers)."""
    nets: agent.Nets
    init: Callable[[jax.Array], TrainState]
    step: Callable[[TrainState, dict], tuple[TrainState, dict]]


def make_update(config: Config, spec: agent.EnvSpec,
                mesh: jax.sharding.Mesh | None = None) -> Update:
    """The networks, initializer and jitted update of `config` for observations `spec` (the
    recipe of the training loop, the notebook API, the benchmarks and the tests)."""
    nets = agent.make_nets(config, spec)
    optimizers = make_optimizers(config)
    return Update(nets, functools.partial(init_train_state, nets, optimizers),
                  make_train_step(nets, optimizers, LossConfig.from_config(config), mesh))


def make_policy(nets: agent.Nets) -> Callable:
    """The jitted `policy(params, carry, obs, key, noise, sample) -> (carry, action)`."""
    nets = agent.acting_nets(nets)
    return jax.jit(lambda params, carry, obs, key, noise, sample: agent.policy_step(
        nets, params, carry, obs, key, noise, sample))


def make_acting_policy(nets: agent.Nets) -> Callable:
    """The policy step of the training loop: `act(params, carry, obs, stream_key, noise, sample)
    -> (carry, action, stream_key)`. It splits the loop's key stream on the device, so an agent
    step costs one dispatch; the draws are those of `make_policy` with
    `stream_key, key = jax.random.split(stream_key)` done first."""
    nets = agent.acting_nets(nets)

    def act(params, carry, obs, stream_key, noise, sample):
        stream_key, key = jax.random.split(stream_key)
        carry, action = agent.policy_step(nets, params, carry, obs, key, noise, sample)
        return carry, action, stream_key

    return jax.jit(act)


def check_batch(spec: agent.EnvSpec, batch: dict) -> None:
    """One-line ValueError unless `batch` is laid out as `Replay.sample` makes them for `spec`:
    obs [B, T, *obs_shape] of obs_dtype, action [B, T, action_dim] (one-hot when discrete)."""
    missing = sorted({"obs", "action"} - set(batch))
    if missing:
        raise ValueError(f"batch lacks {', '.join(missing)}: pass a batch of Replay.sample")
    obs, action = batch["obs"], batch["action"]
    want_obs = f"[B, T, {', '.join(map(str, spec.obs_shape))}] {spec.obs_dtype}"
    if (obs.ndim != 2 + len(spec.obs_shape) or tuple(obs.shape[2:]) != tuple(spec.obs_shape)
            or str(obs.dtype) != spec.obs_dtype):
        raise ValueError(f"batch obs must be {want_obs} (as Replay.sample returns; add a batch "
                         f"axis to one episode), got {list(obs.shape)} {obs.dtype}")
    if tuple(action.shape) != tuple(obs.shape[:2]) + (spec.action_dim,):
        kind = "one-hot " if spec.discrete else ""
        raise ValueError(f"batch action must be {kind}[B, T, {spec.action_dim}] matching obs "
                         f"{list(obs.shape[:2])}, got {list(action.shape)}")


def observe_posteriors(nets: agent.Nets, world_params, batch: dict, key: jax.Array) -> rssm.RSSMState:
    """Posterior states [B, T, ...] of a replay batch (for reports and notebooks)."""
    check_batch(nets.spec, batch)
    embed = nets.encoder.apply(world_params["encoder"], agent.preprocess(batch["obs"]))
    post, _ = rssm.observe(nets.rssm, world_params["rssm"], embed, batch["action"], key,
                           unroll=nets.scan_unroll)
    return post
