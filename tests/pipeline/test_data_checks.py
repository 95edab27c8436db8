"""Chapters verify their data before training; bad parameters and failing chapters give readable errors."""

from __future__ import annotations

import pytest

from medtask import cli
from medtask.errors import DataVerificationError


def test_chapter_refuses_unverified_data_unless_allowed(toy, tmp_path, monkeypatch):
    from medtask.pipeline import Chapter
    from medtask.pipeline.runner import provenance_markdown

    ok = Chapter("t", datasets=["toy", "phantom-polyp"], results_dir=tmp_path / "r", data_root=toy)
    assert [c["status"] for c in ok.data_checks] == ["verified", "generated"]

    (toy / "Toy" / "images" / "2.png").write_bytes(b"second imagE")  # same size, other bytes
    with pytest.raises(DataVerificationError) as ei:
        Chapter("t", datasets=["toy"], results_dir=tmp_path / "r", data_root=toy)
    msg = str(ei.value)
    assert "'Toy'" in msg and "checksum mismatch: images/2.png" in msg and "medtask run t --allow-unverified-data" in msg
    assert "by hand" in msg  # Toy cannot be downloaded: the fix says so

    monkeypatch.setenv("MEDTASK_ALLOW_UNVERIFIED_DATA", "1")  # what `medtask run --allow-unverified-data` sets
    allowed = Chapter("t", datasets=["toy"], results_dir=tmp_path / "r", data_root=toy)
    prov = allowed.provenance()
    assert prov["allow_unverified_data"] and prov["data_checks"][0]["status"].startswith("failed, used anyway")
    page = provenance_markdown({"chapter": "t", "profile": "cpu", "data_checks": prov["data_checks"]})
    assert "```{warning}" in page and "images/2.png" in page


def test_a_copy_with_the_wrong_layout_still_enters_the_cache_key_by_its_bytes(toy):
    from medtask.pipeline import cache

    (toy / "Toy" / "images" / "3.png").write_bytes(b"a third frame: not in the manifest's layout")
    first = cache.data_digest(toy)["Toy"]
    assert "layout-mismatch" in first
    (toy / "Toy" / "images" / "3.png").write_bytes(b"another third frame, edited")
    assert cache.data_digest(toy)["Toy"] != first


def test_cli_run_has_the_allow_unverified_flag():
    args = cli.build_parser().parse_args(["run", "00_data", "--allow-unverified-data"])
    assert args.allow_unverified_data is True


def _no_kernel(*args, **kwargs):
    raise AssertionError("a kernel was started")


@pytest.mark.parametrize("override, shown", [
    ("task_steps=-1", "task_steps=-1 is not allowed: task_steps must be an integer >= 0"),
    ("batch_size=0", "batch_size=0 is not allowed: batch_size must be an integer >= 1"),
    ("size=abc", "size='abc' is not allowed: size must be an integer >= 8 (square) or [H, W]"),
])
def test_bad_parameters_are_refused_before_any_kernel_starts(override, shown, capsys, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", _no_kernel)
    code = cli.main(["run", "a1_compression_segmentation", "--profile", "smoke", "-p", override,
                     "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and shown in err


def test_every_profile_satisfies_the_declared_schema():
    from medtask.pipeline import schema
    from medtask.pipeline.profiles import PROFILES, chapters, load_profile, resolve_notebook

    for stem in chapters():
        for prof in PROFILES:
            schema.validate(resolve_notebook(stem), load_profile(stem, prof))


def test_a_failing_chapter_shows_the_exception_first(capsys, tmp_path, monkeypatch):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    def fails(*args, **kwargs):
        tb = [f"  File \"/lib/medtask/module{k}.py\", line {k}, in f{k}\n    call_{k}()" for k in range(80)]
        raise PapermillExecutionError(3, 7, "train(...)", "DatasetNotFoundError",
                                      "dataset 'CVC-ColonDB' not found at /x. Run `medtask data fetch CVC-ColonDB`",
                                      tb + ["DatasetNotFoundError: dataset 'CVC-ColonDB' not found at /x."])

    monkeypatch.setattr(papermill, "execute_notebook", fails)
    code = cli.main(["run", "00_data", "--profile", "smoke", "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    first_lines = err.splitlines()[:2]
    assert "DatasetNotFoundError: dataset 'CVC-ColonDB' not found at /x." in first_lines[1], err[:500]
    assert "00_data.failed.ipynb" in err and "full traceback" in err
