"""Transforms of mission arrays: windows, scaling, segments and shapelets (no Lightning)."""
