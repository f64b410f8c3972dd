#!/usr/bin/env sh
# Rebuilds the embedded Fashion-MNIST subset (see src/McDit.Torch/Data/Embedded/README.md).
# Needs the Debian/Ubuntu package dataset-fashion-mnist (or SRC pointing at the four original .gz files) and python3.
set -eu
SRC="${1:-/usr/share/datasets/fashion-mnist}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$SRC/train-images-idx3-ubyte.gz" ] && [ ! -f "$SRC/train-images-idx3-ubyte" ]; then
  echo "No Fashion-MNIST files in $SRC; run: apt-get install -y dataset-fashion-mnist" >&2
  exit 1
fi
python3 "$ROOT/tools/make-embedded-fashion-mnist.py" "$SRC" "$ROOT/src/McDit.Torch/Data/Embedded"
( cd "$ROOT/src/McDit.Torch/Data/Embedded" && sha256sum ./*.gz )
