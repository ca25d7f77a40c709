"""A benchmark checked at a small size leaves RESULTS.md alone when told to (``--no-write``)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_zscore_stream_no_write_leaves_results_alone(monkeypatch, capsys):
    """bench_zscore_stream.py rewrote its RESULTS.md section on every run, a check at 2,000 rows
    replacing the 10 M-row numbers; ``--no-write`` runs the comparison (both fits, checked
    equal) and writes nothing."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("bench_zscore_stream", None)
    import bench_zscore_stream

    written = []
    monkeypatch.setattr(bench_zscore_stream, "replace_section",
                        lambda header, body: written.append(header))
    monkeypatch.setattr(sys, "argv", ["bench_zscore_stream.py", "--rows", "2000",
                                      "--channels", "3", "--no-write"])
    bench_zscore_stream.main()
    out = capsys.readouterr().out
    assert written == []
    assert out.count("| every batch held") == 1 and out.count("| two passes") == 1
    assert "the two fits agree; RESULTS.md left as it is" in out
