"""Study B (AngioQANet) report: the paper's published numbers and the protocol's summary table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medtask.config import display_path
from medtask.methods.angioqa.model import PAPER_PARAMETERS, count_parameters
from medtask.methods.angioqa.quality import FAULTS, GRADES, SEVERITY
from medtask.methods.angioqa.study import chosen_arms, source_dataset
from medtask.reporting import findings as fd
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
    rows = [{"split": name, "dataset": source_dataset(s), "grade": GRADES[s["label"]]}
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
        multitask_sentence(results),
        grades_by_dataset_sentence(results),
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


def multitask_effect(dice_gain: float, accuracy_gain: float) -> str:
    """What training both tasks together did, from joint minus seg-only Dice and joint minus cls-only accuracy:
    e.g. ``"cost both tasks (vessel Dice -0.106, quality accuracy -0.084)"``."""
    gains = {"vessel Dice": dice_gain, "quality accuracy": accuracy_gain}
    if any(np.isnan(g) for g in gains.values()):
        return "was not measured (a single-task arm or a score is missing)"
    words = {k: "helped" if g >= 5e-4 else "cost" if g <= -5e-4 else "left" for k, g in gains.items()}
    phrase = {"helped": "helped {}", "cost": "cost {}", "left": "left {} unchanged"}
    if len(set(words.values())) == 1:
        verdict = phrase[words["vessel Dice"]].format("both tasks")
    else:
        order = sorted(words.items(), key=lambda kw: ["helped", "cost", "left"].index(kw[1]))
        verdict = " and ".join(phrase[w].format(f"the {k}") for k, w in order)
    return f"{verdict} (vessel Dice {dice_gain:+.3f}, quality accuracy {accuracy_gain:+.3f})"


def multitask_sentence(results: pd.DataFrame) -> str:
    """The claims' line on multi-task training: AngioQANet against its single-task halves on each test dataset
    (:func:`dataset_table`, in its order) and over all test versions."""
    def effect(scores: pd.DataFrame) -> str:  # one row per model, columns dice and accuracy
        def get(model: str, metric: str) -> float:
            return float(scores[metric].get(model, np.nan))
        return multitask_effect(get("AngioQANet", "dice") - get("seg-only (single task)", "dice"),
                                get("AngioQANet", "accuracy") - get("cls-only (single task)", "accuracy"))

    clauses = [f"on {d} it {effect(rows.set_index('model'))}"
               for d, rows in dataset_table(results).groupby("dataset", sort=False)]
    clauses.append(f"over all test versions it {effect(results.set_index('model'))}")
    return ("- **Multi-task training** (AngioQANet against the same network trained on one task; the paper's premise "
            "is that training both helps both): " + "; ".join(clauses) + ".")


def grades_by_dataset_sentence(results: pd.DataFrame) -> str:
    """The claims' line on the quality grade per test dataset: AngioQANet, the arms that lack its seg->quality link
    or its vessel task, and the best classification baseline there (``by_dataset`` of the arms' rows)."""
    by = dataset_table(results)
    parts = []
    for dataset, rows in by.groupby("dataset", sort=False):
        acc = rows.set_index("model")["accuracy"]
        base = acc[acc.index.isin(results.loc[results.role.eq("classification baseline"), "model"])].dropna()
        shown = [f"AngioQANet {acc.get('AngioQANet', np.nan):.3f}"]
        shown += [f"{label} {acc[arm]:.3f}" for arm, label in (("w/o seg->quality link", "without the link"),
                                                                ("cls-only (single task)", "cls-only"))
                  if arm in acc.index]
        if len(base):
            shown.append(f"best classification baseline {base.idxmax()} {base.max():.3f}")
        parts.append(f"{dataset}: " + ", ".join(shown))
    return "- **Quality accuracy per test dataset:** " + "; ".join(parts) + "."


def findings(results: pd.DataFrame, n_params: int, lat_ours: dict[str, float], lat_unet: dict[str, float]) -> pd.DataFrame:
    """Chapter B1's claims table (:mod:`medtask.reporting.findings`): size, quality accuracy, what multi-task
    training, L-GSAM and FAM add, and the CPU time against U-Net, from the arms' table (one row per arm)."""
    r = results.set_index("model")
    pub = published()

    def val(name: str, col: str) -> float:
        v = r.loc[name, col] if name in r.index and col in r else float("nan")
        return float("nan") if pd.isna(v) else float(v)

    def above(a: str, b: str, col: str) -> bool | None:
        x, y = val(a, col), val(b, col)
        return None if np.isnan(x) or np.isnan(y) else x > y

    def pair(a: str, b: str, col: str) -> str:
        return f"{val(a, col):.3f} vs {val(b, col):.3f}"

    size_diff = 100 * (n_params - pub["parameters"]) / pub["parameters"]
    ratio = lat_ours["ms"] / lat_unet["ms"]
    rows = [
        fd.claim_row("AngioQANet has about 3.43 M parameters", f"{pub['parameters']:,.0f}",
                     f"{n_params:,} ({size_diff:+.2f} %)", fd.verdict_of([abs(size_diff) < 1])),
        fd.claim_row("Quality accuracy of the multi-task model", f"{pub['quality_accuracy']:.4f} (clinicians' grades of "
                     "private DSA)", f"{val('AngioQANet', 'accuracy'):.3f} (our synthetic grades of fundus images)",
                     "not comparable"),
        fd.claim_row("Multi-task training helps both tasks (Dice vs seg-only, accuracy vs cls-only)", "claimed",
                     f"Dice {pair('AngioQANet', 'seg-only (single task)', 'dice')}; accuracy "
                     f"{pair('AngioQANet', 'cls-only (single task)', 'accuracy')}",
                     fd.verdict_of([above("AngioQANet", "seg-only (single task)", "dice"),
                                    above("AngioQANet", "cls-only (single task)", "accuracy")])),
        *[fd.claim_row(f"{part} helps (Dice and accuracy of the full model vs without it)", "claimed",
                       f"Dice {pair('AngioQANet', arm, 'dice')}; accuracy {pair('AngioQANet', arm, 'accuracy')}",
                       fd.verdict_of([above("AngioQANet", arm, "dice"), above("AngioQANet", arm, "accuracy")]))
          for part, arm in (("L-GSAM", "w/o L-GSAM"), ("FAM", "w/o FAM"))],
        fd.claim_row("Lightweight: CPU time at most 0.25× the classic U-Net's (the study's reading of 'real time')",
                     "no timing published", f"{ratio:.2f}× ({lat_ours['ms']:.1f} vs {lat_unet['ms']:.1f} ms per image)",
                     fd.verdict_of([ratio <= 0.25])),
    ]
    return fd.claims_frame(rows)


# -- what chapter B1 shows beside its tables --------------------------------------------------------------
def setup_line(device: Any, results: Any) -> str:
    """The device, torch's CPU threads and the results folder, for the chapter's first output."""
    return f"device: {device} | torch threads: {torch.get_num_threads()} | results: {display_path(results)}"


def severity_table() -> pd.DataFrame:
    """Each fault's mild and severe strength in the quality protocol."""
    return pd.DataFrame([{"fault": f, "mild": SEVERITY[f][1], "severe": SEVERITY[f][2]} for f in FAULTS])


def parameter_sentence(n_params: int) -> str:
    """AngioQANet's parameter count beside the paper's, with the difference in %."""
    return (f"AngioQANet parameters: {n_params:,} (paper: {PAPER_PARAMETERS:,}; "
            f"difference {100 * (n_params - PAPER_PARAMETERS) / PAPER_PARAMETERS:+.3f} %)")


def parameter_parts(model: nn.Module) -> pd.DataFrame:
    """Parameters of AngioQANet's backbone, segmentation decoder and quality head (one column)."""
    parts = {name: count_parameters(m) for name, m in [("backbone (stem + stages)", nn.ModuleList([model.stem, model.stages])),
                                                       ("segmentation decoder (with FAMs)", model.decoder),
                                                       ("quality head", model.quality_head)]}
    return pd.Series(parts, name="parameters").to_frame()


#: columns of the main table, in order (GPU columns are added where measured)
MAIN_COLUMNS = ["model", "role", "source", "params", "gflops", "cpu_ms", "cpu_fps", "dice", "iou", "sensitivity",
                "accuracy", "macro_f1", "train_s_per_step"]
#: columns of the ablation table, in order
ABLATION_COLUMNS = ["model", "params", "gflops", "cpu_ms", "dice", "iou", "sensitivity", "accuracy", "macro_f1"]
#: display format of every column the two tables may show
FORMATS = {"params": "{:,.0f}", "gflops": "{:.2f}", "cpu_ms": "{:.1f}", "cpu_fps": "{:.1f}", "dice": "{:.3f}",
           "iou": "{:.3f}", "sensitivity": "{:.3f}", "accuracy": "{:.3f}", "macro_f1": "{:.3f}",
           "train_s_per_step": "{:.2f}", "gpu_ms": "{:.2f}", "gpu_fps": "{:.1f}"}


def main_table(results: pd.DataFrame) -> pd.DataFrame:
    """AngioQANet and every baseline (no ablations) with cost and quality columns (GPU timing where measured)."""
    cols = MAIN_COLUMNS + [c for c in ("gpu_ms", "gpu_fps") if c in results]
    return results[~results.role.eq("ablation") | results.model.eq("AngioQANet")][cols]


def ablation_table(results: pd.DataFrame) -> pd.DataFrame:
    """AngioQANet and its ablations with cost and quality columns."""
    return results[results.role.isin(["ours", "ablation"])][ABLATION_COLUMNS]


def styled(table: pd.DataFrame) -> Any:
    """``table`` formatted for display (:data:`FORMATS` of its columns; missing values as a dash)."""
    return table.style.format({c: f for c, f in FORMATS.items() if c in table.columns}, na_rep="–")


def arcade_probabilities(arcade: Sequence[dict], quality: torch.Tensor) -> pd.DataFrame:
    """Each ARCADE image's grade probabilities (one column per grade)."""
    return pd.DataFrame({"id": [a["id"] for a in arcade],
                         **{f"p({g})": quality[:, k].numpy() for k, g in enumerate(GRADES)}})


def left_out_note(leave_out: Mapping[str, str] | None) -> str:
    """Markdown for the top of the page: the arms this run leaves out and why (empty when it runs every arm).
    Checks the names first (:func:`~medtask.methods.angioqa.study.chosen_arms`), so a wrong one fails at once."""
    chosen_arms(leave_out)
    if not leave_out:
        return ""
    return ("**Left out of this run** (parameter `leave_out`), so missing from every table and figure below: "
            + "; ".join(f"*{name}*: {why}" for name, why in leave_out.items()) + ".")


def run_summary(profile: str, size: int, versions: int, steps: int, batch_size: int, n_train: int, n_test: int,
                minutes: float, init: str = "scratch") -> str:
    """The claims' first line: profile, scale, where the arms started, training budget, data and wall time."""
    if init == "zoo":
        start = ("every arm from its zoo entry (section 3), scored as trained: no steps here" if steps == 0 else
                 f"every arm from its zoo entry (section 3), then {steps} steps of {batch_size} here")
    else:
        start = f"every arm from random weights, {steps} steps of {batch_size} here"
    return (f"- Ran on profile **{profile}** ({size}×{size} px, {versions} versions per image; {start}); {n_train} "
            f"training and {n_test} test versions; wall time so far {minutes:.1f} min.")


#: the study's targets for AngioQANet on DRIVE's test images under today's quality protocol
TARGETS: dict[str, float] = {"dice": 0.72, "accuracy": 0.80}
TARGET_DATASET = "DRIVE"


def dataset_table(results: pd.DataFrame) -> pd.DataFrame:
    """Every arm's scores on each test dataset separately (one row per arm and dataset; ``by_dataset`` of the rows)."""
    rows = [{"model": r["model"], "dataset": ds, **{k: m.get(k, np.nan) for k in ("dice", "accuracy", "macro_f1")}}
            for _, r in results.iterrows() for ds, m in (r.get("by_dataset") or {}).items()]
    return pd.DataFrame(rows, columns=["model", "dataset", "dice", "accuracy", "macro_f1"])


def targets_table(results: pd.DataFrame) -> pd.DataFrame:
    """The study's targets (:data:`TARGETS`) beside AngioQANet's scores on the :data:`TARGET_DATASET` test versions
    (``target``, ``threshold``, ``ours``, ``met``); no rows when this run has no such test versions."""
    by = dataset_table(results)
    ours = by[(by["model"] == "AngioQANet") & (by["dataset"] == TARGET_DATASET)]
    rows = [{"target": f"AngioQANet {name} on {TARGET_DATASET}'s test images", "threshold": f">= {threshold:.2f}",
             "ours": float(ours[metric].iloc[0]), "met": bool(ours[metric].iloc[0] >= threshold)}
            for metric, threshold in TARGETS.items() if len(ours)
            for name in [{"dice": "vessel Dice", "accuracy": "quality accuracy"}[metric]]]
    return pd.DataFrame(rows, columns=["target", "threshold", "ours", "met"])
