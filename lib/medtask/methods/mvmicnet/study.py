"""Study A (MVMICNet, task-driven medical image compression): the run and evaluation helpers the
chapters ``a1_compression_segmentation``, ``a2_compression_detection`` and ``a3_lambda2_ablation`` share.

One :class:`CompressionStudy` per chapter holds the data, the task, the widths and the step
budgets; its methods train (through :func:`medtask.engine.fit`, checkpointed, resumable):

- the task network on original images (what every baseline is evaluated with, as in the paper);
- per rate point ``i`` and learned architecture: an MSE-trained codec (``mse_steps``), shared as the
  starting point of every learned method at that rate point; the baseline then gets ``extra_steps``
  more MSE-only steps, MVMICNet gets the same number of joint steps (stage 1) -- equal budgets;
- MVMICNet stage 2: the task network fine-tuned on stage-1 reconstructions, codec frozen.

``init="zoo"`` starts the task network and every codec from the study's zoo (entries
``erfnet-<zoo_data>`` or ``faster-rcnn-<zoo_data>``, and ``<arch>-<zoo_data>-q<quality>``, the quality
whose λ1 is the rate point's) instead of random weights; every learned method at a rate point still gets the same start and the
same further steps, and :func:`run_sweep` adds one codec trained from scratch beside its zoo-started
twin (:attr:`Sweep.start_comparison`), so the page shows what the start changes.

Evaluation uses real bitstreams (bpp from bytes, likelihood estimate beside it), PSNR on 8-bit RGB,
MS-SSIM (pytorch-msssim, small-image settings) and the task metrics, under ``torch.inference_mode``.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medtask.data.augment import foreground_zoom, random_crops
from medtask.engine import RandomBatches, fit
from medtask.engine.signatures import network_signature, samples_signature, weights_digest
from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet.codecs import classic
from medtask.methods.mvmicnet.codecs.bitstream import LearnedCodec
from medtask.methods.mvmicnet.codecs.learned import ZOO_LAMBDAS, CodecSpec, check_lambda, codec_spec
from medtask.methods.mvmicnet.strategies import (
    CodecMSEStrategy,
    FrozenCodecTaskStrategy,
    JointStrategy,
    TASKS,
    TaskStrategy,
    check_lambda2,
    load_modules,
)
from medtask.methods.mvmicnet.evaluation import predict_masks, stack_images, task_scores
from medtask.methods.mvmicnet.zoo import codec_entry_name
from medtask.metrics.image import image_quality
from medtask.nn.losses import check_task

ARCH_LABEL = {"mbt2018-mean": "MBT2018-Mean", "cheng2020-anchor": "Cheng2020-Anchor"}
#: how every training's batches are made: random crops (or whole images), or ERFNet's zoo augmentation
TRAIN_AUGMENTS = ("crop", "recipe")
#: where the networks start: random weights, or the study's zoo
INITS = ("scratch", "zoo")
#: the zoo entry of each task's network, by the zoo's data tag
ZOO_TASK_NETWORKS = {"segmentation": "erfnet-{data}", "detection": "faster-rcnn-{data}"}


def zoo_codec_name(arch: str, lambda1: float, data: str) -> str:
    """The zoo entry of codec ``arch`` at rate point ``lambda1`` trained on data ``data`` (a zoo data tag)."""
    quality = {v: q for q, v in ZOO_LAMBDAS.items()}.get(float(lambda1))
    if quality is None:
        raise InvalidParameterError(f"init='zoo' needs every lambda1 to be one of CompressAI's quality lambdas "
                                    f"{sorted(ZOO_LAMBDAS.values())}, at which the zoo's codecs are trained; got "
                                    f"{lambda1} (or use init='scratch')")
    return codec_entry_name(arch, data, quality)


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


# -- the study --------------------------------------------------------------------------------
class CompressionStudy:
    """Shared state and steps of one Study A chapter (see the module docstring)."""

    def __init__(self, chapter, task: str, train: Sequence[dict], test: Sequence[dict], *,
                 build_task: Any, num_classes: int, device: torch.device, seed: int = 0,
                 widths: dict[str, dict[str, int]] | None = None, mvmicnet_arch: str = "mbt2018-mean",
                 batch_size: int = 8, task_batch_size: int | None = None, task_steps: int = 300,
                 mse_steps: int = 200, extra_steps: int = 100, stage2_steps: int = 50, lr: float = 1e-4,
                 task_lr: float = 1e-3, finetune_lr: float = 1e-4, task_scale: float = 255.0 ** 2,
                 calib: Sequence[dict] | None = None, progress: bool = True, init: str = "scratch",
                 zoo_data: str = "cvc", train_crop: int | None = None, scratch_lr: float | None = None,
                 train_augment: str = "crop") -> None:
        check_task(task, TASKS)
        if init not in INITS:
            raise InvalidParameterError(f"init={init!r}: use one of {', '.join(INITS)}")
        if init == "zoo" and task not in ZOO_TASK_NETWORKS:
            raise InvalidParameterError(f"init='zoo': the zoo has no {task} network yet (`medtask zoo list`); "
                                        "use init='scratch'")
        if init == "scratch" and task_steps < 1:
            raise InvalidParameterError("task_steps=0 keeps the task network as it starts, which with init='scratch' "
                                        "is random weights: give it steps (e.g. -p task_steps=300) or use init='zoo'")
        if train_crop is not None and task != "segmentation":
            raise InvalidParameterError("train_crop crops images and masks; it is not available for detection")
        if train_augment not in TRAIN_AUGMENTS:
            raise InvalidParameterError(f"train_augment={train_augment!r}: use one of {', '.join(TRAIN_AUGMENTS)}")
        if train_augment == "recipe" and (task != "segmentation" or train_crop is None):
            raise InvalidParameterError("train_augment='recipe' is ERFNet's zoo augmentation: segmentation only, "
                                        "with a train_crop (a multiple of 64 px for the codecs, e.g. 128)")
        self.init, self.zoo_data, self.train_crop, self.train_augment = init, zoo_data, train_crop, train_augment
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
        # a codec from random weights needs a larger step than one fine-tuned from the zoo
        self.scratch_lr = lr if scratch_lr is None else scratch_lr
        self.progress = progress
        self.test_images = stack_images(test)
        self.timings: dict[str, float] = {}
        self.checkpoints: dict[str, Path] = {}  # name -> the keyed checkpoint trained (or reused) this run

    # -- training ----------------------------------------------------------------------------
    def checkpoint(self, name: str, key: dict[str, Any] | None = None) -> Path:
        """This study's checkpoint ``name``: seed 0 at the chapter's top level, seed k under ``seed<k>/``.

        With ``key`` the file name carries the key's digest (:meth:`medtask.pipeline.Chapter.checkpoint`).
        """
        return self.chapter.checkpoint(name if self.seed == 0 else f"seed{self.seed}/{name}", key=key)

    def _batches(self, bs: int) -> RandomBatches:
        """Every training's batches: whole images, random ``train_crop`` crops, or ERFNet's zoo augmentation
        at ``train_crop`` (``train_augment="recipe"``), the same for every network of the chapter."""
        if self.train_augment == "recipe":
            augment = foreground_zoom(self.train_crop)
        else:
            augment = random_crops(self.train_crop) if self.train_crop else None
        return RandomBatches(self.train, bs, seed=self.seed, augment=augment)

    def _from_zoo(self, name: str, net: nn.Module) -> None:
        """Load zoo entry ``name``'s verified weights into ``net`` and note the start in the provenance."""
        self.chapter.start_from_zoo(net, name)

    def _fit(self, strategy, steps: int, name: str, bs: int, params: dict[str, Any],
             inputs: dict[str, Path] | None = None) -> Path:
        """Train ``strategy`` into the checkpoint keyed on what produces it; return that checkpoint's path.

        The key holds the training's own ``params``, steps, batch size, seed, the networks' shapes, the
        training samples (ids, count, size), the checkpoints in ``inputs`` (by content), the chapter's
        data fingerprints and the source of the strategy's module and of the training loop: a rerun
        with any of them changed trains again, anything else is reused (and listed as reused). The finished
        checkpoint keeps no optimiser state (a rerun only loads it).
        """
        nets = {k: network_signature(m) for k, m in strategy.modules().items()}
        key = self.chapter.artefact_key(
            {**params, "strategy": type(strategy).__name__, "steps": steps, "batch_size": bs, "seed": self.seed,
             "grad_clip": 1.0, "train_crop": self.train_crop,
             **({"train_augment": self.train_augment} if self.train_augment != "crop" else {}),  # older keys stand
             "networks": nets, "start_weights": weights_digest(strategy.modules()), "train": samples_signature(self.train)},
            inputs=inputs or {}, code=(sys.modules[type(strategy).__module__], fit))
        ckpt = self.checkpoint(name, key=key)
        torch.manual_seed(self.seed)
        res = fit(strategy, self._batches(bs), steps, checkpoint=ckpt, grad_clip=1.0,
                  progress=self.progress, desc=name, keep_optimizer=False)
        self.timings[name] = res.seconds_per_step
        self.checkpoints[name] = ckpt
        return ckpt

    def task_network(self) -> nn.Module:
        """The task network trained on original images (checkpoint ``task_original``)."""
        torch.manual_seed(self.seed)
        net = self.build_task()
        if self.init == "zoo":
            self._from_zoo(ZOO_TASK_NETWORKS[self.task].format(data=self.zoo_data), net)
        self._fit(TaskStrategy(net, self.task, lr=self.task_lr, device=self.device), self.task_steps,
                  "task_original", self.task_batch_size, {"task": self.task, "lr": self.task_lr, "init": self.init})
        return net.eval()

    def _codec(self, arch: str) -> nn.Module:
        torch.manual_seed(self.seed)
        return self.specs[arch].build()

    def mse_codec(self, arch: str, point: int, lambda1: float) -> nn.Module:
        """The shared MSE-trained starting point of every learned method at rate point ``point`` (from the zoo's
        codec at that λ1 with ``init="zoo"``, then ``mse_steps`` steps on the chapter's data; 0 keeps it as is)."""
        codec = self._codec(arch)
        if self.init == "zoo":
            self._from_zoo(zoo_codec_name(arch, lambda1, self.zoo_data), codec)
        self._fit(CodecMSEStrategy(codec, lambda1, lr=self.lr, device=self.device), self.mse_steps,
                  f"{arch}_mse_r{point}", self.batch_size,
                  {"codec": self.specs[arch].as_dict(), "lambda1": lambda1, "lr": self.lr, "init": self.init})
        return codec

    def scratch_codec(self, arch: str, point: int, lambda1: float) -> nn.Module:
        """``arch`` at rate point ``point`` trained from random weights for the steps a zoo-started baseline gets
        in this chapter (``mse_steps + extra_steps``) at ``scratch_lr``: beside its zoo-started twin, what the
        start changes."""
        codec = self._codec(arch)
        self._fit(CodecMSEStrategy(codec, lambda1, lr=self.scratch_lr, device=self.device),
                  self.mse_steps + self.extra_steps, f"{arch}_scratch_r{point}", self.batch_size,
                  {"codec": self.specs[arch].as_dict(), "lambda1": lambda1, "lr": self.scratch_lr, "init": "scratch"})
        return codec.eval()

    def baseline_codec(self, arch: str, point: int, lambda1: float) -> nn.Module:
        """A baseline learned codec: the shared MSE start plus ``extra_steps`` MSE-only steps."""
        self.mse_codec(arch, point, lambda1)
        start = self.checkpoints[f"{arch}_mse_r{point}"]
        codec = self._codec(arch)
        load_modules(start, {"codec": codec})
        self._fit(CodecMSEStrategy(codec, lambda1, lr=self.lr, device=self.device), self.extra_steps,
                  f"{arch}_r{point}", self.batch_size,
                  {"codec": self.specs[arch].as_dict(), "lambda1": lambda1, "lr": self.lr}, {"start": start})
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
        codec_start, task_start = self.checkpoints[f"{arch}_mse_r{point}"], self.checkpoints["task_original"]
        codec, net = self._codec(arch), self.build_task()
        load_modules(codec_start, {"codec": codec})
        load_modules(task_start, {"task": net})
        joint = JointStrategy(codec, net, self.task, lambda1, lambda2, lr=self.lr, task_lr=self.finetune_lr,
                              task_scale=self.task_scale, device=self.device)
        s1 = self._fit(joint, self.extra_steps, f"mvmicnet_{tag}_s1", self.batch_size,
                       {"codec": self.specs[arch].as_dict(), "task": self.task, "lambda1": lambda1,
                        "lambda2": lambda2, "lr": self.lr, "task_lr": self.finetune_lr, "task_scale": self.task_scale},
                       {"codec_start": codec_start, "task_start": task_start})
        net2 = copy.deepcopy(net)
        s2 = FrozenCodecTaskStrategy(codec, net2, self.task, lr=self.finetune_lr, device=self.device)
        self._fit(s2, self.stage2_steps, f"mvmicnet_{tag}_s2", self.task_batch_size,
                  {"task": self.task, "lr": self.finetune_lr}, {"stage1": s1})
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
        r.update(image_quality(d.images, self.test_images, structure="ms_ssim"))
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
    #: with ``init="zoo"``: the zoo-started MVMICNet architecture's baseline and the same codec trained from
    #: scratch for as many steps in this chapter, at the highest rate point (``None`` with ``init="scratch"``)
    start_comparison: pd.DataFrame | None = None


