#!/usr/bin/env python3
"""CLT training oracle: forward values, losses, gradients and Adam steps of a JumpReLU cross-layer
transcoder, computed in float64 with PyTorch autograd, for the C trainer (libcommon/clt*.c).

    .venv-ref/bin/python tests/ref/make_clt_goldens.py          # from the repo root
    (venv: python3 -m venv V && V/bin/pip install torch==2.9.1 safetensors==0.6.2 numpy; CPU torch is
     enough; the pins of tests/ref/requirements-models.txt also work)

Writes tests/golden/clt/case{0,1,2,3}.safetensors (all tensors float64 except the I32 config); the tensor
names and the exact model/loss are documented in tests/golden/clt/README.md. Deterministic: every
number comes from numpy.random.default_rng(case seed); one torch thread.

The script fails (AssertionError) unless
  * autograd (with the JumpReLU straight-through estimator) agrees to 1e-12 (relative) with an
    independent closed-form numpy backward written from the formulas in the README;
  * torch.autograd.gradcheck (float64 central differences) confirms the gradient of the total loss
    w.r.t. W_enc, b_enc, W_dec, b_dec (where the STE's dh-part is the true derivative, since no h sits
    at a jump) and the gradient of loss_preact w.r.t. log_theta (the only true θ-derivative: the
    STE θ-terms are pseudo-derivatives, checked by the closed form only);
  * no pre-activation is within MARGIN of a tie: |h-θ| and ||h-θ|-ε/2| >= MARGIN (also at the
    parameters reached by the Adam steps), so float32 implementations see the same masks;
  * the per-term gradient sets add up: grad = grad_nopre + grad_nosparse - grad_mse.
It prints a summary per case (how many h are active / inside the STE window / below θ).
"""
import json
import os

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "clt")
MARGIN = 1e-3
torch.set_num_threads(1)
DT = torch.float64


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
class JumpReLU(torch.autograd.Function):
    """a = h * H(h - θ).  Backward: da/dh = H(h - θ);  da/dθ = -(θ/ε) * rect((h - θ)/ε),
    rect(u) = 1 if |u| < 1/2 else 0 (Rajamanoharan et al. 2024, rectangle kernel, as SAELens)."""

    @staticmethod
    def forward(ctx, h, theta, eps):
        ctx.save_for_backward(h, theta)
        ctx.eps = eps
        return h * (h > theta).to(h.dtype)

    @staticmethod
    def backward(ctx, g):
        h, theta = ctx.saved_tensors
        eps = ctx.eps
        gh = g * (h > theta).to(h.dtype)
        rect = (((h - theta) / eps).abs() < 0.5).to(h.dtype)
        gtheta = (g * (-(theta / eps)) * rect).sum(0)  # theta is (F,), broadcast over tokens
        return gh, gtheta, None


PNAMES = ("W_enc", "b_enc", "log_theta", "W_dec", "b_dec")


def param_list(P, L):
    """Flat, fixed-order list of (name, tensor)."""
    out = []
    for nm in PNAMES:
        for l in range(L):
            out.append((f"{nm}.{l}", P[nm][l]))
    return out


def forward(P, x, y, L, hp, use_ste=True):
    """Returns dict with h, a, yhat, norm, theta, loss terms (torch, autograd-connected)."""
    lam, c, lam_p, eps = hp["lam"], hp["c"], hp["lam_p"], hp["eps"]
    B = x[0].shape[0]
    h, a, theta, norm = [], [], [], []
    for l in range(L):
        th = torch.exp(P["log_theta"][l])
        hl = x[l] @ P["W_enc"][l].T + P["b_enc"][l]
        al = JumpReLU.apply(hl, th, eps) if use_ste else hl * (hl > th).to(DT)
        nl = torch.sqrt((P["W_dec"][l] ** 2).sum(dim=(1, 2)))
        h.append(hl); a.append(al); theta.append(th); norm.append(nl)
    yhat = []
    for k in range(L):
        yk = P["b_dec"][k].expand(B, -1)
        for l in range(k + 1):
            yk = yk + a[l] @ P["W_dec"][l][:, k - l, :]
        yhat.append(yk)
    mse = sum(((yhat[k] - y[k]) ** 2).sum() for k in range(L)) / B
    sp = lam * sum(torch.tanh(c * a[l] * norm[l]).sum() for l in range(L)) / B
    pre = lam_p * sum((torch.relu(theta[l] - h[l]) * norm[l]).sum() for l in range(L)) / B
    return dict(h=h, a=a, yhat=yhat, norm=norm, theta=theta, loss_mse=mse, loss_sparsity=sp,
                loss_preact=pre, loss=mse + sp + pre)


