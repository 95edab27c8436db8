"""Study A speed: encode/decode time per image for every codec on the same images, training seconds
per step of every Study A strategy, and the gap between bitstream bpp (bytes, header included) and
the entropy model's likelihood estimate.

Learned codecs are taken from a chapter's trained checkpoints when they exist (default: chapter A1,
profile cpu, rate point 1) -- the bpp gap is only meaningful for trained entropy models; otherwise they
are randomly initialised and the report says so.

    .venv/bin/python benchmarks/compression_speed.py --size 128 --images 16 --threads 1
    .venv/bin/python benchmarks/compression_speed.py --size 256 --device cuda --out /tmp/speed.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    from medtask import config
    from medtask.codecs import classic
    from medtask.codecs.bitstream import LearnedCodec
    from medtask.codecs.learned import codec_spec
    from medtask.data import load
    from medtask.tasks.detection import build_faster_rcnn
    from medtask.tasks.erfnet import build_erfnet
    from medtask.training.compression import (CodecMSEStrategy, FrozenCodecTaskStrategy, JointStrategy,
                                              TaskStrategy, load_modules)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cvc-colondb")
    ap.add_argument("--size", type=int, default=128, help="the study's image size (cpu profile: 128)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", default='{"mbt2018-mean": {"N": 32, "M": 48}, "cheng2020-anchor": {"N": 32}}')
    ap.add_argument("--chapter", default="a1_compression_segmentation")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--point", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=3, help="timed steps per strategy")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", default=None, help="write the JSON report here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    ds = load(args.dataset, "test", size=args.size, limit=args.images)
    images = torch.stack([s["image"] for s in ds])
    report: dict = {"size": args.size, "images": len(images), "threads": args.threads, "device": str(dev),
                    "codecs": [], "training": []}

    ckpt_dir = config.output_root() / "checkpoints" / args.profile / args.chapter
    for arch, w in json.loads(args.widths).items():
        spec = codec_spec(arch, w["N"], w.get("M"))
        model = spec.build().to(dev)
        ckpt = ckpt_dir / f"{arch}_r{args.point}.pt"
        trained = ckpt.is_file()
        if trained:
            load_modules(ckpt, {"codec": model})
        lc = LearnedCodec(model, spec)
        enc_s, dec_s, bpp, est = [], [], [], []
        for x in images:
            t0 = time.perf_counter()
            e = lc.encode(x)[0]
            t1 = time.perf_counter()
            lc.decode(e)
            t2 = time.perf_counter()
            enc_s.append(t1 - t0)
            dec_s.append(t2 - t1)
            bpp.append(e.bpp)
            est.append(float(lc.reconstruct(x)[1][0]))
        header = np.mean([len(e.data) - sum(len(s) for s in lc.parse(e.data)[3]) for e in lc.encode(images[:4])])
        report["codecs"].append({
            "codec": arch, "trained": trained, "checkpoint": str(ckpt) if trained else None,
            "encode_ms": 1000 * float(np.median(enc_s)), "decode_ms": 1000 * float(np.median(dec_s)),
            "bpp_bytes": float(np.mean(bpp)), "bpp_estimate": float(np.mean(est)),
            "gap_percent": 100 * (float(np.mean(bpp)) / float(np.mean(est)) - 1), "header_bytes": float(header)})
    for name in classic.available_codecs():
        c = classic.get_codec(name)
        knob = c.lo + 0.4 * (c.hi - c.lo)
        knob = int(knob) if c.integer else knob
        encs = [classic.encode(name, x, knob) for x in images]
        enc_ms = 1000 * np.median([_median_time(lambda x=x: classic.encode(name, x, knob), 1) for x in images])
        dec_ms = 1000 * np.median([_median_time(lambda e=e: classic.decode(e), 1) for e in encs])
        report["codecs"].append({"codec": c.label, "knob": knob, "encode_ms": float(enc_ms), "decode_ms": float(dec_ms),
                                 "bpp_bytes": float(np.mean([e.bpp for e in encs])),
                                 "file_bpp": float(np.mean([e.file_bpp for e in encs]))})

    B, S = args.batch_size, args.size
    seg = {"image": torch.rand(B, 3, S, S), "mask": torch.randint(0, 2, (B, S, S))}
    det_b = {"image": torch.rand(2, 3, S, S), "boxes": [torch.tensor([[10.0, 10, 50, 60]])] * 2,
             "labels": [torch.tensor([1])] * 2}
    mbt = json.loads(args.widths)["mbt2018-mean"]

    def codec():
        return codec_spec("mbt2018-mean", mbt["N"], mbt.get("M")).build()

    det_opts = dict(min_size=S, max_size=S, rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=300,
                    box_batch_size_per_image=128, rpn_batch_size_per_image=128)
    strategies = {
        "codec MSE (mbt2018-mean)": (CodecMSEStrategy(codec(), 0.01, device=dev), seg),
        "task: ERFNet x0.5": (TaskStrategy(build_erfnet(2, width=0.5), "segmentation", device=dev), seg),
        "MVMICNet stage 1 (mbt + ERFNet)": (JointStrategy(codec(), build_erfnet(2, width=0.5), "segmentation", 0.01,
                                                          1e-4, device=dev), seg),
        "MVMICNet stage 2 (ERFNet)": (FrozenCodecTaskStrategy(codec(), build_erfnet(2, width=0.5), "segmentation",
                                                              device=dev), seg),
        "task: Faster R-CNN MobileNetV3-FPN (batch 2)": (
            TaskStrategy(build_faster_rcnn(3, "mobilenet-v3-fpn", **det_opts), "detection", device=dev), det_b),
    }
    for name, (s, batch) in strategies.items():
        s.train_mode()

        def step(s=s, batch=batch):
            for o in s.optimizers().values():
                o.zero_grad()
            s.compute_gradients(batch, 0)
            for o in s.optimizers().values():
                o.step()
        step()
        report["training"].append({"strategy": name, "batch": int(batch["image"].shape[0]),
                                   "seconds_per_step": _median_time(step, args.train_steps)})

    import pandas as pd

    print(pd.DataFrame(report["codecs"]).round(3).to_string(index=False))
    print(pd.DataFrame(report["training"]).round(3).to_string(index=False))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
