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
    double *t;      // (n,) wall-clock seconds of each point (hover text), or NULL
    size_t n;
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

// "1h02m03s"-style wall-clock, after prefix.
static void fmt_duration(char *buf, size_t n, const char *prefix, double s) {
    long t = (long)llround(s);
    if (t >= 3600) snprintf(buf, n, "%s%ldh%02ldm%02lds", prefix, t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60) snprintf(buf, n, "%s%ldm%02lds", prefix, t / 60, t % 60);
    else snprintf(buf, n, "%s%.1fs", prefix, s);
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
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        chars += (*p & 0xC0) != 0x80;  // UTF-8 code points
    return 40 + 6.2 * (double)chars;
}

static void chart_svg(FILE *f, const Chart *c) {
    // data ranges (log axes see only positive values)
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->ns; s++)
        for (size_t i = 0; i < c->s[s].n; i++) {
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
    fprintf(
        f,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-%s\" class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
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
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"box\"/>\n", x0, y1, x1 - x0,
            y0 - y1);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"al\">step</text>\n", 0.5 * (x0 + x1), y0 + 36);
    fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" class=\"al\">", 0.5 * (y0 + y1));
    xml_escape(f, c->ylabel);
    fprintf(f, "</text>\n");
    if (empty)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"al\">no data</text>\n", 0.5 * (x0 + x1), 0.5 * (y0 + y1));
    // series: polylines broken at missing values, markers when the points are few
    for (int s = 0; s < c->ns; s++) {
        const Series *se = &c->s[s];
        size_t npts = 0;
        for (size_t i = 0; i < se->n; i++) npts += isfinite(se->y[i]) && !(c->logy && se->y[i] <= 0);
        fprintf(f, "<g stroke=\"%s\" fill=\"%s\"><title>", se->color, se->color);
        xml_escape(f, se->name);
        fprintf(f, "</title>\n");
        int open = 0;
        for (size_t i = 0; i <= se->n; i++) {
            int good = i < se->n && isfinite(se->y[i]) && !(c->logy && se->y[i] <= 0);
            if (good) {
                double px = axis_pos(&ax, se->x[i], x0, x1), py = axis_pos(&ay, se->y[i], y0, y1);
                fprintf(f, "%s%.1f,%.1f", open ? " " : "<polyline class=\"l\" points=\"", px, py);
                open = 1;
            } else if (open) {
                fprintf(f, "\"/>\n");
                open = 0;
            }
        }
        // markers when the points are few; else transparent hover targets (at most ~300 per
        // series): each point's <title> is its value, shown on hover without any script
        size_t stride = npts <= 300 ? 1 : (npts + 299) / 300, seen = 0;
        for (size_t i = 0; i < se->n; i++) {
            if (!isfinite(se->y[i]) || (c->logy && se->y[i] <= 0) || seen++ % stride) continue;
            char val[32], when[48] = "";
            fmt_num(val, sizeof val, se->y[i]);
            if (se->t && isfinite(se->t[i])) fmt_duration(when, sizeof when, " · ", se->t[i]);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"%s><title>", axis_pos(&ax, se->x[i], x0, x1),
                    axis_pos(&ay, se->y[i], y0, y1), npts <= 40 ? "2.5" : "4",
                    npts <= 40 ? "" : " fill-opacity=\"0\" stroke=\"none\"");
            xml_escape(f, se->name);
            fprintf(f, " · step %.0f%s: %s</title></circle>", se->x[i], when, val);
        }
        fprintf(f, "</g>\n");
    }
    // legend below the axis label
    for (int s = 0; s < c->ns && leg_rows; s++) {
        double lx = leg_x[s], ly = PT + PH + AXIS_H + leg_row[s] * LEG_ROW + 8;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>", lx, ly,
                lx + 18, ly, c->s[s].color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"lg\">", lx + 24, ly + 4);
        xml_escape(f, c->s[s].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    free(leg_x);
    free(leg_row);
}

