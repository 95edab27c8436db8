"""The published edition: every chapter executed once, kept in the repository so the book builds without training.

``medtask edition save --profile P`` copies the chapters executed in the output root (``book/generated/``) and
the small result files the book reads (each chapter's tables, ``claims.csv`` among them, and its ``run.json``)
into ``edition/``, with ``EDITION.json`` saying what it is (``--only CHAPTER ...`` replaces just those chapters in
the saved edition). It refuses a chapter that is missing, ran on another profile or failed, and an edition above
:data:`MAX_BYTES`. Notebooks are shrunk on the way: PNG outputs
re-encoded (optimised, downscaled to at most :data:`MAX_IMAGE_WIDTH` pixels wide), those still above
:data:`JPEG_ABOVE_BYTES` (grids of photographs, which PNG stores poorly) as JPEG at quality :data:`JPEG_QUALITY`
where that at least halves them, widget state dropped. The chapters' figure files keep their PNG and SVG.

``medtask book --no-run`` builds from the output root's chapters when all are executed on the profile, else from
the edition (:func:`medtask.pipeline.book.build_book`); every page then says it is the published edition.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import papermill
from PIL import Image

from medtask import config, provenance
from medtask.errors import MedtaskError
from medtask.pipeline.profiles import chapters as all_chapters
from medtask.pipeline.profiles import load_profile, parameter_cell, resolve_notebook
from medtask.pipeline.runner import (PATH_PARAMETERS, PROVENANCE_TOP_TAG, error_cells, executed_profile, generated_dir,
                                     stamp_provenance)

#: moves the edition away from the repository's ``edition/`` (what the tests do)
EDITION_ENV = "MEDTASK_EDITION"
#: the edition's description
INFO = "EDITION.json"
#: the largest edition ``medtask edition save`` writes (bytes)
MAX_BYTES = 25_000_000
#: PNG outputs wider than this are downscaled (pixels)
MAX_IMAGE_WIDTH = 1400
#: PNG outputs still larger than this after re-encoding are stored as JPEG where that at least halves them (bytes)
JPEG_ABOVE_BYTES = 250_000
JPEG_QUALITY = 88
#: the mime type of a Jupyter widget view (its state is not kept)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class EditionError(MedtaskError):
    """The edition cannot be saved or is not there to build from."""


def edition_root(override: str | os.PathLike | None = None) -> Path:
    """Where the edition lives: ``override`` > ``$MEDTASK_EDITION`` > ``<repo>/edition``."""
    if override not in (None, ""):
        return Path(override).expanduser().resolve()
    env = os.environ.get(EDITION_ENV)
    return Path(env).expanduser().resolve() if env else config.repo_root() / "edition"


def shown(folder: str | os.PathLike) -> str:
    """A folder as messages name it, in backticks with a closing slash (relative to the output root or the
    repository where it is under one: ``edition/``)."""
    return f"`{config.display_path(folder).rstrip('/')}/`"


def read_info(root: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The edition's ``EDITION.json``, or None where there is no edition."""
    path = edition_root(root) / INFO
    return json.loads(path.read_text()) if path.is_file() else None


def chapter_problems(profile: str, output_root: str | os.PathLike | None = None,
                     stems: list[str] | None = None, *, last_run: bool = True) -> dict[str, str]:
    """Chapter -> why its executed notebook in the output root cannot stand for ``profile`` (none: all can):
    missing, executed on another profile, holding an error output, or (``last_run``) run again since and failed."""
    folder = generated_dir(output_root)
    run = f"`medtask run {{stem}} --profile {profile}`"
    problems: dict[str, str] = {}
    for stem in stems or all_chapters():
        path, failed = folder / f"{stem}.ipynb", folder / f"{stem}.failed.ipynb"
        if not path.is_file():
            problems[stem] = "not executed; run " + run.format(stem=stem)
            continue
        nb = json.loads(path.read_text())
        ran_on = executed_profile(nb)
        if ran_on != profile:
            problems[stem] = f"executed on profile {ran_on!r}, not {profile!r}; run " + run.format(stem=stem)
        elif errs := error_cells(nb):
            problems[stem] = f"its executed notebook holds an error ({errs[0][:200]}); fix it and run " + run.format(
                stem=stem)
        elif last_run and failed.is_file() and failed.stat().st_mtime > path.stat().st_mtime:
            problems[stem] = (f"its last run failed (book/generated/{failed.name}); fix it and run "
                              + run.format(stem=stem))
    return problems


