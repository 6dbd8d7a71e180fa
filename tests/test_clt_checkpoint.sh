#!/usr/bin/env bash
# clt-fit checkpoints as one set (checkpoint.json manifest, staged directory switched in; an
# interrupted switch is finished by --resume, orphaned temporary files removed), strict train-state
# metadata, checkpoints on a time cadence and on SIGTERM, `--resume -o DIR` from run.json with
# changed settings refused unless --override, and the metrics log cut back to the checkpoint.
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
FIT=$BIN/clt-fit
"$FIT" synth -o "$TMP/a.acts" --layers 3 --d 16 --features 32 --tokens 16384 >/dev/null
"$FIT" synth -o "$TMP/b.acts" --layers 3 --d 16 --features 32 --tokens 16384 --data-seed 7 >/dev/null
ARGS=(--features 32 --batch 64 --lr 3e-3 --lambda 0.1 --log-every 10 --seed 1)
st_step() {  # the step in DIR's train state
  "$PY" -c 'import json,struct,sys; r=open(sys.argv[1]+"/train_state.safetensors","rb").read(); n=struct.unpack("<Q",r[:8])[0]; print(json.loads(r[8:8+n])["__metadata__"]["step"])' "$1"
}

# --- a mixture of two checkpoints is refused --------------------------------------------------
"$FIT" -o "$TMP/s10" "${ARGS[@]}" --steps 60 --run-steps 10 "$TMP/a.acts" 2>/dev/null
"$FIT" -o "$TMP/s20" "${ARGS[@]}" --steps 60 --run-steps 20 "$TMP/a.acts" 2>/dev/null
[ -s "$TMP/s10/checkpoint.json" ] && [ -s "$TMP/s10/run.json" ] && [ "$(st_step "$TMP/s10")" = 10 ] \
  && ok ckpt_files || fail ckpt_files "$(ls -a "$TMP/s10")"
"$FIT" eval "$TMP/s10" "$TMP/a.acts" >/dev/null 2>&1 && ok ckpt_eval_loads || fail ckpt_eval_loads "eval of a complete checkpoint failed"
cp -r "$TMP/s10" "$TMP/mix" && cp "$TMP/s20/W_enc_0.safetensors" "$TMP/s20/W_dec_0.safetensors" "$TMP/mix/"
expect_error ckpt_mixture_refused "W_(enc|dec)_0.safetensors: does not match checkpoint.json" "$FIT" eval "$TMP/mix" "$TMP/a.acts"
cp -r "$TMP/s10" "$TMP/extra" && cp "$TMP/s10/W_enc_2.safetensors" "$TMP/extra/W_enc_3.safetensors"
expect_error ckpt_unlisted_refused "W_enc_3.safetensors: not part of the checkpoint" "$FIT" eval "$TMP/extra" "$TMP/a.acts"

