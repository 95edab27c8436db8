"""Segmentation metrics from a confusion matrix: IoU per class, mIoU (mean over background and
foreground, as the MVMICNet paper reports it) and Dice. Batched: accumulate with
:class:`SegmentationMeter` over a whole test set, then read the dataset-level numbers.
"""

from __future__ import annotations

import torch

from medtask.errors import InvalidParameterError


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """``[K, K]`` int64 counts, rows = true class, columns = predicted class (any batch shape)."""
    if pred.shape != target.shape:
        raise InvalidParameterError(f"prediction {tuple(pred.shape)} and mask {tuple(target.shape)} differ in shape; "
                                    "pass class indices (argmax of the logits), not logits")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    if t.numel() and (int(t.max()) >= num_classes or int(t.min()) < 0 or int(p.max()) >= num_classes
                      or int(p.min()) < 0):
        raise InvalidParameterError(f"labels must be in 0..{num_classes - 1}")
    return torch.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes).cpu()


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """IoU of each class, ``TP / (TP + FP + FN)``; NaN for a class absent from both."""
    cm = cm.double()
    tp = cm.diag()
    denom = cm.sum(0) + cm.sum(1) - tp
    return torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Dice of each class, ``2 TP / (2 TP + FP + FN)``; NaN for a class absent from both."""
    cm = cm.double()
    tp = cm.diag()
    denom = cm.sum(0) + cm.sum(1)
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))


def sensitivity_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Sensitivity (recall) of each class, ``TP / (TP + FN)``; NaN for a class absent from the truth."""
    cm = cm.double()
    denom = cm.sum(1)
    return torch.where(denom > 0, cm.diag() / denom.clamp(min=1), torch.full_like(denom, float("nan")))


class SegmentationMeter:
    """Accumulates a dataset-level confusion matrix from batches of logits or class maps."""

    def __init__(self, num_classes: int = 2, ignore_index: int | None = None) -> None:
        if num_classes < 2:
            raise InvalidParameterError("num_classes must be >= 2 (background + foreground)")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred``: logits ``[B,K,H,W]`` or class maps ``[B,H,W]``; ``target``: ``[B,H,W]``."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        self.cm += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def compute(self) -> dict[str, float]:
        """``miou`` (mean over all classes incl. background), ``iou_fg``, ``dice`` and ``sensitivity``
        (foreground classes), ``pixel_acc``, and per-class IoUs."""
        iou = iou_per_class(self.cm)
        dice = dice_per_class(self.cm)
        cmd = self.cm.double()
        recall = torch.where(cmd.sum(1) > 0, cmd.diag() / cmd.sum(1).clamp(min=1), torch.full_like(cmd.diag(), float("nan")))
        out = {"miou": float(torch.nanmean(iou)), "iou_fg": float(torch.nanmean(iou[1:])),
               "macc": float(torch.nanmean(recall)),
               "dice": float(torch.nanmean(dice[1:])),
               "pixel_acc": float(self.cm.diag().sum() / self.cm.sum().clamp(min=1)),
               "sensitivity": float(torch.nanmean(sensitivity_per_class(self.cm)[1:]))}
        out.update({f"iou_{k}": float(v) for k, v in enumerate(iou)})
        return out


def segmentation_scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 2) -> dict[str, float]:
    """One-shot :class:`SegmentationMeter` over a batch."""
    m = SegmentationMeter(num_classes)
    m.update(pred, target)
    return m.compute()


def frame_dice(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Foreground Dice of each frame of class maps ``[B, H, W]`` (foreground: class > 0; 1 where neither has
    foreground): the mean of these over a test set is PraNet's 'mean Dice'."""
    p, t = (pred > 0).flatten(1), (target > 0).flatten(1)
    denom = (p.sum(1) + t.sum(1)).double()
    dice = 2 * (p & t).sum(1).double() / denom.clamp(min=1)
    return torch.where(denom > 0, dice, torch.ones_like(dice)).tolist()
