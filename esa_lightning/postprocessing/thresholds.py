"""Score → alarm thresholds, fitted on nominal validation windows only (never on test data).

- ``percentile_threshold``: the q-th percentile of nominal scores (reference pipeline B, q=99).
- ``dynamic_threshold``: Telemanom's non-parametric dynamic threshold with pruning (Hundman et
  al. 2018): EWMA-smoothed errors, ε = μ + zσ with z chosen to maximise
  (Δμ/μ + Δσ/σ) / (|E_anom| + |E_seq|²), then weak anomalous sequences pruned.
- ``f05`` (``ThresholdCalibration(method="f05")``): uses the validation LABELS (validation is
  not test): among quantiles of all validation window scores, the threshold whose row alarms
  (the model's own window → row mapping) give the best corrected event-wise F0.5
  (``metrics.esa_scores``, Anomaly + Rare Event, over the validation range) wins; ties go to the
  median of the tied thresholds. A series whose validation range holds no labeled event falls
  back to the ``q``-th percentile of its nominal windows (logged).
- ``ThresholdCalibration``: a callback writing the threshold into the model's buffer at the end of
  training. Every rank computes the same number from the same (unsharded) validation range, so
  it needs no collective under DDP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightning as L
import numpy as np

from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import labeled_window_mask, nominal_rows
from esa_lightning.errors import ESAInputError

log = logging.getLogger(__name__)

METHODS = ("percentile", "dynamic", "f05")
F05_CATEGORIES = ["Anomaly", "Rare Event"]  # what the reported EW_F_0.50 counts


def percentile_threshold(scores: np.ndarray, q: float = 99) -> float:
    """The ``q``-th percentile of finite ``scores``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if len(s) == 0:
        raise ValueError("no finite scores to fit a threshold on")
    return float(np.percentile(s, q))


def runs(mask: np.ndarray) -> np.ndarray:
    """int [K, 2]: (start, end) inclusive of each maximal run of True in ``mask``."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return np.stack([edges[0::2], edges[1::2] - 1], axis=1) if len(edges) else np.zeros((0, 2), int)


@dataclass
class DynamicThreshold:
    threshold: float  # ε (the median of the chunk thresholds when ``window`` split the errors)
    alarm: np.ndarray  # bool [T] after pruning
    smoothed: np.ndarray  # float [T] the EWMA-smoothed errors ε applies to
    z: float  # z of ε (median over chunks)


def _dilate(mask: np.ndarray, buffer: int) -> np.ndarray:
    """``mask`` with every True spread to the ``buffer - 1`` rows on each side (Telemanom's
    error buffer); ``buffer <= 1`` leaves it as it is."""
    if buffer <= 1 or not mask.any():
        return mask
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(mask.astype(np.uint8), size=2 * buffer - 1, mode="constant") > 0


def _epsilon(
    e: np.ndarray, z_values: np.ndarray, buffer: int = 0, max_sequences: int | None = None
) -> tuple[float, float]:
    mu, sd = float(e.mean()), float(e.std())
    if sd == 0 or mu == 0:
        return mu + float(z_values[-1]) * sd, float(z_values[-1])
    best, best_eps, best_z = -np.inf, mu + float(z_values[-1]) * sd, float(z_values[-1])
    for z in z_values:
        eps = mu + z * sd
        above = _dilate(e > eps, buffer)
        n_anom = int(above.sum())
        if n_anom == 0 or n_anom == len(e):
            continue
        n_seq = len(runs(above))
        if max_sequences is not None and (n_seq > max_sequences or n_anom >= 0.5 * len(e)):
            continue  # Telemanom: at most 5 sequences, under half of the window
        below = e[e <= eps]
        score = ((mu - below.mean()) / mu + (sd - below.std()) / sd) / (n_anom + n_seq**2)
        if score >= best:
            best, best_eps, best_z = score, float(eps), float(z)
    return best_eps, best_z


def prune(seq_max: np.ndarray, non_anomalous_max: float, min_percent_decrease: float) -> np.ndarray:
    """bool [K]: which anomalous sequences survive Telemanom pruning.

    Sequence maxima sorted in decreasing order, followed by the largest non-anomalous error; a
    sequence is dropped when it and every sequence below it decrease by less than
    ``min_percent_decrease`` to their successor.
    """
    seq_max = np.asarray(seq_max, dtype=np.float64)
    order = np.argsort(-seq_max, kind="stable")
    chain = np.append(seq_max[order], non_anomalous_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = (chain[:-1] - chain[1:]) / chain[:-1]
    significant = np.flatnonzero(drop >= min_percent_decrease)
    n_keep = 0 if len(significant) == 0 else int(significant[-1]) + 1
    keep = np.zeros(len(seq_max), dtype=bool)
    keep[order[:n_keep]] = True
    return keep


@dataclass(frozen=True)
class ErrorScale:
    """Telemanom's check that errors are large against the values they were made on.

    ``values``: the forecast (or reconstructed) values, aligned with the errors and in the same
    units. A chunk is judged only when its errors' spread exceeds ``ratio`` x the values' spread
    or its largest error exceeds ``ratio`` x the values' 5-95 % range, and its largest error
    exceeds ``min_error``; an error is anomalous only above ``ratio`` x that range too.
    """

    values: np.ndarray
    ratio: float = 0.05
    min_error: float = 0.0

    def floor(self, e: np.ndarray, lo: int, hi: int) -> float:
        """The least anomalous error of chunk ``[lo, hi)`` with errors ``e``; infinite (nothing
        anomalous) when the chunk's errors are too small against its values to be judged."""
        v = np.asarray(self.values[lo:hi], dtype=np.float64)
        high, low = np.percentile(v, [95, 5]) if len(v) else (0.0, 0.0)
        spread = self.ratio * (high - low)
        big = e.std() > self.ratio * v.std() or e.max() > spread
        return float(spread) if big and e.max() > self.min_error else np.inf


