"""The published edition: ``medtask edition save``, the committed ``edition/``, and the book built from it.

The chapters here are made as the runner leaves them (notebook with papermill's parameters and the provenance
stamp, claims table, run record) without executing them; ``test_chapters_smoke.py`` saves and builds an edition
of the smoke chapters it executes.
"""

from __future__ import annotations

import base64
import io
import json
import os

import nbformat
import numpy as np
import pytest
from PIL import Image

from medtask import config
from medtask.cli import main
from medtask.pipeline import book as book_mod
from medtask.pipeline import edition as ed
from medtask.pipeline.notebooks import read_chapter
from medtask.pipeline.profiles import chapters, load_profile, resolve_notebook
from medtask.pipeline.runner import PROVENANCE_TOP_TAG, generated_dir, stamp_provenance
from medtask.reporting.findings import claim_row, claims_frame

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def fake_executed(stem: str, profile: str, out, *, ran_on: str | None = None, error: bool = False) -> None:
    """What ``run_notebook`` leaves for ``stem`` in the output root ``out``, without running it."""
    nb = json.loads(nbformat.writes(read_chapter(resolve_notebook(stem))))
    params = {**load_profile(stem, ran_on or profile), "profile": ran_on or profile}
    at = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    nb["cells"].insert(at + 1, {"cell_type": "code", "id": "injected", "metadata": {"tags": ["injected-parameters"]},
                                "execution_count": None, "outputs": [],
                                "source": "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())})
    figure = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": _png(2000, 500), "text/plain": "<Figure size 2000x500>"}}
    widget = {"output_type": "display_data", "metadata": {},
              "data": {ed.WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0}}}
    code = next(c for c in nb["cells"][at + 2:] if c["cell_type"] == "code")
    code["outputs"] = [figure, widget]
    if error:
        code["outputs"].append({"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []})
    nb["metadata"]["papermill"] = {"parameters": params}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}}
    record = {"created": "2026-12-01T10:00:00+00:00", "git": {"commit": COMMIT, "dirty": False},
              "profile": ran_on or profile, "chapter": stem, "wall_seconds": 12.5,
              "parameters": {**params, "results_dir": f"results/{profile}/{stem}", "data_root": "$MEDTASK_DATA"},
              "datasets_used": {"CVC-ColonDB": "CVC-ColonDB:sha256:3246bd33f9e1d256"}}
    stamp_provenance(nb, record)
    path = generated_dir(out) / f"{stem}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    results = config.results_dir(stem, profile, out)
    results.mkdir(parents=True, exist_ok=True)
    claims_frame([claim_row(f"{stem} works", "yes", "yes", "confirmed")]).to_csv(results / "claims.csv", index=False)
    (results / "fig.png").write_bytes(b"not copied")
    run = {**record, "parameters": {**record["parameters"], "data_root": "/srv/datasets",
                                    "results_dir": str(results)}}
    (results / "run.json").write_text(json.dumps(run))


@pytest.fixture
def executed(tmp_path):
    """Every chapter 'executed' on smoke in a scratch output root; the edition goes to ``tmp_path/edition``."""
    out = tmp_path / "output"
    for stem in chapters():
        fake_executed(stem, "smoke", out)
    return out


def test_save_writes_a_small_edition(executed, tmp_path):
    dest = tmp_path / "edition"
    info = ed.save_edition("smoke", output_root=executed, dest=dest)
    assert json.loads((dest / "EDITION.json").read_text()) == info
    assert info["profile"] == "smoke" and info["data_root"] == "$MEDTASK_DATA" and info["date"]
    assert info["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) < ed.MAX_BYTES
    assert list(info["chapters"]) == chapters()
    for stem in chapters():
        c = info["chapters"][stem]
        assert c["commit"] == COMMIT and c["wall_seconds"] == 12.5 and c["bytes"] > 0
        res = dest / "results" / "smoke" / stem
        assert sorted(p.name for p in res.iterdir()) == ["claims.csv", "run.json"]
        run = (res / "run.json").read_text()
        assert "/srv/datasets" not in run and str(tmp_path) not in run
        nb = json.loads((dest / f"{stem}.ipynb").read_text())
        assert "widgets" not in nb["metadata"]
        outs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outs if ed.WIDGET_MIME in o.get("data", {})]
        pngs = [Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))) for o in outs
                if "image/png" in o.get("data", {})]
        assert [im.size for im in pngs] == [(1400, 350)]
    assert ed.edition_problems(dest) == []
    assert info["wall_seconds"] == 12.5 * len(chapters())
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~umask  # as a folder made by mkdir, not mkdtemp's 0700


