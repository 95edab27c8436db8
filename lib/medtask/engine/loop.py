"""The one training loop of the study, and the :class:`Strategy` interface it drives."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medtask.engine import distributed
from medtask.errors import CheckpointError, InvalidParameterError

try:  # tqdm is a dependency, but the loop must not die without it
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


class Strategy:
    """How a batch becomes gradients. Subclasses implement :meth:`compute_gradients`.

    The loop zeroes every optimiser returned by :meth:`optimizers`, calls
    :meth:`compute_gradients` (which must leave ``.grad`` set on the parameters it trains and
    return a dict of floats to log), clips, steps the optimisers, then calls :meth:`after_step`.
    :meth:`modules` names the networks to checkpoint; :meth:`train_mode` sets train/eval modes
    (a frozen network stays in eval mode).
    """

    name: str = "strategy"

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def compute_gradients(self, batch: Any, step: int) -> dict[str, float]:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Hook after the optimiser step (e.g. an entropy model's auxiliary update)."""

    def train_mode(self) -> None:
        for m in self.modules().values():
            m.train()

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint beside modules and optimisers (e.g. running statistics)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def reduced_parameters(self) -> list[torch.Tensor]:
        """Parameters whose ``.grad`` :meth:`compute_gradients` already averaged over ranks itself.

        Under ``torchrun`` the loop averages every other trained parameter's gradient
        (:func:`medtask.engine.distributed.all_reduce_gradients`). A strategy that combines several
        full gradients (GradProm) must average each before combining, and names the parameters here.
        """
        return []


@dataclass
class TrainResult:
    """What :func:`fit` returns: the per-step log, and how long and how far it ran."""

    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed_from: int = 0

    @property
    def seconds_per_step(self) -> float:
        ran = self.steps - self.resumed_from
        return self.seconds / ran if ran > 0 else float("nan")

    @property
    def skipped_steps(self) -> int:
        """Steps whose gradients were not finite, so that no optimiser stepped (see :func:`fit`)."""
        return sum(1 for h in self.history if h.get("skipped"))

    def frame(self):
        """The history as a pandas DataFrame (one row per step)."""
        import pandas as pd

        return pd.DataFrame(self.history)


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _checkpoint_state(strategy: Strategy, step: int, history: list, seconds: float, schedulers: dict,
                      resumable: bool = True) -> dict:
    """What a checkpoint holds; without ``resumable``, no optimiser or scheduler state (a finished training)."""
    state = {
        "step": step,
        "history": history,
        "seconds": seconds,
        "modules": {k: m.state_dict() for k, m in strategy.modules().items()},
        "strategy": strategy.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if resumable:
        state["optimizers"] = {k: o.state_dict() for k, o in strategy.optimizers().items()}
        state["schedulers"] = {k: s.state_dict() for k, s in schedulers.items()}
    return state


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a :func:`fit` checkpoint safely (``weights_only=True``: tensors and plain containers, no code).

    A truncated, damaged or foreign file raises :class:`CheckpointError` naming the file and the fix.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated zip, unpickling refused, wrong format ...
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {reason}): it is truncated (an interrupted "
            "run, copy or a full disk) or not a checkpoint written by medtask's fit(). Delete it and rerun the "
            "chapter; the training that writes it starts again.") from exc
    if not isinstance(state, dict) or not isinstance(state.get("modules"), dict):
        raise CheckpointError(f"checkpoint {path} is not a checkpoint written by medtask's fit() (no 'modules'); "
                              "delete it and rerun the chapter.")
    return state


