"""Study B helpers for the chapter: protocol data, training, evaluation, cost, Grad-CAM.

The notebook ``b1_angio_quality`` calls these; each is a few lines of glue over the library:

- :func:`load_sources` / :func:`build_protocol_data` -- DRIVE and CHASE_DB1 through
  :func:`medtask.data.load`, made angiogram-like (:func:`medtask.angio.quality.angiogram_like`) and
  resized, then degraded into graded versions (:func:`medtask.angio.quality.make_versions`), split by
  source image (DRIVE's official train/test; CHASE_DB1's child-level split, validation children in
  training), with a leakage check.
- :func:`train` -- :func:`medtask.training.fit` with a Study B strategy, cosine learning rate, flips.
- :func:`evaluate` -- vessel Dice / IoU / sensitivity inside the field of view, quality accuracy /
  macro-F1 / confusion matrix.
- :func:`cost` -- parameters, FLOPs (``torch.utils.flop_counter.FlopCounterMode``), batch-1 latency.
- :func:`gradcam` -- Grad-CAM (``pytorch_grad_cam``) of a quality classifier.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medtask.angio.model import count_parameters
from medtask.angio.quality import GRADES, angiogram_like, check_no_leakage, make_versions
from medtask.errors import InvalidParameterError
from medtask.training import RandomBatches, TrainResult, fit
from medtask.training.multitask import ClsOnlyStrategy, MultiTaskStrategy, SegOnlyStrategy, split_outputs

STRATEGIES = {"both": MultiTaskStrategy, "seg": SegOnlyStrategy, "cls": ClsOnlyStrategy}
# (dataset, loader split) -> protocol split
SOURCE_SPLITS = {("DRIVE", "train"): "train", ("DRIVE", "test"): "test",
                 ("CHASE_DB1", "trainval"): "train", ("CHASE_DB1", "test"): "test"}


PUBLISHED = {"parameters": 3_434_200, "quality_accuracy": 0.8182}


def published() -> dict[str, float]:
    """The paper's numbers: ``shared/papers/published/angio_qa.csv`` beside the checkout when present, else :data:`PUBLISHED`."""
    import csv

    from medtask.config import repo_root

    path = repo_root().parent / "shared" / "papers" / "published" / "angio_qa.csv"
    if path.is_file():
        with open(path) as fh:
            return {r["quantity"]: float(r["value"]) for r in csv.DictReader(fh)}
    return dict(PUBLISHED)


