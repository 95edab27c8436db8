"""What a reader sees of the zoo: one row per entry, and each entry's validation curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from medtask.zoo.registry import entries
from medtask.zoo.store import read_card
from medtask.zoo.trainer import verify

#: the test metrics shown for an entry, where its card has them (codecs, segmenters, detectors, classifiers)
_SHOWN = ("psnr", "bpp", "dice", "mean_dice", "miou", "ap50", "map", "accuracy", "auc", "psnr_db", "gain_db")


def cards_table(root: Path | None = None) -> pd.DataFrame:
    """Every registered entry: trained or not, steps, wall time, test metrics, plateau verdict, storage."""
    status = verify(root)
    rows = []
    for name, entry in sorted(entries().items()):
        row = {"entry": name, "study": entry.study, "status": status[name] if status[name] == "ok" else
               ("stale" if status[name].startswith("stale") else "not trained"), "steps": entry.steps,
               "start": entry.parent or "scratch"}
        if status[name] == "ok":
            card = read_card(name, root)
            p = card["plateau"]
            row.update({"train_min": round(card["train_seconds"] / 60, 1),
                        "device": card["device"].get("cuda") or card["device"].get("cpu") or "cpu",
                        **{f"test_{k}": card["test"][k] for k in _SHOWN if k in card["test"]},
                        "metric": card["metric"], "last_20pct_gain": p["relative_gain"],
                        "plateau": "yes" if p["flat"] else "no", "dtype": card["storage"]["dtype"],
                        "MB": round(card["bytes"] / 1e6, 2), "commit": (card["git"].get("commit") or "")[:8]})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_curves(names: Sequence[str], root: Path | None = None, extra: Sequence[str] = (),
                columns: int = 5) -> plt.Figure:
    """Validation curves (the entry's plateau metric, and any ``extra`` keys) of trained entries, one panel each,
    ``columns`` panels to a row."""
    cards = [read_card(n, root) for n in names]
    ncols = max(1, min(columns, len(cards)))
    nrows = -(-len(cards) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[len(cards):]:
        ax.set_visible(False)
    for ax, card in zip(axes.flat, cards):
        curve = pd.DataFrame(card["curve"])
        ax.plot(curve["step"], curve[card["metric"]], marker="o", ms=3, label=f"{card['metric']} (val)")
        for key in extra:
            if key in curve:
                ax.plot(curve["step"], curve[key], marker=".", ms=3, label=f"{key} (val)")
        p = card["plateau"]
        if p["from_step"] is not None:
            ax.axvspan(p["from_step"], p["to_step"], color="0.9", zorder=0,
                       label=f"last 20 %: {100 * p['relative_gain']:+.1f} %")
        if not card["higher_is_better"]:
            ax.set_yscale("log")  # a loss falls by orders of magnitude from its random start
        ax.set_title(card["name"], fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def trained_summary(table: pd.DataFrame) -> str:
    """One sentence from :func:`cards_table`: how many entries are trained, at a plateau, and for how long."""
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return (f"None of the {len(table)} zoo entries is trained in this checkout yet; "
                "`medtask zoo train NAME` trains one, `make zoo` all of them.")
    flat = int((ok["plateau"] == "yes").sum())
    worse = list(ok.loc[ok["last_20pct_gain"] < 0, "entry"])
    minutes = float(ok["train_min"].sum())
    missing = ", ".join(table.loc[table["status"] != "ok", "entry"]) or "none"
    return (f"{len(ok)} of {len(table)} zoo entries are trained ({minutes:.0f} minutes of training in all); "
            f"{flat} of them reached a plateau by the rule above, {len(ok) - flat} did not"
            + (f"; the validation metric of {', '.join(worse)} got worse over the last 20 % of the steps, "
               "which meets the rule without being a good place to stop" if worse else "")
            + f". Not trained yet: {missing}.")


#: The size the study set itself for the whole zoo's weights (MB): a clone must stay light.
SIZE_TARGET_MB = 80.0


def size_summary(table: pd.DataFrame, target_mb: float = SIZE_TARGET_MB, largest: int = 3) -> str:
    """One sentence from :func:`cards_table`: what the trained entries' weights take, per study, against
    ``target_mb``, and the ``largest`` entries."""
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return "No entry is trained in this checkout, so the zoo holds no weights yet."
    total = float(ok["MB"].sum())
    per_study = ", ".join(f"study {k} {v:.1f}" for k, v in ok.groupby("study")["MB"].sum().items())
    big = ok.nlargest(largest, "MB")
    verdict = "within" if total <= target_mb else "above"
    return (f"The {len(ok)} trained entries' weights take {total:.1f} MB ({per_study}), {verdict} the "
            f"{target_mb:.0f} MB the study set for the whole zoo. The largest: "
            + ", ".join(f"`{r.entry}` {r.MB:.1f} MB ({r.dtype})" for r in big.itertuples()) + ".")


def starts_note(used: dict[str, dict], init: str) -> str:
    """Markdown for a chapter's page: the zoo entries its networks started from (``used``: name -> card), with
    each card's training and test figures, how its weights are stored, and a warning for any entry short of its
    plateau."""
    if init != "zoo":
        return (f"Every network of this run starts from random weights (`init=\"{init}\"`); "
                "`init=\"zoo\"` starts them from the study's trained zoo entries instead.")
    lines = ["This run starts its networks from the study's zoo (`init=\"zoo\"`); each was trained by this "
             "project and verified against its card's sha256 before loading:", "",
             "| entry | trained | steps | on | test (of the entry's own evaluation) | plateau | stored |",
             "|---|---|---|---|---|---|---|"]
    for name, card in used.items():
        tests = ", ".join(f"{k} {card['test'][k]:.3g}" for k in _SHOWN if k in card["test"])
        data = ", ".join(d["dataset"] for d in card["data"])
        flat = card["plateau"]["flat"]
        lines.append(f"| `{name}` | {card['created'][:10]}, {card['train_seconds'] / 60:.0f} min | {card['steps']} | "
                     f"{data} | {tests} | {'yes' if flat else '**no**'} | {card['storage']['dtype']}, "
                     f"{card['bytes'] / 1e6:.1f} MB |")
    warning = plateau_warning(used)
    return "\n".join(lines + (["", warning] if warning else []))


def plateau_warning(cards: dict[str, dict]) -> str:
    """Markdown naming the entries of ``cards`` (name -> card) whose validation curve did not reach a plateau,
    with what that means for the numbers built on them; empty when every one did."""
    return not_at_plateau_sentence([name for name, card in cards.items() if not card["plateau"]["flat"]])


def not_at_plateau_sentence(short: Sequence[str]) -> str:
    """Markdown naming the zoo entries ``short`` that did not reach a plateau, and what that means for the numbers
    built on them; empty when there are none."""
    if not short:
        return ""
    return (f"**Not at a plateau:** {', '.join(f'`{n}`' for n in short)}; their numbers, and every number "
            "built on them, are lower bounds on what the architecture can do.")