// ---- the report ------------------------------------------------------------------------------

// One run: its metrics log and, beside it, run.json (the settings) and eval.json (`clt-fit eval
// -o DIR/eval.json`, held-out results) when present.
typedef struct {
    const char *path;
    char label[128];
    Rows r;
    json_t *run, *eval;
    int topk;     // trained as topk/batchtopk: no sparsity terms, no λ
    int running;  // the last logged step is short of the run's --steps
} Run;

static json_t *load_beside(const char *metrics_path, const char *name) {
    char path[4400];
    const char *slash = strrchr(metrics_path, '/');
    if (slash) snprintf(path, sizeof path, "%.*s/%s", (int)(slash - metrics_path), metrics_path, name);
    else snprintf(path, sizeof path, "%s", name);
    return access(path, R_OK) ? NULL : json_load_file(path, 0, NULL);
}

static int run_open(Run *u, const char *path, Error *e) {
    memset(u, 0, sizeof *u);
    u->path = path;
    if (rows_read(&u->r, path, e)) return -1;
    u->run = load_beside(path, "run.json");
    u->eval = load_beside(path, "eval.json");
    // the label: the directory holding the log (runs are told apart by their output directories)
    const char *slash = strrchr(path, '/'), *start = path;
    if (slash) {
        const char *q = slash;
        while (q > path && q[-1] != '/') q--;
        start = q;
    }
    if (slash && slash > start) snprintf(u->label, sizeof u->label, "%.*s", (int)(slash - start), start);
    else snprintf(u->label, sizeof u->label, "%s", path);
    json_t *settings = json_object_get(u->run, "settings");
    const char *act = json_string_value(json_object_get(settings, "activation"));
    if (act) {
        u->topk = strcmp(act, "jumprelu") != 0;
    } else {  // an older log: the sparsity terms and λ are all zero only when the mode has none
        u->topk = 1;
        for (size_t i = 0; i < u->r.n && u->topk; i++) {
            const char *k[3] = {"sparsity", "preact", "lambda"};
            for (int j = 0; j < 3; j++)
                if (json_number_value(json_object_get(u->r.rows[i], k[j])) != 0) u->topk = 0;
        }
    }
    json_t *steps = json_object_get(settings, "steps");
    double last = json_number_value(json_object_get(u->r.rows[u->r.n - 1], "step"));
    u->running = json_is_integer(steps) && last < (double)json_integer_value(steps);
    return 0;
}

static void run_close(Run *u) {
    rows_free(&u->r);
    json_decref(u->run);
    json_decref(u->eval);
}

// Adds series `name` of chart c: key's values (element idx of an array key, idx >= 0; the mean of
// the array's elements, idx == -2), or nothing when the log never has it.
static void chart_add(Chart *c, const Rows *r, const char *key, int idx, const char *name, const char *color) {
    c->s = xrealloc(c->s, (size_t)(c->ns + 1) * sizeof(Series));
    Series *s = &c->s[c->ns];
    memset(s, 0, sizeof *s);
    s->n = r->n;
    s->x = xmalloc(r->n * sizeof(double));
    s->y = xmalloc(r->n * sizeof(double));
    s->t = xmalloc(r->n * sizeof(double));
    int found = 0;
    for (size_t i = 0; i < r->n; i++) {
        json_t *row = r->rows[i], *v = json_object_get(row, key), *t = json_object_get(row, "time_s");
        s->x[i] = json_number_value(json_object_get(row, "step"));
        s->t[i] = json_is_number(t) ? json_number_value(t) : NAN;
        s->y[i] = NAN;
        if (idx == -2 && json_is_array(v) && json_array_size(v)) {
            double sum = 0;
            for (size_t k = 0; k < json_array_size(v); k++) sum += json_number_value(json_array_get(v, k));
            s->y[i] = sum / (double)json_array_size(v);
        } else {
            if (idx >= 0) v = json_is_array(v) ? json_array_get(v, (size_t)idx) : NULL;
            if (json_is_number(v)) s->y[i] = json_number_value(v);
        }
        found |= !isnan(s->y[i]);
    }
    if (!found) {
        free(s->x);
        free(s->y);
        free(s->t);
        return;
    }
    c->n = r->n > c->n ? r->n : c->n;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->color, sizeof s->color, "%s", color);
    c->ns++;
}