def run_sweep(study: CompressionStudy, lambdas: Sequence[float], lambda2: float, classic_codecs: Sequence[str],
              log=print) -> Sweep:
    """Train and evaluate every method at every rate point (``lambdas`` = λ1 per point).

    Learned baselines: every architecture in ``study.specs``; MVMICNet on ``study.mvmicnet_arch``;
    classic codecs searched onto MVMICNet's measured bpp at each point (on the calibration images).
    Saves the chapter's tables ``results_all`` and (from the zoo) ``start_comparison``.
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
    start = start_comparison(study, df, len(lambdas), lambdas[-1], task_net) if study.init == "zoo" else None
    study.chapter.save_table(df, "results_all")
    if start is not None:
        study.chapter.save_table(start, "start_comparison")
    return Sweep(df, decoded, task_net, stage_nets, original,
                 {"learned": t_learned, "total": time.perf_counter() - t0, **study.timings}, start)


def start_comparison(study: CompressionStudy, results: pd.DataFrame, point: int, lambda1: float,
                     task_net: nn.Module) -> pd.DataFrame:
    """The zoo-started baseline of ``study.mvmicnet_arch`` at ``point`` beside the same codec trained from
    random weights for as many steps in this chapter, both read by the same task network."""
    arch = study.mvmicnet_arch
    codec = study.scratch_codec(arch, point, lambda1)
    d = run_learned(codec, study.specs[arch], f"{arch}-scratch-r{point}", study.test_images, ARCH_LABEL[arch], point)
    scratch = study.row(d, study.scores(task_net, d.images), lambda1=lambda1)
    zoo_row = results[(results["method"] == ARCH_LABEL[arch]) & (results["point"] == point)].iloc[0].to_dict()
    steps = study.mse_steps + study.extra_steps
    keep = ["bpp", "psnr_db", "ms_ssim"] + [c for c in scratch if c.endswith("_stage1")]
    out = pd.DataFrame([{k: r.get(k) for k in keep} for r in (zoo_row, scratch)])
    out.columns = [c.removesuffix("_stage1") for c in out.columns]
    out.insert(0, "start", [f"zoo: {zoo_codec_name(arch, lambda1, study.zoo_data)}", "random weights"])
    out.insert(0, "codec", ARCH_LABEL[arch])
    out.insert(2, "steps_in_chapter", steps)
    return out




def lambda2_ablation(study_for_seed: Callable[[int], CompressionStudy], seeds: Sequence[int], lambda1: float,
                     lambda2s: Sequence[float]) -> tuple[pd.DataFrame, CompressionStudy]:
    """MVMICNet at one rate point (``lambda1``) for every λ2 in ``lambda2s``, trained once per seed
    (``study_for_seed(seed)`` builds that seed's study): one results row each, with ``lambda2`` and ``seed``;
    and the last seed's study (for its timings)."""
    rows = []
    for s in seeds:
        study = study_for_seed(s)
        for lam2 in lambda2s:
            codec, s1, s2 = study.mvmicnet(1, lambda1, lam2, tag=f"l2_{lam2:g}")
            d = run_learned(codec, study.specs[study.mvmicnet_arch], f"l2-{lam2:g}", study.test_images, "MVMICNet", 1)
            rows.append(study.row(d, study.scores(s1, d.images), study.scores(s2, d.images), lambda2=lam2, seed=s))
    return pd.DataFrame(rows), study


def fig4_panels(sweep: Sweep, study: CompressionStudy, idx: Sequence[int], device: torch.device,
                point: int = 1) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The columns of MVMICNet's Fig. 4 for test images ``idx`` at rate ``point``: ERFNet on the originals, on
    HEVC-intra and Cheng2020 reconstructions (where run), MVMICNet stage 1 and stage 2 on its own."""
    orig = study.test_images[idx]
    panels = [("ERFNet on original", orig, predict_masks(sweep.task_net, orig, device))]
    for key, label in (("hevc-intra", "HEVC-intra"), ("cheng2020-anchor", "Cheng2020")):
        if (key, point) in sweep.decoded:
            d = sweep.decoded[(key, point)]
            panels.append((f"{label} {d.bpp[idx].mean():.3f} bpp", d.images[idx], predict_masks(sweep.task_net, d.images[idx], device)))
    d = sweep.decoded[("mvmicnet", point)]
    s1, s2 = sweep.stage_nets[point]
    return panels + [(f"MVMICNet s1 {d.bpp[idx].mean():.3f} bpp", d.images[idx], predict_masks(s1, d.images[idx], device)),
                     ("MVMICNet stage 2", d.images[idx], predict_masks(s2, d.images[idx], device))]
