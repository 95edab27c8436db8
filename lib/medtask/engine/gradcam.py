"""Grad-CAM of any classifier-like network (the ``grad-cam`` package), for every study."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from medtask.engine.predict import predict
from medtask.nn.classifiers import cam_target_layer


def grad_cam(net: nn.Module, images: torch.Tensor, target_layer: nn.Module | None = None,
             classes: Sequence[int] | None = None) -> np.ndarray:
    """Grad-CAM maps ``[N, H, W]`` in [0, 1] of ``net``'s logits for ``classes`` (default: each image's prediction).

    ``net`` must return class logits ``[N, K]`` (wrap a multi-output model first); ``target_layer``
    defaults to a torchvision classifier's last block (:func:`medtask.nn.classifiers.cam_target_layer`).
    The network is put in eval mode and given gradients for the call, then restored.
    """
    layer = target_layer if target_layer is not None else cam_target_layer(net)
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    images = images.to(dev).clone()  # a normal tensor even if made under inference_mode
    with torch.enable_grad():
        # grad-cam needs gradients w.r.t. activations; a frozen network may have requires_grad off
        flags = [p.requires_grad for p in net.parameters()]
        for p in net.parameters():
            p.requires_grad_(True)
        try:
            targets = None if classes is None else [ClassifierOutputTarget(int(c)) for c in classes]
            with GradCAM(model=net, target_layers=[layer]) as cam:
                maps = cam(input_tensor=images, targets=targets)
        finally:
            for p, f in zip(net.parameters(), flags):
                p.requires_grad_(f)
    net.train(was)
    return maps


def class_probabilities(net: nn.Module, images: torch.Tensor, classes: Sequence[int]) -> np.ndarray:
    """Softmax probability ``[N]`` that ``net`` gives each image's class in ``classes`` (eval mode, restored).

    Shown beside a Grad-CAM map: Grad-CAM keeps only positive evidence for the class (a ReLU of the
    weighted activations), so a network nearly sure of another class gives a blank map.
    """
    dev = next(net.parameters()).device
    p = torch.cat(predict(net, images, device=dev, output=lambda logits: torch.softmax(logits.float(), dim=1).cpu()))
    return p[torch.arange(len(p)), torch.as_tensor(list(classes))].numpy()