static void chart_draw(FILE *f, Chart *c) {
    if (c->ns) chart_svg(f, c);
    for (int k = 0; k < c->ns; k++) {
        free(c->s[k].x);
        free(c->s[k].y);
        free(c->s[k].t);
    }
    free(c->s);
    c->s = NULL;
    c->ns = 0;
}

// Viridis-like colour at t in [0, 1].
static void ramp_color(char out[8], double t) {
    int n = 1000, i = (int)lround((t < 0 ? 0 : t > 1 ? 1 : t) * (n - 1));
    ordered_color(out, i, n);
}

// A layer × step heatmap of an array metric (past a handful of layers, lines are unreadable):
// one column per log row (rows averaged into at most 160 columns), one band per layer, colour on
// a log scale when logc, each cell's value in its <title>.
static void heatmap_svg(FILE *f, const Rows *r, const char *key, int L, const char *id, const char *title, int logc) {
    size_t cols = r->n < 160 ? r->n : 160;
    double *v = xmalloc(cols * (size_t)L * sizeof(double)), *step = xmalloc(cols * sizeof(double));
    double lo = INFINITY, hi = -INFINITY;
    for (size_t c = 0; c < cols; c++) {
        size_t r0 = c * r->n / cols, r1 = (c + 1) * r->n / cols;
        step[c] = json_number_value(json_object_get(r->rows[r1 - 1], "step"));
        for (int l = 0; l < L; l++) {
            double sum = 0;
            int cnt = 0;
            for (size_t i = r0; i < r1; i++) {
                json_t *x = json_array_get(json_object_get(r->rows[i], key), (size_t)l);
                if (json_is_number(x)) sum += json_number_value(x), cnt++;
            }
            double y = cnt ? sum / cnt : NAN;
            v[c * L + l] = y;
            if (isfinite(y) && (!logc || y > 0)) lo = fmin(lo, y), hi = fmax(hi, y);
        }
    }
    if (!(lo <= hi)) lo = 0, hi = 1;
    double tlo = logc ? log10(lo) : lo, thi = logc ? log10(hi) : hi;
    if (!(thi > tlo)) thi = tlo + 1;
    int band = L > 40 ? 6 : 240 / L, H = PT + L * band + AXIS_H + 20;
    double x0 = PL, x1 = W - PR, cw = (x1 - x0) / (double)cols;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-%s\" class=\"chart heatmap\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            id, W, H, W, H);
    fprintf(f, "<title>%s</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", title, W, H);
    fprintf(f, "<text x=\"%d\" y=\"20\" class=\"t\">%s (layer × step%s)</text>\n", W / 2, title,
            logc ? ", log colour" : "");
    char col[8], val[32];
    for (int l = 0; l < L; l++) {
        double y = PT + (double)l * band;
        if (L <= 40 || l % 5 == 0)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"yl\">%d</text>\n", x0 - 6, y + band / 2.0 + 4, l);
        for (size_t c = 0; c < cols; c++) {
            double x = v[c * L + l];
            int good = isfinite(x) && (!logc || x > 0);
            if (good) ramp_color(col, ((logc ? log10(x) : x) - tlo) / (thi - tlo));
            fmt_num(val, sizeof val, x);
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\"><title>layer %d · step %.0f: "
                    "%s</title></rect>",
                    x0 + (double)c * cw, y, cw + 0.3, band, good ? col : "#eee", l, step[c], good ? val : "–");
        }
        fputc('\n', f);
    }
    double yb = PT + (double)L * band;
    fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" class=\"al\">layer</text>\n", PT + L * band / 2.0);
    fmt_num(val, sizeof val, step[0]);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%s</text>", x0 + cw / 2, yb + 16, val);
    fmt_num(val, sizeof val, step[cols - 1]);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%s</text>", x1 - cw / 2, yb + 16, val);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"al\">step</text>\n", 0.5 * (x0 + x1), yb + 30);
    // colour scale
    for (int i = 0; i < 50; i++) {
        ramp_color(col, i / 49.0);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"4.2\" height=\"10\" fill=\"%s\"/>", x0 + 60 + i * 4.0, yb + 40,
                col);
    }
    fmt_num(val, sizeof val, lo);
    fprintf(f, "\n<text x=\"%.1f\" y=\"%.1f\" class=\"yl\">%s</text>", x0 + 56, yb + 49, val);
    fmt_num(val, sizeof val, hi);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"lg\">%s</text>\n</svg>\n", x0 + 266, yb + 49, val);
    free(v);
    free(step);
}

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe "
    "UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}p.sub{color:#666;margin:0 0 "
    "16px;font-size:13px}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:18px;background:#fff}"
    "td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f0f0f0;text-align:left}"
    "tr.diff td{background:#fff3cd}.tables{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}"
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

