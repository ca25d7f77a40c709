"""index.html: self-contained, opening with what ran, figures inline, metrics readable."""

import dataclasses
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.reporting.figures import ScoredGrid
from esa_lightning.reporting.outputs import alarm_intervals, run_summary, write_report
from esa_lightning.reporting.page import format_metric
from esa_lightning.reporting.reference import nominal_reference
from tests.helpers import RawErrorScorer, counter_mission

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Page(HTMLParser):
    """The parts of the page the tests read: title, tables by id (rows of cell texts), images,
    and every external reference (stylesheet, script, image source that is not a data URI)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.title, self.tables, self.images, self.external = "", {}, [], []
        self._in_title, self._table, self._row, self._cell = False, None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.images.append(a.get("src", ""))
        if tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.external.append(a.get("href") or a.get("src"))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    mission = counter_mission("target_b")
    scorer = RawErrorScorer(mission, "target_b")
    part = mission.test()
    scores = scorer.score_rows(part)
    stamps = np.asarray(part.timestamps)
    reference = nominal_reference(scorer, mission)
    grid = ScoredGrid(
        mission.name, part, scores, stamps, alarm_intervals(stamps, scores, part, reference)
    )
    summary = run_summary("toy (RawErrorScorer)", "det", "counter-mission", [grid], [reference])
    metrics = {
        "test/EW_F_0.50": 0.5,
        "test/EW_F_0.50_anomaly": 0.25,
        "test/ADTQC_after": 4.0,
        "test/ADTQC_before_anomaly": 1.0,
        "test/AUC_PR": float("nan"),
    }
    write_report(out, [grid], summary, metrics, max_figures=5)
    return out, Page((out / "index.html").read_text())


def test_page_opens_with_what_ran(report):
    _, page = report
    assert "toy (RawErrorScorer)" in page.title and "counter-mission" in page.title
    summary = dict(page.tables["summary"])
    assert summary["Detector"] == "toy (RawErrorScorer)"
    assert summary["Data"] == "counter-mission"
    assert summary["Time range"] == "2000-01-01 10:00:00 .. 2000-01-01 13:19:30"
    assert summary["Threshold"] == "3"
    assert summary["Alarms"] == "1"
    assert summary["Confidence reference"] == "400 label-free validation rows"


def test_page_is_self_contained_with_the_timeline_and_one_figure_per_alarm(report):
    out, page = report
    assert not page.external
    assert len(page.images) == 2  # the timeline and the one alarm
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert (out / "alarms" / "alarm_0000.png").is_file()
    alarms = page.tables["alarms"]
    assert alarms[0][:4] == ["#", "start", "end", "alarmed channels"]
    assert alarms[1][3] == "target_b" and alarms[1][6] == "1.000"  # drivers, confidence
    assert alarms[0][-1] == "raised by" and alarms[1][-1] == "–"  # the stand-in records none
    intervals = pd.read_csv(out / "intervals.csv")
    assert len(intervals) == 1 and intervals["channels"][0] == "target_b"


def test_metrics_table_prints_counts_as_counts_and_ratios_as_ratios(report):
    _, page = report
    rows = {r[0]: r[1:] for r in page.tables["metrics"][1:]}
    assert rows["test/EW_F_0.50"] == ["0.5000", "0.2500"]
    assert rows["test/ADTQC_after"] == ["4", "-"]
    assert rows["test/ADTQC_before"] == ["-", "1"]
    assert rows["test/AUC_PR"] == ["n/a", "-"]
    assert format_metric("val/ADTQC_after_anomaly", 3.0) == "3"


def test_series_with_labeled_events_and_no_alarm_keep_their_timeline_panel(
    tmp_path, monkeypatch
):
    """NASA series: a series whose events were all missed had no panel (missed events were
    nowhere on the timeline), and events.csv left a lone series' name out."""
    import esa_lightning.reporting.figures as figures
    from esa_lightning.models.base import RowScores

    mission = counter_mission("target_b")
    scorer = RawErrorScorer(mission, "target_b")
    part = mission.test()
    assert len(part.events)
    scores = scorer.score_rows(part)
    stamps = np.asarray(part.timestamps)
    alarmed = ScoredGrid("A-1", part, scores, stamps,
                         alarm_intervals(stamps, scores, part), series="A-1")
    quiet = RowScores(scores.score, np.zeros_like(scores.alarm))
    missed = ScoredGrid("B-2", part, quiet, stamps, alarm_intervals(stamps, quiet, part),
                        series="B-2")
    assert len(alarmed.intervals) and not len(missed.intervals)
    drawn = []
    real = figures.timeline_png
    monkeypatch.setattr(figures, "timeline_png", lambda g: drawn.append(g) or real(g))
    metrics = {"test/EW_F_0.50": 0.5}
    write_report(tmp_path / "two", [alarmed, missed], run_summary("d", "p", "m", [alarmed],
                                                                     [None]), metrics)
    assert [g.name for g in drawn[0]] == ["A-1", "B-2"]
    write_report(tmp_path / "one", [missed], run_summary("d", "p", "m", [missed], [None]),
                 metrics)
    events = pd.read_csv(tmp_path / "one" / "events.csv")
    assert len(events) and set(events["series"]) == {"B-2"} and not events["caught"].any()


