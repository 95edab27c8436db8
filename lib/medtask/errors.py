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


class DataVerificationError(MedtaskError):
    """A chapter's dataset does not match its manifest's checksum list (or layout), so the chapter refuses to run."""

    def __init__(self, dataset: str, path: object, problems: list[str], fix: str, chapter: str = "CHAPTER") -> None:
        self.dataset = dataset
        self.path = path
        self.problems = list(problems)
        shown = "; ".join(self.problems[:10]) + (f"; ... and {len(self.problems) - 10} more"
                                                 if len(self.problems) > 10 else "")
        super().__init__(
            f"dataset {dataset!r} at {path} does not verify, so this chapter will not train on it: {shown}. "
            f"{fix} To run on this data anyway (the page then says so in a warning box), pass "
            f"`medtask run {chapter} --allow-unverified-data`.")


class DownloadError(MedtaskError, ConnectionError):
    """A dataset could not be downloaded (no network, server down, HTTP error)."""


class CheckpointError(MedtaskError):
    """A checkpoint file is truncated, unreadable or does not fit the network it is loaded into."""


class FolderLayoutError(CorruptFileError):
    """A dataset folder is laid out wrongly: an empty or missing sub-folder, unpaired files, unknown split names."""
