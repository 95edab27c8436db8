"""Seconds per training step of zoo entries, batch making included: what their step counts are chosen from.

For each entry: its own network, strategy and batches (augmentation and, for Study B, the graded
degradation included), one warm-up step, then ``--steps`` timed steps. Reports wall seconds and CPU
seconds of this process per step (``time.process_time``: on a machine shared with other jobs the CPU
time of one thread is the steadier estimate of what the step costs on a free core), and the hours the
entry's ``steps`` take at that CPU rate.

    OMP_NUM_THREADS=1 python benchmarks/zoo_step_cost.py angioqanet-drive resnet18-covidct --steps 3
"""

from __future__ import annotations

import argparse
import time

import torch

from medtask import zoo
from medtask.config import get_device


def step_cost(name: str, steps: int, device: torch.device) -> dict:
    """Wall and CPU seconds per full training step of entry ``name`` (after one warm-up step)."""
    entry = zoo.get(name)
    torch.manual_seed(0)
    strategy = entry.strategy(entry.build(), device)
    batches = entry.batches(device)

    def one(k: int) -> None:
        batch = batches(k)
        strategy.train_mode()
        for opt in strategy.optimizers().values():
            opt.zero_grad(set_to_none=True)
        strategy.compute_gradients(batch, k)
        for opt in strategy.optimizers().values():
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    one(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(1, steps + 1):
        one(k)
    wall, cpu = (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps
    return {"entry": name, "wall_s_per_step": round(wall, 3), "cpu_s_per_step": round(cpu, 3),
            "steps": entry.steps, "hours_at_cpu_rate": round(entry.steps * cpu / 3600, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", nargs="+")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device(args.device)
    for name in args.entries:
        print(step_cost(name, args.steps, device), flush=True)


if __name__ == "__main__":
    main()
