"""Data-parallel ``fit`` under torchrun (gloo, 2 CPU processes) equals the one-process run with the same global batch.

GradProm goes through the chapters' path: ``$MEDTASK_NPROC=2`` makes ``fit`` hand the training to
two worker processes (``medtask.engine.launch``), which write the checkpoint this process then
loads; the codec goes through ``medtask zoo train NAME --nproc 2``.
Tolerance: parameters and buffers agree to ``atol=1e-5`` (1 % of one Adam step at lr 1e-3) and
``rtol=1e-4``, logged losses to ``rtol=1e-4``, after a few steps. The ranks sum in another order
than one process (the averaged gradients differ from the one-process ones by ~1e-6 relative);
Adam's eps is raised from 1e-8 to 1e-6 here, because with 1e-8 its first steps turn a rounding
difference in a near-zero gradient (a GDN gamma's off-diagonal entries) into a large part of a
step (3e-5 seen): that would measure Adam, not the data-parallel loop. For the same reason the
test segmenter's convolution before BatchNorm has no bias (its true gradient is 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import pytest
import torch
from torch import nn

from medtask.engine import RandomBatches, distributed, fit, launch
from medtask.engine.loop import read_checkpoint
from medtask.errors import InvalidParameterError, MedtaskError

RTOL, ATOL = 1e-4, 1e-5

# the probe strategy below lives in this module, which the workers cannot import: send it by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], rtol=RTOL, atol=ATOL, msg=lambda m, k=k: f"{k}: {m}")
        else:
            assert torch.equal(a[k], b[k]), k


def _state(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.detach().clone() for n, m in modules.items() for k, v in m.state_dict().items()}


def _adam_eps(strategy, eps: float = 1e-6):
    for opt in strategy.optimizers().values():
        for group in opt.param_groups:
            group["eps"] = eps
    return strategy


def _same_history(a: list[dict], b: list[dict]) -> None:
    assert [h["step"] for h in a] == [h["step"] for h in b]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == pytest.approx(y[k], rel=RTOL, abs=1e-6), (x["step"], k)


# -- GradProm (BatchNorm in both networks, a segmentation Dice pooled over the batch) --------------
def _seg_data(n: int = 8, size: int = 16) -> list[dict]:
    g = torch.Generator().manual_seed(7)
    img = torch.rand(n, 3, size, size, generator=g)
    mask = (img[:, 0] > 0.5).long() + (img[:, 1] > 0.7).long()
    return [{"image": img[i], "mask": mask[i], "id": str(i)} for i in range(n)]


def _gradprom(marks: Path):
    from medtask.methods.gradprom.networks import SRResNet
    from medtask.methods.gradprom.strategies import TaskDrivenEnhancement

    class Probe(TaskDrivenEnhancement):
        """GradProm that marks, per rank, every checkpoint it fills (``state_dict`` is read only to write one)."""

        def state_dict(self):
            marks.mkdir(parents=True, exist_ok=True)
            (marks / f"rank{distributed.rank()}").touch()
            return {}

    torch.manual_seed(0)
    enhancer = SRResNet(3, depth=1, width=4, head_kernel=3, image_residual=False)
    segmenter = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1))
    return _adam_eps(Probe(enhancer, segmenter, task="segmentation", lam=0.5, combiner="gate", lr=1e-3))


def _batches():
    from medtask.methods.gradprom.strategies import DegradeBatch

    return RandomBatches(_seg_data(), 4, seed=1, augment=DegradeBatch({"name": "gaussian", "sigma": 0.1}))


def test_gradprom_on_two_processes_equals_one_resumes_under_another_world_size_and_rank0_writes(tmp_path,
                                                                                                 monkeypatch):
    monkeypatch.delenv(launch.NPROC_ENV, raising=False)
    ref = _gradprom(tmp_path / "marks-ref")
    fit(ref, _batches(), 4, checkpoint=tmp_path / "ref.pt", progress=False)
    at4 = _state(ref.modules())
    ref_res = fit(ref, _batches(), 6, checkpoint=tmp_path / "ref.pt", progress=False)

    run = _gradprom(tmp_path / "marks-1")
    fit(run, _batches(), 2, checkpoint=tmp_path / "run.pt", progress=False)  # 1 process: steps 0-1
    monkeypatch.setenv(launch.NPROC_ENV, "2")
    marks = tmp_path / "marks-1"
    for p in marks.iterdir():  # marks of the one-process phase
        p.unlink()
    fit(run, _batches(), 4, checkpoint=tmp_path / "run.pt", progress=False)  # 2 processes: steps 2-3
    assert read_checkpoint(tmp_path / "run.pt")["step"] == 4
    assert sorted(p.name for p in marks.iterdir()) == ["rank0"]  # only rank 0 filled a checkpoint
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".job"))]  # no leftovers
    _close(at4, _state(run.modules()))
    monkeypatch.delenv(launch.NPROC_ENV)
    res = fit(run, _batches(), 6, checkpoint=tmp_path / "run.pt", progress=False)  # 1 process again: 4-5

    assert res.resumed_from == 4 and res.steps == 6
    _close(_state(ref.modules()), _state(run.modules()))
    _same_history(ref_res.history, res.history)
    assert {"cos", "gate", "loss_vr"} <= set(res.history[3])


# -- a tiny codec, a zoo entry, through the command line (CompressAI's noise, aux loss, update()) -------------------------------------------------------------
def test_zoo_train_nproc_2_equals_nproc_1(tmp_path, monkeypatch):
    from medtask.cli import main
    from medtask.zoo.store import read_card

    name = "mbt2018-mean-phantom-q4"  # a smoke entry: a tiny codec on phantom data, 4 steps, global batch 4
    cards, states = {}, {}
    for n in (1, 2):
        monkeypatch.setenv("MEDTASK_ZOO", str(tmp_path / f"zoo{n}"))
        monkeypatch.setenv("MEDTASK_ZOO_RUNS", str(tmp_path / f"runs{n}"))
        assert main(["zoo", "train", name, "--no-progress"] + (["--nproc", "2"] if n == 2 else [])) == 0
        cards[n] = read_card(name)
        (ckpt,) = (tmp_path / f"runs{n}").glob("*/train.pt")
        states[n] = read_checkpoint(ckpt)["modules"]["codec"]
    assert cards[1]["processes"] == 1 and cards[2]["processes"] == 2
    _close(states[1], states[2])
    for a, b in zip(cards[1]["curve"], cards[2]["curve"]):
        assert a["step"] == b["step"] and a["rd_loss"] == pytest.approx(b["rd_loss"], rel=RTOL)
    assert cards[1]["test"]["rd_loss"] == pytest.approx(cards[2]["test"]["rd_loss"], rel=RTOL)


# -- pieces, without processes --------------------------------------------------------------------
def test_shard_batch_gives_each_rank_its_block():
    batch = {"image": torch.arange(6).view(6, 1), "boxes": [torch.zeros(k, 4) for k in range(6)],
             "id": list("abcdef"), "scale": 2.0}
    parts = [distributed.shard_batch(batch, r, 3) for r in range(3)]
    assert [p["image"].flatten().tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]
    assert parts[1]["id"] == ["c", "d"] and len(parts[2]["boxes"][1]) == 5 and parts[0]["scale"] == 2.0
    with pytest.raises(InvalidParameterError, match="multiple of the 4 processes"):
        distributed.shard_batch(batch, 0, 4)


def test_ranks_draw_their_own_dropout_and_share_the_global_noise(monkeypatch):
    """Two ranks of one step, simulated in this process: each draws its own dropout masks (and the next step others
    again), the global-batch noise is cut from the one-process draw, and the main generator goes on alike on both."""
    drop = nn.Dropout(0.5)
    torch.manual_seed(0)
    start = torch.get_rng_state()
    monkeypatch.setattr(distributed, "_IN_STEP", True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    masks, noise, after = {}, {}, {}
    for step in (3, 4):
        for r in (0, 1):
            monkeypatch.setattr(distributed, "rank", lambda r=r: r)
            torch.set_rng_state(start)
            with distributed.rank_streams(step):
                masks[step, r] = drop(torch.ones(256)) > 0
                noise[step, r] = distributed.rank_slice_uniform(torch.empty(2, 5), -0.5, 0.5)
            after[step, r] = torch.get_rng_state()
    assert not torch.equal(masks[3, 0], masks[3, 1]) and not torch.equal(masks[3, 0], masks[4, 0])
    torch.set_rng_state(start)
    one_process = torch.empty(4, 5).uniform_(-0.5, 0.5)
    assert torch.equal(torch.cat([noise[3, 0], noise[3, 1]]), one_process)
    assert all(torch.equal(a, torch.get_rng_state()) for a in after.values())
    monkeypatch.undo()
    torch.set_rng_state(start)  # one process: the step draws from the main generator, as without a scope
    with distributed.step_scope(3):
        plain = drop(torch.ones(256)) > 0
    torch.set_rng_state(start)
    assert torch.equal(plain, drop(torch.ones(256)) > 0)


def test_torchrun_commands():
    one = launch.torchrun_command(["zoo", "train", "x"], 2)
    assert one[1:4] == ["-m", "torch.distributed.run", "--standalone"] and "--nproc-per-node=2" in one
    assert one[-5:] == ["-m", "medtask.cli", "zoo", "train", "x"]
    two = launch.torchrun_command(["zoo", "train", "x"], 4, nnodes=2, rdzv_endpoint="node1:29400")
    assert "--rdzv-endpoint=node1:29400" in two and "--nnodes=2" in two and "--standalone" not in two
    with pytest.raises(InvalidParameterError, match="rdzv-endpoint"):
        launch.torchrun_command([], 2, nnodes=2)
    assert launch.strip_launch_options(["zoo", "train", "--nproc", "2", "x", "--nnodes=2", "--rdzv-endpoint",
                                        "h:1"]) == ["zoo", "train", "x"]


def test_job_file_keeps_tensors_shared_and_refuses_a_foreign_or_changed_file(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    job = tmp_path / "x.job"
    key = b"k" * 32
    launch.write_job({"model": model, "opt": opt, "note": "n", "fn": lambda x: x + 1}, job, key)
    back = launch.read_job(job, key)
    assert back["note"] == "n" and back["fn"](1) == 2
    torch.testing.assert_close(back["model"].weight, model.weight)
    # the optimiser still steps the model's own parameters (identity survives the split)
    assert back["opt"].param_groups[0]["params"][0] is back["model"].weight
    torch.testing.assert_close(back["opt"].state[back["model"].weight]["exp_avg"], opt.state[model.weight]["exp_avg"])
    with pytest.raises(MedtaskError, match="not signed"):
        launch.read_job(job, b"x" * 32)
    # the right key but changed contents: a weight (a tensor, outside the pickled graph) or a truncated file
    data = job.read_bytes()
    weight = model.weight.detach().numpy().tobytes()
    at = data.index(weight)
    tampered = data[:at] + bytes(len(weight)) + data[at + len(weight):]
    for changed in (tampered, data[:-10], data[:20]):
        job.write_bytes(changed)
        with pytest.raises(MedtaskError, match="not signed .* or was changed since"):
            launch.read_job(job, key)
