#!/usr/bin/env bash
# Course convention for P2: bash hw2_2.sh <noise_dir> <out_dir> <UNet.pt>
# The course's UNet.py is imported from UNET_MODULE (default: UNet.py beside UNet.pt).
# DEVICE=cuda runs it on the GPU (autocast); STEPS=n fewer DDIM steps (rehearsals only).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 <noise_dir> <out_dir> <UNet.pt>" >&2; exit 2; }
noise=$(realpath "$1"); out=$(realpath -m "$2"); ckpt=$(realpath "$3")
module=${UNET_MODULE:-$(dirname "$ckpt")/UNet.py}
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m hw2lib p2 sample --noise-dir "$noise" --out "$out" \
  --unet-ckpt "$ckpt" --unet-module "$module" --device "${DEVICE:-cpu}" \
  ${STEPS:+--steps "$STEPS"}
