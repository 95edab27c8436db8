"""Study B (AngioQANet) report: the paper's published numbers and the protocol's summary table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from medtask.methods.angioqa.quality import GRADES
from medtask.reporting.published import published_table

#: the published numbers (``angio_qa.csv``), embedded for a checkout without ``shared/``
PUBLISHED_CSV = """quantity,value,note
parameters,3434200,3.4342e6 parameters in the whole multi-task model
quality_accuracy,0.8182,quality-assessment accuracy on the private DSA test set
"""


def published() -> dict[str, float]:
    """The paper's numbers as ``{quantity: value}`` (``angio_qa.csv``)."""
    table = published_table("angio_qa.csv", PUBLISHED_CSV)
    return {str(q): float(v) for q, v in zip(table["quantity"], table["value"])}


def protocol_summary(train: Sequence[dict], test: Sequence[dict]) -> pd.DataFrame:
    """Counts of versions per split, dataset and grade."""
    rows = [{"split": name, "dataset": s["source"].split("/")[0], "grade": GRADES[s["label"]]}
            for name, split in (("train", train), ("test", test)) for s in split]
    return pd.crosstab([pd.Series([r["split"] for r in rows], name="split"),
                        pd.Series([r["dataset"] for r in rows], name="dataset")],
                       pd.Series([r["grade"] for r in rows], name="grade"))
