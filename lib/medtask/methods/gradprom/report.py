"""Study C (GradProm) report: gradient-cosine diagnostics, the step-cost sentence, published numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from medtask.engine import TrainResult
from medtask.metrics import spread
from medtask.reporting import findings
from medtask.reporting.published import published_table
from medtask.zoo.report import starts_note


def describe_step_cost(cost: pd.DataFrame, target: float = 1.3) -> str:
    """One Markdown sentence: GradProm's step cost relative to Joint, its quartiles, and the target."""
    row = cost.set_index("variant").loc["gradprom"]
    verdict = "within" if row["ratio_to_joint"] <= target else "above"
    return (f"One GradProm step costs **{row['ratio_to_joint']:.2f}×** one Joint step here (quartiles over rounds "
            f"{row['ratio_q1']:.2f}–{row['ratio_q3']:.2f}; {verdict} the {target}× target).")


def cosine_log(histories: dict[str, TrainResult], **labels: Any) -> pd.DataFrame:
    """Long table of the per-step cosine and gate of every task-driven strategy (for plots)."""
    frames = []
    for name, res in histories.items():
        df = res.frame()
        if "cos" not in df:
            continue
        frames.append(df[["step", "cos", "gate", "conflict", "dropped", "loss_ip", "loss_vr"]].assign(strategy=name, **labels))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cosine_summary(log: pd.DataFrame, by: Sequence[str] = ("strategy",)) -> pd.DataFrame:
    """Per strategy: mean / quartiles of cos(G_IP, G_VR), fraction of conflicting steps and of dropped G_VR."""
    if log.empty:
        return log
    g = log.groupby(list(by))
    out = g["cos"].describe()[["count", "mean", "25%", "50%", "75%"]].rename(
        columns={"count": "steps", "mean": "cos_mean", "25%": "cos_q25", "50%": "cos_median", "75%": "cos_q75"})
    out["conflict_frac"] = g["conflict"].mean()
    out["dropped_frac"] = g["dropped"].mean()
    return out.reset_index()


PUBLISHED_CSV = """method,backbone,sigma,psnr_db,ssim,note
Frozen-params,,0.1,32.152,0.906,Table 1/2 of the paper
GradProm,,0.1,33.383,0.915,Table 1/2 of the paper
ESTR,ResNet-101,0.1,33.723,,Table 5
ESTR,ResNet-101,0.2,25.925,,Table 5
ESTR,ResNet-101,0.3,20.163,,Table 5
ADAP,,0.1,34.858,,Table 5
ADAP,,0.2,24.926,,Table 5
ADAP,,0.3,20.373,,Table 5
GradProm,ResNet-101,0.1,36.173,,Table 5
GradProm,ResNet-101,0.2,28.024,,Table 5
GradProm,ResNet-101,0.3,23.703,,Table 5
"""


#: how the claims name the strategies GradProm is compared with
LABELS = {"frozen": "Frozen", "joint": "Joint", "benchmark-i": "Benchmark-i", "bicubic": "bicubic"}


def delta(table: pd.DataFrame, a: str, b: str, metric: str = "psnr_db", **where: Any) -> float:
    """``metric`` of strategy ``a`` minus that of strategy ``b``, among the rows whose columns equal ``where``."""
    for column, value in where.items():
        table = table[table[column] == value]
    t = table.set_index("strategy")
    return float(t.loc[a, metric] - t.loc[b, metric])


def settings_of(table: pd.DataFrame) -> list[str]:
    """The supervision settings a table's rows were trained in, in order (references' ``"-"`` left out)."""
    return [s for s in dict.fromkeys(table["setting"]) if s != "-"]


