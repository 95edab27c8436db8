"""Study C (GradProm) report: gradient-cosine diagnostics, the step-cost sentence, published numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from medtask.engine import TrainResult
from medtask.reporting.published import published_table


def describe_step_cost(cost: pd.DataFrame, target: float = 1.3) -> str:
    """One Markdown sentence: GradProm's step cost relative to Joint, its quartiles, and the target."""
    row = cost.set_index("variant").loc["gradprom"]
    verdict = "within" if row["ratio_to_joint"] <= target else "above"
    return (f"One GradProm step costs **{row['ratio_to_joint']:.2f}×** one Joint step here (quartiles over rounds "
            f"{row['ratio_q1']:.2f}–{row['ratio_q3']:.2f}; {verdict} the {target}× target).")


def cosine_log(histories: dict[str, TrainResult], **labels: Any) -> pd.DataFrame:
    """Long table of the per-step cosine and gate of every task-driven strategy (for plots)."""
    frames = []
    for name, res in histories.items():
        df = res.frame()
        if "cos" not in df:
            continue
        frames.append(df[["step", "cos", "gate", "conflict", "dropped", "loss_ip", "loss_vr"]].assign(strategy=name, **labels))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cosine_summary(log: pd.DataFrame, by: Sequence[str] = ("strategy",)) -> pd.DataFrame:
    """Per strategy: mean / quartiles of cos(G_IP, G_VR), fraction of conflicting steps and of dropped G_VR."""
    if log.empty:
        return log
    g = log.groupby(list(by))
    out = g["cos"].describe()[["count", "mean", "25%", "50%", "75%"]].rename(
        columns={"count": "steps", "mean": "cos_mean", "25%": "cos_q25", "50%": "cos_median", "75%": "cos_q75"})
    out["conflict_frac"] = g["conflict"].mean()
    out["dropped_frac"] = g["dropped"].mean()
    return out.reset_index()


PUBLISHED_CSV = """method,backbone,sigma,psnr_db,ssim,note
Frozen-params,,0.1,32.152,0.906,Table 1/2 of the paper
GradProm,,0.1,33.383,0.915,Table 1/2 of the paper
ESTR,ResNet-101,0.1,33.723,,Table 5
ESTR,ResNet-101,0.2,25.925,,Table 5
ESTR,ResNet-101,0.3,20.163,,Table 5
ADAP,,0.1,34.858,,Table 5
ADAP,,0.2,24.926,,Table 5
ADAP,,0.3,20.373,,Table 5
GradProm,ResNet-101,0.1,36.173,,Table 5
GradProm,ResNet-101,0.2,28.024,,Table 5
GradProm,ResNet-101,0.3,23.703,,Table 5
"""


def published() -> pd.DataFrame:
    """GradProm's published ISIC 2018 numbers (Zhang & Cheng 2025), with their ``source``."""
    return published_table("gradprom_isic2018.csv", PUBLISHED_CSV)
