"""Deep ensembles of GRU-attention networks: ``model.members`` and ``merge.py``."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.data.mission import Mission
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.merge import merge_detectors
from esa_lightning.models.gru_ae.model import (
    GRUAttentionAE,
    LitGRUAttentionAE,
    MemberMean,
    SeriesNetworks,
)
from tests.helpers import (
    make_mission,
    manifest_of,
    trainer,
    two_series_mission,
    write_manifest,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def small(**kw) -> LitGRUAttentionAE:
    base = dict(n_inputs=3, n_outputs=1, window=6, hidden_size=8, latent_dim=4,
                objective="forecast", post_processing={"threshold": {"kind": "percentile"}})
    return LitGRUAttentionAE(**{**base, **kw})


def test_members_score_with_their_mean_and_learn_apart():
    torch.manual_seed(0)
    model = small(members=3)
    assert isinstance(model.net, MemberMean) and len(model.net.members) == 3
    x = torch.randn(5, 6, 3)
    outs = [m(x) for m in model.net.members]
    mean = model.net(x)
    torch.testing.assert_close(mean.reconstruction,
                               torch.stack([o.reconstruction for o in outs]).mean(0))
    torch.testing.assert_close(mean.latent, outs[0].latent)
    assert not torch.allclose(outs[0].reconstruction, outs[1].reconstruction)  # own inits
    # the training loss is the mean of the members' own losses, not the loss of their mean
    loss = model._loss((x, torch.zeros(5, dtype=torch.long)))
    own = [model.loss_fn(o.reconstruction, model.net.targets(x)) for o in outs]
    torch.testing.assert_close(loss, torch.stack(own).mean())
    loss.backward()
    params = [p for p in model.net.members[0].parameters() if p.grad is not None]
    first = [p.grad.clone() for p in params]
    model.zero_grad(set_to_none=True)
    own = [model.loss_fn(m(x).reconstruction, model.net.targets(x)) for m in model.net.members]
    (own[0] / 3).backward()  # member 0's gradient comes from its own loss alone
    for got, p in zip(first, params, strict=True):
        torch.testing.assert_close(got, p.grad)
    assert isinstance(small().net, GRUAttentionAE)  # members=1: the plain network
    with pytest.raises(ESAInputError, match="members"):
        small(members=0)


def test_per_series_members_are_early_stopped_per_series_and_mixed_batches_weigh_rows():
    torch.manual_seed(0)
    model = small(series=["a", "b"], per_series=True, members=2)
    assert isinstance(model.net, SeriesNetworks)
    units, _ = model.validation_units()
    assert [len(u.members) for u in units] == [2, 2]  # each series' ensemble stops as one
    x, series = torch.randn(7, 6, 3), torch.tensor([1, 0, 0, 1, 1, 0, 1])
    pred, target = model.net.prediction_pairs(model.net(x, series), x)
    per_row = [
        torch.stack([model.loss_fn(m(x[i : i + 1]).reconstruction, target[i : i + 1])
                     for m in units[int(s)].members]).mean()
        for i, s in enumerate(series)
    ]
    loss = model._loss((x, series))
    torch.testing.assert_close(loss, torch.stack(per_row).mean())


def fit_forecaster(mission, seed: int, **kw) -> LitGRUAttentionAE:
    torch.manual_seed(seed)
    dm = WindowDataModule(mission, window=8, batch_size=32, series_batches=True)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4, lr=3e-3,
                              objective="forecast", per_series=True,
                              post_processing={"threshold": {"kind": "telemanom"}}, **kw)
    trainer(max_epochs=1).fit(model, dm)
    return model


@pytest.fixture(scope="module")
def two_detectors():
    multi = two_series_mission()
    models = [fit_forecaster(multi, seed) for seed in (1, 2)]
    return multi, [Detector({"gru": m}, mission_schema(multi)) for m in models]


def test_merged_detector_forecasts_the_mean_of_its_sources(two_detectors, tmp_path):
    multi, detectors = two_detectors
    merged = merge_detectors(detectors, ["a", "b"])
    model = merged.components["gru"]
    assert model.hparams.members == 2 and merged.info["merged_from"] == ["a", "b"]
    sources = [d.components["gru"] for d in detectors]
    x = torch.randn(4, 8, model.hparams.n_inputs)
    for s in (0, 1):
        ids = torch.full((4,), s)
        with torch.no_grad():
            want = torch.stack([m.net(x, ids).reconstruction for m in sources]).mean(0)
            torch.testing.assert_close(model.net(x, ids).reconstruction, want)
    # the merged forecast error is that of the mean forecast, not the mean of the errors
    part = multi.series["B-2"]
    errors = [m.window_outputs(part, series="B-2").total for m in sources]
    got = model.window_outputs(part, series="B-2").total
    assert not np.allclose(got, np.mean(errors, axis=0))
    assert (got <= np.max(errors, axis=0) + 1e-5).all()  # |mean - y| <= the worse member's
    merged.save(tmp_path / "merged")
    again = Detector.load(tmp_path / "merged").components["gru"]
    np.testing.assert_array_equal(again.score_series(multi)["A-1"].score,
                                  model.score_series(multi)["A-1"].score)
    # merging a merged detector with another source widens it
    third = LitGRUAttentionAE(**sources[0].hparams)
    third.load_state_dict(sources[0].state_dict())
    with torch.no_grad():
        for weight in third.parameters():
            weight.add_(0.01 * torch.randn_like(weight))
    wider = merge_detectors(
        [Detector.load(tmp_path / "merged"), Detector({"gru": third}, detectors[0].schema)],
        ["m", "c"],
    )
    assert wider.components["gru"].hparams.members == 3


def test_merge_refuses_a_network_twice(two_detectors, tmp_path):
    """detectors=[A,A], or A beside a merge of A, would weigh A's network double."""
    _, detectors = two_detectors
    with pytest.raises(ESAInputError, match=r"^a: given twice: it would weigh double"):
        merge_detectors([detectors[0], detectors[0]], ["a", "a"])
    merge_detectors(detectors, ["a", "b"]).save(tmp_path / "merged")
    with pytest.raises(ESAInputError, match=r"^b: a network m holds too"):
        merge_detectors([Detector.load(tmp_path / "merged"), detectors[1]], ["m", "b"])


