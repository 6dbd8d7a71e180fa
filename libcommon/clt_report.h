// clt_report.h — a self-contained HTML report of a clt-fit training run: one inline-SVG line
// chart per metric of the metrics JSONL (loss terms, NMSE per layer, L0 per layer, dead features,
// λ and learning-rate schedules, tokens/s), with axes, ticks, legends and titles, and a table of
// the final values. No scripts, no external resources; the file is well-formed XML (XHTML
// syntax), so it opens anywhere and parses with any XML parser.
#pragma once
#include "err.h"

// Reads metrics_path (one JSON object per line, as clt-fit writes it; a resumed run that logged
// a step again supersedes the earlier rows from that step on) and writes the report to out_path
// ("-": stdout), atomically. Each chart is an <svg> with id "chart-<metric>": loss, nmse, l0,
// dead, lambda, lr, tokens_per_s (a chart whose metric never appears is left out).
int clt_report_write(const char *metrics_path, const char *out_path, Error *e);
// A resume from the checkpoint of step `step`: the log keeps its rows up to that step and drops
// the later ones (and a line cut off by a kill), rewritten atomically. A missing log is fine.
int clt_metrics_truncate(const char *metrics_path, long long step, Error *e);
