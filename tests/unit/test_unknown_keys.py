"""Keys no job reads: a misspelt trainer or callback option, and a top-level key the command line
adds (``+xyz=1``), are refused naming the key before any data is read."""

from __future__ import annotations

import pytest

from esa_lightning.cli.overrides import compose_error
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.common import refuse_unusable_components
from esa_lightning.jobs.train import component_specs
from tests.conftest import compose_config


def _refusal(overrides: list[str], tmp_path) -> str:
    cfg = compose_config("train", overrides, tmp_path)
    with pytest.raises(ESAInputError) as err:
        refuse_unusable_components(cfg, component_specs(cfg))
    return str(err.value)


@pytest.mark.parametrize(
    ("overrides", "start", "hint"),
    [
        (["+trainer.max_epoch=1"], "trainer.max_epoch: not an option of Trainer", "max_epochs"),
        (["+callbacks.model_checkpoint.monitr=x"],
         "callbacks.model_checkpoint.monitr: not an option of ModelCheckpoint", "monitor"),
        (["experiment=esa_full", "+components.gru_ae.trainer.max_epoch=1"],
         "components.gru_ae.trainer.max_epoch: not an option of Trainer", "max_epochs"),
        (["experiment=esa_full", "+components.channel_ensemble.callbacks.early_stopping.patienc=2"],
         "components.channel_ensemble.callbacks.early_stopping.patienc: not an option of "
         "EarlyStopping", "patience"),
    ],
)
def test_a_misspelt_trainer_or_callback_option_is_refused_before_the_data(
    overrides, start, hint, tmp_path
):
    """It was Hydra's "Error executing job ... unexpected keyword argument" block (exit code 1)
    once the mission had been read, or, for a later component, once the first had trained."""
    reason = _refusal(overrides, tmp_path)
    assert reason.startswith(start) and hint in reason


@pytest.mark.parametrize("experiment", ["smoke", "gru_ae", "esa_full", "gru_ae_nasa"])
def test_the_shipped_trainer_and_callback_options_pass(experiment, tmp_path):
    cfg = compose_config("train", [f"experiment={experiment}"], tmp_path)
    refuse_unusable_components(cfg, component_specs(cfg))


@pytest.mark.parametrize(
    ("job", "override", "hint"),
    [("train", "+max_epochs=1", None), ("train", "+xyz=1", None),
     ("train", "++seeds=3", "seed"), ("predict", "+chunk_row=5", "chunk_rows")],
)
def test_a_top_level_key_no_job_reads_is_refused_naming_it(job, override, hint):
    """train.py ran as if ``+max_epochs=1`` (meant: trainer.max_epochs) had not been given."""
    extra = ["ckpt=x"] if job == "predict" else []
    reason = compose_error(job, [*extra, override], check=True)
    key = override.lstrip("+").split("=")[0]
    assert reason is not None and reason.startswith(f"{override}: {key} is not a setting of")
    assert hint is None or f"did you mean {hint}" in reason


@pytest.mark.parametrize(
    "overrides",
    [["experiment=smoke", "+my_seed=3", "seed=${my_seed}"], ["debug=default"]],
)
def test_added_groups_and_interpolated_keys_stay_allowed(overrides):
    assert compose_error("train", overrides, check=True) is None


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["model.cell=lstn"], "model.cell='lstn': must be one of gru, lstm"),
        (["model.objective=forecst"], "model.objective='forecst': must be one of reconstruct"),
        (["datamodule.detrend_stat=medain"], "datamodule.detrend_stat='medain': must be one of"),
        (["metrics.label_channels=targets"], "metrics.label_channels='targets': must be one of"),
        (["experiment=esa_full",
          "components.gru_ae.model.post_processing.channel_norm.aggregate=sum"],
         "components.gru_ae.model.post_processing.channel_norm.aggregate='sum': must be one of"),
        (["experiment=channel_ensemble", "model.channel_scores=prob"],
         "model.channel_scores='prob': must be one of evidence, probability"),
    ],
)
def test_a_misspelt_choice_is_named_with_its_key_before_the_data(overrides, shown):
    """The model or data module refused it once the mission had been read, as ``column 'cell':
    value 'lstn'`` (a single model's key without its ``model.``)."""
    reason = compose_error("train", overrides, check=True)
    assert reason is not None and reason.startswith(shown)


