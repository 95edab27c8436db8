"""Split rules for datasets without an official split, each deterministic and written down.

- :func:`block_split`: contiguous blocks of an ordered id list (video frames: neighbours are
  near-duplicates, so a random frame-level split would leak test content into training).
- :func:`group_split`: a seeded permutation of *groups* (e.g. a child's two eyes) so that every
  member of a group lands on the same side.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from medtask.errors import CorruptFileError, InvalidParameterError

SPLITS = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise InvalidParameterError(f"fractions must be three non-negative numbers summing to 1 (train, val, test), "
                                    f"got {tuple(fractions)}")
    return tuple(float(f) for f in fractions)  # type: ignore[return-value]


def numbered_ids(names: Sequence[str], dataset: str, folder: object, suffix: str = "") -> list[str]:
    """File stems ``1..N`` of a numbered frame sequence, in numeric order, checked before any block split.

    A stem that is not a number (a stray ``junk.png``) or a gap in the numbering (a missing frame,
    which would shift every later block boundary) raises :class:`CorruptFileError` naming the files.
    """
    stray = sorted(n for n in names if not n.isdigit())
    if stray:
        shown = ", ".join(f"{n}{suffix}" for n in stray[:10]) + (" ..." if len(stray) > 10 else "")
        raise CorruptFileError(
            f"{dataset}: {shown} in {folder} is not a numbered frame (frames are named N{suffix}, N = 1, 2, ...); "
            f"move it out of the folder, then run `medtask data verify {dataset}`.")
    ids = sorted(names, key=int)
    numbers = [int(i) for i in ids]
    if len(set(numbers)) != len(numbers):
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        raise CorruptFileError(f"{dataset}: frame number(s) {dup} appear twice in {folder} (e.g. 7{suffix} and "
                               f"007{suffix}); keep one of each, then run `medtask data verify {dataset}`.")
    expected = set(range(1, max(numbers) + 1)) if numbers else set()
    missing = sorted(expected - set(numbers))
    if missing:
        shown = ", ".join(f"{n}{suffix}" for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise CorruptFileError(
            f"{dataset}: frame(s) {shown} missing from {folder} (found {len(numbers)} of 1..{max(numbers)}); "
            "a block split would silently shift every later boundary. Restore the frame(s) and run "
            f"`medtask data verify {dataset}`.")
    return ids


def block_split(ids: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2), gap: int = 0
                ) -> dict[str, list[str]]:
    """Contiguous blocks of ``ids`` (in the given order): first ``train``, then ``val``, then ``test``.

    Block sizes are ``round(n * fraction)`` for train and val, the rest for test. ``gap`` ids are
    dropped at each of the two boundaries (a guard band against near-duplicate neighbours).
    """
    f = _check_fractions(fractions)
    n = len(ids)
    n_train = int(round(n * f[0]))
    n_val = int(round(n * f[1]))
    if gap < 0:
        raise InvalidParameterError(f"gap must be >= 0, got {gap}")
    train = list(ids[: max(0, n_train - gap)])
    val = list(ids[n_train: max(n_train, n_train + n_val - gap)])
    test = list(ids[n_train + n_val:])
    return {"train": train, "val": val, "test": test}


def group_split(ids: Sequence[str], group_of: Callable[[str], Hashable], n_val_groups: int, n_test_groups: int,
                seed: int = 0) -> dict[str, list[str]]:
    """Seeded split of whole groups: sorted groups are permuted with ``numpy.random.default_rng(seed)``;
    the first ``n_test_groups`` go to test, the next ``n_val_groups`` to val, the rest to train."""
    groups = sorted({group_of(i) for i in ids})
    if n_val_groups < 0 or n_test_groups < 0 or n_val_groups + n_test_groups >= len(groups):
        raise InvalidParameterError(f"cannot take {n_val_groups} val + {n_test_groups} test groups out of "
                                    f"{len(groups)} and leave any for training")
    order = np.random.default_rng(seed).permutation(len(groups))
    test_g = {groups[k] for k in order[:n_test_groups]}
    val_g = {groups[k] for k in order[n_test_groups:n_test_groups + n_val_groups]}
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i in ids:
        g = group_of(i)
        out["test" if g in test_g else "val" if g in val_g else "train"].append(i)
    return out


def random_split(ids: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
                 ) -> dict[str, list[str]]:
    """Seeded random split (each id its own group); order within a split follows ``ids``."""
    f = _check_fractions(fractions)
    n = len(ids)
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(round(n * f[0])), int(round(n * f[1]))
    rank = {int(k): r for r, k in enumerate(order)}
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for k, i in enumerate(ids):
        r = rank[k]
        out["train" if r < n_train else "val" if r < n_train + n_val else "test"].append(i)
    return out


def select(splits: dict[str, list[str]], split: str, dataset: str) -> list[str]:
    """The ids of ``split``; ``"all"`` is every id; ``"trainval"`` is train + val."""
    if split == "all":
        return [i for s in splits.values() for i in s]
    if split == "trainval" and "train" in splits and "val" in splits:
        return splits["train"] + splits["val"]
    if split not in splits:
        raise InvalidParameterError(f"dataset {dataset!r} has no split {split!r}; choose one of "
                                    f"{sorted(list(splits) + ['all'])}")
    return splits[split]
