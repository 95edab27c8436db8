"""How a chapter should fine-tune a trained zoo codec: learning rate, warm-up and the aux optimiser.

Chapters A1/A2 start every learned codec from the zoo and give each the same further MSE steps. This
script measures what those steps do to a trained codec on their own: the zoo entry is loaded, trained
for ``--steps`` steps of ``CodecMSEStrategy`` on the entry's training images, whole frames in batches
of ``--batch-size`` (chapter A2's setting; ``--crop 128 --batch-size 8`` is A1's), gradient clipping 1.0 as in the chapters, then scored with
the entry's own test code (PSNR, likelihood bpp, RD loss) beside the zoo weights as trained. Variants:

- ``lr1e-4``: Adam at 1e-4, aux 1e-3 (the chapters' setting before 2026-12-02);
- ``warmup``: the same, with the codec's learning rate ramped linearly over the first half of the steps;
- ``noaux``: 1e-4 with the aux (quantile) optimiser off, to rule it out;
- ``lr1e-5``: Adam at 1e-5 (close to where the zoo's cosine schedule ended);
- ``lr1e-3``: Adam at 1e-3 (the rate Study C's zoo recipes start from).

    OMP_NUM_THREADS=1 python benchmarks/zoo_finetune_lr.py --entry mbt2018-mean-bccd-q4 --steps 80
    OMP_NUM_THREADS=1 python benchmarks/zoo_finetune_lr.py --entry mbt2018-mean-cvc-q4 --steps 200 --crop 128 --batch-size 8
    OMP_NUM_THREADS=1 python benchmarks/zoo_finetune_lr.py --entry srresnet-covidct-gaussian0.2 --steps 100 --variants lr1e-3,lr1e-4,lr1e-5
    OMP_NUM_THREADS=1 python benchmarks/zoo_finetune_lr.py --entry erfnet-cvc --steps 200 --batches chapter --crop 128 --batch-size 8 --variants lr1e-4,lr1e-5
    OMP_NUM_THREADS=1 python benchmarks/zoo_finetune_lr.py --entry erfnet-cvc --steps 200 --batches recipe --crop 128 --variants lr1e-4
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.optim.lr_scheduler import LambdaLR

from medtask import zoo
from medtask.data.augment import compose, random_crops
from medtask.engine.batches import RandomBatches
from medtask.engine.loop import fit
from medtask.methods.gradprom.strategies import DegradeBatch
from medtask.methods.mvmicnet.strategies import CodecMSEStrategy
from medtask.methods.mvmicnet.zoo import CodecEntry
from medtask.zoo.registry import load_item

#: variant -> (codec learning rate, aux learning rate, warm-up steps as a fraction of the run)
VARIANTS = {"lr1e-4": (1e-4, 1e-3, 0.0), "warmup": (1e-4, 1e-3, 0.5), "noaux": (1e-4, 0.0, 0.0),
            "lr1e-5": (1e-5, 1e-3, 0.0), "lr1e-3": (1e-3, 1e-3, 0.0)}
#: the scores printed, for codecs; other entries print their own metric and every score of their evaluation
SHOWN = ("psnr", "bpp", "rd_loss")


def _setup(entry, name: str, args, device: torch.device):
    """The zoo network, its strategy at ``name``'s learning rates, and the batches ``args.batches`` names."""
    lr, aux_lr, _ = VARIANTS[name]
    model = zoo.load(args.entry).train()
    codec = isinstance(entry, CodecEntry)
    crop = {"crop": args.crop} if args.crop and args.batches == "recipe" else {}  # the recipe's batches at another crop
    recipe = dataclasses.replace(entry, hyperparameters={**entry.hyperparameters, "lr": lr, **crop})
    strategy = (CodecMSEStrategy(model, entry.hyperparameters["lambda1"], lr=lr, aux_lr=aux_lr) if codec
                else recipe.strategy(model, device))
    if (args.batches or ("chapter" if codec else "recipe")) == "recipe":
        return model, strategy, recipe.batches(device)
    train = load_item(entry.data[0], "train")
    train = [{"image": s["image"], "id": s["id"]} for s in train] if codec else train
    steps = [random_crops(args.crop)] if args.crop else []
    if getattr(entry, "degradation", None):  # an enhancer: degraded input, clean target, as Study C's chapters make them
        steps.append(DegradeBatch(entry.degradation, supervised=True))
    return model, strategy, RandomBatches(train, args.batch_size, seed=0, augment=compose(*steps) if steps else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entry", default="mbt2018-mean-bccd-q4")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--crop", type=int, default=None, help="random square crops of this size (A1: 128); whole frames if unset; with --batches recipe, the recipe's crop size")
    ap.add_argument("--batches", choices=("chapter", "recipe"), default=None,
                    help="chapter: the training split as a chapter feeds it (whole frames or --crop crops, --batch-size; "
                         "the default for codecs); recipe: the entry's own augmented batches (the default otherwise)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    entry = zoo.get(args.entry)
    shown = SHOWN if isinstance(entry, CodecEntry) else None
    trained = entry.evaluate(zoo.load(args.entry), "test", device)
    print(f"{args.entry} as trained: " + ", ".join(f"{k} {trained[k]:.4f}" for k in shown or trained), flush=True)
    for name in args.variants.split(","):
        model, strategy, batches = _setup(entry, name, args, device)
        ramp = max(1, int(VARIANTS[name][2] * args.steps))
        schedulers = ({k: LambdaLR(opt, lambda i: min(1.0, (i + 1) / ramp)) for k, opt in strategy.optimizers().items()
                       if k != "aux"} if VARIANTS[name][2] else None)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        res = fit(strategy, batches, args.steps, grad_clip=1.0, schedulers=schedulers, progress=False)
        after = entry.evaluate(model, "test", device)
        losses = [h["loss"] for h in res.history]
        print(f"{name:7s} after {args.steps} steps ({time.perf_counter() - t0:.0f} s): "
              + ", ".join(f"{k} {after[k]:.4f}" for k in shown or after)
              + f"; training loss at steps 0-2 {losses[0]:.3f} {losses[1]:.3f} {losses[2]:.3f}, "
              f"mean of the last 10 {sum(losses[-10:]) / 10:.3f}", flush=True)


if __name__ == "__main__":
    main()
