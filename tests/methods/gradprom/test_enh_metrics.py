"""PSNR/SSIM and classification metrics against values computed by hand / scikit-image."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from medtask.errors import InvalidParameterError
from medtask.metrics.classification import classification_metrics
from medtask.metrics.image import psnr, ssim


def test_psnr_by_hand():
    a = torch.zeros(2, 1, 8, 8)
    b = a.clone()
    b[0] += 0.1
    b[1] += 0.01
    assert psnr(b, a).tolist() == pytest.approx([20.0, 40.0], rel=1e-4)
    assert float(psnr(b, a, reduction="mean")) == pytest.approx(30.0, rel=1e-4)


def test_ssim_matches_scikit_image():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 1, 48, 48, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    ref = structural_similarity(a[0, 0].numpy(), b[0, 0].numpy(), data_range=1.0, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    assert float(ssim(b, a)[0]) == pytest.approx(ref, abs=2e-3)
    assert float(ssim(a, a)[0]) == pytest.approx(1.0, abs=1e-5)


def test_classification_metrics_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.7, 0.3]])
    labels = torch.tensor([0, 1, 1, 1, 0])
    m = classification_metrics(probs, labels)
    assert m["accuracy"] == pytest.approx(4 / 5)
    assert m["balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert m["auc"] == pytest.approx(1.0)  # every positive scores above every negative
    assert math.isnan(classification_metrics(probs[:1], labels[:1])["auc"])
    with pytest.raises(InvalidParameterError):
        classification_metrics(probs, torch.tensor([0, 1, 2, 1, 0]))


def test_image_metric_shapes_must_match():
    with pytest.raises(InvalidParameterError):
        psnr(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
    assert np.isfinite(float(ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 8))[0]))
