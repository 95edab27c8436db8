"""The "What we found" page is built from the chapters' claims tables, never typed."""

from __future__ import annotations

import pandas as pd
import pytest

from medtask.errors import MedtaskError
from medtask.pipeline.results import Chapter
from medtask.reporting import findings


def test_verdict_of_counts_cases():
    assert findings.verdict_of([True, True]) == "confirmed"
    assert findings.verdict_of([True, False, float("nan")]) == "mixed"
    assert findings.verdict_of([False]) == "contradicted"
    assert findings.verdict_of([None, float("nan")]) == "not tested"
    with pytest.raises(MedtaskError, match="not one of"):
        findings.claim_row("x", "1", "2", "probably")


def test_page_gathers_every_chapters_claims(tmp_path):
    root = tmp_path / "results" / "smoke"
    a3 = Chapter("a3_lambda2_ablation", profile="smoke", results_dir=root / "a3_lambda2_ablation")
    a3.save_table(findings.claims_frame([
        findings.claim_row("Best mIoU at λ2 = 1e-4", "1e-4 (58.0 %)", "1e-4 (47.0 ± 1.2 %)", "confirmed"),
        findings.claim_row("Lowest PSNR at λ2 = 0.1", "0.1 (24.25 dB)", "1e-4 (6.25 dB)", "contradicted")]), "claims")
    # the older form of A1/A2's table: no paper/ours, the count of rate points at which a claim holds
    (root / "a1_compression_segmentation").mkdir(parents=True)
    pd.DataFrame([{"claim": "stage 2 improves miou | over stage 1", "points_holding": "0/2", "verdict": "contradicted"}]
                 ).to_csv(root / "a1_compression_segmentation" / "claims.csv", index=False)
    (root / "b1_angio_quality").mkdir()  # ran, but wrote no claims table

    chapters = ["00_data", "a1_compression_segmentation", "a3_lambda2_ablation", "b1_angio_quality"]
    page = findings.write_findings_page(tmp_path / "findings.md", root, chapters, "smoke").read_text()
    assert page.startswith("# What we found")
    rows = [line for line in page.splitlines() if line.startswith("| {doc}")]
    assert [r.split("`")[1] for r in rows] == ["A1 <generated/a1_compression_segmentation>",
                                               "A3 <generated/a3_lambda2_ablation>",
                                               "A3 <generated/a3_lambda2_ablation>"]
    assert "stage 2 improves miou \\| over stage 1" in rows[0] and "holds at 0/2 rate points" in rows[0]
    assert "| 1e-4 (58.0 %) | 1e-4 (47.0 ± 1.2 %) | **confirmed** |" in rows[1]
    assert "**Verdicts:** confirmed 1, contradicted 2." in page
    assert "without a claims table: {doc}`generated/b1_angio_quality`" in page
    assert "00_data" not in page, "the data chapter checks no claim of a paper"
    assert "reduced scale" in page


def test_page_without_claims_says_so(tmp_path):
    table, without = findings.collect(tmp_path, [])
    page = findings.findings_markdown(table, "paper", without)
    assert "No chapter of this build has written a claims table yet." in page and "reduced scale" not in page


def test_a_claims_table_without_verdicts_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    pd.DataFrame([{"claim": "c"}]).to_csv(tmp_path / "x" / "claims.csv", index=False)
    with pytest.raises(MedtaskError, match="no column"):
        findings.read_claims(tmp_path / "x")
