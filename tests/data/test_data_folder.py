"""Generic datasets by folder: the five layouts, their splits, and every bad-folder error."""

from __future__ import annotations

import json

import folder_fixtures as fx
import numpy as np
import pytest
import torch

from medtask.data import folder
from medtask.errors import CorruptFileError, DatasetNotFoundError, FolderLayoutError, InvalidParameterError


# -- segmentation ------------------------------------------------------------------------------
def test_segmentation_png_masks_load_with_block_split_on_frame_numbers(tmp_path):
    fx.segmentation(tmp_path, n=10)
    tr = folder.load_folder(tmp_path, "train")
    assert tr.task == "segmentation" and tr.classes == ["background", "foreground"]
    assert tr.ids == [str(k) for k in range(1, 7)]  # blocks, sorted numerically
    assert folder.load_folder(tmp_path, "test").ids == ["9", "10"]
    s = tr[0]
    assert s["image"].shape == (3, 12, 16) and s["image"].dtype == torch.float32
    assert s["mask"].dtype == torch.int64 and set(s["mask"].unique().tolist()) == {0, 1}
    assert "blocks" in tr.info["split_rule"] and tr.info["layout"] == "images+masks"
    assert folder.load_folder(tmp_path, "all", size=(8, 8))[0]["image"].shape == (3, 8, 8)


def test_jpeg_masks_are_thresholded_at_128(tmp_path):
    fx.segmentation(tmp_path, n=3, stems=["a", "b", "c"], img_ext=".jpg", mask_ext=".jpg")
    m = np.zeros((12, 16), np.uint8)
    m[:, :4], m[:, 4:8], m[:, 8:12] = 127, 128, 200
    fx.save(m, tmp_path / "masks" / "a.jpg", quality=100)
    got = folder.read_seg_mask(tmp_path / "masks" / "a.jpg")
    assert got[:, :3].max() == 0 and got[:, 5:7].min() == 1 and got[:, 9:11].min() == 1
    ds = folder.load_folder(tmp_path, "all")
    assert ds.classes == ["background", "foreground"] and sorted(ds.ids) == ["a", "b", "c"]


def test_indexed_masks_and_classes_option(tmp_path):
    fx.segmentation(tmp_path, n=5, value=1)
    fx.save(fx.disc_mask(value=2), tmp_path / "masks" / "5.png")
    ds = folder.load_folder(tmp_path, "train")  # train holds no value 2: the classes still come from every mask
    assert ds.classes == ["background", "class 1", "class 2"]
    ds = folder.load_folder(tmp_path, "all", classes="polyp,adenoma")
    assert ds.classes == ["background", "polyp", "adenoma"] and int(ds[4]["mask"].max()) == 2
    with pytest.raises(CorruptFileError, match=r"5\.png holds value 2.*--classes"):
        folder.load_folder(tmp_path, "all", classes=["polyp"])


def test_random_split_is_seeded_and_covers_every_id(tmp_path):
    stems = [f"case_{c}" for c in "abcdefghij"]
    fx.segmentation(tmp_path, stems=stems)
    idx = folder.index_folder(tmp_path)
    assert "random" in idx.split_rule and "seed 0" in idx.split_rule
    assert sorted(sum(idx.splits.values(), [])) == sorted(stems)
    assert [len(idx.splits[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert folder.index_folder(tmp_path, seed=0).splits == idx.splits
    assert folder.index_folder(tmp_path, seed=1).splits != idx.splits


def test_split_files_csv_and_json(tmp_path):
    fx.segmentation(tmp_path, n=4)
    (tmp_path / "splits.csv").write_text("id,split\n1,train\n2,train\n3,val\n4,test\n")
    assert folder.load_folder(tmp_path, "val").ids == ["3"]
    assert folder.index_folder(tmp_path).split_rule == "from splits.csv"
    (tmp_path / "splits.csv").unlink()
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["4", "3"], "test": ["1", "2"]}))
    assert folder.load_folder(tmp_path, "train").ids == ["3", "4"]
    with pytest.raises(InvalidParameterError, match="no split 'val'"):
        folder.load_folder(tmp_path, "val")


