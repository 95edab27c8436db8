"""Does bfloat16 autocast change what a zoo recipe learns? The same shortened recipe in both precisions.

For each entry, its recipe is shortened to ``--steps`` (the learning-rate schedule compressed with it,
``eval_every = steps / --points``) and trained twice from the same seed, batches and start: once in
``fp32`` and once under ``bf16`` autocast (``fit(precision=...)``). The validation curves (the entry's
own scores) are printed side by side with each precision's training time. Run it before adopting bf16 for
an entry family on hardware where bf16 pays (a GPU, or a CPU with native bfloat16; on an AVX2-only CPU it is
several times slower, zoo/README.md): the curves should agree within the noise of the validation set (one
validation version is 1/60 of quality accuracy for Study B); the verdict is the reader's, from the table.

    OMP_NUM_THREADS=1 python benchmarks/zoo_precision_check.py quality-resnet18-drive vessels-sa-unet-drive \\
        --steps 600 --points 2 --threads 1 --out /tmp/precision.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from medtask.config import get_device
from medtask.zoo.registry import get
from medtask.zoo.trainer import train_curve


def run(name: str, steps: int, points: int, device: torch.device) -> pd.DataFrame:
    """The validation curves of entry ``name``'s recipe shortened to ``steps``, in fp32 and in bf16."""
    rows = []
    for precision in ("fp32", "bf16"):
        base = get(name)
        entry = dataclasses.replace(base, steps=steps, eval_every=max(steps // points, 1),
                                    hyperparameters={**base.hyperparameters, "precision": precision})
        torch.manual_seed(0)
        model = entry.build()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            curve, result = train_curve(entry, model, device, Path(tmp) / "curve.json", Path(tmp) / "train.pt",
                                        progress=False)
            wall = time.perf_counter() - t0
        for point in curve:
            rows.append({"entry": name, "precision": precision, "step": point["step"],
                         entry.metric: point[entry.metric], "train_loss": point.get("train_loss"),
                         "train_seconds": result.seconds, "wall_seconds": wall})
        print(f"[{name}] {precision}: {entry.metric} {curve[-1][entry.metric]:.4f} after {steps} steps, "
              f"{result.seconds / steps:.2f} s/step", flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("entries", nargs="+", help="zoo entry names")
    ap.add_argument("--steps", type=int, default=600, help="the shortened recipe's steps")
    ap.add_argument("--points", type=int, default=2, help="validation points after step 0")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=None, help="write the curves as CSV")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    table = pd.concat([run(n, args.steps, args.points, device) for n in args.entries], ignore_index=True)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
