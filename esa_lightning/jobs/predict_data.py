"""Which data ``predict.py`` reads, checked against the detector before anything is generated,
read or cached: its layout (independent series or one grid) and, without ``data=``, whether
the default data are those the detector was trained on (``data`` of its ``config.yaml``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esa_lightning.errors import ESAInputError
from esa_lightning.install import command

#: how the Python API's prediction is named in its refusals (``api=True``)
API = "esa_lightning.predict"


def refuse_other_layout(
    data_cfg: Any, schema: dict[str, Any], config_yaml: str, api: bool = False
) -> None:
    """Data of a layout the detector cannot score, refused before it is generated, read or
    cached for nothing, naming the data the training run read (``config_yaml``). A detector of
    independent series (NASA) scores one grid (``data=esa``, ``esa_csv``, ``kaggle``,
    ``synthetic``, the default) only as one of its trained series
    (``artifact.format.refuse_other_than_one_series``, after reading): one named so (its folder
    or file) or chosen with ``data.channels=[NAME]``. A detector of one grid scores
    ``data=nasa`` (independent series) only where ``data.channels`` lists its channels, as
    ``check_schema`` requires. A reader of one's own is left to the checks after reading.
    ``api``: worded for ``esa_lightning.predict`` (its overrides), not the command line."""
    from omegaconf import ListConfig

    from esa_lightning.artifact.format import not_one_series

    kind = reader_kind(data_cfg.get("_target_"))
    if kind is None:
        return
    trained = [str(c) for c in schema.get("channels", [])]
    root = str(data_cfg.get("root"))
    channels = data_cfg.get("channels", "all")
    listed = [str(c) for c in channels] if isinstance(channels, list | ListConfig) else None
    if not schema.get("multiseries"):
        if kind == "nasa" and listed != trained:
            shown = ", ".join(trained[:5]) + (", ..." if len(trained) > 5 else "")
            raise ESAInputError(
                f"the detector scores one grid of channels ({shown}), and data=nasa reads "
                "independent series (NASA layout): read the data as one grid (data=esa, "
                f"data=esa_csv, data=kaggle){trained_data_hint(config_yaml, data_cfg, api)}",
                path=root,
            )
        return
    name = Path(root).name  # the grid's name: its folder or file, a suffix or more off
    if kind == "nasa" or {name, *(name[:i] for i, c in enumerate(name) if c == ".")} & set(
        trained
    ):
        return
    if listed is None and kind == "synthetic":
        grid = "the synthetic mission (data=synthetic), one grid of channels"
    elif listed is None:  # all, target, lightweight
        grid = f"one grid of channels (data={kind})"
    elif len(listed) == 1 and listed[0] in trained:
        return  # that series, if the data have it (the reader refuses it otherwise)
    else:
        grid = f"one grid of {len(listed)} channel(s) {listed[:5]} (data={kind})"
    raise not_one_series(trained, grid, root, trained_data_hint(config_yaml, data_cfg, api))


def refuse_default_data(
    data_cfg: Any,
    config_yaml: str,
    overrides: Sequence[str] | None,
    info: dict[str, Any] | None = None,
    artifact: str | Path | None = None,
    api: bool = False,
) -> None:
    """Without ``data=`` predict.py reads the default data (``data=synthetic``): a detector
    trained on other data (another reader or folder, other split settings: ``data`` of its
    ``config_yaml``; or a synthetic mission generated otherwise: the settings its ``info``
    records, ``_other_generator``) would score a mission it was never trained on in place of
    its own, without a word, where their channels have the same names. That is refused here,
    before anything is generated or read, naming both; so is a detector whose ``config.yaml``
    (in the folder ``artifact``) is missing or records no ``data`` (deleted or edited: it is
    for people; or a detector built in Python), naming the file: the check cannot be made.
    ``overrides``: the command line's (any ``data``/``data.*`` key gives the data); None (a
    config composed in Python, which does not record whether its data were given): nothing is
    refused. ``api``: the refusal is worded for ``esa_lightning.predict``, whose overrides give
    the data (a list), not for the command line."""
    from omegaconf import OmegaConf

    if overrides is None or any(
        o.split("=", 1)[0].lstrip("+~").split(".")[0] == "data" for o in overrides
    ):
        return
    trained = trained_data(config_yaml)
    default = OmegaConf.to_container(data_cfg, resolve=True)
    if not trained:
        raise _no_record_of_data(default, artifact, info, api)
    other_reader = trained.get("_target_") != default.get("_target_")
    settings = [] if other_reader else [  # another reader's settings are its own
        f"data.{k}={trained[k]} (the default: {default[k]})"
        for k in trained
        if k in default and k not in _NOT_COMPARED and trained[k] != default[k]
    ]
    generated, hint = ([], "") if other_reader else _other_generator(trained, default, info,
                                                                      api)
    roots = {Path(str(d.get("root"))).expanduser().resolve() for d in (trained, default)}
    if not other_reader and len(roots) == 1 and not settings and not generated:
        return
    differ = ", ".join([_data_name(trained), *settings, *generated])
    raise ESAInputError(
        f"{_no_data(api)} reads the default data, {_data_name(default)}, and the detector was "
        f"trained on other data: {differ}; {_give_data(api, hint)}",
        path=str(default.get("root")),
    )


def _no_data(api: bool) -> str:
    """The start of the refusals of ``refuse_default_data``: who reads the default data."""
    if api:
        return f"no data= among the overrides: {API}"
    return f"no data= given: {command('predict')}"


def _give_data(api: bool, also: str = "") -> str:
    """How to give the data to score, as the command line (``data=...``) or the Python API (a
    list of overrides) takes them; ``also``: what else to give, after the default's."""
    if api:
        return ('give the data to score in the overrides (["data=KIND", "data.root=DIR"]; '
                f'["data=synthetic"] to score the default mission all the same{also})')
    return ("give the data to score with data= and data.root= (data=synthetic to score the "
            f"default mission all the same{also})")


