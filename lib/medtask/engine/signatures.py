"""Short, stable descriptions of what a training consumed, for the keys of trained artefacts.

A checkpoint's key (:meth:`medtask.pipeline.Chapter.artefact_key`) must change whenever what it
was trained from changes. Besides the training's own parameters, two things are easy to miss:
the network's shape (a width or class-count parameter that a chapter passes through a builder)
and the view of the data it read (the split, a ``limit``, the working size). These functions
describe both without depending on how they were produced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from torch import nn


def network_signature(net: nn.Module) -> str:
    """The network's class and the name and shape of every parameter, hashed (16 hex).

    Buffers are left out: an entropy model's coding tables change size when it is updated for
    coding, which says nothing about the network that was trained.
    """
    h = hashlib.sha256(f"{type(net).__module__}.{type(net).__qualname__}".encode())
    for name, t in net.named_parameters():
        h.update(f"\n{name}:{tuple(t.shape)}:{t.dtype}".encode())
    return h.hexdigest()[:16]


def weights_digest(modules: dict[str, nn.Module]) -> str:
    """Hash of the weights a training starts from (every tensor of every module's state, by content)."""
    h = hashlib.sha256()
    for key in sorted(modules):
        for name, t in modules[key].state_dict().items():
            h.update(f"{key}.{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def samples_signature(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many samples, which ids (hashed, in order) and the first image's shape."""
    ids = "\n".join(str(s.get("id", i)) for i, s in enumerate(samples))
    first = samples[0]["image"] if len(samples) else None
    return {"n": len(samples), "ids": hashlib.sha256(ids.encode()).hexdigest()[:16],
            "image_shape": list(first.shape) if first is not None and hasattr(first, "shape") else None}
