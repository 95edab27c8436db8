"""Study C (GradProm) study: data, training grids, evaluation, seed spreads, step cost, CAM focus.

A *setting* is one degradation (e.g. Gaussian σ = 0.2) in one supervision mode:

- supervised: the enhancer's target is the clean image Y;
- unsupervised: the paper does not define it; here it is the Noise2Noise reading — the enhancer
  never sees Y, only a second, independent noisy realisation of it (unbiased, so the MSE optimum is
  the same), while the recogniser still has its labels. Only noise degradations allow it.

:func:`run_setting` trains every requested strategy for one setting through
:func:`medtask.engine.fit` (with checkpoints, so a re-run or an interrupted run resumes) and
evaluates it on a fixed, seeded degraded copy of the test split. Grad-CAM itself is
:func:`medtask.engine.gradcam.grad_cam`; diagnostics and published numbers are in
:mod:`medtask.methods.gradprom.report`, figures in :mod:`medtask.methods.gradprom.plots`.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import rgb_to_grayscale

from medtask import zoo
from medtask.config import get_device
from medtask.data import load
from medtask.engine import RandomBatches, TrainResult, fit
from medtask.engine.gradcam import class_probabilities, grad_cam
from medtask.engine.predict import predict, segmenter_scores
from medtask.engine.signatures import network_signature, samples_signature, weights_digest
from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.degradations import Degradation, make_degradation
from medtask.methods.gradprom.networks import build_enhancer
from medtask.methods.gradprom.report import cosine_log, cosine_summary
from medtask.methods.gradprom.strategies import (
    STRATEGIES,
    Auxiliary,
    DegradeBatch,
    RecogniserOnly,
    make_strategy,
)
from medtask.metrics.classification import classification_metrics
from medtask.metrics.image import image_quality
from medtask.metrics.spread import paired_differences
from medtask.nn.classifiers import build_classifier
from medtask.nn.unet import build_unet

TASK_DRIVEN = ("joint", "frozen", "gradprom", "gradprom-lemma")
#: where the networks start: random weights, or the study's zoo
INITS = ("scratch", "zoo")
#: the zoo's one noise level: with ``init="zoo"`` every Gaussian σ starts from the enhancer trained at it
ZOO_SIGMA = 0.2
#: the data tag of each real zoo family's smoke twins (phantom grey slices for COVID-CT, phantom polyps for CVC-ColonDB)
SMOKE_DATA_TAGS = {"covidct": "phantomct", "cvc": "phantompolyp"}
#: degradations whose enhancers start from the zoo's Gaussian denoiser (see :func:`zoo_enhancer_name`)
ZOO_FROM_DENOISER = ("gaussian", "composite")
#: the two supervision settings (the zoo-started ``cpu`` profiles run the supervised one only)
SETTINGS = ("supervised", "unsupervised")


def zoo_recogniser_name(task: str, data: str, classifier: str = "resnet18") -> str:
    """The zoo entry of the auxiliary for ``task`` on zoo data tag ``data``: ``resnet18-covidct``, ``unet-cvc``."""
    return f"{classifier}-{data}" if task == "classification" else f"unet-{data}"


def zoo_enhancer_name(degradation: Degradation | str | dict, data: str) -> str:
    """The zoo enhancer a chapter's enhancer for ``degradation`` starts from with ``init="zoo"``: the Gaussian
    denoiser at :data:`ZOO_SIGMA` for every noise level and for the composite degradation (blur, Poisson and
    Gaussian noise: the zoo trains no enhancer for it, and the denoiser is its nearest entry), the ×2 / ×4
    super-resolver for bicubic down-sampling."""
    d = make_degradation(degradation)
    if d.name in ZOO_FROM_DENOISER:
        return f"srresnet-{data}-gaussian{ZOO_SIGMA}"
    if d.name == "bicubic":
        return f"srresnet-{data}-bicubic-x{d.scale}"
    raise InvalidParameterError(f"the zoo has no enhancer for {d.label}: use init='scratch' for it")


@dataclass
class StudyConfig:
    """Networks and training budget of one chapter (the profile decides the numbers).

    ``init="zoo"`` starts the networks from the study's zoo (data tag ``zoo_data``) instead of random weights:
    every recogniser from the auxiliary trained on clean images (:func:`zoo_recogniser_name`), every supervised
    enhancer from :func:`zoo_enhancer_name`'s entry. Unsupervised enhancers still start from random weights: the
    zoo's enhancers were trained on clean targets, which the unsupervised setting must never see. With
    ``recognisers_from_zoo=False`` only the enhancers start from the zoo (for data the zoo has no recogniser of).
    """

    tasks: tuple[str, ...] = ("classification",)
    num_classes: dict[str, int] = field(default_factory=lambda: {"classification": 2, "segmentation": 2})
    channels: int = 1
    depth: int = 4
    width: int = 32
    batch_norm: bool = True
    classifier: str = "resnet18"
    unet_base: int = 16
    unet_levels: int = 3
    steps: int = 200
    rec_steps: int = 200
    batch_size: int = 8
    lam: float = 0.1
    lr: float = 1e-3
    lr_rec: float = 1e-3
    per_layer: bool = False
    seed: int = 0
    device: str = "auto"
    eval_batch: int = 32
    init: str = "scratch"
    zoo_data: str = "covidct"
    recognisers_from_zoo: bool = True

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise InvalidParameterError(f"init={self.init!r}: use one of {', '.join(INITS)}")
        if (self.init == "scratch" or not self.recognisers_from_zoo) and self.rec_steps < 1:
            raise InvalidParameterError("rec_steps=0 keeps the recognisers as they start, which here is random weights "
                                        "(init='scratch', or a zoo without them): give them steps (e.g. -p rec_steps=200) "
                                        "or use init='zoo'")
        self.tasks = tuple(self.tasks)
        bad = [t for t in self.tasks if t not in ("classification", "segmentation")]
        if bad or not self.tasks:
            raise InvalidParameterError(f"tasks must be a non-empty subset of (classification, segmentation), got {self.tasks}")

    @property
    def torch_device(self) -> torch.device:
        return get_device(self.device)


# -- data ---------------------------------------------------------------------------------------
def check_classes(cfg: StudyConfig, dataset: Any) -> None:
    """Raise if the recogniser's class count does not match ``dataset.classes``."""
    classes = getattr(dataset, "classes", None)
    if classes is None:
        return
    for task in cfg.tasks:
        n = len(classes[task]) if isinstance(classes, dict) else len(classes)
        if n != cfg.num_classes[task]:
            raise InvalidParameterError(
                f"the {task} recogniser is built for {cfg.num_classes[task]} classes but {getattr(dataset, 'name', 'the dataset')} "
                f"has {n} ({classes}); set num_classes[{task!r}] = {n}")