// A table cell for a JSON value: numbers compact, strings escaped, arrays of shards by path.
static void cell(FILE *f, json_t *v) {
    char buf[64];
    fputs("<td>", f);
    if (json_is_number(v)) {
        fmt_num(buf, sizeof buf, json_number_value(v));
        fputs(buf, f);
    } else if (json_is_string(v)) {
        xml_escape(f, json_string_value(v));
    } else if (json_is_boolean(v)) {
        fputs(json_is_true(v) ? "yes" : "no", f);
    } else if (json_is_array(v) && json_is_object(json_array_get(v, 0))) {  // run.json's shards
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i), *p = json_object_get(x, "path");
            if (i) fputs("<br/>", f);
            xml_escape(f, p ? json_string_value(p) : "?");
            json_t *h = json_object_get(x, "chunks_crc32c");
            if (json_is_string(h)) fprintf(f, " (%s)", json_string_value(h));
        }
    } else {
        fputs("–", f);
    }
    fputs("</td>", f);
}

static void table_head(FILE *f, const char *title, const Run *runs, int n) {
    fprintf(f, "<table>\n<tr><th>%s</th>", title);
    for (int i = 0; i < n && n > 1; i++) {
        fputs("<th>", f);
        xml_escape(f, runs[i].label);
        fputs("</th>", f);
    }
    fprintf(f, "%s</tr>\n", n > 1 ? "" : "<th></th>");
}

// A table row of the values `get` gives per run; differing values are highlighted.
static void table_row(FILE *f, const char *label, json_t *const *vals, int n) {
    int diff = 0;
    for (int i = 1; i < n; i++) diff |= !json_equal(vals[i], vals[0]) && !(vals[i] == NULL && vals[0] == NULL);
    fprintf(f, "<tr%s><th>", diff ? " class=\"diff\"" : "");
    xml_escape(f, label);
    fputs("</th>", f);
    for (int i = 0; i < n; i++) cell(f, vals[i]);
    fputs("</tr>\n", f);
}

