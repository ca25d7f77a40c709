
import numpy as np
import pytest

from esa_lightning.data.mission import Mission, default_channel_table
from tests.conftest import CONF, MSL
from tests.helpers import make_mission


def test_splits_partition_the_rows_in_time_order():
    m = make_mission(n_rows=2000, val_start=1000, test_start=1500)
    parts = [m.train(), m.val(), m.test()]
    assert [len(p.values) for p in parts] == [1000, 500, 500]
    assert parts[0].timestamps[-1] < parts[1].timestamps[0] < parts[2].timestamps[0]
    assert parts[2].meta["row_offset"] == 1500
    # events are kept only where they overlap the range
    assert set(parts[2].events["ID"]) == {"id_1"} and set(parts[0].events["ID"]) == set()


def test_row_labels_prefer_anomaly_over_other_codes():
    m = make_mission(n_rows=100, anomalies=(), val_start=50, test_start=80)
    m.labels[10, 1] = 3
    m.labels[10, 2] = 1
    m.labels[20, 0] = 2
    assert m.row_labels[10] == 1 and m.row_labels[20] == 2
    np.testing.assert_array_equal(np.flatnonzero(m.is_anomaly), [10, 20])


@pytest.mark.skipif(not MSL.is_dir(), reason="shared MSL data not present")
def test_multiseries_ranges_are_taken_per_series():
    """Before the fix, the NASA test metrics scored every series' training rows too."""
    from esa_lightning.data import load_mission

    nasa = load_mission("nasa", MSL, val_fraction=0.2)
    test = nasa.test()
    assert test.is_multiseries and set(test.series) == set(nasa.series)
    for name, sub in test.series.items():
        full = nasa.series[name]
        assert len(sub.values) == len(full.values) - full.test_start
        assert sub.timestamps[0] == 0  # NASA test rows carry their original test indices
    assert len(test.events) == len(nasa.events)
    train = nasa.train()
    assert all(len(s.events) == 0 for s in train.series.values())


def test_mission_rejects_inconsistent_split_points():
    with pytest.raises(ValueError, match="val_start"):
        Mission("bad", np.zeros((10, 1), np.float32), None, default_channel_table(["a"]),
                None, make_mission().events.iloc[:0], val_start=8, test_start=5)


def test_row_labels_in_blocks_equal_the_whole_array_reduction(monkeypatch):
    from dataclasses import replace

    import esa_lightning.data.mission as mission_module

    rng = np.random.default_rng(1)
    labels = rng.choice(5, size=(100, 4), p=[0.8, 0.05, 0.05, 0.05, 0.05]).astype(np.uint8)
    expected = np.zeros(100, dtype=np.uint8)
    for code in (4, 3, 2, 1):
        expected[(labels == code).any(axis=1)] = code
    m = replace(make_mission(n_rows=100, n_channels=4, anomalies=(), val_start=50,
                             test_start=80), labels=labels)
    monkeypatch.setattr(mission_module, "ROW_BLOCK", 7)
    np.testing.assert_array_equal(m.row_labels, expected)
    broadcast = replace(m, labels=np.broadcast_to(expected[:, None], (100, 4)))
    np.testing.assert_array_equal(broadcast.row_labels, expected)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "data").glob("*.yaml")))
def test_every_data_option_names_a_known_reader(name, tmp_path):
    """``data=NAME`` composes and its ``_target_`` is the reader ``load_mission`` maps a kind to."""
    from hydra.utils import get_method

    from esa_lightning.data import READERS
    from tests.conftest import compose_config

    cfg = compose_config("train", [f"data={name}"], tmp_path)
    assert "kind" not in cfg.data
    assert cfg.data._target_ in READERS.values()
    assert callable(get_method(cfg.data._target_))


def test_mission_from_config_keeps_one_line_errors(tmp_path):
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.common import mission_from_config
    from tests.conftest import compose_config

    with pytest.raises(ESAInputError, match="set data.root=PATH"):
        mission_from_config(compose_config("train", ["data=nasa"], tmp_path).data)
    missing = tmp_path / "missing"
    cfg = compose_config("train", ["data=esa", f"data.root={missing}"], tmp_path)
    with pytest.raises(ESAInputError, match="mission folder not found"):  # not Hydra's wrapper
        mission_from_config(cfg.data)
    cfg = compose_config("train", ["data=esa", "data._target_=no.such.reader"], tmp_path)
    with pytest.raises(ESAInputError, match="cannot import the data reader"):
        mission_from_config(cfg.data)
    cfg = compose_config("train", ["data=esa", "data._target_=math.pi"], tmp_path)
    with pytest.raises(ESAInputError, match="'math.pi': not a class or function"):
        mission_from_config(cfg.data)


