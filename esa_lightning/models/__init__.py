"""Detector families: one package each, all implementing ``base.DetectorModule``."""
