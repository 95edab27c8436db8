import math

import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.metrics.bdrate import bd_quality, bd_rate, bd_table
from medtask.metrics.detection import DetectionMeter, detection_scores
from medtask.metrics.image import ms_ssim_any, msssim_settings, psnr_rgb8
from medtask.metrics.segmentation import SegmentationMeter, segmentation_scores

from comp_helpers import smooth_image

# Published example 1: the demo curves of the VCEG-M33 Python port (github.com/Anserw/Bjontegaard_metric,
# demo.py "Sample 1"); BD-rate 31.397374054908013 % with the cubic (VCEG-M33) fit, as evaluated independently.
S1 = ([686.76, 309.58, 157.11, 85.95], [40.28, 37.18, 34.24, 31.42],
      [893.34, 407.8, 204.93, 112.75], [40.39, 37.21, 34.17, 31.24])
# Published example 2: "Test 1" of FAU-LMS/bjontegaard (x265 presets, README and example_usage.py);
# cubic BD-rate -4.420462706090111 %. PCHIP/Akima values are those of bjontegaard 1.3.0, whose PCHIP
# reproduces the JCT-VC CTC Excel sheet to 10 decimals.
T1 = ([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851],
      [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987])


def test_bd_rate_published_examples():
    assert bd_rate(*S1, method="cubic") == pytest.approx(31.397374054908013, abs=1e-6)
    assert bd_rate(*T1, method="cubic") == pytest.approx(-4.420462706090111, abs=1e-6)
    assert bd_rate(*T1, method="pchip") == pytest.approx(-4.417485350589045, abs=1e-8)
    assert bd_rate(*T1, method="akima") == pytest.approx(-4.425245156997493, abs=1e-8)
    assert bd_quality(*T1, method="pchip") == pytest.approx(0.11969278542479489, abs=1e-8)
    assert bd_quality(*S1, method="cubic") == pytest.approx(-1.184897921770359, abs=1e-8)


def test_bd_rate_sanity_and_table():
    r, q = [0.1, 0.2, 0.4, 0.8], [30.0, 33.0, 36.0, 39.0]
    half = [x / 2 for x in r]
    assert bd_rate(r, q, half, q) == pytest.approx(-50.0)
    assert bd_quality(r, q, r, [v + 1 for v in q]) == pytest.approx(1.0)
    assert math.isnan(bd_rate(r, q, [10, 20, 40, 80], [50, 51, 52, 53]))  # no overlap
    with pytest.raises(InvalidParameterError, match="does not rise"):
        bd_rate(r, [30, 29, 36, 39], r, q)
    t = bd_table({"a": (r, q), "b": (half, q), "c": (r, [30, 29, 36, 39])})
    assert t.loc["a", "b"] == pytest.approx(-50.0) and t.loc["b", "a"] == pytest.approx(100.0)
    assert math.isnan(t.loc["a", "c"]) and t.loc["a", "a"] == 0


def test_psnr_rgb8_known_value():
    x = torch.zeros(1, 3, 8, 8)
    y = x.clone()
    y[..., 0, 0] = 10 / 255  # one pixel off by 10 levels in all channels: MSE = 100/64
    assert psnr_rgb8(y, x).item() == pytest.approx(10 * math.log10(255 ** 2 / (100 / 64)), rel=1e-5)
    g = torch.rand(1, 1, 8, 8)
    assert psnr_rgb8(g, g).item() == math.inf


def test_ms_ssim_any_small_images():
    assert msssim_settings(256, 256)["win_size"] == 11
    s = msssim_settings(128, 128)
    assert s["scales"] == 5 and s["win_size"] == 7 and sum(s["weights"]) == pytest.approx(1)
    assert msssim_settings(64, 64)["win_size"] == 3
    assert ms_ssim_any(smooth_image(h=40, w=48).unsqueeze(0), smooth_image(h=40, w=48).unsqueeze(0)).item() == \
        pytest.approx(1.0, abs=1e-6)
    x = smooth_image(h=128, w=128).unsqueeze(0)
    assert ms_ssim_any(x, x).item() == pytest.approx(1.0, abs=1e-6)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert 0.5 < ms_ssim_any(noisy, x).item() < 0.99
    with pytest.raises(InvalidParameterError):
        msssim_settings(30, 30)


def test_miou_and_dice_known_answer():
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1]]])
    s = segmentation_scores(pred, target)
    # background IoU 1/2, foreground IoU 2/3 -> mIoU 7/12; Dice(fg) = 2*2/(3+2) = 0.8
    assert s["miou"] == pytest.approx(7 / 12)
    assert s["iou_fg"] == pytest.approx(2 / 3)
    assert s["dice"] == pytest.approx(0.8)
    assert s["macc"] == pytest.approx((1 / 2 + 1) / 2) and s["pixel_acc"] == pytest.approx(3 / 4)
    m = SegmentationMeter(2)  # batched accumulation = one big confusion matrix
    logits = torch.stack([torch.nn.functional.one_hot(pred[0], 2).permute(2, 0, 1).float()])
    m.update(logits, target)
    m.update(target, target)
    assert m.cm.tolist() == [[3, 1], [0, 4]]
    # background IoU 3/4, foreground IoU 4/5 over both batches together
    assert m.compute()["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)
    assert m.compute()["iou_fg"] == pytest.approx(4 / 5)
    with pytest.raises(InvalidParameterError, match="shape"):
        segmentation_scores(pred, target[..., :3])


def test_map_known_answers():
    gt = [{"boxes": torch.tensor([[10.0, 10, 50, 50], [60, 60, 90, 90]]), "labels": torch.tensor([1, 2])}]
    perfect = [{"boxes": gt[0]["boxes"], "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 2])}]
    s = detection_scores(perfect, gt)
    assert s["map"] == pytest.approx(1.0) and s["map_50"] == pytest.approx(1.0) and s["map_75"] == pytest.approx(1.0)
    # class 1 found with IoU 0.64 (matches at 0.50..0.60, 3 of 10 thresholds), class 2 missed entirely
    shifted = [{"boxes": torch.tensor([[10.0, 10, 50, 35.6]]),  # IoU = 25.6*40 / 1600 = 0.64
                "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}]
    s = detection_scores(shifted, gt)
    assert s["map_50"] == pytest.approx(0.5, abs=1e-6)
    assert s["map_75"] == pytest.approx(0.0, abs=1e-6)
    assert s["map"] == pytest.approx((3 / 10) / 2, abs=1e-6)
    with pytest.raises(InvalidParameterError):
        DetectionMeter().compute()