def grads(Pnp, xnp, ynp, L, hp):
    """float64 autograd gradients of the total loss w.r.t. every parameter (dict name -> ndarray),
    plus dL/da and dL/dh (with the STE) per layer, and the forward values."""
    P = {nm: [torch.tensor(v, dtype=DT, requires_grad=True) for v in Pnp[nm]] for nm in PNAMES}
    x = [torch.tensor(v, dtype=DT) for v in xnp]
    y = [torch.tensor(v, dtype=DT) for v in ynp]
    f = forward(P, x, y, L, hp)
    for t in f["h"] + f["a"]:
        t.retain_grad()
    f["loss"].backward()
    g = {name: t.grad.detach().numpy().copy() for name, t in param_list(P, L)}
    for l in range(L):
        g[f"h.{l}"] = f["h"][l].grad.detach().numpy().copy()
        g[f"a.{l}"] = f["a"][l].grad.detach().numpy().copy()
    return g, f


def manual_backward(Pnp, xnp, ynp, L, hp):
    """Independent closed-form backward (numpy, float64) from the README formulas."""
    lam, c, lam_p, eps = hp["lam"], hp["c"], hp["lam_p"], hp["eps"]
    B = xnp[0].shape[0]
    We, be, lt, Wd, bd = (Pnp[n] for n in PNAMES)
    th = [np.exp(lt[l]) for l in range(L)]
    h = [xnp[l] @ We[l].T + be[l] for l in range(L)]
    on = [(h[l] > th[l]).astype(np.float64) for l in range(L)]
    a = [h[l] * on[l] for l in range(L)]
    n = [np.sqrt((Wd[l] ** 2).sum(axis=(1, 2))) for l in range(L)]
    yhat = [bd[k] + sum(a[l] @ Wd[l][:, k - l, :] for l in range(k + 1)) for k in range(L)]
    dy = [2.0 / B * (yhat[k] - ynp[k]) for k in range(L)]
    g = {}
    for k in range(L):
        g[f"b_dec.{k}"] = dy[k].sum(0)
    for l in range(L):
        ga = sum(dy[k] @ Wd[l][:, k - l, :].T for k in range(l, L))
        s = np.tanh(c * a[l] * n[l])
        ga = ga + lam / B * c * n[l] * (1 - s ** 2)
        below = (th[l] > h[l]).astype(np.float64)
        gn = lam / B * (c * a[l] * (1 - s ** 2)).sum(0) + lam_p / B * np.maximum(th[l] - h[l], 0).sum(0)
        gh = ga * on[l] - lam_p / B * below * n[l]
        rect = (np.abs((h[l] - th[l]) / eps) < 0.5).astype(np.float64)
        gth = (ga * (-(th[l] / eps)) * rect).sum(0) + lam_p / B * (below * n[l]).sum(0)
        gWd = Wd[l] * (gn / n[l])[:, None, None]
        for k in range(l, L):
            gWd[:, k - l, :] += a[l].T @ dy[k]
        g[f"W_enc.{l}"] = gh.T @ xnp[l]
        g[f"b_enc.{l}"] = gh.sum(0)
        g[f"log_theta.{l}"] = th[l] * gth
        g[f"W_dec.{l}"] = gWd
        g[f"a.{l}"] = ga
        g[f"h.{l}"] = gh
    return g


