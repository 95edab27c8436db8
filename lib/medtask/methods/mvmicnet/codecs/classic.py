"""Classic image codecs, bpp from encoded bytes, and a quality search landing on target bpp points.

Codecs (all 8-bit RGB; greyscale inputs are replicated to RGB and averaged back, as in
:mod:`medtask.methods.mvmicnet.codecs.bitstream`):

``hevc-intra``  **HEVC-intra (x265), BPG-equivalent**: a single HEVC intra frame, 4:4:4 chroma,
                encoded by libx265 through pillow-heif (HEIF still image). BPG itself (Bellard's
                ``bpgenc``) is not packaged on PyPI, conda-forge or Debian, so it cannot be installed
                here; BPG is HEVC intra coding of one frame with x265 too, so this is the closest
                stand-in. Its bpp counts the HEVC elementary stream only -- the ``mdat`` payload plus
                the parameter sets in ``hvcC`` -- i.e. what a BPG file stores; the HEIF container
                boxes (~300-400 bytes, which would dominate at 0.1 bpp on small images) are
                reported separately as ``file_bpp``.
``jpeg``        baseline JPEG (libjpeg via Pillow), 4:4:4.
``jpeg2000``    JPEG 2000 (OpenJPEG via Pillow), rate control by compression ratio.
``webp``        lossy WebP (libwebp via Pillow).
``avif``        AVIF (libavif/AV1 via Pillow's native plugin), when the installed Pillow has it;
                otherwise :func:`available_codecs` leaves it out and :func:`unavailable_codecs`
                says why.

Every codec has one quality knob, monotone in rate; :func:`search_quality` bisects it so that
the mean bpp over a set of images lands as close as possible to a target.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError, features

from medtask.errors import CorruptFileError, InvalidParameterError
from medtask.methods.mvmicnet.codecs.bitstream import check_image

HEVC_NAME = "HEVC-intra (x265), BPG-equivalent"


@dataclass(frozen=True)
class ClassicCodec:
    """A classic codec: its knob range and whether the knob is an integer."""

    name: str
    label: str
    knob: str
    lo: float
    hi: float
    integer: bool
    increasing: bool  # True if raising the knob raises the rate

    def encode(self, x: torch.Tensor, q: float) -> "ClassicEncoded":
        """Encode one ``[C,H,W]`` image at knob value ``q``."""
        return encode(self.name, x, q)


@dataclass
class ClassicEncoded:
    """An encoded image: the bytes, the bytes the bpp counts, and the decoder's output."""

    data: bytes
    counted_bytes: int
    height: int
    width: int
    channels: int
    codec: str

    @property
    def bpp(self) -> float:
        return 8.0 * self.counted_bytes / (self.height * self.width)

    @property
    def file_bpp(self) -> float:
        return 8.0 * len(self.data) / (self.height * self.width)


_CODECS: dict[str, ClassicCodec] = {
    "hevc-intra": ClassicCodec("hevc-intra", HEVC_NAME, "quality", 0, 100, True, True),
    "jpeg": ClassicCodec("jpeg", "JPEG", "quality", 1, 95, True, True),
    "jpeg2000": ClassicCodec("jpeg2000", "JPEG 2000", "bpp", 0.005, 8.0, False, True),
    "webp": ClassicCodec("webp", "WebP", "quality", 0, 100, True, True),
    "avif": ClassicCodec("avif", "AVIF", "quality", 0, 100, True, True),
}


def _has_avif() -> tuple[bool, str]:
    try:
        if features.check("avif"):
            return True, ""
        return False, "the installed Pillow was built without libavif (PIL.features.check('avif') is False)"
    except Exception as exc:  # pragma: no cover
        return False, f"Pillow's AVIF support could not be checked: {exc}"


