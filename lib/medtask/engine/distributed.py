"""Data-parallel training on PyTorch's own engine (:mod:`torch.distributed`), launched by ``torchrun``.

:func:`medtask.engine.fit` calls :func:`init`, which does nothing unless the process was started
by ``torchrun`` (the variables ``RANK`` and ``WORLD_SIZE`` are set). Then it joins the process
group — ``gloo`` on CPU; on a machine with CUDA ``cuda:nccl,cpu:gloo`` (nccl for GPU tensors,
gloo for the few CPU objects) — and pins the process to GPU ``LOCAL_RANK``.

How a step stays the step of one process with the same global batch (the contract tested in
``tests/engine/test_distributed.py``):

- *Batches.* ``batches(step)`` is the **global** batch, drawn from the seed and the step and
  identical on every rank; rank ``r`` of ``N`` keeps the contiguous block of rows
  ``[r·B/N, (r+1)·B/N)`` (:func:`shard_batch`). ``B`` must be a multiple of ``N``.
- *Gradients.* Every loss of the study is a mean over the batch (or a function of sums over it,
  below), so the average over ranks of the per-rank gradients is the gradient of the global
  batch: :func:`all_reduce_gradients` averages ``.grad`` explicitly (one flat all-reduce per
  dtype and device). A strategy that builds its update from several full gradients (GradProm
  needs both G_IP and G_VR before it gates one by their cosine) all-reduces each of them *before*
  combining, with :func:`all_reduce_tensors`, and names those parameters in
  :meth:`Strategy.reduced_parameters` so the loop leaves them alone; the cosine, the gate and the
  update are then those of the global batch, on every rank.
- *Statistics over the batch.* BatchNorm layers in training mode normalise with the mean and
  variance of the global batch (SyncBatchNorm semantics, :func:`synchronized_batchnorm`; one
  differentiable all-gather of each rank's count, mean and squared deviations per layer), and so update identical running statistics on every
  rank. A loss that pools sums over the whole batch (the multi-class soft Dice) sums them over
  ranks with :func:`global_sum`, whose backward pass makes the averaged gradient exact.
- *Random numbers.* Every rank starts from rank 0's torch generator state (or the checkpoint's),
  and the main generators stay the same on every rank from step to step. While a step's gradients
  are computed on more than one rank (:func:`rank_streams`), the default generators are seeded
  from (the main CPU generator's state, the step, the rank), so what the forward pass draws at the
  rank's own shape -- dropout masks, Faster R-CNN's anchor and proposal sampling -- differs from
  rank to rank and step to step: such networks agree with one process in distribution, not
  bitwise. Noise that must equal the single-process run (CompressAI's training quantisation,
  ``U(-½, ½)`` per latent) is drawn for the global batch from a copy of the main generator and
  sliced (:func:`rank_slice_uniform`): it equals the one-process noise element by element when the
  step draws nothing else from the default generator. After the step the main generator goes on
  from that copy, the same on every rank. On one process none of this happens: a step draws from
  the main generator as it always did.
- *CompressAI.* The auxiliary (quantile) loss depends on the parameters only, so its gradient
  is the same on every rank and averaging keeps it. ``update()`` (the coding tables) runs where a
  codec is stored or evaluated: on rank 0 in ``medtask zoo train``, in the chapter's own kernel
  after a ``--nproc`` training; a rank that needs rank 0's tables loads them with
  :func:`broadcast_state` (CompressAI's ``load_state_dict`` resizes them).
- *Checkpoints.* Rank 0 alone writes, atomically (temporary file, then :func:`os.replace`), and
  alone reads: it broadcasts the checkpoint to the others, so a run resumes under any world size
  and no file system needs to be shared between nodes.

Within these rules a run on ``N`` processes matches one process to float rounding (the sums are
taken in another order): the tests allow ``1e-5`` relative after a few steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from medtask.errors import InvalidParameterError

#: set while :func:`medtask.engine.fit` computes a step's gradients on more than one rank: only
#: then do :func:`global_sum` and the synchronised BatchNorm talk to the other ranks (evaluation
#: on rank 0 alone must never wait for a collective the others do not join).
_IN_STEP = False
#: during a distributed step, the generators of its global draws (:func:`rank_slice_uniform`) by device: copies of
#: the main generators as the step began (:func:`rank_streams`)
_GLOBAL: dict[torch.device, torch.Generator] = {}


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """Whether a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def backend() -> str:
    """``$MEDTASK_DIST_BACKEND``, else ``cuda:nccl,cpu:gloo`` with CUDA, ``gloo`` without."""
    env = os.environ.get("MEDTASK_DIST_BACKEND")
    if env:
        return env
    return "cuda:nccl,cpu:gloo" if torch.cuda.is_available() else "gloo"