@pytest.mark.parametrize("kind", ["esa", "kaggle"])
def test_load_mission_reads_what_train_py_reads(kind, small_mission_dir, tmp_path):
    """``load_mission("esa", root)`` ("the Mission the models see", docs/python_api.md) used the
    reader function's own defaults: the counters ``mission.json`` names were not differenced
    and the mission had no validation range, unlike ``train.py data=esa``; Kaggle data got
    another validation fraction. Options not given now take the data config's values."""
    from esa_lightning.data import load_mission
    from esa_lightning.jobs.common import mission_from_config
    from tests.conftest import compose_config

    root = small_mission_dir / "kaggle" if kind == "kaggle" else small_mission_dir
    cfg = compose_config("train", [f"data={kind}", f"data.root={root}"], tmp_path)
    expected = mission_from_config(cfg.data)
    mission = load_mission(kind, root, cache_dir=tmp_path / "cache")
    assert (mission.val_start, mission.test_start) == (expected.val_start, expected.test_start)
    assert mission.val_start < mission.test_start  # a validation range, as in training
    np.testing.assert_array_equal(np.asarray(mission.values), np.asarray(expected.values))
    assert mission.meta.get("counters") == expected.meta.get("counters")


def test_load_mission_reads_the_presets_train_py_reads(small_mission_dir, tmp_path):
    """README's ``load_mission("esa", "datasets/ESA-Mission1")`` read Mission1 without its
    split, counters and validation days (``data=esa``'s values), and ``load_mission`` refused
    the presets ``esa_mission1`` and ``nasa_msl`` as unknown kinds."""
    from esa_lightning.data import load_mission
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.common import mission_from_config
    from tests.conftest import compose_config

    cfg = compose_config("train", ["data=nasa_msl", f"data.root={MSL}"], tmp_path)
    expected = mission_from_config(cfg.data)
    mission = load_mission("nasa_msl", MSL)
    assert mission.summary() == expected.summary()
    ranges = {k: (g.val_start, g.test_start) for k, g in mission.grids().items()}
    assert ranges == {k: (g.val_start, g.test_start) for k, g in expected.grids().items()}
    # Mission1's counters, channel_4 to channel_11: this 8-channel mission lacks three
    with pytest.raises(ESAInputError, match=r"counter channel\(s\) \['channel_9'"):
        load_mission("esa_mission1", small_mission_dir, cache_dir=None)
    with pytest.raises(ESAInputError, match="esa_mission1"):  # the choices name the presets
        load_mission("esa_mision1", small_mission_dir)


def test_load_mission_names_an_option_its_reader_does_not_take(small_mission_dir):
    """``load_mission("nasa", root, cache_dir=None)`` (reliability.md: "cache_dir=None reads
    without a cache") and a misspelt option were a TypeError from inside the reader."""
    from esa_lightning.data import load_mission
    from esa_lightning.errors import ESAInputError

    with pytest.raises(ESAInputError, match="value 'cache_dir': not an option of the nasa"):
        load_mission("nasa", MSL, cache_dir=None)
    with pytest.raises(ESAInputError, match="value 'val_day': not an option of the synthetic"):
        load_mission("synthetic", small_mission_dir, val_day=3)


def test_load_mission_says_a_data_config_needs_its_reader_in_readers(tmp_path, monkeypatch):
    """A new ``conf/data/<kind>.yaml`` whose reader is not yet in ``data.READERS``
    (docs/architecture.md, "Adding a data source") was refused as an "unknown data kind" whose
    list of choices held that very kind; the error now names the file, the reader and
    ``READERS``."""
    import shutil

    import esa_lightning.install
    from esa_lightning.data import load_mission
    from esa_lightning.errors import ESAInputError

    conf = tmp_path / "conf"
    shutil.copytree(CONF / "data", conf / "data")
    target = "my_readers.wide.read_wide"
    (conf / "data" / "wide.yaml").write_text(f"_target_: {target}\nroot: ???\n")
    monkeypatch.setattr(esa_lightning.install, "config_dir", lambda: conf)
    with pytest.raises(ESAInputError) as caught:
        load_mission("wide", tmp_path)
    message = str(caught.value)
    assert "wide.yaml" in message and target in message and "READERS" in message, message
    assert "unknown data kind" not in message, message


def test_slice_treats_a_reversed_or_out_of_range_range_like_python_slicing():
    """Before the fix, stop < start gave negative split points and an obscure ValueError."""
    m = make_mission(n_rows=200, anomalies=((120, 130),), val_start=100, test_start=150)
    for start, stop in [(120, 110), (160, 5), (300, 250), (250, 300)]:
        part = m.slice(start, stop)
        assert len(part.values) == len(m.values[start:stop]) == 0
        assert len(part.timestamps) == 0 and part.labels.shape == (0, 3)
        assert part.val_start == part.test_start == 0
        assert part.meta["row_offset"] == min(start, len(m.values))


def test_an_empty_slice_keeps_no_event():
    """Before the fix a slice of no rows kept every event of the mission (no timestamps to
    compare read as "keep all"), so code counting a range's events counted them all there."""
    m = make_mission(n_rows=200, anomalies=((120, 130),), val_start=100, test_start=150)
    assert len(m.events) == 1
    for start, stop in [(120, 120), (200, 200), (130, 110)]:
        assert len(m.slice(start, stop).events) == 0
    assert len(m.slice(119, 121).events) == 1
