"""The one batched inference loop: a network in evaluation mode over many images, under ``inference_mode``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from medtask.engine.batches import collate
from medtask.metrics.segmentation import SegmentationMeter, frame_dice


def _apply(net: nn.Module, x: torch.Tensor) -> Any:
    return net(x)


@torch.inference_mode()
def predict(net: nn.Module, inputs: torch.Tensor | Sequence[dict[str, Any]], *, batch_size: int = 32,
            device: torch.device | str = "cpu", forward: Callable[[nn.Module, torch.Tensor], Any] = _apply,
            output: Callable[[Any], Any] | None = None) -> list[Any]:
    """``output(forward(net, batch))`` for every batch of ``inputs``, in order (one list entry per batch).

    ``inputs`` is a tensor ``[N, ...]`` or a sequence of sample dicts (their ``"image"`` is used).
    Batches are moved to ``device``; ``forward`` says how the network is called (default ``net(x)``)
    and ``output`` what is kept of its result (default: the result moved to the CPU). The network
    runs in evaluation mode and gets its train/eval mode back afterwards.
    """
    was = net.training
    net.eval()
    keep = output if output is not None else (lambda out: out.cpu())
    results = []
    try:
        for i in range(0, len(inputs), batch_size):
            if isinstance(inputs, torch.Tensor):
                x = inputs[i:i + batch_size]
            else:  # a dataset need not support slicing
                x = collate([inputs[j] for j in range(i, min(i + batch_size, len(inputs)))])["image"]
            results.append(keep(forward(net, x.to(device))))
    finally:
        net.train(was)
    return results


def segmenter_scores(net: nn.Module, images: torch.Tensor | Sequence[dict[str, Any]], masks: torch.Tensor,
                     num_classes: int, *, batch_size: int = 32, device: torch.device | str = "cpu") -> dict[str, float]:
    """Scores of segmenter ``net``'s class maps (argmax) on ``images`` against ``masks`` ``[N, H, W]``: the
    dataset-level :class:`~medtask.metrics.segmentation.SegmentationMeter` (``miou`` over every class, polyp
    ``dice`` and ``iou_fg``, ``macc``, ...) and ``mean_dice``, the mean of per-frame foreground Dice
    (:func:`~medtask.metrics.segmentation.frame_dice`). The one segmentation scoring of Studies A and C (Study B scores inside the field of view)."""
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images for {len(masks)} masks")
    meter, per_frame = SegmentationMeter(num_classes), []
    maps = predict(net, images, batch_size=batch_size, device=device, output=lambda out: out.argmax(1).cpu())
    for i, pred in zip(range(0, len(images), batch_size), maps):
        target = masks[i:i + len(pred)]
        meter.update(pred, target)
        per_frame += frame_dice(pred, target)
    return {**meter.compute(), "mean_dice": sum(per_frame) / max(len(per_frame), 1)}
