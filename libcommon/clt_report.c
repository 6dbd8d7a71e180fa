// clt_report.c — see clt_report.h. The metrics become series (x = step), each chart picks a
// linear axis that includes 0 (schedules, counts) or a log axis (loss terms, NMSE, which span
// decades), and is drawn as an SVG with "nice" 1-2-5 ticks and a legend below the plot.
#include "clt_report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"

// ---- metrics rows ----------------------------------------------------------------------------

typedef struct {
    json_t **rows;
    size_t n, cap;
} Rows;

static void rows_free(Rows *r) {
    for (size_t i = 0; i < r->n; i++) json_decref(r->rows[i]);
    free(r->rows);
}

static int rows_read(Rows *r, const char *path, Error *e) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &lcap, f) != -1) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o || !json_is_object(o)) {
            rc = err_set(e, "%s:%ld: not a JSON object%s%s", path, lineno, o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            break;
        }
        json_t *st = json_object_get(o, "step");
        if (!json_is_number(st)) {
            rc = err_set(e, "%s:%ld: no \"step\" (not a clt-fit metrics file?)", path, lineno);
            json_decref(o);
            break;
        }
        // a resumed run that logs a step again replaces what was logged from that step on
        double s = json_number_value(st);
        while (r->n && json_number_value(json_object_get(r->rows[r->n - 1], "step")) >= s) json_decref(r->rows[--r->n]);
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 256;
            r->rows = xrealloc(r->rows, r->cap * sizeof *r->rows);
        }
        r->rows[r->n++] = o;
    }
    free(line);
    fclose(f);
    if (!rc && !r->n) rc = err_set(e, "%s: no metrics rows", path);
    if (rc) rows_free(r);
    return rc;
}

// Value of key (element idx of an array when idx >= 0) in every row; NAN where missing.
static int series_values(const Rows *r, const char *key, int idx, double *x, double *y) {
    int found = 0;
    for (size_t i = 0; i < r->n; i++) {
        json_t *v = json_object_get(r->rows[i], key);
        if (idx >= 0) v = json_is_array(v) ? json_array_get(v, (size_t)idx) : NULL;
        x[i] = json_number_value(json_object_get(r->rows[i], "step"));
        y[i] = json_is_number(v) ? json_number_value(v) : NAN;
        found |= json_is_number(v);
    }
    return found;
}

static int max_array_len(const Rows *r, const char *key) {
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++) {
        json_t *v = json_object_get(r->rows[i], key);
        if (json_is_array(v) && json_array_size(v) > m) m = json_array_size(v);
    }
    return m > 4096 ? 4096 : (int)m;
}

// ---- charts ----------------------------------------------------------------------------------

typedef struct {
    char name[64];
    double *x, *y;  // (n,) NAN = missing
    char color[8];
} Series;

typedef struct {
    const char *id, *title, *ylabel;
    int logy;
    Series *s;
    int ns;
    size_t n;
} Chart;

enum { W = 620, PL = 72, PR = 18, PT = 34, PH = 240, AXIS_H = 44, LEG_ROW = 18 };

static const char *const CATEGORICAL[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

// Colour i of n for ordered series (layers): categorical up to 10, else a viridis-like ramp.
static void ordered_color(char out[8], int i, int n) {
    if (n <= 10) {
        snprintf(out, 8, "%s", CATEGORICAL[i]);
        return;
    }
    static const int ramp[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {190, 210, 40}};
    double t = n > 1 ? 4.0 * i / (n - 1) : 0;
    int k = t >= 4 ? 3 : (int)t;
    double f = t - k;
    int c[3];
    for (int j = 0; j < 3; j++) c[j] = (int)lround(ramp[k][j] + f * (ramp[k + 1][j] - ramp[k][j]));
    snprintf(out, 8, "#%02x%02x%02x", c[0] & 255, c[1] & 255, c[2] & 255);
}

// Compact tick label: SI suffixes for large values, short exponents for small ones.
static void fmt_num(char *buf, size_t n, double v) {
    double a = fabs(v);
    if (a == 0) {
        snprintf(buf, n, "0");
    } else if (a >= 1e4 && a < 1e15) {
        static const char sfx[] = "kMGT";
        int k = 0;
        double u = 1e3;
        while (a >= u * 1e3 && k < 3) { u *= 1e3; k++; }
        snprintf(buf, n, "%.4g%c", v / u, sfx[k]);
    } else if (a < 1e-3 || a >= 1e15) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.2g", v);  // "1e-05" -> "1e-5"
        char *x = strchr(tmp, 'e');
        if (x && (x[1] == '-' || x[1] == '+')) {
            char *d = x + 2;
            while (*d == '0' && d[1]) memmove(d, d + 1, strlen(d));
            if (x[1] == '+') memmove(x + 1, x + 2, strlen(x + 2) + 1);
        }
        snprintf(buf, n, "%s", tmp);
    } else {
        snprintf(buf, n, "%.4g", v);
    }
}

