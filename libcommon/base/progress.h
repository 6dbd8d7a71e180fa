// progress.h — the one progress style of every tool: a bar on stderr, drawn only when stderr is a
// terminal (so logs and pipes stay clean), at most 10 times a second:
//   label [#####.....]  45%  1234/2740 tok  812 tok/s  ETA 2s  loss 0.0123
// Counts are integers (one decimal only for a scaled unit such as MB); the percentage, total and
// ETA appear when the total is known; the key metric (clt-fit's loss, a phase's name) is a free
// text after them. The last line drawn by progress_finish shows the final count, which is what the
// tool's summary line reports.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *label;  // e.g. "encode"
    const char *unit;   // e.g. "MB"
    double scale;       // divide counts by this for display (1e6 for MB); 1: integer counts
    uint64_t total;     // 0 when unknown (no ETA, no percentage)
    uint64_t done;
    uint64_t first;     // the count this run started from (a resumed run): the rate and ETA use done - first
    double start_s, last_draw_s;
    int enabled;
    char metric[64];    // the key metric, "" for none (progress_metric)
} Progress;

void progress_init(Progress *p, const char *label, const char *unit, double scale, uint64_t total);
void progress_update(Progress *p, uint64_t done);
// Sets the key metric shown after the rate (printf-style, truncated to 63 bytes); "" clears it.
void progress_metric(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_finish(Progress *p);  // final line and newline
// Renders the line (without the leading carriage return) as it would be drawn elapsed_s seconds
// after the start, into buf; returns what snprintf returns. The drawing and the tests use this.
int progress_format(const Progress *p, double elapsed_s, char *buf, size_t n);
double now_seconds(void);           // monotonic clock
