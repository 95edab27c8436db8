"""Synthetic datasets ("phantoms"), deterministic from a seed, for tests and smoke runs.

They are used only when named explicitly (``load("phantom-polyp", ...)``); a missing real
dataset is never replaced by one. Each split draws from its own stream
(``numpy.random.default_rng([seed, split_index, sample_index])``), so sample ``k`` of a split is
the same whatever ``n`` is.

- ``phantom-polyp``: pinkish textured "mucosa" with 0-2 shaded elliptical "polyps" (segmentation).
- ``phantom-boxes``: discs, squares and triangles on a noisy background (detection, 3 classes).
- ``phantom-vessels``: branching dark vessel trees in a circular bright field of view
  (segmentation, with a ``fov`` mask like DRIVE).
- ``phantom-classes``: grey "slices" that are clean (0) or carry faint blotches (1) (classification).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage import draw
from scipy import ndimage

from medtask.data.io import Dataset, Record, parse_size, with_channels
from medtask.errors import InvalidParameterError

VERSION = 1
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}
DEFAULT_N = {"train": 64, "val": 16, "test": 16}
DEFAULT_SIZE = (64, 64)

PHANTOMS = {
    "phantom-polyp": ("segmentation", ("background", "polyp")),
    "phantom-boxes": ("detection", ("background", "disc", "square", "triangle")),
    "phantom-vessels": ("segmentation", ("background", "vessel")),
    "phantom-classes": ("classification", ("clean", "blotches")),
}


def _key(name: str) -> str:
    return name.lower().replace("_", "-").strip()


def is_phantom(name: str) -> bool:
    """True when ``name`` names a phantom (case-insensitive)."""
    return _key(name) in PHANTOMS


def fingerprint(name: str) -> str:
    """Phantoms have no files: the generator's name and version identify their content."""
    return f"{_key(name)}:generator-v{VERSION}"


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    z = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma)
    return z / (z.std() + 1e-8)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _polyp(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    tex = _smooth_noise(rng, h, w, max(h, w) / 16)
    base = np.array([0.78, 0.45, 0.42]) + rng.normal(0, 0.04, 3)
    img = base[None, None, :] + 0.06 * tex[..., None]
    yy, xx = np.mgrid[0:h, 0:w]
    img *= (0.75 + 0.25 * np.exp(-(((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2) * 3))[..., None]  # vignetting
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.choice([0, 1, 1, 1, 2, 2]))):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.08, 0.2) * h, rng.uniform(0.08, 0.2) * w
        rr, cc = draw.ellipse(cy, cx, ry, rx, shape=(h, w), rotation=rng.uniform(0, np.pi))
        mask[rr, cc] = 1
        shade = np.exp(-(((yy - cy + 0.3 * ry) / ry) ** 2 + ((xx - cx + 0.3 * rx) / rx) ** 2))
        region = np.zeros((h, w), bool)
        region[rr, cc] = True
        img[region] = img[region] * 0.55 + np.array([0.95, 0.62, 0.55]) * (0.3 + 0.25 * shade[region][:, None])
    img += rng.normal(0, 0.02, img.shape)
    return _to_uint8(img), mask


