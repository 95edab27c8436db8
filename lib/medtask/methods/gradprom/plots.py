"""Figures of Study C (GradProm): enhancement examples, CAM grids, gradient-cosine diagnostics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from medtask.engine.predict import predict
from medtask.methods.gradprom.study import cam_panels
from medtask.metrics.image import psnr


def _enh_show(ax: Any, img: Any, title: str | None = None) -> None:
    img = img.detach().cpu().clamp(0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def plot_enhancement_examples(test: Any, enhanced: dict[str, Any], indices: Sequence[int],
                              title: str = ""):
    """Study C: rows = cases; columns = clean, degraded (bicubic for SR), then each strategy's output with its PSNR.

    ``test`` is a :class:`medtask.methods.gradprom.study.DegradedTestSet`.
    """


    cols = ["clean", "degraded"] + list(enhanced)
    fig, axes = plt.subplots(len(indices), len(cols), figsize=(1.7 * len(cols), 1.8 * len(indices)), squeeze=False)
    base = test.bicubic()
    for r, i in enumerate(indices):
        y = test.clean[i:i + 1]
        imgs = [test.clean[i], base[i]] + [e[i] for e in enhanced.values()]
        for c, (name, img) in enumerate(zip(cols, imgs)):
            label = name if c == 0 else f"{name}\n{float(psnr(img[None], y)[0]):.2f} dB"
            _enh_show(axes[r, c], img, label if r == 0 or c > 0 else None)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_cams(rows: dict[str, tuple[Any, np.ndarray, np.ndarray]], case_ids: Sequence[str] | None = None):
    """Study C: Grad-CAM overlays: one row per (strategy, input) pair, one column per case.

    ``rows[name] = (images, maps, p)``; each panel is labelled with ``p``, the judging network's probability
    of the case's class. Grad-CAM keeps only evidence *for* that class, so a network nearly sure of the other
    class gives a blank map: the label tells a blank map from a broken one.
    """
    names = list(rows)
    n = len(next(iter(rows.values()))[0])
    fig, axes = plt.subplots(len(names), n, figsize=(1.7 * n, 1.7 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        images, maps, probs = rows[name]
        for c in range(n):
            _enh_show(axes[r, c], images[c])
            axes[r, c].imshow(maps[c], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            axes[r, c].text(0.03, 0.97, f"p={float(probs[c]):.2f}", transform=axes[r, c].transAxes, fontsize=6,
                            va="top", color="white", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
            if c == 0:
                axes[r, c].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            if r == 0 and case_ids is not None:
                axes[r, c].set_title(str(case_ids[c])[-18:], fontsize=6)
    fig.tight_layout()
    return fig


def plot_cosine_diagnostics(log: Any):
    """Study C: left: histogram of cos(G_IP, G_VR) per strategy; right: its running mean over training steps."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, df in log.groupby("strategy", sort=False):
        a.hist(df["cos"], bins=40, range=(-1, 1), histtype="step", density=True, label=name)
        g = df.groupby("step")["cos"].mean()
        b.plot(g.index, g.rolling(max(1, len(g) // 15), min_periods=1).mean(), label=name)
    a.axvline(0, color="k", lw=0.8)
    b.axhline(0, color="k", lw=0.8)
    a.set_xlabel("cos(G_IP, G_VR)")
    a.set_ylabel("density")
    b.set_xlabel("training step")
    b.set_ylabel("running mean of cos")
    a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_metric_by_sigma(df: Any, metric: str = "psnr_db", strategies: Sequence[str] | None = None):
    """Study C: one panel per setting: ``metric`` against σ, one line per strategy."""
    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        sub = df[(df["setting"] == setting) & np.isfinite(df[metric].astype(float))]
        for name, g in sub.groupby("strategy", sort=False):
            if strategies is None or name in strategies:
                ax.plot(g["sigma"], g[metric], marker="o", label=name)
        ax.set_title(setting)
        ax.set_xlabel("σ")
        ax.set_ylabel(metric)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_segmentations(test: Any, enhanced: dict[str, Any], recognisers: dict[str, dict[str, Any]],
                       clean_recognisers: dict[str, Any], cases: Sequence[int], device: Any = "cpu"):
    """Study C: each strategy's output (columns) for ``cases`` (rows) with its own segmenter's prediction
    (clean-trained segmenter for Benchmark-i) and the reference contour."""
    names = list(enhanced)
    fig, axes = plt.subplots(len(cases), len(names), figsize=(2 * len(names), 2 * len(cases)), squeeze=False)
    for c, name in enumerate(names):
        net = recognisers.get(name, clean_recognisers)["segmentation"]
        pred = torch.cat(predict(net, enhanced[name][list(cases)], device=device, output=lambda out: out.argmax(1).cpu()))
        for r, i in enumerate(cases):
            ax = axes[r, c]
            ax.imshow(enhanced[name][i].permute(1, 2, 0).numpy())
            ax.imshow(np.ma.masked_where(pred[r].numpy() == 0, pred[r].numpy()), cmap="autumn", alpha=0.45)
            ax.contour(test.masks[i].numpy(), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
    fig.tight_layout()
    return fig


def sigma_figures(table: Any, strategies: Sequence[str], task_metric: str) -> dict[str, Any]:
    """PSNR over σ (the strategies and the degraded input) and ``task_metric`` over σ (Benchmark-iii added),
    as ``{"psnr_by_sigma": ..., "<task_metric>_by_sigma": ...}``."""
    psnr_rows = table[table["strategy"].isin(list(strategies) + ["degraded input"])]
    task_rows = table[table["strategy"].isin(list(strategies) + ["degraded input", "benchmark-iii"])]
    return {"psnr_by_sigma": plot_metric_by_sigma(psnr_rows, "psnr_db"),
            f"{task_metric}_by_sigma": plot_metric_by_sigma(task_rows, task_metric)}


def cosine_figures(log: Any, unsupervised: bool = False) -> dict[str, Any]:
    """Gradient-cosine diagnostics of the supervised runs (and the unsupervised ones where asked), by name."""
    settings = ["supervised", "unsupervised"] if unsupervised else ["supervised"]
    return {f"cosine_diagnostics_{s}": plot_cosine_diagnostics(log[log["setting"] == s]) for s in settings}


def cam_cases(labels: torch.Tensor, n: int) -> list[int]:
    """``n`` test cases for Grad-CAM: the first ``n // 2`` positives (label 1), then the first negatives (label 0)."""
    return ([int(i) for i in torch.nonzero(labels == 1).flatten()[:n // 2]]
            + [int(i) for i in torch.nonzero(labels == 0).flatten()[:n - n // 2]])


def diagnosis_figures(runs: dict, sigmas: Sequence[float], clean_classifier: Any, strategies: Sequence[str],
                      n_cases: int) -> dict[str, Any]:
    """Chapter C1's case figures of the supervised run at the middle σ: enhanced examples and Grad-CAM rows for
    :func:`cam_cases` (``runs``: the grid's runs keyed ``(sigma, setting)``)."""
    sigma = sigmas[len(sigmas) // 2]
    res = runs[(sigma, "supervised")]
    cases = cam_cases(res.test.labels, n_cases)
    examples = plot_enhancement_examples(res.test, res.enhanced, cases, title=f"COVID-CT test, Gaussian σ={sigma}, supervised")
    rows = cam_panels(res, clean_classifier, strategies, cases, res.test.labels[torch.tensor(cases)].tolist())
    return {"examples": examples, "cams": plot_cams(rows, [res.test.ids[i] for i in cases])}


def largest_polyps(masks: torch.Tensor, n: int) -> list[int]:
    """The ``n`` test cases with the largest share of polyp pixels, largest first."""
    order = torch.argsort(masks.flatten(1).float().mean(1), descending=True)
    return [int(i) for i in order[:n]]


def polyp_cams(cam_rows: dict[str, Any], test: Any, n: int = 4):
    """Grad-CAM rows of :func:`medtask.methods.gradprom.study.cam_focus` titled by the first ``n`` positive cases."""
    pos = torch.nonzero(test.labels == 1).flatten()
    return plot_cams(cam_rows, [test.ids[int(i)] for i in pos[:n]])


def two_auxiliaries_cosine(log: Any):
    """Gradient-cosine diagnostics of the two-auxiliaries runs, one line per experiment and strategy."""
    return plot_cosine_diagnostics(log[log["experiment"].str.startswith("auxiliary")].assign(
        strategy=lambda d: d["experiment"] + " · " + d["strategy"]))


def setting_examples(res: Any, title: str, cases: Sequence[int] = (0, 1)):
    """:func:`plot_enhancement_examples` of one run (a ``SettingResult``) on test ``cases``."""
    return plot_enhancement_examples(res.test, res.enhanced, list(cases), title=title)
