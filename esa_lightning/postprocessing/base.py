"""The post-rule abstraction: fitted after training, owned by the model it post-processes.

A ``PostRule`` is an ``nn.Module`` and a Lightning ``Callback`` at once (anomalib's
``PostProcessor`` pattern): its fitted numbers are buffers that travel in the model's
``state_dict``, and the model returns it from ``configure_callbacks`` so that it is fitted in
``on_train_end`` on every rank (identical weights and data give identical fits, so no collective
is needed). Rules are configured as a nested ``post_processing`` node of the model's config,
``{name: {kind: KIND, **settings}}``, a plain JSON mapping that travels in the artifact's
hyper-parameters; ``build_rules`` turns it into modules of the rule classes its model lists
(``DetectorModule.POST_RULES``), so an artifact never names code to run, and the kinds a model
takes are its own list, whatever else a process has imported. Rules are fitted and applied in
the order of their ``stage`` (a threshold before the gate judging its alarms, metas before the
event head reading them), never in the order of a mapping's keys, which JSON files do not keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

import lightning as L
import torch
from torch import nn

from esa_lightning.errors import ESAInputError

#: the config key of a rule's settings as the rule names it in its errors: it does not know the
#: name it is listed under, which ``build_rules`` puts in place of ``<rule>``
RULE_KEY = "model.post_processing.<rule>"
#: the rows a rule's fit scores at a time by default (its ``chunk_rows``: ``check_chunk_rows``)
CHUNK_ROWS = 262_144
#: why a model takes one rule of a kind (``check_kinds``), unless the kind says more
#: (``PostRule.single``): every family applies one, and a rule is a Lightning callback, whose
#: state Lightning keys by its class: two rules of one class would share that key in checkpoints
ONE_OF_A_KIND = ("a model applies one rule of a kind, and a rule is a Lightning callback whose "
                 "checkpoint state is kept under its class's name: two would share it")


def check_chunk_rows(value: Any) -> int:
    """A rule's ``chunk_rows`` (the rows its fit scores at a time, memory only; 0: the whole
    range at once) if it is an integer >= 0, else a one-line error naming the key."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ESAInputError(
            "must be an integer >= 0 (0: the whole range at once)",
            column=f"{RULE_KEY}.chunk_rows",
            value=value,
        )
    return value


def check_rule_settings(**settings: Any) -> None:
    """Refuse a rule's setting that train.py's rule of its name (``settings.RULES``) refuses,
    naming its key under ``RULE_KEY``: a rule built from an artifact's hyper-parameters (an
    edited detector.json) is then refused at load as its config is before training. None is
    left to the rule (an optional setting)."""
    from esa_lightning.settings import RULES

    for key, value in settings.items():
        ok, requirement = RULES[key]
        if value is not None and not ok(value):
            raise ESAInputError(requirement, column=f"{RULE_KEY}.{key}", value=value)