def test_the_checked_choices_are_the_codes_own():
    from esa_lightning.data.label_channels import LABEL_CHANNELS
    from esa_lightning.data.transforms.windows import DETREND_STATS, INPUT_MODES, SCALINGS
    from esa_lightning.models.channel_ensemble.model import CHANNEL_SCORES
    from esa_lightning.models.gru_ae.network import CELLS, OBJECTIVES
    from esa_lightning.postprocessing.channel_norm import AGGREGATES, SPREAD_ON
    from esa_lightning.postprocessing.frozen import WATCH
    from esa_lightning.postprocessing.random_forest import CHECKS
    from esa_lightning.settings import CHOICES

    code = {"cell": CELLS, "objective": OBJECTIVES, "inputs": INPUT_MODES,
            "detrend_stat": DETREND_STATS, "scaling": SCALINGS, "channel_scores": CHANNEL_SCORES,
            "label_channels": LABEL_CHANNELS, "aggregate": AGGREGATES, "spread_on": SPREAD_ON,
            "watch": WATCH, "check": CHECKS}
    code["loss"] = ("smooth_l1", "mse")  # LitGRUAttentionAE's check spells them out
    assert set(code) == set(CHOICES)
    for key, words in code.items():
        ok, requirement = CHOICES[key]
        assert set(requirement.removeprefix("must be one of ").split(", ")) == set(words), key
        assert all(ok(w) for w in words) and not ok(f"{next(iter(words))}x"), key


@pytest.mark.parametrize(
    ("job", "overrides", "shown"),
    [
        ("train", ["test=maybe"], "test='maybe'"),
        ("train", ["print_config=yes"], "print_config='yes'"),
        ("merge", ["detectors=[a,b]", "test=maybe"], "test='maybe'"),
        ("train", ["datamodule.shuffle=off"], "datamodule.shuffle='off'"),
        ("train", ["experiment=channel_ensemble", "model.novelty=2"], "model.novelty=2"),
        ("train", ["experiment=channel_ensemble", "model.post_processing.alarm.fit=nope"],
         "model.post_processing.alarm.fit='nope'"),
    ],
)
def test_a_switch_given_a_word_is_refused_not_read_as_true(job, overrides, shown):
    """``test=maybe`` trained and then scored the test range: any word was taken as true."""
    reason = compose_error(job, overrides, check=True)
    assert reason == f"{shown}: must be true or false"


@pytest.mark.parametrize("job", ["train", "predict", "evaluate", "merge"])
def test_the_shipped_switches_pass(job, tmp_path):
    from esa_lightning.settings import check_settings

    given = {"train": [], "predict": ["ckpt=x"], "evaluate": ["predictions=x"],
             "merge": ["detectors=[x,y]"]}[job]
    for experiment in (["experiment=esa_full"], ["experiment=channel_ensemble"], []):
        overrides = experiment if job == "train" else []
        check_settings(compose_config(job, [*given, *overrides], tmp_path))


def test_a_post_rule_the_family_does_not_apply_is_refused_before_the_data(tmp_path):
    """``model=channel_ensemble_gbdt`` under ``experiment=channel_ensemble`` with the surrogate's
    meta heads added (``+model.post_processing.heads=...``, which refit a network the trees do
    not have): the tree-based family applies ``peaks`` and ``frozen`` only; the refusal came
    once the mission had been read and featurised."""
    reason = _refusal(["experiment=channel_ensemble", "model=channel_ensemble_gbdt",
                       "+model.post_processing.heads={kind:meta_heads}"], tmp_path)
    assert "model.post_processing.heads.kind" in reason
    assert "GBDTChannelEnsemble applies no post-processing rule of this kind" in reason
    assert "['frozen', 'peaks']" in reason


