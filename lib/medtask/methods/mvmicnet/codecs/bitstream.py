"""Real bitstreams for the learned codecs: ``update()`` + ``compress()``/``decompress()``, bpp from bytes.

Format (one image per bitstream; every integer an unsigned LEB128 varint unless noted)::

    byte 0      0xA0 | flags            (high nibble = format 0xA; bit 0 = greyscale input)
    varint      H                       original height (before padding)
    varint      W                       original width
    varint      n                       number of entropy-coded strings (2: y then z)
    n x varint  len_i                   byte length of each string
    2 bytes     check                   CRC-16/CCITT over (codec tag + every header byte above + strings), big-endian
    ...         strings                 the rANS strings, concatenated

For a 256x256 image that header is 10-12 bytes. The latent shape is not stored: it follows from
H, W and the codec's downsampling factor (64). ``check`` catches corruption and decoding with a
different codec/width/tag (the tag is folded into the CRC, so it costs no bytes). The check covers
the header too: a CRC-16 detects every single-bit error, so a flipped bit in the flags, H, W or a
length is refused instead of decoding to another shape or channel count.

Any input size works: images are padded (edge replication, bottom/right) to a multiple of 64
and cropped back after decoding. Greyscale ``[1, H, W]`` inputs are handled explicitly: the
channel is replicated to 3 for the RGB codec and the decoded RGB is averaged back to one
channel (flag bit 0 records it). Four-channel (alpha) input is refused.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from medtask.methods.mvmicnet.codecs.learned import CodecSpec, bpp_from_likelihoods
from medtask.errors import CorruptFileError, InvalidParameterError

MAGIC = 0xA0
PAD_MULTIPLE = 64


# -- varints ----------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CorruptFileError("learned-codec bitstream is truncated inside its header; re-encode the image")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 35:
            raise CorruptFileError("learned-codec bitstream header is corrupt (over-long integer); re-encode the image")


# -- image helpers ----------------------------------------------------------------------------
def check_image(x: torch.Tensor) -> torch.Tensor:
    """Validate a ``[C,H,W]`` or ``[B,C,H,W]`` float image (C = 1 or 3) and return it batched."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise InvalidParameterError("codec input must be a float tensor in [0, 1] (convert uint8 with x / 255)")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise InvalidParameterError(f"codec input must be [C,H,W] or [B,C,H,W], got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c == 4:
        raise InvalidParameterError("image has an alpha channel (4 channels); drop it first, e.g. x[:3]")
    if c not in (1, 3):
        raise InvalidParameterError(f"codec input must have 1 (greyscale) or 3 (RGB) channels, got {c}")
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise InvalidParameterError(f"empty image of shape {tuple(x.shape)}")
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """Pad ``[B,C,H,W]`` bottom/right by edge replication to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "replicate" if (ph < h and pw < w) else "constant"  # replicate needs the pad smaller than the side
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``[B,1,H,W]`` -> ``[B,3,H,W]`` by replication (RGB passes through)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def from_rgb(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Back to ``channels`` (1: mean of the three decoded channels)."""
    return x.mean(dim=1, keepdim=True) if channels == 1 else x