def _png(data: str, max_width: int) -> tuple[str, tuple[int, int] | None]:
    """A base64 PNG re-encoded (optimised, an opaque alpha channel dropped, downscaled to ``max_width``); the new
    size when it was downscaled."""
    raw = base64.b64decode(data)
    with Image.open(io.BytesIO(raw)) as im:
        im.load()
        resized = None
        if im.mode == "RGBA" and im.getchannel("A").getextrema() == (255, 255):  # an opaque alpha adds only bytes
            im = im.convert("RGB")
        if im.width > max_width:
            resized = (max_width, max(1, round(im.height * max_width / im.width)))
            im = im.resize(resized, Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    new = buf.getvalue()
    if resized is None and len(new) >= len(raw):  # optimising did not help: keep the original bytes
        return data, None
    return base64.b64encode(new).decode("ascii"), resized


def _jpeg(data: str) -> str | None:
    """A base64 PNG above :data:`JPEG_ABOVE_BYTES` as a base64 JPEG (on white), when that at least halves it."""
    raw = base64.b64decode(data)
    if len(raw) <= JPEG_ABOVE_BYTES:
        return None
    with Image.open(io.BytesIO(raw)) as im:
        im.load()
        rgb = Image.new("RGB", im.size, "white")
        rgb.paste(im, mask=im.getchannel("A") if im.mode == "RGBA" else None)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii") if 2 * buf.tell() <= len(raw) else None


def shrink_notebook(nb: dict[str, Any], max_width: int = MAX_IMAGE_WIDTH) -> dict[str, Any]:
    """``nb`` with its PNG outputs re-encoded and downscaled to ``max_width`` (large photographic ones as JPEG,
    :func:`_jpeg`) and no widget state (in place)."""
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        outputs = []
        for out in cell.get("outputs", []) or []:
            data = out.get("data")
            if isinstance(data, dict):
                data.pop(WIDGET_MIME, None)
                if "image/png" in data:
                    png = data["image/png"]
                    data["image/png"], resized = _png("".join(png) if isinstance(png, list) else png, max_width)
                    meta = out.get("metadata", {}).get("image/png")
                    if resized and isinstance(meta, dict) and isinstance(meta.get("width"), (int, float)) \
                            and meta["width"] > resized[0]:
                        meta["width"], meta["height"] = resized
                    jpeg = _jpeg(data["image/png"])
                    if jpeg is not None:
                        del data["image/png"]
                        data["image/jpeg"] = jpeg
                        if "image/png" in out.get("metadata", {}):
                            out["metadata"]["image/jpeg"] = out["metadata"].pop("image/png")
                if not data:  # a widget view with nothing else to show
                    continue
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _copy_chapter(stem: str, profile: str, output_root: str | os.PathLike | None, dest: Path,
                  max_width: int) -> tuple[dict[str, Any], str | None]:
    """Copy chapter ``stem``'s executed notebook (shrunk) and result files from the output root into ``dest``;
    return its ``EDITION.json`` record and the data folder it ran on (as pages show it)."""
    out = config.output_root(output_root)
    nb = json.loads((generated_dir(output_root) / f"{stem}.ipynb").read_text())
    record = nb["metadata"]["medtask"]
    shrink_notebook(nb, max_width)
    stamp_provenance(nb, record)  # chapters executed before the top box existed gain it
    nb_path = dest / f"{stem}.ipynb"
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    res_src = out / "results" / profile / stem
    res_dst = dest / "results" / profile / stem
    if res_dst.exists():
        shutil.rmtree(res_dst)
    res_dst.mkdir(parents=True)
    for table in sorted(res_src.glob("*.csv")):  # the chapter's tables (claims.csv: the findings page)
        shutil.copy2(table, res_dst / table.name)
    run_json = res_src / "run.json"
    if run_json.is_file():  # the full record, with folders shown as pages show them
        run = json.loads(run_json.read_text())
        folders = {"data": (run.get("parameters") or {}).get("data_root"), "output": out}
        (res_dst / "run.json").write_text(json.dumps(config.scrub_paths(run, **folders), indent=1,
                                                     default=str) + "\n")
    git = record.get("git") or {}
    root = (record.get("parameters") or {}).get("data_root")
    return ({"commit": git.get("commit"), "dirty": git.get("dirty"), "executed": record.get("created"),
             "wall_seconds": record.get("wall_seconds"), "bytes": nb_path.stat().st_size + _size(res_dst)},
            config.display_path(root) if root else None)


def _write_info(folder: Path, info: dict[str, Any]) -> None:
    """Write ``EDITION.json`` into ``folder`` with ``info["bytes"]`` the folder's total size (itself included)."""
    info["bytes"] = 0
    for _ in range(4):  # the total includes EDITION.json itself, which holds the total
        (folder / INFO).write_text(json.dumps(info, indent=1) + "\n")
        if info["bytes"] == (total := _size(folder)):
            break
        info["bytes"] = total


def shrink_saved(root: str | os.PathLike | None = None, max_width: int = MAX_IMAGE_WIDTH) -> dict[str, Any]:
    """Apply :func:`shrink_notebook` again to every notebook of the saved edition (after a change to how outputs
    are shrunk) and update the sizes in ``EDITION.json``; what the chapters computed and their provenance stay
    as they were saved. Returns the updated description."""
    target = edition_root(root)
    info = read_info(target)
    if info is None:
        raise EditionError(f"{shown(target)} holds no edition to shrink")
    for stem, chapter in info["chapters"].items():
        nb_path = target / f"{stem}.ipynb"
        nb = shrink_notebook(json.loads(nb_path.read_text()), max_width)
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        chapter["bytes"] = nb_path.stat().st_size + _size(target / "results" / info["profile"] / stem)
    _write_info(target, info)
    return info


def save_edition(profile: str = "cpu", *, output_root: str | os.PathLike | None = None,
                 dest: str | os.PathLike | None = None, max_bytes: int = MAX_BYTES,
                 max_width: int = MAX_IMAGE_WIDTH, only: list[str] | None = None) -> dict[str, Any]:
    """Copy every chapter executed on ``profile`` in the output root into the edition (``dest``), shrunk; return
    the edition's description (also written to ``EDITION.json``).

    With ``only`` (chapter names), just those chapters are replaced in an existing edition of ``profile``; the
    others stay as they were saved, each still naming its own commit. Nothing is changed unless every chapter
    to copy is there, ran on ``profile`` without error, and the whole fits in ``max_bytes``; the edition is
    then replaced at once.
    """
    stems = all_chapters()
    target = edition_root(dest)
    old_info = read_info(target) if only else None
    if only:
        unknown = sorted(set(only) - set(stems))
        if unknown:
            raise EditionError(f"no chapter {', '.join(unknown)}; the chapters are: {', '.join(stems)}")
        if old_info is None or old_info.get("profile") != profile:
            raise EditionError(
                f"cannot replace chapters in the edition of profile {profile!r}: {shown(target)} holds "
                + ("no edition" if old_info is None else f"the edition of profile {old_info.get('profile')!r}")
                + f"; save the whole edition (`medtask edition save --profile {profile}`) first.")
    copy = [s for s in stems if s in set(only)] if only else stems
    problems = chapter_problems(profile, output_root, copy)
    if problems:
        raise EditionError(
            f"cannot save the edition of profile {profile!r}: {len(problems)} of {len(copy)} chapter(s) in "
            f"{shown(generated_dir(output_root))} cannot stand for it:\n"
            + "\n".join(f"  - {s}: {why}" for s, why in problems.items())
            + f"\nRun them (or every chapter: `medtask book --profile {profile}`; `make study` for the cpu profile), "
              f"then `medtask edition save --profile {profile}` again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would follow the folder into edition/
    try:
        chapters_info: dict[str, Any] = {}
        data_roots: set[str] = set()
        if old_info is not None:  # start from the saved edition; the chapters to copy replace theirs
            shutil.copytree(target, tmp, dirs_exist_ok=True)
            old_root = old_info.get("data_root")
            data_roots.update([old_root] if isinstance(old_root, str) else old_root or [])
        for stem in stems:
            if stem in copy:
                chapters_info[stem], root = _copy_chapter(stem, profile, output_root, tmp, max_width)
                if root:
                    data_roots.add(root)
            else:
                chapters_info[stem] = old_info["chapters"][stem]
        git = provenance.git_state()
        info = {
            "profile": profile,
            "commit": git["commit"],
            "dirty": git["dirty"],
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data_root": sorted(data_roots)[0] if len(data_roots) == 1 else sorted(data_roots),
            "wall_seconds": round(sum(c["wall_seconds"] or 0 for c in chapters_info.values()), 1),
            "chapters": chapters_info,
            "max_image_width": max_width,
            "max_bytes": max_bytes,
        }
        _write_info(tmp, info)
        if info["bytes"] > max_bytes:
            biggest = sorted(chapters_info.items(), key=lambda kv: -kv[1]["bytes"])[:3]
            raise EditionError(
                f"the edition of profile {profile!r} would take {_mb(info['bytes'])}, above the limit of "
                f"{_mb(max_bytes)}; the largest chapters: "
                + ", ".join(f"{s} {_mb(c['bytes'])}" for s, c in biggest)
                + f". Show fewer or smaller figures in them; the edition in {shown(target)} is left as it was.")
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        return info
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def summary(info: dict[str, Any]) -> str:
    """What ``medtask edition save`` prints: one line per chapter, then the total size."""
    lines = [f"{'chapter':32} {'size':>9} {'wall time':>10}  commit"]
    for stem, c in info["chapters"].items():
        wall = f"{c['wall_seconds']:.0f} s" if c.get("wall_seconds") is not None else "?"
        lines.append(f"{stem:32} {_mb(c['bytes']):>9} {wall:>10}  {(c.get('commit') or 'unknown')[:12]}"
                     + (" (uncommitted changes)" if c.get("dirty") else ""))
    lines.append(f"edition of profile {info['profile']!r}: {len(info['chapters'])} chapters, {_mb(info['bytes'])} "
                 f"(limit {_mb(info.get('max_bytes', MAX_BYTES))}), {info['wall_seconds'] / 60:.1f} min of execution")
    return "\n".join(lines)


def _literal(source: str) -> Any:
    """A parameters-cell default (its source text) as a value where it is a literal, else the text."""
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source


def effective_parameters(defaults: dict[str, str], injected: dict[str, Any]) -> dict[str, Any]:
    """What a chapter ran with: its parameters cell's ``defaults`` (source text) overridden by the ``injected``
    values, less the folders the runner passes (``results_dir``, ``data_root``)."""
    out = {k: _literal(v) for k, v in defaults.items()}
    out.update(injected)
    return {k: v for k, v in out.items() if k not in PATH_PARAMETERS}


def edition_problems(root: str | os.PathLike | None = None) -> list[str]:
    """Why the edition in ``root`` no longer stands for today's chapters (empty: it does).

    Every chapter of the book must be there, name its commit in its metadata, in ``EDITION.json`` and in the
    provenance box at its top, and have run with the parameters its chapter has today on the edition's profile
    (its parameters cell, overridden by ``notebooks/profiles/<chapter>.yml``).
    """
    folder = edition_root(root)
    info = read_info(folder)
    if info is None:
        return [f"no {INFO} in {shown(folder)}"]
    profile = info.get("profile")
    problems = []
    for stem in all_chapters():
        path = folder / f"{stem}.ipynb"
        if not path.is_file():
            problems.append(f"{stem}: not in the edition")
            continue
        nb = json.loads(path.read_text())
        meta = nb.get("metadata", {})
        record = meta.get("medtask") or {}
        commit = (record.get("git") or {}).get("commit")
        if not (isinstance(commit, str) and len(commit) == 40):
            problems.append(f"{stem}: its metadata names no commit")
        else:
            if (info.get("chapters", {}).get(stem) or {}).get("commit") != commit:
                problems.append(f"{stem}: {INFO} names another commit than its metadata ({commit[:12]})")
            top = [c for c in nb.get("cells", []) if PROVENANCE_TOP_TAG in c.get("metadata", {}).get("tags", [])]
            text = "".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in top)
            if len(top) != 1 or commit[:12] not in text:
                problems.append(f"{stem}: no provenance box at its top naming commit {commit[:12]}")
        if record.get("profile") != profile:
            problems.append(f"{stem}: executed on profile {record.get('profile')!r}, the edition is {profile!r}")
            continue
        ran = effective_parameters({k: v["default"] for k, v in papermill.inspect_notebook(str(path)).items()},
                                   (meta.get("papermill") or {}).get("parameters") or {})
        source = resolve_notebook(stem)
        today = effective_parameters(parameter_cell(source), {**load_profile(stem, profile), "profile": profile})
        differ = sorted(k for k in set(ran) | set(today) if ran.get(k, "<absent>") != today.get(k, "<absent>"))
        if differ:
            problems.append(f"{stem}: ran with other parameters than its chapter has today on {profile!r}: "
                            + ", ".join(f"{k} (ran {ran.get(k, '<absent>')!r}, today {today.get(k, '<absent>')!r})"
                                        for k in differ)
                            + f"; run it again and save it into the edition (`medtask run {stem} --profile {profile}`, "
                              f"then `medtask edition save --profile {profile} --only {stem}`)")
    return problems
