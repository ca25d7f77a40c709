"""What the GRU random-forest gate's cross-fit check costs: the gate fitted with ``check=none``
(the plain fit, the reference) and with ``check=cross_fit`` (five more forests, each on the
other folds' windows) on trained runs' GRUs over their fit ranges, side by side in one process.

Each run folder is a ``train.py`` run (its ``detector/`` and ``.hydra/config.yaml``, as
``quality.py`` leaves them under ``<workdir>/<mission>/<candidate>/train``). Both fits read the
same window outputs, computed once before timing; the time is the gate's own work: its
features, its forests and, for the check, the out-of-fold scoring.

Usage::

    python benchmarks/bench_gate_check.py RUN [RUN ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, replace_section  # noqa: E402

HEADER = "## The GRU random-forest gate's cross-fit check: its cost (bench_gate_check.py)"


def gate_fit_seconds(run: Path, repeats: int) -> dict:
    """Best-of-``repeats`` seconds of the gate's fit with each check on ``run``'s GRU."""
    from omegaconf import OmegaConf

    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.common import mission_from_config
    from esa_lightning.postprocessing.random_forest import FIT_ON, RandomForestGate

    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    mission = mission_from_config(cfg.data)
    detector = Detector.load(run / "detector", map_location="cpu")
    gru = detector.components.get("gru_ae") or next(iter(detector.components.values()))
    shipped = next(r for r in gru.post_rules.values() if isinstance(r, RandomForestGate))
    parts = {name: FIT_ON[shipped.fit_on](m) for name, m in mission.grids().items()}
    cached = {}
    window_outputs = gru.window_outputs

    def once(m, series=None, features=False):  # the GRU's pass over the rows, outside timing
        key = (id(m), series, features)
        if key not in cached:
            cached[key] = window_outputs(m, series=series, features=features)
        return cached[key]

    gru.window_outputs = once
    out = {"mission": mission.name, "fit_rows": sum(len(m.values) for m in parts.values())}
    for check in ("none", "cross_fit"):
        gate = RandomForestGate(
            gate_factor=shipped.gate_factor,
            n_estimators=shipped.n_estimators,
            random_state=shipped.random_state,
            check=check,
        )
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            forest = gate.fit_parts(gru, parts)
            best = min(best, time.perf_counter() - t0)
        out[check] = best
        out[f"{check}_ships"] = forest is not None
    out["windows"] = int(
        sum(
            (
                gru.threshold_rule.smoothed(once(m, n, True).total)
                > float(gru.threshold_rule.threshold[gru.series_index(m, n)]) * shipped.gate_factor
            ).sum()
            for n, m in parts.items()
        )
    )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    rows = []
    for run in a.runs:
        r = gate_fit_seconds(run, a.repeats)
        print(r, flush=True)
        ships = "yes" if r["cross_fit_ships"] else "no"
        rows.append(
            f"| {r['mission']} | {r['fit_rows']:,} | {r['windows']:,} | {r['none']:.2f} | "
            f"{r['cross_fit']:.2f} | {r['cross_fit'] / r['none']:.1f}x | {ships} |"
        )
    head = (
        "| mission | fit-range rows | windows above the gate | `none` s | `cross_fit` s "
        "| ratio | forest ships with the check |"
    )
    body = f"""The gate's fit on a trained run's GRU over its fit range, with `check=none` (the
plain fit: features of the windows above the gate, one forest of 100 trees) and `check=cross_fit`
(five more forests, each fitted on the other folds' windows, and the out-of-fold F0.5 of both
alarm sets over the fit range), best of {a.repeats}; the GRU's pass over the rows is computed
once beforehand and not timed.

{head}
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Machine: {machine()}.
Command: `python benchmarks/bench_gate_check.py {" ".join(str(r) for r in a.runs)}`.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
