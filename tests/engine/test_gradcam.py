"""Grad-CAM and the class probability shown beside it: a blank map is a network sure of the other class."""

import numpy as np
import torch
from torch import nn

from medtask.engine.gradcam import class_probabilities, grad_cam


def _biased_classifier() -> nn.Sequential:
    """Non-negative features; class 0 adds them, class 1 subtracts them (so the net always says class 0)."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[0].bias.fill_(0.1)
        net[4].weight.copy_(torch.tensor([[4.0] * 4, [-4.0] * 4]))
        net[4].bias.zero_()
    return net.train()


def test_a_network_sure_of_the_other_class_gives_a_blank_map_and_says_so():
    net = _biased_classifier()
    images = torch.zeros(2, 1, 12, 12)
    images[:, :, 3:7, 4:9] = 1.0  # a bright patch: the features are not uniform
    own = grad_cam(net, images, target_layer=net[1], classes=[0, 0])
    other = grad_cam(net, images, target_layer=net[1], classes=[1, 1])
    assert own.shape == (2, 12, 12) and own.max() > 0.99 and own[:, 4, 6].min() > own[:, 11, 0].max()
    assert np.all(other == 0)  # no positive evidence for class 1 anywhere
    p = class_probabilities(net, images, [0, 1])
    assert p.shape == (2,) and p[0] > 0.99 and p[1] < 0.01 and abs(p[0] + p[1] - 1) < 1e-6
    assert net.training  # both calls restore the mode they found
