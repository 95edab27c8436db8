"""What a dataset name stands for, and how provenance names it and fingerprints its content.

A name given to :func:`medtask.data.load` (and to a chapter's ``dataset``/``test_dataset``) is one of:

- a **phantom** (``phantom-polyp`` ...): generated; fingerprint = the generator version;
- a **one-off folder** ``folder:/abs/path``: label ``unregistered folder /abs/path``, fingerprint
  ``folder:sha256:<16 hex>`` = digest of every file's bytes (computed each time);
- a **registered folder** (``medtask data add NAME PATH``): label ``NAME (registered folder PATH)``,
  fingerprint ``NAME:sha256:<16 hex>`` = digest of the checksum list recorded at ``add``
  (equal to the ``folder:`` digest of the same, unchanged folder);
- a **shipped dataset** (``data_manifests/NAME.yml``): label = its canonical name, fingerprint
  from :func:`medtask.data.manifests.fingerprint`.

A chapter passes ``datasets=chapter_datasets(TASK, dataset, test_dataset)`` (each checked by
:func:`check_task`) and ``test_only=test_only(dataset, test_dataset)`` to its ``Chapter`` (which runs
:func:`verify_for_chapter` on each before training), loads with :func:`load_splits` (the test split
from ``test_dataset`` where given, :func:`check_same_classes`) and prints :func:`data_markdown` (labels
and fingerprints); provenance records the same through :func:`medtask.provenance.dataset_fingerprints`,
and the runner puts the fingerprints of the folders named into the chapter's cache key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from medtask.data import folder, manifests, phantoms, user_manifests
from medtask.data.io import Dataset
from medtask.errors import InvalidParameterError

KINDS = ("phantom", "folder", "registered", "shipped")


def kind(name: str, root: str | os.PathLike | None = None) -> str:
    """``"phantom"``, ``"folder"`` (``folder:/path``), ``"registered"`` (``medtask data add``) or ``"shipped"``."""
    if folder.is_folder_name(name):
        return "folder"
    if phantoms.is_phantom(name):
        return "phantom"
    if user_manifests.find_user_manifest(name, root) is not None:
        return "registered"
    return "shipped"


def is_own_data(name: str, root: str | os.PathLike | None = None) -> bool:
    """True for a ``folder:`` name or a folder registered with ``medtask data add``."""
    return kind(name, root) in ("folder", "registered")


def load(name: str, split: str, *, root: str | os.PathLike | None = None, size: Any = None,
         limit: int | None = None, **options: Any) -> Dataset:
    """Load ``split`` of a ``folder:`` path or a registered folder (``task=`` optional for ``folder:``)."""
    if folder.is_folder_name(name):
        path = folder.folder_path(name)
        ds = folder.load_folder(path, split, name=f"{folder.FOLDER_PREFIX}{path}", size=size, limit=limit, **options)
        ds.info["source"] = f"unregistered folder {path}"
        return ds
    return user_manifests.load(name, split, root=root, size=size, limit=limit, **options)


def label(name: str, root: str | os.PathLike | None = None) -> str:
    """How pages and provenance name the data: the dataset name, ``NAME (registered folder PATH)`` or
    ``unregistered folder PATH``."""
    k = kind(name, root)
    if k == "folder":
        return f"unregistered folder {folder.folder_path(name)}"
    if k == "registered":
        return user_manifests.label(user_manifests.find_user_manifest(name, root))
    if k == "phantom":
        return name
    return manifests.resolve_name(name)


def fingerprint(name: str, root: str | os.PathLike | None = None, *, strict: bool = True) -> str:
    """The content digest of any dataset name (see the module doc for each kind); ``strict=False``
    fingerprints a shipped copy whose layout differs from its manifest instead of refusing it."""
    k = kind(name, root)
    if k == "folder":
        return folder.folder_fingerprint(folder.folder_path(name))
    if k == "registered":
        return user_manifests.fingerprint(name, root)
    return manifests.fingerprint(name, root, strict=strict)


def verify(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> Any:
    """Verify any dataset: a registered folder against its checksums, a ``folder:`` path by its layout,
    a shipped dataset by :func:`medtask.data.manifests.verify`. The report has ``ok`` and ``summary()``."""
    k = kind(name, root)
    if k == "folder":
        path = folder.folder_path(name)
        rep = user_manifests.FolderReport(name, path, registered=False)
        rep.layout_problems = user_manifests.verify_folder(path, name)
        return rep
    if k == "registered":
        return user_manifests.verify(name, root, checksums=checksums)
    return manifests.verify(name, root, checksums=checksums)


def tasks(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The tasks dataset ``name`` serves (a ``folder:`` path's from its layout)."""
    k = kind(name, root)
    if k == "folder":
        return [folder.detect_task(folder.folder_path(name))]
    if k == "registered":
        return [user_manifests.find_user_manifest(name, root)["task"]]
    if k == "phantom":
        return [phantoms.PHANTOMS[name.lower().replace("_", "-").strip()][0]]
    return list(manifests.load_manifest(name)["tasks"])


