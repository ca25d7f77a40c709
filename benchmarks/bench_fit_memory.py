"""Peak memory of the window threshold's, the forest gate's and ``channel_norm``'s fits on a
long fit range: the whole range at once vs in pieces.

The fits read the GRU's window outputs over a range of millions of windows. Whole
(``chunk_rows=0``, what the fits did before), one ``window_outputs`` call holds the scaled
inputs [T, C + K], the per-channel errors [N, C] and, for the gate, the latent vectors and
attention statistics of every window at once; in pieces (``chunk_rows``, the default 262,144:
``models.window_pieces``) each piece is scored with its detrend rows before it, and only the
window scores [N] (and the gated windows' features; for ``channel_norm`` each channel's errors
on the windows its median and spread are taken over) are kept. This fits each rule both ways
on one synthetic mission (``bench_gap_close.long_mission``: sines with labeled bumps, a 30 s
grid, no test range), each variant in its own process, with an untrained tiny GRU (hidden 8,
latent 4; window 10, detrend 2880 rows; window scores smoothed over 20 rows): the ``f05``
threshold on the fit range (the default), and a 20-tree gate (no check) behind a threshold set
at the 99th percentile of the first rows' smoothed scores, and ``channel_norm`` (max over
every channel, spreads on the moving windows) on the training range. The two ways must fit the
same threshold, bit for bit, the same forest (every tree's splits and leaf values) and the same
centres and scales, bit for bit.

Usage::

    python benchmarks/bench_fit_memory.py [--rows 3000000] [--channels 16] [--chunk-rows 262144]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _checkout  # noqa: E402, F401
from _common import machine, replace_section  # noqa: E402
from bench_gap_close import TELECOMMANDS, long_mission, measured_fit, tiny_gru  # noqa: E402
from bench_predict import ROOT, run_measured  # noqa: E402

HEADER = ("## The threshold's and the gate's fits in pieces: their peak memory on a long fit range "
          "(bench_fit_memory.py)")
TABLE_HEAD = (
    "| fit | variant | chunk_rows | fit s | RSS before the fit MiB | fit peak MiB | fit's rise MiB "
    "| process peak MiB | process wall s |\n|---|---|---|---|---|---|---|---|---|"
)
FITS = ("threshold", "rf_gate", "channel_norm")


def fit_rules(chunk_rows: int) -> dict:
    """``channel_norm``, an ``f05`` threshold (fit range, smoothing 20) and a 20-tree gate, each
    reading ``chunk_rows`` windows at a time, for ``bench_gap_close.tiny_gru`` (its threshold set
    there, as the gate's fit needs one; ``channel_norm`` is left unfitted, so the threshold's and
    the gate's fits read raw errors, as before it was benchmarked here)."""
    return {
        "channel_norm": {"kind": "channel_norm", "channels": "all", "aggregate": "max",
                         "chunk_rows": chunk_rows},
        "threshold": {"kind": "f05", "fit_on": "fit_range", "smoothing": 20,
                      "chunk_rows": chunk_rows},
        "rf_gate": {"kind": "random_forest", "n_estimators": 20, "n_jobs": 1,
                    "chunk_rows": chunk_rows}}


def forest_digest(forest) -> str:
    """sha256 of every tree's split features, thresholds and leaf values (none: no forest)."""
    if forest is None:
        return "none"
    h = hashlib.sha256()
    for tree in forest.estimators_:
        for part in (tree.tree_.feature, tree.tree_.threshold, tree.tree_.value):
            h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:16]