def write_unlabeled_report(out: Path) -> None:
    """The report of a range without labels (no metrics) into ``out``."""
    mission = counter_mission("target_b")
    scorer = RawErrorScorer(mission, "target_b")
    part = mission.test()
    scores = scorer.score_rows(part)
    stamps = np.asarray(part.timestamps)
    grid = ScoredGrid("m", part, scores, stamps, alarm_intervals(stamps, scores, part))
    write_report(out, [grid], run_summary("d", "p", "m", [grid], [None]), None)


def test_a_range_without_labels_says_not_scored(tmp_path):
    write_unlabeled_report(tmp_path)
    page = Page((tmp_path / "index.html").read_text())
    assert "metrics" not in page.tables
    assert "Not scored" in (tmp_path / "index.html").read_text()
    assert dict(page.tables["summary"])["Confidence reference"].startswith("none")


def test_the_files_section_links_metrics_json_only_when_it_is_written(tmp_path, report):
    """predict.py writes no metrics.json for a range without labels: the page linked to it
    all the same (a dead link)."""
    write_unlabeled_report(tmp_path)
    assert "href='metrics.json'" not in (tmp_path / "index.html").read_text()
    out, _ = report
    assert "href='metrics.json'" in (out / "index.html").read_text()



def test_the_files_section_links_each_written_file_once_between_separators(tmp_path, report):
    """Without metrics.json the list ended in a dangling separator ("report.csv · ")."""
    write_unlabeled_report(tmp_path)
    for folder in (tmp_path, report[0]):
        text = (folder / "index.html").read_text()
        files = text.split("<h2>Files</h2><p>", 1)[1].split("</p>", 1)[0]
        links = [part.strip() for part in files.split(" · ")]
        assert all(link.startswith("<a href='") and link.endswith("</a>") for link in links)
        names = [link.split("'")[1] for link in links]
        assert names[:3] == ["submission.csv", "intervals.csv", "report.csv"]
        assert len(names) == len(set(names))

@pytest.mark.skipif(not any(shutil.which(b) for b in BROWSERS), reason="no headless browser")
def test_page_renders_in_a_headless_browser(report, tmp_path):
    out, _ = report
    browser = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            (out / "index.html").as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert shot.stat().st_size > 10_000