def split_names(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The splits dataset ``name`` has (``"all"`` aside): a ``folder:`` path's from its index (no image is decoded),
    a registered folder's as recorded at ``medtask data add``, a phantom's train/val/test, a shipped dataset's as
    its manifest counts them."""
    k = kind(name, root)
    if k == "folder":
        return list(folder.index_folder(folder.folder_path(name)).splits)
    if k == "registered":
        return list(user_manifests.find_user_manifest(name, root)["splits"]["counts"])
    if k == "phantom":
        return list(phantoms.DEFAULT_N)
    return list(manifests.load_manifest(name)["splits"]["counts"])


def check_task(name: str, task: str, root: str | os.PathLike | None = None) -> str:
    """``name`` when it serves ``task``; else :class:`InvalidParameterError` saying what it is and what to give.

    What a chapter calls on its ``dataset``/``test_dataset`` parameter instead of a list of names.
    """
    have = tasks(name, root)
    if task not in have:
        raise InvalidParameterError(f"dataset {name!r} is a {' and '.join(have)} dataset; this needs a {task} dataset: "
                                    f"one of `medtask data list` with task {task}, a folder registered with "
                                    f"`medtask data add NAME PATH --task {task}`, or folder:/path in a {task} layout")
    return name


def describe(name: str, root: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name, kind, label, fingerprint}`` of a dataset name: what a page prints about the data it used."""
    return {"name": name, "kind": kind(name, root), "label": label(name, root), "fingerprint": fingerprint(name, root)}


def verify_for_chapter(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The check a chapter runs on a dataset before training, for every kind of name.

    Returns ``{"dataset", "path", "status", "problems", "fix"}`` like
    :func:`medtask.data.manifests.verify_for_chapter`: a registered folder is checked against the
    checksums recorded at ``medtask data add``, a ``folder:`` path by its layout (it has no checksums;
    status ``"layout checked"``), a shipped dataset or a phantom as before.
    """
    k = kind(name, root)
    if k not in ("folder", "registered"):
        return manifests.verify_for_chapter(name, root)
    rep = verify(name, root, checksums=True)
    status = "verified" if rep.ok and k == "registered" else "layout checked" if rep.ok else "failed"
    fix = "" if rep.ok else rep.summary().splitlines()[-1].strip().removeprefix("fix: ")
    problems = ([f"layout: {p}" for p in rep.layout_problems] + [f"missing: {p}" for p in rep.missing]
                + [f"checksum mismatch: {p}" for p in rep.bad] + [f"new file: {p}" for p in rep.new])
    return {"dataset": label(name, root), "path": str(rep.path), "status": status, "problems": problems, "fix": fix}


def _generic_class(name: str) -> bool:
    """A folder's default class name (``foreground``, ``class K``), which stands for whatever class sits at its index."""
    return name == "foreground" or (name.startswith("class ") and name[6:].isdigit())


def check_same_classes(train: Dataset, test: Dataset) -> None:
    """Refuse a test set whose classes differ from the training set's: a network's outputs mean the training
    set's classes. Same number, same names in the same order; a folder's default names (``foreground``,
    ``class K``) match any name at their index. The message names both lists and the fix."""
    a, b = list(train.classes), list(test.classes)
    if len(a) == len(b) and all(x == y or _generic_class(x) or _generic_class(y) for x, y in zip(a, b)):
        return
    raise InvalidParameterError(
        f"test_dataset {test.name!r} has classes {b}, the training set {train.name!r} has {a}: a network trained "
        "on one cannot be scored on the other. Give a test set with the same classes in the same order (register "
        "a folder with `medtask data add NAME PATH --classes A,B,...` to name and order them), or leave "
        "test_dataset=None to test on the training set's own test split")


def chapter_datasets(task: str, dataset: str, test_dataset: str | None = None,
                     root: str | os.PathLike | None = None) -> list[str]:
    """A chapter's ``dataset`` and ``test_dataset`` parameters, each checked for ``task`` (:func:`check_task`):
    ``[dataset]``, or ``[dataset, test_dataset]`` when the chapter tests on another dataset."""
    names = [dataset] if test_dataset in (None, dataset) else [dataset, test_dataset]
    return [check_task(n, task, root) for n in names]


def test_only(dataset: str | Sequence[str], test_dataset: str | None = None) -> list[str]:
    """``[test_dataset]`` when a chapter only tests on it (not one of its training sets), else ``[]``: what
    :class:`medtask.pipeline.Chapter` leaves out of its training keys (``test_only=``)."""
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    return [] if test_dataset is None or test_dataset in names else [test_dataset]


def eval_name(dataset: str, test_dataset: str | None = None) -> str:
    """The dataset whose test split a chapter scores on: ``test_dataset``, or the training set itself."""
    return dataset if test_dataset is None else test_dataset


def data_markdown(dataset: str | Sequence[str], test_dataset: str | None = None,
                  root: str | os.PathLike | None = None) -> str:
    """The page's sentence on its data: label and fingerprint of the training set(s) and, where the chapter
    tests on another dataset (``test_dataset`` not among them), of that one too (Markdown). A ``test_dataset``
    that is one of several training sets is named as the one whose test split is scored."""
    def one(name: str) -> str:
        try:
            return f"**{label(name, root)}** (fingerprint `{fingerprint(name, root, strict=False)}`)"
        except Exception as exc:  # noqa: BLE001 - the sentence still names the data
            return f"**{name}** (no fingerprint: {exc})"

    names = [dataset] if isinstance(dataset, str) else list(dataset)
    train = " and ".join(one(n) for n in names)
    if test_dataset is None or (len(names) == 1 and test_dataset == names[0]):
        return f"Data: {train}; trained on the train split, tested on the test split."
    if test_dataset in names:
        return (f"Data: {train}; trained on the train split, tested on the test split of "
                f"**{label(test_dataset, root)}** (one of the training sets) only.")
    return (f"Trained on {train} (train split); tested on {one(test_dataset)} (its test split): "
            "a cross-dataset test, so the test images come from another collection than the training images.")


def load_splits(dataset: str, test_dataset: str | None = None, splits: tuple[str, ...] = ("train", "test"), *,
                root: str | os.PathLike | None = None, size: Any = None,
                limits: dict[str, int | None] | None = None, task: str | None = None,
                **options: Any) -> tuple[Dataset, ...]:
    """``splits`` of a chapter's data, in that order: every split from ``dataset`` except ``"test"``, which comes
    from ``test_dataset`` where given (checked to have the training set's classes, :func:`check_same_classes`).
    ``limits`` keeps the first n images of a split (``{"train": 16}``). ``task`` picks the labels of a dataset
    that serves several (ISIC 2018: lesion masks or diagnoses); a dataset with one task ignores it."""
    from medtask.data import load as load_any

    limits = limits or {}

    def one(name: str, split: str) -> Dataset:
        extra = {"task": task} if task is not None and len(tasks(name, root)) > 1 else {}
        return load_any(name, split, root=root, size=size, limit=limits.get(split), **extra, **options)

    out = tuple(one(eval_name(dataset, test_dataset) if s == "test" else dataset, s) for s in splits)
    if "test" in splits and "train" in splits:
        check_same_classes(out[splits.index("train")], out[splits.index("test")])
    return out
