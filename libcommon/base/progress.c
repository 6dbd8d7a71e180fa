#include "progress.h"

#include <stdarg.h>
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
    p->done = p->first = 0;
    p->start_s = p->last_draw_s = now_seconds();
    p->enabled = isatty(STDERR_FILENO);
    p->metric[0] = 0;
}

void progress_metric(Progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->metric, sizeof p->metric, fmt, ap);
    va_end(ap);
}

// A count as shown: an integer for plain units, one decimal for scaled ones (MB).
static int fmt_count(char *buf, size_t n, uint64_t v, double scale) {
    if (scale == 1) return snprintf(buf, n, "%llu", (unsigned long long)v);
    return snprintf(buf, n, "%.1f", (double)v / scale);
}

// Seconds as 42s, 3m07s or 2h05m.
static void fmt_eta(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, n, "%lds", t);
    else if (t < 3600) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
}

int progress_format(const Progress *p, double elapsed, char *buf, size_t n) {
    uint64_t run = p->done > p->first ? p->done - p->first : 0;  // counted in this run
    double rate = elapsed > 0 ? (double)run / p->scale / elapsed : 0;
    char done[32], total[32], rate_s[32], eta[32] = "";
    fmt_count(done, sizeof done, p->done, p->scale);
    // a rate is a measurement: integers from 100 up, else 3 significant digits
    snprintf(rate_s, sizeof rate_s, rate >= 100 ? "%.0f" : "%.3g", rate);
    const char *sep = p->metric[0] ? "  " : "";
    if (!p->total)
        return snprintf(buf, n, "%s %s %s  %s %s/s%s%s", p->label, done, p->unit, rate_s, p->unit, sep, p->metric);
    double frac = (double)p->done / (double)p->total;
    if (frac > 1) frac = 1;
    int width = 20, filled = (int)(frac * width);
    char bar[21];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fmt_count(total, sizeof total, p->total, p->scale);
    if (p->done < p->total && run > 0) {
        char t[24];
        fmt_eta(t, sizeof t, elapsed * (double)(p->total - p->done) / (double)run);
        snprintf(eta, sizeof eta, "  ETA %s", t);
    }
    return snprintf(buf, n, "%s [%s] %3d%%  %s/%s %s  %s %s/s%s%s%s", p->label, bar, (int)(100 * frac), done, total,
                    p->unit, rate_s, p->unit, eta, sep, p->metric);
}

static void progress_draw(Progress *p, double now) {
    char line[512];
    progress_format(p, now - p->start_s, line, sizeof line);
    // \033[K clears what a longer previous line left behind
    fprintf(stderr, "\r%s\033[K", line);
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
