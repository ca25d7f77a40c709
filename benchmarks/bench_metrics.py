"""Metric suite speed: vectorised ESA-ADB scores beside plain loop versions of the same rules.

1. Corrected event-wise P/R/F + alarming precision: ``esa_scores`` (which also computes the
   affiliation scores) vs a loop over (event, prediction) pairs, on N predicted intervals vs
   M events (several channel segments each, anomalies and rare events) over 14 years of ns times.
2. ``kaggle_f05`` vs a loop over samples, on a binary series of the Kaggle train length.

Both pairs must give the same numbers. Writes its section of benchmarks/RESULTS.md.

    python benchmarks/bench_metrics.py [--preds 10000] [--events 1000] [--samples 14728321]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401
import numpy as np
import pandas as pd
from _common import best_of, machine, write_section

from esa_lightning.metrics import esa_scores, kaggle_f05

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "## ESA-ADB metric suite (bench_metrics.py)"
SELECT = {"Category": ["Anomaly"]}


# ------------------------------------------------------------------------------ test data
def make_case(n_preds: int, n_events: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2000-01-01").value
    span = 14 * 365 * 86_400 * 10**9
    rows = []
    starts = np.sort(rng.integers(t0, t0 + span, n_events))
    for k, s in enumerate(starts):
        category = "Anomaly" if rng.random() < 0.6 else "Rare Event"
        for c in range(rng.integers(1, 4)):
            a = s + int(rng.integers(0, 3_600)) * 10**9
            b = a + int(rng.integers(0, 6 * 3_600)) * 10**9
            rows.append((f"id_{k}", f"channel_{c}", a, b, category))
    y_true = pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime", "Category"])
    y_true["StartTime"] = pd.to_datetime(y_true["StartTime"])
    y_true["EndTime"] = pd.to_datetime(y_true["EndTime"])
    # disjoint predicted intervals: sorted distinct cut points taken in pairs
    cuts = np.sort(rng.choice(span // 10**9, size=2 * n_preds, replace=False)) * 10**9 + t0
    p_start, p_end = cuts[0::2], cuts[1::2] - rng.integers(0, 10**9, n_preds)
    p_end = np.maximum(p_end, p_start)
    full_range = (t0, t0 + span + 86_400 * 10**9)
    return y_true, p_start, p_end, full_range


def as_change_points(p_start, p_end, full_range) -> np.ndarray:
    """(timestamp, 0/1) rows: 1 from each start, 0 one ns after each (closed) end."""
    times = np.r_[full_range[0], np.ravel(np.c_[p_start, p_end + 1])]
    values = np.r_[0, np.tile([1, 0], len(p_start))]
    return np.c_[times, values]


# ------------------------------------------------------------------------------ naive rules
def naive_event_wise(y_true: pd.DataFrame, preds: list[tuple[int, int]], full_range, select):
    """The rules of ESA-ADB §3.1-3.2 written as loops over events and predictions."""
    rows = [
        (r.ID, r.StartTime.value, r.EndTime.value, r.Category in select["Category"])
        for r in y_true.itertuples()
    ]
    per_event: dict[str, list[tuple[int, int]]] = {}
    for ident, a, b, chosen in rows:
        if chosen:
            per_event.setdefault(ident, []).append((a, b))
    tp = fn = redundant = 0
    matched = [False] * len(preds)
    for segments in per_event.values():
        merged = []
        for a, b in sorted(segments):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        lo, hi = merged[0][0], merged[-1][1]
        counts = [0] * len(merged)
        for p, (ps, pe) in enumerate(preds):
            if pe < lo or ps > hi:
                continue
            for i, (a, b) in enumerate(merged):
                if ps <= b and a <= pe:
                    counts[i] += 1
                    matched[p] = True
        tp += any(counts)
        fn += not any(counts)
        redundant += sum(c - 1 for c in counts if c > 1)
    union = []
    for a, b in sorted((a, b) for _, a, b, _ in rows):
        if union and a <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], b))
        else:
            union.append((a, b))
    fp = 0
    predicted_nominal = 0
    for p, (ps, pe) in enumerate(preds):
        inside = 0
        hit = False
        for a, b in union:
            if b < ps:
                continue
            if a > pe:
                break
            hit = True
            inside += min(b, pe) - max(a, ps)
        fp += not matched[p] and not hit
        predicted_nominal += (pe - ps) - inside
    nominal = (full_range[1] - full_range[0]) - sum(b - a for a, b in union)
    precision = tp / (tp + fp) if tp + fp else 0.0
    if precision > 0:
        precision *= 1 - predicted_nominal / nominal
    recall = tp / (tp + fn) if tp + fn else 0.0
    den = 0.25 * precision + recall
    return {
        "EW_precision": precision,
        "EW_recall": recall,
        "EW_F_0.50": 1.25 * precision * recall / den if den else 0.0,
        "alarming_precision": tp / (tp + redundant) if tp + redundant else 0.0,
    }


def naive_kaggle_f05(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The Kaggle rule with a loop over samples."""
    events, preds = [], []
    nominal = predicted_nominal = 0
    in_event = in_pred = False
    for i, (t, p) in enumerate(zip(y_true.tolist(), y_pred.tolist(), strict=True)):
        if t and not in_event:
            events.append([i, i])
        if t:
            events[-1][1] = i
        if p and not in_pred:
            preds.append([i, i])
        if p:
            preds[-1][1] = i
        in_event, in_pred = bool(t), bool(p)
        nominal += not t
        predicted_nominal += bool(p) and not t
    tp = fp = 0
    j = 0
    for a, b in events:
        while j < len(preds) and preds[j][1] < a:
            j += 1
        tp += j < len(preds) and preds[j][0] <= b
    e = 0
    for a, b in preds:
        while e < len(events) and events[e][1] < a:
            e += 1
        fp += not (e < len(events) and events[e][0] <= b)
    precision = tp / (tp + fp) if tp + fp else 0.0
    if precision > 0 and nominal:
        precision *= 1 - predicted_nominal / nominal
    recall = tp / len(events) if events else 0.0
    den = 0.25 * precision + recall
    return 1.25 * precision * recall / den if den else 0.0


