"""Decoding, resizing and the in-memory dataset every loader returns.

Images are decoded once with Pillow and kept as ``uint8`` NumPy arrays (``[H, W, C]``); a sample
becomes float tensors only in ``__getitem__``. Resizing happens at load time: images with
antialiased bilinear interpolation, masks with nearest neighbour, boxes scaled by the same factors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from medtask.errors import CorruptFileError, InvalidParameterError

Size = tuple[int, int]

#: The tasks a dataset can serve; ``Dataset.task`` is one of these.
TASKS = ("segmentation", "detection", "classification", "quality")


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError as exc:
        raise CorruptFileError(
            f"file {path} is missing: the dataset copy is incomplete. Run `medtask data verify <dataset>` to list "
            "what is missing, and re-fetch it (`medtask data fetch <dataset>`)."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptFileError(
            f"cannot decode image {path}: {exc.__class__.__name__}: {exc}. The file is damaged or not an image; "
            "run `medtask data verify <dataset>` and re-fetch the dataset if its checksum fails."
        ) from exc
    return img


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Decode an image file to ``uint8 [H, W, channels]`` (``channels`` 1 or 3; alpha is dropped)."""
    img = _open(Path(path))
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: scale to 8 bit
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray(np.round(arr * (255.0 / hi)).astype(np.uint8))
    return _pil_channels(img, channels)


def _pil_channels(img: Image.Image, channels: int) -> np.ndarray:
    """``uint8 [H, W, channels]`` of a Pillow image: ``"RGB"`` (grey repeated) or ``"L"`` (ITU-R 601-2 luma)."""
    if channels == 3:
        img = img.convert("RGB")
    elif channels == 1:
        img = img.convert("L")
    else:
        raise InvalidParameterError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    arr = np.array(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def with_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """A decoded ``uint8 [H, W, C]`` image as ``channels`` 1 (grey, as :func:`read_image` makes it) or 3 (RGB,
    a grey image repeated); an image that already has ``channels`` is returned as it is."""
    if image.shape[2] == channels:
        return image
    return _pil_channels(Image.fromarray(image[..., 0] if image.shape[2] == 1 else image), channels)


def read_mask(path: str | os.PathLike, threshold: int | None = 127) -> np.ndarray:
    """Decode a mask to ``uint8 [H, W]``; with ``threshold``, binarise (``> threshold`` -> 1).

    1-bit PNGs and palette GIFs are handled (their values are read as 0/255 greyscale first).
    ``threshold=None`` keeps the stored values (label maps).
    """
    img = _open(Path(path))
    if threshold is None:
        arr = np.array(img)
        if arr.ndim == 3:
            arr = arr[..., 0]
        return arr.astype(np.uint8)
    arr = np.asarray(img.convert("L"), dtype=np.uint8)
    return (arr > threshold).astype(np.uint8)


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Any, mask_path: Any) -> None:
    """Raise :class:`CorruptFileError` naming both files when a mask's size differs from its image's."""
    if image.shape[:2] != mask.shape[:2]:
        raise CorruptFileError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]}: the pair does not match. Re-fetch the dataset "
            "(`medtask data fetch <dataset>`) or remove the damaged pair."
        )


def read_pair(dataset: str, rid: str, image_path: Path, mask_path: Path, *, fix: str,
              threshold: int | None = 127) -> "Record":
    """An image and its segmentation mask as a :class:`Record`, with the usual checks.

    A missing mask or a mask of another size raises :class:`CorruptFileError` naming the files;
    ``fix`` says what to do about a missing mask (e.g. "run `medtask data verify NAME`").
    """
    img = read_image(image_path)
    if not Path(mask_path).is_file():
        raise CorruptFileError(f"{dataset}: image {image_path} has no mask {mask_path}; {fix}.")
    mask = read_mask(mask_path, threshold=threshold)
    check_same_size(img, mask, image_path, mask_path)
    return Record(id=rid, image=img, mask=mask)


# --------------------------------------------------------------------------------------------
# resizing
# --------------------------------------------------------------------------------------------
def parse_size(size: int | Sequence[int] | None) -> Size | None:
    """``None`` | ``n`` (square) | ``(H, W)`` -> ``(H, W)`` or ``None``."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise InvalidParameterError(f"size must be (H, W) with positive entries, got {size!r}")
    return size  # type: ignore[return-value]


def resize_image(img: np.ndarray, size: Size) -> np.ndarray:
    """Antialiased bilinear resize of ``uint8 [H, W, C]`` to ``size = (H, W)``."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    if img.shape[2] == 1:
        out = np.array(Image.fromarray(img[..., 0]).resize((w, h), Image.BILINEAR))
        return out[..., None]
    return np.array(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: Size) -> np.ndarray:
    """Nearest-neighbour resize of a ``[H, W]`` label map (values are never blended)."""
    h, w = size
    if mask.shape[:2] == (h, w):
        return mask
    return np.array(Image.fromarray(mask).resize((w, h), Image.NEAREST))


def scale_boxes(boxes: np.ndarray, old: Size, new: Size) -> np.ndarray:
    """Scale ``[N, 4]`` (x1, y1, x2, y2) boxes from an ``old`` (H, W) frame to a ``new`` one."""
    sy, sx = new[0] / old[0], new[1] / old[1]
    return (boxes.astype(np.float32) * np.array([sx, sy, sx, sy], dtype=np.float32)).astype(np.float32)


