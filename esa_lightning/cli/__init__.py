"""The Hydra entry points: ``esa-train``, ``esa-predict``, ``esa-evaluate``, ``esa-merge`` once
installed, and ``python train.py`` etc. in a clone. Each module's name is its Hydra job name
(``train.log``...); the configs are the package's own ``esa_lightning/conf``."""
