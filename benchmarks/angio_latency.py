"""Study B speed: AngioQANet against U-Net at the same input, batch 1 (CPU; GPU where available).

The goal set for the study is that the lightweight model takes at most a quarter of U-Net's time on
the CPU. "U-Net" is the classic one (MONAI ``BasicUNet``, widths 64-128-256-512-1024, about 31 M
parameters); the model is the paper-sized ``AngioQANet`` (about 3.43 M). Both get a ``[1, 1, S, S]``
input; the median of ``--repeats`` timed forward passes (after warm-up) is reported, with FLOPs from
``torch.utils.flop_counter.FlopCounterMode``.

    .venv/bin/python benchmarks/angio_latency.py --sizes 128 256 512 --threads 2
    .venv/bin/python benchmarks/angio_latency.py --device cuda          # on a GPU machine
"""

from __future__ import annotations

import argparse
import json

import torch

from medtask.engine.timing import count_flops, latency
from medtask.methods.angioqa import build_angioqa, count_parameters
from medtask.methods.angioqa.baselines import build_segmentation_baseline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the study's machine has 2 cores)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--unet-width", type=int, default=64, help="U-Net base width (64 = the classic U-Net)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        models = {"AngioQANet": build_angioqa("full"),
                  f"U-Net (width {args.unet_width})": build_segmentation_baseline("unet", size, width=args.unet_width)}
        res = {}
        for name, model in models.items():
            lat = latency(model, size, args.device, repeats=args.repeats)
            res[name] = lat["ms"]
            rows.append({"size": size, "model": name, "params": count_parameters(model),
                         "gflops": round(count_flops(model.cpu(), size) / 1e9, 3), "ms": round(lat["ms"], 2),
                         "fps": round(lat["fps"], 2), "device": lat["device"], "threads": lat["threads"]})
        ours, unet = res["AngioQANet"], res[f"U-Net (width {args.unet_width})"]
        rows[-1]["ratio_ours_to_unet"] = rows[-2]["ratio_ours_to_unet"] = round(ours / unet, 3)
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    for size in args.sizes:
        ratio = next(r["ratio_ours_to_unet"] for r in rows if r["size"] == size)
        print(f"size {size}: AngioQANet / U-Net time = {ratio:.3f} (goal <= 0.25: {'met' if ratio <= 0.25 else 'NOT met'})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
