"""How a converted NASA mission is written: where each channel's samples go on the grid
(``Placement``), what every layout writer needs (``Job``), and the writers of the ESA raw, ESA CSV
and Kaggle layouts (``_WRITERS``). ``data.convert`` decides the placement and calls them; see its
docstring for what each layout holds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.data.mission import CHANNEL_TABLE_COLUMNS, Mission, empty_events
from esa_lightning.data.readers.esa_adb_grid import repair_samples
from esa_lightning.data.readers.layout_writers import write_esa_csv, write_kaggle_layout

TELECOMMAND_PRIORITY = 3  # the ESA reader keeps priority >= 3 by default
_ZIP = {"method": "zip", "compresslevel": 1}


@dataclass(frozen=True)
class Placement:
    """One channel's training, validation and test stretches on the grid (first row and length
    of each; no validation stretch unless ``val_share``); ``skip``: the source samples left out
    before the first one placed (its NASA training recording, with ``recordings="test"``)."""

    name: str
    train_row: int
    n_train: int
    test_row: int
    n_test: int
    skip: int = 0
    val_row: int = 0
    n_val: int = 0

    @property
    def rows(self) -> np.ndarray:
        """Grid rows of the channel's samples in source order: its training, validation and
        test stretches."""
        return np.concatenate(
            [
                np.arange(self.train_row, self.train_row + self.n_train),
                np.arange(self.val_row, self.val_row + self.n_val),
                np.arange(self.test_row, self.test_row + self.n_test),
            ]
        )


@dataclass
class Job:
    """Everything a layout writer needs: the NASA data and where it goes on the grid."""

    source: Path
    nasa: Mission
    placed: list[Placement]
    n_rows: int
    split: int
    t0: int
    p_ns: int
    commands: bool

    def times(self, rows: np.ndarray | int) -> np.ndarray:
        return (self.t0 + np.asarray(rows, dtype=np.int64) * self.p_ns).view("datetime64[ns]")

    def iso(self, row: int, utc: bool = False) -> str:
        """Row ``row``'s time; with ``utc`` with an offset, as ESA-ADB's labels.csv has it."""
        return pd.Timestamp(self.t0 + int(row) * self.p_ns, tz="UTC" if utc else None).isoformat()


# --------------------------------------------------------------------------- tables
def _channel_table(names: Sequence[str]) -> pd.DataFrame:
    """Subsystem = the NASA prefix (``M`` of ``M-1``), each channel its own group, as ``nasa``."""
    return pd.DataFrame(
        {
            "Channel": list(names),
            "Subsystem": [c.split("-")[0] for c in names],
            "Physical Unit": "",
            "Group": list(names),
            "Target": True,
            "Categorical": False,
        }
    )


def _esa_channel_csv(names: Sequence[str]) -> pd.DataFrame:
    table = _channel_table(names)
    for col in ("Target", "Categorical"):
        table[col] = table[col].map({True: "YES", False: "NO"})
    return table


def _events(job: Job) -> pd.DataFrame:
    """The NASA sequences as events on the grid: ID, Channel, StartRow, EndRow, Category, Class.
    A sequence's ends (rows of its test recording) go to the grid rows of those samples; no
    sequence straddles two stretches (``_cut_recording``)."""
    ev = job.nasa.events
    start, end = np.zeros(len(ev), np.int64), np.zeros(len(ev), np.int64)
    for p in job.placed:
        # the test recording's first sample among the channel's placed ones
        first = job.nasa.series[p.name].test_start - p.skip
        mine = (ev["Channel"] == p.name).to_numpy()
        rows = p.rows
        start[mine] = rows[first + ev.loc[mine, "StartTime"].to_numpy(dtype=np.int64)]
        end[mine] = rows[first + ev.loc[mine, "EndTime"].to_numpy(dtype=np.int64)]
    return pd.DataFrame(
        {
            "ID": ev["ID"].astype(str),
            "Channel": ev["Channel"].astype(str),
            "StartRow": start,
            "EndRow": end,
            "Category": "Anomaly",
            "Class": ev["Class"].astype(str),
        }
    )


def _anomaly_types(events: pd.DataFrame) -> pd.DataFrame:
    contextual = events["Class"].str.contains("contextual")
    return pd.DataFrame(
        {
            "ID": events["ID"],
            "Class": events["Class"],
            "Subclass": "",
            "Category": events["Category"],
            "Dimensionality": "Univariate",
            "Locality": np.where(contextual, "Local", "Global"),
            "Length": np.where(events["StartRow"] == events["EndRow"], "Point", "Subsequence"),
        }
    )


def _write_events_csv(job: Job, path: Path) -> None:
    ev = _events(job)
    ev.insert(2, "StartTime", [job.iso(r) for r in ev["StartRow"]])
    ev.insert(3, "EndTime", [job.iso(r) for r in ev["EndRow"]])
    ev.rename(columns={"StartRow": "StartId", "EndRow": "EndId"}).to_csv(path, index=False)


def _command_columns(job: Job) -> list[tuple[str, Placement, np.ndarray]]:
    """(telecommand name, its channel, rows of the channel's samples where it is set)."""
    if not job.commands:
        return []
    found = []
    for p in job.placed:
        flags = job.nasa.series[p.name].telecommands[p.skip :] != 0
        rows = p.rows
        for k in np.flatnonzero(flags.any(axis=0)):
            found.append((f"telecommand_{p.name}_{k + 1}", p, rows[flags[:, k]]))
    return found


# --------------------------------------------------------------------------- layouts
def _write_esa(job: Job, out: Path) -> int:
    """ESA raw layout: one float64 series per channel over its own stretches, tables."""
    (out / "channels").mkdir()
    for p in job.placed:
        samples = _samples(job, p)
        _write_series(out / "channels" / f"{p.name}.zip", p.name, job.times(p.rows), samples)
    commands = _command_columns(job)
    (out / "telecommands").mkdir()
    for name, _, rows in commands:
        _write_series(
            out / "telecommands" / f"{name}.zip", name, job.times(rows), np.ones(len(rows))
        )
    names = [p.name for p in job.placed]
    _esa_channel_csv(names).to_csv(out / "channels.csv", index=False)
    tc = pd.DataFrame(
        {
            "Telecommand": [c[0] for c in commands],
            "Priority": [TELECOMMAND_PRIORITY] * len(commands),
        }
    )
    tc.to_csv(out / "telecommands.csv", index=False)
    events = _events(job)
    labels = pd.DataFrame(
        {
            "ID": events["ID"],
            "Channel": events["Channel"],
            "StartTime": [job.iso(r, utc=True) for r in events["StartRow"]],
            "EndTime": [job.iso(r, utc=True) for r in events["EndRow"]],
        }
    )
    labels.to_csv(out / "labels.csv", index=False)
    _anomaly_types(events).to_csv(out / "anomaly_types.csv", index=False)
    return len(commands)


def _samples(job: Job, p: Placement) -> np.ndarray:
    """The channel's real samples, float64 as in the source, from its first placed row (a
    recording left out, ``skip``, is not read)."""
    parts = []
    for part in ("train", "test"):
        array = np.load(job.source / part / f"{p.name}.npy", mmap_mode="r", allow_pickle=False)
        parts.append(np.asarray(array[:, 0], dtype=np.float64))
    return np.concatenate(parts)[p.skip :]


def _write_series(path: Path, name: str, times: np.ndarray, values: np.ndarray) -> None:
    """One ESA-ADB series file: a zip-pickled DataFrame, DatetimeIndex, one column ``name``."""
    frame = pd.DataFrame({name: values}, index=pd.DatetimeIndex(times))
    frame.to_pickle(path, compression=_ZIP)


def _grid_mission(job: Job) -> Mission:
    """The converted mission on its grid, held as the ESA reader holds the raw layout: the
    samples written there, repaired as it repairs them (NaN and what float32 cannot hold
    forward-filled), with inf where a sample float32 cannot hold lands, which the CSV and
    Kaggle readers mark and fill as the ESA reader does."""
    names = [p.name for p in job.placed]
    values = np.empty((job.n_rows, len(names)), dtype=np.float32)
    labels = np.zeros((job.n_rows, len(names)), dtype=np.uint8)
    every_row = np.arange(job.n_rows)
    for j, p in enumerate(job.placed):
        series = job.nasa.series[p.name]
        rows = p.rows
        # zero-order hold: the last sample at or before each row; the first one before it
        held = np.maximum(np.searchsorted(rows, every_row, side="right") - 1, 0)
        samples = _samples(job, p)
        repaired, _, beyond = repair_samples(samples, job.source / "test" / f"{p.name}.npy")
        values[:, j] = repaired[held]
        values[rows[beyond], j] = np.inf
        labels[rows, j] = series.labels[p.skip :, 0]
    commands = _command_columns(job)
    pulses = np.zeros((job.n_rows, len(commands)), dtype=np.float32)
    for k, (_, _, rows) in enumerate(commands):
        pulses[rows, k] = 1.0
    table = _channel_table(names)[CHANNEL_TABLE_COLUMNS]
    return Mission(
        name=job.source.name,
        values=values,
        timestamps=job.times(every_row),
        channels=table,
        labels=labels,
        events=empty_events(),
        telecommands=pulses,
        telecommand_names=[c[0] for c in commands],
        period=pd.Timedelta(job.p_ns, unit="ns"),
        test_start=job.split,
    )


def _write_kaggle(job: Job, out: Path) -> int:
    mission = _grid_mission(job)
    write_kaggle_layout(mission, out, test_labels=True)
    _write_events_csv(job, out / "events.csv")
    return len(mission.telecommand_names)


def _write_esa_csv(job: Job, out: Path) -> int:
    mission = _grid_mission(job)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", job.source.resolve().name) or "nasa"
    write_esa_csv(mission.slice(0, job.split), out / f"{stem}.train.csv")
    write_esa_csv(mission.slice(job.split, job.n_rows), out / f"{stem}.test.csv")
    _esa_channel_csv(mission.channel_names).to_csv(out / "channels.csv", index=False)
    _write_events_csv(job, out / "events.csv")
    return len(mission.telecommand_names)


_WRITERS = {"esa": _write_esa, "esa_csv": _write_esa_csv, "kaggle": _write_kaggle}

