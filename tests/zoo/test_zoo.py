"""The zoo: train → card → verified load; corrupt or stale entries give errors that say what to do."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from medtask import zoo
from medtask.cli import main
from medtask.zoo import registry
from medtask.methods.mvmicnet.zoo import CodecEntry, SegmenterEntry
from medtask.zoo.report import cards_table, plot_curves, size_summary, starts_note
from medtask.zoo.store import ZooError, read_weights, sha256, weights_path

PHANTOM = [{"dataset": "phantom-polyp", "size": [64, 64]}]


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    """Two tiny entries (a codec and its fine-tuned child) and a segmenter, on phantom data, in a scratch zoo."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    common = dict(study="A", description="test", data=[dict(d) for d in PHANTOM])
    zoo.register(CodecEntry(name="t-codec", steps=4, eval_every=2, metric="rd_loss", higher_is_better=False,
                            N=8, M=8, quality=4, hyperparameters={"crop": 64, "batch_size": 2}, **common))
    zoo.register(CodecEntry(name="t-codec-q3", steps=2, eval_every=2, metric="rd_loss", higher_is_better=False,
                            N=8, M=8, quality=3, parent="t-codec", hyperparameters={"crop": 64, "batch_size": 2},
                            **common))
    zoo.register(SegmenterEntry(name="t-seg", steps=3, eval_every=2, metric="dice", higher_is_better=True,
                                width=0.1, hyperparameters={"crop": 32, "batch_size": 2}, **common))
    monkeypatch.setenv("MEDTASK_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("MEDTASK_ZOO_RUNS", str(tmp_path / "runs"))
    torch.set_num_threads(1)
    return tmp_path


def test_train_writes_card_and_load_verifies(tiny):
    card = zoo.train("t-seg", progress=False)
    assert [r["step"] for r in card["curve"]] == [0, 2, 3]
    assert card["command"] == "medtask zoo train t-seg" and card["steps"] == 3
    assert card["sha256"] == sha256(weights_path("t-seg"))
    assert set(card["test"]) >= {"dice", "miou", "mean_dice"}
    assert card["plateau"]["to_step"] == 3 and card["data_fingerprints"]["phantom-polyp"]
    model = zoo.load("t-seg")
    state = read_weights("t-seg")
    assert all(torch.equal(model.state_dict()[k].float(), v.float()) for k, v in state.items())
    assert zoo.verify()["t-seg"] == "ok"
    table = cards_table().set_index("entry")
    assert table.loc["t-seg", "status"] == "ok" and table.loc["t-codec", "status"] == "not trained"
    assert table.loc["t-seg", "test_dice"] == card["test"]["dice"]
    fig = plot_curves(["t-seg"], extra=["mean_dice"])
    assert len(fig.axes[0].lines) == 2
    grid = plot_curves(["t-seg"] * 7, columns=3)  # many entries wrap into rows instead of one endless strip
    assert grid.axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 3)
    assert sum(ax.get_visible() for ax in grid.axes) == 7


def test_load_into_copies_verified_weights_or_names_both_architectures(tiny):
    card = zoo.train("t-seg", progress=False)
    net = zoo.get("t-seg").build()
    assert zoo.load_into(net, "t-seg")["sha256"] == card["sha256"]
    assert all(torch.equal(net.state_dict()[k].float(), v.float()) for k, v in read_weights("t-seg").items())
    wider = SegmenterEntry(name="other", study="A", description="x", data=PHANTOM, steps=1, eval_every=1,
                           metric="dice", higher_is_better=True, width=0.25).build()
    with pytest.raises(ZooError, match="'t-seg' is .*does not match.*init='scratch'"):
        zoo.load_into(wider, "t-seg")


def test_child_starts_from_parent_and_rerun_resumes(tiny):
    zoo.train("t-codec", progress=False)
    child = zoo.train("t-codec-q3", progress=False)
    assert child["parent"]["name"] == "t-codec" and child["parent"]["sha256"] == zoo.read_card("t-codec")["sha256"]
    first = sha256(weights_path("t-codec"))
    weights_path("t-codec").unlink()
    again = zoo.train("t-codec", progress=False)  # the run folder holds the finished state: nothing retrains
    assert again["sha256"] == first
    codec = zoo.load("t-codec")
    x = torch.rand(1, 3, 64, 64)
    assert codec.compress(x)["strings"]  # the entropy-coder tables were stored with the weights


def test_corrupt_weights_name_the_entry_and_the_fix(tiny, capsys):
    zoo.train("t-seg", progress=False)
    path = weights_path("t-seg")
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ZooError, match=r"t-seg.*sha256.*(corrupt|replaced).*medtask zoo train t-seg"):
        zoo.load("t-seg")
    assert main(["zoo", "verify", "--strict"]) == 2
    assert "t-seg" in capsys.readouterr().err


