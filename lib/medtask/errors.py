"""Exceptions raised by medtask. Every message says what went wrong *and* what to do."""

from __future__ import annotations


class MedtaskError(Exception):
    """Base class of every error medtask raises on purpose."""


class DatasetNotFoundError(MedtaskError, FileNotFoundError):
    """A dataset (or one of its files) is not where the data root says it should be."""

    def __init__(self, dataset: str, path: object, hint: str | None = None) -> None:
        self.dataset = dataset
        self.path = path
        msg = f"dataset {dataset!r} not found at {path}."
        msg += " " + (hint or f"Run `medtask data fetch {dataset}` or set MEDTASK_DATA to the folder that holds it "
                      f"(see data_manifests/{dataset}.yml for how to obtain it).")
        super().__init__(msg)


class ChecksumError(MedtaskError):
    """A file's sha256 does not match the manifest."""


class CorruptFileError(MedtaskError):
    """A file exists but cannot be read/decoded, or has the wrong shape."""


class InvalidParameterError(MedtaskError, ValueError):
    """A parameter (notebook, model, degradation, strategy ...) is unknown or out of range."""


class FolderLayoutError(CorruptFileError):
    """A dataset folder is laid out wrongly: an empty or missing sub-folder, unpaired files, unknown split names."""
