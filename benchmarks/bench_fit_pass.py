"""The GRU's post-rule fits before and after sharing the gate's scoring with ``gap_close``.

On a Mission1-shaped mission (the generator ``full_scale.py`` uses; 76 channels, 44
telecommands, a 30 s grid; Mission1's split: test the second half, validation the last
min(90, 20 %) days of the first), a GRU with the default ``gru_ae`` post-processing
(``conf/model/gru_ae.yaml``: channel_norm, the f05 threshold on the fit range, the random-forest
gate with its cross-fit check, the stuck-channel rule, gap_close) is trained briefly (one epoch
of ``--batches`` batches; the rules' fits are what is measured), then its rules are fitted twice
on copies of the same weights, in this process:

- before: as the code did before, the threshold's fit also scoring the validation range with
  its context (``thresholds._window_scores``, read only by the percentile fallback), and the
  ``gap_close`` fit scoring the fit range again (``provisional_alarm``: the gate's hand-over
  dropped);
- after: the code now (the validation range scored only where the fallback reads it; the gap
  fit reads the gate's scoring, ``postprocessing.fit_pass``).

Each rule's fit is timed and the windows it sends through ``window_outputs`` counted; the two
fits must give the same numbers: thresholds, channel normalisation, the forest (every tree),
the gap width and F0.5 per width, the stuck-channel limits.

Usage::

    python benchmarks/bench_fit_pass.py [--days 91] [--batches 100] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _checkout  # noqa: E402, F401
from _common import machine, replace_section  # noqa: E402
from _full_scale_mission import split_for  # noqa: E402
from bench_predict import ROOT, generate  # noqa: E402

HEADER = "## The GRU's rule fits: one scoring shared by the gate and gap_close (bench_fit_pass.py)"


def default_rules() -> dict:
    """``model.post_processing`` of ``conf/model/gru_ae.yaml`` with its default threshold."""
    from omegaconf import OmegaConf

    conf = ROOT / "esa_lightning" / "conf" / "model"
    model = OmegaConf.load(conf / "gru_ae.yaml")
    rules = OmegaConf.to_container(model.post_processing)
    rules["threshold"] = {**OmegaConf.to_container(OmegaConf.load(conf / "threshold" / "f05.yaml")),
                          **rules["threshold"]}
    return rules


def trained(mission, batches: int):
    """A GRU with the default rules trained one epoch of ``batches`` batches, rules unfitted."""
    import lightning as L
    import torch
    from omegaconf import OmegaConf

    from esa_lightning.data.windows import WindowDataModule
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE

    torch.manual_seed(0)
    dm_conf = OmegaConf.load(ROOT / "esa_lightning" / "conf" / "datamodule" / "windows.yaml")
    dm_kw = {k: v for k, v in OmegaConf.to_container(dm_conf).items() if k != "_target_"}
    dm = WindowDataModule(mission, **dm_kw)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, post_processing=default_rules())
    model.configure_callbacks = list  # trained here without fitting the rules
    L.Trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=0, logger=False,
              enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu").fit(model, dm)
    del model.configure_callbacks
    model.set_preprocessing(dm)
    return model


def fit_rules(model, mission, before: bool) -> dict:
    """Fit every rule of ``model`` in order; seconds and windows scored per rule, and what they
    fitted."""
    from esa_lightning.postprocessing import thresholds

    counts, current = Counter(), [None]
    scorer = model.window_outputs

    def window_outputs(*args, **kw):
        out = scorer(*args, **kw)
        counts[current[0]] += len(out.total)
        return out

    model.window_outputs = window_outputs
    dm, seconds, handed = SimpleNamespace(mission=mission), {}, 0
    for name, rule in model.post_rules.items():
        current[0] = name
        t0 = time.perf_counter()
        if before and name == "gap_close":
            rule.handed = None  # scored again, as before
        if before and name == "threshold":  # the validation range, as the fit scored it before
            for series, m in mission.grids().items():
                if thresholds._clean_windows(model, m, m.val_start, m.test_start).any():
                    thresholds._window_scores(rule, model, m, series, m.val_start, m.test_start)
        result = rule.fit_in_order(model, dm)
        seconds[name] = time.perf_counter() - t0
        if name == "rf_gate" and model.gap_rule.handed is not None:
            handed = sum(a.nbytes for g in model.gap_rule.handed.grids.values()
                         for a in (g.total, g.gate, g.features))
        if name == "gap_close":
            f05 = result
    del model.window_outputs
    forest = model.post_rules["rf_gate"].forest
    trees = hashlib.blake2b(digest_size=8)
    for tree in [] if forest is None else forest.estimators_:
        t = tree.tree_
        for a in (t.feature, t.threshold, t.value):
            trees.update(np.ascontiguousarray(a).tobytes())
    state = {k: v.cpu().numpy().tobytes() for k, v in model.state_dict().items()
             if k.startswith("post_rules.")}
    return {"seconds": seconds, "windows": dict(counts), "f05": f05,
            "forest": None if forest is None else trees.hexdigest(), "state": state,
            "width": int(model.gap_rule.width), "handed_mib": handed / 2**20}


def main(argv: list[str] | None = None) -> None:
    import torch

    from esa_lightning.data.readers.esa_adb import read_esa_mission

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=91)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=str(ROOT / "datasets" / "bench_fit_pass"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    work = Path(a.workdir)
    split, val_days = split_for(a.days)
    mission_dir = work / f"d{a.days:g}"
    generate(mission_dir, a.days, split)
    import json

    info = json.loads((mission_dir / "mission.json").read_text())
    mission = read_esa_mission(mission_dir, counters=info["counters"], cache_dir=work / "cache",
                               split_date=split, val_days=val_days)
    model = trained(mission, a.batches)
    res = {}
    for name, before in (("before", True), ("after", False), ("before (again)", True),
                         ("after (again)", False)):
        res[name] = fit_rules(copy.deepcopy(model), mission, before)
        print(name, res[name]["seconds"], res[name]["windows"], flush=True)
    same = all(res[k]["state"] == res["before"]["state"] and res[k]["forest"] ==
               res["before"]["forest"] and res[k]["f05"] == res["before"]["f05"]
               for k in res)
    fit_rows = len(mission.fit_range().values)
    rules = list(res["before"]["seconds"])
    lines = ["| rule | " + " | ".join(f"{k} s | {k} windows" for k in res) + " |",
             "|---|" + "---|---|" * len(res)]
    for rule in [*rules, "all"]:
        cells = []
        for k in res:
            s, w = res[k]["seconds"], res[k]["windows"]
            secs = sum(s.values()) if rule == "all" else s[rule]
            wins = sum(w.values()) if rule == "all" else w.get(rule, 0)
            cells.append(f"{secs:.1f} | {wins:,}")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    f05 = ", ".join(f"{w}: {f:.4f}" for w, f in (res["after"]["f05"] or {}).items())
    body = f"""A Mission1-shaped mission of {a.days:g} days (the generator `full_scale.py` uses;
{fit_rows:,} fit-range rows, {mission.values.shape[1]} value columns), a GRU with the default
`gru_ae` rules (`conf/model/gru_ae.yaml`, threshold f05 on the fit range) trained one epoch of
{a.batches} batches, then its rules fitted on copies of the same weights, each way twice, in
one process ({a.threads} torch thread(s)): before (the threshold's fit also scoring the
validation range with its context, which only its percentile fallback reads; `gap_close`
scoring the fit range again, `provisional_alarm`) and after (the validation range scored only
for the fallback; `gap_close` reading the alarms of the gate's scoring handed over,
`postprocessing.fit_pass`). Windows: those each fit sent through `window_outputs`.