def test_weights_are_read_without_unpickling_objects(tiny):
    zoo.train("t-seg", progress=False)
    path = weights_path("t-seg")
    torch.save({"evil": torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)}, path)
    card_file = path.with_suffix(".json")
    card = json.loads(card_file.read_text())
    card["sha256"] = sha256(path)
    card_file.write_text(json.dumps(card))
    with pytest.raises(ZooError, match="cannot read"):
        read_weights("t-seg")


def test_changed_recipe_is_stale(tiny, monkeypatch):
    zoo.train("t-seg", progress=False)
    monkeypatch.setitem(registry._REGISTRY["t-seg"].hyperparameters, "lr", 0.5)
    with pytest.raises(ZooError, match="another recipe"):
        zoo.load("t-seg")
    assert zoo.verify()["t-seg"].startswith("stale")


def test_missing_entry_says_how_to_train_it(tiny):
    with pytest.raises(ZooError, match="medtask zoo train t-seg"):
        zoo.load("t-seg")


@pytest.mark.parametrize("curve,higher,flat", [
    ([0.1, 0.5, 0.60, 0.605, 0.606], True, True),
    ([0.1, 0.3, 0.40, 0.45, 0.50], True, False),
    ([9.0, 3.0, 2.0, 1.99, 1.985], False, True),
    ([9.0, 3.0, 2.0, 1.50, 1.20], False, False),
])
def test_plateau_rule(curve, higher, flat):
    rows = [{"step": 100 * i, "m": v} for i, v in enumerate(curve)]
    assert zoo.plateau(rows, "m", higher, 400)["flat"] is flat


def test_plateau_of_an_unfinished_curve_is_not_flat():
    assert zoo.plateau([{"step": 0, "m": 1.0}, {"step": 100, "m": 1.0}], "m", True, 400)["flat"] is False


def test_registered_entries_are_well_formed():
    known = zoo.entries()
    assert {"mbt2018-mean-cvc-q4", "mbt2018-mean-bccd-q1", "cheng2020-anchor-cvc-q2", "erfnet-cvc", "erfnet-cvc-random"} <= set(known)
    for name, entry in known.items():
        assert entry.parent is None or entry.parent in known, name
        assert len(entry.key()) == 12 and entry.data, name


def test_codec_crops_must_not_be_padded():
    """96-px crops were padded to 128 for coding: the codec learned to neglect every image's bottom and right edge."""
    from medtask.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="multiples of 64"):
        CodecEntry(name="t-bad", study="A", description="t", steps=2, eval_every=1, metric="rd_loss",
                   higher_is_better=False, data=[dict(d) for d in PHANTOM], N=8, M=8,
                   hyperparameters={"crop": 96})


def test_summary_names_entries_that_got_worse():
    import pandas as pd

    from medtask.zoo.report import trained_summary

    table = pd.DataFrame([
        {"entry": "a", "status": "ok", "plateau": "yes", "last_20pct_gain": -0.08, "train_min": 40.0},
        {"entry": "b", "status": "ok", "plateau": "no", "last_20pct_gain": 0.1, "train_min": 20.0},
        {"entry": "c", "status": "not trained"}])
    text = trained_summary(table)
    assert text.startswith("2 of 3 zoo entries are trained (60 minutes")
    assert "1 of them reached a plateau" in text and "of a got worse" in text and "Not trained yet: c." in text


def test_float16_storage_keeps_what_float16_cannot_hold_in_float32():
    """GDN's 1e-11 pedestals and an entropy model's 1e-9 bound underflow in float16: they stay float32, the rest
    halves (a weight whose one tiny element flushes to zero too); a trained codec with them in float16 scored an
    infinite rate-distortion loss."""
    from medtask.zoo.store import fits_float16, to_storage

    state = {"w": torch.cat([torch.randn(63), torch.tensor([1e-9])]), "pedestal": torch.full((4,), 1.4551915228366852e-11),
             "bound": torch.tensor(1e-9), "huge": torch.tensor([1e6]), "zeros": torch.zeros(3),
             "table": torch.arange(5)}
    stored = to_storage(state, torch.float16)
    assert {k: v.dtype for k, v in stored.items()} == {
        "w": torch.float16, "pedestal": torch.float32, "bound": torch.float32, "huge": torch.float32,
        "zeros": torch.float16, "table": torch.int64}
    assert torch.equal(stored["pedestal"], state["pedestal"]) and not fits_float16(state["bound"])
    assert to_storage(state, torch.float32)["w"].dtype == torch.float32


def test_a_codec_with_gdn_is_stored_small_where_it_can_be(tiny):
    card = zoo.train("t-codec", progress=False)
    fmt, kept = card["storage"]["dtype"], card["storage"]["kept_float32"]
    assert fmt in ("int8", "float16") and card["storage"][f"test_{fmt}"]["rd_loss"] < float("inf")
    assert kept and all(k.endswith(("pedestal", "likelihood_lower_bound.bound")) for k in kept)
    state = torch.load(weights_path("t-codec"), weights_only=True)
    int8 = set(card["storage"]["int8"])
    assert all(state[k].dtype == torch.float32 for k in kept) and all(state[k].dtype == torch.int8 for k in int8)
    assert all(v.dtype == torch.float16 for k, v in state.items() if v.is_floating_point()
               and k not in kept and k.removesuffix(".int8_scale") not in int8)


