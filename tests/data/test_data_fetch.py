"""fetch: safe extraction (malicious archives built here) and atomic installation (file:// sources, no network)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from medtask.data import fetch as F
from medtask.data import manifests
from medtask.errors import ChecksumError, CorruptFileError, DatasetNotFoundError, MedtaskError

FILES = {"images/a.png": b"first image", "images/b.png": b"second image", "labels.txt": b"a 1\nb 0\n"}


def _zip(path: Path, files: dict[str, bytes], prefix: str = "Toy-master/") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(prefix + name, data)
    return path


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A manifest folder with one fetchable dataset ``Toy`` whose source is a local zip (file://)."""
    mdir = tmp_path / "manifests"
    (mdir / "checksums").mkdir(parents=True)
    src = _zip(tmp_path / "toy.zip", FILES)
    (mdir / "checksums" / "Toy.sha256").write_text("".join(f"{_sha(d)}  {n}\n" for n, d in sorted(FILES.items())))
    manifest = {
        "name": "Toy", "title": "A toy dataset", "description": "three tiny files for the fetch tests",
        "homepage": "https://example.org/toy", "citation": "@misc{toy, title={Toy data for tests}}",
        "licence": {"name": "CC0", "terms": "none", "verified": True}, "tasks": ["classification"],
        "classes": ["a", "b"], "studies": [{"study": "all", "role": "tests"}],
        "copies": [{"folder": "Toy", "kind": "complete", "complete": True, "description": "d",
                    "checksums": "checksums/Toy.sha256",
                    "layout": [{"glob": "images/*.png", "count": 2, "what": "images"}]}],
        "download": {"requires_registration": False, "manual_steps": [], "files": [
            {"url": src.as_uri(), "kind": "zip", "sha256": _sha(src.read_bytes()),
             "members": [{"from": "Toy-master", "to": "."}]}]},
        "splits": {"official": True, "rule": "one split only", "seed": None, "counts": {"all": 2}},
    }
    (mdir / "Toy.yml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("MEDTASK_MANIFESTS", str(mdir))
    root = tmp_path / "data"
    root.mkdir()
    return {"mdir": mdir, "manifest": manifest, "root": root, "src": src}


def _rewrite(toy, **changes):
    m = toy["manifest"]
    m.update(changes)
    (toy["mdir"] / "Toy.yml").write_text(yaml.safe_dump(m))
    manifests._load_all.cache_clear()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_toy_manifest_is_valid(toy):
    manifests.validate_manifest(manifests.load_manifest("toy"))


def test_fetch_installs_and_verifies(toy):
    out = F.fetch("Toy", toy["root"])
    assert out == toy["root"] / "Toy" and _leftovers(toy["root"]) == ["Toy"]
    assert (out / "images" / "a.png").read_bytes() == b"first image"
    assert manifests.verify("Toy", toy["root"]).ok
    assert F.fetch("Toy", toy["root"]) == out  # present and valid: left alone


def test_fetch_archive_hash_mismatch_leaves_nothing(toy):
    m = toy["manifest"]
    m["download"]["files"][0]["sha256"] = "0" * 64
    _rewrite(toy)
    with pytest.raises(ChecksumError, match="sha256"):
        F.fetch("Toy", toy["root"])
    assert _leftovers(toy["root"]) == []


def test_fetch_content_mismatch_leaves_nothing(toy):
    bad = dict(FILES, **{"images/b.png": b"tampered"})
    _zip(toy["src"], bad)
    m = toy["manifest"]
    m["download"]["files"][0]["sha256"] = _sha(toy["src"].read_bytes())
    _rewrite(toy)
    with pytest.raises(ChecksumError, match="images/b.png"):
        F.fetch("Toy", toy["root"])
    assert _leftovers(toy["root"]) == []


def test_fetch_missing_member_leaves_nothing(toy):
    _zip(toy["src"], {k: v for k, v in FILES.items() if k != "labels.txt"})
    toy["manifest"]["download"]["files"][0]["sha256"] = None
    toy["manifest"]["download"]["files"][0]["sha256_reason"] = "test"
    _rewrite(toy)
    with pytest.raises(CorruptFileError, match="labels.txt"):
        F.fetch("Toy", toy["root"])
    assert _leftovers(toy["root"]) == []


def test_fetch_interrupted_download_leaves_nothing(toy):
    calls = []

    def flaky(url, dest, sha):
        calls.append(url)
        if len(calls) == 2:
            raise OSError("connection reset")
        return F.default_downloader(url, dest, sha)

    files = toy["manifest"]["download"]["files"]
    files.append({"url": "https://example.org/extra.txt", "kind": "file", "dest": "extra.txt", "sha256": None,
                  "sha256_reason": "test"})
    _rewrite(toy)
    with pytest.raises(OSError, match="connection reset"):
        F.fetch("Toy", toy["root"], downloader=flaky)
    assert _leftovers(toy["root"]) == [] and len(calls) == 2


def test_fetch_existing_bad_folder_needs_force(toy):
    (toy["root"] / "Toy").mkdir()
    (toy["root"] / "Toy" / "junk").write_text("x")
    with pytest.raises(MedtaskError, match="force"):
        F.fetch("Toy", toy["root"])
    assert (toy["root"] / "Toy" / "junk").exists()
    F.fetch("Toy", toy["root"], force=True)
    assert not (toy["root"] / "Toy" / "junk").exists() and manifests.verify("Toy", toy["root"]).ok
    assert _leftovers(toy["root"]) == ["Toy"]


def test_fetch_registration_prints_manual_steps(toy):
    toy["manifest"]["download"] = {"requires_registration": True, "manual_steps": ["Log in at example.org",
                                                                                   "Download toy.zip"], "files": []}
    _rewrite(toy)
    with pytest.raises(DatasetNotFoundError) as ei:
        F.fetch("Toy", toy["root"])
    assert "1. Log in at example.org" in str(ei.value) and "2. Download toy.zip" in str(ei.value)


def test_real_registration_dataset_raises_manual_steps(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="grand-challenge"):
        F.fetch("DRIVE", tmp_path)


# -- malicious archives ------------------------------------------------------------------------
def _zip_raw(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _sym(name: str, target: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.SYMTYPE, target
    return ti


def _hard(name: str, target: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.LNKTYPE, target
    return ti


def _zip_symlink() -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo("data/link")
    zi.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zi


@pytest.mark.parametrize("kind,entries,pattern", [
    ("zip", [("../evil.txt", b"x")], r"'\.\.'"),
    ("zip", [("ok/../../evil.txt", b"x")], r"'\.\.'"),
    ("zip", [("/tmp/evil.txt", b"x")], "absolute"),
    ("zip", [("C:/evil.txt", b"x")], "absolute"),
    ("zip", [(None, b"/etc/passwd")], "symbolic link"),
    ("tar", [("../evil.txt", b"x")], r"'\.\.'"),
    ("tar", [("/abs/evil.txt", b"x")], "absolute"),
    ("tar", [("sym", "/etc")], "outside"),
    ("tar", [("sub/sym", "../../outside")], "outside"),
    ("tar", [("hard", "../../etc/passwd")], "outside"),
    ("tar", [("fifo", None)], "FIFO"),
])
def test_safe_extract_rejects_malicious_archives(tmp_path, kind, entries, pattern):
    dest = tmp_path / "out"
    if kind == "zip":
        arc = _zip_raw(tmp_path / "evil.zip", [("good.txt", b"fine")] +
                       [(_zip_symlink() if name is None else name, data) for name, data in entries])
    else:
        built = [(tarfile.TarInfo("good.txt"), b"fine")]
        for name, data in entries:
            if name in ("sym", "sub/sym"):
                built.append((_sym(name, data), None))
            elif name == "hard":
                built.append((_hard(name, data), None))
            elif name == "fifo":
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.FIFOTYPE
                built.append((ti, None))
            else:
                built.append((tarfile.TarInfo(name), data))
        arc = _tar(tmp_path / "evil.tar.gz", built)
    with pytest.raises(F.UnsafeArchiveError, match=pattern):
        F.safe_extract(arc, dest)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "good.txt").exists()  # checked before writing


def test_safe_extract_accepts_good_archives_and_inner_links(tmp_path):
    arc = _tar(tmp_path / "ok.tar.gz", [(tarfile.TarInfo("d/f.txt"), b"hello"), (_sym("d/link", "f.txt"), None)])
    F.safe_extract(arc, tmp_path / "t")
    assert (tmp_path / "t" / "d" / "link").read_bytes() == b"hello"
    F.safe_extract(_zip(tmp_path / "ok.zip", FILES, prefix=""), tmp_path / "z")
    assert (tmp_path / "z" / "labels.txt").read_bytes() == FILES["labels.txt"]
    (tmp_path / "notarchive").write_bytes(b"plain text")
    with pytest.raises(CorruptFileError, match="neither a zip nor a tar"):
        F.safe_extract(tmp_path / "notarchive", tmp_path / "n")


def test_malicious_archive_through_fetch_leaves_nothing(toy, tmp_path):
    _zip_raw(toy["src"], [("Toy-master/images/a.png", b"x"), ("../../escape.txt", b"x")])
    toy["manifest"]["download"]["files"][0]["sha256"] = _sha(toy["src"].read_bytes())
    _rewrite(toy)
    with pytest.raises(F.UnsafeArchiveError):
        F.fetch("Toy", toy["root"])
    assert _leftovers(toy["root"]) == [] and not (tmp_path / "escape.txt").exists()
    assert not any(p.name == "escape.txt" for p in tmp_path.rglob("*"))


def test_fetch_without_network_prints_one_line_with_the_manual_way(toy, capsys):
    from medtask import cli

    url = "http://127.0.0.1:9/toy.zip"  # nothing listens on port 9: the connection is refused, as offline
    toy["manifest"]["download"]["files"][0]["url"] = url
    _rewrite(toy)
    rc = cli.main(["data", "fetch", "Toy", "--data-root", str(toy["root"])])
    captured = capsys.readouterr()
    lines = [ln for ln in (captured.out + captured.err).splitlines() if ln.strip()]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in lines[0]
    assert "cannot download Toy" in lines[0] and f"download {url} by hand" in lines[0]
    assert "medtask data verify Toy" in lines[0] and _leftovers(toy["root"]) == []
