"""Loaders of datasets absent here, on tiny fixtures written in their official layouts; loader error paths."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medtask.data import load, sources
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

RNG = np.random.default_rng(0)


def _rgb(path: Path, h: int, w: int, fmt: str | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return arr


def _gray(path: Path, arr: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path, format=fmt)


# --------------------------------------------------------------------------------------------
# ChestX-Det / ChestX-Det10
# --------------------------------------------------------------------------------------------
def _chestxdet(root: Path, variant: str) -> None:
    d = root / variant
    train_json, test_json = (("ChestX_Det_train.json", "ChestX_Det_test.json") if variant == "ChestX-Det"
                             else ("train.json", "test.json"))
    entries = {
        "train": [{"file_name": "100.png", "syms": ["Effusion", "Nodule"], "boxes": [[2, 4, 20, 30], [40, 40, 50, 52]],
                   "polygons": [[[2, 4], [20, 4], [20, 30], [2, 30]], [[40, 40], [50, 40], [50, 52]]]},
                  {"file_name": "101.png", "syms": [], "boxes": [], "polygons": []}],
        "test": [{"file_name": "200.png", "syms": ["Pneumothorax"], "boxes": [[10, 10, 60, 70]],
                  "polygons": [[[10, 10], [60, 10], [60, 70], [10, 70]]]}],
    }
    for part, fname in (("train", train_json), ("test", test_json)):
        es = entries[part]
        if variant == "ChestX-Det10":
            es = [{k: v for k, v in e.items() if k != "polygons"} for e in es]
        d.mkdir(parents=True, exist_ok=True)
        (d / fname).write_text(json.dumps(es))
        for e in es:
            _gray(d / f"{part}_data" / e["file_name"], RNG.integers(0, 256, (80, 64)))


@pytest.mark.parametrize("variant", ["ChestX-Det", "ChestX-Det10"])
def test_chestxdet_official_layout(tmp_path, variant):
    _chestxdet(tmp_path, variant)
    tr = load(variant.lower(), "train", root=tmp_path)
    assert tr.task == "detection" and tr.name == variant and len(tr) == 2 and tr.ids == ["100", "101"]
    assert len(tr.classes) == (14 if variant == "ChestX-Det" else 11) and tr.classes[0] == "background"
    s = tr[0]
    assert s["image"].shape == (3, 80, 64)
    assert s["boxes"].tolist() == [[2, 4, 20, 30], [40, 40, 50, 52]]
    assert [tr.classes[k] for k in s["labels"]] == ["Effusion", "Nodule"]
    assert tr[1]["boxes"].shape == (0, 4) and tr[1]["labels"].shape == (0,)  # a normal image
    te = load(variant, "test", root=tmp_path, size=(40, 32))
    assert te[0]["boxes"].tolist() == [[5, 5, 30, 35]]  # boxes scaled with the image; x clipped at 64
    assert len(load(variant, "all", root=tmp_path)) == 3


def test_chestxdet_polygon_masks(tmp_path):
    _chestxdet(tmp_path, "ChestX-Det")
    ds = load("ChestX-Det", "train", root=tmp_path, masks=True)
    m = ds[0]["mask"]
    assert m.shape == (80, 64) and int(m[10, 10]) == ds.classes.index("Effusion")
    assert int(m[45, 48]) == ds.classes.index("Nodule") and int(m[70, 5]) == 0
    with pytest.raises(InvalidParameterError):
        load("ChestX-Det10", "train", root=tmp_path, masks=True)


def test_chestxdet_annotations_only_says_images_missing(tmp_path):
    _chestxdet(tmp_path, "ChestX-Det")
    import shutil

    shutil.rmtree(tmp_path / "ChestX-Det" / "train_data")
    with pytest.raises(DatasetNotFoundError, match="train_data"):
        load("ChestX-Det", "train", root=tmp_path)
    with pytest.raises(InvalidParameterError, match="train and test"):
        load("ChestX-Det", "val", root=tmp_path)


# --------------------------------------------------------------------------------------------
# ISIC 2018
# --------------------------------------------------------------------------------------------
def _isic(root: Path) -> None:
    d = root / "ISIC2018"
    for phase, ids in (("Training", ["ISIC_0000000", "ISIC_0000001"]), ("Validation", ["ISIC_0000010"])):
        for i in ids:
            _rgb(d / f"ISIC2018_Task1-2_{phase}_Input" / f"{i}.jpg", 45, 60)
            m = np.zeros((45, 60), np.uint8)
            m[10:30, 20:40] = 255
            _gray(d / f"ISIC2018_Task1_{phase}_GroundTruth" / f"{i}_segmentation.png", m)
    rows = [("ISIC_0024306", "NV"), ("ISIC_0024307", "MEL"), ("ISIC_0024308", "VASC")]
    cols = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    gt = d / "ISIC2018_Task3_Training_GroundTruth"
    gt.mkdir(parents=True)
    with open(gt / "ISIC2018_Task3_Training_GroundTruth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image"] + cols)
        for i, dx in rows:
            w.writerow([i] + [f"{float(c == dx):.1f}" for c in cols])
            _rgb(d / "ISIC2018_Task3_Training_Input" / f"{i}.jpg", 30, 40)


def test_isic2018_task1_and_task3(tmp_path):
    _isic(tmp_path)
    seg = load("isic2018", "train", root=tmp_path)
    assert seg.task == "segmentation" and seg.ids == ["ISIC_0000000", "ISIC_0000001"]
    s = seg[0]
    assert s["image"].shape == (3, 45, 60) and int(s["mask"].sum()) == 20 * 20 and int(s["mask"][15, 25]) == 1
    assert len(load("ISIC2018", "val", root=tmp_path)) == 1
    cls = load("ISIC2018", "train", root=tmp_path, task="classification", size=(32, 32))
    assert cls.task == "classification" and cls.classes == ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    assert [cls[i]["label"] for i in range(3)] == [1, 0, 6] and cls[0]["image"].shape == (3, 32, 32)
    with pytest.raises(DatasetNotFoundError, match="ISIC2018_Task1-2_Test_Input"):
        load("ISIC2018", "test", root=tmp_path)
    with pytest.raises(InvalidParameterError):
        load("ISIC2018", "train", root=tmp_path, task="detection")


def test_isic2018_as_a_chapter_loads_it_grey_with_the_task_it_names(tmp_path):
    # a loader without `channels` is converted after decoding; `task` reaches only a dataset with several tasks
    _isic(tmp_path)
    grey = load("ISIC2018", "train", root=tmp_path, task="classification", channels=1)
    rgb = load("ISIC2018", "train", root=tmp_path, task="classification")
    assert grey[0]["image"].shape == (1, 30, 40) and grey[0]["label"] == rgb[0]["label"]
    luminance = torch.tensordot(torch.tensor([0.299, 0.587, 0.114]), rgb[0]["image"], dims=1)  # PIL's "L"
    assert torch.allclose(grey[0]["image"][0], luminance, atol=0.01)
    train, val = sources.load_splits("ISIC2018", None, ("train", "val"), root=tmp_path, task="segmentation",
                                     channels=1)
    assert train.task == "segmentation" and train[0]["image"].shape == (1, 45, 60)
    (cls,) = sources.load_splits("ISIC2018", None, ("train",), root=tmp_path, task="classification", channels=1)
    assert cls.task == "classification" and len(cls) == 3
    with pytest.raises(InvalidParameterError, match="channels must be 1"):
        load("ISIC2018", "train", root=tmp_path, channels=2)


# --------------------------------------------------------------------------------------------
# Lizard
# --------------------------------------------------------------------------------------------
def test_lizard_official_layout(tmp_path):
    import scipy.io

    d = tmp_path / "Lizard"
    names = [("consep_1", 1), ("crag_2", 2), ("dpath_3", 3), ("glas_4", 1)]
    for k, (n, fold) in enumerate(names):
        sub = "lizard_images1/Lizard_Images1" if k < 2 else "lizard_images2/Lizard_Images2"
        _rgb(d / sub / f"{n}.png", 50, 70)
        inst = np.zeros((50, 70), np.int32)
        inst[5:10, 5:10], inst[20:30, 40:50] = 3, 7
        (d / "lizard_labels/Lizard_Labels/Labels").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(d / "lizard_labels/Lizard_Labels/Labels" / f"{n}.mat",
                         {"inst_map": inst, "id": np.array([[3], [7]]), "class": np.array([[2], [6]])})
    with open(d / "lizard_labels/Lizard_Labels/info.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Filename", "Source", "Split"])
        for n, fold in names:
            w.writerow([n, n.split("_")[0], fold])
    tr = load("Lizard", "train", root=tmp_path)
    assert tr.ids == ["consep_1", "glas_4"] and len(tr.classes) == 7
    m = tr[0]["mask"]
    assert int(m[7, 7]) == 2 and int(m[25, 45]) == 6 and int(m[0, 0]) == 0  # instance -> nucleus type
    assert load("Lizard", "test", root=tmp_path).ids == ["dpath_3"] and len(load("Lizard", "all", root=tmp_path)) == 4
    (d / "lizard_labels/Lizard_Labels/Labels/crag_2.mat").write_bytes(b"not a mat file")
    with pytest.raises(CorruptFileError, match="crag_2.mat"):
        load("Lizard", "val", root=tmp_path)


# --------------------------------------------------------------------------------------------
# CAMUS (NIfTI)
# --------------------------------------------------------------------------------------------
def test_camus_nifti_layout(tmp_path):
    nib = pytest.importorskip("nibabel", reason="CAMUS needs nibabel")
    d = tmp_path / "CAMUS"
    for p in ("patient0001", "patient0002", "patient0003"):
        for v in ("2CH", "4CH"):
            for ph in ("ED", "ES"):
                img = RNG.integers(0, 256, (40, 30), dtype=np.uint8)  # stored (x, y): W=40, H=30
                gt = np.zeros((40, 30), np.uint8)
                gt[5:15, 3:8], gt[20:25, 10:20] = 1, 3
                pdir = d / "database_nifti" / p
                pdir.mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(img, np.eye(4)), pdir / f"{p}_{v}_{ph}.nii.gz")
                nib.save(nib.Nifti1Image(gt, np.eye(4)), pdir / f"{p}_{v}_{ph}_gt.nii.gz")
    (d / "database_split").mkdir()
    (d / "database_split/subgroup_training.txt").write_text("patient0001\npatient0002\n")
    (d / "database_split/subgroup_validation.txt").write_text("patient0003\n")
    (d / "database_split/subgroup_testing.txt").write_text("")
    tr = load("CAMUS", "train", root=tmp_path)
    assert len(tr) == 8 and tr.ids[0] == "patient0001_2CH_ED" and tr.classes[3] == "left atrium"
    s = tr[0]
    assert s["image"].shape == (1, 30, 40) and s["mask"].shape == (30, 40)
    assert int(s["mask"][5, 10]) == 1 and int(s["mask"][15, 22]) == 3  # transposed to [H, W]
    va = load("CAMUS", "val", root=tmp_path, views=("4CH",), phases=("ED",), size=(16, 16))
    assert va.ids == ["patient0003_4CH_ED"] and va[0]["image"].shape == (1, 16, 16)
    (d / "database_nifti/patient0003/patient0003_4CH_ED_gt.nii.gz").write_bytes(b"garbage")
    with pytest.raises(CorruptFileError, match="patient0003_4CH_ED_gt.nii.gz"):
        load("CAMUS", "val", root=tmp_path, views=("4CH",), phases=("ED",))


# --------------------------------------------------------------------------------------------
# Kodak, HRF, DRIVE (official test/ name), ARCADE full release
# --------------------------------------------------------------------------------------------
def test_kodak(tmp_path):
    for k in range(1, 25):
        h, w = (24, 36) if k != 4 else (36, 24)  # one portrait image, as in the suite
        _rgb(tmp_path / "Kodak" / f"kodim{k:02d}.png", h, w)
    ds = load("kodak", "test", root=tmp_path)
    assert len(ds) == 24 and ds.task == "quality" and ds.ids[0] == "kodim01" and ds.classes == []
    assert set(ds[0]) == {"image", "id"} and ds[3]["image"].shape == (3, 36, 24)
    assert load("Kodak", "test", root=tmp_path, size=(12, 18))[3]["image"].shape == (3, 12, 18)
    with pytest.raises(InvalidParameterError):
        load("Kodak", "train", root=tmp_path)


def test_hrf(tmp_path):
    d = tmp_path / "HRF"
    for cat in ("h", "dr", "g"):
        for n in range(1, 6):
            ext = ".JPG" if cat == "dr" else ".jpg"
            _rgb(d / "images" / f"{n:02d}_{cat}{ext}", 30, 45, fmt="JPEG")
            m = np.zeros((30, 45), np.uint8)
            m[10:12, :] = 255
            _gray(d / "manual1" / f"{n:02d}_{cat}.tif", m, fmt="TIFF")
            _gray(d / "mask" / f"{n:02d}_{cat}_mask.tif", np.full((30, 45), 255), fmt="TIFF")
    parts = {sp: load("HRF", sp, root=tmp_path) for sp in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [9, 3, 3]  # per category 3 / 1 / 1
    assert not set(parts["train"].ids) & set(parts["test"].ids)
    s = parts["train"][0]
    assert int(s["mask"].sum()) == 90 and bool(s["fov"].all())


def test_drive_official_test_folder_name(tmp_path):
    d = tmp_path / "DRIVE"
    for kind, nums in (("training", ["21", "22", "23"]), ("test", ["01", "02"])):
        for n in nums:
            tag = "training" if kind == "training" else "test"
            _rgb(d / kind / "images" / f"{n}_{tag}.tif", 20, 18, fmt="TIFF")
            _gray(d / kind / "1st_manual" / f"{n}_manual1.gif", (RNG.random((20, 18)) > 0.8) * 255, fmt="GIF")
            _gray(d / kind / "mask" / f"{n}_{tag}_mask.gif", np.full((20, 18), 255), fmt="GIF")
    te = load("DRIVE", "test", root=tmp_path)
    assert te.ids == ["01_test", "02_test"] and te[0]["fov"].all()
    assert load("DRIVE", "train", root=tmp_path, val_count=1).ids == ["21_training", "22_training"]
    with pytest.raises(InvalidParameterError, match="val_count"):
        load("DRIVE", "val", root=tmp_path)
    with pytest.raises(CorruptFileError, match="01_manual2.gif"):  # no 2nd observer in this copy
        load("DRIVE", "test", root=tmp_path, observer=2)


def test_arcade_full_release_coco(tmp_path):
    pytest.importorskip("pycocotools")
    d = tmp_path / "ARCADE" / "stenosis"
    for part, n in (("train", 2), ("val", 1), ("test", 1)):
        images, anns = [], []
        for k in range(1, n + 1):
            _gray(d / part / "images" / f"{k}.png", RNG.integers(0, 256, (32, 32)))
            images.append({"id": k, "file_name": f"{k}.png", "height": 32, "width": 32})
            anns.append({"id": k, "image_id": k, "category_id": 26, "segmentation": [[4, 4, 20, 4, 20, 12, 4, 12]],
                         "bbox": [4, 4, 16, 8], "area": 128, "iscrowd": 0})
        (d / part / "annotations").mkdir(parents=True, exist_ok=True)
        (d / part / "annotations" / f"{part}.json").write_text(json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 26, "name": "stenosis"}]}))
    ds = load("ARCADE", "train", root=tmp_path)
    assert ds.classes == ["background", "stenosis"] and len(ds) == 2 and ds[0]["image"].shape == (3, 32, 32)
    m = ds[0]["mask"]
    assert int(m[8, 10]) == 1 and int(m[20, 20]) == 0 and 100 <= int(m.sum()) <= 160
    assert len(load("ARCADE", "all", root=tmp_path)) == 4


# --------------------------------------------------------------------------------------------
# error paths of the loaders
# --------------------------------------------------------------------------------------------
def _cvc(root: Path, n: int = 5) -> Path:
    d = root / "CVC-ColonDB"
    for i in range(1, n + 1):
        _rgb(d / "images" / f"{i}.png", 20, 24)
        m = np.zeros((20, 24), np.uint8)
        m[5:10, 5:12] = 255
        _gray(d / "masks" / f"{i}.png", m)
    return d


def test_missing_dataset_error_names_dataset_path_and_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as ei:
        load("BCCD", "train", root=tmp_path)
    msg = str(ei.value)
    assert "'BCCD'" in msg and str(tmp_path / "BCCD") in msg and "medtask data fetch BCCD" in msg
    with pytest.raises(DatasetNotFoundError, match="obtained by hand"):
        load("CAMUS", "train", root=tmp_path)


def test_unreadable_image_names_the_file(tmp_path):
    d = _cvc(tmp_path)
    (d / "images" / "2.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CorruptFileError, match=r"images/2\.png"):
        load("CVC-ColonDB", "all", root=tmp_path)


def test_mask_of_wrong_size_names_both_files_and_sizes(tmp_path):
    d = _cvc(tmp_path)
    _gray(d / "masks" / "3.png", np.zeros((10, 12)))
    with pytest.raises(CorruptFileError) as ei:
        load("CVC-ColonDB", "all", root=tmp_path)
    msg = str(ei.value)
    assert "masks/3.png" in msg and "images/3.png" in msg and "12x10" in msg and "24x20" in msg


def test_missing_mask_and_bad_options(tmp_path):
    d = _cvc(tmp_path)
    (d / "masks" / "4.png").unlink()
    with pytest.raises(CorruptFileError, match=r"masks/4\.png"):
        load("CVC-ColonDB", "all", root=tmp_path)
    with pytest.raises(InvalidParameterError, match="no split"):
        load("CVC-ColonDB", "holdout", root=tmp_path)
    with pytest.raises(InvalidParameterError, match="unknown options"):
        load("CVC-ColonDB", "train", root=tmp_path, colour=True)
    with pytest.raises(InvalidParameterError, match="size"):
        load("CVC-ColonDB", "train", root=tmp_path, size=(0, 4))
    with pytest.raises(InvalidParameterError, match="unknown dataset"):
        load("ImageNet", "train", root=tmp_path)


def test_cvc_split_rules_on_fixture(tmp_path):
    _cvc(tmp_path, n=10)
    ids = {sp: load("CVC-ColonDB", sp, root=tmp_path).ids for sp in ("train", "val", "test")}
    assert ids == {"train": [str(i) for i in range(1, 7)], "val": ["7", "8"], "test": ["9", "10"]}
    gap = {sp: load("CVC-ColonDB", sp, root=tmp_path, gap=1).ids for sp in ("train", "val", "test")}
    assert gap == {"train": [str(i) for i in range(1, 6)], "val": ["7"], "test": ["9", "10"]}
    rnd = {sp: load("CVC-ColonDB", sp, root=tmp_path, split_rule="random").ids for sp in ("train", "val", "test")}
    assert sorted(sum(rnd.values(), []), key=int) == [str(i) for i in range(1, 11)] and rnd != ids
    ds = load("CVC-ColonDB", "train", root=tmp_path, limit=2, size=(10, 12))
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 10, 12) and ds[0]["mask"].dtype == torch.int64


def test_bccd_fixture_size_mismatch_and_degenerate_boxes(tmp_path):
    d = tmp_path / "BCCD"
    (d / "ImageSets" / "Main").mkdir(parents=True)
    (d / "ImageSets" / "Main" / "train.txt").write_text("BloodImage_00001\nBloodImage_00002\n")
    _rgb(d / "JPEGImages" / "BloodImage_00001.jpg", 48, 64, fmt="JPEG")
    _rgb(d / "JPEGImages" / "BloodImage_00002.jpg", 48, 64, fmt="JPEG")

    def xml(w, h, objs):
        o = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                    f"<ymax>{e}</ymax></bndbox></object>" for n, a, b, c, e in objs)
        return f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{o}</annotation>"

    (d / "Annotations").mkdir()
    (d / "Annotations" / "BloodImage_00001.xml").write_text(xml(64, 48, [("RBC", 1, 2, 10, 12), ("WBC", 5, 5, 5, 5),
                                                                         ("Platelets", 50, 40, 70, 48)]))
    (d / "Annotations" / "BloodImage_00002.xml").write_text(xml(64, 48, []))
    ds = load("BCCD", "train", root=tmp_path)
    assert ds[0]["boxes"].tolist() == [[1, 2, 10, 12], [50, 40, 64, 48]] and ds[0]["labels"].tolist() == [1, 3]
    assert ds[1]["boxes"].shape == (0, 4)
    (d / "Annotations" / "BloodImage_00002.xml").write_text(xml(640, 480, []))
    with pytest.raises(CorruptFileError, match="BloodImage_00002"):
        load("BCCD", "train", root=tmp_path)
