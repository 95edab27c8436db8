"""The zoo's files: ``zoo/<name>.pt`` (weights) and ``zoo/<name>.json`` (its card), checked by sha256.

Weights are a plain ``state_dict`` (floating tensors in the dtype the card names, float16 where
that was measured to cost nothing), read with ``torch.load(weights_only=True)`` after their
sha256 has been compared with the card's. ``MEDTASK_ZOO`` points elsewhere (a user's own zoo).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from medtask.config import repo_root
from medtask.errors import MedtaskError


class ZooError(MedtaskError):
    """A zoo entry is missing, corrupt or does not match its card."""


def zoo_dir() -> Path:
    """The zoo folder: ``$MEDTASK_ZOO`` or ``zoo/`` in the repository."""
    env = os.environ.get("MEDTASK_ZOO")
    return Path(env).expanduser() if env else repo_root() / "zoo"


def weights_path(name: str, root: Path | None = None) -> Path:
    return (root or zoo_dir()) / f"{name}.pt"


def card_path(name: str, root: Path | None = None) -> Path:
    return (root or zoo_dir()) / f"{name}.json"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(name: str, root: Path | None = None) -> dict[str, Any]:
    """The card of entry ``name``; :class:`ZooError` (with how to get it) when it is not in the zoo."""
    path = card_path(name, root)
    if not path.is_file():
        raise ZooError(f"zoo entry {name!r} has no card at {path}; train it with `medtask zoo train {name}` "
                       "(or check out the repository's zoo/ folder, or set MEDTASK_ZOO)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ZooError(f"zoo card {path} is not valid JSON ({exc}); restore it with `git checkout -- {path.name}` "
                       f"or retrain with `medtask zoo train {name}`") from exc


def verify_entry(name: str, root: Path | None = None) -> dict[str, Any]:
    """Check that ``name``'s weights exist and match the sha256 on its card; return the card."""
    card = read_card(name, root)
    path = weights_path(name, root)
    if not path.is_file():
        raise ZooError(f"zoo entry {name!r}: weights {path} are missing; restore them from the repository "
                       f"(git lfs is not used: `git checkout -- zoo/{path.name}`) or run `medtask zoo train {name}`")
    digest = sha256(path)
    if digest != card["sha256"]:
        raise ZooError(f"zoo entry {name!r}: {path} has sha256 {digest[:16]}…, its card says {card['sha256'][:16]}…; "
                       f"the file is corrupt or was replaced. Restore it (`git checkout -- zoo/{path.name}`) or "
                       f"retrain with `medtask zoo train {name}`")
    return card


def read_weights(name: str, root: Path | None = None) -> dict[str, torch.Tensor]:
    """The verified ``state_dict`` of ``name``, floating tensors as float32."""
    verify_entry(name, root)
    path = weights_path(name, root)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise ZooError(f"zoo entry {name!r}: cannot read {path} ({exc.__class__.__name__}: {exc}); "
                       f"retrain with `medtask zoo train {name}`") from exc
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


#: a tensor is stored in float16 only if the cast moves no element by more than this fraction of the tensor's
#: largest magnitude (float16 keeps 11 significant bits, 2**-11). A tensor outside float16's range, such as GDN's
#: 1e-11 pedestals or an entropy model's 1e-9 likelihood bound (which would become 0), stays float32; a weight
#: tensor whose few tiny elements flush to zero beside large ones does not.
FP16_RELATIVE = 2.0 ** -10


def fits_float16(v: torch.Tensor) -> bool:
    """Whether float16 holds ``v`` to :data:`FP16_RELATIVE` of its largest magnitude (and stays finite)."""
    v = v.detach().float()
    back = v.half().float()
    return bool(torch.isfinite(back).all()) and bool((back - v).abs().max() <= FP16_RELATIVE * v.abs().max())


def to_storage(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``state`` with its floating tensors cast to ``dtype`` (integers, e.g. entropy-coder tables, unchanged).

    For float16, a tensor that float16 cannot hold (:func:`fits_float16`) stays float32: a few small tensors
    that would otherwise underflow to zero, beside weights that halve.
    """
    def cast(v: torch.Tensor) -> torch.Tensor:
        if not v.is_floating_point() or (dtype == torch.float16 and not fits_float16(v)):
            return v.detach()
        return v.detach().to(dtype)

    return {k: cast(v).cpu().contiguous() for k, v in state.items()}


def write_entry(name: str, state: dict[str, torch.Tensor], card: dict[str, Any], root: Path | None = None) -> Path:
    """Write weights then card (atomically each); the card gets the weights' sha256 and size."""
    root = root or zoo_dir()
    root.mkdir(parents=True, exist_ok=True)
    wpath = weights_path(name, root)
    tmp = wpath.with_name(wpath.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, wpath)
    card = {**card, "sha256": sha256(wpath), "bytes": wpath.stat().st_size}
    cpath = card_path(name, root)
    tmp = cpath.with_name(cpath.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, cpath)
    return wpath


def present(root: Path | None = None) -> list[str]:
    """Names of the entries whose card is in the zoo folder."""
    root = root or zoo_dir()
    return sorted(p.stem for p in root.glob("*.json")) if root.is_dir() else []
