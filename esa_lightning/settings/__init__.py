"""Checked settings: every job's config is validated before any data is read or model built.

One table of rules by key name (``RULES``), applied wherever the key appears in the composed
config (``model.hidden_size`` and ``components.gru_ae.model.hidden_size`` alike), plus two
checks for the whole tree: a mandatory value left unset (``???``) and a NaN anywhere.
Interpolations are not resolved here (``${hydra:...}`` needs the running job): the values
interpolations resolve to (any top-level key's but ``SKIPPED``'s, a list's items too) are
checked by ``check_leaves`` in the job, before the data are read (``jobs.resolved_settings``).
A bad value becomes one ``ESAInputError`` naming the full key and the value, instead of a
traceback from deep inside torch, Lightning or Hydra's instantiation wrapper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.settings.rule_kinds import (
    CHUNK_ROWS_RULE,
    MAX_DETREND_ROWS,
    MIN_CHUNK_ROWS,  # noqa: F401 - settings.MIN_CHUNK_ROWS, as before
    Rule,
    _accelerator_ok,
    _batches_ok,
    _chunk_rows_ok,
    _detrend_ok,
    _devices_ok,
    _number,
    _strategy_ok,
    fraction,
    integer,
    nonnegative_finite,
    one_of,
    percentage,
    positive_finite,
    share,
)
from esa_lightning.settings.values import (
    CHANNEL_WORDS,
    channels_ok,
    device_ok,
    metric_ok,
    monitor_ok,
    period_ok,
    tags_ok,
)

RULES: dict[str, Rule] = {
    # counts: a fraction was taken and rounded down where it was used
    **{
        name: integer(1)
        for name in (
            "batch_size",
            "eval_batch_size",
            "score_batch_size",
            "batch_rows",
            "window",
            "stride",
            "pool",
            "pool_stride",
            "step",
            "hidden_size",
            "latent_dim",
            "num_layers",
            "members",
            "horizon",
            "report_block",
            "n_estimators",
        )
    },
    # null: off; longer than any mission could hold, every row's mean read its whole history
    "detrend": (_detrend_ok, f"must be null (off) or a whole number of rows from 1 to "
                             f"{MAX_DETREND_ROWS:,} (the most rows a mission may hold)"),
    "max_figures": integer(0),
    # the channel ensemble's learners: their width and the share of features each one reads
    "hidden": integer(1),
    "feature_fraction": share(),
    # its loss: the positives' BCE weight (below 0 it rewarded missing them) and the soft event
    # F0.5 term's (0: none; below 0 it rewarded a lower F0.5)
    "pos_weight": positive_finite(),
    "f05_weight": nonnegative_finite(),
    # peak alarms: a height on the probability (fitted or not), and the samples added each side
    "height": fraction(),
    "buffer": integer(0),
    # the channel ensembles: shapelet kernels mined per channel (0: none), candidates scored
    # per kernel search, boosting rounds of each tree learner (and of rolling_gbdt's)
    "n_kernels": integer(0),
    "max_candidates": integer(1),
    "max_iter": integer(1),
    # esa_full's combiner: rows each side a row's features read; events its weights need
    "neighbourhood": integer(0),
    "threshold_min_events": integer(0),
    # the channel ensemble's folds: final folds, external x internal learners, the final fold
    **{name: integer(1) for name in ("n_final", "n_external", "n_internal")},
    "fold": integer(0),
    "seed": integer(0),
    "accelerator": (_accelerator_ok, "must be auto, cpu, gpu, cuda, mps or another accelerator "
                                     "Lightning knows"),
    "strategy": (_strategy_ok, "cannot be a spawn or fork strategy: the processes it starts fit "
                               "the post-training heads and hand none back; use ddp"),
    "max_epochs": integer(-1),
    "min_epochs": integer(0),
    "num_nodes": integer(1),
    # null: validation by val_check_interval alone; 0 divided Lightning's epoch count by zero
    "check_val_every_n_epoch": integer(1),
    **{
        f"limit_{part}_batches": (_batches_ok, "must be a count of batches >= 0 or a share in "
                                               "[0, 1]")
        for part in ("train", "val", "test", "predict")
    },
    "num_workers": integer(0),
    "val_days": (lambda v: _number(v) and math.isfinite(v) and v >= 0,
                 "must be a finite number >= 0"),
    "val_fraction": fraction(),
    "dropout": fraction(),
    # percentiles: the z-score's threshold (model.quantile), the percentile thresholds' q
    "quantile": percentage(),
    "q": percentage(),
    "lr": positive_finite(),
    "learning_rate": positive_finite(),
    # torch's optimisers refused a negative one once training began
    "weight_decay": nonnegative_finite(),
    # global_std's alarm at n_std standard deviations: at 0 or below every sample alarmed
    "n_std": positive_finite(),
    # the floors of global_std's std and the z-score's scale (model.min_std, model.min_scale;
    # channel_norm's min_scale, a share of the median channel's, is checked in (0, 1] by
    # NODE_RULES):
    # a string was a TypeError from torch after the whole fit, 0 or below a division by zero
    "min_std": positive_finite(),
    "min_scale": positive_finite(),
    # rolling_gbdt's: a string was a ValueError traceback from Hydra's instantiation
    "l2_regularization": nonnegative_finite(),
    # OpenMP threads of the tree learners (null: the library default): a string was
    # threadpoolctl's TypeError once training began
    "n_threads": integer(1),
    # rf_gate: the forest learns from the windows scoring above threshold x gate_factor; at 0
    # or below every window went to it (the threshold's own gate, 1.0, is the default)
    "gate_factor": positive_finite(),
    # the Telemanom / dynamic thresholds: z steps of 0 or below were a ZeroDivisionError or
    # IndexError traceback; a decrease share outside [0, 1) pruned every sequence (2) or none
    # (-1); at most 0 sequences never alarmed
    "z_step": positive_finite(),
    "min_percent_decrease": fraction(),
    "max_sequences": integer(1),
    # their EWMA span (the window thresholds' too), error buffer, warmup rows and error-scale
    # check: below 0 each acted as 0 (off) without a word
    "smoothing": nonnegative_finite(),
    "error_buffer": integer(0),
    "warmup": integer(0),
    "error_scale": nonnegative_finite(),
    "min_error": nonnegative_finite(),
    # the GRU's per-series embedding (several series): a negative one was torch's traceback
    "series_embedding_dim": integer(0),
    # the channels an alarmed row names: 0 or a string was refused by the model's constructor,
    # once the mission had been read
    "top_channels": integer(1),
    # a checkpoint's or early stopping's value to watch: one no run logs stopped the run after
    # its first validation epoch (ModelCheckpoint) or was warned of and never watched
    "monitor": (monitor_ok, "must be a value the run logs while it trains: "
                "val/loss, train/loss, val_provisional/<metric>, a model of one's own's name; "
                "not a final val/<metric> (docs/metrics_output.md)"),
    "devices": (_devices_ok, "must be a count >= 1, -1 (all), 'auto' or a list of devices"),
    "chunk_rows": (_chunk_rows_ok, CHUNK_ROWS_RULE),
    "score_chunk_rows": (_chunk_rows_ok, CHUNK_ROWS_RULE),
}


#: settings that take one of a few words, by names no other setting has (the code's own
#: constants hold the same words: test_unknown_keys.py compares them); checked here before the
#: data are read, where the model or data module refused them once the mission had been read,
#: as ``column 'cell': value 'lstn'``
CHOICES: dict[str, Rule] = {
    "cell": one_of("gru", "lstm"),
    "loss": one_of("smooth_l1", "mse"),
    "objective": one_of("reconstruct", "forecast"),
    "inputs": one_of("values+telecommands", "values"),
    "detrend_stat": one_of("mean", "clipped_mean", "median"),
    "scaling": one_of("robust", "none"),
    "channel_scores": one_of("evidence", "probability"),
    "label_channels": one_of("all", "target"),
    "aggregate": one_of("max", "mean"),
    "spread_on": one_of("moving", "all"),
    "watch": one_of("sending", "all"),
    "check": one_of("cross_fit", "none"),
}
RULES.update(CHOICES)

#: switches: read as true or false, where a word (``test=maybe``, ``model.novelty=off``) was
#: taken as true without a word (Lightning's ``deterministic`` also takes ``warn``, and
#: ``save_last`` ``link``: not here)
SWITCHES = (
    "test", "print_config", "fit", "hard", "inverse", "novelty", "per_series", "series_batches",
    "share_learners", "shuffle", "strict", "sync_batchnorm", "use_distributed_sampler",
    "enable_progress_bar", "auto_insert_metric_name", "default_hp_metric", "alarm_feature",
    # full tracebacks: any other value (debug_errors=2) was taken as true and skipped the
    # command line's checks
    "debug_errors",
)
RULES.update({name: ((lambda v: isinstance(v, bool)), "must be true or false")
              for name in SWITCHES})

#: predict.py's ``range``: the test range, the validation range (train.py's val/ numbers), all
RANGES = ("test", "val", "all")

#: rules of the jobs' own top-level settings, by their full name (a nested key of the same
#: name, in a model's or a reader's options, is not theirs)
TOP_LEVEL_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    # the same check on every route (predict.py, esa-predict, esa_lightning.predict): no
    # command named
    "range": (lambda v: v in RANGES, "must be test, val or all: the rows to score (the data's "
              "test range, its validation range, or every row)"),
    # predict.py's: a misspelt one was refused only once the run folder was made
    "device": (device_ok, "must be a device torch knows: cpu, cuda, cuda:1, mps..."),
    # merge.py's: refused by the job once its run folder was made
    "detectors": (lambda v: isinstance(v, list | tuple | ListConfig) and len(v) >= 2,
                  "must be a list of at least two detector folders: detectors=[PATH,PATH]"),
    # train.py's: a name no run logs was warned of (a -m sweep) only after training
    "optimized_metric": (metric_ok, "must be a metric the run writes: val/<metric> or "
                         "test/<metric>, F-scores as EW_F_0.50 (docs/metrics.md)"),
    # the readers' (and the generator's), refused once the data were read or generated
    "data.period": (period_ok, "must be a positive time period (e.g. 30s)"),
    "data.generate.days": positive_finite(),
    # an empty list was refused by the reader as "channel selection is empty", once the data
    # were being read; a name alone is left to the reader, which knows the channels (a channel
    # may be named like a word: ball, Target) and names the words beside them when it lacks it
    "data.channels": (channels_ok, f"must be {', '.join(CHANNEL_WORDS[:-1])} or "
                      f"{CHANNEL_WORDS[-1]}, or a list of channel names: data.channels=[NAME,...]"),
    # datamodule=rows's bound on the rows read per range (null: every row); refused by the
    # datamodule once the data were read
    "datamodule.max_rows": (integer(1)[0], "must be null (every row) or a whole number >= 1"),
    # train.py's labels, shown in TensorBoard's HParams tab and a sweep's summary.csv
    "tags": (tags_ok, "must be a list of labels (tags=[baseline,q3]) or one label (tags=baseline)"),
}

#: why a checkpoint ``dirpath`` is refused
CHECKPOINT_DIRPATH = (
    "not a setting: each component's checkpoints go to <run folder>/checkpoints/<component>/, "
    "where ckpt_path=last and the detector artifact find them; to keep them elsewhere, put the "
    "run there (hydra.run.dir=DIR; the Python API's output_dir=), or leave dirpath out")
#: the node of a component's own checkpoint settings, which may hold no ``_target_``
CHECKPOINT_NODE = "callbacks.model_checkpoint"

#: settings of a node checked by what the node is: a post-processing rule's ``kind`` (any
#: name under ``post_processing``) or a callback's ``_target_`` class; each was refused by
#: the rule's or callback's constructor, after the data were read
NODE_RULES: dict[str, dict[str, Rule]] = {
    "frozen": {"factor": ((lambda v: _number(v) and math.isfinite(v) and v >= 1),
                          "must be a finite number >= 1")},
    "gap_close": {"tolerance": nonnegative_finite()},
    "channel_norm": {"min_scale": share()},
    "ESAValidationMetrics": {"every_n_epochs": integer(1), "figure_every_n_epochs": integer(1),
                             "max_rows": integer(1)},
    # read by no one: the run puts each component's checkpoints where resume, the run guard
    # and the artifact look for them (jobs.train.prepare_component)
    "ModelCheckpoint": {"dirpath": ((lambda v: False), CHECKPOINT_DIRPATH)},
}
#: the combiner's gap closing (``combiner.gap_close``, no ``kind``) is checked as a rule's
NODE_RULES["combiner.gap_close"] = NODE_RULES["gap_close"]

_MISSING = object()

#: list-valued top-level settings checked as a whole (``devices`` and merge.py's
#: ``detectors`` too)
LISTS = ("data.channels", "tags")

#: a model's settings (the keys of a ``model`` node: ``model.seed``,
#: ``components.gru_ae.model.seed``) that null leaves without a value: it was int(None) or
#: float(None), a TypeError traceback from Hydra's instantiation (or, for ``quantile``, from
#: torch after the whole fit). The run's own top-level ``seed``, whose null is Lightning's
#: random seed, is not one of them
MODEL_NOT_NULL = frozenset({
    "seed", "n_std", "min_std", "quantile", "min_scale", "learning_rate", "l2_regularization",
    "max_iter", "max_rows", "max_leaf_nodes", "min_samples_leaf", "top_channels",
    "max_windows", "score_batch_size", "k", "n_components", "windows",
})

#: config branches that hold no settings of ours (Hydra's own, paths) or only search-space
#: expressions such as ``choice(16, 32)`` (``optuna``: sweep.py checks each trial's values)
SKIPPED = ("hydra", "paths", "optuna")


#: the jobs' own top-level settings that hold a value (null is no file, range or count)
NOT_NULL = (
    "ckpt", "range", "chunk_rows", "report_block", "max_figures", "device", "predictions",
    "algorithm", "detectors", "experiment_name",
)


def check_settings(cfg: DictConfig) -> None:
    """Refuse the first unset mandatory value, NaN or out-of-range setting of ``cfg``."""
    check_not_null(cfg, cfg.get("task_name"))
    check_leaves(cfg)


def check_not_null(cfg: DictConfig, task_name: Any) -> None:
    """Refuse a job's own top-level setting (``NOT_NULL``) set to null; one set to an
    interpolation is left to the job, which resolves it (``jobs.resolved_settings``)."""
    for key in NOT_NULL:
        if (key in cfg and not OmegaConf.is_interpolation(cfg, key)
                and not OmegaConf.is_missing(cfg, key) and cfg[key] is None):
            raise ESAInputError(f"{key}=null: needs a value (see conf/{task_name}.yaml)")


def check_leaves(cfg: DictConfig, only: list[str] | None = None) -> None:
    """Refuse the first setting of ``cfg`` that breaks ``check_settings``' rules for a leaf (a
    value given, not null where it needs one, no NaN, its node's rule, its own rule); ``only``:
    just the settings at those dotted keys and under them, and a list checked as a whole that
    holds one (``data.channels[1]``: ``data.channels``): the values interpolations resolved
    to (``resolved_settings``), the nodes' kinds read from the whole of ``cfg``."""
    leaves = list(_leaves(cfg, ""))
    nodes = _node_kinds(leaves)
    for key, value in leaves:
        if only is not None and not any(key == k or key.startswith((f"{k}.", f"{k}["))
                                        or k.startswith((f"{key}.", f"{key}[")) for k in only):
            continue
        if value is _MISSING:
            raise ESAInputError(f"{key}: no value given; set {key}=... on the command line")
        parent, _, name = key.rpartition(".")
        if value is None and name in MODEL_NOT_NULL and parent.rpartition(".")[2] == "model":
            raise ESAInputError(f"{key}=null: needs a value (see conf/model/)")
        if isinstance(value, float) and math.isnan(value):
            raise ESAInputError(f"{key}={value}: must be a number, not NaN")
        parent_rules = NODE_RULES.get(nodes.get(parent, ""), {})
        if name in parent_rules and value is not None and not parent_rules[name][0](value):
            raise ESAInputError(f"{key}={_show(value)}: {parent_rules[name][1]}")
        check_setting(key, value)


