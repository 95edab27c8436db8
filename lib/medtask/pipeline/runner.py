"""Execute a chapter with papermill into the book's generated tree, cached and stamped with provenance."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtask import config, provenance
from medtask.errors import MedtaskError
from medtask.pipeline import cache, notebooks, schema
from medtask.pipeline.profiles import check_names, load_profile, resolve_notebook
from medtask.pipeline.results import ALLOW_UNVERIFIED_ENV
from medtask.zoo.report import not_at_plateau_sentence


class ChapterFailedError(MedtaskError):
    """A chapter raised while executing; the partly executed notebook is kept for inspection."""


def failure_message(stem: str, profile: str, exc: BaseException, failed: Path) -> str:
    """The exception's type and message first, then where the executed notebook and full traceback are.

    papermill's :class:`PapermillExecutionError` carries the kernel's exception as ``ename`` and
    ``evalue``; its ``str()`` starts with the cell source and the traceback, which buries them.
    """
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename is None:
        ename, evalue = type(exc).__name__, str(exc)
    where = ""
    if getattr(exc, "exec_count", None) is not None:
        where = f" (in cell [{exc.exec_count}])"
    text = str(evalue).strip()
    if len(text) > 3000:
        text = text[:3000] + " ..."
    return (f"chapter {stem!r} failed on profile {profile!r}{where}:\n  {ename}: {text}\n"
            f"The executed notebook, with the full traceback in its failing cell, is at {failed}.")


@dataclass
class RunRecord:
    """What :func:`run_notebook` did."""

    chapter: str
    profile: str
    executed: Path
    results_dir: Path
    parameters: dict[str, Any]
    cached: bool
    seconds: float


def generated_dir(root: str | os.PathLike | None = None) -> Path:
    """Where executed chapters go: ``<output>/book/generated/``."""
    return config.output_root(root) / "book" / "generated"


def run_notebook(
    notebook: str | Path, profile: str = "cpu", overrides: dict[str, Any] | None = None, *,
    data_root: str | os.PathLike | None = None, output_root: str | os.PathLike | None = None,
    force: bool = False, kernel: str = "python3", progress: bool = True, concurrent: int = 1,
    allow_unverified_data: bool = False,
) -> RunRecord:
    """Run one chapter on ``profile`` with ``overrides``; skip it when the cache says nothing changed.

    Parameter names, types and ranges are checked (:mod:`medtask.pipeline.schema`) before a kernel
    starts. ``allow_unverified_data`` lets the chapter run on data that fails verification (the
    page then says so in a warning box). ``concurrent`` (recorded in the provenance) is how many
    chapters the caller runs at once.
    """
    import papermill

    nb_path = resolve_notebook(notebook)
    stem = nb_path.stem
    params = {**load_profile(stem, profile), **(overrides or {})}
    check_names(nb_path, params)
    schema.validate(nb_path, params)
    droot = config.data_root(data_root if data_root is not None else params.get("data_root"))
    results = config.results_dir(stem, profile, output_root)
    params.update(profile=profile, results_dir=str(results), data_root=str(droot))

    out_dir = generated_dir(output_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{stem}.ipynb"
    present = cache.data_digest(droot, params)  # datasets present and own data named: key and provenance
    keyed = {k: v for k, v in params.items() if k != "results_dir"}
    if allow_unverified_data:  # a run on unverified data is never taken for a verified one
        keyed["--allow-unverified-data"] = True
    key = cache.cache_key(nb_path, keyed, data=present)
    if not force and cache.lookup(stem, key, executed, output_root):
        return RunRecord(stem, profile, executed, results, params, cached=True, seconds=0.0)

    results.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".{stem}.running.ipynb"
    failed = out_dir / f"{stem}.failed.ipynb"
    env_before = {k: os.environ.get(k) for k in ("MEDTASK_DATA", "MEDTASK_OUTPUT", "MEDTASK_PROGRESS",
                                                 ALLOW_UNVERIFIED_ENV)}
    # The folders reach the kernel through the environment, not as injected parameters: papermill prints its
    # injected cell on the page, and absolute paths of the machine that ran a chapter are not the reader's business.
    os.environ["MEDTASK_DATA"] = str(droot)
    os.environ["MEDTASK_OUTPUT"] = str(config.output_root(output_root))  # the kernel must write where we read
    os.environ["MEDTASK_PROGRESS"] = "0"  # no progress bars inside executed chapters
    os.environ[ALLOW_UNVERIFIED_ENV] = "1" if allow_unverified_data else "0"
    reused = checkpoints_older_than(stem, profile, time.time(), output_root)
    git_at_start = provenance.git_state()  # the code the kernel imports is the code at the start
    started = time.time()
    source = notebooks.write_ipynb(nb_path, out_dir / f".{stem}.source.ipynb")  # papermill executes .ipynb
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(str(source), str(partial), parameters=injected_parameters(params), kernel_name=kernel,
                                   progress_bar=progress, cwd=str(nb_path.parent), log_output=False)
    except Exception as exc:
        if partial.exists():
            os.replace(partial, failed)
        raise ChapterFailedError(failure_message(stem, profile, exc, failed)) from exc
    finally:
        source.unlink(missing_ok=True)
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0

    record = provenance.collect(profile=profile, parameters=params,
                                datasets=sorted(present), data_root=droot, wall_seconds=round(seconds, 1))
    if record["git"] != git_at_start:
        record["git"] = {**git_at_start, "changed_during_run": True}
    record["chapter"] = stem
    record["cache_key"] = key["key"]
    record["reused_checkpoints"] = reused
    record["concurrent_chapters"] = int(concurrent)
    record["allow_unverified_data"] = bool(allow_unverified_data)
    chapter_prov = _chapter_provenance(results, started)
    record["data_checks"] = chapter_prov.get("data_checks", [])
    record["artefacts"] = chapter_prov.get("artefacts", [])
    record["datasets_used"] = chapter_prov.get("datasets", {})
    record["zoo_starts"] = chapter_prov.get("zoo_starts", [])
    nb = json.loads(partial.read_text())
    # the notebook is what the book offers for download: its metadata names folders as pages do (run.json keeps all)
    shown = {"data": droot, "output": config.output_root(output_root)}
    if "papermill" in nb.get("metadata", {}):
        nb["metadata"]["papermill"] = config.scrub_paths(nb["metadata"]["papermill"], **shown)
    stamp_provenance(nb, config.scrub_paths(record, **shown))
    partial.write_text(json.dumps(nb, indent=1))
    os.replace(partial, executed)
    failed.unlink(missing_ok=True)
    (results / "run.json").write_text(json.dumps(record, indent=1, default=str))
    cache.store(stem, key, executed, {"profile": profile, "seconds": seconds}, output_root)
    return RunRecord(stem, profile, executed, results, params, cached=False, seconds=seconds)


PROVENANCE_TAG = "medtask-provenance"
#: the tag of the short provenance box inserted after a chapter's title
PROVENANCE_TOP_TAG = "medtask-provenance-top"
#: parameters the runner passes to the kernel through the environment (``MEDTASK_DATA``, ``MEDTASK_OUTPUT``)
PATH_PARAMETERS = ("results_dir", "data_root")


def injected_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """What papermill injects into a chapter: ``params`` less the folders, which the kernel finds through the
    environment (the injected cell is shown on the page, so it holds no path of the machine that ran it)."""
    return {k: v for k, v in params.items() if k not in PATH_PARAMETERS}


def _chapter_provenance(results: Path, since: float) -> dict[str, Any]:
    """The provenance the chapter wrote in this run (``provenance.json``: data checks, keyed artefacts), if any."""
    path = results / "provenance.json"
    try:
        if path.stat().st_mtime < since:  # left by an earlier run: not this run's record
            return {}
        return json.loads(path.read_text()).get("provenance") or {}
    except (OSError, ValueError):
        return {}


def checkpoints_older_than(stem: str, profile: str, when: float,
                           output_root: str | os.PathLike | None = None) -> list[str]:
    """Checkpoint files of a chapter written before ``when`` (a run that finds them skips that training)."""
    folder = config.output_root(output_root) / "checkpoints" / profile / stem
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.pt") if p.stat().st_mtime < when)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def provenance_markdown(record: dict[str, Any]) -> str:
    """The provenance record as a short, readable section that closes every executed chapter."""
    git = record.get("git", {})
    dev = record.get("device", {})
    commit = (git.get("commit") or "unknown")[:12]
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    if git.get("changed_during_run"):
        dirty += " (at the start; the checkout changed while it ran)"
    load = dev.get("load_average_1m")
    load_txt = f"; load average {load} at the end (above the core count, other work shared the CPU)" if (
        load is not None and dev.get("cpu_count") and load > dev["cpu_count"]) else (
        f"; load average {load} at the end" if load is not None else "")
    if (record.get("concurrent_chapters") or 1) > 1:
        load_txt += (f"; run as one of up to {record['concurrent_chapters']} chapters executing at once "
                     "(`medtask book --jobs`)")
    device = f"CPU: {dev.get('cpu')} ({dev.get('cpu_count')} cores)" + (f"; GPU: {dev['cuda']}" if dev.get("cuda") else "")
    data = ", ".join(f"{k} `{str(v).rsplit(':', 1)[-1][:12]}`"
                     + (" (layout differs from its manifest)" if "layout-mismatch" in str(v) else "")
                     for k, v in sorted(record.get("datasets", {}).items())) or "none"
    pk = record.get("packages", {})
    pkgs = ", ".join(f"{k} {v}" for k, v in pk.items() if v and k in ("torch", "torchvision", "compressai", "numpy",
                                                                          "pillow-heif", "timm", "monai"))
    params = {k: v for k, v in record.get("parameters", {}).items() if k not in ("results_dir", "data_root")}
    rows = [
        ("command", f"`medtask run {record.get('chapter')} --profile {record.get('profile')}"
                    + (" --allow-unverified-data" if record.get("allow_unverified_data") else "") + "`"),
        ("wall time", _duration(record.get("wall_seconds")) + load_txt + (
            f"; **training reused {len(record['reused_checkpoints'])} finished or partial checkpoint(s) from an "
            "earlier run of the same profile, so this is not the time to train from scratch**"
            if record.get("reused_checkpoints") else "")),
        ("device", device),
        ("code", f"commit `{commit}`{dirty}"),
        ("datasets present (content fingerprints)", data),
        ("packages", f"Python {record.get('python')}; {pkgs}"),
        ("parameters", "`" + json.dumps(params, default=str) + "`"),
        ("executed", str(record.get("created"))),
    ]
    artefacts = record.get("artefacts") or []
    if artefacts:
        reused = [a for a in artefacts if a.get("reused")]
        rows.insert(2, ("trained artefacts", f"{len(artefacts)} keyed checkpoint(s), {len(reused)} reused from an "
                        "earlier run with the same key (parameters, input checkpoints, data, code): "
                        + (", ".join(f"`{a['name']}-{a['digest']}`" for a in reused) or "none")))
    starts = record.get("zoo_starts") or []
    if starts:
        rows.insert(2, ("zoo starts", ", ".join(
            f"`{z['entry']}` (sha256 `{str(z.get('sha256'))[:12]}`, {z.get('steps')} steps"
            + ("" if z.get("plateau") else ", **not at a plateau**") + ")" for z in starts)))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    unverified = [c for c in record.get("data_checks") or [] if str(c.get("status", "")).startswith("failed")]
    box = ""
    if unverified:
        items = "\n".join(f"- **{c['dataset']}** at `{config.display_path(c['path']) if c.get('path') else '?'}`: "
                          + "; ".join(c.get("problems", [])[:5])
                          for c in unverified)
        box = ("```{warning}\nThis chapter ran with `--allow-unverified-data` on data that does not match its "
               "manifest's checksums, so its numbers are not those of the published dataset:\n\n"
               f"{items}\n```\n\n")
    return ("## Provenance of this page\n\n" + box + "Every number and figure above was computed when this chapter was "
            "executed as recorded here (also in the notebook's metadata and in `results/"
            f"{record.get('profile')}/{record.get('chapter')}/run.json`).\n\n| | |\n|---|---|\n{table}\n")


def _when(created: Any) -> str:
    """``2026-12-02T00:42:52+00:00`` as ``2026-12-02 00:42 UTC`` (as it is when it does not parse)."""
    try:
        t = datetime.fromisoformat(str(created))
    except ValueError:
        return str(created or "at an unknown date")
    if t.tzinfo is None:
        return t.strftime("%Y-%m-%d %H:%M")
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def provenance_top_markdown(record: dict[str, Any]) -> str:
    """The short box at the top of every executed chapter: commit, profile, data, date and wall time in two lines
    (the closing section, :func:`provenance_markdown`, has the rest). Folders are shown as pages show them."""
    git = record.get("git", {})
    commit = (git.get("commit") or "unknown")[:12]
    dirty = " (with uncommitted changes)" if git.get("dirty") else ""
    used = record.get("datasets_used") or {}
    data = ", ".join(f"{k} `{str(v).rsplit(':', 1)[-1][:12]}`" for k, v in sorted(used.items())) or "none read"
    root = (record.get("parameters") or {}).get("data_root")
    where = f" from `{config.display_path(root)}`" if root and used else ""
    unverified = " **(unverified data)**" if record.get("allow_unverified_data") else ""
    return (f"```{{admonition}} Provenance\n:class: note\n"
            f"Executed on profile `{record.get('profile')}` at commit `{commit}`{dirty}, {_when(record.get('created'))}, "
            f"in {_duration(record.get('wall_seconds'))}; data: {data}{where}{unverified}.{_zoo_starts(record)}\n"
            "The full record closes this page (*Provenance of this page*).\n```\n")


def _zoo_starts(record: dict[str, Any]) -> str:
    """The top box's sentence on the zoo entries the run started from, and which of them missed their plateau."""
    starts = record.get("zoo_starts") or []
    if not starts:
        return ""
    short = not_at_plateau_sentence([s["entry"] for s in starts if not s.get("plateau")])
    return (f" Started from {len(starts)} zoo entr{'y' if len(starts) == 1 else 'ies'}"
            + (f". {short}" if short else ", at its plateau." if len(starts) == 1 else ", each at its plateau."))


