#!/usr/bin/env bash
# Checks, without a GPU, what McDit's reader of libtorch's CUDA allocator statistics assumes
# (benchmarks/McDit.Benchmarks/CudaAllocatorStats.cs; the GPU benchmark's max_memory_allocated figure):
#   1. the calling convention and DeviceStats offsets: a C++ class of the same shape (abi/device_allocator_shape.cpp),
#      compiled here with g++, called through the reader's own vtable slots;
#   2. the c10::DeviceAllocator vtable layout of the libtorch this build loads (2.10, CPU).
# Usage: bash benchmarks/gpu/abi-check.sh   (needs g++; builds the benchmark in Release when it is missing). CI runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v g++ >/dev/null || { echo "abi-check.sh: g++ is missing (apt-get install g++)" >&2; exit 1; }
dll=benchmarks/McDit.Benchmarks/bin/Release/net10.0/McDit.Benchmarks.dll
[ -f "$dll" ] || dotnet build benchmarks/McDit.Benchmarks -c Release >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
g++ -O2 -shared -fPIC -o "$work/libmcdit-device-allocator-shape.so" benchmarks/gpu/abi/device_allocator_shape.cpp
dotnet "$dll" --allocator-abi-check "$work/libmcdit-device-allocator-shape.so"
layout=$(printf 'allocator\nquit\n' | OMP_NUM_THREADS=1 dotnet "$dll" --serve --device cpu --threads 1 | grep '^ok ')
echo "libtorch layout: ${layout#ok }"
grep -q 'the layout assumed' <<<"$layout" || { echo "abi-check.sh: this libtorch's c10::DeviceAllocator vtable is not the layout assumed" >&2; exit 1; }