def _has_heif() -> tuple[bool, str]:
    try:
        import pillow_heif  # optional: only HEVC-intra needs it, and its absence is reported

        info = pillow_heif.libheif_info()
        if "x265" not in str(info.get("encoders", info)):
            return False, "pillow-heif's libheif has no x265 encoder"
        return True, ""
    except ImportError:
        return False, "pillow-heif is not installed (pip install pillow-heif)"


def unavailable_codecs() -> dict[str, str]:
    """Codec name -> reason, for classic codecs this installation cannot run."""
    out = {}
    for name, probe in (("avif", _has_avif), ("hevc-intra", _has_heif)):
        ok, why = probe()
        if not ok:
            out[name] = why
    return out


def available_codecs() -> list[str]:
    """Names of the classic codecs that work here (order: hevc-intra, jpeg, jpeg2000, webp, avif)."""
    missing = unavailable_codecs()
    return [n for n in _CODECS if n not in missing]


def get_codec(name: str) -> ClassicCodec:
    """The :class:`ClassicCodec` called ``name``; clear error if unknown or unavailable."""
    key = name.lower()
    if key not in _CODECS:
        raise InvalidParameterError(f"unknown classic codec {name!r}; choose from {', '.join(_CODECS)}")
    missing = unavailable_codecs()
    if key in missing:
        raise InvalidParameterError(f"classic codec {key!r} is unavailable: {missing[key]}")
    return _CODECS[key]


def _to_pil(x: torch.Tensor):
    x = check_image(x)
    if x.shape[0] != 1:
        raise InvalidParameterError("classic codecs encode one image at a time: pass [C,H,W]")
    x = x[0]
    rgb = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    arr = (rgb.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), "RGB"), x.shape[0]


