"""Cheaper steps before more steps: one training step of each zoo network in four execution variants.

For every zoo entry (its own strategy, network and a real batch from its own batches), time a full
training step — zero grads, ``compute_gradients``, optimiser steps — as
- ``fp32``: eager float32 (what the zoo trains with),
- ``channels_last``: the network and its input in channels-last memory format,
- ``bf16``: the forward pass under ``torch.autocast(device, torch.bfloat16)``,
- ``compile``: the network compiled in place with ``torch.compile`` (``nn.Module.compile``),
in interleaved rounds (each round times every variant once, so a drifting shared CPU affects them
alike) and report each variant's median time relative to fp32 in the same round, plus whether
its loss stays within 1 % of fp32's on the same batch (a variant that changes the result is not
adopted, whatever its speed).

    python benchmarks/zoo_step_variants.py --threads 1 --rounds 5 --out /tmp/zoo_variants.csv
    python benchmarks/zoo_step_variants.py --entries erfnet-cvc --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import pandas as pd
import torch

from medtask import zoo
from medtask.config import get_device

VARIANTS = ("fp32", "channels_last", "bf16", "compile")


def _modules(strategy) -> list[torch.nn.Module]:
    return list(strategy.modules().values())


def _prepare(entry, variant: str, device: torch.device):
    """A fresh strategy (same seed, same weights) set up for ``variant``; None if the variant fails to build."""
    torch.manual_seed(0)
    model = entry.build()
    strategy = entry.strategy(model, device)
    if variant == "channels_last":
        for m in _modules(strategy):
            m.to(memory_format=torch.channels_last)
    if variant == "compile":
        for m in _modules(strategy):
            m.compile()
    return strategy


def _step(strategy, batch, step: int, variant: str, device: torch.device) -> tuple[float, float]:
    if variant == "channels_last" and torch.is_tensor(batch.get("image")) and batch["image"].dim() == 4:
        batch = {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if variant == "bf16" else contextlib.nullcontext()
    for opt in strategy.optimizers().values():
        opt.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    with ctx:
        logs = strategy.compute_gradients(copy.copy(batch), step)
    for opt in strategy.optimizers().values():
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, float(logs.get("loss", float("nan")))


def run(name: str, rounds: int, device: torch.device) -> list[dict]:
    entry = zoo.get(name)
    batch = entry.batches(device)(0)
    strategies, first_loss, errors = {}, {}, {}
    for v in VARIANTS:
        try:
            strategies[v] = _prepare(entry, v, device)
            _, first_loss[v] = _step(strategies[v], batch, 0, v, device)  # warm-up (and compilation)
            _step(strategies[v], batch, 1, v, device)
        except Exception as exc:  # a variant that does not run on this network is reported, not fatal
            errors[v] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}"
            strategies.pop(v, None)
    times: dict[str, list[float]] = {v: [] for v in strategies}
    for r in range(rounds):
        for v in strategies:
            times[v].append(_step(strategies[v], batch, 2 + r, v, device)[0])
    rows = []
    for v in VARIANTS:
        if v in errors:
            rows.append({"entry": name, "variant": v, "error": errors[v]})
            continue
        ratios = [t / f for t, f in zip(times[v], times["fp32"])]
        rows.append({"entry": name, "variant": v, "median_s": statistics.median(times[v]),
                     "ratio_to_fp32": statistics.median(ratios),
                     "loss_rel_diff": abs(first_loss[v] - first_loss["fp32"]) / abs(first_loss["fp32"])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", nargs="+", default=None, help="zoo entries (default: every root entry)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="write the table as CSV")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    names = args.entries or sorted(n for n, e in zoo.entries().items() if e.parent is None)
    rows = [row for n in names for row in run(n, args.rounds, device)]
    df = pd.DataFrame(rows)
    print(f"device: {device}, threads: {torch.get_num_threads()}, rounds: {args.rounds}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
