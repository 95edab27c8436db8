"""What a network costs to run: FLOPs of one forward pass and batch-1 latency, on any device."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, size: int, in_channels: int = 1) -> int:
    """FLOPs of one ``[1, C, size, size]`` forward pass (``FlopCounterMode``: a multiply-add counts 2)."""
    model.eval()
    x = torch.rand(1, in_channels, size, size, device=next(model.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


@torch.inference_mode()
def latency(model: nn.Module, size: int, device: Any = "cpu", repeats: int = 10, warmup: int = 2,
            in_channels: int = 1) -> dict[str, float]:
    """Median batch-1 forward time in ms (and FPS) at ``size x size`` on ``device``."""
    dev = torch.device(device)
    model.eval().to(dev)
    x = torch.rand(1, in_channels, size, size, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        sync()
        times.append(time.perf_counter() - t0)
    ms = 1000 * statistics.median(times)
    return {"ms": ms, "fps": 1000.0 / ms, "threads": torch.get_num_threads(), "device": str(dev)}
