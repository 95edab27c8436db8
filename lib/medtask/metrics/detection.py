"""COCO detection metrics (mAP@[.5:.95], AP50, AP75) via torchmetrics' MeanAveragePrecision
(pycocotools backend): no hand-written AP. Boxes are ``x1, y1, x2, y2`` in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medtask.errors import InvalidParameterError


class DetectionMeter:
    """Accumulates predictions and ground truth of a test set; :meth:`compute` returns COCO numbers."""

    def __init__(self) -> None:
        from torchmetrics.detection import MeanAveragePrecision

        self.metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
        self.n = 0

    def update(self, preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, torch.Tensor]]) -> None:
        """``preds``: dicts with boxes/scores/labels (torchvision's eval output); ``targets``: boxes/labels."""
        if len(preds) != len(targets):
            raise InvalidParameterError(f"{len(preds)} predictions for {len(targets)} targets")
        p = [{"boxes": d["boxes"].detach().float().cpu().reshape(-1, 4), "scores": d["scores"].detach().float().cpu(),
              "labels": d["labels"].detach().long().cpu()} for d in preds]
        t = [{"boxes": d["boxes"].detach().float().cpu().reshape(-1, 4), "labels": d["labels"].detach().long().cpu()}
             for d in targets]
        self.metric.update(p, t)
        self.n += len(p)

    def compute(self) -> dict[str, float]:
        """``map`` (mAP@[.5:.95]), ``map_50``, ``map_75``, ``mar_100``; -1 where COCO has nothing to score."""
        if self.n == 0:
            raise InvalidParameterError("DetectionMeter.compute() before any update()")
        r = self.metric.compute()
        return {k: float(r[k]) for k in ("map", "map_50", "map_75", "mar_100")}


def detection_scores(preds, targets) -> dict[str, float]:
    """One-shot :class:`DetectionMeter`."""
    m = DetectionMeter()
    m.update(preds, targets)
    return m.compute()