def to_grey(sample: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``sample`` with its RGB image turned into one luminance channel (ITU-R 601)."""
    img = sample["image"]
    return {**sample, "image": rgb_to_grayscale(img) if img.shape[0] == 3 else img}


class PolypCrops(list):
    """Square crops of CVC-ColonDB frames labelled *polyp present* (1) / *absent* (0), with their masks.

    A real dataset with both labels, for the two-auxiliary experiment: every frame gives one crop
    centred on its polyp (label 1; mask cropped alike) and, where one exists, one crop of the same
    size that contains no polyp pixel (label 0; an all-background mask). Negative windows are
    chosen by a seeded random order over a stride-8 grid, so the derivation is reproducible.
    """

    task = "classification+segmentation"

    def __init__(self, source: Sequence[dict[str, Any]], crop: int = 64, seed: int = 0, min_polyp: float = 0.02) -> None:
        super().__init__()
        self.classes = {"classification": ["no-polyp", "polyp"], "segmentation": ["background", "polyp"]}
        self.name = f"CVC-ColonDB polyp crops ({crop} px)"
        g = np.random.default_rng(seed)
        skipped_pos, missing_neg = 0, 0
        for s in source:
            img, mask = s["image"], s["mask"]
            h, w = mask.shape
            if h < crop or w < crop:
                raise InvalidParameterError(f"crop {crop} px is larger than the {h}×{w} frames; load a larger size")
            fg = mask.nonzero()
            if len(fg) and float((mask > 0).float().mean()) * (h * w) / crop**2 >= min_polyp:
                cy, cx = fg.float().mean(0).round().long().tolist()
                y0 = int(np.clip(cy - crop // 2, 0, h - crop))
                x0 = int(np.clip(cx - crop // 2, 0, w - crop))
                m = mask[y0:y0 + crop, x0:x0 + crop]
                if float((m > 0).float().mean()) >= min_polyp:
                    self.append({"image": img[:, y0:y0 + crop, x0:x0 + crop].clone(), "mask": m.clone(), "label": 1,
                                 "id": f"{s['id']}+"})
                else:
                    skipped_pos += 1
            else:
                skipped_pos += 1
            cands = [(y, x) for y in range(0, h - crop + 1, 8) for x in range(0, w - crop + 1, 8)
                     if not bool(mask[y:y + crop, x:x + crop].any())]
            if cands:
                y0, x0 = cands[int(g.integers(len(cands)))]
                self.append({"image": img[:, y0:y0 + crop, x0:x0 + crop].clone(),
                             "mask": torch.zeros(crop, crop, dtype=torch.int64), "label": 0, "id": f"{s['id']}-"})
            else:
                missing_neg += 1
        self.info = {"frames": len(source), "crops": len(self), "positives": sum(s["label"] for s in self),
                     "frames_without_positive": skipped_pos, "frames_without_negative": missing_neg, "crop": crop}

    def describe(self) -> str:
        """One sentence for the chapter text."""
        i = self.info
        return (f"{i['crops']} crops of {i['crop']}×{i['crop']} px from {i['frames']} frames: {i['positives']} with a polyp "
                f"(≥2% polyp pixels, centred on it) and {i['crops'] - i['positives']} without any polyp pixel; "
                f"{i['frames_without_positive']} frames gave no positive, {i['frames_without_negative']} no negative.")


@dataclass
class DegradedTestSet:
    """A fixed, seeded degraded copy of a test split: X (degraded), Y (clean) and the labels."""

    degraded: torch.Tensor
    clean: torch.Tensor
    labels: torch.Tensor | None
    masks: torch.Tensor | None
    ids: list[str]
    degradation: Degradation

    @classmethod
    def build(cls, dataset: Sequence[dict[str, Any]], degradation: Degradation | str | dict, seed: int = 12345) -> "DegradedTestSet":
        """Degrade every test image with a generator seeded once (same X on every run)."""
        degradation = make_degradation(degradation)
        samples = [dataset[i] for i in range(len(dataset))]
        clean = torch.stack([s["image"] for s in samples])
        labels = torch.tensor([int(s["label"]) for s in samples]) if "label" in samples[0] else None
        masks = torch.stack([s["mask"] for s in samples]) if "mask" in samples[0] else None
        return cls(degradation(clean, seed), clean, labels, masks, [str(s["id"]) for s in samples], degradation)

    def bicubic(self) -> torch.Tensor:
        """The degraded images at the clean size (bicubic up-sampling for SR; unchanged otherwise)."""
        if self.degraded.shape == self.clean.shape:
            return self.degraded
        return F.interpolate(self.degraded, size=self.clean.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


# -- models -------------------------------------------------------------------------------------
def build_recogniser(cfg: StudyConfig, task: str) -> nn.Module:
    """The auxiliary network for ``task``: a ResNet classifier or a U-Net."""
    if task == "classification":
        net = build_classifier(cfg.classifier, cfg.num_classes[task], cfg.channels)
    else:
        net = build_unet(cfg.channels, cfg.num_classes[task], base=cfg.unet_base, levels=cfg.unet_levels)
    return net.to(cfg.torch_device)


def _enhancer(cfg: StudyConfig, scale: int) -> nn.Module:
    return build_enhancer(cfg.channels, scale=scale, depth=cfg.depth, width=cfg.width,
                          batch_norm=cfg.batch_norm).to(cfg.torch_device)


def enhance(enhancer: nn.Module, images: torch.Tensor, batch_size: int = 32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Run ``enhancer`` in evaluation mode over ``images`` in batches; output clamped to [0, 1], on the CPU."""
    return torch.cat(predict(enhancer, images, batch_size=batch_size, device=device,
                             output=lambda out: out.clamp(0, 1).cpu()))


def recognise(net: nn.Module, images: torch.Tensor, task: str, test: DegradedTestSet, batch_size: int = 32,
              device: torch.device | str = "cpu") -> dict[str, float]:
    """Task metrics of ``net`` on ``images``: accuracy / balanced accuracy / AUC, or mIoU / Dice."""
    if task == "classification":
        probs = predict(net, images, batch_size=batch_size, device=device, output=lambda out: torch.softmax(out, 1).cpu())
        return classification_metrics(torch.cat(probs), test.labels)
    m = segmenter_scores(net, images, test.masks, output_classes_seg(net), batch_size=batch_size, device=device)
    return {"miou": m["miou"], "dice": m["dice"]}


def output_classes_seg(net: nn.Module) -> int:
    """Number of classes a segmenter predicts."""
    return int(getattr(net, "num_classes", 2))


# -- one setting ----------------------------------------------------------------------------------
@dataclass
class SettingResult:
    """Everything one setting produced: table rows, training histories, trained networks, test set."""

    rows: list[dict[str, Any]]
    histories: dict[str, TrainResult]
    enhancers: dict[str, nn.Module]
    recognisers: dict[str, dict[str, nn.Module]]
    test: DegradedTestSet
    enhanced: dict[str, torch.Tensor]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


#: The fields of :class:`StudyConfig` a recogniser's training depends on (an enhancer's: all but device
#: and eval_batch). A rerun that changes another field (λ, the enhancer's width, ...) reuses the recognisers.
RECOGNISER_FIELDS = ("tasks", "num_classes", "channels", "classifier", "unet_base", "unet_levels", "rec_steps",
                     "batch_size", "lr_rec", "seed")


def _fit(strategy, batches: RandomBatches, steps: int, chapter: Any, name: str, cfg: StudyConfig,
         params: dict[str, Any], fields: Sequence[str] | None = None) -> TrainResult:
    """Train into the chapter's checkpoint keyed on what produces it (no checkpoint without a chapter).

    The key: the ``fields`` of ``cfg`` the training depends on (default: all but device and
    eval_batch), the setting (``params``), the networks' shapes and the weights they start from (so
    Frozen's copy of a trained recogniser is keyed on that recogniser), the training samples, the
    chapter's data fingerprints, and the source of the strategy's module and of the training loop.
    The finished checkpoint keeps no optimiser state (a rerun only loads it). No steps, no checkpoint: the network
    is the one it started as (a zoo entry, itself verified on loading), and a copy would only take disk.
    """
    ckpt = None
    if chapter is not None and steps > 0:
        budget = {k: v for k, v in asdict(cfg).items()
                  if (k in fields if fields is not None else k not in ("device", "eval_batch"))}
        key = chapter.artefact_key(
            {**params, "strategy": type(strategy).__name__, "steps": steps, "config": budget,
             "networks": {k: network_signature(m) for k, m in strategy.modules().items()},
             "start_weights": weights_digest(strategy.modules()), "train": samples_signature(batches.dataset)},
            code=(sys.modules[type(strategy).__module__], fit))
        ckpt = chapter.checkpoint(name, key=key)
    return fit(strategy, batches, steps, checkpoint=ckpt, desc=name, keep_optimizer=False)


def start_from_zoo(net: nn.Module, name: str, chapter: Any = None) -> nn.Module:
    """``net`` with zoo entry ``name``'s verified weights, the start noted in ``chapter``'s provenance."""
    if chapter is not None:
        return chapter.start_from_zoo(net, name)
    zoo.load_into(net, name)
    return net


def _recogniser_start(cfg: StudyConfig, task: str, chapter: Any) -> nn.Module:
    """A fresh recogniser for ``task`` (seeded), from the zoo with ``cfg.init == "zoo"``."""
    torch.manual_seed(cfg.seed)
    net = build_recogniser(cfg, task)
    if cfg.init == "zoo" and cfg.recognisers_from_zoo:
        start_from_zoo(net, zoo_recogniser_name(task, cfg.zoo_data, cfg.classifier), chapter)
    return net


def train_recognisers(cfg: StudyConfig, train: Sequence[dict[str, Any]], degradation: Degradation | None,
                      chapter: Any = None, key: str = "rec", steps: int | None = None
                      ) -> tuple[dict[str, nn.Module], dict[str, TrainResult]]:
    """Benchmark-ii (``degradation=None``: clean images) or Benchmark-iii (degraded), one network per task,
    trained for ``steps`` (default ``cfg.rec_steps``) from random weights or, with ``init="zoo"``, from the zoo."""
    nets, hist = {}, {}
    steps = cfg.rec_steps if steps is None else steps
    for task in cfg.tasks:
        net = _recogniser_start(cfg, task, chapter)
        on = "clean" if degradation is None else "degraded"
        strat = RecogniserOnly(net, task, on=on, lr=cfg.lr_rec)
        aug = DegradeBatch(degradation if degradation is not None else {"name": "gaussian", "sigma": 0.0})
        batches = RandomBatches(train, cfg.batch_size, seed=cfg.seed, augment=aug, device=cfg.torch_device)
        hist[task] = _fit(strat, batches, steps, chapter, f"{key}_{task}_{on}", cfg,
                          {"task": task, "on": on, "degradation": None if degradation is None else
                           make_degradation(degradation).describe()}, RECOGNISER_FIELDS)
        nets[task] = net
    return nets, hist


def degradation_tag(degradation: Degradation) -> str:
    """A degradation as a checkpoint-name fragment, e.g. ``gaussian_0.2``."""
    return "_".join([degradation.name] + [f"{v}" for k, v in degradation.describe().items() if k not in ("name", "clip")])


def run_setting(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]] | DegradedTestSet,
                degradation: Degradation | str | dict, *, supervised: bool = True,
                strategies: Sequence[str] = ("benchmark-i", "joint", "frozen", "gradprom"),
                clean_recognisers: dict[str, nn.Module] | None = None, degraded_recognisers: dict[str, nn.Module] | None = None,
                chapter: Any = None, tag: str = "") -> SettingResult:
    """Train ``strategies`` for one degradation/supervision setting and evaluate them on ``test``.

    ``clean_recognisers`` (Benchmark-ii, trained on clean images) judge Benchmark-i's output and
    initialise Frozen's φ; they are trained here if not given. ``degraded_recognisers``
    (Benchmark-iii) add a reference row when given. Rows: one per strategy plus references
    (``degraded input`` and, for SR, ``bicubic``), with PSNR, SSIM and the task metrics.
    """
    degradation = make_degradation(degradation)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise InvalidParameterError(f"unknown strategies {unknown}; choose from {STRATEGIES}")
    check_classes(cfg, train)
    dev = cfg.torch_device
    tag = tag or degradation_tag(degradation)
    tag += "_sup" if supervised else "_unsup"
    testset = test if isinstance(test, DegradedTestSet) else DegradedTestSet.build(test, degradation, seed=cfg.seed + 12345)
    aug = DegradeBatch(degradation, supervised=supervised)  # fails fast on an impossible setting
    if clean_recognisers is None:
        clean_recognisers, _ = train_recognisers(cfg, train, None, chapter)
    batches = RandomBatches(train, cfg.batch_size, seed=cfg.seed, augment=aug, device=dev)
    setting = {"degradation": degradation.name, "setting": "supervised" if supervised else "unsupervised",
               **{k: v for k, v in degradation.describe().items() if k not in ("name", "clip")}}
    rows, histories, enhancers, recs, enhanced = [], {}, {}, {}, {}

    def evaluate(name: str, images: torch.Tensor, judges: dict[str, nn.Module], judged_by: str) -> None:
        row = {**setting, "strategy": name, **image_quality(images, testset.clean, structure="ssim"), "task_model": judged_by}
        for task, net in judges.items():
            row.update(recognise(net, images, task, testset, cfg.eval_batch, dev))
        rows.append(row)

    base = testset.bicubic()
    evaluate("degraded input" if degradation.scale == 1 else "bicubic", base, clean_recognisers, "benchmark-ii")
    if degraded_recognisers is not None:
        evaluate("benchmark-iii", base, degraded_recognisers, "benchmark-iii")
    enhancer_start = zoo_enhancer_name(degradation, cfg.zoo_data) if cfg.init == "zoo" and supervised else None
    for name in strategies:
        if name in ("benchmark-ii", "benchmark-iii"):
            continue  # recognisers alone: trained by train_recognisers, reported as references
        torch.manual_seed(cfg.seed)
        enh = _enhancer(cfg, degradation.scale)
        if enhancer_start is not None:
            start_from_zoo(enh, enhancer_start, chapter)
        if name == "benchmark-i":
            strat = make_strategy(name, enhancer=enh, lr=cfg.lr)
            judges, judged_by = clean_recognisers, "benchmark-ii"
        else:
            if name == "frozen":
                nets = {t: copy.deepcopy(n) for t, n in clean_recognisers.items()}
            else:
                nets = {t: _recogniser_start(cfg, t, chapter) for t in cfg.tasks}
            auxes = [Auxiliary(n, t, name=t) for t, n in nets.items()]
            strat = make_strategy(name, enhancer=enh, recogniser=auxes, lam=cfg.lam, lr=cfg.lr,
                                  lr_recogniser=cfg.lr_rec, per_layer=cfg.per_layer)
            judges, judged_by = nets, "own"
            recs[name] = nets
        histories[name] = _fit(strat, batches, cfg.steps, chapter, f"{tag}_{name}", cfg,
                               {"setting": setting, "supervised": supervised})
        enhancers[name] = enh
        enhanced[name] = enhance(enh, testset.degraded, cfg.eval_batch, dev)
        evaluate(name, enhanced[name], judges, judged_by)
        rows[-1]["enhancer_start"] = f"zoo: {enhancer_start}" if enhancer_start else "random weights"
    clean_row = {**setting, "strategy": "clean (upper bound)", "psnr_db": float("inf"), "ssim": 1.0, "task_model": "benchmark-ii"}
    for task, net in clean_recognisers.items():
        clean_row.update(recognise(net, testset.clean, task, testset, cfg.eval_batch, dev))
    rows.append(clean_row)
    return SettingResult(rows, histories, enhancers, recs, testset, enhanced)