def load_state_into(path: str | os.PathLike, kind: str, name: str, target: Any, state: dict) -> None:
    """``target.load_state_dict(state)``; a missing entry or a shape/key mismatch is a :class:`CheckpointError`."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} does not fit the {kind} {name!r} ({first}); it was written by a training with "
            "other settings (architecture, width, classes). Delete it, or rerun with the settings that wrote it."
        ) from exc


def load_checkpoint(strategy: Strategy, path: str | os.PathLike, schedulers: dict | None = None) -> dict:
    """Restore modules, optimisers, schedulers and strategy state from ``path``; return the raw state."""
    state = read_checkpoint(path)
    apply_checkpoint(strategy, state, path, schedulers)
    return state


def is_resumable(state: dict) -> bool:
    """Whether a read checkpoint can train further (it holds optimiser state; see ``fit(keep_optimizer=...)``)."""
    return "optimizers" in state


def apply_checkpoint(strategy: Strategy, state: dict, path: str | os.PathLike,
                     schedulers: dict | None = None) -> None:
    """Restore modules, optimisers, schedulers, strategy state and the torch generator from a read ``state``.

    A finished checkpoint kept without optimiser state restores everything but the optimisers and schedulers.
    """
    resumable = is_resumable(state)
    kinds = (("modules", strategy.modules()), ("optimizers", strategy.optimizers()))
    for key, entries in kinds if resumable else kinds[:1]:
        missing = [k for k in entries if k not in state.get(key, {})]
        if missing:
            raise CheckpointError(f"checkpoint {path} has no {key[:-1]} {missing[0]!r} (it has "
                                  f"{sorted(state.get(key, {}))}); it was written by another training. Delete it "
                                  "and rerun the chapter.")
    for k, m in strategy.modules().items():
        load_state_into(path, "network", k, m, state["modules"][k])
    if resumable:
        for k, o in strategy.optimizers().items():
            load_state_into(path, "optimiser of", k, o, state["optimizers"][k])
        for k, s in (schedulers or {}).items():
            if k in state["schedulers"]:
                s.load_state_dict(state["schedulers"][k])
    strategy.load_state_dict(state.get("strategy", {}))
    torch.set_rng_state(state["torch_rng"])


def _step_of(path: Path) -> int:
    """The step a checkpoint reached (0 when there is none)."""
    return int(read_checkpoint(path)["step"]) if path.exists() else 0


#: ``fit(precision=...)``: the dtype of the forward pass under ``torch.autocast`` (None: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


def precision_context(precision: str, modules: list[nn.Module]) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on the modules' device (a null context for ``fp32``)."""
    if precision not in PRECISIONS:
        raise InvalidParameterError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    params = [p for m in modules for p in m.parameters()]
    device = params[0].device.type if params else "cpu"
    return torch.autocast(device, dtype=dtype)


def _trained_parameters(strategy: Strategy) -> list[torch.Tensor]:
    """Every parameter an optimiser steps, less those the strategy averaged over ranks itself."""
    skip = {id(p) for p in strategy.reduced_parameters()}
    params = [p for opt in strategy.optimizers().values() for g in opt.param_groups for p in g["params"]]
    return [p for p in dict.fromkeys(params) if id(p) not in skip]


