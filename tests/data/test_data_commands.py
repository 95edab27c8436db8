"""The `medtask data` command functions and their argparse registration."""

from __future__ import annotations

import argparse
import shutil


from medtask.data import commands


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="medtask")
    sub = ap.add_subparsers(dest="cmd", required=True)
    commands.register(sub.add_parser("data").add_subparsers(dest="data_command", required=True))
    return ap


def test_list_on_an_empty_root(tmp_path, capsys):
    rows = commands.list_datasets(tmp_path)
    assert len(rows) == 15 and not any(r["present"] for r in rows)
    assert {"name", "folder", "tasks", "present", "verified", "n_files", "licence"} <= set(rows[0])
    args = _parser().parse_args(["data", "list", "--data-root", str(tmp_path)])
    assert args.func(args) == 0
    assert "CVC-ColonDB" in capsys.readouterr().out


def test_verify_and_fetch_exit_codes(tmp_path, capsys, need):
    ap = _parser()
    args = ap.parse_args(["data", "verify", "camus", "--data-root", str(tmp_path)])
    assert args.func(args) == 1 and "obtained by hand" in capsys.readouterr().out
    args = ap.parse_args(["data", "fetch", "DRIVE", "--data-root", str(tmp_path)])
    assert args.func(args) == 1 and "grand-challenge" in capsys.readouterr().out
    args = ap.parse_args(["data", "verify", "nonsense", "--data-root", str(tmp_path)])
    assert args.func(args) == 2
    shutil.copytree(need("ARCADE_stenosis_mini_subset"), tmp_path / "ARCADE_stenosis_mini_subset")
    rep = commands.verify_dataset("arcade", tmp_path)
    assert rep.ok and "46 files match" in rep.summary()
    (tmp_path / "ARCADE_stenosis_mini_subset" / "mini_test" / "masks" / "42.jpg").write_bytes(b"x")
    args = ap.parse_args(["data", "verify", "ARCADE", "--data-root", str(tmp_path)])
    assert args.func(args) == 1 and "checksum mismatch: mini_test/masks/42.jpg" in capsys.readouterr().out
    args = ap.parse_args(["data", "verify", "ARCADE", "--no-checksums", "--data-root", str(tmp_path)])
    assert args.func(args) == 1 and "cannot be decoded: mini_test/masks/42.jpg" in capsys.readouterr().out


def test_verify_without_checksums_decodes_images_and_notices_a_truncated_one(tmp_path, capsys, need):
    shutil.copytree(need("ARCADE_stenosis_mini_subset"), tmp_path / "ARCADE_stenosis_mini_subset")
    img = tmp_path / "ARCADE_stenosis_mini_subset" / "mini_test" / "images" / "100.jpg"
    img.write_bytes(img.read_bytes()[: img.stat().st_size // 2])  # cut in half, as an interrupted copy leaves it
    ap = _parser()
    args = ap.parse_args(["data", "verify", "ARCADE", "--no-checksums", "--data-root", str(tmp_path)])
    out = capsys.readouterr().out if args.func(args) == 0 else capsys.readouterr().out + "<rc 1>"
    assert "<rc 1>" in out and "cannot be decoded: mini_test/images/100.jpg" in out
    # ARCADE's files are placed by hand: the fix says so instead of suggesting a download
    assert "can only be obtained by hand" in out and "re-fetch" not in out.lower()


def test_data_help_says_how_to_run_a_chapter_on_own_data(capsys):
    import pytest

    from medtask.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["data", "--help"])
    out = capsys.readouterr().out
    assert "medtask data add my-polyps" in out and "dataset=folder:/data/my-polyps" in out
    assert "test_dataset=CVC-ClinicDB" in out and "Run it on your data" in out