{chr(10).join(lines)}

The same numbers every way, bit for bit (thresholds, channel normalisation, stuck-channel
limits, gap width, every tree of the forest, F0.5 per width): {"yes" if same else "NO"}
(width {res['after']['width']}; fit-range EW_F_0.50 per width {f05 or 'n/a'}; forest
{res['after']['forest'] or 'not shipped'}). The handed scoring holds
{res['after']['handed_mib']:.1f} MiB from the gate's fit to the gap fit (window scores 4 bytes
and gate mask 1 byte a window, the gated windows' features: what the gate's fit holds already;
at Mission1's 7.4 M fit-range windows the scores and mask are 35 MiB). What stays:
`channel_norm` scores the training windows raw (before the normalisation it fits exists),
the threshold's search and the gate each score the fit range once (the gate needs the
features of the windows above a cut the threshold sets; keeping every window's features to
share that pass too would hold {fit_rows * (1 + 76 + 32 + 3) * 4 / 2**20:,.0f} MiB here, 112
floats a window, 3.1 GiB at Mission1's 7.4 M fit-range windows, against the window scores'
{fit_rows * 4 / 2**20:,.1f} MiB).
Machine: {machine()}.
Command: `python benchmarks/bench_fit_pass.py --days {a.days:g} --batches {a.batches}
--threads {a.threads}`.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
