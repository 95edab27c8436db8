"""``medtask zoo list | train NAME... | verify | shrink NAME...``: the study's trained base networks."""

from __future__ import annotations

import argparse

from medtask.engine import distributed, launch
from medtask.zoo.registry import entries
from medtask.zoo.store import ZooError, card_path, read_card
from medtask.zoo.trainer import runs_dir, shrink, train, verify


def _fmt_metrics(card: dict) -> str:
    test = card.get("test", {})
    keys = [card["metric"]] + [k for k in ("psnr", "bpp", "dice", "mean_dice", "miou", "accuracy", "gain_db")
                               if k in test and k != card["metric"]]
    return ", ".join(f"{k}={test[k]:.4g}" for k in keys if k in test)


def _cmd_list(args: argparse.Namespace) -> int:
    status = verify()
    width = max((len(n) for n in status), default=22)
    for name, entry in sorted(entries().items()):
        line = f"{name:{width}s} study {entry.study}  {entry.steps:>6d} steps"
        if status[name] == "ok":
            card = read_card(name)
            flat = card["plateau"]["flat"]
            line += (f"  trained {card['train_seconds'] / 60:.0f} min, test {_fmt_metrics(card)}; "
                     f"{'plateau reached' if flat else 'NOT at a plateau'} ({card['storage']['dtype']}, "
                     f"{card['bytes'] / 1e6:.1f} MB)")
        elif status[name].startswith("stale"):
            line += "  " + status[name]
        else:
            line += "  not in the zoo (medtask zoo train " + name + ")"
        print(line)
        if args.verbose:
            print(f"    {entry.description}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    if args.nproc and not distributed.launched():  # start this very command under torchrun
        return launch.relaunch_cli(getattr(args, "argv", ["zoo", "train", *args.names]), args.nproc, args.nnodes,
                                   args.rdzv_endpoint, args.rdzv_id)
    known = entries()
    names = sorted(known, key=lambda n: (known[n].parent is not None, n)) if args.all else args.names
    if not names:
        raise ZooError("name the entries to train (`medtask zoo list`), or pass --all")
    for name in names:
        card = train(name, device=args.device, threads=args.threads, progress=not args.no_progress)
        if not card:  # a rank other than 0 under torchrun: rank 0 reports
            continue
        print(f"{name}: {_fmt_metrics(card)}; written {card_path(name)} (run state in {runs_dir()})")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    status = verify()
    bad = {k: v for k, v in status.items() if v != "ok"}
    for name, state in sorted(status.items()):
        print(f"{name}: {state}")
    if args.strict and bad:
        raise ZooError(f"{len(bad)} zoo entr{'y is' if len(bad) == 1 else 'ies are'} missing, corrupt or stale: "
                       + ", ".join(sorted(bad)))
    return 0


def _cmd_shrink(args: argparse.Namespace) -> int:
    for name in args.names:
        before = read_card(name)
        card = shrink(name, device=args.device)
        if card["sha256"] == before["sha256"]:
            print(f"{name}: stays {card['storage']['dtype']} ({card['bytes'] / 1e6:.1f} MB): no smaller format keeps "
                  f"its test {card['metric']} within {card['storage']['tolerance']:.1%}")
        else:
            print(f"{name}: {before['storage']['dtype']} {before['bytes'] / 1e6:.1f} MB -> {card['storage']['dtype']} "
                  f"{card['bytes'] / 1e6:.1f} MB, test {_fmt_metrics(card)} (new sha256: chapters starting from it "
                  "recompute what they built on it)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``zoo`` sub-commands to ``medtask``'s parser."""
    ls = sub.add_parser("list", help="the entries, whether each is trained, its test metrics and plateau")
    ls.add_argument("-v", "--verbose", action="store_true", help="also print each entry's description")
    ls.set_defaults(func=_cmd_list)
    tr = sub.add_parser("train", help="train entries (resumable; run state outside git, weights + card in zoo/)")
    tr.add_argument("names", nargs="*", metavar="NAME")
    tr.add_argument("--all", action="store_true", help="train every entry (parents before children)")
    tr.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    tr.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar (for log files)")
    launch.add_launch_arguments(tr)
    tr.set_defaults(func=_cmd_train)
    ve = sub.add_parser("verify", help="check every entry's weights against its card's sha256 and recipe")
    ve.add_argument("--strict", action="store_true", help="exit with an error if any entry is missing or stale")
    ve.set_defaults(func=_cmd_verify)
    sh = sub.add_parser("shrink", help="store trained entries again in the smallest format that keeps their test "
                                       "metric (int8 < float16 < float32)")
    sh.add_argument("names", nargs="+", metavar="NAME")
    sh.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    sh.set_defaults(func=_cmd_shrink)
