"""The whole lightweight multi-task network: :class:`AngioQANet` and its ablation switches.

Layout (default widths, one input channel, input sides divisible by 32)::

    image [B,1,H,W]
      stem: 3x3 conv -> 24 @ H            --------------------------- skip 0 -> FAM -> dec 4 -> vessel logits
      stage 1: DS, /2 -> 48 @ H/2          ---------------------- skip 1 -> FAM -> dec 3
      stage 2: DS, /4 -> 96 @ H/4          ---------------- skip 2 -> FAM -> dec 2
      stage 3: DS, /8 -> 160 @ H/8  + L-GSAM  ------- skip 3 -> FAM -> dec 1
      stage 4: DS, /16 -> 256 @ H/16 + L-GSAM x2 (bottleneck)
      quality head: bottleneck features + sigmoid(vessel logits) (+ image) -> grade logits

L-GSAM sits only at 1/8 and 1/16, where there are few tokens (attention is cheap) and where the
receptive field of convolutions is the limit; at full resolution it would cost most of the time.
The default configuration has 3,436,186 parameters (the paper: 3,434,200, +0.06 %); see
:func:`count_parameters` and the test that pins it within 5 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from medtask.errors import InvalidParameterError
from medtask.methods.angioqa.modules import (
    DepthwiseSeparableConv,
    EncoderStage,
    LocalGlobalSelfAttention,
    QualityHead,
    SegmentationDecoder,
)

PAPER_PARAMETERS = 3_434_200
TASKS = ("both", "seg", "cls")


@dataclass
class AngioQAConfig:
    """Widths and switches of :class:`AngioQANet` (the defaults are the paper-sized model)."""

    in_channels: int = 1
    num_classes: int = 3
    encoder_channels: list[int] = field(default_factory=lambda: [24, 48, 96, 160, 256])
    encoder_depths: list[int] = field(default_factory=lambda: [1, 2, 3, 3])
    decoder_channels: list[int] = field(default_factory=lambda: [160, 96, 48, 24])
    lgsam_stages: list[int] = field(default_factory=lambda: [3, 4])
    lgsam_blocks: int = 2
    heads: int = 8
    window: int = 8
    pool: int = 4
    head_hidden: int = 672
    use_lgsam: bool = True
    use_fam: bool = True
    seg_to_quality: bool = True
    task: str = "both"

    def as_dict(self) -> dict:
        return asdict(self)


class AngioQANet(nn.Module):
    """Depthwise-separable backbone + L-GSAM, FAM-skipped vessel decoder, seg-aware quality head.

    ``forward(x)`` takes ``[B, in_channels, H, W]`` in [0, 1] with ``H, W`` divisible by
    ``2 ** (len(encoder_channels) - 1)`` and returns ``{"seg": [B,1,H,W] logits, "quality": [B,K] logits}``
    (only the key of the active task when ``task`` is ``"seg"`` or ``"cls"``).

    Ablation switches (all in :class:`AngioQAConfig`): ``use_lgsam=False`` drops every L-GSAM,
    ``use_fam=False`` joins skips by plain concatenation, ``seg_to_quality=False`` feeds the quality
    head backbone features only, ``task="seg"``/``"cls"`` builds a single-task network (the other
    branch is not built, so its parameters are not counted).
    """

    def __init__(self, config: AngioQAConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = config or AngioQAConfig()
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise InvalidParameterError(f"AngioQANet: unknown option {k!r}; valid: {sorted(cfg.as_dict())}")
            setattr(cfg, k, v)
        if cfg.task not in TASKS:
            raise InvalidParameterError(f"AngioQANet: task must be one of {TASKS}, got {cfg.task!r}")
        if len(cfg.encoder_depths) != len(cfg.encoder_channels) - 1:
            raise InvalidParameterError("AngioQANet: encoder_depths needs one entry per downsampling stage "
                                        "(len(encoder_channels) - 1)")
        self.config = cfg
        ch = cfg.encoder_channels
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True), DepthwiseSeparableConv(ch[0], ch[0]))
        stages = []
        for i in range(1, len(ch)):
            blocks: list[nn.Module] = [EncoderStage(ch[i - 1], ch[i], depth=cfg.encoder_depths[i - 1])]
            if cfg.use_lgsam and i in cfg.lgsam_stages:
                n = cfg.lgsam_blocks if i == len(ch) - 1 else 1
                blocks += [LocalGlobalSelfAttention(ch[i], heads=cfg.heads, window=cfg.window, pool=cfg.pool)
                           for _ in range(n)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.decoder = (SegmentationDecoder(ch, cfg.decoder_channels, use_fam=cfg.use_fam)
                        if cfg.task in ("both", "seg") else None)
        use_seg = cfg.seg_to_quality and cfg.task == "both"
        self.quality_head = (QualityHead(ch[-1], cfg.num_classes, hidden=cfg.head_hidden, use_seg=use_seg)
                             if cfg.task in ("both", "cls") else None)
        self.stride = 2 ** (len(ch) - 1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InvalidParameterError` with a fix for a wrongly shaped input."""
        c = self.config.in_channels
        if x.ndim != 4:
            raise InvalidParameterError(f"AngioQANet expects a batch [B, {c}, H, W]; got shape {tuple(x.shape)}. "
                                        "Add a batch dimension with x.unsqueeze(0).")
        if x.shape[1] != c:
            raise InvalidParameterError(
                f"AngioQANet expects {c} input channel(s), got {x.shape[1]}. Convert RGB to the angiogram-like "
                "single channel with medtask.methods.angioqa.quality.angiogram_like() (or build with in_channels=...).")
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride or h < self.stride or w < self.stride:
            raise InvalidParameterError(
                f"AngioQANet needs H and W to be positive multiples of {self.stride}; got {h}x{w}. "
                f"Resize (e.g. medtask.data.load(..., size={max(self.stride, (h // self.stride) * self.stride)})) or pad.")

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's feature pyramid, shallow (full resolution) to deep (1/stride)."""
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(x)
        feats = self.features(x)
        out: dict[str, torch.Tensor] = {}
        if self.decoder is not None:
            out["seg"] = self.decoder(feats)
        if self.quality_head is not None:
            if self.quality_head.use_seg:
                out["quality"] = self.quality_head(feats[-1], torch.sigmoid(out["seg"]), x)
            else:
                out["quality"] = self.quality_head(feats[-1])
        return out


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def build_angioqa(variant: str = "full", **overrides) -> AngioQANet:
    """The model or one of its ablations: ``full``, ``no_lgsam``, ``no_fam``, ``no_link``, ``seg_only``, ``cls_only``."""
    switches = {
        "full": {}, "no_lgsam": {"use_lgsam": False}, "no_fam": {"use_fam": False},
        "no_link": {"seg_to_quality": False}, "seg_only": {"task": "seg"}, "cls_only": {"task": "cls"},
    }
    if variant not in switches:
        raise InvalidParameterError(f"unknown AngioQANet variant {variant!r}; choose one of {sorted(switches)}")
    return AngioQANet(**{**switches[variant], **overrides})
