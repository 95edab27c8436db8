import numpy as np
import pandas as pd
import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet import evaluation, report
from medtask.methods.mvmicnet import study as cs
from medtask.methods.mvmicnet.codecs.learned import codec_spec
from medtask.metrics.image import image_quality
from medtask.nn.erfnet import build_erfnet
from medtask.reporting.tables import side_by_side

from comp_helpers import smooth_image


def test_run_learned_and_classic_and_quality():
    imgs = torch.stack([smooth_image(h=64, w=64, seed=s) for s in range(3)])
    spec = codec_spec("mbt2018-mean", 8, 8)
    torch.manual_seed(0)
    d = cs.run_learned(spec.build(), spec, "t", imgs, "MBT2018-Mean", 1, batch_size=2)
    assert d.images.shape == imgs.shape and len(d.bpp) == 3 and d.bpp_est is not None
    c = cs.run_classic("jpeg", imgs, 50, 1)
    assert c.method == "JPEG" and c.images.shape == imgs.shape and c.extra["file_bpp"] >= c.bpp.mean()
    q = image_quality(c.images, imgs, structure="ms_ssim")
    assert 20 < q["psnr_db"] < 60 and 0.5 < q["ms_ssim"] <= 1.0
    data = [{"image": imgs[i], "mask": (imgs[i, 0] > 0.5).long()} for i in range(3)]
    s = evaluation.task_scores(build_erfnet(2, width=0.25), "segmentation", imgs, data, 2, torch.device("cpu"))
    assert set(s) == {"miou", "dice", "macc", "iou_fg", "mean_dice"} and 0 <= s["miou"] <= 1
    t = report.speed_table({("mbt", 1): d, ("jpeg", 1): c})
    assert list(t["method"]) == ["MBT2018-Mean", "JPEG"] and np.isnan(t.loc[1, "bytes_vs_estimate_pct"])


class _Oracle(torch.nn.Module):
    """Logits whose argmax is the given masks, batch by batch (a perfect segmenter of ``masks``)."""

    def __init__(self, masks: torch.Tensor) -> None:
        super().__init__()
        self.masks, self.i = masks, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.masks[self.i:self.i + len(x)]
        self.i += len(x)
        return torch.stack([1 - m, m], 1).float()


def test_task_scores_per_frame_dice_and_the_dataset_as_its_own_images():
    imgs = torch.stack([smooth_image(h=32, w=32, seed=s) for s in range(3)])
    masks = (imgs[:, 0] > 0.5).long()
    masks[2] = 0  # a frame without polyp, predicted empty: Dice 1 by convention
    data = [{"image": imgs[i], "mask": masks[i]} for i in range(3)]
    pred = masks.clone()
    pred[0] = 0  # frame 0 missed entirely: Dice 0
    s = evaluation.task_scores(_Oracle(pred), "segmentation", data, data, 2, torch.device("cpu"), batch_size=2)
    assert s["mean_dice"] == pytest.approx((0 + 1 + 1) / 3)
    fg0, fg1 = int(masks[0].sum()), int(masks[1].sum())
    assert s["dice"] == pytest.approx(2 * fg1 / (fg0 + 2 * fg1))
    with pytest.raises(InvalidParameterError, match="2 images for 3"):
        evaluation.task_scores(_Oracle(pred), "segmentation", imgs[:2], data, 2, torch.device("cpu"))


