"""The cache key moves with each of its four parts; results carry provenance."""

from __future__ import annotations

import json

from pathlib import Path

import pandas as pd
import pytest

from medtask.errors import MedtaskError

from medtask.pipeline import Chapter, cache, read_provenance, read_table
from medtask.pipeline.profiles import resolve_notebook


def test_cache_key_depends_on_parameters_notebook_and_lib(tmp_path, monkeypatch):
    nb = resolve_notebook("00_data")
    k1 = cache.cache_key(nb, {"a": 1}, tmp_path)
    assert cache.cache_key(nb, {"a": 1}, tmp_path)["key"] == k1["key"]
    assert cache.cache_key(nb, {"a": 2}, tmp_path)["key"] != k1["key"]

    copy = tmp_path / "nb.md"
    copy.write_text(nb.read_text() + "\n+++\n\none more line\n")
    assert cache.cache_key(copy, {"a": 1}, tmp_path)["notebook"] != k1["notebook"]

    monkeypatch.setattr(cache, "lib_digest", lambda: "changed")
    assert cache.cache_key(nb, {"a": 1}, tmp_path)["key"] != k1["key"]


def test_cache_key_depends_on_data(tmp_path, monkeypatch):
    nb = resolve_notebook("00_data")
    monkeypatch.setattr(cache, "data_digest", lambda root=None, params=None: {"X": "1"})
    k1 = cache.cache_key(nb, {}, tmp_path)
    monkeypatch.setattr(cache, "data_digest", lambda root=None, params=None: {"X": "2"})
    assert cache.cache_key(nb, {}, tmp_path)["key"] != k1["key"]


