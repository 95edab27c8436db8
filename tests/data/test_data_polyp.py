"""Kvasir-SEG and CVC-ClinicDB: manifests, and loaders on tiny fixtures in their official layouts."""

from __future__ import annotations

import hashlib

import folder_fixtures as fx
import pytest

import medtask.data as data
from medtask.data import manifests, polyp
from medtask.errors import DatasetNotFoundError, FolderLayoutError, InvalidParameterError


def kvasir(root, n=12, h=10, w=14):
    """``Kvasir-SEG/images/<hash>.jpg`` + ``masks/<hash>.jpg`` as in Simula's zip."""
    d = root / "Kvasir-SEG"
    for k in range(n):
        stem = hashlib.sha1(str(k).encode()).hexdigest()[:25]
        fx.save(fx.image(h, w, seed=k), d / "images" / f"{stem}.jpg", quality=95)
        fx.save(fx.disc_mask(h, w, r=3), d / "masks" / f"{stem}.jpg", quality=75)
    return d


def clinicdb(root, n=10, tiff=True, h=8, w=10):
    """``CVC-ClinicDB/Original/N.tif`` + ``Ground Truth/N.tif`` (or ``images/N.png`` + ``masks/N.png``)."""
    d = root / "CVC-ClinicDB"
    im_dir, gt_dir, ext = ("Original", "Ground Truth", ".tif") if tiff else ("images", "masks", ".png")
    for k in range(1, n + 1):
        fx.save(fx.image(h, w, seed=k), d / im_dir / f"{k}{ext}")
        fx.save(fx.disc_mask(h, w, r=2), d / gt_dir / f"{k}{ext}")
    return d


def test_manifests_validate_and_carry_no_invented_checksums():
    for name in ("Kvasir-SEG", "CVC-ClinicDB"):
        m = manifests.load_manifest(name)
        manifests.validate_manifest(m)
        assert m["classes"] == ["background", "polyp"] and m["name"] in data.LOADERS
        assert all(c["checksums"] is None and "medtask data add" in c["checksums_reason"] for c in m["copies"])
    k = manifests.load_manifest("kvasir-seg")
    assert k["download"]["files"][0]["url"] == "https://datasets.simula.no/downloads/kvasir-seg.zip"
    assert "Jha" in k["citation"] and "MultiMedia Modeling" in k["citation"]
    c = manifests.load_manifest("cvc_clinicdb")
    assert "Computerized Medical Imaging and Graphics" in c["citation"] and "99--111" in c["citation"]
    assert sum(c["splits"]["counts"].values()) == 612 and sum(k["splits"]["counts"].values()) == 1000


def test_kvasir_seg_loads_with_a_seeded_random_split(tmp_path):
    kvasir(tmp_path, n=10)
    tr = data.load("Kvasir-SEG", "train", root=tmp_path)
    te = data.load("kvasir-seg", "test", root=tmp_path)
    assert (len(tr), len(te)) == (6, 2) and not set(tr.ids) & set(te.ids)
    assert tr.classes == ["background", "polyp"] and tr.task == "segmentation"
    s = tr[0]
    assert s["image"].shape == (3, 10, 14) and set(s["mask"].unique().tolist()) == {0, 1}  # JPEG mask binarised
    assert data.load("Kvasir-SEG", "test", root=tmp_path, seed=1).ids != te.ids
    ids = sorted(tr.ids + te.ids + data.load("Kvasir-SEG", "val", root=tmp_path).ids)
    (tmp_path / "Kvasir-SEG" / "splits.csv").write_text(
        "id,split\n" + "".join(f"{i},{'test' if k < 3 else 'train'}\n" for k, i in enumerate(ids)))
    assert data.load("Kvasir-SEG", "test", root=tmp_path, split_rule="file").ids == ids[:3]
    with pytest.raises(InvalidParameterError, match="split_rule"):
        data.load("Kvasir-SEG", "test", root=tmp_path, split_rule="blocks")


@pytest.mark.parametrize("tiff", [True, False], ids=["tiff-release", "png-layout"])
def test_clinicdb_loads_both_layouts_with_block_split(tmp_path, tiff):
    clinicdb(tmp_path, n=10, tiff=tiff)
    tr = data.load("CVC-ClinicDB", "train", root=tmp_path)
    assert tr.ids == [str(k) for k in range(1, 7)] and tr.info["layout"] == ("tiff" if tiff else "png")
    assert data.load("cvc612", "test", root=tmp_path).ids == ["9", "10"]
    assert tr[0]["mask"].max() == 1 and tr[0]["image"].shape == (3, 8, 10)


def test_clinicdb_unpaired_and_wrong_layout(tmp_path):
    d = clinicdb(tmp_path, n=4)
    (d / "Ground Truth" / "3.tif").unlink()
    with pytest.raises(FolderLayoutError, match=r"1 file\(s\) without their partner.*3.*medtask data verify"):
        data.load("CVC-ClinicDB", "train", root=tmp_path)
    for sub in ("Original", "Ground Truth"):
        for f in (d / sub).iterdir():
            f.unlink()
        (d / sub).rmdir()
    with pytest.raises(FolderLayoutError, match="neither Original/"):
        data.load("CVC-ClinicDB", "train", root=tmp_path)


def test_verify_without_a_checksum_list_checks_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Kvasir-SEG"):
        data.load("Kvasir-SEG", "train", root=tmp_path)
    d = kvasir(tmp_path, n=1000, h=4, w=4)
    rep = manifests.verify("Kvasir-SEG", tmp_path)
    assert rep.ok and not rep.checksums_used and "has no checksum list" in rep.summary()
    fp = manifests.fingerprint("Kvasir-SEG", tmp_path)
    assert fp.startswith("Kvasir-SEG:sha256:")  # the bytes, even without a checksum list
    next((d / "masks").iterdir()).unlink()
    rep = manifests.verify("Kvasir-SEG", tmp_path)
    assert not rep.ok and rep.layout_problems == ["masks/*.jpg: 999 files, expected 1000"]


def test_clinicdb_verify_picks_the_layout_present(tmp_path):
    clinicdb(tmp_path, n=612, tiff=False, h=4, w=4)
    rep = manifests.verify("CVC-ClinicDB", tmp_path)
    assert rep.ok and "no checksum list" in rep.summary()
    assert manifests.find_copy("CVC-ClinicDB", tmp_path)[0]["layout"][0]["glob"] == "images/*.png"
    ds = data.load("CVC-ClinicDB", "val", root=tmp_path)
    assert (ds.ids[0], ds.ids[-1], len(ds)) == ("368", "489", 122)
    assert polyp.clinicdb_layout(tmp_path / "CVC-ClinicDB")[:2] == ("png", tmp_path / "CVC-ClinicDB" / "images")
