"""Figure helpers every chapter can use: mask overlays, boxes with class names, sample grids, confusion
matrices, segmentation and Grad-CAM panels, published-versus-measured bars, cost-versus-quality scatters.

A method's own figures live in ``medtask.methods.<method>.plots``.

All helpers accept images as ``torch`` tensors ``[C, H, W]`` in ``[0, 1]`` (the sample format) or
NumPy arrays ``[H, W]`` / ``[H, W, C]``, and draw on a Matplotlib ``Axes``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from pytorch_grad_cam.utils.image import show_cam_on_image

#: Qualitative colours for classes 1..K (class 0 = background is transparent).
PALETTE = np.array([
    [0.97, 0.85, 0.10], [0.10, 0.80, 0.95], [0.95, 0.30, 0.30], [0.35, 0.90, 0.35], [0.75, 0.40, 0.95],
    [1.00, 0.55, 0.10], [0.20, 0.45, 1.00], [0.95, 0.45, 0.75], [0.55, 0.75, 0.20], [0.60, 0.60, 0.60],
    [0.30, 0.95, 0.75], [0.85, 0.70, 0.45], [0.50, 0.25, 0.70],
])


def class_color(k: int) -> np.ndarray:
    """The RGB colour of class ``k >= 1``."""
    return PALETTE[(int(k) - 1) % len(PALETTE)]


def to_numpy_image(image: Any) -> np.ndarray:
    """``[C, H, W]`` tensor / array (or ``[H, W(, C)]`` array) -> float ``[H, W, 3]`` or ``[H, W]`` in [0, 1]."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    arr = arr.astype(np.float32)
    if arr.max(initial=0) > 1.0:
        arr = arr / 255.0
    return np.clip(arr, 0.0, 1.0)


def show_image(ax: Any, image: Any) -> None:
    """Draw an image (grey images with a grey colour map), without axes."""
    arr = to_numpy_image(image)
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()


def _is_thin(m: np.ndarray) -> bool:
    """True for thin structures (vessels): most foreground pixels touch the background."""
    fg = m > 0
    if fg.sum() == 0:
        return False
    inner = fg.copy()
    inner[1:, :] &= fg[:-1, :]
    inner[:-1, :] &= fg[1:, :]
    inner[:, 1:] &= fg[:, :-1]
    inner[:, :-1] &= fg[:, 1:]
    return inner.sum() < 0.5 * fg.sum()


def overlay_mask(ax: Any, image: Any, mask: Any, *, alpha: float = 0.45, contour: bool | None = None,
                 classes: Sequence[str] | None = None, legend: bool = False) -> None:
    """Draw ``image`` with a label map ``mask`` (0 = background) as translucent colours and outlines.

    ``contour=None`` outlines regions but not thin structures such as vessels (outlines would hide them).
    """
    show_image(ax, image)
    m = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    m = m.astype(np.int64)
    rgba = np.zeros(m.shape + (4,), np.float32)
    present = [int(k) for k in np.unique(m) if k > 0]
    for k in present:
        rgba[m == k, :3] = class_color(k)
        rgba[m == k, 3] = alpha
    ax.imshow(rgba, interpolation="nearest")
    if contour is None:
        contour = not _is_thin(m)
    if contour:
        for k in present:
            ax.contour((m == k).astype(float), levels=[0.5], colors=[class_color(k)], linewidths=0.8)
    if legend and classes is not None and present:

        ax.legend(handles=[Patch(color=class_color(k), label=classes[k]) for k in present], loc="lower right",
                  fontsize=6, framealpha=0.6)


def draw_boxes(ax: Any, boxes: Any, labels: Any = None, *, classes: Sequence[str] | None = None,
               scores: Any = None, linewidth: float = 1.2, fontsize: int = 6, color: Any = None) -> None:
    """Draw ``[N, 4]`` (x1, y1, x2, y2) boxes, coloured by label and captioned with class names (and scores)."""
    b = boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else np.asarray(boxes, dtype=float)
    lab = None if labels is None else (labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels))
    sc = None if scores is None else (scores.detach().cpu().numpy() if hasattr(scores, "detach") else np.asarray(scores))
    for i, (x1, y1, x2, y2) in enumerate(b.reshape(-1, 4)):
        k = None if lab is None else int(lab[i])
        c = color if color is not None else (class_color(k) if k else PALETTE[0])
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=linewidth))
        text = []
        if k is not None:
            text.append(classes[k] if classes is not None and k < len(classes) else str(k))
        if sc is not None:
            text.append(f"{float(sc[i]):.2f}")
        if text:
            ax.text(x1, y1, " ".join(text), color="black", fontsize=fontsize, va="bottom",
                    bbox={"facecolor": c, "alpha": 0.7, "pad": 0.5, "edgecolor": "none"})


def draw_sample(ax: Any, sample: dict[str, Any], classes: Sequence[str] | None = None, title: bool = True) -> None:
    """Draw one sample dict: its mask overlaid, its boxes, or its class label in the title."""
    if "mask" in sample and "boxes" not in sample:
        overlay_mask(ax, sample["image"], sample["mask"], classes=classes)
    else:
        show_image(ax, sample["image"])
        if "mask" in sample:
            overlay_mask(ax, sample["image"], sample["mask"], classes=classes)
        if "boxes" in sample:
            draw_boxes(ax, sample["boxes"], sample.get("labels"), classes=classes)
    if title:
        t = str(sample.get("id", ""))
        if "label" in sample:
            lab = int(sample["label"])
            t = f"{classes[lab] if classes else lab}\n{t}"
        ax.set_title(t, fontsize=7)