def norm_digest(rule) -> str:
    """sha256 of a fitted ``channel_norm``'s centres and scales (float32 bytes)."""
    h = hashlib.sha256()
    for buffer in (rule.centre, rule.scale):
        h.update(buffer.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def worker(fit: str, rows: int, channels: int, chunk_rows: int, out: Path) -> None:
    import torch

    torch.set_num_threads(1)  # two threads on a shared 2-core machine: 40x slower GRU calls
    mission = long_mission(rows, channels)
    model = tiny_gru(channels, mission, fit_rules(chunk_rows))
    rule = model.post_rules[fit]
    measured, _ = measured_fit(rule, model, mission)
    if fit == "threshold":
        fitted = float(rule.threshold[0]).hex()
    elif fit == "channel_norm":
        fitted = norm_digest(rule)
    else:
        fitted = forest_digest(rule.forest)
    out.write_text(json.dumps({**measured, "fitted": fitted}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--chunk-rows", type=int, default=262_144)
    ap.add_argument("--worker", default=None, help="internal: the output file of one variant")
    ap.add_argument("--fit", choices=FITS, default="threshold", help="internal: the rule fitted")
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.fit, a.rows, a.channels, a.chunk_rows, Path(a.worker))
    folder = ROOT / "outputs" / "bench_fit_memory"
    res = {}
    for fit in FITS:
        for name, chunk in (("whole (before)", 0), ("in pieces", a.chunk_rows)):
            out = folder / f"{fit}_chunk_{chunk}.json"
            cmd = [sys.executable, __file__, "--rows", str(a.rows), "--channels", str(a.channels),
                   "--chunk-rows", str(chunk), "--fit", fit, "--worker", str(out)]
            res[fit, name] = {**run_measured(cmd, folder / f"{fit}_chunk_{chunk}.log"),
                              **json.loads(out.read_text()), "chunk_rows": chunk}
            print(fit, name, res[fit, name], flush=True)

    def rise(v: dict) -> float:
        return v["fit_peak_mib"] - v["rss_before_mib"]

    def row(fit: str, name: str, v: dict) -> str:
        return (f"| {fit} | {name} | {v['chunk_rows']:,} | {v['fit_s']:.1f} | "
                f"{v['rss_before_mib']:.0f} | {v['fit_peak_mib']:.0f} | {rise(v):.0f} | "
                f"{v['peak_rss_mib']:.0f} | {v['wall_s']:.1f} |")

    rows, same = [], {}
    for fit in FITS:
        whole, pieces = res[fit, "whole (before)"], res[fit, "in pieces"]
        rows += [row(fit, "whole (the fit before)", whole), row(fit, "in pieces (now)", pieces)]
        same[fit] = whole["fitted"] == pieces["fitted"]
    t_whole, t_pieces = res["threshold", "whole (before)"], res["threshold", "in pieces"]
    g_whole, g_pieces = res["rf_gate", "whole (before)"], res["rf_gate", "in pieces"]
    n_whole, n_pieces = res["channel_norm", "whole (before)"], res["channel_norm", "in pieces"]
    train_rows = a.rows * 4 // 5
    table = "\n".join(rows)
    body = f"""The `f05` threshold's fit (`F05Threshold.fit`, `fit_on: fit_range`: the validation
range's scores with their context, then the fit range's for the F0.5 search), the forest
gate's (`RandomForestGate.fit`: every window's score, the gated windows' features) and
`channel_norm`'s (`ChannelNorm.fit`: each channel's median and standard deviation of its errors
on the label-free training windows where it moves; the training range, its first
{train_rows:,} rows) on a
synthetic fit range of {a.rows:,} rows x {a.channels} channels + {TELECOMMANDS} telecommands
({t_whole['events']} labeled events), each variant in its own process: `chunk_rows=0` reads
the range whole, as the fits did before (one `window_outputs` call: scaled inputs [T, C + K],
per-channel errors [N, C], for the gate latent vectors [N, D] and attention statistics [N, 3]
of the whole range at once); `chunk_rows={a.chunk_rows:,}` reads it in pieces with their
detrend rows before them (`models.window_pieces`) and keeps the window scores [N] and the gated
windows' features only; `channel_norm` keeps each channel's errors on the windows its
statistics are taken over (float32, in arrays of the counts a first pass over the values gives).
An untrained tiny GRU (hidden 8, latent 4, window 10, detrend 2880
rows, scores smoothed over 20 rows; the gate's threshold the 99th percentile of the first
200,000 rows' smoothed scores, 20 trees on one core, no check) makes the run tractable; the
network's size changes the time, not the arrays at stake. Fit peak: largest in-process VmRSS
sampled every 0.05 s during the fit; process peak: the same over the whole process (building
the mission included), sampled by the parent every 0.1 s.

{TABLE_HEAD}
{table}

The same threshold both ways, bit for bit: {"yes" if same["threshold"] else "NO"}
({float.fromhex(t_whole['fitted']):.6g}); the same forest (every tree's split features,
thresholds and leaf values): {"yes" if same["rf_gate"] else "NO"} (digest
{g_whole['fitted']}). The threshold fit's rise: {rise(t_pieces):.0f} MiB in pieces against
{rise(t_whole):.0f} MiB whole; the gate fit's: {rise(g_pieces):.0f} MiB against
{rise(g_whole):.0f} MiB; the same centres and scales, bit for bit:
{"yes" if same["channel_norm"] else "NO"} (digest {n_whole['fitted']}), `channel_norm`'s fit
rising {rise(n_pieces):.0f} MiB in pieces against {rise(n_whole):.0f} MiB whole
({n_pieces['fit_s']:.1f} s against {n_whole['fit_s']:.1f} s). Whole, the rise follows the
range's rows x channels: at Mission1's
7.4 M fit-range rows x 76 channels the per-channel errors are 2.1 GiB and the scaled inputs
(87 columns) 2.4 GiB, and the gate's latent vectors (32 floats a window) 0.9 GiB more. In
pieces, it follows one piece's rows x channels (the inputs and errors of
{a.chunk_rows:,} windows) and the range's one-dimensional arrays, which grow with its
windows, not its channels: the window scores (4 bytes a window), their smoothing (float64 in
pandas), the F0.5 search's row alarms of one candidate at a time, the gate's masks and the gated
windows' features. `channel_norm`'s median and standard deviation, bit for bit as numpy
computes them on all of a channel's kept errors, need every one of those errors: in pieces its
rise still follows the range's windows x channels (4 bytes each, {train_rows:,} x
{a.channels} here: {train_rows * a.channels * 4 / 2**20:.0f} MiB when every channel moves
everywhere, as here; at most 2.1 GiB for 7.4 M windows x 76 channels, less by the windows
where a channel is held), but no longer the scaled inputs, the errors of the windows it does
not keep and the per-channel copies of the whole-range path. A bounded fit with the same
numbers would need a selection of the median in several passes over the scores and numpy's
summation order for the standard deviation; not done.
Machine: {machine()}.
Command: `python benchmarks/bench_fit_memory.py --rows {a.rows} --channels {a.channels}
--chunk-rows {a.chunk_rows}`.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
