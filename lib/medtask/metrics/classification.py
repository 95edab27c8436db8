"""Classification metrics (torchmetrics): accuracy, balanced accuracy, AUC; macro-F1 and the confusion matrix."""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_auroc, multiclass_recall

from medtask.errors import InvalidParameterError


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``probs`` ``[N, K]`` (rows sum to 1), ``labels`` ``[N]`` -> accuracy, balanced accuracy and AUC.

    Balanced accuracy is the mean per-class recall; AUC is the ROC AUC of the positive class for
    ``K = 2`` and the macro one-vs-rest AUC otherwise (NaN when a class is absent from ``labels``).
    """
    if probs.dim() != 2 or labels.dim() != 1 or len(probs) != len(labels):
        raise InvalidParameterError(f"need probs [N, K] and labels [N], got {tuple(probs.shape)} and {tuple(labels.shape)}")
    k = probs.shape[1]
    labels = labels.long().to(probs.device)
    if labels.numel() and int(labels.max()) >= k:
        raise InvalidParameterError(f"label {int(labels.max())} but only {k} predicted classes: check num_classes")
    acc = multiclass_accuracy(probs, labels, num_classes=k, average="micro")
    bacc = multiclass_recall(probs, labels, num_classes=k, average="macro")
    present = torch.bincount(labels, minlength=k) > 0
    if bool(present.all()):
        if k == 2:
            from torchmetrics.functional.classification import binary_auroc

            auc = float(binary_auroc(probs[:, 1], labels))
        else:
            auc = float(multiclass_auroc(probs, labels, num_classes=k, average="macro"))
    else:
        auc = float("nan")
    return {"accuracy": float(acc), "balanced_accuracy": float(bacc), "auc": auc}


def macro_f1(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Macro-averaged F1 of predicted class indices (or ``[N, K]`` scores) against ``labels`` ``[N]``."""
    from torchmetrics.functional.classification import multiclass_f1_score

    if preds.dim() == 2:
        preds = preds.argmax(1)
    return float(multiclass_f1_score(preds.long(), labels.long().to(preds.device), num_classes=num_classes,
                                     average="macro"))


def class_confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[K, K]`` int64 counts, rows = true class, columns = predicted (``preds`` indices or ``[N, K]`` scores)."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    if preds.dim() == 2:
        preds = preds.argmax(1)
    if preds.shape != labels.shape:
        raise InvalidParameterError(f"predictions {tuple(preds.shape)} and labels {tuple(labels.shape)} differ in shape")
    return multiclass_confusion_matrix(preds.long(), labels.long().to(preds.device), num_classes=num_classes).long().cpu()
