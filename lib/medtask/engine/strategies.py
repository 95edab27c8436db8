"""The one strategy that trains a single network on a loss of its own (every study's "train one network")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from medtask.engine.loop import Strategy

#: ``loss(network, batch) -> (loss to back-propagate, floats to log)``
NetworkLoss = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]


class SingleNetwork(Strategy):
    """One network, one optimiser, one loss: ``loss(network, batch)`` is back-propagated as it is.

    ``key`` names the network and its optimiser in checkpoints. A study subclasses it to say what
    the loss is and, where needed, what the network sees (e.g. a frozen codec's reconstructions).
    """

    name = "single-network"

    def __init__(self, network: nn.Module, loss: NetworkLoss, optimizer: torch.optim.Optimizer, *,
                 key: str = "model", name: str | None = None) -> None:
        self.network, self.loss_fn, self.key = network, loss, key
        self._opt = {key: optimizer}
        if name is not None:
            self.name = name

    def modules(self) -> dict[str, nn.Module]:
        return {self.key: self.network}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def compute_gradients(self, batch: Any, step: int) -> dict[str, float]:
        loss, logs = self.loss_fn(self.network, batch)
        loss.backward()
        return logs
