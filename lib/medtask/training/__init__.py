"""Training: one loop (:func:`fit`), deterministic step-indexed batches, and pluggable strategies.

A *strategy* decides how a batch becomes gradients (joint, frozen, two-stage, GradProm ...);
the loop owns everything else: zeroing, clipping, optimiser and scheduler steps, logging,
progress, checkpoints and resuming. Study-specific strategies live in their own modules
(e.g. :mod:`medtask.training.enhancement`) and subclass :class:`Strategy`.
"""

from medtask.training.batches import RandomBatches, collate, to_device
from medtask.training.loop import Strategy, TrainResult, fit

__all__ = ["RandomBatches", "Strategy", "TrainResult", "collate", "fit", "to_device"]
