"""Copies a folder of recordings with every behaviour column circularly shifted by half a
recording within each worm: the bouts keep their lengths and spacing, their link to the
recorded neurons is broken. The shifted-labels null of `sbtg infer --states`.

    python3 scripts/shift_behaviour.py datasets/dag2023 OUT
"""
import csv
import os
import shutil
import sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if not name.endswith(".behavior.csv"):
        if name.endswith(".csv"):
            shutil.copy(path, out)
        continue
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    half = len(body) // 2
    shifted = [list(r) for r in body[half:] + body[:half]]
    # The time column stays in place; every other column moves.
    for row, moved in zip(body, shifted):
        row[1:] = moved[1:]
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([header] + body)
    os.replace(tmp, os.path.join(out, name))
