"""Scoring fitted detectors over whole ranges: chunked scoring equal to whole-series scoring,
the metrics of a scored range, and the combiner over several components (``esa_full``)."""
