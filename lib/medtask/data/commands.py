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

from medtask.data import manifests, sources, user_manifests
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


def list_own_datasets(root: str | os.PathLike | None = None, checksums: bool = False) -> list[dict[str, Any]]:
    """One row (the columns of :func:`list_datasets`) per folder registered with ``medtask data add``."""
    return [user_manifests.status_row(m, root, checksums=checksums) for m in user_manifests.all_user_manifests(root)]


def verify_dataset(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> VerifyReport:
    """Layout and per-file sha256 check of one dataset, registered folder or ``folder:`` path (layout only)."""
    return sources.verify(name, root, checksums=checksums)


def add_dataset(name: str, path: str | os.PathLike, task: str | None = None, classes: str | None = None,
                root: str | os.PathLike | None = None, **options: Any) -> dict[str, Any]:
    """Check a folder and register it as dataset ``name`` (see :func:`medtask.data.user_manifests.add`)."""
    return user_manifests.add(name, path, task=task, classes=classes, root=root, **options)


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
    rows += list_own_datasets(args.data_root, checksums=args.checksums)
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


def _cmd_add(args: argparse.Namespace) -> int:
    try:
        m = add_dataset(args.name, args.path, args.task, args.classes, args.data_root, replace=args.replace,
                        split_rule=args.split_rule, seed=args.seed)
    except MedtaskError as exc:
        print(f"error: {exc}")
        return 1
    counts = ", ".join(f"{s} {n}" for s, n in m["splits"]["counts"].items())
    print(f"{m['name']}: {m['task']} ({m['layout']}), {m['files']} files, classes {', '.join(m['classes'])}; "
          f"splits {counts} ({m['splits']['rule']}).\nfingerprint {m['fingerprint']}; manifest {m['_path']}.\n"
          f"use it with `-p dataset={m['name']}` or medtask.data.load({m['name']!r}, 'train').")
    return 0


#: what ``medtask data --help`` says after the sub-commands: how to run a chapter on your own data
OWN_DATA_HELP = """\
your own data:
  A folder of images in a plain layout (segmentation: images/ + masks/; detection: Pascal VOC or COCO;
  classification: one folder per class or labels.csv) runs in any chapter of its task:
    medtask data add my-polyps /data/my-polyps --task segmentation --classes polyp
    medtask run a1_compression_segmentation -p dataset=my-polyps
  or once, unregistered:  medtask run a1_compression_segmentation -p dataset=folder:/data/my-polyps
  Train on one set and test on another's test split (A1, A3, C1, C2; B1 takes its vessel sets as a list):
    medtask run c2_gradprom_segmentation -p dataset=Kvasir-SEG -p test_dataset=CVC-ClinicDB
    medtask run b1_angio_quality -p 'datasets=[my-vessels]' -p test_dataset=DRIVE
  The page names the data and its fingerprint. Layouts, checks and splits: the book page
  'Run it on your data' (book/own_data.md) and `medtask data add --help`."""


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``list``, ``verify NAME``, ``fetch NAME`` and ``add NAME PATH`` to an argparse sub-parser group."""
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
    p = subparsers.add_parser("add", parents=[common], help="register your own folder of images as dataset NAME",
                              description="Check a folder (layout, pairing, splits, every image decoded once) and "
                              "register it: a manifest and a sha256 list go to <data root>/.medtask/manifests/. "
                              "Layouts - segmentation: images/ + masks/ (same file stems; JPEG masks thresholded at "
                              "128); detection: Annotations/*.xml + JPEGImages/ (Pascal VOC) or annotations.json + "
                              "images/ (COCO); classification: one sub-folder per class (optionally under train/ val/ "
                              "test/) or labels.csv (file,label). Splits: splits.csv (id,split) or splits.json, else "
                              "blocks of frame numbers, else a seeded random 60/20/20 split.")
    p.add_argument("name", help="the name to load it by (letters, digits, . _ -)")
    p.add_argument("path", help="the dataset folder")
    p.add_argument("--task", choices=["segmentation", "detection", "classification"], default=None,
                   help="the task (default: from the folder's layout)")
    p.add_argument("--classes", default=None,
                   help="class names, comma-separated (segmentation/detection: background is put first)")
    p.add_argument("--split-rule", choices=["auto", "file", "blocks", "random"], default="auto",
                   help="how to split when the folder has no split folders or column (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    p.add_argument("--replace", action="store_true", help="point an existing NAME at another folder")
    p.set_defaults(func=_cmd_add)
