#!/usr/bin/env bash
# One-GPU check (issue 20): the paper profile's stage 1 for one seed and a 10^4-tile archive predict
# in at most 8 minutes; prints JSON. `gpu_check.sh --cpu` runs the same steps in a tiny CPU setting.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
[[ -x "$py" ]] || py=python3
mode=gpu
extra=()
for a in "$@"; do
  case "$a" in
    --cpu) mode=cpu ;;
    *) extra+=("$a") ;;
  esac
done
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec timeout 480 "$py" "$here/gpu_check.py" --mode "$mode" "${extra[@]}"
