// comm.c — the Comm front end and its single-process backend (see comm.h). The wrappers check
// arguments and dispatch to the backend's ops; with one process every collective is the
// identity, so tools run the same code whether or not they were launched by mpirun.
#include "comm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void comm_init_single(Comm *c) { *c = (Comm){.rank = 0, .size = 1}; }

void comm_free(Comm *c) {
    if (c->ops && c->ops->free) c->ops->free(c);
    memset(c, 0, sizeof *c);
}

int comm_launcher_size(void) {
    // Open MPI, PMIx (Open MPI 5, Slurm), MPICH/Hydra and Intel MPI (PMI) respectively
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        long long n = cli_env_int(vars[i], 0, 0, 1 << 24);
        if (n > 0) return (int)n;
    }
    return 0;
}

int comm_local_rank(const Comm *c, int *local, Error *e) {
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!lr) lr = getenv("MPI_LOCALRANKID");
    if (!lr) lr = getenv("SLURM_LOCALID");
    long long v = c->rank;
    if (lr && parse_int_strict(lr, 0, INT_MAX, &v)) return err_set(e, "local rank '%s' is not a number", lr);
    *local = (int)v;
    return 0;
}

static int check_root(const Comm *c, int root, Error *e) {
    if (root < 0 || root >= c->size) return err_set(e, "comm: root %d out of range (size %d)", root, c->size);
    return 0;
}

int comm_allreduce_sum_f32(const Comm *c, float *buf, size_t n, Error *e) {
    return c->size == 1 ? 0 : c->ops->allreduce_sum(c, buf, n, 0, e);
}

int comm_allreduce_sum_f64(const Comm *c, double *buf, size_t n, Error *e) {
    return c->size == 1 ? 0 : c->ops->allreduce_sum(c, buf, n, 1, e);
}

int comm_bcast(const Comm *c, void *buf, size_t bytes, int root, Error *e) {
    if (check_root(c, root, e)) return -1;
    return c->size == 1 ? 0 : c->ops->bcast(c, buf, bytes, root, e);
}

int comm_barrier(const Comm *c, Error *e) { return c->size == 1 ? 0 : c->ops->barrier(c, e); }

int comm_gatherv_f32(const Comm *c, const float *send, size_t n, float *recv, int root, Error *e) {
    if (check_root(c, root, e)) return -1;
    if (c->size > 1) return c->ops->gatherv(c, send, n, recv, root, e);
    if (recv != send && n) memmove(recv, send, n * sizeof(float));
    return 0;
}

int comm_scatterv_f32(const Comm *c, const float *send, float *recv, size_t n, int root, Error *e) {
    if (check_root(c, root, e)) return -1;
    if (c->size > 1) return c->ops->scatterv(c, send, recv, n, root, e);
    if (recv != send && n) memmove(recv, send, n * sizeof(float));
    return 0;
}
