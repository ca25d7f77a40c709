"""``evaluate.py``: score a predictions CSV against a mission's labels; ``evaluation.json``
with every metric, and ``events.csv`` with each labeled event caught or missed (the columns of
``predict.py``'s, ``reporting.caught``; ``alarms`` numbers the predictions' alarm intervals,
their runs of 1 in row order, series after series)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission
from esa_lightning.data.readers.common import one_line
from esa_lightning.data.readers.header_line import HEADER_LIMIT, first_lines
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.install import command
from esa_lightning.io import atomic_path, json_text
from esa_lightning.jobs.common import mission_from_config, scored_mission
from esa_lightning.metrics import ranking_table
from esa_lightning.metrics.intervals import runs
from esa_lightning.metrics.report import (
    SELECTIONS,
    align_prediction_frame,
    not_whole_ids,
    plain,
    refuse_row,
    score_aligned,
    score_column,
    zero_one,
)
from esa_lightning.models.base import RowScores
from esa_lightning.reporting.caught import event_outcomes, outcomes_in_turn
from esa_lightning.runtime.evaluation import (
    concatenate_series,
    has_labeled_events,
    report_for,
    set_aside_events,
)

log = logging.getLogger("esa_lightning")

# a range without a labeled event gets no metrics (never 0.0): evaluate.py has nothing to write
NOTHING_TO_SCORE = (
    "the predicted rows hold no labeled anomaly or rare event (or their labels are unknown, as "
    "in a Kaggle file without is_anomaly: test.parquet): nothing to score; predict a labeled "
    "range"
)


def nothing_to_score(parts: list[Mission]) -> str:
    """``NOTHING_TO_SCORE``, naming the events of ``parts`` that ``metrics.label_channels=target``
    set aside (on non-target channels only), where it did."""
    aside = set_aside_events(parts)
    if not aside:
        return NOTHING_TO_SCORE
    return (f"the predicted rows hold no labeled anomaly or rare event on the target channels "
            f"({aside} labeled event(s) on non-target channels only set aside by "
            "metrics.label_channels=target): nothing to score; score them with "
            "metrics.label_channels=all, or predict a range with a target-channel event")


#: the most columns of a predictions file evaluate.py reads past (``warn_unread_columns``)
MAX_UNREAD_COLUMNS = 10_000


def evaluate_predictions(cfg) -> dict[str, float]:  # noqa: ANN001 - a Hydra DictConfig
    """``evaluate.py``: score ``cfg.predictions`` against the labels of ``cfg.data``. Refused
    before it writes (a file, column or value it cannot score), it leaves no run folder it made
    (``run_folder.removed_if_refused``)."""
    from esa_lightning.jobs.run_guard import refuse_other_runs_folder
    from esa_lightning.run_folder import removed_if_refused

    folder = Path(cfg.paths.output_dir)
    with removed_if_refused(folder, keep=bool(cfg.get("debug_errors", False))):
        # a training run's folder, predict.py's (its events.csv is not ours): refused
        refuse_other_runs_folder(folder, "evaluate")
        results, events = _score_predictions(cfg)
    anomaly_only = {k[: -len("_anomaly")]: v for k, v in results.items() if k.endswith("_anomaly")}
    print("{Anomaly, Rare Event}:")
    print(ranking_table({cfg.algorithm: results}))
    print("Anomaly only:")
    print(ranking_table({cfg.algorithm: anomaly_only}))
    # written with every evaluation, so an earlier evaluation's table in the same folder never
    # stands beside this one's numbers: both written in full before either is renamed in place,
    # evaluation.json (which says an evaluation finished) last, an earlier one removed first
    with atomic_path(folder / "evaluation.json") as js:
        js.write_text(json_text(results))
        with atomic_path(folder / "events.csv") as table:
            events.to_csv(table, index=False)
            (folder / "evaluation.json").unlink(missing_ok=True)
    print(f"written: {folder / 'evaluation.json'}")
    counted = events["category"].isin(SELECTIONS[""])  # the events EW_recall counts
    print(
        f"written: {folder / 'events.csv'} ({int(events['caught'][counted].sum())} of "
        f"{int(counted.sum())} anomalies and rare events caught)"
    )
    return results


def _score_predictions(cfg) -> tuple[dict[str, float], pd.DataFrame]:  # noqa: ANN001
    """The metrics of ``cfg.predictions`` and each labeled event caught or missed."""
    path = Path(cfg.predictions)
    if path.is_dir():  # a predict.py run folder, say
        inside = path / "submission.csv"
        hint = f": its submission is {inside}" if inside.is_file() else ""
        raise ESAInputError(f"a folder, not a predictions file{hint}", path=path)
    if not path.is_file():
        raise ESAInputError("predictions file not found", path=path)
    header = refuse_malformed_lines(path)
    mission = scored_mission(mission_from_config(cfg.data), cfg)  # metrics.label_channels
    refuse_series_file(header, mission, path)
    warn_unread_columns(header, mission, path)
    try:
        # text as written: a series named NA or None is a name; only an empty cell is missing
        frame = pd.read_csv(path, dtype={"channel": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ESAInputError(f"not a readable CSV ({one_line(exc)})", path=path) from None
    if mission.is_multiseries:
        return score_series_frame(frame, mission.test(), path)
    aligned = align_prediction_frame(frame, mission, path)
    # the predicted rows' events, as predict.py scores a range: one wholly between the row
    # before them and their first is theirs, listed on their first row's time (range_events)
    predicted = mission.slice(int(aligned.rows[0]), int(aligned.rows[-1]) + 1)
    if not has_labeled_events(predicted):
        raise ESAInputError(nothing_to_score([predicted]), path=path)
    results = score_aligned(aligned, predicted)
    return results, event_outcomes(predicted.events, aligned.timestamps, aligned.alarm)


def refuse_malformed_lines(path: Path, limit: int = HEADER_LIMIT) -> list[str]:
    """The names of a predictions file's header, refused if its header line or first data row
    is longer than ``limit`` characters (4 MiB), its header names a column twice, or its first
    data row has more cells than the header has names, reading at most ``limit`` of each line,
    as the ESA CSV reader refuses its files: pandas read a file without line breaks whole (a
    20 MB one ran for more than 300 s), renamed a repeated column (``is_anomaly.1``, in
    quadratic time) to score the first one only, and read the first cells of longer rows as an
    index, every column shifted."""
    try:
        header_line, first_row = first_lines(path, limit, limit)
        header = next(csv.reader([header_line]), [])
        row = next(csv.reader([first_row]), [])
    except (OSError, csv.Error) as exc:  # a cell longer than the csv module's 131,072
        raise ESAInputError(f"not a readable CSV ({one_line(exc)})", path=path) from None
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ESAInputError("named twice in the header", path=path, column=name)
        seen.add(name)
    if len(row) > len(header):
        raise ESAInputError(
            f"the first data row has {len(row)} cells, the header {len(header)} names (a "
            "comma at the end of each row, or a column without a name?)",
            path=path,
        )
    return header


def refuse_series_file(header: list[str], mission: Mission, path: Path) -> None:
    """Refuse a NASA submission (a ``channel`` column: each row one series' alarm) against a
    single-grid mission, unless the mission has a channel named ``channel`` (its 0/1 column):
    read without the column, one channel's ids were scored as the grid's alarms."""
    if mission.is_multiseries or "channel" not in header:
        return
    if "channel" in mission.channel_names:
        return
    raise ESAInputError(
        f"a NASA submission (channel,id,is_anomaly: alarms per series) cannot be scored "
        f"against mission {quoted(mission.name)}, one grid of rows: score it against the NASA "
        "data it was predicted on (data=nasa data.root=...), or predict this data again "
        f"({command('predict')} writes id,is_anomaly for it)",
        path=path, column="channel",
    )


def warn_unread_columns(header: list[str], mission: Mission, path: Path) -> None:
    """Warn, naming the first of them, of the columns of a predictions file evaluate.py does
    not read: a misspelled ``score`` drops AUC_PR, a misspelled channel column the channel
    metrics. Refuse a header of more than ``MAX_UNREAD_COLUMNS`` of them before the table is
    read: pandas builds a column of every name (109 s and 2.2 GB for 466,000 names over 30
    rows); reading only the needed ones (``usecols``) would let rows with more cells than the
    header pass unnoticed (pandas-dev/pandas#40049)."""
    read = {"is_anomaly", "score", "id"}
    read |= {"channel"} if mission.is_multiseries else {"timestamp", *mission.channel_names}
    unread = [c for c in header if c not in read]
    if not unread:
        return
    named = ", ".join(quoted(c) for c in unread[:20])
    named += f", ... ({len(unread):,} in all)" if len(unread) > 20 else ""
    reads = (
        "channel, id, is_anomaly and an optional score"
        if mission.is_multiseries
        else "timestamp or id, is_anomaly and an optional score, and per-channel 0/1 columns "
        "named like the mission's channels"
    )
    if len(unread) > MAX_UNREAD_COLUMNS:
        raise ESAInputError(
            f"{len(unread):,} columns evaluate.py does not read, more than {MAX_UNREAD_COLUMNS:,}"
            f" (it reads {reads}): {named}; refused before the table is read",
            path=path,
        )
    log.warning("%s: column(s) %s not read (evaluate.py reads %s)", path, named, reads)


def score_series_frame(
    frame: pd.DataFrame, part: Mission, path: Path | None = None
) -> tuple[dict[str, float], pd.DataFrame]:
    """Score ``predict.py``'s NASA submission (``channel,id,is_anomaly``) against ``part``:
    (metrics, each labeled event of the scored channels caught or missed).

    Every channel in the file must be a series of ``part`` and list exactly its rows' ids;
    channels left out of the file are left out of the metrics (events included). A channel is
    read without surrounding spaces, as the NASA reader reads ``chan_id`` (``" P-1"`` copied
    from labeled_anomalies.csv is series P-1).
    """
    for column in ("channel", "id", "is_anomaly"):
        if column not in frame.columns:
            raise ESAInputError(
                f"missing column: NASA predictions need channel, id and is_anomaly columns "
                f"(found {quoted([str(c) for c in frame.columns])})",
                path=path,
                column=column,
            )
    alarm_all = zero_one(frame, "is_anomaly", path)
    id_all = pd.to_numeric(frame["id"], errors="coerce")
    refuse_row(frame, "id", not_whole_ids(id_all.to_numpy()), "an id must be a whole number",
               path)
    score_all = score_column(frame, path)
    empty = frame["channel"].isna().to_numpy() | (frame["channel"].astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + 1
        raise ESAInputError(f"empty cell in row {row} after the header", path=path,
                            column="channel")
    written = frame["channel"].astype(str)
    frame = frame.assign(channel=written.str.strip(), id=id_all.astype(np.int64),
                         is_anomaly=alarm_all,
                         score=alarm_all if score_all is None else score_all)
    unknown = ~frame["channel"].isin(list(part.series)).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        names = list(part.series)
        listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        raise ESAInputError(
            f"row {row + 1} after the header: not a channel of the mission (its series: "
            f"{listed})",
            path=path,
            column="channel",
            value=written.iloc[row],
        )
    pieces = []
    by_channel = dict(list(frame.groupby("channel", sort=False)))
    for name in [n for n in part.series if n in by_channel]:  # the mission's order, as predict's
        sub, rows = part.series[name], by_channel[name]
        ids = np.asarray(sub.timestamps, dtype=np.int64)
        if problem := _ids_problem(rows["id"], ids):
            span = f" have ids {ids[0]}..{ids[-1]}" if len(ids) else ""
            raise ESAInputError(
                f"channel {name}: {problem} (its {len(ids)} test rows{span})",
                path=path,
                column="id",
            )
        got = rows.set_index("id").reindex(ids)
        alarm = got["is_anomaly"].to_numpy().astype(np.uint8)
        # float64, as read: float32 would tie 1e6 and 1e6 + 0.01 and make 1e40 inf (AUC_PR)
        pieces.append((name, sub, RowScores(got["score"].to_numpy(np.float64), alarm)))
    if not pieces:
        raise ESAInputError("no prediction rows (only a header)", path=path)
    if not any(has_labeled_events(sub) for _, sub, _ in pieces):
        raise ESAInputError(nothing_to_score([sub for _, sub, _ in pieces]), path=path)
    # concatenate_series keeps the events of the scored channels only
    metrics = {k[2:]: v for k, v in report_for(concatenate_series(part, pieces), "x").items()}
    if score_all is None:  # AUC_PR ranks rows by a score: the 0/1 alarms are none
        metrics.pop("AUC_PR", None)
    events = outcomes_in_turn(
        (name, sub.events, np.asarray(sub.timestamps), rs.alarm, len(runs(rs.alarm)[0]))
        for name, sub, rs in pieces
    )
    return metrics, events


def _ids_problem(written: pd.Series, ids: np.ndarray) -> str | None:
    """What keeps one series' ``id`` cells (the file's rows) from listing its test rows once
    each, or None."""
    twice = written.duplicated().to_numpy()
    if twice.any():
        row = int(np.flatnonzero(twice)[0])
        return (f"id {plain(written.iloc[row])!r} listed twice (again in row "
                f"{int(written.index[row]) + 1} after the header)")
    foreign = ~written.isin(ids).to_numpy()
    if foreign.any():
        row = int(np.flatnonzero(foreign)[0])
        return (f"id {plain(written.iloc[row])!r} in row {int(written.index[row]) + 1} after "
                "the header is not one of its test rows")
    if len(written) != len(ids):
        missing = ids[~np.isin(ids, written.to_numpy())]
        return f"{len(missing)} test row(s) have no prediction (the first: id {missing[0]})"
    return None

