#!/usr/bin/env bash
# The CPU learning runs of experiments/results/, on a 2-core machine. Each run resumes if its
# logdir exists, so this script can be killed and started again (across sessions too).
#   bash experiments/reproduce_cpu.sh state    # cpu preset, cartpole swing-up from states, 100k env steps
#   bash experiments/reproduce_cpu.sh pixels   # paper hyper parameters from pixels, batch 16x50, 100k
#                                              # env steps (STEPS=200000 ... takes the run further)
#   bash experiments/reproduce_cpu.sh pixels_r8 # the same with action repeat 8 (the PlaNet/CURL
#                                              # benchmark's repeat for cartpole), 10 eval episodes
#   bash experiments/reproduce_cpu.sh fig4     # dreamer vs only_action vs planet (states)
#   bash experiments/reproduce_cpu.sh fig8     # reconstruction vs contrastive vs reward (pixels)
#   bash experiments/reproduce_cpu.sh fig8_state # the same three objectives from states (cpu preset)
#   bash experiments/reproduce_cpu.sh fig8_r8  # contrastive and reward only under the pixels_r8 protocol
#   bash experiments/reproduce_cpu.sh atari    # discrete actions on Boxing (pixels)
#   bash experiments/reproduce_cpu.sh atari_ram # discrete actions on Boxing from its RAM
#   bash experiments/reproduce_cpu.sh asterix_ram # discrete actions on Asterix from its RAM
#   bash experiments/reproduce_cpu.sh demon_ram # discrete actions on Demon Attack from its RAM
#   ENTROPY=0.003 bash experiments/reproduce_cpu.sh demon_ram # the same with an entropy bonus
#   bash experiments/reproduce_cpu.sh demon    # discrete actions on Demon Attack from pixels
#   ENTROPY=0.01 bash experiments/reproduce_cpu.sh pong_ram # discrete actions on Pong from its RAM
#   bash experiments/reproduce_cpu.sh discrete # discrete actions on gymnasium CartPole-v1 (states)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs}"

variant() {  # Sets $suffix and $flags from REWARD, ENTROPY and SEED (not the paper's settings):
  # REWARD=none (the game's rewards as the reward model's targets instead of tanh: _raw),
  # ENTROPY=c (--actor_entropy c: _ent<c>), SEED=s (_s<s>; seed 0 adds nothing).
  suffix=""
  [ "${REWARD:-tanh}" = tanh ] || suffix="_raw"
  [ "${ENTROPY:-0}" = 0 ] || suffix="${suffix}_ent$ENTROPY"
  [ "${SEED:-0}" = 0 ] || suffix="${suffix}_s$SEED"
  flags=(--reward_transform "${REWARD:-tanh}" --actor_entropy "${ENTROPY:-0}" --seed "${SEED:-0}")
}

atari_ram() {  # game, updates per episode, checkpoint period (frames), plot title, [flags...]
  # REWARD / ENTROPY / SEED (see variant) name the logdir and add their flags.
  variant
  .venv/bin/python -m dreamer_jax.train --preset atari --task "atari_$1" --obs state \
    --batch_size 16 --train_steps "$2" --steps "${STEPS:-400000}" --eval_every 20000 \
    --eval_episodes 3 --checkpoint_every "$3" --logdir "$RUNS/atari_$1_ram$suffix" \
    "${flags[@]}" "${@:5}"
  .venv/bin/python -m dreamer_jax.plot "$RUNS/atari_$1_ram$suffix" \
    --out "experiments/results/atari_$1_ram${suffix}_cpu.png" --title "$4$suffix"
  cp "$RUNS/atari_$1_ram$suffix/metrics.jsonl" "experiments/results/atari_$1_ram${suffix}_cpu.jsonl"
}

train_objectives() {  # logdir prefix, default STEPS, objectives, [train flags...]: one arm of
  # Figure 8 per objective on cartpole swing-up, one after another, in $RUNS/<prefix>_<objective>.
  for objective in $3; do
    .venv/bin/python -m dreamer_jax.train --task dmc_cartpole_swingup --objective "$objective" \
      --logdir "$RUNS/$1_$objective" --steps "${STEPS:-$2}" --eval_every 5000 "${@:4}"
  done
}

objectives() {  # logdir prefix, plot title, default STEPS, [train flags...]: Figure 8's three arms
  # on cartpole swing-up, one after another; OBJECTIVES picks a subset, e.g. to run the arms side
  # by side as separate processes (taskset -c 0 / -c 1), then all three again to plot.
  train_objectives "$1" "$3" "${OBJECTIVES:-reconstruction contrastive reward}" "${@:4}"
  .venv/bin/python -m dreamer_jax.plot "$RUNS/$1"_{reconstruction,contrastive,reward} \
    --out "experiments/results/$1_cpu.png" --table "experiments/results/$1_cpu.md" --title "$2"
  for o in reconstruction contrastive reward; do
    cp "$RUNS/$1_$o/metrics.jsonl" "experiments/results/$1_$o.jsonl"
  done
}

