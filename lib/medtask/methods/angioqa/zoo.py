"""Study B's zoo entries: AngioQANet, its ablations and its baselines on DRIVE at 256 px.

Data: DRIVE made angiogram-like by the chapter's own pipeline (:func:`medtask.methods.angioqa.study.source_samples`:
green channel, CLAHE at full resolution, resized to 256×256). Training uses DRIVE's 16 first official
training images; the last 4 (``val_count=4``) are the validation split of the curve; DRIVE's 20 test
images are the card's test split. (The chapter adds CHASE_DB1; the zoo keeps to DRIVE, the issue's
target, and none of its networks sees a test image of either dataset.)

Quality grades follow today's protocol (:mod:`medtask.methods.angioqa.quality`), unchanged:

- validation and test sets are :func:`~medtask.methods.angioqa.study.build_protocol_data` versions
  (seed 0; 6 versions per image on test, as the chapter's ``cpu`` profile; 15 on the 4 validation images so
  the accuracy curve moves in steps of 1/60, not 1/24);
- training draws a *fresh* version for every sample of every batch (:class:`GradedVersions`: a random
  grade, then :func:`~medtask.methods.angioqa.quality.degrade` with a generator seeded from the batch),
  after the geometric augmentation of the clean source: rotation by any angle (reflected borders, so no
  black corners that would look like a truncated field of view), zoomed random crops (0.8–1.25×), flips,
  mild brightness/contrast jitter (±10 %, inside the protocol's natural variation, far from its
  exposure faults). Faults are applied to what the network sees, so a crop never cuts a truncation band
  out of an image graded for it.

Training: the chapter's strategies (:data:`~medtask.methods.angioqa.study.STRATEGIES`: joint Dice + BCE
+ CE for AngioQANet, Dice + BCE for the segmentation baselines, CE for the classifiers), AdamW at 1e-3 (Swin-T
1e-4: :data:`OVERRIDES`), cosine learning rate to 2 % of its start, gradient clipping at 1, batches of 8 crops
of 128 px, in float32 (the UNETR stand-in of TransUNet works on 128-px tiles and segments a whole image tile by
tile, :class:`~medtask.methods.angioqa.baselines.Tiled`). Scores
(:func:`~medtask.methods.angioqa.study.evaluate`, the chapter's) on whole 256-px images: vessel Dice / IoU /
sensitivity inside the field of view over every grade, ``dice_good`` over the good grade only, quality accuracy
and macro-F1. AngioQANet's plateau metric is the mean of vessel Dice and quality accuracy.

Steps: 3,000 for every entry (the same budget for every arm, as in the chapter), chosen from the cost of
one training step (batch making and its graded degradation included), measured with
``OMP_NUM_THREADS=1 python benchmarks/zoo_step_cost.py NAME --steps 2`` on 2026-12-02 on a free core of this
kind of machine (that day an AMD EPYC with AVX2 and no AVX-512; wall and CPU time agreed within 1 %):

=================================  ===========  =======  ===================
entry                              CPU s/step    steps   hours on one core
=================================  ===========  =======  ===================
``angioqanet-drive``                     2.45     3000    2.0
``angioqanet-no-lgsam-drive``            2.51     3000    2.1
``angioqanet-no-fam-drive``              2.13     3000    1.8
``angioqanet-no-link-drive``             2.25     3000    1.9
``angioqanet-seg-only-drive``            2.20     3000    1.8
``angioqanet-cls-only-drive``            0.97     3000    0.8
``vessels-unet-drive``                   1.28     3000    1.1
``vessels-attention-unet-drive``         1.11     3000    0.9
``vessels-sa-unet-drive``                0.99     3000    0.8
``vessels-unetr-drive``                  0.98     3000    0.8
``quality-mobilenetv2-drive``            0.43     3000    0.4
``quality-efficientnet-b0-drive``        0.73     3000    0.6
``quality-resnet18-drive``               0.90     3000    0.8
``quality-swin-t-drive``                 3.13     3000    2.6
=================================  ===========  =======  ===================

(UNETR measured beside two trainings, after it moved to 128-px tiles; on 256-px crops it took 5.25 s.)
All fourteen: about 18.5 hours on one core. 3,000 steps of 8 are 24,000 graded versions (1,500 per source
image, each one fresh); the validation curve (every 300 steps) says whether that reached a plateau.

Why 128-px crops and float32. A training must finish inside one working session, whose run folders do
not survive it; at 192-px crops AngioQANet's step took 7.45 s on this machine (4.5 hours for 3,000 steps),
at 128 px 2.3 s. ``fit(precision="bf16")`` (bfloat16 autocast) was adopted for one hour and dropped: on a
CPU with AVX-512 it ran seven of the nine first entries' steps at 0.49-0.67 of float32's
(``benchmarks/zoo_step_variants.py``, zoo/README.md), but on this AVX2-only CPU it made AngioQANet's step
4.5 times slower (28 s against 6.2 s at 192 px; a plain 3×3 convolution 27 times slower), and the recipe
must not depend on the machine it happens to run on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from medtask.data.augment import affine, color_jitter, compose, flips, zoom_crops
from medtask.engine.batches import RandomBatches
from medtask.engine.loop import Strategy
from medtask.errors import InvalidParameterError
from medtask.methods.angioqa import study
from medtask.methods.angioqa.baselines import LIBRARY
from medtask.methods.angioqa.loss import JointLoss
from medtask.methods.angioqa.quality import GRADES, degrade
from medtask.zoo.registry import Entry, register

#: The working size (square, a multiple of AngioQANet's stride 16) and DRIVE's held-out validation images.
DRIVE_SIZE = 256
DRIVE_DATA = [{"dataset": "DRIVE", "size": DRIVE_SIZE, "options": {"val_count": 4}}]
#: Versions per source image of the fixed validation / test sets (seed 0, the chapter's protocol).
EVAL_VERSIONS = {"val": 15, "test": 6}
EVAL_SEED = 0
#: The common learning rate (AdamW, cosine to 2 % of it); an arm with an ``lr_factor`` trains at that times it.
LR = 1e-3


@lru_cache(maxsize=16)
def _sources(name: str, split: str, size: int, options: tuple[tuple[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    return tuple(study.source_samples(name, split, size, **dict(options)))


def sources(d: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """Angiogram-like source images of one data item's ``split`` (held in memory once per process)."""
    options = dict(d.get("options", {}))
    return list(_sources(d["dataset"], split, int(d["size"]), tuple(sorted(options.items()))))


