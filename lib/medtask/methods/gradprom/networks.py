"""The enhancer (IP sub-model): an SR-ResNet-style network (Ledig et al., CVPR 2017).

Head conv -> ``depth`` residual blocks (conv-BN-PReLU-conv-BN + identity) -> conv-BN with a
*global skip* from the head -> ``log2(scale)`` pixel-shuffle ×2 up-sampling stages -> tail conv.
``scale=1`` (no up-sampling) is the denoiser. With ``image_residual=True`` (default) the network
predicts a correction added to the input (bicubically up-sampled for SR), the usual choice for
short training budgets; the output is not clamped during training (clamp at evaluation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medtask.errors import InvalidParameterError

SCALES = (1, 2, 4)


class ResidualBlock(nn.Module):
    """conv3×3 - (BN) - PReLU - conv3×3 - (BN), plus the identity."""

    def __init__(self, width: int, batch_norm: bool = True) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(width)) if batch_norm else (lambda: nn.Identity())
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm), norm(), nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm), norm(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SR-ResNet-style enhancer; ``scale`` 1 (denoising), 2 or 4 (super-resolution)."""

    def __init__(self, in_channels: int = 3, *, scale: int = 1, depth: int = 16, width: int = 64,
                 batch_norm: bool = True, image_residual: bool = True, head_kernel: int = 9) -> None:
        super().__init__()
        if scale not in SCALES:
            raise InvalidParameterError(f"SRResNet scale must be one of {SCALES}, got {scale!r}")
        if depth < 1 or width < 1 or in_channels < 1:
            raise InvalidParameterError(
                f"SRResNet needs depth >= 1, width >= 1, in_channels >= 1; got depth={depth}, width={width}, "
                f"in_channels={in_channels}")
        self.in_channels, self.scale, self.depth, self.width = in_channels, scale, depth, width
        self.image_residual = image_residual
        pad = head_kernel // 2
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, head_kernel, padding=pad), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width, batch_norm) for _ in range(depth)])
        self.trunk_tail = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm),
            nn.BatchNorm2d(width) if batch_norm else nn.Identity(),
        )
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(width, width * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, in_channels, head_kernel, padding=pad)
        if image_residual:  # start close to the identity / bicubic map
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, C, scale·H, scale·W]``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InvalidParameterError(
                f"SRResNet built for {self.in_channels}-channel [B, C, H, W] input, got shape {tuple(x.shape)}")
        h = self.head(x)
        h = h + self.trunk_tail(self.blocks(h))  # global skip
        out = self.tail(self.upsample(h))
        if self.image_residual:
            base = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                                           align_corners=False)
            out = out + base
        return out

    def check_scale(self, scale: int) -> None:
        """Raise unless this network was built for up-sampling factor ``scale``."""
        if int(scale) != self.scale:
            raise InvalidParameterError(
                f"this enhancer was built for scale {self.scale} but the degradation needs scale {scale}; "
                f"build it with build_enhancer(..., scale={scale})")


def build_enhancer(in_channels: int = 3, scale: int = 1, depth: int = 16, width: int = 64,
                   batch_norm: bool = True, image_residual: bool = True) -> SRResNet:
    """An :class:`SRResNet`; ``depth=16, width=64`` is the original SRResNet size."""
    return SRResNet(in_channels, scale=scale, depth=depth, width=width, batch_norm=batch_norm,
                    image_residual=image_residual)
