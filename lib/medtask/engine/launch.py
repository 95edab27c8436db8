"""Start trainings under ``torchrun`` (PyTorch's launcher): the ``--nproc`` of ``medtask zoo train`` and ``medtask run``.

- :func:`torchrun_command` builds ``python -m torch.distributed.run ... -m medtask.cli ARGS``:
  ``--standalone`` on one machine; with ``nnodes > 1`` the c10d rendezvous at ``HOST:PORT``
  (the same command is started on every node).
- ``medtask zoo train NAME --nproc N`` re-runs itself under torchrun (:func:`relaunch_cli`).
- ``medtask run CHAPTER --nproc N`` sets ``MEDTASK_NPROC=N`` for the chapter's kernel. The kernel
  never joins a process group: :func:`medtask.engine.fit`, asked to train there, hands the training
  to :func:`train_in_workers`, which writes the strategy and the batches to a job file, runs
  ``N`` worker processes under torchrun that train data-parallel and write the checkpoint
  (rank 0), and returns; ``fit`` then resumes from the finished checkpoint, in the kernel.

The job file (:func:`write_job`, :func:`read_job`) keeps tensors and objects apart: every tensor
goes into a list loaded with ``torch.load(weights_only=True)`` (which also maps the kernel's GPU
onto each rank's), and the object graph that refers to them (strategy classes, optimisers,
closures, pickled with cloudpickle) refers to them by index. The file (graph and tensors) is signed
with HMAC-SHA256 under a random key that only the launching process and its workers know (passed
in their environment), and nothing in it is loaded before the signature checks: a job file written
or changed by anyone else is refused, never executed or trained on.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medtask.errors import InvalidParameterError, MedtaskError

#: the variable ``medtask run --nproc N`` sets for a chapter's kernel
NPROC_ENV = "MEDTASK_NPROC"
#: the variable that hands the job file's signing key (hex) to the worker processes
JOB_KEY_ENV = "MEDTASK_JOB_KEY"
#: the job file starts with the HMAC-SHA256 of everything after it
SIGNATURE_BYTES = 32
#: the options the launcher consumes (each takes one value)
LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--rdzv-endpoint", "--rdzv-id")


def torchrun_options(nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None,
                     rdzv_id: str = "medtask") -> list[str]:
    """torchrun's options: ``--standalone`` for one node, the c10d rendezvous at ``rdzv_endpoint`` for several."""
    if nproc < 1 or nnodes < 1:
        raise InvalidParameterError(f"--nproc and --nnodes must be >= 1, got {nproc} and {nnodes}")
    if nnodes > 1 and not rdzv_endpoint:
        raise InvalidParameterError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (a port on the first node "
                                    "that every node can reach, e.g. node1:29400)")
    opts = [f"--nproc-per-node={nproc}"]
    if rdzv_endpoint:
        return [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
                f"--rdzv-id={rdzv_id}", *opts]
    return ["--standalone", "--nnodes=1", *opts]


def torchrun_command(args: Sequence[str], nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None,
                     rdzv_id: str = "medtask", module: str = "medtask.cli") -> list[str]:
    """``python -m torch.distributed.run OPTIONS -m MODULE ARGS`` (``module=None``: ``args[0]`` is a script)."""
    head = [sys.executable, "-m", "torch.distributed.run", *torchrun_options(nproc, nnodes, rdzv_endpoint, rdzv_id)]
    return head + (["-m", module] if module else []) + list(args)