def _chunk_alarm(
    e: np.ndarray,
    z_values: np.ndarray,
    p: float,
    *,
    judge_from: int = 0,
    earlier: np.ndarray | None = None,
    floor: float = -np.inf,
    buffer: int = 0,
    max_sequences: int | None = None,
) -> tuple[float, float, np.ndarray]:
    """(ε, z, bool alarm) of one chunk of smoothed errors: ε chosen on the whole chunk, alarms
    kept only from position ``judge_from`` on (earlier positions were judged by earlier chunks,
    whose alarms ``earlier`` leave out of the largest non-anomalous error)."""
    eps, z = _epsilon(e, z_values, buffer, max_sequences)
    above = _dilate((e > eps) & (e > floor), buffer)
    above[:judge_from] = False
    seqs = runs(above)
    if len(seqs) == 0:
        return eps, z, above
    seq_max = np.array([e[a : b + 1].max() for a, b in seqs])
    free = ~above if earlier is None else ~above & ~earlier
    non_anom_max = float(e[free].max()) if free.any() else 0.0
    keep = prune(seq_max, non_anom_max, p)
    alarm = np.zeros(len(e), dtype=bool)
    for a, b in seqs[keep]:
        alarm[a : b + 1] = True
    return eps, z, alarm


def chunk_bounds(n: int, window: int | None, step: int | None) -> list[tuple[int, int, int]]:
    """(start, end, judged_from) of the chunks thresholded one by one, as Telemanom slides them.

    Chunks of ``window`` errors side by side (``step`` None) or starting every ``step`` errors,
    the last one reaching the end; each error is judged once, by the first chunk holding it:
    the first chunk judges all of its errors, a later one only those past the previous end.
    """
    size = n if window is None else max(1, min(n, int(window)))
    advance = size if step is None else max(1, int(step))
    starts = list(range(0, n - size + 1, advance))
    bounds, judged = [], 0
    for k, lo in enumerate(starts):
        last = k == len(starts) - 1
        hi = n if last and step is not None else lo + size
        bounds.append((lo, hi, judged))
        judged = hi
    if judged < n:  # side by side: the tail gets a chunk of its own
        bounds.append((judged, n, judged))
    return bounds