def grid_claims(table: pd.DataFrame, settings: Sequence[str], sigmas: Sequence[float], task_metric: str,
                task_label: str, task_against: Sequence[str] = ("joint",), psnr_note: str = "") -> list[str]:
    """One line per (setting, σ) of a noise grid: GradProm's PSNR against Frozen, Joint and Benchmark-i, and its
    ``task_metric`` against ``task_against``."""
    lines = []
    for setting in settings:
        for sigma in sigmas:
            def d(b: str, metric: str) -> float:
                return delta(table, "gradprom", b, metric, setting=setting, sigma=sigma)

            psnr = ", ".join(f"GradProm − {LABELS[b]} = {d(b, 'psnr_db'):+.3f} dB" for b in ("frozen", "joint", "benchmark-i"))
            task = ", ".join(f"GradProm − {LABELS[b]} = {d(b, task_metric):+.3f}" for b in task_against)
            lines.append(f"- {setting}, σ={sigma}: {psnr}{psnr_note}; {task_label} {task}.")
    return lines


def extension_claims(sr: pd.DataFrame, comp: pd.DataFrame, cross: pd.DataFrame, two: pd.DataFrame,
                     focus: pd.DataFrame, sr_factors: Sequence[int]) -> list[str]:
    """Chapter C3's claims from its tables: super-resolution, composite degradation, cross-domain, two
    auxiliaries and Grad-CAM focus (GradProm's differences in PSNR, dB)."""
    lines = [f"- SR ×{f}: GradProm − Frozen = {delta(sr, 'gradprom', 'frozen', factor=f):+.3f} dB, GradProm − Joint = "
             f"{delta(sr, 'gradprom', 'joint', factor=f):+.3f} dB, GradProm − bicubic = "
             f"{delta(sr, 'gradprom', 'bicubic', factor=f):+.3f} dB." for f in sr_factors]
    for setting in settings_of(comp):
        lines.append(f"- composite, {setting}: GradProm − Joint = {delta(comp, 'gradprom', 'joint', setting=setting):+.3f} dB, "
                     f"GradProm − Frozen = {delta(comp, 'gradprom', 'frozen', setting=setting):+.3f} dB, "
                     f"GradProm − Benchmark-i = {delta(comp, 'gradprom', 'benchmark-i', setting=setting):+.3f} dB (paper: +0.384 dB).")
        lines.append(f"- cross-domain CT → endoscopy, {setting}: GradProm − Frozen = "
                     f"{delta(cross, 'gradprom', 'frozen', setting=setting):+.3f} dB, GradProm − Benchmark-i = "
                     f"{delta(cross, 'gradprom', 'benchmark-i', setting=setting):+.3f} dB.")
    g = two[two["strategy"] == "gradprom"].set_index("auxiliary")
    lines.append(f"- two auxiliaries (GradProm): PSNR {g.loc['classifier', 'psnr_db']:.3f} (classifier) / "
                 f"{g.loc['segmenter', 'psnr_db']:.3f} (segmenter) / {g.loc['both', 'psnr_db']:.3f} dB (both); "
                 "the paper reports that both at once hurts.")
    lines.append(f"- the crops' recognisers on clean test crops: {crops_recognisers(two)}.")
    f = focus.set_index("input")["cam_mass_in_polyp"]
    lines.append(f"- CAM mass inside the polyp: GradProm {f.get('gradprom output', np.nan):.3f}, Joint "
                 f"{f.get('joint output', np.nan):.3f}, Frozen {f.get('frozen output', np.nan):.3f}, uniform map {f.iloc[0]:.3f}.")
    return lines


def _beats(claim: str, diffs: Sequence[float], paper: str, unit: str) -> dict[str, str]:
    """A claims-table row: GradProm's differences over the cases (positive = the claim holds in that case)."""
    d = [x for x in diffs if x == x]
    ours = (f"holds in {sum(x > 0 for x in d)}/{len(d)} cases; mean difference {np.mean(d):+.3f}{unit}" if d
            else "not measured")
    return findings.claim_row(claim, paper, ours, findings.verdict_of([x > 0 for x in d]))


