#!/usr/bin/env python3
"""Builds the recording-format fixtures in tests/fixtures/formats/.

Every file holds small, deterministic traces so the Rust readers can be checked value
by value. Run from the repository root:

    python3 scripts/make_format_fixtures.py

Needs numpy, scipy, pandas, pyarrow, h5py and pynwb (pip install h5py pynwb pyarrow).

Files
- reference.traces.csv     the recording every single-recording format below encodes
- reference.npy / .names.txt, reference.npz (names as a text array), reference_bytes.npz
  (names as bytes, rate as fps), reference.parquet, reference.long.csv,
  reference.long.parquet, reference.nwb (RoiResponseSeries in a DfOverF container with
  ROI names, timestamps), reference_rate.nwb (Fluorescence with a starting time and rate)
- lab.h5 + lab.labels.csv  the lab pipeline's HDF5 layout (gcamp/traces_array_F_F20,
  timing/timestamp_confocal) with identities (one duplicate label, one zero-padded name)
- neuropal.mat (compressed) and neuropal_plain.mat (uncompressed): NeuroPAL
  Head_Activity layout, 3 worms, see neuropal_expected.json for what the reader must give
- broken/...               one defect per file, named for the defect
"""
import json
import os

import numpy as np
import pandas as pd
import scipy.io

OUT = os.path.join("tests", "fixtures", "formats")
BROKEN = os.path.join(OUT, "broken")
os.makedirs(BROKEN, exist_ok=True)

NAMES = ["AVAL", "AVAR", "RIS", "VB2"]
T = 40
DT = 0.25


def reference():
    t = np.arange(T) * DT
    x = np.empty((T, len(NAMES)))
    for j in range(len(NAMES)):
        x[:, j] = np.round(np.sin(0.37 * np.arange(T) + j) + 0.1 * j, 6)
    x[5, 2] = np.nan  # one missing sample
    return t, x


def write_wide_csv(path, t, x, names):
    with open(path, "w") as f:
        f.write("time_s," + ",".join(names) + "\n")
        for k in range(len(t)):
            cells = ["nan" if np.isnan(v) else repr(float(v)) for v in x[k]]
            f.write(repr(float(t[k])) + "," + ",".join(cells) + "\n")