def dynamic_threshold(
    errors: np.ndarray,
    *,
    window: int | None = None,
    smoothing: float = 105,
    z_range: tuple[float, float] = (2, 10),
    z_step: float = 0.5,
    min_percent_decrease: float = 0.13,
    step: int | None = None,
    error_buffer: int = 0,
    max_sequences: int | None = None,
    scale: ErrorScale | None = None,
    inverse: bool = False,
    warmup: int = 0,
) -> DynamicThreshold:
    """Telemanom's dynamic threshold and pruning on a sequence of errors (Hundman et al. 2018).

    ``smoothing`` is the EWMA span (Telemanom: batch 70 x window 30 x 5 % = 105; <= 1 disables);
    ``window`` splits the smoothed errors into chunks thresholded separately (None: one
    threshold for the whole sequence); ``step`` makes those chunks slide by ``step`` errors
    (Telemanom: windows of 2100 errors every 70), each error judged once, by the first chunk
    holding it (``chunk_bounds``); ``error_buffer`` spreads each error above the threshold to
    its neighbours before sequences are counted and pruned (Telemanom: 100);
    ``max_sequences`` bounds the sequences a threshold may leave, and their rows to under half
    the chunk (Telemanom: 5); ``scale`` skips errors that are small against the values
    (``ErrorScale``); ``inverse`` also flags unusually small errors (mirrored about the chunk
    mean); ``warmup`` (Telemanom: its 250-row history) replaces the first ``warmup`` smoothed
    errors by the mean of the first ``2 x warmup`` and leaves the first 2 x ``warmup`` errors
    unjudged (``warmup`` on streams under 2500 errors, none under 1800).
    """
    from esa_lightning.models.gru_ae.model import ewma

    raw = np.asarray(errors, dtype=np.float64).ravel()
    if len(raw) == 0:
        raise ValueError("no errors to threshold")
    e = ewma(raw, smoothing).astype(np.float64)
    ignore = 0
    if warmup > 0 and len(e) > warmup:
        e[:warmup] = e[: 2 * warmup].mean()
        ignore = 2 * warmup if len(e) >= 2500 else warmup if len(e) >= 1800 else 0
    z_values = np.arange(z_range[0], z_range[1] + 1e-9, z_step)
    alarm = np.zeros(len(e), dtype=bool)
    eps_all, z_all = [], []
    for lo, hi, judged in chunk_bounds(len(e), window, step):
        chunk = e[lo:hi]
        floor = -np.inf if scale is None else scale.floor(chunk, lo, hi)
        judge_from = max(judged, ignore) - lo
        mirrored = [2 * chunk.mean() - chunk] if inverse else []
        for k, errs in enumerate([chunk, *mirrored]):
            eps, z, a = _chunk_alarm(
                errs, z_values, min_percent_decrease, judge_from=judge_from,
                earlier=alarm[lo:hi], floor=floor,
                buffer=int(error_buffer), max_sequences=max_sequences,
            )
            alarm[lo:hi] |= a
            if k == 0:
                eps_all.append(eps)
                z_all.append(z)
    return DynamicThreshold(float(np.median(eps_all)), alarm, e, float(np.median(z_all)))


