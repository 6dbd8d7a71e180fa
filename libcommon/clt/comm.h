// comm.h — a tiny communicator between the processes (ranks) of one training job.
//
// A Comm is passed explicitly (no global state). Backends:
//   single  comm_init_single (comm.c): one process; every collective is a no-op or a copy.
//   MPI     comm_init_mpi (comm_mpi.c, compiled only where mpicc exists — the Makefile links it
//           into MPI_TOOLS, which are built with -DUSE_MPI): CPU processes under mpirun.
//   NCCL    comm_init_nccl (libcommon/clt/comm_nccl.cu, in libkernels_cuda.a: CUDA builds only; a stub
//           that errors where nccl.h is missing): GPU ranks, one device each, bootstrapped through
//           another Comm (llm.c's pattern: rank 0 makes the ncclUniqueId, the bootstrap
//           broadcasts it). Its all-reduce runs on NCCL and also takes device pointers; the other
//           collectives go to the bootstrap Comm.
// Collectives are blocking and must be called by every rank in the same order. Buffers are host
// memory, except for the all-reduce of a backend with ops->device_buffers (NCCL), which also takes
// device memory (written and synchronized by the caller). Every function returns 0, or -1 with an
// Error.
#pragma once
#include <stddef.h>

#include "err.h"

typedef struct CommOps CommOps;

typedef struct {
    int rank, size;
    const CommOps *ops;  // NULL: the single-process backend
    void *impl;          // backend state (the MPI communicator)
} Comm;

void comm_init_single(Comm *c);
// MPI_Init and a private duplicate of MPI_COMM_WORLD; one per process (comm_free finalizes MPI).
// Only defined in MPI builds (comm_mpi.c).
int comm_init_mpi(Comm *c, Error *e);
// The GPU backend (CUDA builds: defined in libkernels_cuda.a). cudaSetDevice(device), then rank 0
// of bootstrap (an MPI Comm over the same ranks, or a single-process one) makes the ncclUniqueId
// and broadcasts it, and every rank joins with ncclCommInitRank; rank and size are bootstrap's.
// bootstrap must outlive c (bcast, barrier, gatherv and scatterv are delegated to it) and be
// freed after it. allreduce_sum: ncclAllReduce on the backend's own stream, in place for device
// (or managed) pointers, staged through a device buffer for host pointers, f32 and f64, waited
// for before returning (an asynchronous NCCL error aborts the communicator and is returned rather
// than waited on forever); every rank gets the same bits. Collective: if any rank fails its local
// set-up (device, stream, unique id), every rank returns the error; a failure inside
// ncclCommInitRank itself is returned by the ranks that see it (the launcher ends the others). A
// build without NCCL: an error saying so.
int comm_init_nccl(Comm *c, const Comm *bootstrap, int device, Error *e);
void comm_free(Comm *c);

// The world size an MPI launcher (mpirun/mpiexec: Open MPI, MPICH, PMIx) announces in the
// environment, or 0 when the process was not started by one. A build without MPI uses it to
// refuse `mpirun -np 2` instead of running two independent copies.
int comm_launcher_size(void);
// This process's rank among the ranks on its node, from the launcher's environment (Open MPI,
// MPICH/Intel MPI, Slurm), else c->rank (one node): which GPU a rank takes. -1 with e when the
// variable is not a number.
int comm_local_rank(const Comm *c, int *local, Error *e);

// In place: buf (n,) becomes the element-wise sum over ranks, bit-identical on every rank.
int comm_allreduce_sum_f32(const Comm *c, float *buf, size_t n, Error *e);
int comm_allreduce_sum_f64(const Comm *c, double *buf, size_t n, Error *e);
// buf (bytes) of root is copied to every rank.
int comm_bcast(const Comm *c, void *buf, size_t bytes, int root, Error *e);
int comm_barrier(const Comm *c, Error *e);
// Concatenates every rank's send (n floats; n may differ per rank) in rank order into root's recv
// (the sum of the n's; ignored on other ranks). send and recv must not overlap.
int comm_gatherv_f32(const Comm *c, const float *send, size_t n, float *recv, int root, Error *e);
// The inverse: rank r receives its n floats (n may differ per rank) from root's send, which holds
// every rank's part in rank order (ignored on other ranks); send and recv must not overlap.
int comm_scatterv_f32(const Comm *c, const float *send, float *recv, size_t n, int root, Error *e);

// Backend interface (comm_mpi.c, libcommon/clt/comm_nccl.cu): size > 1 collectives.
struct CommOps {
    int (*allreduce_sum)(const Comm *c, void *buf, size_t n, int is_double, Error *e);
    int (*bcast)(const Comm *c, void *buf, size_t bytes, int root, Error *e);
    int (*barrier)(const Comm *c, Error *e);
    int (*gatherv)(const Comm *c, const float *send, size_t n, float *recv, int root, Error *e);
    int (*scatterv)(const Comm *c, const float *send, float *recv, size_t n, int root, Error *e);
    void (*free)(Comm *c);
    int device_buffers;  // 1: allreduce_sum also takes device pointers in place (NCCL)
};
