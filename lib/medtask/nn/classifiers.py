"""Image classifiers trained from scratch: torchvision ResNet-18/50/101 (``weights=None``), any channel count.

The auxiliary recognition model (VR) of Study C's diagnosis experiments (ResNet-18 in the CPU
profiles, ResNet-50/101 at the paper's scale).
"""

from __future__ import annotations

from torch import nn
from torchvision import models

from medtask.errors import InvalidParameterError

ARCHITECTURES = {"resnet18": models.resnet18, "resnet50": models.resnet50, "resnet101": models.resnet101}


def build_classifier(arch: str = "resnet18", num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    """A torchvision ResNet with random initialisation, ``num_classes`` outputs and ``in_channels`` inputs."""
    key = arch.lower().replace("-", "")
    if key not in ARCHITECTURES:
        raise InvalidParameterError(f"unknown classifier {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if num_classes < 2:
        raise InvalidParameterError(f"a classifier needs num_classes >= 2, got {num_classes}")
    net = ARCHITECTURES[key](weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = net.conv1
        net.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                              padding=old.padding, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.arch = key  # type: ignore[attr-defined]
    net.num_classes = num_classes  # type: ignore[attr-defined]
    net.in_channels = in_channels  # type: ignore[attr-defined]
    return net


def cam_target_layer(net: nn.Module) -> nn.Module:
    """The layer class-activation maps are taken from (the last residual block of a ResNet)."""
    if hasattr(net, "layer4"):
        return net.layer4[-1]
    raise InvalidParameterError(f"no CAM target layer known for {type(net).__name__}; pass target_layer explicitly")


def output_classes(net: nn.Module) -> int:
    """How many classes ``net`` predicts (from its last linear layer)."""
    if hasattr(net, "num_classes"):
        return int(net.num_classes)
    fc = getattr(net, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc.out_features
    raise InvalidParameterError(f"cannot tell how many classes {type(net).__name__} predicts")
