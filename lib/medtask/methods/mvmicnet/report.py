"""Study A (MVMICNet) report: published tables, BD tables, the paper's claims checked, speed.

These turn the results table of :func:`medtask.methods.mvmicnet.study.run_sweep` into what the
chapters show; none of them trains or evaluates a network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from medtask.data.io import parse_size
from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet.codecs import classic
from medtask.methods.mvmicnet.study import ARCH_LABEL, CompressionStudy, Decoded, Sweep
from medtask.metrics.bdrate import bd_table
from medtask.metrics.image import msssim_settings
from medtask.reporting import findings
from medtask.reporting.published import published_table
from medtask.reporting.tables import side_by_side
from medtask.zoo.report import starts_note

PUBLISHED_FILES = {"table1": "mvmicnet_table1_cvc_colondb.csv", "tables2_3": "mvmicnet_tables2_3_chestx_det.csv",
                   "table4": "mvmicnet_table4_lambda2.csv"}


def published(name: str) -> pd.DataFrame:
    """A published MVMICNet table (``table1``, ``tables2_3``, ``table4``), with its ``source``."""
    if name not in PUBLISHED_FILES:
        raise InvalidParameterError(f"unknown published table {name!r}; choose from {list(PUBLISHED_FILES)}")
    return published_table(PUBLISHED_FILES[name], _EMBEDDED[name])


def curves(df: pd.DataFrame, y: str, x: str = "bpp") -> dict[str, tuple[list[float], list[float]]]:
    """``{method: (rates, values)}`` from a results table, for :func:`medtask.metrics.bdrate.bd_table`."""
    out = {}
    for m, g in df.groupby("method", sort=False):
        g = g.dropna(subset=[x, y]).drop_duplicates(subset=[x]).sort_values(x)  # a classic codec stuck at its
        if len(g) >= 2:                                                          # knob limit repeats a point
            out[m] = (g[x].tolist(), g[y].tolist())
    return out


def bd_tables(df: pd.DataFrame, metrics: Sequence[str], method: str = "pchip") -> pd.DataFrame:
    """Every method (column) against every anchor (row), per quality metric: BD-rate in % (needs quality
    rising with rate) and BD-quality in the metric's units (needs only distinct rates)."""
    blocks = []
    for m in metrics:
        for kind, label in (("rate", "BD-rate %"), ("quality", f"BD-{m}")):
            t = bd_table(curves(df, m), method=method, kind=kind)
            t.insert(0, "measure", label)
            t.insert(0, "metric", m)
            blocks.append(t.reset_index())
    return pd.concat(blocks, ignore_index=True)


def msssim_note(size: int | Sequence[int]) -> str:
    """How MS-SSIM was computed at this image size (for the chapter prose)."""
    s = msssim_settings(*parse_size(size))
    return (f"MS-SSIM: pytorch-msssim with {s['scales']} scales, {s['win_size']}-px Gaussian window, weights "
            f"{[round(w, 4) for w in s['weights']]} (the standard 5-scale/11-px setting needs > 160 px)")


