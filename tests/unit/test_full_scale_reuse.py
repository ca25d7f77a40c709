"""full_scale.py's --reuse and --report-only reuse a saved measurement only when it was made with
this run's parameters (days, channels, bounded training) and code, and completely."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGE = {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mib": 10.0}


@pytest.fixture
def fs(monkeypatch, tmp_path):
    """full_scale with its measurements, the Kaggle steps and the report replaced by records."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("full_scale", None)
    import full_scale

    calls: dict[str, list] = {"measured": [], "reported": [], "kaggle": []}

    def measure_size(days, work, gru_batches, ens_epochs, channels=76):
        calls["measured"].append((days, channels, gru_batches))
        res = {"channels": channels, "rows": int(days * 2880), "train_cmd": "python train.py",
               "train.py total": {**STAGE, "gru": gru_batches}}
        (work / f"result_{full_scale.size_tag(days, channels)}.json").write_text(json.dumps(res))
        return res

    def kaggle_measure(*a, **k):
        calls["kaggle"].append(a)
        return dict(STAGE)

    monkeypatch.setattr(full_scale, "measure_size", measure_size)
    monkeypatch.setattr(full_scale, "generate", lambda *a, **k: {})
    monkeypatch.setattr(full_scale, "write_kaggle_test", lambda mission, out, *a: out)
    monkeypatch.setattr(full_scale, "run_measured", kaggle_measure)
    real_report = full_scale.report
    monkeypatch.setattr(full_scale, "report",
                        lambda results, kaggle, *a, **k: calls["reported"].append(
                            (results, kaggle)))
    full_scale.real_report = real_report
    full_scale.calls = calls
    full_scale.work = ["--workdir", str(tmp_path / "work")]
    return full_scale


def test_reuse_refuses_a_saved_size_measured_with_other_parameters(fs):
    """--reuse kept ``result_d91.json`` whatever --gru-batches, --ensemble-epochs or days (91.5
    days shares the tag d91) measured it, and the report named this run's settings."""
    fs.main(["--days", "91", "--gru-batches", "5", "--no-kaggle", *fs.work])
    fs.main(["--days", "91", "--gru-batches", "5", "--no-kaggle", "--reuse", *fs.work])
    assert len(fs.calls["measured"]) == 1  # the same parameters: reused
    with pytest.raises(SystemExit, match=r"result_d91\.json: made with .*'gru_batches': 5"):
        fs.main(["--days", "91", "--gru-batches", "7", "--no-kaggle", "--reuse", *fs.work])
    with pytest.raises(SystemExit, match="'days': 91.0"):
        fs.main(["--days", "91.5", "--gru-batches", "5", "--no-kaggle", "--reuse", *fs.work])
    with pytest.raises(SystemExit, match="'ensemble_epochs': 2"):
        fs.main(["--days", "91", "--gru-batches", "5", "--ensemble-epochs", "3", "--no-kaggle",
                 "--report-only", *fs.work])
    assert len(fs.calls["measured"]) == 1


def test_reuse_refuses_a_size_measured_by_other_code_report_only_needs_one_code(fs, monkeypatch):
    monkeypatch.setattr(fs, "pipeline_code", lambda: "code-A")
    fs.main(["--days", "91", "--no-kaggle", *fs.work])
    monkeypatch.setattr(fs, "pipeline_code", lambda: "code-B")
    with pytest.raises(SystemExit, match="'code': 'code-A'"):
        fs.main(["--days", "91", "--no-kaggle", "--reuse", *fs.work])
    fs.main(["--days", "91", "--no-kaggle", "--report-only", *fs.work])  # tabulated as measured
    fs.main(["--days", "182", "--no-kaggle", *fs.work])  # measured by code B
    with pytest.raises(SystemExit, match="result_d91.json: made with .*code-A"):
        fs.main(["--days", "91", "182", "--no-kaggle", "--report-only", *fs.work])


def test_a_measurement_stopped_midway_leaves_no_result_to_reuse(fs, monkeypatch):
    """A run that re-measured a size and stopped midway (its train run half written) left the
    earlier run's result_d91.json, which --reuse then kept (and measured Kaggle prediction with
    the half-written detector)."""
    fs.main(["--days", "91", "--no-kaggle", *fs.work])

    def killed(*a, **k):
        raise KeyboardInterrupt

    measure = fs.measure_size
    monkeypatch.setattr(fs, "measure_size", killed)
    with pytest.raises(KeyboardInterrupt):
        fs.main(["--days", "91", "--no-kaggle", *fs.work])
    monkeypatch.setattr(fs, "measure_size", measure)
    fs.main(["--days", "91", "--no-kaggle", "--reuse", *fs.work])
    assert len(fs.calls["measured"]) == 2  # measured again, not the stale result


def test_report_only_measures_nothing_and_keys_the_kaggle_result_by_its_detector(fs):
    """--report-only ran the whole measurement (hours) of a size with no saved result, and
    tabulated result_kaggle.json whatever detector it had measured."""
    with pytest.raises(SystemExit, match="no saved result"):
        fs.main(["--days", "91", "--report-only", "--no-kaggle", *fs.work])
    assert not fs.calls["measured"]
    fs.main(["--days", "91", "--gru-batches", "5", *fs.work])  # Kaggle with the gru-5 detector
    fs.main(["--days", "91", "--report-only", "--gru-batches", "5", *fs.work])
    assert fs.calls["reported"][-1][1] is not None and len(fs.calls["kaggle"]) == 1
    fs.main(["--days", "91", "--gru-batches", "7", "--no-kaggle", *fs.work])
    with pytest.raises(SystemExit, match=r"result_kaggle\.json: made with .*'gru_batches': 5"):
        fs.main(["--days", "91", "--report-only", "--gru-batches", "7", *fs.work])
    fs.main(["--days", "91", "--report-only", "--gru-batches", "7", "--no-kaggle", *fs.work])


