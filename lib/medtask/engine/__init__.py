"""The engine under every method: one loop (:func:`fit`), deterministic step-indexed batches, pluggable strategies.

A *strategy* decides how a batch becomes gradients (joint, frozen, two-stage, GradProm ...);
the loop owns everything else: zeroing, clipping, optimiser and scheduler steps, logging,
progress, checkpoints and resuming. A method's strategies live in its folder
(e.g. :mod:`medtask.methods.gradprom.strategies`) and subclass :class:`Strategy`.
Also here: :mod:`medtask.engine.timing` (FLOPs, latency) and :mod:`medtask.engine.gradcam`.
The engine knows no method.
"""

from medtask.engine.batches import RandomBatches, collate, to_device
from medtask.engine.loop import Strategy, TrainResult, fit

__all__ = ["RandomBatches", "Strategy", "TrainResult", "collate", "fit", "to_device"]
