"""What we found: every chapter's claims table, gathered into one page when the book is built.

A chapter writes its checked claims with ``chapter.save_table(df, "claims")``: one row per claim of the
paper, with the columns :data:`COLUMNS` (``claim``, ``paper``: what the paper reports, ``ours``: what
this run measured, with its spread where measured, ``verdict``: one of :data:`VERDICTS`). The method's
``report`` module builds that frame (:func:`claim_row`, :func:`verdict_of`); :func:`write_findings_page`
reads every chapter's table from the results of the profile being built and writes the book's
*What we found* page, so the page holds only numbers the chapters computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medtask.errors import MedtaskError

#: the columns of a chapter's claims table
COLUMNS = ("claim", "paper", "ours", "verdict")
#: what a verdict may say
VERDICTS = ("confirmed", "mixed", "contradicted", "not comparable", "not tested")
#: the file name a chapter saves its claims table under (``chapter.save_table(df, CLAIMS)``)
CLAIMS = "claims"


def verdict_of(holding: Iterable[Any]) -> str:
    """``confirmed`` if every case holds, ``contradicted`` if none does, ``mixed`` otherwise; missing cases
    (NaN, None) are left out, and no case at all is ``not tested``."""
    ok = [bool(v) for v in holding if v is not None and v == v]
    if not ok:
        return "not tested"
    return "confirmed" if all(ok) else "mixed" if any(ok) else "contradicted"


def claim_row(claim: str, paper: str, ours: str, verdict: str) -> dict[str, str]:
    """One row of a claims table (the verdict checked against :data:`VERDICTS`)."""
    if verdict not in VERDICTS:
        raise MedtaskError(f"verdict {verdict!r} of claim {claim!r} is not one of {VERDICTS}")
    return {"claim": claim, "paper": paper, "ours": ours, "verdict": verdict}


def claims_frame(rows: Sequence[dict[str, str]]) -> pd.DataFrame:
    """A claims table from :func:`claim_row` rows, in :data:`COLUMNS` order."""
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


def read_claims(results_dir: str | os.PathLike) -> pd.DataFrame | None:
    """A chapter's claims table (``claims.csv``), or None where the chapter wrote none.

    ``paper`` and ``ours`` are optional (an empty cell where absent); a table of the older form, whose
    ``points_holding`` says at how many rate points a claim holds, shows that count as ``ours``.
    """
    from medtask.pipeline.results import read_table

    path = Path(results_dir) / f"{CLAIMS}.csv"
    if not path.is_file():
        return None
    df = read_table(path)
    missing = {"claim", "verdict"} - set(df.columns)
    if missing:
        raise MedtaskError(f"{path} has no column(s) {sorted(missing)}; a claims table has {list(COLUMNS)}")
    if "ours" not in df and "points_holding" in df:
        df["ours"] = "holds at " + df["points_holding"].astype(str) + " rate points"
    for col in COLUMNS:
        if col not in df:
            df[col] = ""
    return df[list(COLUMNS)].fillna("")


def chapter_label(stem: str) -> str:
    """The short name of a chapter in the findings table: ``a1_compression_segmentation`` → ``A1``."""
    head = stem.split("_", 1)[0]
    return head.upper() if head[:1].isalpha() else stem


def collect(results_root: str | os.PathLike, chapters: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Every chapter's claims under ``results_root`` (``<output>/results/<profile>``), with a ``chapter``
    column, in ``chapters`` order; and the chapters that wrote no claims table."""
    frames, without = [], []
    for stem in chapters:
        df = read_claims(Path(results_root) / stem)
        if df is None:
            without.append(stem)
            continue
        frames.append(df.assign(chapter=stem))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["chapter", *COLUMNS])
    return table[["chapter", *COLUMNS]], without


def _cell(text: Any) -> str:
    """A value as one Markdown table cell (pipes escaped, no line breaks)."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or "–"


def findings_markdown(table: pd.DataFrame, profile: str, without: Sequence[str] = ()) -> str:
    """The *What we found* page: counts of verdicts, then one row per claim with a link to its chapter."""
    lines = ["# What we found", "",
             f"Every claim of the three papers that a chapter checks, with the paper's number, ours and the verdict, "
             f"gathered when this book was built from the chapters' claims tables (profile `{profile}`). "
             "Each chapter explains how its claims were measured and what limits them; follow its link before "
             "quoting a verdict.", ""]
    if profile != "paper":
        lines += ["```{note}", f"On the `{profile}` profile the networks are trained at reduced scale, far from a plateau "
                  "(see the warning at the top of each chapter): a verdict here says what this run measured, not whether "
                  "the paper is right.", "```", ""]
    if len(table):
        counts = table["verdict"].value_counts()
        lines += ["**Verdicts:** " + ", ".join(f"{v} {counts[v]}" for v in VERDICTS if v in counts) + ".", ""]
        lines += ["| chapter | claim | paper | ours | verdict |", "|---|---|---|---|---|"]
        for r in table.itertuples():
            link = f"{{doc}}`{chapter_label(r.chapter)} <generated/{r.chapter}>`"
            lines.append(f"| {link} | {_cell(r.claim)} | {_cell(r.paper)} | {_cell(r.ours)} | **{_cell(r.verdict)}** |")
    else:
        lines += ["No chapter of this build has written a claims table yet."]
    if without:
        lines += ["", "Chapters without a claims table: " + ", ".join(f"{{doc}}`generated/{s}`" for s in without) + "."]
    return "\n".join(lines) + "\n"


def write_findings_page(dest: str | os.PathLike, results_root: str | os.PathLike, chapters: Sequence[str],
                        profile: str, *, skip: Iterable[str] = ("00_data", "01_zoo")) -> Path:
    """Write the *What we found* page to ``dest`` from the claims of ``chapters`` (less ``skip``, which check no
    claim of a paper) under ``results_root``."""
    skipped = set(skip)
    table, without = collect(results_root, [c for c in chapters if c not in skipped])
    path = Path(dest)
    path.write_text(findings_markdown(table, profile, without))
    return path
