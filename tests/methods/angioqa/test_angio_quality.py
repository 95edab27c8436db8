"""Study B's degradation protocol: reproducible from its seed, graded, leakage-free; angiogram-like conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.methods.angioqa.quality import (
    FAULTS,
    GRADES,
    angiogram_like,
    apply_fault,
    check_no_leakage,
    degrade,
    make_versions,
    motion_kernel,
    split_by_source,
)


def _sources(n: int = 4, size: int = 32):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        mask = torch.zeros(size, size, dtype=torch.long)
        mask[size // 2 - 1:size // 2 + 1, :] = 1
        mask[:, 5 + i] = 1
        img = 0.7 + 0.05 * torch.rand(1, size, size, generator=g) - 0.4 * mask[None].float()
        out.append({"image": img.clamp(0, 1), "mask": mask, "id": f"src{i}"})
    return out


def test_versions_reproducible_from_seed_and_order_independent():
    a = make_versions(_sources(), 3, seed=5)
    b = make_versions(list(reversed(_sources())), 3, seed=5)
    b = sorted(b, key=lambda s: [x["id"] for x in a].index(s["id"]))
    for x, y in zip(a, b):
        assert x["id"] == y["id"] and x["label"] == y["label"] and x["faults"] == y["faults"]
        assert torch.equal(x["image"], y["image"])
    c = make_versions(_sources(), 3, seed=6)
    assert any(not torch.equal(x["image"], y["image"]) for x, y in zip(a, c))


def test_grades_balanced_and_faults_match_grade():
    vs = make_versions(_sources(6), 3, seed=0)
    counts = np.bincount([v["label"] for v in vs], minlength=3)
    assert counts.tolist() == [6, 6, 6]
    for v in vs:
        sev = [int(f.split(":")[1]) for f in v["faults"].split("+") if f]
        assert (max(sev) if sev else 0) == v["label"]
        assert v["image"].shape == (1, 32, 32) and 0 <= float(v["image"].min()) <= float(v["image"].max()) <= 1


@pytest.mark.parametrize("fault", FAULTS)
def test_severe_faults_change_the_image_more_than_mild(fault):
    src = _sources(1, 48)[0]
    x, m = src["image"][0].numpy(), src["mask"].numpy() > 0
    diffs = {}
    for sev in (1, 2):
        d = [np.abs(apply_fault(x, m, fault, sev, np.random.default_rng(k)) - x).mean() for k in range(6)]
        diffs[sev] = float(np.mean(d))
    assert diffs[2] > diffs[1] > 0


def test_filling_only_touches_vessels():
    src = _sources(1, 48)[0]
    x, m = src["image"][0].numpy(), src["mask"].numpy() > 0
    y = apply_fault(x, m, "filling", 2, np.random.default_rng(0))
    from scipy import ndimage

    far = ~ndimage.binary_dilation(m, iterations=1)
    assert np.allclose(y[far], x[far]) and not np.allclose(y, x)


def test_motion_kernel_normalised():
    k = motion_kernel(7.0, 0.3)
    assert abs(k.sum() - 1) < 1e-5 and k.shape[0] % 2 == 1


def test_split_by_source_is_leakage_free_and_check_catches_leaks():
    vs = make_versions(_sources(4), 3, seed=0)
    train, test = split_by_source(vs, {"src1", "src3"})
    assert {s["source"] for s in train}.isdisjoint({s["source"] for s in test})
    assert len(train) + len(test) == len(vs)
    check_no_leakage(train, test)
    leaked = train[0]["source"]
    with pytest.raises(InvalidParameterError, match=leaked):
        check_no_leakage(train, test + [train[0]])


def test_bad_input():
    src = _sources(1)[0]
    with pytest.raises(InvalidParameterError, match="grade"):
        degrade(src["image"], src["mask"], 3, np.random.default_rng(0))
    with pytest.raises(InvalidParameterError, match="angiogram_like"):
        degrade(torch.rand(3, 32, 32), src["mask"], 1, np.random.default_rng(0))
    with pytest.raises(InvalidParameterError, match="RGB"):
        angiogram_like(torch.rand(1, 32, 32))
    with pytest.raises(InvalidParameterError, match="fault"):
        apply_fault(np.zeros((8, 8), np.float32), np.zeros((8, 8), bool), "rain", 1, np.random.default_rng(0))
    assert len(GRADES) == 3


def test_angiogram_like_makes_vessels_dark_on_bright_background():
    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w]
    fov = (yy - 32) ** 2 + (xx - 32) ** 2 < 28 ** 2
    vessel = (np.abs(yy - 32) < 2) & fov
    rgb = np.zeros((3, h, w), np.float32)
    rgb[0][fov], rgb[1][fov], rgb[2][fov] = 0.8, 0.5, 0.2
    rgb[1][vessel] = 0.25
    out = angiogram_like(torch.from_numpy(rgb), torch.from_numpy(fov))
    assert out.shape == (1, h, w) and 0 <= float(out.min()) and float(out.max()) <= 1
    o = out[0].numpy()
    bg = fov & ~vessel
    assert o[vessel].mean() < o[bg].mean() - 0.3
    assert abs(o[~fov].mean() - np.median(o[fov])) < 0.15  # outside the FOV filled with background, not black
