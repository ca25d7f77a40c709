"""Re-score a GRU detector (``telemanom`` threshold rule) with parts of Telemanom's procedure off.

    python scripts/ablate_online_threshold.py outputs/gru_ae_nasa/<run>/detector \
        --data ../shared/data/nasa-msl

Prints EWraw precision, recall, F0.5 and the corrected EW_F_0.50 on the test range for the
procedure as trained and with the error-scale check, the inverse errors and the warm-up turned
off one at a time and together. The weights stay the same; only the alarms change. Every line
is a test-range number: list each one you look at beside your result.
"""

from __future__ import annotations

import argparse

from esa_lightning.artifact import Detector
from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.runtime.evaluation import report_for, score_range

# settings of the model's ``post_processing.threshold`` rule (kind telemanom) changed
NO_SCALE = dict(error_scale=0.0, min_error=0.0)
VARIANTS = {
    "as trained": {},
    "no error-scale check": NO_SCALE,
    "no inverse errors": dict(inverse=False),
    "no warm-up": dict(warmup=0),
    "none of the three": dict(**NO_SCALE, inverse=False, warmup=0),
}


def with_threshold(hparams: dict, change: dict) -> dict:
    """``hparams`` with ``change`` applied to the settings of its threshold rule."""
    post = dict(hparams["post_processing"])
    post["threshold"] = {**post["threshold"], **change}
    return {**hparams, "post_processing": post}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("detector", help="a detector folder written by train.py")
    parser.add_argument("--data", required=True, help="a NASA telemanom folder")
    parser.add_argument("--channels", default="all", help="comma-separated, as trained on")
    args = parser.parse_args()
    channels = "all" if args.channels == "all" else args.channels.split(",")
    mission = read_nasa(args.data, channels=channels, val_fraction=0.2)
    (model,) = Detector.load(args.detector).components.values()
    if model.hparams["post_processing"]["threshold"].get("kind") != "telemanom":
        parser.error("the detector's threshold rule is not telemanom")
    for name, change in VARIANTS.items():
        variant = LitGRUAttentionAE(**with_threshold(dict(model.hparams), change))
        variant.load_state_dict(model.state_dict())
        variant.eval()
        r = report_for(score_range(variant, mission.test()), "test")
        print(
            f"{name:22s} EWraw P {r['test/EWraw_precision']:.3f} R {r['test/EWraw_recall']:.3f} "
            f"F0.5 {r['test/EWraw_F_0.50']:.3f}  corrected EW_F_0.50 {r['test/EW_F_0.50']:.3f}"
        )


if __name__ == "__main__":
    main()
