"""Configuration: one frozen dataclass, named presets, validation with one-line errors.

Every default is the paper's (Hafner et al. 2020, Section 3 and Appendix A) unless its
docstring says otherwise. Presets only override fields; `paper` overrides nothing.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

class ConfigError(ValueError):
    """A bad configuration value. Its message is one line naming the value and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Config:
    # --- Run -----------------------------------------------------------------------------
    task: str = "dmc_walker_walk"
    """Environment: `dmc_<domain>_<task>` (DeepMind Control Suite, e.g. dmc_walker_walk),
    `atari_<game>` (e.g. atari_pong; use --preset atari) or `gym:<gymnasium id>`."""
    logdir: str = "logdir/dmc_walker_walk"
    """Where episodes, checkpoints, metrics.jsonl and TensorBoard events go; resumed if it exists."""
    steps: int = 5_000_000
    """Total environment steps (after action repeat), paper Table G: 5e6."""
    seed: int = 0
    """Seed of the PRNG key and of the environments."""
    obs: str = "pixels"
    """'pixels' (64x64x3 uint8 images, the paper) or 'state' (proprioceptive vector, fast CPU runs;
    on Atari the bits of the 128-byte console RAM, not a paper setting)."""

    # --- Environment interaction (Appendix A) -------------------------------------------
    action_repeat: int = 2
    """Action repeat R, fixed to 2 for all tasks (Appendix A); only the last frame is rendered."""
    time_limit: int = 1000
    """Episode length in environment steps (DMC episodes are 1000 steps)."""
    seed_episodes: int = 5
    """S: episodes of uniform random actions collected before training (Appendix A)."""
    train_steps: int = 100
    """C: updates between two collected episodes (Appendix A: 'iterate between 100 training steps
    and collecting 1 episode')."""
    envs: int = 1
    """Environments collecting in parallel, each in its own process when > 1. A round collects one
    episode from each and runs C updates per episode collected, so the updates per env step stay
    the paper's (which collects with 1)."""
    overlap: bool = False
    """Collect the next episode(s) in a thread while the C updates run, with a copy of the
    parameters from before those updates (the policy is one round of C updates older than in
    Algorithm 1, which alternates). For accelerators, where collection rather than the updates
    sets the pace; off by default (the paper alternates)."""
    expl_noise: float = 0.3
    """Std of the Normal exploration noise added to the action sampled from the action model
    (Algorithm 1; Appendix A: Normal(0, 0.3)). Evaluation uses the mode action, no noise."""
    expl_min: float = 0.0
    """Final exploration noise when it decays (Appendix C, discrete actions: epsilon 0.1)."""
    expl_decay: int = 0
    """Updates over which the exploration noise decays linearly from --expl_noise to
    --expl_min; 0 keeps it constant (Appendix C, discrete actions: 200,000)."""
    eval_every: int = 10_000
    """Evaluate (mode action, no noise) every this many env steps; 0 disables."""
    eval_episodes: int = 1
    """Episodes per evaluation."""
    render_fast: bool = False
    """Turn off shadows/reflections/multisampling in MuJoCo renders (~5x faster on CPU). Images then
    differ from the paper's, so scores are not pixel-comparable with published results."""

    # --- World model (Section 4, Appendix A) ---------------------------------------------
    deter_size: int = 200
    """GRU (deterministic) state size of the RSSM (Hafner et al. 2018; Dreamer code)."""
    stoch_size: int = 30
    """Stochastic state: 30-dim diagonal Gaussian (Appendix A)."""
    hidden_size: int = 200
    """Hidden layer inside the RSSM transition/representation (PlaNet/Dreamer code: 200)."""
    min_std: float = 0.1
    """Minimum std of the latent Gaussians (PlaNet/Dreamer code)."""
    cnn_depth: int = 32
    """Channel multiplier of the Ha & Schmidhuber (2018) conv encoder/decoder."""
    units: int = 300
    """Units of every dense head: reward, value, action (Appendix A: 3 layers of 300, ELU)."""
    layers: int = 3
    """Layers of every dense head (Appendix A)."""
    free_nats: float = 3.0
    """KL clipped below this many nats, as in PlaNet (Appendix A)."""
    kl_scale: float = 1.0
    """beta: KL regularizer scale (Appendix A: 1; Appendix C, discrete control: 0.1)."""
    objective: str = "reconstruction"
    """Representation objective of Section 4 (Figure 8): 'reconstruction' (eq. 10, the default),
    'contrastive' (eq. 12: a CNN state model q(s|o) with the batch's observations as negatives)
    or 'reward' (reward prediction and KL only)."""

    # --- Behavior (Section 3, Appendix A) ------------------------------------------------
    behavior: str = "dreamer"
    """'dreamer' (action and value models, Section 3), 'only_action' (Figure 4's ablation: the
    action model maximizes V_R of eq. 4, the imagined rewards up to the horizon; no value model)
    or 'planet' (Figure 4: online CEM planning on the same world model, as in PlaNet; continuous
    actions only; no action or value model is trained)."""
    value_estimate: str = "lambda"
    """Target of the action and value models under 'dreamer': 'lambda' (V_lambda, eq. 6, the
    paper) or 'nstep' (V_N^k, eq. 5, with k = --value_k)."""
    value_k: int = 5
    """k of V_N^k when --value_estimate=nstep (clipped at the horizon, eq. 5)."""
    actor_entropy: float = 0.0
    """Weight of an entropy bonus for a discrete action model: the actor loss subtracts it times
    the mean entropy of q(a | s) over the imagined states. The paper uses none (Appendix A: 'we
    did not find ... an entropy bonus for the action model ... necessary'); at CPU budgets a
    straight-through actor can collapse onto one action before the reward model says anything
    (docs/cpu_runs.md, Demon Attack). Discrete actions only."""
    plan_horizon: int = 12
    """--behavior=planet: planning horizon (PlaNet: 12)."""
    plan_candidates: int = 1000
    """--behavior=planet: action sequences sampled per CEM iteration (PlaNet: 1000)."""
    plan_top_k: int = 100
    """--behavior=planet: best sequences the CEM distribution is refit to (PlaNet: 100)."""
    plan_iterations: int = 10
    """--behavior=planet: CEM iterations per agent step (PlaNet: 10)."""
    horizon: int = 15
    """H: imagination horizon (Appendix A)."""
    discount: float = 0.99
    """gamma (Appendix A)."""
    lambda_: float = 0.95
    """lambda of V_lambda, eq. 6 (Appendix A)."""
    mean_scale: float = 5.0
    """Action mean = mean_scale * tanh(mu / mean_scale) (Appendix A: 'tanh mean scaled by 5')."""
    init_std: float = 5.0
    """Softplus std offset so the initial action std is about this (Dreamer code)."""
    action_min_std: float = 1e-4
    """Small minimum added to the action std (Dreamer code)."""
    pcont: bool = False
    """Predict the discount from the latent state (Section 3 'early termination', Appendix C)."""
    reward_transform: str = "none"
    """'none' or 'tanh': the reward model's target is tanh(reward) (Appendix C: Atari bounds
    rewards with tanh). Logged returns are always the environment's."""
    pcont_scale: float = 10.0
    """Weight of the discount predictor's log-likelihood in the model loss (Dreamer code)."""

    # --- Optimization (Appendix A) -------------------------------------------------------
    batch_size: int = 50
    """B: sequences per batch (Appendix A)."""
    seq_len: int = 50
    """L: length of each sequence (Appendix A)."""
    model_lr: float = 6e-4
    """World model Adam learning rate (Appendix A)."""
    actor_lr: float = 8e-5
    """Action model Adam learning rate (Appendix A)."""
    value_lr: float = 8e-5
    """Value model Adam learning rate (Appendix A)."""
    grad_clip: float = 100.0
    """Gradient norms above this are scaled down (Appendix A)."""
    adam_eps: float = 1e-4
    """Adam epsilon; the paper does not state it, the paper's code uses 1e-4."""

    # --- Implementation ------------------------------------------------------------------
    conv_impl: str = "auto"
    """'auto' (matmul on CPU, lax on GPU/TPU), 'matmul' (patch extraction + matmul, fast on XLA:CPU)
    or 'lax' (XLA convolutions, cuDNN on GPU). Both give the same numbers."""
    conv_chunks: int = 0
    """The world-model loss runs the encoder and decoder (or the contrastive state model) over the
    batch's B*T observations in this many chunks, one after another, recomputing each chunk's
    activations in the backward pass: their memory shrinks by about this factor. Same numbers.
    0 (automatic): on CPU, image batches of more than 1024 observations in the fewest chunks of
    at most 256 (50x50: 10); one piece for smaller batches (16x50 in 2 chunks: +3.4% time), for
    state observations and on GPU/TPU. Any other value must divide batch_size * seq_len.
    docs/speed.md: the paper's 50x50 on a 2-core CPU peaks at 1.37 GiB RSS with the automatic
    conv and imagination chunks, 9.1 GiB in one piece."""
    imag_chunks: int = 0
    """Imagination and the behavior losses run over the B*T start states in this many chunks,
    one after another, recomputing each chunk in the backward pass: the memory of imagination
    shrinks by about this factor. Each chunk draws its own noise (same distribution, other
    samples than in one piece). 0 (automatic): on CPU, more than 1024 starts in the fewest
    chunks of at most 1024 (50x50: 4); one piece otherwise and on GPU/TPU. Any other value must
    divide batch_size * seq_len."""
    scan_unroll: int = 1
    """Steps of the RSSM's `lax.scan`s (posterior over the sequence, imagination over the
    horizon) that XLA unrolls into one loop iteration. Same numbers; only speed and compile time
    change (docs/speed.md)."""
    compute_dtype: str = "float32"
    """Type of the matmuls and convolutions of the encoder, decoder and dense heads: 'float32' (the
    paper's numbers) or 'bfloat16' (faster on GPUs; parameters, optimizer states, losses and the
    RSSM recurrence stay float32). Not faster on CPUs without bf16 units (docs/speed.md)."""
    replay_ram_gib: float = 8.0
    """RAM budget of the in-memory episode cache, which is what is sampled; oldest episodes are
    dropped from RAM (never from disk) when it is exceeded. 8 GiB holds ~1.4M env steps of 64x64
    pixels at action repeat 2; the paper samples from all data: raise it for longer runs
    (docs/fidelity.md)."""
    replay_capacity: int = 0
    """Most env steps of episodes kept for sampling (FIFO, whole episodes); 0: no limit but
    `replay_ram_gib`. The RAM needed is printed at start."""
    replay_evict_disk: bool = False
    """Delete episodes from disk too when they leave the replay (capacity or RAM budget);
    by default every episode stays on disk."""
    log_every: int = 1000
    """Write scalar metrics every this many env steps."""
    checkpoint_every: int = 10_000
    """Checkpoint (params, optimizer states, counters, key) every this many env steps."""
    progress: bool = True
    """Show a one-line progress display on stderr."""
    video_every: int = 100_000
    """Write an open-loop video prediction GIF (Figure 5: 5 context frames, the rest predicted
    from actions) to LOGDIR/videos every this many env steps; pixels + reconstruction only;
    0 disables. On demand: python -m dreamer_jax.report --logdir LOGDIR."""
    max_nonfinite: int = 20
    """Updates with non-finite losses or gradients are skipped (not applied) and counted; after
    this many in a row the run stops with the last good state checkpointed."""

    # --- Derived values ------------------------------------------------------------------
    @property
    def feat_size(self) -> int:
        """Size of the model state feature [stoch, deter] fed to all heads."""
        return self.deter_size + self.stoch_size

    @property
    def episode_agent_steps(self) -> int:
        """Agent decisions per episode (time limit divided by the action repeat)."""
        return self.time_limit // self.action_repeat


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's Appendix A, unchanged.
    "paper": {},
    # State observations on 2 CPU cores: batch 8; action repeat 8 (the PlaNet protocol for
    # cartpole, as in CURL Table 1) so that H=15 imagined steps span 1.2 s of swing-up dynamics;
    # the paper's discount per unit of time, .99 per 2 env steps = .99^4 = .96 per 8 (with .99
    # per 8-step action the value model must fit 4x longer, 4x larger returns: 354 vs 595 eval
    # return at 36k env steps, docs/cpu_runs.md); 1 free nat, since a 5-dim state carries less
    # than 3 nats per step and below the free nats the transition model (the prior that
    # imagination uses) receives no gradient at all.
    "cpu": dict(obs="state", batch_size=8, seq_len=50, action_repeat=8, discount=0.96,
                free_nats=1.0),
    # Discrete actions (Appendix C) on Atari with the Machado et al. (2018) protocol: sticky
    # actions, full action set, 108k frames at most; action repeat 4 as in the paper's code.
    "atari": dict(
        task="atari_pong", obs="pixels", action_repeat=4, time_limit=108_000, horizon=10,
        kl_scale=0.1, pcont=True, reward_transform="tanh", expl_noise=0.4, expl_min=0.1,
        expl_decay=200_000,
    ),
    # Tiny networks and short episodes: a few thousand env steps in about a minute (tests).
    "debug": dict(
        deter_size=16, stoch_size=4, hidden_size=16, cnn_depth=2, units=16, layers=2,
        batch_size=4, seq_len=8, horizon=5, train_steps=5, seed_episodes=1, time_limit=100,
        eval_every=200, log_every=100, checkpoint_every=200, progress=False, replay_ram_gib=0.5,
        video_every=200,
    ),
}

