"""The declared types and ranges of chapter parameters, checked before any kernel starts.

Types come from the defaults of the notebook's ``parameters`` cell: a parameter whose default is an
``int`` takes an integer, a ``float`` any number, a ``str`` a string, a list a list, a dict a
mapping, a ``bool`` ``true``/``false``; a default of ``None`` takes anything. Ranges are declared
here, in :data:`RULES`, once for every chapter that has a parameter of that name; a chapter may add
or override rules under a ``schema:`` key of ``notebooks/profiles/<stem>.yml``, e.g.::

    schema:
      versions: {min: 2, max: 12}
      size: {type: size, min: 32}

A rule has any of ``type`` (``int``, ``number``, ``str``, ``bool``, ``list``, ``dict``, ``size``:
an integer or ``[H, W]``), ``min``, ``max``, ``exclusive_min`` (a bound the value must exceed),
``none`` (``None`` allowed too), ``items`` (a rule for each element of a list) and ``min_items``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from medtask.errors import InvalidParameterError

_STEPS = {"min": 1}
_LIMIT = {"min": 1, "none": True}
_POSITIVE = {"exclusive_min": 0}

#: name -> rule, for every chapter that has a parameter of that name
RULES: dict[str, dict[str, Any]] = {
    "seed": {"min": 0},
    # a dataset name: shipped, registered with `medtask data add`, folder:/path or a phantom; the chapter checks its task
    "dataset": {"type": "str"},
    "test_dataset": {"type": "str", "none": True},
    "datasets": {"min_items": 1, "items": {"type": "str"}},
    "spread_seeds": {"items": {"type": "int", "min": 0}},
    "threads": {"min": 0},
    "batch_size": {"min": 1},
    "task_batch_size": {"min": 1},
    "steps": _STEPS,
    "task_steps": {"min": 0},  # 0 keeps a zoo-started task network as trained (init="zoo"; the study checks)
    "rec_steps": {"min": 0},  # 0 keeps a zoo-started recogniser as trained (init="zoo"; the study checks)
    "mse_steps": {"min": 0},
    "extra_steps": {"min": 0},
    "stage2_steps": {"min": 0},
    "size": {"type": "size", "min": 8},
    "crop_source_size": {"type": "size", "min": 8},
    "crop": {"min": 8},
    "train_crop": {"type": "int", "min": 8, "none": True},
    "train_limit": _LIMIT,
    "test_limit": _LIMIT,
    "calib_limit": _LIMIT,
    "source_limit": _LIMIT,
    "stats_limit": _LIMIT,
    "lr": _POSITIVE,
    "task_lr": _POSITIVE,
    "finetune_lr": _POSITIVE,
    "scratch_lr": _POSITIVE,
    "lam": {"min": 0},
    "lambda1": _POSITIVE,
    "lambda2": {"min": 0, "max": 10},
    "lambdas": {"min_items": 1, "items": {"type": "number", "exclusive_min": 0}},
    "lambda2s": {"min_items": 1, "items": {"type": "number", "min": 0, "max": 10}},
    "sigmas": {"items": {"type": "number", "exclusive_min": 0}},
    "ablation_sigma": {"type": "number", "exclusive_min": 0, "none": True},  # None skips the ablation
    "task_scale": _POSITIVE,
    "erfnet_width": _POSITIVE,
    "width": {"min": 1},
    "depth": {"min": 1},
    "unet_base": {"min": 1},
    "unet_levels": {"min": 1},
    "baseline_width": {"min": 1},
    "vit_dim": {"min": 1},
    "versions": {"min": 1},
}


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None  # an expression papermill cannot evaluate either: no type is inferred


def _type_of(default: Any) -> str | None:
    if default is None:
        return None
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "number"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple)):
        return "list"
    if isinstance(default, dict):
        return "dict"
    return None


def chapter_rules(notebook: Path) -> dict[str, dict[str, Any]]:
    """The rule of every parameter of ``notebook``: type from its default, ranges from :data:`RULES` and the
    ``schema:`` key of its profile file."""
    from medtask.pipeline.profiles import notebooks_dir, parameter_cell

    declared: dict[str, dict[str, Any]] = {}
    prof = notebooks_dir() / "profiles" / f"{notebook.stem}.yml"
    if prof.is_file():
        declared = (yaml.safe_load(prof.read_text()) or {}).get("schema") or {}
    rules = {}
    for name, source in parameter_cell(notebook).items():
        rule: dict[str, Any] = {}
        inferred = _type_of(_literal(source))
        if inferred:
            rule["type"] = inferred
        rule.update(RULES.get(name, {}))
        rule.update(declared.get(name) or {})
        rules[name] = rule
    return rules


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _describe(rule: dict[str, Any]) -> str:
    if rule.get("type") == "size":
        inner = _describe({k: v for k, v in rule.items() if k not in ("type", "none")} | {"type": "int"})
        return f"{inner} (square) or [H, W] of two such integers" + (", or null (None)" if rule.get("none") else "")
    kind = {"int": "an integer", "number": "a number", "str": "a string", "bool": "true or false",
            "list": "a list", "dict": "a mapping", None: "a value"}[rule.get("type")]
    bounds = []
    if "min" in rule:
        bounds.append(f">= {rule['min']}")
    if "exclusive_min" in rule:
        bounds.append(f"> {rule['exclusive_min']}")
    if "max" in rule:
        bounds.append(f"<= {rule['max']}")
    text = kind + (" " + " and ".join(bounds) if bounds else "")
    if rule.get("min_items"):
        text += f" with at least {rule['min_items']} element(s)"
    if "items" in rule:
        text += ", each element " + _describe(rule["items"])
    if rule.get("none"):
        text += ", or null (None)"
    return text


def _problem(value: Any, rule: dict[str, Any]) -> bool:
    """True when ``value`` breaks ``rule``."""
    if value is None:
        return not (rule.get("none") or rule.get("type") is None)
    kind = rule.get("type")
    if kind == "size":
        values = [value] if _is_int(value) else list(value) if isinstance(value, (list, tuple)) else None
        if values is None or not (1 <= len(values) <= 2) or not all(_is_int(v) for v in values):
            return True
        return any(_problem(v, {k: r for k, r in rule.items() if k != "type"} | {"type": "int"}) for v in values)
    checks = {"int": _is_int, "number": _is_number, "str": lambda v: isinstance(v, str),
              "bool": lambda v: isinstance(v, bool), "list": lambda v: isinstance(v, (list, tuple)),
              "dict": lambda v: isinstance(v, dict)}
    if kind in checks and not checks[kind](value):
        return True
    if _is_number(value):
        if "min" in rule and value < rule["min"]:
            return True
        if "exclusive_min" in rule and value <= rule["exclusive_min"]:
            return True
        if "max" in rule and value > rule["max"]:
            return True
    if isinstance(value, (list, tuple)):
        if len(value) < rule.get("min_items", 0):
            return True
        if "items" in rule and any(_problem(v, rule["items"]) for v in value):
            return True
    return False


def validate(notebook: Path, params: dict[str, Any]) -> None:
    """Check every parameter against its rule; the first problem raises :class:`InvalidParameterError`
    naming the parameter, the value and what is allowed."""
    rules = chapter_rules(notebook)
    problems = [f"{name}={value!r} is not allowed: {name} must be {_describe(rules[name])}"
                for name, value in params.items() if name in rules and _problem(value, rules[name])]
    if problems:
        raise InvalidParameterError(
            f"{notebook.stem}: " + "; ".join(problems) + ". Fix the value (`-p NAME=VALUE`, parsed as YAML) or the "
            f"profile in notebooks/profiles/{notebook.stem}.yml; the allowed ranges are declared in "
            "lib/medtask/pipeline/schema.py and under `schema:` in that profile file.")
