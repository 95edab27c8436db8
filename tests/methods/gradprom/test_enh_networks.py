"""Enhancer, classifiers and U-Net: shapes, parameters, bad input."""

import pytest
import torch

from medtask.engine.predict import predict
from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.networks import build_enhancer
from medtask.nn.classifiers import build_classifier, cam_target_layer, output_classes
from medtask.nn.unet import build_unet


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_enhancer_scales(scale):
    net = build_enhancer(1, scale=scale, depth=2, width=8)
    x = torch.rand(2, 1, 8, 8)
    assert net(x).shape == (2, 1, 8 * scale, 8 * scale)


def test_enhancer_starts_at_identity_and_depth_width_are_parameters():
    x = torch.rand(2, 3, 8, 8)
    net = build_enhancer(3, scale=1, depth=3, width=4)
    assert torch.allclose(net(x), x)
    assert len(net.blocks) == 3 and net.head[0].out_channels == 4
    small = sum(p.numel() for p in build_enhancer(3, depth=2, width=8).parameters())
    big = sum(p.numel() for p in build_enhancer(3, depth=4, width=16).parameters())
    assert big > small


def test_enhancer_bad_input():
    with pytest.raises(InvalidParameterError):
        build_enhancer(3, scale=3)
    net = build_enhancer(3, scale=2, depth=1, width=4)
    with pytest.raises(InvalidParameterError, match="scale 2"):
        net.check_scale(4)
    net.check_scale(2)
    with pytest.raises(InvalidParameterError, match="3-channel"):
        net(torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize("arch,channels", [("resnet18", 1), ("resnet18", 3), ("resnet50", 2)])
def test_classifier_channels_and_classes(arch, channels):
    net = build_classifier(arch, num_classes=3, in_channels=channels)
    assert net(torch.rand(2, channels, 32, 32)).shape == (2, 3)
    assert output_classes(net) == 3 and cam_target_layer(net) is net.layer4[-1]
    net.train()
    p = torch.cat(predict(net, torch.rand(3, channels, 32, 32), batch_size=2, output=lambda out: torch.softmax(out, 1)))
    assert p.shape == (3, 3) and torch.allclose(p.sum(1), torch.ones(3))
    assert net.training, "predict gives the network its train/eval mode back"


def test_classifier_bad_input():
    with pytest.raises(InvalidParameterError, match="resnet18"):
        build_classifier("vgg16")
    with pytest.raises(InvalidParameterError):
        build_classifier("resnet18", num_classes=1)


def test_unet_shapes_and_errors():
    net = build_unet(3, num_classes=2, base=4, levels=2)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 2, 16, 16)
    with pytest.raises(InvalidParameterError, match="divisible"):
        net(torch.rand(1, 3, 18, 18))
    with pytest.raises(InvalidParameterError):
        build_unet(3, num_classes=1)
