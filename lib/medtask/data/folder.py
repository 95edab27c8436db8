"""Generic datasets by folder: a user's own images in one of five plain layouts, one per task.

- **segmentation** (``images+masks``): ``images/`` and ``masks/``, paired by file stem
  (``images/12.jpg`` <-> ``masks/12.png``). Masks are binary or indexed:
  JPEG masks (``.jpg``/``.jpeg``, lossy, so never exactly two values) are **thresholded at 128**
  (pixels >= 128 are foreground, label 1); other masks keep their stored values, except that a
  mask holding only 0 and 255 is read as 0/1. Stored values are class indices (0 = background).
  Without ``classes`` the classes are ``background, foreground`` when every mask is binary, else
  ``background, class 1 .. class K`` with K the largest value in any mask of the folder.
- **detection**, Pascal VOC (``voc``): ``Annotations/*.xml`` + ``JPEGImages/`` (+ optional
  ``ImageSets/Main/{train,val,test,trainval}.txt``); or COCO (``coco``): ``annotations.json`` +
  ``images/`` (``file_name`` relative to ``images/``; ``iscrowd`` boxes are dropped).
- **classification**, one folder per class (``imagefolder``: ``<class>/*.png``, optionally under
  ``train/ val/ test/``) or a CSV of labels (``labels-csv``: ``labels.csv`` with columns
  ``file,label`` and an optional ``split`` column; ``file`` relative to the dataset folder).

Image formats: png, jpg, jpeg, tif, tiff, bmp (any case); hidden files and files of other
types are skipped. Splits, in order of precedence: split folders or a ``split`` column, or
``ImageSets/Main`` (VOC); else ``splits.csv`` (columns ``id,split``) or ``splits.json``
(``{"train": [ids], "val": [...], "test": [...]}``); else contiguous blocks (60/20/20, sorted
numerically) when every id is a frame number; else a seeded random split (``fractions``
0.6/0.2/0.2, ``seed`` 0). Split names are ``train``, ``val``, ``test`` (VOC also ``trainval``).

Every problem raises a :mod:`medtask.errors` class naming the file or folder and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from medtask.data import splits as _splits
from medtask.data.io import Dataset, Record, check_same_size, clip_boxes, load_records, parse_size, read_image
from medtask.data.voc import parse_voc_xml
from medtask.errors import (
    CorruptFileError, DatasetNotFoundError, FolderLayoutError, InvalidParameterError,
)

#: Image file types a folder dataset may hold (compared case-insensitively).
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: JPEG masks are binarised: a pixel is foreground when its grey value is at least this.
JPEG_MASK_THRESHOLD = 128
#: The prefix of a one-off folder dataset name: ``"folder:/abs/path"``.
FOLDER_PREFIX = "folder:"
SPLIT_NAMES = ("train", "val", "test")
LAYOUTS = {"images+masks": "segmentation", "voc": "detection", "coco": "detection",
           "imagefolder": "classification", "labels-csv": "classification"}
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)

_LAYOUT_HELP = ("segmentation: images/ + masks/ (same file stems); detection: Annotations/*.xml + JPEGImages/ "
                "(Pascal VOC) or annotations.json + images/ (COCO); classification: one sub-folder of images per "
                "class (optionally under train/ val/ test/) or labels.csv (columns file,label)")


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------

def _read_csv(path: Path, required: Sequence[str], columns: str) -> list[dict[str, str]]:
    """The rows of a small CSV with stripped keys and values; an error naming ``columns`` if one is missing."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if any(c not in cols for c in required):
            raise FolderLayoutError(f"{path} must have the columns {columns}; it has {cols}. Fix its header.")
        return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]


def is_folder_name(name: str) -> bool:
    """True for a one-off folder dataset name ``"folder:/abs/path"``."""
    return isinstance(name, str) and name.startswith(FOLDER_PREFIX)


def folder_path(name: str) -> Path:
    """The folder of ``"folder:/abs/path"`` (``~`` expanded); it must be an absolute path to a folder."""
    raw = name[len(FOLDER_PREFIX):] if is_folder_name(name) else name
    p = Path(os.path.expanduser(raw.strip()))
    if not raw.strip() or not p.is_absolute():
        raise InvalidParameterError(f"dataset {name!r}: give an absolute folder path after 'folder:', "
                                    "e.g. folder:/data/my-polyps")
    if not p.is_dir():
        raise DatasetNotFoundError(name, p, f"no such folder; check the path (it must hold {_LAYOUT_HELP}).")
    return p.resolve()