def _overrides(api: bool, given: list[str]) -> str:
    """``given`` overrides as the command line (space-separated) or the API (a list) takes
    them."""
    return "[" + ", ".join(f'"{o}"' for o in given) + "]" if api else " ".join(given)


def _no_record_of_data(
    default: dict[str, Any], artifact: str | Path | None, info: dict[str, Any] | None,
    api: bool = False,
) -> ESAInputError:
    """The refusal of ``refuse_default_data`` for a detector whose ``config.yaml`` records no
    ``data``: whether the default data are those it was trained on cannot be told. The mission
    its ``info`` names (``mission_info``), where it names one, is said."""
    config = Path(artifact) / "config.yaml" if artifact is not None else None
    if config is not None and not config.is_file():
        why = "its config.yaml, which records them, is missing"
    else:
        why = "its config.yaml records no data settings (edited, or a detector built in Python)"
    mission = (info or {}).get("mission")
    named = f" (detector.json names the mission it was trained on: {mission})" if mission else ""
    return ESAInputError(
        f"{_no_data(api)} reads the default data, {_data_name(default)}, and whether the "
        f"detector was trained on them cannot be told: {why}{named}; {_give_data(api)}",
        path=config if config is not None else str(default.get("root")),
    )


def _other_generator(
    trained: dict[str, Any], default: dict[str, Any], info: dict[str, Any] | None,
    api: bool = False,
) -> tuple[list[str], str]:
    """``data.generate.KEY=VALUE (...)`` for each setting the synthetic mission the detector was
    trained on was generated with and the default data's was not, and the overrides that
    generate the trained one again. The trained mission's: as the detector's ``info`` records
    it (``GENERATOR``: its ``mission.json``'s record, what training read), else (a detector
    written before that record) as ``trained``'s ``generate`` asked for it. The default data's:
    the mission at the default ``data.root``, as its ``mission.json`` records it (a folder's
    mission is read as it was generated, whatever ``data.generate`` says; one without a
    record, as it is), else the mission the default ``data.generate`` generates there."""
    from esa_lightning.data.readers.esa_adb import read_mission_record
    from esa_lightning.data.readers.synthetic import GENERATOR, generator_settings

    ours = (info or {}).get(GENERATOR) or trained.get("generate") or {}
    configured = default.get("generate") or {}
    if reader_kind(default.get("_target_")) != "synthetic" or not isinstance(ours, dict):
        return [], ""
    ours, made = generator_settings(ours), generator_settings(configured)
    root = Path(str(default.get("root"))).expanduser()
    held = (root / "channels.csv").is_file()
    theirs = read_mission_record(root).get(GENERATOR) if held else made
    where = "the default data.root's mission" if held else "the default"
    if not isinstance(theirs, dict):
        return [], ""
    generated = [f"data.generate.{k}={v} ({where}: {theirs[k]})"
                 for k, v in ours.items() if k in theirs and theirs[k] != v]
    if not generated:
        return [], ""
    give = [f"{'' if k in configured else '+'}data.generate.{k}={'null' if v is None else v}"
            for k, v in ours.items() if made.get(k) != v]
    give += ["data.root=<a folder without a mission>"] if held else []
    return generated, f"; {_overrides(api, give)} to generate the mission it was trained on"