def seed_spread(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: DegradedTestSet,
                degradation: Degradation | str | dict, seeds: Sequence[int], *,
                strategies: Sequence[str] = ("benchmark-i", "joint", "frozen", "gradprom"),
                chapter: Any = None, base: SettingResult | None = None) -> pd.DataFrame:
    """One supervised setting trained again under every seed in ``seeds``: the rows of each, with ``seed``.

    Every seed gets its own clean-trained recogniser (Benchmark-ii, which judges Benchmark-i and
    initialises Frozen), initialisations and batch order; the degraded test set stays the same, so
    only training noise varies. ``base``, a result already trained at ``cfg.seed``, is reused.
    """
    frames = [base.frame().assign(seed=cfg.seed)] if base is not None else []
    degradation = make_degradation(degradation)
    for s in seeds:
        if base is not None and s == cfg.seed:
            continue
        scfg = StudyConfig(**{**config_dict(cfg), "seed": int(s)})
        clean, _ = train_recognisers(scfg, train, None, chapter, key=f"seed{s}_rec")
        r = run_setting(scfg, train, test, degradation, strategies=strategies, clean_recognisers=clean,
                        chapter=chapter, tag=f"seed{s}_{degradation_tag(degradation)}")
        frames.append(r.frame().assign(seed=int(s)))
    return pd.concat(frames, ignore_index=True)


