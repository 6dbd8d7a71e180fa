// comm_mpi.c — the MPI backend of comm.h (CPU processes under mpirun). Compiled only where
// mpicc exists, with its flags, and linked only into the tools that shard (Makefile MPI_TOOLS),
// so libcommon.a itself never needs MPI.
//
// Counts are size_t while MPI's are int: everything moves in pieces of at most CHUNK elements.
// The all-reduce is a reduce to rank 0 followed by a broadcast rather than MPI_Allreduce: the
// standard only recommends, not guarantees, that every rank gets the same bits, and replicated
// parameters (the CLT's b_dec) stay equal only if they do. For a fixed rank count the reduction
// order is fixed too, so runs (and resumed runs) are bit-reproducible.
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"

enum { CHUNK = 1 << 28 };

typedef struct {
    MPI_Comm comm;
} MpiImpl;

static MPI_Comm mpi_comm(const Comm *c) { return ((const MpiImpl *)c->impl)->comm; }

static int check(int rc, const char *what, Error *e) {
    if (rc == MPI_SUCCESS) return 0;
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return err_set(e, "MPI_%s: %.*s", what, len, s);
}

static int mpi_allreduce_sum(const Comm *c, void *buf, size_t n, int is_double, Error *e) {
    MPI_Datatype t = is_double ? MPI_DOUBLE : MPI_FLOAT;
    size_t esz = is_double ? sizeof(double) : sizeof(float);
    for (size_t at = 0; at < n; at += CHUNK) {
        int cnt = (int)(n - at < CHUNK ? n - at : CHUNK);
        char *p = (char *)buf + at * esz;
        int rc = c->rank == 0 ? MPI_Reduce(MPI_IN_PLACE, p, cnt, t, MPI_SUM, 0, mpi_comm(c))
                              : MPI_Reduce(p, NULL, cnt, t, MPI_SUM, 0, mpi_comm(c));
        if (check(rc, "Reduce", e) || check(MPI_Bcast(p, cnt, t, 0, mpi_comm(c)), "Bcast", e)) return -1;
    }
    return 0;
}

static int mpi_bcast(const Comm *c, void *buf, size_t bytes, int root, Error *e) {
    for (size_t at = 0; at < bytes; at += CHUNK) {
        int cnt = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
        if (check(MPI_Bcast((char *)buf + at, cnt, MPI_BYTE, root, mpi_comm(c)), "Bcast", e)) return -1;
    }
    return 0;
}

static int mpi_barrier(const Comm *c, Error *e) { return check(MPI_Barrier(mpi_comm(c)), "Barrier", e); }

// Every rank's count, on root (counts: size entries) — the layout of a gatherv/scatterv.
static int gather_counts(const Comm *c, size_t n, uint64_t *counts, int root, Error *e) {
    uint64_t mine = n;
    return check(MPI_Gather(&mine, 1, MPI_UINT64_T, counts, 1, MPI_UINT64_T, root, mpi_comm(c)), "Gather", e);
}

// Point-to-point in pieces, one peer at a time in rank order (deterministic, no int overflow).
static int send_floats(const Comm *c, const float *p, size_t n, int to, Error *e) {
    for (size_t at = 0; at < n; at += CHUNK) {
        int cnt = (int)(n - at < CHUNK ? n - at : CHUNK);
        if (check(MPI_Send(p + at, cnt, MPI_FLOAT, to, 0, mpi_comm(c)), "Send", e)) return -1;
    }
    return 0;
}
static int recv_floats(const Comm *c, float *p, size_t n, int from, Error *e) {
    for (size_t at = 0; at < n; at += CHUNK) {
        int cnt = (int)(n - at < CHUNK ? n - at : CHUNK);
        if (check(MPI_Recv(p + at, cnt, MPI_FLOAT, from, 0, mpi_comm(c), MPI_STATUS_IGNORE), "Recv", e)) return -1;
    }
    return 0;
}

static int mpi_gatherv(const Comm *c, const float *send, size_t n, float *recv, int root, Error *e) {
    uint64_t *counts = c->rank == root ? malloc((size_t)c->size * sizeof *counts) : NULL;
    if (c->rank == root && !counts) return err_set(e, "comm: out of memory");
    int rc = gather_counts(c, n, counts, root, e);
    if (!rc && c->rank != root) rc = send_floats(c, send, n, root, e);
    size_t at = 0;
    for (int r = 0; !rc && c->rank == root && r < c->size; at += counts[r++]) {
        if (r == root) memmove(recv + at, send, n * sizeof(float));
        else rc = recv_floats(c, recv + at, counts[r], r, e);
    }
    free(counts);
    return rc;
}

static int mpi_scatterv(const Comm *c, const float *send, float *recv, size_t n, int root, Error *e) {
    uint64_t *counts = c->rank == root ? malloc((size_t)c->size * sizeof *counts) : NULL;
    if (c->rank == root && !counts) return err_set(e, "comm: out of memory");
    int rc = gather_counts(c, n, counts, root, e);
    if (!rc && c->rank != root) rc = recv_floats(c, recv, n, root, e);
    size_t at = 0;
    for (int r = 0; !rc && c->rank == root && r < c->size; at += counts[r++]) {
        if (r == root) memmove(recv, send + at, n * sizeof(float));
        else rc = send_floats(c, send + at, counts[r], r, e);
    }
    free(counts);
    return rc;
}

static void mpi_free(Comm *c) {
    MpiImpl *m = c->impl;
    MPI_Comm_free(&m->comm);
    free(m);
    MPI_Finalize();
}

static const CommOps MPI_OPS = {mpi_allreduce_sum, mpi_bcast, mpi_barrier, mpi_gatherv, mpi_scatterv, mpi_free, 0};

int comm_init_mpi(Comm *c, Error *e) {
    comm_init_single(c);
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) return err_set(e, "comm_init_mpi: MPI is already initialized (one Comm per process)");
    // MPI-2 allows NULL arguments: the tool has parsed its command line already
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return err_set(e, "MPI_Init failed");
    MpiImpl *m = malloc(sizeof *m);
    if (!m) return err_set(e, "comm: out of memory");
    // a private communicator whose errors come back as codes instead of aborting the job
    if (check(MPI_Comm_dup(MPI_COMM_WORLD, &m->comm), "Comm_dup", e)) {
        free(m);
        return -1;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    c->ops = &MPI_OPS;
    c->impl = m;
    return 0;
}
