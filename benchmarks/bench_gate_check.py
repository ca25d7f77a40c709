"""What the GRU random-forest gate's cross-fit check costs: the gate fitted with ``check=none``
(the plain fit, the reference) and with ``check=cross_fit`` (five more forests, each on the
other folds' windows) on trained runs' GRUs over their fit ranges, side by side in one process;
the check on one core (``n_jobs=None``, sklearn's default) and on every core (``n_jobs=-1``,
the GRU's configured default). ``--forest-windows N`` also times one 100-tree forest on N
windows of 112 random features (the gate's feature count at Mission1's 76 channels) on one
core and on every core: the size a long mission's gate is fitted at.

Each run folder is a ``train.py`` run (its ``detector/`` and ``.hydra/config.yaml``, as
``quality.py`` leaves them under ``<workdir>/<mission>/<candidate>/train``). Both fits read the
same window outputs, computed once before timing; the time is the gate's own work: its
features, its forests and, for the check, the out-of-fold scoring.

Usage::

    python benchmarks/bench_gate_check.py RUN [RUN ...] [--repeats 3] [--forest-windows 60000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _checkout  # noqa: E402, F401
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
    for name, m in parts.items():  # before any timing: the first fit must not pay for it
        once(m, series=name, features=True)
    out = {"mission": mission.name, "fit_rows": sum(len(m.values) for m in parts.values())}
    for key, check, n_jobs in (
        ("none", "none", None),
        ("cross_fit", "cross_fit", None),
        ("cross_fit_all", "cross_fit", -1),
    ):
        gate = RandomForestGate(
            gate_factor=shipped.gate_factor,
            n_estimators=shipped.n_estimators,
            random_state=shipped.random_state,
            check=check,
            n_jobs=n_jobs,
            chunk_rows=0,  # the whole range in one call: the cached pass above
        )
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            forest = gate.fit_parts(gru, parts)
            best = min(best, time.perf_counter() - t0)
        out[key] = best
        out[f"{key}_ships"] = forest is not None
    assert out["cross_fit_ships"] == out["cross_fit_all_ships"]
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


def forest_seconds(windows: int, repeats: int) -> dict:
    """Best-of-``repeats`` seconds of one 100-tree forest's fit and its predictions on
    ``windows`` random windows, on one core and on every core (the same forest either way)."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((windows, 112)).astype(np.float32)
    y = (x[:, 0] + rng.standard_normal(windows) > 2.0).astype(np.int64)
    out, decided = {}, {}
    for n_jobs in (None, -1):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            forest = RandomForestClassifier(
                100, class_weight="balanced", random_state=0, n_jobs=n_jobs
            ).fit(x, y)
            decided[n_jobs] = forest.predict(x)
            best = min(best, time.perf_counter() - t0)
        out[n_jobs] = best
    assert (decided[None] == decided[-1]).all()
    return out


def shown(run: Path) -> str:
    """``run`` as the results show it: relative to the repository, or a placeholder for a run
    folder elsewhere on this machine (the section names no machine path)."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(run.resolve().relative_to(root))
    except ValueError:
        return f"<{run.parent.name}/{run.name}>"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--forest-windows", type=int, default=0)
    a = ap.parse_args(argv)
    rows = []
    for run in a.runs:
        r = gate_fit_seconds(run, a.repeats)
        print(r, flush=True)
        ships = "yes" if r["cross_fit_ships"] else "no"
        rows.append(
            f"| {r['mission']} | {r['fit_rows']:,} | {r['windows']:,} | {r['none']:.2f} | "
            f"{r['cross_fit']:.2f} | {r['cross_fit'] / r['none']:.1f}x | "
            f"{r['cross_fit_all']:.2f} | {ships} |"
        )
    head = (
        "| mission | fit-range rows | windows above the gate | `none` s | `cross_fit` s "
        "| ratio | `cross_fit`, every core, s | forest ships with the check |"
    )
    scale, command = "", " ".join(shown(r) for r in a.runs)
    if a.forest_windows:
        command += f" --forest-windows {a.forest_windows}"
        f = forest_seconds(a.forest_windows, a.repeats)
        scale = (
            f"\nOne 100-tree forest fitted on {a.forest_windows:,} windows of 112 random features "
            f"and applied to them, best of {a.repeats}: {f[None]:.1f} s on one core, "
            f"{f[-1]:.1f} s on every core ({f[None] / f[-1]:.1f}x), the same decisions. The "
            "check fits five such forests on four fifths of the windows each.\n"
        )
    body = f"""The gate's fit on a trained run's GRU over its fit range, with `check=none` (the
plain fit: features of the windows above the gate, one forest of 100 trees) and `check=cross_fit`
(five more forests, each fitted on the other folds' windows, and the out-of-fold F0.5 of both
alarm sets over the fit range), best of {a.repeats}; the GRU's pass over the rows is computed
once beforehand and not timed. Forests on one core (`n_jobs=None`) except in the column
that says every core (`n_jobs=-1`, the GRU's configured default: the same forests).

{head}
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
{scale}
Machine: {machine()}.
Command: `python benchmarks/bench_gate_check.py {command}`.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