CHOICES: dict[str, tuple[str, ...]] = {
    "obs": ("pixels", "state"),
    "objective": ("reconstruction", "contrastive", "reward"),
    "behavior": ("dreamer", "only_action", "planet"),
    "value_estimate": ("lambda", "nstep"),
    "reward_transform": ("none", "tanh"),
    "conv_impl": ("auto", "matmul", "lax"),
    "compute_dtype": ("float32", "bfloat16"),
}

_POSITIVE_INT = (
    "steps", "action_repeat", "time_limit", "train_steps", "deter_size", "stoch_size",
    "hidden_size", "cnn_depth", "units", "layers", "horizon", "batch_size", "seq_len",
    "eval_episodes", "log_every", "checkpoint_every", "value_k", "max_nonfinite",
    "plan_horizon", "plan_candidates", "plan_top_k", "plan_iterations", "envs", "scan_unroll",
)
_NON_NEGATIVE = ("seed", "seed_episodes", "eval_every", "video_every", "expl_min", "expl_decay",
                 "replay_capacity", "expl_noise", "free_nats", "kl_scale",
                 "action_min_std", "pcont_scale", "conv_chunks", "imag_chunks", "actor_entropy")
_POSITIVE_FLOAT = ("model_lr", "actor_lr", "value_lr", "grad_clip", "adam_eps", "mean_scale",
                   "init_std", "min_std", "replay_ram_gib")