def init() -> bool:
    """Join the process group if launched by ``torchrun`` (idempotent); return :func:`active`.

    The timeout (``$MEDTASK_DIST_TIMEOUT_MIN``, default 180 minutes) covers rank 0 evaluating or
    writing while the others wait.
    """
    if active():
        return True
    if not launched():
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    minutes = float(os.environ.get("MEDTASK_DIST_TIMEOUT_MIN", "180"))
    dist.init_process_group(backend=backend(), timeout=timedelta(minutes=minutes))
    return True


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this is rank 0, the one that writes files, evaluates and prints."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if active() and world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled; use for checkpoints and small state)."""
    if not active() or world_size() == 1:
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_modules(modules: Iterable[nn.Module], src: int = 0) -> None:
    """Overwrite every parameter and buffer with rank ``src``'s values, in place.

    Shapes must agree on all ranks: call it before CompressAI's ``update()`` resizes the coding
    tables (after it, use :func:`broadcast_state`).
    """
    if not active() or world_size() == 1:
        return
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            dist.broadcast(t.data, src=src)


def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Load rank ``src``'s ``state_dict`` into ``module`` on every rank (buffers may differ in shape,
    e.g. a CompressAI model whose ``update()`` ran on rank 0 alone: its ``load_state_dict`` resizes them)."""
    if not active() or world_size() == 1:
        return
    state = broadcast_object({k: v.detach().cpu() for k, v in module.state_dict().items()} if rank() == src else None,
                             src=src)
    if rank() != src:
        module.load_state_dict(state)


def broadcast_rng(src: int = 0) -> None:
    """Give every rank rank ``src``'s torch generator states (CPU, and the current GPU's)."""
    if not active() or world_size() == 1:
        return
    states = {"cpu": torch.get_rng_state(),
              "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
    states = broadcast_object(states, src=src)
    torch.set_rng_state(states["cpu"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


def _flat_all_reduce_mean(tensors: Sequence[torch.Tensor]) -> None:
    """Average ``tensors`` over ranks in place: one flat all-reduce per (device, dtype)."""
    groups: dict[tuple[Any, Any], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    n = world_size()
    for ts in groups.values():
        flat = torch.cat([t.reshape(-1) for t in ts])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(n)
        offset = 0
        for t in ts:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def all_reduce_tensors(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The mean over ranks of each tensor (new tensors; the inputs unchanged); the inputs on one process.

    For strategies that compute full gradients themselves: GradProm all-reduces G_IP and G_VR
    each, *before* combining them, so the cosine gate sees the gradients of the global batch.
    """
    if not (active() and world_size() > 1) or not tensors:
        return list(tensors)
    out = [t.detach().clone() for t in tensors]
    _flat_all_reduce_mean(out)
    return out


def all_reduce_gradients(params: Iterable[torch.Tensor]) -> None:
    """Average ``.grad`` of ``params`` over ranks, in place (explicit; what DDP does in its hooks).

    A parameter without a gradient on some ranks but not on others (a data-dependent branch) gets
    zeros there before the average; one without a gradient on every rank keeps ``None``.
    """
    params = list(dict.fromkeys(params))  # unique, in order
    if not active() or world_size() == 1 or not params:
        return
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    grads = []
    for p, any_rank in zip(params, has.tolist()):
        if not any_rank:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    if grads:
        _flat_all_reduce_mean(grads)


def average_logs(logs: dict[str, float]) -> dict[str, float]:
    """A step's logged floats averaged over ranks (every rank logs the same keys): the means of the global batch."""
    if not active() or world_size() == 1 or not logs:
        return logs
    keys = sorted(logs)
    vals = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(vals, op=dist.ReduceOp.SUM)
    vals /= world_size()
    out = dict(zip(keys, vals.tolist()))
    return {k: out[k] for k in logs}