def test_merge_refuses_detectors_of_other_settings_or_data(two_detectors):
    multi, detectors = two_detectors
    with pytest.raises(ESAInputError, match="at least two"):
        merge_detectors(detectors[:1], ["a"])
    other = small(n_inputs=detectors[0].components["gru"].hparams.n_inputs,
                  series=["A-1", "B-2"], per_series=True, window=8, hidden_size=6,
                  post_processing={"threshold": {"kind": "telemanom"}})
    with pytest.raises(ESAInputError, match=r"hidden_size.*\(path: c\)|c.*hidden_size"):
        merge_detectors([detectors[0], Detector({"gru": other}, detectors[0].schema)],
                        ["a", "c"])
    shifted = LitGRUAttentionAE(**detectors[1].components["gru"].hparams)
    shifted.load_state_dict(detectors[1].components["gru"].state_dict())
    shifted.scaler_median += 1.0
    with pytest.raises(ESAInputError, match="scaler_median"):
        merge_detectors([detectors[0], Detector({"gru": shifted}, detectors[0].schema)],
                        ["a", "d"])



def test_merge_names_the_post_processing_setting_that_differs():
    """A source trained with the random-forest gate configured (and dropped by its cross-fit
    check) beside one trained with model.post_processing.rf_gate=null was refused naming only
    'post_processing', leaving the user to search for the setting among all its rules."""
    schema = mission_schema(make_mission(n_channels=1))
    torch.manual_seed(1)
    plain = Detector({"gru": small(n_inputs=2)}, schema)
    gated_rules = {"threshold": {"kind": "percentile"}, "rf_gate": {"kind": "random_forest"}}
    torch.manual_seed(2)
    gated = Detector({"gru": small(n_inputs=2, post_processing=gated_rules)}, schema)
    with pytest.raises(ESAInputError, match=r"b: hyper-parameters differ from a's: "
                                            r"\['post_processing.rf_gate'\]"):
        merge_detectors([plain, gated], ["a", "b"])

def percentile_copy(model: LitGRUAttentionAE, q: float = 95) -> LitGRUAttentionAE:
    """``model``'s networks with a percentile threshold rule (not fitted)."""
    hp = {**model.hparams, "post_processing": {"threshold": {"kind": "percentile", "q": q}}}
    copy = LitGRUAttentionAE(**hp)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("post_rules.")}
    missing, unexpected = copy.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("post_rules.") for k in missing)
    return copy.eval()


