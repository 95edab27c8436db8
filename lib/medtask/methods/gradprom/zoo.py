"""Study C's zoo entries: the auxiliary task networks on clean images and the enhancers on their own loss.

Working sizes: COVID-CT slices in one grey channel at 96×96 (C1, C3), CVC-ColonDB frames in RGB at
112×128 (C2; block split, unseen videos), the issue's "Study C at ≥ 96 px". Each data set's official
``val`` split gives the curve, its ``test`` split the card.

``resnet18-covidct``    the chapters' classifier (:func:`medtask.nn.classifiers.build_classifier`, ResNet-18,
                        one input channel), Benchmark-ii's training (:class:`~medtask.methods.gradprom.strategies.RecogniserOnly`
                        on clean slices, cross-entropy, AdamW with weight decay 0.05); flips, rotations,
                        zooms and shifts, brightness and contrast jitter. Scores: accuracy, balanced accuracy, AUC.
``unet-cvc``            the C2 auxiliary (:func:`medtask.nn.unet.build_unet`, base 16, 4 levels; the chapter's
                        ``cpu`` profile has base 8 with 3 levels at 56×64, too shallow for 112×128 frames),
                        Benchmark-ii's training (cross-entropy + soft Dice) on whole frames with ERFNet's
                        augmentation (:data:`medtask.data.augment.FOREGROUND_ZOOM`: rotation and shift,
                        polyp-centred zoomed crops, flips, colour jitter). Scores: mIoU and polyp Dice.
``srresnet-covidct-gaussian0.2``  the enhancer (:func:`~medtask.methods.gradprom.networks.build_enhancer`,
                        the chapters' ``cpu`` size: 4 residual blocks × 16 channels) trained alone on
                        L_IP = MSE (Benchmark-i, :class:`~medtask.methods.gradprom.strategies.EnhancerOnly`)
                        to remove Gaussian noise σ = 0.2, on random 64-px crops with fresh noise every
                        batch (:class:`~medtask.methods.gradprom.strategies.DegradeBatch`).
``srresnet-cvc-gaussian0.2``      the same on CVC-ColonDB's RGB frames (C2's denoiser).
``srresnet-covidct-bicubic-x2``, ``srresnet-covidct-bicubic-x4``  the super-resolution enhancers of C3.

Enhancers are scored on a fixed degraded copy of the split (:class:`~medtask.methods.gradprom.study.DegradedTestSet`,
seed 12345 as the chapters'): ``psnr_db`` and ``ssim`` of the clamped output against the clean images,
``input_psnr_db`` of the degraded input (bicubically up-sampled for SR) and ``gain_db``, their difference.

Steps, chosen from the cost of one training step (batch making included), measured with
``OMP_NUM_THREADS=1 python benchmarks/zoo_step_cost.py NAME --steps 2`` on 2026-12-01 on this 2-core
machine while it ran ~5× its cores' load: CPU seconds of the one thread (``time.process_time``, steadier
than wall time on a shared machine; wall time was 1.5–2× more), so the hours are estimates for a free core:

==================================  ===========  =======  ===================
entry                               CPU s/step    steps   hours on one core
==================================  ===========  =======  ===================
``resnet18-covidct`` (batch 32)           0.87     3000    0.7
``unet-cvc`` (batch 16)                   1.32     4000    1.5
``srresnet-covidct-gaussian0.2``          0.35     8000    0.8
``srresnet-cvc-gaussian0.2``              0.34     8000    0.8
``srresnet-covidct-bicubic-x2``           0.16     8000    0.4
``srresnet-covidct-bicubic-x4``           0.14     8000    0.3
==================================  ===========  =======  ===================

All six: about 4.5 hours on one core (the classifier sees each training slice ~230 times, the U-Net each
frame ~280 times, under augmentation; the enhancers 128,000 noisy 64-px crops, fresh noise each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from medtask.data.augment import FOREGROUND_ZOOM, affine, color_jitter, compose, flips, foreground_zoom, random_crops
from medtask.engine.batches import RandomBatches
from medtask.engine.loop import Strategy
from medtask.metrics.image import image_quality
from medtask.methods.gradprom.degradations import make_degradation
from medtask.methods.gradprom.networks import build_enhancer
from medtask.methods.gradprom.strategies import DegradeBatch, EnhancerOnly, RecogniserOnly
from medtask.methods.gradprom.study import (
    SMOKE_DATA_TAGS,
    DegradedTestSet,
    enhance,
    recognise,
    zoo_enhancer_name,
    zoo_recogniser_name,
)
from medtask.nn.classifiers import build_classifier
from medtask.nn.unet import build_unet
from medtask.zoo.registry import Entry, load_item, load_split, register

COVID_DATA = [{"dataset": "COVID-CT", "size": [96, 96], "options": {"channels": 1}}]
CVC_DATA = [{"dataset": "CVC-ColonDB", "size": [112, 128], "options": {"split_rule": "blocks"}}]
#: the chapters' seed of their fixed degraded test copies (StudyConfig.seed 0 + 12345)
EVAL_SEED = 12345


@lru_cache(maxsize=16)
def _degraded(name: str, split: str, size: tuple[int, int], options: tuple[tuple[str, Any], ...],
              degradation: tuple[tuple[str, Any], ...]) -> DegradedTestSet:
    ds = load_split(name, split, size, dict(options))
    return DegradedTestSet.build(ds, dict(degradation), seed=EVAL_SEED)


def degraded_set(d: dict[str, Any], split: str, degradation: dict[str, Any]) -> DegradedTestSet:
    """The fixed degraded copy of ``split`` (seed :data:`EVAL_SEED`): X, Y and the labels or masks."""
    return _degraded(d["dataset"], split, tuple(d["size"]), tuple(sorted(d.get("options", {}).items())),
                     tuple(sorted(degradation.items())))


#: the degradation a recogniser's scores are taken under: none (clean images; σ = 0 keeps them as they are)
CLEAN = {"name": "gaussian", "sigma": 0.0}


@dataclass
class RecogniserEntry(Entry):
    """An auxiliary task network trained alone on clean images (Benchmark-ii of the chapters)."""

    task: str = "classification"
    arch: str = "resnet18"
    channels: int = 1
    num_classes: int = 2
    unet_base: int = 16
    unet_levels: int = 4

    def __post_init__(self) -> None:
        jitter = {"brightness": 0.25, "contrast": 0.25, "saturation": 0.25 if self.channels == 3 else 0.0}
        # the classifier's second recipe (2026-12-03): the first (Adam, zooms 0.9-1.1, 10 degrees, jitter 0.15,
        # 4,000 steps) fit its 425 training slices (loss 0.014) and reached test accuracy 0.645; this one adds
        # decoupled weight decay and stronger augmentation and stops at 3,000 steps (STUDY_C_STEPS)
        classify = {"weight_decay": 0.05,
                    "augment": {"affine": {"scale": [0.8, 1.25], "degrees": 15, "translate": 0.1}, "flips": "h+v",
                                "color_jitter": jitter}}
        self.hyperparameters = {
            "lr": 1e-3, "batch_size": 32 if self.task == "classification" else 16, "lr_schedule": "cosine",
            "lr_min_factor": 0.02, "seed": 0,
            "loss": "cross-entropy" + (" + soft Dice" if self.task == "segmentation" else ""),
            **(classify if self.task == "classification" else {"augment": FOREGROUND_ZOOM}),
            **self.hyperparameters}

    def architecture(self) -> dict[str, Any]:
        if self.task == "classification":
            return {"arch": self.arch, "in_channels": self.channels, "num_classes": self.num_classes}
        return {"arch": "unet", "in_channels": self.channels, "num_classes": self.num_classes,
                "base": self.unet_base, "levels": self.unet_levels}

    def build(self) -> nn.Module:
        if self.task == "classification":
            return build_classifier(self.arch, self.num_classes, self.channels)
        return build_unet(self.channels, self.num_classes, base=self.unet_base, levels=self.unet_levels)

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        hp = self.hyperparameters
        return RecogniserOnly(model.to(device), self.task, on="clean", lr=hp["lr"],
                              weight_decay=hp.get("weight_decay", 0.0))

    def batches(self, device: torch.device):
        hp, aug = self.hyperparameters, self.hyperparameters["augment"]
        if self.task == "segmentation":  # whole frames, zoomed about a polyp half the time (ERFNet's recipe)
            augment = foreground_zoom(tuple(self.data[0]["size"]), aug)
        else:
            rot, jit = aug["affine"], aug["color_jitter"]
            augment = compose(affine(tuple(rot["scale"]), rot["degrees"], rot["translate"]), flips,
                              color_jitter(jit["brightness"], jit["contrast"], jit["saturation"]))
        return RandomBatches(load_item(self.data[0], "train"), hp["batch_size"], seed=hp["seed"], augment=augment,
                             device=device)

    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """Accuracy / balanced accuracy / AUC (classifier) or mIoU / Dice (U-Net) on the clean ``split``."""
        test = degraded_set(self.data[0], split, CLEAN)
        return {k: float(v) for k, v in recognise(model, test.clean, self.task, test, 32, device).items()}


@dataclass
class EnhancerEntry(Entry):
    """The enhancer (SR-ResNet) trained alone on its own loss, MSE to the clean image (Benchmark-i)."""

    degradation: dict[str, Any] | None = None
    channels: int = 1
    depth: int = 4
    width: int = 16

    def __post_init__(self) -> None:
        self.degradation = dict(self.degradation or {"name": "gaussian", "sigma": 0.2})
        # the degradation defines the weights: it is in the hashed spec (the run key) and on the card
        self.hyperparameters = {"lr": 1e-3, "batch_size": 16, "crop": 64, "lr_schedule": "cosine",
                                "lr_min_factor": 0.02, "seed": 0, "loss": "MSE to the clean image",
                                "augment": {"random_crop": True, "flips": "h+v", "degradation": "fresh every batch"},
                                **self.hyperparameters, "degradation": self.degradation}

    def _scale(self) -> int:
        return make_degradation(self.degradation).scale

    def architecture(self) -> dict[str, Any]:
        return {"arch": "srresnet", "in_channels": self.channels, "scale": self._scale(), "depth": self.depth,
                "width": self.width, "batch_norm": True, "image_residual": True}

    def build(self) -> nn.Module:
        return build_enhancer(self.channels, scale=self._scale(), depth=self.depth, width=self.width)

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        return EnhancerOnly(model.to(device), lr=self.hyperparameters["lr"])

    def batches(self, device: torch.device):
        hp = self.hyperparameters
        augment = compose(random_crops(hp["crop"]), flips, DegradeBatch(self.degradation, supervised=True, flip=False))
        return RandomBatches(load_item(self.data[0], "train"), hp["batch_size"], seed=hp["seed"], augment=augment,
                             device=device)

    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """PSNR / SSIM of the output and of the (up-sampled) degraded input against the clean ``split``."""
        test = degraded_set(self.data[0], split, self.degradation)
        out = image_quality(enhance(model, test.degraded, 32, device), test.clean, structure="ssim")
        base = image_quality(test.bicubic(), test.clean, structure="ssim")
        return {"psnr_db": out["psnr_db"], "ssim": out["ssim"], "input_psnr_db": base["psnr_db"],
                "input_ssim": base["ssim"], "gain_db": out["psnr_db"] - base["psnr_db"]}


#: CPU seconds of one thread per training step (benchmarks/zoo_step_cost.py), by entry.
STEP_COST: dict[str, float] = {
    "resnet18-covidct": 0.87, "unet-cvc": 1.32, "srresnet-covidct-gaussian0.2": 0.35, "srresnet-cvc-gaussian0.2": 0.34,
    "srresnet-covidct-bicubic-x2": 0.16, "srresnet-covidct-bicubic-x4": 0.14}


def _recogniser(name: str, task: str, d: list[dict[str, Any]], steps: int, *, channels: int, smoke: bool = False,
                hyperparameters: dict[str, Any] | None = None, **kw: Any) -> RecogniserEntry:
    what = {"classification": "ResNet-18 classifier", "segmentation": "U-Net segmenter"}[task]
    return RecogniserEntry(
        name=name, study="C", description=f"{what} on clean {d[0]['dataset']} images at "
                                          f"{'×'.join(map(str, d[0]['size']))} px (Benchmark-ii)"
                                          + (" (smoke tests only)" if smoke else ""),
        steps=steps, eval_every=max(steps // 10, 1), metric="accuracy" if task == "classification" else "dice",
        higher_is_better=True, data=[dict(x) for x in d], task=task, channels=channels, smoke=smoke,
        hyperparameters=dict(hyperparameters or {}), **kw)


def _enhancer(name: str, degradation: dict[str, Any], d: list[dict[str, Any]], steps: int, *, channels: int,
              smoke: bool = False, hyperparameters: dict[str, Any] | None = None, **kw: Any) -> EnhancerEntry:
    deg = make_degradation(degradation)
    return EnhancerEntry(
        name=name, study="C", description=f"SR-ResNet enhancer for {deg.label} on {d[0]['dataset']} at "
                                          f"{'×'.join(map(str, d[0]['size']))} px, trained on its own MSE (Benchmark-i)"
                                          + (" (smoke tests only)" if smoke else ""),
        steps=steps, eval_every=max(steps // 10, 1), metric="psnr_db", higher_is_better=True,
        data=[dict(x) for x in d], degradation=dict(degradation), channels=channels, smoke=smoke,
        hyperparameters=dict(hyperparameters or {}), **kw)


GAUSSIAN = {"name": "gaussian", "sigma": 0.2}
SR2, SR4 = {"name": "bicubic", "factor": 2}, {"name": "bicubic", "factor": 4}

#: name -> steps (see :data:`STEP_COST`)
STUDY_C_STEPS = {"resnet18-covidct": 3000, "unet-cvc": 4000, "srresnet-covidct-gaussian0.2": 8000,
                 "srresnet-cvc-gaussian0.2": 8000, "srresnet-covidct-bicubic-x2": 8000,
                 "srresnet-covidct-bicubic-x4": 8000}

for _tag, _d, _ch in (("covidct", COVID_DATA, 1), ("cvc", CVC_DATA, 3)):
    _task = "classification" if _tag == "covidct" else "segmentation"
    _name = zoo_recogniser_name(_task, _tag)
    register(_recogniser(_name, _task, _d, STUDY_C_STEPS[_name], channels=_ch))
    _name = zoo_enhancer_name(GAUSSIAN, _tag)
    register(_enhancer(_name, GAUSSIAN, _d, STUDY_C_STEPS[_name], channels=_ch))
for _sr in (SR2, SR4):
    _name = zoo_enhancer_name(_sr, "covidct")
    register(_enhancer(_name, _sr, COVID_DATA, STUDY_C_STEPS[_name], channels=1))

#: The smoke twins: phantom grey slices (for COVID-CT) and phantom polyps (for CVC-ColonDB) at 32 px, a few steps.
SMOKE_GREY = [{"dataset": "phantom-classes", "size": [32, 32], "options": {"n": 16}}]
SMOKE_RGB = [{"dataset": "phantom-polyp", "size": [32, 32], "options": {"n": 16}}]
_SMOKE_HP = {"batch_size": 4, "crop": 32}


def smoke_name(name: str) -> str:
    """The smoke twin of entry ``name``, its data tag swapped (``resnet18-covidct`` -> ``resnet18-phantomct``): a
    chapter's smoke profile starts from the twins with ``zoo_data`` set to the twin tag (:data:`SMOKE_DATA_TAGS`)."""
    for real, twin in SMOKE_DATA_TAGS.items():
        if f"-{real}" in name:
            return name.replace(f"-{real}", f"-{twin}", 1)
    raise ValueError(f"{name!r} names no Study C data tag ({', '.join(SMOKE_DATA_TAGS)})")


