#!/usr/bin/env bash
# Course convention for P1: bash hw2_1.sh <out_dir>  ->  <out_dir>/mnistm/, <out_dir>/svhn/
# (50 images per digit, {digit}_{NNN}.png). CKPT=... selects another P1 checkpoint folder,
# DEVICE=cuda the GPU; STEPS=n fewer DDIM steps, N=n fewer
# images per digit (rehearsals only).
# Relative paths (out_dir, CKPT) are read from the caller's folder, not the repository's.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <out_dir>" >&2; exit 2; }
out=$(realpath -m "$1")
ckpt=$(if [ -n "${CKPT:-}" ]; then realpath -m "$CKPT"; fi)
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m hw2lib p1 sample --out "$out" --ckpt "${ckpt:-checkpoints/p1_ddpm}" \
  --device "${DEVICE:-cpu}" ${STEPS:+--steps "$STEPS"} ${N:+--n-per-digit "$N"}
