"""Where things are: the repository, the data root, the output tree; devices and seeds.

One setting finds the data: the environment variable ``MEDTASK_DATA`` (a notebook's
``data_root`` parameter overrides it); the default is ``data/`` in the repository.
``MEDTASK_OUTPUT`` moves everything the pipeline writes (executed notebooks, results,
cache, built book) away from the repository, which is what the tests do.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np

_PKG_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The repository checkout (``lib/medtask`` lives two levels below it)."""
    return _PKG_DIR.parent.parent


def data_root(override: str | os.PathLike | None = None) -> Path:
    """The folder holding one sub-folder per dataset: ``override`` > ``$MEDTASK_DATA`` > ``<repo>/data``."""
    if override not in (None, ""):
        return Path(override).expanduser().resolve()
    env = os.environ.get("MEDTASK_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return repo_root() / "data"


def output_root(override: str | os.PathLike | None = None) -> Path:
    """Root of everything the pipeline writes: ``override`` > ``$MEDTASK_OUTPUT`` > the repository."""
    if override not in (None, ""):
        return Path(override).expanduser().resolve()
    env = os.environ.get("MEDTASK_OUTPUT")
    return Path(env).expanduser().resolve() if env else repo_root()


def results_dir(chapter: str, profile: str, root: str | os.PathLike | None = None) -> Path:
    """The one predictable place for a chapter's results: ``<output>/results/<profile>/<chapter>/``."""
    return output_root(root) / "results" / profile / chapter


def display_path(path: str | os.PathLike, *, data: str | os.PathLike | None = None,
                 output: str | os.PathLike | None = None) -> str:
    """``path`` as a page may show it, without the folders of the machine that ran it.

    Under the data root (``data``, default ``$MEDTASK_DATA``): ``$MEDTASK_DATA/<rest>``; under the output root
    (``output``, default :func:`output_root`) or the repository: relative to it; under the home folder:
    ``~/<rest>``; anywhere else: its name, after ``.../``.
    """
    if not Path(path).expanduser().is_absolute():  # relative already (or shown already): as it is
        return str(path)
    p = Path(path).expanduser().resolve()
    data = data if data is not None else os.environ.get("MEDTASK_DATA") or None
    bases = [(Path(data), "$MEDTASK_DATA")] if data else []  # else: the default <repo>/data, under the repository
    for base, label in bases + [(output_root(output), ""), (repo_root(), ""), (Path.home().resolve(), "~")]:
        try:
            rest = p.relative_to(base.resolve())
        except ValueError:
            continue
        parts = [label] if label else []
        return "/".join(parts + [str(rest)] if str(rest) != "." else parts) or "."
    return ".../" + p.name


def scrub_paths(obj: Any, *, data: str | os.PathLike | None = None,
                output: str | os.PathLike | None = None) -> Any:
    """``obj`` (dicts, lists, strings) with every absolute path string replaced by :func:`display_path`'s form."""
    if isinstance(obj, dict):
        return {k: scrub_paths(v, data=data, output=output) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_paths(v, data=data, output=output) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and "\n" not in obj:
        return display_path(obj, data=data, output=output)
    return obj


def get_device(preference: str = "auto") -> "torch.device":  # noqa: F821
    """``"auto"`` picks CUDA when available, else CPU; otherwise the named device."""
    import torch

    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """``threads > 0`` fixes torch's intra-op threads; 0 keeps torch's default."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))


def setup(seed: int, threads: int, device: str = "auto") -> "torch.device":  # noqa: F821
    """A chapter's first call: seed everything, fix torch's threads (0 keeps its default), pick the device."""
    seed_everything(seed)
    set_threads(threads)
    return get_device(device)
