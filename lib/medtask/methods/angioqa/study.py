"""Study B (AngioQANet) study: protocol data, training, evaluation, cost, Grad-CAM, the arms.

The notebook ``b1_angio_quality`` calls these; each is a few lines of glue over the library:

- :func:`load_sources` / :func:`build_protocol_data` -- DRIVE and CHASE_DB1 through
  :func:`medtask.data.load`, made angiogram-like (:func:`medtask.methods.angioqa.quality.angiogram_like`) and
  resized, then degraded into graded versions (:func:`medtask.methods.angioqa.quality.make_versions`), split by
  source image (DRIVE's official train/test; CHASE_DB1's child-level split, validation children in
  training), with a leakage check.
- :func:`train` -- :func:`medtask.engine.fit` with a Study B strategy, cosine learning rate, flips.
- :func:`evaluate` -- vessel Dice / IoU / sensitivity inside the field of view, quality accuracy /
  macro-F1 / confusion matrix.
- :func:`cost` -- parameters, FLOPs and batch-1 latency (:mod:`medtask.engine.timing`).
- :func:`gradcam` -- Grad-CAM (:func:`medtask.engine.gradcam.grad_cam`) of the quality logits.

The published numbers and the protocol's summary table are in :mod:`medtask.methods.angioqa.report`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from skimage.exposure import equalize_adapthist
from torch import nn

from medtask import data, zoo
from medtask.data import sources as data_sources
from medtask.engine import RandomBatches, TrainResult, fit
from medtask.engine.gradcam import grad_cam
from medtask.engine.predict import predict as run_batches
from medtask.engine.signatures import network_signature, samples_signature, weights_digest
from medtask.engine.timing import count_flops, latency
from medtask.errors import InvalidParameterError
from medtask.methods.angioqa.baselines import (
    LIBRARY,
    build_classification_baseline,
    build_segmentation_baseline,
)
from medtask.methods.angioqa.loss import JointLoss
from medtask.methods.angioqa.model import build_angioqa, count_parameters
from medtask.methods.angioqa.quality import GRADES, angiogram_like, check_no_leakage, make_versions
from medtask.methods.angioqa.strategies import (
    ClsOnlyStrategy,
    MultiTaskStrategy,
    SegOnlyStrategy,
    split_outputs,
)
from medtask.metrics.classification import class_confusion_matrix, macro_f1
from medtask.metrics.segmentation import SegmentationMeter

STRATEGIES = {"both": MultiTaskStrategy, "seg": SegOnlyStrategy, "cls": ClsOnlyStrategy}
# (dataset, loader split) -> protocol split
SOURCE_SPLITS = {("DRIVE", "train"): "train", ("DRIVE", "test"): "test",
                 ("CHASE_DB1", "trainval"): "train", ("CHASE_DB1", "test"): "test"}


# -- data ----------------------------------------------------------------------------------------
def resize_source(image: torch.Tensor, mask: torch.Tensor, fov: torch.Tensor, size: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resize an angiogram-like image (antialiased bilinear) and its vessel / FOV masks (area fraction >= 0.5)."""
    img = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    m = F.interpolate((mask > 0).float()[None, None], size=(size, size), mode="area")[0, 0] >= 0.5
    f = F.interpolate(fov.float()[None, None], size=(size, size), mode="area")[0, 0] >= 0.5
    return img.clamp(0, 1), m.long(), f


#: the training sources of the protocol when the chapter is not told others
DEFAULT_SOURCES = ("DRIVE", "CHASE_DB1")


