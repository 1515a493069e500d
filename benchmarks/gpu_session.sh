#!/bin/bash
# One device call (docs/gpu.md): the gpu profile's whole pipeline, published to reports/reference-gpu, then the
# GPU throughput of this version and of 54ad904 (benchmarks/gpu.py), all in the time left. Run on the GPU machine
# from the repository root with .devsite/ (tools/pack_gpu_site.sh) carried; results go to $OUT (default: gpu-out).
# Budgets in seconds: LIMIT (whole call, default 575), RUN_LIMIT (lai run, default 430); SKIP_RUN=1 benchmarks only.
# Rerunning on the same machine continues the run (lai run resumes finished stages).
# It stops at once, with one line and exit status 2, where the carried site, the 54ad904 checkout or a CUDA GPU
# is missing (it would otherwise run the gpu profile on a CPU); it exits 1 if the run or a benchmark failed.
set -u
fail() { echo "gpu_session.sh: $*" >&2; exit 2; }
[ -f .devsite/site.tar.xz ] || fail ".devsite/site.tar.xz is missing: run tools/pack_gpu_site.sh here and carry .devsite"
[ -d .devsite/base/lai ] || fail ".devsite/base (54ad904's checkout) is missing: run tools/pack_gpu_site.sh and carry .devsite"
command -v nvidia-smi > /dev/null || fail "no nvidia-smi: this is not a GPU machine"
OUT=$(realpath -m "${OUT:-gpu-out}"); mkdir -p "$OUT"
LIMIT=${LIMIT:-575}; RUN_LIMIT=${RUN_LIMIT:-430}
mkdir -p /tmp/site && { [ -f /tmp/site/.done ] || { tar -C /tmp/site -xJf .devsite/site.tar.xz && touch /tmp/site/.done; }; } \
  || fail "could not unpack .devsite/site.tar.xz into /tmp/site"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  python3 -c "import torch, rasterio, papermill, typst; print(torch.__version__, torch.cuda.get_device_name())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
python3 -c "import torch, rasterio, papermill, typst; assert torch.cuda.is_available()" 2> /dev/null \
  || fail "python3 lacks torch with CUDA, rasterio, papermill or typst (see $OUT/env.txt)"
status=0
if [ "${SKIP_RUN:-0}" != 1 ]; then
  t0=$SECONDS
  timeout "$RUN_LIMIT" python3 -m lai run --profile gpu > "$OUT/run.log" 2>&1; rc=$?
  echo "lai run rc=$rc in $((SECONDS - t0)) s" | tee -a "$OUT/env.txt"
  if [ $rc = 0 ]; then
    python3 -m lai publish reports/gpu reports/reference-gpu --command-line "lai run --profile gpu" >> "$OUT/env.txt" 2>&1 \
      && tar -czf "$OUT/reference-gpu.tar.gz" reports/reference-gpu || status=1
  else
    status=1
  fi
  tar -czf "$OUT/run-folder.tar.gz" --exclude='*.pt' --exclude='*.nc' reports/gpu 2>/dev/null
fi
left=$((LIMIT - SECONDS))
echo "benchmarks: ${left} s left"
if [ $left -gt 100 ]; then
  each=$(( (left - 10) / 2 ))
  B="--variants ${VARIANTS:-bf16_cl,bf16_cl_compile} --skip inference,training --triplets 128 --steps 30"
  timeout $each python3 benchmarks/gpu.py $B --out "$OUT/bench-head.json" > "$OUT/bench.log" 2>&1
  rc=$?; [ $rc = 0 ] || status=1
  echo "this version rc=$rc at ${SECONDS} s" >> "$OUT/bench.log"
  (cd .devsite/base && PYTHONPATH=/tmp/site:$PWD timeout $each python3 benchmarks/gpu.py $B --out "$OUT/bench-54ad904.json") >> "$OUT/bench.log" 2>&1
  rc=$?; [ $rc = 0 ] || status=1
  echo "54ad904 rc=$rc at ${SECONDS} s" >> "$OUT/bench.log"
  grep -E "model alone|rc=" "$OUT/bench.log"
fi
exit $status
