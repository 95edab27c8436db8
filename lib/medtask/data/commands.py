"""The ``medtask data`` command group: pure functions, plus :func:`register` for argparse.

``cli.py`` does::

    data = sub.add_parser("data", help="datasets: list, verify, fetch")
    medtask.data.commands.register(data.add_subparsers(dest="data_command", required=True))
    ...
    args = parser.parse_args(argv); return args.func(args)

Each sub-command stores ``func(args) -> int`` (the exit status) with ``set_defaults``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from medtask.data import manifests
from medtask.data.manifests import VerifyReport
from medtask.errors import MedtaskError


def list_datasets(root: str | os.PathLike | None = None, checksums: bool = False) -> list[dict[str, Any]]:
    """One row per manifest: name, folder, tasks, studies, present, copy, complete, verified, n_files, licence."""
    rows = []
    for m in manifests.all_manifests():
        st = manifests.status(m["name"], root, checksums=checksums)
        rows.append({"name": m["name"], "folder": st["copy"] or st["folder"], "tasks": ", ".join(m["tasks"]),
                     "studies": ", ".join(sorted({s["study"] for s in m["studies"]})), "present": st["present"],
                     "complete": st["complete"], "verified": st["verified"], "n_files": st["n_files"],
                     "licence": m["licence"]["name"]})
    return rows


def verify_dataset(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> VerifyReport:
    """Layout and per-file sha256 check of one dataset (see :func:`medtask.data.manifests.verify`)."""
    return manifests.verify(name, root, checksums=checksums)


def fetch_dataset(name: str, root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Download, verify and install one dataset (see :func:`medtask.data.fetch.fetch`)."""
    from medtask.data.fetch import fetch

    return fetch(name, root, force=force)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain fixed-width text table."""
    cells = [[str("" if r.get(c) is None else ("yes" if r.get(c) is True else "no" if r.get(c) is False else r.get(c)))
              for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) if cells else len(c) for k, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _cmd_list(args: argparse.Namespace) -> int:
    rows = list_datasets(args.data_root, checksums=args.checksums)
    print(format_table(rows, ["name", "folder", "tasks", "studies", "present", "complete", "verified", "n_files",
                              "licence"]))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        rep = verify_dataset(args.name, args.data_root, checksums=not args.no_checksums)
    except MedtaskError as exc:
        print(f"error: {exc}")
        return 2
    print(rep.summary())
    if not rep.present:
        print(manifests.how_to_get(manifests.load_manifest(args.name)))
    return 0 if rep.ok else 1


def _cmd_fetch(args: argparse.Namespace) -> int:
    try:
        path = fetch_dataset(args.name, args.data_root, force=args.force)
    except MedtaskError as exc:  # every fetch failure is a message, never a traceback
        print(f"error: {exc}")
        return 1
    print(f"{args.name}: ready at {path}")
    return 0


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``list``, ``verify NAME`` and ``fetch NAME`` to an argparse sub-parser group."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", default=None, help="folder holding the datasets (default: $MEDTASK_DATA)")
    p = subparsers.add_parser("list", parents=[common], help="every dataset: present? verified? licence")
    p.add_argument("--checksums", action="store_true", help="also check every file's sha256 (slower)")
    p.set_defaults(func=_cmd_list)
    p = subparsers.add_parser("verify", parents=[common], help="check a dataset's layout and per-file sha256")
    p.add_argument("name")
    p.add_argument("--no-checksums", action="store_true", help="check the layout only")
    p.set_defaults(func=_cmd_verify)
    p = subparsers.add_parser("fetch", parents=[common], help="download, verify and install a dataset")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="replace an existing folder that fails verification")
    p.set_defaults(func=_cmd_fetch)
