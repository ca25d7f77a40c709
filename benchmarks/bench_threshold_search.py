"""What a threshold search's scoring costs: the corrected event-wise F0.5 of every candidate
threshold (``postprocessing.thresholds.f05_per_candidate``, which the GRU's ``f05`` threshold,
its random-forest gate's check, the combiner's and the channel ensemble's alarm heights all
call), computed side by side in one process:

- **full suite** (the reference, the code before): ``esa_scores`` for every candidate, the
  labels read again each time, the alarming precision and both affiliation scores computed
  and thrown away;
- **event-wise only** (now): ``event_wise_scores``, the labels read once.

On the fit range (training + validation) of a synthetic mission in the ESA-ADB layout, made
in a temporary folder by the synthetic reader for each ``--days`` (seed 7; validation the
last 7 days, 90 from half a year on). The scores are
a plain detector's, so that low candidates cut alarms into many pieces as a real score does:
each target channel's absolute deviation from its rolling median over 30 rows, in units of
its training IQR, the max over channels, EWMA-smoothed over 20 rows. The candidates are
``f05_candidates`` of those scores (about 200, denser towards the top), as the GRU's
threshold takes them. Both paths must give the same F0.5 for every candidate.

Usage::

    python benchmarks/bench_threshold_search.py [--days 42 365 1095] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _checkout  # noqa: E402, F401
from _common import best_of, machine, replace_section  # noqa: E402

HEADER = "## Threshold search: event-wise F0.5 of every candidate (bench_threshold_search.py)"


def plain_scores(mission) -> np.ndarray:
    """Row scores of a plain detector over ``mission`` (module docstring)."""
    from esa_lightning.postprocessing.telemanom import ewma

    values = pd.DataFrame(np.asarray(mission.values, dtype=np.float64))
    target = mission.channels["Target"].astype(bool).to_numpy()
    values = values.loc[:, target]
    train = values.iloc[: mission.val_start]
    iqr = (train.quantile(0.75) - train.quantile(0.25)).replace(0.0, 1.0)
    deviation = (values - values.rolling(30, center=True, min_periods=1).median()).abs() / iqr
    return ewma(deviation.max(axis=1).to_numpy(), 20)


def full_suite_f05(candidates, alarm_of, part) -> np.ndarray:
    """The code before: ``esa_scores`` of each candidate, the labels read each time."""
    from esa_lightning.metrics import esa_scores
    from esa_lightning.postprocessing.thresholds import F05_CATEGORIES

    events = part.events
    events = events[events["Category"].isin(F05_CATEGORIES)]
    times = np.asarray(part.timestamps)
    full_range = (times[0], times[-1])
    return np.array(
        [
            esa_scores(
                events,
                (times, alarm_of(float(thr)).astype(np.uint8)),
                betas=0.5,
                full_range=full_range,
            )["EW_F_0.50"]
            for thr in candidates
        ]
    )


def measure(days: float, repeats: int, workdir: Path) -> dict:
    from esa_lightning.data.readers.synthetic import load_synthetic
    from esa_lightning.postprocessing.thresholds import f05_candidates, f05_per_candidate

    mission = load_synthetic(
        workdir / f"d{days:g}", generate={"channels": 16, "groups": 4, "days": days, "seed": 7},
        val_days=7 if days < 180 else 90, use_cache=False,
    )
    part = mission.fit_range()
    scores = plain_scores(mission)[: len(part.values)]
    candidates = f05_candidates(scores)

    def alarm_of(thr: float) -> np.ndarray:
        return scores > thr

    old_s, old_f = best_of(repeats, lambda: full_suite_f05(candidates, alarm_of, part))
    new_s, new_f = best_of(repeats, lambda: f05_per_candidate(candidates, alarm_of, part))
    if not np.array_equal(old_f, new_f):
        raise SystemExit(f"d{days:g}: the two paths disagree on some candidate's F0.5")
    pieces = max(int(np.count_nonzero(np.diff(alarm_of(float(t)).astype(np.int8)) == 1))
                 for t in candidates)
    return {
        "days": days, "rows": len(part.values), "events": int(part.events["ID"].nunique()),
        "candidates": len(candidates), "pieces": pieces, "old": old_s, "new": new_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, nargs="+", default=[42, 365, 1095])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for days in args.days:
            r = measure(days, args.repeats, Path(tmp))
            rows.append(r)
            print(f"d{days:g}: {r['rows']:,} rows, {r['events']} events, {r['candidates']} "
                  f"candidates: full suite {r['old']:.2f} s, event-wise only {r['new']:.2f} s "
                  f"({r['old'] / r['new']:.1f}x)", flush=True)
    lines = [
        "Best of "
        f"{args.repeats} per path, one process; both paths give the same F0.5 for every "
        "candidate (checked in the run). `pieces`: the most alarm intervals any candidate makes.",
        "",
        "| fit range | rows | events | candidates | pieces | full suite (before) | "
        "event-wise only (now) | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['days']:g} days | {r['rows']:,} | {r['events']} | {r['candidates']} | "
            f"{r['pieces']:,} | {r['old']:.2f} s | {r['new']:.2f} s | "
            f"{r['old'] / r['new']:.1f}x |"
        )
    days = " ".join(f"{d:g}" for d in args.days)
    lines += [
        "",
        f"Command: `python benchmarks/bench_threshold_search.py --days {days} "
        f"--repeats {args.repeats}`.",
        "",
        machine(),
        "",
    ]
    replace_section(HEADER, "\n".join(lines))


if __name__ == "__main__":
    main()