def max_rel(a, b):
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def margins(h, theta, eps):
    d = np.abs(h - theta)
    return float(d.min()), float(np.abs(d - eps / 2).min())


class TieError(AssertionError):
    pass


def check_margins(Pnp, xnp, L, eps, where):
    for l in range(L):
        h = xnp[l] @ Pnp["W_enc"][l].T + Pnp["b_enc"][l]
        m0, m1 = margins(h, np.exp(Pnp["log_theta"][l]), eps)
        if not (m0 >= MARGIN and m1 >= MARGIN):
            raise TieError(f"{where}: layer {l}: tie margin |h-θ| {m0:.2e}, ||h-θ|-ε/2| {m1:.2e} < {MARGIN}")


def gradchecks(Pnp, xnp, ynp, L, hp):
    """gradcheck of the smooth parts (see module docstring)."""
    x = [torch.tensor(v, dtype=DT) for v in xnp]
    y = [torch.tensor(v, dtype=DT) for v in ynp]
    lt = [torch.tensor(v, dtype=DT) for v in Pnp["log_theta"]]
    smooth = [torch.tensor(v, dtype=DT, requires_grad=True)
              for nm in ("W_enc", "b_enc", "W_dec", "b_dec") for v in Pnp[nm]]

    def f_total(*ts):
        P = {"W_enc": list(ts[0:L]), "b_enc": list(ts[L:2 * L]), "W_dec": list(ts[2 * L:3 * L]),
             "b_dec": list(ts[3 * L:4 * L]), "log_theta": lt}
        return forward(P, x, y, L, hp, use_ste=False)["loss"]

    # eps 1e-6: far inside the tie margin, so no mask flips during the differences
    check(torch.autograd.gradcheck(f_total, tuple(smooth), eps=1e-6, atol=1e-7, rtol=1e-6),
          "gradcheck total loss wrt W_enc, b_enc, W_dec, b_dec")
    Wc = {nm: [torch.tensor(v, dtype=DT) for v in Pnp[nm]] for nm in ("W_enc", "b_enc", "W_dec", "b_dec")}
    lts = [torch.tensor(v, dtype=DT, requires_grad=True) for v in Pnp["log_theta"]]

    def f_pre(*ts):
        P = dict(Wc, log_theta=list(ts))
        return forward(P, x, y, L, hp, use_ste=False)["loss_preact"]

    check(torch.autograd.gradcheck(f_pre, tuple(lts), eps=1e-6, atol=1e-9, rtol=1e-6),
          "gradcheck loss_preact wrt log_theta")

    # and the finite-difference derivative of the *total* loss wrt log_theta equals the preact part
    # alone (a is locally constant in θ): the STE θ-terms are pseudo-derivatives by construction.
    def f_tot_lt(*ts):
        P = dict(Wc, log_theta=list(ts))
        return forward(P, x, y, L, hp, use_ste=False)["loss"]

    check(torch.autograd.gradcheck(f_tot_lt, tuple(lts), eps=1e-6, atol=1e-7, rtol=1e-6),
          "finite differences of total loss wrt log_theta == d loss_preact / d log_theta")


def adam_steps(Pnp, xnp, ynp, L, hp, lr, nsteps):
    """torch.optim.Adam (β1 .9, β2 .999, eps 1e-8, no weight decay) on the float64 parameters, from
    zero moments, each step using the gradient of the total loss at the current parameters.
    Returns a list (per step) of (params dict name->array, exp_avg, exp_avg_sq)."""
    P = {nm: [torch.tensor(v, dtype=DT, requires_grad=True) for v in Pnp[nm]] for nm in PNAMES}
    x = [torch.tensor(v, dtype=DT) for v in xnp]
    y = [torch.tensor(v, dtype=DT) for v in ynp]
    plist = param_list(P, L)
    opt = torch.optim.Adam([t for _, t in plist], lr=lr, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.0, amsgrad=False, foreach=False)
    res = []
    for _ in range(nsteps):
        opt.zero_grad()
        forward(P, x, y, L, hp)["loss"].backward()
        opt.step()
        st = {n: t.detach().numpy().copy() for n, t in plist}
        m = {n: opt.state[t]["exp_avg"].numpy().copy() for n, t in plist}
        v = {n: opt.state[t]["exp_avg_sq"].numpy().copy() for n, t in plist}
        res.append((st, m, v))
    return res


