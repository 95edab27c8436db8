"""Spread over seeds: mean and standard deviation per group, and same-seed (paired) differences.

A chapter that trains the same comparison under several seeds writes one row per (configuration,
seed) with a ``seed`` column; these helpers turn that into the numbers a reader needs to tell a
difference between methods from training noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def seed_summary(df: pd.DataFrame, by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Mean over the ``seed`` column per group, with ``<col>_sd`` (sample standard deviation) and ``seeds``."""
    g = df.groupby(list(by), sort=False)
    out = g[list(columns)].mean()
    sd = g[list(columns)].std(ddof=1) if df["seed"].nunique() > 1 else out * np.nan
    out = out.join(sd.add_suffix("_sd"))
    out["seeds"] = g["seed"].nunique()
    return out.reset_index()


def paired_differences(df: pd.DataFrame, by: str, reference: Any, columns: Sequence[str]) -> pd.DataFrame:
    """Per value of ``by``: the difference to the ``reference`` row of the same seed, mean and sd over seeds.

    Rows of one seed share their start (initialisation, batch order, often a pre-trained checkpoint), so
    the paired difference removes the part of the seed-to-seed variation that both rows have in common.
    """
    ref = df[df[by] == reference].set_index("seed")[list(columns)]
    rows = []
    for value, g in df[df[by] != reference].groupby(by, sort=False):
        diff = g.set_index("seed")[list(columns)] - ref.loc[g["seed"]].values
        row: dict[str, Any] = {by: value, "seeds": len(diff)}
        for c in columns:
            row[f"{c}_diff"] = float(diff[c].mean())
            row[f"{c}_diff_sd"] = float(diff[c].std(ddof=1)) if len(diff) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