static void write_tables(FILE *f, Run *runs, int n) {
    json_t **vals = xcalloc((size_t)n, sizeof(json_t *));
    fputs("<div class=\"tables\">\n", f);
    // final values
    table_head(f, "final values", runs, n);
    const char *keys[] = {"step", "tokens", "loss",      "mse",    "sparsity", "preact",
                          "l0",   "dead",   "dead_frac", "lambda", "lr",       "tokens_per_s"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        int any = 0;
        for (int i = 0; i < n; i++) {
            vals[i] = json_object_get(runs[i].r.rows[runs[i].r.n - 1], keys[k]);
            any |= vals[i] != NULL && !(runs[i].topk && (!strcmp(keys[k], "sparsity") || !strcmp(keys[k], "preact") ||
                                                         !strcmp(keys[k], "lambda")));
        }
        if (any) table_row(f, keys[k], vals, n);
    }
    for (int i = 0; i < n; i++) {  // NMSE mean over layers, wall clock, status
        json_t *a = json_object_get(runs[i].r.rows[runs[i].r.n - 1], "nmse");
        double sum = 0;
        for (size_t k = 0; k < json_array_size(a); k++) sum += json_number_value(json_array_get(a, k));
        vals[i] = json_array_size(a) ? json_real(sum / (double)json_array_size(a)) : NULL;
    }
    table_row(f, "nmse (mean of layers)", vals, n);
    for (int i = 0; i < n; i++) json_decref(vals[i]);
    char buf[64];
    for (int i = 0; i < n; i++) {
        json_t *t = json_object_get(runs[i].r.rows[runs[i].r.n - 1], "time_s");
        if (json_is_number(t)) fmt_duration(buf, sizeof buf, "", json_number_value(t));
        vals[i] = json_is_number(t) ? json_string(buf) : NULL;
    }
    table_row(f, "wall clock", vals, n);
    for (int i = 0; i < n; i++)
        json_decref(vals[i]), vals[i] = json_string(runs[i].running ? "training" : runs[i].run ? "finished" : "–");
    table_row(f, "status", vals, n);
    for (int i = 0; i < n; i++) json_decref(vals[i]);
    json_t *d0 = json_object_get(runs[0].r.rows[runs[0].r.n - 1], "dead_window_tokens");
    if (json_is_number(d0))
        fprintf(f,
                "<tr><td colspan=\"%d\" style=\"text-align:left;color:#666\">dead: no firing in the last %.0f tokens "
                "(1M, or all "
                "seen so far when fewer)</td></tr>\n",
                n + 1, json_number_value(d0));
    fputs("</table>\n", f);
    // held-out evaluation (eval.json beside the log)
    int any_eval = 0;
    for (int i = 0; i < n; i++) any_eval |= runs[i].eval != NULL;
    if (any_eval) {
        table_head(f, "held-out eval (eval.json)", runs, n);
        const char *ek[] = {"tokens", "nmse_mean", "mse", "l0", "dead", "dead_frac"};
        for (size_t k = 0; k < sizeof ek / sizeof *ek; k++) {
            for (int i = 0; i < n; i++) vals[i] = json_object_get(runs[i].eval, ek[k]);
            table_row(f, ek[k], vals, n);
        }
        fputs("</table>\n", f);
        // per layer (first run with one): NMSE, L0, dead
        for (int i = 0; i < n; i++) {
            json_t *nm = json_object_get(runs[i].eval, "nmse"), *l0 = json_object_get(runs[i].eval, "l0_per_layer"),
                   *dd = json_object_get(runs[i].eval, "dead_per_layer");
            if (!json_is_array(nm)) continue;
            fputs("<table>\n<tr><th>held-out, ", f);
            xml_escape(f, runs[i].label);
            fputs("</th><th>NMSE</th><th>L0</th><th>dead</th></tr>\n", f);
            for (size_t k = 0; k < json_array_size(nm); k++) {
                fprintf(f, "<tr><th>layer %zu</th>", k);
                cell(f, json_array_get(nm, k));
                cell(f, json_array_get(l0, k));
                cell(f, json_array_get(dd, k));
                fputs("</tr>\n", f);
            }
            fputs("</table>\n", f);
            break;
        }
    }
    // the run's settings (run.json beside the log)
    int any_run = 0;
    for (int i = 0; i < n; i++) any_run |= runs[i].run != NULL;
    if (any_run) {
        table_head(f, "run config (run.json)", runs, n);
        json_t *settings0 = NULL;
        for (int i = 0; i < n && !settings0; i++) settings0 = json_object_get(runs[i].run, "settings");
        const char *key;
        json_t *unused;
        json_object_foreach(settings0, key, unused) {
            for (int i = 0; i < n; i++) vals[i] = json_object_get(json_object_get(runs[i].run, "settings"), key);
            table_row(f, key, vals, n);
        }
        const char *top[] = {"shards", "layers", "d_model", "version"};
        for (size_t k = 0; k < sizeof top / sizeof *top; k++) {
            for (int i = 0; i < n; i++) vals[i] = json_object_get(runs[i].run, top[k]);
            table_row(f, top[k], vals, n);
        }
        fputs("</table>\n", f);
    }
    fputs("</div>\n", f);
    free(vals);
}

