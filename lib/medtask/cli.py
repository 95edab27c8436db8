"""The ``medtask`` command: data management, running chapters, building the book."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from medtask.errors import MedtaskError


def _cmd_run(args: argparse.Namespace) -> int:
    from medtask.pipeline.profiles import parse_overrides
    from medtask.pipeline.runner import error_cells, run_notebook

    from medtask.engine.launch import NPROC_ENV

    before = os.environ.get(NPROC_ENV)
    if args.nproc:  # the chapter's kernel hands its trainings to N torchrun workers (fit does)
        os.environ[NPROC_ENV] = str(args.nproc)
    try:
        rec = run_notebook(args.notebook, args.profile, parse_overrides(args.param or []), data_root=args.data_root,
                           force=args.force, allow_unverified_data=args.allow_unverified_data)
    finally:
        if before is None:
            os.environ.pop(NPROC_ENV, None)
        else:
            os.environ[NPROC_ENV] = before
    state = "cached (nothing changed)" if rec.cached else f"executed in {rec.seconds:.1f} s"
    print(f"{rec.chapter} [{rec.profile}]: {state}\n  notebook: {rec.executed}\n  results:  {rec.results_dir}")
    errs = error_cells(rec.executed)
    if errs:
        print("error cells:\n  " + "\n  ".join(errs), file=sys.stderr)
        return 1
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from medtask.pipeline.book import build_book

    html, _ = build_book(args.profile, only=args.only, run=not (args.no_run or args.edition), force=args.force,
                         data_root=args.data_root, jobs=args.jobs, allow_unverified_data=args.allow_unverified_data,
                         edition=True if args.edition else None)
    print(f"book built: {html / 'index.html'}")
    return 0


def _cmd_edition_save(args: argparse.Namespace) -> int:
    from medtask import config
    from medtask.pipeline.edition import edition_root, save_edition, summary

    info = save_edition(args.profile, only=args.only or None)
    print(summary(info))
    where = config.display_path(edition_root())
    print(f"written to {where}/; review it, then commit it (git add {where})")
    return 0


def _cmd_edition_shrink(args: argparse.Namespace) -> int:
    from medtask import config
    from medtask.pipeline.edition import edition_root, shrink_saved, summary

    print(summary(shrink_saved()))
    where = config.display_path(edition_root())
    print(f"shrunk in {where}/; review it, then commit it (git add {where})")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from medtask.pipeline.profiles import PROFILES, chapters, load_profile, parameter_cell, resolve_notebook

    stems = [args.notebook] if args.notebook else chapters()
    for stem in stems:
        nb = resolve_notebook(stem)
        print(f"{nb.stem}:")
        print("  parameters cell: " + ", ".join(f"{k}={v}" for k, v in parameter_cell(nb).items()))
        for prof in PROFILES:
            print(f"  {prof}: {json.dumps(load_profile(nb.stem, prof))}")
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from medtask.pipeline.notebooks import sync_text_sources
    from medtask.pipeline.profiles import notebooks_dir

    written = sync_text_sources(notebooks_dir())
    print("folded into notebooks/<stem>.md (no outputs): " + (", ".join(written) if written else "nothing (all clean)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="medtask", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from medtask.data import commands as data_commands

    data = sub.add_parser("data", help="list, verify, fetch datasets; add your own folder",
                          epilog=data_commands.OWN_DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)

    data_commands.register(data.add_subparsers(dest="data_command", required=True))

    zoo = sub.add_parser("zoo", help="the study's trained base networks: list, train, verify, shrink")
    from medtask.zoo import commands as zoo_commands

    zoo_commands.register(zoo.add_subparsers(dest="zoo_command", required=True))

    run = sub.add_parser("run", help="execute one chapter with papermill (cached)")
    run.add_argument("notebook", help="chapter stem (e.g. 00_data) or notebook path")
    run.add_argument("--profile", default="cpu", help="smoke | cpu | paper (default: cpu)")
    run.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                     help="override a parameter (value parsed as YAML); repeatable")
    run.add_argument("--data-root", default=None, help="dataset folder (default: $MEDTASK_DATA or ./data)")
    run.add_argument("--force", action="store_true", help="execute even if the cache says nothing changed")
    run.add_argument("--nproc", type=int, default=None, metavar="N",
                     help="train the chapter's networks data-parallel on N torchrun processes (one per GPU; gloo on "
                          "CPU); the kernel itself stays one process")
    run.add_argument("--allow-unverified-data", action="store_true",
                     help="run even if the chapter's data fails its checksums (the page says so in a warning box)")
    run.set_defaults(func=_cmd_run)

    book = sub.add_parser("book", help="run every chapter (cached) and build the HTML book into _build/html")
    book.add_argument("--profile", default="cpu", help="smoke | cpu | paper (default: cpu)")
    book.add_argument("--only", nargs="+", metavar="CHAPTER", help="run and build only these chapters")
    book.add_argument("--no-run", action="store_true",
                      help="build from the chapters already executed, or from the published edition (edition/) "
                           "when some chapter is not executed on the profile or its notebook holds an error")
    book.add_argument("--edition", action="store_true",
                      help="build from the published edition in edition/ (runs nothing)")
    book.add_argument("--data-root", default=None, help="dataset folder (default: $MEDTASK_DATA or ./data)")
    book.add_argument("--force", action="store_true", help="execute every chapter again")
    book.add_argument("--allow-unverified-data", action="store_true",
                      help="run chapters even if their data fails its checksums (each page says so in a warning box)")
    book.add_argument("--jobs", type=int, default=1, metavar="N",
                      help="chapters executed at once, each in its own kernel (default 1; `make study` uses 2)")
    book.set_defaults(func=_cmd_book)

    edition = sub.add_parser("edition", help="the published edition: executed chapters kept in edition/")
    edition_sub = edition.add_subparsers(dest="edition_command", required=True)
    save = edition_sub.add_parser(
        "save", help="copy every chapter executed on the profile (and its tables) into edition/, shrunk",
        description="Copy the chapters executed in the output root, their tables and run records into edition/ with "
                    "EDITION.json; PNG outputs are re-encoded and downscaled, widget state dropped. Refuses a chapter "
                    "that is missing, ran on another profile or failed, and an edition above 25 MB.")
    save.add_argument("--profile", default="cpu", help="smoke | cpu | paper (default: cpu)")
    save.add_argument("--only", nargs="+", metavar="CHAPTER",
                      help="replace just these chapters in the saved edition of the profile (the others keep theirs)")
    save.set_defaults(func=_cmd_edition_save)
    shrink = edition_sub.add_parser(
        "shrink", help="shrink the saved edition's notebooks again (outputs re-encoded as `save` does today)",
        description="Apply today's output shrinking (PNG re-encoded and downscaled, large photographic PNGs as JPEG) "
                    "to every notebook of the saved edition and update EDITION.json's sizes; nothing is re-executed.")
    shrink.set_defaults(func=_cmd_edition_shrink)

    prof = sub.add_parser("profiles", help="show each chapter's parameters and profiles")
    prof.add_argument("notebook", nargs="?", help="one chapter (default: all)")
    prof.set_defaults(func=_cmd_profiles)

    clean = sub.add_parser("clean-notebooks", help="fold notebooks/*.ipynb saved by a tool back into the text chapters")
    clean.set_defaults(func=_cmd_clean)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medtask`` command."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --nproc relaunches under torchrun
    try:
        return int(args.func(args) or 0)
    except MedtaskError as exc:
        print(f"medtask: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