def adam_manual(p, g, m, v, t, lr, b1=0.9, b2=0.999, e=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + e)
    return p, m, v


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------
CASES = [
    # case0: generic. Adam: one step.
    dict(name="case0", seed=1000, L=3, d=8, F=16, B=5, lam=0.7, c=4.0, lam_p=0.01, eps=0.5,
         special=False, adam_lr=1e-2, adam_steps=1),
    # case1: features 0..3 of every layer are special (always on / always off / θ far above /
    # centred on θ so that many h fall inside the STE window); no Adam.
    dict(name="case1", seed=2000, L=4, d=9, F=14, B=7, lam=0.7, c=4.0, lam_p=0.01, eps=0.6,
         special=True, adam_lr=None, adam_steps=0),
    # case2: a single layer (plain JumpReLU transcoder), SAELens' bandwidth 2.0 (wide window).
    # Adam: two steps, with moments.
    dict(name="case2", seed=3000, L=1, d=6, F=10, B=4, lam=0.7, c=4.0, lam_p=0.01, eps=2.0,
         special=False, adam_lr=1e-2, adam_steps=2),
    # case3: sparse — thresholds far above most pre-activations and a narrow window, so fewer than
    # 5% of the (token, feature) pairs are active or in the window (the C backward's per-pair
    # path; the other cases take its dense dL/da GEMM path, clt.h CLT_DENSE_DA_FRACTION).
    dict(name="case3", seed=4000, L=2, d=4, F=40, B=6, lam=0.7, c=4.0, lam_p=0.01, eps=0.1,
         special=False, adam_lr=1e-2, adam_steps=1, theta=(1.6, 2.4)),
]


def make_data(cs, attempt):
    rng = np.random.default_rng(cs["seed"] + 7919 * attempt)
    L, d, F, B = cs["L"], cs["d"], cs["F"], cs["B"]
    x = [rng.standard_normal((B, d)) for _ in range(L)]
    y = [0.5 * rng.standard_normal((B, d)) for _ in range(L)]
    We = [rng.standard_normal((F, d)) / np.sqrt(d) for _ in range(L)]
    be = [0.3 * rng.standard_normal(F) for _ in range(L)]
    theta = [rng.uniform(*cs.get("theta", (0.2, 1.0)), F) for _ in range(L)]
    Wd = [rng.standard_normal((F, L - l, d)) / np.sqrt(L * d) for l in range(L)]
    bd = [0.1 * rng.standard_normal(d) for _ in range(L)]
    if cs["special"]:
        for l in range(L):
            pre = x[l] @ We[l].T
            be[l][0] = theta[l][0] + 3.0 - pre[:, 0].min()      # far above θ on every token
            be[l][1] = -4.0 - pre[:, 1].max()                   # far below θ (and below 0)
            theta[l][2] = 5.0                                   # θ far above every h
            be[l][2] = 0.0
            be[l][3] = theta[l][3] - pre[:, 3].mean()           # centred on θ: inside the window
            We[l][3] *= 0.5 * cs["eps"] / max(1e-9, pre[:, 3].std())  # spread ~ ε/2 around θ
            be[l][3] = theta[l][3] - (x[l] @ We[l][3])[:].mean()
    P = {"W_enc": We, "b_enc": be, "log_theta": [np.log(t) for t in theta], "W_dec": Wd, "b_dec": bd}
    return P, x, y