class PostRule(nn.Module, L.Callback):
    """Fit on training/validation data (``fit``), then applied by its model when scoring."""

    kind: ClassVar[str]
    #: fitting / applying order among a model's rules (lower first)
    stage: ClassVar[int] = 0
    #: settings that change only speed or memory, never what is fitted or decided beyond
    #: floating point summation order (``DetectorModule.RUNTIME_SETTINGS``)
    RUNTIME_SETTINGS: ClassVar[frozenset[str]] = frozenset()
    #: why a model takes at most one rule of this kind, where there is more to say than
    #: ``ONE_OF_A_KIND`` (``check_kinds`` refuses a second of any kind, naming both keys)
    single: ClassVar[str | None] = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], context: Mapping[str, Any]) -> PostRule:
        """Build from config ``settings``; ``context`` holds what the model knows (n_series)."""
        return cls(**settings)

    def fit(self, model: Any, datamodule: Any) -> None:
        """Fit on ``datamodule``'s training/validation ranges (never its test range)."""

    def fit_in_order(self, model: Any, datamodule: Any) -> Any:
        """``fit`` as one of its model's rules fitted all in their order (``on_train_end``,
        ``fit_rules``), the rules after it fitted next: a rule may hand the next one what its
        fit computed (the gate's scoring to the gap rule: ``fit_pass``). By default ``fit``."""
        return self.fit(model, datamodule)

    def summary_note(self) -> str | None:
        """What the run's closing summary says of this fitted rule (one that will never alarm,
        say), or None: nothing to say."""
        return None

    #: what a rule fitted before this one handed it for its next fit only (``hand``)
    handed: Any = None

    def hand(self, handed: Any) -> None:
        """Give the next ``fit`` what a rule fitted before this one scored of the fit range
        (``fit_pass``): read there where it is still the model's scoring of that mission,
        dropped either way."""
        self.handed = handed

    def release(self) -> None:
        """Drop what a rule fitted before handed this one for its fit (``fit_in_order``), read
        or not: at the end of every ordered fit, and on an error in training."""
        self.handed = None

    @property
    def is_fitted(self) -> bool:
        return True

    @property
    def context_rows(self) -> int:
        """Rows on each side of a row that this rule adds to its model's receptive field."""
        return 0

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.datamodule is None:
            raise RuntimeError(f"{type(self).__name__} needs a datamodule with a `mission`")
        self.fit_in_order(pl_module, trainer.datamodule)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.release()  # a fit after the one that handed it over may never come

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Leave out the callback state Lightning keeps of a rule (its ``state_dict`` under its
        ``state_key`` in ``checkpoint["callbacks"]``): a second copy of the tensors its model's
        ``state_dict`` holds (``post_rules.<rule>.<tensor>``), which a resume loads them from.
        A checkpoint written with the copy still loads (``align_rule_checkpoint``)."""
        callbacks = checkpoint.get("callbacks")
        if isinstance(callbacks, dict):
            callbacks.pop(self.state_key, None)

    def save_extra(self, folder: Path, name: str) -> None:
        """Write non-tensor fitted state (sklearn objects, via skops) into ``folder``."""

    def load_extra(self, folder: Path, name: str) -> None:
        """Read what ``save_extra`` wrote."""

    def checkpoint_extra(self) -> bytes | None:
        """Non-tensor fitted state as bytes for Lightning checkpoints (skops, never pickle)."""
        return None

    def restore_checkpoint_extra(self, data: bytes) -> None:
        """Read what ``checkpoint_extra`` gave."""


R = TypeVar("R", bound="PostRule")


def fitted_rule(rules: Iterable[PostRule], cls: type[R] | tuple[type, ...]) -> R | None:
    """The first of ``rules`` that is a ``cls``, when it is fitted (``is_fitted``); else None."""
    rule = next((r for r in rules if isinstance(r, cls)), None)
    return rule if rule is not None and rule.is_fitted else None


def rule_names(tensors: Iterable[str]) -> set[str]:
    """The post rules (their names under ``post_processing``) that the ``state_dict`` names
    ``tensors`` hold tensors of (``post_rules.<rule>.<tensor>``)."""
    return {n.split(".")[1] for n in tensors if n.startswith("post_rules.") and n.count(".") > 1}


def whole_rule_differences(
    expected: Mapping[str, Any], state: Mapping[str, Any]
) -> tuple[set[str], set[str]]:
    """(the rules whose tensors a model's ``expected`` state holds and a checkpoint's ``state``
    holds none of, the rules the other way round): a rule one side was built without."""
    mine, theirs = rule_names(expected), rule_names(state)
    return mine - theirs, theirs - mine


def incomplete_rules(expected: Mapping[str, Any], state: Mapping[str, Any]) -> set[str]:
    """The rules both a model's ``expected`` state and a checkpoint's ``state`` hold tensors of
    where the checkpoint holds some of the model's tensors of the rule but not all, and none the
    model's rule lacks: a rule class that gained a tensor since the checkpoint was written (the
    stuck-channel rule's ``fit_rows``)."""
    def of(tensors: Iterable[str], rule: str) -> set[str]:
        return {n for n in tensors if rule_names([n]) == {rule}}

    both = rule_names(expected) & rule_names(state)
    return {rule for rule in both if of(state, rule) < of(expected, rule)}


