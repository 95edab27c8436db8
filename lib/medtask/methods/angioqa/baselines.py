"""Baselines of Study B, taken from well-kept libraries wherever they have the network.

Segmentation (one input channel, one vessel logit map ``[B,1,H,W]``):

- ``unet``: MONAI ``BasicUNet`` -- the classic U-Net of Ronneberger et al. (two 3x3 convs per level,
  max-pool down, transposed-conv up). ``width=64`` is the original 64-128-256-512-1024.
- ``attention_unet``: MONAI ``AttentionUnet`` (Oktay et al.: attention gates on the skips).
- ``sa_unet``: SA-UNet (Guo et al., 2021) is in no maintained library; it is built here from its paper
  with timm's ``DropBlock2d``: each conv is conv3x3 -> DropBlock -> BN -> ReLU, widths 16-32-64-128
  with a spatial-attention module (channel mean/max -> 7x7 conv -> sigmoid) in the bottleneck.
- ``transunet``: TransUNet has no maintained library implementation; the closest maintained
  equivalent is MONAI ``UNETR`` (a ViT encoder of 12 transformer layers with a convolutional U-shaped
  decoder over its intermediate tokens), used in 2D. TransUNet puts a ResNet-50 stem before the ViT;
  UNETR does not -- said in the chapter. Its position embeddings fix its input to tiles of
  ``min(image_size, UNETR_TILE)`` px (:data:`UNETR_TILE` = 128: 8×8 tokens of 16 px); a larger image is
  segmented tile by tile with MONAI's ``sliding_window_inference`` (overlap 0.25, Gaussian blending), which
  is how UNETR is applied to images larger than its training patches. Training on 128-px crops then costs a
  quarter of a 256-px step, and the network works at any size that is a multiple of 16.

Classification (one input channel, repeated to three for the torchvision stems; ``weights=None``,
nothing is downloaded): ``mobilenet`` (torchvision MobileNetV2), ``efficientnet`` (EfficientNet-B0),
``resnet`` (ResNet-18), ``swin_t`` (Swin-T).

``width`` scales U-Net, Attention U-Net and UNETR for CPU-sized runs (SA-UNet keeps its own 16) (``width=64`` / ``vit_dim=768`` are
the published sizes; the chapter reports the parameter count of what was actually trained).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models

from medtask.errors import InvalidParameterError
from medtask.methods.angioqa.modules import set_prior_bias

#: UNETR's input tile (px): larger images are segmented by overlapping tiles (:class:`Tiled`).
UNETR_TILE = 128


class Tiled(nn.Module):
    """A segmenter of fixed ``tile``-px square inputs applied to any larger image by overlapping tiles.

    An input of exactly the tile's size goes straight through ``net``; a larger one through MONAI's
    ``sliding_window_inference`` (overlap 0.25, Gaussian blending of the overlaps; differentiable, so it also
    trains), with ``sw_batch_size`` tiles per forward pass.
    """

    def __init__(self, net: nn.Module, tile: int, sw_batch_size: int = 4) -> None:
        super().__init__()
        self.net, self.tile, self.sw_batch_size = net, int(tile), int(sw_batch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (self.tile, self.tile):
            return self.net(x)
        from monai.inferers import sliding_window_inference  # MONAI is imported only where a baseline is built

        return sliding_window_inference(x, (self.tile, self.tile), self.sw_batch_size, self.net, overlap=0.25,
                                        mode="gaussian")


SEGMENTATION_BASELINES = ("unet", "attention_unet", "sa_unet", "transunet")
CLASSIFICATION_BASELINES = ("mobilenet", "efficientnet", "resnet", "swin_t")
LIBRARY = {
    "unet": "MONAI BasicUNet", "attention_unet": "MONAI AttentionUnet",
    "sa_unet": "SA-UNet from its paper (timm DropBlock2d)", "transunet": "MONAI UNETR (TransUNet stand-in)",
    "mobilenet": "torchvision mobilenet_v2", "efficientnet": "torchvision efficientnet_b0",
    "resnet": "torchvision resnet18", "swin_t": "torchvision swin_t",
}


class _SADropConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, drop: float, block: int) -> None:
        from timm.layers import DropBlock2d  # timm and monai take seconds to import: only the baselines pay

        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), DropBlock2d(drop, block),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SpatialAttention(nn.Module):
    """SA-UNet's spatial attention: ``x * sigmoid(conv7x7([mean_c(x), max_c(x)]))``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))