_EMBEDDED = {
    "table1": """method,point,bpp,psnr_db,ms_ssim,miou_stage1,miou_stage2
BPG,1,0.090,30.02,0.908,0.4987,
BPG,2,0.100,31.40,0.929,0.5591,
BPG,3,0.114,33.01,0.944,0.6183,
BPG,4,0.132,34.53,0.956,0.6683,
MBT2018-Mean,1,0.080,32.55,0.907,0.6135,
MBT2018-Mean,2,0.094,33.84,0.938,0.6745,
MBT2018-Mean,3,0.111,35.15,0.952,0.7220,
MBT2018-Mean,4,0.130,35.98,0.969,0.7548,
Cheng2020-Anchor,1,0.068,36.45,0.934,0.6971,
Cheng2020-Anchor,2,0.089,37.98,0.952,0.7435,
Cheng2020-Anchor,3,0.112,39.04,0.972,0.7898,
Cheng2020-Anchor,4,0.137,39.82,0.978,0.8192,
MVMICNet,1,0.065,40.38,0.982,0.7804,0.8226
MVMICNet,2,0.083,41.25,0.984,0.8252,0.8317
MVMICNet,3,0.105,42.08,0.987,0.8326,0.8490
MVMICNet,4,0.131,42.83,0.989,0.8337,0.8645
""",
    "tables2_3": """method,quality,bpp,psnr_db,ms_ssim,map_50_95_stage1,map_50_95_stage2,ap50_stage1,ap50_stage2,ap75_stage1,ap75_stage2
MVMICNet,1,0.047,41.14,0.9847,0.0797,0.0838,0.1649,0.1759,0.0693,0.0719
MVMICNet,2,0.060,41.93,0.9877,0.0899,0.0949,0.1901,0.2036,0.0820,0.0847
MVMICNet,3,0.074,42.57,0.9898,0.1010,0.1056,0.2184,0.2304,0.0920,0.0936
MVMICNet,4,0.089,43.10,0.9913,0.1154,0.1201,0.2410,0.2536,0.1006,0.1031
BPG,q34,0.046,35.98,0.9594,0.0300,,0.0640,,0.0235,
BPG,q31,0.060,37.50,0.9695,0.0491,,0.1069,,0.0363,
BPG,q28,0.079,38.76,0.9767,0.0300,,0.0640,,0.0235,
BPG,q25,0.091,39.52,0.9834,0.0934,,0.2033,,0.0847,
MBT2018-Mean,q5,0.041,37.36,0.9691,0.0484,,0.1024,,0.0361,
MBT2018-Mean,q4,0.054,38.60,0.9740,0.0699,,0.1427,,0.0542,
MBT2018-Mean,q3,0.072,39.98,0.9788,0.0864,,0.1831,,0.0723,
MBT2018-Mean,q2,0.097,40.81,0.9845,0.0967,,0.2141,,0.0871,
Cheng2020-Anchor,q5,0.043,39.41,0.9796,0.0649,,0.1282,,0.0554,
Cheng2020-Anchor,q4,0.061,40.63,0.9832,0.0840,,0.1734,,0.0747,
Cheng2020-Anchor,q3,0.079,41.63,0.9854,0.0967,,0.2082,,0.0876,
Cheng2020-Anchor,q2,0.093,42.36,0.9866,0.1062,,0.2237,,0.0924,
""",
    "table4": """lambda2,bpp,psnr_db,miou_percent,accuracy_percent
0.1,0.25230,24.250,33.040,45.5
0.001,0.24560,31.880,45.780,63.0
0.0001,0.24320,35.080,58.030,79.9
0.00001,0.24310,34.570,52.710,72.6
""",
}