def clip_boxes(boxes: np.ndarray, labels: np.ndarray, height: int, width: int, drop_degenerate: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``[N, 4]`` (x1, y1, x2, y2) clipped to the image; zero-area ones dropped with their labels."""
    boxes = boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    if drop_degenerate and len(boxes):
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, labels = boxes[keep], labels[keep]
    return boxes, labels


# --------------------------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------------------------
@dataclass
class Record:
    """One decoded sample in storage form (uint8 arrays, ready to become tensors)."""

    id: str
    image: np.ndarray                      # uint8 [H, W, C]
    mask: np.ndarray | None = None          # uint8/int [H, W] label map
    boxes: np.ndarray | None = None         # float32 [N, 4]
    labels: np.ndarray | None = None        # int64 [N] (detection) or scalar (classification)
    label: int | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. {"fov": uint8 [H, W]}
    meta: dict[str, Any] = field(default_factory=dict)          # not returned by __getitem__

    def resized(self, size: Size | None) -> "Record":
        """A copy at ``size`` (image bilinear+antialias, masks nearest, boxes scaled)."""
        if size is None or self.image.shape[:2] == tuple(size):
            return self
        old = self.image.shape[:2]
        return Record(
            id=self.id, image=resize_image(self.image, size),
            mask=None if self.mask is None else resize_mask(self.mask, size),
            boxes=None if self.boxes is None else scale_boxes(self.boxes, old, size),
            labels=self.labels, label=self.label,
            extra={k: resize_mask(v, size) for k, v in self.extra.items()},
            meta={**self.meta, "original_size": tuple(old)},
        )


class Dataset(torch.utils.data.Dataset):
    """A map-style dataset of the sample dicts of CONTRIBUTING.md, held in memory.

    Attributes: ``name`` (the dataset), ``split``, ``task`` (one of :data:`TASKS`), ``classes``
    (``classes[k]`` names label ``k``; for segmentation and detection ``classes[0]`` is
    ``"background"``, so ``len(classes)`` is the number of outputs a model needs), ``ids``.
    """

    def __init__(self, name: str, split: str, task: str, classes: Sequence[str], records: Iterable[Record],
                 *, size: Size | None = None, info: dict[str, Any] | None = None) -> None:
        if task not in TASKS:
            raise InvalidParameterError(f"task must be one of {TASKS}, got {task!r}")
        self.name = name
        self.split = split
        self.task = task
        self.classes = list(classes)
        self.size = size
        self.records: list[Record] = [r.resized(size) for r in records]
        self.info = dict(info or {})

    @property
    def ids(self) -> list[str]:
        """Sample ids, in dataset order."""
        return [r.id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, split={self.split!r}, task={self.task!r}, n={len(self)}, "
                f"classes={self.classes}, size={self.size})")

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def record(self, i: int) -> Record:
        """The stored (uint8) form of sample ``i``."""
        return self.records[i]

    def __getitem__(self, i: int) -> dict[str, Any]:
        if isinstance(i, slice):
            raise TypeError("Dataset does not support slicing; use Dataset.subset(indices)")
        r = self.records[i]
        out: dict[str, Any] = {"image": torch.from_numpy(np.ascontiguousarray(r.image)).permute(2, 0, 1)
                               .to(torch.float32).div_(255.0)}
        if self.task == "segmentation":
            out["mask"] = torch.from_numpy(r.mask.astype(np.int64))
        elif self.task == "detection":
            out["boxes"] = torch.from_numpy(r.boxes.astype(np.float32)).reshape(-1, 4)
            out["labels"] = torch.from_numpy(r.labels.astype(np.int64)).reshape(-1)
            if r.mask is not None:  # optional semantic map (e.g. ChestX-Det polygons)
                out["mask"] = torch.from_numpy(r.mask.astype(np.int64))
        elif self.task == "classification":
            out["label"] = int(r.label)
        for k, v in r.extra.items():
            out[k] = torch.from_numpy(v.astype(bool))
        out["id"] = r.id
        return out

    def subset(self, indices: Sequence[int]) -> "Dataset":
        """A new dataset holding the chosen samples (shares the decoded arrays)."""
        sub = Dataset.__new__(Dataset)
        sub.__dict__.update(self.__dict__)
        sub.records = [self.records[i] for i in indices]
        return sub

    def image_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of every stored image."""
        return [tuple(r.image.shape[:2]) for r in self.records]

    def class_counts(self) -> dict[str, int]:
        """Number of objects (detection), images (classification) or images containing the class (segmentation)."""
        counts = {c: 0 for c in self.classes}
        for r in self.records:
            if self.task == "classification":
                counts[self.classes[r.label]] += 1
            elif self.task == "detection":
                for lab in r.labels.reshape(-1):
                    counts[self.classes[int(lab)]] += 1
            elif self.task == "segmentation" and r.mask is not None:
                for lab in np.unique(r.mask):
                    if int(lab) < len(self.classes):
                        counts[self.classes[int(lab)]] += 1
        return counts


def load_records(items: Sequence[Any], fn: Callable[[Any], Record], limit: int | None = None,
                 size: Size | None = None, desc: str = "decoding") -> list[Record]:
    """Decode the first ``limit`` items (all when ``None``) with ``fn``, resizing each to ``size`` at once.

    Resizing right after decoding keeps the peak memory at one full-resolution image.
    """
    if limit is not None:
        if limit < 0:
            raise InvalidParameterError(f"limit must be >= 0, got {limit}")
        items = list(items)[:limit]
    items = list(items)
    if len(items) > 200:
        try:
            from tqdm import tqdm

            items_iter = tqdm(items, desc=desc, leave=False, disable=None)
        except ImportError:  # pragma: no cover
            items_iter = items
    else:
        items_iter = items
    return [fn(it).resized(size) for it in items_iter]
