"""The Hydra configs (a package so that Hydra finds them as pkg://esa_lightning/conf)."""
