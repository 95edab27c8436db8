"""User manifests: a user's own dataset folders registered with ``medtask data add``.

``medtask data add NAME PATH --task segmentation [--classes polyp]`` checks the folder (layout,
pairing, splits, and every image and mask decoded once), then writes, in the data root and so
outside the repository::

    <data root>/.medtask/manifests/NAME.yml        what the folder is: path, task, layout, classes, splits
    <data root>/.medtask/manifests/NAME.sha256     sha256 of every file (``sha256sum`` format)
    <data root>/.medtask/manifests/NAME.stat.json  size and mtime of every file (a fast change check)

From then on ``medtask.data.load(NAME, split)`` loads it, ``medtask data list`` lists it,
``medtask data verify NAME`` re-checks its layout and every checksum, and its fingerprint
(``NAME:sha256:<16 hex>``, the digest of the checksum list, the same digest a ``folder:`` run of
the unchanged folder records) names its content in provenance. A file changed, added or removed
after ``add`` makes the fingerprint fail with the fix (re-run ``medtask data add NAME PATH``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medtask import config
from medtask.data import folder, manifests, phantoms
from medtask.data.io import Dataset
from medtask.errors import ChecksumError, DatasetNotFoundError, InvalidParameterError, MedtaskError

FORMAT = "medtask-user-manifest/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: options stored in a user manifest and passed to :func:`medtask.data.folder.load_folder`
OPTIONS = ("split_rule", "fractions", "seed", "gap", "mask_mode")


def user_manifest_dir(root: str | os.PathLike | None = None) -> Path:
    """``<data root>/.medtask/manifests``: where registered folders are described."""
    return config.data_root(root) / ".medtask" / "manifests"


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def all_user_manifests(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every user manifest in the data root (sorted by name)."""
    d = user_manifest_dir(root)
    out = []
    for p in sorted(d.glob("*.yml")) if d.is_dir() else []:
        with open(p) as fh:
            m = yaml.safe_load(fh)
        if isinstance(m, dict) and m.get("format") == FORMAT:
            m["_path"] = str(p)
            out.append(m)
    return out