def grid_findings(table: pd.DataFrame, settings: Sequence[str], sigmas: Sequence[float], task_metric: str,
                  task_label: str, task_against: Sequence[str] = ("joint",)) -> pd.DataFrame:
    """A noise grid's claims table (:mod:`medtask.reporting.findings`): GradProm against Benchmark-i, Frozen and
    Joint in PSNR, and against ``task_against`` in ``task_metric``, each over every (setting, σ) case."""
    cases = [(st, sg) for st in settings for sg in sigmas]

    def diffs(b: str, metric: str) -> list[float]:
        return [delta(table, "gradprom", b, metric, setting=st, sigma=sg) for st, sg in cases]

    rows = [_beats(f"GradProm's PSNR > {LABELS[b]}'s (every setting and σ)", diffs(b, "psnr_db"),
                   "higher (the paper's claim)", " dB") for b in ("benchmark-i", "frozen", "joint")]
    rows += [_beats(f"GradProm's {task_label} > {LABELS[b]}'s (every setting and σ)", diffs(b, task_metric),
                    "higher (the paper's claim)", "") for b in task_against]
    return findings.claims_frame(rows)


def extension_findings(sr: pd.DataFrame, comp: pd.DataFrame, two: pd.DataFrame, sr_factors: Sequence[int]) -> pd.DataFrame:
    """Chapter C3's claims table (:mod:`medtask.reporting.findings`): super-resolution, composite degradation and
    two auxiliaries at once, GradProm's PSNR differences in dB."""
    settings = settings_of(comp)
    rows = [_beats(f"Super-resolution: GradProm's PSNR > {LABELS[b]}'s (×{', ×'.join(map(str, sr_factors))})",
                   [delta(sr, "gradprom", b, factor=f) for f in sr_factors], "higher (the paper's claim)", " dB")
            for b in ("bicubic", "frozen", "joint")]
    rows.append(_beats(f"Composite degradation: GradProm's PSNR > Benchmark-i's ({' and '.join(settings)})",
                       [delta(comp, "gradprom", "benchmark-i", setting=st) for st in settings], "+0.384 dB", " dB"))
    g = two[two["strategy"] == "gradprom"].set_index("auxiliary")["psnr_db"]
    best_single = max(g.get("classifier", np.nan), g.get("segmenter", np.nan))
    claim, paper = "Two auxiliaries at once give a lower PSNR than the better single one", "lower (the paper reports that both at once hurts)"
    if classifier_at_chance(two):  # an auxiliary that has learned nothing sends no task information to the enhancer
        rows.append(findings.claim_row(claim, paper, f"not tested: {crops_recognisers(two)}", "not tested"))
    else:
        rows.append(_beats(claim, [best_single - g.get("both", np.nan)], paper, " dB"))
    return findings.claims_frame(rows)


#: a classifier whose AUC on clean test images is within this of 0.5 has learned nothing it can pass on
CHANCE_AUC_MARGIN = 0.1


def _clean_row(two: pd.DataFrame, auxiliary: str) -> pd.Series | None:
    rows = two[(two["auxiliary"] == auxiliary) & (two["strategy"] == "clean (upper bound)")]
    return rows.iloc[0] if len(rows) else None


def classifier_at_chance(two: pd.DataFrame) -> bool:
    """Whether the two-auxiliary experiment's clean-trained classifier scores an AUC within
    :data:`CHANCE_AUC_MARGIN` of 0.5 on the clean test crops."""
    row = _clean_row(two, "classifier")
    return row is not None and abs(float(row["auc"]) - 0.5) < CHANCE_AUC_MARGIN


def crops_recognisers(two: pd.DataFrame) -> str:
    """The two-auxiliary experiment's clean-trained recognisers on clean test crops, in words."""
    cls, seg = _clean_row(two, "classifier"), _clean_row(two, "segmenter")
    parts = []
    if cls is not None:
        parts.append(f"classifier accuracy {cls['accuracy']:.3f}, AUC {cls['auc']:.3f}"
                     + (" (at chance: it has learned nothing it could pass on to the enhancer)"
                        if classifier_at_chance(two) else ""))
    if seg is not None:
        parts.append(f"U-Net polyp Dice {seg['dice']:.3f}")
    return "; ".join(parts) or "not measured"


