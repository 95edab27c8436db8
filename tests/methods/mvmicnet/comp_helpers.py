"""Helpers for Study A's tests (imported as a top-level module: pytest puts this folder on sys.path)."""

import torch


def smooth_image(c: int = 3, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth random image in [0, 1] (compressible, like a natural image)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, c, h // 8 + 1, w // 8 + 1, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[0]