def test_an_edited_own_folder_changes_the_cache_key(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    import folder_fixtures as fx

    from medtask.data import user_manifests

    monkeypatch.setattr(cache, "lib_digest", lambda: "lib")
    nb, root = resolve_notebook("00_data"), tmp_path / "root"
    src = fx.segmentation(tmp_path / "mine", n=6)
    params = {"dataset": f"folder:{src}", "size": 8}
    assert cache.own_data_names(params, root) == [f"folder:{src}"]
    assert cache.own_data_names({"dataset": "CVC-ColonDB", "test_dataset": None, "name": f"folder:{src}"}, root) == []
    k1 = cache.cache_key(nb, params, root)
    assert cache.cache_key(nb, params, root)["key"] == k1["key"]
    fx.save(fx.image(seed=77), src / "images" / "2.png")  # same path, other bytes
    k2 = cache.cache_key(nb, params, root)
    assert k2["data"] != k1["data"] and k2["key"] != k1["key"]

    user_manifests.add("mine", src, task="segmentation", root=root)
    reg = {"dataset": "CVC-ColonDB", "test_dataset": "mine"}
    k3 = cache.cache_key(nb, reg, root)
    assert cache.data_digest(root, reg)["mine"].startswith("mine:sha256:")
    fx.save(fx.image(seed=78), src / "images" / "3.png")  # an edit after `medtask data add`
    assert cache.cache_key(nb, reg, root)["key"] != k3["key"]
    assert cache.data_digest(root, reg)["mine"].startswith("unavailable: ChecksumError")


def test_cache_lookup_needs_the_same_key_and_an_unchanged_output(tmp_path):
    out = tmp_path / "x.ipynb"
    out.write_text("{}")
    key = {"key": "abc"}
    cache.store("x", key, out, {}, tmp_path)
    assert cache.lookup("x", key, out, tmp_path)
    assert not cache.lookup("x", {"key": "other"}, out, tmp_path)
    out.write_text('{"edited": 1}')
    assert not cache.lookup("x", key, out, tmp_path)


def test_chapter_results_carry_provenance(tmp_path):
    ch = Chapter("t", profile="smoke", parameters={"steps": 3}, results_dir=tmp_path / "r", data_root=tmp_path)
    df = pd.DataFrame({"method": ["a", "b"], "psnr": [30.0, 31.5]})
    path = ch.save_table(df, "table")
    pd.testing.assert_frame_equal(read_table(path), df)
    pd.testing.assert_frame_equal(pd.read_csv(path), df)  # plain CSV: no options needed, nor a comment line
    assert path.read_text().splitlines()[0] == "method,psnr"
    assert (tmp_path / "r" / "table.csv.provenance.json").is_file()
    assert ch.table(df.head(1), "first") is not None and len(pd.read_csv(tmp_path / "r" / "first.csv")) == 1
    prov = read_provenance(path)
    assert prov["profile"] == "smoke" and prov["parameters"] == {"steps": 3} and "commit" in prov["git"]
    assert prov["packages"]["torch"] and prov["wall_seconds"] >= 0
    j = ch.save_json({"x": 1}, "m")
    assert json.loads(j.read_text())["data"] == {"x": 1} and read_provenance(j)["chapter"] == "t"

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png, svg = ch.save_figure(fig, "fig")
    assert "provenance" not in Image.open(png).info.get("Description", "") and '"profile": "smoke"' in Image.open(png).info["Description"]
    assert "smoke" in svg.read_text()
    summary = json.loads(ch.finish(note="ok").read_text())["data"]
    assert {"table.csv", "m.json", "fig.png", "fig.svg"} <= set(summary["files"])


def test_save_calls_print_nothing_at_the_end_of_a_notebook_cell(tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    ch = Chapter("t", profile="smoke", results_dir=tmp_path / "r", data_root=tmp_path)
    shell = InteractiveShell.instance()
    shown = []
    shell.displayhook.write_format_data = lambda data, md=None: shown.append(data)
    shell.user_ns["ch"] = ch
    shell.run_cell('ch.save_json({"x": 1}, "m")')
    shell.run_cell('ch.save_json({"x": 1}, "m").name')  # a plain value still shows
    assert len(shown) == 1 and "m.json" in shown[0]["text/plain"]
    assert isinstance(ch.save_json({}, "n"), Path) and ch.save_json({}, "n").read_text()


def test_book_refuses_chapters_executed_on_another_profile(tmp_path):
    import pytest

    from medtask.errors import MedtaskError
    from medtask.pipeline.book import build_book

    gen = tmp_path / "book" / "generated"
    gen.mkdir(parents=True)
    nb = {"cells": [], "metadata": {"medtask": {"profile": "smoke"}}, "nbformat": 4, "nbformat_minor": 5}
    (gen / "00_data.ipynb").write_text(json.dumps(nb))
    with pytest.raises(MedtaskError, match=r"another profile than 'cpu': 00_data \(smoke\)"):
        build_book("cpu", only=["00_data"], run=False, output_root=tmp_path, edition=False)
    with pytest.raises(MedtaskError, match="not executed yet"):
        build_book("cpu", only=["00_data", "a1_compression_segmentation"], run=False, output_root=tmp_path,
                   edition=False)
    # without edition=False, a build that lacks chapters turns to the published edition, and says when there is none
    with pytest.raises(MedtaskError, match=r"00_data \(executed on profile 'smoke'.*no published edition"):
        build_book("cpu", only=["00_data"], run=False, output_root=tmp_path, edition_root=tmp_path / "no-edition")


def test_provenance_section_says_how_long_on_what_and_flags_reused_training(tmp_path):
    from medtask.pipeline.runner import checkpoints_older_than, stamp_provenance

    rec = {"chapter": "x", "profile": "cpu", "wall_seconds": 600.0, "git": {"commit": "a" * 40, "dirty": False},
           "device": {"cpu": "Some CPU", "cpu_count": 2, "load_average_1m": 5.0}, "datasets": {"DRIVE": "DRIVE:sha256:abcdef0123456789"},
           "packages": {"torch": "2.15.0"}, "python": "3.11", "parameters": {"steps": 5, "results_dir": "/x"},
           "created": "2026-01-01T00:00:00+00:00", "reused_checkpoints": []}
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# X"}], "metadata": {}}
    stamp_provenance(nb, rec)
    stamp_provenance(nb, rec)  # idempotent: one section, replaced
    sections = [c for c in nb["cells"] if "medtask-provenance" in c["metadata"].get("tags", [])]
    assert len(sections) == 1 and nb["cells"][-1] is sections[0]
    text = sections[0]["source"]
    assert "10.0 min" in text and "load average 5.0" in text and "DRIVE `abcdef012345`" in text
    assert '"steps": 5' in text and "results_dir" not in text and "reused" not in text

    ckpt = tmp_path / "checkpoints" / "cpu" / "x" / "run.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"0")
    import time

    assert checkpoints_older_than("x", "cpu", time.time() + 1, tmp_path) == ["run.pt"]
    assert checkpoints_older_than("x", "cpu", 0, tmp_path) == []
    rec["reused_checkpoints"] = ["run.pt"]
    stamp_provenance(nb, rec)
    assert "training reused 1" in nb["cells"][-1]["source"]


def test_checkpoints_live_under_the_output_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path / "out"))
    ch = Chapter("t", profile="smoke", results_dir=tmp_path / "elsewhere")
    assert ch.checkpoint("run") == tmp_path / "out" / "checkpoints" / "smoke" / "t" / "run.pt"
    assert ch.checkpoint("run").parent.is_dir()


