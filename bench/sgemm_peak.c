// sgemm_peak — this machine's measured fp32 GEMM throughput (OpenBLAS, all threads), the
// denominator of fwd-acts' "fraction of peak". Prints GFLOP/s for a few square sizes.
#include <stdio.h>
#include <stdlib.h>

#include "matmul.h"
#include "progress.h"

int main(int argc, char **argv) {
    int sizes[] = {512, 1024, 2048};
    double best_all = 0;
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];
        float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
              *c = malloc((size_t)n * n * sizeof(float));
        for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
        matmul_cpu(c, a, b, NULL, n, n, n);  // warm-up
        double best = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_seconds();
            matmul_cpu(c, a, b, NULL, n, n, n);
            double dt = now_seconds() - t0;
            double gflops = 2.0 * n * (double)n * n / dt / 1e9;
            if (gflops > best) best = gflops;
        }
        printf("{\"n\": %d, \"gflops\": %.1f}\n", n, best);
        if (best > best_all) best_all = best;
        free(a); free(b); free(c);
    }
    printf("{\"peak_gflops\": %.1f}\n", best_all);
    (void)argc; (void)argv;
    return 0;
}
