"""Manifests: schema validity, required content, lookup, verify/fingerprint/status on the real data."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import jsonschema
import pytest

from medtask.data import manifests
from medtask.data import LOADERS
from medtask.errors import ChecksumError, DatasetNotFoundError, InvalidParameterError

EXPECTED = {"CVC-ColonDB", "ChestX-Det", "ChestX-Det10", "ISIC2018", "COVID-CT", "Lizard", "CAMUS", "DRIVE",
            "CHASE_DB1", "HRF", "Kodak", "BCCD", "ARCADE", "Kvasir-SEG", "CVC-ClinicDB"}


def test_every_expected_manifest_exists_and_validates():
    ms = manifests.all_manifests()
    assert {m["name"] for m in ms} == EXPECTED
    for m in ms:
        manifests.validate_manifest(m)
        assert Path(m["_path"]).name == f"{m['name']}.yml"
        assert m["name"] in LOADERS, f"{m['name']} has no loader"
        for c in m["copies"]:
            if c["checksums"]:
                assert (manifests.manifest_dir() / c["checksums"]).is_file()
        for f in m["download"]["files"]:
            assert f["sha256"] is not None or f.get("sha256_reason")


def test_schema_rejects_a_bad_manifest():
    m = manifests.load_manifest("BCCD")
    bad = {k: v for k, v in m.items() if k != "citation"}
    with pytest.raises(jsonschema.ValidationError):
        manifests.validate_manifest(bad)
    bad = json.loads(json.dumps({k: v for k, v in m.items() if not k.startswith("_")}))
    bad["download"]["files"][0].pop("sha256_reason")  # a null hash needs its reason
    with pytest.raises(jsonschema.ValidationError):
        manifests.validate_manifest(bad)
    bad = json.loads(json.dumps({k: v for k, v in m.items() if not k.startswith("_")}))
    bad["tasks"] = ["denoising"]
    with pytest.raises(jsonschema.ValidationError):
        manifests.validate_manifest(bad)


def test_checksum_lists_are_sha256sum_format():
    for f in (manifests.manifest_dir() / "checksums").glob("*.sha256"):
        sums = manifests.read_checksums(f)
        assert sums and all(len(d) == 64 for d in sums.values())
        assert not any(p.startswith("/") or ".." in p or p.endswith("PROVENANCE.md") for p in sums)


@pytest.mark.parametrize("query,canon", [("cvc-colondb", "CVC-ColonDB"), ("CVC_ColonDB", "CVC-ColonDB"),
                                         ("chase", "CHASE_DB1"), ("chestx-det10", "ChestX-Det10"),
                                         ("CHESTX-DET", "ChestX-Det"), ("ARCADE_stenosis_mini_subset", "ARCADE"),
                                         ("isic2018_labels_only", "ISIC2018"), ("covid_ct", "COVID-CT")])
def test_lookup_is_case_insensitive(query, canon):
    assert manifests.resolve_name(query) == canon


def test_unknown_name():
    with pytest.raises(InvalidParameterError, match="known datasets"):
        manifests.load_manifest("MNIST")


def test_dataset_dir_missing_names_dataset_path_and_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as ei:
        manifests.dataset_dir("BCCD", tmp_path)
    msg = str(ei.value)
    assert "BCCD" in msg and str(tmp_path / "BCCD") in msg and "medtask data fetch BCCD" in msg
    with pytest.raises(DatasetNotFoundError, match="must be obtained by hand"):
        manifests.dataset_dir("DRIVE", tmp_path)  # registration: manual steps


# -- verify on a copy of a real (small) dataset ------------------------------------------------
@pytest.fixture
def arcade_copy(tmp_path, need):
    src = need("ARCADE_stenosis_mini_subset")
    shutil.copytree(src, tmp_path / "ARCADE_stenosis_mini_subset")
    return tmp_path


@pytest.mark.shared_data
def test_verify_detects_corrupted_and_missing_files(arcade_copy):
    root = arcade_copy
    assert manifests.verify("ARCADE", root).ok
    d = root / "ARCADE_stenosis_mini_subset" / "mini_test"
    with open(d / "images" / "100.jpg", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02")
    (d / "masks" / "42.jpg").unlink()
    rep = manifests.verify("ARCADE", root)
    assert not rep.ok and rep.bad == ["mini_test/images/100.jpg"] and rep.missing == ["mini_test/masks/42.jpg"]
    assert "layout" in rep.summary() and "100.jpg" in rep.summary() and "medtask data fetch ARCADE" in rep.summary()
    assert manifests.verify("ARCADE", root, checksums=False).layout_problems  # a mask is missing
    with pytest.raises(ChecksumError, match="100.jpg.*medtask data fetch ARCADE"):
        rep.raise_for_errors()


@pytest.mark.shared_data
def test_fingerprint_is_fast_and_tracks_layout(arcade_copy, shared_root):
    t = time.perf_counter()
    fps = {n: manifests.fingerprint(n, shared_root) for n in ("CVC-ColonDB", "BCCD", "COVID-CT", "DRIVE", "CHASE_DB1")}
    assert time.perf_counter() - t < 1.0 * 5
    assert len(set(fps.values())) == 5 and all(":sha256:" in v for v in fps.values())
    assert manifests.fingerprint("ARCADE", arcade_copy) == manifests.fingerprint("ARCADE", shared_root)
    (arcade_copy / "ARCADE_stenosis_mini_subset" / "mini_test" / "images" / "100.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="layout"):
        manifests.fingerprint("ARCADE", arcade_copy)
    assert manifests.fingerprint("phantom-polyp").startswith("phantom-polyp:")


@pytest.mark.shared_data
def test_status_and_verify_on_shared(shared_root, need):
    need("BCCD")
    st = manifests.status("BCCD", shared_root, checksums=True)
    assert st["present"] and st["verified"] and st["n_files"] == 735
    assert manifests.status("CAMUS", shared_root)["present"] is False
    for name in ("CVC-ColonDB", "DRIVE", "CHASE_DB1", "COVID-CT", "ChestX-Det", "ISIC2018"):
        rep = manifests.verify(name, shared_root)
        assert rep.ok, rep.summary()
        assert rep.checked_files == len(manifests.read_checksums(manifests.checksum_file(
            manifests.find_copy(name, shared_root)[0])))


@pytest.mark.shared_data
def test_fingerprint_hashes_the_bytes_once_and_an_edit_is_a_cache_miss(arcade_copy, monkeypatch):
    from medtask.pipeline import cache
    from medtask.pipeline.profiles import resolve_notebook

    before = manifests.fingerprint("ARCADE", arcade_copy)
    key = cache.cache_key(resolve_notebook("00_data"), {}, data=cache.data_digest(arcade_copy))
    hashed = []
    real = manifests.sha256_file
    monkeypatch.setattr(manifests, "sha256_file", lambda p, *a: hashed.append(p) or real(p, *a))
    assert manifests.fingerprint("ARCADE", arcade_copy) == before and hashed == []  # cached by size + mtime
    img = arcade_copy / "ARCADE_stenosis_mini_subset" / "mini_test" / "images" / "100.jpg"
    data = bytearray(img.read_bytes())
    data[400:416] = bytes(16)  # black out a few bytes: same size, same layout, other content
    img.write_bytes(bytes(data))
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    after = manifests.fingerprint("ARCADE", arcade_copy)
    assert after != before and hashed == [img]  # only the edited file is read again
    again = cache.cache_key(resolve_notebook("00_data"), {}, data=cache.data_digest(arcade_copy))
    assert again["key"] != key["key"]
