"""Study A (MVMICNet, task-driven medical image compression): the run and evaluation helpers the
chapters ``a1_compression_segmentation``, ``a2_compression_detection`` and ``a3_lambda2_ablation`` share.

One :class:`CompressionStudy` per chapter holds the data, the task, the widths and the step
budgets; its methods train (through :func:`medtask.training.fit`, checkpointed, resumable):

- the task network on original images (what every baseline is evaluated with, as in the paper);
- per rate point ``i`` and learned architecture: an MSE-trained codec (``mse_steps``), shared as the
  starting point of every learned method at that rate point; the baseline then gets ``extra_steps``
  more MSE-only steps, MVMICNet gets the same number of joint steps (stage 1) -- equal budgets;
- MVMICNet stage 2: the task network fine-tuned on stage-1 reconstructions, codec frozen.

Evaluation uses real bitstreams (bpp from bytes, likelihood estimate beside it), PSNR on 8-bit RGB,
MS-SSIM (pytorch-msssim, small-image settings) and the task metrics, under ``torch.inference_mode``.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medtask.codecs import classic
from medtask.codecs.bitstream import LearnedCodec
from medtask.codecs.learned import CodecSpec, check_lambda, codec_spec
from medtask.errors import InvalidParameterError
from medtask.metrics.bdrate import bd_table
from medtask.metrics.detection import DetectionMeter
from medtask.metrics.image import ms_ssim_any, msssim_settings, psnr_rgb8
from medtask.metrics.segmentation import SegmentationMeter
from medtask.training import RandomBatches, fit
from medtask.training.compression import (CodecMSEStrategy, FrozenCodecTaskStrategy, JointStrategy, TaskStrategy,
                                          check_lambda2, load_modules)

ARCH_LABEL = {"mbt2018-mean": "MBT2018-Mean", "cheng2020-anchor": "Cheng2020-Anchor"}
DATASETS = {"segmentation": ("cvc-colondb",), "detection": ("bccd", "chestx-det")}


def set_threads(threads: int) -> None:
    """``threads > 0`` fixes torch's intra-op threads (1 is fastest on a busy 2-core machine)."""
    if threads and threads > 0:
        torch.set_num_threads(int(threads))


def check_dataset(task: str, dataset: str) -> str:
    """The chapter's dataset parameter, validated for ``task`` (phantoms allowed for smoke runs)."""
    key = dataset.lower()
    if key.startswith("phantom-") or key in DATASETS[task]:
        return key
    raise InvalidParameterError(f"dataset={dataset!r} is not a {task} dataset of Study A; use one of "
                                f"{', '.join(DATASETS[task])} (or a phantom for smoke runs)")


# -- per-image evaluation records ---------------------------------------------------------------
@dataclass
class Decoded:
    """Decoded test images of one codec at one rate point, with their rate and timing."""

    method: str
    point: int
    images: torch.Tensor            # [N, C, H, W]
    bpp: np.ndarray                 # from bytes, per image
    bpp_est: np.ndarray | None = None   # likelihood estimate (learned codecs)
    knob: float | None = None       # classic codecs' quality setting
    encode_s: float = 0.0           # seconds per image
    decode_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def stack_images(ds: Sequence[dict[str, Any]]) -> torch.Tensor:
    """All images of a (same-size) dataset as one ``[N, C, H, W]`` tensor."""
    imgs = [s["image"] for s in ds]
    if len({tuple(i.shape) for i in imgs}) != 1:
        raise InvalidParameterError("test images differ in size; load the dataset with size=...")
    return torch.stack(imgs)


@torch.inference_mode()
def run_learned(codec: nn.Module, spec: CodecSpec, tag: str, images: torch.Tensor, method: str, point: int,
                batch_size: int = 8) -> Decoded:
    """Encode every image to a real bitstream and decode it; bpp from bytes and from likelihoods."""
    lc = LearnedCodec(codec, spec, tag=tag)
    dec, bpp, est = [], [], []
    t_enc = t_dec = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        t0 = time.perf_counter()
        enc = lc.encode(x)
        t1 = time.perf_counter()
        dec.extend(lc.decode_many(enc))
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
        bpp.extend(e.bpp for e in enc)
        est.extend(lc.reconstruct(x)[1].cpu().tolist())
    n = len(images)
    return Decoded(method, point, torch.stack(dec), np.array(bpp), np.array(est), None, t_enc / n, t_dec / n)