def test_merge_calibrates_the_threshold_again_on_the_merged_errors(two_detectors):
    multi, detectors = two_detectors
    sources = [percentile_copy(d.components["gru"]) for d in detectors]
    for source in sources:
        source.fit_post_processing(SimpleNamespace(mission=multi))
    percentile = [Detector({"gru": m}, d.schema) for m, d in zip(sources, detectors, strict=True)]
    with pytest.raises(ValueError, match="mission"):
        merge_detectors(percentile, ["a", "b"])
    model = merge_detectors(percentile, ["a", "b"], multi).components["gru"]
    assert model.hparams.post_processing["threshold"] == {"kind": "percentile", "q": 95}
    threshold = model.threshold_rule.threshold
    assert torch.isfinite(threshold).all()
    expected = LitGRUAttentionAE(**model.hparams)
    expected.load_state_dict(model.state_dict())
    expected.threshold_rule.threshold.fill_(float("nan"))
    expected.threshold_rule.fit(expected, SimpleNamespace(mission=multi))
    torch.testing.assert_close(threshold, expected.threshold_rule.threshold)
    # the sources' own thresholds would not fit the merged errors
    assert not torch.allclose(threshold, sources[0].threshold_rule.threshold)


def test_an_artifact_naming_an_unknown_post_processing_kind_is_refused(two_detectors, tmp_path):
    _, detectors = two_detectors
    detectors[0].save(tmp_path / "det")
    data = manifest_of(tmp_path / "det")
    data["components"]["gru"]["hparams"]["post_processing"]["threshold"]["kind"] = "os.system"
    write_manifest(tmp_path / "det", data)
    with pytest.raises(ESAInputError, match="os.system|post-processing kind"):
        Detector.load(tmp_path / "det")


def test_merging_default_detectors_refits_their_error_scale_and_threshold():
    """The default GRU normalises each channel's error (channel_norm): a merged detector must
    fit that again on the mean output before its threshold, or it cannot score at all."""
    mission = make_mission(n_rows=1200, val_start=700, test_start=1000,
                           anomalies=((300, 310), (800, 810), (1100, 1110)))
    detectors = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        dm = WindowDataModule(mission, window=6, batch_size=64)
        dm.setup("fit")
        rules = {"channel_norm": {"kind": "channel_norm"}, "threshold": {"kind": "f05"}}
        model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4,
                                  post_processing=rules)
        trainer(max_epochs=1).fit(model, dm)
        detectors.append(Detector({"gru": model}, mission_schema(mission)))
    detectors[0].info["calibration"] = {"reference_scores": [0.0, 1.0]}  # a source's own
    merged = merge_detectors(detectors, ["a", "b"], mission)
    model = merged.components["gru"]
    assert model.channel_norm is not None and model.is_calibrated
    assert np.isfinite(model.score_rows(mission.test()).score).all()
    # the confidence's nominal reference is the merged detector's validation scores
    from esa_lightning.runtime.calibration import calibration_record

    assert merged.info["calibration"] == calibration_record(merged, mission)


def reordered(mission: Mission, channels: list[int], commands: list[int]) -> Mission:
    """``mission`` with its channel and telecommand columns in another order."""
    table = mission.channels.iloc[channels].reset_index(drop=True)
    return replace(
        mission, values=mission.values[:, channels], channels=table,
        labels=mission.labels[:, channels], telecommands=mission.telecommands[:, commands],
        telecommand_names=[mission.telecommand_names[i] for i in commands],
    )


def permuted_copy(model: LitGRUAttentionAE, channels: list[int], commands: list[int]):
    """``model`` as if trained on the data in the ``reordered`` column order: its first layer
    reads, its scaler scales and its outputs give the columns in that order."""
    c = len(channels)
    inputs = channels + [c + i for i in commands]
    copy = LitGRUAttentionAE(**model.hparams)
    state = model.state_dict()
    for key in list(state):
        if key.startswith(("scaler_", "net.encoder.weight_ih_l0")):
            state[key] = state[key][:, inputs]
        elif key.startswith("net.output."):
            state[key] = state[key][channels]
        elif key.startswith("post_rules.channel_norm."):
            state[key] = state[key][..., channels]
        elif key.startswith("net.next_step."):
            horizon = model.hparams.horizon
            state[key] = state[key][[h * c + i for h in range(horizon) for i in channels]]
    copy.load_state_dict(state)
    return copy.eval()


def gru(mission: Mission, seed: int, objective: str) -> LitGRUAttentionAE:
    torch.manual_seed(seed)
    rules = {"channel_norm": {"kind": "channel_norm"}, "threshold": {"kind": "f05"}}
    model = LitGRUAttentionAE(
        n_inputs=5, n_outputs=3, window=6, hidden_size=8, latent_dim=4, objective=objective,
        horizon=2 if objective == "forecast" else 1, post_processing=rules,
    )
    rng = np.random.default_rng(0)  # the same data's scaler, its own per column: a mix-up shows
    model.set_scaler(rng.normal(size=(1, 5)), rng.uniform(0.5, 2.0, size=(1, 5)))
    model.fit_post_processing(SimpleNamespace(mission=mission))
    return model.eval()


