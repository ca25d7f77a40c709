"""Detectors trained apart (other seeds) merged into one that scores with their mean output.

``python merge.py detectors=[A,B,C] data=NAME`` writes ``<run>/detector``: one GRU-attention
component whose networks are the members of every source (``MemberMean``), as if it had been
trained with ``model.members`` set to their total, except that each source kept its own batch
order and early stopping. Sources may list the same channels, telecommands or series in another
order (``data.channels`` given in another order): each reads them by name, its networks and
scaler permuted into the first source's order, which the merged detector keeps. Its error
normalisation (``channel_norm``) and threshold are fitted
again by its own rules (the sources' ``post_processing``, read from their hyper-parameters: an
artifact never names code to run), on the merged errors of the data's ranges.
The merged detector is scored on the data's validation and test ranges (``test=false``:
validation only) as ``train.py`` scores a trained one (its threshold and gap closing fitted, and
its reports made, on the events ``metrics.label_channels`` keeps): ``metrics.json`` holds the same
``val/...`` and ``test/...`` keys (a range without labeled events is not scored, the summary says
why). Forecasters add ``val/forecast_MAE/<source>`` of every source and of the merged detector
on the validation range (no labels), so the choice between them needs no test rows. With
nothing to score, no ``metrics.json`` is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from esa_lightning.artifact import Detector
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError, listed_differences
from esa_lightning.jobs.run_guard import refuse_merge_folder
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.models.gru_ae.network import members_of
from esa_lightning.postprocessing.channel_norm import ChannelNorm
from esa_lightning.postprocessing.confidence import CALIBRATION_KEY
from esa_lightning.postprocessing.frozen import FrozenValues
from esa_lightning.postprocessing.gaps import GapClose
from esa_lightning.postprocessing.thresholds import WindowThreshold
from esa_lightning.runtime.calibration import calibration_record

log = logging.getLogger("esa_lightning")

# fitted on the training data: equal in detectors trained on the same data
SCALER_BUFFERS = ("scaler_median", "scaler_iqr")


def _single_model(detector: Detector, source: str) -> tuple[str, LitGRUAttentionAE]:
    if detector.combiner is not None or len(detector.components) != 1:
        raise ESAInputError("only single-component detectors can be merged", path=source)
    ((name, model),) = detector.components.items()
    if not isinstance(model, LitGRUAttentionAE):
        raise ESAInputError(
            f"component {name!r} is a {type(model).__name__}, not a GRU-attention model",
            path=source,
        )
    if model.gate is not None:
        raise ESAInputError(
            "its random forest head was fitted on one network's errors: merge detectors "
            "trained without one (model.post_processing.rf_gate=null)",
            path=source,
        )
    return name, model


def _differing_keys(a: Mapping, b: Mapping, prefix: str = "") -> list[str]:
    """The keys whose values differ between ``a`` and ``b``, dotted down nested mappings
    (``post_processing.rf_gate``), so a refusal names the setting to look at."""
    keys = []
    for key in sorted(a.keys() | b.keys()):
        x, y = a.get(key), b.get(key)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            keys += _differing_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            keys.append(f"{prefix}{key}")
    return keys


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, equal_nan=True))


def _refuse_repeated_networks(units: list[list[torch.nn.Module]], sources: list[str]) -> None:
    """A network in two sources (``detectors=[A,A]``, a copy of A, A beside a merge of A) would
    weigh double in the mean: refused, naming both."""
    seen: list[tuple[torch.Tensor, str]] = []
    for group, source in zip(units, sources, strict=True):
        for net in members_of(group[0]):
            weights = torch.cat([p.detach().flatten() for p in net.parameters()])
            for other, where in seen:
                if _same(weights, other):
                    twice = "given twice" if where == source else f"a network {where} holds too"
                    raise ESAInputError(
                        f"{twice}: it would weigh double in the mean; merge detectors trained "
                        "with other seeds",
                        path=source,
                    )
            seen.append((weights, source))


def _refuse_other_missions(detectors: list[Detector], sources: list[str]) -> None:
    """A source trained on another mission than the first (``info.mission`` of their
    ``detector.json``) is refused, naming both, even where the schema and scaler agree (the
    same data under another name, another mission of the same channels). A source without
    the record is not compared."""
    first = detectors[0].info.get("mission")
    for detector, source in zip(detectors[1:], sources[1:], strict=True):
        other = detector.info.get("mission")
        if first is not None and other is not None and other != first:
            raise ESAInputError(
                f"its detector.json records mission {other!r}, {sources[0]}'s records "
                f"{first!r}: merge detectors trained on the same mission",
                path=source,
            )


def merge_detectors(
    detectors: list[Detector], sources: list[str], mission: Mission | None = None
) -> Detector:
    """One detector scoring with the mean output of all the sources' networks.

    The sources must share mission (``info.mission``), schema (their names may come in
    another order: ``in_first_order``), hyper-parameters (``members`` aside) and scaler: the
    same configuration trained on the same data with other seeds. Each must agree with its own
    schema, checked as ``Detector.load``
    checks an artifact (``in_first_order``). The threshold is calibrated again
    on ``mission`` (its validation range) by the sources' own threshold rule, and so is the
    width of a ``gap_close`` rule (on its fit range).
    """
    if len(detectors) < 2:
        raise ESAInputError("merging needs at least two detectors", column="detectors")
    detectors = in_first_order(detectors, sources)
    named = [_single_model(d, s) for d, s in zip(detectors, sources, strict=True)]
    _refuse_other_missions(detectors, sources)
    name, first = named[0]
    models = [model for _, model in named]
    hp = {k: v for k, v in first.hparams.items() if k != "members"}
    for model, source in zip(models[1:], sources[1:], strict=True):
        other = {k: v for k, v in model.hparams.items() if k != "members"}
        if differ := _differing_keys(hp, other):
            raise ESAInputError(
                f"hyper-parameters differ from {sources[0]}'s: {differ}", path=source
            )
        for buffer in SCALER_BUFFERS:
            if not _same(getattr(model, buffer), getattr(first, buffer)):
                raise ESAInputError(
                    f"{buffer} differs from {sources[0]}'s: trained on other data?",
                    path=source,
                    column=buffer,
                )
    units = [m.validation_units()[0] for m in models]
    _refuse_repeated_networks(units, sources)
    members = [
        [net for unit in group for net in members_of(unit)] for group in zip(*units, strict=True)
    ]
    merged = LitGRUAttentionAE(**hp, members=len(members[0]))
    for unit, nets in zip(merged.validation_units()[0], members, strict=True):
        for target, net in zip(members_of(unit), nets, strict=True):
            target.load_state_dict(net.state_dict())
    for buffer in SCALER_BUFFERS:
        getattr(merged, buffer).copy_(getattr(first, buffer))
    merged.train_rows.copy_(max((m.train_rows for m in models), key=int))  # 0: not recorded
    merged.eval()
    # fitted on the networks' errors, so fitted again: the error scale, the threshold, then the
    # width of the gaps closed between the alarms; the stuck-channel limits (the data's alone)
    refit = [r for r in merged.post_rules.values()
             if isinstance(r, ChannelNorm | WindowThreshold | GapClose | FrozenValues)]
    if refit and mission is None:
        raise ValueError("the sources' thresholds were fitted: pass the mission")
    for rule in refit:
        rule.fit(merged, SimpleNamespace(mission=mission))
    info = {**detectors[0].info, "merged_from": list(sources)}
    info.pop(CALIBRATION_KEY, None)  # the first source's nominal scores, not the merged ones
    # the config it reads as: N networks each
    yaml = merged_config(detectors[0].config_yaml, len(members[0]), sources[0])
    detector = Detector({name: merged}, detectors[0].schema, config_yaml=yaml, info=info)
    if mission is not None:
        detector.info[CALIBRATION_KEY] = calibration_record(detector, mission)
    return detector


def in_first_order(detectors: list[Detector], sources: list[str]) -> list[Detector]:
    """The detectors, each reading the first one's channels, telecommands and series in the
    first one's order: a source listing the same names in another order becomes a copy whose
    networks and scaler are permuted to it (its fitted post-processing left out: merging fits
    it again). Other names, grids or layouts are refused, naming what differs. Each source is
    first checked as ``Detector.load`` checks an artifact (``Detector.check``: one built in
    memory may disagree with its own schema), the refusal naming it, and must hold one
    GRU-attention model (``_single_model``): another kind is named as such, not as a schema
    that differs."""
    for detector, source in zip(detectors, sources, strict=True):
        detector.check(source)
        _single_model(detector, source)
    target = detectors[0].schema
    want = list(_single_model(detectors[0], sources[0])[1].hparams.series)
    out = [detectors[0]]
    for detector, source in zip(detectors[1:], sources[1:], strict=True):
        _refuse_other_schema(detector.schema, target, sources[0], source)
        _, model = _single_model(detector, source)
        if detector.schema == target and list(model.hparams.series) == want:
            out.append(detector)
            continue
        aligned = _model_in_order(model, detector.schema, target, want, source)
        (name,) = detector.components
        out.append(Detector({name: aligned}, target, config_yaml=detector.config_yaml,
                            info=detector.info))
    return out


def _refuse_other_schema(schema: dict, target: dict, first: str, source: str) -> None:
    names = ("channels", "telecommands")  # the same names in another order are read by name
    mine, theirs = _by_name(schema), _by_name(target)
    keys = mine.keys() | theirs.keys()
    other = sorted(k for k in keys if k not in names and mine.get(k) != theirs.get(k))
    if other:
        raise ESAInputError(f"schema differs from {first}'s: {other}", path=source)
    for key in names:
        missing = [c for c in target[key] if c not in set(schema[key])]
        extra = [c for c in schema[key] if c not in set(target[key])]
        if missing or extra:
            raise ESAInputError(
                f"{key} differ from {first}'s: {listed_differences(missing, extra)}",
                path=source,
            )


def _by_name(schema: dict) -> dict:
    """``schema`` with what it lists per channel in the channels' order (each component's
    ``features``, the recorded channel table) put in name order, so that a source listing the
    same channels in another order compares equal."""
    out = dict(schema)
    if isinstance(out.get("features"), dict):
        out["features"] = {k: sorted(map(str, v)) for k, v in out["features"].items()}
    record = out.get("preprocessing")
    if isinstance(record, dict) and isinstance(record.get("channel_table"), list):
        table = sorted(record["channel_table"], key=lambda row: str(row.get("Channel")))
        out["preprocessing"] = {**record, "channel_table": table}
    return out


def _model_in_order(
    model: LitGRUAttentionAE, schema: dict, target: dict, series: list[str], source: str
) -> LitGRUAttentionAE:
    """A copy of ``model`` reading ``target``'s columns (and ``series``) in their order."""
    hp = model.hparams
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("post_rules.")}
    if sorted(hp.series) == sorted(series):  # else refused as differing hyper-parameters
        state = _series_permuted(state, [list(hp.series).index(n) for n in series])
    if target.get("multiseries") and list(schema["telecommands"]) != list(target["telecommands"]):
        # each series pads its own commands: their columns cannot be matched by name
        raise ESAInputError(
            "independent series' telecommands in another order cannot be merged", path=source
        )
    if not target.get("multiseries"):
        state = _columns_permuted(state, hp, schema, target)
    aligned = LitGRUAttentionAE(**{**hp, "series": list(series)})
    aligned.load_state_dict(state, strict=False)
    return aligned.eval()