# -- data ----------------------------------------------------------------------------------------
def resize_source(image: torch.Tensor, mask: torch.Tensor, fov: torch.Tensor, size: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resize an angiogram-like image (antialiased bilinear) and its vessel / FOV masks (area fraction >= 0.5)."""
    img = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    m = F.interpolate((mask > 0).float()[None, None], size=(size, size), mode="area")[0, 0] >= 0.5
    f = F.interpolate(fov.float()[None, None], size=(size, size), mode="area")[0, 0] >= 0.5
    return img.clamp(0, 1), m.long(), f


def load_sources(size: int, data_root: Any = None, datasets: Sequence[str] = ("DRIVE", "CHASE_DB1"),
                 limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Source images per protocol split: ``{"train": [...], "test": [...]}`` of ``{"image" [1,S,S], "mask", "fov", "id"}``.

    Images are converted to angiogram-like at full resolution (CLAHE is resolution-dependent), then
    resized to ``size x size``. ``id`` is ``"<dataset>/<image id>"``. ``limit`` keeps the first
    ``limit`` images of each loader split (smoke runs).
    """
    from medtask import data

    if size % 16 or size < 32:
        raise InvalidParameterError(f"working size must be a multiple of 16 (the model's stride), at least 32; got {size}")
    out: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for (name, split), side in SOURCE_SPLITS.items():
        if name not in datasets:
            continue
        ds = data.load(name, split, root=data_root, limit=limit)
        for s in ds:
            img = angiogram_like(s["image"], s.get("fov"))
            fov = s.get("fov", torch.ones(img.shape[-2:], dtype=torch.bool))
            img, mask, fov = resize_source(img, s["mask"], fov, size)
            out[side].append({"image": img, "mask": mask, "fov": fov, "id": f"{name}/{s['id']}"})
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


def protocol_summary(train: Sequence[dict], test: Sequence[dict]) -> "pandas.DataFrame":  # noqa: F821
    """Counts of versions per split, dataset and grade."""
    import pandas as pd

    rows = [{"split": name, "dataset": s["source"].split("/")[0], "grade": GRADES[s["label"]]}
            for name, split in (("train", train), ("test", test)) for s in split]
    return pd.crosstab([pd.Series([r["split"] for r in rows], name="split"),
                        pd.Series([r["dataset"] for r in rows], name="dataset")],
                       pd.Series([r["grade"] for r in rows], name="grade"))


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
    """Train ``model`` with the ``task`` strategy (``both``/``seg``/``cls``) through :func:`medtask.training.fit`."""
    from medtask.angio.loss import JointLoss

    if task not in STRATEGIES:
        raise InvalidParameterError(f"task must be one of {sorted(STRATEGIES)}, got {task!r}")
    torch.manual_seed(seed)
    strategy = STRATEGIES[task](model, JointLoss(seg_weight=seg_weight, cls_weight=cls_weight), lr=lr, device=device)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(strategy.opt, T_max=max(steps, 1), eta_min=lr * 0.02)
    batches = RandomBatches(dataset, batch_size, seed=seed, augment=flip_augment)
    return fit(strategy, batches, steps, checkpoint=checkpoint, checkpoint_every=max(steps // 4, 25),
               grad_clip=1.0, schedulers={"lr": sched}, progress=progress, desc=getattr(model, "name", None))


# -- evaluation ----------------------------------------------------------------------------------
@torch.inference_mode()
def predict(model: nn.Module, dataset: Sequence[dict[str, Any]], task: str, batch_size: int = 8,
            device: Any = "cpu") -> dict[str, torch.Tensor]:
    """Vessel probabilities ``[N,1,H,W]`` and/or grade probabilities ``[N,K]`` for every sample."""
    from medtask.training.batches import collate

    model.eval().to(device)
    kind = {"seg": "seg", "cls": "quality"}.get(task)
    segs, probs = [], []
    for i in range(0, len(dataset), batch_size):
        batch = collate(list(dataset[i:i + batch_size]))
        out = split_outputs(model(batch["image"].to(device)), kind)
        if "seg" in out:
            segs.append(torch.sigmoid(out["seg"]).float().cpu())
        if "quality" in out:
            probs.append(torch.softmax(out["quality"].float(), 1).cpu())
    res: dict[str, torch.Tensor] = {}
    if segs:
        res["seg"] = torch.cat(segs)
    if probs:
        res["quality"] = torch.cat(probs)
    return res


def evaluate(model: nn.Module, dataset: Sequence[dict[str, Any]], task: str, batch_size: int = 8,
             device: Any = "cpu", threshold: float = 0.5) -> dict[str, Any]:
    """Dice / IoU / sensitivity (vessel class, inside the FOV) and accuracy / macro-F1 / confusion matrix."""
    from medtask.metrics.classification import class_confusion_matrix, macro_f1
    from medtask.metrics.segmentation import SegmentationMeter

    pred = predict(model, dataset, task, batch_size, device)
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


# -- cost ----------------------------------------------------------------------------------------
def count_flops(model: nn.Module, size: int, in_channels: int = 1) -> int:
    """FLOPs of one ``[1, C, size, size]`` forward pass (``FlopCounterMode``: a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    x = torch.rand(1, in_channels, size, size, device=next(model.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


@torch.inference_mode()
def latency(model: nn.Module, size: int, device: Any = "cpu", repeats: int = 10, warmup: int = 2,
            in_channels: int = 1) -> dict[str, float]:
    """Median batch-1 forward time in ms (and FPS) at ``size x size`` on ``device``."""
    dev = torch.device(device)
    model.eval().to(dev)
    x = torch.rand(1, in_channels, size, size, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        sync()
        times.append(time.perf_counter() - t0)
    ms = 1000 * statistics.median(times)
    return {"ms": ms, "fps": 1000.0 / ms, "threads": torch.get_num_threads(), "device": str(dev)}


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
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    wrapped = QualityLogits(model).eval()
    targets = None if classes is None else [ClassifierOutputTarget(int(c)) for c in classes]
    with GradCAM(model=wrapped, target_layers=[target_layer]) as cam:
        return cam(input_tensor=images, targets=targets)


# -- the study's arms ----------------------------------------------------------------------------
#: name -> (role, task, builder key); the model, its ablations, and the baselines, in table order
ARMS: dict[str, tuple[str, str]] = {
    "AngioQANet": ("ours", "both"),
    "w/o L-GSAM": ("ablation", "both"),
    "w/o FAM": ("ablation", "both"),
    "w/o seg->quality link": ("ablation", "both"),
    "seg-only (single task)": ("ablation", "seg"),
    "cls-only (single task)": ("ablation", "cls"),
    "U-Net": ("segmentation baseline", "seg"),
    "Attention U-Net": ("segmentation baseline", "seg"),
    "SA-UNet": ("segmentation baseline", "seg"),
    "TransUNet (UNETR)": ("segmentation baseline", "seg"),
    "MobileNetV2": ("classification baseline", "cls"),
    "EfficientNet-B0": ("classification baseline", "cls"),
    "ResNet-18": ("classification baseline", "cls"),
    "Swin-T": ("classification baseline", "cls"),
}
_VARIANT = {"AngioQANet": "full", "w/o L-GSAM": "no_lgsam", "w/o FAM": "no_fam", "w/o seg->quality link": "no_link",
            "seg-only (single task)": "seg_only", "cls-only (single task)": "cls_only"}
_BASELINE = {"U-Net": "unet", "Attention U-Net": "attention_unet", "SA-UNet": "sa_unet",
             "TransUNet (UNETR)": "transunet", "MobileNetV2": "mobilenet", "EfficientNet-B0": "efficientnet",
             "ResNet-18": "resnet", "Swin-T": "swin_t"}


def build_arm(name: str, size: int, num_classes: int = len(GRADES), baseline_width: int = 64,
              vit_dim: int = 768) -> nn.Module:
    """The network of one arm of :data:`ARMS` (untrained)."""
    from medtask.angio import build_angioqa
    from medtask.angio.baselines import build_classification_baseline, build_segmentation_baseline

    if name in _VARIANT:
        return build_angioqa(_VARIANT[name], num_classes=num_classes)
    if name not in _BASELINE:
        raise InvalidParameterError(f"unknown arm {name!r}; choose from {list(ARMS)}")
    if ARMS[name][1] == "seg":
        return build_segmentation_baseline(_BASELINE[name], size, width=baseline_width, vit_dim=vit_dim)
    return build_classification_baseline(_BASELINE[name], num_classes)


def run_arm(name: str, train_set: Sequence[dict[str, Any]], test_set: Sequence[dict[str, Any]], *, size: int,
            steps: int, batch_size: int, lr: float, seed: int, device: Any, checkpoint: Any = None,
            baseline_width: int = 64, vit_dim: int = 768, seg_weight: float = 1.0, cls_weight: float = 1.0,
            latency_repeats: int = 10) -> tuple[nn.Module, dict[str, Any]]:
    """Build, train (same data, steps, batch and learning rate for every arm), evaluate and cost one arm."""
    from medtask.angio.baselines import LIBRARY

    role, task = ARMS[name]
    torch.manual_seed(seed)
    model = build_arm(name, size, baseline_width=baseline_width, vit_dim=vit_dim)
    res = train(model, task, train_set, steps=steps, batch_size=batch_size, lr=lr, seed=seed, checkpoint=checkpoint,
                device=device, seg_weight=seg_weight, cls_weight=cls_weight)
    metrics = evaluate(model, test_set, task, device=device)
    row: dict[str, Any] = {"model": name, "role": role, "task": task,
                           "source": LIBRARY.get(_BASELINE.get(name, ""), "medtask.angio")}
    dev = torch.device(device)
    if dev.type == "cuda":  # GPU latency where one is available, before cost() moves the model to the CPU
        gpu = latency(model, size, dev, repeats=latency_repeats)
        row.update({"gpu_ms": gpu["ms"], "gpu_fps": gpu["fps"]})
    row.update(cost(model, size, repeats=latency_repeats))
    row.update({k: metrics.get(k, float("nan")) for k in ("dice", "iou", "sensitivity", "accuracy", "macro_f1")})
    row["train_s_per_step"] = res.seconds_per_step if res.steps > res.resumed_from else res.seconds / max(res.steps, 1)
    row["final_loss"] = float(np.mean([h["loss"] for h in res.history[-10:]])) if res.history else float("nan")
    row["confusion"] = metrics.get("confusion")
    model.to(device)
    return model, row


def arcade_images(size: int, data_root: Any = None, limit: int | None = None) -> list[dict[str, Any]]:
    """ARCADE mini-subset angiograms as ``{"image": [1,S,S], "id"}``: grey, CLAHE, percentile rescale (no labels used)."""
    from skimage.exposure import equalize_adapthist

    from medtask import data

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
