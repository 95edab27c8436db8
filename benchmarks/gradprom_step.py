"""Speed of one GradProm step against one Joint step, same batch and networks (target: ratio <= 1.3).

A *step* is what :func:`medtask.training.fit` does per batch: zero the gradients, the strategy's
``compute_gradients`` (one forward pass; Joint: one backward pass of L_IP + λ·L_VR; GradProm: the
gradient of L_IP w.r.t. θ with the graph kept, then the backward pass of L_VR, the cosine and the
gated sum), and the optimiser steps. Also timed: Joint with the cosine diagnostic switched on
(what the chapters run, so that Joint's cosine can be logged), and GradProm with per-layer cosines.

GradProm needs G_IP and G_VR on θ *separately*, so the enhancer's backward pass runs twice; with
forward ≈ 1 unit and backward ≈ 2 units per network, the expected ratio is
``(3·r + 5·e) / (3·r + 3·e)`` for enhancer cost e and recogniser cost r: ≤ 1.3 needs r ≳ 1.2·e.

    python benchmarks/gradprom_step.py                      # the CPU-profile networks
    python benchmarks/gradprom_step.py --config all --threads 1 --out /tmp/gradprom_step.csv
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from medtask.enhancement.networks import build_enhancer
from medtask.tasks.classifiers import build_classifier
from medtask.tasks.unet import build_unet
from medtask.training.enhancement import make_strategy

CONFIGS = {
    # name: (channels, size, batch, depth, width, recogniser)
    "cpu-profile-cls": (1, 48, 8, 4, 16, "resnet18"),
    "cpu-profile-seg": (3, 56, 8, 4, 16, "unet8"),
    "resnet50-light-enhancer": (3, 64, 8, 4, 16, "resnet50"),
    "srresnet-full-resnet18": (3, 64, 4, 16, 64, "resnet18"),
}


def build(cfg: tuple, device: torch.device):
    ch, size, bs, depth, width, rec = cfg
    torch.manual_seed(0)
    enh = build_enhancer(ch, depth=depth, width=width).to(device)
    if rec.startswith("unet"):
        net, task = build_unet(ch, 2, base=int(rec[4:]), levels=3), "segmentation"
    else:
        net, task = build_classifier(rec, 2, ch), "classification"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(bs, ch, size, size, generator=g)
    batch = {"input": x.to(device), "target": x.clamp(0, 1).to(device), "label": torch.randint(0, 2, (bs,), generator=g).to(device),
             "mask": torch.randint(0, 2, (bs, size, size), generator=g).to(device)}
    return enh, net.to(device), task, batch


def time_step(strategy, batch, repeats: int, warmup: int = 2) -> float:
    """Median seconds of one full training step (zero_grad, compute_gradients, optimiser steps)."""
    opts = strategy.optimizers()
    strategy.train_mode()
    times = []
    for i in range(warmup + repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        strategy.compute_gradients(batch, i)
        for o in opts.values():
            o.step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(name: str, repeats: int, device: torch.device) -> dict:
    enh, rec, task, batch = build(CONFIGS[name], device)
    variants = {
        "joint": dict(name="joint", diagnostics=False),
        "joint+cos": dict(name="joint", diagnostics=True),
        "gradprom": dict(name="gradprom"),
        "gradprom-per-layer": dict(name="gradprom", per_layer=True),
    }
    out = {"config": name, "device": str(device), "threads": torch.get_num_threads(),
           "enhancer_params": sum(p.numel() for p in enh.parameters()),
           "recogniser_params": sum(p.numel() for p in rec.parameters())}
    state_e, state_r = {k: v.clone() for k, v in enh.state_dict().items()}, {k: v.clone() for k, v in rec.state_dict().items()}
    for label, kw in variants.items():
        enh.load_state_dict(state_e)
        rec.load_state_dict(state_r)
        s = make_strategy(kw.pop("name"), enhancer=enh, recogniser=rec, task=task, lam=0.1, **kw)
        out[f"{label}_ms"] = 1000 * time_step(s, batch, repeats)
    out["ratio_gradprom_vs_joint"] = out["gradprom_ms"] / out["joint_ms"]
    out["ratio_per_layer_vs_joint"] = out["gradprom-per-layer_ms"] / out["joint_ms"]
    out["ratio_joint_cos_vs_joint"] = out["joint+cos_ms"] / out["joint_ms"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="cpu-profile-cls", help=f"one of {sorted(CONFIGS)} or 'all'")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="also write the table to this CSV")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from medtask.config import get_device

    device = get_device(args.device)
    names = sorted(CONFIGS) if args.config == "all" else [args.config]
    if any(n not in CONFIGS for n in names):
        raise SystemExit(f"unknown config {args.config!r}; choose one of {sorted(CONFIGS)} or 'all'")
    df = pd.DataFrame([run(n, args.repeats, device) for n in names])
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(df.round(3).to_string(index=False))
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
