"""Losses shared by the methods, and the check of a task name.

- :func:`check_task`: a task named in the one vocabulary, :data:`medtask.data.io.TASKS` (what a dataset
  serves, ``dataset.task``), restricted to the subset a method supports.
- :func:`soft_dice_loss`: 1 − soft Dice of the foreground (multi-class softmax or one-channel sigmoid).
- :func:`recognition_loss`: cross-entropy of a classifier; cross-entropy + soft Dice of a segmenter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from medtask.data.io import TASKS
from medtask.engine.distributed import global_sum
from medtask.errors import InvalidParameterError


def check_task(task: str, allowed: Sequence[str] = TASKS) -> str:
    """``task`` if it is one of ``allowed`` (a subset of :data:`TASKS`), else an error naming the choices."""
    if task not in allowed:
        raise InvalidParameterError(f"task must be one of {tuple(allowed)}, got {task!r}")
    return task


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 − soft Dice of the foreground.

    - ``logits [B, K, H, W]`` with ``K ≥ 2`` and a class map ``target [B, H, W]``: softmax
      probabilities of classes ``1..K-1``, pooled over the whole batch, Dice averaged over those classes.
      Under data-parallel training the pooled sums are those of the global batch (summed over ranks,
      :func:`medtask.engine.distributed.global_sum`), so the loss and its averaged gradient are the
      global batch's.
    - ``logits [B, 1, H, W]`` and a binary ``target`` (``[B, H, W]`` or ``[B, 1, H, W]``): sigmoid
      probabilities, Dice per image, averaged over the batch.
    """
    if logits.shape[1] == 1:
        prob = torch.sigmoid(logits).flatten(1)
        tgt = target.reshape(prob.shape).to(prob.dtype)
        inter = (prob * tgt).sum(1)
        return (1.0 - (2.0 * inter + eps) / (prob.sum(1) + tgt.sum(1) + eps)).mean()
    probs = torch.softmax(logits, dim=1)[:, 1:]
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probs.dtype)
    sums = global_sum(torch.stack([(probs * onehot).sum(dim=(0, 2, 3)),
                                   probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))]))
    inter, denom = sums[0], sums[1]
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


def recognition_loss(logits: torch.Tensor, target: torch.Tensor, task: str, dice_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy of a classifier (``target`` = labels ``[B]``); for a segmenter (``target`` = class map
    ``[B, H, W]``) plus ``dice_weight`` × :func:`soft_dice_loss`, which keeps a small foreground (a polyp
    covers ~10 % of a frame) from being ignored by a briefly trained network."""
    check_task(task, ("classification", "segmentation"))
    target = target.to(logits.device).long()
    if target.numel() and int(target.max()) >= logits.shape[1]:
        raise InvalidParameterError(
            f"the network predicts {logits.shape[1]} classes but the batch has class {int(target.max())}: "
            "build it with num_classes = len(dataset.classes)")
    ce = F.cross_entropy(logits, target)
    if task == "segmentation" and dice_weight != 0:
        return ce + dice_weight * soft_dice_loss(logits, target)
    return ce