# --------------------------------------------------------------------------------------------
# listing files
# --------------------------------------------------------------------------------------------
def _visible(p: Path | str) -> bool:
    name = p if isinstance(p, str) else p.name
    return not name.startswith(".") and name not in ("Thumbs.db", "desktop.ini", "__MACOSX")


def is_image_file(p: Path) -> bool:
    """A visible file with one of :data:`IMAGE_EXTS`."""
    return p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTS


def image_files(folder: Path, what: str, *, recursive: bool = False) -> dict[str, Path]:
    """``{id: path}`` of the images in ``folder`` (id: the path relative to it, without its suffix).

    Raises :class:`FolderLayoutError` when the folder is missing or holds no image, or when two
    files share an id (``12.png`` and ``12.jpg``).
    """
    if not folder.is_dir():
        raise FolderLayoutError(f"{what}: folder {folder} is missing; the layouts are - {_LAYOUT_HELP}.")
    found = (p for p in (folder.rglob("*") if recursive else folder.iterdir())
             if is_image_file(p) and all(_visible(q) for q in p.relative_to(folder).parts))
    out: dict[str, Path] = {}
    for p in sorted(found):
        rid = p.relative_to(folder).with_suffix("").as_posix()
        if rid in out:
            raise FolderLayoutError(f"{what}: {out[rid].name} and {p.name} in {p.parent} have the same name "
                                    "stem; keep one of them (files are paired and split by stem).")
        out[rid] = p
    if not out:
        raise FolderLayoutError(f"{what}: folder {folder} holds no image ({', '.join(e[1:] for e in IMAGE_EXTS)}); "
                                "put the images there or point at the right folder.")
    return out


def _numeric_key(s: str) -> tuple[int, Any]:
    return (0, int(s)) if s.isdigit() else (1, s)


