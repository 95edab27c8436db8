"""Summaries of the datasets for the data chapter: overview, per-split statistics, stand-ins."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from medtask.data import commands, manifests, phantoms
from medtask.data.io import Dataset

#: The splits the data chapter describes, per dataset present here.
CHAPTER_SPLITS: dict[str, tuple[str, ...]] = {
    "CVC-ColonDB": ("train", "val", "test"),
    "BCCD": ("train", "val", "test"),
    "COVID-CT": ("train", "val", "test"),
    "DRIVE": ("train", "test"),
    "CHASE_DB1": ("train", "val", "test"),
    "ARCADE": ("test",),
}

#: Paper datasets that are not available here, and what stands in for them (and why).
SUBSTITUTES: list[dict[str, str]] = [
    {"study": "A (MVMICNet)", "paper dataset": "ChestX-Det / ChestX-Det10 images (detection)",
     "here": "annotations only (no images)", "stand-in": "BCCD",
     "why": "the only complete detection set with boxes here: VOC boxes of 3 classes, official splits"},
    {"study": "A (MVMICNet)", "paper dataset": "CVC-ColonDB (segmentation)", "here": "complete",
     "stand-in": "-", "why": "the paper's own dataset"},
    {"study": "B (angiography QA)", "paper dataset": "private cerebral DSA angiograms",
     "here": "not public", "stand-in": "DRIVE + CHASE_DB1 (converted angiogram-like), ARCADE mini subset",
     "why": "public vessel masks; ARCADE is real X-ray angiography but only 22 images with stenosis masks"},
    {"study": "C (GradProm)", "paper dataset": "ISIC 2018 (segmentation, diagnosis)", "here": "Task 3 labels only",
     "stand-in": "CVC-ColonDB, DRIVE (segmentation)", "why": "RGB images with binary masks"},
    {"study": "C (GradProm)", "paper dataset": "CAMUS (echocardiography segmentation)", "here": "absent",
     "stand-in": "CVC-ColonDB, DRIVE (segmentation)", "why": "no echocardiography data is available"},
    {"study": "C (GradProm)", "paper dataset": "COVID-CT (classification)", "here": "complete",
     "stand-in": "-", "why": "the paper's own dataset"},
    {"study": "C (GradProm)", "paper dataset": "Lizard (cross-domain test)", "here": "absent",
     "stand-in": "a cross-domain pair of available sets (e.g. train CVC-ColonDB, test DRIVE)",
     "why": "keeps the point of the experiment: enhancement trained on one domain, tested on another"},
]


def overview(root: str | os.PathLike | None = None, checksums: bool = False) -> list[dict[str, Any]]:
    """Every manifest with presence/verification, licence, homepage and the studies that use it."""
    rows = []
    for row in commands.list_datasets(root, checksums=checksums):
        m = manifests.load_manifest(row["name"])
        rows.append({**row, "title": m["title"], "homepage": m["homepage"],
                     "split rule": "official" if m["splits"]["official"] else "ours (see manifest)",
                     "roles": "; ".join(f"{s['study']}: {s['role']}" for s in m["studies"])})
    return rows


def split_stats(ds: Dataset) -> dict[str, Any]:
    """Count, image sizes, channels and class statistics of one loaded split."""
    sizes = ds.image_sizes()
    hs, ws = [s[0] for s in sizes], [s[1] for s in sizes]
    distinct = sorted(set(sizes))
    row: dict[str, Any] = {
        "dataset": ds.name, "split": ds.split, "n": len(ds), "task": ds.task,
        "size (HxW)": (f"{distinct[0][0]}x{distinct[0][1]}" if len(distinct) == 1 else
                       f"{len(distinct)} sizes, H {min(hs)}-{max(hs)}, W {min(ws)}-{max(ws)}") if sizes else "-",
        "channels": int(ds.records[0].image.shape[2]) if len(ds) else None,
    }
    if ds.task == "segmentation" and len(ds):
        fg = [float((r.mask > 0).mean()) for r in ds.records]
        row["foreground %"] = round(100 * float(np.mean(fg)), 2)
        row["classes"] = ", ".join(ds.classes[1:])
    elif ds.task == "detection":
        counts = ds.class_counts()
        row["objects"] = ", ".join(f"{c} {counts[c]}" for c in ds.classes[1:])
        row["images without objects"] = sum(1 for r in ds.records if len(r.labels) == 0)
    elif ds.task == "classification":
        counts = ds.class_counts()
        row["classes"] = ", ".join(f"{c} {counts[c]}" for c in ds.classes)
    return row


def _small(ds: Dataset, size: int) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.fromarray(r.image if r.image.shape[2] == 3 else r.image[..., 0])
                       .resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0 for r in ds.records]


def neighbour_difference(ds: Dataset, size: int = 64) -> np.ndarray:
    """Mean absolute difference (0-1) between consecutive samples' images, resized to ``size`` x ``size``.

    For video frames this is small inside a sequence and jumps at sequence boundaries.
    """
    small = _small(ds, size)
    return np.array([float(np.abs(a - b).mean()) for a, b in zip(small[:-1], small[1:])])


def random_pair_difference(ds: Dataset, n_pairs: int = 1000, min_gap: int = 20, seed: int = 0,
                           size: int = 64) -> np.ndarray:
    """The same difference for random pairs of samples at least ``min_gap`` positions apart (the reference)."""
    small = _small(ds, size)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_pairs and len(small) > min_gap:
        a, b = (int(x) for x in rng.integers(0, len(small), 2))
        if abs(a - b) >= min_gap:
            out.append(float(np.abs(small[a] - small[b]).mean()))
    return np.array(out)


def describe(name: str, splits: tuple[str, ...] | None = None, root: str | os.PathLike | None = None,
             limit: int | None = None, grid_split: str | None = None, grid_samples: int = 8
             ) -> tuple[list[dict[str, Any]], Dataset | None]:
    """Statistics of every split of ``name`` and a few samples of one split (for a grid).

    Returns ``([], None)`` when the dataset is absent - it is reported, never replaced. Each split
    is decoded, summarised and released before the next one (memory stays at one split).
    """
    from medtask.data import load

    splits = splits or CHAPTER_SPLITS[manifests.resolve_name(name)]
    try:
        manifests.dataset_dir(name, root)
    except manifests.DatasetNotFoundError:
        return [], None
    rows = []
    for sp in splits:
        ds = load(name, sp, root=root, limit=limit)
        rows.append(split_stats(ds))
        del ds
    grid = load(name, grid_split or splits[-1], root=root, limit=grid_samples)
    return rows, grid


def phantom_samples(n: int = 4, size: int = 96, seed: int = 0, split: str = "val") -> dict[str, Dataset]:
    """``n`` samples of every phantom (:data:`medtask.data.phantoms.PHANTOMS`), by name."""
    return {name: phantoms.load_phantom(name, split, size=(size, size), n=n, seed=seed) for name in phantoms.PHANTOMS}


def neighbour_summary(diff: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Consecutive-frame differences (:func:`neighbour_difference`) against distant pairs (:func:`random_pair_difference`)."""
    return {"neighbour_median": float(np.median(diff)), "random_pair_median": float(np.median(ref)),
            "neighbour_pairs_above_random_median": int((diff > np.median(ref)).sum()), "n_pairs": int(len(diff))}
