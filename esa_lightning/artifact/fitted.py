"""A loaded component's fitted state that training never writes: a threshold that is NaN or
infinite (``jobs.train.refuse_detector_that_cannot_alarm`` refuses to write such a detector: it
could never alarm), a threshold's smoothing span (``score_span``) that is not finite, network
weights (parameters) holding NaN or infinity (every score NaN), and what a model's own
``fitted_state_problem`` names (a channel ensemble's kernel lengths or group indices, global_std's
n_std, mean and std). Buffers whose NaN means "not fitted here" (a channel without a flat
stretch, a peak height never fitted) are left alone."""

from __future__ import annotations

from pathlib import Path

import torch

from esa_lightning.errors import ESAInputError

#: buffers (by their last name) that a fitted component always holds as finite numbers
FINITE_BUFFERS = ("threshold", "score_span")


def check_fitted_state(module: torch.nn.Module, name: str, source: str | Path) -> None:
    """Refuse ``module`` (component ``name``, read from ``source``) when a threshold, its
    smoothing span or a network weight is NaN or infinite, or when its ``fitted_state_problem``
    (if it has one) names a problem, naming the tensor."""
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
    problem = getattr(module, "fitted_state_problem", lambda: None)()
    if problem is not None:
        raise ESAInputError(f"component {name!r}: {problem}; restore it or retrain", path=source)
