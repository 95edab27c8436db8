"""Study B modules: shapes, the parameter budget, ablation switches, bad input."""

from __future__ import annotations

import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.methods.angioqa import PAPER_PARAMETERS, AngioQANet, build_angioqa, count_parameters
from medtask.methods.angioqa.modules import (
    DepthwiseSeparableConv,
    EncoderStage,
    FeatureAggregation,
    LocalGlobalSelfAttention,
    QualityHead,
    SegmentationDecoder,
)

torch.set_num_threads(1)


def test_depthwise_separable_conv_shape_and_factorisation():
    m = DepthwiseSeparableConv(8, 16, stride=2)
    assert m(torch.rand(2, 8, 10, 12)).shape == (2, 16, 5, 6)
    assert m.depthwise.groups == 8 and m.pointwise.kernel_size == (1, 1)
    dense = 3 * 3 * 8 * 16
    assert count_parameters(m.depthwise) + count_parameters(m.pointwise) < dense / 4


def test_encoder_stage_shape():
    assert EncoderStage(8, 16, depth=2)(torch.rand(1, 8, 16, 16)).shape == (1, 16, 8, 8)


@pytest.mark.parametrize("hw", [(16, 16), (12, 20)])  # 12x20 is not a multiple of the window: padded
def test_lgsam_keeps_shape_and_mixes_globally(hw):
    torch.manual_seed(0)
    m = LocalGlobalSelfAttention(16, heads=4, window=8, pool=2).eval()
    x = torch.rand(1, 16, *hw)
    y = m(x)
    assert y.shape == x.shape
    # global path: changing one far-away pixel changes the output in another window
    x2 = x.clone()
    x2[..., -1, -1] += 5.0
    assert not torch.allclose(m(x2)[..., 0, 0], y[..., 0, 0])


def test_lgsam_rejects_bad_heads():
    with pytest.raises(ValueError, match="divisible"):
        LocalGlobalSelfAttention(10, heads=4)


def test_fam_shape():
    assert FeatureAggregation(8, 16)(torch.rand(2, 8, 6, 6), torch.rand(2, 16, 6, 6)).shape == (2, 8, 6, 6)


def test_decoder_shape():
    feats = [torch.rand(1, c, 32 // 2 ** i, 32 // 2 ** i) for i, c in enumerate([4, 8, 16])]
    assert SegmentationDecoder([4, 8, 16], [8, 4])(feats).shape == (1, 1, 32, 32)


def test_quality_head_uses_the_segmentation():
    torch.manual_seed(0)
    head = QualityHead(16, 3, hidden=8, use_seg=True).eval()
    f, img = torch.rand(2, 16, 2, 2), torch.rand(2, 1, 32, 32)
    a = head(f, torch.zeros(2, 1, 32, 32), img)
    b = head(f, torch.ones(2, 1, 32, 32), img)
    assert a.shape == (2, 3) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="segmentation"):
        head(f)
    assert QualityHead(16, 3, hidden=8, use_seg=False)(f).shape == (2, 3)


def test_parameter_count_matches_the_paper_within_5_percent():
    n = count_parameters(AngioQANet())
    assert abs(n - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.05, n


@pytest.mark.parametrize("variant,keys", [("full", {"seg", "quality"}), ("no_lgsam", {"seg", "quality"}),
                                          ("no_fam", {"seg", "quality"}), ("no_link", {"seg", "quality"}),
                                          ("seg_only", {"seg"}), ("cls_only", {"quality"})])
def test_variants_output_shapes(variant, keys):
    m = build_angioqa(variant, encoder_channels=[4, 8, 8, 16, 16], decoder_channels=[16, 8, 8, 4], heads=2,
                      head_hidden=8)
    out = m(torch.rand(2, 1, 32, 32))
    assert set(out) == keys
    if "seg" in out:
        assert out["seg"].shape == (2, 1, 32, 32)
    if "quality" in out:
        assert out["quality"].shape == (2, 3)


def test_ablations_remove_their_module():
    full = build_angioqa("full")
    assert any(isinstance(m, LocalGlobalSelfAttention) for m in full.modules())
    assert not any(isinstance(m, LocalGlobalSelfAttention) for m in build_angioqa("no_lgsam").modules())
    assert not any(isinstance(m, FeatureAggregation) for m in build_angioqa("no_fam").modules())
    assert build_angioqa("no_link").quality_head.seg_encoder is None
    assert build_angioqa("seg_only").quality_head is None and build_angioqa("cls_only").decoder is None


def test_bad_input_gives_clear_errors():
    m = build_angioqa("full", encoder_channels=[4, 8, 8, 16, 16], decoder_channels=[16, 8, 8, 4], heads=2)
    with pytest.raises(InvalidParameterError, match="1 input channel"):
        m(torch.rand(1, 3, 32, 32))
    with pytest.raises(InvalidParameterError, match="multiples of 16"):
        m(torch.rand(1, 1, 30, 32))
    with pytest.raises(InvalidParameterError, match="batch"):
        m(torch.rand(1, 32, 32))
    with pytest.raises(InvalidParameterError, match="unknown option"):
        AngioQANet(widht=3)
    with pytest.raises(InvalidParameterError, match="variant"):
        build_angioqa("no_everything")


def test_vessel_logits_start_at_the_prior():
    from medtask.methods.angioqa.baselines import (
        SEGMENTATION_BASELINES,
        build_segmentation_baseline,
        output_conv,
    )

    m = build_angioqa("seg_only", encoder_channels=[4, 8, 8, 16, 16], decoder_channels=[16, 8, 8, 4], heads=2)
    prior = float(torch.logit(torch.tensor(0.1)))
    assert float(m.decoder.head.bias) == pytest.approx(prior)
    for name in SEGMENTATION_BASELINES:
        assert float(output_conv(build_segmentation_baseline(name, 32, width=4, vit_dim=24)).bias) == pytest.approx(prior)