def find_user_manifest(name: str, root: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The user manifest named ``name`` (case-, dash- and underscore-insensitive), or ``None``."""
    if not isinstance(name, str) or folder.is_folder_name(name):
        return None
    key = _norm(name)
    for m in all_user_manifests(root):
        if _norm(m["name"]) == key:
            return m
    return None


def _shipped(name: str) -> str | None:
    try:
        return manifests.resolve_name(name)
    except InvalidParameterError:
        return None


def _paths(m: dict[str, Any]) -> tuple[Path, Path]:
    base = Path(m["_path"]).parent
    return base / m["checksums"], base / m["stat"]


def _stat_of(path: Path, files: list[Path]) -> dict[str, list[int]]:
    return {f.relative_to(path).as_posix(): [f.stat().st_size, f.stat().st_mtime_ns] for f in files}


# --------------------------------------------------------------------------------------------
# add
# --------------------------------------------------------------------------------------------
def add(name: str, path: str | os.PathLike, *, task: str | None = None, classes: Any = None,
        root: str | os.PathLike | None = None, replace: bool = False, split_rule: str = "auto",
        fractions: tuple[float, float, float] = folder.DEFAULT_FRACTIONS, seed: int = 0, gap: int = 0,
        mask_mode: str = "auto") -> dict[str, Any]:
    """Check the folder ``path`` and register it as dataset ``name``; return the manifest written.

    Re-adding a name for the same folder updates its checksums; pointing a name at another folder
    needs ``replace``. Names of shipped datasets and phantoms are refused.
    """
    if not _NAME.match(name or ""):
        raise InvalidParameterError(f"dataset name {name!r}: use letters, digits, '.', '_' and '-' (starting with a "
                                    "letter or digit), e.g. my-polyps")
    if phantoms.is_phantom(name) or _shipped(name):
        raise InvalidParameterError(f"{name!r} is already a dataset of the study ({_shipped(name) or name}); choose "
                                    "another name for your folder, e.g. my-" + name.lower())
    p = Path(os.path.expanduser(str(path)))
    if not p.is_dir():
        raise DatasetNotFoundError(name, p, "no such folder; give the folder that holds the images.")
    p = p.resolve()
    old = find_user_manifest(name, root)
    if old is not None and Path(old["path"]) != p and not replace:
        raise InvalidParameterError(f"{old['name']!r} is already registered for {old['path']}; choose another name, or "
                                    f"give --replace to point it at {p}")
    opts = {"split_rule": split_rule, "fractions": [float(f) for f in fractions], "seed": int(seed), "gap": int(gap),
            "mask_mode": mask_mode}
    index = folder.index_folder(p, task, classes=classes, split_rule=split_rule, fractions=fractions, seed=seed,
                                gap=gap)
    cls = folder.check_folder(index, name, mask_mode=mask_mode)
    files = folder.dataset_files(p)
    listing = folder.checksum_lines(p, files)
    d = user_manifest_dir(root)
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".{name}.write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise MedtaskError(f"cannot write the manifest of {name!r} to {d} ({exc.__class__.__name__}: {exc}); give a "
                           "writable data root with --data-root or MEDTASK_DATA.") from exc
    if old is not None and _norm(old["name"]) == _norm(name) and old["name"] != name:
        for f in (Path(old["_path"]), *_paths(old)):
            f.unlink(missing_ok=True)
    (d / f"{name}.sha256").write_text(listing)
    (d / f"{name}.stat.json").write_text(json.dumps(_stat_of(p, files), indent=0, sort_keys=True))
    m = {"format": FORMAT, "name": name, "task": index.task, "layout": index.layout, "path": str(p),
         "classes": cls, "options": opts,
         "splits": {"rule": index.split_rule, "counts": {s: len(v) for s, v in index.splits.items()}},
         "files": len(files), "bytes": sum(f.stat().st_size for f in files),
         "checksums": f"{name}.sha256", "stat": f"{name}.stat.json",
         "fingerprint": f"{name}:sha256:{folder.digest_of_listing(listing)}",
         "added": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    given = f" --classes {','.join(cls)}" if classes is not None else ""
    header = (f"# Registered with `medtask data add {name} {p} --task {index.task}{given}`; re-run it to update.\n"
              f"# {name}.sha256 beside this file lists every file's sha256; do not edit by hand.\n")
    (d / f"{name}.yml").write_text(header + yaml.safe_dump(m, sort_keys=False))
    m["_path"] = str(d / f"{name}.yml")
    return m


# --------------------------------------------------------------------------------------------
# load, verify, fingerprint
# --------------------------------------------------------------------------------------------
def _require(name: str, root: str | os.PathLike | None) -> dict[str, Any]:
    m = find_user_manifest(name, root)
    if m is None:
        raise InvalidParameterError(f"no registered dataset {name!r} in {user_manifest_dir(root)}; register the folder "
                                    f"with `medtask data add {name} PATH --task TASK`")
    return m


def _folder_of(m: dict[str, Any]) -> Path:
    p = Path(m["path"])
    if not p.is_dir():
        raise DatasetNotFoundError(m["name"], p, "the folder registered by `medtask data add` is gone; put it back, "
                                   f"or register its new place with `medtask data add {m['name']} NEW_PATH --replace`.")
    return p


def load(name: str, split: str, *, root: str | os.PathLike | None = None, size: Any = None, limit: int | None = None,
         **options: Any) -> Dataset:
    """Load ``split`` of a registered folder with the task, classes and split options recorded at ``add``."""
    m = _require(name, root)
    p = _folder_of(m)
    kw = {k: v for k, v in (m.get("options") or {}).items() if k in OPTIONS}
    if "fractions" in kw:
        kw["fractions"] = tuple(kw["fractions"])
    kw.update(options)
    kw.setdefault("classes", m["classes"])
    task = kw.pop("task", m["task"])
    if task != m["task"]:
        raise InvalidParameterError(f"{m['name']} is a {m['task']} dataset, not {task}")
    ds = folder.load_folder(p, split, task=task, name=m["name"], size=size, limit=limit, **kw)
    ds.info["source"] = label(m)
    return ds


def label(m: dict[str, Any]) -> str:
    """How provenance names a registered folder: ``NAME (registered folder PATH)``."""
    return f"{m['name']} (registered folder {m['path']})"


@dataclass
class FolderReport:
    """The outcome of verifying a registered or one-off folder: layout problems, missing, altered, new files."""

    name: str
    path: Path
    checked_files: int = 0
    checksums_used: bool = False
    layout_problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    registered: bool = True
    present: bool = True  # a missing folder is a layout problem (the fix is not a fetch)

    @property
    def ok(self) -> bool:
        """True when the layout is right and (with checksums) no file is missing, altered or new."""
        return not (self.layout_problems or self.missing or self.bad or self.new)

    def summary(self) -> str:
        """A human-readable account (what is wrong and how to fix it)."""
        kind = "registered folder" if self.registered else "unregistered folder"
        head = f"{self.name} ({kind} {self.path}): "
        if self.ok:
            if self.checksums_used:
                return head + f"OK, {self.checked_files} files match their sha256."
            return head + ("OK, layout checked (no checksums: " + ("--no-checksums)." if self.registered else
                           "an unregistered folder has none; its fingerprint is the digest of its bytes)."))
        lines = [head + "FAILED"]
        for what, items in (("layout", self.layout_problems), ("missing", self.missing),
                            ("checksum mismatch", self.bad), ("new file", self.new)):
            lines += [f"  {what}: {p}" for p in items[:20]]
            if len(items) > 20:
                lines.append(f"  ... and {len(items) - 20} more ({what})")
        if self.registered:
            lines.append(f"  fix: restore the files, or, if the change is intended, record it with "
                         f"`medtask data add {self.name} {self.path}` (a folder that moved: "
                         f"`medtask data add {self.name} NEW_PATH --replace`).")
        else:
            lines.append("  fix: lay the folder out as `medtask data add --help` describes (see the book page "
                         "'Run it on your data').")
        return "\n".join(lines)


def verify_folder(path: Path, name: str, *, task: str | None = None, classes: Any = None,
                  options: dict[str, Any] | None = None) -> list[str]:
    """Layout problems of a dataset folder (empty when its layout, pairing and splits are right)."""
    opts = {k: (tuple(v) if k == "fractions" else v) for k, v in (options or {}).items()
            if k in OPTIONS and k != "mask_mode"}
    if not Path(path).is_dir():
        return [f"folder {path} is missing"]
    try:
        folder.index_folder(path, task, classes=classes, **opts)
    except MedtaskError as exc:
        return [str(exc)]
    return []


def verify(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> FolderReport:
    """Re-check a registered folder: its layout, and (with ``checksums``) every file against the recorded sha256."""
    m = _require(name, root)
    p = Path(m["path"])
    rep = FolderReport(m["name"], p)
    rep.layout_problems = verify_folder(p, m["name"], task=m["task"], classes=m["classes"], options=m.get("options"))
    if checksums and p.is_dir():
        rep.checksums_used = True
        recorded = manifests.read_checksums(_paths(m)[0])
        for rel, digest in recorded.items():
            f = p / rel
            if not f.is_file():
                rep.missing.append(rel)
                continue
            rep.checked_files += 1
            if manifests.sha256_file(f) != digest:
                rep.bad.append(rel)
        rep.new = [f.relative_to(p).as_posix() for f in folder.dataset_files(p)
                   if f.relative_to(p).as_posix() not in recorded]
    return rep


def fingerprint(name: str, root: str | os.PathLike | None = None) -> str:
    """``NAME:sha256:<16 hex>``, the digest of the recorded checksum list, once the folder is found unchanged.

    Files whose size or mtime differ from the record are re-hashed; a changed, new or missing file
    raises :class:`ChecksumError` with the fix.
    """
    m = _require(name, root)
    p = _folder_of(m)
    sums_path, stat_path = _paths(m)
    text = sums_path.read_text()
    recorded = manifests.read_checksums(sums_path)
    stats = json.loads(stat_path.read_text()) if stat_path.is_file() else {}
    now = {f.relative_to(p).as_posix(): f for f in folder.dataset_files(p)}
    changed = sorted(set(now) ^ set(recorded))
    for rel in sorted(set(now) & set(recorded)):
        st = now[rel].stat()
        if stats.get(rel) != [st.st_size, st.st_mtime_ns] and manifests.sha256_file(now[rel]) != recorded[rel]:
            changed.append(rel)
    if changed:
        raise ChecksumError(f"{m['name']}: {len(changed)} file(s) under {p} changed, appeared or disappeared since "
                            f"`medtask data add` ({', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}); "
                            f"run `medtask data verify {m['name']}`, then restore them or record the change with "
                            f"`medtask data add {m['name']} {p}`.")
    return f"{m['name']}:sha256:{folder.digest_of_listing(text)}"


def status_row(m: dict[str, Any], root: str | os.PathLike | None = None, checksums: bool = False) -> dict[str, Any]:
    """A ``medtask data list`` row for a registered folder (``verified``: layout, plus sha256 with ``checksums``)."""
    p = Path(m["path"])
    verified = verify(m["name"], root, checksums=checksums).ok if p.is_dir() else None
    return {"name": m["name"], "folder": str(p), "tasks": m["task"], "studies": "own data", "present": p.is_dir(),
            "complete": True if p.is_dir() else None, "verified": verified, "n_files": m.get("files", 0),
            "licence": "user's own"}
