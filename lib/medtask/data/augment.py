"""Batched, seeded augmentations for :class:`~medtask.engine.batches.RandomBatches`.

Every function takes ``(batch, generator)`` and returns a new batch, so a run that resumes at
step ``k`` sees exactly the augmented batch it would have seen without the interruption
(``RandomBatches`` seeds the generator from ``(seed, step)``). Images are bilinearly resampled,
label maps (``mask`` and other integer maps such as ``fov``) by nearest neighbour, so labels are
never blended.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from medtask.errors import InvalidParameterError

Batch = dict[str, Any]
Augment = Callable[[Batch, torch.Generator], Batch]
LABEL_KEYS = ("mask", "fov")


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def random_crops(crop: int | tuple[int, int]) -> Augment:
    """Crop every sample of a batch at a random place to ``crop`` (images of different sizes allowed).

    The dataset's images may differ in size (collate then keeps them as a list); the crops are
    stacked into one ``[B, C, h, w]`` tensor. A side smaller than the crop raises an error.
    """
    ch, cw = (crop, crop) if isinstance(crop, int) else crop

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        images = batch["image"]
        images = list(images.unbind(0)) if torch.is_tensor(images) else list(images)
        out = dict(batch)
        crops, labels = [], {k: [] for k in LABEL_KEYS if k in batch}
        for i, img in enumerate(images):
            h, w = img.shape[-2:]
            if h < ch or w < cw:
                raise InvalidParameterError(f"cannot crop {ch}x{cw} from an image of {h}x{w}; use a smaller crop")
            y = int(torch.randint(0, h - ch + 1, (), generator=g))
            x = int(torch.randint(0, w - cw + 1, (), generator=g))
            crops.append(img[..., y:y + ch, x:x + cw])
            for k in labels:
                labels[k].append(batch[k][i][..., y:y + ch, x:x + cw])
        out["image"] = torch.stack(crops)
        for k, v in labels.items():
            out[k] = torch.stack(v)
        return out

    return apply


def zoom_crops(crop: int | tuple[int, int], scale: tuple[float, float] = (0.6, 2.5), p_fg: float = 0.5) -> Augment:
    """Zoomed random crops, centred on the foreground in a fraction ``p_fg`` of the samples.

    Each sample's zoom ``s`` is drawn log-uniformly from ``scale``; a window of ``crop / s`` pixels
    (clipped to the image) is cut and resampled to ``crop``, so ``s > 1`` enlarges the objects and
    ``s < 1`` shrinks them. With probability ``p_fg`` (and where the ``mask`` has foreground) the window
    is centred on a random foreground pixel, jittered by up to a quarter window, as nnU-Net oversamples
    foreground patches; otherwise it lies anywhere. A zoom about the image centre would crop off-centre
    objects out of the frame exactly when it enlarges them, so a network would rarely see a large one.
    """
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    if not (0 < scale[0] <= scale[1]):
        raise InvalidParameterError(f"zoom scale range must satisfy 0 < lo <= hi, got {scale}")

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        images = batch["image"]
        images = list(images.unbind(0)) if torch.is_tensor(images) else list(images)
        n = len(images)
        s = torch.exp(_uniform(g, n, math.log(scale[0]), math.log(scale[1])))
        centred = torch.rand(n, generator=g) < p_fg
        crops, labels = [], {k: [] for k in LABEL_KEYS if k in batch}
        for i, img in enumerate(images):
            h, w = img.shape[-2:]
            wh, ww = min(h, max(1, round(ch / float(s[i])))), min(w, max(1, round(cw / float(s[i]))))
            fg = (batch["mask"][i] > 0).nonzero() if "mask" in batch else torch.empty(0, 2)
            if centred[i] and len(fg):
                cy, cx = fg[int(torch.randint(0, len(fg), (), generator=g))].tolist()
                cy += int(torch.randint(-(wh // 4), wh // 4 + 1, (), generator=g))
                cx += int(torch.randint(-(ww // 4), ww // 4 + 1, (), generator=g))
                y, x = min(max(cy - wh // 2, 0), h - wh), min(max(cx - ww // 2, 0), w - ww)
            else:
                y = int(torch.randint(0, h - wh + 1, (), generator=g))
                x = int(torch.randint(0, w - ww + 1, (), generator=g))
            win = img[..., y:y + wh, x:x + ww].unsqueeze(0)
            crops.append(F.interpolate(win, size=(ch, cw), mode="bilinear", align_corners=False)[0])
            for k in labels:
                lab = batch[k][i][..., y:y + wh, x:x + ww]
                lab = F.interpolate(lab[None, None].float(), size=(ch, cw), mode="nearest")[0, 0]
                labels[k].append(lab.round().to(batch[k][i].dtype))
        out = dict(batch)
        out["image"] = torch.stack(crops)
        for k, v in labels.items():
            out[k] = torch.stack(v)
        return out

    return apply


def _flip_boxes(boxes: torch.Tensor, dim: int, extent: int) -> torch.Tensor:
    """``[..., 4]`` boxes (x1, y1, x2, y2 in pixels) mirrored along ``dim`` (-1: x, -2: y) of an image ``extent`` long."""
    i, j = (0, 2) if dim == -1 else (1, 3)
    out = boxes.clone()
    out[..., i], out[..., j] = extent - boxes[..., j], extent - boxes[..., i]
    return out


def flips(batch: Batch, g: torch.Generator) -> Batch:
    """Independent random horizontal and vertical flips of each sample (image, label maps and boxes together)."""
    out = dict(batch)
    n = batch["image"].shape[0]
    for dim in (-1, -2):
        which = torch.rand(n, generator=g) < 0.5
        if not which.any():
            continue
        for k in ("image", *LABEL_KEYS):
            if k in out and torch.is_tensor(out[k]):
                t = out[k].clone()
                t[which] = t[which].flip(dim)
                out[k] = t
        if "boxes" in out:  # a list of [K_i, 4] tensors, or [N, K, 4] when every sample has K boxes
            extent = batch["image"].shape[dim]
            flipped = [_flip_boxes(b, dim, extent) if f else b for b, f in zip(out["boxes"], which.tolist())]
            out["boxes"] = torch.stack(flipped) if torch.is_tensor(out["boxes"]) else flipped
    return out


def affine(scale: tuple[float, float] = (0.8, 1.25), degrees: float = 20.0, translate: float = 0.1,
           padding: str = "zeros") -> Augment:
    """Random zoom, rotation and shift of each sample; label maps resampled by nearest neighbour.

    Pixels moved in from outside the frame are black in the image and background (0) in labels
    (``padding="zeros"``), or mirrored from inside it, image and labels alike (``"reflection"``:
    no black corners where black means something, e.g. a truncated field of view).
    """
    if not (0 < scale[0] <= scale[1]):
        raise InvalidParameterError(f"affine scale range must satisfy 0 < lo <= hi, got {scale}")
    if padding not in ("zeros", "reflection", "border"):
        raise InvalidParameterError(f"affine padding must be 'zeros', 'reflection' or 'border', got {padding!r}")

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        x = batch["image"]
        n = x.shape[0]
        s = torch.exp(_uniform(g, n, math.log(scale[0]), math.log(scale[1])))
        a = _uniform(g, n, -degrees, degrees) * math.pi / 180
        t = _uniform(g, 2 * n, -translate, translate).view(n, 2) * 2
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a) / s, -torch.sin(a) / s
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) / s, torch.cos(a) / s
        theta[:, :, 2] = t
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        out = dict(batch)
        out["image"] = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)
        for k in LABEL_KEYS:
            if k in batch and torch.is_tensor(batch[k]):
                m = batch[k]
                lab = F.grid_sample(m.unsqueeze(1).float(), grid, mode="nearest", padding_mode=padding,
                                    align_corners=False)
                out[k] = lab.squeeze(1).round().to(m.dtype)
        return out

    return apply


def color_jitter(brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2) -> Augment:
    """Random brightness, contrast and saturation factors per sample (images stay in [0, 1])."""

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        x = batch["image"]
        n = x.shape[0]
        b = _uniform(g, n, 1 - brightness, 1 + brightness).view(n, 1, 1, 1)
        c = _uniform(g, n, 1 - contrast, 1 + contrast).view(n, 1, 1, 1)
        s = _uniform(g, n, 1 - saturation, 1 + saturation).view(n, 1, 1, 1)
        y = x * b
        mean = y.mean((1, 2, 3), keepdim=True)
        y = (y - mean) * c + mean
        if y.shape[1] == 3:
            gray = y.mean(1, keepdim=True)
            y = (y - gray) * s + gray
        out = dict(batch)
        out["image"] = y.clamp(0, 1)
        return out

    return apply


def compose(*augments: Augment) -> Augment:
    """Apply ``augments`` in order with the same generator (so the whole chain is reproducible)."""

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        for aug in augments:
            batch = aug(batch, g)
        return batch

    return apply



#: The polyp segmenters' batch augmentation (ERFNet in Study A's zoo and, with ``train_augment="recipe"``, chapter
#: A1's trainings; the U-Net auxiliary in Study C's zoo): rotation and shift, foreground-centred zoomed crops,
#: flips, colour jitter. The test videos of CVC-ColonDB's block split film their polyps close up (15 % of the
#: frame against 5 % in training): without the zooms a segmenter never sees a polyp that large.
FOREGROUND_ZOOM: dict[str, Any] = {"affine": {"scale": [1.0, 1.0], "degrees": 20, "translate": 0.1},
                                   "zoom_crop": {"scale": [0.6, 2.5], "p_foreground": 0.5}, "flips": "h+v",
                                   "color_jitter": 0.2}


def foreground_zoom(crop: int | tuple[int, int], spec: dict[str, Any] = FOREGROUND_ZOOM) -> Augment:
    """The augmentation :data:`FOREGROUND_ZOOM` describes (or ``spec``, of the same form) with ``crop``-px crops."""
    rot, zoom, jitter = spec["affine"], spec["zoom_crop"], spec["color_jitter"]
    return compose(affine(tuple(rot["scale"]), rot["degrees"], rot["translate"]),
                   zoom_crops(crop, tuple(zoom["scale"]), zoom["p_foreground"]), flips,
                   color_jitter(jitter, jitter, jitter))