static void write_report(FILE *f, Run *runs, int n, int refresh_s) {
    int running = 0;
    for (int i = 0; i < n; i++) running |= runs[i].running;
    fprintf(f,
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta "
            "charset=\"utf-8\"/>\n");
    if (refresh_s > 0 && running) fprintf(f, "<meta http-equiv=\"refresh\" content=\"%d\"/>\n", refresh_s);
    fprintf(f, "<title>clt-fit training report</title>\n<style>%s</style>\n</head>\n<body>\n", CSS);
    fprintf(f, "<h1>clt-fit training report</h1>\n<p class=\"sub\">");
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        xml_escape(f, runs[i].path);
        fprintf(f, " (%zu log rows)", runs[i].r.n);
    }
    fprintf(f, " — clt-fit (cltkit) %s%s</p>\n", CLTKIT_VERSION,
            refresh_s > 0 && running ? " — training: this page reloads itself" : "");
    write_tables(f, runs, n);
    fputs("<div class=\"grid\">\n", f);
    char name[64], color[8];
    if (n == 1) {
        const Run *u = &runs[0];
        const Rows *r = &u->r;
        int L = max_array_len(r, "nmse"), nl0 = max_array_len(r, "l0_per_layer");
        Chart c = {"loss", u->topk ? "Reconstruction loss" : "Loss and its terms", "per token", 1, NULL, 0, 0};
        if (u->topk) {  // the loss is the MSE alone
            chart_add(&c, r, "mse", -1, "mse", CATEGORICAL[1]);
        } else {
            const char *terms[4] = {"loss", "mse", "sparsity", "preact"};
            const char *term_names[4] = {"total", "mse", "sparsity (λ·tanh)", "pre-act (λ_P)"};
            for (int i = 0; i < 4; i++) chart_add(&c, r, terms[i], -1, term_names[i], CATEGORICAL[i]);
        }
        chart_draw(f, &c);
        if (L > 8) {
            heatmap_svg(f, r, "nmse", L, "nmse", "NMSE per layer", 1);
        } else {
            c = (Chart){"nmse", "NMSE per layer", "NMSE (FVU)", 1, NULL, 0, 0};
            for (int k = 0; k < L; k++) {
                snprintf(name, sizeof name, "layer %d", k);
                ordered_color(color, k, L);
                chart_add(&c, r, "nmse", k, name, color);
            }
            chart_draw(f, &c);
        }
        if (nl0 > 8 && !u->topk) {
            heatmap_svg(f, r, "l0_per_layer", nl0, "l0", "L0 per layer", 0);
        } else {
            c = (Chart){"l0", u->topk ? "L0 (mean of layers)" : "L0 per layer", "active features per token", 0, NULL, 0,
                        0};
            if (u->topk || !nl0) {  // TopK: every layer sits at K; older logs: only the total
                if (nl0) chart_add(&c, r, "l0_per_layer", -2, "mean of layers", CATEGORICAL[0]);
                else chart_add(&c, r, "l0", -1, "all layers", CATEGORICAL[0]);
            }
            for (int k = 0; k < nl0 && !u->topk; k++) {
                snprintf(name, sizeof name, "layer %d", k);
                ordered_color(color, k, nl0);
                chart_add(&c, r, "l0_per_layer", k, name, color);
            }
            chart_draw(f, &c);
        }
        int frac = json_is_number(json_object_get(r->rows[r->n - 1], "dead_frac"));
        c = (Chart){"dead",
                    "Dead features",
                    frac ? "fraction silent over min(1M, seen) tokens" : "features (no firing in ~1M tokens)",
                    0,
                    NULL,
                    0,
                    0};
        chart_add(&c, r, frac ? "dead_frac" : "dead", -1, "dead", CATEGORICAL[2]);
        chart_draw(f, &c);
        if (!u->topk) {
            c = (Chart){"lambda", "Sparsity coefficient λ", "λ", 0, NULL, 0, 0};
            chart_add(&c, r, "lambda", -1, "lambda", CATEGORICAL[0]);
            chart_draw(f, &c);
        }
        c = (Chart){"lr", "Learning rate", "lr", 0, NULL, 0, 0};
        chart_add(&c, r, "lr", -1, "lr", CATEGORICAL[0]);
        chart_draw(f, &c);
        c = (Chart){"tokens_per_s", "Throughput", "tokens / s", 0, NULL, 0, 0};
        chart_add(&c, r, "tokens_per_s", -1, "tokens_per_s", CATEGORICAL[4]);
        chart_draw(f, &c);
    } else {  // several runs overlaid: one line per run in each chart
        struct {
            const char *id, *title, *ylabel, *key;
            int idx, logy;
        } spec[] = {
            {"loss", "Loss", "per token", "loss", -1, 1},
            {"nmse", "NMSE (mean of layers)", "NMSE (FVU)", "nmse", -2, 1},
            {"l0", "L0 (all layers)", "active features per token", "l0", -1, 0},
            {"dead", "Dead features", "fraction silent", "dead_frac", -1, 0},
            {"lr", "Learning rate", "lr", "lr", -1, 0},
            {"tokens_per_s", "Throughput", "tokens / s", "tokens_per_s", -1, 0},
        };
        for (size_t k = 0; k < sizeof spec / sizeof *spec; k++) {
            Chart c = {spec[k].id, spec[k].title, spec[k].ylabel, spec[k].logy, NULL, 0, 0};
            for (int i = 0; i < n; i++) {
                ordered_color(color, i, n);
                chart_add(&c, &runs[i].r, spec[k].key, spec[k].idx, runs[i].label, color);
            }
            chart_draw(f, &c);
        }
    }
    fprintf(f, "</div>\n</body>\n</html>\n");
}