def _node_kinds(leaves: list[tuple[str, Any]]) -> dict[str, str]:
    """{node's dotted key: what it is} for ``NODE_RULES``: a post-processing rule's ``kind``,
    a callback's ``_target_`` class name, or the combiner's ``combiner.gap_close`` itself."""
    kinds = {}
    for key, value in leaves:
        parent, _, name = key.rpartition(".")
        if not isinstance(value, str):
            continue
        if name == "kind" and parent.rpartition(".")[0].rpartition(".")[2] == "post_processing":
            kinds[parent] = value
        elif name == "_target_":
            kinds[parent] = value.rpartition(".")[2]
    kinds["combiner.gap_close"] = "combiner.gap_close"
    for key, _ in leaves:  # components.<name>.callbacks.model_checkpoint: merged over the run's
        parent = key.rpartition(".")[0]
        if parent == CHECKPOINT_NODE or parent.endswith(f".{CHECKPOINT_NODE}"):
            kinds.setdefault(parent, "ModelCheckpoint")
    return kinds


def check_setting(key: str, value: Any) -> None:
    """Refuse ``value`` of the setting ``key`` (its dotted name) that breaks its rule, naming
    the setting, the value and what it must be."""
    rule = TOP_LEVEL_RULES.get(key) or RULES.get(key.rsplit(".", 1)[-1])
    if rule is None or value is None:
        return
    ok, requirement = rule
    if not ok(value):
        raise ESAInputError(f"{key}={_show(value)}: {requirement}")