static void xml_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
            case '&': fputs("&amp;", f); break;
            case '<': fputs("&lt;", f); break;
            case '>': fputs("&gt;", f); break;
            case '"': fputs("&quot;", f); break;
            default: fputc(*s, f);
        }
    }
}

typedef struct {
    double lo, hi;  // domain (log10 of it on a log axis)
    int log;
    double ticks[64];
    int nt;
} Axis;

static double nice_step(double span, int target) {
    double raw = span / target, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

// A linear axis over [lo, hi] (including 0 when zero_base), widened to whole ticks.
static void axis_linear(Axis *a, double lo, double hi, int zero_base) {
    a->log = 0;
    if (zero_base) {
        if (lo > 0) lo = 0;
        if (hi < 0) hi = 0;
    }
    if (!(hi - lo > 1e-12 * fmax(1.0, fabs(hi)))) {  // constant: give it room
        double pad = fabs(hi) > 0 ? 0.1 * fabs(hi) : 1.0;
        hi += pad;
        if (!zero_base || lo != 0) lo -= pad;
    }
    double st = nice_step(hi - lo, 5);
    long k0 = (long)floor(lo / st + 1e-9), k1 = (long)ceil(hi / st - 1e-9);
    a->lo = k0 * st;
    a->hi = k1 * st;
    a->nt = 0;
    for (long k = k0; k <= k1 && a->nt < 64; k++) a->ticks[a->nt++] = k * st;
}

// A log axis over [lo, hi] (both > 0): ticks at 1-2-5, 1…9 or whole decades (the first family
// that gives 3 to 12 ticks), the domain widened to grid values just outside the data.
static void axis_log(Axis *a, double lo, double hi) {
    a->log = 1;
    double l = log10(lo), h = log10(hi);
    if (h - l < 0.3) {  // less than a factor 2: centre a factor-2 window
        double mid = 0.5 * (l + h);
        l = mid - 0.15;
        h = mid + 0.15;
    }
    static const double m125[] = {1, 2, 5}, m19[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, m1[] = {1};
    const double *ms[3] = {m125, m19, m1};
    int nms[3] = {3, 9, 1}, order[3] = {0, 1, 2};
    int d0 = (int)floor(l) - 1, d1 = (int)ceil(h) + 1, decades = d1 - d0 - 2;
    if (decades > 4) order[0] = 2, order[1] = 0, order[2] = 1;
    // the domain snaps to the 1…9 grid when it spans few decades (little wasted height), else to
    // the tick family itself
    for (int o = 0; o < 3; o++) {
        int f = order[o], fb = decades <= 4 ? 1 : f;
        const double *m = ms[f];
        int stride = m == m1 && decades > 10 ? (decades + 9) / 10 : 1;
        double lo_t = l, hi_t = h;  // the bounds just outside the data, if any
        int have_lo = 0, have_hi = 0;
        for (int dcd = d0; dcd <= d1; dcd++) {
            if (ms[fb] == m1 && dcd % stride) continue;
            for (int j = 0; j < nms[fb]; j++) {
                double v = log10(ms[fb][j]) + dcd;
                if (v <= l + 1e-9 && (!have_lo || v > lo_t)) lo_t = v, have_lo = 1;
                if (v >= h - 1e-9 && !have_hi) hi_t = v, have_hi = 1;
            }
        }
        a->lo = lo_t;
        a->hi = hi_t;
        a->nt = 0;
        for (int dcd = d0; dcd <= d1 && a->nt < 64; dcd++) {
            if (m == m1 && dcd % stride) continue;
            for (int j = 0; j < nms[f] && a->nt < 64; j++) {
                double v = log10(m[j]) + dcd;
                if (v >= lo_t - 1e-9 && v <= hi_t + 1e-9) a->ticks[a->nt++] = v;
            }
        }
        if (a->nt >= 3 && a->nt <= 12) break;
    }
}

static double axis_pos(const Axis *a, double v, double p0, double p1) {
    double t = ((a->log ? log10(v) : v) - a->lo) / (a->hi - a->lo);
    return p0 + t * (p1 - p0);
}

// Room a legend entry takes: the line sample and its name (≈6.2 px per character at 11 px).
static double legend_width(const char *name) {
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) chars += (*p & 0xC0) != 0x80;  // UTF-8 code points
    return 40 + 6.2 * (double)chars;
}

static void chart_svg(FILE *f, const Chart *c) {
    // data ranges (log axes see only positive values)
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->ns; s++)
        for (size_t i = 0; i < c->n; i++) {
            double x = c->s[s].x[i], y = c->s[s].y[i];
            if (!isfinite(x) || !isfinite(y) || (c->logy && y <= 0)) continue;
            xlo = fmin(xlo, x); xhi = fmax(xhi, x); ylo = fmin(ylo, y); yhi = fmax(yhi, y);
        }
    int empty = !(ylo <= yhi);
    if (empty) xlo = 0, xhi = 1, ylo = c->logy ? 0.1 : 0, yhi = 1;
    Axis ax, ay;
    axis_linear(&ax, xlo, xhi, 1);
    if (c->logy) axis_log(&ay, ylo, yhi);
    else axis_linear(&ay, ylo, yhi, 1);

    // legend entries flow left to right below the axis label, each as wide as its name needs
    double *leg_x = xmalloc((size_t)(c->ns + 1) * sizeof(double));
    int *leg_row = xmalloc((size_t)(c->ns + 1) * sizeof(int)), leg_rows = 0;
    for (int s = 0, row = 0; s < c->ns && c->ns > 1; s++) {
        double at = s ? leg_x[s - 1] + legend_width(c->s[s - 1].name) : PL;
        if (s && at + legend_width(c->s[s].name) > W - PR) row++, at = PL;
        leg_x[s] = at;
        leg_row[s] = row;
        leg_rows = row + 1;
    }
    int H = PT + PH + AXIS_H + leg_rows * LEG_ROW + (leg_rows ? 6 : 0);
    double x0 = PL, x1 = W - PR, y0 = PT + PH, y1 = PT;  // plot box (y grows downwards)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-%s\" class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            c->id, W, H, W, H);
    fprintf(f, "<title>");
    xml_escape(f, c->title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"20\" class=\"t\">", W / 2);
    xml_escape(f, c->title);
    fprintf(f, "%s</text>\n", c->logy ? " (log scale)" : "");
    // grid, ticks and labels
    char lab[32];
    for (int i = 0; i < ay.nt; i++) {
        double y = y0 + (ay.ticks[i] - ay.lo) / (ay.hi - ay.lo) * (y1 - y0);
        fmt_num(lab, sizeof lab, ay.log ? pow(10, ay.ticks[i]) : ay.ticks[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"g\"/>", x0, y, x1, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"yl\">%s</text>\n", x0 - 6, y + 4, lab);
    }
    for (int i = 0; i < ax.nt; i++) {
        double x = x0 + (ax.ticks[i] - ax.lo) / (ax.hi - ax.lo) * (x1 - x0);
        fmt_num(lab, sizeof lab, ax.ticks[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"g\"/>", x, y0, x, y1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"a\"/>", x, y0, x, y0 + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%s</text>\n", x, y0 + 18, lab);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"box\"/>\n", x0, y1, x1 - x0, y0 - y1);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"al\">step</text>\n", 0.5 * (x0 + x1), y0 + 36);
    fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" class=\"al\">", 0.5 * (y0 + y1));
    xml_escape(f, c->ylabel);
    fprintf(f, "</text>\n");
    if (empty) fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"al\">no data</text>\n", 0.5 * (x0 + x1), 0.5 * (y0 + y1));
    // series: polylines broken at missing values, markers when the points are few
    for (int s = 0; s < c->ns; s++) {
        const Series *se = &c->s[s];
        size_t npts = 0;
        for (size_t i = 0; i < c->n; i++) npts += isfinite(se->y[i]) && !(c->logy && se->y[i] <= 0);
        fprintf(f, "<g stroke=\"%s\" fill=\"%s\"><title>", se->color, se->color);
        xml_escape(f, se->name);
        fprintf(f, "</title>\n");
        int open = 0;
        for (size_t i = 0; i <= c->n; i++) {
            int good = i < c->n && isfinite(se->y[i]) && !(c->logy && se->y[i] <= 0);
            if (good) {
                double px = axis_pos(&ax, se->x[i], x0, x1), py = axis_pos(&ay, se->y[i], y0, y1);
                fprintf(f, "%s%.1f,%.1f", open ? " " : "<polyline class=\"l\" points=\"", px, py);
                open = 1;
            } else if (open) {
                fprintf(f, "\"/>\n");
                open = 0;
            }
        }
        if (npts <= 40)
            for (size_t i = 0; i < c->n; i++)
                if (isfinite(se->y[i]) && !(c->logy && se->y[i] <= 0))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>", axis_pos(&ax, se->x[i], x0, x1), axis_pos(&ay, se->y[i], y0, y1));
        fprintf(f, "</g>\n");
    }
    // legend below the axis label
    for (int s = 0; s < c->ns && leg_rows; s++) {
        double lx = leg_x[s], ly = PT + PH + AXIS_H + leg_row[s] * LEG_ROW + 8;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>", lx, ly, lx + 18, ly,
                c->s[s].color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"lg\">", lx + 24, ly + 4);
        xml_escape(f, c->s[s].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    free(leg_x);
    free(leg_row);
}

// ---- the report ------------------------------------------------------------------------------

static void chart_add(Chart *c, const Rows *r, const char *key, int idx, const char *name, const char *color) {
    Series *s = &c->s[c->ns];
    s->x = xmalloc(r->n * sizeof(double));
    s->y = xmalloc(r->n * sizeof(double));
    if (!series_values(r, key, idx, s->x, s->y)) {
        free(s->x);
        free(s->y);
        return;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->color, sizeof s->color, "%s", color);
    c->ns++;
}

static void chart_free(Chart *c) {
    for (int s = 0; s < c->ns; s++) { free(c->s[s].x); free(c->s[s].y); }
    free(c->s);
}

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{font-size:22px;margin:0 0 4px}p.sub{color:#666;margin:0 0 16px;font-size:13px}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:18px;background:#fff}"
    "td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f0f0f0;text-align:left}"
    ".grid{display:flex;flex-wrap:wrap;gap:16px}"
    "svg.chart{border:1px solid #ddd;background:#fff}"
    "svg .t{font-size:15px;font-weight:600;text-anchor:middle;fill:#222}"
    "svg .al{font-size:12px;text-anchor:middle;fill:#444}"
    "svg .yl{font-size:11px;text-anchor:end;fill:#555}"
    "svg .xl{font-size:11px;text-anchor:middle;fill:#555}"
    "svg .lg{font-size:11px;fill:#333}"
    "svg .g{stroke:#e6e6e6;stroke-width:1}svg .a{stroke:#888;stroke-width:1}"
    "svg .box{fill:none;stroke:#888;stroke-width:1}"
    "svg .l{fill:none;stroke-width:1.8;stroke-linejoin:round}";

static void summary_row(FILE *f, const char *label, json_t *v) {
    char buf[64] = "–";
    if (json_is_number(v)) fmt_num(buf, sizeof buf, json_number_value(v));
    fprintf(f, "<tr><th>%s</th><td>%s</td></tr>\n", label, buf);
}

static void write_report(FILE *f, const Rows *r, const char *metrics_path) {
    json_t *last = r->rows[r->n - 1];
    fprintf(f, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
               "<title>clt-fit training report</title>\n<style>%s</style>\n</head>\n<body>\n", CSS);
    fprintf(f, "<h1>clt-fit training report</h1>\n<p class=\"sub\">");
    xml_escape(f, metrics_path);
    fprintf(f, " — %zu log rows — clt-fit (cltkit) %s</p>\n", r->n, CLTKIT_VERSION);
    // final values
    int L = max_array_len(r, "nmse");
    double nm = 0;
    int nn = 0;
    json_t *a = json_object_get(last, "nmse");
    for (size_t k = 0; json_is_array(a) && k < json_array_size(a); k++)
        if (json_is_number(json_array_get(a, k))) nm += json_number_value(json_array_get(a, k)), nn++;
    fprintf(f, "<table>\n<tr><th colspan=\"2\">final values</th></tr>\n");
    const char *keys[] = {"step", "tokens", "loss", "mse", "sparsity", "preact", "l0", "dead", "lambda", "lr", "tokens_per_s"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) summary_row(f, keys[i], json_object_get(last, keys[i]));
    json_t *nmv = nn ? json_real(nm / nn) : NULL;
    summary_row(f, "nmse (mean of layers)", nmv);
    json_decref(nmv);
    fprintf(f, "</table>\n<div class=\"grid\">\n");

    char name[64], color[8];
    int nl = L > 0 ? L : 1, nl0 = max_array_len(r, "l0_per_layer");
    Chart charts[7] = {
        {"loss", "Loss and its terms", "per token", 1, NULL, 0, r->n},
        {"nmse", "NMSE per layer", "NMSE (FVU)", 1, NULL, 0, r->n},
        {"l0", "L0 per layer", "active features per token", 0, NULL, 0, r->n},
        {"dead", "Dead features", "features (no firing in ~1M tokens)", 0, NULL, 0, r->n},
        {"lambda", "Sparsity coefficient λ", "λ", 0, NULL, 0, r->n},
        {"lr", "Learning rate", "lr", 0, NULL, 0, r->n},
        {"tokens_per_s", "Throughput", "tokens / s", 0, NULL, 0, r->n},
    };
    charts[0].s = xcalloc(4, sizeof(Series));
    const char *terms[4] = {"loss", "mse", "sparsity", "preact"};
    const char *term_names[4] = {"total", "mse", "sparsity (λ·tanh)", "pre-act (λ_P)"};
    for (int i = 0; i < 4; i++) chart_add(&charts[0], r, terms[i], -1, term_names[i], CATEGORICAL[i]);
    charts[1].s = xcalloc((size_t)nl, sizeof(Series));
    for (int k = 0; k < L; k++) {
        snprintf(name, sizeof name, "layer %d", k);
        ordered_color(color, k, L);
        chart_add(&charts[1], r, "nmse", k, name, color);
    }
    charts[2].s = xcalloc((size_t)(nl0 > 0 ? nl0 : 1), sizeof(Series));
    for (int k = 0; k < nl0; k++) {
        snprintf(name, sizeof name, "layer %d", k);
        ordered_color(color, k, nl0);
        chart_add(&charts[2], r, "l0_per_layer", k, name, color);
    }
    if (!nl0) {  // older logs: only the total
        charts[2].s = xrealloc(charts[2].s, sizeof(Series));
        chart_add(&charts[2], r, "l0", -1, "all layers", CATEGORICAL[0]);
    }
    const char *single[4] = {"dead", "lambda", "lr", "tokens_per_s"};
    for (int i = 0; i < 4; i++) {
        charts[3 + i].s = xcalloc(1, sizeof(Series));
        chart_add(&charts[3 + i], r, single[i], -1, single[i], CATEGORICAL[i == 0 ? 2 : i == 3 ? 4 : 0]);
    }
    for (int i = 0; i < 7; i++) {
        if (charts[i].ns) chart_svg(f, &charts[i]);
        chart_free(&charts[i]);
    }
    fprintf(f, "</div>\n</body>\n</html>\n");
}

int clt_report_write(const char *metrics_path, const char *out_path, Error *e) {
    Rows r;
    if (rows_read(&r, metrics_path, e)) return -1;
    int to_stdout = !strcmp(out_path, "-");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out_path, (int)getpid());
    FILE *f = to_stdout ? stdout : fopen(tmp, "w");
    if (!f) {
        rows_free(&r);
        return err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
    }
    write_report(f, &r, metrics_path);
    rows_free(&r);
    if (to_stdout) return fflush(f) ? err_set(e, "stdout: write failed") : 0;
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, out_path)) {
        remove(tmp);
        return err_set(e, "%s: write failed", out_path);
    }
    return 0;
}

int clt_metrics_truncate(const char *metrics_path, long long step, Error *e) {
    FILE *f = fopen(metrics_path, "r");
    if (!f) return errno == ENOENT ? 0 : err_set(e, "%s: cannot open: %s", metrics_path, strerror(errno));
    char *line = NULL, *out = NULL;
    size_t lcap = 0, n = 0, cap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) != -1) {
        if (len == 0 || line[len - 1] != '\n') break;  // cut off mid-line
        json_t *o = json_loads(line, 0, NULL);
        json_t *st = json_object_get(o, "step");
        int keep = json_is_number(st) && json_number_value(st) <= (double)step;
        json_decref(o);
        if (!keep) continue;
        if (n + (size_t)len > cap) {
            cap = 2 * (n + (size_t)len);
            out = xrealloc(out, cap);
        }
        memcpy(out + n, line, (size_t)len);
        n += (size_t)len;
    }
    int bad = ferror(f);
    free(line);
    fclose(f);
    if (bad) {
        free(out);
        return err_set(e, "%s: read error", metrics_path);
    }
    int rc = write_file_atomic(metrics_path, out ? out : "", n, e);
    free(out);
    return rc;
}
