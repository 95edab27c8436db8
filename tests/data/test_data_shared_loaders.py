"""Loaders on the real datasets (skipped when MEDTASK_DATA lacks them); counts from each PROVENANCE.md."""

from __future__ import annotations

import pytest
import torch

from medtask.data import load

pytestmark = pytest.mark.shared_data


def _check_seg(ds, n_classes=2):
    s = ds[0]
    assert s["image"].dtype == torch.float32 and s["image"].ndim == 3 and s["image"].shape[0] == 3
    assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
    assert s["mask"].dtype == torch.int64 and s["mask"].shape == s["image"].shape[1:]
    assert set(torch.unique(s["mask"]).tolist()) <= set(range(n_classes))
    assert isinstance(s["id"], str)


def test_cvc_colondb_block_split(shared_root, need):
    need("CVC-ColonDB")
    parts = {sp: load("cvc-colondb", sp, root=shared_root, size=(64, 64)) for sp in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [228, 76, 76]
    ids = {s: [int(i) for i in d.ids] for s, d in parts.items()}
    assert ids["train"] == list(range(1, 229)) and ids["val"] == list(range(229, 305))
    assert ids["test"] == list(range(305, 381))
    ds = parts["test"]
    assert ds.task == "segmentation" and ds.classes == ["background", "polyp"] and ds.name == "CVC-ColonDB"
    _check_seg(ds)
    assert ds[0]["image"].shape == (3, 64, 64)
    assert sum(int(d[i]["mask"].sum() > 0) for d in parts.values() for i in range(len(d))) >= 370  # polyps in ~all frames


def test_cvc_colondb_full_resolution(shared_root, need):
    need("CVC-ColonDB")
    ds = load("CVC-ColonDB", "val", root=shared_root, limit=3)
    assert len(ds) == 3 and ds[0]["image"].shape == (3, 500, 574)
    assert ds.ids == ["229", "230", "231"]


def test_bccd_official_splits(shared_root, need):
    need("BCCD")
    parts = {sp: load("BCCD", sp, root=shared_root) for sp in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [263, 65, 36]
    assert not (set(parts["train"].ids) & set(parts["test"].ids)) and not (set(parts["train"].ids) & set(parts["val"].ids))
    ds = parts["train"]
    assert ds.task == "detection" and ds.classes == ["background", "RBC", "WBC", "Platelets"]
    s = ds[0]
    assert s["image"].shape == (3, 480, 640) and s["boxes"].shape[1] == 4 and s["labels"].dtype == torch.int64
    total = {c: 0 for c in ds.classes}
    for d in parts.values():
        for c, n in d.class_counts().items():
            total[c] += n
    # 4,155 RBC minus the two zero-area boxes that are dropped; ids in ImageSets cover all 364 images
    assert total == {"background": 0, "RBC": 4153, "WBC": 372, "Platelets": 361}
    for d in parts.values():
        for r in d.records:
            b = r.boxes
            assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all() and b[:, 2].max() <= 640 and b[:, 3].max() <= 480


def test_bccd_resize_scales_boxes(shared_root, need):
    need("BCCD")
    full = load("BCCD", "test", root=shared_root, limit=2)
    small = load("BCCD", "test", root=shared_root, limit=2, size=(240, 320))
    assert small[0]["image"].shape == (3, 240, 320)
    assert torch.allclose(small[0]["boxes"], full[0]["boxes"] / 2)


def test_covidct_official_split(shared_root, need):
    need("COVID-CT")
    parts = {sp: load("COVID-CT", sp, root=shared_root, size=(32, 32)) for sp in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [425, 118, 203]
    labels = {s: [d.record(i).label for i in range(len(d))] for s, d in parts.items()}
    assert [sum(labels[s]) for s in ("train", "val", "test")] == [191, 60, 98]  # COVID counts
    all_ids = [i for d in parts.values() for i in d.ids]
    assert len(set(all_ids)) == 746
    ds = parts["val"]
    assert ds.task == "classification" and ds.classes == ["NonCOVID", "COVID"]
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["label"] in (0, 1)
    assert {ds[0]["label"], ds[1]["label"]} == {0, 1}  # classes alternate, so limit=n keeps both


def test_drive_official(shared_root, need):
    need("DRIVE")
    tr, te = load("DRIVE", "train", root=shared_root), load("DRIVE", "test", root=shared_root)
    assert len(tr) == 20 and len(te) == 20 and not set(tr.ids) & set(te.ids)
    s = te[0]
    _check_seg(te)
    assert s["image"].shape == (3, 584, 565) and s["fov"].dtype == torch.bool and s["fov"].shape == (584, 565)
    assert 0.6 < float(s["fov"].float().mean()) < 0.8
    assert 0.05 < float(s["mask"].float().mean()) < 0.2
    te2 = load("DRIVE", "test", root=shared_root, observer=2, limit=1)
    assert not torch.equal(te2[0]["mask"], s["mask"])
    val = load("DRIVE", "val", root=shared_root, val_count=4, size=64)
    tr16 = load("DRIVE", "train", root=shared_root, val_count=4, size=64)
    assert val.ids == ["37_training", "38_training", "39_training", "40_training"] and len(tr16) == 16


def test_chase_child_level_split(shared_root, need):
    need("CHASE_DB1")
    parts = {sp: load("CHASE_DB1", sp, root=shared_root, size=(96, 100)) for sp in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [16, 4, 8]
    children = {s: {i[6:8] for i in d.ids} for s, d in parts.items()}
    assert not (children["train"] & children["test"]) and not (children["train"] & children["val"])
    assert not (children["val"] & children["test"])
    for d in parts.values():  # both eyes of every child on the same side
        assert sorted(d.ids) == sorted(f"Image_{c}{e}" for c in {i[6:8] for i in d.ids} for e in "LR")
    _check_seg(parts["test"])
    assert parts["test"][0]["fov"].float().mean() > 0.4
    other = load("CHASE_DB1", "test", root=shared_root, seed=1, size=32)
    assert other.ids != parts["test"].ids


def test_arcade_mini_subset(shared_root, need):
    need("ARCADE_stenosis_mini_subset")
    ds = load("ARCADE", "test", root=shared_root)
    assert len(ds) == 22 and ds.classes == ["background", "stenosis"] and ds.info["copy"] == "mini subset"
    _check_seg(ds)
    assert ds[0]["image"].shape == (3, 512, 512)
    assert all(int(ds[i]["mask"].sum()) > 0 for i in range(len(ds)))
    assert "421" not in ds.ids and "454" not in ds.ids  # masks without an image are skipped
    import pytest as _pytest

    from medtask.errors import InvalidParameterError
    with _pytest.raises(InvalidParameterError, match="demonstration"):
        load("ARCADE", "train", root=shared_root)


def test_annotation_only_copies_say_images_are_missing(shared_root, need):
    import pytest as _pytest

    from medtask.errors import DatasetNotFoundError
    need("ChestX-Det")
    need("ISIC2018_labels_only")
    for name in ("ChestX-Det", "ChestX-Det10"):
        with _pytest.raises(DatasetNotFoundError, match="train_data"):
            load(name, "train", root=shared_root)
    with _pytest.raises(DatasetNotFoundError, match="challenge.isic-archive.com"):
        load("ISIC2018", "train", root=shared_root)


def test_batches_from_loaders(shared_root, need):
    """The datasets plug into the training batches (fixed-size stacks; variable boxes stay lists)."""
    from medtask.engine import RandomBatches

    need("BCCD")
    need("CVC-ColonDB")
    det = RandomBatches(load("BCCD", "val", root=shared_root, size=(120, 160)), 4, seed=0)(0)
    assert det["image"].shape == (4, 3, 120, 160) and isinstance(det["boxes"], list) and len(det["labels"]) == 4
    seg = RandomBatches(load("CVC-ColonDB", "val", root=shared_root, size=(64, 64), limit=8), 4, seed=0)(1)
    assert seg["image"].shape == (4, 3, 64, 64) and seg["mask"].shape == (4, 64, 64)
