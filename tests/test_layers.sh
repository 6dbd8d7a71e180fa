#!/usr/bin/env bash
# The library's layering (ARCHITECTURE.md, "Layers"): the folders of LAYER_DIRS in the Makefile,
# bottom up. Every #include "x.h" in a library file (.c, .h, .cu) names a header of its own folder
# or of a folder before it, never one after it, and never a header outside the layers (tools/,
# tests/). Since each folder is on the include path and an include names the header alone, header
# names must be unique across the folders, and no library file may sit outside them.
source "$(dirname "$0")/lib.sh"

# check_layers ROOT DIR...: prints one line per violation, nothing when the tree holds the rules.
check_layers() {
  local root=$1; shift
  (cd "$root" && awk -v dirs="$*" '
    BEGIN {
      n = split(dirs, d, " ")
      for (i = 1; i <= n; i++) {
        cmd = "find " d[i] " -maxdepth 1 -type f \\( -name \"*.h\" -o -name \"*.c\" -o -name \"*.cu\" \\)"
        while ((cmd | getline f) > 0) {
          files[f] = i
          if (f ~ /\.h$/) {
            b = f; sub(/.*\//, "", b)
            if (b in rank) print f ": header name also in " where[b]
            rank[b] = i; where[b] = f
          }
        }
        close(cmd)
      }
      for (f in files) {
        while ((getline line < f) > 0) {
          if (line !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
          h = line; sub(/^[^"]*"/, "", h); sub(/".*/, "", h)
          if (h ~ /\//) print f ": #include \"" h "\" names a path (the folders are on the include path)"
          else if (!(h in rank)) print f ": #include \"" h "\" is in no layer"
          else if (rank[h] > files[f])
            print f ": #include \"" h "\" reaches up to " d[rank[h]] " from " d[files[f]]
        }
        close(f)
      }
    }' | sort)
}

layers=$(make -s -C "$ROOT" NO_CUDA=1 NO_MPI=1 NO_BLAS=1 print-layers 2>/dev/null | sed -n 's/^layers: //p')
if [ -z "$layers" ]; then fail layers_listed "make print-layers printed no layers"; exit 0; fi
ok layers_listed

# every library file lies in a listed folder (libcommon/ has no loose files, no unlisted folder)
stray=""
for f in "$ROOT"/libcommon/*; do
  rel=${f#"$ROOT"/}
  case " $layers " in *" $rel "*) continue ;; esac
  stray="$stray $rel"
done
[ -z "$stray" ] && ok layers_every_folder_listed || fail layers_every_folder_listed "not in LAYER_DIRS:$stray"

bad=$(check_layers "$ROOT" $layers)
[ -z "$bad" ] && ok layers_include_order || fail layers_include_order "$(printf '%s\n' "$bad" | head -10)"

# the check itself catches each kind of violation (a tree made to break every rule once)
mkdir -p "$TMP/t/lo" "$TMP/t/hi"
printf '#include "hi.h"\n#include "lo.h"\n' > "$TMP/t/lo/lo.h"
printf '#include "lo.h"\n#include "tools.h"\n#include "lo/lo.h"\n' > "$TMP/t/hi/hi.c"
printf '' > "$TMP/t/hi/hi.h"; printf '' > "$TMP/t/hi/lo.h"
bad=$(check_layers "$TMP/t" lo hi)
want='hi/hi.c: #include "lo/lo.h" names a path|hi/hi.c: #include "tools.h" is in no layer'
want="$want"'|hi/lo.h: header name also in|lo/lo.h: #include "hi.h" reaches up to hi from lo'
[ "$(printf '%s\n' "$bad" | grep -cE "^($want)")" -ge 4 ] && ok layers_check_catches \
  || fail layers_check_catches "on a broken tree it printed: $bad"