def in_step() -> bool:
    """Whether a step's gradients are being computed on more than one rank (see :data:`_IN_STEP`)."""
    return _IN_STEP


@contextlib.contextmanager
def step_scope(step: int, enabled: bool = True) -> Iterator[None]:
    """Mark the computation of step ``step``'s gradients (the loop uses it); collectives inside are joined by all
    ranks, and on more than one rank the step draws its random numbers as :func:`rank_streams` says."""
    global _IN_STEP
    before, _IN_STEP = _IN_STEP, bool(enabled and active() and world_size() > 1)
    try:
        if _IN_STEP:
            with rank_streams(step):
                yield
        else:
            yield
    finally:
        _IN_STEP = before


def _generator_at(state: torch.Tensor, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.set_state(state)
    return g


def _rank_seed(state: torch.Tensor, step: int, rank_: int) -> int:
    """A 63-bit seed from a generator state, a step and a rank (sha256 of the three)."""
    h = hashlib.sha256(state.cpu().numpy().tobytes())
    h.update(f"step {step} rank {rank_}".encode())
    return int.from_bytes(h.digest()[:8], "little") >> 1


@contextlib.contextmanager
def rank_streams(step: int, rank_: int | None = None) -> Iterator[None]:
    """The random numbers of one distributed step, on rank ``rank_`` (this process's by default).

    Inside, the default generators (CPU, and the current GPU's where CUDA is in use) are seeded from the main CPU
    generator's state, ``step`` and the rank, so dropout and every other draw at the rank's own shape differ
    between ranks and between steps; :func:`rank_slice_uniform` draws from copies of the main generators as they
    were on entry. On exit the main generators continue from those copies: they advance by the step's global
    draws only, identically on every rank.
    """
    global _GLOBAL
    r = rank() if rank_ is None else rank_
    cpu = torch.device("cpu")
    cpu_state = torch.get_rng_state()
    shared = {cpu: _generator_at(cpu_state, cpu)}
    gpu = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu = torch.device("cuda", torch.cuda.current_device())
        shared[gpu] = _generator_at(torch.cuda.get_rng_state(gpu), gpu)
    seed = _rank_seed(cpu_state, step, r)
    torch.default_generator.manual_seed(seed)
    if gpu is not None:
        torch.cuda.manual_seed(seed)
    before, _GLOBAL = _GLOBAL, shared
    try:
        yield
    finally:
        _GLOBAL = before
        torch.set_rng_state(shared[cpu].get_state())
        if gpu is not None:
            torch.cuda.set_rng_state(shared[gpu].get_state(), gpu)


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward pass is the all-reduce (sum) of the incoming gradients."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = t.detach().clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class _GatherOverRanks(torch.autograd.Function):
    """Every rank's tensor stacked ``[ranks, ...]``; backward: the gradients of all ranks summed, this rank's row."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:  # noqa: D102
        parts = [torch.empty_like(t) for _ in range(world_size())]
        dist.all_gather(parts, t.detach().contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[rank()]


def _gather_over_ranks(t: torch.Tensor) -> torch.Tensor:
    return _GatherOverRanks.apply(t)


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    return _SumOverRanks.apply(t)


def global_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over ranks, differentiably, inside a distributed step; ``t`` itself otherwise.

    For losses that pool sums over the batch (a Dice over the whole batch): each rank computes the
    loss of the global batch from the summed terms, and the backward pass (an all-reduce of the
    incoming gradients) makes the rank-averaged gradient that of the global batch.
    """
    return _sum_over_ranks(t) if _IN_STEP else t


# -- batches ------------------------------------------------------------------------------------
def batch_size(batch: Any) -> int:
    """Rows in a batch: ``len(batch["image"])``, else the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        first = batch.get("image")
        if first is None:
            first = next((v for v in batch.values() if isinstance(v, (torch.Tensor, list))), None)
        if first is not None:
            return len(first)
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size(batch[0])
    raise InvalidParameterError(f"cannot tell the batch size of a {type(batch).__name__}: fit shards dict batches "
                                "of tensors and lists, or tensors, over ranks")


def shard_batch(batch: Any, rank_: int | None = None, world: int | None = None) -> Any:
    """Rank ``rank_``'s contiguous block of the global ``batch`` (tensors and lists of its length are sliced)."""
    r = rank() if rank_ is None else rank_
    n = world_size() if world is None else world
    if n == 1:
        return batch
    size = batch_size(batch)
    if size % n:
        raise InvalidParameterError(
            f"the global batch has {size} rows, not a multiple of the {n} processes: choose a batch size "
            f"divisible by --nproc (e.g. {max(n, size - size % n)} or {size + n - size % n})")
    lo, hi = r * size // n, (r + 1) * size // n

    def cut(v: Any) -> Any:
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == size:
            return v[lo:hi]
        if isinstance(v, list) and len(v) == size:
            return v[lo:hi]
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        if isinstance(v, tuple):
            return tuple(cut(x) for x in v)
        return v

    return cut(batch)


def rank_slice_uniform(like: torch.Tensor, low: float, high: float, dim: int = 0) -> torch.Tensor:
    """Uniform noise for this rank's block of a batch, cut from the noise of the global batch.

    ``like`` is the rank's tensor; its dimension ``dim`` holds the batch (or is batch-major, as
    CompressAI's entropy bottleneck's flattened ``[C, 1, B·H·W]``). The global tensor (``dim``
    ``N`` times longer) is drawn from the step's copy of the main generator (:func:`rank_streams`), the same on
    every rank, exactly as one process would draw it from its default generator, and this rank's contiguous block
    returned; outside a distributed step it is ``uniform_`` itself.
    """
    if not _IN_STEP:
        return torch.empty_like(like).uniform_(low, high)
    n, r = world_size(), rank()
    shape = list(like.shape)
    local = shape[dim]
    shape[dim] = local * n
    if like.device not in _GLOBAL:
        raise InvalidParameterError(f"rank_slice_uniform on {like.device}, but this step's generators are on "
                                    f"{sorted(map(str, _GLOBAL))}: keep a rank's networks and batch on one device")
    full = torch.empty(shape, dtype=like.dtype, device=like.device).uniform_(low, high, generator=_GLOBAL[like.device])
    return full.narrow(dim, r * local, local).contiguous()


# -- BatchNorm over the global batch -------------------------------------------------------------
class _GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (all ranks); plain otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not (self.training and _IN_STEP):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        c = x.shape[1]
        # one exchange per layer: each rank's count, mean and sum of squared deviations (two-pass, so
        # no E[x²] − E[x]² cancellation), combined as Chan et al. do
        local_mean = x.mean(dims)
        local_m2 = ((x - local_mean.view(shape)) ** 2).sum(dims)
        count = torch.full((1,), x.numel() / c, dtype=x.dtype, device=x.device)
        stats = _gather_over_ranks(torch.cat([local_mean, local_m2, count]))  # [ranks, 2C + 1]
        counts, means, m2s = stats[:, -1:], stats[:, :c], stats[:, c:2 * c]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        var = (m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)) / n
        centred = x - mean.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                total = float(n)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * total / max(total - 1, 1), alpha=factor)
        out = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


_SYNCED: dict[type, type] = {}


def _synced_class(cls: type) -> type:
    if cls not in _SYNCED:
        _SYNCED[cls] = type(f"Global{cls.__name__}", (_GlobalBatchNorm, cls), {"__module__": __name__})
    return _SYNCED[cls]


@contextlib.contextmanager
def synchronized_batchnorm(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Inside, the BatchNorm layers of ``modules`` use the global batch's statistics in a distributed step.

    The layers keep their parameters, buffers and state-dict keys (only their class is swapped, and
    swapped back on exit), so optimisers and checkpoints are unaffected. Works with gloo on CPU,
    where :class:`torch.nn.SyncBatchNorm` does not.
    """
    swapped: list[tuple[nn.Module, type]] = []
    if active() and world_size() > 1:
        for m in modules:
            for sub in m.modules():
                if isinstance(sub, nn.modules.batchnorm._BatchNorm) and not isinstance(sub, _GlobalBatchNorm):
                    swapped.append((sub, type(sub)))
                    sub.__class__ = _synced_class(type(sub))
    try:
        yield
    finally:
        for sub, cls in swapped:
            sub.__class__ = cls