def diagnosis_claims(table: pd.DataFrame, summary: pd.DataFrame, pairs: pd.DataFrame | None, pub: pd.DataFrame,
                     settings: Sequence[str], sigmas: Sequence[float], seeds: Sequence[int],
                     spread_sigma: float | None) -> list[str]:
    """Chapter C1's claims: the grid's differences, how often GradProm dropped G_VR, the paper's gains (from its
    published table), and GradProm's same-seed differences over ``seeds`` (``pairs``)."""
    lines = grid_claims(table, settings, sigmas, "accuracy", "accuracy", psnr_note=" PSNR")
    gp = summary[summary["strategy"] == "gradprom"]
    lines.append(f"- GradProm dropped the auxiliary gradient on {100 * gp['dropped_frac'].mean():.1f}% of its steps on average "
                 f"(range {100 * gp['dropped_frac'].min():.1f}–{100 * gp['dropped_frac'].max():.1f}% across settings); "
                 f"Joint training saw conflicting gradients (cos < 0) on "
                 f"{100 * summary[summary['strategy'] == 'joint']['conflict_frac'].mean():.1f}% of its steps.")
    t12 = pub[pub["note"].str.startswith("Table 1")].set_index("method")["psnr_db"]
    estr = pub[pub["method"] == "ESTR"].sort_values("sigma")
    gains = pub[(pub["method"] == "GradProm") & (pub["note"] == "Table 5")].set_index("sigma")["psnr_db"]
    vs_estr = [gains[s] - e for s, e in zip(estr["sigma"], estr["psnr_db"])]
    lines.append(f"- Paper (ISIC 2018, σ=0.1): GradProm − Frozen-params = {t12['GradProm'] - t12['Frozen-params']:+.3f} dB; "
                 f"GradProm − ESTR (Table 5) = {' / '.join(f'{g:+.3f}' for g in vs_estr)} dB at σ = "
                 f"{' / '.join(f'{s:g}' for s in estr['sigma'])}.")
    for r in (pairs if pairs is not None else pd.DataFrame()).itertuples():
        lines.append(f"- Over seeds {list(seeds)} (supervised, σ={spread_sigma}): GradProm − {r.reference} = "
                     f"{r.psnr_db_diff:+.3f} ± {r.psnr_db_diff_sd:.3f} dB PSNR, accuracy {r.accuracy_diff:+.3f} ± "
                     f"{r.accuracy_diff_sd:.3f} (mean ± sd of the same-seed difference).")
    return lines


def table5_comparison(table: pd.DataFrame, pub: pd.DataFrame, sigmas: Sequence[float]) -> pd.DataFrame:
    """Per σ: our supervised Frozen and GradProm (PSNR, SSIM, gain) beside the paper's ESTR, ADAP and GradProm (Table 5)."""
    sup = table[(table["setting"] == "supervised")].set_index(["strategy", "sigma"])
    rows = []
    for sigma in sigmas:
        ours_f, ours_g = sup.loc[("frozen", sigma)], sup.loc[("gradprom", sigma)]
        p = pub[pub["sigma"] == sigma].set_index("method")
        t5 = p.loc[p["note"] == "Table 5", "psnr_db"]
        rows.append({"sigma": sigma,
                     "ours_frozen_psnr": ours_f["psnr_db"], "ours_gradprom_psnr": ours_g["psnr_db"],
                     "ours_gain_db": ours_g["psnr_db"] - ours_f["psnr_db"],
                     "ours_frozen_ssim": ours_f["ssim"], "ours_gradprom_ssim": ours_g["ssim"],
                     "paper_ESTR_psnr": p["psnr_db"].get("ESTR"), "paper_ADAP_psnr": p["psnr_db"].get("ADAP"),
                     "paper_GradProm_psnr": t5.get("GradProm"),
                     "paper_gain_vs_ESTR_db": t5.get("GradProm", np.nan) - p["psnr_db"].get("ESTR", np.nan)})
    return pd.DataFrame(rows)


