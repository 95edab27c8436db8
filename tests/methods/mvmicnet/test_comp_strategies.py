import pytest
import torch

from medtask.engine import RandomBatches, fit
from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet.codecs.learned import build_codec
from medtask.methods.mvmicnet.strategies import (
    SCALE_255,
    CodecMSEStrategy,
    FrozenCodecTaskStrategy,
    JointStrategy,
    TaskStrategy,
    codec_forward,
    load_modules,
)
from medtask.nn.detection import build_faster_rcnn
from medtask.nn.erfnet import build_erfnet

from comp_helpers import smooth_image


def seg_data(n=4, size=64):
    out = []
    for i in range(n):
        x = smooth_image(h=size, w=size, seed=i)
        out.append({"image": x, "mask": (x[0] > 0.5).long(), "id": str(i)})
    return out


def tiny_codec():
    torch.manual_seed(0)
    return build_codec("mbt2018-mean", N=8, M=8)


def test_joint_loss_terms_add_up_and_reach_both_networks():
    codec, net = tiny_codec(), build_erfnet(2, width=0.25)
    s = JointStrategy(codec, net, "segmentation", lambda1=0.01, lambda2=1e-4)
    batch = RandomBatches(seg_data(), 2)(0)
    torch.manual_seed(1)
    terms = s.loss_terms(batch)
    expected = terms["bpp"] + 0.01 * SCALE_255 * terms["mse"] + 1e-4 * SCALE_255 * terms["task"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["bpp"].item() > 0 and terms["task"].item() > 0
    for opt in s.optimizers().values():
        opt.zero_grad()
    s.compute_gradients(batch, 0)
    assert codec.g_a[0].weight.grad.abs().sum() > 0          # the task term reaches the encoder through x_hat
    assert net.output_conv.weight.grad.abs().sum() > 0
    assert codec.entropy_bottleneck.quantiles.grad is not None  # aux loss on its own optimiser
    assert any(p is codec.entropy_bottleneck.quantiles for p in s.optimizers()["aux"].param_groups[0]["params"])
    assert not any(p is codec.entropy_bottleneck.quantiles for p in s.optimizers()["codec"].param_groups[0]["params"])


def test_task_term_changes_codec_gradient():
    batch = RandomBatches(seg_data(), 2)(0)
    grads = []
    for lam2 in (0.0, 0.1):
        codec, net = tiny_codec(), build_erfnet(2, width=0.25)
        torch.manual_seed(0)
        net = build_erfnet(2, width=0.25)
        s = JointStrategy(codec, net, "segmentation", lambda1=0.01, lambda2=lam2)
        torch.manual_seed(1)
        s.compute_gradients(batch, 0)
        grads.append(codec.g_a[0].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_mse_strategy_fits_and_resumes(tmp_path):
    data = seg_data()
    ckpt = tmp_path / "mse.pt"

    def run(steps, checkpoint=None):
        strategy = CodecMSEStrategy(tiny_codec(), 0.01, lr=1e-3)
        torch.manual_seed(123)
        return strategy, fit(strategy, RandomBatches(data, 2), steps, checkpoint=checkpoint, checkpoint_every=1,
                             progress=False)

    _, r1 = run(3, ckpt)                 # "interrupted" after 3 of 5 steps
    resumed, r2 = run(5, ckpt)           # resumes at step 3 (weights, Adam state, RNG restored)
    straight, r3 = run(5)                # uninterrupted reference
    assert r1.steps == 3 and r2.resumed_from == 3 and len(r2.history) == 5
    assert {"bpp", "mse", "aux", "loss"} <= set(r2.history[-1])
    for a, b in zip(resumed.codec.parameters(), straight.codec.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert [h["loss"] for h in r2.history] == pytest.approx([h["loss"] for h in r3.history], rel=1e-5)


def test_stage2_leaves_codec_untouched_and_loads_stage1(tmp_path):
    data = seg_data()
    codec, net = tiny_codec(), build_erfnet(2, width=0.25)
    fit(JointStrategy(codec, net, "segmentation", 0.01, 1e-4), RandomBatches(data, 2), 2,
        checkpoint=tmp_path / "s1.pt", progress=False)
    codec2, net2 = tiny_codec(), build_erfnet(2, width=0.25)
    load_modules(tmp_path / "s1.pt", {"codec": codec2, "task": net2})
    assert torch.equal(codec2.g_a[0].weight, codec.g_a[0].weight)
    before = {k: v.clone() for k, v in codec2.state_dict().items()}
    task_before = net2.output_conv.weight.clone()
    s2 = FrozenCodecTaskStrategy(codec2, net2, "segmentation", lr=1e-2)
    fit(s2, RandomBatches(data, 2), 2, progress=False)
    assert all(torch.equal(before[k], v) for k, v in codec2.state_dict().items())
    assert not codec2.training
    assert not torch.equal(task_before, net2.output_conv.weight)
    with pytest.raises(InvalidParameterError, match="no module"):
        load_modules(tmp_path / "s1.pt", {"detector": net2})


def test_task_strategy_detection_and_bad_lambdas():
    torch.manual_seed(0)
    det = build_faster_rcnn(2, "mobilenet-v3-fpn", min_size=64, max_size=64)
    x = smooth_image(h=64, w=64)
    data = [{"image": x, "boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([1]), "id": "a"},
            {"image": x.flip(-1), "boxes": torch.tensor([[20.0, 4, 60, 30], [1, 1, 9, 9]]),
             "labels": torch.tensor([2, 1]), "id": "b"}]
    r = fit(TaskStrategy(det, "detection", lr=1e-4), RandomBatches(data, 2), 1, progress=False)
    assert r.history[0]["loss"] > 0
    with pytest.raises(InvalidParameterError, match="lambda2"):
        JointStrategy(tiny_codec(), det, "detection", 0.01, -1.0)
    with pytest.raises(InvalidParameterError, match="lambda1"):
        CodecMSEStrategy(tiny_codec(), 50.0)
    with pytest.raises(InvalidParameterError, match="task must be"):
        TaskStrategy(det, "classification")


def test_codec_forward_greyscale_odd_size():
    x_hat, bpp = codec_forward(tiny_codec().eval(), smooth_image(c=1, h=30, w=50).unsqueeze(0))
    assert x_hat.shape == (1, 1, 30, 50) and bpp.item() > 0


def test_segmentation_loss_is_ce_plus_dice():
    from medtask.methods.mvmicnet.strategies import SegmentationTask

    mask = torch.zeros(1, 4, 4, dtype=torch.long)
    mask[0, :2] = 1
    logits = torch.nn.functional.one_hot(mask, 2).permute(0, 3, 1, 2).float() * 20  # confident and right

    class Fixed(torch.nn.Module):
        def __init__(self, out):
            super().__init__()
            self.out = out

        def forward(self, x):
            return self.out

    batch = {"mask": mask}
    right = SegmentationTask().loss(Fixed(logits), torch.zeros(1, 3, 4, 4), batch).item()
    assert right == pytest.approx(0.0, abs=1e-3)
    everything_bg = torch.stack([torch.full((1, 4, 4), 20.0), torch.zeros(1, 4, 4)], 1)
    wrong = SegmentationTask().loss(Fixed(everything_bg), torch.zeros(1, 3, 4, 4), batch)
    ce_only = SegmentationTask(dice_weight=0).loss(Fixed(everything_bg), torch.zeros(1, 3, 4, 4), batch)
    # all-background prediction: soft Dice of the polyp ~ 1/(8+1) -> Dice loss ~0.89 on top of the CE
    assert (wrong - ce_only).item() == pytest.approx(1 - 1 / 9, abs=1e-3)


def test_a_narrower_box_head_trains_and_detects_with_a_quarter_of_the_head_weights():
    def head(net):
        return sum(p.numel() for m in (net.roi_heads.box_head, net.roi_heads.box_predictor) for p in m.parameters())

    torch.manual_seed(0)
    wide = build_faster_rcnn(3, "mobilenet-v3-fpn", min_size=64, max_size=64)
    narrow = build_faster_rcnn(3, "mobilenet-v3-fpn", min_size=64, max_size=64, box_head_size=256)
    assert head(narrow) < head(wide) / 4 + 1e5
    assert narrow.roi_heads.box_predictor.cls_score.out_features == 4
    x = [torch.rand(3, 64, 64)]
    losses = narrow(x, [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}])
    sum(losses.values()).backward()
    assert narrow.roi_heads.box_head.fc6.weight.grad is not None
    narrow.eval()
    assert set(narrow(x)[0]) == {"boxes", "labels", "scores"}
    with pytest.raises(InvalidParameterError, match="box_head_size"):
        build_faster_rcnn(3, "mobilenet-v3-fpn", box_head_size=0)
