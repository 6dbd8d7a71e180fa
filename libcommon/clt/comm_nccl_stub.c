// comm_nccl_stub.c — comm_nccl.cu's comm_init_nccl in a build without CUDA: it returns
// CUDA_STUB_MSG. Like every *_stub.c, in libcommon.a only then (see kernels/cuda_stub.c).
#include <stddef.h>

#include "comm.h"
#include "cuda_common.h"

int comm_init_nccl(Comm *c, const Comm *bootstrap, int device, Error *e) {
    (void)bootstrap, (void)device;
    comm_init_single(c);
    return err_set(e, CUDA_STUB_MSG);
}
