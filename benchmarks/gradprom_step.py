"""Speed of one GradProm step against one Joint step, same batch and networks (target: ratio <= 1.3).

A *step* is what :func:`medtask.engine.fit` does per batch: zero the gradients, the strategy's
``compute_gradients`` (one forward pass; Joint: one backward pass of L_IP + λ·L_VR; GradProm: the
gradient of L_IP w.r.t. θ with the graph kept, then the backward pass of L_VR, the cosine and the
gated sum), and the optimiser steps (timed by ``medtask.methods.gradprom.study.step_cost_of``, which the
chapters C1 and C2 also run on their own networks). Also timed: Joint with the cosine diagnostic switched on
(what the chapters run, so that Joint's cosine can be logged), and GradProm with per-layer cosines.

GradProm needs G_IP and G_VR on θ *separately*, so the enhancer's backward pass runs twice; with
forward ≈ 1 unit and backward ≈ 2 units per network, the expected ratio is
``(3·r + 5·e) / (3·r + 3·e)`` for enhancer cost e and recogniser cost r: ≤ 1.3 needs r ≳ 1.2·e.
Computing both θ-gradients in one batched backward pass instead (``torch.autograd.grad(out, θ,
grad_outputs=stack([∂L_IP/∂out, ∂λL_VR/∂out]), is_grads_batched=True)``) gives identical gradients
but no speed-up on CPU: 1.50× against 1.48× for the two passes on the cpu-profile segmentation
networks (one thread, 7 interleaved rounds), so the two-pass form is kept.

    python benchmarks/gradprom_step.py                      # the CPU-profile networks
    python benchmarks/gradprom_step.py --config all --threads 1 --out /tmp/gradprom_step.csv
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from medtask.methods.gradprom.networks import build_enhancer
from medtask.methods.gradprom.study import step_cost_of
from medtask.nn.classifiers import build_classifier
from medtask.nn.unet import build_unet

CONFIGS = {
    # name: (channels, size, batch, depth, width, recogniser)
    "cpu-profile-cls": (1, 48, 8, 4, 16, "resnet18"),
    "cpu-profile-seg": (3, 56, 8, 4, 16, "unet8"),
    "resnet50-light-enhancer": (3, 64, 8, 4, 16, "resnet50"),
    "srresnet-full-resnet18": (3, 64, 4, 16, 64, "resnet18"),
}


def run(name: str, repeats: int, device: torch.device) -> dict:
    ch, size, bs, depth, width, rec = CONFIGS[name]
    task = "segmentation" if rec.startswith("unet") else "classification"

    def enhancer():
        torch.manual_seed(0)
        return build_enhancer(ch, depth=depth, width=width).to(device)

    def recogniser():
        torch.manual_seed(0)
        net = build_unet(ch, 2, base=int(rec[4:]), levels=3) if task == "segmentation" else build_classifier(rec, 2, ch)
        return net.to(device)

    g = torch.Generator().manual_seed(0)
    x = torch.rand(bs, ch, size, size, generator=g)
    batch = {"input": x.to(device), "target": x.to(device), "label": torch.randint(0, 2, (bs,), generator=g).to(device),
             "mask": torch.randint(0, 2, (bs, size, size), generator=g).to(device)}
    df = step_cost_of(enhancer, recogniser, task, batch, rounds=repeats).set_index("variant")
    out = {"config": name, "device": str(device), "threads": torch.get_num_threads(),
           "enhancer_params": sum(p.numel() for p in enhancer().parameters()),
           "recogniser_params": sum(p.numel() for p in recogniser().parameters())}
    for label, row in df.iterrows():
        out[f"{label} ms"] = row["ms_per_step"]
    for label, row in df.iterrows():
        if label != "joint":
            out[f"{label} / joint"] = row["ratio_to_joint"]
            out[f"{label} / joint IQR"] = f"{row['ratio_q1']:.2f}-{row['ratio_q3']:.2f}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="cpu-profile-cls", help=f"one of {sorted(CONFIGS)} or 'all'")
    ap.add_argument("--repeats", type=int, default=9, help="rounds of 3 steps per variant, interleaved (median of paired ratios)")
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