register(_recogniser(smoke_name("resnet18-covidct"), "classification", SMOKE_GREY, 3, channels=1, smoke=True,
                     hyperparameters={"batch_size": 4}))
register(_recogniser(smoke_name("unet-cvc"), "segmentation", SMOKE_RGB, 3, channels=3, smoke=True,
                     unet_base=4, unet_levels=2, hyperparameters={"batch_size": 4}))
register(_enhancer(smoke_name("srresnet-covidct-gaussian0.2"), GAUSSIAN, SMOKE_GREY, 3, channels=1, smoke=True,
                   depth=1, width=8, hyperparameters=_SMOKE_HP))
register(_enhancer(smoke_name("srresnet-cvc-gaussian0.2"), GAUSSIAN, SMOKE_RGB, 3, channels=3, smoke=True,
                   depth=1, width=8, hyperparameters=_SMOKE_HP))
register(_enhancer(smoke_name("srresnet-covidct-bicubic-x2"), SR2, SMOKE_GREY, 3, channels=1, smoke=True,
                     depth=1, width=8, hyperparameters=_SMOKE_HP))
register(_enhancer(smoke_name("srresnet-covidct-bicubic-x4"), SR4, SMOKE_GREY, 3, channels=1, smoke=True,
                   depth=1, width=8, hyperparameters=_SMOKE_HP))