def test_tables_curves_bd_and_claims():
    rows = []
    for p, bpp in enumerate([0.1, 0.2, 0.4], start=1):
        rows.append({"method": "MBT2018-Mean", "point": p, "bpp": bpp, "psnr_db": 30 + p, "miou_stage1": 0.5 + 0.1 * p})
        rows.append({"method": "MVMICNet", "point": p, "bpp": bpp / 2, "psnr_db": 30.5 + p, "miou_stage1": 0.55 + 0.1 * p,
                     "miou_stage2": 0.6 + 0.1 * p})
    df = pd.DataFrame(rows)
    acc = report.accuracy_curves_frame(df, "miou")
    assert set(acc["method"]) == {"MBT2018-Mean", "MVMICNet", "MVMICNet (stage 2)"}
    bd = report.bd_tables(df, ["psnr_db"])
    row = bd[bd["anchor"] == "MBT2018-Mean"].iloc[0]
    assert row["MVMICNet"] < -40  # half the rate for 0.5 dB more
    cl = report.claims(df, "miou").set_index("claim")
    assert cl.loc["MVMICNet stage 1 miou > MBT2018-Mean at the same rate point", "verdict"] == "confirmed"
    assert cl.loc["stage 2 improves miou over stage 1", "verdict"] == "confirmed"
    assert cl.loc["MVMICNet PSNR > MBT2018-Mean (paper: +4-8 dB)", "verdict"] == "confirmed"
    assert cl.loc["MVMICNet PSNR > MBT2018-Mean (paper: +4-8 dB)", "ours"] == "holds at 3/3 rate points; mean difference +0.500 dB"
    t4 = pd.DataFrame({"lambda2": [0.0001, 0.0], "miou_percent": [50.0, 40.0], "miou_percent_sd": [1.0, 2.0],
                       "psnr_db": [30.0, 31.0], "psnr_db_sd": [0.1, 0.2], "seeds": [3, 3]})
    f = report.lambda2_findings(t4).set_index("claim")
    assert f.loc["Stage-1 mIoU is highest at λ2 = 1e-4", "verdict"] == "confirmed"
    assert f.loc["Stage-1 mIoU is highest at λ2 = 1e-4", "ours"] == "λ2 = 0.0001 (50.00 ± 1.00 %, mean over 3 seed(s))"
    assert f.loc["PSNR is lowest at the largest λ2, 0.1", "verdict"] == "not tested"  # 0.1 was not trained
    pub = report.published("table1")
    sb = side_by_side(df, pub, ["method", "point"], ["bpp", "miou_stage1"])
    assert list(sb.columns[:4]) == ["method", "point", "bpp", "bpp_pub"]
    assert sb.loc[0, "bpp_pub"] == pytest.approx(0.080)


def test_bad_parameters():
    from medtask.data import sources

    assert not hasattr(cs, "check_dataset"), "chapters check their data with medtask.data.sources.check_task"
    with pytest.raises(InvalidParameterError, match="this needs a segmentation dataset"):
        sources.check_task("bccd", "segmentation")
    assert sources.check_task("ChestX-Det", "detection") == "ChestX-Det"
    assert sources.chapter_datasets("segmentation", "kvasir-seg", "cvc-clinicdb") == ["kvasir-seg", "cvc-clinicdb"]
    with pytest.raises(InvalidParameterError, match="unknown published"):
        report.published("table9")


def test_study_checkpoints_are_kept_apart_per_seed(tmp_path, monkeypatch):
    from medtask.pipeline import Chapter

    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path))
    ch = Chapter("a3_test", profile="smoke", parameters={}, datasets=[], results_dir=tmp_path / "r")
    kw = dict(build_task=None, num_classes=2, device=torch.device("cpu"))
    data = [{"image": torch.zeros(3, 8, 8), "mask": torch.zeros(8, 8, dtype=torch.long)}]
    s0 = cs.CompressionStudy(ch, "segmentation", data, data, seed=0, **kw)
    s2 = cs.CompressionStudy(ch, "segmentation", data, data, seed=2, **kw)
    assert s0.checkpoint("task_original").parent.name == "a3_test"
    assert s2.checkpoint("task_original").parent.name == "seed2"


