#!/usr/bin/env python3
"""The equal-work PyTorch reference for `sbtg bench --training`.

Trains the same linear-coupling energy as `sbtg infer`'s default on the same windows
with PyTorch, written the way score models are written there: the energy as an
`nn.Module`, the score as its input gradient by `torch.autograd.grad(..., create_graph=True)`,
the DSM loss back-propagated through it ("double backprop"), Adam.

    U(z) = g_P(x_P) + g_F(x_F) + x_Fᵀ W x_P,   g(x) = ½ xᵀ S x + MLP(x),  S = (A + Aᵀ)/2,
    MLP: n → 64 → 64 → 1 with SiLU; s(y) = −∇U(y); loss Σ((s + T) ⊙ M)² / Σ M

with antithetic pairs y = z ± σε (targets ∓ε/σ; M masks neurons a recording lacks), σ = 0.1,
batch 128 windows (256 rows), Adam lr 1e-3, 100 epochs, from a random start. The shapes
are those of fold 1 in `sbtg bench --training` on datasets/dag2023: windows of 3 frames of
the 102 neurons identified in a majority of the recordings (306 coordinates), 3990 training
windows (`--windows`, drawn at random from all windows; the work of a step does not depend
on which). Only the time of the training steps is reported (seconds per fit, steps per
second, GFLOP/s of the step's products), on one thread by default.

Run: python3 scripts/pytorch_training_reference.py [--threads 1] [--epochs 100]
Needs numpy and torch (CPU).
"""
import argparse
import csv
import glob
import os
import time

import numpy as np
import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def load_windows(folder, frames, min_recordings):
    """Standardised windows [x_t, …, x_{t+frames−1}] inside each recording, with masks."""
    recs = []
    for path in sorted(glob.glob(os.path.join(folder, "*.traces.csv"))):
        with open(path) as f:
            rows = list(csv.reader(f))
        names = rows[0][1:]
        data = np.array([[float(v) if v not in ("", "NaN", "nan") else np.nan for v in r[1:]]
                         for r in rows[1:]])
        recs.append(dict(zip(names, data.T)))
    counts = {}
    for r in recs:
        for name, trace in r.items():
            if "?" not in name and np.isfinite(trace).any():
                counts[name] = counts.get(name, 0) + 1
    neurons = sorted(n for n, c in counts.items() if c >= min_recordings)
    zs, ms = [], []
    for r in recs:
        t = len(next(iter(r.values())))
        x = np.full((t, len(neurons)), np.nan)
        for j, name in enumerate(neurons):
            if name in r:
                x[:, j] = r[name]
        for s in range(t - frames + 1):
            zs.append(x[s:s + frames].reshape(-1))
    z = np.array(zs)
    mask = np.isfinite(z).astype(np.float32)
    mean = np.nanmean(z, axis=0)
    std = np.nanstd(z, axis=0)
    std[~np.isfinite(std) | (std == 0)] = 1.0
    z = np.where(mask > 0, (z - mean) / std, 0.0).astype(np.float32)
    return z, mask, len(neurons)


class SelfEnergy(nn.Module):
    def __init__(self, n, hidden):
        super().__init__()
        self.a = nn.Parameter(torch.eye(n))
        self.mlp = nn.Sequential(nn.Linear(n, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        s = 0.5 * (self.a + self.a.T)
        return 0.5 * ((x @ s) * x).sum(1) + self.mlp(x).squeeze(1)


class LinearEnergy(nn.Module):
    def __init__(self, n_past, n_future, hidden):
        super().__init__()
        self.n_past = n_past
        self.past = SelfEnergy(n_past, hidden)
        self.future = SelfEnergy(n_future, hidden)
        self.w = nn.Parameter(torch.zeros(n_future, n_past))

    def forward(self, y):
        xp, xf = y[:, :self.n_past], y[:, self.n_past:]
        return self.past(xp) + self.future(xf) + ((xf @ self.w) * xp).sum(1)


def gemm_flops_per_step(rows, n_past, n_future, hidden):
    """`2mnk` of the products a step needs (forward, input gradient, parameter gradient)."""
    w = n_past + n_future
    quad = 2 * 2 * rows * w * w  # Y L and Yᵀ D
    mlp = 0
    for n in (n_past, n_future):
        mlp += 5 * 2 * rows * n * hidden + 6 * 2 * rows * hidden * hidden
    return quad + mlp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "datasets", "dag2023"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--windows", type=int, default=3990)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--min-recordings", type=int, default=4,
                    help="neurons identified (no '?') in at least this many recordings; "
                         "sbtg's default is a majority (4 of 7)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    z, mask, n = load_windows(args.data, args.frames, args.min_recordings)
    take = np.sort(rng.choice(len(z), size=min(args.windows, len(z)), replace=False))
    z, mask = torch.from_numpy(z[take]), torch.from_numpy(mask[take])
    n_future = n
    n_past = n * (args.frames - 1)
    model = LinearEnergy(n_past, n_future, 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sigma = args.sigma
    steps = 0
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(z))
        for k in range(0, len(z), args.batch):
            idx = order[k:k + args.batch]
            zb, mb = z[idx], mask[idx]
            eps = torch.randn_like(zb) * mb
            y = torch.cat([zb + sigma * eps, zb - sigma * eps]).requires_grad_(True)
            target = torch.cat([eps / sigma, -eps / sigma])
            m = torch.cat([mb, mb])
            energy = model(y).sum()
            (grad,) = torch.autograd.grad(energy, y, create_graph=True)
            loss = (((target - grad) * m) ** 2).sum() / m.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        if epoch == 0 or (epoch + 1) % 20 == 0:
            print(f"epoch {epoch + 1}: batch loss {loss.item():.3f}", flush=True)
    seconds = time.perf_counter() - t0
    flops = gemm_flops_per_step(2 * args.batch, n_past, n_future, 64)
    print(f"torch {torch.__version__}, {args.threads} thread(s): {len(z)} windows x "
          f"{n_past + n_future} coordinates, {args.epochs} epochs, {steps} steps")
    print(f"seconds per fit {seconds:.2f}; steps/s {steps / seconds:.0f}; "
          f"GEMM GFLOP/s {flops * steps / seconds / 1e9:.1f}")


if __name__ == "__main__":
    main()
