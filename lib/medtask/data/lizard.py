"""Lizard: colon histology (H&E, 20x) with instance-level nucleus labels of 6 types (Graham et al. 2021).

Official layout (the Warwick/Kaggle release unpacked under ``<data root>/Lizard/``)::

    lizard_images1/Lizard_Images1/<name>.png
    lizard_images2/Lizard_Images2/<name>.png
    lizard_labels/Lizard_Labels/Labels/<name>.mat      # inst_map, id, class, bbox, centroid
    lizard_labels/Lizard_Labels/info.csv               # Filename, Source, Split (fold 1, 2, 3)

Files are found by name anywhere under the folder (``**/Lizard_Images*/*.png``, ``**/Labels/*.mat``,
``**/info.csv``), so a flattened copy works too. The semantic ``mask`` maps every nucleus instance to
its type (0 = background). Splits: the three official folds, fold 1 = ``train``, 2 = ``val``,
3 = ``test`` (``fold1``..``fold3`` and ``all`` also accepted).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from medtask.data.io import Dataset, Record, check_same_size, load_records, read_image
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

NAME = "Lizard"
CLASSES = ("background", "Neutrophil", "Epithelial", "Lymphocyte", "Plasma", "Eosinophil", "Connective tissue")
_SPLIT_FOLD = {"train": 1, "val": 2, "test": 3, "fold1": 1, "fold2": 2, "fold3": 3}


def read_label_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(semantic mask uint8 [H, W], instance map int32 [H, W])`` from one Lizard ``.mat``."""
    import scipy.io  # imported when used: keeps `import medtask.data` quick

    try:
        m = scipy.io.loadmat(path)
        inst = np.asarray(m["inst_map"]).astype(np.int32)
        ids = np.asarray(m["id"]).reshape(-1).astype(np.int64)
        cls = np.asarray(m["class"]).reshape(-1).astype(np.int64)
    except Exception as exc:  # scipy raises MatReadError, ValueError, KeyError ... for damaged files
        raise CorruptFileError(f"{NAME}: cannot read label file {path} ({exc.__class__.__name__}: {exc}); "
                               "it needs inst_map, id and class arrays. Re-extract lizard_labels.zip.") from exc
    if len(ids) != len(cls):
        raise CorruptFileError(f"{NAME}: {path} has {len(ids)} instance ids but {len(cls)} classes")
    lut = np.zeros(int(max(inst.max(), ids.max() if len(ids) else 0)) + 1, np.uint8)
    lut[ids] = cls
    return lut[inst], inst


@loader("Lizard")
def load_lizard(path: Path, split: str, *, size=None, limit=None, **unknown: Any) -> Dataset:
    """Load one fold (``train``=1, ``val``=2, ``test``=3) or ``all``; images are RGB PNGs of varying size."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    images = {p.stem: p for p in path.glob("**/Lizard_Images*/*.png")}
    labels = {p.stem: p for p in path.glob("**/Labels/*.mat")}
    infos = sorted(path.glob("**/info.csv"))
    if not images or not labels or not infos:
        raise DatasetNotFoundError(NAME, path, "images (Lizard_Images*/), labels (Labels/*.mat) or info.csv missing; "
                                   "see data_manifests/Lizard.yml for the official download.")
    with open(infos[0], newline="") as fh:
        rows = list(csv.DictReader(fh))
    if split == "all":
        names = [r["Filename"] for r in rows]
    elif split in _SPLIT_FOLD:
        names = [r["Filename"] for r in rows if int(float(r["Split"])) == _SPLIT_FOLD[split]]
    else:
        raise InvalidParameterError(f"{NAME} splits: train (fold 1), val (fold 2), test (fold 3), fold1-3, all; "
                                    f"got {split!r}")

    def one(name: str) -> Record:
        if name not in images or name not in labels:
            raise CorruptFileError(f"{NAME}: {name} is listed in info.csv but its image or label file is missing")
        img = read_image(images[name])
        mask, _ = read_label_mat(labels[name])
        check_same_size(img, mask, images[name], labels[name])
        return Record(id=name, image=img, mask=mask)

    return Dataset(NAME, split, "segmentation", CLASSES, load_records(names, one, limit, size))
