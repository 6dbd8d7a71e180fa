#!/usr/bin/env bash
# make fuzz-smoke: every fuzz target for SECONDS from its committed seeds (fuzz/corpus/<name>, if
# any) plus a scratch corpus, with its dictionary if there is one. Fails on the first crash,
# sanitizer report or leak (the crashing input is left in fuzz/).
set -u
cd "$(dirname "$0")/.."
secs=${1:-20} dir=${2:-build/fuzz}
status=0
for bin in "$dir"/fuzz_*; do
  case $bin in *.d|*.o) continue ;; esac
  name=$(basename "$bin"); name=${name#fuzz_}
  scratch=$(mktemp -d)
  seeds=(); [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
  dict=(); [ -f "fuzz/$name.dict" ] && dict=("-dict=fuzz/$name.dict")
  if out=$("$bin" -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix=fuzz/ "${dict[@]}" "$scratch" \
      "${seeds[@]}" 2>&1); then
    echo "ok fuzz_$name: $(printf '%s\n' "$out" | grep -Eo 'Done [0-9]+ runs' | tail -1) in ${secs} s"
  else
    echo "FAIL fuzz_$name"; printf '%s\n' "$out" | grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' | head -20
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
