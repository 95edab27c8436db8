"""ChestX-Det (13 classes, boxes + polygons) and ChestX-Det10 (10 classes, boxes): official JSON + PNGs.

Official layout (under ``<data root>/<folder>/``): the annotation JSON files (at the top or in an
``annotations_*`` sub-folder, as in our annotations-only copy) and the images from the official
zips in ``train_data/`` and ``test_data/`` (``train/``, ``test/`` or ``images/`` also accepted).
Coordinates are pixels of the 1024x1024 NIH ChestX-ray14 frame. An entry with several findings has
one box per finding (``syms[k]`` labels ``boxes[k]``); images without findings have no boxes.
With ``masks=True`` (ChestX-Det only) the polygons are rasterised into a semantic ``mask``
(later polygons overwrite earlier ones where findings overlap).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medtask.data.io import Dataset, Record, load_records, read_image
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

CHESTXDET_CLASSES = ("background", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "Diffuse Nodule",
                     "Effusion", "Emphysema", "Fibrosis", "Fracture", "Mass", "Nodule", "Pleural Thickening",
                     "Pneumothorax")
CHESTXDET10_CLASSES = ("background", "Atelectasis", "Calcification", "Consolidation", "Effusion", "Emphysema",
                       "Fibrosis", "Fracture", "Mass", "Nodule", "Pneumothorax")

_VARIANTS = {
    "ChestX-Det": {"json": {"train": "ChestX_Det_train.json", "test": "ChestX_Det_test.json"},
                   "sub": "annotations_ChestX-Det", "classes": CHESTXDET_CLASSES},
    "ChestX-Det10": {"json": {"train": "train.json", "test": "test.json"},
                     "sub": "annotations_ChestX-Det10", "classes": CHESTXDET10_CLASSES},
}


def _find(path: Path, names: list[str], what: str, dataset: str) -> Path:
    for n in names:
        if (path / n).exists():
            return path / n
    raise DatasetNotFoundError(dataset, path / names[0], f"{what} not found (looked for {', '.join(names)}). "
                               f"See data_manifests/{dataset}.yml for the official download and layout.")


def read_annotations(path: Path, variant: str, split: str) -> list[dict[str, Any]]:
    """The official JSON entries of a split (``train`` or ``test``)."""
    v = _VARIANTS[variant]
    if split not in v["json"]:
        raise InvalidParameterError(f"{variant} has official splits train and test (and all); got {split!r}")
    fname = v["json"][split]
    f = _find(path, [fname, f"{v['sub']}/{fname}"], f"annotation file {fname}", variant)
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{variant}: cannot parse {f}: {exc}; re-fetch the annotations.") from exc


def _load(path: Path, split: str, variant: str, *, size=None, limit=None, masks: bool = False,
          **unknown: Any) -> Dataset:
    if unknown:
        raise InvalidParameterError(f"{variant}: unknown options {sorted(unknown)}")
    if masks and variant != "ChestX-Det":
        raise InvalidParameterError("masks=True needs ChestX-Det (ChestX-Det10 has boxes only)")
    classes = _VARIANTS[variant]["classes"]
    parts = ["train", "test"] if split == "all" else [split]
    items = [(p, e) for p in parts for e in read_annotations(path, variant, p)]
    img_dirs = {p: _find(path, [f"{p}_data", p, "images"], f"the {p} images folder ({p}_data/ from the official "
                                                            f"{p}_data.zip; images are not in this copy)", variant)
                for p in parts}

    def one(item: tuple[str, dict[str, Any]]) -> Record:
        part, e = item
        ip = img_dirs[part] / e["file_name"]
        if not ip.is_file():
            raise DatasetNotFoundError(variant, ip, f"image {e['file_name']} listed in the {part} annotations is "
                                       f"missing; re-extract {part}_data.zip (see data_manifests/{variant}.yml).")
        img = read_image(ip)
        syms = e.get("syms", [])
        boxes = np.asarray(e.get("boxes", []), dtype=np.float32).reshape(-1, 4)
        if len(syms) != len(boxes):
            raise CorruptFileError(f"{variant}: entry {e['file_name']} has {len(syms)} labels but {len(boxes)} boxes")
        unknown_syms = [s for s in syms if s not in classes]
        if unknown_syms:
            raise CorruptFileError(f"{variant}: entry {e['file_name']} has unknown classes {unknown_syms}")
        labels = np.asarray([classes.index(s) for s in syms], dtype=np.int64)
        h, w = img.shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        mask = None
        if masks:
            from skimage.draw import polygon as _poly

            mask = np.zeros((h, w), np.uint8)
            for lab, poly in zip(labels, e.get("polygons", [])):
                pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
                if len(pts) >= 3:
                    rr, cc = _poly(pts[:, 1], pts[:, 0], shape=(h, w))
                    mask[rr, cc] = lab
        return Record(id=Path(e["file_name"]).stem, image=img, boxes=boxes[keep], labels=labels[keep], mask=mask)

    return Dataset(variant, split, "detection", classes, load_records(items, one, limit, size),
                   info={"masks": masks})


@loader("ChestX-Det")
def load_chestxdet(path: Path, split: str, **options: Any) -> Dataset:
    """ChestX-Det: 13 classes, official train (3,025) / test (553)."""
    return _load(path, split, "ChestX-Det", **options)


@loader("ChestX-Det10")
def load_chestxdet10(path: Path, split: str, **options: Any) -> Dataset:
    """ChestX-Det10: 10 classes, official train (3,001) / test (542)."""
    return _load(path, split, "ChestX-Det10", **options)
