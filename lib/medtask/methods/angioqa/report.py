"""Study B (AngioQANet) report: the paper's published numbers and the protocol's summary table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from medtask.methods.angioqa.model import PAPER_PARAMETERS
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


def published_vs_measured(pub: dict[str, float], n_params: int, ours: pd.Series, size: int) -> pd.DataFrame:
    """The paper's numbers beside ours (AngioQANet's row of the arms' table); NaN where the paper gives none."""
    nan = float("nan")
    return pd.DataFrame([
        {"quantity": "parameters (M)", "published": pub["parameters"] / 1e6, "measured": n_params / 1e6},
        {"quantity": "quality accuracy", "published": pub["quality_accuracy"], "measured": float(ours["accuracy"])},
        {"quantity": "quality macro-F1", "published": nan, "measured": float(ours["macro_f1"])},
        {"quantity": "vessel Dice", "published": nan, "measured": float(ours["dice"])},
        {"quantity": f"CPU FPS @{size}px", "published": nan, "measured": float(ours["cpu_fps"])}])


def claims(results: pd.DataFrame, n_params: int, lat_ours: dict[str, float], lat_unet: dict[str, float],
           size: int) -> list[str]:
    """Chapter B1's claims from its arms' table (one row per arm) and the latency against the classic U-Net."""
    r = results.set_index("model")

    def val(name: str, col: str) -> float:
        v = r.loc[name, col] if name in r.index else float("nan")
        return float("nan") if pd.isna(v) else float(v)

    best_cls = r[r.role.eq("classification baseline")]["accuracy"].idxmax()
    best_seg = r[r.role.eq("segmentation baseline")]["dice"].idxmax()
    return [
        f"- **Size:** {n_params:,} parameters against the paper's {PAPER_PARAMETERS:,} "
        f"({100 * (n_params - PAPER_PARAMETERS) / PAPER_PARAMETERS:+.2f} %); {val('AngioQANet', 'gflops'):.2f} GFLOPs at {size} px.",
        f"- **Quality:** accuracy {val('AngioQANet', 'accuracy'):.3f}, macro-F1 {val('AngioQANet', 'macro_f1'):.3f}; "
        f"best classification baseline {best_cls} {val(best_cls, 'accuracy'):.3f}; cls-only version of our network "
        f"{val('cls-only (single task)', 'accuracy'):.3f}; without the seg→quality link {val('w/o seg->quality link', 'accuracy'):.3f}.",
        f"- **Vessels:** Dice {val('AngioQANet', 'dice'):.3f} (seg-only version {val('seg-only (single task)', 'dice'):.3f}; "
        f"best segmentation baseline {best_seg} {val(best_seg, 'dice'):.3f}).",
        f"- **Ablations:** without L-GSAM Dice {val('w/o L-GSAM', 'dice'):.3f} / accuracy {val('w/o L-GSAM', 'accuracy'):.3f}; "
        f"without FAM Dice {val('w/o FAM', 'dice'):.3f} / accuracy {val('w/o FAM', 'accuracy'):.3f}.",
        f"- **Speed:** {lat_ours['ms']:.1f} ms per image ({lat_ours['fps']:.1f} FPS) on {lat_ours['threads']} CPU thread(s), "
        f"{lat_ours['ms'] / lat_unet['ms']:.2f}× the time of the classic U-Net ({lat_unet['ms']:.1f} ms); goal ≤ 0.25×.",
    ]