def source_splits(name: str, test_dataset: str | None = None, data_root: Any = None) -> list[tuple[str, str]]:
    """``[(loader split, protocol side)]`` of one source: DRIVE's and CHASE_DB1's from :data:`SOURCE_SPLITS`, any
    other vessel dataset's (registered folder, ``folder:`` path) ``train`` and, where it has one
    (:func:`medtask.data.sources.split_names`), ``val`` for training, ``test`` for testing. With a ``test_dataset``
    every source only trains, and the test side is that dataset's test split."""
    canonical = {"drive": "DRIVE", "chase-db1": "CHASE_DB1", "chase_db1": "CHASE_DB1"}.get(name.lower(), name)
    pairs = [(split, side) for (n, split), side in SOURCE_SPLITS.items() if n == canonical]
    if not pairs:
        val = [("val", "train")] if "val" in data_sources.split_names(name, data_root) else []
        pairs = [("train", "train"), *val, ("test", "test")]
    return [(split, side) for split, side in pairs if test_dataset is None or side == "train"]


def chapter_datasets(datasets: Sequence[str], test_dataset: str | None = None, data_root: Any = None,
                     demo: str = "ARCADE") -> list[str]:
    """The chapter's datasets: every vessel source (checked to be segmentation data), the test set where
    given, and the demonstration set ``demo``."""
    names = [*datasets, *([test_dataset] if test_dataset and test_dataset not in datasets else [])]
    if not names:
        raise InvalidParameterError("datasets is empty: give at least one vessel segmentation dataset (DRIVE, "
                                    "CHASE_DB1, a `medtask data add` NAME or folder:/path)")
    return [*(data_sources.check_task(n, "segmentation", data_root) for n in names), demo]


