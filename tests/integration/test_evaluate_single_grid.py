"""evaluate.py on a single-grid mission's predictions (``timestamp`` or ``id``, ``is_anomaly``,
optional ``score`` and per-channel columns, as ESA and Kaggle missions are scored): every
refusal names the file it read, the column and the first offending row and value. A missing
column, a key that is no time, empty, repeated or no row of the mission, an is_anomaly or
per-channel cell that is no 0/1 and a score that is no number were refused naming no file and
no row (``align_prediction_frame``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from esa_lightning.data.readers.header_line import HEADER_LIMIT
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.evaluate import evaluate_predictions
from esa_lightning.metrics.intervals import KEY_CELL_LIMIT
from tests.conftest import compose_config
from tests.helpers import set_cell, write_esa_csv
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

N = 60  # rows of the ESA CSV mission; its test range is the last 30
SPLIT = "2000-01-01T00:15:00"  # row 30 of the 30 s grid


@pytest.fixture
def esa_csv(tmp_path: Path) -> tuple[list[str], pd.DataFrame]:
    """An ESA-ADB preprocessed CSV with one anomaly of channel_1 in its test range, and the
    predictions of that range catching it (timestamp, is_anomaly, score, channel_1)."""
    path = write_esa_csv(tmp_path / "mission.csv", n=N)
    frame = pd.read_csv(path)
    frame.loc[40:44, "is_anomaly_channel_1"] = 1
    frame.to_csv(path, index=False)
    pred = pd.DataFrame({"timestamp": frame["timestamp"][30:], "is_anomaly": 0,
                         "score": np.linspace(0, 1, N - 30), "channel_1": 0}).reset_index(drop=True)
    pred.loc[11:13, ["is_anomaly", "channel_1"]] = 1
    return ["data=esa_csv", f"data.root={path}", f"data.split_date={SPLIT}"], pred


@pytest.fixture
def kaggle(tmp_path: Path) -> tuple[list[str], pd.DataFrame]:
    """A Kaggle folder with a labeled test.parquet (ids 60..89, an anomaly at 70..74), and the
    predictions of its test rows (id, is_anomaly) catching it."""
    root = tmp_path / "kg"
    root.mkdir()
    for part, ids in (("train", np.arange(0, 60)), ("test", np.arange(60, 90))):
        cols = {"id": ids, "channel_1": np.sin(ids / 3.0), "channel_2": np.cos(ids / 3.0),
                "is_anomaly": ((ids >= 70) & (ids < 75)).astype(np.uint8)}
        pq.write_table(pa.table(cols), root / f"{part}.parquet")
    ids = np.arange(60, 90)
    pred = pd.DataFrame({"id": ids, "is_anomaly": ((ids >= 71) & (ids < 73)).astype(int)})
    return ["data=kaggle", f"data.root={root}"], pred


# how the predictions are spoiled, and what the refusal names beside the file
ESA_CASES = {
    "no is_anomaly": (lambda f: f.drop(columns="is_anomaly"),
                      ["column 'is_anomaly'", "predictions lack the is_anomaly column"]),
    "no timestamp": (lambda f: f.drop(columns="timestamp"),
                     ["column 'timestamp'", "predictions need a timestamp or an id column"]),
    "timestamp no time": (set_cell(3, "timestamp", "garbage"),
                          ["column 'timestamp'", "value 'garbage'", "row 4 after the header",
                           "cannot be read as a time"]),
    "timestamp empty": (set_cell(4, "timestamp", None),
                        ["column 'timestamp'", "empty cell in row 5 after the header"]),
    "timestamp twice": (lambda f: set_cell(7, "timestamp", f["timestamp"][0])(f),
                        ["column 'timestamp'", "row 8 after the header: repeated key"]),
    "timestamp no row": (set_cell(9, "timestamp", "2001-01-01 00:00:00"),
                         ["column 'timestamp'", "value '2001-01-01 00:00:00'",
                          "row 10 after the header", "not rows of mission"]),
    "is_anomaly yes": (set_cell(6, "is_anomaly", "yes"),
                       ["column 'is_anomaly'", "value 'yes'", "row 7 after the header",
                        "is_anomaly must hold only 0/1"]),
    "is_anomaly 2": (set_cell(20, "is_anomaly", 2),
                     ["column 'is_anomaly'", "value 2", "row 21 after the header"]),
    "channel 3": (set_cell(15, "channel_1", 3),
                  ["column 'channel_1'", "value 3", "row 16 after the header",
                   "per-channel columns must hold only 0/1"]),
    "score no number": (set_cell(2, "score", "abc"),
                        ["column 'score'", "value 'abc'", "row 3 after the header",
                         "a score that is no number"]),
    "rows missing": (lambda f: f.iloc[:20], ["column 'timestamp'", "10 rows are missing",
                                             "the data settings the predictions were made with"]),
    "only a header": (lambda f: f.iloc[:0], ["no prediction rows"]),
}
KAGGLE_CASES = {
    "id no number": (set_cell(3, "id", "abc"),
                     ["column 'id'", "value 'abc'", "row 4 after the header"]),
    "id no whole number": (set_cell(5, "id", 65.5),
                           ["column 'id'", "value 65.5", "row 6 after the header",
                            "differ in kind"]),
    "id no row": (set_cell(8, "id", 999),
                  ["column 'id'", "value 999", "row 9 after the header", "not rows of mission",
                   "the data settings the predictions were made with"]),
    "is_anomaly empty": (set_cell(12, "is_anomaly", None),
                         ["column 'is_anomaly'", "empty cell in row 13 after the header"]),
}


def refusal(tmp_path: Path, data: list[str], pred: pd.DataFrame) -> str:
    path = tmp_path / "spoiled.csv"
    pred.to_csv(path, index=False)
    return refusal_of(tmp_path, data, path)


def refusal_of(tmp_path: Path, data: list[str], path: Path) -> str:
    """The one-line refusal of the predictions file ``path``, which names it first."""
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "e")
    with pytest.raises(ESAInputError) as refused:
        evaluate_predictions(cfg)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert not (tmp_path / "e" / "evaluation.json").exists()
    return message


SPOILED = [("esa_csv", case, ESA_CASES[case]) for case in sorted(ESA_CASES)] + [
    ("kaggle", case, KAGGLE_CASES[case]) for case in sorted(KAGGLE_CASES)
]


@pytest.mark.parametrize(
    ("mission", "case", "spoiled"), SPOILED, ids=[f"{m}-{c}" for m, c, _ in SPOILED]
)
def test_evaluate_names_the_predictions_it_refuses(tmp_path, request, mission, case, spoiled):
    data, pred = request.getfixturevalue(mission)
    spoil, needles = spoiled
    message = refusal(tmp_path, data, spoil(pred))
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("mission", ["esa_csv", "kaggle"])
def test_the_unspoiled_predictions_are_scored(tmp_path, request, mission):
    data, pred = request.getfixturevalue(mission)
    path = tmp_path / "pred.csv"
    pred.to_csv(path, index=False)
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "e")
    assert evaluate_predictions(cfg)["EW_recall"] == pytest.approx(1.0)


def test_evaluate_py_names_the_predictions_file_in_one_line(tmp_path, esa_csv):
    """Through the command line, as a user meets it."""
    data, pred = esa_csv
    path = tmp_path / "spoiled.csv"
    set_cell(20, "is_anomaly", 2)(pred).to_csv(path, index=False)
    proc = run_entry("evaluate.py", [f"predictions={path}", *data], tmp_path)
    assert_one_line_error(proc, str(path), "column 'is_anomaly'", "value 2",
                          "row 21 after the header")


def test_whole_number_float_ids_are_read_as_the_integer_ids_they_are(tmp_path, kaggle):
    """pandas writes an integer column as 61.0 once a NaN touched it: the Kaggle mission's
    integer ids are still those rows; an id with a fraction is still refused by its row."""
    data, pred = kaggle
    as_ints = tmp_path / "ints.csv"
    pred.to_csv(as_ints, index=False)
    as_floats = tmp_path / "floats.csv"
    pred.astype({"id": float}).to_csv(as_floats, index=False)
    assert "\n60.0," in as_floats.read_text()
    scored = {}
    for path in (as_ints, as_floats):
        cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / path.stem)
        scored[path.stem] = evaluate_predictions(cfg)
    assert scored["floats"] == scored["ints"]
    assert scored["floats"]["EW_recall"] == pytest.approx(1.0)
    spoiled = pred.astype({"id": float})
    spoiled.loc[1, "id"] = 61.5
    message = refusal(tmp_path, data, spoiled)
    for needle in ("column 'id'", "value 61.5", "row 2 after the header", "differ in kind"):
        assert needle in message, message


def test_integer_ids_are_scored_against_a_mission_whose_ids_are_whole_number_floats(tmp_path,
                                                                                    kaggle):
    """A Kaggle mission whose parquet ``id`` column is a float column (61.0, as pandas writes
    an integer column a NaN touched) holds the integer ids of a submission (61) and of a
    float-id one (61.0): both score as against integer ids. Before, the reader refused the
    mission ('ids must be integers, not double')."""
    data, pred = kaggle
    root = Path(data[1].split("=", 1)[1])
    path = tmp_path / "pred.csv"
    pred.to_csv(path, index=False)
    as_floats = tmp_path / "floats.csv"
    pred.astype({"id": float}).to_csv(as_floats, index=False)
    expected = evaluate_predictions(
        compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "ints")
    )
    for part in ("train", "test"):
        table = pq.read_table(root / f"{part}.parquet")
        floats = table.set_column(0, "id", table.column("id").cast(pa.float64()))
        pq.write_table(floats, root / f"{part}.parquet")
    assert pq.read_schema(root / "test.parquet").field("id").type == pa.float64()
    for submission in (path, as_floats):
        cfg = compose_config("evaluate", [f"predictions={submission}", *data],
                             tmp_path / f"float_mission_{submission.stem}")
        assert evaluate_predictions(cfg) == expected
    table = pq.read_table(root / "test.parquet")
    ids = table.column("id").to_numpy().copy()
    ids[7] = 67.5
    pq.write_table(table.set_column(0, "id", pa.array(ids)), root / "test.parquet")
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "fraction")
    with pytest.raises(ESAInputError) as refused:
        evaluate_predictions(cfg)
    message = str(refused.value)
    for needle in ("test.parquet", "column 'id'", "value 67.5", "at row 7:", "whole number"):
        assert needle in message, message


def test_a_full_disk_leaves_the_earlier_evaluation_whole(tmp_path, kaggle, monkeypatch):
    """evaluation.json was replaced before events.csv was written: a disk full at events.csv
    left this evaluation's numbers beside the earlier evaluation's table."""
    import errno
    import os

    data, pred = kaggle
    out = tmp_path / "eval"
    pred.to_csv(tmp_path / "p.csv", index=False)
    evaluate_predictions(compose_config("evaluate", [*data, f"predictions={tmp_path / 'p.csv'}"],
                                        out))
    before = {name: (out / name).read_bytes() for name in ("evaluation.json", "events.csv")}
    pred.assign(is_anomaly=1).to_csv(tmp_path / "q.csv", index=False)  # other numbers

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)  # events.csv cannot be written
    with pytest.raises(ESAInputError, match="events.csv"):
        evaluate_predictions(compose_config("evaluate",
                                            [*data, f"predictions={tmp_path / 'q.csv'}"], out))
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_a_column_evaluate_does_not_read_is_named_in_a_warning(tmp_path, esa_csv, caplog):
    """A misspelled ``score`` column was dropped without a word, and with it AUC_PR; a
    misspelled channel column, and with it the channel metrics."""
    data, pred = esa_csv
    path = tmp_path / "pred.csv"
    pred.rename(columns={"score": "scroe", "channel_1": "chanel_1"}).to_csv(path, index=False)
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "e")
    with caplog.at_level("WARNING", logger="esa_lightning"):
        results = evaluate_predictions(cfg)
    assert "AUC_PR" not in results and results["EW_recall"] == pytest.approx(1.0)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "'scroe'" in said[0] and "'chanel_1'" in said[0], said
    assert str(path) in said[0]
    caplog.clear()
    pred.to_csv(path, index=False)  # every column read: nothing said
    with caplog.at_level("WARNING", logger="esa_lightning"):
        evaluate_predictions(compose_config("evaluate", [f"predictions={path}", *data],
                                            tmp_path / "f"))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_folder_given_as_predictions_is_named_as_a_folder(tmp_path, kaggle):
    """predictions=<a predict.py run folder> was refused as "predictions file not found",
    though it exists; the refusal names the submission.csv it holds."""
    data, pred = kaggle
    run = tmp_path / "predict_run"
    run.mkdir()
    cfg = compose_config("evaluate", [f"predictions={run}", *data], tmp_path / "e")
    with pytest.raises(ESAInputError, match="a folder, not a predictions file") as refused:
        evaluate_predictions(cfg)
    assert "submission.csv" not in str(refused.value)  # it holds none
    pred.to_csv(run / "submission.csv", index=False)
    with pytest.raises(ESAInputError, match=f"its submission is {run / 'submission.csv'}"):
        evaluate_predictions(cfg)


def _not_parsed(*_args, **_kwargs):
    raise AssertionError("pandas was handed a file the bounded reads refuse")


@pytest.mark.parametrize(
    ("text", "needle"),
    [("t" * (HEADER_LIMIT + 1), "the header line is longer than 4,194,304 characters"),
     ("id,is_anomaly\n\n" + "6" * (HEADER_LIMIT + 1),
      "a data row is longer than 4,194,304 characters")],
    ids=["header", "first row"],
)
def test_a_predictions_file_without_line_breaks_is_refused_before_pandas_reads_it(
        tmp_path, kaggle, monkeypatch, text, needle):
    """pd.read_csv read the predictions whole, unbounded: a 20 MB file without line breaks ran
    for more than 300 s (its header's names mangled one by one, or a 'time' of millions of
    digits parsed) before a message that held the whole line. Now refused, as the ESA CSV
    reader refuses its files (readers/header_line.py), after reading at most 4 MiB of a line."""
    data, _ = kaggle
    path = tmp_path / "pred.csv"
    path.write_text(text)
    monkeypatch.setattr(pd, "read_csv", _not_parsed)
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "e")
    with pytest.raises(ESAInputError) as refused:
        evaluate_predictions(cfg)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and needle in message, message[:300]
    assert len(message) < 300


def test_a_column_named_twice_in_the_header_is_refused_by_name(tmp_path, kaggle):
    """pandas renamed a second is_anomaly column is_anomaly.1 and scored the first one only
    (a warning named 'is_anomaly.1' as unread); and a header of thousands of repeated names
    was renamed in quadratic time (40 s for 50,000 names 'x')."""
    data, pred = kaggle
    path = tmp_path / "pred.csv"
    spoiled = pred.assign(again=1 - pred["is_anomaly"])
    spoiled.to_csv(path, index=False, header=["id", "is_anomaly", "is_anomaly"])
    message = refusal_of(tmp_path, data, path)
    for needle in ("column 'is_anomaly'", "named twice in the header"):
        assert needle in message, message
    path.write_text("t" * 200_000 + "\n")  # one name longer than the csv module reads
    assert "not a readable CSV (field larger than field limit" in refusal_of(tmp_path, data, path)


@pytest.mark.parametrize("earlier", [False, True], ids=["new folder", "earlier evaluation"])
def test_evaluation_json_never_stands_without_its_events_csv(tmp_path, kaggle, monkeypatch,
                                                             earlier):
    """evaluation.json, the file that says an evaluation finished, was renamed into place
    before events.csv: a run that died between the two renames left an evaluation.json without
    events.csv, or beside the earlier evaluation's. Now events.csv lands first, and an earlier
    evaluation.json is gone before it: an evaluation.json stands only beside its own table.
    The death is an OSError at the second rename."""
    import os

    data, pred = kaggle
    runs = {}
    for name, frame in (("p", pred), ("q", pred.assign(is_anomaly=0))):  # caught, then missed
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        folder = tmp_path / f"alone_{name}"
        evaluate_predictions(compose_config("evaluate",
                                            [*data, f"predictions={tmp_path}/{name}.csv"], folder))
        runs[name] = {n: (folder / n).read_bytes() for n in ("evaluation.json", "events.csv")}
    assert runs["p"]["events.csv"] != runs["q"]["events.csv"]
    out = tmp_path / "eval"
    if earlier:
        evaluate_predictions(compose_config("evaluate", [*data, f"predictions={tmp_path}/p.csv"],
                                            out))
    renamed, replace = [], os.replace

    def dies_at_the_second(src, dst, *args, **kwargs):
        if Path(dst).name in ("evaluation.json", "events.csv"):
            renamed.append(Path(dst).name)
            if len(renamed) == 2:
                raise OSError("killed between the renames")
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", dies_at_the_second)
    with pytest.raises(ESAInputError):
        evaluate_predictions(compose_config("evaluate", [*data, f"predictions={tmp_path}/q.csv"],
                                            out))
    left = {n: (out / n).read_bytes() for n in ("evaluation.json", "events.csv")
            if (out / n).exists()}
    assert "evaluation.json" not in left or left in (runs["p"], runs["q"]), sorted(left)


@pytest.mark.parametrize("end", [",", ",0.5"], ids=["trailing comma", "extra cell"])
def test_rows_with_more_cells_than_the_header_are_refused_as_such(tmp_path, kaggle, end):
    """pandas read the first cell of rows one cell longer than the header as an unnamed index,
    shifting every column left: a trailing comma on each row was refused as "column 'id':
    value 0: repeated key" (its is_anomaly cells read as ids), and a first row of 100,000
    cells ran for 20 s, building an index of 100,000 levels."""
    data, pred = kaggle
    path = tmp_path / "pred.csv"
    header, *rows = pred.to_csv(index=False).splitlines()
    path.write_text("\n".join([header, *(row + end for row in rows)]) + "\n")
    message = refusal_of(tmp_path, data, path)
    assert "the first data row has 3 cells, the header 2 names" in message, message


def test_the_bounded_reads_open_the_predictions_file_once(tmp_path, kaggle, monkeypatch):
    """first_data_line opened the file again and read the header line refuse_long_header had
    just read and checked, to skip it: both lines are now read in one pass."""
    from esa_lightning.data.readers import header_line
    from esa_lightning.jobs.evaluate import refuse_malformed_lines

    _, pred = kaggle
    path = tmp_path / "pred.csv"
    pred.to_csv(path, index=False)
    opened = []

    def counting_open(file, *args, **kwargs):
        opened.append(Path(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(header_line, "open", counting_open, raising=False)
    refuse_malformed_lines(path)
    assert opened == [path]


@pytest.mark.parametrize(("mission", "column", "cell"), [
    ("esa_csv", "timestamp", "2000-01-01 00:15:00" + " " * 10_000),
    ("esa_csv", "timestamp", "2000-01-01 " + "9" * 10_000),
    ("kaggle", "id", "6" + "0" * 10_000),
])
def test_a_key_cell_longer_than_any_time_or_id_is_refused_by_its_length(tmp_path, request,
                                                                         mission, column, cell):
    """pandas' time parsing slows down with the square of a cell's length (4.7 s for one
    100 KB cell, minutes for one under the 4 MiB row limit): a timestamp or id cell over
    ``KEY_CELL_LIMIT`` characters is refused, naming the file, column, row and its length,
    never its content (the message was the whole cell, 10 KB of it)."""
    data, pred = request.getfixturevalue(mission)
    message = refusal(tmp_path, data, set_cell(3, column, cell)(pred))
    for needle in (f"column '{column}'", "row 4 after the header",
                   f"{len(cell)} characters", f"at most {KEY_CELL_LIMIT}"):
        assert needle in message, message
    assert cell.strip()[:100] not in message


@pytest.mark.parametrize(("column", "cell"), [
    ("score", "x" * 100_000),
    ("is_anomaly", "y" * 100_000),
])
def test_a_long_bad_cell_is_quoted_by_a_short_prefix(tmp_path, esa_csv, column, cell):
    """A cell that is no number (a score) or no 0/1 (is_anomaly) was quoted whole: one
    100 KB cell made a 100 KB error line. The refusal names the file, column and row, and
    quotes the cell's first characters and its length."""
    data, pred = esa_csv
    message = refusal(tmp_path, data, set_cell(2, column, cell)(pred))
    assert len(message) < 500, len(message)
    for needle in (f"column '{column}'", "row 3 after the header", f"({len(cell)} characters)",
                   repr(cell[:20])[:-1]):
        assert needle in message, message