@lru_cache(maxsize=16)
def _protocol(name: str, split: str, size: int, options: tuple[tuple[str, Any], ...], versions: int,
              seed: int) -> tuple[dict[str, Any], ...]:
    srcs = list(_sources(name, split, size, options))
    return tuple(study.build_protocol_data({"train": [], "test": srcs}, versions, seed)[1])


def protocol_set(d: dict[str, Any], split: str, versions: int | None = None, seed: int = EVAL_SEED) -> list[dict[str, Any]]:
    """The fixed graded versions of ``split`` (``versions`` per source image; default :data:`EVAL_VERSIONS`)."""
    options = dict(d.get("options", {}))
    n = versions or EVAL_VERSIONS.get(split, EVAL_VERSIONS["test"])
    return list(_protocol(d["dataset"], split, int(d["size"]), tuple(sorted(options.items())), n, seed))


class GradedVersions:
    """``RandomBatches`` augment: every sample becomes a fresh version of a random grade under today's protocol.

    The grade is drawn uniformly (balanced, as :func:`~medtask.methods.angioqa.quality.make_versions` makes
    them); the faults are :func:`~medtask.methods.angioqa.quality.degrade`'s, from a numpy generator seeded by
    (``seed``, a draw of the batch's generator, the sample's index), so a resumed run sees the same batches.
    Adds ``label`` (the grade) and ``faults``.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def __call__(self, batch: dict[str, Any], g: torch.Generator) -> dict[str, Any]:
        n = batch["image"].shape[0]
        grades = torch.randint(0, len(GRADES), (n,), generator=g)
        draw = int(torch.randint(0, 2**31 - 1, (), generator=g))
        images, faults = [], []
        for i in range(n):
            rng = np.random.default_rng([self.seed, draw, i])
            img, f = degrade(batch["image"][i], batch["mask"][i], int(grades[i]), rng)
            images.append(img)
            faults.append("+".join(f))
        out = dict(batch)
        out["image"], out["label"], out["faults"] = torch.stack(images), grades, faults
        return out


@dataclass
class AngioEntry(Entry):
    """One network of Study B trained with the chapter's strategy for its task (``both``, ``seg`` or ``cls``)."""

    arm: str = "AngioQANet"
    task: str = "both"
    baseline_width: int = 16
    vit_dim: int = 192

    def __post_init__(self) -> None:
        if self.task not in study.STRATEGIES:
            raise InvalidParameterError(f"zoo entry {self.name}: task must be one of {sorted(study.STRATEGIES)}")
        self.hyperparameters = {
            "lr": LR, "weight_decay": 1e-4, "batch_size": 8, "crop": 128, "lr_schedule": "cosine",
            "lr_min_factor": 0.02, "seed": 0, "seg_weight": 1.0, "cls_weight": 1.0,
            "augment": {"affine": {"scale": [1.0, 1.0], "degrees": 180, "translate": 0.0, "padding": "reflection"},
                        "zoom_crop": {"scale": [0.8, 1.25], "p_foreground": 0.0}, "flips": "h+v",
                        "color_jitter": {"brightness": 0.1, "contrast": 0.1},
                        "grades": "fresh version of a uniform random grade per sample (quality.degrade)"},
            "eval_versions": dict(EVAL_VERSIONS), "eval_seed": EVAL_SEED,
            **self.hyperparameters}

    def _size(self) -> int:
        return int(self.data[0]["size"])

    def architecture(self) -> dict[str, Any]:
        arch = {"arm": self.arm, "task": self.task, "in_channels": 1, "num_classes": len(GRADES),
                "image_size": self._size()}
        if study.ARMS[self.arm].is_baseline:
            arch.update({"library": LIBRARY[study.ARMS[self.arm].network], "baseline_width": self.baseline_width,
                         "vit_dim": self.vit_dim})
        return arch

    def build(self) -> nn.Module:
        return study.build_arm(self.arm, self._size(), baseline_width=self.baseline_width, vit_dim=self.vit_dim)

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        hp = self.hyperparameters
        return study.STRATEGIES[self.task](model, JointLoss(seg_weight=hp["seg_weight"], cls_weight=hp["cls_weight"]),
                                           lr=hp["lr"], weight_decay=hp["weight_decay"], device=device)

    def augmentation(self):
        """The training augmentation (geometry and jitter on the clean source, then a fresh graded version)."""
        hp, aug = self.hyperparameters, self.hyperparameters["augment"]
        rot, zoom, jit = aug["affine"], aug["zoom_crop"], aug["color_jitter"]
        return compose(affine(tuple(rot["scale"]), rot["degrees"], rot["translate"], padding=rot["padding"]),
                       zoom_crops(hp["crop"], tuple(zoom["scale"]), zoom["p_foreground"]), flips,
                       color_jitter(jit["brightness"], jit["contrast"], 0.0), GradedVersions(hp["seed"]))

    def batches(self, device: torch.device):
        hp = self.hyperparameters
        train = [s for d in self.data for s in sources(d, "train")]
        return RandomBatches(train, hp["batch_size"], seed=hp["seed"], augment=self.augmentation(), device=device)

    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """The chapter's scores on the fixed graded versions of ``split`` (every data item together)."""
        n = self.hyperparameters["eval_versions"][split]
        versions = [s for d in self.data for s in protocol_set(d, split, n, self.hyperparameters["eval_seed"])]
        scores = study.evaluate(model, versions, self.task, device=device)
        out = {k: float(v) for k, v in scores.items() if k != "confusion"}
        if self.task in ("both", "seg"):
            good = [s for s in versions if s["label"] == 0]
            out["dice_good"] = float(study.evaluate(model, good, "seg", device=device)["dice"])
        if self.task == "both":
            out["dice_accuracy"] = (out["dice"] + out["accuracy"]) / 2
        return out


