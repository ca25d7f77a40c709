"""The channel table of the Mission a DataFrame becomes (``data.frame``): rebuilt from the one
the detector recorded. A channel the recorded table leaves out (an edited or damaged
detector.json), or a row without a group or subsystem, gets names the table does not already
use: the defaults (``group_<position>``, ``subsystem_0``) could be a listed channel's, which
would put it in that channel's group and subsystem."""

from __future__ import annotations

import numpy as np
import pandas as pd

from esa_lightning.data.frame import frame_to_mission


def recorded_table(rows: list[dict]) -> dict:
    return {
        "channels": ["channel_1", "channel_2", "channel_3"],
        "telecommands": [],
        "preprocessing": {"index": "id", "channel_table": rows},
    }


def row(channel: str, group: str | None, subsystem: str | None) -> dict:
    return {"Channel": channel, "Subsystem": subsystem, "Group": group, "Target": True,
            "Categorical": False}


def channel_table(schema: dict) -> pd.DataFrame:
    frame = pd.DataFrame({c: np.arange(20.0) for c in schema["channels"]})
    mission, _ = frame_to_mission(frame, schema)
    return mission.channels.set_index("Channel")


def test_a_channel_the_recorded_table_leaves_out_joins_no_listed_group_or_subsystem():
    # channel_2 (position 1) used to be filled with group_1 and subsystem_0: channel_1's
    schema = recorded_table([row("channel_1", "group_1", "subsystem_0"),
                             row("channel_3", "group_0", "power")])
    table = channel_table(schema)
    assert table.loc["channel_1", "Group"] == "group_1"
    assert table.loc["channel_2", "Group"] not in {"group_0", "group_1"}
    assert table.loc["channel_2", "Subsystem"] not in {"subsystem_0", "power"}
    assert bool(table.loc["channel_2", "Target"]) and not table.loc["channel_2", "Categorical"]


def test_rows_without_a_group_or_subsystem_get_unused_names_each():
    schema = recorded_table([row("channel_1", "group_2", "subsystem_0"),
                             row("channel_2", None, None),
                             row("channel_3", None, "thermal")])
    table = channel_table(schema)
    filled = table.loc[["channel_2", "channel_3"], "Group"].tolist()
    assert len(set(filled)) == 2 and not set(filled) & {"group_2"}
    assert table.loc["channel_2", "Subsystem"] not in {"subsystem_0", "thermal"}
    assert table.loc["channel_3", "Subsystem"] == "thermal"
