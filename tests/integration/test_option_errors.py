"""A supervised or combined experiment's bad option is one line naming the key and the value,
before any training."""

from __future__ import annotations

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.common import run_or_exit
from esa_lightning.jobs.train import train
from tests.conftest import compose_config

QUIET = ["trainer.enable_progress_bar=false", "~callbacks.progress_bar", "logger=none"]


def test_a_models_own_option_check_is_one_line(small_mission_dir, tmp_path, capsys):
    cfg = compose_config(
        "train",
        ["experiment=rolling_gbdt", f"data.root={small_mission_dir}", "model.max_leaf_nodes=1",
         *QUIET],
        tmp_path,
    )
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(train, cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    # (model.top_channels=0, the setting this test used, is refused by the settings' check now)
    assert "model.max_leaf_nodes" in err and "value 1" in err


def test_a_single_models_own_refusal_keeps_its_single_model_key(small_mission_dir, tmp_path):
    """esa_full names a component's refusals under ``components.<name>.``; a single model's
    stay as they are."""
    cfg = compose_config(
        "train",
        ["experiment=channel_ensemble", f"data.root={small_mission_dir}",
         "model.channel_scores=bogus", "datamodule.max_kernel_len=100", *QUIET],
        tmp_path,
    )
    with pytest.raises(ESAInputError, match=r"^datamodule\.min_kernel_len=30, "
                       r"datamodule\.max_kernel_len=100, datamodule\.window="):
        train(cfg)
    cfg.datamodule.max_kernel_len = 40
    with pytest.raises(ESAInputError, match=r"^column 'channel_scores': channel_scores='bogus'"):
        train(cfg)


def test_a_bad_combiner_option_is_refused_before_any_component_trains(small_mission_dir,
                                                                        tmp_path):
    cfg = compose_config(
        "train",
        ["experiment=esa_full", f"data.root={small_mission_dir}", "combiner.few_events=foo",
         "components.gru_ae.trainer.max_epochs=1",
         "components.channel_ensemble.trainer.max_epochs=1", *QUIET],
        tmp_path,
    )
    with pytest.raises(ESAInputError, match="combiner.few_events"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_a_finished_gbdt_ensemble_resumes_from_its_last_checkpoint(small_mission_dir, tmp_path):
    """``ckpt_path=last`` after the one epoch: Lightning skips the fit, so the trees must come
    from the checkpoint (they had not: AttributeError 'kernels' while fitting the alarm height)."""
    overrides = ["experiment=channel_ensemble", "model=channel_ensemble_gbdt",
                 f"data.root={small_mission_dir}", "model.max_iter=5", "model.n_threads=1",
                 "datamodule.n_external=2", "datamodule.n_internal=2", *QUIET]
    first = train(compose_config("train", overrides, tmp_path))
    assert (tmp_path / "checkpoints" / "channel_ensemble" / "last.ckpt").is_file()
    again = train(compose_config("train", [*overrides, "ckpt_path=last"], tmp_path))
    assert first is not None and again == first


def test_esa_full_refuses_a_too_short_ensemble_range_before_any_fit_naming_its_key(
        small_mission_dir, tmp_path):
    # the channel ensemble's pooled row does not fit the training range: refused before the
    # GRU trains, naming the key the user sets in esa_full (not the single-model datamodule.*)
    cfg = compose_config(
        "train",
        ["experiment=esa_full", f"data.root={small_mission_dir}",
         "components.channel_ensemble.datamodule.pool=1000000",
         "components.gru_ae.trainer.max_epochs=1", "+trainer.limit_train_batches=1", *QUIET],
        tmp_path,
    )
    with pytest.raises(ESAInputError) as info:
        train(cfg)
    assert "components.channel_ensemble.datamodule.pool=1000000" in str(info.value)
    assert not (tmp_path / "checkpoints").exists()
