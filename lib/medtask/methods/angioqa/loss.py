"""The joint multi-task loss: ``w_seg * (w_dice * Dice + w_bce * BCE) + w_cls * CE``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medtask.errors import InvalidParameterError
from medtask.nn.losses import soft_dice_loss


class JointLoss(nn.Module):
    """Weighted sum of the vessel loss (Dice + BCE) and the quality loss (cross-entropy).

    ``forward(outputs, batch)`` takes the model's ``{"seg", "quality"}`` dict (either key may be
    missing for a single-task model; the missing term is skipped) and a batch with ``mask``
    (``int64[B,H,W]``, vessel > 0) and ``label`` (``int64[B]``); returns ``(total, terms)`` where
    ``terms`` holds the floats to log.
    """

    def __init__(self, seg_weight: float = 1.0, cls_weight: float = 1.0, dice_weight: float = 1.0,
                 bce_weight: float = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        for name, w in {"seg_weight": seg_weight, "cls_weight": cls_weight, "dice_weight": dice_weight,
                        "bce_weight": bce_weight}.items():
            if w < 0:
                raise InvalidParameterError(f"JointLoss: {name} must be >= 0, got {w}")
        self.seg_weight, self.cls_weight = float(seg_weight), float(cls_weight)
        self.dice_weight, self.bce_weight = float(dice_weight), float(bce_weight)
        self.label_smoothing = float(label_smoothing)

    def seg_loss(self, logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Dice + BCE of vessel logits ``[B,1,H,W]`` against a mask ``[B,H,W]``."""
        target = (mask > 0).to(logits.dtype).reshape(logits.shape)
        dice = soft_dice_loss(logits, target)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return self.dice_weight * dice + self.bce_weight * bce, {"dice_loss": float(dice.detach()), "bce": float(bce.detach())}

    def cls_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of quality logits ``[B,K]`` against grades ``[B]``."""
        ce = F.cross_entropy(logits, labels.long(), label_smoothing=self.label_smoothing)
        return ce, {"ce": float(ce.detach())}

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        total: torch.Tensor | None = None
        logs: dict[str, float] = {}
        if "seg" in outputs and self.seg_weight > 0:
            seg, terms = self.seg_loss(outputs["seg"], batch["mask"])
            total = self.seg_weight * seg
            logs.update(terms)
        if "quality" in outputs and self.cls_weight > 0:
            cls, terms = self.cls_loss(outputs["quality"], batch["label"])
            total = self.cls_weight * cls if total is None else total + self.cls_weight * cls
            logs.update(terms)
        if total is None:
            raise InvalidParameterError("JointLoss: the outputs have neither 'seg' nor 'quality' with a "
                                        "non-zero weight; check the model's task and the loss weights")
        logs["loss"] = float(total.detach())
        return total, logs