def test_a_nasa_submission_is_refused_against_single_grid_data(tmp_path, kaggle):
    """A NASA submission (``channel,id,is_anomaly``: one series' alarms per channel) scored
    against Kaggle data was read as the grid's alarms with only a warning that ``channel`` was
    not read: one channel's ids that fit the grid were scored as if made for it."""
    data, pred = kaggle
    nasa = pred.assign(channel="P-1")[["channel", "id", "is_anomaly"]]
    message = refusal(tmp_path, data, nasa)
    assert "column 'channel'" in message and "NASA" in message and "data=nasa" in message
    two = pd.concat([nasa, nasa.assign(channel="A-1")])  # was refused as a "repeated key"
    assert "column 'channel'" in refusal(tmp_path, data, two)


def test_a_channel_column_named_like_a_mission_channel_is_read_as_its_alarms(tmp_path):
    """A single-grid mission with a channel named ``channel``: its 0/1 column is read."""
    root = tmp_path / "kg"
    root.mkdir()
    for part, ids in (("train", np.arange(0, 60)), ("test", np.arange(60, 90))):
        cols = {"id": ids, "channel": np.sin(ids / 3.0),
                "is_anomaly": ((ids >= 70) & (ids < 75)).astype(np.uint8)}
        pq.write_table(pa.table(cols), root / f"{part}.parquet")
    ids = np.arange(60, 90)
    alarm = ((ids >= 71) & (ids < 73)).astype(int)
    path = tmp_path / "pred.csv"
    pd.DataFrame({"id": ids, "is_anomaly": alarm, "channel": alarm}).to_csv(path, index=False)
    cfg = compose_config("evaluate", [f"predictions={path}", "data=kaggle", f"data.root={root}"],
                         tmp_path / "e")
    assert evaluate_predictions(cfg)["EW_recall"] == pytest.approx(1.0)