def test_the_channel_table_holds_this_runs_sweep_only(fs, monkeypatch):
    """The report tabulated every result_d91_c*.json in the work folder, whatever run and
    settings measured it."""
    import matplotlib.figure

    fs.main(["--days", "91", "--channel-sweep", "19", "--gru-batches", "5", "--no-kaggle",
             *fs.work])
    bodies = []
    import _full_scale_report  # the report's module writes the RESULTS.md section

    monkeypatch.setattr(fs, "report", fs.real_report)
    monkeypatch.setattr(_full_scale_report, "replace_section",
                        lambda header, body: bodies.append(body))
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda *a, **k: None)
    fs.main(["--days", "91", "--channel-sweep", "19", "--gru-batches", "5", "--no-kaggle",
             "--report-only", *fs.work])
    assert "| 19 channels | 76 channels |" in bodies[-1]
    fs.main(["--days", "91", "--gru-batches", "7", "--no-kaggle", *fs.work])
    assert "19 channels" not in bodies[-1]  # measured with --gru-batches 5 by another run


def test_after_refuses_a_detector_not_trained_by_this_code_and_settings(fs, monkeypatch):
    """--after predicted with whatever detector runs/train_d<days> held: one trained with other
    --gru-batches, by older code, or by a measurement stopped midway was measured as this
    code's. It is now refused unless the size's stamp records this run's parameters and code."""
    work = Path(fs.work[1])
    after = []
    monkeypatch.setattr(fs, "measure_after", lambda days, w: after.append(days) or {})
    with pytest.raises(SystemExit, match="no detector of a measured size"):
        fs.main(["--after", "91", "--gru-batches", "5", *fs.work])
    fs.main(["--days", "91", "--gru-batches", "5", "--no-kaggle", *fs.work])
    with pytest.raises(SystemExit, match="no detector of a measured size"):  # none saved
        fs.main(["--after", "91", "--gru-batches", "5", *fs.work])
    (work / "runs" / "train_d91" / "detector").mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"train_d91/detector: not trained by this code .*"
                                         r"'gru_batches': 5"):
        fs.main(["--after", "91", "--gru-batches", "7", *fs.work])
    code = fs.pipeline_code()
    monkeypatch.setattr(fs, "pipeline_code", lambda: "changed since")
    with pytest.raises(SystemExit, match="not trained by this code"):
        fs.main(["--after", "91", "--gru-batches", "5", *fs.work])
    monkeypatch.setattr(fs, "pipeline_code", lambda: code)
    assert after == []
    fs.main(["--after", "91", "--gru-batches", "5", *fs.work])
    assert after == [91.0]


@pytest.mark.parametrize(
    ("record", "named"),
    [
        ({"features": dict(STAGE)}, None),  # no comparison kept: no row, nothing read
        ({"features_before_same_conditions": dict(STAGE)}, "'features' is missing"),
        ({"features_before_same_conditions": {"wall_s": 1.0}, "features": dict(STAGE)},
         "'features_before_same_conditions'.peak_rss_mib is missing"),
        ({"features_before_same_conditions": {**STAGE, "wall_s": "12 s"},
          "features": dict(STAGE)}, "'features_before_same_conditions'.wall_s is '12 s'"),
        ({"features_before_same_conditions": 3.0, "features": dict(STAGE)},
         "'features_before_same_conditions' is 3.0"),
    ],
)
def test_before_after_checks_the_hand_kept_records_it_reads(fs, tmp_path, record, named):
    """before_after read result_after_d*.json and before_chunks/result_d*.json (kept by hand,
    of past code) unchecked: a missing field was a KeyError without a file name. Each is now
    refused naming the file and the field."""
    from _full_scale_records import before_after

    work = tmp_path / "work"
    work.mkdir()
    (work / "result_after_d91.json").write_text(json.dumps(record))
    if named is None:
        assert before_after(work) == ""
    else:
        with pytest.raises(SystemExit, match=rf"result_after_d91\.json: field {named}"):
            before_after(work)
    (work / "result_after_d91.json").unlink()
    (work / "before_chunks").mkdir()
    (work / "before_chunks" / "result_d91.json").write_text(json.dumps(
        {"combiner": {"peak_rss_mib": 10.0}}))
    (work / "result_d91.json").write_text(json.dumps({"combiner": dict(STAGE)}))
    with pytest.raises(SystemExit, match=r"before_chunks/result_d91\.json: field "
                                         r"'combiner'\.wall_s is missing"):
        before_after(work)
    (work / "before_chunks" / "result_d91.json").write_text(json.dumps(
        {"combiner": dict(STAGE)}))
    assert "| d91 | piecewise scoring | combiner |" in before_after(work)
    (work / "before_chunks" / "result_d91.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match=r"result_d91\.json: holds list"):
        before_after(work)
