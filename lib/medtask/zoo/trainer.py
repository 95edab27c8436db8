"""Train a zoo entry to its last step with a validation curve, judge the plateau, write weights + card.

Training goes through :func:`medtask.engine.fit` in chunks of ``eval_every`` steps; after each
chunk the network is scored on the validation split and the point is appended to the curve.
The run folder (``<output>/zoo-runs/<name>-<key>/``, outside git) holds the resumable
checkpoint and the curve so far: an interrupted training resumes where it stopped, and a run
whose recipe changed starts a new folder (the key hashes the whole recipe).

Under ``torchrun`` (``medtask zoo train NAME --nproc N``) every rank trains (``fit`` is
data-parallel, the recipe's ``batch_size`` is the global batch); rank 0 alone evaluates, writes
the curve, the run state and the entry (CompressAI's ``update()`` for storage runs there), while
the others wait for it at the next chunk and return once training ends.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medtask import config, provenance
from medtask.engine import distributed
from medtask.engine.loop import fit
from medtask.zoo.registry import Entry, entries, get
from medtask.zoo.store import (STORAGE_FORMATS, ZooError, from_storage, read_card, read_weights, storage_of,
                               to_storage, verify_entry, write_entry)

#: The plateau rule of the cards: the last ``PLATEAU_FRACTION`` of the steps gain less than
#: ``PLATEAU_TOLERANCE`` (relative) on the entry's validation metric.
PLATEAU_FRACTION = 0.2
PLATEAU_TOLERANCE = 0.02
#: a storage format smaller than float32 is used when it moves the test metric by at most this (relative).
STORAGE_TOLERANCE = 0.002


def runs_dir() -> Path:
    """Where zoo trainings keep their resumable state: ``$MEDTASK_ZOO_RUNS`` or ``<output>/zoo-runs``."""
    env = os.environ.get("MEDTASK_ZOO_RUNS")
    return Path(env).expanduser() if env else config.output_root() / "zoo-runs"


def plateau(curve: list[dict[str, Any]], metric: str, higher_is_better: bool, steps: int,
            fraction: float = PLATEAU_FRACTION, tolerance: float = PLATEAU_TOLERANCE) -> dict[str, Any]:
    """Relative gain of ``metric`` over the last ``fraction`` of the steps, and whether it is below ``tolerance``."""
    start = steps * (1 - fraction)
    before = [r for r in curve if r["step"] <= start]
    if not before or curve[-1]["step"] < steps:
        return {"from_step": None, "to_step": curve[-1]["step"] if curve else None, "relative_gain": None,
                "flat": False, "rule": f"last {fraction:.0%} of steps gain < {tolerance:.0%}"}
    ref, final = before[-1][metric], curve[-1][metric]
    scale = max(abs(ref), 1e-12)  # a metric still at 0 (e.g. Dice before any foreground is found)
    gain = (final - ref) / scale if higher_is_better else (ref - final) / scale
    return {"from_step": before[-1]["step"], "to_step": curve[-1]["step"], "relative_gain": round(gain, 5),
            "flat": bool(gain < tolerance), "rule": f"last {fraction:.0%} of steps gain < {tolerance:.0%}"}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _initial(entry: Entry, root: Path | None) -> tuple[nn.Module, dict[str, Any] | None]:
    """The network to start from: random (seed 0), or the parent entry's verified weights."""
    torch.manual_seed(0)
    model = entry.build()
    if entry.parent is None:
        return model, None
    card = verify_entry(entry.parent, root)
    model.load_state_dict(read_weights(entry.parent, root))
    return model, {"name": entry.parent, "sha256": card["sha256"]}


def train(name: str, *, device: str = "auto", threads: int | None = None, progress: bool = True,
          root: Path | None = None, runs: Path | None = None) -> dict[str, Any]:
    """Train zoo entry ``name`` (resuming its run if one exists), write ``zoo/<name>.pt`` and its card.

    Under ``torchrun`` the ranks other than 0 return ``{}`` (rank 0 returns the card).
    """
    entry = get(name)
    distributed.init()
    main = distributed.is_main()
    dev = config.get_device(device)
    if threads:
        torch.set_num_threads(int(threads))
    model, parent = _initial(entry, root)
    run = (runs or runs_dir()) / f"{name}-{entry.key()}"
    if main:
        run.mkdir(parents=True, exist_ok=True)
        started = (json.loads((run / "spec.json").read_text()).get("git_at_start") if (run / "spec.json").exists()
                   else None)
        _write_json(run / "spec.json", {**entry.spec(), "git_at_start": started or provenance.git_state()})
    curve, result = train_curve(entry, model, dev, run / "curve.json", run / "train.pt", main=main, progress=progress)
    if not main:
        return {}
    return finalize(entry, model, curve, result.seconds if result else 0.0, parent, dev, root, run)