@pytest.mark.parametrize("objective", ["reconstruct", "forecast"])
def test_merge_accepts_sources_listing_the_channels_in_another_order(objective):
    """A source trained on the same channels and telecommands listed in another order
    (data.channels=[...] in another order) was refused ("schema differs"): each source reads
    the columns by name, so the merge scores as if the two had been listed alike."""
    mission = make_mission(n_rows=700, val_start=400, test_start=550,
                           anomalies=((100, 110), (450, 460), (600, 610)))
    rng = np.random.default_rng(3)
    mission = replace(mission, telecommands=(rng.random((700, 2)) < 0.1).astype(np.float32),
                      telecommand_names=["tc_a", "tc_b"])
    channels, commands = [2, 0, 1], [1, 0]
    other = reordered(mission, channels, commands)
    a, b = gru(mission, 1, objective), gru(mission, 2, objective)
    b_other = permuted_copy(b, channels, commands)
    # the permuted source is the same detector, reading the data in its own order
    np.testing.assert_allclose(b_other.score_rows(other.test()).channel_scores,
                               b.score_rows(mission.test()).channel_scores[:, channels],
                               rtol=1e-5, atol=1e-6)
    alike = [Detector({"gru": m}, mission_schema(mission)) for m in (a, b)]
    mixed = [alike[0], Detector({"gru": b_other}, mission_schema(other))]
    expected = merge_detectors(alike, ["a", "b"], mission)
    merged = merge_detectors(mixed, ["a", "b_other"], mission)
    assert merged.schema == mission_schema(mission)  # the first source's order
    model, want = merged.components["gru"], expected.components["gru"]
    torch.testing.assert_close(model.threshold_rule.threshold, want.threshold_rule.threshold)
    got, ref = merged.score_rows(mission.test()), expected.score_rows(mission.test())
    np.testing.assert_allclose(got.score, ref.score, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.channel_scores, ref.channel_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.alarm, ref.alarm)


def test_merge_refuses_other_channels_naming_them():
    mission = make_mission(n_rows=700, val_start=400, test_start=550, anomalies=((450, 460),))
    a = gru(replace(mission, telecommands=np.zeros((700, 2), np.float32),
                    telecommand_names=["tc_a", "tc_b"]), 1, "reconstruct")
    schema = {**mission_schema(mission), "telecommands": ["tc_a", "tc_b"]}
    renamed = {**schema, "channels": ["channel_1", "channel_9", "channel_3"]}
    detectors = [Detector({"gru": a}, schema), Detector({"gru": a}, renamed)]
    with pytest.raises(ESAInputError, match=r"b: channels differ from a's: missing \['channel_2'"
                                            r"\], extra \['channel_9'\]"):
        merge_detectors(detectors, ["a", "b"], mission)
    fewer = {**schema, "telecommands": ["tc_b"]}  # a source sized for them: 3 + 1 inputs
    one_command = LitGRUAttentionAE(**{**a.hparams, "n_inputs": 4})
    with pytest.raises(ESAInputError, match=r"telecommands.*missing \['tc_a'\]$"):
        merge_detectors([detectors[0], Detector({"gru": one_command}, fewer)], ["a", "b"], mission)


def test_merge_accepts_independent_series_in_another_order(two_detectors):
    """Series listed in another order (data.channels=[B-2,A-1]) were refused ("series" among
    the differing hyper-parameters): each series keeps its own network and scaler by name."""
    multi, detectors = two_detectors
    b = detectors[1].components["gru"]
    swapped = LitGRUAttentionAE(**{**b.hparams, "series": ["B-2", "A-1"]})
    state = b.state_dict()
    for key in list(state):
        if key.startswith("scaler_"):
            state[key] = state[key][[1, 0]]
    nets = {k: v for k, v in state.items() if k.startswith("net.nets.")}
    for key, value in nets.items():
        index = key.split(".")[2]
        state[key.replace(f"nets.{index}.", f"nets.{1 - int(index)}.", 1)] = value
    swapped.load_state_dict(state)
    schema = {**detectors[1].schema, "channels": ["B-2", "A-1"]}
    mixed = [detectors[0], Detector({"gru": swapped.eval()}, schema)]
    expected = merge_detectors(detectors, ["a", "b"], multi)
    merged = merge_detectors(mixed, ["a", "b_swapped"], multi)
    assert merged.components["gru"].hparams.series == ["A-1", "B-2"]
    for name, part in multi.grids().items():
        got = merged.components["gru"].score_rows(part.test(), series=name)
        ref = expected.components["gru"].score_rows(part.test(), series=name)
        np.testing.assert_allclose(got.score, ref.score, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.alarm, ref.alarm)