def test_hostile_channel_and_series_names_are_escaped_and_drawn_as_written(tmp_path):
    """A channel named ``<script>...`` stays text on the page; names and units holding ``$``
    (matplotlib's mathtext) drew as formulas, or stopped predict with a ParseException."""
    from matplotlib.text import Text

    hostile, unit, series = "<script>alert(1)</script> $\\foo$", "rate $^$", "$\\bar$ <b>"
    mission = counter_mission("target_b")
    mission.channels["Channel"] = mission.channels["Channel"].replace("target_b", hostile)
    mission.channels["Physical Unit"] = mission.channels["Physical Unit"].replace("degC", unit)
    mission.events["Channel"] = hostile
    scorer = RawErrorScorer(mission, hostile)
    part = mission.test()
    scores = scorer.score_rows(part)
    stamps = np.asarray(part.timestamps)
    grid = ScoredGrid(series, part, scores, stamps,
                      alarm_intervals(stamps, scores, part, series=series), series=series)
    drawn: dict[str, bool] = {}  # text -> parsed as mathtext
    real_draw = Text.draw

    def draw(self, renderer):  # noqa: ANN001, ANN202
        drawn[self.get_text()] = self.get_parse_math()
        return real_draw(self, renderer)

    Text.draw = draw
    try:
        write_report(tmp_path, [grid], run_summary("d", "p", "m", [grid], [None]),
                     {"test/EW_F_0.50": 1.0})
    finally:
        Text.draw = real_draw
    text = (tmp_path / "index.html").read_text()
    assert "<script>" not in text and "<b>" not in text
    page = Page(text)
    assert page.tables["alarms"][1][3] == f"{series}: {hostile}"
    assert page.tables["events"][1][5] == hostile
    assert (tmp_path / "alarms" / "alarm_0000.png").is_file()
    assert drawn[f"{hostile}\n[{unit}]"] is False  # drawn as written, not as a formula
    assert drawn[series] is False


def test_a_detector_without_a_score_threshold_is_said_to_decide_otherwise():
    """A detector reporting no threshold on its score is said to decide otherwise; the channel
    ensemble, which was (its peaks' height now is its threshold), is no longer named there."""
    from types import SimpleNamespace

    from esa_lightning.reporting.outputs import _threshold_text

    text = _threshold_text([SimpleNamespace(scores=SimpleNamespace(threshold=None))])
    assert text.startswith("none on the score") and "online threshold" in text
    assert "ensemble" not in text and "peaks" not in text
    height = SimpleNamespace(scores=SimpleNamespace(threshold=np.full(4, 0.445, np.float32)))
    assert _threshold_text([height]) == "0.445"


def test_the_alarm_table_names_the_rules_that_raised_each_alarm():
    """The page's alarm table shows intervals.csv ``raised_by``, its rules comma-separated."""
    from dataclasses import replace

    from esa_lightning.models.raised_by import FROZEN, SCORE
    from esa_lightning.reporting.page import _alarm_table

    mission = counter_mission("target_b")
    part = mission.test()
    scores = RawErrorScorer(mission, "target_b").score_rows(part)
    raised = scores.alarm * np.uint8(SCORE)
    raised[np.flatnonzero(scores.alarm)[-1]] |= np.uint8(FROZEN)
    scores = replace(scores, raised_by=raised)
    intervals = alarm_intervals(np.asarray(part.timestamps), scores, part)
    page = Page(_alarm_table(intervals, []))
    assert page.tables["alarms"][0][-1] == "raised by"
    assert page.tables["alarms"][1][-1] == "score, frozen"


@pytest.mark.parametrize("max_figures, said", [
    (0, "No alarm figure (python predict.py max_figures=0)."),
    (1, "The figure of the first alarm only (python predict.py max_figures=1)."),
    (2, "Figures of the first 2 alarms (python predict.py max_figures=2)."),
])
def test_fewer_figures_than_alarms_are_counted_in_plain_words(tmp_path, max_figures, said):
    """It read "Figures of the first 1 alarms (python predict.py max_figures)" (and "first 0")."""
    mission = counter_mission("target_b")
    scorer = RawErrorScorer(mission, "target_b")
    part = mission.test()
    alarm = np.zeros(len(part.values), dtype=np.uint8)
    alarm[[10, 50, 90]] = 1  # three alarms
    scores = dataclasses.replace(scorer.score_rows(part), alarm=alarm, channel_alarm=None)
    stamps = np.asarray(part.timestamps)
    grid = ScoredGrid("m", part, scores, stamps, alarm_intervals(stamps, scores, part))
    assert len(grid.intervals) == 3
    write_report(tmp_path, [grid], run_summary("d", "p", "m", [grid], [None]), None,
                 max_figures=max_figures)
    assert said in (tmp_path / "index.html").read_text()
