"""The GRU's post-rule fits before and after the gate's fit reading the threshold's scores.

On a Mission1-shaped mission (the generator ``full_scale.py`` uses; 76 channels, 44
telecommands, a 30 s grid; Mission1's split: test the second half, validation the last
min(90, 20 %) days of the first), a GRU with the default ``gru_ae`` post-processing
(``conf/model/gru_ae.yaml``: channel_norm, the f05 threshold on the fit range, the random-forest
gate with its cross-fit check, the stuck-channel rule, gap_close) is trained briefly (one epoch
of ``--batches`` batches; the rules' fits are what is measured), then its rules are fitted twice
on copies of the same weights, in this process:

- before: as the code did before, the random-forest gate's fit scoring every window of the fit
  range again (``RandomForestGate.hand``'s window scores dropped);
- after: the code now: the gate's fit takes the window scores the threshold's search on the fit
  range computed, picks its gated windows from them and scores only the scoring batches that
  hold one (``WindowPieces.window_batches``: the batches of scoring the range whole).

Both: the ``gap_close`` fit reads the gate's scoring (``postprocessing.fit_pass``). (The
comparison before this one, of session 22: the threshold's fit scoring the validation range too
and ``gap_close`` scoring the fit range again, before and after they stopped, is in
``RESULTS.md``'s text.)

Each rule's fit is timed and the windows it sends through ``window_outputs`` counted; the two
fits must give the same numbers: thresholds, channel normalisation, the forest (every tree),
the gap width and F0.5 per width, the stuck-channel limits.

Usage::

    python benchmarks/bench_fit_pass.py [--days 91] [--batches 100] [--threads 1] [--workdir DIR]
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
    counts, current = Counter(), [None]
    scorer = model.window_outputs

    def window_outputs(*args, **kw):
        out = scorer(*args, **kw)
        counts[current[0]] += len(out.total)
        return out

    model.window_outputs = window_outputs
    dm, seconds, cpu, handed, gated, took = SimpleNamespace(mission=mission), {}, {}, 0, 0, 0
    judged = hashlib.blake2b(digest_size=8)  # the gated windows and their features
    for name, rule in model.post_rules.items():
        current[0] = name
        t0, c0 = time.perf_counter(), time.process_time()
        if before and name == "rf_gate":
            rule.handed = None  # the fit range scored again, as before
        result = rule.fit_in_order(model, dm)
        seconds[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0
        if name == "threshold" and model.post_rules["rf_gate"].handed is not None:
            took = sum(a.nbytes for a in model.post_rules["rf_gate"].handed.totals.values())
        if name == "rf_gate" and model.gap_rule.handed is not None:
            grids = model.gap_rule.handed.grids.values()
            handed = sum(a.nbytes for g in grids for a in (g.total, g.gate, g.features))
            gated = sum(int(g.gate.sum()) for g in grids)
            for g in grids:
                judged.update(np.packbits(g.gate).tobytes() + g.features.tobytes())
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
    return {"seconds": seconds, "cpu": cpu, "windows": dict(counts), "f05": f05,
            "forest": None if forest is None else trees.hexdigest(), "state": state,
            "width": int(model.gap_rule.width), "handed_mib": handed / 2**20,
            "gated": gated, "took_mib": 0 if before else took / 2**20,
            "judged": judged.hexdigest()}


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
    same = all(res[k][what] == res["before"][what] for k in res
               for what in ("state", "forest", "f05", "width", "judged"))
    fit_rows = len(mission.fit_range().values)
    rules = list(res["before"]["seconds"])
    lines = ["| rule | " + " | ".join(f"{k} s (CPU s) | {k} windows" for k in res) + " |",
             "|---|" + "---|---|" * len(res)]
    for rule in [*rules, "all"]:
        cells = []
        for k in res:
            s, c, w = res[k]["seconds"], res[k]["cpu"], res[k]["windows"]
            secs = sum(s.values()) if rule == "all" else s[rule]
            cpus = sum(c.values()) if rule == "all" else c[rule]
            wins = sum(w.values()) if rule == "all" else w.get(rule, 0)
            cells.append(f"{secs:.1f} ({cpus:.1f}) | {wins:,}")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    f05 = ", ".join(f"{w}: {f:.4f}" for w, f in (res["after"]["f05"] or {}).items())
    batch = model.hparams.score_batch_size
    body = f"""A Mission1-shaped mission of {a.days:g} days (the generator `full_scale.py` uses;
{fit_rows:,} fit-range rows, {mission.values.shape[1]} value columns), a GRU with the default
`gru_ae` rules (`conf/model/gru_ae.yaml`, threshold f05 on the fit range) trained one epoch of
{a.batches} batches, then its rules fitted on copies of the same weights, each way twice, in
one process ({a.threads} torch thread(s)): before (the random-forest gate's fit scoring every
fit-range window again) and after (the gate's fit taking the window scores the threshold's
search on the fit range computed, `fit_pass.FitScores`, picking its gated windows from them
and sending through the network only the scoring batches of {batch:,} windows that hold one,
`WindowPieces.window_batches`). Both: `gap_close` reads the gate's scoring handed over
(`fit_pass.FitPass`). Windows: those each fit sent through `window_outputs`; CPU s: the
process's CPU time (the forests' threads included), less sensitive than the seconds to other
work running.

{chr(10).join(lines)}

The same numbers every way, bit for bit (thresholds, channel normalisation, stuck-channel
limits, gap width, every tree of the forest, the gated windows and their features, F0.5 per
width): {"yes" if same else "NO"}
(width {res['after']['width']}; fit-range EW_F_0.50 per width {f05 or 'n/a'}; forest
{res['after']['forest'] or 'not shipped'}; {res['after']['gated']:,} gated windows). The
network's float32 outputs of a window depend on the batch it is computed in (checked apart on
this CPU: in a batch of 1 or 7 windows a window got other per-channel errors, latent and
attention than in the batch of 4,096 holding it, by 1e-7: float32 summation order), so the
gate scores whole batches of scoring the range, never its gated windows alone. The threshold
hands the gate {res['after']['took_mib']:.1f} MiB of window scores (4 bytes a window; 28 MiB
at Mission1's 7.4 M fit-range windows), dropped after the gate's fit. The gate's windows after: the
batches holding a gated window; how many depends on how the alarms spread over the range.
The gate's seconds include its forests' fits (the cross-fit check's five and the shipped one),
which do not change. The windows are exact; the seconds are indicative, more so with other
work running (the load average below).
Machine: {machine()}.
Command: `python benchmarks/bench_fit_pass.py --days {a.days:g} --batches {a.batches}
--threads {a.threads}`.

Before this (session 22, 91 days, 100 batches): the threshold's fit also scored the validation
range and `gap_close` the fit range again; sharing the gate's scoring with `gap_close` and
scoring the validation range only for the percentile fallback took the windows the rule fits
score from 533,165 to 371,493 (-30 %) and their seconds from 19.4 / 19.3 to 14.3 / 14.2 over
two rounds, the same numbers bit for bit.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