def spread_against(cfg: StudyConfig, train: Sequence[dict[str, Any]], base: SettingResult, sigma: float,
                   seeds: Sequence[int], strategies: Sequence[str], columns: Sequence[str],
                   chapter: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The supervised setting at noise ``sigma`` trained again under ``seeds`` (:func:`seed_spread`, ``base``
    reused): every run's rows, and GradProm minus Frozen / Joint / Benchmark-i on the same seed (``reference``)."""
    runs = seed_spread(cfg, train, base.test, {"name": "gaussian", "sigma": sigma}, seeds, strategies=strategies,
                       chapter=chapter, base=base)
    runs = runs[runs["strategy"].isin(strategies)]
    pairs = pd.concat([paired_differences(runs[runs["strategy"].isin(["gradprom", ref])], "strategy", ref, columns)
                       .assign(reference=ref) for ref in ("frozen", "joint", "benchmark-i") if ref in strategies],
                      ignore_index=True)
    return runs, pairs


#: the step variants timed by :func:`step_cost`: label -> make_strategy arguments
STEP_VARIANTS: dict[str, dict[str, Any]] = {
    "joint": {"name": "joint", "diagnostics": False},          # one backward pass of L_IP + λ·L_VR
    "joint + cosine": {"name": "joint", "diagnostics": True},  # what the chapters run, to log Joint's cosine
    "gradprom": {"name": "gradprom"},
    "gradprom (per-layer cos)": {"name": "gradprom", "per_layer": True},
}


def step_cost_of(make_enhancer: Any, make_recogniser: Any, task: str, batch: dict[str, Any], *, lam: float = 0.1,
                 steps: int = 3, rounds: int = 9, variants: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Milliseconds per training step of each variant in :data:`STEP_VARIANTS` on one fixed batch.

    A step is one iteration of :func:`medtask.engine.fit` (zero the gradients, the strategy's
    ``compute_gradients``, the optimiser steps). Every variant gets fresh networks from
    ``make_enhancer()``/``make_recogniser()`` and two warm-up steps; then, ``rounds`` times, each
    variant runs ``steps`` steps in turn. Step times on a shared CPU drift by tens of percent within a
    minute, so each round's times are divided by plain Joint's time *of the same round*:
    ``ratio_to_joint`` is the median of those paired ratios, ``ratio_q1``/``ratio_q3`` their quartiles,
    and ``ms_per_step`` the median over rounds.
    """
    variants = variants or STEP_VARIANTS
    strategies = {}
    for label, kw in variants.items():
        kw = dict(kw)
        strategies[label] = make_strategy(kw.pop("name"), enhancer=make_enhancer(), recogniser=make_recogniser(),
                                          task=task, lam=lam, **kw)
        fit(strategies[label], lambda step: batch, 2, progress=False)  # warm-up
    times: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(rounds):
        for label, strat in strategies.items():
            times[label].append(fit(strat, lambda step: batch, steps, progress=False).seconds / steps)
    df = pd.DataFrame({"variant": list(times), "ms_per_step": [1000 * float(np.median(t)) for t in times.values()]})
    if "joint" in times:
        ratios = {k: np.asarray(v) / np.asarray(times["joint"]) for k, v in times.items()}
        df["ratio_to_joint"] = [float(np.median(ratios[k])) for k in times]
        df["ratio_q1"] = [float(np.quantile(ratios[k], 0.25)) for k in times]
        df["ratio_q3"] = [float(np.quantile(ratios[k], 0.75)) for k in times]
    return df


def step_cost(cfg: StudyConfig, train: Sequence[dict[str, Any]], degradation: Degradation | str | dict,
              task: str = "classification", **kw: Any) -> pd.DataFrame:
    """:func:`step_cost_of` with a chapter's own networks (``cfg``) on one real training batch."""
    degradation = make_degradation(degradation)
    batch = RandomBatches(train, cfg.batch_size, seed=cfg.seed, augment=DegradeBatch(degradation),
                          device=cfg.torch_device)(0)

    def enhancer() -> nn.Module:
        torch.manual_seed(cfg.seed)
        return _enhancer(cfg, degradation.scale)

    def recogniser() -> nn.Module:
        torch.manual_seed(cfg.seed)
        return build_recogniser(cfg, task)

    return step_cost_of(enhancer, recogniser, task, batch, lam=cfg.lam, **kw)


# -- class-activation maps ----------------------------------------------------------------------
def cam_mass_inside(maps: np.ndarray, masks: torch.Tensor) -> np.ndarray:
    """Fraction of each CAM's total activation that falls inside the object mask (foreground focus)."""
    m = masks.cpu().numpy() > 0
    tot = maps.reshape(len(maps), -1).sum(1)
    inside = (maps * m).reshape(len(maps), -1).sum(1)
    return np.where(tot > 0, inside / np.maximum(tot, 1e-12), np.nan)


def _finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values; NaN, without numpy's empty-slice warning on the page, where there are none
    (every CAM of a barely trained network can be zero)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def config_dict(cfg: StudyConfig) -> dict[str, Any]:
    """The config as a plain dict (for ``chapter.save_json``)."""
    return asdict(cfg)


# -- experiments the chapters run whole ---------------------------------------------------------------
@dataclass
class Grid:
    """A grid of settings: the results table (all rows), the cosine log, and each run by its key."""

    table: pd.DataFrame
    cosine_log: pd.DataFrame
    runs: dict[Any, SettingResult]


def run_settings(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]] | DegradedTestSet,
                 settings: dict[Any, dict[str, Any]], *, chapter: Any = None, **common: Any) -> Grid:
    """:func:`run_setting` once per entry of ``settings`` (key -> its keyword arguments: ``degradation``, and any
    of ``supervised``, ``strategies``, ``tag``, recognisers ...), ``common`` keyword arguments for all.
    An entry's ``labels`` label its cosine-log rows, its ``columns`` are added to its table rows."""
    tables, logs, runs = [], [], {}
    for key, kw in settings.items():
        kw = {**common, **kw}
        labels, columns = kw.pop("labels", {}), kw.pop("columns", {})
        res = run_setting(cfg, train, test, kw.pop("degradation"), chapter=chapter, **kw)
        tables.append(res.frame().assign(**columns))
        logs.append(cosine_log(res.histories, **labels))
        runs[key] = res
    return Grid(pd.concat(tables, ignore_index=True), pd.concat(logs, ignore_index=True), runs)