def test_a_header_of_many_unread_columns_is_refused_before_the_table_is_read(
    tmp_path, esa_csv, monkeypatch
):
    """A predictions file whose header holds more than 10,000 names evaluate.py does not read
    is refused from its header line, before pandas reads the table: pandas built a column of
    every name, 109 s and 2.2 GB for 466,000 names over 30 rows. Reading only the needed
    columns (``usecols``) would let rows with more cells than the header pass unnoticed
    (pandas-dev/pandas#40049)."""
    data, pred = esa_csv
    path = tmp_path / "wide.csv"
    extra = [f"x{i}" for i in range(10_001)]
    lines = [",".join([*pred.columns, *extra])]
    lines += [",".join(map(str, row)) + ",0" * len(extra) for row in pred.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")
    read = []
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: read.append(a) or pytest.fail("read"))
    message = refusal_of(tmp_path, data, path)
    for needle in ("10,001 columns evaluate.py does not read", "'x0'", "timestamp", "10,000"):
        assert needle in message, message
    assert not read


def test_a_few_thousand_unread_columns_are_still_scored_and_named_briefly(
    tmp_path, esa_csv, caplog
):
    """Under the bound, unread columns are scored around as before, and the warning names
    the first of them and their count instead of every name (one 100 KB line)."""
    data, pred = esa_csv
    path = tmp_path / "wide.csv"
    extra = pd.DataFrame(0, index=pred.index, columns=[f"x{i}" for i in range(3_000)])
    pd.concat([pred, extra], axis=1).to_csv(path, index=False)
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "e")
    with caplog.at_level("WARNING", logger="esa_lightning"):
        results = evaluate_predictions(cfg)
    assert results["EW_recall"] == 1.0
    warned = [r.getMessage() for r in caplog.records if "not read" in r.getMessage()]
    assert len(warned) == 1 and "'x0'" in warned[0] and "3,000 in all" in warned[0], warned
    assert "'x2999'" not in warned[0]


