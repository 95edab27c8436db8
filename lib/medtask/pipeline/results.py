"""A chapter's results: one folder per chapter and profile, every file stamped with provenance."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from medtask import config, provenance

PROVENANCE_PREFIX = "# provenance: "


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
    writes to ``<output>/results/<profile>/<name>/``. Tables are CSV whose first line is a
    ``# provenance: {json}`` comment (read them back with :func:`read_table`); JSON files carry
    a ``provenance`` key; figures carry it in their PNG/SVG metadata.
    """

    def __init__(
        self, name: str, *, profile: str = "cpu", parameters: dict[str, Any] | None = None,
        datasets: list[str] | tuple[str, ...] = (), results_dir: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None,
    ) -> None:
        self.name = name
        self.profile = profile
        self.parameters = dict(parameters or {})
        self.datasets = list(datasets)
        self.data_root = config.data_root(data_root)
        self.dir = Path(results_dir) if results_dir else config.results_dir(name, profile)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._t0 = time.perf_counter()
        self._static: dict[str, Any] | None = None

    # -- provenance --------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """The record stamped on every file; git/packages/data are read once, wall time each call."""
        if self._static is None:
            self._static = provenance.collect(profile=self.profile, parameters=self.parameters,
                                              datasets=self.datasets, data_root=self.data_root)
        rec = dict(self._static)
        rec["chapter"] = self.name
        rec["wall_seconds"] = round(time.perf_counter() - self._t0, 2)
        return rec

    @property
    def elapsed(self) -> float:
        """Seconds since the chapter started."""
        return time.perf_counter() - self._t0

    # -- paths -------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.dir / name

    def checkpoint(self, name: str) -> Path:
        """A checkpoint file for :func:`medtask.engine.fit`: ``<output>/checkpoints/<profile>/<chapter>/``."""
        p = config.output_root() / "checkpoints" / self.profile / self.name / f"{name}.pt"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # -- writers -----------------------------------------------------------------------------
    def save_table(self, df: "pandas.DataFrame", name: str, index: bool = False) -> Path:  # noqa: F821
        """Write ``<name>.csv`` with a provenance comment line first."""
        path = self.dir / f"{name}.csv"
        header = PROVENANCE_PREFIX + json.dumps(self.provenance(), default=str) + "\n"
        _atomic_write_text(path, header + df.to_csv(index=index))
        return SavedPath(path)

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
    """Read a CSV written by :meth:`Chapter.save_table` (the provenance line is skipped)."""
    import pandas as pd

    return pd.read_csv(path, comment=None, skiprows=_provenance_lines(path))


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record of a results CSV or JSON file."""
    p = Path(path)
    if p.suffix == ".json":
        return json.loads(p.read_text()).get("provenance")
    with open(p) as fh:
        first = fh.readline()
    return json.loads(first[len(PROVENANCE_PREFIX):]) if first.startswith(PROVENANCE_PREFIX) else None


def _provenance_lines(path: str | os.PathLike) -> int:
    with open(path) as fh:
        return 1 if fh.readline().startswith(PROVENANCE_PREFIX) else 0