def super_resolution_settings(factors: Sequence[int]) -> dict[int, dict[str, Any]]:
    """:func:`run_settings` entries for bicubic down-sampling by each factor (keys: the factors)."""
    return {f: {"degradation": {"name": "bicubic", "factor": f}, "labels": {"experiment": f"SR x{f}"}} for f in factors}


def both_supervisions(degradation: Degradation | str | dict, experiment: str,
                      settings: Sequence[str] = SETTINGS) -> dict[str, dict[str, Any]]:
    """:func:`run_settings` entries for ``degradation`` in each supervision setting of ``settings`` (keys
    ``"supervised"``, ``"unsupervised"``; cosine logs labelled ``experiment`` and the setting)."""
    return {s: {"degradation": degradation, "supervised": s == "supervised", "labels": {"experiment": f"{experiment} {s}"}}
            for s in check_settings(settings)}


def check_settings(settings: Sequence[str]) -> list[str]:
    """``settings`` as a list, each one of :data:`SETTINGS` (else a clear error)."""
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        raise InvalidParameterError(f"settings={list(settings)!r}: use a non-empty list of {', '.join(SETTINGS)}")
    return list(settings)


def noise_grid(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
               sigmas: Sequence[float], settings: Sequence[str], strategies: Sequence[str],
               clean_recognisers: dict[str, nn.Module], chapter: Any = None) -> Grid:
    """Gaussian noise at every σ in every supervision setting (runs keyed ``(sigma, setting)``), with a
    Benchmark-iii recogniser trained on each σ's degraded images as a reference row (``rec_steps`` from random
    weights; with ``init="zoo"``, the zoo's clean-trained recogniser given the enhancers' further ``steps``)."""
    tables, logs, runs = [], [], {}
    degraded_steps = cfg.steps if cfg.init == "zoo" else cfg.rec_steps
    for sigma in sigmas:
        deg = {"name": "gaussian", "sigma": sigma}
        degraded, _ = train_recognisers(cfg, train, make_degradation(deg), chapter, key=f"rec_s{sigma}",
                                        steps=degraded_steps)
        grid = run_settings(cfg, train, test, {
            (sigma, s): {"degradation": deg, "supervised": s == "supervised", "labels": {"sigma": sigma, "setting": s}}
            for s in settings}, chapter=chapter, strategies=strategies, clean_recognisers=clean_recognisers,
            degraded_recognisers=degraded)
        tables.append(grid.table)
        logs.append(grid.cosine_log)
        runs.update(grid.runs)
    return Grid(pd.concat(tables, ignore_index=True), pd.concat(logs, ignore_index=True), runs)