def _boxes(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = 0.3 + 0.1 * _smooth_noise(rng, h, w, max(h, w) / 10)[..., None] * np.ones(3)
    boxes: list[list[float]] = []
    labels = []
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.integers(1, 4))
        s = rng.uniform(0.08, 0.2) * min(h, w)
        for _attempt in range(20):  # objects do not overlap (an occluded object's box would be wrong)
            cy, cx = rng.uniform(s, h - s), rng.uniform(s, w - s)
            if all(cx + s + 1 < b[0] or cx - s - 1 > b[2] or cy + s + 1 < b[1] or cy - s - 1 > b[3] for b in boxes):
                break
        else:
            continue
        colour = np.array([[0.9, 0.3, 0.3], [0.3, 0.9, 0.3], [0.3, 0.4, 0.95]][cls - 1]) + rng.normal(0, 0.05, 3)
        if cls == 1:
            rr, cc = draw.disk((cy, cx), s, shape=(h, w))
        elif cls == 2:
            rr, cc = draw.rectangle((cy - s, cx - s), (cy + s, cx + s), shape=(h, w))
        else:
            rr, cc = draw.polygon([cy - s, cy + s, cy + s], [cx, cx - s, cx + s], shape=(h, w))
        img[rr, cc] = colour
        boxes.append([cc.min(), rr.min(), cc.max() + 1, rr.max() + 1])
        labels.append(cls)
    img += rng.normal(0, 0.03, img.shape)
    return _to_uint8(img), np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def _vessels(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, rad = h / 2, w / 2, 0.47 * min(h, w)
    fov = (((yy - cy) ** 2 + (xx - cx) ** 2) <= rad ** 2).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    # a root near the optic disc, branches as random walks that split
    disc = (cy + rng.uniform(-0.1, 0.1) * h, cx + rng.uniform(-0.25, 0.25) * w)
    stack = [(disc[0], disc[1], rng.uniform(0, 2 * np.pi), max(1.0, min(h, w) / 60), 0) for _ in range(3)]
    step = max(1.0, min(h, w) / 40)
    while stack:
        y, x, ang, width, depth = stack.pop()
        for _ in range(int(rng.integers(8, 20))):
            ny, nx = y + step * np.sin(ang), x + step * np.cos(ang)
            rr, cc = draw.line(int(round(y)), int(round(x)), int(round(ny)), int(round(nx)))
            ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            mask[rr[ok], cc[ok]] = 1
            if width > 1.2:
                d = draw.disk((ny, nx), width / 2, shape=(h, w))
                mask[d] = 1
            y, x, ang = ny, nx, ang + rng.normal(0, 0.25)
            if not (0 <= y < h and 0 <= x < w):
                break
        if depth < 3 and 0 <= y < h and 0 <= x < w:
            for sgn in (-1, 1):
                stack.append((y, x, ang + sgn * rng.uniform(0.3, 0.8), width * 0.7, depth + 1))
    mask &= fov
    bg = np.array([0.85, 0.4, 0.2]) * (0.85 + 0.1 * _smooth_noise(rng, h, w, min(h, w) / 8))[..., None]
    img = bg * (1 - 0.45 * ndimage.gaussian_filter(mask.astype(float), 0.7))[..., None]
    img = img * fov[..., None] + rng.normal(0, 0.015, (h, w, 3))
    return _to_uint8(img), mask, fov


def _classes(rng: np.random.Generator, h: int, w: int, label: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    body = ((((yy - h / 2) / (0.42 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2) <= 1).astype(float)
    img = 0.1 + 0.5 * body + 0.05 * _smooth_noise(rng, h, w, max(h, w) / 12) * body
    if label == 1:
        for _ in range(rng.integers(2, 5)):
            cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.25, 0.75) * w
            r = rng.uniform(0.05, 0.12) * min(h, w)
            img += 0.18 * np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))) * body
    img += rng.normal(0, 0.02, (h, w))
    return _to_uint8(img)[..., None]


def load_phantom(name: str, split: str, *, size=None, limit=None, n: int | None = None, seed: int = 0,
                 channels: int | None = None, **unknown: Any) -> Dataset:
    """Generate ``n`` samples (default 64/16/16 for train/val/test) of a phantom at ``size`` (default 64x64).

    ``channels`` 1 or 3 turns the images grey or RGB (:func:`medtask.data.io.with_channels`); ``None`` keeps the
    generator's (RGB, grey for ``phantom-classes``)."""
    key = _key(name)
    if key not in PHANTOMS:
        raise InvalidParameterError(f"unknown phantom {name!r}; choose one of {sorted(PHANTOMS)}")
    if unknown:
        raise InvalidParameterError(f"{key}: unknown options {sorted(unknown)}")
    if split not in _SPLIT_INDEX:
        raise InvalidParameterError(f"{key} has splits train, val, test; got {split!r}")
    task, classes = PHANTOMS[key]
    h, w = parse_size(size) or DEFAULT_SIZE
    count = DEFAULT_N[split] if n is None else int(n)
    if limit is not None:
        count = min(count, int(limit))
    recs = []
    for k in range(count):
        rng = np.random.default_rng([seed, _SPLIT_INDEX[split], k, VERSION])
        rid = f"{split}-{k:05d}"
        if key == "phantom-polyp":
            img, mask = _polyp(rng, h, w)
            recs.append(Record(rid, img, mask=mask))
        elif key == "phantom-boxes":
            img, boxes, labels = _boxes(rng, h, w)
            recs.append(Record(rid, img, boxes=boxes, labels=labels))
        elif key == "phantom-vessels":
            img, mask, fov = _vessels(rng, h, w)
            recs.append(Record(rid, img, mask=mask, extra={"fov": fov}))
        else:
            label = k % 2
            recs.append(Record(rid, _classes(rng, h, w, label), label=label))
    if channels is not None:
        for r in recs:
            r.image = with_channels(r.image, channels)
    return Dataset(key, split, task, classes, recs, info={"seed": seed, "generator_version": VERSION})
