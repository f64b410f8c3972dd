#!/usr/bin/env bash
# The GPU benchmark (DEVELOPERS.md, "GPU"): checks that both McDit and PyTorch run on CUDA, then times every case of
# benchmarks/pytorch/compare.py on McDit and on the machine's PyTorch, interleaved, in fp32 with TF32 on in both and in
# bf16 (McDit's BFloat16 path against PyTorch's autocast), with peak GPU memory: torch.cuda.max_memory_allocated on both
# sides (McDit reads libtorch's allocator statistics once their self-test passes) and the per-process figure of nvidia-smi.
#
# On the GPU machine (no .NET there: first pack the benchmark with ../shared/tools/gpu-bundle, see DEVELOPERS.md):
#   bash benchmarks/gpu/run.sh                       # McDit through .gpu/run.sh, the machine's python3 and PyTorch
# Dry run on a CPU-only machine (the same steps end to end, small):
#   bash benchmarks/gpu/run.sh --device cpu --cases tiny --pairs 2 --warmup 1
# Options: --device cuda|cpu, --cases (compare.py's names), --pairs N, --warmup N, --precisions "tf32 bf16".
# Results: compare-PRECISION.txt in $OUT (the device tool's output folder) or artifacts/gpu/.
set -euo pipefail
cd "$(dirname "$0")/../.."
device=cuda cases=tiny,s2,b2,sample-tiny,sample-s2 pairs=20 warmup=5 precisions="tf32 bf16"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2 ;; --cases) cases=$2 ;; --pairs) pairs=$2 ;; --warmup) warmup=$2 ;; --precisions) precisions=$2 ;;
    *) echo "run.sh: unknown option '$1' (expected --device, --cases, --pairs, --warmup, --precisions)" >&2; exit 2 ;;
  esac
  shift 2
done
out=${OUT:-artifacts/gpu}
mkdir -p "$out"

if [ "$device" = cpu ]; then
  echo "== dry run on the CPU: this checks the script end to end; the figures are not GPU figures"
  mcdit=${MCDIT_DLL:-benchmarks/McDit.Benchmarks/bin/Release/net10.0/McDit.Benchmarks.dll}
  [ -f "$mcdit" ] || dotnet build benchmarks/McDit.Benchmarks -c Release >/dev/null
  run_mcdit() { dotnet "$mcdit" "$@"; }
  python=/usr/bin/python3; [ -x "$python" ] || python=python3
else
  [ -f .gpu/run.sh ] || { echo "run.sh: .gpu/run.sh is missing: pack the benchmark with ../shared/tools/gpu-bundle benchmarks/McDit.Benchmarks/McDit.Benchmarks.csproj and carry .gpu" >&2; exit 1; }
  mcdit="bash .gpu/run.sh"
  run_mcdit() { bash .gpu/run.sh "$@"; }
  python=python3
  echo "== the card"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi

echo "== PyTorch on $device"
"$python" - "$device" <<'PY'
import sys, torch
device = sys.argv[1]
print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())
if device.startswith("cuda"):
    assert torch.cuda.is_available(), "this PyTorch sees no CUDA device"
    x = torch.ones(256, 256, device=device)
    assert (x @ x).is_cuda
    print("device", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
PY

echo "== McDit on $device"
# On the CPU also the layout check of McDit's reader of libtorch's allocator statistics (on CUDA compare.py runs its
# self-test in a process of its own: it reads a vtable, and a crash there must cost only the memory figure).
probe=""; [ "$device" = cpu ] && probe='allocator\n'
check=$(printf "info\n${probe}setup train DiT Micro/2 8 4 4 10\nrun 2\nquit\n" | run_mcdit --serve --device "$device" --precision Float32 --tf32 1 --threads 1)
echo "$check"
grep -q '^ms ' <<<"$check" || { echo "run.sh: McDit could not run a training step on $device" >&2; exit 1; }
if [ "$device" != cpu ]; then
  grep -q 'CUDA True' <<<"$check" || { echo "run.sh: McDit's libtorch sees no CUDA device (is .gpu/run.sh pointing at PyTorch's CUDA libtorch?)" >&2; exit 1; }
fi

for precision in $precisions; do
  echo "== $precision"
  "$python" benchmarks/pytorch/compare.py --device "$device" --precision "$precision" --cases "$cases" --pairs "$pairs" \
    --warmup "$warmup" --mcdit "$mcdit" --python "$python" | tee "$out/compare-$precision.txt"
done
echo "== results in $out"