def test_cpu_edition(tmp_path, monkeypatch, capsys):
    """The default profile: `medtask edition save` and the book's choice with no profile named."""
    out = tmp_path / "output"
    for stem in chapters():
        fake_executed(stem, "cpu", out)
    monkeypatch.setenv("MEDTASK_OUTPUT", str(out))
    monkeypatch.setenv(ed.EDITION_ENV, str(tmp_path / "edition"))
    assert main(["edition", "save"]) == 0
    assert ed.read_info()["profile"] == "cpu" and (tmp_path / "edition" / "results" / "cpu" / "00_data").is_dir()
    assert ed.edition_problems() == []
    assert "edition of profile 'cpu'" in capsys.readouterr().out


def test_save_refuses_a_missing_chapter_and_keeps_the_edition(executed, tmp_path):
    dest = tmp_path / "edition"
    ed.save_edition("smoke", output_root=executed, dest=dest)
    before = (dest / "EDITION.json").read_text()
    (generated_dir(executed) / "b1_angio_quality.ipynb").unlink()
    with pytest.raises(ed.EditionError) as err:
        ed.save_edition("smoke", output_root=executed, dest=dest)
    msg = str(err.value)
    assert "b1_angio_quality: not executed" in msg and "`medtask run b1_angio_quality --profile smoke`" in msg
    assert "medtask edition save --profile smoke" in msg and "a1_compression_segmentation" not in msg
    assert (dest / "EDITION.json").read_text() == before


@pytest.mark.parametrize("how, says", [({"ran_on": "cpu"}, "executed on profile 'cpu', not 'smoke'"),
                                       ({"error": True}, "holds an error (ValueError: boom)")])
def test_save_refuses_a_chapter_of_another_profile_or_with_an_error(executed, tmp_path, how, says):
    fake_executed("c2_gradprom_segmentation", "smoke", executed, **how)
    with pytest.raises(ed.EditionError, match="c2_gradprom_segmentation") as err:
        ed.save_edition("smoke", output_root=executed, dest=tmp_path / "edition")
    assert says in str(err.value) and "medtask run c2_gradprom_segmentation --profile smoke" in str(err.value)
    assert not (tmp_path / "edition").exists()


def test_save_refuses_a_chapter_whose_last_run_failed(executed, tmp_path):
    done = generated_dir(executed) / "a2_compression_detection.ipynb"
    failed = done.with_name("a2_compression_detection.failed.ipynb")
    failed.write_text("{}")
    os.utime(done, (done.stat().st_mtime - 60,) * 2)
    with pytest.raises(ed.EditionError, match="a2_compression_detection: its last run failed"):
        ed.save_edition("smoke", output_root=executed, dest=tmp_path / "edition")