def accuracy_curves_frame(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Long table for rate–accuracy plots/BD: MVMICNet's stage 2 becomes its own method ``MVMICNet (stage 2)``."""
    a = df[["method", "bpp", f"{metric}_stage1"]].rename(columns={f"{metric}_stage1": metric})
    s2 = df[df["method"] == "MVMICNet"][["bpp", f"{metric}_stage2"]].rename(columns={f"{metric}_stage2": metric})
    s2.insert(0, "method", "MVMICNet (stage 2)")
    return pd.concat([a, s2], ignore_index=True)


def claims(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The paper's qualitative claims checked against our table, per rate point: claim, what the paper reports,
    ours (at how many rate points it holds, and the mean difference), verdict (:mod:`medtask.reporting.findings`)."""
    piv = df.pivot_table(index="point", columns="method", values=[f"{metric}_stage1", "psnr_db", "bpp"])
    out = []

    def add(claim: str, a: pd.Series, b: pd.Series, paper: str, unit: str = "") -> None:
        diff = (a - b).dropna()
        ok = (diff > 0).tolist()
        ours = f"holds at {sum(ok)}/{len(ok)} rate points; mean difference {diff.mean():+.3f}{unit}" if ok else "not measured"
        out.append(findings.claim_row(claim, paper, ours, findings.verdict_of(ok)))

    m1 = f"{metric}_stage1"
    if "MVMICNet" in piv[m1]:
        for base in ("MBT2018-Mean", "Cheng2020-Anchor", classic.HEVC_NAME):
            if base in piv[m1]:
                add(f"MVMICNet stage 1 {metric} > {base} at the same rate point", piv[m1]["MVMICNet"], piv[m1][base],
                    "higher (the paper's claim)")
        s2 = df[df["method"] == "MVMICNet"].set_index("point")
        add(f"stage 2 improves {metric} over stage 1", s2[f"{metric}_stage2"], s2[m1], "higher (the paper's claim)")
        for base in ("MBT2018-Mean", "Cheng2020-Anchor"):
            if base in piv["psnr_db"]:
                add(f"MVMICNet PSNR > {base} (paper: +4-8 dB)", piv["psnr_db"]["MVMICNet"], piv["psnr_db"][base],
                    "+4 to +8 dB", " dB")
    return findings.claims_frame(out)


def speed_table(decoded: dict[tuple[str, int], Decoded]) -> pd.DataFrame:
    """Encode/decode ms per image and the bytes-vs-likelihood bpp gap, per codec (mean over rate points)."""
    rows = []
    for (key, point), d in decoded.items():
        gap = (float(d.bpp.mean()) / float(d.bpp_est.mean()) - 1) * 100 if d.bpp_est is not None else np.nan
        rows.append({"method": d.method, "point": point, "encode_ms": 1000 * d.encode_s, "decode_ms": 1000 * d.decode_s,
                     "bpp": float(d.bpp.mean()), "bpp_est": float(d.bpp_est.mean()) if d.bpp_est is not None else np.nan,
                     "bytes_vs_estimate_pct": gap})
    t = pd.DataFrame(rows)
    return t.groupby("method", sort=False).mean(numeric_only=True).drop(columns="point").reset_index()


#: bytes every learned bitstream pays whatever its content: our header (10–12 bytes) and 4 bytes of rANS state
#: for each of the two entropy-coded strings (y and z); ``benchmarks/compression_speed.py --gap-sizes`` measures it
FIXED_BYTES = 18


def fixed_bytes_sentence(decoded: dict[tuple[str, int], Decoded], size: int | Sequence[int]) -> str:
    """How large the fixed bytes are against a whole learned bitstream at this run's image size (Markdown)."""
    h, w = parse_size(size)
    sizes = np.concatenate([d.bpp * h * w / 8 for d in decoded.values() if d.bpp_est is not None])
    share = 100 * FIXED_BYTES / sizes
    return (f"At this run's {h}×{w}-px frames a whole learned bitstream is {sizes.min():.0f}–{sizes.max():.0f} bytes, so "
            f"the ~{FIXED_BYTES} fixed bytes alone are {share.min():.1f}–{share.max():.1f} % of it.")


# -- the rate sweep's tables and figure data (chapters A1, A2) ---------------------------------------------
def beside_published(results: pd.DataFrame, pub: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The sweep's rows under the paper's method names (our codec's name in ``codec``) beside the published
    ``columns`` (suffix ``_pub``), joined on method and rate point."""
    ours = results.assign(method=results["paper_method"].fillna(results["method"]))
    table = side_by_side(ours, pub, ["method", "point"], columns)
    table.insert(1, "codec", results["method"].values)
    return table


def rate_frames(results: pd.DataFrame, pub: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the rate figures and BD tables take: task accuracy (MVMICNet's stage 2 as its own method),
    image quality, both in one frame, and the published table in the same long form."""
    acc = accuracy_curves_frame(results, metric)
    qual = results[["method", "bpp", "psnr_db", "ms_ssim"]]
    pub_s2 = pub[pub["method"] == "MVMICNet"].assign(method="MVMICNet (stage 2)", **{metric: lambda d: d[f"{metric}_stage2"]})
    pub_long = pd.concat([pub.rename(columns={f"{metric}_stage1": metric}), pub_s2], ignore_index=True)
    return acc, qual, acc.merge(qual, on=["method", "bpp"], how="outer"), pub_long


def bd_accuracy_and_psnr(acc: pd.DataFrame, qual: pd.DataFrame, metric: str) -> pd.DataFrame:
    """BD tables of the task ``metric`` (accuracy curves) and of PSNR, one below the other."""
    return pd.concat([bd_tables(acc, [metric]), bd_tables(qual, ["psnr_db"])], ignore_index=True)


# -- the lambda2 ablation (chapter A3) --------------------------------------------------------------------
#: Table 4's quantities per (lambda2, seed), percentages as in the paper
LAMBDA2_METRICS = ("bpp", "psnr_db", "miou_percent", "miou_stage2_percent", "accuracy_percent", "dice_percent", "ms_ssim")


def lambda2_per_seed(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (``lambda2``, ``seed``) of :func:`medtask.methods.mvmicnet.study.lambda2_ablation` with
    :data:`LAMBDA2_METRICS` (mIoU, accuracy and Dice ×100)."""
    r = results
    return pd.DataFrame({"lambda2": r["lambda2"], "seed": r["seed"], "bpp": r["bpp"], "psnr_db": r["psnr_db"],
                         "miou_percent": 100 * r["miou_stage1"], "miou_stage2_percent": 100 * r["miou_stage2"],
                         "accuracy_percent": 100 * r["macc_stage1"], "dice_percent": 100 * r["dice_stage1"],
                         "ms_ssim": r["ms_ssim"]})


def lambda2_claims(t4: pd.DataFrame, diffs: pd.DataFrame | None, seeds: int) -> list[str]:
    """Chapter A3's claims: best mIoU and worst PSNR over λ2 (means over seeds, ``t4``), each λ2 against 0 on the
    same seed (``diffs``, :func:`medtask.metrics.spread.paired_differences`), and the seed-to-seed spread."""
    best = t4.loc[t4["miou_percent"].idxmax()]
    worst_psnr = t4.loc[t4["psnr_db"].idxmin()]
    lines = [f"- Highest mean stage-1 mIoU at lambda2 = {best['lambda2']:g} ({best['miou_percent']:.1f} %); the paper's best is 1e-4.",
             f"- Lowest mean PSNR at lambda2 = {worst_psnr['lambda2']:g} ({worst_psnr['psnr_db']:.2f} dB); the paper's is 0.1 (24.25 dB)."]
    for _, r in (diffs if diffs is not None else pd.DataFrame()).iterrows():
        def sd(c: str, f: str = ".2f", r: pd.Series = r) -> str:
            return f" ± {r[c + '_diff_sd']:{f}}" if r["seeds"] > 1 else ""

        noise = ("" if r["seeds"] < 2 else " (larger than its seed spread)"
                 if abs(r["miou_percent_diff"]) > 2 * r["miou_percent_diff_sd"] else " (within twice its seed spread)")
        lines.append(f"- lambda2 = {r['lambda2']:g} vs 0, same seed: mIoU {r['miou_percent_diff']:+.1f}{sd('miou_percent')} points"
                     f"{noise}, PSNR {r['psnr_db_diff']:+.2f}{sd('psnr_db')} dB, bpp {r['bpp_diff']:+.4f}{sd('bpp', '.4f')}.")
    lines.append(f"- {seeds} seed(s); seed-to-seed sd of mIoU at a fixed lambda2: "
                 + ", ".join(f"{r['lambda2']:g}: {r['miou_percent_sd']:.1f}" for _, r in t4.iterrows()) + " points.")
    return lines


def lambda2_findings(t4: pd.DataFrame) -> pd.DataFrame:
    """Chapter A3's claims table (:mod:`medtask.reporting.findings`): at which λ2 stage-1 mIoU is highest and PSNR
    lowest, ours (means ± sd over seeds, ``t4``) beside the paper's Table 4; a claim about a λ2 this run did not
    train is *not tested*."""
    pub = published("table4")
    seeds = int(t4["seeds"].max()) if "seeds" in t4 else 1
    rows = []
    for claim, col, unit, pick in (("Stage-1 mIoU is highest at λ2 = 1e-4", "miou_percent", "%", "idxmax"),
                                   ("PSNR is lowest at the largest λ2, 0.1", "psnr_db", "dB", "idxmin")):
        ours, paper = t4.loc[getattr(t4[col], pick)()], pub.loc[getattr(pub[col], pick)()]
        sd = f" ± {ours[col + '_sd']:.2f}" if seeds > 1 and col + "_sd" in t4 else ""
        tested = bool(np.isclose(t4["lambda2"], paper["lambda2"]).any())
        verdict = findings.verdict_of([np.isclose(ours["lambda2"], paper["lambda2"])]) if tested else "not tested"
        rows.append(findings.claim_row(claim, f"λ2 = {paper['lambda2']:g} ({paper[col]:.2f} {unit})",
                                       f"λ2 = {ours['lambda2']:g} ({ours[col]:.2f}{sd} {unit}, mean over {seeds} seed(s))",
                                       verdict))
    return findings.claims_frame(rows)


# -- what chapters A1 and A2 print beside their tables ----------------------------------------------------
#: Table 1's columns set beside the published ones (chapter A1)
SEGMENTATION_COLUMNS = ["bpp", "psnr_db", "ms_ssim", "miou_stage1", "miou_stage2"]
#: Tables 2/3's columns set beside the published ones (chapter A2)
DETECTION_COLUMNS = ["bpp", "psnr_db", "ms_ssim", "map_stage1", "map_stage2", "ap50_stage1", "ap50_stage2",
                     "ap75_stage1", "ap75_stage2"]


def data_summary(dataset: str, train, calib, test, size: int | Sequence[int],
                 classes: Sequence[str] | None = None) -> str:
    """One line on the splits' sizes (and the foreground classes, where given) at the working resolution."""
    h, w = parse_size(size)
    text = f"{dataset}: train {len(train)}, calibration {len(calib)}, test {len(test)} images at {h}x{w} (HxW)"
    return text if classes is None else f"{text}; classes {classes}"


def published_tables2_3() -> pd.DataFrame:
    """Tables 2/3 with the chapter's column names (``map_stage1``/``map_stage2``) and a rate ``point`` per
    method (1 = lowest published bpp), so they join the sweep's rows."""
    pub = published("tables2_3").rename(columns={"map_50_95_stage1": "map_stage1", "map_50_95_stage2": "map_stage2"})
    pub["point"] = pub.groupby("method")["bpp"].rank(method="first").astype(int)
    return pub


#: per task: the task network's name, its scores on original images with their labels, and the sentence's end
ORIGINAL_SCORES = {"segmentation": ("ERFNet", {"miou": "mIoU", "dice": "Dice"}, " (the ceiling for the baselines)."),
                   "detection": ("Detector", {"map": "mAP", "ap50": "AP50", "ap75": "AP75"}, ".")}


def original_scores_sentence(task: str, scores: dict[str, float], results: pd.DataFrame | None = None) -> str:
    """The task network's scores on the original test images (``segmentation`` or ``detection``; Markdown) and,
    given a sweep's ``results``, which rows read by that same network score above the originals (a reader that
    does better on distorted images than on the originals takes the distortion as a cue, so a task score above
    another codec's is then no evidence that the codec keeps more of the task's information)."""
    network, labels, tail = ORIGINAL_SCORES[task]
    values = ", ".join(f"{label} {scores[key]:.4f}" for key, label in labels.items())
    text = f"{network} on the **original** test images: {values}{tail}"
    key = TARGETS[task][1]
    column = f"{key}_stage1"
    if results is None or column not in results:
        return text
    above = results[results[column] > scores[key]]
    if above.empty:
        return text
    rows = ", ".join(f"{m} point {int(p)} ({v:.3f})" for m, p, v in zip(above["method"], above["point"], above[column]))
    return text + (f"\n\n**{len(above)} of {len(results)} rows score a higher {key} on decoded images than "
                   f"{network} does on the originals:** {rows}. The network reads some of the distortion as a cue "
                   f"for the task, so on this run a higher {key} after compression is no evidence that a codec keeps "
                   "more of the task's information; the task-side comparisons wait for a stronger network.")


#: the study's targets for the default profile (the zoo issue): the task network on original test images,
#: the task score kept on the highest-rate learned baseline's output, and each learned codec against HEVC-intra
TARGETS = {"segmentation": ("ERFNet polyp Dice on the original test frames", "dice", 0.50),
           "detection": ("Detector AP50 on the original test images", "ap50", 0.60)}
KEPT_TARGET = 0.90
BD_PSNR_TARGET = -3.0


def targets_table(task: str, results: pd.DataFrame, original_scores: dict[str, float],
                  bd: pd.DataFrame) -> pd.DataFrame:
    """The study's targets beside this run's values: ``target``, ``threshold``, ``ours``, ``met`` (a bool).

    Rows: the task network on the original test images (:data:`TARGETS`); for each learned baseline, its
    task score at its highest rate point as a share of the original's (>= :data:`KEPT_TARGET`); and its
    BD-PSNR against HEVC-intra over their common rates (>= :data:`BD_PSNR_TARGET` dB; ``nan`` where the
    rates do not overlap). ``bd`` is :func:`bd_accuracy_and_psnr`'s table.
    """
    label, key, threshold = TARGETS[task]
    score = {"segmentation": "dice_stage1", "detection": "ap50_stage1"}[task]
    rows = [{"target": label, "threshold": f">= {threshold:.2f}", "ours": original_scores[key],
             "met": original_scores[key] >= threshold}]
    learned = [m for m in ARCH_LABEL.values() if m in set(results["method"])]
    psnr = bd[(bd["anchor"] == classic.HEVC_NAME) & (bd["metric"] == "psnr_db") & (bd["measure"] == "BD-psnr_db")]
    for method in learned:
        top = results[results["method"] == method].sort_values("bpp").iloc[-1]
        kept = float(top[score]) / original_scores[key] if original_scores[key] > 0 else float("nan")
        rows.append({"target": f"{method} at its highest rate ({top['bpp']:.3f} bpp): {key} kept of the original's",
                     "threshold": f">= {KEPT_TARGET:.0%}", "ours": kept, "met": kept >= KEPT_TARGET})
        value = float(psnr[method].iloc[0]) if len(psnr) and method in psnr else float("nan")
        rows.append({"target": f"{method} against HEVC-intra: BD-PSNR (dB)", "threshold": f">= {BD_PSNR_TARGET:g}",
                     "ours": value, "met": value >= BD_PSNR_TARGET})
    return pd.DataFrame(rows)


def timings_frame(seconds: dict[str, float]) -> pd.DataFrame:
    """The sweep's timings as a one-column table (seconds; per step for training runs), rounded for display."""
    return pd.Series(seconds, name="seconds (per step for training runs)").round(3).to_frame()


def unavailable_codecs_sentence() -> str:
    """Which classic codecs this machine cannot run, and why (Markdown)."""
    missing = classic.unavailable_codecs()
    return "Classic codecs unavailable here: " + (", ".join(f"{k} ({v})" for k, v in missing.items()) or "none") + "."


def start_note(study: CompressionStudy, sweep: Sweep) -> str:
    """Markdown: where this run's networks started (the zoo entries with their cards' figures, or random
    weights) and, from the zoo, what the same codec trained from random weights in this chapter reaches."""
    text = starts_note(study.chapter.zoo_cards, study.init)
    cmp = sweep.start_comparison
    if cmp is None:
        return text
    metric = "miou" if "miou" in cmp else "map"
    z, s = cmp.iloc[0], cmp.iloc[1]
    return text + (f"\n\n**What the start changes.** {z['codec']} at the highest rate point, given the same "
                   f"{int(z['steps_in_chapter'])} steps in this chapter: from the zoo {z['psnr_db']:.1f} dB at "
                   f"{z['bpp']:.3f} bpp ({metric} {z[metric]:.3f}); from random weights {s['psnr_db']:.1f} dB at "
                   f"{s['bpp']:.3f} bpp ({metric} {s[metric]:.3f}), read by the same task network.")