def fit(
    strategy: Strategy,
    batches: Callable[[int], Any],
    steps: int,
    *,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 200,
    grad_clip: float | None = None,
    schedulers: dict[str, Any] | None = None,
    progress: bool = True,
    desc: str | None = None,
    keep_optimizer: bool = True,
    precision: str = "fp32",
) -> TrainResult:
    """Train ``strategy`` for ``steps`` steps on ``batches(step)``.

    With ``checkpoint`` (a file path), state is saved atomically every ``checkpoint_every``
    steps and at the end (with ``steps=0``, the starting state); a later call with the same path
    resumes where it stopped, and a finished run returns at once with its recorded history (so
    re-executing a notebook does not retrain). A step whose gradients are not finite (NaN or inf in any
    optimiser's parameters) steps no optimiser and is marked ``"skipped"`` in the history
    (:attr:`TrainResult.skipped_steps`); the schedulers and ``after_step`` still advance, so the run keeps
    its step count. With ``keep_optimizer=False`` the checkpoint written at the
    last step keeps the networks, the strategy's state and the history but drops the optimiser and scheduler
    state (two thirds of an Adam-trained checkpoint): a rerun still loads it, but it cannot be trained
    further (a call with more steps raises :class:`~medtask.errors.CheckpointError`). The chapters' trainings,
    whose step counts are in their checkpoints' keys, finish this way; the zoo's, which train in chunks on
    one checkpoint, keep it. ``progress`` shows a bar (off when ``MEDTASK_PROGRESS=0``, as in pipeline runs,
    where a bar would only clutter the executed notebook). ``precision="bf16"`` runs
    :meth:`Strategy.compute_gradients` (forward and backward) under ``torch.autocast`` in bfloat16 on the
    networks' device; weights, gradients and optimiser state stay float32 (bfloat16 has float32's range,
    so no loss scaling is needed). Whether it pays depends on the hardware: on a CPU with AVX-512 it ran most
    of Study B's networks' steps at 0.5-0.7 of float32's, on an AVX2-only CPU several times slower
    (zoo/README.md); measure before adopting it.

    Launched by ``torchrun`` (``medtask zoo train NAME --nproc N``), the same call trains
    data-parallel (:mod:`medtask.engine.distributed`): ``batches(step)`` is the global batch and
    each rank trains on its block of rows, gradients and logs are averaged over ranks, BatchNorm
    uses the global batch's statistics, rank 0 alone reads and writes the checkpoint (and shows
    the bar), and each rank draws its own dropout masks. The result equals a one-process run to float
    rounding where the forward pass draws no random numbers at the rank's shape (with dropout, in
    distribution only: "Random numbers" in :mod:`medtask.engine.distributed`). In a process that
    ``torchrun`` did not start but that asks for ``N > 1`` processes (``$MEDTASK_NPROC``, set by
    ``medtask run CHAPTER --nproc N`` for the chapter's kernel), a training with a checkpoint is
    handed to ``N`` worker processes (:func:`medtask.engine.launch.train_in_workers`) and its
    finished checkpoint loaded here.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    cast = precision_context(precision, list(strategy.modules().values()))
    from medtask.engine import launch  # not at import: ``python -m medtask.engine.launch`` runs it as __main__

    nproc = launch.requested_nproc()
    if (nproc > 1 and checkpoint is not None and steps > 0 and not distributed.launched()
            and _step_of(Path(checkpoint)) < steps):
        launch.train_in_workers(strategy, batches, steps, checkpoint, nproc, checkpoint_every=checkpoint_every,
                                grad_clip=grad_clip, schedulers=schedulers, progress=progress, desc=desc,
                                precision=precision)
    distributed.init()
    world, main = distributed.world_size(), distributed.is_main()
    schedulers = schedulers or {}
    ckpt = Path(checkpoint) if checkpoint is not None else None
    history: list[dict[str, float]] = []
    start, seconds = 0, 0.0
    state = None
    if ckpt is not None:
        state = read_checkpoint(ckpt) if main and ckpt.exists() else None
        state = distributed.broadcast_object(state)  # rank 0 reads; every rank resumes from the same state
    if state is not None and not is_resumable(state) and state["step"] < steps:
        raise CheckpointError(f"checkpoint {ckpt} holds a finished training of {state['step']} steps kept without "
                              f"its optimiser state, so it cannot continue to {steps} steps; delete it to train "
                              "from the start")
    if state is not None:
        apply_checkpoint(strategy, state, ckpt, schedulers)
        start, history, seconds = state["step"], state["history"], state["seconds"]
    else:  # every rank starts from rank 0's networks and random numbers
        distributed.broadcast_modules(strategy.modules().values())
        distributed.broadcast_rng()
    result = TrainResult(history=history, steps=start, seconds=seconds, resumed_from=start)
    if start >= steps:
        if ckpt is not None and state is None and main:  # steps == 0: the checkpoint holds the starting state
            _save_atomic(_checkpoint_state(strategy, 0, history, seconds, schedulers, keep_optimizer), ckpt)
        distributed.barrier()
        return result

    strategy.train_mode()
    optimizers = strategy.optimizers()
    trained = _trained_parameters(strategy) if world > 1 else []
    bar = None
    if main and progress and tqdm is not None and os.environ.get("MEDTASK_PROGRESS", "1") != "0":
        bar = tqdm(total=steps, initial=start, desc=desc or strategy.name, leave=False, mininterval=2.0)
    t0 = time.perf_counter()
    with distributed.synchronized_batchnorm(strategy.modules().values()):
        for step in range(start, steps):
            batch = batches(step)
            if world > 1:
                batch = distributed.shard_batch(batch)
            for opt in optimizers.values():
                opt.zero_grad(set_to_none=True)
            with distributed.step_scope(step), cast:
                logs = strategy.compute_gradients(batch, step)
            if world > 1:
                distributed.all_reduce_gradients(trained)
                logs = distributed.average_logs({k: float(v) for k, v in logs.items()})
            finite = True
            for opt in optimizers.values():
                params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
                norm = (torch.nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip is not None
                        else torch.nn.utils.get_total_norm([p.grad for p in params]))
                finite = finite and bool(torch.isfinite(norm))
            if finite:
                for opt in optimizers.values():
                    opt.step()
            else:  # one bad batch must not turn every weight into NaN (what an unguarded step does)
                logs = {**logs, "skipped": 1.0}
            strategy.after_step(step)
            for sched in schedulers.values():
                sched.step()
            history.append({"step": step, **{k: float(v) for k, v in logs.items()}})
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(logs.items())[:3]})
            done = step + 1
            if ckpt is not None and main and (done % checkpoint_every == 0 or done == steps):
                elapsed = seconds + time.perf_counter() - t0
                resumable = keep_optimizer or done < steps
                _save_atomic(_checkpoint_state(strategy, done, history, elapsed, schedulers, resumable), ckpt)
    if bar is not None:
        bar.close()
    distributed.barrier()
    result.steps = steps
    result.seconds = seconds + time.perf_counter() - t0
    return result
