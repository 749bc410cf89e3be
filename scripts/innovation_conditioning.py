"""What the same-frame innovations should be conditioned on, by held-out loss (numpy only).

Diagnostic, not part of the toolkit. On datasets/dag2023 (neurons seen in at least 4 of the 7
worms, z-scored per recording, 0 where missing, as `sbtg infer` builds its panel) each frame
x_{t+1} is predicted from the three frames before it, with five folds of contiguous blocks of
every recording (as `sbtg infer` cross-fits), by ridge regression on
- every neuron's three past frames (SBTG's window model conditions on these), one ridge for all
  coefficients,
- every neuron's three past frames, the other neurons' coefficients shrunk harder than the
  neuron's own (ridge 0.01 on its own past, `cross` on the others': the regression form of
  SBTG's shrinkage towards independent neurons, `--shrinkage independent-neurons`), or
- each neuron's own three past frames only (per-neuron autoregressions).
It prints the held-out mean squared prediction error on observed coordinates, the choice the
held-out loss makes, and only then, for information, how the correlation of the held-out
innovations of each conditioning ranks Cook et al. 2019 connections (cell level, chemical or
electrical, undirected; AUROC of |correlation|).

Run from the repository root: python3 scripts/innovation_conditioning.py
"""
import csv
import glob
from collections import Counter

import numpy as np

PAST = 3
FOLDS = 5


def panel():
    recs = []
    for f in sorted(glob.glob("datasets/dag2023/*.traces.csv")):
        with open(f) as fh:
            r = csv.reader(fh)
            head = next(r)[1:]
            rows = [[float(v) if v not in ("", "nan", "NaN") else np.nan for v in row[1:]] for row in r]
        recs.append((head, np.array(rows)))
    seen = Counter(n for h, _ in recs for n in set(h) if not n.endswith("?"))
    neurons = sorted(n for n, c in seen.items() if c >= 4)
    idx = {n: i for i, n in enumerate(neurons)}
    xs = []
    for h, a in recs:
        x = np.zeros((a.shape[0], len(neurons)))
        m = np.zeros_like(x)
        for j, n in enumerate(h):
            if n in idx:
                col = a[:, j]
                ok = np.isfinite(col)
                x[ok, idx[n]] = (col[ok] - col[ok].mean()) / col[ok].std()
                m[ok, idx[n]] = 1.0
        xs.append((x, m))
    return neurons, xs


def windows(xs):
    z, m, fold = [], [], []
    for x, o in xs:
        t = x.shape[0] - PAST
        z.append(np.concatenate([x[k : k + t] for k in range(PAST + 1)], 1))
        m.append(np.concatenate([o[k : k + t] for k in range(PAST + 1)], 1))
        fold.append(np.minimum(np.arange(t) * FOLDS // t, FOLDS - 1))
    return np.concatenate(z), np.concatenate(m), np.concatenate(fold)


def auroc(score, label):
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    p = label.sum()
    q = len(label) - p
    return (ranks[label].sum() - p * (p + 1) / 2) / (p * q)


def main():
    neurons, xs = panel()
    n = len(neurons)
    z, m, fold = windows(xs)
    past, fut = slice(0, PAST * n), slice(PAST * n, (PAST + 1) * n)
    idx = {name: i for i, name in enumerate(neurons)}
    wired = np.zeros((n, n), bool)
    with open("datasets/connectomes/cook2019_herm_cell.csv") as fh:
        for r in csv.DictReader(fh):
            if r["pre"] in idx and r["post"] in idx and float(r["weight"]) > 0:
                wired[idx[r["pre"]], idx[r["post"]]] = True
    wired |= wired.T
    iu = np.triu_indices(n, 1)
    results = []
    modes = [("every neuron's past", r) for r in (0.01, 0.03, 0.1)]
    modes += [("others' past shrunk", r) for r in (0.1, 0.3, 1.0, 3.0)]
    modes += [("own past only", r) for r in (0.01, 0.03, 0.1)]
    own = np.zeros((PAST * n, n), bool)
    for i in range(n):
        own[[i + k * n for k in range(PAST)], i] = True
    for mode, ridge in modes:
        sse = cnt = 0.0
        per_fold = []
        uu = np.zeros((n, n))
        both = np.zeros((n, n))
        for f in range(FOLDS):
            tr, te = fold != f, fold == f
            xp, y = z[tr][:, past], z[tr][:, fut]
            gram, cross = xp.T @ xp / len(xp), xp.T @ y / len(xp)
            if mode == "every neuron's past":
                b = np.linalg.solve(gram + ridge * np.eye(PAST * n), cross)
                pred = z[te][:, past] @ b
            elif mode == "others' past shrunk":
                pred = np.zeros((te.sum(), n))
                for i in range(n):
                    pen = np.where(own[:, i], 0.01, ridge)
                    pred[:, i] = z[te][:, past] @ np.linalg.solve(gram + np.diag(pen), cross[:, i])
            else:
                pred = np.zeros((te.sum(), n))
                for i in range(n):
                    cols = [i + k * n for k in range(PAST)]
                    a = xp[:, cols]
                    b = np.linalg.solve(a.T @ a / len(a) + ridge * np.eye(PAST), a.T @ y[:, i] / len(a))
                    pred[:, i] = z[te][:, cols] @ b
            o = m[te][:, fut]
            e = (z[te][:, fut] - pred) * o
            sse += (e**2).sum()
            cnt += o.sum()
            per_fold.append((e**2).sum() / o.sum())
            uu += e.T @ e
            both += o.T @ o
        c = uu / np.maximum(both, 1)
        d = np.sqrt(np.diag(c))
        corr = c / np.outer(d, d)
        results.append((mode, ridge, sse / cnt, auroc(np.abs(corr[iu]), wired[iu]), per_fold))
    print(f"{len(neurons)} neurons, {len(z)} windows of {PAST + 1} frames, {FOLDS} block folds")
    print("conditioning            ridge  held-out MSE (per fold)  [others' past shrunk: ridge on the others' coefficients]")
    for mode, ridge, mse, _, pf in results:
        print(f"{mode:<22} {ridge:>6}  {mse:.4f} ({' '.join(f'{v:.4f}' for v in pf)})")
    best = min(results, key=lambda r: r[2])
    print(f"held-out loss chooses: {best[0]}, ridge {best[1]}")
    print("then, for information, Cook 2019 AUROC of the held-out innovation correlations:")
    for mode, ridge, _, au, _ in results:
        print(f"{mode:<22} {ridge:>6}  {au:.3f}")


if __name__ == "__main__":
    main()
