"""Readers of telemetry sources (ESA-ADB raw and CSV, Kaggle, NASA, synthetic) into Missions."""