# --- killed in the middle of the switch: readers refuse, --resume finishes it ------------------
# (the state a kill between the file moves leaves: step 20's set committed in .cltkit-commit, two
# of its files already moved over step 10's)
cp -r "$TMP/s10" "$TMP/half" && mkdir "$TMP/half/.cltkit-commit" && cp "$TMP/s20"/* "$TMP/half/.cltkit-commit/"
mv "$TMP/half/.cltkit-commit/W_enc_0.safetensors" "$TMP/half/.cltkit-commit/W_dec_0.safetensors" "$TMP/half/"
expect_error ckpt_half_switch_refused "a checkpoint switch was interrupted" "$FIT" eval "$TMP/half" "$TMP/a.acts"
touch "$TMP/half/W_enc_1.safetensors.tmp.4194301" "$TMP/half/config.yaml.tmp.4194302"
mkdir "$TMP/half/.cltkit-staging.4194303" && touch "$TMP/half/.cltkit-staging.4194303/W_enc_0.safetensors"
err=$("$FIT" -o "$TMP/half" --resume --run-steps 1 2>&1 >/dev/null)
if printf '%s' "$err" | grep -q "removed 3 orphaned" && printf '%s' "$err" | grep -q "resuming at step 20" \
  && [ "$(st_step "$TMP/half")" = 21 ] && [ -z "$(ls -A "$TMP/half" | grep -E 'tmp|cltkit')" ]
then ok ckpt_resume_finishes_switch; else fail ckpt_resume_finishes_switch "$err / $(ls -A "$TMP/half")"; fi

# --- train-state metadata parsed strictly --------------------------------------------------------
i=0
for bad in 'epoch=-1' 'step=abc' 'batch=15x' 'pool=99999999999999999999' 'step=' 'L=0'; do
  i=$((i + 1))
  rm -rf "$TMP/meta" && cp -r "$TMP/s10" "$TMP/meta" && rm "$TMP/meta/checkpoint.json"
  "$PY" - "$TMP/meta/train_state.safetensors" "${bad%%=*}" "${bad#*=}" <<'PYEOF'
import json, struct, sys
path, key, val = sys.argv[1:]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n]); head["__metadata__"][key] = val
h = json.dumps(head).encode(); h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PYEOF
  expect_error "ckpt_meta_strict_$i" "train_state.safetensors: metadata \"${bad%%=*}\" = \"[^\"]*\" is not an integer in" \
    "$FIT" -o "$TMP/meta" --resume --run-steps 1
done

# --- SIGTERM: the step finishes, a checkpoint is saved, `--resume -o DIR` alone continues it, and
# the result is bit-identical to an uninterrupted run; the metrics log has each step once ------
LONG=(--features 32 --batch 64 --lr 3e-3 --lambda 0.1 --log-every 5 --seed 2 --steps 3000)
"$FIT" -o "$TMP/full" "${LONG[@]}" "$TMP/a.acts" 2>/dev/null
wait_rows() { for _ in $(seq 200); do [ -s "$1" ] && return; sleep 0.05; done; }
"$FIT" -o "$TMP/term" "${LONG[@]}" "$TMP/a.acts" 2>"$TMP/term.err" & pid=$!
wait_rows "$TMP/term/metrics.jsonl"; kill -TERM $pid; wait $pid; rc=$?
if [ $rc = 143 ] && grep -q "stopped by SIGTERM; checkpoint at step [0-9]* in" "$TMP/term.err" && [ "$(st_step "$TMP/term")" -lt 3000 ]
then ok ckpt_sigterm_saves; else fail ckpt_sigterm_saves "exit $rc, step $(st_step "$TMP/term" 2>&1): $(cat "$TMP/term.err")"; fi
"$FIT" -o "$TMP/term" --resume 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/full" "$TMP/term" 0 2>&1); then ok ckpt_sigterm_resume_bit_identical
else fail ckpt_sigterm_resume_bit_identical "$out"; fi
# --- SIGTERM after a checkpoint was written: the atomic writers' signal cleanup (fileio.c) chains
# to clt-fit's handler, so the step still finishes and saves (it used to kill the run unsaved) --
"$FIT" -o "$TMP/term2" "${LONG[@]}" --save-interval 0.05 "$TMP/a.acts" 2>"$TMP/term2.err" & pid=$!
for _ in $(seq 200); do [ -s "$TMP/term2/checkpoint.json" ] && break; sleep 0.05; done
sleep 0.2; kill -TERM $pid; wait $pid; rc=$?
if [ $rc = 143 ] && grep -q "stopped by SIGTERM; checkpoint at step [0-9]* in" "$TMP/term2.err" \
   && ! ls "$TMP/term2" | grep -q '\.tmp\.'
then ok ckpt_sigterm_after_save; else fail ckpt_sigterm_after_save "exit $rc: $(tail -c 300 "$TMP/term2.err")"; fi
# --- SIGKILL after a time-cadence checkpoint: resumable, metrics cut back to the checkpoint ----
"$FIT" -o "$TMP/kill" "${LONG[@]}" --save-interval 0.05 "$TMP/a.acts" 2>/dev/null & pid=$!
wait_rows "$TMP/kill/metrics.jsonl"; sleep 0.3; kill -KILL $pid; wait $pid 2>/dev/null
k=$(st_step "$TMP/kill" 2>/dev/null || echo none)
[ "$k" != none ] && [ "$k" -gt 0 ] && [ "$k" -lt 3000 ] && ok ckpt_time_cadence || fail ckpt_time_cadence "state step $k"
"$FIT" -o "$TMP/kill" --resume 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/full" "$TMP/kill" 0 2>&1) && "$PY" - "$TMP/kill/metrics.jsonl" "$TMP/full/metrics.jsonl" <<'PYEOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
steps = [r["step"] for r in a]
assert steps == sorted(set(steps)), "repeated or unordered steps"
assert steps[-1] == 3000 and len(steps) >= len(b) - 1, (steps[-1], len(steps), len(b))
assert all(r["time_s"] >= 0 for r in a) and a[-1]["time_s"] >= a[0]["time_s"]
PYEOF
then ok ckpt_kill_resume_metrics; else fail ckpt_kill_resume_metrics "$out"; fi

# --- the run's settings: changes refused unless --override; other shards refused ---------------
expect_error ckpt_changed_lr_refused "--lr 0.00100000005 differs from the run's 0.00300000003 .*run.json.*--override lr" \
  "$FIT" -o "$TMP/s10" --resume --lr 1e-3
expect_error ckpt_changed_activation_refused "--activation \"batchtopk\" differs from the run's \"jumprelu\"" \
  "$FIT" -o "$TMP/s10" --resume --activation batchtopk
expect_error ckpt_other_shard_refused "b.acts: not the run's shard 0 .*--override shards" "$FIT" -o "$TMP/s10" --resume "$TMP/b.acts"
expect_error ckpt_bad_override "--override: 'nope' is not a training setting" "$FIT" -o "$TMP/s10" --resume --override nope
expect_error ckpt_override_needs_resume "--override goes with --resume" "$FIT" -o "$TMP/s10" --override lr "$TMP/a.acts"
cp -r "$TMP/s10" "$TMP/ovr"
if "$FIT" -o "$TMP/ovr" --resume --override lr,shards --lr 1e-3 --run-steps 5 "$TMP/b.acts" 2>/dev/null \
  && "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); s=r["settings"]; assert abs(s["lr"]-1e-3)<1e-9 and s["steps"]==60 and r["shards"][0]["path"].endswith("b.acts"), r' "$TMP/ovr/run.json" \
  && [ "$(st_step "$TMP/ovr")" = 15 ]
then ok ckpt_override_accepted; else fail ckpt_override_accepted "$(cat "$TMP/ovr/run.json")"; fi
# the same settings given again are fine, operational ones may change freely
"$FIT" -o "$TMP/s10" --resume --lr 3e-3 --log-every 7 --run-steps 2 "$TMP/a.acts" 2>/dev/null && ok ckpt_same_settings_accepted \
  || fail ckpt_same_settings_accepted "refused"
