"""Study C's chapter helpers: pivots, sentences from tables, case choices, figure dictionaries."""

from types import SimpleNamespace

import matplotlib
import pandas as pd
import pytest
import torch

from medtask.methods.gradprom import plots, report

matplotlib.use("Agg")


def grid_table():
    rows = [{"setting": s, "strategy": st, "sigma": sig, "psnr_db": 20 + sig + (st == "gradprom"), "accuracy": 0.5}
            for s in ("supervised", "unsupervised") for st in ("joint", "gradprom", "degraded input")
            for sig in (0.1, 0.2)]
    return pd.DataFrame(rows)


def test_grid_pivot_keeps_run_order_and_rounds():
    t = grid_table()
    t["psnr_db"] += 0.00012
    piv = report.grid_pivot(t, ["psnr_db"])
    assert list(piv.index)[:2] == [("supervised", "joint"), ("supervised", "gradprom")]
    assert piv.loc[("supervised", "gradprom"), ("psnr_db", 0.2)] == 21.2
    sr = report.grid_pivot(t[t["setting"] == "supervised"], ["psnr_db"], columns="sigma", index=["strategy"])
    assert list(sr.index) == ["joint", "gradprom", "degraded input"]


def test_tables12_sentence_lists_table1_rows_and_source():
    pub = report.published()
    text = report.tables12_sentence(pub)
    n = int(pub["note"].str.startswith("Table 1").sum())
    assert text.count(" dB / SSIM ") == n and text.endswith(f"Source: `{pub['source'].iloc[0]}`.")


def test_foreground_sentence_measures_polyp_share():
    test = [{"mask": torch.tensor([[1, 0], [0, 0]])}, {"mask": torch.zeros(2, 2, dtype=torch.int64)}]
    text = report.foreground_sentence([0, 1, 2], test, [2, 2])
    assert text == "3 training and 2 test frames at 2×2 px; polyp pixels are 12.5% of the test set."


def test_gradient_sentence_averages_over_settings():
    summary = pd.DataFrame({"strategy": ["gradprom", "gradprom", "joint"], "dropped_frac": [0.1, 0.3, 0.0],
                            "conflict_frac": [0.0, 0.0, 0.25]})
    text = report.gradient_sentence(summary)
    assert "on 20.0% of its steps on average" in text and "cos < 0 on 25.0%" in text


def test_cosine_logs_stack_each_experiment():
    grids = [SimpleNamespace(cosine_log=pd.DataFrame({"experiment": [e], "cos": [0.5]})) for e in ("a", "b")]
    assert report.cosine_logs(*grids)["experiment"].tolist() == ["a", "b"]


def test_two_auxiliaries_view_keeps_present_columns():
    two = pd.DataFrame({"strategy": ["gradprom"], "auxiliary": ["both"], "psnr_db": [20.12345], "extra": [1]})
    assert list(report.two_auxiliaries_view(two).columns) == ["auxiliary", "strategy", "psnr_db"]


def test_cam_cases_takes_positives_then_negatives():
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    assert plots.cam_cases(labels, 4) == [1, 3, 0, 2]
    assert plots.cam_cases(labels, 3) == [1, 0, 2]


def test_largest_polyps_orders_by_mask_share():
    masks = torch.zeros(3, 4, 4, dtype=torch.int64)
    masks[1, :2] = 1
    masks[2, 0, 0] = 1
    assert plots.largest_polyps(masks, 2) == [1, 2]


def test_sigma_and_cosine_figures_are_named_for_the_chapter():
    figs = plots.sigma_figures(grid_table(), ["joint", "gradprom"], "accuracy")
    assert list(figs) == ["psnr_by_sigma", "accuracy_by_sigma"]
    log = pd.DataFrame({"setting": ["supervised"] * 2 + ["unsupervised"] * 2, "strategy": ["joint", "gradprom"] * 2,
                        "step": [1, 1, 1, 1], "cos": [0.1, -0.2, 0.3, 0.0], "dropped": [0, 1, 0, 0]})
    assert list(plots.cosine_figures(log)) == ["cosine_diagnostics_supervised"]
    assert list(plots.cosine_figures(log, unsupervised=True)) == ["cosine_diagnostics_supervised",
                                                                  "cosine_diagnostics_unsupervised"]


def test_targets_table_reads_the_clean_classifier_and_each_enhancers_gain_at_sigma_02():
    rows = [{"sigma": s, "setting": st, "strategy": name, "psnr_db": p, "accuracy": a,
             "enhancer_start": None if name in ("degraded input", "clean (upper bound)") else "random weights"}
            for s, st, name, p, a in [(0.2, "supervised", "degraded input", 15.4, 0.6),
                                      (0.2, "supervised", "benchmark-i", 25.3, 0.7),
                                      (0.2, "supervised", "gradprom", 22.0, 0.7),
                                      (0.2, "unsupervised", "gradprom", 12.0, 0.7),
                                      (0.1, "supervised", "gradprom", 40.0, 0.7),
                                      (0.2, "supervised", "clean (upper bound)", float("inf"), 0.8)]]
    t = report.targets_table(pd.DataFrame(rows))
    assert list(t["met"]) == [True, True, False]
    assert t["ours"].tolist() == pytest.approx([0.8, 9.9, 6.6])
    assert "gradprom at σ = 0.2, supervised" in t["target"].iloc[2]
    assert report.targets_table(pd.DataFrame(rows[-1:])).shape == (1, 4)  # no σ = 0.2 setting: the classifier only


def test_the_two_auxiliary_claim_is_not_tested_when_the_crops_classifier_is_at_chance():
    def two(auc: float) -> pd.DataFrame:
        rows = [{"auxiliary": a, "strategy": s, "psnr_db": p, "accuracy": 0.5, "auc": auc, "dice": 0.1}
                for a, p in (("classifier", 27.0), ("segmenter", 27.5), ("both", 27.1))
                for s in ("gradprom", "clean (upper bound)")]
        return pd.DataFrame(rows)

    sr = pd.DataFrame([{"factor": 2, "strategy": s, "psnr_db": p} for s, p in
                       (("bicubic", 26.0), ("frozen", 31.0), ("joint", 30.5), ("gradprom", 31.2))])
    comp = pd.DataFrame([{"setting": "supervised", "strategy": s, "psnr_db": p}
                         for s, p in (("benchmark-i", 25.0), ("gradprom", 24.0))])
    at_chance = report.extension_findings(sr, comp, two(0.51), [2]).iloc[-1]
    assert at_chance["verdict"] == "not tested" and "AUC 0.510 (at chance" in at_chance["ours"]
    table = report.extension_findings(sr, comp, two(0.80), [2])
    learned = table.iloc[-1]
    assert learned["verdict"] == "confirmed" and "+0.400 dB" in learned["ours"]  # best single 27.5 - both 27.1
    # the composite claim names the settings that were run (here supervised only)
    assert "Composite degradation: GradProm's PSNR > Benchmark-i's (supervised)" in list(table["claim"])
