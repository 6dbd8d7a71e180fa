#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(Progress *p, const char *label, const char *unit, double scale, uint64_t total) {
    p->label = label;
    p->unit = unit;
    p->scale = scale > 0 ? scale : 1;
    p->total = total;
    p->done = 0;
    p->start_s = p->last_draw_s = now_seconds();
    p->enabled = isatty(STDERR_FILENO);
}

static void progress_draw(Progress *p, double now) {
    double elapsed = now - p->start_s;
    double shown = (double)p->done / p->scale;
    double rate = elapsed > 0 ? shown / elapsed : 0;
    if (p->total) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        int width = 30, filled = (int)(frac * width);
        char bar[31];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
        fprintf(stderr, "\r%s [%s] %5.1f%% %.1f/%.1f %s  %.2f %s/s  ETA %.0fs   ", p->label, bar,
                100 * frac, shown, (double)p->total / p->scale, p->unit, rate, p->unit, eta);
    } else {
        fprintf(stderr, "\r%s %.1f %s  %.2f %s/s   ", p->label, shown, p->unit, rate, p->unit);
    }
    fflush(stderr);
}

void progress_update(Progress *p, uint64_t done) {
    p->done = done;
    if (!p->enabled) return;
    double now = now_seconds();
    if (now - p->last_draw_s < 0.1) return;
    p->last_draw_s = now;
    progress_draw(p, now);
}

void progress_finish(Progress *p) {
    if (!p->enabled) return;
    progress_draw(p, now_seconds());
    fputc('\n', stderr);
}
