"""The provenance box under a chapter's title names the zoo entries it started from that missed their plateau."""

from __future__ import annotations

from medtask.pipeline.runner import provenance_markdown, provenance_top_markdown

BASE = {"chapter": "x", "profile": "cpu", "wall_seconds": 60.0, "git": {"commit": "a" * 40}, "device": {},
        "datasets": {}, "packages": {}, "parameters": {}}


def _start(name: str, flat: bool) -> dict:
    return {"entry": name, "sha256": "f" * 64, "trained_at_commit": "b" * 40, "steps": 4000, "plateau": flat}


def test_top_box_names_the_entries_short_of_their_plateau():
    rec = {**BASE, "zoo_starts": [_start("erfnet-cvc", True), _start("mbt2018-mean-cvc-q4", False),
                                  _start("mbt2018-mean-cvc-q3", False)]}
    top = provenance_top_markdown(rec)
    assert "Started from 3 zoo entries" in top
    assert "**Not at a plateau:** `mbt2018-mean-cvc-q4`, `mbt2018-mean-cvc-q3`" in top
    assert "`erfnet-cvc`" not in top and len(top.splitlines()) <= 5
    closing = provenance_markdown(rec)
    assert "| zoo starts | `erfnet-cvc` (sha256 `ffffffffffff`, 4000 steps)," in closing
    assert "`mbt2018-mean-cvc-q4` (sha256 `ffffffffffff`, 4000 steps, **not at a plateau**)" in closing


def test_top_box_says_when_every_start_is_at_its_plateau_and_nothing_without_starts():
    one = provenance_top_markdown({**BASE, "zoo_starts": [_start("srresnet-covidct-gaussian0.2", True)]})
    assert "Started from 1 zoo entry, at its plateau." in one
    two = provenance_top_markdown({**BASE, "zoo_starts": [_start("a", True), _start("b", True)]})
    assert "Started from 2 zoo entries, each at its plateau." in two
    for rec in (BASE, {**BASE, "zoo_starts": []}):
        text = provenance_top_markdown(rec)
        assert "zoo" not in text and "plateau" not in text
        assert "zoo starts" not in provenance_markdown(rec)