# the reader, the root and the generator's settings (compared apart: _other_generator), and
# data settings that choose no other rows or values: where the cache lives, the channels read
# (predict.py reads the detector's own by name, whatever training selected)
_NOT_COMPARED = {"_target_", "root", "cache_dir", "channels", "lightweight", "generate"}


def trained_data(config_yaml: str) -> dict[str, Any]:
    """``data`` of the detector's ``config.yaml`` (the training run's data settings); empty
    where unknown (``config.yaml`` is for people: maybe edited, and no checksum covers it):
    also where ``artifact.config_text.parse_config_yaml`` refuses it (larger than 1 MiB, nested
    too deeply, YAML aliases: nested ones make a value a message would format as billions of
    items)."""
    import yaml

    from esa_lightning.artifact.config_text import parse_config_yaml

    try:
        data = (parse_config_yaml(config_yaml or "") or {}).get("data") or {}
    except (yaml.YAMLError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def reader_kind(target: Any) -> str | None:
    """The ``data=`` group whose reader ``target`` is (``esa``, ``kaggle``...); None for a
    reader of one's own."""
    from esa_lightning.data import READERS

    return next((k for k, t in READERS.items() if t == target), None)


def _data_name(options: dict[str, Any]) -> str:
    """``data=KIND data.root=ROOT`` of the data settings ``options``."""
    target = options.get("_target_")
    kind = reader_kind(target)
    data = f"data={kind}" if kind else f"the reader {target}"
    return f"{data} data.root={options.get('root')}"


def trained_data_hint(config_yaml: str, data_cfg: Any, api: bool = False) -> str:
    """Where the detector's training read its data (``data`` of its ``config.yaml``), when
    ``data_cfg`` reads another layout (another reader): predict.py reads the data it is given
    (``data=synthetic`` when none is given), never the training run's. Empty when unknown or
    the same reader (new data of the training layout: the missing channel is the news).
    ``api``: worded for ``esa_lightning.predict``, whose overrides give the data."""
    trained = trained_data(config_yaml)
    if not trained.get("_target_") or trained["_target_"] == data_cfg.get("_target_"):
        return ""
    if api:
        return (f" (it was trained on {_data_name(trained)}; {API} reads the data= and data.root= "
                "of its overrides, data=synthetic without them)")
    return (f" (it was trained on {_data_name(trained)}; {command('predict')} reads the data= and "
            "data.root= it is given, data=synthetic without them)")