def start_comparison(cfg: StudyConfig, train: Sequence[dict[str, Any]], runs: dict[Any, SettingResult],
                     clean_recognisers: dict[str, nn.Module], columns: Sequence[str], strategy: str = "gradprom",
                     chapter: Any = None, scratch_lr: float | None = None) -> pd.DataFrame | None:
    """What the zoo start changes: ``strategy`` at the zoo's noise level :data:`ZOO_SIGMA`, supervised (the run
    ``runs[(ZOO_SIGMA, "supervised")]`` of :func:`noise_grid`, started from the zoo) beside the same strategy trained
    from random weights (enhancer and recogniser) for the same steps at ``scratch_lr`` (default ``cfg.lr``; networks
    from random weights want a larger step than fine-tuned ones) on the same test set: ``columns`` of each, with
    ``start``, ``lr`` and ``steps_in_chapter``. ``None`` with ``init="scratch"`` or when the grid lacks that run."""
    sigma = ZOO_SIGMA
    base = runs.get((sigma, "supervised"))
    if cfg.init != "zoo" or base is None or strategy not in base.enhancers:
        return None
    deg = {"name": "gaussian", "sigma": sigma}
    # rec_steps trains no network here (the clean recognisers are given); it only has to be valid from scratch
    lr = cfg.lr if scratch_lr is None else scratch_lr
    scratch_cfg = StudyConfig(**{**config_dict(cfg), "init": "scratch", "rec_steps": max(cfg.rec_steps, 1), "lr": lr,
                                 "lr_rec": lr})
    scratch = run_setting(scratch_cfg, train, base.test, deg,
                          strategies=(strategy,), clean_recognisers=clean_recognisers, chapter=chapter,
                          tag=f"scratch_{degradation_tag(make_degradation(deg))}")
    rows = []
    for start, res, run_lr in (("zoo: " + zoo_enhancer_name(deg, cfg.zoo_data), base, cfg.lr),
                               ("random weights", scratch, lr)):
        row = res.frame().set_index("strategy").loc[strategy]
        rows.append({"strategy": strategy, "sigma": sigma, "start": start, "lr": run_lr, "steps_in_chapter": cfg.steps,
                     **{k: row[k] for k in columns}})
    return pd.DataFrame(rows)


@dataclass
class DiagnosisRun:
    """Chapter C1's training: the clean-trained recognisers, the noise grid and (from the zoo) the start comparison."""

    clean_recognisers: dict[str, nn.Module]
    grid: Grid
    start: pd.DataFrame | None


