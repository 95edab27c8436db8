"""Building blocks of the lightweight angiography quality network (Study B).

Every block is a small ``nn.Module`` with one job, documented with its input and output shapes:

- :class:`DepthwiseSeparableConv` -- a 3x3 depthwise conv followed by a 1x1 pointwise conv
  (MobileNet's factorisation: ``k*k*C + C*C'`` weights instead of ``k*k*C*C'``).
- :class:`EncoderStage` -- one backbone stage: an optional stride-2 depthwise-separable conv, then
  ``depth`` residual depthwise-separable blocks.
- :class:`LocalGlobalSelfAttention` (L-GSAM) -- multi-head self-attention inside non-overlapping
  windows (local detail) plus attention of every token to an adaptively pooled summary of the whole
  map (global context), fused by a 1x1 projection; a depthwise-separable feed-forward follows.
- :class:`FeatureAggregation` (FAM) -- fuses an encoder skip with the upsampled decoder feature
  before they are joined: channel attention from the pooled fusion and a spatial gate.
- :class:`DecoderStage` / :class:`SegmentationDecoder` -- the U-Net-like vessel decoder.
- :class:`QualityHead` -- the quality classifier; it takes the segmentation probability map together
  with backbone features (the "seg -> quality link") and predicts the grade logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm_act(channels: int, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.BatchNorm2d(channels)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN (+ ReLU).

    ``[B, C_in, H, W] -> [B, C_out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act: bool = True) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels,
                                   bias=False)
        self.bn1 = _norm_act(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = _norm_act(out_channels, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.pointwise(self.bn1(self.depthwise(x))))


class DSResidualBlock(nn.Module):
    """Two depthwise-separable convs with an identity shortcut. ``[B, C, H, W] -> [B, C, H, W]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = DepthwiseSeparableConv(channels, channels)
        self.conv2 = DepthwiseSeparableConv(channels, channels, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


class EncoderStage(nn.Module):
    """One backbone stage: (stride-2) DS conv to ``out_channels``, then ``depth`` residual DS blocks.

    ``[B, C_in, H, W] -> [B, C_out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int = 1, stride: int = 2) -> None:
        super().__init__()
        self.down = DepthwiseSeparableConv(in_channels, out_channels, stride=stride)
        self.blocks = nn.Sequential(*[DSResidualBlock(out_channels) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class LocalGlobalSelfAttention(nn.Module):
    """L-GSAM: window self-attention (local) + attention to a pooled summary (global), fused.

    For a map ``[B, C, H, W]``: the local path splits it into ``window x window`` windows (padding
    the map when ``H`` or ``W`` is not a multiple) and runs multi-head attention inside each; the
    global path lets every position attend to the ``pool x pool`` adaptive-average-pooled map, so its
    cost is ``O(HW * pool^2)`` rather than ``O((HW)^2)``. The two results are concatenated, projected
    back to ``C`` by a 1x1 conv and added to the input; a depthwise-separable feed-forward with a
    residual follows. Output shape equals input shape.
    """

    def __init__(self, channels: int, heads: int = 4, window: int = 8, pool: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"L-GSAM: channels ({channels}) must be divisible by heads ({heads})")
        self.channels, self.heads, self.window, self.pool = channels, heads, window, pool
        self.norm = nn.GroupNorm(1, channels)
        self.qkv_local = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.q_global = nn.Conv2d(channels, channels, 1, bias=False)
        self.kv_global = nn.Conv2d(channels, 2 * channels, 1, bias=False)
        self.fuse = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.fuse_bn = nn.BatchNorm2d(channels)
        hidden = int(channels * mlp_ratio)
        self.ffn = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), _norm_act(hidden),
                                 DepthwiseSeparableConv(hidden, channels, act=False))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """``[N, L, C] -> [N, heads, L, C/heads]``."""
        n, length, c = t.shape
        return t.view(n, length, self.heads, c // self.heads).transpose(1, 2)

    def _local(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws = self.window
        ph, pw = (-h) % ws, (-w) % ws
        qkv = self.qkv_local(x)
        if ph or pw:
            qkv = F.pad(qkv, (0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        # [B, 3C, Hp, Wp] -> [B*nWin, ws*ws, 3C]
        t = qkv.view(b, 3 * c, hp // ws, ws, wp // ws, ws).permute(0, 2, 4, 3, 5, 1).reshape(-1, ws * ws, 3 * c)
        q, k, v = (self._heads(u) for u in t.chunk(3, dim=-1))
        o = F.scaled_dot_product_attention(q, k, v)  # [N, heads, ws*ws, C/heads]
        o = o.transpose(1, 2).reshape(b, hp // ws, wp // ws, ws, ws, c)
        o = o.permute(0, 5, 1, 3, 2, 4).reshape(b, c, hp, wp)
        return o[:, :, :h, :w]

    def _global(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self._heads(self.q_global(x).flatten(2).transpose(1, 2))  # [B, heads, HW, d]
        pooled = F.adaptive_avg_pool2d(x, self.pool)
        k, v = (self._heads(u.flatten(2).transpose(1, 2)) for u in self.kv_global(pooled).chunk(2, dim=1))
        o = F.scaled_dot_product_attention(q, k, v)  # [B, heads, HW, d]
        return o.transpose(1, 2).reshape(b, h * w, c).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        x = x + self.fuse_bn(self.fuse(torch.cat([self._local(y), self._global(y)], dim=1)))
        return x + self.ffn(x)


class FeatureAggregation(nn.Module):
    """FAM: fuse an encoder skip ``e`` with the upsampled decoder feature ``d`` before joining them.

    ``s = ReLU(BN(Conv1x1([e, d])))``; channel weights ``a_c = sigmoid(MLP(avgpool(s)))``; a spatial
    gate ``a_s = sigmoid(Conv7x7([mean_c(s), max_c(s)]))``; output ``s * a_c * a_s + e``.
    ``e: [B, C_e, H, W], d: [B, C_d, H, W] -> [B, C_e, H, W]``.
    """

    def __init__(self, skip_channels: int, decoder_channels: int, reduction: int = 4) -> None:
        super().__init__()
        c = skip_channels
        self.mix = nn.Sequential(nn.Conv2d(c + decoder_channels, c, 1, bias=False), _norm_act(c))
        hidden = max(c // reduction, 4)
        self.channel = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, hidden, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(hidden, c, 1), nn.Sigmoid())
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, padding=3), nn.Sigmoid())

    def forward(self, e: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        s = self.mix(torch.cat([e, d], dim=1))
        s = s * self.channel(s)
        gate = self.spatial(torch.cat([s.mean(1, keepdim=True), s.amax(1, keepdim=True)], dim=1))
        return s * gate + e


class DecoderStage(nn.Module):
    """Upsample ``x`` x2, join the skip (through a FAM, or plainly), refine with DS convs.

    ``x: [B, C_in, H, W], skip: [B, C_s, 2H, 2W] -> [B, C_out, 2H, 2W]``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, use_fam: bool = True) -> None:
        super().__init__()
        self.fam = FeatureAggregation(skip_channels, in_channels) if use_fam else None
        self.conv = nn.Sequential(DepthwiseSeparableConv(in_channels + skip_channels, out_channels),
                                  DepthwiseSeparableConv(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        if self.fam is not None:
            skip = self.fam(skip, x)
        return self.conv(torch.cat([x, skip], dim=1))


def set_prior_bias(conv: nn.Conv2d, prior: float) -> None:
    """Start a vessel-logit layer at the vessel prior: bias ``log(p / (1 - p))`` (vessels are ~10 % of pixels)."""
    if conv.bias is None or not 0 < prior < 1:
        raise ValueError(f"set_prior_bias needs a conv with a bias and 0 < prior < 1, got prior={prior}")
    with torch.no_grad():
        conv.bias.fill_(float(torch.logit(torch.tensor(prior))))


class SegmentationDecoder(nn.Module):
    """U-Net-like vessel decoder over encoder features (shallow to deep) -> one vessel logit map.

    ``features[i]: [B, C_i, H/2^i, W/2^i]`` for ``i = 0..n``; returns ``[B, 1, H, W]`` logits. The
    output bias starts at the vessel prior (:func:`set_prior_bias`), as every baseline's does here.
    """

    def __init__(self, encoder_channels: list[int], decoder_channels: list[int], use_fam: bool = True,
                 prior: float = 0.1) -> None:
        super().__init__()
        if len(decoder_channels) != len(encoder_channels) - 1:
            raise ValueError("SegmentationDecoder: need one decoder width per skip (len(encoder) - 1)")
        stages = []
        c_in = encoder_channels[-1]
        for skip_c, out_c in zip(reversed(encoder_channels[:-1]), decoder_channels):
            stages.append(DecoderStage(c_in, skip_c, out_c, use_fam=use_fam))
            c_in = out_c
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(c_in, 1, 1)
        set_prior_bias(self.head, prior)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for stage, skip in zip(self.stages, reversed(features[:-1])):
            x = stage(x, skip)
        return self.head(x)


class QualityHead(nn.Module):
    """Quality classifier over the deepest backbone feature and (optionally) the segmentation output.

    With ``use_seg`` (the seg -> quality link) the vessel probability map is (a) encoded by a small
    strided DS-conv tower into ``seg_channels`` descriptors of vessel-tree shape and continuity, and
    (b) downsampled to gate the backbone feature (vessel-weighted pooling). The pooled vectors are
    concatenated, layer-normalised (the pooled maxima and means differ in scale) and an MLP gives
    ``num_classes`` logits.

    ``feature: [B, C, h, w]``, ``seg_prob: [B, 1, H, W]`` -> ``[B, num_classes]``.
    """

    def __init__(self, feature_channels: int, num_classes: int, hidden: int = 256, seg_channels: int = 32,
                 use_seg: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        self.use_seg = use_seg
        c = feature_channels
        if use_seg:
            self.seg_encoder = nn.Sequential(
                nn.Conv2d(2, 16, 3, stride=2, padding=1, bias=False), _norm_act(16),
                DepthwiseSeparableConv(16, seg_channels, stride=2),
                DepthwiseSeparableConv(seg_channels, seg_channels, stride=2),
                DepthwiseSeparableConv(seg_channels, seg_channels, stride=2))
            in_features = 3 * c + 2 * seg_channels
        else:
            self.seg_encoder = None
            in_features = 2 * c
        self.mlp = nn.Sequential(nn.LayerNorm(in_features), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout),
                                 nn.Linear(hidden, num_classes))

    def forward(self, feature: torch.Tensor, seg_prob: torch.Tensor | None = None,
                image: torch.Tensor | None = None) -> torch.Tensor:
        pooled = [feature.mean((2, 3)), feature.amax((2, 3))]
        if self.use_seg:
            if seg_prob is None or image is None:
                raise ValueError("QualityHead(use_seg=True) needs the segmentation probabilities and the image")
            s = self.seg_encoder(torch.cat([seg_prob, image], dim=1))
            pooled += [s.mean((2, 3)), s.amax((2, 3))]
            w = F.adaptive_avg_pool2d(seg_prob, feature.shape[-2:])
            pooled.append((feature * w).sum((2, 3)) / (w.sum((2, 3)) + 1e-6))
        return self.mlp(torch.cat(pooled, dim=1))
