"""The one training loop: it lowers a loss, resumes exactly, and returns at once when finished."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medtask.engine import RandomBatches, Strategy, collate, fit
from medtask.errors import CheckpointError


class Regression(Strategy):
    name = "regression"

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.net = nn.Linear(3, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def compute_gradients(self, batch, step):
        loss = nn.functional.mse_loss(self.net(batch["x"]), batch["y"])
        loss.backward()
        return {"loss": loss.item()}


def dataset(n: int = 32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return [{"x": x[i], "y": y[i], "id": str(i)} for i in range(n)]


def test_fit_lowers_the_loss():
    res = fit(Regression(), RandomBatches(dataset(), 8, seed=0), 60, progress=False)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == 60 and sum(losses[-5:]) < 0.05 * sum(losses[:5])
    assert res.seconds > 0 and res.seconds_per_step > 0


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    data = dataset()
    full = Regression()
    fit(full, RandomBatches(data, 8, seed=3), 20, progress=False)

    ckpt = tmp_path / "run.pt"
    part = Regression()
    fit(part, RandomBatches(data, 8, seed=3), 7, checkpoint=ckpt, checkpoint_every=7, progress=False)
    resumed = Regression(seed=99)  # different init: everything must come from the checkpoint
    res = fit(resumed, RandomBatches(data, 8, seed=3), 20, checkpoint=ckpt, checkpoint_every=5, progress=False)
    assert res.resumed_from == 7 and len(res.history) == 20
    for a, b in zip(full.net.parameters(), resumed.net.parameters()):
        torch.testing.assert_close(a, b)


def test_finished_checkpoint_returns_without_training(tmp_path):
    ckpt = tmp_path / "done.pt"
    first = fit(Regression(), RandomBatches(dataset(), 8), 5, checkpoint=ckpt, progress=False)
    s = Regression(seed=5)
    again = fit(s, RandomBatches(dataset(), 8), 5, checkpoint=ckpt, progress=False)
    assert again.history == first.history and again.resumed_from == 5
    w = torch.load(ckpt, weights_only=True)["modules"]["net"]["weight"]
    torch.testing.assert_close(s.net.weight, w)
    assert not ckpt.with_suffix(".pt.tmp").exists()


class AdamRegression(Regression):
    """The same model with Adam, whose state (two moments per weight) doubles a checkpoint."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.net = nn.Linear(3, 4096)
        self.head = nn.Linear(4096, 1)
        self.opt = torch.optim.Adam([*self.net.parameters(), *self.head.parameters()], lr=0.01)

    def modules(self):
        return {"net": self.net, "head": self.head}

    def compute_gradients(self, batch, step):
        loss = nn.functional.mse_loss(self.head(self.net(batch["x"])), batch["y"])
        loss.backward()
        return {"loss": loss.item()}


def test_finished_checkpoint_without_optimiser_state(tmp_path):
    data = dataset()
    full, slim = tmp_path / "full.pt", tmp_path / "slim.pt"
    a = AdamRegression()
    fit(a, RandomBatches(data, 8, seed=2), 10, checkpoint=full, progress=False)
    # interrupted at step 4 (still resumable), then finished without its optimiser state
    fit(AdamRegression(), RandomBatches(data, 8, seed=2), 4, checkpoint=slim, checkpoint_every=4, progress=False)
    assert "optimizers" in torch.load(slim, weights_only=True)  # step 4 of 4 written before the call knew of 10
    b = AdamRegression(seed=7)
    first = fit(b, RandomBatches(data, 8, seed=2), 10, checkpoint=slim, checkpoint_every=4, progress=False,
                keep_optimizer=False)
    assert first.resumed_from == 4
    state = torch.load(slim, weights_only=True)
    assert "optimizers" not in state and "schedulers" not in state and state["step"] == 10
    assert slim.stat().st_size < 0.6 * full.stat().st_size
    for x, y in zip(a.head.parameters(), b.head.parameters()):  # the resume was exact
        torch.testing.assert_close(x, y)
    c = AdamRegression(seed=8)  # a rerun loads the weights and the history
    again = fit(c, RandomBatches(data, 8, seed=2), 10, checkpoint=slim, progress=False, keep_optimizer=False)
    assert again.history == first.history
    torch.testing.assert_close(c.head.weight, a.head.weight)
    with pytest.raises(CheckpointError, match=r"slim\.pt holds a finished training of 10 steps.*delete it"):
        fit(AdamRegression(), RandomBatches(data, 8, seed=2), 12, checkpoint=slim, progress=False)


class SpikeAt(Regression):
    """The regression whose loss is NaN at one step (a bad batch), as in a codec fine-tuning seen diverging."""

    def __init__(self, bad_step: int) -> None:
        super().__init__()
        self.bad_step = bad_step

    def compute_gradients(self, batch, step):
        logs = super().compute_gradients(batch, step)
        if step == self.bad_step:
            self.net.weight.grad.fill_(float("nan"))
            logs["loss"] = float("nan")
        return logs


