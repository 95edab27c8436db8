"""Build the Jupyter Book (1.x) from the executed chapters; notebooks are never executed by Sphinx."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from medtask import config
from medtask.errors import MedtaskError
from medtask.pipeline.profiles import chapters as all_chapters
from medtask.pipeline.runner import RunRecord, copy_static_book, generated_dir, run_notebook
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


def executed_profile(notebook: Path) -> str | None:
    """The profile an executed chapter ran on (from the provenance the runner stores in its metadata)."""
    return json.loads(notebook.read_text()).get("metadata", {}).get("medtask", {}).get("profile")


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
    progress: bool = True, jobs: int = 1, allow_unverified_data: bool = False,
) -> tuple[Path, list[RunRecord]]:
    """Run the chapters (cached) on ``profile``, ``jobs`` at a time, then build the HTML into ``<output>/_build/html``."""
    book_chapters = all_chapters()
    stems = only or book_chapters
    unknown = sorted(set(stems) - set(book_chapters))
    if unknown:
        raise MedtaskError(f"not chapters of the book: {unknown}; chapters are {book_chapters}")
    records = []
    if run:
        records = run_chapters(stems, profile, jobs=jobs, data_root=data_root, output_root=output_root,
                               force=force, progress=progress, allow_unverified_data=allow_unverified_data)
    out = config.output_root(output_root)
    src = out / "book"
    copy_static_book(src)
    write_dataset_bib(src)
    present = {p.stem for p in generated_dir(output_root).glob("*.ipynb")}
    missing = sorted(set(stems) - present)
    if missing:
        raise MedtaskError(f"chapters not executed yet: {missing}; run `medtask book --profile {profile}` "
                           "(or `medtask run CHAPTER`) first")
    keep = set(stems)
    # the "What we found" page, from the claims tables of the chapters in this build (never typed by hand)
    write_findings_page(src / "findings.md", out / "results" / profile,
                        [s for s in book_chapters if s in keep], profile)
    wrong = {s: p for s in keep if (p := executed_profile(generated_dir(output_root) / f"{s}.ipynb")) != profile}
    if wrong:
        raise MedtaskError("chapters executed on another profile than " + repr(profile) + ": "
                           + ", ".join(f"{s} ({p})" for s, p in sorted(wrong.items()))
                           + f"; run them with `medtask run CHAPTER --profile {profile}` first")
    toc = yaml.safe_load((config.repo_root() / "book" / "_toc.yml").read_text())
    toc_path = src / "_toc.build.yml"
    toc_path.write_text(yaml.safe_dump(_filtered_toc(toc, keep), sort_keys=False))
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe), "build", str(src), "--config", str(config.repo_root() / "_config.yml"),
           "--toc", str(toc_path), "--path-output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookBuildError(f"jupyter-book failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return out / "_build" / "html", records
