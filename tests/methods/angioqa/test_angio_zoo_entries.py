"""Study B's zoo entries: the smoke twins train end to end into a scratch zoo; the real recipes are stable
and build and score a batch of real DRIVE data when the shared datasets are there."""

from __future__ import annotations

import pytest
import torch

from medtask import zoo
from medtask.errors import InvalidParameterError
from medtask.methods.angioqa import study as st
from medtask.methods.angioqa import zoo as bzoo
from medtask.methods.angioqa.quality import GRADES

REAL = sorted(bzoo.STUDY_B_ENTRIES)
SMOKE = [bzoo.smoke_name(n) for n in REAL]


def test_entries_are_registered_with_smoke_twins(check_smoke_twins):
    for real, twin in check_smoke_twins(REAL, bzoo.smoke_name, "B").values():
        assert (real.arm, real.task) == (twin.arm, twin.task)
        assert real.data[0]["dataset"] == "DRIVE" and real.data[0]["size"] >= 256
        assert real.steps >= 1000 and real.eval_every * 10 == real.steps


def test_recipe_keys_are_stable():
    """The key hashes the whole recipe: recomputing it gives the same value, and a changed recipe a new one."""
    e = zoo.get("angioqanet-drive")
    assert e.key() == zoo.get("angioqanet-drive").key()
    assert set(e.spec()) == {"name", "architecture", "data", "steps", "parent", "grad_clip", "hyperparameters"}
    assert e.spec()["hyperparameters"]["eval_versions"] == {"val": 15, "test": 6}
    keys = {zoo.get(n).key() for n in REAL}
    assert len(keys) == len(REAL)
    assert {zoo.get(n).hyperparameters["crop"] for n in REAL} == {128}  # UNETR too: it works on 128-px tiles


def test_graded_versions_follow_the_protocol():
    src = bzoo.sources(bzoo.SMOKE_DATA[0], "train")
    batch = {"image": torch.stack([s["image"] for s in src[:4]]), "mask": torch.stack([s["mask"] for s in src[:4]])}
    g = torch.Generator().manual_seed(3)
    a = bzoo.GradedVersions(0)(batch, g)
    b = bzoo.GradedVersions(0)(batch, torch.Generator().manual_seed(3))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])  # resumable
    assert a["image"].shape == batch["image"].shape and set(a["label"].tolist()) <= set(range(len(GRADES)))
    for grade, faults in zip(a["label"].tolist(), a["faults"]):
        assert (faults == "") == (grade == 0)  # good versions carry no fault, fair / poor ones do


@pytest.mark.parametrize("name", ["angioqanet-phantom", "vessels-unet-phantom", "quality-resnet18-phantom"])
def test_smoke_twin_trains_into_a_card(scratch_zoo, name):
    card = zoo.train(name, threads=1, progress=False)
    assert [r["step"] for r in card["curve"]] == [0, 2, 3]
    entry = zoo.get(name)
    assert card["metric"] == entry.metric and entry.metric in card["test"]
    expected = {"both": {"dice", "accuracy", "macro_f1", "dice_good", "dice_accuracy"},
                "seg": {"dice", "iou", "sensitivity", "dice_good"}, "cls": {"accuracy", "macro_f1"}}[entry.task]
    assert expected <= set(card["test"]) and all(isinstance(v, float) for v in card["test"].values())
    assert all(entry.metric in r and "train_loss" in r for r in card["curve"][1:])
    assert card["plateau"]["to_step"] == 3
    model = zoo.load(name)
    assert zoo.verify()  # the real entries are listed (untrained) beside the smoke twin
    x = bzoo.protocol_set(entry.data[0], "test", 3)[0]["image"][None]
    with torch.inference_mode():
        out = model(x)
    assert isinstance(out, (dict, torch.Tensor))


@pytest.mark.parametrize("name", sorted(set(SMOKE) - {"angioqanet-phantom", "vessels-unet-phantom",
                                                       "quality-resnet18-phantom"}))
def test_every_other_smoke_twin_trains(scratch_zoo, name):
    card = zoo.train(name, threads=1, progress=False)
    assert zoo.get(name).metric in card["test"] and len(card["curve"]) == 3


@pytest.mark.parametrize("name", ["angioqanet-drive", "vessels-sa-unet-drive", "quality-mobilenetv2-drive"])
def test_real_entry_builds_and_scores_real_data(data_root, monkeypatch, name):
    """One training batch and one scoring pass on DRIVE (its validation versions cut to one source image)."""
    monkeypatch.setenv("MEDTASK_DATA", str(data_root))
    torch.set_num_threads(1)
    entry = zoo.get(name)
    model = entry.build()
    batch = entry.batches(torch.device("cpu"))(0)
    crop = entry.hyperparameters["crop"]
    assert batch["image"].shape == (entry.hyperparameters["batch_size"], 1, crop, crop)
    assert batch["label"].shape == (entry.hyperparameters["batch_size"],)
    val = bzoo.protocol_set(entry.data[0], "val")
    assert len(val) == 4 * bzoo.EVAL_VERSIONS["val"] and val[0]["image"].shape == (1, 256, 256)
    monkeypatch.setattr(bzoo, "protocol_set", lambda d, split, n, seed: val[:3])
    scores = entry.evaluate(model, "val", torch.device("cpu"))
    assert entry.metric in scores and all(0.0 <= v <= 1.0 for v in scores.values())


def test_every_chapter_arm_has_an_entry():
    assert set(bzoo.STUDY_B_ENTRIES) == {st.zoo_name(arm) for arm in st.ARMS}
    assert {arm for arm, _ in bzoo.STUDY_B_ENTRIES.values()} == set(st.ARMS)
    with pytest.raises(InvalidParameterError, match="unknown arm"):
        st.zoo_name("VGG")


def test_swin_t_trains_at_a_tenth_of_the_common_learning_rate_in_the_zoo_and_the_chapter():
    lrs = {arm: zoo.get(st.zoo_name(arm)).hyperparameters["lr"] for arm in st.ARMS}
    assert lrs.pop("Swin-T") == 1e-4 and set(lrs.values()) == {bzoo.LR}
    assert st.arm_lr("Swin-T", 3e-3) == 3e-4 and st.arm_lr("ResNet-18", 3e-3) == 3e-3


@pytest.mark.parametrize("arm", ["AngioQANet", "ResNet-18"])
def test_an_arm_started_from_the_zoo_scores_what_its_card_says(scratch_zoo, arm):
    """init='zoo' with no further steps is the zoo's network: the chapter's scores on the card's test versions
    are the card's test scores (the stored weights), and nothing is trained."""
    name = st.zoo_name(arm, "phantom")
    card = zoo.train(name, threads=1, progress=False)
    entry = zoo.get(name)
    test = bzoo.protocol_set(entry.data[0], "test", entry.hyperparameters["eval_versions"]["test"])
    model, row = st.run_arm(arm, [], test, size=32, steps=0, batch_size=2, lr=1e-3, seed=0, device="cpu",
                            baseline_width=8, vit_dim=48, latency_repeats=1, init="zoo", zoo_data="phantom")
    assert row["start"] == f"zoo: {name}" and row["steps_in_chapter"] == 0
    assert row["train_s_per_step"] != row["train_s_per_step"]  # NaN: nothing trained
    for k in ("accuracy", "macro_f1") + (("dice",) if entry.task == "both" else ()):
        assert row[k] == pytest.approx(card["test"][k], abs=1e-6)
    with pytest.raises(InvalidParameterError, match="init must be one of"):
        st.run_arm(arm, [], test, size=32, steps=0, batch_size=2, lr=1e-3, seed=0, device="cpu", init="imagenet")
