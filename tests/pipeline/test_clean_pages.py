"""Executed pages show no folder of the machine that ran them: paths reach the kernel through the environment."""

from __future__ import annotations

from medtask import config
from medtask.pipeline.runner import PATH_PARAMETERS, injected_parameters, provenance_markdown


def test_injected_parameters_hold_no_folders():
    params = {"profile": "smoke", "seed": 0, "results_dir": "/tmp/out/results/smoke/x", "data_root": "/data", "steps": 3}
    injected = injected_parameters(params)
    assert injected == {"profile": "smoke", "seed": 0, "steps": 3}
    assert set(PATH_PARAMETERS) == {"results_dir", "data_root"}
    assert "results_dir" in params, "the caller's record keeps every parameter"


def test_display_path_hides_the_machine(tmp_path, monkeypatch):
    data, out = tmp_path / "datasets", tmp_path / "output"
    monkeypatch.setenv("MEDTASK_DATA", str(data))
    monkeypatch.setenv("MEDTASK_OUTPUT", str(out))
    assert config.display_path(data) == "$MEDTASK_DATA"
    assert config.display_path(data / "DRIVE" / "a.png") == "$MEDTASK_DATA/DRIVE/a.png"
    assert config.display_path(out / "results" / "cpu" / "a1") == "results/cpu/a1"
    assert config.display_path(config.repo_root() / "zoo" / "x.pt") == "zoo/x.pt"
    elsewhere = config.display_path("/opt/somewhere/deep/file.csv")
    assert elsewhere == ".../file.csv" and "/opt" not in elsewhere
    monkeypatch.delenv("MEDTASK_DATA")  # the default data root is the repository's data/
    assert config.display_path(config.repo_root() / "data" / "DRIVE") == "data/DRIVE"


def test_provenance_box_names_unverified_data_without_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTASK_DATA", str(tmp_path))
    rec = {"chapter": "x", "profile": "cpu", "wall_seconds": 1.0, "git": {}, "device": {}, "datasets": {},
           "packages": {}, "parameters": {"results_dir": str(tmp_path / "r"), "data_root": str(tmp_path)},
           "data_checks": [{"dataset": "Toy", "path": str(tmp_path / "Toy"), "status": "failed, used anyway",
                            "problems": ["images/1.png: checksum differs"]}]}
    text = provenance_markdown(rec)
    assert "`$MEDTASK_DATA/Toy`" in text and str(tmp_path) not in text


def test_notebook_metadata_names_folders_as_pages_do(tmp_path):
    data, out = tmp_path / "datasets", tmp_path / "output"
    record = {"parameters": {"results_dir": str(out / "results" / "smoke" / "x"), "data_root": str(data), "seed": 0},
              "artefacts": [{"path": str(out / "checkpoints" / "smoke" / "x" / "net-ab12.pt"), "reused": False}],
              "data_checks": [{"path": str(data / "DRIVE")}], "created": "2026-12-01T00:00:00", "note": "/a\nb"}
    shown = config.scrub_paths(record, data=data, output=out)
    assert shown["parameters"] == {"results_dir": "results/smoke/x", "data_root": "$MEDTASK_DATA", "seed": 0}
    assert shown["artefacts"][0] == {"path": "checkpoints/smoke/x/net-ab12.pt", "reused": False}
    assert shown["data_checks"][0]["path"] == "$MEDTASK_DATA/DRIVE"
    assert shown["created"] == record["created"] and shown["note"] == record["note"]
    assert config.display_path("$MEDTASK_DATA/DRIVE") == "$MEDTASK_DATA/DRIVE", "a shown path stays as it is"
