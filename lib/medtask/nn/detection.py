"""Faster R-CNN builders (torchvision), randomly initialised (``weights=None``: nothing is downloaded).

``resnet50-fpn``         the paper profile's detector (Ren et al. 2015 with a ResNet-50-FPN backbone)
``mobilenet-v3-fpn``     MobileNetV3-Large-FPN backbone, for CPU profiles
``resnet18-fpn``         ResNet-18-FPN backbone, for CPU profiles

Images are fed in [0, 1]; torchvision's transform normalises and resizes them to
``min_size``/``max_size`` (set these to the study's image size to avoid upsampling on CPU).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from medtask.data.io import parse_size
from medtask.errors import InvalidParameterError

BACKBONES = ("resnet50-fpn", "mobilenet-v3-fpn", "resnet18-fpn")


def build_faster_rcnn(num_classes: int, backbone: str = "resnet50-fpn", *, min_size: int = 800,
                      max_size: int = 1333, box_head_size: int | None = None, **kwargs) -> nn.Module:
    """A Faster R-CNN for ``num_classes`` foreground classes (+1 background added here); all layers train.

    ``box_head_size`` sets the width of the two-layer box head (torchvision: 1,024 units on 256×7×7 pooled
    features, three quarters of a MobileNetV3-FPN detector's weights); ``None`` keeps torchvision's.
    """
    from torchvision.models.detection import (FasterRCNN, fasterrcnn_mobilenet_v3_large_fpn,
                                              fasterrcnn_resnet50_fpn)
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    if num_classes < 1:
        raise InvalidParameterError(f"num_classes counts foreground classes and must be >= 1, got {num_classes}")
    if box_head_size is not None and box_head_size < 1:
        raise InvalidParameterError(f"box_head_size must be >= 1 (or None for torchvision's 1,024), got {box_head_size}")
    n = num_classes + 1
    common = dict(min_size=min_size, max_size=max_size, **kwargs)
    key = backbone.lower().replace("_", "-")
    if key == "resnet50-fpn":
        model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=n, **common)
    elif key == "mobilenet-v3-fpn":
        model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=n, **common)
    elif key == "resnet18-fpn":
        bb = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)
        model = FasterRCNN(bb, num_classes=n, **common)
    else:
        raise InvalidParameterError(f"unknown detector backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if box_head_size is not None:  # both new layers start random, as every layer here does
        pooled = model.roi_heads.box_roi_pool.output_size
        side = pooled[0] * pooled[1] if isinstance(pooled, (tuple, list)) else pooled ** 2
        model.roi_heads.box_head = TwoMLPHead(model.backbone.out_channels * side, box_head_size)
        model.roi_heads.box_predictor = FastRCNNPredictor(box_head_size, n)
    return model


def detector_for_frames(num_classes: int, backbone: str, size: Any, **kwargs) -> nn.Module:
    """:func:`build_faster_rcnn` with its internal resize set to frames of ``size`` (``n`` or ``(H, W)``), so that
    it never rescales them (``min_size`` = the short side, ``max_size`` = the long one)."""
    h, w = parse_size(size)
    return build_faster_rcnn(num_classes, backbone, min_size=min(h, w), max_size=max(h, w), **kwargs)