def stats(f, L, eps):
    tot = act = win_on = win_off = below = 0
    for l in range(L):
        h = f["h"][l].detach().numpy(); th = f["theta"][l].detach().numpy()
        tot += h.size
        act += int((h > th).sum())
        w = np.abs(h - th) < eps / 2
        win_on += int((w & (h > th)).sum()); win_off += int((w & (h <= th)).sum())
        below += int((h < th).sum())
    return tot, act, win_on, win_off, below


def build_case(cs):
    """Draws data (attempt 0, 1, ... until no tie within MARGIN at any point where a gradient is
    taken), checks it and writes the file."""
    for attempt in range(100):
        try:
            return build_once(cs, attempt)
        except TieError as e:
            print(f"  ({cs['name']} attempt {attempt}: {e}; redrawing)")
    raise AssertionError(f"{cs['name']}: no tie-free data in 100 attempts")


def build_once(cs, attempt):
    L = cs["L"]
    hp = {k: cs[k] for k in ("lam", "c", "lam_p", "eps")}
    Pnp, xnp, ynp = make_data(cs, attempt)
    check_margins(Pnp, xnp, L, hp["eps"], cs["name"])

    g, f = grads(Pnp, xnp, ynp, L, hp)
    gm = manual_backward(Pnp, xnp, ynp, L, hp)
    worst = max(max_rel(g[k], gm[k]) for k in gm)
    check(worst < 1e-12, f"{cs['name']}: autograd vs closed form: max rel diff {worst:.2e}")
    gradchecks(Pnp, xnp, ynp, L, hp)

    g_nopre, _ = grads(Pnp, xnp, ynp, L, dict(hp, lam_p=0.0))
    g_nosp, _ = grads(Pnp, xnp, ynp, L, dict(hp, lam=0.0))
    g_mse, _ = grads(Pnp, xnp, ynp, L, dict(hp, lam=0.0, lam_p=0.0))
    for k in g:
        check(max_rel(g[k], g_nopre[k] + g_nosp[k] - g_mse[k]) < 1e-12, f"{cs['name']}: {k}: terms don't add up")

    T = {}
    T["config.int"] = np.array([L, cs["d"], cs["F"], cs["B"]], dtype=np.int32)
    T["config.f64"] = np.array([hp["lam"], hp["c"], hp["lam_p"], hp["eps"]], dtype=np.float64)
    for nm in PNAMES:
        for l in range(L):
            T[f"{nm}.{l}"] = Pnp[nm][l]
    for l in range(L):
        T[f"x.{l}"] = xnp[l]; T[f"y.{l}"] = ynp[l]
        T[f"h.{l}"] = f["h"][l].detach().numpy()
        T[f"a.{l}"] = f["a"][l].detach().numpy()
        T[f"yhat.{l}"] = f["yhat"][l].detach().numpy()
        T[f"norm.{l}"] = f["norm"][l].detach().numpy()
        T[f"theta.{l}"] = f["theta"][l].detach().numpy()
    for nm in ("loss", "loss_mse", "loss_sparsity", "loss_preact"):
        T[nm] = np.array([f[nm].item()], dtype=np.float64)
    for nm in PNAMES:
        for l in range(L):
            T[f"grad.{nm}.{l}"] = g[f"{nm}.{l}"]
            T[f"grad_nopre.{nm}.{l}"] = g_nopre[f"{nm}.{l}"]
            T[f"grad_nosparse.{nm}.{l}"] = g_nosp[f"{nm}.{l}"]
    for l in range(L):
        T[f"grad.a.{l}"] = g[f"a.{l}"]
        T[f"grad.h.{l}"] = g[f"h.{l}"]

    meta = {"L": L, "d": cs["d"], "F": cs["F"], "B": cs["B"], "lam": hp["lam"], "c": hp["c"],
            "lam_p": hp["lam_p"], "eps": hp["eps"], "generator": "tests/ref/make_clt_goldens.py"}

    if cs["adam_steps"]:
        lr = cs["adam_lr"]
        res = adam_steps(Pnp, xnp, ynp, L, hp, lr, cs["adam_steps"])
        T["adam.config"] = np.array([lr, 0.9, 0.999, 1e-8, cs["adam_steps"]], dtype=np.float64)
        meta.update(adam_lr=lr, adam_beta1=0.9, adam_beta2=0.999, adam_eps=1e-8, adam_steps=cs["adam_steps"])
        # closed-form Adam check, step by step, with gradients recomputed at each step's parameters
        cur = {f"{nm}.{l}": Pnp[nm][l] for nm in PNAMES for l in range(L)}
        m = {k: np.zeros_like(v) for k, v in cur.items()}
        v = {k: np.zeros_like(v) for k, v in cur.items()}
        for t, (st, mt, vt) in enumerate(res, start=1):
            Pc = {nm: [cur[f"{nm}.{l}"] for l in range(L)] for nm in PNAMES}
            check_margins(Pc, xnp, L, hp["eps"], f"{cs['name']} adam step {t} (input params)")
            gt, _ = grads(Pc, xnp, ynp, L, hp)
            for k in cur:
                cur[k], m[k], v[k] = adam_manual(cur[k], gt[k], m[k], v[k], t, lr)
                check(max_rel(cur[k], st[k]) < 1e-12 and max_rel(m[k], mt[k]) < 1e-12
                      and max_rel(v[k], vt[k]) < 1e-12, f"{cs['name']}: adam step {t} {k}")
                nz = np.abs(gt[k])[gt[k] != 0]
                check(nz.size == 0 or nz.min() > 1e-6, f"{cs['name']}: adam step {t} {k}: tiny nonzero grad "
                      f"{nz.min() if nz.size else 0:.1e} (float32 would disagree)")
            pref = "adam" if t == 1 else f"adam{t}"
            for k in cur:
                T[f"{pref}.{k}"] = st[k]
                if cs["adam_steps"] > 1:
                    T[f"{pref}_m.{k}"] = mt[k]
                    T[f"{pref}_v.{k}"] = vt[k]

    T = {k: np.ascontiguousarray(v) for k, v in T.items()}
    for k, v in T.items():
        check(v.dtype in (np.float64, np.int32), f"{k}: dtype {v.dtype}")
    path = os.path.join(OUT, cs["name"] + ".safetensors")
    # one metadata key (safetensors stores the metadata as a hash map: several keys come out in a
    # random order, and the file would not be byte-reproducible)
    save_file(T, path, metadata={"clt": json.dumps(meta, sort_keys=True)})
    tot, act, won, woff, below = stats(f, L, hp["eps"])
    m0 = min(margins(f["h"][l].detach().numpy(), f["theta"][l].detach().numpy(), hp["eps"])[0] for l in range(L))
    m1 = min(margins(f["h"][l].detach().numpy(), f["theta"][l].detach().numpy(), hp["eps"])[1] for l in range(L))
    print(f"{cs['name']}: L={L} d={cs['d']} F={cs['F']} B={cs['B']} lam={hp['lam']} c={hp['c']} "
          f"lam_p={hp['lam_p']} eps={hp['eps']} (data attempt {attempt})")
    print(f"  h: {tot} total, {act} active, in STE window: {won} active + {woff} inactive, {below} below θ; "
          f"min |h-θ| {m0:.3g}, min ||h-θ|-ε/2| {m1:.3g}")
    print(f"  loss {f['loss'].item():.12g} = mse {f['loss_mse'].item():.12g} + sparsity "
          f"{f['loss_sparsity'].item():.12g} + preact {f['loss_preact'].item():.12g}")
    print(f"  autograd vs closed form max rel {worst:.1e}; gradcheck ok; {len(T)} tensors, "
          f"{os.path.getsize(path)} bytes" + (f"; adam {cs['adam_steps']} step(s) lr {cs['adam_lr']}"
                                              if cs["adam_steps"] else ""))
    return os.path.getsize(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    total = sum(build_case(cs) for cs in CASES)
    print(f"total {total} bytes in {OUT}")
    check(total < 250_000, "goldens too large")


if __name__ == "__main__":
    main()