#: CPU seconds of one thread per training step, measured by benchmarks/zoo_step_cost.py (see the docstring).
STEP_COST: dict[str, float] = {
    "angioqanet-drive": 4.16, "vessels-unet-drive": 1.96, "vessels-attention-unet-drive": 1.50,
    "vessels-sa-unet-drive": 1.42, "vessels-unetr-drive": 3.30, "quality-mobilenetv2-drive": 0.60,
    "quality-efficientnet-b0-drive": 0.81, "quality-resnet18-drive": 0.98, "quality-swin-t-drive": 2.98}
STEPS = 3000

#: name -> (arm, steps) for every arm of the chapter (study.ARMS, whose names, tasks and builders these are):
#: the model, its five ablations (trained by the same recipe, so that the ablation table compares networks
#: trained alike) and the eight baselines.
STUDY_B_ENTRIES: dict[str, tuple[str, int]] = {study.zoo_name(arm): (arm, STEPS) for arm in study.ARMS}
#: per-arm changes to the common recipe: the learning rate of an arm with an ``lr_factor`` (study.ARMS). Swin-T
#: trains at 1e-4. At the common 1e-3 (AdamW, batch 8, no warm-up; Swin's own recipe pairs 1e-3 with batches of
#: 1,024 and 20 warm-up epochs) its training loss settled at ln 3 and its validation accuracy stayed at 0.333,
#: chance, at every point of 1,800 steps: it predicted one grade. At 1e-4, 150 steps already gave 0.533
#: (2026-12-03, the same batches). A baseline gets the learning rate it trains at. (UNETR trains on 128-px
#: crops, its tile, like the others: no override.)
OVERRIDES: dict[str, dict[str, Any]] = {arm: {"lr": study.arm_lr(arm, LR)} for arm, a in study.ARMS.items()
                                        if a.lr_factor != 1.0}