def test_parallel_runner_raises_a_chapters_error(tmp_path):
    from medtask.errors import InvalidParameterError
    from medtask.pipeline.book import run_chapters

    with pytest.raises(InvalidParameterError, match="no chapter notebook"):
        run_chapters(["no_such_chapter", "nor_this_one"], "smoke", jobs=2, output_root=tmp_path)
    with pytest.raises(MedtaskError, match="jobs must be at least 1"):
        run_chapters(["00_data"], "smoke", jobs=0, output_root=tmp_path)


def test_a_new_zoo_card_changes_the_cache_key(tmp_path, monkeypatch):
    """A chapter that reads the zoo must run again when an entry is (re)trained, not answer 'cached'."""
    from medtask.pipeline import cache
    from medtask.pipeline.profiles import resolve_notebook

    monkeypatch.setenv("MEDTASK_ZOO", str(tmp_path / "zoo"))
    nb = resolve_notebook("01_zoo")
    before = cache.cache_key(nb, {}, data={})
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "erfnet-cvc.json").write_text('{"sha256": "0"}')
    after = cache.cache_key(nb, {}, data={})
    assert after["zoo"] != before["zoo"] and after["key"] != before["key"]


def test_a_test_only_dataset_stays_out_of_training_keys(tmp_path):
    from medtask.data import sources

    assert sources.test_only("phantom-polyp", None) == [] and sources.test_only("phantom-polyp", "phantom-polyp") == []
    assert sources.test_only(["a", "b"], "b") == [] and sources.test_only("phantom-polyp", "x") == ["x"]
    alone = Chapter("t", parameters={}, datasets=["phantom-polyp"], results_dir=tmp_path / "a")
    cross = Chapter("t", parameters={}, datasets=["phantom-polyp", "phantom-boxes"], results_dir=tmp_path / "b",
                    test_only=sources.test_only("phantom-polyp", "phantom-boxes"))
    plain = Chapter("t", parameters={}, datasets=["phantom-polyp", "phantom-boxes"], results_dir=tmp_path / "c")
    assert cross.artefact_key({"steps": 3}) == alone.artefact_key({"steps": 3})  # trained once, tested anywhere
    assert plain.artefact_key({"steps": 3}) != alone.artefact_key({"steps": 3})
    assert cross.artefact_key({"steps": 3}, datasets=cross.datasets) == plain.artefact_key({"steps": 3})
