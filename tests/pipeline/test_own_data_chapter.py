"""Chapter A1 on a user's own folders (smoke profile): trained on a `folder:` path, and tested on another
(registered) folder; the page names the data and its fingerprint, the provenance records it, and a bad
folder stops the chapter with its error before anything trains."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import folder_fixtures as fx  # noqa: E402

from medtask.data import sources, user_manifests  # noqa: E402
from medtask.errors import MedtaskError  # noqa: E402
from medtask.pipeline.runner import ChapterFailedError, error_cells, run_notebook  # noqa: E402

STEM = "a1_compression_segmentation"


def _page(rec) -> str:
    nb = json.loads(rec.executed.read_text())
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            out.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", "")))
    return "\n".join(out)


@pytest.fixture
def folders(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    train = fx.segmentation(tmp_path / "my frames", n=20)  # stems are frame numbers: block split 12/4/4
    other = fx.segmentation(tmp_path / "other", n=10)
    user_manifests.add("other-polyps", other, task="segmentation", classes="polyp", root=root)
    return train, other, root


@pytest.mark.notebook
def test_a1_on_a_folder_then_tested_on_another(folders, tmp_path):
    train, other, root = folders
    name = f"folder:{train}"
    rec = run_notebook(STEM, "smoke", {"dataset": name}, data_root=root, output_root=tmp_path / "out", progress=False)
    assert error_cells(rec.executed) == []
    page = _page(rec)
    fp = sources.fingerprint(name)
    assert f"unregistered folder {train.resolve()}" in page and fp in page
    meta = json.loads(rec.executed.read_text())["metadata"]["medtask"]
    assert meta["datasets"][f"unregistered folder {train.resolve()}"] == fp

    rec2 = run_notebook(STEM, "smoke", {"dataset": name, "test_dataset": "other-polyps"}, data_root=root,
                        output_root=tmp_path / "out", progress=False)
    assert not rec2.cached and error_cells(rec2.executed) == []
    page = _page(rec2)
    assert "cross-dataset" in page and fp in page
    assert f"other-polyps (registered folder {other.resolve()})" in page
    assert sources.fingerprint("other-polyps", root) in page
    checks = {c["dataset"]: c["status"] for c in json.loads(rec2.executed.read_text())["metadata"]["medtask"]
              ["data_checks"]}
    assert checks[f"other-polyps (registered folder {other.resolve()})"] == "verified"
    arts = json.loads(rec2.executed.read_text())["metadata"]["medtask"]["artefacts"]
    assert arts and all(a["reused"] for a in arts), "testing elsewhere must reuse the networks trained on the folder"

    fx.save(fx.image(seed=90), train / "images" / "3.png")  # an edited folder is never taken from the cache
    with pytest.raises(ChapterFailedError):  # ...and a registered one edited since `data add` stops the chapter
        fx.save(fx.image(seed=91), other / "images" / "9.png")
        run_notebook(STEM, "smoke", {"dataset": name, "test_dataset": "other-polyps"}, data_root=root,
                     output_root=tmp_path / "out", progress=False)


def test_a1_refuses_wrong_task_and_bad_folders_before_a_kernel_starts_or_trains(folders, tmp_path):
    train, _, root = folders
    cls = fx.imagefolder(tmp_path / "cls", n=2)
    with pytest.raises(MedtaskError, match="is a classification dataset; this needs a segmentation dataset"):
        sources.chapter_datasets("segmentation", f"folder:{train}", f"folder:{cls}", root)
    (train / "masks" / "5.png").unlink()
    check = sources.verify_for_chapter(f"folder:{train}", root)
    assert check["status"] == "failed" and "1 image(s) have no mask (5.png)" in " ".join(check["problems"])


@pytest.mark.notebook
@pytest.mark.parametrize("stem,params", [
    ("c2_gradprom_segmentation", lambda a, b: {"dataset": a, "test_dataset": b}),
    ("b1_angio_quality", lambda a, b: {"datasets": [a], "test_dataset": b, "size": 32}),
])
def test_c2_and_b1_train_on_a_folder_and_test_on_another(stem, params, folders, tmp_path, data_root):
    train, other, root = folders
    for name in ("ARCADE_stenosis_mini_subset",):  # B1's demonstration set, from the shared data
        (root / name).symlink_to(data_root / name)
    rec = run_notebook(stem, "smoke", params(f"folder:{train}", "other-polyps"), data_root=root,
                       output_root=tmp_path / "out", progress=False)
    assert error_cells(rec.executed) == []
    page = _page(rec)
    assert f"unregistered folder {train.resolve()}" in page and "cross-dataset" in page
    assert f"other-polyps (registered folder {other.resolve()})" in page


@pytest.mark.notebook
def test_b1_tested_elsewhere_reuses_the_arms_trained_on_its_sources(folders, tmp_path, data_root):
    train, _other, root = folders
    (root / "ARCADE_stenosis_mini_subset").symlink_to(data_root / "ARCADE_stenosis_mini_subset")
    runs = [run_notebook("b1_angio_quality", "smoke", {"datasets": [f"folder:{train}"], "test_dataset": test,
                                                       "size": 32}, data_root=root, output_root=tmp_path / "out",
                         progress=False) for test in (None, "other-polyps")]
    assert all(error_cells(r.executed) == [] for r in runs) and not runs[1].cached
    arts = json.loads(runs[1].executed.read_text())["metadata"]["medtask"]["artefacts"]
    assert arts and all(a["reused"] for a in arts), "testing elsewhere must reuse the arms trained on the folder"


@pytest.mark.notebook
def test_c1_trains_on_a_class_folder_and_tests_on_a_registered_one(tmp_path):
    """C1 loads its data grey (channels=1): a class-folder and a registered labels.csv folder both take it."""
    root = tmp_path / "root"
    scans = fx.imagefolder(tmp_path / "scans", classes=("covid", "normal"), n=8, splits=("train", "test"))
    user_manifests.add("other-scans", fx.labels_csv(tmp_path / "other", n=8, split_column=True), root=root)
    rec = run_notebook("c1_gradprom_diagnosis", "smoke", {"dataset": f"folder:{scans}", "test_dataset": "other-scans"},
                       data_root=root, output_root=tmp_path / "out", progress=False)
    assert error_cells(rec.executed) == []
    page = _page(rec)
    assert f"unregistered folder {scans.resolve()}" in page and "cross-dataset" in page
