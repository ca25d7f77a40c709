"""full_report keys and selections, the predictions-file scorer and the ranking table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.mission import Mission, default_channel_table
from esa_lightning.errors import ESAInputError
from esa_lightning.metrics import (
    esa_scores,
    full_report,
    kaggle_f05,
    ranking_table,
    score_prediction_frame,
)

T0 = pd.Timestamp("2007-01-01")
STEP = pd.Timedelta("30s")
N = 400
CHANNELS = ["channel_1", "channel_2", "channel_3"]


def events() -> pd.DataFrame:
    rows = [
        ("id_1", "channel_1", 50, 60, "Anomaly"),
        ("id_1", "channel_2", 55, 70, "Anomaly"),
        ("id_2", "channel_3", 150, 160, "Rare Event"),
        ("id_3", "channel_1", 250, 255, "Anomaly"),
        ("id_4", "channel_2", 300, 320, "Communication Gap"),
        ("id_5", "channel_1", 900, 950, "Anomaly"),  # outside the evaluated rows
    ]
    df = pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime", "Category"])
    df["StartTime"] = T0 + STEP * df["StartTime"]
    df["EndTime"] = T0 + STEP * df["EndTime"]
    return df


def mission() -> Mission:
    times = np.asarray(T0 + STEP * np.arange(N), dtype="datetime64[ns]")
    return Mission(
        name="tiny",
        values=np.zeros((N, 3), dtype=np.float32),
        timestamps=times,
        channels=default_channel_table(CHANNELS),
        labels=np.zeros((N, 3), dtype=np.uint8),
        events=events(),
    )


def alarm_rows() -> np.ndarray:
    a = np.zeros(N, dtype=np.uint8)
    a[52:58] = 1  # id_1
    a[150:152] = 1  # the rare event
    a[200:204] = 1  # false alarm
    return a


def test_full_report_keys_and_selections():
    m = mission()
    alarm = alarm_rows()
    ca = np.zeros((N, 3), dtype=np.uint8)
    ca[52:58, 0] = 1
    score = alarm + np.linspace(0, 0.1, N)
    out = full_report(
        m.events,
        m.timestamps,
        alarm,
        score=score,
        channel_alarm=ca,
        channel_names=CHANNELS,
        channels_table=m.channels,
    )
    for key in [
        "EW_precision",
        "EW_recall",
        "EW_F_0.50",
        "alarming_precision",
        "AFF_precision",
        "AFF_recall",
        "AFF_F_0.50",
        "AFFpaper_precision",
        "AFFpaper_recall",
        "AFFpaper_F_0.50",
        "channel_precision",
        "channel_recall",
        "channel_F_0.50",
        "subsystem_F_0.50",
        "ADTQC",
    ]:
        assert key in out and f"{key}_anomaly" in out
    assert {"EWraw_precision", "EWraw_recall", "EWraw_F_0.50", "AUC_PR", "kaggle_F_0.50"} <= set(
        out
    )
    assert all(isinstance(v, float) for v in out.values())
    # {Anomaly, Rare Event}: id_1, id_2, id_3 in range (id_5 outside); 2 of 3 detected
    assert out["EW_recall"] == pytest.approx(2 / 3)
    # Anomaly only: id_1 and id_3; the rare-event alarm is neither TP nor FP
    assert out["EW_recall_anomaly"] == pytest.approx(1 / 2)
    # EWraw: TP 2, FP 1 (the alarm at 200)
    assert out["EWraw_precision"] == pytest.approx(2 / 3)
    # the same numbers as a direct call over the evaluated span
    direct = esa_scores(
        m.events,
        (m.timestamps, alarm),
        select_labels={"Category": ["Anomaly"]},
        full_range=(m.timestamps[0], m.timestamps[-1]),
    )
    assert out["EW_F_0.50_anomaly"] == pytest.approx(direct["EW_F_0.50"])
    labels = np.zeros(N, dtype=np.uint8)
    labels[50:71] = 1
    labels[150:161] = 1
    labels[250:256] = 1
    assert out["kaggle_F_0.50"] == pytest.approx(kaggle_f05(labels, alarm))


def test_score_prediction_frame_matches_full_report():
    m = mission()
    alarm = alarm_rows()
    test = slice(100, N)
    frame = pd.DataFrame(
        {"timestamp": pd.Series(m.timestamps[test]).dt.strftime("%Y-%m-%d %H:%M:%S")}
    )
    frame["is_anomaly"] = alarm[test]
    frame["channel_3"] = 0
    frame = frame.sample(frac=1.0, random_state=0)  # order does not matter
    got = score_prediction_frame(frame, m)
    want = full_report(
        m.events,
        m.timestamps[test],
        alarm[test],
        channel_alarm=np.zeros((N - 100, 1), dtype=np.uint8),
        channel_names=["channel_3"],
        channels_table=m.channels,
    )
    assert got == pytest.approx(want)


def test_a_predictions_file_scored_against_broadcast_labels_has_no_channel_scores():
    """Kaggle files broadcast one row label to every channel: per-channel columns in a
    predictions file used to be scored against it, and channel_F_0.50 and subsystem_F_0.50
    read 0.0 for alarms that caught every event; such labels name no channel, so the
    channel- and subsystem-aware keys are left out, as train and predict leave them out."""
    m = mission()
    m.meta["labels_broadcast"] = True
    frame = pd.DataFrame({"id": np.arange(N), "is_anomaly": alarm_rows()})
    frame[CHANNELS] = 0
    frame.loc[52:57, "channel_1"] = 1
    m.timestamps = np.arange(N, dtype=np.int64)
    ev = m.events.copy()
    ev["StartTime"] = ((ev["StartTime"] - T0) / STEP).astype(np.int64)
    ev["EndTime"] = ((ev["EndTime"] - T0) / STEP).astype(np.int64)
    m.events = ev
    out = score_prediction_frame(frame, m)
    assert out["EW_recall"] == pytest.approx(2 / 3)
    assert not [k for k in out if k.startswith(("channel_", "subsystem_"))]


def test_score_prediction_frame_names_missing_timestamps():
    m = mission()
    frame = pd.DataFrame({"timestamp": [T0, T0 + pd.Timedelta("1s")], "is_anomaly": [0, 1]})
    with pytest.raises(ESAInputError, match="2007-01-01 00:00:01"):
        score_prediction_frame(frame, m)
    with pytest.raises(ESAInputError, match="is_anomaly"):
        score_prediction_frame(pd.DataFrame({"timestamp": [T0]}), m)


def test_score_prediction_frame_with_sample_ids():
    m = mission()
    m.timestamps = np.arange(N, dtype=np.int64)
    ev = m.events.copy()
    ev["StartTime"] = ((ev["StartTime"] - T0) / STEP).astype(np.int64)
    ev["EndTime"] = ((ev["EndTime"] - T0) / STEP).astype(np.int64)
    m.events = ev
    frame = pd.DataFrame({"id": np.arange(N), "is_anomaly": alarm_rows()})
    out = score_prediction_frame(frame, m)
    assert out["EW_recall"] == pytest.approx(2 / 3)


def test_ranking_table_orders_by_ew_then_ties():
    results = {
        "low": {"EW_F_0.50": 0.1, "subsystem_F_0.50": 0.9},
        "tie_better": {"EW_F_0.50": 0.5, "subsystem_F_0.50": 0.6},
        "tie_worse": {"EW_F_0.50": 0.5, "subsystem_F_0.50": 0.4},
    }
    lines = ranking_table(results).splitlines()[2:]
    assert [ln.split()[1] for ln in lines] == ["tie_better", "tie_worse", "low"]


def series_events(name: str, rows: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame({
        "ID": [f"{name}_{k}" for k in range(len(rows))], "Channel": name,
        "StartTime": [a for a, _ in rows], "EndTime": [b for _, b in rows],
        "Category": "Anomaly",
    })


def test_independent_series_are_scored_alike_whatever_their_order():
    """NASA's series laid end to end: a series' affiliation zones and ADTQC's previous event
    reached into its neighbour, so the order of the series changed the scores."""
    from esa_lightning.models.base import RowScores
    from esa_lightning.runtime.evaluation import concatenate_series, report_for

    def series(name, n, rows, alarmed):
        alarm = np.zeros(n, dtype=np.uint8)
        for a, b in alarmed:
            alarm[a : b + 1] = 1
        part = Mission(name=name, values=np.zeros((n, 1), dtype=np.float32),
                       timestamps=np.arange(n, dtype=np.int64),
                       channels=default_channel_table([name]),
                       labels=np.zeros((n, 1), dtype=np.uint8), events=series_events(name, rows))
        return part, alarm

    # B-2's first event is long and starts 15 rows after A-1's last (when A-1 comes first)
    a = series("A-1", 300, [(290, 295)], [(20, 30), (291, 293)])
    b = series("B-2", 200, [(3, 40), (120, 130)], [(0, 10), (100, 104), (190, 195)])

    def scored(parts):  # as predict.py and evaluate.py score NASA series
        pieces = [(p.name, p, RowScores(x.astype(np.float32), x)) for p, x in parts]
        metrics = report_for(concatenate_series(parts[0][0], pieces), "test")
        return {k.removeprefix("test/"): v for k, v in metrics.items()}

    alone = {p.name: full_report(p.events, p.timestamps, x) for p, x in (a, b)}
    one, other = scored([a, b]), scored([b, a])
    assert one == pytest.approx(other)
    # an alarm on A-1's last row and B-2's first rows: two alarms, not one across the boundary
    a_end = series("A-1", 300, [(290, 295)], [(20, 30), (291, 293), (299, 299)])
    b_start = series("B-2", 200, [(3, 40), (120, 130)], [(0, 10), (100, 104), (190, 195)])
    joined = scored([a_end, b_start])
    alone_end = full_report(a_end[0].events, a_end[0].timestamps, a_end[1])
    assert joined["AFF_recall"] == pytest.approx(
        (alone_end["AFF_recall"] + 2 * alone["B-2"]["AFF_recall"]) / 3)
    assert joined["EW_recall"] == one["EW_recall"]
    # each series' affiliation as if it were scored alone, averaged over the events
    for key in ("AFF_precision", "AFF_recall", "AFFpaper_precision", "AFFpaper_recall"):
        assert one[key] == pytest.approx((alone["A-1"][key] + 2 * alone["B-2"][key]) / 3)
    # ADTQC: the mean over the detected events of each series scored alone
    detected = {k: r["ADTQC_before"] + r["ADTQC_after"] for k, r in alone.items()}
    assert one["ADTQC_before"] + one["ADTQC_after"] == sum(detected.values()) == 2
    assert one["ADTQC"] == pytest.approx(
        sum(alone[k]["ADTQC"] * n for k, n in detected.items()) / 2)


def test_a_range_without_an_anomaly_has_no_anomaly_only_keys():
    """Rows whose only event is a rare event score {Anomaly, Rare Event} but have
    no ``_anomaly`` keys: never 0.0 or NaN for a selection with nothing to score."""
    m = mission()
    rows = slice(120, 240)  # the rare event id_2 alone; no anomaly
    times, alarm = m.timestamps[rows], alarm_rows()[rows]
    out = full_report(m.events, times, alarm, score=alarm.astype(float),
                      channel_alarm=np.zeros((len(times), 3), dtype=np.uint8),
                      channel_names=CHANNELS, channels_table=m.channels)
    assert out["EW_recall"] == pytest.approx(1.0)
    assert not [k for k in out if k.endswith("_anomaly")]
    assert all(np.isfinite(v) for v in out.values())
    # an anomaly that only touches the range's last row still counts
    touching = full_report(m.events, m.timestamps[120:251], alarm_rows()[120:251])
    assert "EW_recall_anomaly" in touching


def test_an_intervals_table_given_as_predictions_is_named_as_such():
    """predict.py's intervals.csv (one row per alarm: start, end, ...; the older format without
    confidence or raised_by alike) given to evaluate.py was refused as lacking is_anomaly, with
    no word of the file it should have been: submission.csv."""
    from esa_lightning.metrics.report import align_prediction_frame
    from tests.helpers import toy_mission

    mission = toy_mission(np.zeros((10, 2), np.float32), val_start=4, test_start=7)
    for columns in (["start", "end", "channels", "score", "top_channels", "confidence"],
                    ["start", "end", "score"]):
        table = pd.DataFrame([["2000-01-01 00:00:30"] * 2 + [1.0] * (len(columns) - 2)],
                             columns=columns)
        with pytest.raises(ESAInputError, match="intervals.csv.*submission.csv") as refused:
            align_prediction_frame(table, mission, "intervals.csv")
        assert refused.value.column == "is_anomaly"


@pytest.mark.parametrize(("first", "refused"), [(0, False), (37, False), (60, False),
                                                (61, True)])
def test_a_predictions_file_runs_to_the_end_from_any_row_up_to_the_test_start(first, refused):
    """evaluate.py scores a file from any row on to the mission's end as long as it starts no
    later than the test range (docs/report.md, evaluation.json); one starting inside the test
    range leaves test rows unscored and is refused, naming how many."""
    from types import SimpleNamespace

    from esa_lightning.metrics.report import require_full_coverage

    mission = SimpleNamespace(timestamps=np.arange(100), test_start=60, val_start=40,
                              is_time_indexed=False)
    rows = np.arange(first, 100)
    if refused:
        with pytest.raises(ESAInputError, match=r"of the test range to its end: 1 rows are "):
            require_full_coverage(rows, mission, "id", "pred.csv")
    else:
        require_full_coverage(rows, mission, "id", "pred.csv")


def test_per_channel_columns_that_leave_channels_out_are_warned_about():
    """A predictions file with per-channel columns for some of the mission's channels, or one
    misspelt, was scored without a word as if the others never alarmed (channel_F_0.50 0.0)."""
    import warnings

    from esa_lightning.metrics.report import align_prediction_frame
    from tests.helpers import toy_mission

    mission = toy_mission(np.zeros((10, 3), np.float32), val_start=4, test_start=7)
    base = pd.DataFrame({"id": range(10), "is_anomaly": 0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        align_prediction_frame(base.assign(channel_0=0, channel_1=0, channel_2=0), mission, "p")
        align_prediction_frame(base, mission, "p")  # no per-channel column: none read
    assert not caught
    with pytest.warns(UserWarning, match=r"^p: per-channel columns for 1 of the 3 channels of "
                      r"mission 'toy': channel_1, channel_2 scored as never alarmed"):
        align_prediction_frame(base.assign(channel_0=0), mission, "p")
    with pytest.warns(UserWarning, match=r"^p: column\(s\) \['chanel_1'\] name no channel of "
                      r"mission 'toy' \(channel_0, channel_1, channel_2\): not read"):
        align_prediction_frame(base.assign(channel_0=0, chanel_1=0, channel_2=0), mission, "p")
