"""ARCADE: X-ray coronary angiography (Popov et al., Scientific Data 2024): the mini subset, and the full release.

Two copies are understood (``data_manifests/ARCADE.yml``):

- ``ARCADE_stenosis_mini_subset/mini_test/{images,masks}/N.jpg``: 22 angiograms (512x512 RGB
  JPEG) with lossy JPEG masks of *stenosis regions* (binarised at 127). Not the vessel tree, and
  too small to train on: a smoke-test / demonstration set. Its only split is ``test`` (``all``).
  Two masks without an image (421, 454) are skipped.
- ``ARCADE/<subset>/{train,val,test}/images/*.png`` + ``.../annotations/<split>.json`` (COCO
  polygons) of the official Zenodo release, ``subset`` ``"stenosis"`` (1 class) or ``"syntax"``
  (25 coronary segments); rasterised with pycocotools into a semantic ``mask``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medtask.data.io import Dataset, Record, load_records, read_image, read_pair
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

NAME = "ARCADE"


def _load_mini(path: Path, split: str, size, limit) -> Dataset:
    if split not in ("test", "all"):
        raise InvalidParameterError(f"the ARCADE mini subset has one split, 'test' (or 'all'); got {split!r}. "
                                    "It is a 22-image demonstration set, not a training set.")
    root = path / "mini_test"
    ids = sorted((p.stem for p in (root / "images").glob("*.jpg")), key=lambda s: int(s) if s.isdigit() else s)

    def one(i: str) -> Record:
        return read_pair(NAME, i, root / "images" / f"{i}.jpg", root / "masks" / f"{i}.jpg",
                         fix="run `medtask data verify ARCADE`", threshold=127)

    return Dataset(NAME, split, "segmentation", ("background", "stenosis"), load_records(ids, one, limit, size),
                   info={"copy": "mini subset", "mask": "stenosis regions (JPEG, thresholded at 127)"})


def _load_full(path: Path, split: str, subset: str, size, limit) -> Dataset:
    from pycocotools import mask as mask_utils  # imported when used: keeps `import medtask.data` quick

    if subset not in ("stenosis", "syntax"):
        raise InvalidParameterError(f"ARCADE subset must be 'stenosis' or 'syntax', got {subset!r}")
    parts = ["train", "val", "test"] if split == "all" else [split]
    items: list[tuple[Path, dict, list, dict[int, int]]] = []
    classes: list[str] | None = None
    for part in parts:
        if part not in ("train", "val", "test"):
            raise InvalidParameterError(f"ARCADE splits: train, val, test, all; got {split!r}")
        d = path / subset / part
        ann = d / "annotations" / f"{part}.json"
        if not ann.is_file():
            raise DatasetNotFoundError(NAME, ann, "the COCO annotation file is missing; see data_manifests/ARCADE.yml.")
        coco = json.loads(ann.read_text())
        cats = sorted(coco["categories"], key=lambda c: c["id"])
        names = ["background"] + [str(c["name"]) for c in cats]
        if classes is None:
            classes = names
        cat_to_label = {c["id"]: k + 1 for k, c in enumerate(cats)}
        by_img: dict[int, list] = {}
        for a in coco["annotations"]:
            by_img.setdefault(a["image_id"], []).append(a)
        for im in sorted(coco["images"], key=lambda x: x["id"]):
            items.append((d / "images", im, by_img.get(im["id"], []), cat_to_label))

    def one(item) -> Record:
        img_dir, im, anns, cat_to_label = item
        ip = img_dir / im["file_name"]
        img = read_image(ip)
        h, w = img.shape[:2]
        if (im.get("height", h), im.get("width", w)) != (h, w):
            raise CorruptFileError(f"{NAME}: {ip} is {w}x{h} but its annotation says {im['width']}x{im['height']}")
        mask = np.zeros((h, w), np.uint8)
        for a in anns:
            seg = a["segmentation"]
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list) else seg
            mask[mask_utils.decode(rle).astype(bool)] = cat_to_label[a["category_id"]]
        return Record(id=f"{Path(im['file_name']).stem}", image=img, mask=mask)

    return Dataset(NAME, split, "segmentation", classes or ["background"], load_records(items, one, limit, size),
                   info={"copy": "full", "subset": subset})


@loader("ARCADE", with_copy=True)
def load_arcade_copy(path: Path, copy: dict[str, Any], split: str, *, size=None, limit=None, subset: str = "stenosis",
                     **unknown: Any) -> Dataset:
    """Load whichever ARCADE copy was found (the full release is preferred when both are present)."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    if copy.get("kind") == "partial":
        if subset != "stenosis":
            raise DatasetNotFoundError(NAME, path, "only the stenosis mini subset is present; the syntax subset needs "
                                       "the full release (see data_manifests/ARCADE.yml).")
        return _load_mini(path, split, size, limit)
    return _load_full(path, split, subset, size, limit)
