"""``python -m esa_lightning.data.convert``: a NASA telemanom folder as a multichannel ESA mission.

Why: the supervised paths need real telemetry to be developed and tested on, and the ESA-ADB
missions are not always at hand. The NASA SMAP/MSL releases are: this turns one into the ESA raw
(``data=esa``), ESA CSV (``data=esa_csv``) or Kaggle (``data=kaggle``) layout.

    python -m esa_lightning.data.convert --source NASA_DIR --out OUT_DIR --layout esa \\
        [--arrange side_by_side|sequential] [--channels C-1,T-9] [--spacecraft MSL] \\
        [--period 30s] [--start 2000-01-01] [--commands] [--test-share 1.0] \\
        [--recordings both|test] [--val-share 0.0]

What it writes
--------------
- Values: column 0 of each ``train/<chan>.npy`` / ``test/<chan>.npy`` (the telemetry value).
  Every NASA channel becomes one ESA channel under its NASA name (``C-1``): the readers accept
  any name. Row i of a channel's stretch lies at ``start + i * period`` on one regular grid.
- ``arrange``: where the channels' stretches lie on the grid. Either way every channel's
  training stretch ends before the split and its test stretch starts at or after it, so the
  train/test split is by time, at ``split_date``:
  - ``side_by_side`` (default): each channel's training stretch is followed directly by its test
    stretch, and all channels are aligned at the split: every test stretch starts at
    ``split_date``, the channel with the longest training stretch starts at ``start``. Channels
    of other lengths start later or end earlier. Labeled sequences of different channels may
    overlap in time (MSL M-1 and M-2 share one).
  - ``sequential``: the channels take turns: the training stretches one after another (listed
    order) up to the split, then the test stretches in the same order. One channel is live at a
    time and labeled sequences of different channels never overlap in time, so the Kaggle row
    label keeps every NASA sequence apart (unless two touch across a channel change).
- Rows outside a channel's own stretches are not data. The ESA raw layout holds only the real
  samples (float64 as in the source; each channel file spans its own stretches); the reader's
  zero-order hold fills the rest of the grid (first value before, last value after and between
  its stretches). The CSV and Kaggle layouts need one common grid, so they hold exactly those
  values, as ESA-ADB's own CSV and Kaggle files are the zero-order held raw missions: all three
  layouts read back to the same [T, C] values, labels and telecommands. A NaN sample of the
  source, or one float32 cannot hold, is written as it is, and each reader repairs and marks it
  alike (``Mission.unrepresentable``), with its warning. ``mission.json`` records each
  channel's stretches (grid rows = Kaggle ``id``s).
- Labels: every ``anomaly_sequences`` pair becomes one event ``<chan>_<k>`` (k in listed order)
  on its channel, category ``Anomaly``, class the NASA class; both ends inclusive, on grid
  points. ESA raw: ``labels.csv`` + ``anomaly_types.csv`` (Locality Global for NASA ``point``,
  Local for ``contextual``; Length Point or Subsequence; Univariate). ESA CSV: the per-channel
  ``is_anomaly_<chan>`` codes. Kaggle: the row label ``is_anomaly`` in ``train.parquet`` and
  ``test.parquet`` (the challenge's test file has none; the reader scores the test range only
  with it). The CSV and Kaggle folders also get ``events.csv`` (ID, Channel, times, grid rows,
  Category, Class), which the readers do not read.
- ``test_share`` (1.0): the share of the rows after NASA's own split that stays in the test
  range; the rest joins the training range. NASA's training files hold no labeled anomaly, so
  supervised detectors need ``test_share`` < 1 (0.5: each channel's first half of its labeled
  stretch is trained on, side by side) to see any.
- ``recordings`` (``both``): ``test`` leaves NASA's training recordings out: each channel is
  its test recording alone, cut by time in two, the last ``test_share`` (then < 1) of its rows
  its test stretch and the rows before its training stretch (the cut moves past a labeled
  sequence it would split, so each sequence lies in one range). Both arrangements place these
  stretches as above. With ``both``, side by side, every channel passes from its training
  recording (no labeled sequence) to its test recording at the same row, and the labels of the
  training range say little more than "after that row": a supervised detector learns the file
  boundary. With ``test`` no such boundary lies inside the mission: training and test rows come
  from the same recordings, nominal and anomalous alike. Side by side, MSL's 27 recordings
  overlap so much that most rows hold a labeled sequence of some channel; ``sequential`` keeps
  the row labels of the Kaggle layout apart.
- Commands (columns 1..) are dropped by default. ``commands=True`` carries every command column
  set at least once as a priority-3 telecommand ``telecommand_<chan>_<k>`` (k the NASA column),
  a pulse at each row where it is non-zero (about 430 columns for MSL).
- ``val_share`` (0): validation is the readers' (``data.val_fraction``, ``data.val_days``: the
  last rows before the split). One after another that is the last channels' training stretches,
  channels held flat through every row before: a detector meets them live for the first time in
  validation, and thresholds fitted there do not carry to test. ``val_share`` > 0 (below 0.5,
  ``sequential`` only, and with ``recordings="both"`` only at ``test_share`` 1, where training
  ends at the split) cuts the last ``val_share`` of every channel's training stretch off as its
  validation stretch (moved past a labeled sequence as above) and places the validation
  stretches one after another between the training stretches and the split, so validation
  holds every channel, after its training stretch, as test does. ``mission.json`` records
  ``val_date`` and ``val_row``, and the printed command reads that validation range
  (``reader_overrides``). Side by side the readers' validation already cuts every channel at
  the same time.
- ``mission.json``: split date and row, period, start, arrangement, each channel's stretches,
  ``counters: []`` (``data=esa`` reads its split and counters).

``start`` lies on the ``period`` grid from 1970 (the ESA reader's), the period in whole
seconds. Written to a temporary folder renamed onto ``out`` (refused if not empty or inside the
source, which is never modified); files follow the user's umask.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning import io
from esa_lightning.data.convert_command import train_command
from esa_lightning.data.convert_layouts import _WRITERS, Job, Placement
from esa_lightning.data.readers.esa_adb_grid import to_ns
from esa_lightning.data.readers.grid_period import period_ns
from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.errors import ESAInputError, quoted

LAYOUTS = ("esa", "esa_csv", "kaggle")
ARRANGEMENTS = ("side_by_side", "sequential")
RECORDINGS = ("both", "test")
_SECOND = 10**9
# column names a layout gives a meaning (exact names, prefixes): no channel may be named so
RESERVED = {
    "esa_csv": ({"timestamp"}, ("telecommand_", "is_anomaly_")),
    "kaggle": ({"id", "is_anomaly"}, ("telecommand_", "is_anomaly_")),
}


def place_channels(
    lengths: Sequence[tuple[str, int, int, int]], arrange: str
) -> tuple[list[Placement], int, int]:
    """(placements, grid rows, split row) of channels given as (name, n_train, n_val, n_test);
    side by side takes no validation stretch (n_val 0)."""
    _check_choice(arrange, ARRANGEMENTS, "arrange")
    if arrange == "side_by_side":
        if any(v for _, _, v, _ in lengths):
            raise ValueError("side by side places no validation stretch")
        split = max(n_train for _, n_train, _, _ in lengths)
        placed = [Placement(c, split - a, a, split, b) for c, a, _, b in lengths]
        return placed, split + max(b for *_, b in lengths), split
    val_row = sum(a for _, a, _, _ in lengths)
    split = val_row + sum(v for _, _, v, _ in lengths)
    placed, train_row, test_row = [], 0, split
    for c, a, v, b in lengths:
        placed.append(Placement(c, train_row, a, test_row, b, val_row=val_row, n_val=v))
        train_row, val_row, test_row = train_row + a, val_row + v, test_row + b
    return placed, test_row, split


def convert_nasa(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    layout: str = "esa",
    arrange: str = "side_by_side",
    channels: str | Sequence[str] | None = None,
    spacecraft: str | None = None,
    period: str = "30s",
    start: str = "2000-01-01",
    commands: bool = False,
    test_share: float = 1.0,
    recordings: str = "both",
    val_share: float = 0.0,
) -> Path:
    """Write the NASA telemanom folder ``source`` into the new folder ``out`` in ``layout``
    (``esa``, ``esa_csv`` or ``kaggle``); return ``out``. See the module docstring."""
    _check_choice(layout, LAYOUTS, "layout")
    _check_choice(arrange, ARRANGEMENTS, "arrange")
    _check_choice(recordings, RECORDINGS, "recordings")
    source, out = Path(source), Path(out)
    p_ns = period_ns(period)
    if p_ns % _SECOND:
        raise ESAInputError(
            "period must be a whole number of seconds (the CSV layout has 1 s timestamps)",
            column="period",
            value=period,
        )
    t0 = to_ns(start, "start")
    if t0 % p_ns:
        on_grid = pd.Timestamp(t0 - t0 % p_ns).isoformat()
        raise ESAInputError(
            f"start must lie on the {period} grid counted from 1970-01-01 (the ESA reader's "
            f"grid), e.g. {on_grid}",
            column="start",
            value=start,
        )
    if not 0.0 < float(test_share) <= 1.0:
        raise ESAInputError("test_share must lie in (0, 1]", column="test_share", value=test_share)
    if recordings == "test" and float(test_share) == 1.0:
        raise ESAInputError(
            "recordings=test needs test_share < 1: the test recordings are all there is to "
            "train on",
            column="test_share",
            value=test_share,
        )
    val_share = _check_val_share(val_share, arrange, recordings, float(test_share))
    check_output(source, out)
    nasa = read_nasa(
        source, channels="all" if channels is None else channels, spacecraft=spacecraft
    )
    _check_names(list(nasa.series), layout)
    skip, lengths = {}, []
    for c, s in nasa.series.items():
        if recordings == "test":
            skip[c] = s.test_start
            n_train, n_test = _cut_test(s.labels[s.test_start :, 0], float(test_share), c)
        else:
            skip[c], n_train, n_test = 0, s.test_start, s.n_rows - s.test_start
        n_train, n_val = _cut_recording(s.labels[skip[c] : skip[c] + n_train, 0], val_share)
        lengths.append((c, n_train, n_val, n_test))
    placed, n_rows, split = place_channels(lengths, arrange)
    placed = [replace(p, skip=skip[p.name]) for p in placed]
    val_row = min(p.val_row for p in placed) if val_share else None
    if recordings == "both":
        after = n_rows - split
        split += int(round((1.0 - float(test_share)) * after))
        if split >= n_rows:
            raise ESAInputError(
                f"keeps no row of the {after} after NASA's split as test: the test range "
                "would be empty; choose a larger share",
                column="test_share",
                value=test_share,
            )
    last_ns = t0 + (n_rows - 1) * p_ns  # pandas times end in 2262
    if last_ns > pd.Timestamp.max.value:
        raise ESAInputError(
            f"the mission's {n_rows} rows from start would end after {pd.Timestamp.max}, the "
            "last time pandas (and the readers) can hold: choose an earlier start",
            column="start",
            value=start,
        )
    job = Job(source, nasa, placed, n_rows, split, t0, p_ns, commands)
    with io.new_folder(out) as tmp:  # checked empty above
        n_telecommands = _WRITERS[layout](job, tmp)
        record = _record(job, layout, arrange, recordings, period, n_telecommands, val_row)
        (tmp / "mission.json").write_text(json.dumps(record, indent=2) + "\n")
    return out


def _cut_recording(labels: np.ndarray, share: float) -> tuple[int, int]:
    """(rows before, rows after) the cut of one recording (or stretch) whose last ``share`` of
    rows come after it, the cut moved forward past a labeled sequence it would split; share 0:
    no cut."""
    n = len(labels)
    if not share:
        return n, 0
    cut = min(n - 1, max(1, int(round((1.0 - share) * n))))
    while cut < n and labels[cut - 1] and labels[cut]:
        cut += 1
    return cut, n - cut


def _cut_test(labels: np.ndarray, share: float, channel: str) -> tuple[int, int]:
    """``_cut_recording`` of a test recording, which must keep rows on both sides: a labeled
    sequence that runs to the recording's end puts the cut before it rather than past the end
    (where the channel would get no test row)."""
    before, after = _cut_recording(labels, share)
    if after == 0:
        while before > 0 and labels[before - 1]:
            before -= 1
        after = len(labels) - before
    if before == 0:
        raise ESAInputError(
            f"channel {channel}: its test recording is one labeled sequence; no cut leaves it "
            "rows before and after",
            column="test_share",
            value=share,
        )
    return before, after


def _check_names(names: Sequence[str], layout: str) -> None:
    """Refuse a channel named as a column ``layout`` gives a meaning: written as it is, it
    would read back as a telecommand, a label or the index, or not at all."""
    exact, prefixes = RESERVED.get(layout, (set(), ()))
    for name in names:
        if name in exact or name.startswith(prefixes):
            raise ESAInputError(
                f"the {layout} layout reserves this column name ({sorted(exact)}, names "
                f"starting {list(prefixes)}); the channel would not read back as a channel: "
                "convert it with --layout esa, or leave it out (--channels)",
                column="channels",
                value=name,
            )


def _check_choice(value: str, choices: Sequence[str], column: str) -> None:
    if value not in choices:
        raise ESAInputError(f"choose one of {list(choices)}", column=column, value=value)


def _check_val_share(val_share: float, arrange: str, recordings: str, test_share: float) -> float:
    """``val_share`` as a float, refused where it lies outside [0, 0.5) or does not apply."""
    try:
        share = float(val_share)
    except (TypeError, ValueError):
        raise ESAInputError("not a number", column="val_share", value=val_share) from None
    if not 0.0 <= share < 0.5:
        raise ESAInputError("val_share must lie in [0, 0.5)", column="val_share", value=val_share)
    if share and arrange != "sequential":
        raise ESAInputError(
            "val_share needs arrange=sequential: side by side the readers' data.val_days / "
            "data.val_fraction already cut every channel at the same time",
            column="val_share",
            value=val_share,
        )
    if share and recordings == "both" and test_share < 1.0:
        raise ESAInputError(
            "val_share with recordings=both needs test_share 1: the test recordings' first "
            "part would follow validation in the training range",
            column="val_share",
            value=val_share,
        )
    return share


def check_output(source: Path, out: Path) -> None:
    """Refuse an output that is a file, a link, a non-empty folder, or inside ``source``."""
    if out.is_symlink():  # the finished folder is renamed onto out: never onto a link
        raise ESAInputError(f"output is a symbolic link (to {os.readlink(out)}), which is not "
                            "replaced: give the folder it points to, or a new one", path=out)
    if out.exists() and not out.is_dir():
        raise ESAInputError("output exists and is not a folder", path=out)
    if out.is_dir() and any(out.iterdir()):
        raise ESAInputError("output folder is not empty (nothing is overwritten)", path=out)
    src, dst = source.resolve(), out.resolve()
    if dst == src or src in dst.parents:
        raise ESAInputError("output lies inside the source folder (it is never modified)", path=out)



def _record(
    job: Job,
    layout: str,
    arrange: str,
    recordings: str,
    period: str,
    n_telecommands: int,
    val_row: int | None,
) -> dict:
    return {
        "source": {
            "format": "nasa_telemanom",
            "folder": job.source.resolve().name,
            "spacecraft": job.nasa.meta.get("spacecraft", []),
        },
        "layout": layout,
        "arrangement": arrange,
        "recordings": recordings,
        "period": f"{job.p_ns // _SECOND}s",
        "start": job.iso(0),
        "split_date": job.iso(job.split),
        "split_row": job.split,
        "val_date": None if val_row is None else job.iso(val_row),
        "val_row": val_row,
        "rows": job.n_rows,
        "channels": {
            p.name: {
                "train_rows": [p.train_row, p.train_row + p.n_train - 1] if p.n_train else None,
                "val_rows": [p.val_row, p.val_row + p.n_val - 1] if p.n_val else None,
                "test_rows": [p.test_row, p.test_row + p.n_test - 1],
            }
            for p in job.placed
        },
        "events": len(job.nasa.events),
        "telecommands": n_telecommands,
        "counters": [],
        "lightweight": [],
        "converter": {"period": period, "commands": job.commands},
    }


# --------------------------------------------------------------------------- command line
def as_typed(exc: ESAInputError, options: dict) -> str:
    """``exc``'s message as the command line spells ``convert_nasa``'s keywords (``options``):
    the option it names as its flag (``option --test-share``, not ``column 'test_share'``), and
    each keyword with an underscore in its reason too (``--test-share < 1``)."""
    reason = exc.reason
    for key in (k for k in options if "_" in k):
        reason = re.sub(rf"\b{key}\b", "--" + key.replace("_", "-"), reason)
    where = [] if exc.path is None else [exc.path]
    if exc.column in options:
        where.append(f"option --{exc.column.replace('_', '-')}")
    elif exc.column is not None:
        where.append(f"column {quoted(exc.column)}")
    if exc.value is not None:
        where.append(f"value {quoted(exc.value)}")
    return ": ".join([*where, reason])


def main(argv: list[str] | None = None) -> int:
    """The command line; a user error is one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(
        prog="python -m esa_lightning.data.convert",
        description="Convert a NASA telemanom folder (SMAP/MSL) into an ESA-ADB layout.",
    )
    parser.add_argument("--source", required=True, help="NASA folder: train/, test/, csv")
    parser.add_argument("--out", required=True, help="new (or empty) output folder")
    parser.add_argument("--layout", required=True, choices=LAYOUTS)
    parser.add_argument("--arrange", default="side_by_side", choices=ARRANGEMENTS)
    parser.add_argument("--channels", default=None, help="comma-separated, e.g. C-1,T-9")
    parser.add_argument("--spacecraft", default=None, help="SMAP or MSL (default: present)")
    parser.add_argument("--period", default="30s", help="grid period (whole seconds)")
    parser.add_argument("--start", default="2000-01-01", help="time of the first grid row")
    parser.add_argument(
        "--commands", action="store_true", help="carry the command columns as telecommands"
    )
    parser.add_argument("--test-share", type=float, default=1.0, help="share kept as test")
    parser.add_argument(
        "--recordings",
        default="both",
        choices=RECORDINGS,
        help="test: leave NASA's training recordings out (needs --test-share < 1)",
    )
    parser.add_argument(
        "--val-share",
        type=float,
        default=0.0,
        help="sequential: each channel's last share of training rows as validation",
    )
    a = parser.parse_args(argv)
    try:
        out = convert_nasa(
            a.source,
            a.out,
            layout=a.layout,
            arrange=a.arrange,
            channels=a.channels,
            spacecraft=a.spacecraft,
            period=a.period,
            start=a.start,
            commands=a.commands,
            test_share=a.test_share,
            recordings=a.recordings,
            val_share=a.val_share,
        )
    except ESAInputError as exc:
        print(f"error: {as_typed(exc, vars(a))}", file=sys.stderr)
        return 2
    record = json.loads((out / "mission.json").read_text())
    validation = (
        f"validation from {record['val_date']} (row {record['val_row']}), "
        if record["val_row"] is not None
        else ""
    )
    print(
        f"wrote {out} ({record['layout']}, {record['arrangement']}): "
        f"{len(record['channels'])} channels x {record['rows']} rows of {record['period']} "
        f"from {record['start']}, {validation}test from {record['split_date']} "
        f"(row {record['split_row']}), {record['events']} events, "
        f"{record['telecommands']} telecommands"
    )
    print(f"train on it: {train_command(out, record)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
