#!/usr/bin/env bash
# Submit the whole pipeline as four dependent Slurm jobs (each starts when the previous one ended
# well): acts array -> CLT training -> feature array -> merge, graphs, explanations, pages.
# Run from the cltkit checkout on a login node:
#   SHARDS=16 FEAT_SHARDS=8 PIPELINE=llama1b \
#   MAKE_ARGS="MODEL_DIR=/models/Llama-3.2-1B CORPUS=/data/corpus.jsonl OUT=/scratch/llama1b" \
#   bash pipelines/slurm/submit.sh [extra sbatch options, e.g. --partition=gpu --account=lab]
# First `make prepare` runs here (the model directory and the corpus must exist before parallel
# jobs read them; a no-op for a downloaded model and corpus). Prints the four job ids.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
export CLTKIT_ROOT PIPELINE SHARDS FEAT_SHARDS MAKE_ARGS
run_make prepare >&2
D=$CLTKIT_ROOT/pipelines/slurm
acts=$(sbatch --parsable "$@" --array=0-$((SHARDS - 1)) "$D/acts.sbatch")
clt=$(sbatch --parsable "$@" --dependency=afterok:"$acts" "$D/clt.sbatch")
feat=$(sbatch --parsable "$@" --dependency=afterok:"$clt" --array=0-$((FEAT_SHARDS - 1)) "$D/feat.sbatch")
post=$(sbatch --parsable "$@" --dependency=afterok:"$feat" "$D/post.sbatch")
echo "acts $acts  clt $clt  feat $feat  post $post"
