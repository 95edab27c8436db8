"""The papers' published tables: read from shared/ where present, from the embedded copy elsewhere; the source
they name never carries the machine's folders (it is printed on the pages)."""

from __future__ import annotations

from pathlib import Path

from medtask.reporting import published


def test_source_is_shown_relative_to_the_checkouts_folder(tmp_path, monkeypatch):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    monkeypatch.setattr(published, "published_dir", lambda: tmp_path)
    df = published.published_table("t.csv", "a,b\n9,9\n")
    assert df["a"].tolist() == [1] and df["source"].iloc[0] == "shared/papers/published/t.csv"
    assert str(tmp_path) not in df["source"].iloc[0] and not Path(df["source"].iloc[0]).is_absolute()
    df = published.published_table("missing.csv", "a,b\n9,9\n")
    assert df["a"].tolist() == [9] and df["source"].iloc[0] == "embedded copy of missing.csv"
