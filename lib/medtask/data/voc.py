"""Pascal-VOC detection layout (``Annotations/*.xml``, ``JPEGImages/*.jpg``, ``ImageSets/Main/<split>.txt``): BCCD."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from medtask.data.io import Dataset, Record, clip_boxes, load_records, read_image
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

BCCD_CLASSES = ("background", "RBC", "WBC", "Platelets")


def parse_voc_xml(path: Path, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """Boxes ``float32 [N, 4]``, labels ``int64 [N]`` (index into ``classes``) and ``(H, W)`` from one VOC XML."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CorruptFileError(f"cannot parse annotation {path}: {exc}; re-fetch the dataset.") from exc
    boxes, labels = [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in classes:
            raise CorruptFileError(f"annotation {path} has an object of unknown class {name!r} (known: {classes[1:]})")
        bb = obj.find("bndbox")
        boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
        labels.append(classes.index(name))
    size = root.find("size")
    hw = (int(size.findtext("height")), int(size.findtext("width"))) if size is not None else None
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64), hw)


def load_voc(path: Path, split: str, name: str, classes: tuple[str, ...], *, size=None, limit=None,
             drop_degenerate: bool = True, **unknown: Any) -> Dataset:
    """Load a VOC split; zero-area boxes are dropped (``drop_degenerate``) and boxes clipped to the image."""
    if unknown:
        raise InvalidParameterError(f"{name}: unknown options {sorted(unknown)}")
    sets = path / "ImageSets" / "Main"
    available = sorted(p.stem for p in sets.glob("*.txt")) + ["all"]
    if split == "all":
        ids = sorted(p.stem for p in (path / "Annotations").glob("*.xml"))
    else:
        f = sets / f"{split}.txt"
        if not f.is_file():
            if split in ("train", "val", "test", "trainval"):
                raise DatasetNotFoundError(name, f, f"the official split file is missing; run `medtask data verify {name}`.")
            raise InvalidParameterError(f"{name} has no split {split!r}; choose one of {available}")
        ids = [s.strip() for s in f.read_text().split() if s.strip()]

    def one(i: str) -> Record:
        xp, ip = path / "Annotations" / f"{i}.xml", path / "JPEGImages" / f"{i}.jpg"
        img = read_image(ip)
        boxes, labels, hw = parse_voc_xml(xp, classes)
        if hw is not None and hw != img.shape[:2]:
            raise CorruptFileError(f"annotation {xp} says {hw[1]}x{hw[0]} (WxH) but image {ip} is "
                                   f"{img.shape[1]}x{img.shape[0]}; re-fetch {name}.")
        boxes, labels = clip_boxes(boxes, labels, *img.shape[:2], drop_degenerate=drop_degenerate)
        return Record(id=i, image=img, boxes=boxes, labels=labels)

    return Dataset(name, split, "detection", classes, load_records(ids, one, limit, size))


@loader("BCCD")
def load_bccd(path: Path, split: str, **options: Any) -> Dataset:
    """BCCD blood-cell detection (RBC, WBC, Platelets), official ImageSets/Main splits."""
    return load_voc(path, split, "BCCD", BCCD_CLASSES, **options)
