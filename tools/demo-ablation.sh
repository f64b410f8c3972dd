#!/bin/bash
# One row of docs/results.md "Demo ablations": train a variant of the demo at one thread, then sample 20 images per
# class at each guidance scale and score them (class accuracy, FD-ResNet18) and their patch grid.
#   tools/demo-ablation.sh NAME GUIDANCES SAMPLER_STEPS [mcdit train options...]
#   tools/demo-ablation.sh v1 3,4 12 --steps 475 --unmask-steps 475 --ema-decay 0.99
# Build first (dotnet build src/McDit.Cli -c Release); MCDIT overrides the mcdit command; results go to runs/ablation/.
# PER_CLASS (default 20) samples per class; THREADS (default 1) libtorch threads, so that two rows can run side by side;
# SAMPLE_ARGS more options of mcdit sample (e.g. "--shift 2"), TRAINED=1 skips training (rescores NAME's model).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
MCDIT=${MCDIT:-"dotnet src/McDit.Cli/bin/Release/net10.0/mcdit.dll"}
PER_CLASS=${PER_CLASS:-20}; THREADS=${THREADS:-1}
name=$1; guidances=$2; sampler_steps=$3; shift 3
out=runs/ablation; mkdir -p $out
start=$(date +%s)
[ "${TRAINED:-0}" = 1 ] || $MCDIT --threads $THREADS train --data embedded --method McDiT --model Tiny/4 --batch-size 32 --lr 2e-3 --sample-every 0 --checkpoint-every 0 \
  --device cpu --grid-columns 10 --guidance 3 --out $out/$name "$@" > $out/$name.train.log 2>&1
trained="train $(( $(date +%s) - start )) s"; [ "${TRAINED:-0}" = 1 ] && trained="trained before"
for g in ${guidances//,/ }; do
  images=$out/$name-png-g$g-s$sampler_steps${SAMPLE_ARGS:+-$(echo "$SAMPLE_ARGS" | tr -c 'a-z0-9.\n' '_')}
  $MCDIT --threads $THREADS sample --from $out/$name --format png --per-class $PER_CLASS --guidance $g --seed 0 --steps $sampler_steps --out $images --device cpu ${SAMPLE_ARGS:-} > $images.sample.log 2>&1
  $MCDIT --threads $THREADS evaluate --images $images --from $out/$name --device cpu > $images.eval.log 2>&1
  echo "$name $* | ${SAMPLE_ARGS:+$SAMPLE_ARGS, }guidance $g, $sampler_steps steps | $trained | $(grep -E 'FD-ResNet18|class acc|per class' $images.eval.log | tr -s ' ' | tr '\n' ' ') | $(python3 tools/patch_grid.py --patch 4 $images)" | tee -a $out/results.txt
done