@pytest.mark.parametrize("grad_clip", [None, 1.0])
def test_a_step_with_nonfinite_gradients_is_skipped_not_applied(grad_clip):
    res = fit(SpikeAt(bad_step=5), RandomBatches(dataset(), 8, seed=0), 40, grad_clip=grad_clip, progress=False)
    s = res.history
    assert res.skipped_steps == 1 and s[5]["skipped"] == 1.0 and "skipped" not in s[4]
    assert len(s) == 40 and s[-1]["loss"] < 0.05 * s[0]["loss"]  # the run went on and still learned
    clean = Regression()
    fit(clean, RandomBatches(dataset(), 8, seed=0), 5, grad_clip=grad_clip, progress=False)
    spiked = SpikeAt(bad_step=5)
    fit(spiked, RandomBatches(dataset(), 8, seed=0), 6, grad_clip=grad_clip, progress=False)
    torch.testing.assert_close(spiked.net.weight, clean.net.weight)  # step 5 changed nothing


def test_zero_steps_checkpoint_holds_the_starting_weights(tmp_path):
    ckpt = tmp_path / "start.pt"
    start = Regression(seed=4)
    res = fit(start, RandomBatches(dataset(), 8), 0, checkpoint=ckpt, progress=False)
    assert res.history == [] and ckpt.is_file()
    loaded = Regression(seed=9)
    fit(loaded, RandomBatches(dataset(), 8), 0, checkpoint=ckpt, progress=False)
    torch.testing.assert_close(loaded.net.weight, start.net.weight)


class _NotWeights:
    """An arbitrary object: unpickling it would run code, so a safe load must refuse it."""


def test_checkpoints_load_with_weights_only(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(Regression(), RandomBatches(dataset(), 8), 3, checkpoint=ckpt, progress=False)
    torch.load(ckpt, weights_only=True)  # what fit writes is plain tensors and containers
    state = torch.load(ckpt, weights_only=True)
    state["strategy"] = {"payload": _NotWeights()}
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match=r"run\.pt cannot be read"):
        fit(Regression(), RandomBatches(dataset(), 8), 5, checkpoint=ckpt, progress=False)


def test_truncated_or_mismatched_checkpoint_names_the_file_and_the_fix(tmp_path):
    ckpt = tmp_path / "task_original.pt"
    fit(Regression(), RandomBatches(dataset(), 8), 3, checkpoint=ckpt, progress=False)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(CheckpointError, match=r"task_original\.pt cannot be read .*truncated.*Delete it"):
        fit(Regression(), RandomBatches(dataset(), 8), 5, checkpoint=ckpt, progress=False)
    ckpt.write_bytes(data)

    wider = Regression()
    wider.net = nn.Linear(4, 1)  # another width than the one that wrote the checkpoint
    wider.opt = torch.optim.SGD(wider.net.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match=r"task_original\.pt does not fit the network 'net' .*Delete it"):
        fit(wider, RandomBatches(dataset(), 8), 5, checkpoint=ckpt, progress=False)


def test_batches_are_a_pure_function_of_seed_and_step():
    data = dataset(10)
    a, b = RandomBatches(data, 4, seed=7), RandomBatches(data, 4, seed=7)
    assert [a.indices(s) for s in (5, 0, 3)] == [b.indices(s) for s in (5, 0, 3)]
    # epoch-wise sampling: the first 10 positions are a permutation of the dataset
    assert sorted(a.indices(0) + a.indices(1) + a.indices(2)[:2]) == list(range(10))
    assert a.indices(0) != RandomBatches(data, 4, seed=8).indices(0)


def test_collate_and_errors():
    batch = collate([{"img": torch.zeros(2, 2), "boxes": torch.zeros(1, 4), "label": 1},
                     {"img": torch.ones(2, 2), "boxes": torch.zeros(3, 4), "label": 0}])
    assert batch["img"].shape == (2, 2, 2) and isinstance(batch["boxes"], list) and batch["label"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="empty dataset"):
        RandomBatches([], 2)
    with pytest.raises(ValueError):
        fit(Regression(), RandomBatches(dataset(), 2), -1, progress=False)


class LoggedDtype(Regression):
    """Records the dtype of the forward pass's output (what autocast computed it in)."""

    def compute_gradients(self, batch, step):
        out = self.net(batch["x"])
        self.seen = out.dtype
        loss = nn.functional.mse_loss(out.float(), batch["y"])
        loss.backward()
        return {"loss": loss.item()}


def test_bf16_precision_autocasts_the_step_and_keeps_float32_weights():
    data = dataset()
    fp32, bf16 = LoggedDtype(), LoggedDtype()
    fit(fp32, RandomBatches(data, 8, seed=0), 60, progress=False)
    res = fit(bf16, RandomBatches(data, 8, seed=0), 60, progress=False, precision="bf16")
    assert fp32.seen == torch.float32 and bf16.seen == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in bf16.net.parameters())
    assert res.history[-1]["loss"] < 0.05 * res.history[0]["loss"]  # it still learns
    diff = max((a - b).abs().max().item() for a, b in zip(fp32.net.parameters(), bf16.net.parameters()))
    assert 0 < diff < 0.05  # rounded, not a different result


def test_unknown_precision_is_refused_before_training():
    with pytest.raises(ValueError, match="precision must be one of"):
        fit(Regression(), RandomBatches(dataset(), 8, seed=0), 5, progress=False, precision="fp8")
