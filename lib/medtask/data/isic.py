"""ISIC 2018: Task 1 (lesion segmentation) and Task 3 (7-class diagnosis), official challenge layout.

Official layout (each zip from https://challenge.isic-archive.com/data/#2018 unpacks into a folder
of its own name, under ``<data root>/ISIC2018/``)::

    ISIC2018_Task1-2_{Training,Validation,Test}_Input/ISIC_NNNNNNN.jpg
    ISIC2018_Task1_{Training,Validation,Test}_GroundTruth/ISIC_NNNNNNN_segmentation.png
    ISIC2018_Task3_{Training,Validation,Test}_Input/ISIC_NNNNNNN.jpg
    ISIC2018_Task3_{Training,Validation,Test}_GroundTruth/ISIC2018_Task3_{...}_GroundTruth.csv

The official phases are the splits: ``train`` (Training: 2,594 / 10,015 images), ``val``
(Validation: 100 / 193), ``test`` (Test: 1,000 / 1,512). Task 3 labels are the one-hot columns
``MEL, NV, BCC, AKIEC, BKL, DF, VASC`` (label = column index).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from medtask.data.io import Dataset, Record, load_records, read_image, read_pair
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

NAME = "ISIC2018"
SEG_CLASSES = ("background", "lesion")
DX_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
_PHASE = {"train": "Training", "val": "Validation", "test": "Test"}


def _phase(split: str) -> str:
    if split not in _PHASE:
        raise InvalidParameterError(f"{NAME} splits are train, val, test (the official phases); got {split!r}")
    return _PHASE[split]


def _need(p: Path, what: str) -> Path:
    if not p.exists():
        raise DatasetNotFoundError(NAME, p, f"{what} is missing: download {p.name}.zip from "
                                   "https://challenge.isic-archive.com/data/#2018 and unzip it into the ISIC2018 "
                                   "folder (see data_manifests/ISIC2018.yml).")
    return p


def read_task3_labels(csv_path: Path) -> list[tuple[str, int]]:
    """``[(image id, class index)]`` from an official one-hot ground-truth CSV."""
    out = []
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            hot = [float(row[c]) for c in DX_CLASSES]
            if sorted(hot) != [0.0] * 6 + [1.0]:
                raise CorruptFileError(f"{csv_path}: row {row.get('image')} is not one-hot over {DX_CLASSES}")
            out.append((row["image"], hot.index(1.0)))
    return out


@loader("ISIC2018")
def load_isic(path: Path, split: str, *, size=None, limit=None, task: str = "segmentation", **unknown: Any) -> Dataset:
    """``task="segmentation"`` (Task 1, lesion masks) or ``"classification"`` (Task 3, 7 diagnoses)."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    phase = _phase(split)
    if task == "segmentation":
        img_dir = _need(path / f"ISIC2018_Task1-2_{phase}_Input", "the Task 1 images")
        gt_dir = _need(path / f"ISIC2018_Task1_{phase}_GroundTruth", "the Task 1 masks")
        ids = sorted(p.stem for p in img_dir.glob("ISIC_*.jpg"))

        def one(i: str) -> Record:
            return read_pair(NAME, i, img_dir / f"{i}.jpg", gt_dir / f"{i}_segmentation.png",
                             fix="re-extract the GroundTruth zip")

        return Dataset(NAME, split, "segmentation", SEG_CLASSES, load_records(ids, one, limit, size),
                       info={"task": "Task 1"})
    if task == "classification":
        img_dir = _need(path / f"ISIC2018_Task3_{phase}_Input", "the Task 3 images")
        csv_path = _need(path / f"ISIC2018_Task3_{phase}_GroundTruth" / f"ISIC2018_Task3_{phase}_GroundTruth.csv",
                         "the Task 3 ground-truth CSV")
        items = read_task3_labels(csv_path)

        def one_cls(item: tuple[str, int]) -> Record:
            return Record(id=item[0], image=read_image(img_dir / f"{item[0]}.jpg"), label=item[1])

        return Dataset(NAME, split, "classification", DX_CLASSES, load_records(items, one_cls, limit, size),
                       info={"task": "Task 3"})
    raise InvalidParameterError(f"{NAME} task must be 'segmentation' (Task 1) or 'classification' (Task 3), got {task!r}")
