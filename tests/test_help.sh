#!/usr/bin/env bash
# Every tool's --help documents every long option its parser takes (the `struct option` tables
# in tools/*.c), exits 0 and prints no printf escapes (a literal "%%" means a format string was
# printed as text).
source "$(dirname "$0")/lib.sh"
for src in "$ROOT"/tools/*.c; do
  t=$(basename "$src" .c)
  help=$("$BIN/$t" --help 2>&1); rc=$?
  missing=$(grep -oE '\{"[a-z0-9-]+", (required|no|optional)_argument' "$src" | cut -d'"' -f2 | sort -u |
    while read -r opt; do printf '%s\n' "$help" | grep -q -- "--$opt" || printf ' --%s' "$opt"; done)
  if [ $rc -ne 0 ]; then fail "help_$t" "exit $rc"
  elif [ -n "$missing" ]; then fail "help_$t" "not in --help:$missing"
  elif printf '%s' "$help" | grep -q '%%'; then fail "help_$t" "a literal %% in --help"
  else ok "help_$t"; fi
done
