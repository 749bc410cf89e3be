"""Reads an sbtg run's arrays.npz with numpy alone and checks it against edges.csv.

Usage: python3 tests/python/check_arrays.py RUN_DIR SOURCE TARGET LAG

SOURCE -> TARGET at LAG must be a selected edge of the run. Checks that every array has
the documented shape, that val_matrix[source, target, lag] (tigramite's orientation:
link source(t - lag) -> target(t)) is that edge's effect in edges.csv, that its graph
entry is '-->', and that the transposed entry holds the reverse edge, not this one; and that
same-frame (lag-0) pairs are symmetric and marked 'o-o'.
Exits non-zero with a message on the first failure.
"""
import csv
import os
import sys

import numpy as np


def main():
    run, source, target, lag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    a = np.load(os.path.join(run, "arrays.npz"))
    neurons = [str(x) for x in a["neurons"]]
    n = len(neurons)
    lags = [int(x) for x in a["lags"]]
    depth = max(lags) + 1
    for name in ["val_matrix", "t_matrix", "p_matrix", "q_matrix", "graph"]:
        assert a[name].shape == (n, n, depth), (name, a[name].shape)
    assert a["conf_matrix"].shape == (n, n, depth, 2), a["conf_matrix"].shape
    assert a["val_matrix"].dtype == np.float64
    assert a["graph"].dtype.kind == "U", a["graph"].dtype

    rows = {}
    with open(os.path.join(run, "edges.csv")) as f:
        for r in csv.DictReader(f):
            if r["test"] == "mean" and r.get("state", "all") == "all":
                rows[(r["source"], r["target"], int(r["lag"]))] = r
    i, j = neurons.index(source), neurons.index(target)
    edge = rows[(source, target, lag)]
    assert edge["selected"] == "true", edge
    val = a["val_matrix"][i, j, lag]
    assert np.isclose(val, float(edge["effect"]), rtol=1e-9), (val, edge["effect"])
    assert a["graph"][i, j, lag] == "-->", a["graph"][i, j, lag]
    assert np.isclose(a["p_matrix"][i, j, lag], float(edge["p"]), rtol=1e-9)
    lo, hi = a["conf_matrix"][i, j, lag]
    assert lo <= val <= hi, (lo, val, hi)
    reverse = rows[(target, source, lag)]
    assert np.isclose(a["val_matrix"][j, i, lag], float(reverse["effect"]), rtol=1e-9)
    assert not np.isclose(a["val_matrix"][j, i, lag], val), "orientation"
    # Every selected lagged edge of the table is '-->' and nothing else is; every
    # selected same-frame (lag-0) pair is 'o-o' both ways, symmetric in val_matrix.
    selected = {k for k, r in rows.items() if r["selected"] == "true" and k[2] > 0}
    arrows = {
        (neurons[s], neurons[t], k)
        for s, t, k in zip(*np.nonzero(a["graph"] == "-->"))
    }
    assert arrows == selected, (len(arrows), len(selected))
    same = {(s, t) for (s, t, k), r in rows.items() if r["selected"] == "true" and k == 0}
    marks = {
        (neurons[s], neurons[t])
        for s, t in zip(*np.nonzero(a["graph"][:, :, 0] == "o-o"))
    } if 0 in lags else set()
    assert marks == same | {(t, s) for s, t in same}, (len(marks), len(same))
    if 0 in lags:
        v0 = a["val_matrix"][:, :, 0]
        assert np.allclose(v0, v0.T, equal_nan=True), "lag 0 is symmetric"
    # The diagonal and untested lags are NaN.
    assert np.isnan(a["val_matrix"][i, i, lag])
    for k in range(depth):
        if k not in lags:
            assert np.isnan(a["val_matrix"][:, :, k]).all(), k
    print(f"arrays.npz ok: {n} neurons, lags {lags}, {len(selected)} selected edges, "
          f"{len(same)} same-frame pairs; "
          f"{source} -> {target} at lag {lag}: effect {val:+.4f}")


if __name__ == "__main__":
    main()
