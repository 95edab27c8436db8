"""Zoo entries: what network, trained on what, how, and judged by which validation metric.

An :class:`Entry` is a recipe. Subclasses say how to build the network (:meth:`build`), which
:class:`~medtask.engine.Strategy` trains it, on which batches, and how to score it on the
validation split (the curve) and on the test split (the card's final metrics). Entries are
registered by name with :func:`register`, the way CompressAI registers its models.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from medtask import data
from medtask.errors import InvalidParameterError
from medtask.engine.loop import Strategy


@dataclass
class Entry:
    """A zoo recipe. ``metric`` (a key of :meth:`evaluate`'s output) decides the plateau.

    ``smoke`` entries are seconds-long recipes on phantom data that let the test suite exercise a
    chapter's start from the zoo (trained into a temporary zoo, never into the repository's);
    :func:`entries` leaves them out unless asked.
    """

    name: str
    study: str
    description: str
    steps: int
    eval_every: int
    metric: str
    higher_is_better: bool
    parent: str | None = None
    grad_clip: float | None = 1.0
    data: list[dict[str, Any]] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    smoke: bool = False

    # -- what subclasses provide ---------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """A JSON description sufficient to rebuild the network before loading weights."""
        raise NotImplementedError

    def build(self) -> nn.Module:
        """The network with random weights (or the parent's, loaded by the trainer)."""
        raise NotImplementedError

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        raise NotImplementedError

    def batches(self, device: torch.device) -> Callable[[int], Any]:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """Scores on ``split`` ("val" for the curve, "test" for the card)."""
        raise NotImplementedError

    def schedulers(self, strategy: Strategy) -> dict[str, Any]:
        """Learning-rate schedules stepped once per step: cosine decay of every optimiser's main lr."""
        lr_min = float(self.hyperparameters.get("lr_min_factor", 0.05))
        return {k: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=self.steps, eta_min=o.param_groups[0]["lr"] * lr_min)
                for k, o in strategy.optimizers().items() if k != "aux"}

    def prepare_for_storage(self, model: nn.Module) -> nn.Module:
        """Last step before the weights are written (e.g. a codec's entropy-coder tables)."""
        return model

    # -- derived -------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """Everything that defines the trained weights (the run folder is keyed on its hash)."""
        return {"name": self.name, "architecture": self.architecture(), "data": self.data,
                "steps": self.steps, "parent": self.parent, "grad_clip": self.grad_clip,
                "hyperparameters": self.hyperparameters}

    def key(self) -> str:
        """Short hash of :meth:`spec`."""
        blob = json.dumps(self.spec(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def better(self, a: float, b: float) -> bool:
        """Whether metric value ``a`` is better than ``b``."""
        return a > b if self.higher_is_better else a < b


@lru_cache(maxsize=32)
def _split(name: str, split: str, size: tuple[int, ...], options: tuple[tuple[str, Any], ...]):
    return data.load(name, split, size=size, **dict(options))


def load_split(name: str, split: str, size: Any, options: dict[str, Any] | None = None):
    """``split`` of dataset ``name`` at ``size`` through :func:`medtask.data.load` (with loader ``options``), held
    in memory once per process: the recipes' training, curve and test sets."""
    size = (int(size),) * 2 if isinstance(size, (int, float)) else tuple(int(v) for v in size)
    return _split(name, split, size, tuple(sorted((options or {}).items())))


def load_item(item: dict[str, Any], split: str):
    """``split`` of one of an entry's data items (``{"dataset", "size"}`` with loader ``"options"``, or Study A's
    older top-level ``"split_rule"``, which its cards record) through :func:`load_split`."""
    options = item.get("options") or ({"split_rule": item["split_rule"]} if item.get("split_rule") else None)
    return load_split(item["dataset"], split, item["size"], options)


_REGISTRY: dict[str, Entry] = {}

#: The modules that define the study's entries (each calls :func:`register` for its own method's
#: networks); imported on the first call of :func:`entries`, so the zoo itself depends on no method.
RECIPE_MODULES = ("medtask.methods.mvmicnet.zoo",
                  "medtask.methods.angioqa.zoo",
                  "medtask.methods.gradprom.zoo")


def register(entry: Entry) -> Entry:
    """Add ``entry`` to the zoo's registry (names are unique)."""
    if entry.name in _REGISTRY:
        raise InvalidParameterError(f"zoo entry {entry.name!r} is registered twice")
    if entry.steps <= 0 or entry.eval_every <= 0:
        raise InvalidParameterError(f"zoo entry {entry.name!r}: steps and eval_every must be positive")
    _REGISTRY[entry.name] = entry
    return entry


def entries(smoke: bool = False) -> dict[str, Entry]:
    """Every registered entry, by name (the study's recipe modules are imported on first use);
    the smoke-test entries only with ``smoke=True``."""
    for module in RECIPE_MODULES:
        importlib.import_module(module)
    return {k: e for k, e in _REGISTRY.items() if smoke or not e.smoke}


def get(name: str) -> Entry:
    """The entry called ``name`` (smoke entries included); an error listing the names when there is none."""
    known = entries(smoke=True)
    if name not in known:
        raise InvalidParameterError(f"no zoo entry {name!r}; `medtask zoo list` shows them: {', '.join(sorted(entries()))}")
    return known[name]
