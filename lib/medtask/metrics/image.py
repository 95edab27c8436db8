"""Full-reference image quality: PSNR, SSIM and MS-SSIM, per image (torchmetrics / pytorch-msssim).

Images are float ``[B, C, H, W]``; ``data_range`` is 1.0 for ``[0, 1]`` images (the study's
convention) or 255 for 8-bit values. Every function returns one value per image (``[B]``) unless
``reduction="mean"``; inputs are clamped to ``[0, data_range]`` first, as a saved image would be.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from medtask.errors import InvalidParameterError


def _prepare(pred: torch.Tensor, target: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise InvalidParameterError(f"image metrics need equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.dim() == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.dim() != 4:
        raise InvalidParameterError(f"image metrics take [B, C, H, W] or [C, H, W] tensors, got {tuple(pred.shape)}")
    return pred.float().clamp(0, data_range), target.float().clamp(0, data_range)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise InvalidParameterError(f"reduction must be 'none' or 'mean', got {reduction!r}")


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image."""
    pred, target = _prepare(pred, target, data_range)
    values = peak_signal_noise_ratio(pred, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return _reduce(values, reduction)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Structural similarity (Wang et al. 2004; Gaussian window 11, σ 1.5), per image."""
    pred, target = _prepare(pred, target, data_range)
    values = structural_similarity_index_measure(pred, target, data_range=data_range, reduction="none")
    return _reduce(values, reduction)


def ms_ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Multi-scale SSIM (pytorch-msssim), per image; needs images larger than 160 px on the short side."""
    pred, target = _prepare(pred, target, data_range)
    if min(pred.shape[-2:]) <= 160:
        raise InvalidParameterError(f"MS-SSIM needs images larger than 160 px (5 scales), got {tuple(pred.shape[-2:])}")
    return _reduce(_ms_ssim(pred, target, data_range=data_range, size_average=False), reduction)


# -- as codecs are judged: PSNR on 8-bit RGB and MS-SSIM at any size --------------------------------
_MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def to_rgb8(x: torch.Tensor) -> torch.Tensor:
    """Quantise ``[0, 1]`` images to 8-bit levels (float 0..255), greyscale replicated to RGB."""
    x = x.float().clamp(0, 1)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x * 255.0).round()


def psnr_rgb8(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image on 8-bit RGB (both images quantised to 0..255, peak 255), as codecs report it.

    Identical images give ``inf``; average PSNR over a set with :func:`torch.mean` of finite values or
    report the mean of per-image PSNRs (what the compression literature does).
    """
    p, t = to_rgb8(pred), to_rgb8(target)
    if p.shape != t.shape:
        raise InvalidParameterError(f"PSNR needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    mse = ((p - t) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(255.0 ** 2 / mse)


def msssim_settings(height: int, width: int) -> dict[str, object]:
    """``win_size`` and ``weights`` that let pytorch-msssim run on an ``height x width`` image.

    pytorch-msssim asserts short side > ``(win_size - 1) * 16`` whatever the number of scales, and
    each scale halves the image: the standard 5 scales with an 11-px window need > 160 px. Smaller
    images keep 5 scales with a smaller odd window (9, 7, 5, 3 px: > 128, 96, 64, 32 px); below
    that, coarse scales are dropped (standard weights renormalised). Chapters state the setting.
    """
    short = min(height, width)
    for scales in (5, 4, 3, 2):
        for win in (11, 9, 7, 5, 3):
            if short > (win - 1) * 16 and short > (win - 1) * 2 ** (scales - 1):
                w = _MSSSIM_WEIGHTS[:scales]
                total = sum(w)
                return {"win_size": win, "weights": [v / total for v in w], "scales": scales}
    raise InvalidParameterError(f"MS-SSIM (pytorch-msssim) needs images larger than 32 px on the short side, "
                                f"got {height}x{width}; evaluate at a larger size")


def ms_ssim_any(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """MS-SSIM per image (pytorch-msssim) at any size > 32 px, settings from :func:`msssim_settings`.

    Inputs are quantised to 8-bit RGB first (as a decoded image would be), like :func:`psnr_rgb8`.
    """
    p, t = to_rgb8(pred / data_range), to_rgb8(target / data_range)
    if p.shape != t.shape:
        raise InvalidParameterError(f"MS-SSIM needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    s = msssim_settings(*p.shape[-2:])
    return _ms_ssim(p, t, data_range=255.0, size_average=False, win_size=s["win_size"], weights=s["weights"])


# -- a test set's image quality, for every study --------------------------------------------------
def image_quality(pred: torch.Tensor, target: torch.Tensor, *, structure: str = "ssim", batch_size: int = 32
                  ) -> dict[str, float]:
    """Mean image quality of ``pred`` against ``target`` (``[N, C, H, W]``), under one set of keys.

    ``psnr_db``: mean PSNR over the images whose PSNR is finite (``inf`` when none is). With
    ``structure="ssim"`` (enhancement) PSNR is on the float images and ``ssim`` the mean SSIM; with
    ``structure="ms_ssim"`` (compression) PSNR is on 8-bit RGB (:func:`psnr_rgb8`, as codecs report
    it) and ``ms_ssim`` the mean MS-SSIM at any size (:func:`ms_ssim_any`). Computed ``batch_size``
    images at a time.
    """
    if structure not in ("ssim", "ms_ssim"):
        raise InvalidParameterError(f"structure must be 'ssim' or 'ms_ssim', got {structure!r}")
    psnr_fn, struct_fn = (psnr, ssim) if structure == "ssim" else (psnr_rgb8, ms_ssim_any)
    ps, ss = [], []
    for i in range(0, len(target), batch_size):
        a, b = pred[i:i + batch_size], target[i:i + batch_size]
        ps.append(psnr_fn(a, b))
        ss.append(struct_fn(a, b))
    p = torch.cat(ps)
    finite = torch.isfinite(p)
    return {"psnr_db": float(p[finite].mean()) if finite.any() else float("inf"),
            structure: float(torch.cat(ss).mean())}