def _listing(items: Sequence[str], n: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# --------------------------------------------------------------------------------------------
# layout detection
# --------------------------------------------------------------------------------------------
def detect_layout(path: Path, task: str | None = None) -> str:
    """The layout of a dataset folder (a key of :data:`LAYOUTS`), checked against ``task`` when given."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(str(path), path, f"no such folder; it must hold {_LAYOUT_HELP}.")
    if task is not None and task not in ("segmentation", "detection", "classification"):
        raise InvalidParameterError(f"task must be segmentation, detection or classification, got {task!r}")
    if (path / "images").is_dir() and (path / "masks").is_dir():
        layout = "images+masks"
    elif (path / "Annotations").is_dir():
        layout = "voc"
    elif (path / "annotations.json").is_file():
        layout = "coco"
    elif (path / "labels.csv").is_file():
        layout = "labels-csv"
    elif (path / "images").is_dir() != (path / "masks").is_dir():
        have, lack = ("images", "masks") if (path / "images").is_dir() else ("masks", "images")
        raise FolderLayoutError(f"folder {path} has {have}/ but no {lack}/: a segmentation folder needs both, paired "
                                f"by file stem; add {path / lack}/ (the layouts are - {_LAYOUT_HELP}).")
    elif any(d.is_dir() and _visible(d) for d in path.iterdir()):
        layout = "imagefolder"
    else:
        raise FolderLayoutError(f"folder {path} matches no dataset layout (it has no sub-folder); the layouts are - "
                                f"{_LAYOUT_HELP}.")
    if task is not None and LAYOUTS[layout] != task:
        raise FolderLayoutError(f"folder {path} has the {layout} layout, which is a {LAYOUTS[layout]} dataset, "
                                f"not {task}; give --task {LAYOUTS[layout]} or lay the folder out as - {_LAYOUT_HELP}.")
    return layout


def detect_task(path: Path) -> str:
    """The task a dataset folder serves, from its layout."""
    return LAYOUTS[detect_layout(path)]


# --------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------
def _check_split_name(split: str, where: Path, allowed: Sequence[str] = SPLIT_NAMES) -> None:
    if split not in allowed:
        raise FolderLayoutError(f"{where}: unknown split name {split!r}; split names are {', '.join(allowed)} "
                                "(rename it, e.g. 'validation' -> 'val').")


def read_split_file(path: Path, ids: Sequence[str]) -> tuple[dict[str, list[str]], str] | None:
    """The splits of ``splits.csv`` (``id,split``) or ``splits.json`` in ``path``, checked against ``ids``.

    Returns ``None`` when there is no split file. Every id must be in exactly one split, and every
    listed id must exist.
    """
    csv_p, json_p = path / "splits.csv", path / "splits.json"
    if csv_p.is_file() and json_p.is_file():
        raise FolderLayoutError(f"{path} has both splits.csv and splits.json; keep one of them.")
    assign: dict[str, str] = {}
    if csv_p.is_file():
        src = csv_p
        rows = _read_csv(csv_p, ("id", "split"), "id,split")
        pairs = [(r["id"], r["split"]) for r in rows if r.get("id")]
    elif json_p.is_file():
        src = json_p
        try:
            data = json.loads(json_p.read_text())
        except json.JSONDecodeError as exc:
            raise FolderLayoutError(f"cannot parse {json_p}: {exc}; it must be {{\"train\": [ids], ...}}.") from exc
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise FolderLayoutError(f"{json_p} must be an object of lists, {{\"train\": [ids], \"val\": [...], "
                                    "\"test\": [...]}}; fix it.")
        pairs = [(str(i), s) for s, lst in data.items() for i in lst]
    else:
        return None
    for rid, s in pairs:
        _check_split_name(s, src)
        if rid in assign and assign[rid] != s:
            raise FolderLayoutError(f"{src}: id {rid!r} is in both {assign[rid]!r} and {s!r}; keep it in one split.")
        assign[rid] = s
    known = set(ids)
    unknown = [i for i in assign if i not in known]
    if unknown:
        raise FolderLayoutError(f"{src} lists ids that are not in the folder: {_listing(unknown)}; remove them "
                                "or add their files (ids are file names without their suffix).")
    missing = [i for i in ids if i not in assign]
    if missing:
        raise FolderLayoutError(f"{src} puts no split on {len(missing)} of the folder's samples ({_listing(missing)}); "
                                "list every id, or remove the files you leave out.")
    out = {s: [i for i in ids if assign[i] == s] for s in SPLIT_NAMES if s in assign.values()}
    return out, src.name


def auto_split(ids: Sequence[str], path: Path, *, split_rule: str = "auto", fractions: Sequence[float] =
               DEFAULT_FRACTIONS, seed: int = 0, gap: int = 0) -> tuple[dict[str, list[str]], str]:
    """Splits of ``ids`` and a line saying how they were made (``split_rule``: auto, file, blocks or random)."""
    if split_rule not in ("auto", "file", "blocks", "random"):
        raise InvalidParameterError(f"split_rule must be auto, file, blocks or random, got {split_rule!r}")
    if split_rule in ("auto", "file"):
        got = read_split_file(path, ids)
        if got is not None:
            return got[0], f"from {got[1]}"
        if split_rule == "file":
            raise FolderLayoutError(f"split_rule='file' but {path} has no splits.csv or splits.json; add one.")
    ordered = sorted(ids, key=_numeric_key)
    fr = tuple(float(f) for f in fractions)
    if split_rule == "blocks" or (split_rule == "auto" and ids and all(i.isdigit() for i in ids)):
        rule = (f"contiguous blocks of frame numbers {fr[0]:g}/{fr[1]:g}/{fr[2]:g}"
                + (f", gap {gap}" if gap else ""))
        return _splits.block_split(ordered, fr, gap=gap), rule
    rule = f"seeded random split {fr[0]:g}/{fr[1]:g}/{fr[2]:g} (seed {seed})"
    return _splits.random_split(ordered, fr, seed=seed), rule


# --------------------------------------------------------------------------------------------
# decoding with folder-specific fixes
# --------------------------------------------------------------------------------------------
def _fix(name: str) -> str:
    if not name:
        return "replace or remove the file"
    again = "" if is_folder_name(name) else " and re-run `medtask data add`"
    return f"replace or remove the file (and its partner){again}"


def decode_image(path: Path, name: str, channels: int = 3) -> np.ndarray:
    """:func:`medtask.data.io.read_image`, with an error that names the dataset and says to replace the file."""
    try:
        return read_image(path, channels)
    except CorruptFileError as exc:
        cause = exc.__cause__
        raise CorruptFileError(f"{name}: cannot read image {path} ({cause.__class__.__name__ if cause else 'error'}: "
                               f"{cause or exc}); {_fix(name)}.") from exc


def read_seg_mask(path: Path, name: str = "", mask_mode: str = "auto") -> np.ndarray:
    """A segmentation mask as ``uint8 [H, W]`` labels (see the module doc for JPEG, 0/255 and indexed masks)."""
    if mask_mode not in ("auto", "binary", "indexed"):
        raise InvalidParameterError(f"mask_mode must be auto, binary or indexed, got {mask_mode!r}")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptFileError(f"{name}: cannot read mask {path} ({exc.__class__.__name__}: {exc}); "
                               f"{_fix(name)}.") from exc
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if mask_mode == "binary" or (mask_mode == "auto" and jpeg):
        return (np.asarray(img.convert("L"), dtype=np.uint8) >= JPEG_MASK_THRESHOLD).astype(np.uint8)
    if img.mode == "1":
        return np.asarray(img, dtype=np.uint8)
    if img.mode in ("RGBA", "LA"):
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    arr = np.asarray(img)
    if arr.ndim == 3:
        if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            raise CorruptFileError(f"{name}: mask {path} is a colour image; masks must be greyscale or palette "
                                   "images whose values are class indices (0 = background) - convert it.")
        arr = arr[..., 0]
    if arr.size and int(arr.max()) > 255:
        raise CorruptFileError(f"{name}: mask {path} holds value {int(arr.max())}; class indices must be 0..255 - "
                               "save the mask as 8-bit.")
    arr = arr.astype(np.uint8)
    if mask_mode == "auto" and arr.size and np.isin(arr, (0, 255)).all():
        arr = (arr == 255).astype(np.uint8)
    return arr


# --------------------------------------------------------------------------------------------
# the index: what a folder holds, without decoding an image
# --------------------------------------------------------------------------------------------
@dataclass
class FolderIndex:
    """A dataset folder read without decoding images: its layout, samples, classes and splits."""

    path: Path
    task: str
    layout: str
    items: dict[str, Any]                        # id -> what the reader needs
    splits: dict[str, list[str]]
    split_rule: str
    classes: list[str] | None                    # None: segmentation classes come from the masks

    @property
    def ids(self) -> list[str]:
        """Every sample id."""
        return list(self.items)


def _classes_option(classes: str | Sequence[str] | None) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",")]
    out = [str(c).strip() for c in classes]
    if not out or any(not c for c in out) or len(set(out)) != len(out):
        raise InvalidParameterError(f"classes must be distinct non-empty names, got {list(classes)!r}")
    return out


def _with_background(classes: list[str]) -> list[str]:
    return classes if classes[0] == "background" else ["background", *classes]


def index_folder(path: Path, task: str | None = None, *, classes: str | Sequence[str] | None = None,
                 split_rule: str = "auto", fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                 gap: int = 0) -> FolderIndex:
    """Read a dataset folder's layout, pair its files, find its classes and splits (no image is decoded)."""
    path = Path(path)
    layout = detect_layout(path, task)
    cls = _classes_option(classes)
    kw = dict(split_rule=split_rule, fractions=fractions, seed=seed, gap=gap)
    return {"images+masks": _index_segmentation, "voc": _index_voc, "coco": _index_coco,
            "imagefolder": _index_imagefolder, "labels-csv": _index_labels_csv}[layout](path, cls, **kw)


def _check_paired(path: Path, first: dict[str, Path], second: dict[str, Path], what: tuple[str, str],
                  advice: str) -> None:
    """Raise :class:`FolderLayoutError` listing the stems of ``first`` without a partner in ``second`` and back."""
    parts = [f"{len(lone)} {label} ({_listing([side[i].name for i in lone])})"
             for side, other, label in ((first, second, what[0]), (second, first, what[1]))
             if (lone := [i for i in side if i not in other])]
    if parts:
        raise FolderLayoutError(f"unpaired files in {path}: {'; '.join(parts)}. {advice}")


def _index_segmentation(path: Path, classes: list[str] | None, **kw: Any) -> FolderIndex:
    images = image_files(path / "images", f"{path.name} images")
    masks = image_files(path / "masks", f"{path.name} masks")
    _check_paired(path, images, masks, ("image(s) have no mask", "mask(s) have no image"),
                  "A mask must have its image's file stem (images/12.jpg <-> masks/12.png); add the missing "
                  "files or remove the unpaired ones.")
    ids = sorted(images, key=_numeric_key)
    sp, rule = auto_split(ids, path, **kw)
    items = {i: (images[i], masks[i]) for i in ids}
    return FolderIndex(path, "segmentation", "images+masks", items, sp, rule,
                       None if classes is None else _with_background(classes))


def _voc_names(xml: Path) -> list[str]:
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise CorruptFileError(f"cannot parse annotation {xml}: {exc}; fix or remove it (and its image).") from exc
    return [(o.findtext("name") or "").strip() for o in root.iter("object")]


def _index_voc(path: Path, classes: list[str] | None, **kw: Any) -> FolderIndex:
    ann = path / "Annotations"
    xmls = {p.stem: p for p in sorted(ann.glob("*.xml")) if _visible(p)}
    if not xmls:
        raise FolderLayoutError(f"folder {ann} holds no .xml annotation; put the Pascal VOC files there.")
    images = image_files(path / "JPEGImages", f"{path.name} JPEGImages")
    _check_paired(path, xmls, images, ("annotation(s) have no image in JPEGImages/",
                                       "image(s) have no annotation in Annotations/"),
                  "Each image needs Annotations/<stem>.xml (one with no <object> for an image without objects); "
                  "add or remove files.")
    names = sorted({n for x in xmls.values() for n in _voc_names(x)})
    if classes is None:
        if not names:
            raise FolderLayoutError(f"no annotation in {ann} has an <object>; there is nothing to detect - "
                                    "check the annotations or give --classes.")
        cls = ["background", *names]
    else:
        cls = _with_background(classes)
        unknown = [n for n in names if n not in cls]
        if unknown:
            raise FolderLayoutError(f"annotations in {ann} use classes {unknown} that --classes {cls[1:]} does not "
                                    "list; add them to --classes or fix the annotations.")
    ids = sorted(xmls, key=_numeric_key)
    sets = path / "ImageSets" / "Main"
    split_files = {}
    if sets.is_dir():
        for f in sorted(sets.glob("*.txt")):
            if "_" in f.stem:  # per-class lists (RBC_train.txt) are not splits
                continue
            _check_split_name(f.stem, f, (*SPLIT_NAMES, "trainval"))
            split_files[f.stem] = f
    if split_files:
        sp = {}
        for s, f in split_files.items():
            lst = [x.strip() for x in f.read_text().split() if x.strip()]
            bad = [x for x in lst if x not in xmls]
            if bad:
                raise FolderLayoutError(f"{f} lists ids with no annotation: {_listing(bad)}; fix the list.")
            sp[s] = lst
        rule = "from ImageSets/Main"
    else:
        sp, rule = auto_split(ids, path, **kw)
    items = {i: (images[i], xmls[i]) for i in ids}
    return FolderIndex(path, "detection", "voc", items, sp, rule, cls)


def _index_coco(path: Path, classes: list[str] | None, **kw: Any) -> FolderIndex:
    ann = path / "annotations.json"
    try:
        data = json.loads(ann.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot parse {ann}: {exc}; it must be a COCO detection file.") from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FolderLayoutError(f"{ann} has no {key!r} list; a COCO file has images, annotations and categories.")
    cats = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    if classes is None:
        cls = ["background", *[cats[k] for k in sorted(cats)]]
    else:
        cls = _with_background(classes)
        unknown = [n for n in cats.values() if n not in cls]
        if unknown:
            raise FolderLayoutError(f"{ann} has categories {unknown} that --classes {cls[1:]} does not list; add them.")
    label_of = {k: cls.index(n) for k, n in cats.items()}
    on_disk = image_files(path / "images", f"{path.name} images", recursive=True)
    by_id: dict[int, dict[str, Any]] = {}
    items: dict[str, Any] = {}
    for im in data["images"]:
        rid = Path(im["file_name"]).with_suffix("").as_posix()
        if rid not in on_disk:
            raise FolderLayoutError(f"{ann} lists image {im['file_name']!r}, which is not in {path / 'images'}; "
                                    "add the file or remove its entry.")
        if rid in items:
            raise FolderLayoutError(f"{ann} lists {im['file_name']!r} twice; keep one entry.")
        entry = {"file": on_disk[rid], "hw": (int(im.get("height") or 0), int(im.get("width") or 0)),
                 "boxes": [], "labels": []}
        by_id[int(im["id"])] = entry
        items[rid] = entry
    extra = [p.name for r, p in on_disk.items() if r not in items]
    if extra:
        raise FolderLayoutError(f"unpaired files in {path}: {len(extra)} image(s) in images/ are not listed in "
                                f"annotations.json ({_listing(extra)}); list them (an image without objects has no "
                                "annotations) or remove them.")
    for a in data["annotations"]:
        if a.get("iscrowd"):
            continue
        img = by_id.get(int(a["image_id"]))
        if img is None:
            raise FolderLayoutError(f"{ann}: annotation {a.get('id')} refers to image id {a['image_id']}, which is "
                                    "not in its images list; fix the file.")
        if int(a["category_id"]) not in label_of:
            raise FolderLayoutError(f"{ann}: annotation {a.get('id')} has category {a['category_id']}, which is not "
                                    "in its categories list; fix the file.")
        x, y, w, h = (float(v) for v in a["bbox"])
        img["boxes"].append([x, y, x + w, y + h])
        img["labels"].append(label_of[int(a["category_id"])])
    ids = sorted(items, key=_numeric_key)
    sp, rule = auto_split(ids, path, **kw)
    items = {i: items[i] for i in ids}
    return FolderIndex(path, "detection", "coco", items, sp, rule, cls)


def _index_imagefolder(path: Path, classes: list[str] | None, **kw: Any) -> FolderIndex:
    tops = sorted(d for d in path.iterdir() if d.is_dir() and _visible(d))
    split_dirs = [d for d in tops if d.name in SPLIT_NAMES]
    if split_dirs:
        for d in tops:
            _check_split_name(d.name, d)
        roots = {d.name: d for d in split_dirs}
    else:
        roots = {"": path}
    found: dict[str, set[str]] = {}
    per_split: dict[str, list[tuple[str, str, Path]]] = {}
    for s, root in roots.items():
        class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _visible(d))
        if not class_dirs:
            raise FolderLayoutError(f"folder {root} has no class sub-folder; put each class's images in "
                                    f"{root}/<class>/.")
        rows = []
        for d in class_dirs:
            imgs = image_files(d, f"{path.name} class {d.name!r}", recursive=True)
            found.setdefault(d.name, set()).add(s)
            for sub, p in imgs.items():
                rows.append(((f"{s}/" if s else "") + f"{d.name}/{sub}", d.name, p))
        per_split[s] = rows
    names = sorted(found)
    if classes is None:
        cls = names
    else:
        cls = list(classes)
        unknown = [n for n in names if n not in cls]
        if unknown:
            raise FolderLayoutError(f"class folders {unknown} under {path} are not in --classes {cls}; add them or "
                                    "remove the folders.")
    items = {rid: (p, cls.index(c)) for rows in per_split.values() for rid, c, p in rows}
    if split_dirs:
        sp = {s: [rid for rid, _, _ in per_split[s]] for s in roots}
        rule = "from the split folders " + ", ".join(f"{s}/" for s in roots)
    else:
        sp, rule = auto_split(list(items), path, **kw)
    return FolderIndex(path, "classification", "imagefolder", items, sp, rule, cls)


def _index_labels_csv(path: Path, classes: list[str] | None, **kw: Any) -> FolderIndex:
    src = path / "labels.csv"
    rows = _read_csv(src, ("file", "label"), "file,label (and optionally split)")
    rows = [r for r in rows if r.get("file")]
    if not rows:
        raise FolderLayoutError(f"{src} lists no file; add one row file,label per image.")
    names = sorted({r["label"] for r in rows})
    if "" in names:
        raise FolderLayoutError(f"{src} has rows without a label; give every file its label.")
    cls = names if classes is None else list(classes)
    unknown = [n for n in names if n not in cls]
    if unknown:
        raise FolderLayoutError(f"{src} uses labels {unknown} that --classes {cls} does not list; add them.")
    items: dict[str, Any] = {}
    assign: dict[str, str] = {}
    for r in rows:
        f = path / r["file"]
        if not f.is_file():
            raise FolderLayoutError(f"{src} lists {r['file']!r}, which is not under {path}; fix the path (relative to "
                                    "the dataset folder) or add the file.")
        if f.suffix.lower() not in IMAGE_EXTS:
            raise FolderLayoutError(f"{src} lists {r['file']!r}, which is not an image "
                                    f"({', '.join(e[1:] for e in IMAGE_EXTS)}); fix the row.")
        rid = Path(r["file"]).with_suffix("").as_posix()
        if rid in items:
            raise FolderLayoutError(f"{src} lists {r['file']!r} twice (or two files with one stem); keep one row.")
        items[rid] = (f, cls.index(r["label"]))
        if r.get("split"):
            _check_split_name(r["split"], src)
            assign[rid] = r["split"]
    if assign:
        if len(assign) != len(items):
            raise FolderLayoutError(f"{src}: the split column is empty for {len(items) - len(assign)} row(s); fill "
                                    "it for every row or drop the column.")
        sp = {s: [i for i in items if assign[i] == s] for s in SPLIT_NAMES if s in assign.values()}
        rule = "from the split column of labels.csv"
    else:
        sp, rule = auto_split(list(items), path, **kw)
    return FolderIndex(path, "classification", "labels-csv", items, sp, rule, cls)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def _segmentation_classes(index: FolderIndex, name: str, mask_mode: str) -> list[str]:
    """``background, foreground`` for binary masks, else ``background, class 1 .. class K`` (K = largest value)."""
    top = 0
    for _, mp in index.items.values():
        top = max(top, int(read_seg_mask(mp, name, mask_mode).max(initial=0)))
    if top <= 1:
        return ["background", "foreground"]
    return ["background", *[f"class {k}" for k in range(1, top + 1)]]


def sample_reader(index: FolderIndex, name: str, *, mask_mode: str = "auto", drop_degenerate: bool = True,
                  channels: int = 3) -> Callable[[str], Record]:
    """``fn(id) -> Record``: decodes one sample of an indexed folder (images with ``channels`` 3, RGB, or 1, grey),
    with the size and annotation checks."""
    path = index.path
    if index.task == "segmentation":
        def reader(i: str) -> Record:
            ip, mp = index.items[i]
            img = decode_image(ip, name, channels)
            mask = read_seg_mask(mp, name, mask_mode)
            check_same_size(img, mask, ip, mp)
            return Record(id=i, image=img, mask=mask)
    elif index.layout == "voc":
        def reader(i: str) -> Record:
            ip, xp = index.items[i]
            img = decode_image(ip, name, channels)
            boxes, labels, hw = parse_voc_xml(xp, tuple(index.classes))
            return _detection_record(i, img, boxes, labels, hw, ip, xp, drop_degenerate)
    elif index.layout == "coco":
        def reader(i: str) -> Record:
            it = index.items[i]
            img = decode_image(it["file"], name, channels)
            boxes = np.asarray(it["boxes"], dtype=np.float32).reshape(-1, 4)
            labels = np.asarray(it["labels"], dtype=np.int64)
            hw = it["hw"] if all(it["hw"]) else None
            return _detection_record(i, img, boxes, labels, hw, it["file"], path / "annotations.json", drop_degenerate)
    else:
        def reader(i: str) -> Record:
            p, lab = index.items[i]
            return Record(id=i, image=decode_image(p, name, channels), label=int(lab))
    return reader


def resolve_classes(index: FolderIndex, name: str, mask_mode: str = "auto") -> list[str]:
    """The dataset's classes: given, from the annotations, or (segmentation) from its masks.

    Masks that are not all binarised (JPEG, or ``mask_mode="binary"``) are all read to find the
    largest value; giving ``classes`` skips that.
    """
    if index.classes is not None:
        return list(index.classes)
    # the same classes for every split: from every mask unless they are all binarised
    jpeg = all(mp.suffix.lower() in (".jpg", ".jpeg") for _, mp in index.items.values())
    if mask_mode == "binary" or (mask_mode == "auto" and jpeg):
        return ["background", "foreground"]
    return _segmentation_classes(index, name, mask_mode)


def check_labels(record: Record, classes: Sequence[str], mask_path: Path, name: str) -> None:
    """Raise :class:`CorruptFileError` when a mask holds a value with no class."""
    top = int(record.mask.max(initial=0))
    if top >= len(classes):
        raise CorruptFileError(f"{name}: mask {mask_path} holds value {top}, but the classes are {list(classes)} "
                               f"(indices 0..{len(classes) - 1}); give --classes with every class, or, for "
                               "soft-edged greyscale masks, load with mask_mode='binary' (threshold 128).")


def check_folder(index: FolderIndex, name: str, *, mask_mode: str = "auto", drop_degenerate: bool = True) -> list[str]:
    """Decode every sample once (one at a time) with all the checks; return the dataset's classes."""
    classes = resolve_classes(index, name, mask_mode)
    reader = sample_reader(index, name, mask_mode=mask_mode, drop_degenerate=drop_degenerate)
    ids = index.ids
    if len(ids) > 200:
        from tqdm import tqdm

        ids = tqdm(ids, desc=f"checking {name}", leave=False, disable=None)
    for i in ids:
        r = reader(i)
        if index.task == "segmentation":
            check_labels(r, classes, index.items[i][1], name)
    return classes


def load_folder(path: str | os.PathLike, split: str, *, task: str | None = None, name: str | None = None,
                classes: str | Sequence[str] | None = None, size: Any = None, limit: int | None = None,
                split_rule: str = "auto", fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                gap: int = 0, mask_mode: str = "auto", drop_degenerate: bool = True, channels: int = 3,
                **unknown: Any) -> Dataset:
    """Load ``split`` of a dataset folder in one of the layouts of the module doc (task detected when not given);
    images are RGB (``channels=3``, a grey image repeated) or grey (``channels=1``)."""
    path = Path(path)
    name = name or f"{FOLDER_PREFIX}{path}"
    if unknown:
        raise InvalidParameterError(f"{name}: unknown options {sorted(unknown)}; folder datasets take task, classes, "
                                    "split_rule, fractions, seed, gap, mask_mode, drop_degenerate, channels, size, "
                                    "limit")
    size = parse_size(size)
    index = index_folder(path, task, classes=classes, split_rule=split_rule, fractions=fractions, seed=seed, gap=gap)
    chosen = _splits.select(index.splits, split, name)
    reader = sample_reader(index, name, mask_mode=mask_mode, drop_degenerate=drop_degenerate, channels=channels)
    records = load_records(chosen, reader, limit, size, desc=f"decoding {name}")
    cls = resolve_classes(index, name, mask_mode)
    if index.task == "segmentation":
        for r in records:
            check_labels(r, cls, index.items[r.id][1], name)
    info = {"layout": index.layout, "split_rule": index.split_rule, "path": str(path),
            "splits": {s: len(v) for s, v in index.splits.items()}}
    return Dataset(name, split, index.task, cls, records, size=size, info=info)


def _detection_record(i: str, img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, hw: tuple[int, int] | None,
                      ip: Path, ap: Path, drop_degenerate: bool) -> Record:
    if hw is not None and all(hw) and hw != img.shape[:2]:
        raise CorruptFileError(f"annotation {ap} says {ip.name} is {hw[1]}x{hw[0]} (WxH) but the image is "
                               f"{img.shape[1]}x{img.shape[0]}; fix the annotation or the image.")
    boxes, labels = clip_boxes(boxes, labels, *img.shape[:2], drop_degenerate=drop_degenerate)
    return Record(id=i, image=img, boxes=boxes, labels=labels)


# --------------------------------------------------------------------------------------------
# content digests
# --------------------------------------------------------------------------------------------
def dataset_files(path: Path) -> list[Path]:
    """Every visible file under a dataset folder (hidden files and folders, e.g. ``.medtask``, are skipped)."""
    path = Path(path)
    return sorted(p for p in path.rglob("*") if p.is_file() and all(_visible(q) for q in p.relative_to(path).parts))


def checksum_lines(path: Path, files: Sequence[Path] | None = None) -> str:
    """The ``sha256sum`` listing (sorted, paths relative to ``path``) of a dataset folder's files."""
    from medtask.data.manifests import sha256_file

    path = Path(path)
    files = dataset_files(path) if files is None else files
    return "".join(f"{sha256_file(f)}  {f.relative_to(path).as_posix()}\n"
                   for f in sorted(files, key=lambda f: f.relative_to(path).as_posix()))


def digest_of_listing(text: str) -> str:
    """The short digest of a ``sha256sum`` listing (its sha256, 16 hex digits)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def folder_fingerprint(path: str | os.PathLike) -> str:
    """``folder:sha256:<16 hex>``: a digest of every file's bytes (and relative path) under a folder."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(str(path), path, "no such folder; check the path.")
    return f"folder:sha256:{digest_of_listing(checksum_lines(path))}"
