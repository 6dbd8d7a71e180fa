// clt_report.h — a self-contained HTML report of clt-fit training runs: inline-SVG charts of the
// metrics JSONL (loss terms, NMSE and L0 per layer — a layer × step heatmap past 8 layers —, dead
// features, λ and learning-rate schedules, tokens/s) with axes, ticks, legends, titles and each
// point's value (and wall-clock time) on hover, tables of the final values, the run's settings
// (run.json beside the log) and held-out results (eval.json beside it, from `clt-fit eval -o`).
// Only what the run's mode has is drawn (TopK runs: no sparsity terms, no λ, one L0 line).
// Several logs are overlaid, one line per run, and their settings compared. No scripts, no
// external resources; the file is well-formed XML (XHTML syntax), so it parses with any XML parser.
#pragma once
#include "err.h"

// Reads the metrics logs (one JSON object per line, as clt-fit writes it; a resumed run that
// logged a step again supersedes the earlier rows from that step on) and writes the report to
// out_path ("-": stdout), atomically. Each chart is an <svg> with id "chart-<metric>": loss,
// nmse, l0, dead, lambda, lr, tokens_per_s (left out when the mode or the log lacks it). With
// refresh_s > 0 and a run still training (its last step short of run.json's steps), the page
// reloads itself every refresh_s seconds. *running (may be NULL): whether one is.
int clt_report_write(const char *const *metrics_paths, int n_runs, const char *out_path, int refresh_s, int *running,
                     Error *e);
// A resume from the checkpoint of step `step`: the log keeps its rows up to that step and drops
// the later ones (and a line cut off by a kill), rewritten atomically. A missing log is fine.
int clt_metrics_truncate(const char *metrics_path, long long step, Error *e);
