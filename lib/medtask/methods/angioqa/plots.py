"""Figures of Study B (AngioQANet) beyond the shared ones of :mod:`medtask.reporting.plots`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn

from medtask.methods.angioqa.quality import GRADES
from medtask.methods.angioqa.study import ARMS, gradcam, predict
from medtask.reporting.plots import (
    confusion_matrix_figure,
    cost_vs_quality,
    gradcam_figure,
    published_vs_measured,
    segmentation_examples,
)


def angio_protocol_examples(sources, versions, n_sources: int = 3, grades=GRADES):
    """Rows of source images followed by their degraded versions (title: grade and faults)."""
    chosen = sources[:n_sources]
    per = max(sum(v["source"] == chosen[0]["id"] for v in versions), 1)
    fig, axes = plt.subplots(len(chosen), per + 1, figsize=(1.9 * (per + 1), 2.0 * len(chosen)), squeeze=False)
    for r, s in enumerate(chosen):
        axes[r, 0].imshow(s["image"][0], cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(f"{s['id']}\nsource", fontsize=7)
        mine = [v for v in versions if v["source"] == s["id"]]
        for c, v in enumerate(mine[:per]):
            axes[r, c + 1].imshow(v["image"][0], cmap="gray", vmin=0, vmax=1)
            axes[r, c + 1].set_title(f"{grades[v['label']]}\n{v['faults'] or '-'}", fontsize=7)
    for a in axes.flat:
        a.axis("off")
    fig.tight_layout()
    return fig


def confusion_figure(ours: pd.Series):
    """AngioQANet's confusion matrix over the quality grades on the test versions."""
    return confusion_matrix_figure(ours["confusion"], list(GRADES), title="AngioQANet, test versions")


def ablation_figure(results: pd.DataFrame):
    """CPU latency against quality accuracy, one point per arm."""
    return cost_vs_quality(results, x="cpu_ms", y="accuracy")


#: the arms whose vessel maps are compared in the example segmentations
SEGMENTATION_ARMS = ["AngioQANet", "U-Net", "Attention U-Net", "SA-UNet", "TransUNet (UNETR)"]


def example_cases(test_set: Sequence[dict]) -> list[int]:
    """The first good test version and the first poor one from another source image."""
    good = next(i for i, s in enumerate(test_set) if s["label"] == 0)
    poor = next(i for i, s in enumerate(test_set) if s["label"] == 2 and s["source"] != test_set[good]["source"])
    return [good, poor]


def segmentation_comparison(models: dict[str, nn.Module], test_set: Sequence[dict], device: Any):
    """Vessel maps of :data:`SEGMENTATION_ARMS` on a good and a poor test version (:func:`example_cases`)."""
    subset = [test_set[i] for i in example_cases(test_set)]
    preds = {n: (predict(models[n], subset, ARMS[n].task, device=device)["seg"][:, 0] >= 0.5).float()
             for n in SEGMENTATION_ARMS}
    return segmentation_examples([s["image"] for s in subset], [s["mask"] for s in subset], preds,
                                 titles=[f"{s['id']} ({GRADES[s['label']]}: {s['faults'] or '-'})" for s in subset],
                                 fovs=[s["fov"].float() for s in subset])


def gradcam_cases(test_set: Sequence[dict]) -> list[int]:
    """The first two good and the first three poor test versions."""
    return ([i for i, s in enumerate(test_set) if s["label"] == 0][:2]
            + [i for i, s in enumerate(test_set) if s["label"] == 2][:3])


def gradcam_examples(net: nn.Module, test_set: Sequence[dict]):
    """Grad-CAM of the quality head (last stage) on :func:`gradcam_cases`, computed on the CPU; titles give the
    true and predicted grade and the faults. The network is returned to its device."""
    device = next(net.parameters()).device
    picks = gradcam_cases(test_set)
    imgs = torch.stack([test_set[i]["image"] for i in picks])
    net.cpu()
    cams = gradcam(net, net.stages[-1], imgs)
    pq = predict(net, [test_set[i] for i in picks], "both")["quality"].argmax(1)
    titles = [f"true {GRADES[test_set[i]['label']]} / pred {GRADES[int(p)]}\n{test_set[i]['faults'] or '-'}"
              for i, p in zip(picks, pq)]
    fig = gradcam_figure(imgs, cams, titles)
    net.to(device)
    return fig


def published_figure(side: pd.DataFrame):
    """The published numbers beside ours, as bars (:func:`medtask.methods.angioqa.report.published_vs_measured`)."""
    return published_vs_measured(side.to_dict("records"))


def arcade_figure(arcade: Sequence[dict], out: dict[str, torch.Tensor]):
    """ARCADE angiograms with AngioQANet's vessel map and its most likely grade (with its probability)."""
    preds = {"AngioQANet vessels": (out["seg"][:, 0] >= 0.5).float()}
    return segmentation_examples([a["image"] for a in arcade], [a["image"][0] for a in arcade], preds,
                                 titles=[f"{a['id']}: {GRADES[int(p.argmax())]} ({float(p.max()):.2f})"
                                         for a, p in zip(arcade, out["quality"])])


def zoo_curves(cards: dict[str, dict[str, Any]]):
    """The validation curves of the zoo entries the arms started from, one panel per task: each entry's plateau
    metric (multi-task: the mean of vessel Dice and quality accuracy; segmentation: Dice; grading: accuracy)."""
    titles = {"dice_accuracy": "multi-task: (Dice + accuracy) / 2", "dice": "vessel Dice", "accuracy": "quality accuracy"}
    metrics = [m for m in titles if any(c["metric"] == m for c in cards.values())]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4.6 * max(len(metrics), 1), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, card in cards.items():
            if card["metric"] == metric:
                curve = pd.DataFrame(card["curve"])
                ax.plot(curve["step"], curve[metric], marker="o", ms=2.5, lw=1.2, label=name.removesuffix("-drive"))
        ax.set_title(titles[metric], fontsize=10)
        ax.set_xlabel("zoo training step")
        ax.set_ylabel("validation")
        ax.legend(fontsize=6.5)
    fig.tight_layout()
    return fig
