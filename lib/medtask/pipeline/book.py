"""Build the Jupyter Book (1.x) from the executed chapters; notebooks are never executed by Sphinx."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from medtask import config
from medtask.errors import MedtaskError
from medtask.pipeline.edition import INFO, chapter_problems, read_info, shown
from medtask.pipeline.edition import edition_root as edition_root_of
from medtask.pipeline.profiles import chapters as all_chapters
from medtask.pipeline.runner import RunRecord, copy_static_book, executed_profile, generated_dir, run_notebook
from medtask.reporting.findings import write_findings_page
from medtask.reporting.references import write_dataset_bib


class BookBuildError(MedtaskError):
    """jupyter-book exited with an error."""


def _filtered_toc(toc: dict, keep: set[str]) -> dict:
    """Drop ``generated/<stem>`` entries whose chapter is not in ``keep``."""

    def walk(node):
        if isinstance(node, list):
            out = [walk(n) for n in node]
            return [n for n in out if n is not None]
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("generated/") and f.split("/", 1)[1] not in keep:
                return None
            out = {k: walk(v) if isinstance(v, (list, dict)) else v for k, v in node.items()}
            # jupyter-book rejects empty lists: drop emptied sections, and parts left with no chapter
            for key in ("sections", "chapters", "parts"):
                if key in out and not out[key]:
                    del out[key]
            if "caption" in out and "chapters" not in out and "file" not in out:
                return None
            return out
        return node

    return walk(toc)


def _report(rec: RunRecord) -> None:
    print(f"[medtask] {rec.chapter}: {'cached' if rec.cached else f'executed in {rec.seconds:.0f} s'}", flush=True)


def run_chapters(
    stems: list[str], profile: str, *, jobs: int = 1, data_root: str | os.PathLike | None = None,
    output_root: str | os.PathLike | None = None, force: bool = False, progress: bool = True,
    allow_unverified_data: bool = False,
) -> list[RunRecord]:
    """Run ``stems`` (cached) on ``profile``: one after the other, or ``jobs`` at once in worker processes.

    Each chapter is its own papermill kernel, and the cpu profiles run torch on one thread, so on an
    N-core machine ``jobs=N`` keeps every core busy. With ``jobs > 1`` a failing chapter stops the
    ones not yet started; those already running finish, then the first failure is raised.
    """
    if jobs < 1:
        raise MedtaskError(f"jobs must be at least 1, got {jobs}")
    kwargs = dict(data_root=data_root, output_root=output_root, force=force,
                  allow_unverified_data=allow_unverified_data)
    if jobs == 1 or len(stems) < 2:
        records = []
        for stem in stems:
            records.append(run_notebook(stem, profile, progress=progress, **kwargs))
            _report(records[-1])
        return records
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    done: dict[str, RunRecord] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_notebook, stem, profile, progress=False, concurrent=jobs, **kwargs): stem
                   for stem in stems}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                if fut.exception() is None:
                    done[futures[fut]] = fut.result()
                    _report(done[futures[fut]])
            failures = [f for f in finished if f.exception() is not None]
            if failures:
                for fut in pending:
                    fut.cancel()
                wait(pending)
                raise failures[0].exception()
    return [done[s] for s in stems]


def build_book(
    profile: str = "cpu", *, only: list[str] | None = None, run: bool = True, force: bool = False,
    data_root: str | os.PathLike | None = None, output_root: str | os.PathLike | None = None,
    progress: bool = True, jobs: int = 1, allow_unverified_data: bool = False, edition: bool | None = None,
    edition_root: str | os.PathLike | None = None,
) -> tuple[Path, list[RunRecord]]:
    """Run the chapters (cached) on ``profile``, ``jobs`` at a time, then build the HTML into ``<output>/_build/html``.

    ``edition=True`` builds from the published edition (``edition/``, :mod:`medtask.pipeline.edition`) and runs
    nothing; ``edition=None`` (the default) does so only when ``run`` is False and some chapter of the build cannot
    stand for ``profile`` in the output root (not executed on it, or its notebook holds an error); ``edition=False``
    never does.
    """
    book_chapters = all_chapters()
    stems = only or book_chapters
    unknown = sorted(set(stems) - set(book_chapters))
    if unknown:
        raise MedtaskError(f"not chapters of the book: {unknown}; chapters are {book_chapters}")
    out = config.output_root(output_root)
    keep = set(stems)
    ordered = [s for s in book_chapters if s in keep]
    if edition is None and not run:
        lacking = chapter_problems(profile, output_root, ordered, last_run=False)
        edition = bool(lacking)
        if lacking:
            if read_info(edition_root) is None:
                raise MedtaskError(
                    f"chapters not usable for profile {profile!r} in {shown(generated_dir(output_root))}: "
                    + "; ".join(f"{s} ({why.split(';')[0]})" for s, why in lacking.items())
                    + f", and there is no published edition in {shown(edition_root_of(edition_root))} to build from "
                      f"instead; run `medtask book --profile {profile}` (`make study`) first")
            print(f"[medtask] building from the published edition: {len(lacking)} chapter(s) in the output root not "
                  f"executed on profile {profile!r} or holding an error ({', '.join(lacking)})", flush=True)
    if edition:
        info = read_info(edition_root)
        root = edition_root_of(edition_root)
        if info is None:
            raise MedtaskError(f"there is no published edition in {shown(root)} (no {INFO}); "
                               "`medtask edition save` writes one from executed chapters")
        if info.get("profile") != profile:
            raise MedtaskError(f"the published edition in {shown(root)} was executed on profile "
                               f"{info.get('profile')!r}, not {profile!r}; build it with "
                               f"`medtask book --edition --profile {info.get('profile')}`")
        missing = [s for s in ordered if not (root / f"{s}.ipynb").is_file()]
        if missing:
            raise MedtaskError(f"the published edition in {shown(root)} lacks chapter(s) {missing}; "
                               f"save it again with `medtask edition save --profile {profile}`")
        src = out / "_build" / "edition-src"
        shutil.rmtree(src, ignore_errors=True)
        copy_static_book(src)
        (src / "generated").mkdir(parents=True, exist_ok=True)
        for stem in ordered:
            shutil.copy2(root / f"{stem}.ipynb", src / "generated" / f"{stem}.ipynb")
        return _jupyter_book(src, ordered, profile, root / "results" / profile, out, generated=src / "generated",
                             announcement=edition_banner(info)), []

    records = []
    if run:
        records = run_chapters(stems, profile, jobs=jobs, data_root=data_root, output_root=output_root,
                               force=force, progress=progress, allow_unverified_data=allow_unverified_data)
    src = out / "book"
    copy_static_book(src)
    present = {p.stem for p in generated_dir(output_root).glob("*.ipynb")}
    missing = sorted(set(stems) - present)
    if missing:
        raise MedtaskError(f"chapters not executed yet: {missing}; run `medtask book --profile {profile}` "
                           "(or `medtask run CHAPTER`) first")
    return _jupyter_book(src, ordered, profile, out / "results" / profile, out,
                         generated=generated_dir(output_root)), records


#: the words that open the banner on every page of a book built from the published edition
EDITION_BANNER = "Published edition"


def edition_banner(info: dict) -> str:
    """The line shown at the top of every page of a book built from the edition (HTML: the theme's announcement)."""
    commit = (info.get("commit") or "unknown")[:12]
    date = str(info.get("date") or "")[:10]
    return (f"<strong>{EDITION_BANNER}</strong>: every chapter was executed on profile <code>{info.get('profile')}"
            f"</code> (edition saved {date} at commit <code>{commit}</code>) and kept in the repository's "
            "<code>edition/</code>; nothing ran to build this book. <code>make study</code> runs it on your machine.")


def _jupyter_book(src: Path, stems: list[str], profile: str, results_root: Path, out: Path, *, generated: Path,
                  announcement: str | None = None) -> Path:
    """Build the book whose sources are in ``src`` (executed chapters in ``generated``) into ``<out>/_build/html``."""
    write_dataset_bib(src)
    # the "What we found" page, from the claims tables of the chapters in this build (never typed by hand)
    write_findings_page(src / "findings.md", results_root, stems, profile)
    wrong = {s: p for s in stems if (p := executed_profile(generated / f"{s}.ipynb")) != profile}
    if wrong:
        raise MedtaskError("chapters executed on another profile than " + repr(profile) + ": "
                           + ", ".join(f"{s} ({p})" for s, p in sorted(wrong.items()))
                           + f"; run them with `medtask run CHAPTER --profile {profile}` first")
    toc = yaml.safe_load((config.repo_root() / "book" / "_toc.yml").read_text())
    toc_path = src / "_toc.build.yml"
    toc_path.write_text(yaml.safe_dump(_filtered_toc(toc, set(stems)), sort_keys=False))
    conf = config.repo_root() / "_config.yml"
    if announcement:  # the theme shows it above every page
        settings = yaml.safe_load(conf.read_text())
        settings.setdefault("html", {})["announcement"] = announcement
        conf = src / "_config.build.yml"
        conf.write_text(yaml.safe_dump(settings, sort_keys=False))
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe), "build", str(src), "--config", str(conf), "--toc", str(toc_path), "--path-output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookBuildError(f"jupyter-book failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return out / "_build" / "html"