def test_merge_refuses_the_sources_mission_read_with_another_split(tmp_path):
    """``merge.py`` with the default ``data.val_days`` for sources trained with
    ``data.val_days=3`` refitted their thresholds on a validation range that held rows the
    networks had trained on, and reported its metrics, silently. The sources' checkpoints
    record the split they were trained on; the merge's data must read the same."""
    from esa_lightning.data.mission import mission_record
    from esa_lightning.jobs.merge import refuse_other_split

    mission = make_mission()
    trained = mission_record(mission)
    ckpt = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {}, "esa_lightning_data": trained}, ckpt)
    sources = [SimpleNamespace(checkpoints={"gru": ckpt}), SimpleNamespace(checkpoints={})]
    refuse_other_split(sources, ["a", "b"], mission)  # the same split: merged
    other = replace(mission, val_start=mission.val_start - 5)
    with pytest.raises(ESAInputError, match=r"data.val_days") as caught:
        refuse_other_split(sources, ["a", "b"], other)
    assert str(ckpt) in str(caught.value) and "merge" in str(caught.value)
    # another mission of the same channels is the user's choice of calibration data
    refuse_other_split(sources, ["a", "b"], replace(other, name="elsewhere"))


def test_merge_py_into_a_training_runs_folder_leaves_its_record_as_it_was(tmp_path):
    """merge.py with ``hydra.run.dir=`` a source's own run folder was refused, but only after
    Hydra had rewritten that run's ``.hydra/`` (its ``overrides.yaml``, the retrain command its
    artifact's errors give, became the merge's) and added merge's log there."""
    from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

    run = tmp_path / "run"  # run_entry's hydra.run.dir: a training run's folder
    (run / ".hydra").mkdir(parents=True)
    (run / "detector").mkdir()
    (run / "metrics.json").write_text("{}")
    record = "- experiment=gru_ae\n"
    (run / ".hydra" / "overrides.yaml").write_text(record)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    proc = run_entry("merge.py", ["detectors=[a,b]"], tmp_path)
    assert_one_line_error(proc, str(run), "already holds detector and metrics.json")
    assert (run / ".hydra" / "overrides.yaml").read_text() == record
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


@pytest.mark.parametrize("order", ["gru first", "gru second"])
def test_merge_names_a_source_of_another_model_family_as_such(order):
    """A z-score detector given beside a GRU one was refused as "schema differs from ...'s:
    ['features']" (a difference of data, it read) when it came second, and named as another
    model only when it came first."""
    from tests.helpers import fitted_zscore

    mission = make_mission(n_rows=700, val_start=400, test_start=550, anomalies=((450, 460),))
    schema = {**mission_schema(mission), "telecommands": ["tc_a", "tc_b"]}
    a = gru(replace(mission, telecommands=np.zeros((700, 2), np.float32),
                    telecommand_names=["tc_a", "tc_b"]), 1, "reconstruct")
    features = list(mission.channel_names)  # per component, as a saved artifact lists them
    pair = [(Detector({"gru": a}, {**schema, "features": {"gru": features}}), "g"),
            (Detector({"z": fitted_zscore(mission)}, {**schema, "features": {"z": []}}), "z")]
    if order == "gru second":
        pair.reverse()
    detectors, sources = zip(*pair, strict=True)
    with pytest.raises(ESAInputError, match=r"^z: component 'z' is a RobustZScore, not a GRU"):
        merge_detectors(list(detectors), list(sources), mission)


def test_merge_refuses_a_source_trained_on_another_mission_naming_both(two_detectors):
    """Detectors whose detector.json records other missions (a mission copied under another
    name, or another one of the same channels) were merged silently when their schema and
    scaler agreed; the refusal names both missions and the source."""
    _, detectors = two_detectors
    here = [Detector(d.components, d.schema, info={"mission": "mis0"}) for d in detectors]
    merge_detectors(here, ["a", "b"])  # the same mission: merged
    there = Detector(detectors[1].components, detectors[1].schema, info={"mission": "misCopy"})
    with pytest.raises(ESAInputError, match=r"^b: .*mission 'misCopy'.*a's .*'mis0'"):
        merge_detectors([here[0], there], ["a", "b"])
    # a source without the record (written before detectors recorded it) is not compared
    merge_detectors([here[0], detectors[1]], ["a", "b"])
