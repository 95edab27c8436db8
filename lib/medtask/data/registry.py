"""The loader registry: each dataset's loader registers itself where it is defined.

    @loader("CVC-ColonDB")
    def load_colondb(path, split, *, size=None, limit=None, **options) -> Dataset: ...

A loader is ``fn(path, split, **options) -> Dataset``; one registered with ``with_copy=True``
also receives the manifest copy its files were found in: ``fn(path, copy, split, **options)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from medtask.errors import InvalidParameterError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredLoader:
    """A dataset's loader function, and whether it takes the manifest copy it was found in."""

    function: Callable[..., Any]
    with_copy: bool = False


#: canonical dataset name (as in its manifest) -> its loader
LOADERS: dict[str, RegisteredLoader] = {}


def loader(name: str, *, with_copy: bool = False) -> Callable[[F], F]:
    """Register the decorated function as the loader of dataset ``name`` (its manifest's name)."""

    def register(fn: F) -> F:
        if name in LOADERS and LOADERS[name].function is not fn:
            raise InvalidParameterError(f"dataset {name!r} already has a loader "
                                        f"({LOADERS[name].function.__module__}.{LOADERS[name].function.__name__}); "
                                        "give each dataset one loader")
        LOADERS[name] = RegisteredLoader(fn, with_copy)
        return fn

    return register
