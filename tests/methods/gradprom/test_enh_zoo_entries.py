"""Study C's zoo entries: the smoke twins train end to end into a scratch zoo; the real recipes are stable
and build and score a batch of real data when the shared datasets are there."""

from __future__ import annotations

import pytest
import torch

from medtask import zoo
from medtask.errors import InvalidParameterError
from medtask.methods.gradprom import study as es
from medtask.methods.gradprom import zoo as czoo

REAL = sorted(czoo.STUDY_C_STEPS)
SMOKE = [czoo.smoke_name(n) for n in REAL]


def test_entries_are_registered_with_smoke_twins(check_smoke_twins):
    pairs = check_smoke_twins(REAL, czoo.smoke_name, "C")
    for name, (real, _twin) in pairs.items():
        assert min(real.data[0]["size"]) >= 96 and real.steps == czoo.STUDY_C_STEPS[name]
    assert pairs["srresnet-covidct-gaussian0.2"][0].degradation == {"name": "gaussian", "sigma": 0.2}


def test_recipe_keys_are_stable():
    e = zoo.get("srresnet-covidct-gaussian0.2")
    assert e.key() == zoo.get("srresnet-covidct-gaussian0.2").key()
    assert e.architecture() == {"arch": "srresnet", "in_channels": 1, "scale": 1, "depth": 4, "width": 16,
                                "batch_norm": True, "image_residual": True}
    assert zoo.get("srresnet-covidct-bicubic-x4").architecture()["scale"] == 4
    assert len({zoo.get(n).key() for n in REAL}) == len(REAL)


def test_enhancer_key_follows_its_degradation():
    """Another noise level is another run: training must not resume, nor `zoo verify` pass, the old one."""
    base = dict(name="e", study="C", description="d", steps=4, eval_every=2, metric="psnr_db", higher_is_better=True,
                data=[dict(x) for x in czoo.COVID_DATA])
    keys = {czoo.EnhancerEntry(**base, degradation={"name": "gaussian", "sigma": s}).key() for s in (0.2, 0.5)}
    assert len(keys) == 2
    e = czoo.EnhancerEntry(**base, degradation={"name": "gaussian", "sigma": 0.5},
                           hyperparameters={"degradation": {"name": "gaussian", "sigma": 0.2}})
    assert e.hyperparameters["degradation"] == e.degradation == {"name": "gaussian", "sigma": 0.5}


@pytest.mark.parametrize("name", SMOKE)
def test_smoke_twin_trains_into_a_card(scratch_zoo, name):
    card = zoo.train(name, threads=1, progress=False)
    entry = zoo.get(name)
    assert [r["step"] for r in card["curve"]] == [0, 1, 2, 3]
    assert card["metric"] == entry.metric and all(entry.metric in r for r in card["curve"])
    expected = ({"psnr_db", "ssim", "input_psnr_db", "gain_db"} if isinstance(entry, czoo.EnhancerEntry) else
                {"accuracy", "balanced_accuracy", "auc"} if entry.task == "classification" else {"miou", "dice"})
    assert expected <= set(card["test"])
    model = zoo.load(name)
    x = czoo.degraded_set(entry.data[0], "test", getattr(entry, "degradation", None) or czoo.CLEAN).degraded[:2]
    with torch.inference_mode():
        out = model(x)
    if isinstance(entry, czoo.EnhancerEntry):
        assert out.shape[-1] == x.shape[-1] * entry.architecture()["scale"]
        assert card["test"]["gain_db"] == pytest.approx(card["test"]["psnr_db"] - card["test"]["input_psnr_db"])


@pytest.mark.parametrize("name", ["resnet18-covidct", "unet-cvc", "srresnet-covidct-gaussian0.2",
                                  "srresnet-covidct-bicubic-x4"])
