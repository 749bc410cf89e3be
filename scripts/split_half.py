"""Split-half reproducibility of an sbtg statistic across worms (numpy only).

Diagnostic, not part of the toolkit. The worms of a dataset are split in two halves at
random (seeded); `sbtg infer` runs on each half with the same neurons, once per variant;
for every split and variant it prints the Spearman correlation, over the pairs tested in
both halves, of the signed `effect` of the mean test at the given lag. A statistic that
measures something the worms share reproduces across halves; the connectome is not used.

Run from the repository root after `cargo build --release -p sbtg-cli`:
    python3 scripts/split_half.py [--splits 10] [--lag 0] \\
        --variant innovation="--same-frame innovation" --variant precision="--same-frame precision"
"""
import argparse
import csv
import os
import random
import shlex
import subprocess
import tempfile

import numpy as np

SBTG = os.path.join("target", "release", "sbtg")


def ranks(v):
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    # average ties
    _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r)
    return (sums / counts)[inv]


def spearman(a, b):
    ra, rb = ranks(np.asarray(a)), ranks(np.asarray(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def effects(run, lag):
    out = {}
    with open(os.path.join(run, "edges.csv")) as f:
        for row in csv.DictReader(f):
            if int(row["lag"]) == lag and row["test"] == "mean":
                out[(row["source"], row["target"])] = float(row["effect"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="datasets/dag2023")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--lag", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", action="append", required=True, help="NAME=\"sbtg infer flags\"")
    a = ap.parse_args()
    stems = sorted(f[: -len(".traces.csv")] for f in os.listdir(a.data) if f.endswith(".traces.csv"))
    variants = [v.split("=", 1) for v in a.variant]
    rng = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="sbtg-split-half-")
    # The panel of the whole dataset, so both halves test the same neurons.
    full = os.path.join(tmp, "full")
    subprocess.run([SBTG, "infer", a.data, "--lags", "0", "--out", full, "--no-volatility"],
                   check=True, capture_output=True)
    with open(os.path.join(full, "edges.csv")) as f:
        rows = list(csv.DictReader(f))
    neurons = sorted({r["source"] for r in rows} | {r["target"] for r in rows})
    def names(stem):
        with open(os.path.join(a.data, stem + ".traces.csv")) as f:
            return set(next(csv.reader(f))[1:])

    rho = {name: [] for name, _ in variants}
    for s in range(a.splits):
        half = set(rng.sample(stems, len(stems) // 2))
        dirs = []
        for k, members in enumerate([sorted(half), sorted(set(stems) - half)]):
            d = os.path.join(tmp, f"split{s}-half{k}")
            os.makedirs(d)
            for stem in members:
                for f in os.listdir(a.data):
                    if f.startswith(stem + "."):
                        os.symlink(os.path.abspath(os.path.join(a.data, f)), os.path.join(d, f))
            dirs.append(d)
        # Neurons seen in both halves: each half's panel then has every one of them.
        seen = [set.union(*[names(m) for m in h]) for h in (half, set(stems) - half)]
        shared = [n for n in neurons if n in seen[0] and n in seen[1]]
        line = [f"split {s}: {'+'.join(sorted(half))}"]
        for name, flags in variants:
            runs = []
            for d in dirs:
                out = d + "-" + name
                subprocess.run([SBTG, "infer", d, "--neurons", ",".join(shared), "--min-recordings", "1",
                                "--lags", f"0,{max(a.lag, 1)}", "--out", out] + shlex.split(flags),
                               check=True, capture_output=True)
                runs.append(effects(out, a.lag))
            keys = sorted(set(runs[0]) & set(runs[1]))
            r = spearman([runs[0][k] for k in keys], [runs[1][k] for k in keys])
            rho[name].append(r)
            line.append(f"{name} {r:.3f} ({len(keys)} pairs)")
        print("; ".join(line), flush=True)
    for name, v in rho.items():
        v = np.array(v)
        print(f"{name}: median Spearman {np.median(v):.3f}, mean {v.mean():.3f}, range [{v.min():.3f}, {v.max():.3f}] over {len(v)} splits")


if __name__ == "__main__":
    main()