case "${1:-state}" in
  state)
    # SEEDS="0 1" by default, one after another; to run them side by side, one per core, start
    # SEEDS=0 taskset -c 0 ... and SEEDS=1 taskset -c 1 ..., then this again to plot.
    for seed in ${SEEDS:-0 1}; do
      .venv/bin/python -m dreamer_jax.train --preset cpu --task dmc_cartpole_swingup --seed "$seed" \
        --logdir "$RUNS/cpu_state_cartpole_s$seed" --steps 100000 --eval_every 5000 --eval_episodes 5
      cp "$RUNS/cpu_state_cartpole_s$seed/metrics.jsonl" "experiments/results/cpu_state_cartpole_s$seed.jsonl"
    done
    .venv/bin/python -m dreamer_jax.plot "$RUNS"/cpu_state_cartpole_s* \
      --out experiments/results/cpu_state_cartpole.png \
      --title "cartpole_swingup from states, cpu preset (batch 8x50, action repeat 8, discount .96), 2-core CPU" ;;
  pixels)
    .venv/bin/python -m dreamer_jax.train --preset paper --task dmc_cartpole_swingup \
      --logdir "$RUNS/pixels_cartpole" --batch_size 16 --steps "${STEPS:-100000}" --eval_every 10000 \
      --checkpoint_every 2000
    .venv/bin/python -m dreamer_jax.plot "$RUNS/pixels_cartpole" --reference cartpole_swingup \
      --out experiments/results/pixels_cartpole.png \
      --title "cartpole_swingup from 64x64 pixels, paper config except batch 16x50, 2-core CPU"
    cp "$RUNS/pixels_cartpole/metrics.jsonl" experiments/results/pixels_cartpole.jsonl ;;
  pixels_r8)
    # CURL's Table 1 (Dreamer 326 +- 27 at 100k env steps on this task) used PlaNet's per-task
    # action repeats, 8 for cartpole; the paper uses 2 everywhere (the `pixels` run above).
    # Everything else is the paper's config, batch 16x50; C=100 updates per 1000-step episode.
    .venv/bin/python -m dreamer_jax.train --preset paper --task dmc_cartpole_swingup \
      --action_repeat 8 --logdir "$RUNS/pixels_cartpole_r8" --batch_size 16 \
      --steps "${STEPS:-100000}" --eval_every 10000 --eval_episodes 10 --checkpoint_every 5000
    .venv/bin/python -m dreamer_jax.plot "$RUNS/pixels_cartpole_r8" --reference cartpole_swingup \
      --out experiments/results/pixels_cartpole_r8.png \
      --title "cartpole_swingup from 64x64 pixels, action repeat 8, batch 16x50, 2-core CPU"
    cp "$RUNS/pixels_cartpole_r8/metrics.jsonl" experiments/results/pixels_cartpole_r8.jsonl ;;
  fig4)
    # Figure 4 at CPU scale: value model (dreamer) vs none (only_action, V_R) vs online planning
    # (planet, CEM reduced to 200 candidates / top 20 / 5 iterations to fit a CPU), cartpole
    # swing-up from states, cpu preset, 50k env steps each. The dreamer arm is the `state` runs
    # (same preset, seeds 0 and 1; made first if absent). V_R and CEM use no discount.
    [ -f "$RUNS/cpu_state_cartpole_s1/config.json" ] || bash "$0" state
    .venv/bin/python -m dreamer_jax.train --preset cpu --task dmc_cartpole_swingup \
      --behavior only_action --logdir "$RUNS/fig4_only_action" --steps 50000 --eval_every 5000 \
      --eval_episodes 5
    .venv/bin/python -m dreamer_jax.train --preset cpu --task dmc_cartpole_swingup \
      --behavior planet --plan_candidates 200 --plan_top_k 20 --plan_iterations 5 \
      --logdir "$RUNS/fig4_planet" --steps 50000 --eval_every 5000 --eval_episodes 5
    .venv/bin/python -m dreamer_jax.plot "$RUNS"/cpu_state_cartpole_s[01] "$RUNS"/fig4_* \
      --out experiments/results/fig4_cpu.png --table experiments/results/fig4_cpu.md \
      --title "Figure 4 at CPU scale: cartpole_swingup from states, cpu preset"
    for b in only_action planet; do cp "$RUNS/fig4_$b/metrics.jsonl" "experiments/results/fig4_$b.jsonl"; done ;;
  fig8)
    # Figure 8 at CPU scale: the three representation objectives from 64x64 pixels, batch 8x50,
    # action repeat 8, conv depth 16 (half the paper's channels: 1.0 s per update instead of 2.2 s
    # on 2 cores), 21k env steps each (5k of them seed episodes; STEPS=100000 takes them further,
    # same logdirs). OBJECTIVES picks a subset (see objectives).
    objectives fig8 "Figure 8 at CPU scale: cartpole_swingup from pixels, batch 8x50, repeat 8, depth 16" \
      21000 --preset paper --batch_size 8 --action_repeat 8 --cnn_depth 16 --eval_episodes 3 \
      --checkpoint_every 2000 ;;
  fig8_state)
    # Figure 8's three objectives at CPU scale from states (cheaper than pixels: the cpu preset,
    # cartpole swing-up, seed 0, STEPS env steps each, default 30k). Reconstruction decodes the
    # 5-dim state; contrastive's state model is an MLP on it; reward only has no observation
    # term. OBJECTIVES picks a subset (see objectives).
    objectives fig8_state "Figure 8's objectives from states: cartpole_swingup, cpu preset, one seed" \
      30000 --preset cpu --eval_episodes 5 ;;
  fig8_r8)
    # Figure 8 under the pixels_r8 protocol (paper config, 64x64 pixels, action repeat 8, batch
    # 16x50, C=100, 10 evaluation episodes; evaluation every 5k env steps): the contrastive and
    # reward-only arms. The reconstruction arm is the pixels_r8 run itself (its logdir, or the
    # committed experiments/results/pixels_cartpole_r8.jsonl when the logdir is gone). OBJECTIVES
    # picks a subset, e.g. one per core side by side: OBJECTIVES=contrastive taskset -c 0 ... and
    # OBJECTIVES=reward taskset -c 1 ...; OBJECTIVES= (empty) only plots what the logdirs hold;
    # STEPS (default 100000) how far; resumable.
    train_objectives fig8_r8 100000 "${OBJECTIVES-contrastive reward}" --preset paper \
      --action_repeat 8 --batch_size 16 --eval_episodes 10 --checkpoint_every 5000
    recon="$RUNS/pixels_cartpole_r8"
    if [ ! -f "$recon/metrics.jsonl" ]; then  # rebuild a plottable logdir from the committed run
      recon="$RUNS/fig8_r8_reconstruction"; mkdir -p "$recon"
      cp experiments/results/pixels_cartpole_r8.jsonl "$recon/metrics.jsonl"
      .venv/bin/python -c 'import sys; from dreamer_jax import train