class RuleDifferences(NamedTuple):
    """How the post rules of a checkpoint's ``state`` differ from those of a model's
    ``expected`` state (``rule_differences``)."""

    #: the rules the model holds tensors of and the checkpoint none of
    added: set[str]
    #: the rules the checkpoint holds tensors of and the model none of
    dropped: set[str]
    #: the rules the checkpoint holds only some of the model's tensors of (``incomplete_rules``)
    incomplete: set[str]


def rule_differences(expected: Mapping[str, Any], state: Mapping[str, Any]) -> RuleDifferences:
    """``whole_rule_differences`` and ``incomplete_rules`` of ``expected`` and ``state``."""
    added, dropped = whole_rule_differences(expected, state)
    return RuleDifferences(added, dropped, incomplete_rules(expected, state))


def align_rule_state(
    state: Mapping[str, Any],
    expected: Mapping[str, Any],
    differences: RuleDifferences | None = None,
) -> dict[str, Any]:
    """A checkpoint's ``state`` for the model whose state is ``expected`` where one of them was
    built with a post rule the other was built without: a rule the checkpoint lacks keeps the
    model's tensors (unfitted: every rule is fitted after training, ``on_train_end`` or
    ``fit_post_processing``), a rule the model lacks is left out; a rule the checkpoint holds
    only some tensors of (``incomplete_rules``) keeps the model's tensors, all of them, like a
    rule it lacks. Every other tensor is ``state``'s, as it is, for a strict load to judge.
    ``differences``: their ``rule_differences`` where the caller has them already."""
    if differences is None:
        differences = rule_differences(expected, state)
    added = differences.added | differences.incomplete
    kept = {n: v for n, v in state.items()
            if not rule_names([n]) & (differences.dropped | added)}
    kept.update({n: v for n, v in expected.items() if rule_names([n]) & added})
    return kept