class SAUNet(nn.Module):
    """SA-UNet (Guo et al., ICPR 2020): structured-dropout U-Net with spatial attention in the bottleneck.

    ``[B, in_channels, H, W] -> [B, 1, H, W]`` logits; H, W divisible by 8.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, drop: float = 0.18, block: int = 7) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]

        def double(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(_SADropConv(cin, cout, drop, block), _SADropConv(cout, cout, drop, block))

        self.enc = nn.ModuleList([double(in_channels, w[0]), double(w[0], w[1]), double(w[1], w[2])])
        self.bottleneck_in = _SADropConv(w[2], w[3], drop, block)
        self.attention = SpatialAttention()
        self.bottleneck_out = _SADropConv(w[3], w[3], drop, block)
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[3], w[2], 2, stride=2), nn.ConvTranspose2d(w[2], w[1], 2, stride=2),
                                 nn.ConvTranspose2d(w[1], w[0], 2, stride=2)])
        self.dec = nn.ModuleList([double(2 * w[2], w[2]), double(2 * w[1], w[1]), double(2 * w[0], w[0])])
        self.head = nn.Conv2d(w[0], 1, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck_out(self.attention(self.bottleneck_in(x)))
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], 1))
        return self.head(x)


class GrayToRGB(nn.Module):
    """Repeat a one-channel input to three channels in front of a torchvision classifier."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)


def output_conv(model: nn.Module) -> nn.Conv2d:
    """The last-registered one-output 2D conv with a bias: the vessel-logit layer of a segmenter."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.out_channels == 1 and m.bias is not None]
    if not convs:
        raise InvalidParameterError(f"{type(model).__name__} has no one-channel output conv with a bias")
    return convs[-1]


def build_segmentation_baseline(name: str, image_size: int, width: int = 64, vit_dim: int = 768,
                                prior: float = 0.1) -> nn.Module:
    """A one-channel vessel segmenter (``[B,1,H,W] -> [B,1,H,W]`` logits) by name; see the module docstring.

    The output bias starts at the vessel ``prior``, as AngioQANet's does (same start for every arm).
    """
    model = _build_segmentation_baseline(name, image_size, width, vit_dim)
    set_prior_bias(output_conv(model), prior)
    return model


def _build_segmentation_baseline(name: str, image_size: int, width: int, vit_dim: int) -> nn.Module:
    from monai.networks.nets import UNETR, AttentionUnet, BasicUNet  # seconds to import: only when a baseline is built

    w = int(width)
    if name == "unet":
        return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1,
                         features=(w, 2 * w, 4 * w, 8 * w, 16 * w, w))
    if name == "attention_unet":
        return AttentionUnet(spatial_dims=2, in_channels=1, out_channels=1,
                             channels=(w, 2 * w, 4 * w, 8 * w, 16 * w), strides=(2, 2, 2, 2))
    if name == "sa_unet":
        return SAUNet(in_channels=1, width=16)  # the paper's size (about 0.5 M parameters) at any width
    if name == "transunet":
        if image_size % 16:
            raise InvalidParameterError(f"transunet (UNETR) needs an image size divisible by 16, got {image_size}")
        heads = 12 if vit_dim % 12 == 0 else 4
        tile = min(image_size, UNETR_TILE)
        return Tiled(UNETR(in_channels=1, out_channels=1, img_size=(tile, tile), feature_size=max(w // 4, 8),
                           hidden_size=vit_dim, mlp_dim=4 * vit_dim, num_heads=heads, spatial_dims=2), tile)
    raise InvalidParameterError(f"unknown segmentation baseline {name!r}; choose one of {SEGMENTATION_BASELINES}")


def build_classification_baseline(name: str, num_classes: int) -> nn.Module:
    """A one-channel quality classifier (``[B,1,H,W] -> [B,num_classes]``) from torchvision, untrained."""
    builders: dict[str, Callable[..., nn.Module]] = {
        "mobilenet": models.mobilenet_v2, "efficientnet": models.efficientnet_b0,
        "resnet": models.resnet18, "swin_t": models.swin_t,
    }
    if name not in builders:
        raise InvalidParameterError(f"unknown classification baseline {name!r}; choose one of {CLASSIFICATION_BASELINES}")
    return GrayToRGB(builders[name](weights=None, num_classes=num_classes))
