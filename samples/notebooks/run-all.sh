#!/usr/bin/env bash
# Runs every notebook of this folder headless with dotnet-repl and writes the executed copies to out/.
# Usage: samples/notebooks/run-all.sh [notebook.ipynb ...]
# MCDIT_NOTEBOOK_SCALE picks the size of the runs: "ci" (the default here: toy settings, seconds per notebook) or
# "default" (the settings a person would use on a laptop CPU, minutes per notebook).
# Prints one line "notebook: passed|failed (N s)" per notebook and exits non-zero when any fails.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export MCDIT_NOTEBOOK_SCALE="${MCDIT_NOTEBOOK_SCALE:-ci}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

cd "$root"
# The notebooks #r the library from lib/: McDit.MLNet with every dependency and the Linux natives flat beside it
# (see README.md in this folder). The build's native fix-up also patches that copy of libLibTorchSharp.so.
if ! dotnet publish src/McDit.MLNet/McDit.MLNet.csproj -c Release -r linux-x64 --self-contained false \
     -o "$here/lib" -nologo -v q; then
  echo "notebooks: building the library failed"
  exit 1
fi
dotnet tool restore >/dev/null || { echo "notebooks: dotnet tool restore (dotnet-repl) failed"; exit 1; }

cd "$here"
mkdir -p out
if [ "$#" -gt 0 ]; then notebooks=("$@"); else notebooks=([0-9][0-9]-*.ipynb); fi
failed=0
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  start=$SECONDS
  # dotnet-repl exits 2 when a cell fails; the executed copy (with outputs and errors) goes to out/.
  dotnet tool run dotnet-repl --run "$nb" --exit-after-run --output-path "out/$name.ipynb" > "out/$name.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "$name: passed ($((SECONDS - start)) s)"
  else
    echo "$name: failed (exit $rc, $((SECONDS - start)) s); see samples/notebooks/out/$name.ipynb and out/$name.log"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
