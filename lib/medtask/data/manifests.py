"""Dataset manifests (``data_manifests/<name>.yml``): lookup, layout checks, verification, fingerprints.

A manifest names one dataset and lists its *copies*: the folders under the data root where it may
be found (``copies[0]`` is the official/complete layout that ``fetch`` produces; later copies are
partial ones such as the annotations-only ChestX-Det folder). Each copy has a layout (globs with
expected counts) and, where the files were available to us, a per-file sha256 list in
``data_manifests/checksums/`` (``sha256sum`` format, paths relative to the dataset folder).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medtask import config
from medtask.errors import ChecksumError, DatasetNotFoundError, InvalidParameterError

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


def manifest_dir() -> Path:
    """``<repo>/data_manifests`` (override with ``$MEDTASK_MANIFESTS``, used by tests)."""
    env = os.environ.get("MEDTASK_MANIFESTS")
    return Path(env) if env else config.repo_root() / "data_manifests"


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@functools.lru_cache(maxsize=8)
def _load_all(mdir: str) -> tuple[dict[str, Any], ...]:
    out = []
    for p in sorted(Path(mdir).glob("*.yml")):
        with open(p) as fh:
            m = yaml.safe_load(fh)
        m["_path"] = str(p)
        out.append(m)
    return tuple(out)


def all_manifests() -> list[dict[str, Any]]:
    """Every manifest in ``data_manifests/`` (sorted by file name)."""
    return [dict(m) for m in _load_all(str(manifest_dir()))]


def resolve_name(name: str) -> str:
    """The canonical manifest name for ``name`` (case-, dash- and underscore-insensitive). Names and
    aliases are matched first, then the folder names of the copies."""
    key = _norm(name)
    ms = _load_all(str(manifest_dir()))
    for m in ms:
        if key in {_norm(m["name"])} | {_norm(a) for a in m.get("aliases", [])}:
            return m["name"]
    for m in ms:
        if key in {_norm(c["folder"]) for c in m["copies"]}:
            return m["name"]
    known = ", ".join(m["name"] for m in ms)
    raise InvalidParameterError(f"unknown dataset {name!r}; known datasets: {known} "
                                f"(manifests in {manifest_dir()}).")


def load_manifest(name: str) -> dict[str, Any]:
    """The manifest of dataset ``name`` (lookup is case-insensitive; aliases work)."""
    canon = resolve_name(name)
    for m in _load_all(str(manifest_dir())):
        if m["name"] == canon:
            return dict(m)
    raise AssertionError(canon)  # pragma: no cover


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Validate a manifest against ``manifest.schema.json`` (raises ``jsonschema.ValidationError``)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate({k: v for k, v in manifest.items() if not k.startswith("_")}, schema)


def how_to_get(manifest: dict[str, Any]) -> str:
    """The fetch command, or the manual steps where the dataset needs registration."""
    dl = manifest.get("download", {})
    if dl.get("requires_registration") or not dl.get("files"):
        steps = dl.get("manual_steps") or [f"see {manifest.get('homepage')}"]
        folder = manifest["copies"][0]["folder"]
        lines = [f"  {k}. {s}" for k, s in enumerate(steps, 1)]
        return (f"{manifest['name']} must be obtained by hand:\n" + "\n".join(lines) +
                f"\nthen place it at <data root>/{folder}/ (layout in {Path(manifest['_path']).name}) and run "
                f"`medtask data verify {manifest['name']}`.")
    return f"Run `medtask data fetch {manifest['name']}` or set MEDTASK_DATA to the folder that holds it."


def by_hand_only(manifest: dict[str, Any]) -> bool:
    """True when the dataset cannot be downloaded by ``medtask data fetch`` (registration or manual steps)."""
    dl = manifest.get("download", {})
    return bool(dl.get("requires_registration") or not dl.get("files"))


def fix_hint(manifest: dict[str, Any]) -> str:
    """What to do about missing or altered files: re-fetch, or (for data obtained by hand) restore them by hand."""
    name = manifest["name"]
    if by_hand_only(manifest):
        return (f"{name} can only be obtained by hand: restore the files from your original download, following "
                f"the steps in data_manifests/{Path(manifest.get('_path', name + '.yml')).name} "
                f"(`medtask data fetch {name}` prints them).")
    return f"Re-fetch with `medtask data fetch {name} --force` (or restore the files by hand)."


# --------------------------------------------------------------------------------------------
# where a dataset is
# --------------------------------------------------------------------------------------------
def find_copy(name: str, root: str | os.PathLike | None = None, *, partial: bool = True
              ) -> tuple[dict[str, Any], Path]:
    """The copy of ``name`` present under the data root, and its folder.

    Copies are tried in manifest order; where several folders exist, the first whose layout
    matches wins (else the first that exists). ``partial=False`` accepts only ``copies[0]``.
    """
    m = load_manifest(name)
    base = config.data_root(root)
    copies = m["copies"] if partial else m["copies"][:1]
    present = [(c, base / c["folder"]) for c in copies if (base / c["folder"]).is_dir()]
    for c, p in present:
        if len(present) == 1 or not check_layout(c, p):
            return c, p
    if present:
        return present[0]
    raise DatasetNotFoundError(m["name"], base / m["copies"][0]["folder"], how_to_get(m))


def dataset_dir(name: str, root: str | os.PathLike | None = None, *, partial: bool = True) -> Path:
    """The folder holding dataset ``name``; raises :class:`DatasetNotFoundError` (with the fix) when absent."""
    return find_copy(name, root, partial=partial)[1]


def checksum_file(copy: dict[str, Any]) -> Path | None:
    """The per-file sha256 list of a copy, or ``None`` where none was recorded."""
    rel = copy.get("checksums")
    return manifest_dir() / rel if rel else None


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` file into ``{relative path: hex digest}``."""
    out = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        digest, rel = line.split(maxsplit=1)
        out[rel.lstrip("*").strip()] = digest.lower()
    return out


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def hash_cache_path() -> Path:
    """The per-file sha256 cache: ``<output>/.medtask-cache/file-sha256.json``."""
    return config.output_root() / ".medtask-cache" / "file-sha256.json"


