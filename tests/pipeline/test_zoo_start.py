"""Chapters A1, A2 and A3 with ``init="zoo"`` on the smoke profile: networks start from verified zoo entries.

The smoke zoo (phantom polyps, the smoke profile's widths, a few steps) is trained into a
temporary ``MEDTASK_ZOO`` first; the chapter then loads it in its own kernel.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from medtask import zoo
from medtask.pipeline.runner import ChapterFailedError, error_cells, run_notebook

SMOKE_ZOO = ("erfnet-phantom", "mbt2018-mean-phantom-q4", "mbt2018-mean-phantom-q3",
             "cheng2020-anchor-phantom-q4", "cheng2020-anchor-phantom-q3")
A1 = "a1_compression_segmentation"


def test_smoke_entries_stay_out_of_the_listed_zoo():
    listed, every = zoo.entries(), zoo.entries(smoke=True)
    assert set(SMOKE_ZOO) <= set(every) and not set(SMOKE_ZOO) & set(listed)
    assert zoo.get("erfnet-phantom").smoke


@pytest.mark.notebook
def test_a1_without_its_zoo_entries_says_how_to_train_them(scratch_zoo, data_root):
    with pytest.raises(ChapterFailedError, match="medtask zoo train erfnet-phantom"):
        run_notebook(A1, "smoke", {"init": "zoo", "zoo_data": "phantom"}, data_root=data_root,
                     output_root=scratch_zoo / "out", progress=False)


@pytest.mark.notebook
def test_a1_starts_from_the_zoo_and_shows_a_scratch_twin(scratch_zoo, data_root):
    cards = {name: zoo.train(name, threads=1, progress=False) for name in SMOKE_ZOO}
    rec = run_notebook(A1, "smoke", {"init": "zoo", "zoo_data": "phantom", "mse_steps": 0, "lr": 1e-5,
                                     "scratch_lr": 1e-3}, data_root=data_root, output_root=scratch_zoo / "out",
                       progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    starts = {s["entry"]: s["sha256"] for s in prov["zoo_starts"]}
    assert starts == {name: card["sha256"] for name, card in cards.items()}
    # zoo-started codecs fine-tune at lr, the twin from random weights trains at scratch_lr
    lrs = {a["name"]: a["key"]["params"]["lr"] for a in prov["artefacts"] if a["name"].startswith("mbt2018-mean_")}
    assert {n: v for n, v in lrs.items() if "_scratch_" in n} == {"mbt2018-mean_scratch_r2": 1e-3}
    assert {v for n, v in lrs.items() if "_scratch_" not in n} == {1e-5}
    comparison = pd.read_csv(rec.results_dir / "start_comparison.csv")
    assert list(comparison["start"]) == ["zoo: mbt2018-mean-phantom-q4", "random weights"]
    assert (comparison["steps_in_chapter"] == 2).all()  # mse_steps 0 + extra_steps 2 on smoke
    page = rec.executed.read_text()
    assert "starts its networks from the study's zoo" in page and "What the start changes" in page
    # a start from the zoo is part of every trained checkpoint's key: the scratch run trains its own
    scratch = run_notebook(A1, "smoke", {"mse_steps": 0}, data_root=data_root, output_root=scratch_zoo / "out",
                           progress=False)
    scratch_prov = json.loads((scratch.results_dir / "provenance.json").read_text())["provenance"]

    def task_digest(p: dict) -> str:
        (digest,) = {a["digest"] for a in p["artefacts"] if a["name"] == "task_original"}
        return digest

    assert scratch_prov["zoo_starts"] == [] and task_digest(scratch_prov) != task_digest(prov)


@pytest.mark.notebook
def test_a3_sweeps_lambda2_from_the_zoo_codec_at_its_rate_point(scratch_zoo, data_root):
    """A3's every λ2 starts from the codec trained at its λ1 (0.0067: q3) and from the zoo's ERFNet."""
    cards = {name: zoo.train(name, threads=1, progress=False)
             for name in ("erfnet-phantom", "mbt2018-mean-phantom-q4", "mbt2018-mean-phantom-q3")}
    rec = run_notebook("a3_lambda2_ablation", "smoke", {"init": "zoo", "zoo_data": "phantom", "task_steps": 0,
                                                        "mse_steps": 0, "lr": 1e-5, "spread_seeds": []},
                       data_root=data_root, output_root=scratch_zoo / "out", progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    assert {s["entry"]: s["sha256"] for s in prov["zoo_starts"]} == {
        n: cards[n]["sha256"] for n in ("erfnet-phantom", "mbt2018-mean-phantom-q3")}
    assert sorted(pd.read_csv(rec.results_dir / "results_all.csv")["lambda2"]) == [0.0, 0.0001]
    assert "starts its networks from the study's zoo" in rec.executed.read_text()


@pytest.mark.notebook
def test_a2_starts_its_detector_and_codecs_from_the_zoo(scratch_zoo, data_root):
    names = ("faster-rcnn-phantom", "mbt2018-mean-phantom-q4", "mbt2018-mean-phantom-q3",
             "cheng2020-anchor-phantom-q4", "cheng2020-anchor-phantom-q3")
    cards = {name: zoo.train(name, threads=1, progress=False) for name in names}
    rec = run_notebook("a2_compression_detection", "smoke", {"init": "zoo", "zoo_data": "phantom", "task_steps": 0,
                                                             "mse_steps": 0}, data_root=data_root,
                       output_root=scratch_zoo / "out", progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    assert {s["entry"]: s["sha256"] for s in prov["zoo_starts"]} == {n: c["sha256"] for n, c in cards.items()}
    comparison = pd.read_csv(rec.results_dir / "start_comparison.csv")
    assert list(comparison["start"]) == ["zoo: mbt2018-mean-phantom-q4", "random weights"]


@pytest.mark.notebook
def test_c1_starts_its_classifier_and_supervised_enhancers_from_the_zoo(scratch_zoo, data_root):
    names = ("resnet18-phantomct", "srresnet-phantomct-gaussian0.2")
    cards = {name: zoo.train(name, threads=1, progress=False) for name in names}
    rec = run_notebook("c1_gradprom_diagnosis", "smoke",
                       {"init": "zoo", "zoo_data": "phantomct", "rec_steps": 0, "spread_seeds": [], "ablation_sigma": None},
                       data_root=data_root, output_root=scratch_zoo / "out", progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    assert {s["entry"]: s["sha256"] for s in prov["zoo_starts"]} == {n: c["sha256"] for n, c in cards.items()}
    results = pd.read_csv(rec.results_dir / "results.csv")
    trained = results.dropna(subset=["enhancer_start"]).set_index(["setting", "strategy"])["enhancer_start"]
    assert set(trained.loc["supervised"]) == {"zoo: srresnet-phantomct-gaussian0.2"}
    assert set(trained.loc["unsupervised"]) == {"random weights"}  # never started from weights trained on clean targets
    comparison = pd.read_csv(rec.results_dir / "start_comparison.csv")
    assert list(comparison["start"]) == ["zoo: srresnet-phantomct-gaussian0.2", "random weights"]
    page = rec.executed.read_text()
    assert "starts its networks from the study's zoo" in page and "What the start changes" in page


@pytest.mark.notebook
def test_c3_starts_each_enhancer_from_its_degradations_zoo_entry(scratch_zoo, data_root):
    names = ("resnet18-phantomct", "srresnet-phantomct-bicubic-x2", "srresnet-phantomct-bicubic-x4",
             "srresnet-phantomct-gaussian0.2", "srresnet-phantompolyp-gaussian0.2")
    cards = {name: zoo.train(name, threads=1, progress=False) for name in names}
    rec = run_notebook("c3_gradprom_extensions", "smoke",
                       {"init": "zoo", "zoo_data": "phantomct", "settings": ["supervised"], "lr": 1e-4, "scratch_lr": 1e-3},
                       data_root=data_root, output_root=scratch_zoo / "out", progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    assert {s["entry"]: s["sha256"] for s in prov["zoo_starts"]} == {n: c["sha256"] for n, c in cards.items()}

    def starts(table: str, by: str) -> dict:
        t = pd.read_csv(rec.results_dir / f"{table}.csv").dropna(subset=["enhancer_start"])
        return t.groupby(by)["enhancer_start"].agg(set).to_dict()

    assert starts("super_resolution", "factor") == {2: {"zoo: srresnet-phantomct-bicubic-x2"},
                                                    4: {"zoo: srresnet-phantomct-bicubic-x4"}}
    assert starts("composite", "setting") == {"supervised": {"zoo: srresnet-phantomct-gaussian0.2"}}
    assert starts("two_auxiliaries", "auxiliary") == {a: {"zoo: srresnet-phantompolyp-gaussian0.2"}
                                                      for a in ("classifier", "segmenter", "both")}
    # the crops' recognisers train from random weights (no zoo start above names one) at scratch_lr
    keys = {a["name"]: a["key"]["params"]["config"] for a in prov["artefacts"] if a["name"].startswith("crops_rec_")}
    assert len(keys) == 2 and all(k["lr_rec"] == 1e-3 for k in keys.values())
    assert "starts its networks from the study's zoo" in rec.executed.read_text()


@pytest.mark.notebook
def test_c2_starts_its_unet_and_supervised_enhancers_from_the_zoo(scratch_zoo, data_root):
    names = ("unet-phantompolyp", "srresnet-phantompolyp-gaussian0.2")
    cards = {name: zoo.train(name, threads=1, progress=False) for name in names}
    rec = run_notebook("c2_gradprom_segmentation", "smoke",
                       {"init": "zoo", "zoo_data": "phantompolyp", "rec_steps": 0, "unet_base": 4, "unet_levels": 2,
                        "settings": ["supervised"]}, data_root=data_root, output_root=scratch_zoo / "out", progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    assert {s["entry"]: s["sha256"] for s in prov["zoo_starts"]} == {n: c["sha256"] for n, c in cards.items()}
    assert not [a for a in prov["artefacts"] if a["name"].startswith("rec_segmentation_clean")]  # 0 steps: no copy
    results = pd.read_csv(rec.results_dir / "results.csv")
    assert set(results["enhancer_start"].dropna()) == {"zoo: srresnet-phantompolyp-gaussian0.2"}
    targets = pd.read_csv(rec.results_dir / "targets.csv")
    assert targets["target"].iloc[0].startswith("U-Net (Benchmark-ii) dice") and len(targets) == 1 + 4  # 4 trained strategies
    comparison = pd.read_csv(rec.results_dir / "start_comparison.csv")
    assert list(comparison["start"]) == ["zoo: srresnet-phantompolyp-gaussian0.2", "random weights"]
    page = rec.executed.read_text()
    assert "What the start changes" in page and "Unsupervised enhancers start" not in page


@pytest.mark.notebook
def test_b1_starts_every_arm_from_the_zoo(scratch_zoo, data_root):
    """init='zoo' with no further steps: every arm is its (smoke) zoo entry, noted in the provenance, with the
    entries' curves, the study's targets and the scores per test dataset on the page."""
    from medtask.methods.angioqa import study as st

    cards = {n: zoo.train(n, threads=1, progress=False) for n in (st.zoo_name(arm, "phantom") for arm in st.ARMS)}
    rec = run_notebook("b1_angio_quality", "smoke", {"init": "zoo", "zoo_data": "phantom", "steps": 0},
                       data_root=data_root, output_root=scratch_zoo / "out", progress=False)
    assert error_cells(rec.executed) == []
    prov = json.loads((rec.results_dir / "provenance.json").read_text())["provenance"]
    assert {s["entry"]: s["sha256"] for s in prov["zoo_starts"]} == {n: c["sha256"] for n, c in cards.items()}
    assert prov["artefacts"] == []  # nothing trained, nothing checkpointed
    arms = json.loads((rec.results_dir / "arms.json").read_text())["data"]
    assert {a["start"] for a in arms} == {f"zoo: {n}" for n in cards} and {a["steps_in_chapter"] for a in arms} == {0}
    by_dataset = pd.read_csv(rec.results_dir / "scores_by_dataset.csv")
    assert set(by_dataset["dataset"]) == {"DRIVE", "CHASE_DB1"} and len(by_dataset) == 2 * len(st.ARMS)
    targets = pd.read_csv(rec.results_dir / "targets.csv")
    assert list(targets["threshold"]) == [">= 0.72", ">= 0.80"]
    assert (rec.results_dir / "zoo_curves.png").is_file()
    assert "starts its networks from the study's zoo" in rec.executed.read_text()