# -- the codec wrapper ------------------------------------------------------------------------
@dataclass
class Encoded:
    """One image's bitstream with its accounting."""

    data: bytes
    height: int
    width: int

    @property
    def num_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel from the bytes, header included."""
        return 8.0 * len(self.data) / (self.height * self.width)


class LearnedCodec:
    """Encode/decode real bitstreams with a trained CompressAI model (put in eval mode, CDFs updated).

    ``tag`` (e.g. ``"mvmicnet-q1"``) is folded into the checksum so that a bitstream decoded by
    another model is refused instead of silently yielding garbage.
    """

    def __init__(self, model: nn.Module, spec: CodecSpec | None = None, tag: str = "") -> None:
        self.model = model.eval()
        self.model.update(force=True)
        self.spec = spec
        name = f"{spec.arch}:{spec.N}:{spec.M}" if spec is not None else type(model).__name__
        self._tag = f"{name}|{tag}".encode()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _crc(self, header: bytes, strings: Sequence[bytes]) -> int:
        crc = binascii.crc_hqx(self._tag, 0xFFFF)
        crc = binascii.crc_hqx(header, crc)
        for s in strings:
            crc = binascii.crc_hqx(s, crc)
        return crc

    # -- encode ---------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> list[Encoded]:
        """Compress ``[C,H,W]`` or a same-sized batch ``[B,C,H,W]``; one :class:`Encoded` per image."""
        x = check_image(x).to(self.device)
        b, c, h, w = x.shape
        xp = pad_to_multiple(to_rgb(x).clamp(0, 1))
        out = self.model.compress(xp)
        strings = out["strings"]
        flags = 1 if c == 1 else 0
        encoded = []
        for i in range(b):
            parts = [s[i] for s in strings]
            header = bytearray([MAGIC | flags])
            header += _varint(h) + _varint(w) + _varint(len(parts))
            for p in parts:
                header += _varint(len(p))
            header += self._crc(bytes(header), parts).to_bytes(2, "big")
            encoded.append(Encoded(bytes(header) + b"".join(parts), h, w))
        return encoded

    # -- decode ---------------------------------------------------------------------------
    def parse(self, data: bytes) -> tuple[int, int, int, list[bytes]]:
        """Split a bitstream into (channels, H, W, strings), validating header, lengths and checksum."""
        if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
            raise CorruptFileError("empty learned-codec bitstream; re-encode the image")
        if data[0] & 0xF0 != MAGIC or data[0] & 0x0E:
            raise CorruptFileError(f"not a medtask learned-codec bitstream (first byte 0x{data[0]:02x}, "
                                   f"expected 0xA0/0xA1); was it written by LearnedCodec.encode?")
        channels = 1 if data[0] & 1 else 3
        h, pos = _read_varint(data, 1)
        w, pos = _read_varint(data, pos)
        n, pos = _read_varint(data, pos)
        if h == 0 or w == 0 or n == 0 or n > 8:
            raise CorruptFileError(f"learned-codec header is corrupt (H={h}, W={w}, strings={n}); re-encode the image")
        lengths = []
        for _ in range(n):
            ln, pos = _read_varint(data, pos)
            lengths.append(ln)
        if pos + 2 > len(data):
            raise CorruptFileError("learned-codec bitstream is truncated inside its header; re-encode the image")
        header = bytes(data[:pos])
        check = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + sum(lengths) != len(data):
            raise CorruptFileError(
                f"learned-codec bitstream is truncated or has trailing bytes: header announces {sum(lengths)} "
                f"payload bytes, {len(data) - pos} present; re-encode the image")
        strings, p = [], pos
        for ln in lengths:
            strings.append(bytes(data[p:p + ln]))
            p += ln
        if self._crc(header, strings) != check:
            raise CorruptFileError("learned-codec bitstream failed its checksum: it is corrupt, or it was encoded "
                                   "by a different codec/width/rate point than the one decoding it")
        return channels, h, w, strings

    @torch.inference_mode()
    def decode(self, data: bytes | Encoded, expected_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Decode one bitstream to a ``[C,H,W]`` float image in [0, 1] on the CPU."""
        return self.decode_many([data], expected_shape=expected_shape)[0]

    @torch.inference_mode()
    def decode_many(self, items: Sequence[bytes | Encoded],
                    expected_shape: tuple[int, ...] | None = None) -> list[torch.Tensor]:
        """Decode several bitstreams; consecutive same-shaped ones are decoded as one batch."""
        parsed = [self.parse(it.data if isinstance(it, Encoded) else it) for it in items]
        if expected_shape is not None:
            for c, h, w, _ in parsed:
                if (c, h, w)[-len(expected_shape):] != tuple(expected_shape):
                    raise InvalidParameterError(
                        f"bitstream holds a {c}x{h}x{w} image but {tuple(expected_shape)} was expected; "
                        "decode it with the codec/image it was made for")
        out: list[torch.Tensor] = []
        i = 0
        while i < len(parsed):
            j = i
            while j < len(parsed) and parsed[j][:3] == parsed[i][:3] and len(parsed[j][3]) == len(parsed[i][3]):
                j += 1
            c, h, w, _ = parsed[i]
            hp, wp = h + (-h) % PAD_MULTIPLE, w + (-w) % PAD_MULTIPLE
            shape = torch.Size([hp // PAD_MULTIPLE, wp // PAD_MULTIPLE])
            n = len(parsed[i][3])
            strings = [[parsed[k][3][s] for k in range(i, j)] for s in range(n)]
            try:
                x_hat = self.model.decompress(strings, shape)["x_hat"]
            except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
                raise CorruptFileError(f"learned-codec decoding failed ({exc}); the bitstream is corrupt") from exc
            x_hat = from_rgb(x_hat[..., :h, :w].clamp(0, 1), c).cpu()
            out.extend(x_hat.unbind(0))
            i = j
        return out

    # -- eval-mode forward ----------------------------------------------------------------
    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode forward pass: (reconstruction ``[B,C,H,W]``, likelihood-estimated bpp per image)."""
        x = check_image(x).to(self.device)
        b, c, h, w = x.shape
        out = self.model(pad_to_multiple(to_rgb(x)))
        x_hat = from_rgb(out["x_hat"][..., :h, :w].clamp(0, 1), c)
        bits = sum((-torch.log2(lk)).flatten(1).sum(1) for lk in out["likelihoods"].values())
        return x_hat, bits / (h * w)


def estimated_bpp(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Differentiable likelihood bpp of a batch (mean over the batch), for losses."""
    out = model(pad_to_multiple(to_rgb(check_image(x))))
    b, _, h, w = x.shape
    return bpp_from_likelihoods(out["likelihoods"], b * h * w)
