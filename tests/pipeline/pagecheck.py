"""Open every page of a built book in headless Chromium and list what a reader would see broken.

The pages are served on localhost (every request the browser makes is recorded, so a missing image,
script or stylesheet shows as a 404), each page's DOM is taken after its scripts ran (MathJax
included), and a screenshot of it is saved for review.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

#: Chromium without a sandbox, GPU, network services, sync or first-run dialogs
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--virtual-time-budget=8000"]
#: a folder of some machine: the system's temporary, home and root folders
MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(?:tmp|home|root)/[\w.-]")
#: what a failed cell leaves on a page: a traceback, an error output or a stderr box
ERROR_OUTPUT = re.compile(r"Traceback \(most recent call last\)|class=\"[^\"]*\boutput (?:traceback|error|stderr)\b")


def chromium() -> str | None:
    """The Chromium executable (Debian's ``chromium``), or None where it is not installed."""
    for name in ("chromium", "chromium-browser"):
        if exe := shutil.which(name):
            return exe
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class _Recorder(SimpleHTTPRequestHandler):
    """Serves the book and records every request's path and status."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.server.requests.append((unquote(urlsplit(self.path).path), code))  # type: ignore[attr-defined]
        super().send_response(code, message)


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """Serve ``root`` on a free localhost port; yield its base URL and the list of requests made."""
    handler = lambda *a, **k: _Recorder(*a, directory=str(root), **k)  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _chromium(exe: str, profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)


class _Refs(HTMLParser):
    """The ``src`` of every image and the ``href`` of every link of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img" and a.get("src") is not None:
            self.images.append(a["src"] or "")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")


def _ids(page: Path, cache: dict[Path, set[str]]) -> set[str]:
    if page not in cache:
        cache[page] = set(re.findall(r'\bid="([^"]+)"', page.read_text(errors="replace")))
    return cache[page]


def page_problems(dom: str, page: Path, root: Path, forbidden: Iterable[str], ids: dict[Path, set[str]]) -> list[str]:
    """What is broken on one page, given its DOM after scripts ran (``page`` is its file under ``root``)."""
    name = str(page.relative_to(root))
    problems = []
    if "<mjx-merror" in dom:
        problems.append(f"{name}: a MathJax error")
    if 'class="math' in page.read_text(errors="replace") and "<mjx-container" not in dom:
        problems.append(f"{name}: formulas not rendered by MathJax")
    problems += [f"{name}: an error output ({m.group(0)[:60]})" for m in ERROR_OUTPUT.finditer(dom)]
    problems += [f"{name}: names {p}" for p in forbidden if p in dom]
    problems += [f"{name}: a machine path {m.group(0)}..." for m in MACHINE_PATH.finditer(html.unescape(dom))]
    refs = _Refs()
    refs.feed(dom)
    for src in refs.images:
        if src.startswith("data:"):
            if len(src) < 100:
                problems.append(f"{name}: an empty inline image")
        elif not urlsplit(src).scheme and not (page.parent / unquote(urlsplit(src).path)).is_file():
            problems.append(f"{name}: a broken image {src}")
    for href in refs.links:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
            continue
        if not parts.path:  # an anchor on the page the browser shows (a redirecting page shows another)
            if parts.fragment and unquote(parts.fragment) not in set(re.findall(r'\bid="([^"]+)"', dom)):
                problems.append(f"{name}: a link to a missing anchor {href}")
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{name}: a dead link {href}")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target, ids):
            problems.append(f"{name}: a link to a missing anchor {href}")
    return problems


def check_site(root: Path, forbidden: Iterable[str] = (), shots: Path | None = None,
               exe: str | None = None) -> tuple[list[str], list[Path]]:
    """Open every page under ``root`` (not the theme's files under ``_static/`` and the like) in headless
    Chromium; return the problems found and the pages opened. Screenshots go to ``shots`` (one PNG per page)."""
    exe = exe or chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed")
    root = Path(root).resolve()
    pages = sorted(p for p in root.rglob("*.html") if not p.relative_to(root).parts[0].startswith("_"))  # not _static
    problems: list[str] = []
    ids: dict[Path, set[str]] = {}
    profile = root.parent / ".chromium-profile"
    with serve(root) as (base, requests):
        for page in pages:
            rel = page.relative_to(root).as_posix()
            url = urljoin(base, rel)
            run = _chromium(exe, profile, "--dump-dom", url)
            if run.returncode != 0 or "<html" not in run.stdout:
                problems.append(f"{rel}: chromium could not open it ({run.returncode}): {run.stderr[-300:]}")
                continue
            problems += page_problems(run.stdout, page, root, forbidden, ids)
            if shots is not None:
                dest = Path(shots) / (rel.replace("/", "__").removesuffix(".html") + ".png")
                dest.parent.mkdir(parents=True, exist_ok=True)
                _chromium(exe, profile, f"--screenshot={dest}", "--window-size=1280,2000", url)
                if not dest.is_file():
                    problems.append(f"{rel}: no screenshot")
        problems += [f"the browser asked for {path} and got {code}" for path, code in requests
                     if code >= 400 and path != "/favicon.ico"]
    shutil.rmtree(profile, ignore_errors=True)
    return problems, pages
