"""Provenance: what produced a result (code version, parameters, data, packages, device, time)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import platform
import subprocess
from typing import Any

from medtask.config import repo_root

PACKAGES = (
    "medtask", "torch", "torchvision", "compressai", "numpy", "pillow", "pillow-heif",
    "pytorch-msssim", "torchmetrics", "timm", "grad-cam", "scikit-image", "pandas", "papermill",
)


def git_state() -> dict[str, Any]:
    """The checkout's commit and whether its tracked files differ from it (``dirty``)."""
    root = repo_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, check=True, timeout=20).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    """CPU model and core count; the CUDA device name where one is visible."""
    import os

    info: dict[str, Any] = {"machine": platform.machine(), "cpu_count": os.cpu_count(), "cpu": platform.processor()}
    try:  # a busy machine stretches wall times: record how busy it was
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # pragma: no cover - torch missing or broken driver
        info["cuda"] = None
    return info


def dataset_fingerprints(names: list[str], data_root: Any = None) -> dict[str, Any]:
    """Label -> digest of the actual bytes of each dataset used (a shipped one's name, ``NAME (registered
    folder PATH)`` or ``unregistered folder PATH``; see :mod:`medtask.data.sources`). A shipped copy
    whose layout differs from its manifest is still fingerprinted by its bytes, and marked."""
    from medtask.data import sources

    out: dict[str, Any] = {}
    for name in names:
        try:
            key = sources.label(name, data_root)
        except Exception:  # an unknown name is recorded under itself
            key = name
        try:
            out[key] = sources.fingerprint(name, data_root, strict=False)
        except Exception as exc:  # a phantom or unverifiable dataset is recorded, not fatal
            out[key] = f"unavailable: {exc.__class__.__name__}: {exc}"
    return out


def collect(
    *, profile: str | None = None, parameters: dict[str, Any] | None = None,
    datasets: list[str] | None = None, data_root: Any = None, wall_seconds: float | None = None,
) -> dict[str, Any]:
    """One provenance record (JSON-serialisable)."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "profile": profile,
        "parameters": parameters or {},
        "datasets": dataset_fingerprints(datasets or [], data_root),
        "packages": package_versions(),
        "python": platform.python_version(),
        "device": device_info(),
        "wall_seconds": wall_seconds,
    }
