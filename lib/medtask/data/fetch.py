"""Fetching a dataset: download (pooch), safe extraction, verification, then an atomic move into place.

Everything happens in a temporary folder *inside* the data root; the dataset folder appears only
after every downloaded file matched its archive hash (where the manifest has one) and the extracted
files matched the per-file checksum list (or, without one, the layout). On any failure the
temporary folder is removed and nothing is left half-written. Datasets that need registration
raise :class:`~medtask.errors.DatasetNotFoundError` whose message lists the manual steps.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.parse
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from medtask import config
from medtask.data import manifests
from medtask.errors import ChecksumError, CorruptFileError, DatasetNotFoundError, DownloadError, MedtaskError

Downloader = Callable[[str, Path, "str | None"], Path]


class UnsafeArchiveError(CorruptFileError):
    """An archive member would land outside the target folder (absolute path, ``..``, escaping link)."""


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------
def _file_name(url: str) -> str:
    return Path(urllib.parse.urlparse(url).path).name or "download"


def default_downloader(url: str, dest_dir: Path, sha256: str | None) -> Path:
    """Download ``url`` into ``dest_dir`` with pooch (checking ``sha256`` when given); ``file://`` is copied."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    if url.startswith("file://"):
        src = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
        if not src.is_file():
            raise DatasetNotFoundError("(download)", src, f"the local source {url} does not exist.")
        out = dest_dir / src.name
        shutil.copyfile(src, out)
        if sha256 is not None and manifests.sha256_file(out) != sha256:
            raise ChecksumError(f"downloaded file {url} has sha256 {manifests.sha256_file(out)}, the manifest says "
                                f"{sha256}; the source changed or the download is damaged - retry, or update the manifest.")
        return out
    import pooch

    pooch.get_logger().setLevel("WARNING")  # its "Downloading data from ..." lines would bury our messages
    try:
        return Path(pooch.retrieve(url, known_hash=f"sha256:{sha256}" if sha256 else None, fname=_file_name(url),
                                   path=dest_dir, progressbar=False))
    except ValueError as exc:  # pooch reports a hash mismatch as ValueError
        raise ChecksumError(f"downloaded file {url} does not match the manifest's sha256 ({exc}); retry, or update "
                            "the manifest if the source changed.") from exc


# --------------------------------------------------------------------------------------------
# safe extraction
# --------------------------------------------------------------------------------------------
def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive {archive} has an absolute member path {name!r}; refusing to extract it.")
    if ".." in p.parts:
        raise UnsafeArchiveError(f"archive {archive} has a member path with '..' ({name!r}); refusing to extract it.")
    return p


def _inside(root: Path, target: Path) -> bool:
    root, target = os.path.realpath(root), os.path.realpath(target)
    return target == root or target.startswith(root + os.sep)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest``, rejecting absolute paths, ``..`` and links that escape ``dest``.

    Zip members that are symbolic links are rejected outright; tar links are allowed only when
    their target stays inside ``dest``; device files and FIFOs are rejected. The checks run on every
    member *before* anything is written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                p = _check_member_name(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(f"archive {archive} contains a symbolic link {info.filename!r}; "
                                             "refusing to extract it.")
                if not _inside(dest, dest / p):
                    raise UnsafeArchiveError(f"archive member {info.filename!r} of {archive} escapes {dest}.")
            zf.extractall(dest)
        return
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                p = _check_member_name(m.name, archive)
                if not _inside(dest, dest / p):
                    raise UnsafeArchiveError(f"archive member {m.name!r} of {archive} escapes {dest}.")
                if m.issym() or m.islnk():
                    base = (dest / p).parent if m.issym() else dest
                    link = PurePosixPath(m.linkname)
                    if link.is_absolute() or not _inside(dest, base / link):
                        raise UnsafeArchiveError(f"archive {archive}: link {m.name!r} -> {m.linkname!r} points "
                                                 f"outside {dest}; refusing to extract it.")
                elif not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"archive {archive}: member {m.name!r} is a device or FIFO; refusing.")
            kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(dest, members=members, **kwargs)
        return
    raise CorruptFileError(f"{archive} is neither a zip nor a tar archive; the download is damaged - fetch again.")


