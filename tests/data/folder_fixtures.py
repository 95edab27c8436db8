"""Tiny dataset folders in each supported layout, written into a test's tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def image(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    """A small random RGB image (uint8 [H, W, 3])."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def disc_mask(h: int = 12, w: int = 16, value: int = 255, r: int = 4) -> np.ndarray:
    """A disc of ``value`` on 0 (uint8 [H, W])."""
    yy, xx = np.mgrid[:h, :w]
    return np.where((yy - h // 2) ** 2 + (xx - w // 2) ** 2 <= r * r, value, 0).astype(np.uint8)


def save(arr: np.ndarray, path: Path, **kw) -> Path:
    """Write an array as an image file (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def segmentation(root: Path, n: int = 10, stems: list[str] | None = None, img_ext: str = ".png",
                 mask_ext: str = ".png", value: int = 255) -> Path:
    """``images/`` + ``masks/`` with ``n`` pairs (stems ``1..n`` unless given)."""
    stems = stems or [str(k) for k in range(1, n + 1)]
    for k, s in enumerate(stems):
        save(image(seed=k), root / "images" / f"{s}{img_ext}")
        save(disc_mask(value=value, r=2 + k % 3), root / "masks" / f"{s}{mask_ext}")
    return root


def voc(root: Path, n: int = 6, classes: tuple[str, ...] = ("cell", "blob"), split_files: bool = False) -> Path:
    """``Annotations/*.xml`` + ``JPEGImages/*.jpg`` (two boxes each), optionally with ``ImageSets/Main``."""
    for k in range(n):
        save(image(20, 24, seed=k), root / "JPEGImages" / f"im{k:02d}.jpg", quality=95)
        objs = "".join(f"<object><name>{classes[j % len(classes)]}</name><bndbox><xmin>{2 + j}</xmin><ymin>3</ymin>"
                       f"<xmax>{10 + j}</xmax><ymax>{12 + j}</ymax></bndbox></object>" for j in range(2))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"im{k:02d}.xml").write_text(
            f"<annotation><filename>im{k:02d}.jpg</filename><size><width>24</width><height>20</height>"
            f"<depth>3</depth></size>{objs}</annotation>")
    if split_files:
        main = root / "ImageSets" / "Main"
        main.mkdir(parents=True)
        ids = [f"im{k:02d}" for k in range(n)]
        (main / "train.txt").write_text("\n".join(ids[: n - 2]) + "\n")
        (main / "test.txt").write_text("\n".join(ids[n - 2:]) + "\n")
        (main / f"{classes[0]}_train.txt").write_text(f"{ids[0]} 1\n")  # a per-class list, not a split
    return root


def coco(root: Path, n: int = 5) -> Path:
    """``annotations.json`` + ``images/`` (one box per image, the last image without objects)."""
    images, anns = [], []
    for k in range(n):
        save(image(20, 24, seed=k), root / "images" / f"p{k}.png")
        images.append({"id": 100 + k, "file_name": f"p{k}.png", "width": 24, "height": 20})
        if k < n - 1:
            anns.append({"id": k, "image_id": 100 + k, "category_id": 7 if k % 2 else 3,
                         "bbox": [1.0, 2.0, 5.0, 6.0], "iscrowd": 0})
    anns.append({"id": 99, "image_id": 100, "category_id": 3, "bbox": [0, 0, 20, 20], "iscrowd": 1})
    cats = [{"id": 7, "name": "tumour"}, {"id": 3, "name": "lesion"}]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def imagefolder(root: Path, classes: tuple[str, ...] = ("benign", "malignant"), n: int = 5,
                splits: tuple[str, ...] = ()) -> Path:
    """``<class>/*.png`` (or ``<split>/<class>/*.png``) with ``n`` images per class (and split)."""
    for s in splits or ("",):
        for c in classes:
            for k in range(n):
                save(image(seed=k), (root / s / c if s else root / c) / f"{c}_{k}.png")
    return root


def labels_csv(root: Path, n: int = 8, split_column: bool = False) -> Path:
    """``imgs/*.jpg`` and ``labels.csv`` (``file,label`` [,split])."""
    rows = ["file,label" + (",split" if split_column else "")]
    for k in range(n):
        save(image(seed=k), root / "imgs" / f"x{k}.jpg")
        lab = "covid" if k % 2 else "normal"
        rows.append(f"imgs/x{k}.jpg,{lab}" + ((",test" if k >= n - 2 else ",train") if split_column else ""))
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