def test_a_changed_lambda_retrains_and_an_unchanged_one_is_reused(tmp_path, monkeypatch):
    """Issue: rerunning with new lambdas rewrote no checkpoint and labelled old bpp with the new lambdas."""
    from medtask.pipeline import Chapter

    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path))
    data = [{"image": smooth_image(h=32, w=32, seed=s), "mask": torch.zeros(32, 32, dtype=torch.long), "id": str(s)}
            for s in range(4)]

    def study(lambda1):
        ch = Chapter("a1_test", profile="smoke", parameters={}, datasets=[], results_dir=tmp_path / "r")
        s = cs.CompressionStudy(ch, "segmentation", data, data, build_task=lambda: build_erfnet(2, width=0.25),
                                num_classes=2, device=torch.device("cpu"), widths={"mbt2018-mean": {"N": 8, "M": 8}},
                                batch_size=2, mse_steps=2, extra_steps=1, progress=False)
        codec = s.baseline_codec("mbt2018-mean", 1, lambda1)
        return ch, s, codec

    ch1, s1, c1 = study(0.0067)
    ch2, s2, c2 = study(0.0067)  # unchanged: both trainings reused, same weights
    assert s2.checkpoints == s1.checkpoints
    assert {a["name"] for a in ch2.reused_artefacts()} == {"mbt2018-mean_mse_r1", "mbt2018-mean_r1"}
    assert all(torch.equal(a, b) for a, b in zip(c1.state_dict().values(), c2.state_dict().values()))
    ch3, s3, c3 = study(0.05)  # lambda changed: both trainings run again, into other files
    assert set(s3.checkpoints.values()).isdisjoint(s1.checkpoints.values())
    assert not ch3.reused_artefacts()
    assert not all(torch.equal(a, b) for a, b in zip(c1.state_dict().values(), c3.state_dict().values()))


def test_zero_task_steps_needs_a_zoo_start(tmp_path, monkeypatch):
    from medtask.pipeline import Chapter

    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path))
    ch = Chapter("a1_test", profile="smoke", parameters={}, datasets=[], results_dir=tmp_path / "r")
    data = [{"image": torch.zeros(3, 8, 8), "mask": torch.zeros(8, 8, dtype=torch.long)}]
    kw = dict(build_task=None, num_classes=2, device=torch.device("cpu"), task_steps=0)
    with pytest.raises(InvalidParameterError, match="task_steps=0 .* init='zoo'"):
        cs.CompressionStudy(ch, "segmentation", data, data, **kw)
    assert cs.CompressionStudy(ch, "segmentation", data, data, init="zoo", **kw).task_steps == 0


def test_recipe_batches_are_erfnets_zoomed_crops_and_change_the_training_key(tmp_path, monkeypatch):
    from medtask.pipeline import Chapter

    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path))
    ch = Chapter("a1_test", profile="smoke", parameters={}, datasets=[], results_dir=tmp_path / "r")
    mask = torch.zeros(48, 64, dtype=torch.long)
    mask[30:40, 40:56] = 1  # a small polyp off the centre
    data = [{"image": smooth_image(h=48, w=64, seed=s), "mask": mask, "id": str(s)} for s in range(4)]
    kw = dict(build_task=lambda: build_erfnet(2, width=0.25), num_classes=2, device=torch.device("cpu"),
              widths={"mbt2018-mean": {"N": 8, "M": 8}}, batch_size=2, mse_steps=1, extra_steps=1, progress=False)
    with pytest.raises(InvalidParameterError, match="train_crop"):
        cs.CompressionStudy(ch, "segmentation", data, data, train_augment="recipe", **kw)
    with pytest.raises(InvalidParameterError, match="train_augment='zoom'"):
        cs.CompressionStudy(ch, "segmentation", data, data, train_augment="zoom", train_crop=32, **kw)
    crop = cs.CompressionStudy(ch, "segmentation", data, data, train_crop=32, **kw)
    recipe = cs.CompressionStudy(ch, "segmentation", data, data, train_crop=32, train_augment="recipe", **kw)
    a, b = crop._batches(4)(0), recipe._batches(4)(0)
    assert a["image"].shape == b["image"].shape == (4, 3, 32, 32)
    assert not torch.equal(a["image"], b["image"])
    # over a few batches the recipe centres half its crops on the polyp: more foreground than plain crops
    fg = [sum(float((s._batches(4)(k)["mask"] > 0).float().mean()) for k in range(8)) for s in (crop, recipe)]
    assert fg[1] > fg[0]
    crop.baseline_codec("mbt2018-mean", 1, 0.0067)
    recipe.baseline_codec("mbt2018-mean", 1, 0.0067)
    assert set(crop.checkpoints.values()).isdisjoint(recipe.checkpoints.values())