def sample_grid(samples: Any, n: int = 8, ncols: int = 4, *, classes: Sequence[str] | None = None,
                title: str | None = None, panel_size: float = 2.2, indices: Sequence[int] | None = None) -> Any:
    """A figure of ``n`` samples (a dataset or a list of sample dicts) with their annotations drawn."""
    classes = classes if classes is not None else getattr(samples, "classes", None)
    idx = list(indices) if indices is not None else list(range(min(n, len(samples))))
    nrows = max(1, -(-len(idx) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, i in zip(axes.ravel(), idx):
        draw_sample(ax, samples[i], classes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def datasets_grid(datasets: dict[str, Any], n: int = 4, panel_size: float = 2.2) -> Any:
    """One row per dataset (name -> dataset): its first ``n`` samples with their annotations drawn."""
    fig, axes = plt.subplots(len(datasets), n, figsize=(panel_size * n, (panel_size + 0.05) * len(datasets)),
                             squeeze=False)
    for r, (name, ds) in enumerate(datasets.items()):
        for c in range(n):
            draw_sample(axes[r, c], ds[c], ds.classes)
        axes[r, 0].set_title(f"{name}\n{axes[r, 0].get_title()}", fontsize=7)
    fig.tight_layout()
    return fig


def neighbour_difference_figure(diff: np.ndarray, ref: np.ndarray, boundaries: Sequence[tuple[float, str]],
                                title: str = "") -> Any:
    """Difference of each frame to the previous one along the ids, the median of distant pairs, and the split
    ``boundaries`` (``(id, label)``) as dashed lines."""
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.plot(np.arange(2, len(diff) + 2), diff, lw=0.8, label="frame n vs frame n-1")
    ax.axhline(np.median(ref), color="grey", ls=":", label="median of random pairs >= 20 frames apart")
    for b, lab in boundaries:
        ax.axvline(b, color="red", ls="--", lw=1)
        ax.text(b, ax.get_ylim()[1] * 0.92, " " + lab, color="red", fontsize=8)
    ax.set_xlabel("frame id n")
    ax.set_ylabel("mean |difference|")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title)
    return fig


def confusion_matrix_figure(cm, classes, title: str = ""):
    """A confusion matrix (rows true, columns predicted) with counts and row-normalised shading."""
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def segmentation_examples(images, masks, predictions, titles=None, fovs=None):
    """Per row: the image, the reference mask, then each model's binary prediction (dict name -> [N,H,W])."""
    n, cols = len(images), 2 + len(predictions)
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 2.0 * n), squeeze=False)
    for r in range(n):
        axes[r, 0].imshow(images[r][0], cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(titles[r] if titles else "image", fontsize=7)
        axes[r, 1].imshow(masks[r], cmap="gray")
        axes[r, 1].set_title("reference", fontsize=7)
        for c, (name, pred) in enumerate(predictions.items()):
            p = pred[r] if fovs is None else pred[r] * fovs[r]
            axes[r, c + 2].imshow(p, cmap="gray", vmin=0, vmax=1)
            axes[r, c + 2].set_title(name, fontsize=7)
    for a in axes.flat:
        a.axis("off")
    fig.tight_layout()
    return fig


def gradcam_figure(images, cams, titles):
    """Images with their Grad-CAM maps overlaid (``pytorch_grad_cam.utils.image.show_cam_on_image``)."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.0 * n, 4.2), squeeze=False)
    for i in range(n):
        g = np.asarray(images[i][0], dtype=np.float32)
        rgb = np.repeat(g[..., None], 3, axis=2)
        axes[0, i].imshow(g, cmap="gray", vmin=0, vmax=1)
        axes[0, i].set_title(titles[i], fontsize=7)
        axes[1, i].imshow(show_cam_on_image(rgb, np.asarray(cams[i]), use_rgb=True))
        axes[1, i].set_title("Grad-CAM", fontsize=7)
    for a in axes.flat:
        a.axis("off")
    fig.tight_layout()
    return fig


def published_vs_measured(rows):
    """Bars of published and measured values side by side, one panel per quantity.

    ``rows``: dicts with ``quantity``, ``published`` and ``measured`` (NaN when absent).
    """


    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows), 2.8), squeeze=False)
    for ax, r in zip(axes[0], rows):
        vals = [r["published"], r["measured"]]
        ax.bar(["paper", "ours"], [0 if (v is None or math.isnan(v)) else v for v in vals], color=["#999", "#1f77b4"])
        for k, v in enumerate(vals):
            ax.text(k, 0 if (v is None or math.isnan(v)) else v, "n/a" if (v is None or math.isnan(v)) else f"{v:.4g}",
                    ha="center", va="bottom", fontsize=8)
        ax.set_title(r["quantity"], fontsize=9)
    fig.tight_layout()
    return fig


def cost_vs_quality(df, x: str = "cpu_ms", y: str = "accuracy", label: str = "model"):
    """Scatter of a cost column against a quality column, one labelled point per row (NaNs dropped)."""
    d = df.dropna(subset=[x, y])
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.scatter(d[x], d[y])
    for _, r in d.iterrows():
        ax.annotate(str(r[label]), (r[x], r[y]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # plain numbers at 1-2-5, no 10^k labels
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.15, y=0.1)  # room for the labels of the outermost points
    ax.set_xlabel(f"{x} (log scale)")
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_figures(chapter: Any, figures: dict[str, Any]) -> None:
    """Save each figure of ``{name: figure}`` as the chapter's figure ``name``, in order."""
    for name, fig in figures.items():
        chapter.save_figure(fig, name)
