#!/usr/bin/env bash
# Course convention for P3: bash hw2_3.sh <input.json> <out_dir> <stable-diffusion checkpoint>
# Generates 25 images per prompt into <out_dir>/<concept>/<prompt_idx>/ with the embeddings
# learned by `python -m hw2lib ti train` (EMBEDS, default checkpoints/p3_ti_course/learned_embeds).
# N=, STEPS=: fewer images and DDIM steps (rehearsals only).
# A single-file sd-v1-4.ckpt loads offline with the v1.4 configs shipped in hw2lib (SD_CONFIG=DIR: others).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 <input.json> <out_dir> <sd checkpoint>" >&2; exit 2; }
json=$(realpath "$1"); out=$(realpath -m "$2"); sd=$(realpath "$3")
cd "$(dirname "$0")"
embeds=$(realpath -m "${EMBEDS:-checkpoints/p3_ti_course/learned_embeds}")
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m hw2lib ti generate --json "$json" --out "$out" --sd "$sd" \
  --embeds "$embeds" ${SD_CONFIG:+--sd-config "$SD_CONFIG"} --device "${DEVICE:-cuda}" \
  ${N:+--n "$N"} ${STEPS:+--steps "$STEPS"}