class ThresholdCalibration(L.Callback):
    """Fit the alarm threshold of a window-scoring model at the end of training.

    Scores the nominal (label-free) windows of the validation range of every series with the
    trained model and writes the threshold into ``model.threshold``; falls back to the training
    range (with a log line) when a series has no validation window. Never touches the test range.
    """

    def __init__(
        self,
        method: str = "percentile",
        q: float = 99,
        smoothing: float = 105,
        z_range: tuple[float, float] = (2, 10),
        min_percent_decrease: float = 0.13,
    ) -> None:
        if method not in METHODS:
            raise ESAInputError(f"method: one of {METHODS}", column="method", value=method)
        self.method, self.q = method, q
        self.smoothing, self.z_range = smoothing, tuple(z_range)
        self.min_percent_decrease = min_percent_decrease

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "mission"):
            raise RuntimeError("ThresholdCalibration needs a datamodule with a `mission`")
        self.calibrate(pl_module, dm.mission)

    def calibrate(self, model, mission: Mission) -> None:
        """Write per-series thresholds (and the score smoothing) into ``model``'s buffers."""
        parts = dict(mission.series) if mission.is_multiseries else {None: mission}
        window = model.hparams.window
        span = self.smoothing if self.method == "dynamic" else 0.0
        model.score_span.fill_(float(span))
        for name, m in parts.items():
            source, scores = "validation", self._nominal_scores(model, m.val(), name, window)
            if len(scores) == 0:
                log.warning(
                    "series %s: no label-free validation window; threshold fitted on the "
                    "training range",
                    name or m.name,
                )
                source, scores = "training", self._nominal_scores(model, m.train(), name, window)
            if len(scores) == 0:
                raise ESAInputError("no label-free window to fit a threshold on", path=m.name)
            method = self.method
            if method == "f05":
                thr = f05_threshold(model, m.val(), name) if source == "validation" else None
                if thr is None:
                    log.warning(
                        "series %s: no labeled event on the validation range; f05 falls back to "
                        "the %g-th percentile of nominal windows",
                        name or m.name,
                        self.q,
                    )
                    method = "percentile"
            if method == "percentile":
                thr = percentile_threshold(scores, self.q)
            elif method == "dynamic":
                thr = dynamic_threshold(
                    scores,
                    smoothing=self.smoothing,
                    z_range=self.z_range,
                    min_percent_decrease=self.min_percent_decrease,
                ).threshold
            model.threshold[model.series_index(m, name)] = thr
            log.info(
                "series %s: %s threshold %.6g on %s windows",
                name or m.name,
                method,
                thr,
                source,
            )

    @staticmethod
    def _nominal_scores(model, m: Mission, name: str | None, window: int) -> np.ndarray:
        if len(m.values) < window:
            return np.zeros(0, dtype=np.float32)
        total = model.window_outputs(m, series=name).total
        clean = ~labeled_window_mask(~nominal_rows(m), window)
        return total[clean]


def f05_threshold(
    model, val: Mission, name: str | None = None, n_candidates: int = 200
) -> float | None:
    """Threshold maximising corrected event-wise F0.5 on a labeled validation range, or None.

    Candidates are quantiles of every validation window score (labeled windows included: they
    are what must rise above it), denser towards the top. None when ``val`` holds no event of
    ``F05_CATEGORIES`` or is shorter than one window.
    """
    from esa_lightning.metrics import esa_scores

    events = val.events
    if "Category" in events.columns:
        events = events[events["Category"].isin(F05_CATEGORIES)]
    window = model.hparams.window
    if len(events) == 0 or len(val.values) < window:
        return None
    wo = model.window_outputs(val, series=name)
    score_w = model.smoothed(wo.total).astype(np.float64)
    finite = score_w[np.isfinite(score_w)]
    if len(finite) == 0:
        return None
    q = np.unique(np.concatenate([np.linspace(0.0, 0.9, 10), 1 - np.geomspace(0.1, 1e-5, 190)]))
    candidates = np.unique(np.quantile(finite, q[:n_candidates] if n_candidates < len(q) else q))
    times = np.asarray(val.timestamps)
    n = len(val.values) + wo.pad
    full_range = (times[0], times[-1])
    best_f, best = -1.0, []
    for thr in candidates:
        alarm_w = (score_w > thr).astype(np.float32)
        alarm = model.window_to_rows(alarm_w, n)[wo.pad :] > 0
        pred = (times, alarm.astype(np.uint8))
        f = esa_scores(events, pred, betas=0.5, full_range=full_range)["EW_F_0.50"]
        if f > best_f + 1e-12:
            best_f, best = f, [float(thr)]
        elif abs(f - best_f) <= 1e-12:
            best.append(float(thr))
    thr = best[len(best) // 2]
    log.info("f05 threshold %.6g: validation EW_F_0.50 %.4f (%d tied)", thr, best_f, len(best))
    return thr
