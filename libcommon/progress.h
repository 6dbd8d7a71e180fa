// progress.h — a progress bar on stderr, drawn only when stderr is a terminal (so logs and pipes
// stay clean), at most 10 times a second: done/total, rate in units/s, and ETA.
#pragma once
#include <stdint.h>

typedef struct {
    const char *label;  // e.g. "encode"
    const char *unit;   // e.g. "MB"
    double scale;       // divide counts by this for display (1e6 for MB)
    uint64_t total;     // 0 when unknown (no ETA, no percentage)
    uint64_t done;
    double start_s, last_draw_s;
    int enabled;
} Progress;

void progress_init(Progress *p, const char *label, const char *unit, double scale, uint64_t total);
void progress_update(Progress *p, uint64_t done);
void progress_finish(Progress *p);  // final line and newline
double now_seconds(void);           // monotonic clock
