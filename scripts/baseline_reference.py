#!/usr/bin/env python3
"""Float64 references for the baselines of `sbtg infer --method ...`.

Writes, under tests/fixtures/baseline/:
  multi/rec_a.traces.csv, multi/rec_b.traces.csv   two recordings of a 4-neuron VAR(1);
      N3 is not identified in rec_b (no column) and N1 has a 5-frame gap in rec_a, so the
      missing-value rules (a target's regression uses the windows where it is observed,
      missing regressors enter as 0, one intercept per recording) are exercised.
  single/rec.traces.csv                            one 5-neuron recording for PCMCI.
  reference.json                                   the expected statistics.

The references are written independently of the Rust code, with numpy/scipy:
  * partial correlation: inverse of the ridge covariance of the lagged design, Fisher z;
  * conditional Granger: VAR(2) least squares with ridge, Newey-West (Bartlett,
    bandwidth 3) sandwich standard errors from explicit loops over time;
  * pairwise Granger: bivariate OLS F(1, dof) test; checked here against statsmodels'
    `grangercausalitytests` on one recording;
  * PCMCI: tigramite's own `PCMCI.run_pcmci` with `ParCorr` (tau_max 2, pc_alpha 0.2).

Matrices in reference.json are [target][source] (null where untested).
Run: python3 scripts/baseline_reference.py   (numpy, scipy, statsmodels, tigramite)
"""
import json
import os

import numpy as np
from scipy import stats

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "baseline")
LAGS = [1, 2]
P = 2  # largest lag
RIDGE = 0.01
BANDWIDTH = 3.0


def simulate(a, frames, seed, noise=1.0):
    rng = np.random.default_rng(seed)
    n = a.shape[0]
    x = np.zeros(n)
    out = []
    for t in range(frames + 100):
        x = a @ x + noise * rng.standard_normal(n)
        if t >= 100:
            out.append(x.copy())
    return np.array(out)


def write_traces(path, values, names):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("time_s," + ",".join(names) + "\n")
        for t, row in enumerate(values):
            cells = ["nan" if np.isnan(v) else repr(float(v)) for v in row]
            f.write(f"{t * 0.5!r}," + ",".join(cells) + "\n")


def zscore(values):
    """Per-recording z-score over observed frames (ddof 1); 0 and mask 0 where missing."""
    mask = ~np.isnan(values)
    z = np.zeros_like(values)
    for j in range(values.shape[1]):
        v = values[mask[:, j], j]
        if len(v) == 0:
            continue
        z[mask[:, j], j] = (v - v.mean()) / v.std(ddof=1)
    return z, mask.astype(float)


def windows(recs, blocks):
    """Rows [x_t, ..., x_{t+blocks-1}] of every recording; recording id per row."""
    zs, ms, rid = [], [], []
    for r, (z, m) in enumerate(recs):
        t_len = z.shape[0] - blocks + 1
        zs.append(np.hstack([z[k : k + t_len] for k in range(blocks)]))
        ms.append(np.hstack([m[k : k + t_len] for k in range(blocks)]))
        rid += [r] * t_len
    return np.vstack(zs), np.vstack(ms), np.array(rid)


def centred_rows(z, rid, rows):
    x = z[rows].copy()
    for r in np.unique(rid[rows]):
        sel = rid[rows] == r
        x[sel] -= x[sel].mean(axis=0)
    return x, len(np.unique(rid[rows]))


def segments_of(rows, rid):
    """Break points: consecutive selected rows that are adjacent windows of one recording."""
    seg = [0]
    for k in range(1, len(rows)):
        if rows[k] != rows[k - 1] + 1 or rid[rows[k]] != rid[rows[k - 1]]:
            seg.append(k)
    return seg + [len(rows)]


def newey_west(h, bounds, b):
    """(Gamma_0 + 2 sum_{l<b} (1 - l/b) Gamma_l) / (N - 1) of the centred series h."""
    hc = h - h.mean()
    omega = 0.0
    for lag in range(0, int(np.ceil(b))):
        w = 1.0 if lag == 0 else 2.0 * (1.0 - lag / b)
        g = 0.0
        for s, e in zip(bounds[:-1], bounds[1:]):
            for t in range(s, e - lag):
                g += hc[t] * hc[t + lag]
        omega += w * g
    return omega / (len(h) - 1)


def empty(n):
    return [[None] * n for _ in range(n)]


def fill(out, j, i, eff, t, p):
    out["effect"][j][i], out["t"][j][i], out["p"][j][i] = float(eff), float(t), float(p)


