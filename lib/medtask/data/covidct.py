"""COVID-CT (UCSD-AI4H): 349 COVID / 397 non-COVID CT slices, official ``Data-split`` lists.

Label 1 is COVID, 0 non-COVID. Samples alternate between the classes (COVID, non-COVID,
COVID, ...) in list order, so that ``limit=n`` keeps both classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medtask.data.io import Dataset, Record, load_records, read_image
from medtask.data.registry import loader
from medtask.errors import DatasetNotFoundError, InvalidParameterError

NAME = "COVID-CT"
CLASSES = ("NonCOVID", "COVID")
_FOLDERS = {"COVID": "CT_COVID", "NonCOVID": "CT_NonCOVID"}


def split_lists(path: Path, split: str) -> dict[str, list[str]]:
    """``{class: [file names]}`` of an official split (``train``/``val``/``test``)."""
    out = {}
    for cls in ("COVID", "NonCOVID"):
        f = path / "Data-split" / cls / f"{split}CT_{cls}.txt"
        if not f.is_file():
            if split not in ("train", "val", "test"):
                raise InvalidParameterError(f"{NAME} has no split {split!r}; choose train, val, test or all")
            raise DatasetNotFoundError(NAME, f, f"the official split list is missing; run `medtask data verify {NAME}`.")
        out[cls] = [s.strip() for s in f.read_text().splitlines() if s.strip()]
    return out


@loader("COVID-CT")
def load_covidct(path: Path, split: str, *, size=None, limit=None, channels: int = 3, **unknown: Any) -> Dataset:
    """Load a split (``train`` 425, ``val`` 118, ``test`` 203; ``all``) as RGB (``channels=3``) or grey images."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    parts = ["train", "val", "test"] if split == "all" else [split]
    items: list[tuple[str, str]] = []
    for s in parts:
        lists = split_lists(path, s)
        cov, non = lists["COVID"], lists["NonCOVID"]
        for k in range(max(len(cov), len(non))):
            if k < len(cov):
                items.append(("COVID", cov[k]))
            if k < len(non):
                items.append(("NonCOVID", non[k]))

    def one(item: tuple[str, str]) -> Record:
        cls, fname = item
        img = read_image(path / "Images-processed" / _FOLDERS[cls] / fname, channels=channels)
        return Record(id=f"{cls}/{fname}", image=img, label=CLASSES.index(cls))

    return Dataset(NAME, split, "classification", CLASSES, load_records(items, one, limit, size))
