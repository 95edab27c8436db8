"""Figures of Study A (MVMICNet): rate–quality curves and the qualitative comparison of Fig. 4."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from medtask.methods.mvmicnet.codecs.classic import HEVC_NAME
from medtask.methods.mvmicnet.study import fig4_panels
from medtask.reporting.plots import overlay_mask, show_image


#: published methods drawn in the colour of the run method that stands for them (BPG is HEVC intra coding)
PUBLISHED_AS = {"BPG": HEVC_NAME}


def method_colours(methods, published_methods=()) -> dict[str, Any]:
    """One tab10 colour per method: ours in order, then each published method, in its stand-in's colour
    (:data:`PUBLISHED_AS`), in the colour of the run method of the same name, or in a colour of its own."""
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(dict.fromkeys(methods))}
    n = len(colours)
    for m in dict.fromkeys(published_methods):
        if m not in colours:
            stand_in = PUBLISHED_AS.get(m)
            if stand_in in colours:
                colours[m] = colours[stand_in]
            else:
                colours[m], n = plt.cm.tab10(n % 10), n + 1
    return colours


def rate_curves(df, metrics, *, x: str = "bpp", published=None, labels=None, titles=None):
    """Rate–quality curves (one panel per metric in ``metrics``), one line per ``method``.

    ``df``: our results (columns ``method``, ``x`` and each metric); ``published``: optional table
    with the same columns, drawn dashed with open markers for comparison (values in the paper's units),
    each in the colour of the method we ran for it (:func:`method_colours`).
    """
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    methods = list(dict.fromkeys(df["method"]))
    colours = method_colours(methods, published["method"] if published is not None else ())
    for ax, metric in zip(axes[0], metrics):
        for m in methods:
            g = df[df["method"] == m].dropna(subset=[x, metric]).sort_values(x)
            if len(g):
                ax.plot(g[x], g[metric], "o-", color=colours[m], label=m, ms=4)
        if published is not None and metric in published.columns:
            for m, g in published.groupby("method", sort=False):
                g = g.dropna(subset=[x, metric]).sort_values(x)
                if len(g):
                    ax.plot(g[x], g[metric], "s--", mfc="none", ms=4, lw=0.8,
                            color=colours[m], label=f"{m} (published)")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel((labels or {}).get(metric, metric))
        if titles:
            ax.set_title(titles.get(metric, ""), fontsize=9)
        ax.grid(alpha=0.3)
    # one legend for every line of every panel (MVMICNet's stage 2 has accuracy only, not the last panel's metric)
    entries: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(name, handle)
    axes[0][-1].legend(list(entries.values()), list(entries), fontsize=6, loc="best")
    fig.tight_layout()
    return fig


def compression_comparison(originals, columns, masks_true=None):
    """Qualitative comparison (MVMICNet Fig. 4): rows = frames; columns = (title, images, masks) panels.

    ``columns``: list of ``(title, images [N,C,H,W], predicted masks [N,H,W] or None)``; the first
    panel of each row is the original with its ground truth (``masks_true``) when given.
    """
    n = len(originals)
    ncol = len(columns) + 1
    fig, axes = plt.subplots(n, ncol, figsize=(2.1 * ncol, 2.1 * n), squeeze=False)
    for r in range(n):
        if masks_true is not None:
            overlay_mask(axes[r][0], originals[r], masks_true[r])
        else:
            show_image(axes[r][0], originals[r])
        if r == 0:
            axes[r][0].set_title("original + ground truth", fontsize=7)
        for c, (title, images, masks) in enumerate(columns, start=1):
            if masks is not None:
                overlay_mask(axes[r][c], images[r], masks[r])
            else:
                show_image(axes[r][c], images[r])
            if r == 0:
                axes[r][c].set_title(title, fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def rate_figure(fig_df, published, metric: str, label: str):
    """Fig. 3's three panels: the task ``metric`` (axis ``label``), PSNR and MS-SSIM against bpp, published dashed."""
    return rate_curves(fig_df, [metric, "psnr_db", "ms_ssim"], published=published,
                       labels={metric: label, "psnr_db": "PSNR (dB)", "ms_ssim": "MS-SSIM"})


def frame_indices(n: int, frames: int) -> list[int]:
    """``frames`` test indices spread evenly over ``n`` images (from the first), for Fig. 4."""
    return list(range(0, n, max(1, n // max(1, frames))))[:frames]


def segmentation_comparison(sweep, study, test, frames: int, device):
    """Fig. 4: ``frames`` test images with their ground truth beside the segmentations of
    :func:`medtask.methods.mvmicnet.study.fig4_panels` at the lowest rate point."""
    idx = frame_indices(len(test), frames)
    columns = fig4_panels(sweep, study, idx, device)
    return compression_comparison(study.test_images[idx], columns, masks_true=[test[i]["mask"] for i in idx])
