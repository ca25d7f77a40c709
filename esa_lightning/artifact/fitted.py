"""A loaded component's fitted state that training never writes: a threshold that is NaN or
infinite (``jobs.train.refuse_detector_that_cannot_alarm`` refuses to write such a detector: it
could never alarm), a threshold's smoothing span (``score_span``) that is not finite, network
weights (parameters) holding NaN or infinity (every score NaN), and what a model's own
``fitted_state_problem`` names, or one of its submodules' (a channel ensemble's kernel lengths,
group indices or feature mask, global_std's n_std, mean and std, a window baseline's
n_fit_windows, a gap width, the stuck-channel rule's limit and quiet rows (at most factor
times its recorded fit rows), a window threshold's score_span other than its smoothing, a GRU
window longer than its recorded training rows, a channel ensemble's pooled row longer than its
recorded training rows or pooled row stride longer than the rows it featurised:
``postprocessing.fit_rows``). Buffers whose NaN
means "not fitted here" (a channel without a flat stretch, a peak height never fitted) are left
alone."""

from __future__ import annotations

from pathlib import Path

import torch

from esa_lightning.errors import ESAInputError

#: buffers (by their last name) that a fitted component always holds as finite numbers
FINITE_BUFFERS = ("threshold", "score_span")


def check_fitted_state(module: torch.nn.Module, name: str, source: str | Path) -> None:
    """Refuse ``module`` (component ``name``, read from ``source``) when a threshold, its
    smoothing span or a network weight is NaN or infinite, or when its or a submodule's (a post
    rule's) ``fitted_state_problem`` names a problem, naming the tensor."""
    for key, value in module.named_buffers():
        last = key.rsplit(".", 1)[-1]
        if last not in FINITE_BUFFERS or not value.is_floating_point():
            continue
        if not bool(torch.isfinite(value).all()):
            shown = value.flatten()[:4].tolist()
            why = "not a finite number"
            if last == "threshold":
                why = "this detector could never alarm"
            raise ESAInputError(
                f"component {name!r}: the fitted {key} is {shown}: {why}; restore it or retrain",
                path=source,
            )
    for key, value in module.named_parameters():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ESAInputError(
                f"component {name!r}: the weight {key} holds NaN or infinity, not a finite "
                "number; restore it or retrain",
                path=source,
            )
    for part, sub in module.named_modules():
        problem = getattr(sub, "fitted_state_problem", lambda: None)()
        if problem is not None:
            where = f"{part}: " if part else ""
            raise ESAInputError(f"component {name!r}: {where}{problem}; restore it or retrain",
                                path=source)