def train_curve(entry: Entry, model: nn.Module, device: torch.device, curve_path: Path, checkpoint: Path, *,
                main: bool = True, progress: bool = True) -> tuple[list[dict[str, Any]], Any]:
    """Train ``model`` by ``entry``'s recipe to its last step in chunks of ``eval_every``, scoring the validation
    split after each; resumes from ``checkpoint`` and ``curve_path``. Returns the curve and the last ``fit`` result.

    The recipe's ``precision`` hyperparameter (``"fp32"`` unless set) is :func:`fit`'s.
    """
    strategy = entry.strategy(model, device)
    schedulers = entry.schedulers(strategy)
    batches = entry.batches(device)
    precision = entry.hyperparameters.get("precision", "fp32")
    curve: list[dict[str, Any]] = json.loads(curve_path.read_text()) if main and curve_path.exists() else []
    if main and not curve:
        t0 = time.perf_counter()
        curve.append({"step": 0, **entry.evaluate(model, "val", device), "train_seconds": 0.0,
                      "eval_seconds": time.perf_counter() - t0})
        _write_json(curve_path, curve)
    ends = sorted({*range(entry.eval_every, entry.steps, entry.eval_every), entry.steps})
    result = None
    for end in ends:
        result = fit(strategy, batches, end, checkpoint=checkpoint, checkpoint_every=entry.eval_every,
                     grad_clip=entry.grad_clip, schedulers=schedulers, progress=progress, desc=entry.name,
                     precision=precision)
        if not main or any(r["step"] == end for r in curve):
            continue
        chunk = result.history[-entry.eval_every:]
        recent = [h["loss"] for h in chunk if "loss" in h and not h.get("skipped")]
        t0 = time.perf_counter()
        scores = entry.evaluate(model, "val", device)
        curve.append({"step": end, **scores, "train_loss": sum(recent) / max(len(recent), 1),
                      "skipped_steps": sum(1 for h in chunk if h.get("skipped")),
                      "train_seconds": result.seconds, "eval_seconds": time.perf_counter() - t0})
        _write_json(curve_path, curve)
        print(f"[{entry.name}] step {end}/{entry.steps}: " + ", ".join(f"{k}={v:.4g}" for k, v in scores.items()),
              flush=True)
    return curve, result


def choose_storage(entry: Entry, state: dict[str, torch.Tensor], reference: dict[str, float],
                   device: torch.device, formats: tuple[str, ...] = STORAGE_FORMATS[:-1]
                   ) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    """The first of ``formats`` (smallest first) whose stored ``state`` scores ``entry``'s test metric within
    :data:`STORAGE_TOLERANCE` of ``reference`` (the float32 network's test scores), each scored as it will be
    loaded; float32 if none does. Returns ``(format, stored state, storage record for the card)``."""
    ref = reference[entry.metric]
    record: dict[str, Any] = {"test_float32": reference, "tolerance": STORAGE_TOLERANCE}
    for fmt in formats:
        stored = to_storage(state, fmt)
        net = entry.build()
        net.load_state_dict(from_storage(stored))
        scores = entry.evaluate(entry.prepare_for_storage(net), "test", device)
        record[f"test_{fmt}"] = scores
        if abs(scores[entry.metric] - ref) <= STORAGE_TOLERANCE * max(abs(ref), 1e-12):
            return fmt, stored, {"dtype": fmt, **record, **storage_of(stored)}
    return "float32", to_storage(state, "float32"), {"dtype": "float32", **record, "int8": [], "kept_float32": []}