def run_classic(name: str, images: torch.Tensor, knob: float, point: int) -> Decoded:
    """Encode/decode every image with classic codec ``name`` at ``knob``; bpp from the counted bytes."""
    dec, bpp, file_bpp = [], [], []
    t_enc = t_dec = 0.0
    for x in images:
        t0 = time.perf_counter()
        enc = classic.encode(name, x, knob)
        t1 = time.perf_counter()
        dec.append(classic.decode(enc))
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
        bpp.append(enc.bpp)
        file_bpp.append(enc.file_bpp)
    n = len(images)
    label = classic.get_codec(name).label
    return Decoded(label, point, torch.stack(dec), np.array(bpp), None, knob, t_enc / n, t_dec / n,
                   {"file_bpp": float(np.mean(file_bpp))})


def image_quality(decoded: torch.Tensor, originals: torch.Tensor, batch_size: int = 32) -> dict[str, float]:
    """Mean PSNR (8-bit RGB, dB) and mean MS-SSIM over the images."""
    ps, ms = [], []
    for i in range(0, len(originals), batch_size):
        a, b = decoded[i:i + batch_size], originals[i:i + batch_size]
        ps.append(psnr_rgb8(a, b))
        ms.append(ms_ssim_any(a, b))
    p = torch.cat(ps)
    return {"psnr_db": float(p[torch.isfinite(p)].mean()) if torch.isfinite(p).any() else float("inf"),
            "ms_ssim": float(torch.cat(ms).mean())}


@torch.inference_mode()
def task_scores(net: nn.Module, task: str, images: torch.Tensor, dataset: Sequence[dict[str, Any]],
                num_classes: int, device: torch.device, batch_size: int = 8) -> dict[str, float]:
    """Task metrics of ``net`` on ``images`` (decoded or original) against ``dataset``'s labels."""
    net.eval()
    if task == "segmentation":
        meter = SegmentationMeter(num_classes)
        for i in range(0, len(images), batch_size):
            logits = net(images[i:i + batch_size].to(device))
            masks = torch.stack([dataset[j]["mask"] for j in range(i, min(i + batch_size, len(images)))])
            meter.update(logits.argmax(1).cpu(), masks)
        s = meter.compute()
        return {"miou": s["miou"], "dice": s["dice"], "macc": s["macc"]}
    meter = DetectionMeter()
    for i in range(0, len(images), batch_size):
        preds = net(list(images[i:i + batch_size].to(device).unbind(0)))
        targets = [{"boxes": dataset[j]["boxes"], "labels": dataset[j]["labels"]}
                   for j in range(i, min(i + batch_size, len(images)))]
        meter.update(preds, targets)
    s = meter.compute()
    return {"map": s["map"], "ap50": s["map_50"], "ap75": s["map_75"]}


