"""The agent's networks, the world-model loss (eq. 10) and the policy step.

Replay batches are batch-major dicts [B, T, ...]:
  obs      uint8 [B, T, 64, 64, 3] (pixels) or float32 [B, T, D] (state)
  action   float32 [B, T, A], the action that led to obs[:, t] (zeros at an episode's start;
           one-hot for discrete actions)
  reward   float32 [B, T], received with obs[:, t]
  discount float32 [B, T], 0 where obs[:, t] is terminal, else 1
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from dreamer_jax import nets as nn_
from dreamer_jax import objectives, planet, rssm
from dreamer_jax.config import Config, ConfigError
from dreamer_jax.envs import EnvSpec  # noqa: F401  (re-exported: agent.EnvSpec)


class Nets(NamedTuple):
    """Module instances (static, hashable); their parameters live in separate pytrees."""
    encoder: object
    decoder: object | None       # observation model q(o | s) (objective 'reconstruction')
    state_model: object | None   # state model q(s | o) (objective 'contrastive')
    rssm: rssm.RSSMCore
    reward: nn_.ScalarHead
    pcont: nn_.ScalarHead | None
    actor: nn_.ActionHead
    value: nn_.ScalarHead
    spec: EnvSpec
    mean_scale: float
    init_std: float
    action_min_std: float
    objective: str = "reconstruction"
    planner: planet.PlannerConfig | None = None  # CEM planning instead of the action model
    conv_chunks: int = 0  # encoder/decoder over B*T images in this many rematerialized chunks
                          # (0: automatic, `auto_chunks`)
    scan_unroll: int = 1  # RSSM scan steps per loop iteration (observe and imagine)


def make_nets(config: Config, spec: EnvSpec) -> Nets:
    if config.behavior == "planet" and spec.discrete:
        raise ConfigError("--behavior=planet plans continuous actions; this task's actions are "
                          "discrete (use dreamer or only_action)")
    if config.actor_entropy and not spec.discrete:
        raise ConfigError(f"--actor_entropy={config.actor_entropy} applies to discrete actions; "
                          "this task's actions are continuous (use 0)")
    units, layers, dtype = config.units, config.layers, config.compute_dtype
    if spec.is_image:
        encoder = nn_.ConvEncoder(config.cnn_depth, config.conv_impl, dtype)
        decoder = nn_.ConvDecoder(config.cnn_depth, config.conv_impl, spec.obs_shape[-1], dtype)
    else:
        encoder = nn_.MLP(units, layers, dtype=dtype)
        decoder = nn_.MLP(units, layers, spec.obs_shape[-1], dtype)
    state_model = nn_.StateModel(config.feat_size, spec.is_image, config.cnn_depth, units, layers,
                                 config.conv_impl, config.min_std, dtype)
    return Nets(
        encoder=encoder,
        decoder=decoder if config.objective == "reconstruction" else None,
        state_model=state_model if config.objective == "contrastive" else None,
        rssm=rssm.RSSMCore(config.deter_size, config.stoch_size, config.hidden_size, config.min_std),
        reward=nn_.ScalarHead(units, layers, dtype),
        pcont=nn_.ScalarHead(units, layers, dtype) if config.pcont else None,
        actor=nn_.ActionHead(spec.action_dim, units, layers, spec.discrete, dtype),
        value=nn_.ScalarHead(units, layers, dtype),
        spec=spec,
        mean_scale=config.mean_scale,
        init_std=config.init_std,
        action_min_std=config.action_min_std,
        objective=config.objective,
        conv_chunks=config.conv_chunks,
        scan_unroll=config.scan_unroll,
        planner=planet.PlannerConfig(config.plan_horizon, config.plan_candidates,
                                     config.plan_top_k, config.plan_iterations)
        if config.behavior == "planet" else None,
    )


def init_params(nets: Nets, key: jax.Array) -> dict:
    """{'world': {...}, 'actor': ..., 'value': ...} for a single example."""
    keys = jax.random.split(key, 8)
    spec, core = nets.spec, nets.rssm
    obs = jnp.zeros((1,) + spec.obs_shape, jnp.float32)
    embed = nets.encoder.init(keys[0], obs)
    embed_size = nets.encoder.apply(embed, obs).shape[-1]
    feat = jnp.zeros((1, core.deter_size + core.stoch_size))
    world = {
        "encoder": embed,
        "rssm": core.init(keys[1], jnp.zeros((1, core.deter_size)), jnp.zeros((1, core.stoch_size)),
                          jnp.zeros((1, spec.action_dim)), jnp.zeros((1, embed_size))),
        "reward": nets.reward.init(keys[3], feat),
    }
    if nets.decoder is not None:
        world["decoder"] = nets.decoder.init(keys[2], feat)
    if nets.state_model is not None:
        world["state_model"] = nets.state_model.init(keys[7], obs)
    if nets.pcont is not None:
        world["pcont"] = nets.pcont.init(keys[4], feat)
    return {"world": world, "actor": nets.actor.init(keys[5], feat),
            "value": nets.value.init(keys[6], feat)}


def chunked(fn: Callable, chunks: int, *xs: jax.Array):
    """fn(*xs) on `chunks` equal slices of the leading axis, one after another (lax.map), each
    slice's activations recomputed in the backward pass (jax.checkpoint): the backward pass
    keeps only the inputs, and the largest working set is 1/chunks of the whole. The same
    numbers as fn(*xs) for any fn that treats the rows independently; chunks=1 is fn(*xs)."""
    if chunks == 1:
        return fn(*xs)
    n = xs[0].shape[0]
    if n % chunks:
        raise ValueError(f"{chunks} chunks do not divide {n} rows")
    split = tuple(x.reshape((chunks, n // chunks) + x.shape[1:]) for x in xs)
    out = jax.lax.map(jax.checkpoint(lambda args: fn(*args)), split)
    return jax.tree.map(lambda y: y.reshape((n,) + y.shape[2:]), out)


# conv_chunks=0 / imag_chunks=0 on CPU (docs/speed.md): batches of more than AUTO_CHUNK_ROWS rows
# run in chunks of at most CONV_CHUNK_ROWS images / IMAG_CHUNK_ROWS imagination starts.
AUTO_CHUNK_ROWS = 1024
CONV_CHUNK_ROWS = 256
IMAG_CHUNK_ROWS = 1024


def auto_chunks(rows: int, chunk_rows: int, backend: str | None = None) -> int:
    """conv_chunks=0 (images) and imag_chunks=0: on CPU, a batch of more than AUTO_CHUNK_ROWS
    rows runs in the fewest chunks of at most `chunk_rows` rows that divide `rows` (50x50 images:
    10 chunks of 250; imagination from 50x50 starts: 4 of 625); smaller batches, row counts
    without such a divisor (a prime) and accelerators (memory to spare, and one big batch keeps
    them busy) stay in one piece. On the 2-core CPU, the paper's 50x50 update peaks at 1.37 GiB
    RSS in 10 + 4 chunks (2.62 GiB in 4 conv chunks alone) and 16x50 in 2 chunks cost +3.4% time,
    so batches up to 1024 are not chunked."""
    backend = backend or jax.default_backend()
    if backend != "cpu" or rows <= AUTO_CHUNK_ROWS:
        return 1
    chunks = next(c for c in range(1, rows + 1) if rows % c == 0 and rows // c <= chunk_rows)
    return chunks if rows // chunks >= 64 else 1


def preprocess(obs: jax.Array) -> jax.Array:
    """uint8 images -> float32 in [-0.5, 0.5] (the paper's code); state vectors unchanged."""
    if obs.dtype == jnp.uint8:
        return obs.astype(jnp.float32) / 255.0 - 0.5
    return obs.astype(jnp.float32)


# --- World model ----------------------------------------------------------------------------

class WorldOut(NamedTuple):
    post: rssm.RSSMState   # [B, T, ...]
    prior: rssm.RSSMState  # [B, T, ...]
    metrics: dict


def world_model_loss(nets: Nets, world_params, batch: dict, key: jax.Array, *, free_nats: float,
                     kl_scale: float, pcont_scale: float, discount: float,
                     reward_transform: str = "none") -> tuple[jax.Array, WorldOut]:
    """eq. 10 (or 12) as a loss: -E[J_O + ln q(r|s)] + beta * max(KL, free nats), per step mean.

    J_O is the objective's observation term: ln q(o|s) (reconstruction), J_S of eq. 12
    (contrastive) or nothing (reward)."""
    chex.assert_rank(batch["reward"], 2)
    bt = batch["reward"].shape
    chex.assert_equal_shape_prefix([batch[k] for k in ("obs", "action", "reward", "discount")], 2)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731  [B, T, ...] -> [B*T, ...]
    encode = lambda o: nets.encoder.apply(world_params["encoder"], preprocess(o))  # noqa: E731
    # State vectors stay in one piece: small MLP working sets.
    chunks = nets.conv_chunks or (auto_chunks(bt[0] * bt[1], CONV_CHUNK_ROWS)
                                  if nets.spec.is_image else 1)
    embed = chunked(encode, chunks, flat(batch["obs"])).reshape(bt + (-1,))
    post, prior = rssm.observe(nets.rssm, world_params["rssm"], embed, batch["action"], key,
                               unroll=nets.scan_unroll)
    feat = rssm.feature(post)
    metrics = {}
    if nets.objective == "reconstruction":
        def log_prob(f, o):  # ln q(o_t | s_t) of each image (or state vector).
            o = preprocess(o)
            recon = nets.decoder.apply(world_params["decoder"], f)
            return nn_.normal_log_prob(o, recon, tuple(range(1, o.ndim)))
        obs_term = metrics["obs_log_prob"] = jnp.mean(
            chunked(log_prob, chunks, flat(feat), flat(batch["obs"])))
    elif nets.objective == "contrastive":
        state_model = lambda o: nets.state_model.apply(  # noqa: E731
            world_params["state_model"], preprocess(o))
        mean, std = chunked(state_model, chunks, flat(batch["obs"]))
        obs_term = metrics["contrastive"] = jnp.mean(
            objectives.contrastive_term(flat(feat), mean, std))
    else:
        obs_term = 0.0
    reward = jnp.tanh(batch["reward"]) if reward_transform == "tanh" else batch["reward"]
    reward_lp = jnp.mean(nn_.normal_log_prob(reward, nets.reward.apply(world_params["reward"], feat)))
    kl_term, kl = rssm.kl_loss(post, prior, free_nats=free_nats)
    loss = kl_scale * kl_term - obs_term - reward_lp
    metrics.update(reward_log_prob=reward_lp, kl=kl)
    if nets.pcont is not None:
        logits = nets.pcont.apply(world_params["pcont"], feat)
        pcont_lp = jnp.mean(nn_.bernoulli_log_prob(logits, discount * batch["discount"]))
        loss = loss - pcont_scale * pcont_lp
        metrics["pcont_log_prob"] = pcont_lp
    metrics["model_loss"] = loss
    return loss, WorldOut(post, prior, metrics)


def heads(nets: Nets, world_params, value_params, feat: jax.Array, *, discount: float
          ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Predicted reward, value and discount [...] of model states `feat` [..., F]."""
    reward = nets.reward.apply(world_params["reward"], feat)
    value = nets.value.apply(value_params, feat)
    if nets.pcont is None:
        disc = jnp.full_like(reward, discount)
    else:
        disc = jax.nn.sigmoid(nets.pcont.apply(world_params["pcont"], feat))
    return reward, value, disc


# --- Action model ---------------------------------------------------------------------------

def action_dist(nets: Nets, actor_params, feat: jax.Array):
    """The action model q(a | s) as a distrax distribution over [..., A]."""
    raw = nets.actor.apply(actor_params, feat)
    if nets.spec.discrete:
        return nn_.onehot_straight_through(raw)
    mean, std = nn_.tanh_normal_params(raw, mean_scale=nets.mean_scale, init_std=nets.init_std,
                                       min_std=nets.action_min_std)
    return nn_.tanh_normal(mean, std)


def action_dist_sample(nets: Nets, actor_params, feat: jax.Array, key: jax.Array) -> jax.Array:
    """Reparameterized (continuous) or straight-through (discrete) sample."""
    return action_dist(nets, actor_params, feat).sample(seed=key)


def action_mode(nets: Nets, actor_params, feat: jax.Array) -> jax.Array:
    """tanh(mean) for continuous actions, the most likely one-hot for discrete ones."""
    raw = nets.actor.apply(actor_params, feat)
    if nets.spec.discrete:
        return jax.nn.one_hot(jnp.argmax(raw, -1), raw.shape[-1])
    mean, _ = nn_.tanh_normal_params(raw, mean_scale=nets.mean_scale, init_std=nets.init_std,
                                     min_std=nets.action_min_std)
    return nn_.tanh_normal_mode(mean)


# --- Policy step ----------------------------------------------------------------------------

class PolicyCarry(NamedTuple):
    """Recurrent state of acting in E environments at once: [E, ...]."""
    latent: rssm.RSSMState
    action: jax.Array  # [E, A] the previous action


def acting_nets(nets: Nets) -> Nets:
    """`nets` for the policy step: a few images at a time, where XLA's own convolutions beat the
    patch-matmul formulation that 'auto' picks on CPU for training batches (a policy step on one
    64x64 frame: 0.87 vs 1.23 ms, docs/speed.md). Same parameters, same numbers
    (tests/test_train_state.py); an explicit --conv_impl is kept."""
    if not isinstance(nets.encoder, nn_.ConvEncoder) or nets.encoder.impl != "auto":
        return nets
    return nets._replace(encoder=nets.encoder.clone(impl="lax"))


def initial_carry(nets: Nets, num_envs: int) -> PolicyCarry:
    core = nets.rssm
    latent = rssm.initial_state((num_envs,), deter_size=core.deter_size, stoch_size=core.stoch_size)
    return PolicyCarry(latent, jnp.zeros((num_envs, nets.spec.action_dim), jnp.float32))


def policy_step(nets: Nets, params, carry: PolicyCarry, obs: jax.Array, key: jax.Array,
                noise: jax.Array, sample: jax.Array) -> tuple[PolicyCarry, jax.Array]:
    """Update the posterior with the new observation [E, ...] and choose actions [E, A].

    Training (`sample` true): a_t ~ q(a_t | s_t), then exploration noise (Algorithm 1). Evaluation
    (`sample` false, `noise` 0): the mode action. `noise` is the std of additive Normal noise
    (continuous, Appendix A: 0.3) or epsilon of epsilon-greedy (discrete, Appendix C).
    """
    chex.assert_shape(obs, (None,) + nets.spec.obs_shape)
    chex.assert_equal_shape_prefix([obs, carry.action, carry.latent.deter], 1)
    obs_key, sample_key, noise_key, eps_key = jax.random.split(key, 4)
    world = params["world"]
    embed = nets.encoder.apply(world["encoder"], preprocess(obs))
    latent, _ = rssm.obs_step(nets.rssm, world["rssm"], carry.latent, carry.action, embed, obs_key)
    feat = rssm.feature(latent)
    if nets.planner is not None:  # PlaNet: the CEM plan's first action (noise added below).
        action = planet.cem_plan(nets, world, latent, sample_key, nets.planner)
    else:
        action = jnp.where(sample, action_dist_sample(nets, params["actor"], feat, sample_key),
                           action_mode(nets, params["actor"], feat))
    if nets.spec.discrete:
        num = action.shape[-1]
        random_action = jax.nn.one_hot(jax.random.randint(noise_key, action.shape[:-1], 0, num), num)
        explore = jax.random.uniform(eps_key, action.shape[:-1] + (1,)) < noise
        action = jnp.where(explore, random_action, action)
    else:
        action = jnp.clip(action + noise * jax.random.normal(noise_key, action.shape), -1.0, 1.0)
    return PolicyCarry(latent, action), action
