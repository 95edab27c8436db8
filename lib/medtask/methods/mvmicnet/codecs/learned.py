"""Learned image codecs (CompressAI architectures), built by name with their channel widths.

No pretrained weights are used anywhere: every codec is constructed with random weights and
trained by the study itself (CompressAI's zoo weights are neither downloadable here nor fair,
since the issue asks for all learned methods trained on the same images with the same budget).

Registry
--------
``mbt2018-mean``      :class:`compressai.models.MeanScaleHyperprior` (Minnen et al. 2018, the
                      "mbt2018-mean" entry of the zoo), widths ``N`` (transforms) and ``M`` (latent).
``cheng2020-anchor``  :class:`compressai.models.Cheng2020Anchor` (Cheng et al. 2020, anchor:
                      residual blocks, sub-pixel upsampling, autoregressive context), width ``N``.

:func:`zoo_widths` gives the zoo's N/M for a quality level (the paper profile); smaller widths
are allowed for CPU profiles and chapters state what they used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

with warnings.catch_warnings():
    # CompressAI's package import reaches a point-cloud dataset module that calls torch.jit.script,
    # which torch deprecates with a FutureWarning on every import: not the reader's business.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from compressai.entropy_models import EntropyBottleneck, EntropyModel
    from compressai.models import Cheng2020Anchor, MeanScaleHyperprior

from medtask.engine.distributed import in_step, rank_slice_uniform
from medtask.errors import InvalidParameterError

_COMPRESSAI_QUANTIZE = EntropyModel.quantize


def _quantize(self: EntropyModel, inputs: torch.Tensor, mode: str, means: torch.Tensor | None = None) -> torch.Tensor:
    """CompressAI's ``quantize``, whose training noise under data-parallel training is the global batch's.

    ``U(-½, ½)`` is drawn for the global batch and this rank's rows are kept
    (:func:`medtask.engine.distributed.rank_slice_uniform`), so every rank's noise equals the
    noise of a one-process run element by element. The entropy bottleneck sees its latents as
    ``[C, 1, B·H·W]`` (batch-major in the last dimension), the Gaussian conditional as ``[B, M, h, w]``.
    Outside a distributed step this is CompressAI's own method.
    """
    if mode != "noise" or not in_step():
        return _COMPRESSAI_QUANTIZE(self, inputs, mode, means)
    dim = inputs.dim() - 1 if isinstance(self, EntropyBottleneck) else 0
    return inputs + rank_slice_uniform(inputs, -0.5, 0.5, dim=dim)


EntropyModel.quantize = _quantize

#: CompressAI's rate–distortion lambdas (×255² MSE) for zoo qualities 1..8.
ZOO_LAMBDAS: dict[int, float] = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932,
                                 8: 0.1800}

# Widths of CompressAI's model zoo (compressai.zoo.image.cfgs), by quality.
_ZOO_WIDTHS: dict[str, dict[int, dict[str, int]]] = {
    "mbt2018-mean": {q: ({"N": 128, "M": 192} if q <= 4 else {"N": 192, "M": 320}) for q in range(1, 9)},
    "cheng2020-anchor": {q: ({"N": 128} if q <= 3 else {"N": 192}) for q in range(1, 7)},
}

ARCHITECTURES = tuple(_ZOO_WIDTHS)


@dataclass(frozen=True)
class CodecSpec:
    """A learned codec's name and widths (what is needed to rebuild it before loading weights)."""

    arch: str
    N: int
    M: int | None = None

    def build(self) -> nn.Module:
        return build_codec(self.arch, N=self.N, M=self.M)

    def as_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "N": self.N, "M": self.M}


def _check_arch(arch: str) -> str:
    key = arch.lower().replace("_", "-")
    if key not in _ZOO_WIDTHS:
        raise InvalidParameterError(f"unknown learned codec {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return key


def zoo_widths(arch: str, quality: int) -> dict[str, int]:
    """The CompressAI zoo's channel widths for ``arch`` at ``quality`` (the paper profile's widths)."""
    key = _check_arch(arch)
    if quality not in _ZOO_WIDTHS[key]:
        raise InvalidParameterError(f"{arch} quality must be in {sorted(_ZOO_WIDTHS[key])}, got {quality}")
    return dict(_ZOO_WIDTHS[key][quality])


def build_codec(arch: str, N: int = 128, M: int | None = None) -> nn.Module:
    """A randomly initialised CompressAI codec ``arch`` with widths ``N`` (and ``M`` for mbt2018-mean)."""
    key = _check_arch(arch)
    if int(N) < 8 or (M is not None and int(M) < 8):
        raise InvalidParameterError(f"codec widths must be >= 8 channels, got N={N}, M={M}")
    if key == "mbt2018-mean":
        return MeanScaleHyperprior(N=int(N), M=int(M if M is not None else N))
    if M is not None and int(M) != int(N):
        raise InvalidParameterError("cheng2020-anchor has a single width N (its latent has N channels); drop M")
    return Cheng2020Anchor(N=int(N))


def codec_spec(arch: str, N: int, M: int | None = None) -> CodecSpec:
    """A validated :class:`CodecSpec` (M defaults to N for mbt2018-mean, None for cheng2020-anchor)."""
    key = _check_arch(arch)
    if key == "mbt2018-mean":
        return CodecSpec(key, int(N), int(M if M is not None else N))
    if M is not None and int(M) != int(N):
        raise InvalidParameterError("cheng2020-anchor has a single width N; drop M")
    return CodecSpec(key, int(N), None)


def check_lambda(lmbda: float, name: str = "lambda1") -> float:
    """Validate a rate–distortion weight (×255² MSE convention): positive and at most 10."""
    value = float(lmbda)
    if not (value > 0.0) or value > 10.0 or value != value:
        raise InvalidParameterError(
            f"{name}={lmbda!r} is outside the meaningful range (0, 10] for L = R + {name}*255^2*MSE; "
            f"CompressAI's zoo uses {min(ZOO_LAMBDAS.values())}..{max(ZOO_LAMBDAS.values())}")
    return value


def bpp_from_likelihoods(likelihoods: dict[str, torch.Tensor], num_pixels: int) -> torch.Tensor:
    """Estimated bits per pixel: ``sum(-log2 p) / num_pixels`` over every latent (a differentiable scalar)."""
    total = sum(torch.log(lk).sum() for lk in likelihoods.values())
    return -total / (torch.log(torch.tensor(2.0, device=total.device)) * num_pixels)


def parameter_groups(codec: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """CompressAI's split: (main parameters, auxiliary ``quantiles`` parameters of the entropy bottleneck)."""
    main, aux = [], []
    for name, p in codec.named_parameters():
        if not p.requires_grad:
            continue
        (aux if name.endswith(".quantiles") else main).append(p)
    return main, aux