def diagnosis_grid(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                   sigmas: Sequence[float], settings: Sequence[str], strategies: Sequence[str], chapter: Any,
                   columns: Sequence[str] = ("psnr_db", "ssim", "accuracy", "auc"),
                   scratch_lr: float | None = None) -> DiagnosisRun:
    """Benchmark-ii, then :func:`noise_grid` and :func:`start_comparison`; saves the tables ``results``, ``cosine_log``
    and (from the zoo) ``start_comparison`` in ``chapter``."""
    clean, _ = train_recognisers(cfg, train, None, chapter)
    grid = noise_grid(cfg, train, test, sigmas, settings, strategies, clean, chapter)
    chapter.save_table(grid.table, "results")
    chapter.save_table(grid.cosine_log, "cosine_log")
    start = start_comparison(cfg, train, grid.runs, clean, columns, chapter=chapter, scratch_lr=scratch_lr)
    if start is not None:
        chapter.save_table(start, "start_comparison")
    return DiagnosisRun(clean, grid, start)


#: the variants of the cosine form compared by :func:`cosine_form_ablation`: label -> (StudyConfig change, strategy)
COSINE_FORMS = {"gradprom (global cos)": ({}, None), "gradprom (per-layer cos)": ({"per_layer": True}, "gradprom"),
                "gradprom-lemma (global)": ({}, "gradprom-lemma")}


def cosine_form_ablation(cfg: StudyConfig, train: Sequence[dict[str, Any]], base: SettingResult, sigma: float,
                         clean_recognisers: dict[str, nn.Module], columns: Sequence[str], chapter: Any = None) -> pd.DataFrame:
    """GradProm's cosine taken globally (``base``, already trained), per layer, and in Lemma 3.1's form, on
    ``base``'s test set at noise ``sigma``: ``columns`` of each and its cosine summary."""
    deg = {"name": "gaussian", "sigma": sigma}
    rows, logs = [], []
    for variant, (change, strategy) in COSINE_FORMS.items():
        if strategy is None:
            row, hist = base.frame().set_index("strategy").loc["gradprom"].to_dict(), {"gradprom": base.histories["gradprom"]}
        else:
            vcfg = StudyConfig(**{**config_dict(cfg), **change})
            r = run_setting(vcfg, train, base.test, deg, strategies=(strategy,), clean_recognisers=clean_recognisers,
                            chapter=chapter, tag=f"ablation_{variant.split()[0]}_{'pl' if change else 'gl'}")
            row, hist = r.frame().set_index("strategy").loc[strategy].to_dict(), r.histories
        rows.append({"variant": variant, **{k: row[k] for k in columns}})
        logs.append(cosine_log(hist).assign(strategy=variant))
    summary = cosine_summary(pd.concat(logs)).rename(columns={"strategy": "variant"})
    return pd.DataFrame(rows).merge(summary, on="variant")


def cross_domain(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                 target: DegradedTestSet, sigma: float, strategies: Sequence[str],
                 clean_recognisers: dict[str, nn.Module], chapter: Any = None,
                 settings: Sequence[str] = SETTINGS) -> pd.DataFrame:
    """Enhancers trained at noise ``sigma`` on ``train`` (each supervision setting of ``settings``) applied to
    another domain's degraded ``target``: PSNR/SSIM there beside those on their own test set."""
    rows = [{"setting": "-", "strategy": "degraded input", **image_quality(target.degraded, target.clean)}]
    for setting in check_settings(settings):
        res = run_setting(cfg, train, test, {"name": "gaussian", "sigma": sigma}, supervised=setting == "supervised",
                          strategies=strategies, clean_recognisers=clean_recognisers, chapter=chapter)
        src = res.frame().set_index("strategy")
        for name, enh in res.enhancers.items():
            q = image_quality(enhance(enh, target.degraded, cfg.eval_batch, cfg.torch_device), target.clean)
            rows.append({"setting": setting, "strategy": name, "psnr_db": q["psnr_db"], "ssim": q["ssim"],
                         "source_psnr_db": src.loc[name, "psnr_db"], "source_ssim": src.loc[name, "ssim"]})
    return pd.DataFrame(rows)


def cam_panels(res: SettingResult, clean_classifier: nn.Module, strategies: Sequence[str], cases: Sequence[int],
               classes: Sequence[int], first_row: str = "noisy · benchmark-ii"
               ) -> dict[str, tuple[torch.Tensor, np.ndarray, np.ndarray]]:
    """Grad-CAM rows for :func:`medtask.methods.gradprom.plots.plot_cams`: the degraded input judged by the clean
    classifier, then each strategy's output judged by its own classifier (the clean one for Benchmark-i). Each row
    is ``(images, maps, p)`` with ``p`` the judging classifier's probability of the case's class in ``classes``."""
    idx = torch.as_tensor(list(cases))
    judged = {first_row: (clean_classifier, res.test.degraded[idx])}
    for name in strategies:
        net = res.recognisers.get(name, {"classification": clean_classifier})["classification"]
        judged[f"{name} output"] = (net, res.enhanced[name][idx])
    return {row: (images, grad_cam(net, images, classes=list(classes)), class_probabilities(net, images, classes))
            for row, (net, images) in judged.items()}


def cam_focus(res: SettingResult, clean_classifier: nn.Module, strategies: Sequence[str], label: int = 1,
              shown: int = 4) -> tuple[pd.DataFrame, dict[str, tuple[torch.Tensor, np.ndarray]]]:
    """Share of Grad-CAM mass inside the object mask for the test images of class ``label``: the uniform map, the
    degraded input (clean classifier) and each strategy's output (its own classifier); and the first ``shown``
    cases' CAM rows for a figure."""
    pos = torch.nonzero(res.test.labels == label).flatten()
    masks = res.test.masks[pos]
    panels = cam_panels(res, clean_classifier, strategies, pos.tolist(), [label] * len(pos), "noisy · clean classifier")
    focus = [{"input": "mask area share (uniform map)", "cam_mass_in_polyp": float((masks > 0).float().mean())}]
    focus += [{"input": name, "cam_mass_in_polyp": _finite_mean(cam_mass_inside(maps, masks))}
              for name, (_, maps, _) in panels.items()]
    return pd.DataFrame(focus), {k: tuple(v[:shown] for v in row) for k, row in panels.items()}