def align_rule_checkpoint(checkpoint: dict[str, Any], model: Any) -> None:
    """``align_rule_state`` on the ``state_dict`` of the Lightning ``checkpoint`` that ``model``
    loads (its ``on_load_checkpoint``), in place. A rule is a callback too, and a checkpoint
    written before ``PostRule.on_save_checkpoint`` left it out holds a copy of its tensors
    under its class (``checkpoint["callbacks"]``), which Lightning would load into the rule
    after the model's ``state_dict``: every rule's copy is dropped, the ``state_dict`` alone
    holding its tensors, so a rule the checkpoint lacks by name does not take that of a rule
    of its class under another name. A rule the checkpoint holds only some tensors of loses
    its non-tensor state too (it stays unfitted until it is fitted after training, as a rule
    the checkpoint lacks). The copy of a rule the model lacks (``differences.dropped``) goes
    too (``dropped_rule_copies``): Lightning warned, asking for its callback."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping):
        return
    expected = model.state_dict()
    differences = rule_differences(expected, state)
    callbacks = checkpoint.get("callbacks")
    if isinstance(callbacks, dict):
        for key in dropped_rule_copies(callbacks, state, differences.dropped,
                                       getattr(model, "POST_RULES", ())):
            callbacks.pop(key)
    checkpoint["state_dict"] = align_rule_state(state, expected, differences)
    for rule in model.post_rules.values():
        (checkpoint.get("callbacks") or {}).pop(rule.state_key, None)
    for name in differences.incomplete:
        (checkpoint.get("post_rules_extra") or {}).pop(name, None)


def dropped_rule_copies(
    callbacks: Mapping[Any, Any],
    state: Mapping[str, Any],
    dropped: Iterable[str],
    classes: Iterable[type[PostRule]],
) -> set[Any]:
    """The keys of a checkpoint's ``callbacks`` (the callbacks' states) that hold Lightning's
    copy of a rule of ``dropped`` (rules the checkpoint's ``state`` holds, its model not): the
    state key of a rule class of ``classes`` (the family's ``POST_RULES``; a rule's state key is
    its class's name), holding that rule's tensors in ``state``, every one by name and value,
    and nothing else. Any other callback's state is not a rule's copy."""
    keys = {cls.__qualname__ for cls in classes}
    copies = set()
    for name in dropped:
        prefix = f"post_rules.{name}."
        tensors = {n[len(prefix):]: v for n, v in state.items() if n.startswith(prefix)}
        for key, value in callbacks.items():
            if key in keys and isinstance(value, Mapping) and _same_tensors(value, tensors):
                copies.add(key)
    return copies


def _same_tensors(a: Mapping[Any, Any], b: Mapping[str, Any]) -> bool:
    """Whether ``a`` and ``b`` hold the same tensors under the same names (none: False)."""
    if not b or set(a) != set(b):
        return False
    return all(isinstance(a[k], torch.Tensor) and isinstance(b[k], torch.Tensor)
               and a[k].shape == b[k].shape and a[k].dtype == b[k].dtype
               and torch.equal(a[k], b[k]) for k in b)


def fit_rules(model: Any, rules: Iterable[PostRule], datamodule: Any) -> None:
    """Fit ``rules`` (``model``'s, in their order) on ``datamodule``; whatever one handed the
    next and was not read (a later fit failed) is dropped at the end."""
    rules = list(rules)
    try:
        for rule in rules:
            rule.fit_in_order(model, datamodule)
    finally:
        for rule in rules:
            rule.release()


def check_kinds(
    spec: Mapping[str, Mapping[str, Any] | None] | None,
    *,
    takes: Iterable[type[PostRule]],
    model: str,
) -> None:
    """Refuse a rule of ``spec`` whose kind is outside ``takes`` (the rule classes ``model``
    applies), naming the setting and the model, and a second rule of one kind, naming both
    keys (``ONE_OF_A_KIND``, or the kind's ``single``): ``build_rules``'s first check, which
    train.py also runs before the data are read (``jobs.common.refuse_unimportable_targets``).
    Two rules of one kind (two ``meta_heads`` under two keys) were built, each refitting what
    the other had, and shared their callback state's key (their class's name)."""
    classes = {cls.kind: cls for cls in takes}
    kinds = sorted(classes)
    first: dict[str, str] = {}  # kind -> the first key listing it
    for name, entry in (spec or {}).items():
        if not isinstance(entry, Mapping):  # None: left out; anything else: build_rules's
            continue
        kind = entry.get("kind")
        if kind not in kinds:
            raise ESAInputError(
                f"{model} applies no post-processing rule of this kind; choose one of {kinds}",
                column=f"model.post_processing.{name}.kind",
                value=kind,
            )
        if kind in first:
            raise ESAInputError(
                f"a second {kind} rule after model.post_processing.{first[kind]}: list one "
                f"({classes[kind].single or ONE_OF_A_KIND})",
                column=f"model.post_processing.{name}",
            )
        first[kind] = name


def build_rules(
    spec: Mapping[str, Mapping[str, Any] | None] | None,
    *,
    takes: Iterable[type[PostRule]],
    model: str,
    **context: Any,
) -> nn.ModuleDict:
    """``{name: {kind, **settings}}`` → rules ordered by ``stage`` (ties: as listed); ``None``
    entries are left out. A kind outside ``takes`` (the rule classes ``model`` applies) is
    refused, naming the setting and the model, and so is a second rule of a kind, naming both
    keys (``check_kinds``); a rule's refusal of a setting names the rule's key (``RULE_KEY`` in its
    error becomes ``model.post_processing.<name>``)."""
    check_kinds(spec, takes=takes, model=model)
    kinds = {cls.kind: cls for cls in takes}
    built: list[tuple[str, PostRule]] = []
    for name, entry in (spec or {}).items():
        if entry is None:
            continue
        settings = dict(entry)
        kind = settings.pop("kind", None)
        try:
            built.append((name, kinds[kind].from_settings(settings, context)))
        except TypeError as exc:
            raise ESAInputError(
                f"bad settings for {kind} ({exc})", column=f"model.post_processing.{name}"
            ) from None
        except ESAInputError as exc:
            if exc.column is None or RULE_KEY not in exc.column:
                raise
            column = exc.column.replace(RULE_KEY, f"model.post_processing.{name}")
            raise ESAInputError(exc.reason, column=column, value=exc.value) from None
    return nn.ModuleDict(sorted(built, key=lambda item: item[1].stage))


def plain_spec(spec: Mapping[str, Any] | None) -> dict[str, dict[str, Any] | None]:
    """A JSON-ready copy of a ``post_processing`` node (lists for tuples)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return {str(k): None if v is None else plain(v) for k, v in (spec or {}).items()}