def test_int8_storage_quantizes_weight_tensors_per_channel_and_reads_back_as_float32():
    from medtask.zoo.store import INT8_SCALE, from_storage, storage_of, to_storage

    torch.manual_seed(0)
    conv = torch.randn(16, 8, 3, 3) * torch.logspace(-3, 1, 16)[:, None, None, None]  # channels of very unequal size
    conv[5] = 0.0
    state = {"conv.weight": conv, "conv.bias": torch.randn(16), "small": torch.randn(4, 4),
             "pedestal": torch.full((4,), 1.4551915228366852e-11), "table": torch.arange(5)}
    stored = to_storage(state, "int8")
    assert stored["conv.weight"].dtype == torch.int8 and stored["conv.weight" + INT8_SCALE].shape == (16,)
    assert {k: stored[k].dtype for k in ("conv.bias", "small", "pedestal", "table")} == {
        "conv.bias": torch.float16, "small": torch.float16, "pedestal": torch.float32, "table": torch.int64}
    back = from_storage(stored)
    assert set(back) == set(state) and all(v.dtype == state[k].dtype for k, v in back.items())
    err = (back["conv.weight"] - conv).abs().reshape(16, -1).amax(1)
    assert bool((err <= conv.abs().reshape(16, -1).amax(1) / 254 + 1e-12).all())  # half a step of each channel's own
    assert torch.equal(back["conv.weight"][5], torch.zeros(8, 3, 3)) and torch.equal(back["table"], state["table"])
    assert storage_of(stored) == {"int8": ["conv.weight"], "kept_float32": ["pedestal"]}


def test_storage_is_the_smallest_format_within_tolerance_and_shrink_stores_again(tiny, monkeypatch, capsys):
    from medtask.zoo import trainer
    from medtask.zoo.store import INT8_SCALE

    monkeypatch.setattr(trainer, "STORAGE_TOLERANCE", -1.0)  # no format is faithful enough: float32
    card = zoo.train("t-seg", progress=False)
    assert card["storage"]["dtype"] == "float32" and {"test_int8", "test_float16"} <= set(card["storage"])
    assert card["test"] == card["storage"]["test_float32"]
    assert main(["zoo", "shrink", "t-seg"]) == 0 and "stays float32" in capsys.readouterr().out
    assert zoo.read_card("t-seg")["sha256"] == card["sha256"]

    monkeypatch.setattr(trainer, "STORAGE_TOLERANCE", float("inf"))  # any format is: the smallest, int8
    assert main(["zoo", "shrink", "t-seg"]) == 0 and "float32" in capsys.readouterr().out
    small = zoo.read_card("t-seg")
    assert small["storage"]["dtype"] == "int8" and small["bytes"] < card["bytes"]
    assert small["storage"]["shrunk"]["sha256"] == card["sha256"] and small["sha256"] == sha256(weights_path("t-seg"))
    assert small["test"] == small["storage"]["test_int8"] and small["storage"]["test_float32"] == card["test"]
    stored = torch.load(weights_path("t-seg"), weights_only=True)
    assert all(stored[k].dtype == torch.int8 and k + INT8_SCALE in stored for k in small["storage"]["int8"])
    model = zoo.load("t-seg")  # loads (as float32) and scores as its card says
    assert zoo.get("t-seg").evaluate(model, "test", torch.device("cpu")) == pytest.approx(small["test"])
    assert zoo.shrink("t-seg")["sha256"] == small["sha256"]  # already the smallest


def test_starts_note_lists_each_entry_with_its_card_and_storage(tiny):
    card = zoo.train("t-seg", progress=False)
    note = starts_note({"t-seg": card}, "zoo")
    row = next(line for line in note.splitlines() if line.startswith("| `t-seg`"))
    assert f"{card['steps']} | phantom-polyp" in row and f"{card['storage']['dtype']}, " in row
    assert ("Not at a plateau" in note) is (not card["plateau"]["flat"])
    assert "random weights" in starts_note({}, "scratch")


def test_size_summary_totals_the_trained_entries_per_study_against_the_target():
    table = pd.DataFrame({"entry": ["a", "b", "c", "d"], "study": ["A", "A", "B", "C"],
                          "status": ["ok", "ok", "ok", "not trained"], "MB": [30.0, 5.0, 50.0, None],
                          "dtype": ["int8", "float16", "int8", None]})
    text = size_summary(table, largest=2)
    assert text.startswith("The 3 trained entries' weights take 85.0 MB (study A 35.0, study B 50.0), above the 80 MB")
    assert text.endswith("`c` 50.0 MB (int8), `a` 30.0 MB (int8).")
    assert "within the 90 MB" in size_summary(table, target_mb=90)
