# pipelines/slurm/lib.sh — sourced by the *.sbatch scripts and submit.sh: every job is one target
# of the same Makefile (pipelines/$PIPELINE.mk), so a Slurm run and `make -j` write the same files.
#
# Environment (sbatch passes the submitter's environment to the jobs):
#   CLTKIT_ROOT  the cltkit checkout (default: $SLURM_SUBMIT_DIR, i.e. submit from the checkout)
#   PIPELINE     llama1b (default), gemma2b or smollm2
#   MAKE_ARGS    the pipeline's variables, e.g. "MODEL_DIR=/models/Llama-3.2-1B CORPUS=/data/c.jsonl
#                OUT=/scratch/llama1b" (split at spaces and newlines: no spaces inside a value)
#   SHARDS       activation shards = the size of the acts array (default 8)
#   FEAT_SHARDS  feature-collection shards = the size of the feat array (default SHARDS)
set -euo pipefail
CLTKIT_ROOT=${CLTKIT_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
PIPELINE=${PIPELINE:-llama1b}
SHARDS=${SHARDS:-8}
FEAT_SHARDS=${FEAT_SHARDS:-$SHARDS}
read -r -d '' -a MAKE_ARGV <<< "${MAKE_ARGS:-}" || true  # every line's words
MK=$CLTKIT_ROOT/pipelines/$PIPELINE.mk
[ -f "$MK" ] || { echo "slurm: $MK: no such pipeline (CLTKIT_ROOT=$CLTKIT_ROOT, PIPELINE=$PIPELINE)" >&2; exit 1; }

run_make() {
  make -f "$MK" "${MAKE_ARGV[@]}" SHARDS="$SHARDS" FEAT_SHARDS="$FEAT_SHARDS" "$@"
}

# An array task's index, checked against the shard count the Makefile is told (a mismatch would
# leave shards unwritten or written twice).
array_index() {
  local want=$1
  [ -n "${SLURM_ARRAY_TASK_ID:-}" ] || { echo "slurm: SLURM_ARRAY_TASK_ID not set (submit with --array)" >&2; exit 1; }
  if [ -n "${SLURM_ARRAY_TASK_COUNT:-}" ] && [ "$SLURM_ARRAY_TASK_COUNT" != "$want" ]; then
    echo "slurm: array of $SLURM_ARRAY_TASK_COUNT tasks for $want shards (use --array=0-$((want - 1)))" >&2
    exit 1
  fi
  echo "$SLURM_ARRAY_TASK_ID"
}

# A job's inputs must be finished (by the job it depends on): else make would rebuild them here,
# e.g. every task of the feature array training its own CLT into the same directory.
need_done() {
  run_make -q "$1" 2>/dev/null || { echo "slurm: '$1' is not finished: $2" >&2; exit 1; }
}