def _series_permuted(state: dict[str, torch.Tensor], order: list[int]) -> dict:
    """``state`` with series ``order[i]`` as series ``i``: scaler rows, series embeddings and
    one network per series."""
    if order == sorted(order):
        return state
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if key in SCALER_BUFFERS or parts[-2:] == ["embedding", "weight"]:
            value = value[order]
        elif parts[:2] == ["net", "nets"]:
            key = ".".join([*parts[:2], str(order.index(int(parts[2]))), *parts[3:]])
        out[key] = value
    return out


def _columns_permuted(state: dict[str, torch.Tensor], hp: Any, schema: dict, target: dict) -> dict:
    """``state`` reading ``target``'s channels and telecommands where it read ``schema``'s:
    the first encoder layer's input columns, the scaler and the output rows."""
    channels = [list(schema["channels"]).index(c) for c in target["channels"]]
    commands = [list(schema["telecommands"]).index(c) for c in target["telecommands"]]
    inputs = channels + [len(channels) + i for i in commands]
    inputs = inputs[: hp.n_inputs]  # inputs=values: the channels only
    forecast = [h * len(channels) + c for h in range(hp.horizon) for c in channels]
    out = {}
    for key, value in state.items():
        module = key.split(".")[-2] if "." in key else key
        if key in SCALER_BUFFERS or key.split(".")[-2:] == ["encoder", "weight_ih_l0"]:
            value = value[:, inputs]
        elif module == "output":
            value = value[channels]
        elif module == "next_step":
            value = value[forecast]
        out[key] = value
    return out