# ------------------------------------------------------------------------------ harness
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preds", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=1_000)
    ap.add_argument("--samples", type=int, default=14_728_321)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    y_true, p_start, p_end, full_range = make_case(args.preds, args.events)
    cp = as_change_points(p_start, p_end, full_range)
    fr = (pd.Timestamp(full_range[0]), pd.Timestamp(full_range[1]))
    t_fast, fast = best_of(
        args.repeats, lambda: esa_scores(y_true, cp, select_labels=SELECT, full_range=fr)
    )
    preds = list(zip(p_start.tolist(), p_end.tolist(), strict=True))
    t_naive, naive = best_of(1, lambda: naive_event_wise(y_true, preds, full_range, SELECT))
    same_ew = all(np.isclose(fast[k], v, rtol=1e-9, atol=1e-12) for k, v in naive.items())

    rng = np.random.default_rng(1)
    n = args.samples
    truth = np.zeros(n, dtype=np.uint8)
    for s in rng.integers(0, n - 5_000, 200):
        truth[s : s + rng.integers(1, 5_000)] = 1
    alarm = np.zeros(n, dtype=np.uint8)
    for s in rng.integers(0, n - 200, 3_000):
        alarm[s : s + rng.integers(1, 200)] = 1
    t_kag, kag = best_of(args.repeats, lambda: kaggle_f05(truth, alarm))
    t_kag_naive, kag_naive = best_of(1, lambda: naive_kaggle_f05(truth, alarm))
    same_kag = bool(np.isclose(kag, kag_naive, rtol=1e-12))

    text = f"""{HEADER}

Command: `python benchmarks/bench_metrics.py --preds {args.preds} --events {args.events} \
--samples {args.samples}`
Machine: {machine()}

Event-wise: {args.preds:,} predicted intervals (change-point form) vs {args.events:,} event IDs
({len(y_true):,} channel segments, ~60 % anomalies, 14 years of ns timestamps), Anomaly only.
`esa_scores` computes event-wise, alarming and affiliation scores; the loop computes
event-wise + alarming only. Kaggle: {n:,} samples, 200 label runs, 3,000 alarm runs.

| task | vectorised (best of {args.repeats}) | plain loop | speed-up | same numbers |
|---|---:|---:|---:|:---:|
| event-wise + alarming (+ affiliation) | {t_fast:.3f} s | {t_naive:.2f} s | \
{t_naive / t_fast:.0f}x | {"yes" if same_ew else "NO"} |
| `kaggle_f05` | {t_kag:.3f} s | {t_kag_naive:.2f} s | {t_kag_naive / t_kag:.0f}x | \
{"yes" if same_kag else "NO"} |

Values: EW_F_0.50 = {fast["EW_F_0.50"]:.6f} (loop {naive["EW_F_0.50"]:.6f}), alarming precision
= {fast["alarming_precision"]:.6f} (loop {naive["alarming_precision"]:.6f}), AFF_F_0.50 =
{fast["AFF_F_0.50"]:.6f}; kaggle F0.5 = {kag:.6f} (loop {kag_naive:.6f}).
"""
    print(text)
    if not (same_ew and same_kag):
        raise SystemExit("vectorised and loop results differ")
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