int clt_report_write(const char *const *metrics_paths, int n_runs, const char *out_path, int refresh_s, int *running,
                     Error *e) {
    Run *runs = xcalloc((size_t)n_runs, sizeof(Run));
    int rc = 0, opened = 0;
    for (; opened < n_runs && !rc; opened++) rc = run_open(&runs[opened], metrics_paths[opened], e);
    if (rc) opened--;
    if (running) {
        *running = 0;
        for (int i = 0; i < opened; i++) *running |= runs[i].running;
    }
    int to_stdout = !strcmp(out_path, "-"), in_place = !to_stdout && is_special_file(out_path);  // a device: in place
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out_path, (int)getpid());
    FILE *f = rc ? NULL : to_stdout ? stdout : fopen(in_place ? out_path : tmp, "w");
    if (!rc && !f) rc = err_set(e, "%s: cannot create: %s", in_place ? out_path : tmp, strerror(errno));
    if (!rc) write_report(f, runs, n_runs, refresh_s);
    for (int i = 0; i < opened; i++) run_close(&runs[i]);
    free(runs);
    if (rc) return -1;
    if (to_stdout) return fflush(f) || ferror(f) ? err_set(e, "stdout: write failed") : 0;
    if (in_place) {
        int bad = fflush(f) != 0 || ferror(f);
        bad |= fclose(f) != 0;
        return bad ? err_set(e, "%s: write error", out_path) : 0;
    }
    return finish_output(&f, tmp, out_path, e);
}

int clt_metrics_truncate(const char *metrics_path, long long step, Error *e) {
    if (is_special_file(metrics_path)) return 0;  // --metrics /dev/null: nothing to cut, nothing to replace
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
