#!/usr/bin/env bash
# pipelines/slurm/ without Slurm: the sbatch scripts' bodies run here as Slurm would run them, at
# toy size (llama1b.mk on stories260K): the 3 tasks of the acts array at once (SLURM_ARRAY_TASK_ID
# set, in parallel: no two write the same file), the CLT job with its launcher (2 MPI ranks when
# mpirun and an MPI build exist, else one process), the 2 tasks of the feature array, then the
# post job (merge, graphs, explanations, pages). The outputs must be make's: `make` afterwards has
# nothing to do. submit.sh is run against a stand-in sbatch that records its arguments: four jobs,
# arrays of the right size, each depending on the previous one.
source "$(dirname "$0")/lib.sh"
stories_model
mkdir -p "$TMP/prompts" "$TMP/fake"
printf 'Once upon a time, there was a little girl named\n' > "$TMP/prompts/lily.txt"
export -n MAKEFLAGS MFLAGS MAKELEVEL
unset MAKEFLAGS MFLAGS MAKELEVEL
export CLTKIT_ROOT=$ROOT PIPELINE=llama1b SHARDS=3 FEAT_SHARDS=2 CLTKIT_THREADS=1
export MAKE_ARGS="MODEL_DIR=$TMP/st CORPUS=$ROOT/tests/data/tok_corpus.jsonl OUT=$TMP/out CTX=32 BATCH=8 DTYPE=f32
  D_MODEL=64 EXPANSION=2 CLT_BATCH=128 CLT_STEPS=20 FEAT_K=5 EXPLAINER=tokens PROMPTS=$TMP/prompts ATTRIB_FLAGS="
S=$ROOT/pipelines/slurm
# MAKE_ARGS reaches make whole (its second line too): else the real sizes would run
if ! bash -c "source $S/lib.sh; run_make -n clt" 2>&1 | grep -q -- "--features 128 --batch 128"; then
  fail slurm_make_args "MAKE_ARGS not passed to make"; exit 0
fi
for i in 0 1 2; do
  SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=3 bash "$S/acts.sbatch" >"$TMP/acts$i.log" 2>&1 &
done
rc=0; for i in 0 1 2; do wait -n || rc=1; done
[ $rc -eq 0 ] && [ -f "$TMP/out/acts/part0.acts" ] && [ -f "$TMP/out/acts/part2.acts" ] \
  && ok slurm_acts_array || fail slurm_acts_array "$(tail -3 "$TMP"/acts*.log)"
# a task of an array that does not match SHARDS is refused before it writes anything
SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=4 bash "$S/acts.sbatch" >"$TMP/bad.log" 2>&1 \
  && fail slurm_array_size "ran" || { grep -q "array of 4 tasks for 3 shards" "$TMP/bad.log" && ok slurm_array_size \
  || fail slurm_array_size "$(cat "$TMP/bad.log")"; }
# a feature task started before the CLT job ended trains nothing itself (N tasks, one directory)
SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 bash "$S/feat.sbatch" >"$TMP/early.log" 2>&1 \
  && fail slurm_needs_clt "ran" || { grep -q "'clt' is not finished" "$TMP/early.log" && [ ! -e "$TMP/out/clt" ] \
  && ok slurm_needs_clt || fail slurm_needs_clt "$(cat "$TMP/early.log")"; }

export OMPI_MCA_btl_vader_single_copy_mechanism=none
LAUNCH=
if command -v mpirun >/dev/null && ! "$BIN/clt-fit" --help 2>&1 | grep -q "built without MPI"; then
  LAUNCH="mpirun --allow-run-as-root --oversubscribe -np 2"
fi
LAUNCH=$LAUNCH bash "$S/clt.sbatch" >"$TMP/clt.log" 2>&1 && [ -f "$TMP/out/clt/eval.json" ] \
  && grep -q '"features": *128' "$TMP/out/clt/eval.json" && ok "slurm_clt (launcher: ${LAUNCH:-none})" \
  || fail slurm_clt "$(tail -5 "$TMP/clt.log")"

for j in 0 1; do SLURM_ARRAY_TASK_ID=$j SLURM_ARRAY_TASK_COUNT=2 bash "$S/feat.sbatch" >"$TMP/feat$j.log" 2>&1 & done
rc=0; for j in 0 1; do wait -n || rc=1; done
[ $rc -eq 0 ] && [ -f "$TMP/out/feat-parts/part1/features.bin" ] && ok slurm_feat_array \
  || fail slurm_feat_array "$(tail -3 "$TMP"/feat*.log)"
POST_JOBS=2 bash "$S/post.sbatch" >"$TMP/post.log" 2>&1 && [ -s "$TMP/out/graphs/lily.html" ] \
  && [ -s "$TMP/out/explanations.jsonl" ] && [ -f "$TMP/out/features/features.bin" ] && ok slurm_post \
  || fail slurm_post "$(tail -5 "$TMP/post.log")"
read -r -d '' -a A <<< "$MAKE_ARGS"
redo=$(make -s -n -f "$ROOT/pipelines/llama1b.mk" "${A[@]}" SHARDS=3 FEAT_SHARDS=2 2>&1)
[ -z "$redo" ] && ok slurm_same_as_make || fail slurm_same_as_make "make would redo: ${redo:0:300}"

# submit.sh: four jobs chained by afterok, arrays sized by SHARDS and FEAT_SHARDS
cat > "$TMP/fake/sbatch" <<'SH'
#!/usr/bin/env bash
n=$(( $(wc -l < "$SBATCH_LOG") + 101 ))
echo "$* " >> "$SBATCH_LOG"
echo "$n"
SH
chmod +x "$TMP/fake/sbatch"; : > "$TMP/sbatch.log"
out=$(PATH="$TMP/fake:$PATH" SBATCH_LOG="$TMP/sbatch.log" bash "$S/submit.sh" --partition=p 2>"$TMP/submit.err")
if [ "$out" = "acts 101  clt 102  feat 103  post 104" ] \
  && grep -qE -- '^--parsable --partition=p --array=0-2 .*/acts\.sbatch $' <(sed -n 1p "$TMP/sbatch.log") \
  && grep -qE -- '--dependency=afterok:101 .*/clt\.sbatch $' <(sed -n 2p "$TMP/sbatch.log") \
  && grep -qE -- '--dependency=afterok:102 --array=0-1 .*/feat\.sbatch $' <(sed -n 3p "$TMP/sbatch.log") \
  && grep -qE -- '--dependency=afterok:103 .*/post\.sbatch $' <(sed -n 4p "$TMP/sbatch.log"); then ok slurm_submit
else fail slurm_submit "$out / $(cat "$TMP/submit.err" "$TMP/sbatch.log")"; fi
