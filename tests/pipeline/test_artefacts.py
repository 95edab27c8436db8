"""Trained artefacts keyed on what produced them: a changed parameter retrains, an unchanged one is reused and listed."""

from __future__ import annotations

import json

import torch
from torch import nn

from medtask.pipeline import Chapter, artefacts
from medtask.engine import RandomBatches, Strategy, fit


class Scale(Strategy):
    """A one-weight network trained towards ``factor`` (the 'parameter' of these tests)."""

    name = "scale"

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.net = nn.Linear(1, 1, bias=False)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def compute_gradients(self, batch, step):
        loss = ((self.net(batch["x"]) - self.factor * batch["x"]) ** 2).mean()
        loss.backward()
        return {"loss": loss.item()}


DATA = [{"x": torch.tensor([float(k)]), "id": str(k)} for k in range(1, 9)]


def train(chapter: Chapter, factor: float, steps: int = 4):
    key = chapter.artefact_key({"factor": factor, "steps": steps, "lr": 0.1}, datasets=(), code=(Scale,))
    path = chapter.checkpoint("codec_r1", key=key)
    return path, fit(Scale(factor), RandomBatches(DATA, 4, seed=0), steps, checkpoint=path, progress=False)


def test_changed_parameter_retrains_and_unchanged_is_reused_and_listed(tmp_path):
    first = Chapter("a1_test", profile="smoke", results_dir=tmp_path / "r1")
    p1, r1 = train(first, 0.0067)
    assert r1.resumed_from == 0 and p1.is_file() and p1.name.startswith("codec_r1-")
    assert first.reused_artefacts() == []
    # asked for again in the same run (to load what it trained): still trained here, listed once
    key = first.artefact_key({"factor": 0.0067, "steps": 4, "lr": 0.1}, datasets=(), code=(Scale,))
    assert first.checkpoint("codec_r1", key=key) == p1
    assert first.reused_artefacts() == [] and len(first.artefacts) == 1

    again = Chapter("a1_test", profile="smoke", results_dir=tmp_path / "r2")
    p2, r2 = train(again, 0.0067)
    assert p2 == p1 and r2.resumed_from == 4  # same key: the finished checkpoint, no training
    [reused] = again.reused_artefacts()
    assert reused["key"]["params"] == {"factor": 0.0067, "steps": 4, "lr": 0.1}
    assert reused["produced_by"]["chapter"] == "a1_test" and reused["produced_by"]["created"]
    prov = json.loads(again.finish().read_text())["provenance"]
    assert [a["path"] for a in prov["artefacts"] if a["reused"]] == [str(p1)]

    changed = Chapter("a1_test", profile="smoke", results_dir=tmp_path / "r3")
    p3, r3 = train(changed, 0.05)  # a new lambda: another file, trained from scratch
    assert p3 != p1 and r3.resumed_from == 0 and changed.reused_artefacts() == []
    w1 = torch.load(p1, weights_only=True)["modules"]["net"]["weight"]
    w3 = torch.load(p3, weights_only=True)["modules"]["net"]["weight"]
    assert not torch.equal(w1, w3)


def test_key_follows_input_checkpoints_data_and_code(tmp_path):
    ch = Chapter("k", profile="smoke", results_dir=tmp_path / "r")
    base, _ = train(ch, 0.01)
    key = artefacts.build_key(params={"steps": 2}, inputs={"start": base}, data={"X": "X:sha256:1"}, code=(Scale,))
    assert artefacts.key_digest(key) == artefacts.key_digest(
        artefacts.build_key(params={"steps": 2}, inputs={"start": base}, data={"X": "X:sha256:1"}, code=(Scale,)))
    other_data = artefacts.build_key(params={"steps": 2}, inputs={"start": base}, data={"X": "X:sha256:2"},
                                     code=(Scale,))
    other_code = artefacts.build_key(params={"steps": 2}, inputs={"start": base}, data={"X": "X:sha256:1"},
                                     code=(Chapter,))
    assert artefacts.key_digest(other_data) != artefacts.key_digest(key) != artefacts.key_digest(other_code)
    state = torch.load(base, weights_only=True)
    state["modules"]["net"]["weight"] += 1  # the checkpoint it starts from was retrained
    torch.save(state, base)
    moved = artefacts.build_key(params={"steps": 2}, inputs={"start": base}, data={"X": "X:sha256:1"}, code=(Scale,))
    assert artefacts.key_digest(moved) != artefacts.key_digest(key)
    # tuples, numpy scalars and key order do not change the digest
    import numpy as np

    assert artefacts.key_digest({"a": (1, 2), "b": np.float64(0.5)}) == artefacts.key_digest({"b": 0.5, "a": [1, 2]})


def test_edited_data_bytes_give_another_checkpoint(toy, tmp_path):
    key = Chapter("d", datasets=["toy"], results_dir=tmp_path / "r", data_root=toy).artefact_key({"steps": 2})
    assert key["data"]["toy"].startswith("Toy:sha256:")
    (toy / "Toy" / "images" / "1.png").write_bytes(b"first imagE")  # same size, edited bytes
    import os

    os.utime(toy / "Toy" / "images" / "1.png", ns=(0, 10**18))
    ch = Chapter("d", datasets=["toy"], results_dir=tmp_path / "r", data_root=toy, allow_unverified_data=True)
    assert artefacts.key_digest(ch.artefact_key({"steps": 2})) != artefacts.key_digest(key)
