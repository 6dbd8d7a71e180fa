// comm_nccl.cu — the NCCL backend of comm.h: GPU ranks, one device each, bootstrapped through
// another Comm (MPI across processes; llm.c's pattern: rank 0 makes the ncclUniqueId and the
// bootstrap broadcasts it). Compiled into libkernels_cuda.a, so only CUDA builds have
// comm_init_nccl; without NCCL (no -DUSE_NCCL) it is a stub that errors.
//
// Only the all-reduce runs on NCCL (the data plane: the CLT's partial reconstruction, in place on
// the device). Device (and managed) pointers go to NCCL directly; host pointers are staged through
// a device scratch buffer. It runs on the backend's own stream and waits for it before returning
// (blocking, like the other backends), so callers must have finished writing a device buffer
// (synchronized their stream) before passing it. bcast / barrier / gatherv / scatterv are the
// control plane (options, checkpoints) on host buffers: they go to the bootstrap Comm.
//
// NCCL's ring and tree all-reduces compute each element's sum once and pass it on, so every rank
// gets the same bits (the CLT's replicated b_dec stays in sync); for a fixed rank count, topology
// and NCCL version the order is fixed too.
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "cuda_common.h"

extern "C" {
#include "comm.h"
}

#ifdef USE_NCCL
#include <nccl.h>

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    const Comm *bootstrap;  // not owned: it must outlive this Comm
    int device;
    void *scratch;  // device staging for host buffers
    size_t scratch_bytes;
} NcclImpl;

static int nccl_check(ncclResult_t r, const char *what, Error *e) {
    if (r == ncclSuccess) return 0;
    return err_set(e, "nccl: %s: %s", what, ncclGetErrorString(r));
}

// Device or managed memory: NCCL reads it in place. Anything else (pageable or pinned host
// memory) is staged.
static int on_device(const void *p) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();  // an unknown pointer is host memory; clear the error
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

// Waits for the backend's stream while watching NCCL's asynchronous error: a peer that died leaves
// the all-reduce kernel waiting forever, so a plain cudaStreamSynchronize could hang. On an error
// the communicator is aborted (the job cannot go on) and the error returned.
static int wait_stream(NcclImpl *m, Error *e) {
    for (;;) {
        cudaError_t q = cudaStreamQuery(m->stream);
        ncclResult_t async_err = ncclSuccess;
        if (nccl_check(ncclCommGetAsyncError(m->comm, &async_err), "ncclCommGetAsyncError", e)) return -1;
        if (async_err != ncclSuccess) {
            ncclCommAbort(m->comm);
            m->comm = NULL;
            return nccl_check(async_err, "ncclAllReduce (asynchronous error; communicator aborted)", e);
        }
        if (q == cudaSuccess) return 0;
        if (q != cudaErrorNotReady) return cuda_status(q, "nccl", "all-reduce", e);
        sched_yield();
    }
}

static int allreduce_on_device(NcclImpl *m, void *buf, size_t n, int is_double, Error *e) {
    size_t bytes = n * (is_double ? sizeof(double) : sizeof(float));
    void *dev = buf;
    int staged = !on_device(buf);
    if (staged) {
        if (bytes > m->scratch_bytes) {
            cudaFree(m->scratch);
            m->scratch = NULL;
            m->scratch_bytes = 0;
            if (cuda_alloc_e(&m->scratch, bytes, "nccl", "staging", e)) return -1;
            m->scratch_bytes = bytes;
        }
        dev = m->scratch;
        cudaError_t err = cudaMemcpyAsync(dev, buf, bytes, cudaMemcpyHostToDevice, m->stream);
        if (cuda_status(err, "nccl", "upload", e)) return -1;
    }
    if (nccl_check(ncclAllReduce(dev, dev, n, is_double ? ncclFloat64 : ncclFloat32, ncclSum, m->comm, m->stream),
                   "ncclAllReduce", e))
        return -1;
    if (staged &&
        cuda_status(cudaMemcpyAsync(buf, dev, bytes, cudaMemcpyDeviceToHost, m->stream), "nccl", "download", e))
        return -1;
    return wait_stream(m, e);
}