@torch.inference_mode()
def predict_masks(net: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Class maps ``[N, H, W]`` of a segmentation network."""
    net.eval()
    return net(images.to(device)).argmax(1).cpu()


# -- the study --------------------------------------------------------------------------------
class CompressionStudy:
    """Shared state and steps of one Study A chapter (see the module docstring)."""

    def __init__(self, chapter, task: str, train: Sequence[dict], test: Sequence[dict], *,
                 build_task: Any, num_classes: int, device: torch.device, seed: int = 0,
                 widths: dict[str, dict[str, int]] | None = None, mvmicnet_arch: str = "mbt2018-mean",
                 batch_size: int = 8, task_batch_size: int | None = None, task_steps: int = 300,
                 mse_steps: int = 200, extra_steps: int = 100, stage2_steps: int = 50, lr: float = 1e-4,
                 task_lr: float = 1e-3, finetune_lr: float = 1e-4, task_scale: float = 255.0 ** 2,
                 calib: Sequence[dict] | None = None, progress: bool = True) -> None:
        if task not in ("segmentation", "detection"):
            raise InvalidParameterError(f"task must be 'segmentation' or 'detection', got {task!r}")
        self.chapter, self.task, self.train, self.test = chapter, task, train, test
        self.calib = calib if calib is not None else test
        self.build_task, self.num_classes, self.device, self.seed = build_task, num_classes, device, seed
        widths = widths or {"mbt2018-mean": {"N": 128, "M": 192}, "cheng2020-anchor": {"N": 128}}
        self.specs = {arch: codec_spec(arch, w["N"], w.get("M")) for arch, w in widths.items()}
        if mvmicnet_arch not in self.specs:
            raise InvalidParameterError(f"mvmicnet_arch={mvmicnet_arch!r} needs widths in `widths` "
                                        f"(have {list(self.specs)})")
        self.mvmicnet_arch = mvmicnet_arch
        self.batch_size, self.task_batch_size = batch_size, task_batch_size or batch_size
        self.task_steps, self.mse_steps, self.extra_steps, self.stage2_steps = (task_steps, mse_steps, extra_steps,
                                                                                stage2_steps)
        self.lr, self.task_lr, self.finetune_lr, self.task_scale = lr, task_lr, finetune_lr, task_scale
        self.progress = progress
        self.test_images = stack_images(test)
        self.timings: dict[str, float] = {}

    # -- training ----------------------------------------------------------------------------
    def checkpoint(self, name: str) -> Path:
        """This study's checkpoint ``name``: seed 0 at the chapter's top level, seed k under ``seed<k>/``."""
        return self.chapter.checkpoint(name if self.seed == 0 else f"seed{self.seed}/{name}")

    def _batches(self, bs: int) -> RandomBatches:
        return RandomBatches(self.train, bs, seed=self.seed)

    def _fit(self, strategy, steps: int, name: str, bs: int):
        torch.manual_seed(self.seed)
        res = fit(strategy, self._batches(bs), steps, checkpoint=self.checkpoint(name), grad_clip=1.0,
                  progress=self.progress, desc=name)
        self.timings[name] = res.seconds_per_step
        return res

    def task_network(self) -> nn.Module:
        """The task network trained on original images (checkpoint ``task_original``)."""
        torch.manual_seed(self.seed)
        net = self.build_task()
        self._fit(TaskStrategy(net, self.task, lr=self.task_lr, device=self.device), self.task_steps,
                  "task_original", self.task_batch_size)
        return net.eval()

    def _codec(self, arch: str) -> nn.Module:
        torch.manual_seed(self.seed)
        return self.specs[arch].build()

    def mse_codec(self, arch: str, point: int, lambda1: float) -> nn.Module:
        """The shared MSE-trained starting point of every learned method at rate point ``point``."""
        codec = self._codec(arch)
        self._fit(CodecMSEStrategy(codec, lambda1, lr=self.lr, device=self.device), self.mse_steps,
                  f"{arch}_mse_r{point}", self.batch_size)
        return codec

    def baseline_codec(self, arch: str, point: int, lambda1: float) -> nn.Module:
        """A baseline learned codec: the shared MSE start plus ``extra_steps`` MSE-only steps."""
        self.mse_codec(arch, point, lambda1)
        codec = self._codec(arch)
        load_modules(self.checkpoint(f"{arch}_mse_r{point}"), {"codec": codec})
        self._fit(CodecMSEStrategy(codec, lambda1, lr=self.lr, device=self.device), self.extra_steps,
                  f"{arch}_r{point}", self.batch_size)
        return codec.eval()

    def mvmicnet(self, point: int, lambda1: float, lambda2: float, tag: str | None = None
                 ) -> tuple[nn.Module, nn.Module, nn.Module]:
        """MVMICNet at a rate point: (codec, stage-1 task network, stage-2 task network)."""
        check_lambda(lambda1)
        check_lambda2(lambda2)
        tag = tag or f"r{point}"
        arch = self.mvmicnet_arch
        self.mse_codec(arch, point, lambda1)
        self.task_network()
        codec, net = self._codec(arch), self.build_task()
        load_modules(self.checkpoint(f"{arch}_mse_r{point}"), {"codec": codec})
        load_modules(self.checkpoint("task_original"), {"task": net})
        joint = JointStrategy(codec, net, self.task, lambda1, lambda2, lr=self.lr, task_lr=self.finetune_lr,
                              task_scale=self.task_scale, device=self.device)
        self._fit(joint, self.extra_steps, f"mvmicnet_{tag}_s1", self.batch_size)
        net2 = copy.deepcopy(net)
        s2 = FrozenCodecTaskStrategy(codec, net2, self.task, lr=self.finetune_lr, device=self.device)
        self._fit(s2, self.stage2_steps, f"mvmicnet_{tag}_s2", self.task_batch_size)
        for p in codec.parameters():
            p.requires_grad_(True)
        return codec.eval(), net.eval(), net2.eval()

    # -- evaluation --------------------------------------------------------------------------
    def scores(self, net: nn.Module, images: torch.Tensor) -> dict[str, float]:
        return task_scores(net, self.task, images, self.test, self.num_classes, self.device)

    def row(self, d: Decoded, stage1: dict[str, float], stage2: dict[str, float] | None = None,
            **extra: Any) -> dict[str, Any]:
        """One results row: rate, image quality, task metrics (stage 2 only for MVMICNet), timing."""
        r: dict[str, Any] = {"method": d.method, "point": d.point, "bpp": float(d.bpp.mean()),
                             "bpp_est": float(d.bpp_est.mean()) if d.bpp_est is not None else np.nan,
                             "knob": d.knob if d.knob is not None else np.nan}
        r.update(image_quality(d.images, self.test_images))
        for k, v in stage1.items():
            r[f"{k}_stage1"] = v
        for k, v in (stage2 or {}).items():
            r[f"{k}_stage2"] = v
        r.update({"encode_ms": 1000 * d.encode_s, "decode_ms": 1000 * d.decode_s, **d.extra, **extra})
        return r

    def classic_rows(self, codecs: Sequence[str], targets: Sequence[float], task_net: nn.Module,
                     keep: dict | None = None) -> list[dict[str, Any]]:
        """Each classic codec searched onto each target bpp (on the calibration images), evaluated on test."""
        rows = []
        calib_images = [s["image"] for s in self.calib]
        for name in codecs:
            for point, target in enumerate(targets, start=1):
                choice = classic.search_quality(name, calib_images, float(target))
                d = run_classic(name, self.test_images, choice.knob, point)
                if keep is not None:
                    keep[(name, point)] = d
                rows.append(self.row(d, self.scores(task_net, d.images), target_bpp=float(target),
                                     calib_bpp=choice.bpp))
        return rows


# -- tables ----------------------------------------------------------------------------------------
PUBLISHED_FILES = {"table1": "mvmicnet_table1_cvc_colondb.csv", "tables2_3": "mvmicnet_tables2_3_chestx_det.csv",
                   "table4": "mvmicnet_table4_lambda2.csv"}


def published(name: str) -> pd.DataFrame:
    """A published MVMICNet table (``shared/papers/published/<file>`` beside the checkout), with its source."""
    from medtask.config import repo_root

    if name not in PUBLISHED_FILES:
        raise InvalidParameterError(f"unknown published table {name!r}; choose from {list(PUBLISHED_FILES)}")
    path = repo_root().parent / "shared" / "papers" / "published" / PUBLISHED_FILES[name]
    if not path.is_file():
        return pd.read_csv(io.StringIO(_EMBEDDED[name])).assign(source=f"embedded copy of {PUBLISHED_FILES[name]}")
    return pd.read_csv(path).assign(source=str(path))


def side_by_side(ours: pd.DataFrame, pub: pd.DataFrame, on: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Our columns beside the published ones (suffix ``_pub``), joined on ``on``."""
    keep = [c for c in columns if c in pub.columns]
    p = pub[list(on) + keep].rename(columns={c: f"{c}_pub" for c in keep})
    out = ours.merge(p, on=list(on), how="left")
    order = list(on)
    for c in columns:
        order += [c] + ([f"{c}_pub"] if c in keep else [])
    return out[[c for c in order if c in out.columns]]


def curves(df: pd.DataFrame, y: str, x: str = "bpp") -> dict[str, tuple[list[float], list[float]]]:
    """``{method: (rates, values)}`` from a results table, for :func:`medtask.metrics.bdrate.bd_table`."""
    out = {}
    for m, g in df.groupby("method", sort=False):
        g = g.dropna(subset=[x, y]).drop_duplicates(subset=[x]).sort_values(x)  # a classic codec stuck at its
        if len(g) >= 2:                                                          # knob limit repeats a point
            out[m] = (g[x].tolist(), g[y].tolist())
    return out


def bd_tables(df: pd.DataFrame, metrics: Sequence[str], method: str = "pchip") -> pd.DataFrame:
    """Every method (column) against every anchor (row), per quality metric: BD-rate in % (needs quality
    rising with rate) and BD-quality in the metric's units (needs only distinct rates)."""
    blocks = []
    for m in metrics:
        for kind, label in (("rate", "BD-rate %"), ("quality", f"BD-{m}")):
            t = bd_table(curves(df, m), method=method, kind=kind)
            t.insert(0, "measure", label)
            t.insert(0, "metric", m)
            blocks.append(t.reset_index())
    return pd.concat(blocks, ignore_index=True)


def msssim_note(size: int) -> str:
    """How MS-SSIM was computed at this image size (for the chapter prose)."""
    s = msssim_settings(size, size)
    return (f"MS-SSIM: pytorch-msssim with {s['scales']} scales, {s['win_size']}-px Gaussian window, weights "
            f"{[round(w, 4) for w in s['weights']]} (the standard 5-scale/11-px setting needs > 160 px)")


_EMBEDDED = {
    "table1": """method,point,bpp,psnr_db,ms_ssim,miou_stage1,miou_stage2
BPG,1,0.090,30.02,0.908,0.4987,
BPG,2,0.100,31.40,0.929,0.5591,
BPG,3,0.114,33.01,0.944,0.6183,
BPG,4,0.132,34.53,0.956,0.6683,
MBT2018-Mean,1,0.080,32.55,0.907,0.6135,
MBT2018-Mean,2,0.094,33.84,0.938,0.6745,
MBT2018-Mean,3,0.111,35.15,0.952,0.7220,
MBT2018-Mean,4,0.130,35.98,0.969,0.7548,
Cheng2020-Anchor,1,0.068,36.45,0.934,0.6971,
Cheng2020-Anchor,2,0.089,37.98,0.952,0.7435,
Cheng2020-Anchor,3,0.112,39.04,0.972,0.7898,
Cheng2020-Anchor,4,0.137,39.82,0.978,0.8192,
MVMICNet,1,0.065,40.38,0.982,0.7804,0.8226
MVMICNet,2,0.083,41.25,0.984,0.8252,0.8317
MVMICNet,3,0.105,42.08,0.987,0.8326,0.8490
MVMICNet,4,0.131,42.83,0.989,0.8337,0.8645
""",
    "tables2_3": """method,quality,bpp,psnr_db,ms_ssim,map_50_95_stage1,map_50_95_stage2,ap50_stage1,ap50_stage2,ap75_stage1,ap75_stage2
MVMICNet,1,0.047,41.14,0.9847,0.0797,0.0838,0.1649,0.1759,0.0693,0.0719
MVMICNet,2,0.060,41.93,0.9877,0.0899,0.0949,0.1901,0.2036,0.0820,0.0847
MVMICNet,3,0.074,42.57,0.9898,0.1010,0.1056,0.2184,0.2304,0.0920,0.0936
MVMICNet,4,0.089,43.10,0.9913,0.1154,0.1201,0.2410,0.2536,0.1006,0.1031
BPG,q34,0.046,35.98,0.9594,0.0300,,0.0640,,0.0235,
BPG,q31,0.060,37.50,0.9695,0.0491,,0.1069,,0.0363,
BPG,q28,0.079,38.76,0.9767,0.0300,,0.0640,,0.0235,
BPG,q25,0.091,39.52,0.9834,0.0934,,0.2033,,0.0847,
MBT2018-Mean,q5,0.041,37.36,0.9691,0.0484,,0.1024,,0.0361,
MBT2018-Mean,q4,0.054,38.60,0.9740,0.0699,,0.1427,,0.0542,
MBT2018-Mean,q3,0.072,39.98,0.9788,0.0864,,0.1831,,0.0723,
MBT2018-Mean,q2,0.097,40.81,0.9845,0.0967,,0.2141,,0.0871,
Cheng2020-Anchor,q5,0.043,39.41,0.9796,0.0649,,0.1282,,0.0554,
Cheng2020-Anchor,q4,0.061,40.63,0.9832,0.0840,,0.1734,,0.0747,
Cheng2020-Anchor,q3,0.079,41.63,0.9854,0.0967,,0.2082,,0.0876,
Cheng2020-Anchor,q2,0.093,42.36,0.9866,0.1062,,0.2237,,0.0924,
""",
    "table4": """lambda2,bpp,psnr_db,miou_percent,accuracy_percent
0.1,0.25230,24.250,33.040,45.5
0.001,0.24560,31.880,45.780,63.0
0.0001,0.24320,35.080,58.030,79.9
0.00001,0.24310,34.570,52.710,72.6
""",
}


# -- the whole rate sweep (chapters a1 and a2) ---------------------------------------------------------
PAPER_NAME = {classic.HEVC_NAME: "BPG", "MBT2018-Mean": "MBT2018-Mean", "Cheng2020-Anchor": "Cheng2020-Anchor",
              "MVMICNet": "MVMICNet"}


@dataclass
class Sweep:
    """Everything a rate sweep produced: the results table, decoded images, networks and timings."""

    results: pd.DataFrame
    decoded: dict[tuple[str, int], Decoded]
    task_net: nn.Module
    stage_nets: dict[int, tuple[nn.Module, nn.Module]]
    original_scores: dict[str, float]
    seconds: dict[str, float]


def run_sweep(study: CompressionStudy, lambdas: Sequence[float], lambda2: float, classic_codecs: Sequence[str],
              log=print) -> Sweep:
    """Train and evaluate every method at every rate point (``lambdas`` = λ1 per point).

    Learned baselines: every architecture in ``study.specs``; MVMICNet on ``study.mvmicnet_arch``;
    classic codecs searched onto MVMICNet's measured bpp at each point (on the calibration images).
    """
    if len(lambdas) < 1:
        raise InvalidParameterError("lambdas needs at least one rate point")
    for lam in lambdas:
        check_lambda(lam)
    check_lambda2(lambda2)
    unknown = [c for c in classic_codecs if c not in classic.available_codecs()]
    if unknown:
        raise InvalidParameterError(f"classic codecs {unknown} are unavailable here: {classic.unavailable_codecs()} "
                                    f"(available: {classic.available_codecs()})")
    t0 = time.perf_counter()
    task_net = study.task_network()
    original = study.scores(task_net, study.test_images)
    log(f"task network on original test images: {original}")
    rows, decoded, stage_nets = [], {}, {}
    for point, lam in enumerate(lambdas, start=1):
        for arch, spec in study.specs.items():
            codec = study.baseline_codec(arch, point, lam)
            d = run_learned(codec, spec, f"{arch}-r{point}", study.test_images, ARCH_LABEL[arch], point)
            decoded[(arch, point)] = d
            rows.append(study.row(d, study.scores(task_net, d.images), lambda1=lam))
        codec, s1, s2 = study.mvmicnet(point, lam, lambda2)
        d = run_learned(codec, study.specs[study.mvmicnet_arch], f"mvmicnet-r{point}", study.test_images,
                        "MVMICNet", point)
        decoded[("mvmicnet", point)] = d
        stage_nets[point] = (s1, s2)
        rows.append(study.row(d, study.scores(s1, d.images), study.scores(s2, d.images), lambda1=lam))
        log(f"rate point {point} (lambda1={lam}): learned codecs done, {time.perf_counter() - t0:.0f} s")
    t_learned = time.perf_counter() - t0
    targets = [r["bpp"] for r in rows if r["method"] == "MVMICNet"]
    keep: dict = {}
    rows += study.classic_rows(classic_codecs, targets, task_net, keep=keep)
    for (name, point), d in keep.items():
        decoded[(name, point)] = d
    df = pd.DataFrame(rows)
    df.insert(1, "paper_method", df["method"].map(PAPER_NAME))
    return Sweep(df, decoded, task_net, stage_nets, original,
                 {"learned": t_learned, "total": time.perf_counter() - t0, **study.timings})


def accuracy_curves_frame(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Long table for rate–accuracy plots/BD: MVMICNet's stage 2 becomes its own method ``MVMICNet (stage 2)``."""
    a = df[["method", "bpp", f"{metric}_stage1"]].rename(columns={f"{metric}_stage1": metric})
    s2 = df[df["method"] == "MVMICNet"][["bpp", f"{metric}_stage2"]].rename(columns={f"{metric}_stage2": metric})
    s2.insert(0, "method", "MVMICNet (stage 2)")
    return pd.concat([a, s2], ignore_index=True)


def claims(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The paper's qualitative claims checked against our table (per rate point, then overall)."""
    piv = df.pivot_table(index="point", columns="method", values=[f"{metric}_stage1", "psnr_db", "bpp"])
    out = []

    def add(claim, ok_per_point):
        ok = [bool(v) for v in ok_per_point if v == v]
        out.append({"claim": claim, "points_holding": f"{sum(ok)}/{len(ok)}",
                    "verdict": "confirmed" if ok and all(ok) else ("mixed" if any(ok) else "contradicted")})

    m1 = f"{metric}_stage1"
    if "MVMICNet" in piv[m1]:
        for base in ("MBT2018-Mean", "Cheng2020-Anchor", classic.HEVC_NAME):
            if base in piv[m1]:
                add(f"MVMICNet stage 1 {metric} > {base} at the same rate point",
                    (piv[m1]["MVMICNet"] > piv[m1][base]).tolist())
        s2 = df[df["method"] == "MVMICNet"].set_index("point")
        add(f"stage 2 improves {metric} over stage 1", (s2[f"{metric}_stage2"] > s2[m1]).tolist())
        for base in ("MBT2018-Mean", "Cheng2020-Anchor"):
            if base in piv["psnr_db"]:
                add(f"MVMICNet PSNR > {base} (paper: +4-8 dB)", (piv["psnr_db"]["MVMICNet"] > piv["psnr_db"][base]).tolist())
    return pd.DataFrame(out)


def speed_table(decoded: dict[tuple[str, int], Decoded]) -> pd.DataFrame:
    """Encode/decode ms per image and the bytes-vs-likelihood bpp gap, per codec (mean over rate points)."""
    rows = []
    for (key, point), d in decoded.items():
        gap = (float(d.bpp.mean()) / float(d.bpp_est.mean()) - 1) * 100 if d.bpp_est is not None else np.nan
        rows.append({"method": d.method, "point": point, "encode_ms": 1000 * d.encode_s, "decode_ms": 1000 * d.decode_s,
                     "bpp": float(d.bpp.mean()), "bpp_est": float(d.bpp_est.mean()) if d.bpp_est is not None else np.nan,
                     "bytes_vs_estimate_pct": gap})
    t = pd.DataFrame(rows)
    return t.groupby("method", sort=False).mean(numeric_only=True).drop(columns="point").reset_index()
