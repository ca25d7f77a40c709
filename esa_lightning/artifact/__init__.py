"""The fitted Detector: everything predict.py needs, saved and loaded as one folder.

Layout of an artifact folder::

    detector.json               format version (4), schema (channels, telecommands, grid
                                period), components (class, hyper-parameters), combiner,
                                package versions, info (experiment, mission, the settings a
                                synthetic mission was generated with: ``generator``,
                                calibration), ``files``: the sha256 of every file under
                                components/ and combiner/, and
                                ``manifest_sha256``: the sha256 of detector.json's canonical
                                JSON, every key but this one (``format.manifest_checksum``)
    config.yaml                 the resolved training config (for people; never executed)
    components/<name>/weights.pt    the module's state_dict: tensors only (buffers hold the
                                    fitted scaler, thresholds, shapelet kernels...)
    components/<name>/lightning.ckpt    the component's last Lightning checkpoint, to resume or
                                    fine-tune with Lightning (``load`` never reads it); not
                                    for a family fitted without gradient steps whose
                                    checkpoint repeats its other files
                                    (``DetectorModule.artifact_checkpoint``: the GBDT
                                    ensemble, ``rolling_gbdt``)
    components/<name>/...       extra files a component writes itself (``save_extra``: sklearn
                                heads and trees via skops)
    combiner/...                the final event classifier of ``esa_full``, when present

Loading never unpickles arbitrary objects: weights load with ``torch.load(weights_only=True)``,
hyper-parameters are JSON, classes are looked up in an allow-list (the detector families of
``models.registry`` and the combiner), sklearn heads load through skops with an explicit list of
exactly the types each head writes (``data.safe_skops``); a zip part (weights, a skops head,
``arrays.npz``) whose members declare more than 100 times their compressed bytes (at least
256 MiB) is refused from its directory before anything is decompressed
(``data.safe_pickle.refuse_zip_bomb``), and a detector.json or combiner.json over 16 MiB before
it is parsed (``io.refuse_large_settings``: many tiny JSON items take some 20 times their size in
memory). Before anything is built,
detector.json must match its ``manifest_sha256`` (an edit of its schema, hyper-parameters or
info is refused: restore it or retrain), every file ``files`` lists must be present, a regular
file inside the artifact and unchanged (its sha256), and no file outside the list may sit among
the parts; the manifest's structure is checked, and each component is first built on the
``meta`` device (no memory) so that hyper-parameters that do not fit the weights
(``n_channels=1e12``) are refused before anything is allocated; a buffer stored at another shape
than the hyper-parameters build (a scaler or threshold of another length) is refused, and so is
a component sized for other channels or telecommands than the schema records
(``DetectorModule.schema_problem``), and one whose threshold, its smoothing span or a network
weight is NaN or infinite (``fitted.check_fitted_state``: it could never alarm; not asked of a
detector built in memory), or whose own ``fitted_state_problem`` names fitted numbers training
never writes (a channel ensemble's kernel lengths or group indices, global_std's statistics).
Every refusal is one ``ESAInputError`` naming the file. A
format-3 artifact (no ``manifest_sha256``) loads with a warning that an edit of its
detector.json would go unnoticed; ``Detector.load(old).save(new)`` writes it in format 4, its
Lightning checkpoints with it. Artifacts of another format are refused with the command that
retrains (older) or the advice to upgrade esa_lightning (newer). ``Detector.check`` makes the
same checks of a detector built in memory, naming where it comes from (``merge_detectors``
checks its sources with it).
"""

from esa_lightning.artifact.detector import Detector
from esa_lightning.artifact.format import (
    FORMAT_VERSION,
    MANIFEST,
    allowed_classes,
    check_schema,
    in_trained_order,
    missing_trained_channels,
    mission_info,
    mission_schema,
    package_versions,
)
from esa_lightning.artifact.parts import part_checksums, sha256_of

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "Detector",
    "allowed_classes",
    "check_schema",
    "in_trained_order",
    "missing_trained_channels",
    "mission_info",
    "mission_schema",
    "package_versions",
    "part_checksums",
    "sha256_of",
]
