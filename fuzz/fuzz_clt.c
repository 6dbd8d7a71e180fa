// fuzz_clt.c — libFuzzer target for CLT checkpoints (clt_load, the circuit-tracer layout): the
// input is split (fuzz_files.h) into W_enc_0.safetensors and W_dec_0.safetensors of a one-layer
// CLT and loaded. Any input must load (every value finite, thresholds positive) or fail with an
// Error — never crash or read outside the files.
#include <math.h>
#include <stdint.h>

#include "clt_io.h"
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *enc, *dec;
    size_t nenc, ndec;
    fuzz_split(data, size, &enc, &nenc, &dec, &ndec);
    fuzz_put("W_enc_0.safetensors", enc, nenc);
    fuzz_put("W_dec_0.safetensors", dec, ndec);
    CltParams p;
    Error e;
    if (clt_load(fuzz_dir(), &p, &e) == 0) {
        for (size_t i = 0; i < (size_t)p.F * p.d; i++)
            if (!isfinite(p.W_enc[0][i]) || !isfinite(p.W_dec[0][i])) abort();  // clt_load promises finite values
        clt_params_free(&p);
    }
    return 0;
}