def test_save_only_replaces_the_named_chapters(executed, tmp_path, monkeypatch, capsys):
    dest = tmp_path / "edition"
    first = ed.save_edition("smoke", output_root=executed, dest=dest)
    kept = (dest / "b1_angio_quality.ipynb").read_bytes()
    # a2 runs again at another commit; b1's executed notebook changes too but is not named, so it is not copied
    fake_executed("a2_compression_detection", "smoke", executed)
    newer = "fedcba9876543210fedcba9876543210fedcba98"
    for stem in ("a2_compression_detection", "b1_angio_quality"):
        path = generated_dir(executed) / f"{stem}.ipynb"
        nb = json.loads(path.read_text())
        nb["metadata"]["medtask"]["git"]["commit"] = newer
        nb["cells"] = [c for c in nb["cells"] if PROVENANCE_TOP_TAG not in c["metadata"].get("tags", [])]
        stamp_provenance(nb, nb["metadata"]["medtask"])
        path.write_text(json.dumps(nb))
    (config.results_dir("a2_compression_detection", "smoke", executed) / "targets.csv").write_text("a\n1\n")
    (generated_dir(executed) / "c1_gradprom_diagnosis.ipynb").unlink()  # not named: not needed
    monkeypatch.setenv("MEDTASK_OUTPUT", str(executed))
    monkeypatch.setenv(ed.EDITION_ENV, str(dest))
    assert main(["edition", "save", "--profile", "smoke", "--only", "a2_compression_detection"]) == 0
    info = ed.read_info(dest)
    assert info["chapters"]["a2_compression_detection"]["commit"] == newer
    assert {s: c for s, c in info["chapters"].items() if s != "a2_compression_detection"} == {
        s: c for s, c in first["chapters"].items() if s != "a2_compression_detection"}
    assert (dest / "b1_angio_quality.ipynb").read_bytes() == kept
    assert (dest / "results" / "smoke" / "a2_compression_detection" / "targets.csv").is_file()
    assert (dest / "c1_gradprom_diagnosis.ipynb").is_file() and ed.edition_problems(dest) == []
    assert info["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    with pytest.raises(ed.EditionError, match="holds the edition of profile 'smoke'"):
        ed.save_edition("cpu", output_root=executed, dest=dest, only=["a2_compression_detection"])
    with pytest.raises(ed.EditionError, match="no chapter z9"):
        ed.save_edition("smoke", output_root=executed, dest=dest, only=["z9"])
    with pytest.raises(ed.EditionError, match="holds no edition"):
        ed.save_edition("smoke", output_root=executed, dest=tmp_path / "none", only=["a2_compression_detection"])


def test_save_refuses_an_edition_above_the_limit(executed, tmp_path):
    with pytest.raises(ed.EditionError, match=r"would take .* MB, above the limit of 0.0 MB"):
        ed.save_edition("smoke", output_root=executed, dest=tmp_path / "edition", max_bytes=1000)
    assert [p.name for p in tmp_path.iterdir()] == ["output"], "nothing is left behind"
    info = ed.save_edition("smoke", output_root=executed, dest=tmp_path / "edition", max_bytes=10 ** 8)
    assert info["max_bytes"] == 10 ** 8 and "(limit 100.0 MB)" in ed.summary(info)  # the limit it was saved under


def test_edition_save_command(executed, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDTASK_OUTPUT", str(executed))
    monkeypatch.setenv(ed.EDITION_ENV, str(tmp_path / "edition"))
    assert main(["edition", "save", "--profile", "smoke"]) == 0
    printed = capsys.readouterr().out
    assert "edition of profile 'smoke': 9 chapters" in printed and "(limit 25.0 MB)" in printed
    (generated_dir(executed) / "00_data.ipynb").unlink()
    assert main(["edition", "save"]) == 2  # the cpu profile: no chapter ran on it
    err = capsys.readouterr().err
    assert "00_data: not executed; run `medtask run 00_data --profile cpu`" in err and "make study" in err


def test_edition_problems_name_a_changed_parameter_and_a_missing_commit(executed, tmp_path):
    dest = tmp_path / "edition"
    ed.save_edition("smoke", output_root=executed, dest=dest)
    path = dest / "00_data.ipynb"
    nb = json.loads(path.read_text())
    nb["metadata"]["papermill"]["parameters"]["grid_samples"] = 99
    path.write_text(json.dumps(nb))
    path = dest / "01_zoo.ipynb"
    nb = json.loads(path.read_text())
    nb["metadata"]["medtask"]["git"]["commit"] = None
    path.write_text(json.dumps(nb))
    problems = ed.edition_problems(dest)
    assert len(problems) == 2
    assert problems[0].startswith("00_data: ran with other parameters") and "grid_samples (ran 99, today 4)" in problems[0]
    assert problems[1] == "01_zoo: its metadata names no commit"


def test_committed_edition_stands_for_todays_chapters():
    """The edition in the repository names its commit on every page and ran with today's parameters."""
    root = config.repo_root() / "edition"
    if not (root / ed.INFO).is_file():
        pytest.skip("no edition/EDITION.json yet: the published edition is saved after a full `make study` "
                    "(`medtask edition save`)")
    problems = ed.edition_problems(root)
    assert not problems, "the committed edition is out of date:\n" + "\n".join(problems)


def test_provenance_box_sits_under_the_title(executed):
    nb = json.loads((generated_dir(executed) / "a1_compression_segmentation.ipynb").read_text())
    assert nb["cells"][0]["source"] == "# A1 · Task-driven compression for polyp segmentation (MVMICNet, CVC-ColonDB)\n"
    assert "".join(nb["cells"][2]["source"]).startswith(":::{admonition} What you will learn"), "the title cell's rest"
    top = nb["cells"][1]
    assert top["metadata"]["tags"] == [PROVENANCE_TOP_TAG] and top["id"] == PROVENANCE_TOP_TAG
    text = top["source"]
    assert text.startswith("```{admonition} Provenance") and len(text.splitlines()) <= 5
    for part in ("profile `smoke`", f"commit `{COMMIT[:12]}`", "2026-12-01 10:00 UTC", "in 12 s",
                 "CVC-ColonDB `3246bd33f9e1`", "`$MEDTASK_DATA`"):
        assert part in text
    before = json.dumps(nb)
    stamp_provenance(nb, nb["metadata"]["medtask"])  # stamping again replaces, never adds
    assert json.dumps(nb) == before


def test_book_chooses_between_output_root_and_edition(executed, tmp_path, monkeypatch):
    """--no-run builds from the output root when every chapter ran there on the profile, else from the edition;
    --edition always from the edition; no edition (or one of another profile) is a clear error."""
    built = []
    monkeypatch.setattr(book_mod, "_jupyter_book",
                        lambda src, stems, profile, results, out, *, generated, announcement=None:
                        built.append((generated, results, announcement)) or out)
    dest = tmp_path / "edition"
    kw = dict(run=False, output_root=executed, edition_root=dest)
    with pytest.raises(book_mod.MedtaskError, match="no published edition"):
        book_mod.build_book("smoke", edition=True, **kw)
    ed.save_edition("smoke", output_root=executed, dest=dest)
    book_mod.build_book("smoke", **kw)
    assert built[-1][0] == generated_dir(executed) and built[-1][2] is None
    book_mod.build_book("smoke", edition=True, **kw)
    assert built[-1][1] == dest / "results" / "smoke" and book_mod.EDITION_BANNER in built[-1][2]
    assert sorted(p.name for p in built[-1][0].iterdir()) == sorted(f"{s}.ipynb" for s in chapters())
    failed = generated_dir(executed) / "c3_gradprom_extensions.failed.ipynb"  # a later run failed: the book keeps
    failed.write_text("{}")                                                   # the executed chapter (save refuses it)
    book_mod.build_book("smoke", **kw)
    assert built[-1][0] == generated_dir(executed)
    (generated_dir(executed) / "c3_gradprom_extensions.ipynb").unlink()
    book_mod.build_book("smoke", **kw)
    assert built[-1][1] == dest / "results" / "smoke"
    with pytest.raises(book_mod.MedtaskError, match="executed on profile 'smoke', not 'cpu'.*--edition --profile smoke"):
        book_mod.build_book("cpu", edition=True, **kw)
    with pytest.raises(book_mod.MedtaskError, match="c3_gradprom_extensions .*no published edition"):
        book_mod.build_book("smoke", run=False, output_root=executed, edition_root=tmp_path / "none")


def test_book_builds_from_the_edition_with_its_banner_on_every_page(executed, tmp_path, monkeypatch):
    dest = tmp_path / "edition"
    ed.save_edition("smoke", output_root=executed, dest=dest)
    monkeypatch.setenv(ed.EDITION_ENV, str(dest))
    empty = tmp_path / "reader"  # a fresh checkout: nothing executed
    monkeypatch.setenv("MEDTASK_OUTPUT", str(empty))
    assert main(["book", "--profile", "smoke", "--no-run"]) == 0
    html = empty / "_build" / "html"
    assert 'url=intro.html' in (html / "index.html").read_text()
    pages = sorted(p for p in html.rglob("*.html") if p.relative_to(html).parts[0] != "_static"
                   and p.name not in ("index.html", "genindex.html", "search.html"))
    assert {p.relative_to(html).as_posix() for p in pages} >= {
        "intro.html", "findings.html", "reproducing.html", *(f"generated/{s}.html" for s in chapters())}
    lacking = [p.relative_to(html).as_posix() for p in pages if book_mod.EDITION_BANNER not in p.read_text()]
    assert not lacking, f"pages without the edition banner: {lacking}"
    page = (html / "generated" / "a1_compression_segmentation.html").read_text()
    assert f"commit <code class=\"docutils literal notranslate\"><span class=\"pre\">{COMMIT[:12]}" in page
    assert "a1_compression_segmentation works" in (html / "findings.html").read_text()
    assert not generated_dir(empty).exists(), "the edition is never copied into the output root's chapters"


def test_large_photographic_png_outputs_become_jpeg_and_plots_stay_png():
    rng = np.random.default_rng(0)
    # a photograph-like image: smooth shapes (bicubic up-sampling of a coarse grid) and sensor noise
    smooth = Image.fromarray(rng.integers(0, 255, (30, 45, 3), dtype=np.uint8)).resize((900, 600), Image.BICUBIC)
    noisy = np.asarray(smooth, dtype=np.int16) + rng.integers(-6, 7, (600, 900, 3))
    photo = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    photo_png = base64.b64encode(buf.getvalue()).decode("ascii")
    plot_png = _png(1200, 400)  # flat colour: small as PNG
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [
        {"output_type": "display_data", "metadata": {"image/png": {"width": 900}},
         "data": {"image/png": photo_png, "text/plain": "<Figure>"}},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": plot_png, "text/plain": "<Figure>"}}]}]}
    photo_out, plot_out = ed.shrink_notebook(nb)["cells"][0]["outputs"]
    assert set(photo_out["data"]) == {"image/jpeg", "text/plain"} and photo_out["metadata"] == {"image/jpeg": {"width": 900}}
    jpeg = base64.b64decode(photo_out["data"]["image/jpeg"])
    assert len(jpeg) * 2 <= len(buf.getvalue())
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG" and im.size == (900, 600)
    assert "image/png" in plot_out["data"] and "image/jpeg" not in plot_out["data"]


def test_shrink_saved_reencodes_a_saved_edition_and_updates_its_sizes(executed, tmp_path, monkeypatch):
    dest = tmp_path / "edition"
    info = ed.save_edition("smoke", output_root=executed, dest=dest)
    stem = chapters()[0]
    nb_path = dest / f"{stem}.ipynb"
    nb = json.loads(nb_path.read_text())
    rng = np.random.default_rng(1)
    big = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).resize((900, 600), Image.BICUBIC)
    buf = io.BytesIO()
    Image.fromarray((np.asarray(big, dtype=np.int16) + rng.integers(-6, 7, (600, 900, 3))).clip(0, 255)
                    .astype(np.uint8)).save(buf, format="PNG")
    nb["cells"][0].setdefault("outputs", []).append(
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": base64.b64encode(buf.getvalue()).decode()}})
    nb["cells"][0]["cell_type"] = "code"
    nb_path.write_text(json.dumps(nb))  # as an older save left it
    new = ed.shrink_saved(dest)
    assert "image/jpeg" in nb_path.read_text()
    assert new["chapters"][stem]["bytes"] == nb_path.stat().st_size + sum(
        p.stat().st_size for p in (dest / "results" / "smoke" / stem).rglob("*") if p.is_file())
    assert new["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert {k: v for k, v in new.items() if k not in ("bytes", "chapters")} == \
        {k: v for k, v in info.items() if k not in ("bytes", "chapters")}
    assert ed.edition_problems(dest) == []
