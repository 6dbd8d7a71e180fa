// tools/clt-fit/cmds.h — the clt-fit subcommands other than training: argument parsing and
// output for `synth`, `eval`, `eval-synth` and `report` (the work is in libcommon's clt_synth.c,
// clt_eval.c, clt_report.c). Kept out of tools/clt-fit.c so the trainer's file stays about
// training, and out of libcommon because it is CLI code that exits (a tool's own file: the Makefile
// links tools/NAME/*.c into bin/NAME only); each takes argv with the subcommand name as argv[0]
// and returns the exit status (errors are fatal).
#pragma once

// The subcommand argv[1] names, run with argv + 1; -1 when argv[1] is not a subcommand.
int clt_cmds_dispatch(int argc, char **argv);
