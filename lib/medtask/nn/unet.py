"""U-Net (Ronneberger et al., MICCAI 2015), compact: ``levels`` down/up stages, double 3×3 conv-BN-ReLU.

Bilinear up-sampling + concatenation skip connections; ``base`` channels at full resolution,
doubled per level. Input height/width must be divisible by ``2**levels``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medtask.errors import InvalidParameterError


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """``[B, in_channels, H, W]`` -> logits ``[B, num_classes, H, W]``."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 32, levels: int = 4) -> None:
        super().__init__()
        if num_classes < 2 or base < 1 or levels < 1:
            raise InvalidParameterError(
                f"UNet needs num_classes >= 2 (background counts), base >= 1, levels >= 1; got "
                f"num_classes={num_classes}, base={base}, levels={levels}")
        self.in_channels, self.num_classes, self.levels = in_channels, num_classes, levels
        widths = [base * 2**i for i in range(levels + 1)]
        self.inc = _double_conv(in_channels, widths[0])
        self.downs = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(levels))
        self.ups = nn.ModuleList(_double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.levels
        if h % m or w % m:
            raise InvalidParameterError(f"UNet with {self.levels} levels needs H and W divisible by {m}, got {h}×{w}")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up in self.ups:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.head(y)


def build_unet(in_channels: int = 3, num_classes: int = 2, base: int = 32, levels: int = 4) -> UNet:
    """A :class:`UNet`; ``base=64, levels=4`` is the original size."""
    return UNet(in_channels, num_classes, base, levels)
