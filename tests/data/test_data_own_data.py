"""Own data: `medtask data add` round trip, `folder:` names, labels and fingerprints in provenance."""

from __future__ import annotations

import argparse

import folder_fixtures as fx
import pytest
import yaml

import medtask.data as data
from medtask import provenance
from medtask.data import commands, sources, user_manifests
from medtask.errors import (
    ChecksumError, CorruptFileError, DatasetNotFoundError, FolderLayoutError, InvalidParameterError, MedtaskError,
)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="medtask")
    sub = ap.add_subparsers(dest="cmd", required=True)
    commands.register(sub.add_parser("data").add_subparsers(dest="data_command", required=True))
    return ap


@pytest.fixture
def polyps(tmp_path):
    """A segmentation folder outside the data root, and an empty data root."""
    root = tmp_path / "root"
    root.mkdir()
    return fx.segmentation(tmp_path / "my polyps", n=10), root


def test_add_writes_a_user_manifest_in_the_data_root(polyps, capsys):
    src, root = polyps
    args = _parser().parse_args(["data", "add", "my-polyps", str(src), "--task", "segmentation", "--classes", "polyp",
                                 "--data-root", str(root)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "my-polyps: segmentation (images+masks), 20 files" in out and "-p dataset=my-polyps" in out
    d = root / ".medtask" / "manifests"
    m = yaml.safe_load((d / "my-polyps.yml").read_text())
    assert m["path"] == str(src.resolve()) and m["classes"] == ["background", "polyp"]
    assert m["splits"]["counts"] == {"train": 6, "val": 2, "test": 2} and "blocks" in m["splits"]["rule"]
    sums = (d / "my-polyps.sha256").read_text().splitlines()
    assert len(sums) == 20 and sums[0].endswith("  images/1.png") and len(sums[0].split()[0]) == 64
    assert not any((src / n).exists() for n in (".medtask", "my-polyps.yml"))  # nothing written into the folder


def test_registered_folder_loads_lists_verifies_and_fingerprints(polyps, capsys):
    src, root = polyps
    user_manifests.add("my-polyps", src, task="segmentation", classes="polyp", root=root)
    ds = data.load("MY_polyps", "test", root=root, size=8)
    assert ds.name == "my-polyps" and ds.ids == ["9", "10"] and ds.classes == ["background", "polyp"]
    assert ds[0]["image"].shape == (3, 8, 8) and ds.info["source"].startswith("my-polyps (registered folder ")
    rows = {r["name"]: r for r in commands.list_own_datasets(root)}
    assert rows["my-polyps"]["present"] and rows["my-polyps"]["verified"] and rows["my-polyps"]["n_files"] == 20
    assert "my-polyps" not in {r["name"] for r in commands.list_datasets(root)}  # the study's datasets only
    args = _parser().parse_args(["data", "list", "--data-root", str(root)])
    assert args.func(args) == 0
    assert "my-polyps" in capsys.readouterr().out
    rep = commands.verify_dataset("my-polyps", root)
    assert rep.ok and "20 files match their sha256" in rep.summary()
    fp = sources.fingerprint("my-polyps", root)
    assert fp.startswith("my-polyps:sha256:") and fp.split(":")[-1] == \
        sources.fingerprint(f"folder:{src}").split(":")[-1]  # same bytes, same digest
    assert provenance.dataset_fingerprints(["my-polyps"], root) == {sources.label("my-polyps", root): fp}


def test_an_edit_changes_verify_and_fingerprint(polyps, capsys):
    src, root = polyps
    user_manifests.add("my-polyps", src, task="segmentation", root=root)
    fp = sources.fingerprint("my-polyps", root)
    m = fx.disc_mask()
    m[0, 0] = 255
    fx.save(m, src / "masks" / "4.png")
    with pytest.raises(ChecksumError, match=r"masks/4\.png.*medtask data add my-polyps"):
        sources.fingerprint("my-polyps", root)
    fx.save(fx.image(seed=99), src / "images" / "11.png")
    fx.save(fx.disc_mask(), src / "masks" / "11.png")
    args = _parser().parse_args(["data", "verify", "my-polyps", "--data-root", str(root)])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "checksum mismatch: masks/4.png" in out and "new file: images/11.png" in out
    user_manifests.add("my-polyps", src, root=root)  # record the change
    fp2 = sources.fingerprint("my-polyps", root)
    assert fp2 != fp and commands.verify_dataset("my-polyps", root).ok
    (src / "masks" / "4.png").unlink()
    rep = commands.verify_dataset("my-polyps", root)
    assert rep.missing == ["masks/4.png"] and any("4.png" in p for p in rep.layout_problems)


def test_folder_name_loads_once_off_with_its_label_and_bytes(polyps):
    src, root = polyps
    name = f"folder:{src}"
    ds = data.load(name, "val", root=root)
    assert ds.name == f"folder:{src.resolve()}" and ds.task == "segmentation" and ds.ids == ["7", "8"]
    assert ds.info["source"] == f"unregistered folder {src.resolve()}"
    assert sources.label(name) == f"unregistered folder {src.resolve()}" and sources.kind(name) == "folder"
    fp = sources.fingerprint(name)
    rec = provenance.dataset_fingerprints([name])
    assert rec == {f"unregistered folder {src.resolve()}": fp}
    (src / "images" / "1.png").write_bytes((src / "images" / "2.png").read_bytes())
    assert sources.fingerprint(name) != fp
    rep = sources.verify(name)
    assert rep.ok and "unregistered folder" in rep.summary()
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        data.load(f"folder:{src}/nowhere", "train")
    cls = fx.imagefolder(src.parent / "cls", n=4)
    assert data.load(f"folder:{cls}", "all").task == "classification"  # task from the layout
    with pytest.raises(FolderLayoutError, match="not detection"):
        data.load(f"folder:{cls}", "all", task="detection")


def test_add_refuses_bad_names_folders_and_layouts(polyps, capsys):
    src, root = polyps
    for bad in ("CVC-ColonDB", "cvc", "phantom-polyp", "my polyps", ""):
        with pytest.raises(InvalidParameterError):
            user_manifests.add(bad, src, root=root)
    with pytest.raises(DatasetNotFoundError):
        user_manifests.add("x", src / "nowhere", root=root)
    (src / "masks" / "5.png").unlink()
    args = _parser().parse_args(["data", "add", "x", str(src), "--data-root", str(root)])
    assert args.func(args) == 1 and "1 image(s) have no mask (5.png)" in capsys.readouterr().out
    assert not (root / ".medtask" / "manifests" / "x.yml").exists()
    fx.save(fx.disc_mask(), src / "masks" / "5.png")
    (src / "images" / "6.png").write_bytes(b"broken")
    with pytest.raises(CorruptFileError, match=r"cannot read image .*6\.png"):  # every image is decoded at add
        user_manifests.add("x", src, root=root)


def test_re_adding_a_name_for_another_folder_needs_replace(polyps, tmp_path):
    src, root = polyps
    user_manifests.add("mine", src, root=root)
    other = fx.segmentation(tmp_path / "other", n=5)
    with pytest.raises(InvalidParameterError, match="--replace"):
        user_manifests.add("mine", other, root=root)
    user_manifests.add("mine", other, root=root, replace=True)
    assert len(data.load("mine", "all", root=root)) == 5


def test_registered_detection_and_classification(tmp_path):
    root = tmp_path / "root"
    user_manifests.add("cells", fx.voc(tmp_path / "voc", n=6, split_files=True), task="detection", root=root)
    user_manifests.add("ct", fx.labels_csv(tmp_path / "ct", n=6), root=root, seed=3)
    det = data.load("cells", "train", root=root)
    assert det.task == "detection" and len(det) == 4 and det.classes == ["background", "blob", "cell"]
    m = user_manifests.find_user_manifest("ct", root)
    assert m["task"] == "classification" and m["options"]["seed"] == 3 and "seed 3" in m["splits"]["rule"]
    assert sorted(data.load("ct", "all", root=root).ids) == [f"imgs/x{k}" for k in range(6)]


def test_moved_folder_is_named_with_the_fix(polyps):
    src, root = polyps
    user_manifests.add("mine", src, root=root)
    src.rename(src.parent / "moved")
    with pytest.raises(DatasetNotFoundError, match="--replace"):
        data.load("mine", "train", root=root)
    rep = commands.verify_dataset("mine", root)
    assert not rep.ok and "is missing" in rep.summary()
    row = next(r for r in commands.list_own_datasets(root) if r["name"] == "mine")
    assert row["present"] is False and row["verified"] is None


def test_add_where_the_manifest_cannot_be_written_says_what_to_do(polyps):
    src, root = polyps
    (root / ".medtask").write_text("a file where the manifest folder should be")
    with pytest.raises(MedtaskError, match="cannot write the manifest.*--data-root"):
        user_manifests.add("mine", src, root=root)


def test_tasks_check_task_and_describe_every_kind(polyps, tmp_path):
    src, root = polyps
    user_manifests.add("mine", src, root=root)
    cls = fx.imagefolder(tmp_path / "cls", n=2)
    assert sources.tasks("mine", root) == ["segmentation"] and sources.tasks(f"folder:{cls}") == ["classification"]
    assert sources.tasks("phantom-boxes") == ["detection"]
    assert sources.tasks("chestx-det") == ["detection", "segmentation"]
    assert sources.check_task("mine", "segmentation", root) == "mine"
    with pytest.raises(InvalidParameterError, match=r"'folder:.*' is a classification dataset; this needs a "
                                                    r"segmentation dataset.*--task segmentation"):
        sources.check_task(f"folder:{cls}", "segmentation", root)
    with pytest.raises(InvalidParameterError, match="is a detection dataset"):
        sources.check_task("BCCD", "classification")
    d = sources.describe("mine", root)
    assert d["kind"] == "registered" and d["label"] == f"mine (registered folder {src.resolve()})"
    assert d["fingerprint"] == sources.fingerprint("mine", root)
    assert sources.describe(f"folder:{src}")["kind"] == "folder" and sources.kind("CVC-ColonDB") == "shipped"


def test_chapter_helpers_verify_load_and_describe_train_and_test_data(polyps, tmp_path):
    src, root = polyps
    user_manifests.add("mine", src, task="segmentation", classes="polyp", root=root)
    other = fx.segmentation(tmp_path / "other", n=5)
    assert sources.chapter_datasets("segmentation", "mine", None, root) == ["mine"]
    assert sources.chapter_datasets("segmentation", "mine", "mine", root) == ["mine"]
    assert sources.chapter_datasets("segmentation", "mine", f"folder:{other}", root) == ["mine", f"folder:{other}"]
    with pytest.raises(InvalidParameterError, match="this needs a segmentation dataset"):
        sources.chapter_datasets("segmentation", "mine", "phantom-boxes", root)
    train, test = sources.load_splits("mine", f"folder:{other}", root=root, size=8, limits={"train": 3})
    assert len(train) == 3 and test.name == f"folder:{other.resolve()}"  # 'foreground' stands for 'polyp'
    text = sources.data_markdown("mine", f"folder:{other}", root)
    assert f"mine (registered folder {src.resolve()})" in text and sources.fingerprint("mine", root) in text
    assert f"unregistered folder {other.resolve()}" in text and sources.fingerprint(f"folder:{other}") in text
    assert "cross-dataset" in text and "cross-dataset" not in sources.data_markdown("mine", None, root)
    check = sources.verify_for_chapter("mine", root)
    assert check["status"] == "verified" and check["dataset"].startswith("mine (registered folder")
    assert sources.verify_for_chapter(f"folder:{other}")["status"] == "layout checked"
    fx.save(fx.image(seed=42), src / "images" / "3.png")  # an edit after `data add`
    check = sources.verify_for_chapter("mine", root)
    assert check["status"] == "failed" and "checksum mismatch: images/3.png" in check["problems"]
    assert "medtask data add mine" in check["fix"]
    (other / "masks" / "2.png").unlink()
    check = sources.verify_for_chapter(f"folder:{other}")
    assert check["status"] == "failed" and "no mask" in check["problems"][0] and "Run it on your data" in check["fix"]


def test_check_same_classes_names_both_lists(tmp_path):
    seg3 = fx.segmentation(tmp_path / "three", n=4, value=2)  # masks 0/2: background, class 1, class 2
    binary = fx.segmentation(tmp_path / "two", n=4)
    a = data.load(f"folder:{binary}", "all")
    b = data.load(f"folder:{seg3}", "all")
    sources.check_same_classes(a, data.load("phantom-polyp", "test", size=16))  # foreground ~ polyp
    with pytest.raises(InvalidParameterError, match=r"has classes \['background', 'class 1', 'class 2'\].*"
                                                    r"test_dataset=None"):
        sources.check_same_classes(a, b)
    cells = user_manifests.add("cells", fx.imagefolder(tmp_path / "c1", classes=("a", "b"), n=2), root=tmp_path / "r")
    other = fx.imagefolder(tmp_path / "c2", classes=("a", "c"), n=2)
    with pytest.raises(InvalidParameterError, match="same classes in the same order"):
        sources.check_same_classes(data.load("cells", "all", root=tmp_path / "r"), data.load(f"folder:{other}", "all"))
    assert cells is not None


def test_a_chapter_refuses_a_bad_or_edited_folder_before_training(polyps, tmp_path):
    from medtask.errors import DataVerificationError
    from medtask.pipeline import Chapter

    src, root = polyps
    user_manifests.add("mine", src, task="segmentation", root=root)
    ok = Chapter("t", parameters={}, datasets=["mine", f"folder:{src}"], results_dir=tmp_path / "a", data_root=root)
    assert [c["status"] for c in ok.data_checks] == ["verified", "layout checked"]
    fx.save(fx.image(seed=5), src / "images" / "1.png")
    with pytest.raises(DataVerificationError, match=r"(?s)checksum mismatch: images/1\.png.*medtask data add mine"):
        Chapter("t", parameters={}, datasets=["mine"], results_dir=tmp_path / "b", data_root=root)
    (src / "masks" / "2.png").unlink()
    with pytest.raises(DataVerificationError, match=r"(?s)no mask \(2\.png\).*Run it on your data"):
        Chapter("t", parameters={}, datasets=[f"folder:{src}"], results_dir=tmp_path / "c", data_root=root)
    (src / "images" / "2.png").unlink()
    (src / "masks" / "3.png").write_bytes(b"not a png")
    with pytest.raises(MedtaskError, match=r"3\.png"):  # an unreadable mask stops the load with its file named
        data.load(f"folder:{src}", "all")


def test_load_splits_channels_turns_every_kind_grey_or_rgb(tmp_path):
    """C1 loads its data with ``channels=1``: a class-folder, a registered folder and a phantom all take it."""
    root = tmp_path / "root"
    cls = fx.imagefolder(tmp_path / "cls", classes=("covid", "normal"), n=3, splits=("train", "test"))
    user_manifests.add("ct", fx.labels_csv(tmp_path / "ct", n=6, split_column=True), root=root)
    train, test = sources.load_splits(f"folder:{cls}", "ct", root=root, size=8, channels=1)
    assert train[0]["image"].shape == (1, 8, 8) and test[0]["image"].shape == (1, 8, 8)
    assert len(train) == 6 and len(test) == 2
    rgb, grey = (data.load(f"folder:{cls}", "train", limit=1, **kw).records[0].image for kw in ({}, {"channels": 1}))
    luma = (rgb.astype(int) * [299, 587, 114]).sum(-1) / 1000  # ITU-R 601-2, as Pillow's "L"
    assert rgb.shape == (12, 16, 3) and grey.shape == (12, 16, 1) and abs(grey[..., 0] - luma).max() <= 1
    ph_train, ph_test = sources.load_splits("phantom-polyp", "phantom-polyp", size=8, channels=1)
    assert ph_train[0]["image"].shape == ph_test[0]["image"].shape == (1, 8, 8)
    classes3 = data.load("phantom-classes", "test", size=8, n=2, channels=3)
    assert classes3[0]["image"].shape == (3, 8, 8)
    assert data.load("phantom-classes", "test", size=8)[0]["image"].shape[0] == 1  # as generated: grey
    assert bool((classes3[0]["image"][0] == classes3[0]["image"][2]).all())
    with pytest.raises(InvalidParameterError, match="channels must be 1"):
        data.load(f"folder:{cls}", "train", channels=2)


def test_split_names_of_every_kind(polyps, tmp_path):
    src, root = polyps
    rows = "".join(f"{k},{'test' if k > 8 else 'train'}\n" for k in range(1, 11))
    (src / "splits.csv").write_text("id,split\n" + rows)
    user_manifests.add("mine", src, root=root)
    cls = fx.imagefolder(tmp_path / "cls", n=2, splits=("train", "val", "test"))
    assert sources.split_names(f"folder:{src}") == sources.split_names("mine", root) == ["train", "test"]
    assert sorted(sources.split_names(f"folder:{cls}")) == ["test", "train", "val"]
    assert sources.split_names("phantom-vessels") == ["train", "val", "test"]
    assert sources.split_names("DRIVE") == ["train", "test"]


def test_data_markdown_when_the_test_set_is_one_of_the_training_sets(polyps, tmp_path):
    src, root = polyps
    user_manifests.add("mine", src, root=root)
    other = f"folder:{fx.segmentation(tmp_path / 'other', n=5)}"
    text = sources.data_markdown(["mine", other], "mine", root)
    assert "cross-dataset" not in text and "another collection" not in text
    assert text.startswith("Data: ") and f"test split of **mine (registered folder {src.resolve()})**" in text
    assert sources.fingerprint("mine", root) in text and sources.fingerprint(other) in text
    assert "test split of" not in sources.data_markdown(["mine", other], None, root)
    assert "cross-dataset" in sources.data_markdown(["mine"], other, root)