def load_sources(size: int, data_root: Any = None, datasets: Sequence[str] = DEFAULT_SOURCES,
                 limit: int | None = None, test_dataset: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Source images per protocol split: ``{"train": [...], "test": [...]}`` of ``{"image" [1,S,S], "mask", "fov", "id"}``.

    Images are converted to angiogram-like at full resolution (CLAHE is resolution-dependent), then
    resized to ``size x size``. ``id`` is ``"<dataset>/<image id>"``. ``limit`` keeps the first
    ``limit`` images of each loader split (smoke runs). Each of ``datasets`` gives its splits by
    :func:`source_splits`; ``test_dataset`` (any vessel segmentation dataset) gives the test side instead.
    Masks must be binary (vessel / background); an image without a field-of-view mask has all of its frame as one.
    """
    if size % 16 or size < 32:
        raise InvalidParameterError(f"working size must be a multiple of 16 (the model's stride), at least 32; got {size}")
    out: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    plan = [(name, split, side) for name in datasets for split, side in source_splits(name, test_dataset, data_root)]
    if test_dataset is not None:
        plan += [(test_dataset, "test", "test")]
    for name, split, side in plan:
        samples = source_samples(name, split, size, data_root=data_root, limit=limit)
        out[side] += samples
    return out


def source_samples(name: str, split: str, size: int, *, data_root: Any = None, limit: int | None = None,
                   **options: Any) -> list[dict[str, Any]]:
    """One loader split made angiogram-like at full resolution, then resized: ``{"image" [1,S,S], "mask", "fov", "id"}``.

    ``options`` go to :func:`medtask.data.load` (e.g. ``val_count`` for DRIVE's held-out images); the protocol
    needs binary vessel masks.
    """
    out = []
    ds = data.load(name, split, root=data_root, limit=limit, **options)
    if len(ds.classes) != 2:
        raise InvalidParameterError(f"{name} has classes {list(ds.classes)}; the protocol needs binary vessel "
                                    "masks (background, vessel)")
    for s in ds:
        img = angiogram_like(s["image"], s.get("fov"))
        fov = s.get("fov", torch.ones(img.shape[-2:], dtype=torch.bool))
        img, mask, fov = resize_source(img, s["mask"], fov, size)
        out.append({"image": img, "mask": mask, "fov": fov, "id": f"{name}/{s['id']}"})
    return out


def build_protocol_data(sources: dict[str, list[dict[str, Any]]], versions: int, seed: int = 0
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Degraded, graded versions of each split's sources (seeded); raises if a source is on both sides."""
    train = make_versions(sources["train"], versions, seed)
    test = make_versions(sources["test"], versions, seed)
    fov = {s["id"]: s["fov"] for side in sources.values() for s in side}
    for s in train + test:
        s["fov"] = fov[s["source"]]
    check_no_leakage(train, test)
    return train, test


def flip_augment(batch: dict[str, Any], g: torch.Generator) -> dict[str, Any]:
    """Random horizontal / vertical flips of image, vessel mask and FOV together (quality is flip-invariant)."""
    out = dict(batch)
    for dim in (-1, -2):
        if torch.rand((), generator=g) < 0.5:
            for k in ("image", "mask", "fov"):
                if k in out and isinstance(out[k], torch.Tensor):
                    out[k] = out[k].flip(dim)
    return out


# -- training ------------------------------------------------------------------------------------
def train(model: nn.Module, task: str, dataset: Sequence[dict[str, Any]], *, steps: int, batch_size: int,
          lr: float = 1e-3, seed: int = 0, checkpoint: Any = None, device: Any = "cpu",
          seg_weight: float = 1.0, cls_weight: float = 1.0, progress: bool = True) -> TrainResult:
    """Train ``model`` with the ``task`` strategy (``both``/``seg``/``cls``) through :func:`medtask.engine.fit`.

    The finished ``checkpoint`` (keyed on the steps by :func:`arm_checkpoint`) keeps no optimiser state.
    """
    if task not in STRATEGIES:
        raise InvalidParameterError(f"task must be one of {sorted(STRATEGIES)}, got {task!r}")
    torch.manual_seed(seed)
    strategy = STRATEGIES[task](model, JointLoss(seg_weight=seg_weight, cls_weight=cls_weight), lr=lr, device=device)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(strategy.opt, T_max=max(steps, 1), eta_min=lr * 0.02)
    batches = RandomBatches(dataset, batch_size, seed=seed, augment=flip_augment)
    return fit(strategy, batches, steps, checkpoint=checkpoint, checkpoint_every=max(steps // 4, 25),
               grad_clip=1.0, schedulers={"lr": sched}, progress=progress, desc=getattr(model, "name", None),
               keep_optimizer=False)


# -- evaluation ----------------------------------------------------------------------------------
def predict(model: nn.Module, dataset: Sequence[dict[str, Any]], task: str, batch_size: int = 8,
            device: Any = "cpu") -> dict[str, torch.Tensor]:
    """Vessel probabilities ``[N,1,H,W]`` and/or grade probabilities ``[N,K]`` for every sample (``model`` left in eval mode)."""
    model.eval().to(device)
    kind = {"seg": "seg", "cls": "quality"}.get(task)

    def probabilities(out: Any) -> dict[str, torch.Tensor]:
        out = split_outputs(out, kind)
        res = {"seg": torch.sigmoid(out["seg"]).float().cpu()} if "seg" in out else {}
        if "quality" in out:
            res["quality"] = torch.softmax(out["quality"].float(), 1).cpu()
        return res

    batches = run_batches(model, dataset, batch_size=batch_size, device=device, output=probabilities)
    return {k: torch.cat([b[k] for b in batches]) for k in ("seg", "quality") if batches and k in batches[0]}


def evaluate(model: nn.Module, dataset: Sequence[dict[str, Any]], task: str, batch_size: int = 8,
             device: Any = "cpu", threshold: float = 0.5) -> dict[str, Any]:
    """Dice / IoU / sensitivity (vessel class, inside the FOV) and accuracy / macro-F1 / confusion matrix."""
    return score(predict(model, dataset, task, batch_size, device), dataset, threshold)


def source_dataset(sample: dict[str, Any]) -> str:
    """The dataset a protocol version comes from (its source id is ``"<dataset>/<image id>"``)."""
    return str(sample.get("source", sample.get("id", ""))).split("/")[0]


def score(pred: dict[str, torch.Tensor], dataset: Sequence[dict[str, Any]], threshold: float = 0.5) -> dict[str, Any]:
    """The scores of :func:`evaluate` from :func:`predict`'s probabilities for ``dataset``."""
    out: dict[str, Any] = {}
    if "seg" in pred:
        meter = SegmentationMeter(2, ignore_index=255)
        for i, s in enumerate(dataset):
            target = s["mask"].clone()
            if "fov" in s:
                target[~s["fov"]] = 255
            meter.update((pred["seg"][i, 0] >= threshold).long(), target)
        m = meter.compute()
        out.update({"dice": m["dice"], "iou": m["iou_fg"], "sensitivity": m["sensitivity"]})
    if "quality" in pred:
        labels = torch.tensor([int(s["label"]) for s in dataset])
        k = pred["quality"].shape[1]
        cm = class_confusion_matrix(pred["quality"], labels, k)
        out.update({"accuracy": float(cm.diag().sum() / cm.sum().clamp(min=1)),
                    "macro_f1": macro_f1(pred["quality"], labels, k), "confusion": cm.tolist()})
    return out


def score_by_dataset(pred: dict[str, torch.Tensor], dataset: Sequence[dict[str, Any]], threshold: float = 0.5
                     ) -> dict[str, dict[str, Any]]:
    """:func:`score` of each source dataset's versions separately (``{"DRIVE": {...}, "CHASE_DB1": {...}}``)."""
    names = [source_dataset(s) for s in dataset]
    out = {}
    for name in dict.fromkeys(names):
        idx = [i for i, n in enumerate(names) if n == name]
        out[name] = score({k: v[idx] for k, v in pred.items()}, [dataset[i] for i in idx], threshold)
    return out


# -- cost ----------------------------------------------------------------------------------------


def cost(model: nn.Module, size: int, repeats: int = 10) -> dict[str, float]:
    """Parameters, GFLOPs and CPU batch-1 latency / FPS of ``model`` at ``size``."""
    model = model.cpu()
    lat = latency(model, size, "cpu", repeats=repeats)
    return {"params": count_parameters(model), "gflops": count_flops(model, size) / 1e9,
            "cpu_ms": lat["ms"], "cpu_fps": lat["fps"]}


# -- Grad-CAM ------------------------------------------------------------------------------------
class QualityLogits(nn.Module):
    """Wrap a model so that it returns only the quality logits (what Grad-CAM needs)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return split_outputs(self.model(x), "quality")["quality"]


def gradcam(model: nn.Module, target_layer: nn.Module, images: torch.Tensor,
            classes: Sequence[int] | None = None) -> np.ndarray:
    """Grad-CAM maps ``[N, H, W]`` in [0, 1] of the quality logit (``classes``; default the predicted one)."""
    return grad_cam(QualityLogits(model).eval(), images, target_layer, classes)


# -- the study's arms ----------------------------------------------------------------------------
class Arm(NamedTuple):
    """One arm of the study: its role in the tables, its task, its network and its zoo entry's stem."""

    role: str      # "ours", "ablation", "segmentation baseline" or "classification baseline"
    task: str      # "both", "seg" or "cls" (the strategy of :data:`STRATEGIES` that trains it)
    network: str   # a build_angioqa variant for AngioQANet and its ablations, a baselines name otherwise
    zoo_stem: str  # its zoo entry is ``<zoo_stem>-<zoo_data>`` (:func:`zoo_name`)
    lr_factor: float = 1.0  # its learning rate is this times the common one (:func:`arm_lr`)

    @property
    def is_baseline(self) -> bool:
        return self.role.endswith("baseline")


#: name -> :class:`Arm`: the model, its ablations, and the baselines, in table order
ARMS: dict[str, Arm] = {
    "AngioQANet": Arm("ours", "both", "full", "angioqanet"),
    "w/o L-GSAM": Arm("ablation", "both", "no_lgsam", "angioqanet-no-lgsam"),
    "w/o FAM": Arm("ablation", "both", "no_fam", "angioqanet-no-fam"),
    "w/o seg->quality link": Arm("ablation", "both", "no_link", "angioqanet-no-link"),
    "seg-only (single task)": Arm("ablation", "seg", "seg_only", "angioqanet-seg-only"),
    "cls-only (single task)": Arm("ablation", "cls", "cls_only", "angioqanet-cls-only"),
    "U-Net": Arm("segmentation baseline", "seg", "unet", "vessels-unet"),
    "Attention U-Net": Arm("segmentation baseline", "seg", "attention_unet", "vessels-attention-unet"),
    "SA-UNet": Arm("segmentation baseline", "seg", "sa_unet", "vessels-sa-unet"),
    "TransUNet (UNETR)": Arm("segmentation baseline", "seg", "transunet", "vessels-unetr"),
    "MobileNetV2": Arm("classification baseline", "cls", "mobilenet", "quality-mobilenetv2"),
    "EfficientNet-B0": Arm("classification baseline", "cls", "efficientnet", "quality-efficientnet-b0"),
    "ResNet-18": Arm("classification baseline", "cls", "resnet", "quality-resnet18"),
    # Swin-T at a tenth of the common learning rate; why: medtask.methods.angioqa.zoo.OVERRIDES
    "Swin-T": Arm("classification baseline", "cls", "swin_t", "quality-swin-t", lr_factor=0.1),
}
INITS = ("scratch", "zoo")


def arm_lr(name: str, lr: float) -> float:
    """The learning rate arm ``name`` trains at when the common one is ``lr`` (its :attr:`Arm.lr_factor` times)."""
    return round(lr * ARMS[name].lr_factor, 12)


def zoo_name(arm: str, zoo_data: str = "drive") -> str:
    """The zoo entry arm ``arm`` starts from with ``init="zoo"``: ``drive`` (the trained zoo) or ``phantom`` (smoke)."""
    if arm not in ARMS:
        raise InvalidParameterError(f"unknown arm {arm!r}; choose from {list(ARMS)}")
    return f"{ARMS[arm].zoo_stem}-{zoo_data}"


def build_arm(name: str, size: int, num_classes: int = len(GRADES), baseline_width: int = 64,
              vit_dim: int = 768) -> nn.Module:
    """The network of one arm of :data:`ARMS` (untrained)."""
    if name not in ARMS:
        raise InvalidParameterError(f"unknown arm {name!r}; choose from {list(ARMS)}")
    arm = ARMS[name]
    if not arm.is_baseline:
        return build_angioqa(arm.network, num_classes=num_classes)
    if arm.task == "seg":
        return build_segmentation_baseline(arm.network, size, width=baseline_width, vit_dim=vit_dim)
    return build_classification_baseline(arm.network, num_classes)


def arm_checkpoint(chapter: Any, name: str, model: nn.Module, train_set: Sequence[dict[str, Any]],
                   params: dict[str, Any]) -> Any:
    """The arm's checkpoint in ``chapter``, keyed on its settings, network, start weights, training
    samples, the chapter's data and the source of the training code (see ``Chapter.artefact_key``)."""
    slug = "".join(c if c.isalnum() else "_" for c in name.lower())
    key = chapter.artefact_key(
        {**params, "arm": name, "network": network_signature(model), "start_weights": weights_digest({"m": model}),
         "train": samples_signature(train_set)},
        code=(sys.modules[STRATEGIES[ARMS[name].task].__module__], sys.modules[JointLoss.__module__], train, fit))
    return chapter.checkpoint(slug, key=key)


def run_arm(name: str, train_set: Sequence[dict[str, Any]], test_set: Sequence[dict[str, Any]], *, size: int,
            steps: int, batch_size: int, lr: float, seed: int, device: Any, chapter: Any = None,
            baseline_width: int = 64, vit_dim: int = 768, seg_weight: float = 1.0, cls_weight: float = 1.0,
            latency_repeats: int = 10, init: str = "scratch", zoo_data: str = "drive"
            ) -> tuple[nn.Module, dict[str, Any]]:
    """Build, train (same data, steps and batch for every arm, learning rate :func:`arm_lr`), evaluate and cost one arm.

    ``init="zoo"`` starts the arm from its zoo entry (:func:`zoo_name`; noted in the ``chapter``'s provenance),
    which the zoo trained from random weights by one recipe for every arm; ``steps`` then train it further
    (0: the zoo's network as it is, no training and no checkpoint). With a ``chapter`` the training resumes
    from, or reuses, the arm's keyed checkpoint there (its key includes the start's weights).
    """
    if init not in INITS:
        raise InvalidParameterError(f"init must be one of {INITS}, got {init!r}")
    if init == "scratch" and steps < 1:
        raise InvalidParameterError("init='scratch' with steps=0 would score untrained networks: give steps >= 1, "
                                    "or start from the zoo with init='zoo'")
    arm = ARMS[name]
    role, task = arm.role, arm.task
    torch.manual_seed(seed)
    model = build_arm(name, size, baseline_width=baseline_width, vit_dim=vit_dim)
    start = "random weights"
    if init == "zoo":
        start = f"zoo: {zoo_name(name, zoo_data)}"
        if chapter is not None:
            chapter.start_from_zoo(model, zoo_name(name, zoo_data))
        else:
            zoo.load_into(model, zoo_name(name, zoo_data))
    res, lr = TrainResult(), arm_lr(name, lr)
    if steps > 0:
        checkpoint = None if chapter is None else arm_checkpoint(
            chapter, name, model, train_set, {"task": task, "size": size, "steps": steps, "batch_size": batch_size,
                                              "lr": lr, "seed": seed, "seg_weight": seg_weight,
                                              "cls_weight": cls_weight})
        res = train(model, task, train_set, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                    checkpoint=checkpoint, device=device, seg_weight=seg_weight, cls_weight=cls_weight)
    pred = predict(model, test_set, task, device=device)
    metrics = score(pred, test_set)
    row: dict[str, Any] = {"model": name, "role": role, "task": task, "start": start, "steps_in_chapter": steps,
                           "source": LIBRARY[arm.network] if arm.is_baseline else "medtask.methods.angioqa",
                           "by_dataset": {ds: {k: v for k, v in m.items() if k != "confusion"}
                                          for ds, m in score_by_dataset(pred, test_set).items()}}
    dev = torch.device(device)
    if dev.type == "cuda":  # GPU latency where one is available, before cost() moves the model to the CPU
        gpu = latency(model, size, dev, repeats=latency_repeats)
        row.update({"gpu_ms": gpu["ms"], "gpu_fps": gpu["fps"]})
    row.update(cost(model, size, repeats=latency_repeats))
    row.update({k: metrics.get(k, float("nan")) for k in ("dice", "iou", "sensitivity", "accuracy", "macro_f1")})
    row["train_s_per_step"] = (float("nan") if res.steps == 0 else res.seconds_per_step
                               if res.steps > res.resumed_from else res.seconds / res.steps)
    row["final_loss"] = float(np.mean([h["loss"] for h in res.history[-10:]])) if res.history else float("nan")
    row["confusion"] = metrics.get("confusion")
    model.to(device)
    return model, row


def arcade_images(size: int, data_root: Any = None, limit: int | None = None) -> list[dict[str, Any]]:
    """ARCADE mini-subset angiograms as ``{"image": [1,S,S], "id"}``: grey, CLAHE, percentile rescale (no labels used)."""
    ds = data.load("ARCADE", "test", root=data_root, limit=limit)
    out = []
    for s in ds:
        grey = s["image"].mean(0).numpy()
        eq = equalize_adapthist(grey, clip_limit=0.01).astype(np.float32)
        lo, hi = np.percentile(eq, [1.0, 99.0])
        img = torch.from_numpy(np.clip((eq - lo) / max(hi - lo, 1e-6), 0, 1))[None]
        img = F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        out.append({"image": img.clamp(0, 1), "id": f"ARCADE/{s['id']}"})
    return out


def chosen_arms(leave_out: Mapping[str, str] | None = None) -> list[str]:
    """The arms of :data:`ARMS` a run trains and scores, in table order: all but those of ``leave_out`` (arm name ->
    the reason the page gives). AngioQANet, the model every table is about, cannot be left out."""
    leave_out = dict(leave_out or {})
    unknown = sorted(set(leave_out) - set(ARMS))
    if unknown:
        raise InvalidParameterError(f"leave_out names no arm: {unknown}; the arms are {list(ARMS)}")
    if "AngioQANet" in leave_out:
        raise InvalidParameterError("AngioQANet cannot be left out: every table of the chapter compares against it")
    return [name for name in ARMS if name not in leave_out]


def run_arms(train_set: Sequence[dict[str, Any]], test_set: Sequence[dict[str, Any]], *,
             chapter: Any = None, log: Callable[[str], None] = print,
             leave_out: Mapping[str, str] | None = None, **kw: Any) -> tuple[pd.DataFrame, dict[str, nn.Module]]:
    """:func:`run_arm` for every arm but those of ``leave_out`` (:func:`chosen_arms`; same data, start, steps and
    settings ``kw``): their table (one row per arm) and trained networks.

    With a ``chapter``, each arm's checkpoint is keyed there (slug: the arm's name, lower case, ``_``
    for others, then the key's digest), and the rows are saved as its ``arms.json``.
    """
    rows, models = [], {}
    for name in chosen_arms(leave_out):
        model, row = run_arm(name, train_set, test_set, chapter=chapter, **kw)
        models[name] = model
        rows.append(row)
        log(f"{name:26s} params {row['params']:>11,}  {row['train_s_per_step']:.2f} s/step  "
            f"dice {row['dice']:.3f}  acc {row['accuracy']:.3f}")
    if chapter is not None:
        chapter.save_json(rows, "arms")
    return pd.DataFrame(rows), models


def accuracy_by_fault(model: nn.Module, test_set: Sequence[dict[str, Any]], device: Any = "cpu") -> pd.DataFrame:
    """The quality head's accuracy and the number of test versions per primary fault (``none`` for clean ones),
    one row per fault (column ``faults``)."""
    pred = predict(model, test_set, "both", device=device)
    per_fault = pd.DataFrame({"faults": [s["faults"].split(":")[0] or "none" for s in test_set],
                              "grade": [GRADES[s["label"]] for s in test_set]})
    per_fault["correct"] = (pred["quality"].argmax(1).numpy() == np.array([s["label"] for s in test_set]))
    by_fault = per_fault.groupby("faults")["correct"].agg(["mean", "count"]).rename(columns={"mean": "accuracy"})
    return by_fault.reset_index()


def latency_vs_unet(size: int, n_params: int, repeats: int = 10) -> tuple[pd.DataFrame, dict[str, float], dict[str, float]]:
    """CPU latency of an untrained AngioQANet and of the classic U-Net (64-1024 channels) at ``size``: the table
    (with each model's time relative to U-Net's) and both latency records."""
    unet_full = build_segmentation_baseline("unet", size, width=64)
    lat_ours = latency(build_angioqa("full"), size, "cpu", repeats=repeats)
    lat_unet = latency(unet_full, size, "cpu", repeats=repeats)
    speed = pd.DataFrame([{"model": "AngioQANet", "params": n_params, **lat_ours},
                          {"model": "U-Net (64-1024)", "params": count_parameters(unet_full), **lat_unet}])
    speed["ratio_to_unet"] = speed["ms"] / lat_unet["ms"]
    return speed, lat_ours, lat_unet


def arcade_predictions(model: nn.Module, size: int, data_root: Any = None, limit: int | None = None,
                       device: Any = "cpu") -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """ARCADE's angiograms (:func:`arcade_images`) and the model's vessel and grade probabilities on them."""
    arcade = arcade_images(size, data_root=data_root, limit=limit)
    return arcade, predict(model, arcade, "both", device=device)