def test_an_event_between_the_rows_either_side_of_the_predicted_rows_is_scored(tmp_path):
    """The raw ESA layout: id_1 (an anomaly, 00:00:41 .. 00:00:45) lies between the training
    range's last row (00:00:30) and the test range's first (00:01:00); it is the test range's
    (``Mission.slice``) and predict.py range=test scores it, caught by an alarm on 00:01:00.
    evaluate.py scored the test range's predictions against the mission's event table clipped
    to the predicted rows' times, where id_1 meets none: no event to score it on."""
    from tests.unit.test_esa_adb import make_mission

    root = make_mission(tmp_path / "M")
    labels = pd.read_csv(root / "labels.csv")
    labels[labels["ID"] == "id_1"].to_csv(root / "labels.csv", index=False)  # the anomaly alone
    times = ["2000-01-01 00:01:00", "2000-01-01 00:01:30", "2000-01-01 00:02:00"]
    path = tmp_path / "pred.csv"
    pd.DataFrame({"timestamp": times, "is_anomaly": [1, 0, 0]}).to_csv(path, index=False)
    data = ["data=esa", f"data.root={root}", "data.split_date=2000-01-01T00:01:00",
            f"data.cache_dir={tmp_path / 'cache'}"]
    cfg = compose_config("evaluate", [f"predictions={path}", *data], tmp_path / "e")
    results = evaluate_predictions(cfg)
    assert results["EW_recall"] == pytest.approx(1.0)
    assert results["EW_precision"] == pytest.approx(1.0)
    events = pd.read_csv(tmp_path / "e" / "events.csv")
    assert list(events["id"]) == ["id_1"] and bool(events["caught"].iloc[0])
