"""The zoo's files: ``zoo/<name>.pt`` (weights) and ``zoo/<name>.json`` (its card), checked by sha256.

Weights are a plain ``state_dict`` in the storage format the card names (:data:`STORAGE_FORMATS`, the
smallest that was measured to cost nothing), read with ``torch.load(weights_only=True)`` after their
sha256 has been compared with the card's, and returned in float32. ``MEDTASK_ZOO`` points elsewhere
(a user's own zoo).
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
    return from_storage(state)


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


#: the storage formats, smallest first: ``int8`` stores weight tensors (:func:`int8_candidate`) as int8 with one
#: float32 scale per output channel and everything else as ``float16`` does; ``float16`` stores floating tensors in
#: float16 except those it cannot hold (:func:`fits_float16`); ``float32`` stores them as trained.
STORAGE_FORMATS = ("int8", "float16", "float32")
#: key suffix of an int8 tensor's per-output-channel scales in a stored ``state_dict``
INT8_SCALE = ".int8_scale"
#: a floating tensor with at least two dimensions and this many elements (a convolution, linear or attention
#: weight) is stored in int8 by the ``int8`` format; biases, norms and small tensors are not
INT8_MIN_NUMEL = 1024


def int8_candidate(v: torch.Tensor) -> bool:
    """Whether the ``int8`` format stores ``v`` in int8 (a finite floating weight tensor, see :data:`INT8_MIN_NUMEL`)."""
    return (v.is_floating_point() and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL
            and bool(torch.isfinite(v).all()))


def quantize_int8(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``(q, scale)`` with ``v ≈ q * scale`` (``scale`` over dimension 0)."""
    flat = v.detach().float().reshape(v.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(v.shape), scale


def _format(fmt: str | torch.dtype) -> str:
    name = str(fmt).replace("torch.", "")
    if name not in STORAGE_FORMATS:
        raise ValueError(f"unknown zoo storage format {fmt!r}; choose one of {STORAGE_FORMATS}")
    return name


def to_storage(state: dict[str, torch.Tensor], fmt: str | torch.dtype) -> dict[str, torch.Tensor]:
    """``state`` in storage format ``fmt`` (:data:`STORAGE_FORMATS`; integers, e.g. entropy-coder tables, unchanged).

    For float16, a tensor that float16 cannot hold (:func:`fits_float16`) stays float32: a few small tensors
    that would otherwise underflow to zero, beside weights that halve. For int8, each weight tensor becomes an
    int8 tensor plus its scales under ``<key>`` :data:`INT8_SCALE`; :func:`from_storage` reverses both.
    """
    fmt = _format(fmt)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if fmt == "int8" and int8_candidate(v):
            out[k], out[k + INT8_SCALE] = quantize_int8(v)
        elif not v.is_floating_point() or fmt == "float32" or not fits_float16(v):
            out[k] = v
        else:
            out[k] = v.half()
    return {k: v.contiguous() for k, v in out.items()}


def from_storage(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 ``state_dict`` of a stored one (:func:`to_storage` in any format); integers unchanged."""
    out: dict[str, torch.Tensor] = {}
    for k, v in stored.items():
        if k.endswith(INT8_SCALE):
            continue
        scale = stored.get(k + INT8_SCALE)
        if scale is not None:
            out[k] = (v.float().reshape(v.shape[0], -1) * scale[:, None]).reshape(v.shape)
        else:
            out[k] = v.float() if v.is_floating_point() else v
    return out


def storage_of(stored: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Which keys of a stored ``state_dict`` are int8 and which floating ones float32 (the rest is float16 or int)."""
    return {"int8": sorted(k.removesuffix(INT8_SCALE) for k in stored if k.endswith(INT8_SCALE)),
            "kept_float32": sorted(k for k, v in stored.items()
                                   if v.dtype == torch.float32 and not k.endswith(INT8_SCALE))}


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
