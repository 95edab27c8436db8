"""Tables that put measured values beside published ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def side_by_side(ours: pd.DataFrame, pub: pd.DataFrame, on: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Our columns beside the published ones (suffix ``_pub``), joined on ``on``."""
    keep = [c for c in columns if c in pub.columns]
    p = pub[list(on) + keep].rename(columns={c: f"{c}_pub" for c in keep})
    out = ours.merge(p, on=list(on), how="left")
    order = list(on)
    for c in columns:
        order += [c] + ([f"{c}_pub"] if c in keep else [])
    return out[[c for c in order if c in out.columns]]



def show_saved(chapter: Any, table: pd.DataFrame, name: str, digits: int | None = None) -> pd.DataFrame:
    """Save ``table`` as the chapter's result ``name`` and return it for display, rounded to ``digits`` where given."""
    chapter.save_table(table, name)
    return table if digits is None else table.round(digits)