def merged_config(config_yaml: str, members: int, source: str) -> str:
    """A source's ``config.yaml`` with ``model.members`` set, read and written as plain YAML:
    an artifact's config is text for people, so its interpolations (``${oc.env:...}``) are
    never resolved and its tags never constructed; a config that is not a YAML mapping, or one
    ``parse_config_yaml`` refuses (too large, too deep, aliases), is one ``ESAInputError``
    naming the file."""
    import yaml as pyyaml

    from esa_lightning.artifact.config_text import parse_config_yaml

    where = f"{source}/config.yaml"
    try:
        config = parse_config_yaml(config_yaml) if config_yaml.strip() else {}
    except pyyaml.YAMLError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ESAInputError(f"not valid YAML ({reason})", path=where) from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ESAInputError(f"a YAML {type(config).__name__}, not a mapping", path=where)
    if isinstance(config.get("model"), dict):
        config["model"]["members"] = members
    return pyyaml.safe_dump(config, sort_keys=False)


def merge(cfg: Any) -> dict[str, float]:
    """The ``merge.py`` job: the merged detector, its metrics on the validation and test ranges
    of ``cfg.data`` and, for forecasters, ``val/forecast_MAE`` of it and each source. One run at
    a time writes into the run folder."""
    from esa_lightning.run_folder import lock_run_folder, make_run_folder

    out = make_run_folder(cfg.paths.output_dir)
    with lock_run_folder(out):
        return _merge_into(cfg, out)