def finalize(entry: Entry, model: nn.Module, curve: list[dict[str, Any]], train_seconds: float,
             parent: dict[str, Any] | None, device: torch.device, root: Path | None, run: Path) -> dict[str, Any]:
    """Score the trained network on the test split in float32, store it in the smallest faithful format."""
    t0 = time.perf_counter()
    model = entry.prepare_for_storage(model)
    test32 = entry.evaluate(model, "test", device)
    fmt, stored, storage = choose_storage(entry, model.state_dict(), test32, device)
    names = [d["dataset"] for d in entry.data]
    card = {
        "name": entry.name, "study": entry.study, "description": entry.description,
        "command": f"medtask zoo train {entry.name}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": json.loads((run / "spec.json").read_text())["git_at_start"], "git_at_finish": provenance.git_state(),
        "recipe_key": entry.key(),
        "architecture": entry.architecture(), "parent": parent,
        "data": entry.data, "data_fingerprints": provenance.dataset_fingerprints(sorted(set(names))),
        "steps": entry.steps, "eval_every": entry.eval_every, "grad_clip": entry.grad_clip,
        "processes": distributed.world_size(),
        "hyperparameters": entry.hyperparameters,
        "train_seconds": round(train_seconds, 1),
        "skipped_steps": sum(r.get("skipped_steps", 0) for r in curve),
        "eval_seconds": round(sum(r.get("eval_seconds", 0.0) for r in curve) + time.perf_counter() - t0, 1),
        "device": provenance.device_info(), "python": platform.python_version(),
        "packages": provenance.package_versions(),
        "metric": entry.metric, "higher_is_better": entry.higher_is_better,
        "curve": curve, "plateau": plateau(curve, entry.metric, entry.higher_is_better, entry.steps),
        "test": storage[f"test_{fmt}"], "storage": storage,
        "run_folder": run.name,
    }
    write_entry(entry.name, stored, card, root)
    return read_card(entry.name, root)


def shrink(name: str, *, device: str = "auto", root: Path | None = None) -> dict[str, Any]:
    """Store trained entry ``name`` again in the smallest faithful format (:func:`choose_storage`), measured against
    the float32 test scores on its card. The weights' sha256 changes if the format does; the card keeps the old
    one under ``storage.shrunk``. Returns the (new) card."""
    entry, card = get(name), current_card(name, root)
    now = card["storage"]["dtype"]
    smaller = STORAGE_FORMATS[:STORAGE_FORMATS.index(now)]
    reference = card["storage"].get("test_float32", card["test"])
    fmt, stored, storage = choose_storage(entry, read_weights(name, root), reference, config.get_device(device),
                                          smaller)
    if fmt not in smaller:  # nothing smaller is faithful: the entry stays as it is
        return card
    previous = {"dtype": now, "sha256": card["sha256"], "bytes": card["bytes"],
                "on": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git": provenance.git_state()}
    write_entry(name, stored, {**card, "test": storage[f"test_{fmt}"],
                               "storage": {**card["storage"], **storage, "shrunk": previous}}, root)
    return read_card(name, root)


def current_card(name: str, root: Path | None = None) -> dict[str, Any]:
    """The card of entry ``name`` after checking its weights' sha256 and that the code's recipe is the one it was
    trained from (:class:`ZooError` naming the retraining command otherwise)."""
    entry, card = get(name), verify_entry(name, root)
    if card.get("recipe_key") != entry.key():
        raise ZooError(f"zoo entry {name!r} was trained from another recipe (card key {card.get('recipe_key')}, "
                       f"code key {entry.key()}); retrain it with `medtask zoo train {name}`")
    return card


def load(name: str, device: str | torch.device = "cpu", root: Path | None = None) -> nn.Module:
    """The trained network of entry ``name`` in eval mode, after checking its sha256 and recipe."""
    current_card(name, root)
    model = get(name).build()
    model.load_state_dict(read_weights(name, root))
    return model.to(device).eval()


def load_into(net: nn.Module, name: str, root: Path | None = None) -> dict[str, Any]:
    """Copy entry ``name``'s verified weights into ``net`` (a chapter's own network) and return its card.

    Raises :class:`ZooError` naming both architectures when ``net`` does not match the entry.
    """
    trained = load(name, root=root)
    try:
        net.load_state_dict(trained.state_dict())
    except RuntimeError as exc:
        raise ZooError(f"zoo entry {name!r} is {get(name).architecture()}, which this chapter's network does not "
                       f"match ({str(exc).splitlines()[0]}); set the chapter's network sizes to the entry's, or use "
                       "init='scratch'") from exc
    return read_card(name, root)


def verify(root: Path | None = None) -> dict[str, str]:
    """Name -> "ok" or the problem, for every registered entry (a missing entry is reported, not raised)."""
    out: dict[str, str] = {}
    for name, entry in sorted(entries().items()):
        try:
            card = verify_entry(name, root)
            out[name] = "ok" if card.get("recipe_key") == entry.key() else (
                f"stale: trained from recipe {card.get('recipe_key')}, the code's is {entry.key()}")
        except ZooError as exc:
            out[name] = str(exc)
    return out