METRIC = {"both": "dice_accuracy", "seg": "dice", "cls": "accuracy"}


def _entry(name: str, arm: str, steps: int, data: list[dict[str, Any]], *, eval_every: int | None = None,
           hyperparameters: dict[str, Any] | None = None, smoke: bool = False, baseline_width: int = 16,
           vit_dim: int = 192) -> AngioEntry:
    role, task = study.ARMS[arm].role, study.ARMS[arm].task
    what = {"both": "vessel segmentation + quality grade", "seg": "vessel segmentation",
            "cls": "quality grade"}[task]
    return AngioEntry(
        name=name, study="B", description=f"{arm} ({role}), {what} on {data[0]['dataset']} angiogram-like images "
                                          f"at {data[0]['size']} px" + (" (smoke tests only)" if smoke else ""),
        steps=steps, eval_every=eval_every or max(steps // 10, 1), metric=METRIC[task], higher_is_better=True,
        data=[dict(d) for d in data], arm=arm, task=task, baseline_width=baseline_width, vit_dim=vit_dim,
        hyperparameters={**OVERRIDES.get(arm, {}), **(hyperparameters or {})}, smoke=smoke)


for _name, (_arm, _steps) in STUDY_B_ENTRIES.items():
    register(_entry(_name, _arm, _steps, DRIVE_DATA))

#: The smoke twins: phantom vessel trees at 32 px, the smoke profile's baseline widths, 3 steps of 2.
SMOKE_DATA = [{"dataset": "phantom-vessels", "size": 32, "options": {"n": 4}}]
SMOKE_SUFFIX = "-phantom"


def smoke_name(name: str) -> str:
    """The smoke twin of entry ``name`` (``angioqanet-drive`` -> ``angioqanet-phantom``)."""
    return name.removesuffix("-drive") + SMOKE_SUFFIX


for _name, (_arm, _steps) in STUDY_B_ENTRIES.items():
    register(_entry(smoke_name(_name), _arm, 3, SMOKE_DATA, eval_every=2, smoke=True, baseline_width=8, vit_dim=48,
                    hyperparameters={"batch_size": 2, "crop": 32, "eval_versions": {"val": 3, "test": 3}}))