#: the auxiliary configurations of the two-auxiliary experiment: label -> (tasks, strategies; None = the chapter's)
TWO_AUXILIARIES: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "classifier": (("classification",), None),
    "segmenter": (("segmentation",), ("joint", "gradprom")),
    "both": (("classification", "segmentation"), ("joint", "gradprom")),
}


def two_auxiliaries(config: dict[str, Any], train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                    degradation: Degradation | str | dict, recognisers: dict[str, nn.Module],
                    strategies: Sequence[str], chapter: Any = None, channels: int = 3) -> Grid:
    """The enhancer trained with a classifier, a segmenter, or both as auxiliaries (:data:`TWO_AUXILIARIES`),
    each starting from ``recognisers`` trained on clean images; rows carry ``auxiliary``, runs are keyed by it."""
    tables, logs, runs = [], [], {}
    for aux, (tasks, strats) in TWO_AUXILIARIES.items():
        cfg = StudyConfig(tasks=tasks, channels=channels, **config)
        res = run_setting(cfg, train, test, degradation, strategies=strats or strategies, chapter=chapter,
                          clean_recognisers={t: recognisers[t] for t in tasks}, tag=f"twoaux_{aux}")
        tables.append(res.frame().assign(auxiliary=aux))
        logs.append(cosine_log(res.histories, experiment=f"auxiliary: {aux}"))
        runs[aux] = res
    return Grid(pd.concat(tables, ignore_index=True), pd.concat(logs, ignore_index=True), runs)


# -- chapter C3's experiments, each one call -------------------------------------------------------------
def extension_configs(base: dict[str, Any], init: str = "scratch", zoo_data: str = "covidct",
                      scratch_lr: float | None = None) -> tuple[StudyConfig, dict[str, Any]]:
    """Chapter C3's two configurations from its common settings ``base`` (:class:`StudyConfig` fields).

    COVID-CT's: one grey channel, the classifier; with ``init="zoo"`` started from the zoo family ``zoo_data``,
    its classifier used as trained (no further ``rec_steps``). The polyp crops' (the ``config`` of
    :func:`two_auxiliaries_on_crops`): with ``init="zoo"``, the supervised enhancers start from CVC-ColonDB's
    denoiser (the crops are cut from the frames it was trained on; zoo family ``cvc``, or its smoke twin), while
    the crops' classifier and U-Net, which the zoo does not hold, train from random weights at ``scratch_lr``."""
    ct = {**base, "init": init, "zoo_data": zoo_data, **({"rec_steps": 0} if init == "zoo" else {})}
    crops = {**base, "init": init}
    if init == "zoo":
        smoke = zoo_data in SMOKE_DATA_TAGS.values()
        crops.update(zoo_data=SMOKE_DATA_TAGS["cvc"] if smoke else "cvc", recognisers_from_zoo=False,
                     lr_rec=base.get("lr", StudyConfig.lr) if scratch_lr is None else scratch_lr)
    return StudyConfig(tasks=("classification",), channels=1, **ct), crops


def super_resolution(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                     factors: Sequence[int], strategies: Sequence[str], clean_recognisers: dict[str, nn.Module],
                     chapter: Any = None) -> Grid:
    """Bicubic down-sampling by each of ``factors`` (:func:`super_resolution_settings`), runs keyed by factor."""
    return run_settings(cfg, train, test, super_resolution_settings(factors), chapter=chapter,
                        strategies=strategies, clean_recognisers=clean_recognisers)


def both_settings(cfg: StudyConfig, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                  degradation: dict[str, Any], experiment: str, strategies: Sequence[str],
                  clean_recognisers: dict[str, nn.Module], chapter: Any = None,
                  settings: Sequence[str] = SETTINGS) -> Grid:
    """``degradation`` in each supervision setting of ``settings`` (:func:`both_supervisions`, cosine logs
    labelled ``experiment``)."""
    return run_settings(cfg, train, test, both_supervisions(degradation, experiment, settings), chapter=chapter,
                        strategies=strategies, clean_recognisers=clean_recognisers)


def cross_domain_target(data_root: Any, size: int, limit: int | None, sigma: float, seed: int) -> DegradedTestSet:
    """CVC-ColonDB's test frames in grey with Gaussian noise ``sigma`` (seed ``seed + 999``): the cross-domain test set."""
    samples = load("CVC-ColonDB", "test", root=data_root, size=size, limit=limit)
    return DegradedTestSet.build([to_grey(s) for s in samples], {"name": "gaussian", "sigma": sigma}, seed=seed + 999)


def polyp_crops(data_root: Any, source_size: Sequence[int], crop: int, seed: int, train_limit: int | None = None,
                test_limit: int | None = None) -> tuple[PolypCrops, PolypCrops]:
    """Polyp / no-polyp crops of CVC-ColonDB's training and test frames loaded at ``source_size`` ([H, W])."""
    src_train = load("CVC-ColonDB", "train", root=data_root, size=tuple(source_size), limit=train_limit)
    src_test = load("CVC-ColonDB", "test", root=data_root, size=tuple(source_size), limit=test_limit)
    return PolypCrops(src_train, crop=crop, seed=seed), PolypCrops(src_test, crop=crop, seed=seed + 1)


def two_auxiliaries_on_crops(config: dict[str, Any], train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                             sigma: float, strategies: Sequence[str], chapter: Any = None) -> tuple[Grid, dict[str, nn.Module]]:
    """A classifier and a segmenter trained on clean crops, then :func:`two_auxiliaries` under Gaussian noise
    ``sigma``; returns the grid and the clean recognisers."""
    cfg_both = StudyConfig(tasks=("classification", "segmentation"), channels=3, **config)
    rec_both, _ = train_recognisers(cfg_both, train, None, chapter, key="crops_rec")
    grid = two_auxiliaries(config, train, test, {"name": "gaussian", "sigma": sigma}, rec_both, strategies, chapter)
    return grid, rec_both
