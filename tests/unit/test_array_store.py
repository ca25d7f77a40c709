"""Disk-backed reader outputs: trimmed files, released pages, equal to in-RAM reads."""

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.array_store import ArrayStore, release_pages, trim_npy
from esa_lightning.data.readers.kaggle import read_kaggle


@pytest.mark.parametrize("rows", [0, 9, 37, 100])
def test_trim_npy_keeps_the_first_rows(tmp_path, rows):
    data = np.arange(300, dtype=np.float32).reshape(100, 3)
    np.save(tmp_path / "a.npy", data)
    trim_npy(tmp_path / "a.npy", rows)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), data[:rows])


def test_trim_npy_refuses_to_grow(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="cannot trim"):
        trim_npy(tmp_path / "a.npy", 6)


def test_store_on_disk_finishes_trimmed_files_and_saves_foreign_arrays(tmp_path):
    store = ArrayStore(tmp_path)
    values = store.empty("values", (50, 4), np.float32)
    values[:] = np.arange(200, dtype=np.float32).reshape(50, 4)
    labels = store.zeros("labels", (50,), np.uint8)
    assert not labels.any()
    extra = np.array([1, 2, 3])
    store.finish({"values": values[:30], "labels": labels[:30], "extra": extra})
    np.testing.assert_array_equal(np.load(tmp_path / "values.npy"), values[:30])
    assert np.load(tmp_path / "labels.npy").shape == (30,)
    np.testing.assert_array_equal(np.load(tmp_path / "extra.npy"), extra)
    assert store.names == ["values", "labels", "extra"]


def test_released_pages_keep_their_data(tmp_path):
    store = ArrayStore(tmp_path)
    values = store.empty("values", (4096, 16), np.float32)
    values[:] = 1.5
    store.release({"values": values}, 0, 2048)  # written, not yet flushed: must survive
    values[100] = 2.5
    store.finish({"values": values})
    del values
    back = np.load(tmp_path / "values.npy", mmap_mode="r")
    assert back[100].tolist() == [2.5] * 16 and float(back[3000, 3]) == 1.5
    release_pages(back[10:4000])  # a read-only mapping reads the same afterwards
    assert float(back[2000:2100].sum()) == 1.5 * 100 * 16
    release_pages(np.ones(10))  # an array in RAM: nothing to do


def write_parquet(path, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": np.arange(n, dtype=np.int64)})
    for c in range(3):
        frame[f"channel_{c + 1}"] = rng.standard_normal(n).astype(np.float32)
    frame.loc[17, "channel_2"] = np.nan  # repaired by forward fill in both paths
    frame["telecommand_1"] = (rng.random(n) > 0.99).astype(np.float32)
    frame["is_anomaly"] = (np.arange(n) // 700 % 5 == 3).astype(np.uint8)
    frame.to_parquet(path)
    return path


def test_kaggle_cache_built_on_disk_equals_a_read_in_ram(tmp_path):
    path = write_parquet(tmp_path / "train.parquet")
    with pytest.warns(UserWarning, match="forward fill"):
        ram = read_kaggle(path, use_cache=False)
    with pytest.warns(UserWarning, match="forward fill"):
        disk = read_kaggle(path, cache_dir=tmp_path / "cache")
    assert isinstance(disk.values, np.memmap) and not isinstance(ram.values, np.memmap)
    for name in ("values", "telecommands", "timestamps"):
        np.testing.assert_array_equal(getattr(ram, name), getattr(disk, name))
    np.testing.assert_array_equal(ram.is_anomaly, disk.is_anomaly)
    assert np.isfinite(disk.values).all()
    pd.testing.assert_frame_equal(ram.events, disk.events)