def published() -> pd.DataFrame:
    """GradProm's published ISIC 2018 numbers (Zhang & Cheng 2025), with their ``source``."""
    return published_table("gradprom_isic2018.csv", PUBLISHED_CSV)


# -- what chapters C1-C3 show beside their tables ---------------------------------------------------------
def grid_pivot(table: pd.DataFrame, metrics: Sequence[str], columns: str = "sigma",
               index: Sequence[str] = ("setting", "strategy")) -> pd.DataFrame:
    """``metrics`` per ``index`` row and ``columns`` value (σ, factor, setting), in the runs' order, rounded to 3 places."""
    return table.pivot_table(index=list(index), columns=columns, values=list(metrics), sort=False).round(3)


def class_counts(train: Any, test: Any) -> pd.DataFrame:
    """Images per class in the training and test splits."""
    return pd.DataFrame({"train": train.class_counts(), "test": test.class_counts()})


def tables12_sentence(pub: pd.DataFrame) -> str:
    """The paper's Tables 1/2 (ISIC 2018, σ = 0.1): PSNR and SSIM per method, with the tables' source (Markdown)."""
    t12 = pub[pub["note"].str.startswith("Table 1")][["method", "sigma", "psnr_db", "ssim"]]
    return ("Paper, Tables 1/2 (ISIC 2018, σ = 0.1): "
            + "; ".join(f"{r.method} {r.psnr_db:.3f} dB / SSIM {r.ssim:.3f}" for r in t12.itertuples())
            + f". Source: `{pub['source'].iloc[0]}`.")


def foreground_sentence(train: Any, test: Any, size: Sequence[int]) -> str:
    """How many frames at which size, and the share of polyp pixels in the test set (Markdown)."""
    polyp_frac = float(torch.stack([s["mask"] for s in test]).float().mean())
    return (f"{len(train)} training and {len(test)} test frames at {size[0]}×{size[1]} px; "
            f"polyp pixels are {100 * polyp_frac:.1f}% of the test set.")


def gradient_sentence(summary: pd.DataFrame) -> str:
    """How often GradProm dropped the auxiliary gradient and Joint saw conflicting ones (a claims line)."""
    gp = summary[summary["strategy"] == "gradprom"]
    return (f"- GradProm dropped the auxiliary gradient on {100 * gp['dropped_frac'].mean():.1f}% of its steps on average; "
            f"Joint saw cos < 0 on {100 * summary[summary['strategy'] == 'joint']['conflict_frac'].mean():.1f}% of its steps.")


def ran_for(minutes: float, profile: str) -> str:
    """The claims' last line: how long the chapter ran, on which profile."""
    return f"- This chapter ran {minutes:.1f} min on profile `{profile}`."


#: the paper's cross-domain numbers, quoted (chapter C3)
CROSS_DOMAIN_NOTE = ("Paper (ISIC 2018 → Lizard), reported relative to ESTR: 13.273 dB / SSIM 0.325 unsupervised, "
                     "13.825 dB / 0.458 supervised — the paper's phrasing does not make clear whether these are "
                     "absolute values or differences, so they are quoted, not compared.")


def crops_sentence(crops_train: Any, crops_test: Any) -> str:
    """What the polyp crops of both splits hold (Markdown, one line each)."""
    return f"Training crops: {crops_train.describe()}  \nTest crops: {crops_test.describe()}"


def two_auxiliaries_view(two: pd.DataFrame) -> pd.DataFrame:
    """The two-auxiliaries table's image and task columns (those present), rounded to 3 places."""
    cols = [c for c in ["auxiliary", "strategy", "psnr_db", "ssim", "accuracy", "auc", "miou", "dice"] if c in two]
    return two[cols].round(3)


