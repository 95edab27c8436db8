"""Study B on the real data: the protocol split keeps DRIVE's official split and CHASE_DB1 children whole."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))
import folder_fixtures as fx  # noqa: E402

from medtask.data import user_manifests  # noqa: E402
from medtask.errors import InvalidParameterError  # noqa: E402
from medtask.methods.angioqa import report  # noqa: E402
from medtask.methods.angioqa import study as st  # noqa: E402
from medtask.methods.angioqa.baselines import CLASSIFICATION_BASELINES  # noqa: E402
from medtask.methods.angioqa.quality import GRADES  # noqa: E402

torch.set_num_threads(1)


def test_published_numbers_match_the_paper():
    pub = report.published()
    assert pub["parameters"] == 3_434_200 and pub["quality_accuracy"] == pytest.approx(0.8182)


def test_every_arm_builds_and_matches_its_task():
    for name, (role, task, network, *_) in st.ARMS.items():
        if role == "classification baseline":  # built (slowly) in test_angio_training; here only the mapping
            assert task == "cls" and network in CLASSIFICATION_BASELINES
            continue
        model = st.build_arm(name, 32, baseline_width=4, vit_dim=24).eval()
        with torch.no_grad():
            out = model(torch.rand(1, 1, 32, 32))
        keys = set(out) if isinstance(out, dict) else {"seg" if task == "seg" else "quality"}
        assert keys == {"both": {"seg", "quality"}, "seg": {"seg"}, "cls": {"quality"}}[task], name
    with pytest.raises(InvalidParameterError):
        st.build_arm("VGG", 32)


def test_bad_working_size():
    with pytest.raises(InvalidParameterError, match="multiple of 16"):
        st.load_sources(40)


@pytest.mark.shared_data
def test_real_protocol_split_is_leakage_free(data_root):
    sources = st.load_sources(32, data_root=data_root, limit=3)
    train, test = st.build_protocol_data(sources, 3, seed=0)
    tr_src, te_src = {s["source"] for s in train}, {s["source"] for s in test}
    assert tr_src.isdisjoint(te_src)
    assert all(s.endswith("_training") for s in tr_src if s.startswith("DRIVE/"))
    assert all(s.endswith("_test") for s in te_src if s.startswith("DRIVE/"))
    child = lambda s: s.split("/")[1][6:8]  # noqa: E731  Image_NN[LR] -> NN
    assert {child(s) for s in tr_src if s.startswith("CHASE")}.isdisjoint({child(s) for s in te_src if s.startswith("CHASE")})
    assert {s["label"] for s in test} == set(range(len(GRADES)))
    s = train[0]
    assert s["image"].shape == (1, 32, 32) and s["mask"].shape == (32, 32) and s["fov"].dtype == torch.bool
    again, _ = st.build_protocol_data(sources, 3, seed=0)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(train, again))


def test_vessel_sources_from_own_folders_and_a_test_dataset(tmp_path):
    a = f"folder:{fx.segmentation(tmp_path / 'a', n=10)}"
    b = f"folder:{fx.segmentation(tmp_path / 'b', n=5)}"
    assert st.source_splits("DRIVE") == [("train", "train"), ("test", "test")]
    assert st.source_splits(a) == [("train", "train"), ("val", "train"), ("test", "test")]
    assert st.source_splits(a, test_dataset=b) == [("train", "train"), ("val", "train")]
    assert st.chapter_datasets([a], b) == [a, b, "ARCADE"]
    with pytest.raises(InvalidParameterError, match="this needs a segmentation dataset"):
        st.chapter_datasets([a], "phantom-boxes")
    own = st.load_sources(32, datasets=[a])
    assert (len(own["train"]), len(own["test"])) == (8, 2) and own["train"][0]["image"].shape == (1, 32, 32)
    assert bool(own["train"][0]["fov"].all())  # no field-of-view mask: the whole frame
    cross = st.load_sources(32, datasets=[a], test_dataset=b)
    assert len(cross["train"]) == 8 and [s["id"].split("/")[-1] for s in cross["test"]] == ["5"]
    assert all(s["id"].startswith(b) for s in cross["test"])
    train, test = st.build_protocol_data(cross, versions=2, seed=0)
    assert len(train) == 16 and len(test) == 2


def test_a_vessel_folder_without_val_trains_on_train(tmp_path):
    """A folder split into train/ test only (splits.csv) is a valid B1 source, one-off or registered."""
    path = fx.segmentation(tmp_path / "tt", n=6)
    (path / "splits.csv").write_text("id,split\n" + "".join(f"{k},{'train' if k <= 4 else 'test'}\n"
                                                            for k in range(1, 7)))
    root = tmp_path / "root"
    user_manifests.add("tt", path, root=root)
    for name in (f"folder:{path}", "tt"):
        assert st.source_splits(name, data_root=root) == [("train", "train"), ("test", "test")]
        got = st.load_sources(32, data_root=root, datasets=[name])
        assert (len(got["train"]), len(got["test"])) == (4, 2)
    assert st.source_splits("tt", test_dataset=f"folder:{path}", data_root=root) == [("train", "train")]
