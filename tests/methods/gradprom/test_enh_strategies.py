"""Every strategy trains a few steps through medtask.engine.fit and lowers its loss; resuming works."""

import pytest
import torch
from torch import nn

from medtask.engine import RandomBatches, fit
from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.networks import build_enhancer
from medtask.methods.gradprom.strategies import STRATEGIES, Auxiliary, DegradeBatch, make_strategy
from medtask.nn.unet import build_unet


def dataset(n=8, size=16, seg=False):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        img = torch.full((1, size, size), 0.2)
        label = i % 2
        r = 3 + label * 3  # class 1 has a bigger bright square
        img[:, 4:4 + r, 4:4 + r] = 0.8
        img = (img + 0.02 * torch.randn(img.shape, generator=g)).clamp(0, 1)
        s = {"image": img, "label": label, "id": str(i)}
        if seg:
            s["mask"] = (img[0] > 0.5).long()
        out.append(s)
    return out


def tiny_classifier():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 2))


def build(name, seg=False, scale=1, pretrain_on=None):
    torch.manual_seed(0)
    enh = build_enhancer(1, scale=scale, depth=1, width=8, batch_norm=False)
    rec = build_unet(1, 2, base=4, levels=1) if seg else tiny_classifier()
    task = "segmentation" if seg else "classification"
    if pretrain_on is not None:  # Frozen-params: φ is trained on clean images first, as in the study
        fit(make_strategy("benchmark-ii", recogniser=rec, task=task, lr=3e-2), lambda s: pretrain_on, 20,
            progress=False)
    return make_strategy(name, enhancer=enh, recogniser=rec, task=task, lam=0.5, lr=3e-3, lr_recogniser=3e-2)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("seg", [False, True])
def test_strategy_lowers_its_loss(name, seg):
    data = dataset(seg=seg)
    batches = RandomBatches(data, 8, seed=0, augment=DegradeBatch("gaussian", flip=False))
    fixed = batches(0)
    res = fit(build(name, seg, pretrain_on=fixed if name == "frozen" else None), lambda step: fixed, 20,
              progress=False)
    losses = [h["loss"] for h in res.history]
    assert sum(losses[-3:]) / 3 < 0.95 * sum(losses[:3]) / 3, losses
    if name in ("joint", "frozen", "gradprom", "gradprom-lemma"):
        assert all(-1.0 - 1e-6 <= h["cos"] <= 1.0 + 1e-6 for h in res.history)
        assert {"conflict", "dropped", "gate", "loss_ip", "loss_vr"} <= set(res.history[0])


@pytest.mark.parametrize("unsupervised", [False, True])
def test_super_resolution_and_unsupervised_batches(unsupervised):
    spec = {"name": "gaussian", "sigma": 0.2} if unsupervised else {"name": "bicubic", "factor": 2}
    batches = RandomBatches(dataset(), 4, seed=1, augment=DegradeBatch(spec, supervised=not unsupervised))
    b = batches(3)
    assert torch.equal(b["input"], batches(3)["input"])  # reproducible from (seed, step)
    if unsupervised:
        assert not torch.equal(b["target"], b["image"]) and b["input"].shape == b["image"].shape
    else:
        assert torch.equal(b["target"], b["image"]) and b["input"].shape[-1] == 8
    s = build("gradprom", scale=1 if unsupervised else 2)
    assert "cos" in s.compute_gradients(b, 0)


def test_scale_mismatch_and_unsupervised_sr_raise():
    b = RandomBatches(dataset(), 4, augment=DegradeBatch({"name": "bicubic", "factor": 4}))(0)
    with pytest.raises(InvalidParameterError, match="scale"):
        build("gradprom", scale=2).compute_gradients(b, 0)
    with pytest.raises(InvalidParameterError, match="Noise2Noise"):
        DegradeBatch({"name": "bicubic", "factor": 2}, supervised=False)


def test_two_auxiliaries_log_each_loss():
    torch.manual_seed(0)
    enh = build_enhancer(1, depth=1, width=4, batch_norm=False)
    auxes = [Auxiliary(tiny_classifier(), "classification", name="cls"),
             Auxiliary(build_unet(1, 2, base=4, levels=1), "segmentation", name="seg")]
    s = make_strategy("gradprom", enhancer=enh, recogniser=auxes)
    logs = s.compute_gradients(RandomBatches(dataset(seg=True), 4, augment=DegradeBatch("gaussian"))(0), 0)
    assert {"loss_vr_cls", "loss_vr_seg"} <= set(logs)
    assert set(s.optimizers()) == {"enhancer", "recogniser_cls", "recogniser_seg"}


def test_interrupted_run_resumes_identically(tmp_path):
    batches = RandomBatches(dataset(), 4, seed=0, augment=DegradeBatch("gaussian"))
    full = fit(build("gradprom"), batches, 6, progress=False)
    ck = tmp_path / "gp.pt"
    fit(build("gradprom"), batches, 3, checkpoint=ck, progress=False)
    s = build("gradprom")
    res = fit(s, batches, 6, checkpoint=ck, progress=False)
    assert res.resumed_from == 3
    assert [h["cos"] for h in res.history] == pytest.approx([h["cos"] for h in full.history])
