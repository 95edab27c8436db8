"""Phantoms: deterministic, right formats, only when named."""

from __future__ import annotations

import pytest
import torch

from medtask.data import load
from medtask.errors import InvalidParameterError


@pytest.mark.parametrize("name,task", [("phantom-polyp", "segmentation"), ("phantom-boxes", "detection"),
                                       ("phantom-vessels", "segmentation"), ("phantom-classes", "classification")])
def test_phantom_formats_and_determinism(name, task):
    a = load(name, "train", n=6, size=(48, 40), seed=3)
    b = load(name.upper(), "train", n=4, size=(48, 40), seed=3)
    c = load(name, "train", n=6, size=(48, 40), seed=4)
    assert a.task == task and len(a) == 6 and len(b) == 4 and a.classes[0] in ("background", "clean")
    for k in range(4):  # sample k does not depend on n
        assert torch.equal(a[k]["image"], b[k]["image"])
    assert not torch.equal(a[0]["image"], c[0]["image"])
    s = a[0]
    assert s["image"].dtype == torch.float32 and s["image"].shape[1:] == (48, 40)
    assert 0 <= float(s["image"].min()) and float(s["image"].max()) <= 1
    if task == "segmentation":
        assert s["mask"].shape == (48, 40) and s["mask"].dtype == torch.int64
        assert sum(int(a[i]["mask"].sum()) for i in range(6)) > 0
    if task == "detection":
        for i in range(6):
            x = a[i]
            assert x["boxes"].shape[0] == x["labels"].shape[0] >= 1
            assert (x["boxes"][:, 2] > x["boxes"][:, 0]).all() and (x["labels"] >= 1).all()
            assert (x["boxes"][:, 2] <= 40).all() and (x["boxes"][:, 3] <= 48).all()
    if task == "classification":
        assert {a[i]["label"] for i in range(6)} == {0, 1}
    if name == "phantom-vessels":
        assert s["fov"].dtype == torch.bool and not bool((s["mask"].bool() & ~s["fov"]).any())


def test_phantom_splits_differ_and_limit():
    tr, te = load("phantom-polyp", "train", n=3), load("phantom-polyp", "test", n=3)
    assert not torch.equal(tr[0]["image"], te[0]["image"])
    assert len(load("phantom-polyp", "val")) == 16 and len(load("phantom-polyp", "train", limit=5)) == 5
    with pytest.raises(InvalidParameterError):
        load("phantom-polyp", "all")
    with pytest.raises(InvalidParameterError):
        load("phantom-polyp", "train", colour="red")


def test_phantom_classes_learnable_signal():
    """The blotch class is brighter inside the body on average: a classifier has something to learn."""
    ds = load("phantom-classes", "train", n=40, size=32)
    means = {0: [], 1: []}
    for i in range(len(ds)):
        means[ds[i]["label"]].append(float(ds[i]["image"].mean()))
    assert sum(means[1]) / len(means[1]) > sum(means[0]) / len(means[0])