def test_real_entry_builds_and_scores_real_data(data_root, monkeypatch, name):
    """One training batch and the entry's scores on the first 8 validation images of its real data."""
    monkeypatch.setenv("MEDTASK_DATA", str(data_root))
    torch.set_num_threads(1)
    entry = zoo.get(name)
    model = entry.build()
    batch = entry.batches(torch.device("cpu"))(0)
    assert len(batch["image"]) == entry.hyperparameters["batch_size"]
    real = czoo.degraded_set

    def few(d, split, degradation):
        full = real(d, split, degradation)
        return czoo.DegradedTestSet(full.degraded[:8], full.clean[:8], None if full.labels is None else full.labels[:8],
                                    None if full.masks is None else full.masks[:8], full.ids[:8], full.degradation)

    monkeypatch.setattr(czoo, "degraded_set", few)
    scores = entry.evaluate(model, "val", torch.device("cpu"))
    assert entry.metric in scores
    if isinstance(entry, czoo.EnhancerEntry):  # an untrained image-residual enhancer starts at the input
        assert scores["input_psnr_db"] > 5


def test_the_chapters_start_names_are_registered_entries_and_their_twins():
    listed, every = zoo.entries(), zoo.entries(smoke=True)
    for task, tag in (("classification", "covidct"), ("segmentation", "cvc")):
        name = es.zoo_recogniser_name(task, tag)
        assert name in listed and czoo.smoke_name(name) == es.zoo_recogniser_name(task, es.SMOKE_DATA_TAGS[tag])
        assert czoo.smoke_name(name) in every
    for sigma in (0.1, 0.2, 0.3):  # the zoo trains one noise level; every sigma starts from it
        assert es.zoo_enhancer_name({"name": "gaussian", "sigma": sigma}, "covidct") == "srresnet-covidct-gaussian0.2"
    for factor in (2, 4):
        name = es.zoo_enhancer_name({"name": "bicubic", "factor": factor}, "covidct")
        assert name in listed and czoo.smoke_name(name) in every
    # the zoo trains no enhancer for the composite degradation: it starts from the denoiser, its nearest entry
    assert es.zoo_enhancer_name({"name": "composite"}, "covidct") == "srresnet-covidct-gaussian0.2"
    with pytest.raises(InvalidParameterError, match="rec_steps=0"):
        es.StudyConfig(rec_steps=0)
    assert es.StudyConfig(rec_steps=0, init="zoo").rec_steps == 0
    with pytest.raises(InvalidParameterError, match="rec_steps=0"):  # a zoo start without its recognisers
        es.StudyConfig(rec_steps=0, init="zoo", recognisers_from_zoo=False)


def test_segmentation_recogniser_trains_on_foreground_zoomed_whole_frames():
    """unet-cvc learns from ERFNet's polyp-centred zooms (the test videos film their polyps close up); the
    classifier has its own affine recipe."""
    from medtask.data.augment import FOREGROUND_ZOOM

    assert zoo.get("unet-cvc").hyperparameters["augment"] == FOREGROUND_ZOOM
    assert zoo.get("resnet18-covidct").hyperparameters["augment"]["affine"]["scale"] == [0.8, 1.25]
    assert "weight_decay" not in zoo.get("unet-cvc").hyperparameters  # its recipe key stays 96885ac24093
    twin = zoo.get(czoo.smoke_name("unet-cvc"))
    batch = twin.batches(torch.device("cpu"))(0)
    assert tuple(batch["image"].shape[-2:]) == tuple(twin.data[0]["size"])


def test_classifier_recipe_trains_with_decoupled_weight_decay():
    """The classifier's weight decay reaches its optimiser (AdamW); without it the strategy keeps plain Adam."""
    from medtask.methods.gradprom.strategies import RecogniserOnly

    entry = zoo.get("resnet18-covidct")
    assert entry.hyperparameters["weight_decay"] == 0.05
    strategy = entry.strategy(entry.build(), torch.device("cpu"))
    opt = strategy.optimizers()["recogniser"]
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.05
    plain = RecogniserOnly(entry.build(), "classification")
    opt = plain.optimizers()["recogniser"]
    assert type(opt) is torch.optim.Adam
