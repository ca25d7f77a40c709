"""Rows a fitted part read, recorded in an int64 buffer, so that a loaded artifact's size that
training could never have used is refused at load (``artifact.fitted``): a GRU window longer
than its training rows (scoring pads a shorter range up to the window: 10**9 rows ran out of
memory), a stuck-channel rule's ``quiet`` rows beyond its fit range, a channel ensemble's
pooled row (``window``, ``step``, ``pool``) longer than its training range or pooled row stride
(``pool_stride`` x ``step``) longer than the rows it featurised. Artifacts and checkpoints
written before the record hold none: they load with the buffer at 0 (not recorded), which
bounds nothing."""

from __future__ import annotations

from typing import Any, ClassVar


class RecordsRows:
    """Mixin of an ``nn.Module`` holding the buffers named in ``ROW_RECORDS``: a state_dict
    written before them loads, each left at the 0 it was built with."""

    ROW_RECORDS: ClassVar[tuple[str, ...]] = ()

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[misc]
        missing_keys = args[2]  # local_metadata, strict, missing_keys, ...
        for name in self.ROW_RECORDS:
            if prefix + name in missing_keys:
                missing_keys.remove(prefix + name)


def is_row_record(module: Any, key: str) -> bool:
    """Whether ``key`` of ``module``'s state_dict names a row record (in ``ROW_RECORDS`` of the
    submodule holding it): a state_dict written before it loads without it."""
    owner, _, name = key.rpartition(".")
    try:
        part = module.get_submodule(owner)
    except AttributeError:
        return False
    return isinstance(part, RecordsRows) and name in part.ROW_RECORDS
