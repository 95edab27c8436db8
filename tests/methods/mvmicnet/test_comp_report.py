"""Study A's chapter helpers: published tables joined to the sweep, sentences from scores, Fig. 4's frames,
Fig. 3's legend."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from medtask.methods.mvmicnet import plots, report
from medtask.methods.mvmicnet.codecs.classic import HEVC_NAME


def test_published_tables2_3_numbers_points_by_rate():
    pub = report.published_tables2_3()
    assert {"map_stage1", "map_stage2"} <= set(pub.columns)
    for _, g in pub.groupby("method"):
        assert g.sort_values("bpp")["point"].tolist() == list(range(1, len(g) + 1))


def test_original_scores_sentence_names_each_score():
    text = report.original_scores_sentence("detection", {"map": 0.12345, "ap50": 0.5, "ap75": 0.25})
    assert text == "Detector on the **original** test images: mAP 0.1235, AP50 0.5000, AP75 0.2500."
    text = report.original_scores_sentence("segmentation", {"miou": 0.5, "dice": 0.25})
    assert text.endswith("mIoU 0.5000, Dice 0.2500 (the ceiling for the baselines).")


def test_data_summary_lists_classes_only_when_given():
    assert report.data_summary("x", [1] * 3, [1], [1] * 2, 64) == "x: train 3, calibration 1, test 2 images at 64x64 (HxW)"
    assert report.data_summary("x", [1], [1], [1], [256, 288]).endswith("images at 256x288 (HxW)")
    assert report.data_summary("x", [1], [1], [1], 8, classes=["a"]).endswith("; classes ['a']")


def test_frame_indices_spread_over_the_test_set():
    assert plots.frame_indices(10, 3) == [0, 3, 6]
    assert plots.frame_indices(2, 3) == [0, 1]
    assert plots.frame_indices(5, 0) == []


def test_timings_frame_rounds_seconds():
    t = report.timings_frame({"total": 1.23456})
    assert t.iloc[0, 0] == 1.235 and t.columns[0].startswith("seconds")


def test_targets_table_reads_the_original_score_the_kept_share_and_bd_psnr_against_hevc():
    res = pd.DataFrame({"method": ["MBT2018-Mean"] * 2 + [HEVC_NAME] * 2, "bpp": [0.1, 0.2, 0.1, 0.2],
                        "dice_stage1": [0.2, 0.45, 0.3, 0.4]})
    bd = pd.DataFrame({"anchor": [HEVC_NAME, HEVC_NAME], "metric": ["psnr_db", "miou"],
                       "measure": ["BD-psnr_db", "BD-miou"], "MBT2018-Mean": [-2.5, -9.0]})
    t = report.targets_table("segmentation", res, {"dice": 0.5, "miou": 0.6}, bd)
    assert list(t["met"]) == [True, True, True]
    assert t["ours"].tolist() == pytest.approx([0.5, 0.9, -2.5])
    t = report.targets_table("segmentation", res, {"dice": 0.6, "miou": 0.6}, bd.assign(**{"MBT2018-Mean": -4.0}))
    assert list(t["met"]) == [True, False, False]


def test_rate_figure_legend_names_every_line_of_every_panel():
    ours = pd.DataFrame({"method": ["MBT2018-Mean", "MBT2018-Mean", "MVMICNet (stage 2)", "MVMICNet (stage 2)"],
                         "bpp": [0.1, 0.2, 0.1, 0.2], "miou": [0.5, 0.6, 0.55, 0.62],
                         "psnr_db": [30.0, 32.0, None, None], "ms_ssim": [0.95, 0.97, None, None]})
    pub = pd.DataFrame({"method": ["MBT2018-Mean"], "bpp": [0.15], "miou": [0.7], "psnr_db": [31.0], "ms_ssim": [0.96]})
    fig = plots.rate_figure(ours, pub, "miou", "mIoU")
    names = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert names == ["MBT2018-Mean", "MVMICNet (stage 2)", "MBT2018-Mean (published)"]
    plt.close(fig)


def test_published_lines_take_the_colour_of_the_method_run_for_them():
    ours = pd.DataFrame({"method": [HEVC_NAME, HEVC_NAME, "MBT2018-Mean", "MBT2018-Mean"],
                         "bpp": [0.1, 0.2, 0.1, 0.2], "psnr_db": [33.0, 36.0, 32.0, 35.0]})
    pub = pd.DataFrame({"method": ["BPG", "BPG", "Cheng2020-Anchor", "MBT2018-Mean"], "bpp": [0.1, 0.2, 0.1, 0.1],
                        "psnr_db": [30.0, 31.0, 30.5, 31.5]})
    fig = plots.rate_curves(ours, ["psnr_db"], published=pub)
    colour = {line.get_label(): line.get_color() for line in fig.axes[0].get_lines()}
    assert colour["BPG (published)"] == colour[HEVC_NAME]
    assert colour["MBT2018-Mean (published)"] == colour["MBT2018-Mean"]
    others = {tuple(colour[m]) for m in (HEVC_NAME, "MBT2018-Mean")}
    assert tuple(colour["Cheng2020-Anchor (published)"]) not in others | {(0.5, 0.5, 0.5, 1.0)}
    plt.close(fig)


def test_original_scores_sentence_names_the_rows_that_beat_the_originals():
    res = pd.DataFrame([{"method": "JPEG 2000", "point": 1, "dice_stage1": 0.42},
                        {"method": "MBT2018-Mean", "point": 1, "dice_stage1": 0.20}])
    text = report.original_scores_sentence("segmentation", {"miou": 0.49, "dice": 0.227}, res)
    assert "1 of 2 rows score a higher dice" in text and "JPEG 2000 point 1 (0.420)" in text and "MBT2018" not in text
    assert "rows score" not in report.original_scores_sentence("segmentation", {"miou": 0.49, "dice": 0.5}, res)
