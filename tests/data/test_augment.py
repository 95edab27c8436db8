"""Zoomed, foreground-centred crops: shapes, labels kept crisp, zoom direction, centring, determinism;
flips move boxes with their images."""

import torch

from medtask.data.augment import flips, zoom_crops


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


def _box_image(boxes: torch.Tensor, h: int = 40, w: int = 60) -> torch.Tensor:
    img = torch.zeros(3, h, w)
    for x1, y1, x2, y2 in boxes.long().tolist():
        img[:, y1:y2, x1:x2] = 1.0
    return img


def test_flips_move_boxes_with_the_image():
    # each flipped image must still have its (flipped) boxes exactly on its bright rectangles,
    # for a list of boxes (counts differ) and for a stacked [N, K, 4] tensor (counts equal)
    lists = [torch.tensor([[2.0, 3.0, 12.0, 9.0]]), torch.tensor([[30.0, 20.0, 58.0, 38.0], [0.0, 0.0, 5.0, 5.0]])]
    stacked = torch.tensor([[[2.0, 3.0, 12.0, 9.0]], [[40.0, 1.0, 50.0, 30.0]], [[7.0, 25.0, 19.0, 39.0]]])
    for boxes in (lists, stacked):
        batch = {"image": torch.stack([_box_image(b) for b in boxes]), "boxes": boxes}
        moved = 0
        for seed in range(6):
            out = _run(flips, batch, seed)
            assert torch.is_tensor(out["boxes"]) == torch.is_tensor(boxes)
            for img, b, b0 in zip(out["image"], out["boxes"], boxes):
                assert torch.equal(img, _box_image(b))
                moved += int(not torch.equal(b, b0))
        assert moved > 0
