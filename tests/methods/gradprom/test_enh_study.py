"""The study helpers end to end on phantoms: one setting, diagnostics, CAMs, the two-label crop dataset."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from medtask.data import load
from medtask.engine.gradcam import grad_cam
from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.plots import plot_cams
from medtask.methods.gradprom.report import cosine_log, cosine_summary, describe_step_cost
from medtask.methods.gradprom.study import (
    PolypCrops,
    StudyConfig,
    DegradedTestSet,
    cam_focus,
    cam_mass_inside,
    cam_panels,
    run_setting,
    seed_spread,
    step_cost,
)


@pytest.fixture(scope="module")
def phantom():
    return load("phantom-classes", "train", size=16, n=8), load("phantom-classes", "test", size=16, n=6)


def tiny_cfg(**kw):
    return StudyConfig(**{**dict(channels=1, depth=1, width=4, steps=3, rec_steps=3, batch_size=4), **kw})


def test_study_checkpoints_land_under_the_tests_temporary_folder(tmp_path):
    """The study tests' chapters must not fill the user's ``checkpoints/cpu/c_test`` (0.9 GB once)."""
    from medtask.config import repo_root
    from medtask.pipeline import Chapter

    for name in ("c_test", "c_seed_test"):
        ckpt = Chapter(name, results_dir=tmp_path / "res").checkpoint("gradprom").resolve()
        assert not ckpt.is_relative_to(repo_root()), f"a test checkpoint would be written into the checkout: {ckpt}"


def test_run_setting_rows_histories_and_resume(phantom, tmp_path):
    from medtask.pipeline import Chapter

    train, test = phantom
    chapter = Chapter("c_test", results_dir=tmp_path / "res")
    res = run_setting(tiny_cfg(), train, test, {"name": "gaussian", "sigma": 0.2}, chapter=chapter,
                      strategies=("benchmark-i", "joint", "frozen", "gradprom"))
    df = res.frame()
    assert list(df["strategy"]) == ["degraded input", "benchmark-i", "joint", "frozen", "gradprom", "clean (upper bound)"]
    assert {"psnr_db", "ssim", "accuracy", "balanced_accuracy", "auc"} <= set(df.columns)
    assert np.isfinite(df["psnr_db"].iloc[:-1]).all()
    summary = cosine_summary(cosine_log(res.histories))
    assert set(summary["strategy"]) == {"joint", "frozen", "gradprom"} and (summary["steps"] == 3).all()
    assert chapter.reused_artefacts() == []  # everything was trained by this run
    rerun = Chapter("c_test", results_dir=tmp_path / "res")
    again = run_setting(tiny_cfg(), train, test, {"name": "gaussian", "sigma": 0.2}, chapter=rerun,
                        strategies=("gradprom",))  # finished checkpoint: same network, no retraining
    assert again.frame().set_index("strategy").loc["gradprom", "psnr_db"] == pytest.approx(
        df.set_index("strategy").loc["gradprom", "psnr_db"])
    maps = grad_cam(res.recognisers["frozen"]["classification"], res.enhanced["frozen"][:2])
    assert maps.shape == (2, 16, 16) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    clean = res.recognisers["frozen"]["classification"]  # any classifier will do as the first row's judge
    rows = cam_panels(res, clean, ("frozen", "gradprom"), [0, 1], res.test.labels[:2].tolist())
    assert list(rows) == ["noisy · benchmark-ii", "frozen output", "gradprom output"]
    for images, row_maps, p in rows.values():
        assert images.shape[0] == row_maps.shape[0] == p.shape[0] == 2 and ((p >= 0) & (p <= 1)).all()
    fig = plot_cams(rows, res.test.ids[:2])
    assert [t.get_text()[:2] for t in fig.axes[0].texts] == ["p="]
    plt.close(fig)
    reused = {a["name"] for a in rerun.reused_artefacts()}
    assert "gaussian_0.2_sup_gradprom" in reused and "rec_classification_clean" in reused
    changed = Chapter("c_test", results_dir=tmp_path / "res")
    run_setting(tiny_cfg(lam=0.5), train, test, {"name": "gaussian", "sigma": 0.2}, chapter=changed,
                strategies=("gradprom",))  # lambda is GradProm's parameter: GradProm retrains, not the recognisers
    assert {a["name"] for a in changed.reused_artefacts()} == {"rec_classification_clean"}


def test_super_resolution_setting_and_bad_input(phantom):
    train, test = phantom
    res = run_setting(tiny_cfg(), train, test, {"name": "bicubic", "factor": 2}, strategies=("gradprom",))
    assert res.frame()["strategy"].iloc[0] == "bicubic" and res.enhanced["gradprom"].shape[-1] == 16
    with pytest.raises(InvalidParameterError, match="strategies"):
        run_setting(tiny_cfg(), train, test, "gaussian", strategies=("gradprom2",))
    with pytest.raises(InvalidParameterError, match="num_classes"):
        run_setting(tiny_cfg(num_classes={"classification": 3, "segmentation": 2}), train, test, "gaussian")
    with pytest.raises(InvalidParameterError, match="Noise2Noise"):
        run_setting(tiny_cfg(), train, test, {"name": "bicubic", "factor": 2}, supervised=False)


def test_polyp_crops_have_both_labels():
    src = load("phantom-polyp", "train", size=64, n=6)
    crops = PolypCrops(src, crop=32, seed=0)
    assert len(crops) == crops.info["crops"] and crops.info["positives"] > 0
    for s in crops:
        assert s["image"].shape[-1] == 32 and s["mask"].shape == (32, 32)
        assert (s["label"] == 1) == bool(s["mask"].any())
    assert [s["id"] for s in PolypCrops(src, crop=32, seed=0)] == [s["id"] for s in crops]
    assert "crops" in crops.describe()
    t = DegradedTestSet.build(crops, {"name": "gaussian", "sigma": 0.1})
    maps = np.zeros((len(crops), 32, 32))
    maps[:, :16] = 1.0
    assert cam_mass_inside(maps, t.masks).shape == (len(crops),)


def test_cam_focus_scores_every_row_and_keeps_the_probabilities_for_the_figure():
    crops = PolypCrops(load("phantom-polyp", "train", size=64, n=6), crop=32, seed=0)
    res = run_setting(tiny_cfg(channels=3), crops, crops, {"name": "gaussian", "sigma": 0.1}, strategies=("gradprom",))
    focus, rows = cam_focus(res, res.recognisers["gradprom"]["classification"], ("gradprom",), shown=2)
    assert list(focus["input"]) == ["mask area share (uniform map)", "noisy · clean classifier", "gradprom output"]
    assert focus["cam_mass_in_polyp"].dropna().between(0, 1).all()  # NaN where every map is blank (3 steps)
    assert 0 < focus["cam_mass_in_polyp"].iloc[0] < 1
    for images, maps, p in rows.values():
        assert len(images) == len(maps) == len(p) == 2


def test_seed_spread_trains_each_seed_apart_on_the_same_test_set(phantom, tmp_path):
    from medtask.pipeline import Chapter

    train, test = phantom
    chapter = Chapter("c_seed_test", results_dir=tmp_path / "res")
    deg = {"name": "gaussian", "sigma": 0.2}
    base = run_setting(tiny_cfg(), train, test, deg, strategies=("benchmark-i", "gradprom"), chapter=chapter)
    runs = seed_spread(tiny_cfg(), train, base.test, deg, [0, 1], strategies=("benchmark-i", "gradprom"),
                       chapter=chapter, base=base)
    assert sorted(set(runs["seed"])) == [0, 1]
    ours = runs[runs["strategy"].isin(["benchmark-i", "gradprom"])].set_index(["seed", "strategy"])["psnr_db"]
    assert ours.loc[(0, "gradprom")] == pytest.approx(base.frame().set_index("strategy").loc["gradprom", "psnr_db"])
    assert ours.loc[(1, "gradprom")] != ours.loc[(0, "gradprom")], "another seed must train another network"
    noisy = runs[runs["strategy"] == "degraded input"]["psnr_db"]
    assert noisy.nunique() == 1, "every seed is evaluated on the same degraded test set"


def test_step_cost_times_every_variant_against_joint(phantom):
    train, _ = phantom
    cost = step_cost(tiny_cfg(), train, {"name": "gaussian", "sigma": 0.2}, steps=1, rounds=1).set_index("variant")
    assert list(cost.index) == ["joint", "joint + cosine", "gradprom", "gradprom (per-layer cos)"]
    assert (cost["ms_per_step"] > 0).all() and cost.loc["joint", "ratio_to_joint"] == 1.0
    text = describe_step_cost(cost.reset_index(), target=1e9)
    assert f"**{cost.loc['gradprom', 'ratio_to_joint']:.2f}×**" in text and "within the 1000000000.0× target" in text


def test_delta_and_grid_claims_read_the_table():
    from medtask.methods.gradprom.report import delta, grid_claims

    rows = [{"setting": "supervised", "sigma": 0.1, "strategy": s, "psnr_db": p, "miou": m}
            for s, p, m in [("gradprom", 30.0, 0.6), ("frozen", 29.0, 0.5), ("joint", 29.5, 0.4), ("benchmark-i", 28.0, 0.3)]]
    table = pd.DataFrame(rows)
    assert delta(table, "gradprom", "frozen", setting="supervised", sigma=0.1) == pytest.approx(1.0)
    (line,) = grid_claims(table, ["supervised"], [0.1], "miou", "mIoU", task_against=("joint", "frozen"))
    assert line == ("- supervised, σ=0.1: GradProm − Frozen = +1.000 dB, GradProm − Joint = +0.500 dB, "
                    "GradProm − Benchmark-i = +2.000 dB; mIoU GradProm − Joint = +0.200, GradProm − Frozen = +0.100.")


def test_grid_findings_give_the_claims_table_of_the_book():
    from medtask.methods.gradprom.report import grid_findings
    from medtask.reporting.findings import COLUMNS

    rows = [{"setting": "supervised", "sigma": s, "strategy": k, "psnr_db": p + s, "miou": m}
            for s in (0.1, 0.2)
            for k, p, m in [("gradprom", 30.0, 0.6), ("frozen", 29.0, 0.5), ("joint", 30.5, 0.4), ("benchmark-i", 28.0, 0.7)]]
    cl = grid_findings(pd.DataFrame(rows), ["supervised"], [0.1, 0.2], "miou", "mIoU").set_index("claim")
    assert list(cl.reset_index().columns) == list(COLUMNS)
    assert cl.loc["GradProm's PSNR > Frozen's (every setting and σ)", "verdict"] == "confirmed"
    assert cl.loc["GradProm's PSNR > Joint's (every setting and σ)", "ours"] == "holds in 0/2 cases; mean difference -0.500 dB"
    assert cl.loc["GradProm's mIoU > Joint's (every setting and σ)", "verdict"] == "confirmed"
