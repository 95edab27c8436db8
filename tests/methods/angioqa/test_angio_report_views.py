"""Study B's chapter helpers: the arms' tables and their display, sentences, case choices, accuracy per fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medtask.errors import InvalidParameterError
from medtask.methods.angioqa import build_angioqa, count_parameters, plots, report
from medtask.methods.angioqa import study as st
from medtask.methods.angioqa.model import PAPER_PARAMETERS


def arms_results(gpu: bool = False) -> pd.DataFrame:
    rows = [{"model": name, "role": role, "source": "x", "params": 1e6, "gflops": 1.0, "cpu_ms": 2.0, "cpu_fps": 500.0,
             "dice": np.nan if task == "cls" else 0.7, "iou": 0.5, "sensitivity": 0.6,
             "accuracy": np.nan if task == "seg" else 0.8, "macro_f1": 0.75, "train_s_per_step": 0.1}
            for name, (role, task, *_) in st.ARMS.items()]
    t = pd.DataFrame(rows)
    return t.assign(gpu_ms=1.0, gpu_fps=1000.0) if gpu else t


def test_main_table_drops_ablations_and_keeps_gpu_columns_where_measured():
    main = report.main_table(arms_results())
    assert "AngioQANet" in main["model"].values and not main["role"].eq("ablation").any()
    assert list(main.columns) == report.MAIN_COLUMNS
    assert list(report.main_table(arms_results(gpu=True)).columns)[-2:] == ["gpu_ms", "gpu_fps"]


def test_ablation_table_is_ours_and_its_ablations():
    abl = report.ablation_table(arms_results())
    assert abl["model"].tolist()[0] == "AngioQANet" and len(abl) == 6
    assert list(abl.columns) == report.ABLATION_COLUMNS


def test_styled_formats_only_present_columns_and_dashes_missing_values():
    html = report.styled(report.ablation_table(arms_results())).to_html()
    assert "1,000,000" in html and "0.750" in html


def test_parameter_sentence_and_parts():
    assert report.parameter_sentence(PAPER_PARAMETERS).endswith("difference +0.000 %)")
    model = build_angioqa("full")
    parts = report.parameter_parts(model)
    assert parts["parameters"].sum() == count_parameters(model)


def test_case_choices_take_good_and_poor_versions():
    test = [{"label": 2, "source": "a"}, {"label": 0, "source": "a"}, {"label": 2, "source": "a"},
            {"label": 2, "source": "b"}, {"label": 0, "source": "b"}, {"label": 1, "source": "c"}]
    assert plots.example_cases(test) == [1, 3]
    assert plots.gradcam_cases(test) == [1, 4, 0, 2, 3]


def test_accuracy_by_fault_counts_primary_faults(monkeypatch):
    test = [{"label": 0, "faults": ""}, {"label": 2, "faults": "noise:severe"}, {"label": 1, "faults": "noise:mild"}]
    quality = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    monkeypatch.setattr(st, "predict", lambda model, dataset, task, device="cpu": {"quality": quality})
    t = st.accuracy_by_fault(None, test).set_index("faults")
    assert t.loc["none", "accuracy"] == 1.0 and t.loc["noise", "accuracy"] == 0.5 and t.loc["noise", "count"] == 2


def test_arcade_probabilities_one_column_per_grade():
    t = report.arcade_probabilities([{"id": "a"}, {"id": "b"}], torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]))
    assert list(t.columns) == ["id", "p(good)", "p(fair)", "p(poor)"] and t["p(poor)"].tolist() == [0.25, 1.0]


def test_findings_give_the_claims_table_of_the_book():
    from medtask.reporting.findings import COLUMNS

    t = arms_results()
    t.loc[t["model"] == "AngioQANet", ["dice", "accuracy"]] = [0.8, 0.9]  # better than every arm on both tasks
    t.loc[t["model"] == "w/o FAM", "dice"] = 0.85                          # except FAM's ablation on Dice
    f = report.findings(t, PAPER_PARAMETERS + 1000, {"ms": 10.0}, {"ms": 50.0})
    assert list(f.columns) == list(COLUMNS)
    v = f.set_index("claim")["verdict"]
    assert v["AngioQANet has about 3.43 M parameters"] == "confirmed"
    assert v["Quality accuracy of the multi-task model"] == "not comparable"
    assert v["Multi-task training helps both tasks (Dice vs seg-only, accuracy vs cls-only)"] == "confirmed"
    assert v["L-GSAM helps (Dice and accuracy of the full model vs without it)"] == "confirmed"
    assert v["FAM helps (Dice and accuracy of the full model vs without it)"] == "mixed"
    assert f["ours"].iloc[-1].startswith("0.20×") and f["verdict"].iloc[-1] == "confirmed"


def test_scores_per_dataset_and_the_study_targets():
    t = arms_results()
    t["by_dataset"] = [{"DRIVE": {"dice": 0.74, "accuracy": 0.79, "macro_f1": 0.7},
                        "CHASE_DB1": {"dice": 0.60, "accuracy": 0.55, "macro_f1": 0.5}} for _ in range(len(t))]
    by = report.dataset_table(t)
    assert len(by) == 2 * len(t) and set(by["dataset"]) == {"DRIVE", "CHASE_DB1"}
    targets = report.targets_table(t)
    assert list(targets["threshold"]) == [">= 0.72", ">= 0.80"]
    assert list(targets["ours"]) == [0.74, 0.79] and list(targets["met"]) == [True, False]
    only_chase = t.assign(by_dataset=[{"CHASE_DB1": {"dice": 0.6}}] * len(t))
    assert report.targets_table(only_chase).empty  # no DRIVE test images: no target row to fill


def test_scores_by_dataset_split_one_prediction_by_source():
    data = [{"mask": torch.ones(4, 4, dtype=torch.long), "label": i % 3, "source": f"{ds}/{i}"}
            for i, ds in enumerate(["DRIVE", "CHASE_DB1", "DRIVE", "CHASE_DB1"])]
    pred = {"seg": torch.tensor([1.0, 0.0, 1.0, 0.0]).view(4, 1, 1, 1).expand(4, 1, 4, 4).clone(),
            "quality": torch.eye(3)[[0, 0, 2, 0]]}
    by = st.score_by_dataset(pred, data)
    assert list(by) == ["DRIVE", "CHASE_DB1"]
    assert by["DRIVE"]["dice"] == 1.0 and by["CHASE_DB1"]["dice"] == 0.0
    assert by["DRIVE"]["accuracy"] == 1.0 and by["CHASE_DB1"]["accuracy"] == 0.5


def test_zoo_curves_draw_one_panel_per_task():
    def card(metric):
        return {"metric": metric, "curve": [{"step": 0, metric: 0.1}, {"step": 300, metric: 0.5}]}

    cards = {"angioqanet-drive": card("dice_accuracy"), "vessels-unet-drive": card("dice"),
             "vessels-sa-unet-drive": card("dice"), "quality-resnet18-drive": card("accuracy")}
    fig = plots.zoo_curves(cards)
    assert [len(ax.lines) for ax in fig.axes] == [1, 2, 1]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["vessels-unet", "vessels-sa-unet"]


def test_multitask_sentence_says_what_joint_training_did_on_each_test_dataset():
    assert report.multitask_effect(0.02, 0.01).startswith("helped both tasks")
    assert report.multitask_effect(-0.106, -0.084) == "cost both tasks (vessel Dice -0.106, quality accuracy -0.084)"
    assert report.multitask_effect(-0.1, 0.05).startswith("helped the quality accuracy and cost the vessel Dice")
    assert report.multitask_effect(0.0001, 0.05).startswith("helped the quality accuracy and left the vessel Dice unchanged")
    assert report.multitask_effect(float("nan"), 0.1).startswith("was not measured")
    t = arms_results()
    t["by_dataset"] = [{"DRIVE": {"dice": 0.7, "accuracy": 0.8}, "CHASE_DB1": {"dice": 0.7, "accuracy": 0.8}}
                       for _ in range(len(t))]
    ours = t.index[t["model"] == "AngioQANet"][0]
    t.at[ours, "by_dataset"] = {"DRIVE": {"dice": 0.6, "accuracy": 0.7}, "CHASE_DB1": {"dice": 0.6, "accuracy": 0.9}}
    line = report.claims(t, PAPER_PARAMETERS, {"ms": 10.0, "fps": 100.0, "threads": 1}, {"ms": 50.0}, 256)[0]
    assert line.startswith("- **Multi-task training**")
    assert "on DRIVE it cost both tasks (vessel Dice -0.100, quality accuracy -0.100)" in line
    assert "on CHASE_DB1 it helped the quality accuracy and cost the vessel Dice (vessel Dice -0.100" in line
    assert "over all test versions it left both tasks unchanged (vessel Dice +0.000, quality accuracy +0.000)" in line


def test_arms_can_be_left_out_by_name_with_the_reason_on_the_page():
    assert st.chosen_arms(None) == list(st.ARMS)
    kept = st.chosen_arms({"Swin-T": "not trained yet"})
    assert "Swin-T" not in kept and len(kept) == len(st.ARMS) - 1 and kept[0] == "AngioQANet"
    assert report.left_out_note({}) == ""
    assert report.left_out_note({"Swin-T": "not trained yet"}).endswith("*Swin-T*: not trained yet.")
    with pytest.raises(InvalidParameterError, match="names no arm"):
        report.left_out_note({"Swin-B": "x"})
    with pytest.raises(InvalidParameterError, match="AngioQANet cannot be left out"):
        st.chosen_arms({"AngioQANet": "x"})


def test_grades_by_dataset_sentence_sets_our_grade_beside_the_arms_without_the_link():
    t = arms_results()
    t["by_dataset"] = [{"DRIVE": {"accuracy": 0.6}, "CHASE_DB1": {"accuracy": 0.5}} for _ in range(len(t))]
    ours = t.index[t["model"] == "AngioQANet"][0]
    t.at[ours, "by_dataset"] = {"DRIVE": {"accuracy": 0.7}, "CHASE_DB1": {"accuracy": 0.8}}
    line = report.grades_by_dataset_sentence(t)
    assert line.startswith("- **Quality accuracy per test dataset:** DRIVE: AngioQANet 0.700, without the link 0.600")
    assert "CHASE_DB1: AngioQANet 0.800, without the link 0.500, cls-only 0.500, best classification baseline" in line


def test_run_summary_says_where_the_arms_started_and_what_they_trained_here():
    args = ("cpu", 256, 6, 0, 8, 240, 168, 13.7)
    assert "scored as trained: no steps here" in report.run_summary(*args, init="zoo")
    assert "then 100 steps of 8 here" in report.run_summary("cpu", 256, 6, 100, 8, 240, 168, 1.0, init="zoo")
    assert "every arm from random weights, 80 steps of 8 here" in report.run_summary("cpu", 128, 6, 80, 8, 240, 168, 1.0)
