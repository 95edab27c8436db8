"""Angiogram-like images from fundus photographs, and the seeded degradation protocol of quality grades.

The paper's DSA angiograms and their quality grades are private. This module makes a documented,
reproducible substitute:

1. :func:`angiogram_like` turns an RGB fundus photograph into a single-channel image that looks like
   a subtracted angiogram: the green channel (where vessels have the most contrast), CLAHE
   (``skimage.exposure.equalize_adapthist``) inside the field of view, the area outside the field of
   view filled with the median background (DSA has no black circular border), and a robust
   rescale to [0, 1] (1st/99th percentile inside the field of view). Vessels stay dark on a bright
   background, as contrast-filled vessels are in DSA.
2. :func:`degrade` applies acquisition-like faults at a graded severity:

   ===================  ===================================================  ===================
   fault                what it imitates                                     parameter
   ===================  ===================================================  ===================
   ``filling``          incomplete contrast filling: inside a disc around a  radius (frac. of H),
                        random vessel pixel, vessel pixels (from the mask)   attenuation
                        are pulled towards the local background
   ``motion``           patient motion during the run: linear motion blur    length (frac. of H)
   ``noise``            quantum (photon) noise of a low-dose frame: Poisson  photons per unit
   ``exposure``         under- or over-exposure: dynamic range compressed    gain
                        towards black (under) or white (over)
   ``truncation``       truncated field of view: a collimator blade blanks   fraction of the side
                        a band from one side
   ===================  ===================================================  ===================

   Severity bands (``SEVERITY``) are disjoint ranges per fault, drawn uniformly.
3. :func:`make_versions` maps grades to faults: grade 0 ``good`` gets only natural-level
   variation (mild photon noise, gamma 0.9-1.1); grade 1 ``fair`` one fault at mild severity;
   grade 2 ``poor`` one fault at severe severity plus, with probability 1/2, a second fault at
   mild severity. Each source image gets ``versions`` degraded copies with grades cycling 0, 1, 2
   from a seeded offset, so the classes are balanced. Everything is drawn from
   ``numpy.random.default_rng([seed, crc32(source_id), version])``: the same seed gives the same data,
   on any machine, whatever order the images are processed in.

The vessel mask stays the anatomical ground truth for every version (a vessel that the contrast did
not fill is still a vessel); :func:`split_by_source` keeps all versions of a source image on one side.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from skimage.exposure import equalize_adapthist

from medtask.errors import InvalidParameterError

GRADES = ("good", "fair", "poor")
FAULTS = ("filling", "motion", "noise", "exposure", "truncation")
# fault -> severity (1 mild, 2 severe) -> (low, high) of its parameter
SEVERITY: dict[str, dict[int, tuple[float, float]]] = {
    "filling": {1: (0.45, 0.65), 2: (0.8, 1.0)},          # attenuation of vessel contrast in the region
    "motion": {1: (0.025, 0.04), 2: (0.055, 0.085)},     # blur length as a fraction of the image height
    "noise": {1: (25.0, 60.0), 2: (4.0, 10.0)},          # photons per unit intensity (fewer = noisier)
    "exposure": {1: (0.45, 0.6), 2: (0.15, 0.28)},       # kept fraction of the dynamic range
    "truncation": {1: (0.15, 0.25), 2: (0.33, 0.48)},    # blanked fraction of the side
}
FILLING_RADIUS = {1: (0.2, 0.3), 2: (0.35, 0.5)}         # region radius as a fraction of the image height


# -- angiogram-like conversion -------------------------------------------------------------------
def estimate_fov(rgb: np.ndarray, threshold: float = 0.08) -> np.ndarray:
    """Field-of-view mask of a fundus photograph ``[3,H,W]`` (or ``[H,W,3]``) in [0,1]: red channel above a threshold, holes filled."""
    arr = np.asarray(rgb, dtype=np.float32)
    red = arr[0] if arr.shape[0] == 3 else arr[..., 0]
    fov = ndimage.binary_opening(red > threshold * max(float(red.max()), 1e-6), iterations=2)
    fov = ndimage.binary_fill_holes(fov)
    labels, n = ndimage.label(fov)
    if n > 1:
        sizes = ndimage.sum(fov, labels, range(1, n + 1))
        fov = labels == (1 + int(np.argmax(sizes)))
    return fov


def angiogram_like(image: torch.Tensor | np.ndarray, fov: torch.Tensor | np.ndarray | None = None,
                   clip_limit: float = 0.01) -> torch.Tensor:
    """RGB fundus ``[3,H,W]`` in [0,1] -> angiogram-like ``[1,H,W]`` (dark vessels on a bright background)."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise InvalidParameterError(f"angiogram_like expects an RGB image [3,H,W]; got shape {arr.shape}. "
                                    "Load the dataset with its default 3 channels.")
    arr = np.clip(arr.astype(np.float32), 0.0, 1.0)
    if fov is None:
        fov_mask = estimate_fov(arr)
    else:
        fov_mask = (fov.detach().cpu().numpy() if isinstance(fov, torch.Tensor) else np.asarray(fov)) > 0
        fov_mask = fov_mask.reshape(arr.shape[1:])
    if fov_mask.sum() < 16:
        fov_mask = np.ones(arr.shape[1:], dtype=bool)
    green = arr[1]
    eq = equalize_adapthist(green, clip_limit=clip_limit).astype(np.float32)
    inside = eq[fov_mask]
    lo, hi = np.percentile(inside, [1.0, 99.0])
    out = np.clip((eq - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    background = float(np.median(out[fov_mask]))
    # soften the rim: blend towards the background over a few pixels outside the FOV
    weight = ndimage.gaussian_filter(fov_mask.astype(np.float32), sigma=max(arr.shape[1] / 200, 0.5))
    weight = np.where(fov_mask, 1.0, weight)
    out = weight * out + (1.0 - weight) * background
    return torch.from_numpy(out[None].astype(np.float32))


# -- faults --------------------------------------------------------------------------------------
def fault_filling(x: np.ndarray, mask: np.ndarray, attenuation: float, radius: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Pull vessel pixels inside a disc (``radius`` x H, centred on a random vessel pixel) towards the background."""
    h, w = x.shape
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        cy, cx = h / 2, w / 2
    else:
        i = int(rng.integers(len(ys)))
        cy, cx = float(ys[i]), float(xs[i])
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / (radius * h)
    region = np.clip(1.5 - dist, 0.0, 1.0)  # soft-edged disc
    size = max(3, int(round(h / 64)) * 2 + 1)
    background = ndimage.grey_closing(x, size=(size, size))  # dark thin vessels removed
    vessels = ndimage.binary_dilation(mask > 0, iterations=1).astype(np.float32)
    return x + attenuation * region * vessels * (background - x)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised linear motion-blur kernel of ``length`` pixels at ``angle`` radians."""
    half = max(length / 2.0, 0.5)
    size = int(np.ceil(half)) * 2 + 1
    k = np.zeros((size, size), dtype=np.float32)
    c = size // 2
    for t in np.linspace(-half, half, num=max(int(length * 4), 3)):
        y, x = c + t * np.sin(angle), c + t * np.cos(angle)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - y0, x - x0
        for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                k[y0 + dy, x0 + dx] += wgt
    return k / k.sum()


def fault_motion(x: np.ndarray, length_frac: float, rng: np.random.Generator) -> np.ndarray:
    """Linear motion blur of ``length_frac`` x H pixels in a random direction."""
    k = motion_kernel(length_frac * x.shape[0], float(rng.uniform(0, np.pi)))
    return ndimage.convolve(x, k, mode="reflect")


def fault_noise(x: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Quantum noise: ``Poisson(photons * x) / photons``."""
    return rng.poisson(np.clip(x, 0, 1) * photons).astype(np.float32) / photons


def fault_exposure(x: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Under- (towards black) or over-exposure (towards white), keeping ``gain`` of the dynamic range."""
    if rng.random() < 0.5:
        return x * gain
    return 1.0 - (1.0 - x) * gain


def fault_truncation(x: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Blank a band of ``fraction`` of the image from a random side (collimator / truncated field of view)."""
    out = x.copy()
    h, w = x.shape
    side = int(rng.integers(4))
    n = int(round(fraction * (h if side in (0, 1) else w)))
    if side == 0:
        out[:n] = 0.0
    elif side == 1:
        out[h - n:] = 0.0
    elif side == 2:
        out[:, :n] = 0.0
    else:
        out[:, w - n:] = 0.0
    return out


def apply_fault(x: np.ndarray, mask: np.ndarray, fault: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply one ``fault`` at ``severity`` (1 mild, 2 severe) to a ``[H,W]`` image in [0,1]."""
    if fault not in SEVERITY:
        raise InvalidParameterError(f"unknown fault {fault!r}; choose one of {FAULTS}")
    if severity not in (1, 2):
        raise InvalidParameterError(f"severity must be 1 (mild) or 2 (severe), got {severity}")
    value = float(rng.uniform(*SEVERITY[fault][severity]))
    if fault == "filling":
        out = fault_filling(x, mask, value, float(rng.uniform(*FILLING_RADIUS[severity])), rng)
    elif fault == "motion":
        out = fault_motion(x, value, rng)
    elif fault == "noise":
        out = fault_noise(x, value, rng)
    elif fault == "exposure":
        out = fault_exposure(x, value, rng)
    else:
        out = fault_truncation(x, value, rng)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def natural_variation(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What every version gets: gamma in [0.9, 1.1] and mild photon noise (200-600 photons)."""
    x = np.clip(x, 0, 1) ** float(rng.uniform(0.9, 1.1))
    return np.clip(fault_noise(x, float(rng.uniform(200, 600)), rng), 0, 1).astype(np.float32)


def degrade(image: torch.Tensor, mask: torch.Tensor, grade: int, rng: np.random.Generator) -> tuple[torch.Tensor, list[str]]:
    """Make a version of quality ``grade`` (0 good, 1 fair, 2 poor) of ``image [1,H,W]``; returns (image, faults)."""
    if grade not in range(len(GRADES)):
        raise InvalidParameterError(f"grade must be one of 0..{len(GRADES) - 1} ({GRADES}), got {grade}")
    if image.ndim != 3 or image.shape[0] != 1:
        raise InvalidParameterError(f"degrade expects an angiogram-like image [1,H,W]; got {tuple(image.shape)}. "
                                    "Convert with angiogram_like() first.")
    x = image[0].detach().cpu().numpy().astype(np.float32)
    m = mask.detach().cpu().numpy() > 0
    faults: list[str] = []
    if grade >= 1:
        order = rng.permutation(len(FAULTS))
        primary = FAULTS[int(order[0])]
        x = apply_fault(x, m, primary, grade, rng)
        faults.append(f"{primary}:{grade}")
        if grade == 2 and rng.random() < 0.5:
            second = FAULTS[int(order[1])]
            x = apply_fault(x, m, second, 1, rng)
            faults.append(f"{second}:1")
    x = natural_variation(x, rng)
    return torch.from_numpy(x[None]), faults


def source_rng(seed: int, source: str, version: int) -> np.random.Generator:
    """The generator of one (seed, source image, version): independent of processing order."""
    if seed < 0 or version < 0:
        raise InvalidParameterError(f"seed and version must be >= 0, got {seed} and {version}")
    return np.random.default_rng([int(seed), zlib.crc32(source.encode("utf-8")), int(version)])


def make_versions(samples: Iterable[dict[str, Any]], versions: int, seed: int = 0) -> list[dict[str, Any]]:
    """Degraded versions of every sample ``{"image": [1,H,W], "mask": [H,W], "id"}``, grades balanced.

    Returns classification + segmentation samples ``{"image", "mask", "label", "id", "source", "faults"}``
    where ``id = "<source>#v<k>"`` and ``faults`` is e.g. ``"motion:2+noise:1"`` (``""`` for good).
    """
    if versions < 1:
        raise InvalidParameterError(f"versions must be >= 1, got {versions}")
    out = []
    for s in samples:
        source = str(s["id"])
        offset = int(source_rng(seed, source, 1_000_000).integers(len(GRADES)))  # not a version index
        for k in range(versions):
            grade = (offset + k) % len(GRADES)
            img, faults = degrade(s["image"], s["mask"], grade, source_rng(seed, source, k))
            out.append({"image": img, "mask": s["mask"], "label": grade, "id": f"{source}#v{k}",
                        "source": source, "faults": "+".join(faults)})
    return out


def split_by_source(samples: Sequence[dict[str, Any]], test_sources: Iterable[str]) -> tuple[list, list]:
    """(train, test) lists: a sample is in test iff its ``source`` is in ``test_sources``."""
    test_set = set(test_sources)
    train = [s for s in samples if s["source"] not in test_set]
    test = [s for s in samples if s["source"] in test_set]
    return train, test


def check_no_leakage(*splits: Sequence[dict[str, Any]]) -> None:
    """Raise :class:`InvalidParameterError` if any source image appears in more than one split."""
    seen: dict[str, int] = {}
    for i, split in enumerate(splits):
        for src in {s["source"] for s in split}:
            if src in seen and seen[src] != i:
                raise InvalidParameterError(f"source image {src!r} is in splits {seen[src]} and {i}: degraded "
                                            "versions of one image must stay on one side (use split_by_source)")
            seen[src] = i
