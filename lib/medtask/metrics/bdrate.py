"""Bjøntegaard delta metrics: BD-rate (average bitrate difference at equal quality, in %) and
BD-quality (average quality difference at equal rate: BD-PSNR in dB, or BD-mIoU / BD-mAP).

Three interpolations, as in the literature:

``cubic``  the original VCEG-M33 method (Bjøntegaard 2001): a third-order polynomial fit.
``pchip``  piecewise cubic Hermite interpolation, as in the JCT-VC/JVET common-test-conditions
           Excel sheet (JCTVC-L1100); the default.
``akima``  Akima interpolation (Herglotz et al., ICIP 2022), more stable for odd curves.

Rates enter as ``log10``; BD-rate is ``(10**mean_log_diff - 1) * 100``. Negative BD-rate means
the test method needs fewer bits than the anchor for the same quality. The integration interval
is the overlap of the two curves; no overlap gives ``nan``. The quality axis must be strictly
monotone in rate for the piecewise methods (accuracy curves of learned codecs sometimes are
not: then :func:`bd_rate` raises and :func:`bd_table` records ``nan`` with the reason).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from medtask.errors import InvalidParameterError

METHODS = ("pchip", "akima", "cubic")


def _interp(x: np.ndarray, y: np.ndarray, method: str):
    import scipy.interpolate as si

    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise InvalidParameterError("BD metrics need distinct values on the interpolation axis "
                                    f"(got {x.tolist()}); drop duplicate rate points")
    if method == "cubic":
        if len(x) < 4:
            raise InvalidParameterError("cubic (VCEG-M33) BD needs at least 4 points; use method='pchip'")
        poly = np.polyfit(x, y, 3)
        integ = np.polyint(poly)
        return lambda a, b: float(np.polyval(integ, b) - np.polyval(integ, a))
    if method == "pchip":
        f = si.PchipInterpolator(x, y)
    elif method == "akima":
        f = si.Akima1DInterpolator(x, y) if len(x) > 2 else si.make_interp_spline(x, y, k=1)
    else:
        raise InvalidParameterError(f"BD method must be one of {METHODS}, got {method!r}")
    return lambda a, b: float(f.integrate(a, b))


def _check(rate: Sequence[float], quality: Sequence[float], who: str) -> tuple[np.ndarray, np.ndarray]:
    r, q = np.asarray(rate, dtype=float), np.asarray(quality, dtype=float)
    if r.shape != q.shape or r.ndim != 1 or len(r) < 2:
        raise InvalidParameterError(f"{who}: need equally long 1-D rate and quality lists with >= 2 points")
    if np.any(r <= 0) or not np.all(np.isfinite(r)) or not np.all(np.isfinite(q)):
        raise InvalidParameterError(f"{who}: rates must be positive and all values finite, got {r.tolist()}, "
                                    f"{q.tolist()}")
    return r, q


def _delta(xa, ya, xb, yb, method: str) -> float:
    lo, hi = max(xa.min(), xb.min()), min(xa.max(), xb.max())
    if hi <= lo:
        return float("nan")
    fa, fb = _interp(xa, ya, method), _interp(xb, yb, method)
    return (fb(lo, hi) - fa(lo, hi)) / (hi - lo)


def _monotone(rate: np.ndarray, quality: np.ndarray, who: str) -> None:
    order = np.argsort(rate)
    if np.any(np.diff(quality[order]) <= 0):
        raise InvalidParameterError(f"{who}: quality {quality[order].tolist()} does not rise strictly with rate "
                                    f"{rate[order].tolist()}, so rate at equal quality is undefined")


def bd_rate(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
            quality_test: Sequence[float], method: str = "pchip") -> float:
    """BD-rate of *test* against *anchor* in percent (negative: test saves bits)."""
    ra, qa = _check(rate_anchor, quality_anchor, "anchor")
    rt, qt = _check(rate_test, quality_test, "test")
    if method != "cubic":
        _monotone(ra, qa, "anchor")
        _monotone(rt, qt, "test")
    d = _delta(qa, np.log10(ra), qt, np.log10(rt), method)
    return float((10.0 ** d - 1.0) * 100.0) if np.isfinite(d) else float("nan")


def bd_quality(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
               quality_test: Sequence[float], method: str = "pchip") -> float:
    """BD-quality (BD-PSNR in dB, or BD-mIoU/BD-mAP in the metric's units) of *test* against *anchor*."""
    ra, qa = _check(rate_anchor, quality_anchor, "anchor")
    rt, qt = _check(rate_test, quality_test, "test")
    return _delta(np.log10(ra), qa, np.log10(rt), qt, method)


bd_psnr = bd_quality


def bd_table(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], method: str = "pchip",
             kind: str = "rate") -> "pandas.DataFrame":  # noqa: F821
    """Every method against every other: rows = anchor, columns = test; ``kind`` 'rate' (%) or 'quality'.

    Pairs that cannot be computed (no overlap, non-monotone curve) hold ``nan``.
    """
    import pandas as pd

    if kind not in ("rate", "quality"):
        raise InvalidParameterError(f"kind must be 'rate' or 'quality', got {kind!r}")
    fn = bd_rate if kind == "rate" else bd_quality
    names = list(curves)
    table = pd.DataFrame(index=pd.Index(names, name="anchor"), columns=names, dtype=float)
    for a in names:
        for t in names:
            if a == t:
                table.loc[a, t] = 0.0
                continue
            try:
                table.loc[a, t] = fn(*curves[a], *curves[t], method=method)
            except InvalidParameterError:
                table.loc[a, t] = float("nan")
    return table