def write_nwb(path, t, x, names, container, use_rate, roi_names=True):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import (DfOverF, Fluorescence, ImageSegmentation,
                             OpticalChannel, RoiResponseSeries)

    nwb = NWBFile(session_description="sbtg fixture", identifier="sbtg-fixture",
                  session_start_time=datetime(2023, 1, 1, tzinfo=timezone.utc))
    device = nwb.create_device(name="microscope")
    channel = OpticalChannel(name="green", description="GCaMP", emission_lambda=525.0)
    plane = nwb.create_imaging_plane(name="plane", optical_channel=channel, description="head",
                                     device=device, excitation_lambda=488.0,
                                     imaging_rate=1.0 / DT, indicator="GCaMP7f", location="head")
    ophys = nwb.create_processing_module(name="ophys", description="traces")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(name="rois", description="neurons", imaging_plane=plane)
    if roi_names:
        ps.add_column(name="neuron_name", description="NeuroPAL identity")
    for k, name in enumerate(names):
        mask = np.zeros((4, 4))
        mask[k % 4, k // 4] = 1.0
        if roi_names:
            ps.add_roi(image_mask=mask, neuron_name=name)
        else:
            ps.add_roi(image_mask=mask)
    region = ps.create_roi_table_region(region=list(range(len(names))), description="all")
    kwargs = dict(name="traces", data=x, rois=region, unit="ratio")
    if use_rate:
        kwargs.update(starting_time=float(t[0]), rate=1.0 / DT)
    else:
        kwargs.update(timestamps=t)
    series = RoiResponseSeries(**kwargs)
    ophys.add(container(roi_response_series=series))
    with NWBHDF5IO(path, "w") as io:
        io.write(nwb)


def single_recording_formats():
    t, x = reference()
    write_wide_csv(os.path.join(OUT, "reference.traces.csv"), t, x, NAMES)
    np.save(os.path.join(OUT, "reference.npy"), x)
    with open(os.path.join(OUT, "reference.names.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")
    np.savez_compressed(os.path.join(OUT, "reference.npz"), traces=x, time=t, names=np.array(NAMES))
    np.savez(os.path.join(OUT, "reference_bytes.npz"), traces=x, fps=np.array(4.0),
             names=np.array([n.encode() for n in NAMES]))
    wide = pd.DataFrame(x, columns=NAMES)
    wide.insert(0, "time_s", t)
    wide.to_parquet(os.path.join(OUT, "reference.parquet"), index=False)
    long = wide.melt(id_vars="time_s", var_name="neuron", value_name="value")
    long = long.rename(columns={"time_s": "time"})
    long = long.sample(frac=1.0, random_state=0)  # any row order
    long = long[~long.value.isna()]  # a missing sample may simply be absent
    long.to_csv(os.path.join(OUT, "reference.long.csv"), index=False)
    long.to_parquet(os.path.join(OUT, "reference.long.parquet"), index=False)

    from pynwb.ophys import DfOverF, Fluorescence
    write_nwb(os.path.join(OUT, "reference.nwb"), t, x, NAMES, DfOverF, use_rate=False)
    write_nwb(os.path.join(OUT, "reference_rate.nwb"), t, x, NAMES, Fluorescence, use_rate=True)

    # Broken variants.
    np.save(os.path.join(BROKEN, "three_dims.npy"), x.reshape(T, 2, 2))
    np.save(os.path.join(BROKEN, "nan_neuron.npy"), np.where(np.arange(4) == 1, np.nan, x))
    with open(os.path.join(BROKEN, "nan_neuron.names.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")
    np.save(os.path.join(BROKEN, "short_names.npy"), x)
    with open(os.path.join(BROKEN, "short_names.names.txt"), "w") as f:
        f.write("\n".join(NAMES[:3]) + "\n")
    np.save(os.path.join(BROKEN, "dup_names.npy"), x)
    with open(os.path.join(BROKEN, "dup_names.names.txt"), "w") as f:
        f.write("\n".join(["AVAL", "AVAR", "AVAL", "VB2"]) + "\n")
    np.savez(os.path.join(BROKEN, "no_traces.npz"), values=x)
    np.savez(os.path.join(BROKEN, "number_names.npz"), traces=x, fps=np.array(4.0),
             names=np.arange(4.0))
    np.savez(os.path.join(BROKEN, "bad_rate.npz"), traces=x, fps=np.array(-4.0))
    with open(os.path.join(BROKEN, "bad_rate.names.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")
    dup_long = long.copy()
    dup_long = pd.concat([dup_long, dup_long.iloc[:1]])
    dup_long.to_csv(os.path.join(BROKEN, "dup_sample.long.csv"), index=False)
    ragged = long.copy()
    ragged.loc[ragged.index[0], "time"] = 0.1  # a time no other neuron has
    ragged.to_csv(os.path.join(BROKEN, "off_grid.long.csv"), index=False)
    write_nwb(os.path.join(BROKEN, "nan_neuron.nwb"), t, np.where(np.arange(4) == 2, np.nan, x),
              NAMES, DfOverF, use_rate=False)

    # NWB variants edited after writing, as a non-pynwb writer could produce them.
    import shutil

    import h5py
    series = "processing/ophys/DfOverF/traces"
    shutil.copy(os.path.join(OUT, "reference.nwb"), os.path.join(BROKEN, "dup_roi.nwb"))
    with h5py.File(os.path.join(BROKEN, "dup_roi.nwb"), "a") as f:
        names = f["processing/ophys/ImageSegmentation/rois/neuron_name"]
        names[2] = "AVAL"
    shutil.copy(os.path.join(OUT, "reference.nwb"), os.path.join(BROKEN, "short_timestamps.nwb"))
    with h5py.File(os.path.join(BROKEN, "short_timestamps.nwb"), "a") as f:
        del f[series + "/timestamps"]
        f[series + "/timestamps"] = t[:-1]
    shutil.copy(os.path.join(OUT, "reference_rate.nwb"), os.path.join(BROKEN, "negative_rate.nwb"))
    with h5py.File(os.path.join(BROKEN, "negative_rate.nwb"), "a") as f:
        f["processing/ophys/Fluorescence/traces/starting_time"].attrs["rate"] = -4.0
    shutil.copy(os.path.join(OUT, "reference_rate.nwb"), os.path.join(BROKEN, "no_rate.nwb"))
    with h5py.File(os.path.join(BROKEN, "no_rate.nwb"), "a") as f:
        del f["processing/ophys/Fluorescence/traces/starting_time"]
    # Parquet: a text cell among the traces.
    bad = wide.astype(object)
    bad.loc[3, "RIS"] = "n/a"
    bad["RIS"] = bad["RIS"].astype(str)
    bad.to_parquet(os.path.join(BROKEN, "text_cell.parquet"), index=False)
    nan_wide = wide.copy()
    nan_wide["AVAR"] = np.nan
    nan_wide.to_parquet(os.path.join(BROKEN, "nan_neuron.parquet"), index=False)
    np.savez(os.path.join(BROKEN, "short_time.npz"), traces=x, time=t[:-2], names=np.array(NAMES))


def lab_hdf5():
    import h5py

    rng = np.random.default_rng(7)
    n_roi = 6
    t0 = 1228334.146
    stamps = t0 + np.cumsum(np.r_[0.0, 0.6 + 0.01 * rng.standard_normal(T - 1)])
    traces = np.round(1.0 + 0.5 * rng.standard_normal((T, n_roi)), 6)
    with h5py.File(os.path.join(OUT, "lab.h5"), "w") as f:
        f["gcamp/traces_array_F_F20"] = traces
        f["gcamp/trace_array"] = (traces - traces.mean(0)) / traces.std(0)
        f["timing/timestamp_confocal"] = stamps
    labels = pd.DataFrame({
        "trace_column": [0, 2, 3, 4, 5],
        "label": ["AVAL", "VB02", "RIS?", "RIS?", "AIYL"],
        "class": ["AVA", "VB", "RIS", "RIS", "AIY"],
        "confidence": [5.0, 4.0, 2.0, 2.0, 3.0],
        "neuropal_roi": [10, 11, 12, 13, 14],
    })
    labels.to_csv(os.path.join(OUT, "lab.labels.csv"), index=False)
    with h5py.File(os.path.join(BROKEN, "lab_short-data.h5"), "w") as f:
        f["gcamp/traces_array_F_F20"] = traces
        f["timing/timestamp_confocal"] = stamps[:-1]
    labels.to_csv(os.path.join(BROKEN, "lab_short.labels.csv"), index=False)
    with h5py.File(os.path.join(BROKEN, "lab_clock-data.h5"), "w") as f:
        f["gcamp/traces_array_F_F20"] = traces
        f["timing/timestamp_confocal"] = np.r_[stamps[:10], stamps[9], stamps[11:]]
    labels.to_csv(os.path.join(BROKEN, "lab_clock.labels.csv"), index=False)
    # Duplicate at different confidence: the surer ROI wins.
    labels2 = labels.copy()
    labels2.loc[4, "label"] = "AVAL"
    labels2.loc[4, "confidence"] = 2.0
    labels2.to_csv(os.path.join(BROKEN, "lab_dup.labels.csv"), index=False)
    bad = labels.copy()
    bad.loc[0, "trace_column"] = 9
    bad.to_csv(os.path.join(BROKEN, "lab_column.labels.csv"), index=False)
    expected = {
        "neurons": ["AVAL", "VB2", "AIYL"],
        "columns": [0, 2, 5],
        "dt": float(np.median(np.diff(stamps))),
        "values": traces[:, [0, 2, 5]].tolist(),
        "notes": ["RIS?"],
    }
    with open(os.path.join(OUT, "lab_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


def cell_row(items):
    c = np.empty((1, len(items)), dtype=object)
    for k, v in enumerate(items):
        c[0, k] = v
    return c


def cell_col(items):
    c = np.empty((len(items), 1), dtype=object)
    for k, v in enumerate(items):
        c[k, 0] = v
    return c


def neuropal():
    """Three worms at 4 fps, 60 s each (frames differ per worm: 240, 236, 240).

    stim_names: butanone, pentanedione, nacl (codes 1, 2, 3).
    stims (worms × slots, 1-based codes): worm 0 [1 2 3], worm 1 [3 1 2], worm 2 [2 3 1].
    stim_times (slots × 2, s): [10.5 15.5], [25.5 30.5], [40.5 45.5].
    ASE steps to 1 while nacl is on and is 0 otherwise, so a reader that reads the codes as
    0-based, or the times as frames, selects the wrong samples.
    """
    fps = 4.0
    frames = [240, 236, 240]
    W = len(frames)
    names = ["butanone", "pentanedione", "nacl"]
    stims = np.array([[1, 2, 3], [3, 1, 2], [2, 3, 1]], dtype=float)
    stim_times = np.array([[10.5, 15.5], [25.5, 30.5], [40.5, 45.5]])
    expected = {"fps": fps, "worms": []}

    def trace(w, seed):
        k = np.arange(frames[w])
        return np.round(np.sin(0.05 * (seed + 1) * k + w) + 0.01 * seed, 6)

    ava, aiy, ase, ris, il2d = [], [], [], [], []
    for w in range(W):
        ava.append(trace(w, 1))
        aiy.append(trace(w, 3))
        k = np.arange(frames[w])
        slot = int(np.where(stims[w] == 3)[0][0])
        on, off = stim_times[slot]
        ase_w = ((k / fps >= on) & (k / fps < off)).astype(float)
        ase.append(ase_w)
        ris.append(trace(w, 5))
        il2d.append(trace(w, 6))
    ava_r = [trace(w, 2) for w in range(W)]
    aiy_r = [trace(w, 4) for w in range(W)]
    ava_r[1] = ava_r[1].copy()
    ava_r[1][:3] = np.nan  # one side missing for three samples: the other side alone
    # norm_traces{i} is a 1 × W (single) or 1 × 2W (bilateral, L at w, R at w + W) cell.
    norm_traces = [
        cell_row([a.reshape(1, -1) for a in ava] + [a.reshape(1, -1) for a in ava_r]),
        # AIY: left side not identified in worm 2, right side not identified in worm 0.
        cell_row([aiy[0].reshape(1, -1), aiy[1].reshape(1, -1), np.zeros((0, 0)),
                  np.zeros((0, 0)), aiy_r[1].reshape(1, -1), aiy_r[2].reshape(1, -1)]),
        cell_row([a.reshape(-1, 1) for a in ase]),  # column vectors are fine too
        # RIS: not identified at all in worm 1.
        cell_row([ris[0].reshape(1, -1), np.zeros((0, 0)), ris[2].reshape(1, -1)]),
        cell_row([a.reshape(1, -1) for a in il2d]),
    ]
    neurons = ["AVA", "AIY", "ASE", "RIS", "IL2D"]
    mat = {
        "neurons": cell_col(neurons),
        "norm_traces": cell_col(norm_traces),
        "is_L": cell_col([np.r_[np.ones(W), np.zeros(W)] if len(c[0]) == 2 * W else np.ones(W)
                          for c in norm_traces]),
        "fps": np.array([[fps]]),
        "files": cell_col([f"worm{w + 1}" for w in range(W)]),
        "stim_names": cell_row(names),
        "stims": stims,
        "stim_times": stim_times,
    }
    scipy.io.savemat(os.path.join(OUT, "neuropal.mat"), mat, do_compression=True)
    scipy.io.savemat(os.path.join(OUT, "neuropal_plain.mat"), mat, do_compression=False)

    for w in range(W):
        aiy_mean = [aiy[w] if w < 2 else None, aiy_r[w] if w > 0 else None]
        aiy_mean = [a for a in aiy_mean if a is not None]
        aiy_v = np.mean(aiy_mean, axis=0)
        ava_v = np.nanmean([ava[w], ava_r[w]], axis=0)
        cols = {"AVA": ava_v, "AIY": aiy_v, "ASE": ase[w], "IL2D": il2d[w]}
        if w != 1:
            cols["RIS"] = ris[w]
        order = [n for n in neurons if n in cols]
        presentations = []
        for slot in range(3):
            code = int(stims[w, slot])
            presentations.append({"name": names[code - 1], "onset_s": stim_times[slot, 0],
                                  "offset_s": stim_times[slot, 1]})
        expected["worms"].append({
            "name": f"worm{w + 1}", "frames": frames[w], "neurons": order,
            "values": [cols[n].tolist() for n in order], "stimuli": presentations,
        })
    with open(os.path.join(OUT, "neuropal_expected.json"), "w") as f:
        json.dump(expected, f)

    # Broken variants, each with one defect.
    def broken(name, **changes):
        m = dict(mat)
        m.update(changes)
        scipy.io.savemat(os.path.join(BROKEN, name), m, do_compression=True)

    broken("zero_code.mat", stims=stims - 1)  # 0-based codes
    broken("no_fps.mat", fps=np.zeros((0, 0)))
    broken("negative_fps.mat", fps=np.array([[-4.0]]))
    broken("dup_neurons.mat", neurons=cell_col(["AVA", "AIY", "ASE", "AVA", "IL2D"]))
    ragged = list(norm_traces)
    ragged[4] = cell_row([il2d[0][:-5].reshape(1, -1)] + [a.reshape(1, -1) for a in il2d[1:]])
    broken("ragged.mat", norm_traces=cell_col(ragged))
    nan_only = list(norm_traces)
    nan_only[4] = cell_row([np.full((1, frames[0]), np.nan)] + [a.reshape(1, -1) for a in il2d[1:]])
    broken("nan_neuron.mat", norm_traces=cell_col(nan_only))
    broken("odd_entries.mat", norm_traces=cell_col(
        norm_traces[:4] + [cell_row([a.reshape(1, -1) for a in il2d[:2]])]))
    m = dict(mat)
    del m["norm_traces"]
    scipy.io.savemat(os.path.join(BROKEN, "no_traces.mat"), m)
    broken("bad_stim_times.mat", stim_times=stim_times[:, :1])


if __name__ == "__main__":
    single_recording_formats()
    lab_hdf5()
    neuropal()
    print("fixtures written to", OUT)
