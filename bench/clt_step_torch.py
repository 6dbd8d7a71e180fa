#!/usr/bin/env python3
"""PyTorch reference of one JumpReLU CLT training step with a DENSE decoder, as CircuitLab/CLT-Forge
train (the baseline bench/bench_clt_step.c is compared against; bench/bench_clt_step.sh runs both).

    .venv-ref/bin/python bench/clt_step_torch.py [-L 8] [-d 512] [-F 8192] [-B 1024] [-n 3]
        [--l0 32] [--threads N]
    (venv: torch==2.9.1 CPU, the pin of tests/ref/requirements-models.txt)

Same model and loss as libcommon/clt/clt.h (formats/clt.md): h_l = x_l W_enc[l]^T + b_enc[l]; a = JumpReLU
(straight-through estimator with a rectangle kernel); yhat_k = b_dec[k] + sum_{l<=k} a_l W_dec[l][:, k-l]
computed densely (one GEMM per (l, k) pair, as CLT-Forge's decoder); loss = sum_k |yhat_k - y_k|^2 / B +
lam sum tanh(c a |W_dec|) / B + lam_p sum relu(theta - h) |W_dec| / B; torch.optim.Adam (fp32).
Data x, y ~ N(0, 1); thresholds set per layer to leave --l0 features active per token on the first batch.
Each step (zero_grad, forward, backward, optimizer.step) is timed after one warm-up; the best is printed
as one JSON line. The dense decoder's cost does not depend on L0 or on the bandwidth.
"""
import argparse
import json
import os
import sys
import time

import torch


# the straight-through JumpReLU of the training goldens (the same autograd.Function)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from make_clt_goldens import JumpReLU  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-L", type=int, default=8)
    ap.add_argument("-d", type=int, default=512)
    ap.add_argument("-F", type=int, default=8192)
    ap.add_argument("-B", type=int, default=1024)
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--l0", type=float, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    L, d, F, B = a.L, a.d, a.F, a.B
    W_enc = [torch.nn.Parameter(torch.empty(F, d).uniform_(-F ** -0.5, F ** -0.5)) for _ in range(L)]
    b_enc = [torch.nn.Parameter(torch.zeros(F)) for _ in range(L)]
    W_dec = [torch.nn.Parameter(torch.empty(F, L - l, d).uniform_(-(L * d) ** -0.5, (L * d) ** -0.5)) for l in range(L)]
    b_dec = [torch.nn.Parameter(torch.zeros(d)) for _ in range(L)]
    x = [torch.randn(B, d) for _ in range(L)]
    y = [torch.randn(B, d) for _ in range(L)]
    with torch.no_grad():  # thresholds leaving l0 active features per token
        log_theta = []
        for l in range(L):
            h = (x[l] @ W_enc[l].T).flatten()
            theta = torch.kthvalue(h, h.numel() - int(a.l0 * B)).values.clamp_min(1e-6)
            log_theta.append(torch.nn.Parameter(torch.full((F,), float(theta.log()))))
    params = W_enc + b_enc + log_theta + W_dec + b_dec
    opt = torch.optim.Adam(params, lr=1e-6)
    lam, c, lam_p, eps = 1e-3, 4.0, 3e-6, 0.2

    def step():
        opt.zero_grad(set_to_none=True)
        acts, norms, pre = [], [], 0.0
        for l in range(L):
            h = x[l] @ W_enc[l].T + b_enc[l]
            theta = log_theta[l].exp()
            acts.append(JumpReLU.apply(h, theta, eps))
            norms.append(W_dec[l].pow(2).sum(dim=(1, 2)).sqrt())
            pre = pre + (torch.relu(theta - h) * norms[l]).sum()
        mse = 0.0
        for k in range(L):
            yk = b_dec[k].expand(B, d)
            for l in range(k + 1):
                yk = yk + acts[l] @ W_dec[l][:, k - l, :]
            mse = mse + (yk - y[k]).pow(2).sum()
        sparsity = sum(torch.tanh(c * acts[l] * norms[l]).sum() for l in range(L))
        loss = mse / B + lam * sparsity / B + lam_p * pre / B
        loss.backward()
        opt.step()
        return sum(float((acts[l] > 0).sum()) for l in range(L)) / (L * B)

    step()
    best, l0 = float("inf"), 0.0
    for _ in range(a.n):
        t0 = time.perf_counter()
        l0 = step()
        best = min(best, time.perf_counter() - t0)
    n_params = sum(p.numel() for p in params)
    print(json.dumps({"impl": "torch-dense", "L": L, "d": d, "F": F, "batch": B, "threads": a.threads,
                      "l0_per_layer": round(l0, 2), "params": n_params, "seconds": round(best, 4),
                      "tokens_per_s": round(B / best, 1), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
