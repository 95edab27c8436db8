"""Strategies of Study B: multi-task joint loss, segmentation only, classification only.

The same three strategies train the paper's model, its ablations and every baseline. A model may
return a dict (``{"seg": logits, "quality": logits}``, as :class:`medtask.methods.angioqa.AngioQANet` does) or a
bare tensor (a library baseline); :func:`split_outputs` puts both into the dict form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medtask.engine.strategies import SingleNetwork
from medtask.errors import InvalidParameterError
from medtask.methods.angioqa.loss import JointLoss


def split_outputs(out: Any, kind: str | None = None) -> dict[str, torch.Tensor]:
    """A model's output as ``{"seg"?, "quality"?}``; a bare tensor is ``kind`` (``"seg"`` or ``"quality"``)."""
    if isinstance(out, dict):
        return out
    if isinstance(out, torch.Tensor):
        if kind not in ("seg", "quality"):
            raise InvalidParameterError("a model returning a bare tensor needs kind='seg' or kind='quality'")
        return {kind: out}
    raise InvalidParameterError(f"model output must be a dict or a tensor, got {type(out).__name__}")


class _SupervisedStrategy(SingleNetwork):
    """Shared plumbing: one model, one AdamW optimiser, a :class:`medtask.methods.angioqa.loss.JointLoss`."""

    kind: str | None = None
    keep: tuple[str, ...] = ("seg", "quality")

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, lr: float = 1e-3,
                 weight_decay: float = 1e-4, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.loss = loss if loss is not None else JointLoss()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        super().__init__(self.model, self.joint_loss, self.opt, key="model")

    def outputs(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """The heads this strategy trains, from the model's output on the batch."""
        out = split_outputs(model(batch["image"].to(self.device)), self.kind)
        out = {k: v for k, v in out.items() if k in self.keep}
        if not out:
            raise InvalidParameterError(f"{self.name}: the model gives none of {self.keep}; "
                                        "pick the strategy that matches the model's task")
        return out

    def joint_loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """:class:`JointLoss` of the trained heads against the batch's ``mask`` and ``label``."""
        targets = {k: batch[k].to(self.device) for k in ("mask", "label") if k in batch}
        return self.loss(self.outputs(model, batch), targets)


class MultiTaskStrategy(_SupervisedStrategy):
    """Joint training: ``seg_weight * (Dice + BCE) + cls_weight * CE`` on a model that returns both heads."""

    name = "multitask"

    def outputs(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        out = split_outputs(model(batch["image"].to(self.device)))
        if not {"seg", "quality"} <= set(out):
            raise InvalidParameterError("MultiTaskStrategy needs a model with both 'seg' and 'quality' outputs "
                                        "(AngioQANet with task='both'); use SegOnlyStrategy or ClsOnlyStrategy")
        return out


class SegOnlyStrategy(_SupervisedStrategy):
    """Vessel segmentation only (Dice + BCE); a bare-tensor model output is taken as vessel logits."""

    name = "seg_only"
    kind = "seg"
    keep = ("seg",)


class ClsOnlyStrategy(_SupervisedStrategy):
    """Quality classification only (cross-entropy); a bare-tensor model output is taken as grade logits."""

    name = "cls_only"
    kind = "quality"
    keep = ("quality",)
