// clt_metrics.h — the CLT trainer's metrics: loss terms, per-layer NMSE and L0 averaged over the
// steps since the last row, and dead features (silent during the last ~1M tokens), written as one
// JSON line per --log-every steps (the rows `clt-fit report` draws). Sharded runs: each rank
// keeps its own features' firing; the row's dead count and L0 are summed over the ranks.
//
//   CltMetrics M; clt_metrics_init(&M, ...);         // build
//   per step:  clt_metrics_add(&M, step, ...);        // run
//   per row:   clt_metrics_log(&M, comm, f, ...);
//   clt_metrics_free(&M);                            // free
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "clt.h"
#include "comm.h"
#include "err.h"

typedef struct {
    int L, F, F_local, B;  // layers, features per layer (all ranks, this rank), tokens per step
    CltLossTerms acc;      // summed since the last row
    int n;                 // steps summed
    double *err, *var;     // (L,) squared error and target variance sums (NMSE = err / var)
    double *l0;            // (L,) active features per token, summed over steps
    int64_t *last_fired;   // (L, F_local) the step after which each feature last fired
    double t_log;          // the clock at the last row (tokens per second)
} CltMetrics;

// Starts at `step` with each feature silent for silent[i] steps (a resumed run's counts; NULL:
// none), the clock at now.
void clt_metrics_init(CltMetrics *M, int L, int F, int F_local, int B, int64_t step, const float *silent, double now);
// Adds step `step` (0-based): its loss terms, per-layer squared error, variance and active pairs,
// and which of this rank's features fired ((L, F_local) bytes).
void clt_metrics_add(CltMetrics *M, int64_t step, const CltLossTerms *lt, const double *err, const double *var,
                     const int64_t *active, const uint8_t *fired);
// Ends the row after step `step`: sums the dead count and L0 over comm's ranks, writes the JSON
// line to f (rank 0; NULL elsewhere) and starts the next row. lam and lr are the step's; time_s
// the training time so far. -1 with e on a failed write (naming path) or all-reduce.
int clt_metrics_log(CltMetrics *M, const Comm *comm, FILE *f, const char *path, int64_t step, float lam, float lr,
                    double now, double time_s, Error *e);
// Steps since each feature last fired, as of step `step`, capped at cap: what a checkpoint keeps.
void clt_metrics_silent(const CltMetrics *M, int64_t step, float *silent, float cap);
void clt_metrics_free(CltMetrics *M);