train.prepare_logdir(train.resolve_config(sys.argv[1:])[0])' --preset paper \
        --task dmc_cartpole_swingup --action_repeat 8 --batch_size 16 --steps 100000 \
        --logdir "$recon"
    fi
    arms=("$recon")
    for o in contrastive reward; do
      [ -f "$RUNS/fig8_r8_$o/metrics.jsonl" ] || continue
      arms+=("$RUNS/fig8_r8_$o")
      cp "$RUNS/fig8_r8_$o/metrics.jsonl" "experiments/results/fig8_r8_$o.jsonl"
    done
    .venv/bin/python -m dreamer_jax.plot "${arms[@]}" --reference cartpole_swingup \
      --out experiments/results/fig8_r8_cpu.png --table experiments/results/fig8_r8_cpu.md \
      --title "Figure 8 at CPU scale: cartpole_swingup from pixels, action repeat 8, batch 16x50" ;;
  atari)
    # Discrete actions (Appendix C) on Boxing (Machado protocol: sticky actions, full action set),
    # atari preset with batch 8x50 and conv depth 16, C=100 updates per episode as in the paper's
    # text (an episode is ~7,100 frames; the official code trains 100 per 1,000), 150k frames.
    # TRAIN_STEPS=700 is about the official code's rate (session 5: eval every 15k frames, its
    # own logdir atari_boxing_r700).
    ts="${TRAIN_STEPS:-100}"; suffix=""; every=20000
    [ "$ts" = 100 ] || { suffix="_r$ts"; every=15000; }
    .venv/bin/python -m dreamer_jax.train --preset atari --task atari_boxing --batch_size 8 \
      --cnn_depth 16 --train_steps "$ts" --logdir "$RUNS/atari_boxing$suffix" --steps 150000 \
      --eval_every "$every" --eval_episodes 3 --checkpoint_every 5000
    .venv/bin/python -m dreamer_jax.plot "$RUNS/atari_boxing$suffix" \
      --out "experiments/results/atari_boxing${suffix}_cpu.png" \
      --title "Boxing, atari preset, batch 8x50, conv depth 16, $ts updates per episode, 2-core CPU"
    cp "$RUNS/atari_boxing$suffix/metrics.jsonl" "experiments/results/atari_boxing${suffix}_cpu.jsonl" ;;
  atari_ram)
    # The same Appendix C agent on Boxing, observing the bits of its 128-byte RAM (--obs state:
    # an MLP encoder/decoder instead of the conv nets; not the paper's pixels), batch 16x50,
    # 300 updates per ~7,100-frame episode, 400k frames; resumable (multi-session). REWARD /
    # ENTROPY / SEED as in demon_ram (session 16: ENTROPY=0.03, Boxing's first actions change the
    # next 10 steps' rewards far more than Pong's: experiments/results/probe_boxing_emulator.json).
    atari_ram boxing 300 10000 \
      "Boxing from its RAM bits (not pixels), atari preset, batch 16x50, 300 updates/episode" ;;
  asterix_ram)
    # The same on Asterix (dense rewards, ~1,000-frame random episodes), C=100 updates per
    # episode (about the official code's 100 per 1,000 frames).
    atari_ram asterix 100 10000 "Asterix from its RAM bits (not pixels), atari preset, batch 16x50, C=100" ;;
  demon_ram)
    # Demon Attack (experiments/results/probe_atari_games.md: random play 112 +- 17, holding FIRE
    # 480, ~930-step random episodes), 300 updates per episode (~80 per 1,000 frames; the
    # official code trains 100), episodes capped at 18,000 frames (5 minutes of play; the paper's
    # code allows 108,000) because some behaviours (e.g. holding RIGHT) survive without end.
    # REWARD / ENTROPY / SEED pick a variant and name its logdir (see variant; Demon Attack's
    # raw rewards are 10-35 a kill).
    atari_ram demon_attack 300 10000 \
      "Demon Attack from its RAM bits (not pixels), atari preset, batch 16x50, 300 updates/episode" \
      --time_limit 18000 ;;
  pong_ram)
    # Pong (random play -20 +- 1 in 892 agent steps, every fixed action -21:
    # experiments/results/probe_pong_boxing_breakout.md; an agent cannot stall, the opponent
    # serves and scores), 300 updates per episode (~84 per 1,000 frames of a random episode; the
    # official code trains 100). REWARD / ENTROPY / SEED as in demon_ram.
    atari_ram pong 300 10000 \
      "Pong from its RAM bits (not pixels), atari preset, batch 16x50, 300 updates/episode" \
      --time_limit 18000 ;;
  demon)
    # The same game from 64x64 pixels (the paper's observations), batch 8x50, conv depth 16.
    .venv/bin/python -m dreamer_jax.train --preset atari --task atari_demon_attack --batch_size 8 \
      --cnn_depth 16 --train_steps 300 --time_limit 18000 --steps "${STEPS:-400000}" \
      --eval_every 20000 --eval_episodes 3 --checkpoint_every 10000 \
      --logdir "$RUNS/atari_demon_attack"
    .venv/bin/python -m dreamer_jax.plot "$RUNS/atari_demon_attack" \
      --out experiments/results/atari_demon_attack_cpu.png \
      --title "Demon Attack from pixels, atari preset, batch 8x50, conv depth 16, 300 updates/episode"
    cp "$RUNS/atari_demon_attack/metrics.jsonl" experiments/results/atari_demon_attack_cpu.jsonl ;;
  discrete)
    # The discrete-action machinery of Appendix C (one-hot straight-through actions,
    # epsilon-greedy 0.4, predicted discount, tanh rewards, horizon 10, beta 0.1: the atari
    # preset) on a task with early termination, from states: gymnasium CartPole-v1, action
    # repeat 1, its 500-step limit, sequences of 10 (random episodes last ~20 steps and replay
    # samples only from episodes at least a sequence long), batch 16, C=100 per episode.
    .venv/bin/python -m dreamer_jax.train --preset atari --task gym:CartPole-v1 --obs state \
      --action_repeat 1 --time_limit 500 --seq_len 10 --batch_size 16 \
      --logdir "$RUNS/gym_cartpole_discrete" --steps "${STEPS:-12000}" --eval_every 2000 \
      --eval_episodes 5 --checkpoint_every 5000 --log_every 500
    .venv/bin/python -m dreamer_jax.plot "$RUNS/gym_cartpole_discrete" \
      --out experiments/results/gym_cartpole_discrete.png \
      --title "CartPole-v1 (gymnasium) from states, discrete actions, atari preset, 2-core CPU"
    cp "$RUNS/gym_cartpole_discrete/metrics.jsonl" experiments/results/gym_cartpole_discrete.jsonl ;;
  *) echo "usage: $0 state|pixels|pixels_r8|fig4|fig8|fig8_r8|fig8_state|atari|atari_ram|asterix_ram|demon_ram|pong_ram|demon|discrete" >&2; exit 2 ;;
esac