def sha256_files(paths: list[Path]) -> dict[Path, str]:
    """The sha256 of each file, read from the cache where its path, size and mtime are unchanged.

    A file is hashed once and re-hashed only when its size or modification time changes, so
    fingerprinting and verifying the same data again costs a ``stat`` per file.
    """
    cpath = hash_cache_path()
    try:
        cache: dict[str, list] = json.loads(cpath.read_text())
    except (OSError, ValueError):
        cache = {}
    out: dict[Path, str] = {}
    changed = False
    for f in paths:
        st = os.stat(f)
        key = str(Path(f).resolve())
        hit = cache.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            out[f] = hit[2]
            continue
        digest = sha256_file(f)
        cache[key] = [st.st_size, st.st_mtime_ns, digest]
        out[f] = digest
        changed = True
    if changed:
        cpath.parent.mkdir(parents=True, exist_ok=True)
        tmp = cpath.with_name(f"{cpath.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cpath)
    return out


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: layout problems, missing and corrupted files."""

    name: str
    path: Path | None
    copy: str | None = None
    checked_files: int = 0
    checksums_used: bool = False
    no_checksum_list: bool = False
    layout_problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    present: bool = True
    fix: str = ""

    @property
    def ok(self) -> bool:
        """True when the dataset is present, its layout matches and no file is missing or altered."""
        return self.present and not (self.layout_problems or self.missing or self.bad or self.corrupt)

    def problems(self) -> list[str]:
        """One line per problem: layout, missing, altered (checksum) and undecodable files."""
        return ([f"layout: {p}" for p in self.layout_problems] + [f"missing: {p}" for p in self.missing]
                + [f"checksum mismatch: {p}" for p in self.bad] + [f"cannot be decoded: {p}" for p in self.corrupt])

    def summary(self) -> str:
        """A human-readable account (what is wrong and how to fix it)."""
        if not self.present:
            return f"{self.name}: NOT PRESENT at {self.path}."
        head = f"{self.name} ({self.copy} at {self.path}): "
        if self.ok:
            why = "the manifest has no checksum list" if self.no_checksum_list else "no checksums checked"
            how = f"{self.checked_files} files match their sha256" if self.checksums_used else \
                f"layout OK, {self.checked_files} images decode ({why})"
            return head + "OK, " + how + "."
        lines = [head + "FAILED"]
        lines += [f"  layout: {p}" for p in self.layout_problems]
        lines += [f"  missing: {p}" for p in self.missing[:20]]
        if len(self.missing) > 20:
            lines.append(f"  ... and {len(self.missing) - 20} more missing")
        lines += [f"  checksum mismatch: {p}" for p in self.bad[:20]]
        if len(self.bad) > 20:
            lines.append(f"  ... and {len(self.bad) - 20} more mismatching")
        lines += [f"  cannot be decoded: {p}" for p in self.corrupt[:20]]
        if len(self.corrupt) > 20:
            lines.append(f"  ... and {len(self.corrupt) - 20} more undecodable")
        lines.append("  fix: " + (self.fix or f"re-fetch with `medtask data fetch {self.name}` "
                                  "(or restore the files by hand)."))
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        """Raise :class:`ChecksumError` (bad files) or :class:`DatasetNotFoundError` (missing ones)."""
        if self.bad:
            fix = self.fix or f"Re-fetch with `medtask data fetch {self.name} --force`."
            raise ChecksumError(f"{self.name}: sha256 mismatch for {', '.join(self.bad[:5])}"
                                f"{' ...' if len(self.bad) > 5 else ''} under {self.path}. {fix}")
        if self.corrupt:
            from medtask.errors import CorruptFileError

            raise CorruptFileError(f"{self.name}: cannot decode {', '.join(self.corrupt[:5])}"
                                   f"{' ...' if len(self.corrupt) > 5 else ''} under {self.path}. {self.fix}")
        if self.missing or self.layout_problems or not self.present:
            raise DatasetNotFoundError(self.name, self.path, self.summary())


def check_layout(copy: dict[str, Any], path: Path) -> list[str]:
    """Compare each layout glob's match count with the expected ``count`` (or ``min``); list the problems."""
    problems = []
    for entry in copy.get("layout", []):
        n = len(glob.glob(str(path / entry["glob"]), recursive=True))
        if "count" in entry and n != entry["count"]:
            problems.append(f"{entry['glob']}: {n} files, expected {entry['count']}")
        elif "min" in entry and n < entry["min"]:
            problems.append(f"{entry['glob']}: {n} files, expected at least {entry['min']}")
    return problems


def verify(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> VerifyReport:
    """Check the layout and (with ``checksums``) every file's sha256 against the recorded list."""
    m = load_manifest(name)
    try:
        copy, path = find_copy(m["name"], root)
    except DatasetNotFoundError:
        return VerifyReport(m["name"], config.data_root(root) / m["copies"][0]["folder"], present=False)
    return verify_path(m, copy, path, checksums=checksums)


def verify_path(manifest: dict[str, Any], copy: dict[str, Any], path: Path, checksums: bool = True) -> VerifyReport:
    """:func:`verify` for an explicit folder (``fetch`` uses it on the extracted temp folder)."""
    rep = VerifyReport(manifest["name"], path, copy=copy["folder"], fix=fix_hint(manifest))
    rep.layout_problems = check_layout(copy, path)
    cfile = checksum_file(copy)
    if checksums and cfile is not None:
        rep.checksums_used = True
        expected = read_checksums(cfile)
        present = [path / rel for rel in expected if (path / rel).is_file()]
        got = sha256_files(present)
        for rel, digest in expected.items():
            f = path / rel
            if f not in got:
                rep.missing.append(rel)
                continue
            rep.checked_files += 1
            if got[f] != digest:
                rep.bad.append(rel)
        return rep
    rep.no_checksum_list = cfile is None
    # without checksums, at least every image of the layout must decode (a truncated file fails here)
    for f in _layout_images(copy, path):
        rep.checked_files += 1
        if not _decodes(f):
            rep.corrupt.append(f.relative_to(path).as_posix())
    return rep


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".ppm")


def _layout_images(copy: dict[str, Any], path: Path) -> list[Path]:
    files: set[Path] = set()
    for entry in copy.get("layout", []):
        files.update(Path(f) for f in glob.glob(str(path / entry["glob"]), recursive=True))
    return sorted(f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _decodes(path: Path) -> bool:
    """Whether Pillow decodes the whole image (truncated or damaged files do not)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # Pillow raises OSError, SyntaxError, ValueError ... on damaged files
        return False


def fingerprint(name: str, root: str | os.PathLike | None = None, *, strict: bool = True) -> str:
    """A short digest of the data's actual bytes: every file's path and sha256 (after a cheap layout check).

    Each file is hashed once and cached by path, size and mtime (:func:`sha256_files`), so a
    rerun costs a ``stat`` per file; an edited file changes the fingerprint. A layout that does
    not match the manifest raises :class:`DatasetNotFoundError`, or with ``strict=False`` is
    fingerprinted all the same, marked ``layout-mismatch`` (the cache key and the provenance of a
    run on such data still follow its bytes). Phantoms have no files: their fingerprint names the
    generator version.
    """
    from medtask.data import phantoms

    if phantoms.is_phantom(name):
        return phantoms.fingerprint(name)
    m = load_manifest(name)
    copy, path = find_copy(m["name"], root)
    problems = check_layout(copy, path)
    if problems and strict:
        raise DatasetNotFoundError(m["name"], path, "its layout does not match the manifest: " + "; ".join(problems)
                                   + f". Run `medtask data verify {m['name']}`.")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "PROVENANCE.md")
    digests = sha256_files(files)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(path).as_posix()}\0{digests[f]}\n".encode())
    mark = ":layout-mismatch" if problems else ""
    return f"{copy['folder']}{mark}:sha256:{h.hexdigest()[:16]}"


def verify_for_chapter(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The check a chapter runs on each of its datasets before training.

    Returns ``{"dataset", "path", "status", "problems", "fix"}`` where ``status`` is ``"verified"``
    (layout and every checksum match), ``"failed"``, ``"no checksum list"`` (nothing to check
    against), ``"absent"`` (the loader will say how to get it) or ``"generated"`` (a phantom).
    """
    from medtask.data import phantoms

    if phantoms.is_phantom(name):
        return {"dataset": name, "path": None, "status": "generated", "problems": [], "fix": ""}
    m = load_manifest(name)
    try:
        copy, path = find_copy(m["name"], root)
    except DatasetNotFoundError:
        return {"dataset": m["name"], "path": None, "status": "absent", "problems": [], "fix": how_to_get(m)}
    cfile = checksum_file(copy)
    if cfile is None or not cfile.is_file():
        return {"dataset": m["name"], "path": str(path), "status": "no checksum list", "problems": [], "fix": ""}
    rep = verify_path(m, copy, path, checksums=True)
    return {"dataset": m["name"], "path": str(path), "status": "verified" if rep.ok else "failed",
            "problems": rep.problems(), "fix": rep.fix}


def status(name: str, root: str | os.PathLike | None = None, checksums: bool = False) -> dict[str, Any]:
    """``{name, folder, present, copy, complete, verified, n_files}`` for ``medtask data list``.

    ``verified`` is the layout check, plus the sha256 check when ``checksums`` is true (slow for big sets).
    """
    m = load_manifest(name)
    out: dict[str, Any] = {"name": m["name"], "folder": m["copies"][0]["folder"], "present": False, "copy": None,
                           "complete": None, "verified": None, "n_files": 0}
    try:
        copy, path = find_copy(m["name"], root)
    except DatasetNotFoundError:
        return out
    rep = verify_path(m, copy, path, checksums=checksums)
    out.update(present=True, copy=copy["folder"], complete=copy.get("complete", False), verified=rep.ok,
               n_files=sum(1 for p in path.rglob("*") if p.is_file() and p.name != "PROVENANCE.md"))
    return out
