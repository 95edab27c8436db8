"""A chapter's results: one folder per chapter and profile, every file stamped with provenance."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from medtask import config, provenance, zoo
from medtask.errors import DataVerificationError, InvalidParameterError
from medtask.pipeline import artefacts

#: the first line of tables written before provenance moved to a sidecar file (still read)
PROVENANCE_PREFIX = "# provenance: "
#: set to ``1`` by ``medtask run --allow-unverified-data``: chapters then run on data that fails verification
ALLOW_UNVERIFIED_ENV = "MEDTASK_ALLOW_UNVERIFIED_DATA"


def unverified_data_allowed() -> bool:
    """Whether this run was started with ``--allow-unverified-data``."""
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "0") == "1"


def table_provenance_path(path: str | os.PathLike) -> Path:
    """The provenance sidecar of a results table: ``<name>.csv.provenance.json``."""
    p = Path(path)
    return p.with_name(p.name + ".provenance.json")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _QuietInNotebooks:
    """A return value that a notebook cell ending in ``chapter.save_...(...)`` does not print.

    Executed chapters would otherwise show the absolute paths of the files written (of the machine
    that ran them) under every table and figure.
    """

    def _ipython_display_(self) -> None:
        pass


class SavedPath(type(Path()), _QuietInNotebooks):  # type: ignore[misc]
    """The path of a file a chapter wrote (a normal :class:`pathlib.Path`)."""


class SavedPaths(list, _QuietInNotebooks):
    """The paths of the files a chapter wrote for one figure (a normal list)."""


class Chapter:
    """A notebook's handle on where it writes, with what parameters, from which data.

    ``results_dir`` is injected by the pipeline (``medtask run``); run by hand, a notebook
    writes to ``<output>/results/<profile>/<name>/``. Tables are plain CSV (``pandas.read_csv(path)``
    reads them) with their provenance in ``<name>.csv.provenance.json`` beside them; JSON files carry
    a ``provenance`` key; figures carry it in their PNG/SVG metadata.

    Before anything trains, each dataset in ``datasets`` that has a checksum list is verified
    (layout and every file's sha256, cached by size and mtime); a mismatch raises
    :class:`~medtask.errors.DataVerificationError` naming the dataset and the failing files, unless
    the run allows unverified data (``medtask run --allow-unverified-data``, or
    ``allow_unverified_data=True``), in which case a warning box says so on the page and the
    provenance records it. ``verify_data=False`` skips the check (the data chapter, which reports it).
    """

    def __init__(
        self, name: str, *, profile: str = "cpu", parameters: dict[str, Any] | None = None,
        datasets: list[str] | tuple[str, ...] = (), results_dir: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None, verify_data: bool = True,
        allow_unverified_data: bool | None = None, test_only: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.test_only = [n for n in test_only if n is not None]
        self.profile = profile
        self.parameters = dict(parameters or {})
        self.datasets = list(datasets)
        self.data_root = config.data_root(data_root)
        self.dir = Path(results_dir) if results_dir else config.results_dir(name, profile)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._t0 = time.perf_counter()
        self._static: dict[str, Any] | None = None
        self.artefacts: list[dict[str, Any]] = []
        self.zoo_cards: dict[str, dict[str, Any]] = {}  # zoo entry -> its card, for every start taken from the zoo
        self._git: dict[str, Any] | None = None
        self._fingerprints: dict[str, str] = {}
        self.allow_unverified_data = unverified_data_allowed() if allow_unverified_data is None \
            else bool(allow_unverified_data)
        self.data_checks: list[dict[str, Any]] = self.verify_data() if verify_data else []

    # -- data --------------------------------------------------------------------------------
    def verify_data(self) -> list[dict[str, Any]]:
        """Verify every dataset of the chapter that has a checksum list; stop on a mismatch unless allowed."""
        from medtask.data import sources

        checks = []
        for name in self.datasets:
            try:
                checks.append(sources.verify_for_chapter(name, self.data_root))
            except InvalidParameterError:  # not a dataset with a manifest: nothing to verify
                checks.append({"dataset": name, "path": None, "status": "no manifest", "problems": [], "fix": ""})
        for check in checks:
            if check["status"] != "failed":
                continue
            if not self.allow_unverified_data:
                raise DataVerificationError(check["dataset"], check["path"], check["problems"], check["fix"],
                                            chapter=self.name)
            check["status"] = "failed, used anyway (--allow-unverified-data)"
        failed = [c for c in checks if c["status"].startswith("failed")]
        if failed:
            _show_warning_box(unverified_data_html(failed))
        return checks

    def data_fingerprints(self, datasets: list[str] | tuple[str, ...] | None = None) -> dict[str, str]:
        """Fingerprints of the actual bytes of ``datasets`` (default: the chapter's), for artefact keys.

        Computed once per dataset and chapter: the data does not change while a chapter runs.
        """
        names = list(self.datasets if datasets is None else datasets)
        todo = [n for n in names if n not in self._fingerprints]
        for name in todo:  # provenance keys datasets by their label (canonical name): map back to the name asked
            (digest,) = provenance.dataset_fingerprints([name], self.data_root).values()
            self._fingerprints[name] = str(digest)
        return {n: self._fingerprints[n] for n in names}

    # -- provenance --------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """The record stamped on every file; git/packages/data are read once, wall time each call."""
        if self._static is None:
            self._static = provenance.collect(profile=self.profile, parameters=self.parameters,
                                              datasets=self.datasets, data_root=self.data_root)
            self._static["data_checks"] = self.data_checks
            self._static["allow_unverified_data"] = self.allow_unverified_data
        rec = dict(self._static)
        rec["chapter"] = self.name
        rec["wall_seconds"] = round(time.perf_counter() - self._t0, 2)
        rec["artefacts"] = list(self.artefacts)
        rec["zoo_starts"] = self.zoo_starts
        return rec

    @property
    def elapsed(self) -> float:
        """Seconds since the chapter started."""
        return time.perf_counter() - self._t0

    # -- paths -------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.dir / name

    def checkpoint(self, name: str, key: dict[str, Any] | None = None) -> Path:
        """A checkpoint file for :func:`medtask.engine.fit` under ``<output>/checkpoints/<profile>/<chapter>/``.

        With ``key`` (see :meth:`artefact_key`) the file is ``<name>-<digest>.pt``, the digest a short
        hash of the key: a changed parameter, input checkpoint, dataset or code gives another file,
        so the training runs again; an unchanged key finds the earlier file and the provenance lists
        it as reused, with its key and the run that produced it. Without ``key`` the path is
        ``<name>.pt`` and nothing checks what produced it.
        """
        folder = config.output_root() / "checkpoints" / self.profile / self.name
        folder.mkdir(parents=True, exist_ok=True)
        if key is None:
            return folder / f"{name}.pt"
        path = artefacts.keyed_path(folder, name, key)
        if self._git is None:
            self._git = provenance.git_state()
        producer = {"chapter": self.name, "profile": self.profile, "commit": self._git.get("commit"),
                    "dirty": self._git.get("dirty")}
        if any(a["path"] == str(path) for a in self.artefacts):
            return path  # asked again in this run (e.g. to load what it trained): the first entry says if it was reused
        self.artefacts.append(artefacts.register(path, name, key, producer))
        return path

    def artefact_key(self, params: dict[str, Any], *, inputs: dict[str, str | os.PathLike] | None = None,
                     datasets: list[str] | tuple[str, ...] | None = None, code: tuple[Any, ...] = ()
                     ) -> dict[str, Any]:
        """The key of a trained artefact: ``params``, the checkpoints in ``inputs`` (by content hash), the
        fingerprints of ``datasets`` (default: the chapter's, less those it only tests on, ``test_only``, so
        that testing elsewhere reuses what was trained; ``()`` for none) and the source of ``code``."""
        if datasets is None:
            datasets = [n for n in self.datasets if n not in self.test_only]
        return artefacts.build_key(params=params, inputs=inputs, data=self.data_fingerprints(datasets), code=code)

    def note_zoo_start(self, name: str, card: dict[str, Any]) -> None:
        """Record in the provenance that a network of this run started from zoo entry ``name`` (``card``)."""
        self.zoo_cards[name] = card

    @property
    def zoo_starts(self) -> list[dict[str, Any]]:
        """The provenance's record of each zoo entry this run started from, in the order first used."""
        return [{"entry": name, "sha256": card.get("sha256"), "trained_at_commit": (card.get("git") or {}).get("commit"),
                 "steps": card.get("steps"), "plateau": (card.get("plateau") or {}).get("flat")}
                for name, card in self.zoo_cards.items()]

    def start_from_zoo(self, net: "torch.nn.Module", name: str) -> "torch.nn.Module":  # noqa: F821
        """``net`` with zoo entry ``name``'s verified weights (:func:`medtask.zoo.load_into`), the start noted."""
        self.note_zoo_start(name, zoo.load_into(net, name))
        return net

    def reused_artefacts(self) -> list[dict[str, Any]]:
        """The keyed checkpoints this run found already there (finished or partial), with key and producer."""
        return [a for a in self.artefacts if a["reused"]]

    # -- writers -----------------------------------------------------------------------------
    def save_table(self, df: "pandas.DataFrame", name: str, index: bool = False) -> Path:  # noqa: F821
        """Write ``<name>.csv`` (plain CSV) and its provenance to ``<name>.csv.provenance.json``."""
        path = self.dir / f"{name}.csv"
        _atomic_write_text(table_provenance_path(path),
                           json.dumps({"provenance": self.provenance(), "table": path.name}, indent=1, default=str))
        _atomic_write_text(path, df.to_csv(index=index))
        return SavedPath(path)

    def table(self, df: "pandas.DataFrame", name: str, index: bool = False) -> "pandas.DataFrame":  # noqa: F821
        """:meth:`save_table`, then ``df`` itself, for a chapter to display in the same line."""
        self.save_table(df, name, index=index)
        return df

    def save_json(self, obj: Any, name: str) -> Path:
        """Write ``<name>.json`` as ``{"provenance": ..., "data": obj}``."""
        path = self.dir / f"{name}.json"
        _atomic_write_text(path, json.dumps({"provenance": self.provenance(), "data": obj}, indent=1, default=str))
        return SavedPath(path)

    def save_figure(self, fig: "matplotlib.figure.Figure", name: str, formats: tuple[str, ...] = ("png", "svg"),  # noqa: F821
                    dpi: int = 150) -> list[Path]:
        """Save a figure as PNG and SVG, provenance in the files' metadata."""
        prov = json.dumps(self.provenance(), default=str)
        paths = []
        for fmt in formats:
            path = self.dir / f"{name}.{fmt}"
            meta = {"Description": prov} if fmt in ("png", "svg") else None
            fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)
            paths.append(SavedPath(path))
        return SavedPaths(paths)

    def finish(self, **summary: Any) -> Path:
        """Write ``provenance.json``: the record, the list of files written, and a summary."""
        files = sorted(p.name for p in self.dir.iterdir() if p.is_file() and p.name != "provenance.json")
        return self.save_json({"files": files, **summary}, "provenance")


def read_table(path: str | os.PathLike) -> "pandas.DataFrame":  # noqa: F821
    """Read a CSV written by :meth:`Chapter.save_table` (plain CSV; an older file's provenance line is skipped)."""
    import pandas as pd

    return pd.read_csv(path, skiprows=_provenance_lines(path))


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record of a results CSV (from its sidecar) or JSON file."""
    p = Path(path)
    if p.suffix == ".json":
        return json.loads(p.read_text()).get("provenance")
    side = table_provenance_path(p)
    if side.is_file():
        return json.loads(side.read_text()).get("provenance")
    with open(p) as fh:  # tables written before the sidecar carried it in a first comment line
        first = fh.readline()
    return json.loads(first[len(PROVENANCE_PREFIX):]) if first.startswith(PROVENANCE_PREFIX) else None


def unverified_data_html(failed: list[dict[str, Any]]) -> str:
    """The warning box shown on a page whose chapter ran on data that failed verification."""
    import html

    items = "".join(
        f"<li><b>{html.escape(c['dataset'])}</b> at <code>{html.escape(config.display_path(c['path']))}</code>: "
        + html.escape("; ".join(c["problems"][:5]) + (f"; ... and {len(c['problems']) - 5} more"
                                                      if len(c["problems"]) > 5 else "")) + "</li>"
        for c in failed)
    return ('<div class="admonition warning"><p class="admonition-title">Unverified data</p>'
            "<p>This chapter ran with <code>--allow-unverified-data</code> on data that does not match its "
            f"manifest's checksums, so its numbers are not those of the published dataset:</p><ul>{items}</ul></div>")


def _show_warning_box(html_text: str) -> None:
    """Display ``html_text`` when running inside a notebook kernel (the executed page keeps it)."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - IPython is a dependency of the pipeline
        return
    if get_ipython() is not None:
        display(HTML(html_text))


def _provenance_lines(path: str | os.PathLike) -> int:
    with open(path) as fh:
        return 1 if fh.readline().startswith(PROVENANCE_PREFIX) else 0