# --------------------------------------------------------------------------------------------
# placing members
# --------------------------------------------------------------------------------------------
def _merge(src: Path, dst: Path) -> None:
    """Move ``src`` (file or tree) to ``dst``, merging into an existing folder."""
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            _merge(child, dst / child.name)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def _place(extracted: Path, staging: Path, members: list[dict[str, str]] | None, url: str) -> None:
    for mem in members or [{"from": ".", "to": "."}]:
        src = extracted / _check_member_name(mem["from"], Path(url)) if mem["from"] != "." else extracted
        dst = staging / _check_member_name(mem["to"], Path(url)) if mem["to"] != "." else staging
        if not src.exists():
            raise CorruptFileError(f"archive {url} has no {mem['from']!r}; its layout differs from the manifest - "
                                   "update the manifest's members, or place the files by hand.")
        _merge(src, dst)


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------
def fetch(name: str, root: str | os.PathLike | None = None, *, downloader: Downloader | None = None,
          force: bool = False) -> Path:
    """Download, extract and verify dataset ``name`` into ``<data root>/<folder>``; return that folder.

    A dataset already present and valid is left alone. ``force`` replaces an existing folder
    that fails verification (it is never touched otherwise).
    """
    m = manifests.load_manifest(name)
    copy = m["copies"][0]
    base = config.data_root(root)
    target = base / copy["folder"]
    if target.is_dir():
        rep = manifests.verify_path(m, copy, target, checksums=True)
        if rep.ok:
            return target
        if not force:
            raise MedtaskError(f"{target} exists but does not verify:\n{rep.summary()}\nDelete it, or fetch with "
                               f"force=True (`medtask data fetch {m['name']} --force`) to replace it.")
    dl = m["download"]
    if dl.get("requires_registration") or not dl.get("files"):
        raise DatasetNotFoundError(m["name"], target, manifests.how_to_get(m))
    downloader = downloader or default_downloader
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{copy['folder']}.fetch-", dir=base))
    try:
        staging = tmp / "dataset"
        staging.mkdir()
        for k, f in enumerate(dl["files"]):
            got = _download(downloader, m, f["url"], tmp / "downloads", f.get("sha256"), target)
            if f["kind"] == "file":
                _merge(got, staging / _check_member_name(f["dest"], Path(f["url"])))
            else:
                out = tmp / f"extract-{k}"
                safe_extract(got, out)
                _place(out, staging, f.get("members"), f["url"])
                got.unlink(missing_ok=True)
        rep = _verify_fetched(m, copy, staging)
        if not rep.ok:
            if rep.bad:
                rep.raise_for_errors()
            raise CorruptFileError(f"fetched {m['name']} does not match its manifest; nothing was installed.\n"
                                   + rep.summary())
        if target.exists():  # only with force: move the damaged copy aside, then delete it
            old = tmp / "previous"
            os.replace(target, old)
        os.replace(staging, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(downloader: Downloader, m: dict[str, Any], url: str, dest: Path, sha256: str | None,
              target: Path) -> Path:
    """Call ``downloader``; a network failure becomes a one-line :class:`DownloadError` with the manual way."""
    try:
        return downloader(url, dest, sha256)
    except MedtaskError:
        raise
    except Exception as exc:  # requests/urllib/pooch errors: no network, DNS, refused, HTTP status
        if not isinstance(exc, OSError) and "requests" not in type(exc).__module__:
            raise
        reason = " ".join(str(exc).split())
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise DownloadError(
            f"cannot download {m['name']} from {url} ({type(exc).__name__}: {reason}); check the network and run "
            f"`medtask data fetch {m['name']}` again, or download {url} by hand, unpack it to {target}/ as "
            f"data_manifests/{Path(m['_path']).name} describes, and run `medtask data verify {m['name']}`."
        ) from exc


def _verify_fetched(m: dict[str, Any], copy: dict[str, Any], staging: Path) -> manifests.VerifyReport:
    """:func:`manifests.verify_path` minus the files the manifest says fetch does not produce."""
    rep = manifests.verify_path(m, copy, staging, checksums=True)
    skip = m["download"].get("unfetched", [])
    if skip:
        rep.missing = [p for p in rep.missing if not any(fnmatch.fnmatch(p, g) for g in skip)]
    return rep