def _iter_boxes(buf: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, typ = struct.unpack(">I4s", buf[pos:pos + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", buf[pos + 8:pos + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - pos
        if size < hdr:
            return
        yield typ.decode("latin-1"), pos, hdr, size
        pos += size


def hevc_stream_bytes(heif: bytes) -> int:
    """Bytes of the HEVC elementary stream in a HEIF file: ``mdat`` payload + ``hvcC`` parameter sets."""
    total = 0
    for typ, pos, hdr, size in _iter_boxes(heif, 0, len(heif)):
        if typ == "mdat":
            total += size - hdr
        elif typ == "meta":  # full box: 4 bytes version/flags, then children
            total += _find_hvcc(heif, pos + hdr + 4, pos + size)
    if total == 0:
        raise CorruptFileError("HEIF file without an mdat box; the x265 encoder produced no image data")
    return total


def _find_hvcc(buf: bytes, start: int, end: int) -> int:
    found = 0
    for typ, pos, hdr, size in _iter_boxes(buf, start, end):
        if typ == "hvcC":
            found += size - hdr
        elif typ in ("iprp", "ipco"):
            found += _find_hvcc(buf, pos + hdr, pos + size)
    return found


def encode(name: str, x: torch.Tensor, q: float) -> ClassicEncoded:
    """Encode ``[C,H,W]`` in [0,1] with classic codec ``name`` at knob value ``q``."""
    codec = get_codec(name)
    if not (codec.lo <= q <= codec.hi):
        raise InvalidParameterError(f"{codec.name} {codec.knob} must be in [{codec.lo}, {codec.hi}], got {q}")
    img, channels = _to_pil(x)
    w, h = img.size
    buf = io.BytesIO()
    if codec.name == "hevc-intra":
        import pillow_heif  # optional dependency (see _has_heif)

        heif = pillow_heif.from_pillow(img)
        heif.save(buf, quality=int(q), chroma=444, save_to_12bit=False)
        data = buf.getvalue()
        counted = hevc_stream_bytes(data)
    elif codec.name == "jpeg":
        img.save(buf, format="JPEG", quality=int(q), subsampling=0, optimize=True)
        data = buf.getvalue()
        counted = len(data)
    elif codec.name == "jpeg2000":
        ratio = 24.0 / float(q)
        img.save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True)
        data = buf.getvalue()
        counted = len(data)
    elif codec.name == "webp":
        img.save(buf, format="WEBP", quality=int(q), method=6)
        data = buf.getvalue()
        counted = len(data)
    else:  # avif
        img.save(buf, format="AVIF", quality=int(q), subsampling="4:4:4", speed=6)
        data = buf.getvalue()
        counted = len(data)
    return ClassicEncoded(data, counted, h, w, channels, codec.name)


def decode(enc: ClassicEncoded) -> torch.Tensor:
    """Decode a :class:`ClassicEncoded` back to ``[C,H,W]`` float in [0,1]."""
    if enc.codec == "hevc-intra":
        import pillow_heif  # optional dependency (see _has_heif)

        pillow_heif.register_heif_opener()
    try:
        img = Image.open(io.BytesIO(enc.data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptFileError(f"{enc.codec} data could not be decoded ({exc}); re-encode the image") from exc
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if arr.shape[:2] != (enc.height, enc.width):
        raise CorruptFileError(f"{enc.codec} decoded a {arr.shape[1]}x{arr.shape[0]} image, expected "
                               f"{enc.width}x{enc.height}; the data is corrupt")
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0
    return t.mean(0, keepdim=True) if enc.channels == 1 else t


def roundtrip(name: str, x: torch.Tensor, q: float) -> tuple[torch.Tensor, ClassicEncoded]:
    """Encode then decode; returns (decoded image, encoded record)."""
    enc = encode(name, x, q)
    return decode(enc), enc


def mean_bpp(name: str, images: Sequence[torch.Tensor], q: float) -> float:
    """Mean bpp (counted bytes) of ``images`` encoded at knob ``q``."""
    return float(np.mean([encode(name, x, q).bpp for x in images]))


@dataclass
class QualityChoice:
    """Result of :func:`search_quality`."""

    codec: str
    target_bpp: float
    knob: float
    bpp: float
    evaluations: int

    @property
    def relative_error(self) -> float:
        return (self.bpp - self.target_bpp) / self.target_bpp


def search_quality(name: str, images: Sequence[torch.Tensor], target_bpp: float, *, max_iter: int = 24,
                   rel_tol: float = 0.01, bpp_fn: Callable[[float], float] | None = None) -> QualityChoice:
    """Bisect the codec's knob so the mean bpp over ``images`` is as close as possible to ``target_bpp``.

    Integer knobs end on the integer whose bpp is nearest the target; continuous knobs stop at
    ``rel_tol``. A target outside the codec's reach returns the nearest end of the knob range
    (check :attr:`QualityChoice.relative_error`).
    """
    codec = get_codec(name)
    if not target_bpp > 0:
        raise InvalidParameterError(f"target bpp must be positive, got {target_bpp}")
    if len(images) == 0:
        raise InvalidParameterError("search_quality needs at least one image")
    cache: dict[float, float] = {}

    def f(q: float) -> float:
        if q not in cache:
            cache[q] = bpp_fn(q) if bpp_fn is not None else mean_bpp(name, images, q)
        return cache[q]

    lo, hi = (codec.lo, codec.hi) if codec.increasing else (codec.hi, codec.lo)
    if codec.integer:
        lo, hi = int(lo), int(hi)
    for _ in range(max_iter):
        if codec.integer and abs(hi - lo) <= 1:
            break
        mid = (lo + hi) // 2 if codec.integer else (lo + hi) / 2.0
        v = f(mid)
        if not codec.integer and abs(v - target_bpp) <= rel_tol * target_bpp:
            lo = hi = mid
            break
        if v < target_bpp:
            lo = mid
        else:
            hi = mid
    candidates = {lo, hi}
    best = min(candidates, key=lambda q: abs(f(q) - target_bpp))
    return QualityChoice(codec.name, float(target_bpp), float(best), f(best), len(cache))
