#!/bin/bash
# The demo's whole job (training, sampling, FD-ResNet18 and class accuracy) idle and beside N busy processes, with the
# automatic thread choice and with --threads 1 and 2, one run after the other (never two timings at once).
# Usage: benchmarks/threads-under-load.sh [STEPS] [BUSY] [REPEATS]   (defaults 40, 4, 2; MCDIT=path of the built CLI)
# Build first: dotnet build src/McDit.Cli -c Release. Prints one line per run: condition, seconds, the thread line.
set -u
steps=${1:-40}; busy=${2:-4}; repeats=${3:-2}
mcdit=${MCDIT:-$(dirname "$0")/../src/McDit.Cli/bin/Release/net10.0/mcdit}
[ -x "$mcdit" ] || { echo "threads-under-load: no CLI at $mcdit; build it with: dotnet build src/McDit.Cli -c Release (or set MCDIT)" >&2; exit 2; }
out=$(mktemp -d)
trap 'pkill -P $$ yes 2>/dev/null; rm -rf "$out"' EXIT
run() {
  local name=$1; shift
  local t0 t1; t0=$(date +%s.%N)
  "$mcdit" "$@" demo --steps "$steps" --fd-samples 100 --out "$out/$name" > "$out/$name.log" 2>&1 || { echo "$name: mcdit failed, see below"; tail -5 "$out/$name.log"; exit 1; }
  t1=$(date +%s.%N)
  printf '%-14s %7.1f s  %s | %s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(head -1 "$out/$name.log" | grep -o '[0-9]* CPU thread[s]* ([^)]*)')" "$(grep -m1 ' speed ' "$out/$name.log" | tr -s ' ')"
  rm -rf "${out:?}/$name"
}
run warm-caches                      # fills the per-user FD and classifier caches; not a timing
for r in $(seq "$repeats"); do run idle-auto-$r; run idle-2-$r --threads 2; done
for i in $(seq "$busy"); do yes > /dev/null & done
sleep 3
for r in $(seq "$repeats"); do run load-auto-$r; run load-1-$r --threads 1; run load-2-$r --threads 2; done
