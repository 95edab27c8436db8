"""The browser check finds what it should on a fabricated site (the smoke book itself is checked in
test_chapters_smoke.py)."""

from __future__ import annotations

import base64

import pytest

from pagecheck import check_site, chromium

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a2dd6f470000000049454e44ae426082")).decode()


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "html"
    (root / "generated").mkdir(parents=True)
    (root / "ok.png").write_bytes(base64.b64decode(PNG))
    (root / "index.html").write_text(
        '<html><body><h1 id="top">Book</h1><img src="ok.png"><img src="data:image/png;base64,' + PNG + '">'
        '<a href="generated/a.html#results">A</a><a href="#top">top</a><a href="https://example.org">out</a></body></html>')
    (root / "generated" / "a.html").write_text(
        '<html><body><h2 id="results">Results</h2><img src="missing.png"><a href="../nowhere.html">x</a>'
        '<a href="../index.html#gone">y</a><div class="output traceback">Traceback (most recent call last)</div>'
        '<pre>results_dir = "/tmp/pytest-of-root/x"</pre></body></html>')
    return root


def test_check_site_reports_every_kind_of_breakage(site, tmp_path):
    if chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    problems, pages = check_site(site, forbidden=["/secret/data"], shots=tmp_path / "shots")
    text = "\n".join(problems)
    assert len(pages) == 2
    assert not [p for p in problems if p.startswith("index.html")], text
    for expected in ("generated/a.html: a broken image missing.png", "generated/a.html: a dead link ../nowhere.html",
                     "generated/a.html: a link to a missing anchor ../index.html#gone", "an error output",
                     "generated/a.html: a machine path /tmp/p", "asked for /generated/missing.png and got 404"):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["generated__a.png", "index.png"]