def refuse_other_split(detectors: list[Any], sources: list[str], mission: Mission) -> None:
    """Refuse to merge on the sources' mission read with another grid or other training and
    validation rows than a source was trained on (its checkpoint's record,
    ``runtime.checkpoints.check_same_split``): the thresholds would be fitted again, and the
    merge scored, on validation rows its networks trained on. Another mission is the user's
    choice of data; a source without the record (older versions) is not compared. A checkpoint
    that cannot be read is refused saying to retrain that source."""
    from esa_lightning.data.mission import mission_record
    from esa_lightning.runtime.checkpoints import check_same_split, read_checkpoint

    now = mission_record(mission)
    for detector, source in zip(detectors, sources, strict=True):
        for path in (getattr(detector, "checkpoints", None) or {}).values():
            try:
                stored = read_checkpoint(path).get("esa_lightning_data")
            except ESAInputError as exc:  # checksummed: it was unreadable when written
                raise ESAInputError(f"{exc.reason}; retrain {source} (train.py) and merge the "
                                    "new detector", path=path) from None
            if isinstance(stored, dict) and stored.get("mission") == now["mission"]:
                check_same_split(
                    stored, now, path, reads="the merge reads",
                    advice=f"merge on the data {source} was trained on (its run's data.period, "
                    "data.val_days (data.val_fraction) and data.split_date)",
                )


def _refuse_bad_request(cfg: Any, out: Path) -> None:
    """``detectors`` not a list of at least two, or a run folder holding another run's outputs."""
    if isinstance(cfg.detectors, str) or not hasattr(cfg.detectors, "__iter__"):
        raise ESAInputError(
            "detectors must be a list of detector folders: detectors=[PATH,PATH]",
            column="detectors",
            value=cfg.detectors,
        )
    if len(cfg.detectors) < 2:
        raise ESAInputError("merging needs at least two detectors: detectors=[PATH,PATH]",
                            column="detectors", value=list(cfg.detectors))
    refuse_merge_folder(out)  # checked before Hydra writes too (merge.yaml's callback)


def _merge_into(cfg: Any, out: Path) -> dict[str, float]:
    from esa_lightning.artifact import check_schema
    from esa_lightning.io import remove_stale_temporaries, write_json_atomic
    from esa_lightning.jobs.common import mission_from_config, scored_mission, unscored_reason
    from esa_lightning.jobs.run_logs import print_summary
    from esa_lightning.jobs.train import evaluate
    from esa_lightning.run_folder import removed_if_refused

    remove_stale_temporaries(out)
    # refused here (its settings, a detector or mission it cannot read), it leaves no run
    # folder it made
    with removed_if_refused(out, keep=bool(cfg.get("debug_errors", False))):
        _refuse_bad_request(cfg, out)
        sources = [str(p) for p in cfg.detectors]
        # each source reads the data in the first one's order (its forecast_MAE below too)
        detectors = in_first_order([Detector.load(p) for p in sources], sources)
        mission = scored_mission(mission_from_config(cfg.data), cfg)  # metrics.label_channels
        check_schema(detectors[0].schema, mission, source=str(cfg.data.root))
        refuse_other_split(detectors, sources, mission)
        merged = merge_detectors(detectors, sources, mission)
    merged.save(out / "detector")
    # the merged detector scored as train.py scores a trained one
    parts = {"val": mission.val()}
    if cfg.get("test", True):
        parts["test"] = mission.test()
    results = evaluate(merged, mission, parts, int(cfg.get("chunk_rows", 262_144)))
    unscored = {p: r for p, part in parts.items() if (r := unscored_reason(part))}
    maes = {}
    for source, detector in [*zip(sources, detectors, strict=True), ("merged", merged)]:
        (model,) = detector.components.values()
        maes[source] = model.label_free_metrics(mission).get("forecast_MAE")
    results.update({f"val/forecast_MAE/{k}": float(v) for k, v in maes.items() if v is not None})
    if results:
        write_json_atomic(out / "metrics.json", results)
    else:  # an empty metrics.json would read as a run that scored nothing by mistake
        log.warning(
            "nothing to score: no range with labeled events and no forecast error (not "
            "forecasters); metrics.json not written"
        )
    for source, mae in maes.items():
        if mae is not None:
            print(f"  val/forecast_MAE {mae:>8.4f}  {source}")
    print_summary(results, unscored, out, merged.components)
    return results