@pytest.mark.parametrize("content,match", [
    ("id,split\n1,train\n2,validation\n3,test\n4,test\n", "unknown split name 'validation'.*rename"),
    ("id,split\n1,train\n2,val\n3,test\n", r"no split on 1 .*4"),
    ("id,split\n1,train\n2,val\n3,test\n4,test\n9,test\n", "ids that are not in the folder: 9"),
    ("name,fold\n1,train\n", "columns id,split"),
])
def test_bad_split_files(tmp_path, content, match):
    fx.segmentation(tmp_path, n=4)
    (tmp_path / "splits.csv").write_text(content)
    with pytest.raises(FolderLayoutError, match=match):
        folder.load_folder(tmp_path, "train")


def test_unpaired_files_are_named(tmp_path):
    fx.segmentation(tmp_path, n=4)
    (tmp_path / "masks" / "3.png").unlink()
    fx.save(fx.disc_mask(), tmp_path / "masks" / "77.png")
    with pytest.raises(FolderLayoutError, match=r"1 image\(s\) have no mask \(3\.png\).*1 mask\(s\) have no image "
                                                r"\(77\.png\).*image's file stem"):
        folder.load_folder(tmp_path, "train")


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(FolderLayoutError, match=r"images.*holds no image \(png, jpg"):
        folder.load_folder(tmp_path, "train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FolderLayoutError, match="matches no dataset layout.*images/ \\+ masks/"):
        folder.load_folder(empty, "train")
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        folder.load_folder(tmp_path / "nowhere", "train")


def test_size_mismatch_and_unreadable_image(tmp_path):
    fx.segmentation(tmp_path, n=3)
    fx.save(fx.disc_mask(10, 10), tmp_path / "masks" / "2.png")
    with pytest.raises(CorruptFileError, match=r"mask .*2\.png is 10x10 .* image .*2\.png is 16x12"):
        folder.load_folder(tmp_path, "all")
    fx.save(fx.disc_mask(), tmp_path / "masks" / "2.png")
    (tmp_path / "images" / "3.png").write_bytes(b"not a png")
    with pytest.raises(CorruptFileError, match=r"cannot read image .*3\.png.*replace or remove"):
        folder.load_folder(tmp_path, "all")


def test_duplicate_stems_and_colour_masks(tmp_path):
    fx.segmentation(tmp_path, n=2)
    fx.save(fx.image(), tmp_path / "images" / "1.jpg")
    with pytest.raises(FolderLayoutError, match="same name stem"):
        folder.load_folder(tmp_path, "all")
    (tmp_path / "images" / "1.jpg").unlink()
    fx.save(fx.image(), tmp_path / "masks" / "1.png")
    with pytest.raises(CorruptFileError, match="colour image"):
        folder.load_folder(tmp_path, "all")


def test_options_are_checked(tmp_path):
    fx.segmentation(tmp_path, n=3)
    with pytest.raises(InvalidParameterError, match="unknown options"):
        folder.load_folder(tmp_path, "all", colour="red")
    with pytest.raises(InvalidParameterError, match="split_rule"):
        folder.load_folder(tmp_path, "all", split_rule="sometimes")
    with pytest.raises(FolderLayoutError, match="segmentation dataset, not detection"):
        folder.load_folder(tmp_path, "all", task="detection")
    with pytest.raises(InvalidParameterError, match="absolute"):
        folder.folder_path("folder:relative/path")


# -- detection -------------------------------------------------------------------------------
def test_voc_folder_with_and_without_split_files(tmp_path):
    a = fx.voc(tmp_path / "a", n=6)
    ds = folder.load_folder(a, "all")
    assert ds.task == "detection" and ds.classes == ["background", "blob", "cell"]
    s = ds[0]
    assert s["boxes"].shape == (2, 4) and s["labels"].tolist() == [2, 1] and s["image"].shape == (3, 20, 24)
    assert "random" in ds.info["split_rule"]
    b = fx.voc(tmp_path / "b", n=6, split_files=True)
    assert folder.load_folder(b, "test").ids == ["im04", "im05"]
    assert folder.load_folder(b, "all", classes="cell,blob").classes == ["background", "cell", "blob"]
    with pytest.raises(FolderLayoutError, match=r"classes \['blob'\] that --classes"):
        folder.load_folder(b, "all", classes="cell")
    (b / "ImageSets" / "Main" / "holdout.txt").write_text("im00\n")
    with pytest.raises(FolderLayoutError, match="holdout.txt: unknown split name 'holdout'"):
        folder.load_folder(b, "train")


def test_voc_unpaired_and_size_mismatch(tmp_path):
    fx.voc(tmp_path, n=3)
    (tmp_path / "JPEGImages" / "im01.jpg").unlink()
    with pytest.raises(FolderLayoutError, match=r"annotation\(s\) have no image.*im01\.xml"):
        folder.load_folder(tmp_path, "all")
    fx.save(fx.image(30, 30), tmp_path / "JPEGImages" / "im01.jpg")
    with pytest.raises(CorruptFileError, match=r"im01\.xml says im01\.jpg is 24x20 \(WxH\) but the image is 30x30"):
        folder.load_folder(tmp_path, "all")


def test_coco_folder(tmp_path):
    fx.coco(tmp_path, n=5)
    ds = folder.load_folder(tmp_path, "all")
    assert folder.detect_task(tmp_path) == "detection" and ds.info["layout"] == "coco"
    assert ds.classes == ["background", "lesion", "tumour"]  # ordered by category id
    by_id = {s["id"]: s for s in ds}
    assert by_id["p0"]["boxes"].tolist() == [[1.0, 2.0, 6.0, 8.0]]  # xywh -> xyxy; the crowd box is dropped
    assert by_id["p1"]["labels"].tolist() == [2] and by_id["p4"]["boxes"].shape == (0, 4)
    fx.save(fx.image(), tmp_path / "images" / "stray.png")
    with pytest.raises(FolderLayoutError, match=r"not listed in annotations.json \(stray\.png\)"):
        folder.load_folder(tmp_path, "all")


# -- classification --------------------------------------------------------------------------
def test_imagefolder_flat_and_with_split_folders(tmp_path):
    flat = fx.imagefolder(tmp_path / "flat", n=5)
    ds = folder.load_folder(flat, "all")
    assert ds.task == "classification" and ds.classes == ["benign", "malignant"] and len(ds) == 10
    assert {s["label"] for s in ds} == {0, 1} and "benign/benign_0" in ds.ids
    sp = fx.imagefolder(tmp_path / "sp", n=2, splits=("train", "test"))
    te = folder.load_folder(sp, "test", classes=["malignant", "benign"])
    assert te.ids[0] == "test/benign/benign_0" and te[0]["label"] == 1
    assert folder.index_folder(sp).split_rule.startswith("from the split folders")
    (sp / "validation" / "benign").mkdir(parents=True)
    with pytest.raises(FolderLayoutError, match="unknown split name 'validation'"):
        folder.load_folder(sp, "train")


def test_imagefolder_empty_class_folder(tmp_path):
    fx.imagefolder(tmp_path, n=2)
    (tmp_path / "cyst").mkdir()
    with pytest.raises(FolderLayoutError, match="class 'cyst'.*holds no image"):
        folder.load_folder(tmp_path, "all")


def test_labels_csv(tmp_path):
    fx.labels_csv(tmp_path / "a", n=8, split_column=True)
    ds = folder.load_folder(tmp_path / "a", "test")
    assert ds.classes == ["covid", "normal"] and ds.ids == ["imgs/x6", "imgs/x7"]
    assert [s["label"] for s in ds] == [1, 0]
    b = fx.labels_csv(tmp_path / "b", n=5)
    assert len(folder.load_folder(b, "all")) == 5
    (b / "labels.csv").write_text("file,label\nimgs/x0.jpg,normal\nimgs/gone.jpg,covid\n")
    with pytest.raises(FolderLayoutError, match="gone.jpg"):
        folder.load_folder(b, "all")


# -- digests ---------------------------------------------------------------------------------
def test_folder_fingerprint_follows_the_bytes(tmp_path):
    fx.segmentation(tmp_path, n=3)
    fp = folder.folder_fingerprint(tmp_path)
    assert fp.startswith("folder:sha256:") and folder.folder_fingerprint(tmp_path) == fp
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x").write_text("hidden files do not count")
    assert folder.folder_fingerprint(tmp_path) == fp
    m = np.array(fx.disc_mask())
    m[0, 0] = 255
    fx.save(m, tmp_path / "masks" / "2.png")
    assert folder.folder_fingerprint(tmp_path) != fp


def test_images_without_masks_is_not_taken_for_class_folders(tmp_path):
    fx.segmentation(tmp_path, n=2)
    for f in (tmp_path / "masks").iterdir():
        f.unlink()
    (tmp_path / "masks").rmdir()
    with pytest.raises(FolderLayoutError, match="has images/ but no masks/"):
        folder.detect_task(tmp_path)
