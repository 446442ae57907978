#!/usr/bin/env python3
"""Scores anomaly detectors on NAB-format data (folders of `timestamp,value` CSVs and a
`combined_windows.json` label file) with window recall/precision/F1, false flags per 1,000
points and NAB's normalized standard-profile score.

Detectors, run on the same files in the same command:
- fabricwatch: `analytics replay` (the production detector path), flag column as detection;
- rolling 3-sigma: |x - mean| > 3 std over the previous 60 points;
- isolation forest (scikit-learn), per file on trailing 12-point window mean/std/min/max
  plus the value, fitted on the whole file (offline, favourable to it): `contamination=auto`
  and `contamination=0.01`.

Scoring follows NAB (numenta/NAB `nab/sweeper.py`, standard profile tp=1, fn=1, fp=0.11):
rows in the probationary period (first min(floor(0.15 n), 750)) are not scored; a window
earns the scaled-sigmoid score of its earliest detection, every detection outside a window
adds its (negative) score; normalized = 100 (raw - null) / (perfect - null). The detection
is each detector's own binary flag (no threshold sweep), so this is the score at its
default threshold.

Window metrics (scored rows only): recall = windows with at least one flagged row / windows;
precision = flagged rows inside windows / flagged rows; F1 their harmonic mean; false flags
per 1,000 = flagged rows outside windows per 1,000 scored rows.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime

TP, FN, FP = 1.0, 1.0, 0.11


def parse_ts(s):
    s = s.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            pass
    raise ValueError(s)


def read_csv(path):
    ts, vs = [], []
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            if not row:
                continue
            ts.append(parse_ts(row[0]))
            vs.append(float(row[1]))
    return ts, vs


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def scaled_sigmoid(y):
    if y > 3.0:
        return -1.0
    return 2.0 * sigmoid(-5.0 * y) - 1.0


def windows_as_rows(ts, windows):
    index = {t: i for i, t in enumerate(ts)}
    out = []
    for a, b in windows:
        out.append((index[parse_ts(a)], index[parse_ts(b)]))
    return out


def probation(n):
    return int(min(math.floor(0.15 * n), 0.15 * 5000))


def score_file(flags, wins):
    """(nab raw score, windows, windows hit, flagged in windows, flagged outside, scored rows)"""
    n = len(flags)
    p = probation(n)
    in_win = [None] * n
    for k, (a, b) in enumerate(wins):
        for i in range(a, b + 1):
            in_win[i] = k
    max_tp = scaled_sigmoid(-1.0)
    win_score = [-FN] * len(wins)
    fp_total = 0.0
    prev_right, prev_width = None, None
    hit = [False] * len(wins)
    tp_rows = fp_rows = 0
    for i in range(n):
        k = in_win[i]
        if k is not None:
            a, b = wins[k]
            width = b - a + 1
            y = -(b - i + 1) / width
            s = scaled_sigmoid(y) * TP / max_tp
        else:
            if prev_right is None:
                s = -FP
            else:
                y = abs(prev_right - i) / (prev_width - 1)
                s = scaled_sigmoid(y) * FP
        if k is not None and i == wins[k][1]:
            prev_right, prev_width = wins[k][1], wins[k][1] - wins[k][0] + 1
        if i < p or not flags[i]:
            continue
        if k is not None:
            tp_rows += 1
            hit[k] = True
            win_score[k] = max(win_score[k], s)
        else:
            fp_rows += 1
            fp_total += s
    return sum(win_score) + fp_total, len(wins), sum(hit), tp_rows, fp_rows, n - p


def rolling_3sigma(vs, w=60):
    out = [0] * len(vs)
    s = s2 = 0.0
    for i, x in enumerate(vs):
        if i >= w:
            m = s / w
            var = max(s2 / w - m * m, 0.0) * w / (w - 1)
            if abs(x - m) > 3.0 * math.sqrt(var) and var > 0:
                out[i] = 1
            y = vs[i - w]
            s -= y
            s2 -= y * y
        s += x
        s2 += x * x
    return out


def iforest(vs, contamination, w=12):
    import numpy as np
    from sklearn.ensemble import IsolationForest

    x = np.asarray(vs, dtype=float)
    feats = []
    for i in range(len(x)):
        seg = x[max(0, i - w + 1): i + 1]
        feats.append([x[i], seg.mean(), seg.std(), seg.min(), seg.max()])
    model = IsolationForest(n_estimators=100, contamination=contamination, random_state=0)
    pred = model.fit_predict(np.asarray(feats))
    return [1 if p == -1 else 0 for p in pred]


def replay(cmd, files):
    res = subprocess.run(cmd + files, check=True, capture_output=True, text=True)
    flags = defaultdict(list)
    for line in res.stdout.splitlines():
        f, _ts, _score, flag = line.split("\t")
        flags[f].append(int(flag))
    return flags


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nab", required=True, help="NAB directory with data/ and labels/")
    ap.add_argument("--replay", required=True, help="replay command (shell words)")
    ap.add_argument("--folders", nargs="*", help="folders under data/ (default: all)")
    ap.add_argument("--no-iforest", action="store_true")
    args = ap.parse_args()
    data = os.path.join(args.nab, "data")
    labels = json.load(open(os.path.join(args.nab, "labels", "combined_windows.json")))
    folders = args.folders or sorted(
        d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d))
    )
    detectors = ["fabricwatch", "rolling 3-sigma (60 points)"]
    if not args.no_iforest:
        detectors += ["isolation forest (auto)", "isolation forest (1 %)"]
    totals = {d: defaultdict(float) for d in detectors}
    rows = []
    per_file = []
    for folder in folders:
        files = sorted(
            os.path.join(data, folder, f)
            for f in os.listdir(os.path.join(data, folder))
            if f.endswith(".csv")
        )
        ours = replay(args.replay.split(), files)
        acc = {d: defaultdict(float) for d in detectors}
        for path in files:
            key = f"{folder}/{os.path.basename(path)}"
            ts, vs = read_csv(path)
            wins = windows_as_rows(ts, labels.get(key, []))
            flags = {"fabricwatch": ours[path], "rolling 3-sigma (60 points)": rolling_3sigma(vs)}
            if not args.no_iforest:
                flags["isolation forest (auto)"] = iforest(vs, "auto")
                flags["isolation forest (1 %)"] = iforest(vs, 0.01)
            for d in detectors:
                if len(flags[d]) != len(vs):
                    sys.exit(f"{d}: {len(flags[d])} flags for {len(vs)} rows of {path}")
                raw, nw, hit, tp, fp, scored = score_file(flags[d], wins)
                for a in (acc[d], totals[d]):
                    a["raw"] += raw
                    a["windows"] += nw
                    a["hit"] += hit
                    a["tp"] += tp
                    a["fp"] += fp
                    a["scored"] += scored
                if d == "fabricwatch":
                    per_file.append((key, nw, hit, tp, fp, scored))
        for d in detectors:
            rows.append((folder, d, acc[d]))
    for d in detectors:
        rows.append(("overall", d, totals[d]))
    print("| folder | detector | windows | window recall | precision | F1 | false flags / 1,000 | NAB standard (normalized) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for folder, d, a in rows:
        rec = a["hit"] / a["windows"] if a["windows"] else float("nan")
        flagged = a["tp"] + a["fp"]
        prec = a["tp"] / flagged if flagged else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if flagged and a["windows"] and prec + rec > 0 else float("nan")
        ff = 1000.0 * a["fp"] / a["scored"]
        null = -FN * a["windows"]
        perfect = TP * a["windows"]
        nab = 100.0 * (a["raw"] - null) / (perfect - null) if a["windows"] else float("nan")
        print(f"| {folder} | {d} | {int(a['windows'])} | {rec:.2f} | {prec:.2f} | {f1:.2f} | {ff:.2f} | {nab:.1f} |")
    if os.environ.get("NAB_PER_FILE"):
        print()
        for key, nw, hit, tp, fp, scored in per_file:
            print(f"{key}\twindows={nw} hit={hit} tp_rows={tp} fp_rows={fp} scored={scored}")


if __name__ == "__main__":
    main()