def strip_launch_options(argv: Sequence[str]) -> list[str]:
    """``argv`` without :data:`LAUNCH_OPTIONS` (``--nproc 2`` and ``--nproc=2`` forms)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in LAUNCH_OPTIONS:
            skip = True
            continue
        if any(a.startswith(o + "=") for o in LAUNCH_OPTIONS):
            continue
        out.append(a)
    return out


def add_launch_arguments(parser: Any, multi_node: bool = True) -> None:
    """Add ``--nproc`` (and ``--nnodes``, ``--rdzv-endpoint``, ``--rdzv-id``) to an argparse parser."""
    parser.add_argument("--nproc", type=int, default=None, metavar="N",
                        help="train data-parallel on N processes per machine under torchrun (one per GPU; gloo on CPU)")
    if multi_node:
        parser.add_argument("--nnodes", type=int, default=1, metavar="M",
                            help="machines taking part (run the same command on each; needs --rdzv-endpoint)")
        parser.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                            help="torchrun's c10d rendezvous, a port on the first machine every machine reaches")
        parser.add_argument("--rdzv-id", default="medtask", metavar="ID", help="the job's id, the same on every machine")


def relaunch_cli(argv: Sequence[str], nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None,
                 rdzv_id: str = "medtask") -> int:
    """Run ``medtask ARGV`` (less the launch options) under torchrun; its exit status."""
    cmd = torchrun_command(strip_launch_options(argv), nproc, nnodes, rdzv_endpoint, rdzv_id)
    print("launching: " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def requested_nproc() -> int:
    """``$MEDTASK_NPROC`` (set by ``medtask run --nproc N``), 1 when unset."""
    value = os.environ.get(NPROC_ENV, "1") or "1"
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameterError(f"{NPROC_ENV}={value!r} is not a number of processes") from None
    if n < 1:
        raise InvalidParameterError(f"{NPROC_ENV} must be >= 1, got {n}")
    return n


def write_job(obj: Any, path: str | os.PathLike, key: bytes) -> None:
    """Write ``obj`` to ``path``: its tensors as a weights-only tensor list, the rest signed with ``key``."""
    import cloudpickle
    import torch

    tensors: list[torch.Tensor] = []
    index: dict[int, int] = {}

    class _Pickler(cloudpickle.Pickler):
        def persistent_id(self, o: Any) -> int | None:  # tensors (parameters too) leave the graph
            if isinstance(o, torch.Tensor):
                if id(o) not in index:
                    index[id(o)] = len(tensors)
                    tensors.append(o)
                return index[id(o)]
            return None

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    payload = io.BytesIO()
    torch.save({"tensors": tensors, "graph": torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)}, payload)
    body = payload.getvalue()
    with open(path, "wb") as f:  # the signature covers every byte after it: the graph and the tensors alike
        f.write(hmac.new(key, body, hashlib.sha256).digest() + body)


def read_job(path: str | os.PathLike, key: bytes, map_location: Any = None) -> Any:
    """Read what :func:`write_job` wrote, after checking its signature with ``key``; tensors go to ``map_location``."""
    import torch

    data = Path(path).read_bytes()
    signature, body = data[:SIGNATURE_BYTES], data[SIGNATURE_BYTES:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), signature):
        raise MedtaskError(f"the job file {path} is not signed by the process that launched this worker, or was "
                           "changed since; refusing to load it (start trainings with `medtask run --nproc N` or "
                           "`medtask zoo train --nproc N`)")
    spec = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    graph, tensors = spec["graph"].numpy().tobytes(), spec["tensors"]

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            return tensors[pid]

    return _Unpickler(io.BytesIO(graph)).load()


def train_in_workers(strategy: Any, batches: Any, steps: int, checkpoint: str | os.PathLike, nproc: int,
                     **fit_options: Any) -> None:
    """Train ``fit(strategy, batches, steps, checkpoint=..., **fit_options)`` on ``nproc`` worker processes.

    The job (strategy, batches, schedulers: one object graph, so the schedulers keep their
    optimisers; and the caller's torch generator states, so the workers draw what this process
    would have drawn) is written beside the checkpoint with :func:`write_job` under a fresh key,
    ``nproc`` workers run ``python -m medtask.engine.launch JOB`` under torchrun, and rank 0
    writes the finished checkpoint. The caller then loads it (``fit`` does).
    """
    import torch

    ckpt = Path(checkpoint).resolve()
    job = ckpt.with_name(ckpt.name + ".job")
    job.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
        write_job({"strategy": strategy, "batches": batches, "steps": int(steps), "checkpoint": str(ckpt),
                   "options": fit_options, "rng": rng}, job, key)
    except Exception as exc:
        job.unlink(missing_ok=True)
        raise MedtaskError(f"the training {getattr(strategy, 'name', '')!r} cannot be sent to {nproc} worker "
                           f"processes ({type(exc).__name__}: {exc}); run the chapter without --nproc") from exc
    cmd = torchrun_command([str(job)], nproc, module="medtask.engine.launch")
    try:
        rc = subprocess.call(cmd, env={**os.environ, JOB_KEY_ENV: key.hex()})
    finally:
        job.unlink(missing_ok=True)
    if rc != 0:
        raise MedtaskError(f"the {nproc} worker processes training {ckpt.name} failed (exit status {rc}); "
                           f"their messages are above. The command was: {' '.join(cmd)}")


def _worker(job: str) -> None:
    """One worker of :func:`train_in_workers`: load the job onto this rank's device and call ``fit``."""
    import torch

    from medtask.engine import distributed
    from medtask.engine.loop import fit

    distributed.init()
    # the kernel's GPU tensors go to this rank's GPU; CPU tensors (datasets in memory) stay
    location = {"cuda:0": f"cuda:{torch.cuda.current_device()}"} if torch.cuda.is_available() else None
    key = bytes.fromhex(os.environ.pop(JOB_KEY_ENV, ""))
    if not key:
        raise MedtaskError(f"{JOB_KEY_ENV} is not set: worker processes are started by train_in_workers only (start "
                           "trainings with `medtask run --nproc N` or `medtask zoo train --nproc N`)")
    spec = read_job(job, key, map_location=location)
    torch.set_rng_state(spec["rng"]["cpu"])  # the caller's generator: the noise of a one-process run
    if spec["rng"]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(spec["rng"]["cuda"])
    opts = {**spec["options"], "progress": spec["options"].get("progress", True) and distributed.is_main()}
    fit(spec["strategy"], spec["batches"], spec["steps"], checkpoint=spec["checkpoint"], **opts)


if __name__ == "__main__":  # pragma: no cover - runs in the worker processes
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m medtask.engine.launch JOB (written by train_in_workers)")
    _worker(sys.argv[1])