def multi_reference(recs, n):
    z, m, rid = windows(recs, P + 1)
    res = {
        meth: {str(r): {"effect": empty(n), "t": empty(n), "p": empty(n)} for r in LAGS}
        for meth in ["partial-correlation", "granger", "pairwise-granger"]
    }
    for j in range(n):
        ycol = P * n + j
        rows = np.where(m[:, ycol] > 0)[0]
        x, n_rec = centred_rows(z, rid, rows)
        N = len(rows)
        dof = N - n_rec
        # Partial correlation.
        d = (P + 1) * n
        theta = np.linalg.inv(x.T @ x / dof + RIDGE * np.eye(d))
        for i in range(n):
            if i == j:
                continue
            for r in LAGS:
                b = (P - r) * n + i
                rho = -theta[ycol, b] / np.sqrt(theta[ycol, ycol] * theta[b, b])
                zz = np.arctanh(rho) * np.sqrt(dof - (d - 2) - 2)
                fill(res["partial-correlation"][str(r)], j, i, rho, zz, 2 * stats.norm.sf(abs(zz)))
        # Conditional Granger, VAR(P) with ridge and HAC errors.
        past = x[:, : P * n]
        y = x[:, ycol]
        ginv = np.linalg.inv(past.T @ past + RIDGE * dof * np.eye(P * n))
        beta = ginv @ past.T @ y
        e = y - past @ beta
        zmat = past @ ginv
        bounds = segments_of(rows, rid)
        for i in range(n):
            if i == j:
                continue
            for r in LAGS:
                k = (P - r) * n + i
                h = N * zmat[:, k] * e
                omega = newey_west(h, bounds, BANDWIDTH)
                t = beta[k] / np.sqrt(omega / N)
                fill(res["granger"][str(r)], j, i, beta[k], t, 2 * stats.t.sf(abs(t), N - 1))
        # Pairwise Granger (no ridge).
        for i in range(n):
            if i == j:
                continue
            cols = [b * n + j for b in range(P)] + [b * n + i for b in range(P)]
            xx = x[:, cols]
            bb, *_ = np.linalg.lstsq(xx, y, rcond=None)
            rss = np.sum((y - xx @ bb) ** 2)
            df = dof - len(cols)
            cov = rss / df * np.linalg.inv(xx.T @ xx)
            for r in LAGS:
                k = P + (P - r)
                t = bb[k] / np.sqrt(cov[k, k])
                fill(res["pairwise-granger"][str(r)], j, i, bb[k], t, 2 * stats.t.sf(abs(t), df))
    return res


def check_pairwise_against_statsmodels():
    """Our pairwise F(1, dof) at lag order 1 on one recording is statsmodels' ssr F-test."""
    from statsmodels.tsa.stattools import grangercausalitytests

    v = simulate(np.array([[0.5, 0.0], [0.4, 0.5]]), 300, 11)
    (z, m) = zscore(v)
    zw, mw, rid = windows([(z, m)], 2)
    x, n_rec = centred_rows(zw, rid, np.arange(len(rid)))
    y = x[:, 3]  # x_{t+1, 1}
    xx = x[:, [1, 0]]  # own past, then source past
    bb, *_ = np.linalg.lstsq(xx, y, rcond=None)
    rss = np.sum((y - xx @ bb) ** 2)
    df = len(y) - n_rec - 2
    t = bb[1] / np.sqrt(rss / df * np.linalg.inv(xx.T @ xx)[1, 1])
    sm = grangercausalitytests(v[:, [1, 0]], maxlag=[1])[1][0]["ssr_ftest"]
    assert abs(t * t - sm[0]) < 1e-8 * sm[0], (t * t, sm)
    assert abs(2 * stats.t.sf(abs(t), df) - sm[1]) < 1e-10, sm


def pcmci_reference(values):
    from tigramite import data_processing as pp
    from tigramite.independence_tests.parcorr import ParCorr
    from tigramite.pcmci import PCMCI

    df = pp.DataFrame(values)
    pcmci = PCMCI(dataframe=df, cond_ind_test=ParCorr(significance="analytic"), verbosity=0)
    out = pcmci.run_pcmci(tau_max=P, pc_alpha=0.2)
    n = values.shape[1]
    res = {str(r): {"effect": empty(n), "t": empty(n), "p": empty(n)} for r in LAGS}
    for j in range(n):
        for i in range(n):
            if i == j:
                continue
            for r in LAGS:
                # tigramite: val_matrix[i, j, tau] is the link i(t - tau) -> j(t).
                val = out["val_matrix"][i, j, r]
                pv = out["p_matrix"][i, j, r]
                fill(res[str(r)], j, i, val, np.nan, pv)
                res[str(r)]["t"][j][i] = None
    parents = {
        str(j): [[int(i), int(-tau)] for (i, tau) in pcmci.all_parents[j]] for j in range(n)
    }
    return res, parents


def main():
    names4 = [f"N{k}" for k in range(4)]
    a = np.array(
        [[0.5, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0], [0.0, -0.4, 0.0, 0.5]]
    )
    rec_a = simulate(a, 160, 1)
    rec_b = simulate(a, 140, 2)
    rec_a[50:55, 1] = np.nan
    rec_b[:, 3] = np.nan
    write_traces(os.path.join(ROOT, "multi", "rec_a.traces.csv"), rec_a, names4)
    # N3 was not identified in rec_b: its column is absent from that file.
    write_traces(os.path.join(ROOT, "multi", "rec_b.traces.csv"), rec_b[:, :3], names4[:3])
    recs = [zscore(v) for v in (rec_a, rec_b)]
    multi = multi_reference(recs, 4)

    check_pairwise_against_statsmodels()

    names5 = [f"N{k}" for k in range(5)]
    b = np.diag([0.6] * 5)
    b[1, 0], b[2, 1], b[4, 3] = 0.5, -0.5, 0.4
    single = simulate(b, 300, 3)
    write_traces(os.path.join(ROOT, "single", "rec.traces.csv"), single, names5)
    pcmci, parents = pcmci_reference(single)

    ref = {
        "lags": LAGS,
        "ridge": RIDGE,
        "bandwidth": BANDWIDTH,
        "pc_alpha": 0.2,
        "multi": multi,
        "pcmci": pcmci,
        "pcmci_parents": parents,
    }
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("wrote", ROOT)


if __name__ == "__main__":
    main()
