"""Every chapter executes on the smoke profile through the pipeline, and the book builds from them.

These are the slow tests (a minute or two per chapter); they use the real datasets under
MEDTASK_DATA and write into a scratch output root, never into the repository.
"""

from __future__ import annotations

import json
import re

import pytest

from medtask.pipeline import profiles
from medtask.pipeline.runner import error_cells, run_notebook


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke-output")


@pytest.mark.notebook
@pytest.mark.parametrize("stem", profiles.chapters())
def test_chapter_runs_on_smoke_profile(stem, smoke_output, data_root):
    rec = run_notebook(stem, "smoke", data_root=data_root, output_root=smoke_output, progress=False)
    assert not rec.cached
    assert error_cells(rec.executed) == []
    executed = json.loads(rec.executed.read_text())
    meta = executed["metadata"]["medtask"]
    last = executed["cells"][-1]
    assert "medtask-provenance" in last["metadata"]["tags"] and "| wall time |" in last["source"]
    top = executed["cells"][1]  # right under the title: commit, profile, data, date, wall time
    assert "".join(executed["cells"][0]["source"]).startswith("# ") and "\n" not in "".join(
        executed["cells"][0]["source"]).strip()
    assert top["metadata"]["tags"] == ["medtask-provenance-top"] and "profile `smoke`" in top["source"]
    assert meta["git"]["commit"] is None or f"commit `{meta['git']['commit'][:12]}`" in top["source"]
    assert meta["profile"] == "smoke" and meta["parameters"]["profile"] == "smoke"
    assert meta["git"]["commit"] is None or len(meta["git"]["commit"]) == 40
    assert meta["wall_seconds"] > 0 and meta["packages"]["torch"]
    assert (rec.results_dir / "provenance.json").is_file(), "chapters must call chapter.finish()"
    assert (rec.results_dir / "run.json").is_file()
    again = run_notebook(stem, "smoke", data_root=data_root, output_root=smoke_output, progress=False)
    assert again.cached, "an unchanged chapter must not execute again"


@pytest.mark.notebook
def test_book_builds_from_executed_chapters(smoke_output, data_root):
    from medtask.pipeline.book import build_book

    executed = sorted(p.stem for p in (smoke_output / "book" / "generated").glob("*.ipynb"))
    assert "00_data" in executed, "the data chapter must have run before the book is built"
    # every chapter is cached by now: this checks the parallel runner (worker processes) end to end
    html, records = build_book("smoke", only=executed, jobs=2, output_root=smoke_output, data_root=data_root)
    assert [r.chapter for r in records] == executed and all(r.cached for r in records)
    assert (html / "index.html").is_file()
    page = (html / "generated" / "00_data.html").read_text()
    assert "<img" in page, "the data chapter must show sample images"
    assert "Traceback" not in page
    assert "_static/mathjax/tex-chtml.js" in page and "cdn.jsdelivr.net" not in page, "MathJax must load offline"
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()


#: a folder of some machine: the system's temporary, home and root folders
MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(?:tmp|home|root)/[\w.-]")


@pytest.mark.notebook
def test_book_pages_show_no_machine_paths(smoke_output, data_root):
    """No rendered page, nor the notebook it offers for download, names the data root, the checkout, the output
    root or a temporary or home folder."""
    from medtask import config

    html = smoke_output / "_build" / "html"
    if not (html / "index.html").is_file():
        pytest.skip("the smoke book is built by test_book_builds_from_executed_chapters (run this module whole)")
    # the checkout's parent folder too: shared/ sits there (with a slash: the folder, not a word that starts so)
    forbidden = {str(data_root.resolve()), str(config.repo_root()), f"{config.repo_root().parent}/",
                 str(smoke_output.resolve())}
    leaks = []
    for page in sorted([*html.rglob("*.html"), *html.rglob("*.ipynb")]):  # pages, and the notebooks they offer
        text = page.read_text(errors="replace")
        leaks += [f"{page.relative_to(html)}: {p}" for p in forbidden if p in text]
        leaks += [f"{page.relative_to(html)}: {m.group(0)}..." for m in MACHINE_PATH.finditer(text)]
        if "torch.jit.script" in text:
            leaks.append(f"{page.relative_to(html)}: the torch.jit.script deprecation warning")
    assert not leaks, "pages show machine paths or warnings:\n" + "\n".join(leaks[:30])


@pytest.mark.notebook
def test_book_pages_in_a_browser(smoke_output, data_root):
    """Every page of the smoke book opened in headless Chromium: no broken image, MathJax error, error or stderr
    output, machine path or dead internal link; a screenshot of each page is kept under ``<output>/screenshots``."""
    from pagecheck import check_site, chromium

    from medtask import config

    if chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    html = smoke_output / "_build" / "html"
    if not (html / "index.html").is_file():
        pytest.skip("the smoke book is built by test_book_builds_from_executed_chapters (run this module whole)")
    forbidden = [str(data_root.resolve()), str(config.repo_root()), f"{config.repo_root().parent}/",
                 str(smoke_output.resolve())]
    problems, pages = check_site(html, forbidden, shots=smoke_output / "screenshots")
    assert {"findings.html", "teachers.html", "generated/a1_compression_segmentation.html"} <= {
        p.relative_to(html).as_posix() for p in pages}
    assert not problems, f"{len(problems)} problem(s) in the browser:\n" + "\n".join(problems[:40])


@pytest.mark.notebook
def test_edition_of_the_smoke_chapters(smoke_output, data_root, tmp_path):
    """The chapters executed above saved as an edition (elsewhere), checked, and built into a book of its own."""
    from medtask.pipeline import edition
    from medtask.pipeline.book import EDITION_BANNER, build_book

    executed = sorted(p.stem for p in (smoke_output / "book" / "generated").glob("*.ipynb"))
    if executed != sorted(profiles.chapters()):
        pytest.skip("every chapter runs on smoke first (run this module whole)")
    dest = tmp_path / "edition"
    info = edition.save_edition("smoke", output_root=smoke_output, dest=dest)
    assert info["bytes"] < edition.MAX_BYTES and (dest / "results" / "smoke" / "a1_compression_segmentation"
                                                   / "claims.csv").is_file()
    assert edition.edition_problems(dest) == []
    leaks = [f"{p.relative_to(dest)}: {m.group(0)}" for p in dest.rglob("*") if p.is_file()
             for m in MACHINE_PATH.finditer(p.read_text(errors="replace"))]
    assert not leaks, "the edition names folders of the machine:\n" + "\n".join(leaks[:20])
    html, records = build_book("smoke", edition=True, run=False, output_root=tmp_path / "reader", edition_root=dest)
    assert records == []
    for stem in executed:
        assert EDITION_BANNER in (html / "generated" / f"{stem}.html").read_text()