def spread_summary(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and sd over seeds of ``metrics`` per strategy, rounded to 3 places."""
    return spread.seed_summary(runs, ["strategy"], metrics).round(3)


def cosine_logs(*grids: Any) -> pd.DataFrame:
    """The cosine logs of several experiments (each with ``cosine_log``), one below the other."""
    return pd.concat([g.cosine_log for g in grids], ignore_index=True)


def start_note(chapter: Any, init: str, comparison: pd.DataFrame | None = None, metric: str = "accuracy",
               settings: Sequence[str] = ("supervised", "unsupervised")) -> str:
    """Markdown: the zoo entries this run's networks started from (their cards' figures) or random weights, the
    rule for unsupervised enhancers (when ``settings`` has that setting), and, from the zoo, what the same
    strategy trained from random weights reaches."""
    text = starts_note(chapter.zoo_cards, init)
    if init != "zoo":
        return text
    if "unsupervised" in settings:
        text += ("\n\nUnsupervised enhancers start from random weights: the zoo's enhancers were trained on clean "
                 "targets, which the unsupervised setting never sees.")
    if comparison is None or comparison.empty:
        return text
    z, s = comparison.iloc[0], comparison.iloc[1]
    return text + (f"\n\n**What the start changes.** {z['strategy']} at σ = {z['sigma']}, supervised, given the same "
                   f"{int(z['steps_in_chapter'])} steps in this chapter: from the zoo (learning rate {z['lr']:g}) "
                   f"{z['psnr_db']:.2f} dB ({metric} {z[metric]:.3f}); from random weights (learning rate {s['lr']:g}) "
                   f"{s['psnr_db']:.2f} dB ({metric} {s[metric]:.3f}).")


#: the study's targets: the clean-trained recogniser on clean test images (the COVID-CT classifier's accuracy; the
#: polyp Dice of Study A's segmentation anchor on CVC-ColonDB), and every enhancer's PSNR gain at σ = 0.2
RECOGNISER_TARGETS = {"accuracy": ("Classifier", "slices", 0.75), "dice": ("U-Net", "frames", 0.50)}
GAIN_TARGET_DB = 8.0
TARGET_SIGMA = 0.2


def targets_table(table: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """The study's targets beside this run's values (``target``, ``threshold``, ``ours``, ``met``): the clean-trained
    recogniser's ``metric`` on the clean test images (threshold :data:`RECOGNISER_TARGETS`), and each trained
    strategy's PSNR gain over the noisy input at σ = :data:`TARGET_SIGMA`, supervised (no rows for it when the run
    has no such setting)."""
    clean = table[table["strategy"] == "clean (upper bound)"]
    rows = []
    if len(clean):
        network, images, threshold = RECOGNISER_TARGETS[metric]
        score = float(clean[metric].iloc[0])
        rows.append({"target": f"{network} (Benchmark-ii) {metric} on the clean test {images}",
                     "threshold": f">= {threshold:.2f}", "ours": score, "met": score >= threshold})
    at = table[np.isclose(table.get("sigma", np.nan), TARGET_SIGMA) & (table.get("setting") == "supervised")]
    noisy = at.loc[at["strategy"] == "degraded input", "psnr_db"]
    if len(noisy):
        for _, row in at[at["enhancer_start"].notna()].iterrows():  # the rows of trained enhancers say where they started
            gain = float(row["psnr_db"] - noisy.iloc[0])
            rows.append({"target": f"{row['strategy']} at σ = {TARGET_SIGMA}, supervised: PSNR gain over the noisy input (dB)",
                         "threshold": f">= +{GAIN_TARGET_DB:g}", "ours": gain, "met": gain >= GAIN_TARGET_DB})
    return pd.DataFrame(rows, columns=["target", "threshold", "ours", "met"])
