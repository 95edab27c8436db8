"""Deterministic, resumable batches: batch ``k`` is a pure function of (dataset, seed, k).

Sampling is epoch-wise without replacement (a seeded permutation per epoch), so a run that
resumes at step ``k`` sees exactly the batches it would have seen without the interruption,
and no DataLoader workers are needed on a 2-core machine (datasets are held in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

Batch = dict[str, Any]


def collate(samples: Sequence[dict[str, Any]]) -> Batch:
    """Stack same-shaped tensors; keep everything else (variable-size boxes, ids) as lists."""
    out: Batch = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if all(isinstance(v, torch.Tensor) for v in values) and len({tuple(v.shape) for v in values}) == 1:
            out[key] = torch.stack(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values)
        else:
            out[key] = list(values)
    return out


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class RandomBatches:
    """``batches(step) -> batch``: seeded epoch permutations, an optional batched augmentation.

    ``augment(batch, generator)`` receives a ``torch.Generator`` seeded from (seed, step), so
    augmentations are reproducible too.
    """

    def __init__(
        self,
        dataset: Sequence[dict[str, Any]],
        batch_size: int,
        seed: int = 0,
        augment: Callable[[Batch, torch.Generator], Batch] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(dataset) == 0:
            raise ValueError("RandomBatches got an empty dataset: check the split and the data root")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = augment
        self.device = device
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(len(self.dataset), generator=g)}
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        n = len(self.dataset)
        out = []
        for p in range(step * self.batch_size, (step + 1) * self.batch_size):
            out.append(int(self._perm(p // n)[p % n]))
        return out

    def __call__(self, step: int) -> Batch:
        batch = collate([self.dataset[i] for i in self.indices(step)])
        if self.augment is not None:
            g = torch.Generator().manual_seed(self.seed * 7_919 + step)
            batch = self.augment(batch, g)
        return to_device(batch, self.device) if self.device is not None else batch
