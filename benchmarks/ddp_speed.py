"""Steps per second of :func:`medtask.engine.fit` on 1 and N torchrun processes, same global batch.

Each configuration is launched with ``torchrun --standalone --nproc-per-node=N`` (world size 1
included, so both sides pay the same start-up), trains ``--warmup`` steps, then times ``--steps``
steps of the same training (synthetic images; the global batch ``--batch`` is split over the
ranks, as in every data-parallel run of the study). Rank 0 reports; the table gives steps/s and
the ratio to one process. On CPU each process runs ``--threads`` torch threads (gloo); on a GPU
node every process drives its own GPU (nccl).

    python benchmarks/ddp_speed.py                          # codec (zoo widths), 1 and 2 processes, CPU
    python benchmarks/ddp_speed.py --model erfnet --nproc 1 2 4 --device cuda --batch 32 --size 256
    python benchmarks/ddp_speed.py --out /tmp/ddp_speed.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MODELS = ("codec", "erfnet")


def _strategy(model: str, device: torch.device):
    torch.manual_seed(0)
    if model == "codec":
        from medtask.methods.mvmicnet.codecs.learned import build_codec
        from medtask.methods.mvmicnet.strategies import CodecMSEStrategy

        return CodecMSEStrategy(build_codec("mbt2018-mean", N=64, M=96), 0.013, lr=1e-4, device=device)
    from medtask.engine.strategies import SingleNetwork
    from medtask.nn.erfnet import build_erfnet
    from medtask.nn.losses import recognition_loss

    net = build_erfnet(2, 3, 0.5).to(device)

    def loss(network, batch):
        out = recognition_loss(network(batch["image"]), batch["mask"], "segmentation")
        return out, {"loss": out.item()}

    return SingleNetwork(net, loss, torch.optim.Adam(net.parameters(), lr=1e-3))


def _worker(args: argparse.Namespace) -> None:
    from medtask.engine import RandomBatches, distributed, fit

    distributed.init()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.rand(3, args.size, args.size, generator=g),
             "mask": torch.randint(0, 2, (args.size, args.size), generator=g), "id": str(i)} for i in range(64)]
    strategy = _strategy(args.model, device)
    batches = RandomBatches(data, args.batch, seed=0, device=device)
    fit(strategy, batches, args.warmup, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fit(strategy, batches, args.steps, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if distributed.is_main():
        Path(args.report).write_text(json.dumps({
            "processes": distributed.world_size(), "seconds": seconds, "steps": args.steps,
            "steps_per_s": args.steps / seconds, "device": str(device),
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None}))


def main(argv: list[str] | None = None) -> int:
    """Run every ``--nproc`` configuration under torchrun and print (and optionally save) the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts to time (default 1 2)")
    p.add_argument("--model", choices=MODELS, default="codec", help="mbt2018-mean N=64 M=96, or ERFNet x0.5")
    p.add_argument("--batch", type=int, default=8, help="global batch (a multiple of every --nproc)")
    p.add_argument("--size", type=int, default=128, help="square image side (codec: a multiple of 64)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process on CPU")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", default=None, help="also write the table as CSV")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--report", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    from medtask.engine.launch import torchrun_command

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nproc:
            report = Path(tmp) / f"n{n}.json"
            worker = ["--model", args.model, "--batch", str(args.batch), "--size", str(args.size),
                      "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                      "--device", args.device, "--worker", "--report", str(report)]
            cmd = torchrun_command([str(Path(__file__).resolve()), *worker], n, module=None)
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            rc = subprocess.call(cmd, env=env)
            if rc != 0:
                print(f"{n} processes: failed (exit status {rc})", file=sys.stderr)
                return rc
            rows.append(json.loads(report.read_text()))
    base = rows[0]["steps_per_s"] if rows and rows[0]["processes"] == 1 else None
    print(f"\nmodel {args.model}, global batch {args.batch}, {args.size} px, {args.steps} timed steps, "
          f"device {rows[0]['device'] if rows else '?'}{' (' + rows[0]['gpu'] + ')' if rows and rows[0]['gpu'] else ''}, "
          f"{args.threads} thread(s) per process")
    print(f"{'processes':>9}  {'steps/s':>8}  {'ratio to 1':>10}")
    for r in rows:
        r["ratio_to_1"] = r["steps_per_s"] / base if base else float("nan")
        print(f"{r['processes']:>9d}  {r['steps_per_s']:>8.3f}  {r['ratio_to_1']:>10.2f}")
    if args.out:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