def _show(value: Any) -> str:
    """``value`` as the refusal quotes it, cut as ``errors.quoted`` cuts a user-typed value."""
    if isinstance(value, ListConfig):
        return quoted(OmegaConf.to_container(value))
    return quoted(value) if isinstance(value, str) else str(value)


def child_key(prefix: str, key: Any, item: bool = False) -> str:
    """The full key of ``prefix``'s child ``key`` (``item``: a list's) as refusals and docs name
    it, as OmegaConf does: ``model.lr``, a list's item ``data.channels[1]`` (not ``.1``)."""
    if item:
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf set to a literal (interpolations are skipped: they
    resolve to values checked where they are defined); a list's item is named ``key[i]``."""
    if isinstance(node, DictConfig):
        items = [(str(k), k) for k in node.keys()]
    elif isinstance(node, ListConfig):
        items = [(str(i), i) for i in range(len(node))]
    else:
        return
    for name, key in items:
        path = child_key(prefix, name, isinstance(node, ListConfig))
        if not prefix and name in SKIPPED:
            continue
        if OmegaConf.is_interpolation(node, key):
            continue
        if OmegaConf.is_missing(node, key):
            yield path, _MISSING
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig | ListConfig):
            # a list of devices, merge.py's detectors, the channels: the list-valued settings
            # with a rule
            if name == "devices" or (not prefix and name == "detectors") or path in LISTS:
                yield path, child
            else:
                yield from _leaves(child, path)
        else:
            yield path, child._value()


