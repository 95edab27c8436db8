"""CAMUS: 2-D echocardiography (500 patients, apical 2- and 4-chamber views at ED and ES), official NIfTI release.

Official layout of the 2023 public release (``<data root>/CAMUS/``)::

    database_nifti/patientNNNN/patientNNNN_{2CH,4CH}_{ED,ES}.nii.gz       # image (uint8)
    database_nifti/patientNNNN/patientNNNN_{2CH,4CH}_{ED,ES}_gt.nii.gz    # 0 bg, 1 LV cavity, 2 myocardium, 3 LA
    database_split/subgroup_{training,validation,testing}.txt             # official patient lists

NIfTI is read with ``nibabel`` (an extra dependency); the arrays are stored (x, y), so they are
transposed to ``[H, W]``. The older MetaImage (``.mhd``/``.raw``) release is not read here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medtask.data.io import Dataset, Record, check_same_size, load_records
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError, MedtaskError

NAME = "CAMUS"
CLASSES = ("background", "LV cavity", "myocardium", "left atrium")
_SPLIT_FILE = {"train": "subgroup_training.txt", "val": "subgroup_validation.txt", "test": "subgroup_testing.txt"}


def read_nifti_2d(path: Path) -> np.ndarray:
    """A 2-D NIfTI image as ``uint8 [H, W]``."""
    try:
        import nibabel as nib  # imported when used: keeps `import medtask.data` quick
    except ImportError as exc:  # pragma: no cover - nibabel is installed in the project env
        raise MedtaskError("reading CAMUS needs nibabel: `pip install nibabel`") from exc
    if not path.is_file():
        raise CorruptFileError(f"{NAME}: file {path} is missing; re-extract the CAMUS release (see data_manifests/CAMUS.yml).")
    try:
        arr = np.asarray(nib.load(str(path)).dataobj)
    except Exception as exc:  # nibabel raises several types for damaged files
        raise CorruptFileError(f"{NAME}: cannot read NIfTI file {path} ({exc.__class__.__name__}: {exc}); "
                               "re-download it.") from exc
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise CorruptFileError(f"{NAME}: {path} has shape {arr.shape}, expected a 2-D frame")
    return np.ascontiguousarray(arr.T).astype(np.uint8)


@loader("CAMUS")
def load_camus(path: Path, split: str, *, size=None, limit=None, views=("2CH", "4CH"), phases=("ED", "ES"),
               **unknown: Any) -> Dataset:
    """The ED/ES frames of the chosen ``views`` of every patient in the official split (1-channel images)."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    if not set(views) <= {"2CH", "4CH"} or not set(phases) <= {"ED", "ES"}:
        raise InvalidParameterError(f"{NAME}: views ⊆ (2CH, 4CH), phases ⊆ (ED, ES); got {views}, {phases}")
    db = path / "database_nifti"
    if not db.is_dir():
        raise DatasetNotFoundError(NAME, db, "the NIfTI release (database_nifti/) is missing; see data_manifests/CAMUS.yml.")
    if split == "all":
        patients = sorted(p.name for p in db.glob("patient*") if p.is_dir())
    elif split in _SPLIT_FILE:
        f = path / "database_split" / _SPLIT_FILE[split]
        if not f.is_file():
            raise DatasetNotFoundError(NAME, f, "the official split list is missing; re-extract database_split/.")
        patients = [s.strip() for s in f.read_text().split() if s.strip()]
    else:
        raise InvalidParameterError(f"{NAME} splits: train, val, test, all; got {split!r}")
    items = [(p, v, ph) for p in patients for v in views for ph in phases]

    def one(item: tuple[str, str, str]) -> Record:
        p, v, ph = item
        ip, mp = db / p / f"{p}_{v}_{ph}.nii.gz", db / p / f"{p}_{v}_{ph}_gt.nii.gz"
        img, mask = read_nifti_2d(ip), read_nifti_2d(mp)
        check_same_size(img, mask, ip, mp)
        if mask.max() > 3:
            raise CorruptFileError(f"{NAME}: {mp} has label {int(mask.max())}; CAMUS labels are 0..3")
        return Record(id=f"{p}_{v}_{ph}", image=img[..., None], mask=mask)

    return Dataset(NAME, split, "segmentation", CLASSES, load_records(items, one, limit, size))
