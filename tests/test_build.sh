#!/usr/bin/env bash
# The build (issue 11): CFLAGS given on the make command line replaces only the optimisation and
# debug choice, never the flags the code needs; -O1 (whose extra warnings differ from -O2's)
# compiles cleanly under -Werror.
source "$(dirname "$0")/lib.sh"
cmd=$(make -s -n -B -C "$ROOT" NO_CUDA=1 NO_MPI=1 CFLAGS=-O1 build/libcommon/base/err.o 2>/dev/null |
  grep -- '-c libcommon/base/err.c')
missing=""
# (every layer folder on the include path: the first, kernels/ and the last)
for f in -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -Ilibcommon/base -Ikernels -Ilibcommon/attrib \
    -MMD; do
  case " $cmd " in *" $f "*) ;; *) missing="$missing $f" ;; esac
done
[ -n "$cmd" ] && [ -z "$missing" ] && ok build_cflags_keep_required || fail build_cflags_keep_required "missing:$missing in: $cmd"
cmd=$(make -s -n -B -C "$ROOT" NO_CUDA=1 NO_MPI=1 CFLAGS=-O1 build/kernels/actquant.o 2>/dev/null | grep -- '-c kernels/actquant.c')
case " $cmd " in *" -O3 "*" -Werror "*|*" -Werror "*" -O3 "*) ok build_cflags_keep_per_file ;;
  *) fail build_cflags_keep_per_file "actquant.o lost -O3 or -Werror: $cmd" ;; esac
# -O1 -Werror on the file whose format-truncation warning only -O1 raised
CC=${CC:-cc}
incs=$(make -s -C "$ROOT" NO_CUDA=1 NO_MPI=1 print-layers 2>/dev/null | sed -n 's#^layers: ##p' |
  sed "s#[^ ]*#-I$ROOT/&#g")
if "$CC" -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $incs \
    -c "$ROOT/tests/test_smollm2.c" -o "$TMP/o1.o" 2>"$TMP/o1.err"; then ok build_O1_werror
else fail build_O1_werror "$(head -3 "$TMP/o1.err")"; fi
# no machine-specific absolute paths in the sources and docs (issue 10): a venv is .venv-ref/...
hits=$(cd "$ROOT" && grep -rInE '/work/|/home/[a-z]|/Users/' --exclude-dir=.git --exclude-dir=build --exclude-dir=bin \
  --exclude-dir=build-san --exclude-dir=bin-san --exclude-dir=.venv-ref --exclude-dir=demo-out --exclude=.git --exclude=test_build.sh . | head -3)
[ -z "$hits" ] && ok build_no_absolute_paths || fail build_no_absolute_paths "$hits"
# lines within 120 columns in the C and CUDA sources (.clang-format; `clang-format -i --lines=N:N`
# rewraps one), except string literals, which are not broken, and the generated Unicode tables
long=$(cd "$ROOT" && git ls-files -co --exclude-standard 'libcommon/*' 'kernels/*' 'tools/*' 'tests/*' 'bench/*' |
  grep -E '\.(c|h|cu)$' | grep -v unicode_data.c | xargs python3 -c '
import sys
for f in sys.argv[1:]:
    for i, l in enumerate(open(f, encoding="utf-8"), 1):
        if len(l.rstrip("\n")) > 120 and "\"" not in l: print(f"{f}:{i}")' | head -3)
[ -z "$long" ] && ok build_lines_120 || fail build_lines_120 "longer than 120 columns: $long"
