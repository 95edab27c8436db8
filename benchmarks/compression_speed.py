"""Study A speed: encode/decode time per image for every codec on the same images, training seconds
per step of every Study A strategy, and the gap between bitstream bpp (bytes, header included) and
the entropy model's likelihood estimate.

Learned codecs are taken from a chapter's trained checkpoints when they exist (default: chapter A1,
profile cpu, rate point 1) -- the bpp gap is only meaningful for trained entropy models; otherwise they
are randomly initialised and the report says so.

    .venv/bin/python benchmarks/compression_speed.py --size 128 --images 16 --threads 1
    .venv/bin/python benchmarks/compression_speed.py --size 256 --device cuda --out /tmp/speed.json
    .venv/bin/python benchmarks/compression_speed.py --images 8 --gap-sizes 128 512   # where the bpp gap comes from
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


def _sequential_y_bits(model, x: torch.Tensor) -> float:
    """Cheng2020-Anchor: the entropy model's bits for y in the coder's own (sequential) order.

    CompressAI's forward pass conditions the context model on ``round(y)``; the coder and decoder
    condition it on ``round(y - mu) + mu``, position by position. This follows the coder (the loop of
    ``JointAutoregressiveHierarchicalPriors._compress_ar``) and sums -log2 of the Gaussian likelihoods
    of the coded symbols, so the bytes can be compared with an estimate of the same symbols.
    """
    import torch.nn.functional as F

    gc = model.gaussian_conditional
    y = model.g_a(x)
    z = model.h_a(y)
    z_hat = model.entropy_bottleneck.decompress(model.entropy_bottleneck.compress(z), z.shape[-2:])
    params = model.h_s(z_hat)
    k, pad = 5, 2
    y_hat = F.pad(y, (pad, pad, pad, pad))
    weight = model.context_prediction.weight * model.context_prediction.mask
    bits = 0.0
    for h in range(y.shape[2]):
        for w in range(y.shape[3]):
            crop = y_hat[:, :, h:h + k, w:w + k]
            ctx = F.conv2d(crop, weight, bias=model.context_prediction.bias)
            gp = model.entropy_parameters(torch.cat((params[:, :, h:h + 1, w:w + 1], ctx), 1)).squeeze(3).squeeze(2)
            scales, means = gp.chunk(2, 1)
            q = torch.round(crop[:, :, pad, pad] - means)
            lik = gc._likelihood(q + means, gc.lower_bound_scale(scales), means)
            if gc.use_likelihood_bound:
                lik = gc.likelihood_lower_bound(lik)
            bits += float(-lik.log2().sum())
            y_hat[:, :, h + pad, w + pad] = q + means
    return bits


def _table_scale_y_bits(model, x: torch.Tensor) -> float:
    """MBT2018-Mean: the bits of y with each scale rounded up to the coder's scale table, as ``compress`` does."""
    gc, eb = model.gaussian_conditional, model.entropy_bottleneck
    y = model.g_a(x)
    z_hat = eb.quantize(model.h_a(y), "dequantize", eb._get_medians())
    scales, means = model.h_s(z_hat).chunk(2, 1)
    table_scales = gc.scale_table[gc.build_indexes(scales).long()]
    lik = gc._likelihood(torch.round(y - means) + means, table_scales, means)
    if gc.use_likelihood_bound:
        lik = gc.likelihood_lower_bound(lik)
    return float(-lik.log2().sum())


@torch.inference_mode()
def rate_accounting(lc, arch: str, images: torch.Tensor, size: int) -> dict:
    """Bytes of one codec's bitstreams split into header / y / z against the likelihood estimates."""
    from medtask.methods.mvmicnet.codecs.bitstream import pad_to_multiple, to_rgb

    rows = []
    for x in images:
        data = lc.encode(x)[0].data
        strings = lc.parse(data)[3]
        xp = pad_to_multiple(to_rgb(x[None]))
        lk = lc.model(xp)["likelihoods"]
        row = {"header": len(data) - sum(map(len, strings)), "y_bytes": len(strings[0]), "z_bytes": len(strings[1]),
               "y_estimate": float(-lk["y"].log2().sum()) / 8, "z_estimate": float(-lk["z"].log2().sum()) / 8}
        if arch == "mbt2018-mean":
            row["y_table_scales"] = _table_scale_y_bits(lc.model, xp) / 8
        if arch == "cheng2020-anchor":
            row["y_sequential"] = _sequential_y_bits(lc.model, xp) / 8
        rows.append(row)
    m = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    total, est = m["header"] + m["y_bytes"] + m["z_bytes"], m["y_estimate"] + m["z_estimate"]
    out = {"codec": arch, "size": size, "bytes": total, "estimate_bytes": est,
           "gap_percent": 100 * (total / est - 1), "fixed_bytes": m["header"] + 4 * 2,
           "fixed_percent_of_bytes": 100 * (m["header"] + 8) / total,
           "y_gap_percent": 100 * (m["y_bytes"] / m["y_estimate"] - 1),
           "z_gap_percent": 100 * (m["z_bytes"] / m["z_estimate"] - 1)}
    if "y_table_scales" in m:
        out["y_table_scale_estimate_vs_forward_percent"] = 100 * (m["y_table_scales"] / m["y_estimate"] - 1)
        out["y_bytes_vs_table_scale_estimate_percent"] = 100 * (m["y_bytes"] / m["y_table_scales"] - 1)
    if "y_sequential" in m:
        out["y_sequential_vs_forward_percent"] = 100 * (m["y_sequential"] / m["y_estimate"] - 1)
        out["y_bytes_vs_sequential_percent"] = 100 * (m["y_bytes"] / m["y_sequential"] - 1)
    return out


def main(argv: list[str] | None = None) -> int:
    from medtask import config
    from medtask.methods.mvmicnet.codecs import classic
    from medtask.methods.mvmicnet.codecs.bitstream import LearnedCodec
    from medtask.methods.mvmicnet.codecs.learned import codec_spec
    from medtask.data import load
    from medtask.nn.detection import build_faster_rcnn
    from medtask.nn.erfnet import build_erfnet
    from medtask.methods.mvmicnet.strategies import (
        CodecMSEStrategy,
        FrozenCodecTaskStrategy,
        JointStrategy,
        TaskStrategy,
        load_modules,
    )

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
    ap.add_argument("--gap-sizes", type=int, nargs="*", default=[],
                    help="also split the bytes-vs-estimate gap into its parts at these image sizes (e.g. 128 512)")
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
        for gsize in args.gap_sizes:
            gimgs = torch.stack([s["image"] for s in load(args.dataset, "test", size=gsize, limit=args.images)])
            report.setdefault("rate_accounting", []).append(
                {"trained": trained, **rate_accounting(lc, arch, gimgs, gsize)})
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
    if report.get("rate_accounting"):
        print(pd.DataFrame(report["rate_accounting"]).round(2).T.to_string(header=False))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
