"""Study B: joint loss, strategies through fit(), baselines, evaluation/cost/Grad-CAM helpers."""

from __future__ import annotations

import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.methods.angioqa import study as st
from medtask.methods.angioqa import build_angioqa
from medtask.methods.angioqa.baselines import (
    CLASSIFICATION_BASELINES,
    SEGMENTATION_BASELINES,
    build_classification_baseline,
    build_segmentation_baseline,
)
from medtask.methods.angioqa.loss import JointLoss
from medtask.methods.angioqa.quality import make_versions
from medtask.methods.angioqa.strategies import ClsOnlyStrategy, MultiTaskStrategy, SegOnlyStrategy
from medtask.nn.losses import soft_dice_loss

torch.set_num_threads(1)
TINY = dict(encoder_channels=[4, 8, 8, 16, 16], decoder_channels=[16, 8, 8, 4], heads=2, head_hidden=16)


def _data(n: int = 6, size: int = 32):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        mask = torch.zeros(size, size, dtype=torch.long)
        mask[:, 4 + 3 * i: 6 + 3 * i] = 1
        img = (0.75 - 0.5 * mask[None].float() + 0.05 * torch.rand(1, size, size, generator=g)).clamp(0, 1)
        out.append({"image": img, "mask": mask, "id": f"s{i}"})
    vs = make_versions(out, 3, seed=0)
    for v in vs:
        v["fov"] = torch.ones(size, size, dtype=torch.bool)
    return vs


