#!/usr/bin/env bash
# Once per machine (root): the PyTorch reference's CPU environment for benchmarks/pytorch/compare.py.
# Debian's python3-torch calls whatever libblas.so.3 the alternatives system selects; the generic reference BLAS it
# gets by default is over 20x slower at sgemm and would flatter McDit, so OpenBLAS (OpenMP build) is installed and
# selected. compare.py also checks which OpenBLAS kernels load (OpenBLAS 0.3.21 falls back to SSE3 "Prescott" kernels
# on CPUs newer than it, e.g. Sapphire/Emerald Rapids) and sets OPENBLAS_CORETYPE to the CPU's family when it does.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null || ! [ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]; then
  apt-get update -qq
  apt-get install -y -qq python3-torch libopenblas0-openmp >/dev/null
fi
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
update-alternatives --set "libblas.so.3-$arch" "/usr/lib/$arch/openblas-openmp/libblas.so.3"
update-alternatives --set "liblapack.so.3-$arch" "/usr/lib/$arch/openblas-openmp/liblapack.so.3"
/usr/bin/python3 -c 'import torch; print("python3-torch", torch.__version__)'
update-alternatives --query "libblas.so.3-$arch" | grep '^Value:'
