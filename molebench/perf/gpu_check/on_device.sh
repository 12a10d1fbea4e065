#!/usr/bin/env bash
# `make gpu-check` as one call on a lent GPU machine (README: "GPU check"): no network there, and its own python3
# (3.12) and torch. Installs the carried wheels (`make gpu-wheels` puts them in .whl/) into a fresh folder that
# PYTHONPATH puts first, runs molebench from this source tree, builds the full-size replicas in memory on every core
# as the rows need them (most important rows first, molebench.perf.gpu_check.sources.PRIORITY), and leaves under OUT:
# gpu-check.json (written after every row), gpu-check.md (the README rows), README.md (this README with the rows)
# and log.txt.
#
#   bash molebench/perf/gpu_check/on_device.sh OUT [options of python -m molebench.perf.gpu_check]
#
# MOLEBENCH_GPU_CHECK_LIMIT_S (default 450): hard limit of the check; no row starts after the limit less 90 s.
# MOLEBENCH_DEVICE_PYTHON (python3), MOLEBENCH_DEVICE_WHEELS (.whl), MOLEBENCH_REPLICA_CACHE (/dev/shm when it has
# 50 GiB free, else /tmp), MOLEBENCH_REPLICA_THREADS (every core): what the tests point elsewhere.
set -u -o pipefail
out=${1:?usage: on_device.sh OUT [options of python -m molebench.perf.gpu_check]}
shift
mkdir -p "$out"
python=${MOLEBENCH_DEVICE_PYTHON:-python3}
wheels=${MOLEBENCH_DEVICE_WHEELS:-.whl}
limit=${MOLEBENCH_GPU_CHECK_LIMIT_S:-450}

replica_cache() {  # memory first: the replicas (48.6 GB in all) are written once and read back at once
  local dir avail
  for dir in /dev/shm "${TMPDIR:-/tmp}"; do
    avail=$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 {print $4}')
    if [ "${avail:-0}" -ge $((50 * 1024 * 1024)) ]; then echo "$dir/molebench-replicas"; return; fi
  done
  echo "${TMPDIR:-/tmp}/molebench-replicas"
}

check() {
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi: not here"
  site=$(mktemp -d "${TMPDIR:-/tmp}/molebench-site.XXXXXX")
  if compgen -G "$wheels/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "$wheels"/*.whl || return 3
    echo "installed $(ls "$wheels"/*.whl | wc -l) carried wheels into $site"
  else
    echo "no wheels in $wheels/: running on the installed packages (make gpu-wheels fetches them)"
  fi
  export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false
  export MOLEBENCH_REPLICA_CACHE=${MOLEBENCH_REPLICA_CACHE:-$(replica_cache)}
  export HF_HUB_CACHE=$MOLEBENCH_REPLICA_CACHE MOLEBENCH_REPLICA_THREADS=${MOLEBENCH_REPLICA_THREADS:-$(nproc)}
  mkdir -p "$MOLEBENCH_REPLICA_CACHE"
  echo "replicas in $MOLEBENCH_REPLICA_CACHE ($(df -Ph "$MOLEBENCH_REPLICA_CACHE" | awk 'NR == 2 {print $4}') free)," \
    "drawn on $MOLEBENCH_REPLICA_THREADS threads; check limit $limit s"
  "$python" -m pip list 2>/dev/null | grep -i -E '^(torch|torchvision|transformers|diffusers|accelerate|timm|torchmetrics|huggingface.hub|safetensors|tokenizers|open.clip.torch|numpy) '
  cp README.md "$out/README.md"
  timeout -k 20 "$limit" "$python" -m molebench.perf.gpu_check --out "$out/gpu-check.json" \
    --readme "$out/README.md" --budget-s $((limit - 90)) "$@"
  local status=$?
  if [ "$status" -ge 124 ] && [ -f "$out/gpu-check.json" ]; then  # stopped at the limit: rows from what it wrote
    echo "stopped at the $limit s limit; README rows from the rows measured"
    "$python" -m molebench.perf.gpu_check --rows-from "$out/gpu-check.json" --readme "$out/README.md"
  fi
  date -u
  return "$status"
}

check "$@" 2>&1 | tee "$out/log.txt"