_UNIT_INTERVAL = ("discount", "lambda_")


# Fields that may change when a run is resumed (how long / how it is logged, not what it learns).
# replay_capacity / replay_evict_disk change what is sampled: they are part of the experiment.
RUNTIME_FIELDS = ("steps", "logdir", "progress", "eval_every", "eval_episodes", "log_every",
                  "checkpoint_every", "replay_ram_gib", "max_nonfinite", "video_every")


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Config))


def validate(config: Config) -> Config:
    """Raise ConfigError (one line) for the first bad value; return the config unchanged."""
    from dreamer_jax import envs  # Local import: envs imports heavy modules lazily itself.

    for name, allowed in CHOICES.items():
        value = getattr(config, name)
        if value not in allowed:
            raise ConfigError(f"--{name}={value!r} is not allowed; choose one of {', '.join(allowed)}")
    for name in _POSITIVE_INT:
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name}={getattr(config, name)} must be a positive integer")
    for name in _NON_NEGATIVE:
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name}={getattr(config, name)} must be >= 0")
    for name in _POSITIVE_FLOAT:
        if not getattr(config, name) > 0:
            raise ConfigError(f"--{name}={getattr(config, name)} must be > 0")
    for name in _UNIT_INTERVAL:
        if not 0 <= getattr(config, name) <= 1:
            raise ConfigError(f"--{name}={getattr(config, name)} must be in [0, 1]")
    if config.time_limit < config.action_repeat:
        raise ConfigError(
            f"--time_limit={config.time_limit} must be >= --action_repeat={config.action_repeat}")
    for name in ("conv_chunks", "imag_chunks"):
        chunks = getattr(config, name)
        if chunks and (config.batch_size * config.seq_len) % chunks:
            raise ConfigError(f"--{name}={chunks} must divide batch_size * seq_len = "
                              f"{config.batch_size * config.seq_len}")
    if config.seq_len < 2:
        raise ConfigError(f"--seq_len={config.seq_len} must be >= 2: the transition model learns "
                          "from consecutive steps of a sequence (the paper: 50)")
    if config.seq_len > config.episode_agent_steps + 1:
        raise ConfigError(
            f"--seq_len={config.seq_len} is longer than an episode "
            f"({config.episode_agent_steps + 1} agent steps with --time_limit={config.time_limit}"
            f" and --action_repeat={config.action_repeat})")
    if config.plan_top_k > config.plan_candidates:
        raise ConfigError(f"--plan_top_k={config.plan_top_k} must be <= "
                          f"--plan_candidates={config.plan_candidates}")
    envs.check_task_name(config.task)
    return config


def make_config(preset: str = "paper", **overrides: Any) -> Config:
    """The preset's config with `overrides` applied, validated."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset={preset!r} is unknown; choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[preset])
    unknown = sorted(set(overrides) - set(field_names()))
    if unknown:
        raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; see --help for the fields")
    values.update(overrides)
    if "logdir" not in values:
        values["logdir"] = f"logdir/{values.get('task', Config.task)}"
    return validate(Config(**values))


def to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(values: Mapping[str, Any]) -> Config:
    """Rebuild a saved config; unknown keys (from a newer version) are an error."""
    unknown = sorted(set(values) - set(field_names()))
    if unknown:
        raise ConfigError(f"saved config has unknown field(s) {', '.join(unknown)}")
    return Config(**values)
