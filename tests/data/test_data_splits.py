"""Split rules: disjoint, covering, deterministic; groups never straddle splits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtask.data import splits
from medtask.errors import InvalidParameterError


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 400), gap=st.integers(0, 3), seed=st.integers(0, 1000))
def test_block_and_random_splits_partition(n, gap, seed):
    ids = [str(i) for i in range(n)]
    b = splits.block_split(ids, (0.6, 0.2, 0.2), gap=gap)
    r = splits.random_split(ids, (0.6, 0.2, 0.2), seed=seed)
    for part in (b, r):
        got = part["train"] + part["val"] + part["test"]
        assert len(got) == len(set(got))
    assert sorted(r["train"] + r["val"] + r["test"], key=int) == ids
    if gap == 0:
        assert b["train"] + b["val"] + b["test"] == ids  # contiguous, in order
    assert r == splits.random_split(ids, (0.6, 0.2, 0.2), seed=seed)


@settings(max_examples=40, deadline=None)
@given(n_groups=st.integers(4, 30), seed=st.integers(0, 1000))
def test_group_split_keeps_groups_together(n_groups, seed):
    ids = [f"{g:02d}{e}" for g in range(n_groups) for e in "LR"]
    s = splits.group_split(ids, lambda i: i[:2], 1, 2, seed=seed)
    side = {}
    for name, part in s.items():
        for i in part:
            assert side.setdefault(i[:2], name) == name
    assert len({i[:2] for i in s["test"]}) == 2 and len({i[:2] for i in s["val"]}) == 1


def test_bad_fractions_and_groups():
    with pytest.raises(InvalidParameterError):
        splits.block_split(["a", "b"], (0.5, 0.6, 0.1))
    with pytest.raises(InvalidParameterError):
        splits.group_split(["a", "b"], lambda i: i, 1, 1)
    with pytest.raises(InvalidParameterError, match="no split"):
        splits.select({"train": ["a"], "test": ["b"]}, "val", "X")
    assert splits.select({"train": ["a"], "val": ["c"], "test": ["b"]}, "trainval", "X") == ["a", "c"]


def _colondb_copy(tmp_path, n=12):
    """A tiny CVC-ColonDB layout (``images/N.png``, ``masks/N.png``, N = 1..n) under ``tmp_path``."""
    import numpy as np
    from PIL import Image

    d = tmp_path / "CVC-ColonDB"
    for sub in ("images", "masks"):
        (d / sub).mkdir(parents=True)
    for k in range(1, n + 1):
        Image.fromarray(np.full((8, 8, 3), k, np.uint8)).save(d / "images" / f"{k}.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "masks" / f"{k}.png")
    return d


def test_block_split_names_a_stray_file_and_refuses_a_missing_frame(tmp_path):
    from medtask.data.colon import load_colondb
    from medtask.errors import CorruptFileError

    d = _colondb_copy(tmp_path)
    assert [s["id"] for s in load_colondb(d, "test")] == ["10", "11", "12"]  # blocks of 1..12: 7 / 2 / 3
    (d / "images" / "junk.png").write_bytes((d / "images" / "1.png").read_bytes())
    with pytest.raises(CorruptFileError, match=r"junk\.png.*not a numbered frame"):
        load_colondb(d, "train")
    (d / "images" / "junk.png").unlink()
    (d / "images" / "5.png").unlink()  # a missing frame would shift every later boundary by one
    with pytest.raises(CorruptFileError, match=r"frame\(s\) 5\.png missing"):
        load_colondb(d, "test")


def test_colondb_split_boundaries_follow_the_block_split():
    from medtask.data.colon import split_boundaries

    assert split_boundaries([str(i) for i in range(1, 381)]) == [(228.5, "train | val"), (304.5, "val | test")]
