"""ERFNet (Romera et al., IEEE T-ITS 2018): the segmentation network of Study A.

Efficient residual factorised convolutions (3x1 / 1x3 pairs, dilations 2-16) in an
encoder-decoder; output logits at input resolution. ``width`` scales every channel count
(1.0 = the published 16/64/128 channels; smaller for CPU profiles). Input sides must be
multiples of 8 (three stride-2 stages); :func:`erfnet_forward_any` pads and crops otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medtask.errors import InvalidParameterError


class DownsamplerBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class NonBottleneck1D(nn.Module):
    def __init__(self, ch: int, dropout: float, dilation: int) -> None:
        super().__init__()
        d = dilation
        self.conv3x1_1 = nn.Conv2d(ch, ch, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(ch, ch, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(ch, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(ch, ch, (3, 1), padding=(d, 0), dilation=(d, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(ch, ch, (1, 3), padding=(0, d), dilation=(1, d), bias=True)
        self.bn2 = nn.BatchNorm2d(ch, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.dropout(self.bn2(self.conv1x3_2(out)))
        return F.relu(out + x)


class UpsamplerBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=True)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class ERFNet(nn.Module):
    """ERFNet with ``num_classes`` output channels; ``width`` scales 16/64/128 channels."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: float = 1.0,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if num_classes < 2:
            raise InvalidParameterError(f"ERFNet needs num_classes >= 2 (background + foreground), got {num_classes}")
        if not 0.05 <= width <= 4:
            raise InvalidParameterError(f"ERFNet width must be in [0.05, 4], got {width}")
        c1, c2, c3 = (max(in_channels + 1, int(round(16 * width))), max(8, int(round(64 * width))),
                      max(8, int(round(128 * width))))
        self.in_channels = in_channels
        enc: list[nn.Module] = [DownsamplerBlock(in_channels, c1), DownsamplerBlock(c1, c2)]
        enc += [NonBottleneck1D(c2, dropout * 0.3, 1) for _ in range(5)]
        enc.append(DownsamplerBlock(c2, c3))
        for _ in range(2):
            enc += [NonBottleneck1D(c3, dropout, d) for d in (2, 4, 8, 16)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(
            UpsamplerBlock(c3, c2), NonBottleneck1D(c2, 0, 1), NonBottleneck1D(c2, 0, 1),
            UpsamplerBlock(c2, c1), NonBottleneck1D(c1, 0, 1), NonBottleneck1D(c1, 0, 1),
        )
        self.output_conv = nn.ConvTranspose2d(c1, num_classes, 2, stride=2, padding=0, output_padding=0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            return erfnet_forward_any(self, x)
        return self.output_conv(self.decoder(self.encoder(x)))


def erfnet_forward_any(net: ERFNet, x: torch.Tensor) -> torch.Tensor:
    """Run ERFNet on any size: pad bottom/right to a multiple of 8, crop the logits back."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")
    return net.output_conv(net.decoder(net.encoder(xp)))[..., :h, :w]


def build_erfnet(num_classes: int = 2, in_channels: int = 3, width: float = 1.0) -> ERFNet:
    """A randomly initialised ERFNet (no pretrained weights: nothing can be downloaded)."""
    return ERFNet(num_classes=num_classes, in_channels=in_channels, width=width)