def refuse_shadowed_trainer_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """A run of several components (``components``: ``experiment=esa_full``) trains each with
    the top-level ``trainer`` merged under its own ``components.<name>.trainer``: a top-level
    key that a component sets too (``max_epochs``) never reaches that component. Given on the
    command line (``overrides``), such a key is refused naming the component keys to set
    instead, unless each of those is given too. Top-level keys no component sets
    (``devices``, ``accelerator``, ``limit_train_batches``...) reach every component."""
    components = cfg.get("components")
    if not components:
        return
    given: dict[str, str] = {}
    for override in overrides:
        key, sep, value = override.lstrip("+").partition("=")
        if sep and not override.startswith("~"):
            given[key.strip()] = value.strip()
    for key, value in given.items():
        if not key.startswith("trainer."):
            continue
        name = key.removeprefix("trainer.")
        own = [
            f"components.{component}.trainer.{name}"
            for component, spec in components.items()
            if OmegaConf.select(spec, f"trainer.{name}", default=_MISSING) is not _MISSING
        ]
        instead = [k for k in own if k not in given]
        if instead:
            raise ESAInputError(
                f"{key}={value}: experiment {cfg.get('experiment_name')} trains each component "
                f"with its own trainer, whose {name} the top-level one never reaches: set "
                f"{' '.join(f'{k}={value}' for k in instead)} instead"
            )
