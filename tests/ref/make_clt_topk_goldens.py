#!/usr/bin/env python3
"""TopK / BatchTopK CLT oracle: forward, loss and gradients in float64 with PyTorch autograd, using
torch.topk (the selection EleutherAI's sparsify and crosslayer-coding train with), for the C trainer
(libcommon/clt/clt.c with clt_work_set_activation).

    .venv-ref/bin/python tests/ref/make_clt_topk_goldens.py          # from the repo root
    (venv: torch==2.9.1 safetensors==0.6.2 numpy, as tests/ref/make_clt_goldens.py)

Writes tests/golden/clt/topk{0,1,2}.safetensors (F64, config I32). The model (formats/clt.md):
    h[l]  = x[l] @ W_enc[l]^T + b_enc[l]                                  [B, F]
    r[l]  = relu(h[l])
    TopK:      a[l] = scatter of r[l].topk(k, dim=1)          (k per token)
    BatchTopK: a[l] = scatter of r[l].flatten().topk(B*k)     (B*k over the batch, per layer)
    yhat[k] = b_dec[k] + sum_{l<=k} a[l] @ W_dec[l][:, k-l, :]
    loss = (1/B) sum_k sum_t |yhat[k][t] - y[k][t]|^2        (the reconstruction is the whole loss)
Gradients are autograd's: through topk's selected values and relu, 0 for unselected features and
for log_theta (stored as zeros to say so). Tensors: config.int = [L, d, F, B, act (1 TopK,
2 BatchTopK), k]; W_enc.l, b_enc.l, log_theta.l, W_dec.l, b_dec.l; x.l, y.l; yhat.l; loss;
grad.<param>.l; l0.l (selected per token); cut_stat.l (BatchTopK: the smallest selected value;
TopK: the mean over tokens of each token's smallest selected value).
The data are redrawn until the k-th and (k+1)-th largest values of every selection group differ by
>= MARGIN and every selected value is >= MARGIN (float32 implementations then select the same set).
"""
import os

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "clt")
MARGIN = 1e-3
DT = torch.float64
torch.set_num_threads(1)

CASES = [
    dict(name="topk0", seed=11, L=3, d=8, F=24, B=6, act=1, k=4),   # TopK
    dict(name="topk1", seed=22, L=3, d=8, F=24, B=6, act=2, k=4),   # BatchTopK
    dict(name="topk2", seed=33, L=2, d=5, F=12, B=9, act=2, k=3),   # BatchTopK, more tokens than features/k
]


def select(r, act, k):
    """a (same shape as r) keeping the selected entries of r; the groups' sorted values."""
    B, F = r.shape
    if act == 1:
        vals, idx = r.topk(k, dim=1)
        a = torch.zeros_like(r).scatter(1, idx, vals)
        groups = r.detach().sort(dim=1, descending=True).values
        cut = vals.detach().min(dim=1).values.mean()
        return a, groups, k, cut
    flat = r.flatten()
    vals, idx = flat.topk(B * k)
    a = torch.zeros_like(flat).scatter(0, idx, vals).view(B, F)
    groups = flat.detach().sort(descending=True).values[None, :]
    return a, groups, B * k, vals.detach().min()


def build(cs, attempt):
    rng = np.random.default_rng(cs["seed"] + 7919 * attempt)
    L, d, F, B, act, k = cs["L"], cs["d"], cs["F"], cs["B"], cs["act"], cs["k"]
    P = {
        "W_enc": [rng.standard_normal((F, d)) / np.sqrt(d) for _ in range(L)],
        "b_enc": [0.3 * rng.standard_normal(F) for _ in range(L)],
        "log_theta": [np.log(rng.uniform(0.2, 1.0, F)) for _ in range(L)],
        "W_dec": [rng.standard_normal((F, L - l, d)) / np.sqrt(L * d) for l in range(L)],
        "b_dec": [0.1 * rng.standard_normal(d) for _ in range(L)],
    }
    x = [rng.standard_normal((B, d)) for _ in range(L)]
    y = [0.5 * rng.standard_normal((B, d)) for _ in range(L)]
    T = {n: [torch.tensor(v, dtype=DT, requires_grad=True) for v in P[n]] for n in P}
    xt = [torch.tensor(v, dtype=DT) for v in x]
    yt = [torch.tensor(v, dtype=DT) for v in y]
    acts, out = [], {}
    for l in range(L):
        h = xt[l] @ T["W_enc"][l].T + T["b_enc"][l]
        a, groups, K, cut = select(torch.relu(h), act, k)
        kth, nxt = groups[:, K - 1], groups[:, K] if groups.shape[1] > K else torch.zeros(groups.shape[0], dtype=DT)
        if float((kth - nxt).min()) < MARGIN or float(kth.min()) < MARGIN:
            return None
        acts.append(a)
        out[f"l0.{l}"] = np.array([float((a > 0).sum()) / B])
        out[f"cut_stat.{l}"] = np.array([float(cut)])
    yhat = []
    for kk in range(L):
        yk = T["b_dec"][kk].expand(B, d)
        for l in range(kk + 1):
            yk = yk + acts[l] @ T["W_dec"][l][:, kk - l, :]
        yhat.append(yk)
    loss = sum(((yhat[kk] - yt[kk]) ** 2).sum() for kk in range(L)) / B
    loss.backward()
    out["config.int"] = np.array([L, d, F, B, act, k], dtype=np.int32)
    out["loss"] = np.array([float(loss.detach())])
    for n in P:
        for l in range(L):
            out[f"{n}.{l}"] = P[n][l]
            g = T[n][l].grad
            out[f"grad.{n}.{l}"] = np.zeros_like(P[n][l]) if g is None else g.numpy().copy()
    for l in range(L):
        out[f"x.{l}"], out[f"y.{l}"], out[f"yhat.{l}"] = x[l], y[l], yhat[l].detach().numpy()
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for cs in CASES:
        for attempt in range(200):
            out = build(cs, attempt)
            if out is not None:
                break
        else:
            raise AssertionError(f"{cs['name']}: no tie-free data in 200 attempts")
        save_file(out, os.path.join(OUT, cs["name"] + ".safetensors"))
        l0 = [float(out[f"l0.{l}"][0]) for l in range(cs["L"])]
        print(f"{cs['name']}: act {cs['act']} k {cs['k']} attempt {attempt}: loss {float(out['loss'][0]):.6f}, L0 per layer {l0}")


if __name__ == "__main__":
    main()
