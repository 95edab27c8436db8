"""Study A's task scores: one path for the chapters' result rows and the zoo's cards.

:func:`task_scores` scores a segmentation or detection network on decoded images (a chapter's
rows) or on the originals (a chapter's reference row and the zoo's task-network cards) against a
dataset's labels, through the one batched inference loop (:func:`medtask.engine.predict.predict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from medtask.engine.predict import predict, segmenter_scores
from medtask.errors import InvalidParameterError
from medtask.metrics.detection import DetectionMeter


def stack_images(ds: Sequence[dict[str, Any]]) -> torch.Tensor:
    """All images of a (same-size) dataset as one ``[N, C, H, W]`` tensor."""
    imgs = [s["image"] for s in ds]
    if len({tuple(i.shape) for i in imgs}) != 1:
        raise InvalidParameterError("test images differ in size; load the dataset with size=...")
    return torch.stack(imgs)


def _detect(net: nn.Module, x: torch.Tensor) -> Any:
    return net(list(x.unbind(0)))


def task_scores(net: nn.Module, task: str, images: torch.Tensor | Sequence[dict[str, Any]],
                dataset: Sequence[dict[str, Any]], num_classes: int, device: torch.device | str,
                batch_size: int = 8) -> dict[str, float]:
    """Task metrics of ``net`` on ``images`` against ``dataset``'s labels (``net`` left in eval mode).

    ``images`` are decoded images ``[N, C, H, W]`` in ``dataset``'s order, or ``dataset`` itself (its
    originals). Segmentation: dataset-level ``miou`` (background included), polyp ``dice`` and
    ``iou_fg``, mean class recall ``macc``, and ``mean_dice``, the mean of per-frame Dice. Detection:
    COCO ``map`` (mAP@[.5:.95]), ``ap50`` and ``ap75`` (torchmetrics).
    """
    if len(images) != len(dataset):
        raise InvalidParameterError(f"{len(images)} images for {len(dataset)} labelled samples")
    net.eval()
    starts = range(0, len(images), batch_size)
    if task == "segmentation":
        masks = torch.stack([dataset[j]["mask"] for j in range(len(dataset))])
        s = segmenter_scores(net, images, masks, num_classes, batch_size=batch_size, device=device)
        return {k: s[k] for k in ("miou", "dice", "macc", "iou_fg", "mean_dice")}
    if task != "detection":
        raise InvalidParameterError(f"task={task!r}: Study A scores 'segmentation' or 'detection'")
    meter = DetectionMeter()
    found = predict(net, images, batch_size=batch_size, device=device, forward=_detect, output=lambda out: out)
    for i, preds in zip(starts, found):
        meter.update(preds, [{"boxes": dataset[j]["boxes"], "labels": dataset[j]["labels"]}
                             for j in range(i, i + len(preds))])
    s = meter.compute()
    return {"map": s["map"], "ap50": s["map_50"], "ap75": s["map_75"]}


def predict_masks(net: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 8) -> torch.Tensor:
    """Class maps ``[N, H, W]`` of a segmentation network (left in eval mode)."""
    net.eval()
    return torch.cat(predict(net, images, batch_size=batch_size, device=device, output=lambda out: out.argmax(1).cpu()))