static int nccl_allreduce_sum(const Comm *c, void *buf, size_t n, int is_double, Error *e) {
    NcclImpl *m = (NcclImpl *)c->impl;
    if (n == 0) return 0;
    if (!m->comm) return err_set(e, "nccl: the communicator was aborted after an earlier error");
    // on this Comm's device, and back to the caller's afterwards (a process may drive several)
    int prev = -1;
    if (cuda_status(cudaGetDevice(&prev), "nccl", "cudaGetDevice", e)) return -1;
    if (prev != m->device && cuda_status(cudaSetDevice(m->device), "nccl", "cudaSetDevice", e)) return -1;
    int rc = allreduce_on_device(m, buf, n, is_double, e);
    if (prev != m->device) cudaSetDevice(prev);
    return rc;
}

static const Comm *boot(const Comm *c) { return ((const NcclImpl *)c->impl)->bootstrap; }

static int nccl_bcast(const Comm *c, void *buf, size_t bytes, int root, Error *e) {
    return comm_bcast(boot(c), buf, bytes, root, e);
}
static int nccl_barrier(const Comm *c, Error *e) { return comm_barrier(boot(c), e); }
static int nccl_gatherv(const Comm *c, const float *send, size_t n, float *recv, int root, Error *e) {
    return comm_gatherv_f32(boot(c), send, n, recv, root, e);
}
static int nccl_scatterv(const Comm *c, const float *send, float *recv, size_t n, int root, Error *e) {
    return comm_scatterv_f32(boot(c), send, recv, n, root, e);
}

static void nccl_free(Comm *c) {
    NcclImpl *m = (NcclImpl *)c->impl;
    if (!m) return;
    cudaSetDevice(m->device);
    if (m->comm) ncclCommDestroy(m->comm);  // NULL: aborted
    cudaFree(m->scratch);
    cudaStreamDestroy(m->stream);
    free(m);
    c->impl = NULL;
}

static const CommOps NCCL_OPS = {nccl_allreduce_sum, nccl_bcast, nccl_barrier, nccl_gatherv, nccl_scatterv,
                                 nccl_free,          1};

static void impl_free(NcclImpl *m) {
    if (!m) return;
    if (m->stream) cudaStreamDestroy(m->stream);
    free(m);
}

extern "C" int comm_init_nccl(Comm *c, const Comm *bootstrap, int device, Error *e) {
    comm_init_single(c);
    if (!bootstrap) return err_set(e, "comm_init_nccl: no bootstrap Comm");
    // The local set-up, then an all-reduce of the failures over the bootstrap: either every rank
    // goes on into ncclCommInitRank (which waits for all of them) or none does, so a rank that
    // failed (a bad device number, no NCCL id) never leaves the others hanging.
    Error local = {{0}};
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    NcclImpl *m = (NcclImpl *)calloc(1, sizeof *m);
    int rc = !m ? err_set(&local, "out of memory") : 0;
    rc = rc || cuda_status(cudaSetDevice(device), "nccl", "cudaSetDevice", &local);
    rc = rc ||
        cuda_status(cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking), "nccl", "cudaStreamCreate", &local);
    if (bootstrap->rank == 0) rc = rc || nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId", &local);
    double failed = rc ? 1 : 0;
    if (comm_allreduce_sum_f64(bootstrap, &failed, 1, e)) {
        impl_free(m);
        return err_prefix(e, "comm_init_nccl");
    }
    if (failed > 0) {
        impl_free(m);
        if (rc) return err_set(e, "comm_init_nccl (device %d): %s", device, local.msg);
        return err_set(e, "comm_init_nccl: %.0f other rank(s) could not set up NCCL", failed);
    }
    if (comm_bcast(bootstrap, &id, sizeof id, 0, e)) {
        impl_free(m);
        return err_prefix(e, "comm_init_nccl: broadcasting the NCCL id");
    }
    if (nccl_check(ncclCommInitRank(&m->comm, bootstrap->size, id, bootstrap->rank), "ncclCommInitRank", e)) {
        impl_free(m);
        return -1;
    }
    m->bootstrap = bootstrap;
    m->device = device;
    c->rank = bootstrap->rank;
    c->size = bootstrap->size;
    c->ops = &NCCL_OPS;
    c->impl = m;
    return 0;
}

#else  // a CUDA build without NCCL

extern "C" int comm_init_nccl(Comm *c, const Comm *bootstrap, int device, Error *e) {
    (void)bootstrap;
    (void)device;
    comm_init_single(c);
    return err_set(e, "this build has no NCCL backend (nccl.h was not found): multi-GPU training needs it");
}

#endif