def test_the_default_post_rules_pass_the_check_before_the_data(tmp_path):
    for i, overrides in enumerate([["experiment=channel_ensemble"],
                                   ["experiment=channel_ensemble", "model=channel_ensemble_gbdt"],
                                   ["experiment=esa_full"], ["experiment=gru_ae"]]):
        cfg = compose_config("train", overrides, tmp_path / str(i))
        refuse_unusable_components(cfg, component_specs(cfg))  # no refusal


@pytest.mark.parametrize(
    ("job", "value", "shown"),
    [
        ("train", "[]", "data.channels=[]"),
        ("train", "5", "data.channels=5"),
        ("train", "''", "data.channels=''"),
        ("predict", "[]", "data.channels=[]"),
        ("merge", "[]", "data.channels=[]"),
    ],
)
def test_an_empty_channel_selection_is_named_with_the_choices_before_the_data(job, value, shown):
    """``data.channels=[]`` was refused only by the reader, once the data were being read, as
    "channel selection is empty". A name alone is left to the reader, which knows the channels
    (``test_a_channel_named_like_a_word_is_read_and_a_misspelt_word_named_by_the_reader``)."""
    given = {"train": [], "predict": ["ckpt=x"], "merge": ["detectors=[a,b]"]}[job]
    reason = compose_error(job, [*given, f"data.channels={value}"], check=True)
    assert reason is not None
    assert reason.startswith(f"{shown}: must be all, target or lightweight, or a list of channel")


@pytest.mark.parametrize(
    "value", ["all", "target", "lightweight", "null", "[channel_1,channel_2]", "channel_1", "T-13",
              "ball", "Target", "targt"]
)
def test_the_channel_selections_and_channel_names_pass(value):
    """The words, null (all), a list of names, and one channel's name (read as a list of it),
    a name close to a word among them: the channels are not known before the data are read,
    and a channel named ``ball`` (near ``all``) was refused as a misspelt word unless given as a
    list."""
    assert compose_error("train", [f"data.channels={value}"], check=True) is None
    assert compose_error("predict", ["ckpt=x", f"data.channels={value}"], check=True) is None


def test_a_channel_named_like_a_word_is_read_and_a_misspelt_word_named_by_the_reader():
    """The reader knows the channels: a mission's channel ``ball`` is read when given alone; a
    name it lacks given alone (``targt``) is an unknown channel, the words named beside the
    channels; a list's unknown name (a channel, not a word) names the channels only."""
    import pandas as pd

    from esa_lightning.data.selection import UnknownChannels, select_channels

    table = pd.DataFrame({"Channel": ["ball", "channel_2"], "Target": [True, False]})
    assert list(select_channels(table, "ball")["Channel"]) == ["ball"]
    with pytest.raises(UnknownChannels) as caught:
        select_channels(table, "targt", lightweight=[])
    assert str(caught.value) == ("column 'channels': unknown channel(s) ['targt']; known: "
                                 "['ball', 'channel_2']; or one of the words all, target, "
                                 "lightweight")
    with pytest.raises(UnknownChannels) as caught:
        select_channels(table, ["targt"])
    assert str(caught.value).endswith("known: ['ball', 'channel_2']")


def test_a_second_rule_of_a_kind_is_refused_before_the_data(tmp_path):
    """Two rules of one kind under two keys (the channel ensemble's meta heads twice): both
    were built and fitted, each refitting the same layers, and Lightning kept both callbacks'
    state under one key (their class's name). Refused before the data are read, naming both."""
    reason = _refusal(["experiment=channel_ensemble",
                       "+model.post_processing.meta2={kind:meta_heads,set_cv:false}"], tmp_path)
    assert "model.post_processing.meta2" in reason
    assert "a second meta_heads rule after model.post_processing.meta_heads" in reason


def test_the_refusal_names_a_package_config_paths_file():
    """With ``-cp pkg://...`` the refusal said ``config train`` alone, naming no file."""
    from esa_lightning.jobs.paths import ConfigFolders

    folders = ConfigFolders(path="pkg://esa_lightning.conf")
    reason = compose_error("train", ["+xyz=1"], check=True, folders=folders)
    assert reason is not None and reason.startswith("+xyz=1: xyz is not a setting of "), reason
    assert "config train (pkg://esa_lightning.conf/train.yaml)" in reason, reason
