"""Seeded degradations of ``[0, 1]`` images: the low-quality inputs X the enhancer learns to undo.

Every degradation is a pure function of (clean images, seed or ``torch.Generator``), so the same
seed gives the same degraded batch on every run. Registry by name (:data:`DEGRADATIONS`,
:func:`make_degradation`):

- ``gaussian``  — additive white Gaussian noise, ``X = clip(Y + σ·n, 0, 1)``, any σ in [0, 1]
  (the paper uses σ ∈ {0.1, 0.2, 0.3});
- ``bicubic``   — bicubic down-sampling by ×2 or ×4 (anti-aliased), the super-resolution input;
- ``composite`` — Gaussian blur, then Poisson (shot) noise, then Gaussian (read) noise, clipped.

For the *unsupervised* setting, :meth:`Degradation.noisy_target` draws a second, independent noisy
realisation of the same clean image whose expectation is the clean image (Noise2Noise,
Lehtinen et al. 2018): additive noise is not clipped there, so the target stays unbiased.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from medtask.errors import InvalidParameterError

SeedLike = int | torch.Generator


def _generator(seed: SeedLike) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidParameterError(f"a degradation needs an int seed or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(int(seed))


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or not images.is_floating_point():
        raise InvalidParameterError(
            "degradations take float images [C, H, W] or [B, C, H, W] in [0, 1]; "
            f"got {type(images).__name__} {getattr(images, 'shape', '')}")
    return images


def _noise(shape: torch.Size, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=like.dtype).to(like.device)


def _check_unit(name: str, value: float, *, allow_zero: bool = True) -> float:
    value = float(value)
    if not (0.0 <= value <= 1.0) or (value == 0.0 and not allow_zero):
        raise InvalidParameterError(
            f"{name} must lie in [0, 1] (images are in [0, 1]; the paper uses 0.1, 0.2, 0.3), got {value}")
    return value


@dataclass(frozen=True)
class Degradation:
    """Base class: ``degradation(images, seed) -> degraded`` (same batch shape, or ``1/scale`` size)."""

    name: ClassVar[str] = "degradation"
    scale: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True

    def apply(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, seed: SeedLike = 0) -> torch.Tensor:
        """Degrade ``images`` (``[C,H,W]`` or ``[B,C,H,W]``) reproducibly from ``seed``."""
        images = _check_images(images)
        single = images.dim() == 3
        out = self.apply(images.unsqueeze(0) if single else images, _generator(seed))
        return out[0] if single else out

    def noisy_target(self, images: torch.Tensor, seed: SeedLike = 0) -> torch.Tensor:
        """An independent, unbiased noisy realisation of ``images`` (Noise2Noise target)."""
        raise InvalidParameterError(
            f"degradation {self.name!r} is deterministic, so it has no second noisy realisation: the "
            "unsupervised (Noise2Noise) setting needs a noise degradation ('gaussian' or 'composite')")

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for provenance and table columns."""
        return {"name": self.name, **asdict(self)}

    @property
    def label(self) -> str:
        """Short human-readable label, e.g. ``gaussian σ=0.1``."""
        params = ", ".join(f"{k}={v}" for k, v in asdict(self).items())
        return f"{self.name}({params})"


@dataclass(frozen=True)
class GaussianNoise(Degradation):
    """``X = clip(Y + σ·n, 0, 1)``, n ~ N(0, 1) i.i.d. per pixel and channel."""

    sigma: float = 0.1
    clip: bool = True
    name: ClassVar[str] = "gaussian"

    def __post_init__(self) -> None:
        _check_unit("gaussian sigma", self.sigma)

    def apply(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        out = images + self.sigma * _noise(images.shape, gen, images)
        return out.clamp(0.0, 1.0) if self.clip else out

    def noisy_target(self, images: torch.Tensor, seed: SeedLike = 0) -> torch.Tensor:
        images = _check_images(images)
        return images + self.sigma * _noise(images.shape, _generator(seed), images)


@dataclass(frozen=True)
class BicubicDownsample(Degradation):
    """Anti-aliased bicubic down-sampling by ``factor`` (2 or 4), clamped to [0, 1]."""

    factor: int = 2
    name: ClassVar[str] = "bicubic"
    stochastic: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.factor not in (2, 4):
            raise InvalidParameterError(f"bicubic factor must be 2 or 4 (the study's SR scales), got {self.factor!r}")

    @property
    def scale(self) -> int:  # type: ignore[override]
        return self.factor

    def apply(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        h, w = images.shape[-2:]
        if h % self.factor or w % self.factor:
            raise InvalidParameterError(
                f"bicubic ×{self.factor} needs height and width divisible by {self.factor}, got {h}×{w}; "
                "load the data with a size that is a multiple of the factor")
        out = F.interpolate(images, size=(h // self.factor, w // self.factor), mode="bicubic",
                            align_corners=False, antialias=True)
        return out.clamp(0.0, 1.0)


@dataclass(frozen=True)
class CompositeNoiseBlur(Degradation):
    """Gaussian blur (``blur_sigma`` px), Poisson noise (``peak`` photons at 1.0), Gaussian noise ``sigma``."""

    sigma: float = 0.05
    peak: float = 60.0
    blur_sigma: float = 1.0
    name: ClassVar[str] = "composite"

    def __post_init__(self) -> None:
        _check_unit("composite sigma", self.sigma)
        if not self.peak > 0:
            raise InvalidParameterError(f"composite peak (photon count at intensity 1) must be > 0, got {self.peak}")
        if not self.blur_sigma > 0:
            raise InvalidParameterError(f"composite blur_sigma must be > 0 pixels, got {self.blur_sigma}")

    def _kernel(self) -> int:
        return 2 * int(round(3 * self.blur_sigma)) + 1

    def _shot_read_noise(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        rate = (images.clamp(0.0, 1.0) * self.peak).cpu()
        shot = torch.poisson(rate, generator=gen).to(images.device, images.dtype) / self.peak
        return shot + self.sigma * _noise(images.shape, gen, images)

    def apply(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        k = self._kernel()
        blurred = gaussian_blur(images, kernel_size=[k, k], sigma=[self.blur_sigma, self.blur_sigma])
        return self._shot_read_noise(blurred, gen).clamp(0.0, 1.0)

    def noisy_target(self, images: torch.Tensor, seed: SeedLike = 0) -> torch.Tensor:
        # unbiased (E = Y), not blurred: a Noise2Noise target for the noise part of the degradation
        return self._shot_read_noise(_check_images(images), _generator(seed))


DEGRADATIONS: dict[str, type[Degradation]] = {
    GaussianNoise.name: GaussianNoise,
    BicubicDownsample.name: BicubicDownsample,
    CompositeNoiseBlur.name: CompositeNoiseBlur,
}


def make_degradation(spec: str | dict[str, Any] | Degradation, **params: Any) -> Degradation:
    """``make_degradation("gaussian", sigma=0.2)`` or ``make_degradation({"name": "bicubic", "factor": 4})``."""
    if isinstance(spec, Degradation):
        return spec
    if isinstance(spec, dict):
        params = {**{k: v for k, v in spec.items() if k != "name"}, **params}
        spec = spec.get("name", "")
    if spec not in DEGRADATIONS:
        raise InvalidParameterError(
            f"unknown degradation {spec!r}; choose one of {sorted(DEGRADATIONS)}")
    cls = DEGRADATIONS[spec]
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidParameterError(f"bad parameters {params} for degradation {spec!r}: {exc}") from None