def _title_index(cells: list[dict[str, Any]]) -> int:
    """Index of the chapter's title cell (the first Markdown cell opening with a ``#`` heading); -1 if none."""
    for i, c in enumerate(cells):
        src = "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")
        if c.get("cell_type") == "markdown" and src.lstrip().startswith("# "):
            return i
    return -1


def stamp_provenance(nb: dict[str, Any], record: dict[str, Any]) -> None:
    """Store ``record`` in the notebook's metadata and (re)write its provenance: a short box right after the title
    (:data:`PROVENANCE_TOP_TAG`) and the closing section (:data:`PROVENANCE_TAG`)."""
    nb.setdefault("metadata", {})["medtask"] = record
    tags = {PROVENANCE_TAG, PROVENANCE_TOP_TAG}
    nb["cells"] = [c for c in nb["cells"] if not tags & set(c.get("metadata", {}).get("tags", []))]
    with_ids = (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5)  # cell ids from nbformat 4.5 on

    def cell(tag: str, source: str) -> dict[str, Any]:
        return {"cell_type": "markdown", **({"id": tag} if with_ids else {}), "metadata": {"tags": [tag]},
                "source": source}

    at = _title_index(nb["cells"])
    if at >= 0:  # a title cell that goes on after its heading is split, so that the box sits right under the title
        title = nb["cells"][at]
        src = "".join(title["source"]) if isinstance(title["source"], list) else title["source"]
        head, _, rest = src.lstrip().partition("\n")
        if rest.strip():
            body = {**title, "metadata": dict(title.get("metadata", {})), "source": rest.lstrip("\n")}
            if "id" in title:
                body["id"] = f"{title['id']}-body"[-64:]
            nb["cells"][at] = {**title, "source": head + "\n"}
            nb["cells"].insert(at + 1, body)
    nb["cells"].insert(at + 1, cell(PROVENANCE_TOP_TAG, provenance_top_markdown(record)))
    nb["cells"].append(cell(PROVENANCE_TAG, provenance_markdown(record)))


def _notebook(executed: Path | dict[str, Any]) -> dict[str, Any]:
    return executed if isinstance(executed, dict) else json.loads(Path(executed).read_text())


def error_cells(executed: Path | dict[str, Any]) -> list[str]:
    """The error outputs of an executed notebook (its path, or the notebook read) — empty when it ran clean."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in _notebook(executed).get("cells", [])
            for o in c.get("outputs", []) or [] if o.get("output_type") == "error"]


def executed_profile(executed: Path | dict[str, Any]) -> str | None:
    """The profile an executed chapter (its path, or the notebook read) ran on, from the provenance in its metadata."""
    return _notebook(executed).get("metadata", {}).get("medtask", {}).get("profile")


def copy_static_book(dest: Path) -> None:
    """Copy the book's static pages (not the generated tree) to ``dest`` (used when output is elsewhere)."""
    src = config.repo_root() / "book"
    if src.resolve() == dest.resolve():
        return
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("generated", "_build"))
