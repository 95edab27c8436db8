"""Degradations: seeded reproducibility, value ranges, shapes, bad input."""

import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.degradations import DEGRADATIONS, make_degradation


@pytest.fixture
def images():
    return torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("spec", [{"name": "gaussian", "sigma": 0.1}, {"name": "gaussian", "sigma": 0.3},
                                  {"name": "composite"}, {"name": "bicubic", "factor": 2},
                                  {"name": "bicubic", "factor": 4}])
def test_reproducible_from_seed_and_in_range(images, spec):
    d = make_degradation(spec)
    a, b, c = d(images, 7), d(images, 7), d(images, 8)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert a.shape[-1] == 16 // d.scale and a.shape[:2] == images.shape[:2]
    if d.stochastic:
        assert not torch.equal(a, c)
        assert torch.equal(d.noisy_target(images, 3), d.noisy_target(images, 3))
    else:
        assert torch.equal(a, c)


def test_gaussian_noise_has_the_requested_sigma():
    clean = torch.full((1, 1, 128, 128), 0.5)
    noisy = make_degradation("gaussian", sigma=0.1)(clean, 0)
    assert abs(float((noisy - clean).std()) - 0.1) < 0.005
    assert abs(float((noisy - clean).mean())) < 0.005


def test_noisy_target_is_unbiased_and_independent():
    clean = torch.full((1, 1, 64, 64), 0.95)
    d = make_degradation("gaussian", sigma=0.3)
    target = d.noisy_target(clean, 1)
    assert abs(float(target.mean()) - 0.95) < 0.02  # no clipping bias in the Noise2Noise target
    assert target.max() > 1.0
    assert abs(float(torch.corrcoef(torch.stack([(d(clean, 1) - clean).flatten(), (target - clean).flatten()]))[0, 1])) < 1


def test_composite_blurs_and_adds_poisson_noise():
    img = torch.zeros(1, 1, 32, 32)
    img[..., 16:, :] = 1.0
    d = make_degradation("composite", sigma=0.0, peak=1e6, blur_sigma=1.5)
    out = d(img, 0)
    assert 0.05 < float(out[0, 0, 15, 5]) < 0.95  # the edge is blurred, noise nearly off
    noisy = make_degradation("composite", sigma=0.0, peak=5.0, blur_sigma=0.5)(torch.full((1, 1, 64, 64), 0.5), 0)
    assert abs(float(noisy.var()) - 0.5 / 5.0) < 0.02  # Poisson: var = Y / peak


def test_single_image_and_generator_input(images):
    d = make_degradation("gaussian", sigma=0.2)
    assert d(images[0], 5).shape == images[0].shape
    assert torch.equal(d(images, torch.Generator().manual_seed(5)), d(images, 5))


@pytest.mark.parametrize("bad", [dict(name="gaussian", sigma=1.5), dict(name="gaussian", sigma=-0.1),
                                 dict(name="composite", sigma=2.0), dict(name="bicubic", factor=3),
                                 dict(name="speckle"), dict(name="gaussian", sigmaa=0.1)])
def test_bad_specs_raise_clear_errors(bad):
    with pytest.raises(InvalidParameterError):
        make_degradation(bad)


def test_unknown_name_lists_the_choices():
    with pytest.raises(InvalidParameterError, match="gaussian"):
        make_degradation("salt")
    assert set(DEGRADATIONS) == {"gaussian", "bicubic", "composite"}


def test_bicubic_needs_divisible_size_and_has_no_noisy_target():
    d = make_degradation("bicubic", factor=4)
    with pytest.raises(InvalidParameterError, match="divisible"):
        d(torch.rand(1, 3, 18, 18), 0)
    with pytest.raises(InvalidParameterError, match="Noise2Noise"):
        d.noisy_target(torch.rand(1, 3, 16, 16), 0)
