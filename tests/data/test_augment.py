"""Zoomed, foreground-centred crops: shapes, labels kept crisp, zoom direction, centring, determinism."""

import torch

from medtask.data.augment import zoom_crops


def _batch(n: int = 6, h: int = 96, w: int = 128) -> dict:
    img = torch.rand(n, 3, h, w)
    mask = torch.zeros(n, h, w, dtype=torch.long)
    mask[:, 70:80, 100:112] = 1          # a small object near the bottom-right corner
    return {"image": img, "mask": mask}


def _run(aug, batch, seed=0):
    return aug(batch, torch.Generator().manual_seed(seed))


def test_shapes_and_labels_stay_binary():
    out = _run(zoom_crops(48, (0.5, 2.0), p_fg=0.5), _batch())
    assert out["image"].shape == (6, 3, 48, 48) and out["mask"].shape == (6, 48, 48)
    assert set(out["mask"].unique().tolist()) <= {0, 1}


def test_foreground_centred_crops_contain_the_object_and_zoom_enlarges_it():
    b = _batch()
    big = _run(zoom_crops(48, (2.0, 2.0), p_fg=1.0), b)
    small = _run(zoom_crops(48, (1.0, 1.0), p_fg=1.0), b)
    # every centred crop sees the object; zooming 2x makes it cover about 4x the crop's pixels
    assert (big["mask"].flatten(1).sum(1) > 0).all() and (small["mask"].flatten(1).sum(1) > 0).all()
    ratio = big["mask"].float().mean() / small["mask"].float().mean()
    assert 2.5 < ratio < 5.5


def test_uncentred_crops_often_miss_a_small_object():
    out = _run(zoom_crops(32, (1.0, 1.0), p_fg=0.0), _batch(n=40))
    assert (out["mask"].flatten(1).sum(1) == 0).sum() > 10


def test_same_seed_same_crops():
    b = _batch()
    a1, a2 = _run(zoom_crops(40), b, seed=3), _run(zoom_crops(40), b, seed=3)
    assert torch.equal(a1["image"], a2["image"]) and torch.equal(a1["mask"], a2["mask"])
