"""How long one wild reading keeps a trained detector alarming (a check, not a benchmark).

Injects a single reading ``k`` IQRs (the GRU's own input scale) above a channel's median into a
quiet stretch of a mission's validation range (no labeled row and no alarm of the detector
within ``--after`` rows after it and 50 before), scores the range again and prints how many
rows newly alarm, and where they end. The trailing mean ``datamodule.detrend`` subtracts
carries a wild reading for a whole span (a day at 30 s); ``datamodule.detrend_stat=clipped_mean``
and ``median`` do not (docs/experiments.md).

    python benchmarks/spike_tail.py --detector <run>/detector --data synthetic \
        --root datasets/synthetic_default --channels 2,4 --sizes 10,10000

The validation range is the one the detector's threshold was fitted on: nothing is chosen
here, and no test row is read.
"""

from __future__ import annotations

import argparse
import copy
import warnings

import _checkout  # noqa: F401
import numpy as np

import esa_lightning
from esa_lightning import Detector


def quiet_row(labels: np.ndarray, alarm: np.ndarray, after: int) -> int:
    """The middle one of the rows (every 500th) with no label and no alarm from 50 rows before
    to ``after`` rows after it."""
    n = len(labels)
    rows = [r for r in range(50, n - after, 500)
            if not labels[r - 50 : r + after].any() and not alarm[r - 50 : r + after].any()]
    if not rows:
        raise SystemExit(f"no quiet stretch of {after} rows in the validation range")
    return rows[len(rows) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", required=True, help="a gru_ae artifact folder")
    parser.add_argument("--data", default="synthetic", help="the reader (data=...)")
    parser.add_argument("--root", required=True, help="the mission the detector trained on")
    parser.add_argument("--channels", default="2,4", help="channel positions to inject into")
    parser.add_argument("--sizes", default="10,10000", help="spike sizes in IQRs")
    parser.add_argument("--after", type=int, default=3000, help="quiet rows after the spike")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    detector = Detector.load(args.detector)
    (module,) = detector.components.values()
    val = esa_lightning.load_mission(args.data, args.root).val()
    base = detector.score_rows(val)
    row = quiet_row(val.is_anomaly.astype(bool), base.alarm.astype(bool), args.after)
    stat = module.hparams.get("detrend_stat", "mean")
    print(f"detector {args.detector}: detrend {module.hparams.get('detrend')} ({stat}); "
          f"validation row {row} of {len(val.values)}")
    print("| channel | spike (IQRs) | alarm at the spike | rows newly alarmed | last one after "
          "it |")
    print("|---|---|---|---|---|")
    for channel in map(int, args.channels.split(",")):
        median = float(module.scaler_median[0, channel])
        iqr = float(module.scaler_iqr[0, channel])
        for size in map(float, args.sizes.split(",")):
            spiked = copy.deepcopy(val)  # its own arrays: the spike stays in this copy
            spiked.values[row, channel] = median + size * iqr
            scores = detector.score_rows(spiked)
            new = np.flatnonzero(scores.alarm.astype(bool) & ~base.alarm.astype(bool))
            last = f"+{new.max() - row}" if len(new) else "-"
            print(f"| {channel} | {size:g} | {bool(scores.alarm[row])} | {len(new)} | {last} |")


if __name__ == "__main__":
    main()