def _easy_data(n: int = 12, size: int = 32):
    """Learnable in a few steps: the grade blanks a band (none / top half / left half), the mask is a dark stripe."""
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        label = i % 3
        mask = torch.zeros(size, size, dtype=torch.long)
        mask[:, 4 + 2 * i: 7 + 2 * i] = 1
        img = 0.7 - 0.4 * mask[None].float() + 0.02 * torch.rand(1, size, size, generator=g)
        if label == 1:
            img[:, : size // 2] = 0.0
        elif label == 2:
            img[:, :, : size // 2] = 0.0
        out.append({"image": img.clamp(0, 1), "mask": mask, "label": label, "id": f"s{i}"})
    return out


def test_dice_loss_perfect_and_worst():
    t = torch.zeros(1, 1, 8, 8)
    t[..., 2:5] = 1
    assert soft_dice_loss(t * 40 - 20, t) < 0.01
    assert soft_dice_loss(-(t * 40 - 20), t) > 0.95


def test_joint_loss_weights_and_single_task():
    out = {"seg": torch.randn(2, 1, 8, 8), "quality": torch.randn(2, 3)}
    batch = {"mask": torch.randint(0, 2, (2, 8, 8)), "label": torch.tensor([0, 2])}
    total, logs = JointLoss(seg_weight=1, cls_weight=0.5)(out, batch)
    seg, _ = JointLoss().seg_loss(out["seg"], batch["mask"])
    cls, _ = JointLoss().cls_loss(out["quality"], batch["label"])
    assert torch.allclose(total, seg + 0.5 * cls)
    t2, logs2 = JointLoss()({"seg": out["seg"]}, batch)
    assert torch.allclose(t2, seg) and "ce" not in logs2
    with pytest.raises(InvalidParameterError):
        JointLoss(seg_weight=-1)
    with pytest.raises(InvalidParameterError, match="neither"):
        JointLoss(cls_weight=0)({"quality": out["quality"]}, batch)


@pytest.mark.parametrize("variant,task", [("full", "both"), ("seg_only", "seg"), ("cls_only", "cls")])
def test_strategies_lower_the_loss_through_fit(variant, task, tmp_path):
    torch.manual_seed(0)
    data = _easy_data()
    model = build_angioqa(variant, **TINY)
    res = st.train(model, task, data, steps=40, batch_size=6, lr=3e-3, checkpoint=tmp_path / "c.pt", progress=False)
    losses = [h["loss"] for h in res.history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    again = st.train(model, task, data, steps=40, batch_size=6, checkpoint=tmp_path / "c.pt", progress=False)
    assert again.resumed_from == 40  # finished checkpoint: returned at once


def test_multitask_strategy_rejects_single_task_model():
    s = MultiTaskStrategy(build_angioqa("seg_only", **TINY))
    with pytest.raises(InvalidParameterError, match="both"):
        s.compute_gradients({"image": torch.rand(2, 1, 32, 32), "mask": torch.zeros(2, 32, 32, dtype=torch.long),
                             "label": torch.tensor([0, 1])}, 0)


def test_bare_tensor_models_work_with_single_task_strategies():
    batch = {"image": torch.rand(2, 1, 32, 32), "mask": torch.randint(0, 2, (2, 32, 32)), "label": torch.tensor([0, 1])}
    seg = SegOnlyStrategy(build_segmentation_baseline("sa_unet", 32))
    assert "dice_loss" in seg.compute_gradients(batch, 0)
    cls = ClsOnlyStrategy(build_classification_baseline("mobilenet", 3))
    assert "ce" in cls.compute_gradients(batch, 0)


@pytest.mark.parametrize("name", SEGMENTATION_BASELINES)
def test_segmentation_baselines_shape(name):
    m = build_segmentation_baseline(name, 32, width=4, vit_dim=24).eval()
    with torch.no_grad():
        assert m(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("name", CLASSIFICATION_BASELINES)
def test_classification_baselines_shape(name):
    m = build_classification_baseline(name, 3).eval()
    with torch.no_grad():
        assert m(torch.rand(1, 1, 64, 64)).shape == (1, 3)


def test_unetr_segments_larger_images_tile_by_tile():
    """UNETR's position embeddings fix its tile; a larger image is segmented by overlapping tiles, with gradients."""
    from medtask.methods.angioqa.baselines import UNETR_TILE, Tiled

    torch.manual_seed(0)
    small = build_segmentation_baseline("transunet", 32, width=8, vit_dim=48)
    assert isinstance(small, Tiled) and small.tile == 32  # below the tile size, the image is the tile
    big = build_segmentation_baseline("transunet", 2 * UNETR_TILE, width=8, vit_dim=48)
    assert big.tile == UNETR_TILE
    x = torch.rand(1, 1, 2 * UNETR_TILE, 2 * UNETR_TILE, requires_grad=True)
    y = big(x)
    assert y.shape == x.shape
    y.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():  # a tile-sized input goes straight through the network
        t = torch.rand(1, 1, UNETR_TILE, UNETR_TILE)
        assert torch.equal(big(t), big.net(t))


def test_unknown_baselines_raise():
    with pytest.raises(InvalidParameterError):
        build_segmentation_baseline("segformer", 32)
    with pytest.raises(InvalidParameterError):
        build_classification_baseline("vgg", 3)
    with pytest.raises(InvalidParameterError, match="divisible by 16"):
        build_segmentation_baseline("transunet", 40)


def test_evaluate_cost_and_gradcam():
    data = _data(3)
    model = build_angioqa("full", **TINY)
    m = st.evaluate(model, data, "both", batch_size=4)
    assert 0 <= m["dice"] <= 1 and 0 <= m["sensitivity"] <= 1 and 0 <= m["accuracy"] <= 1
    assert sum(map(sum, m["confusion"])) == len(data)
    c = st.cost(model, 32, repeats=2)
    assert c["params"] > 0 and c["gflops"] > 0 and c["cpu_fps"] > 0
    cams = st.gradcam(model, model.stages[-1], torch.stack([d["image"] for d in data[:2]]), classes=[0, 2])
    assert cams.shape == (2, 32, 32) and cams.min() >= 0 and cams.max() <= 1 + 1e-6


def test_perfect_prediction_scores_one():
    data = _data(2)

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.lookup = {float(d["image"].sum()): d for d in data}

        def forward(self, x):
            ds = [self.lookup[float(xi.sum())] for xi in x]
            seg = torch.stack([d["mask"][None].float() * 40 - 20 for d in ds])
            q = torch.nn.functional.one_hot(torch.tensor([d["label"] for d in ds]), 3).float() * 10
            return {"seg": seg, "quality": q}

    m = st.evaluate(Oracle(), data, "both")
    assert m["dice"] == pytest.approx(1) and m["accuracy"] == 1 and m["macro_f1"] == pytest.approx(1)


def test_flip_augment_flips_image_and_mask_together():
    b = {"image": torch.arange(16.).reshape(1, 1, 4, 4), "mask": torch.arange(16).reshape(1, 4, 4), "id": ["a"]}
    for seed in range(4):
        out = st.flip_augment(b, torch.Generator().manual_seed(seed))
        assert torch.equal(out["image"][0, 0].long(), out["mask"][0])
